//! The caller, from the JWT claims the authorizer hands over. In AWS the API Gateway HTTP
//! API authorizer validates the token and passes claims as strings (arrays flattened to
//! `"[admin ops]"`); locally the gateway verifies the token and passes the same shape.

use crate::domain::caller::{Caller, ADMIN_GROUP, MAX_USER_ID_CHARS};
use std::collections::HashMap;

/// Claims as the authorizer passes them: every value a string.
pub type Claims = HashMap<String, String>;

/// The caller the claims name; `None` when there is no usable `sub`: a missing, empty or
/// blank one, or one longer than `MAX_USER_ID_CHARS`. A usable `sub` is the user id
/// exactly as given (never trimmed or case-folded), so two different subjects can never
/// become one user.
pub fn caller_from_claims(claims: &Claims) -> Option<Caller> {
    let user_id =
        claims.get("sub").filter(|s| !s.trim().is_empty() && s.chars().count() <= MAX_USER_ID_CHARS)?;
    let is_admin = ["groups", "cognito:groups"]
        .iter()
        .filter_map(|k| claims.get(*k))
        .any(|v| parse_groups(v).iter().any(|g| g == ADMIN_GROUP));
    Some(Caller { user_id: user_id.clone(), is_admin })
}

/// Group names from a claim value, in the two forms an authorizer hands over: a JSON array
/// (`["admin","ops"]`) and API Gateway's flattening of an array (`[admin ops]`, names
/// separated by single spaces; Cognito group names cannot contain whitespace). Any other
/// value is one group name, as a string claim is. Names are compared exactly afterwards,
/// so a group called `admin,ops`, `"admin"` or `[admin]` never counts as `admin`.
pub fn parse_groups(v: &str) -> Vec<String> {
    if let Ok(list) = serde_json::from_str::<Vec<String>>(v) {
        return list;
    }
    match v.strip_prefix('[').and_then(|inner| inner.strip_suffix(']')) {
        Some(inner) => inner.split(' ').filter(|s| !s.is_empty()).map(str::to_string).collect(),
        None => vec![v.to_string()],
    }
}

/// Flattens a claim the way API Gateway HTTP APIs do, so the local gateway hands the
/// handlers exactly what AWS would.
pub fn flatten_claim(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(flatten_claim).collect();
            format!("[{}]", parts.join(" "))
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(pairs: &[(&str, &str)]) -> Claims {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn admin_comes_from_either_groups_claim_in_either_form() {
        for (k, v) in [
            ("groups", "[admin ops]"),
            ("groups", r#"["ops","admin"]"#),
            ("cognito:groups", "[admin]"),
            ("cognito:groups", "admin"),
        ] {
            let c = caller_from_claims(&claims(&[("sub", "alice"), (k, v)])).unwrap();
            assert!(c.is_admin, "{k}={v}");
        }
        let c = caller_from_claims(&claims(&[("sub", "bob"), ("groups", "[administrators]")])).unwrap();
        assert!(!c.is_admin);
    }

    #[test]
    fn a_group_whose_name_holds_commas_quotes_brackets_or_spaces_never_makes_an_admin() {
        for (k, v) in [
            ("groups", r#"["admin,ops"]"#),
            ("groups", "[admin,ops]"),
            ("groups", "admin,ops"),
            ("groups", r#"["\"admin\""]"#),
            ("groups", r#"["[admin]"]"#),
            ("groups", "[[admin]]"),
            ("groups", "admin ops"),
            ("groups", r#"["admin ops"]"#),
            ("cognito:groups", " admin"),
            ("cognito:groups", "ADMIN"),
        ] {
            let c = caller_from_claims(&claims(&[("sub", "eve"), (k, v)])).unwrap();
            assert!(!c.is_admin, "{k}={v}");
        }
    }

    #[test]
    fn the_subject_is_the_user_id_exactly_as_given() {
        assert_eq!(caller_from_claims(&claims(&[("sub", " Alice ")])).unwrap().user_id, " Alice ");
    }

    #[test]
    fn a_token_without_a_subject_is_no_caller() {
        assert_eq!(caller_from_claims(&claims(&[("groups", "[admin]")])), None);
        assert_eq!(caller_from_claims(&claims(&[("sub", " ")])), None);
        assert_eq!(caller_from_claims(&claims(&[("sub", &"x".repeat(257))])), None);
        assert!(caller_from_claims(&claims(&[("sub", &"x".repeat(256))])).is_some());
    }

    #[test]
    fn flattening_matches_api_gateway() {
        assert_eq!(flatten_claim(&serde_json::json!(["admin", "ops"])), "[admin ops]");
        assert_eq!(flatten_claim(&serde_json::json!("x")), "x");
    }
}
