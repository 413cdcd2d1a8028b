//! The caller, from the JWT claims the authorizer hands over. In AWS the API Gateway HTTP
//! API authorizer validates the token and passes claims as strings (arrays flattened to
//! `"[admin ops]"`); locally the gateway verifies the token and passes the same shape.
//!
//! The flattened form cannot tell the groups `["admin ops"]` from `["admin", "ops"]`, so
//! groups are read from the token itself where it can be: the bearer token of the
//! request is the one the authorizer verified (its identity source), and its payload
//! holds the groups as the issuer wrote them.

use crate::domain::caller::{Caller, ADMIN_GROUP, MAX_USER_ID_CHARS};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::Value;
use std::collections::HashMap;

/// Claims as the authorizer passes them: every value a string.
pub type Claims = HashMap<String, String>;

/// The claims that name groups.
const GROUP_CLAIMS: [&str; 2] = ["groups", "cognito:groups"];

/// The caller the claims name; `None` when there is no usable `sub`: a missing, empty or
/// blank one, or one longer than `MAX_USER_ID_CHARS`. A usable `sub` is the user id
/// exactly as given (never trimmed or case-folded), so two different subjects can never
/// become one user. `bearer` is the request's bearer token, which the authorizer verified:
/// when its payload names the same subject, the groups are read from it; otherwise from
/// the flattened claims (`parse_flattened_groups`). Either way a caller is an admin only
/// when one group is exactly `admin`.
pub fn caller_from_claims(claims: &Claims, bearer: Option<&str>) -> Option<Caller> {
    let user_id =
        claims.get("sub").filter(|s| !s.trim().is_empty() && s.chars().count() <= MAX_USER_ID_CHARS)?;
    let groups = bearer.and_then(|t| groups_in_token(t, user_id)).unwrap_or_else(|| {
        GROUP_CLAIMS.iter().filter_map(|k| claims.get(*k)).flat_map(|v| parse_flattened_groups(v)).collect()
    });
    let is_admin = groups.iter().any(|g| g == ADMIN_GROUP);
    Some(Caller { user_id: user_id.clone(), is_admin })
}

/// The groups a JWT's payload names (a JSON array of strings, or one string, under either
/// group claim), when the payload can be read and its `sub` is `subject`; `None`
/// otherwise. The signature is not checked here: the authorizer checked it.
fn groups_in_token(token: &str, subject: &str) -> Option<Vec<String>> {
    let mut parts = token.split('.');
    let (_header, payload) = (parts.next()?, parts.next()?);
    let payload: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    if payload.get("sub").and_then(Value::as_str) != Some(subject) {
        return None;
    }
    let mut groups = Vec::new();
    for claim in GROUP_CLAIMS {
        match payload.get(claim) {
            None | Some(Value::Null) => {}
            Some(Value::String(g)) => groups.push(g.clone()),
            // Only strings name groups; any other element names none.
            Some(Value::Array(items)) => {
                groups.extend(items.iter().filter_map(Value::as_str).map(str::to_string))
            }
            Some(_) => {}
        }
    }
    Some(groups)
}

/// Group names from a claim value in the forms API Gateway hands over: its flattening of
/// an array (`[admin ops]`, names separated by single spaces) and a plain string (one
/// name). Nothing else is parsed: a value that looks like JSON is one name like any other,
/// so `["admin"]` (an array holding the name `"admin"`, quotes included, once flattened)
/// is the group `"admin"`, never `admin`.
pub fn parse_flattened_groups(v: &str) -> Vec<String> {
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

    fn admin(pairs: &[(&str, &str)]) -> bool {
        caller_from_claims(&claims(pairs), None).expect("a caller").is_admin
    }

    /// An unsigned token with `payload` (the authorizer has checked the signature).
    fn token(payload: Value) -> String {
        format!("e30.{}.sig", URL_SAFE_NO_PAD.encode(payload.to_string()))
    }

    #[test]
    fn admin_comes_from_either_groups_claim_in_api_gateways_forms() {
        for (k, v) in [("groups", "[admin ops]"), ("cognito:groups", "[admin]"), ("cognito:groups", "admin")]
        {
            assert!(admin(&[("sub", "alice"), (k, v)]), "{k}={v}");
        }
        assert!(!admin(&[("sub", "bob"), ("groups", "[administrators]")]));
    }

    #[test]
    fn a_flattened_group_whose_name_holds_commas_quotes_or_brackets_never_makes_an_admin() {
        for (k, v) in [
            ("groups", r#"["admin"]"#),
            ("groups", r#"["ops","admin"]"#),
            ("groups", "[admin,ops]"),
            ("groups", "admin,ops"),
            ("groups", r#"["[admin]"]"#),
            ("groups", "[[admin]]"),
            ("groups", "admin ops"),
            ("cognito:groups", " admin"),
            ("cognito:groups", "ADMIN"),
        ] {
            assert!(!admin(&[("sub", "eve"), (k, v)]), "{k}={v}");
        }
    }

    #[test]
    fn groups_come_from_the_verified_token_exactly_as_the_issuer_wrote_them() {
        let c = |payload: Value, flattened: &str| {
            let claims = claims(&[("sub", "eve"), ("groups", flattened)]);
            caller_from_claims(&claims, Some(&token(payload))).expect("caller").is_admin
        };
        // A group named "x admin" flattens to "[x admin]", which alone would read as admin.
        assert!(!c(serde_json::json!({"sub": "eve", "groups": ["x admin"]}), "[x admin]"));
        assert!(!c(serde_json::json!({"sub": "eve", "groups": ["\"admin\""]}), r#"["admin"]"#));
        assert!(!c(serde_json::json!({"sub": "eve", "groups": "admin ops"}), "admin ops"));
        assert!(!c(serde_json::json!({"sub": "eve", "groups": [["admin"]]}), "[[admin]]"));
        assert!(c(serde_json::json!({"sub": "eve", "groups": ["ops", "admin"]}), "[ops admin]"));
        assert!(c(serde_json::json!({"sub": "eve", "cognito:groups": "admin"}), "x"));
        // A token of another subject is not the one the claims came from: flattened claims.
        assert!(c(serde_json::json!({"sub": "mallory", "groups": []}), "[admin]"));
        assert!(
            caller_from_claims(&claims(&[("sub", "eve"), ("groups", "[admin]")]), Some("not a jwt"))
                .expect("caller")
                .is_admin
        );
    }

    #[test]
    fn the_subject_is_the_user_id_exactly_as_given() {
        assert_eq!(caller_from_claims(&claims(&[("sub", " Alice ")]), None).unwrap().user_id, " Alice ");
    }

    #[test]
    fn a_token_without_a_subject_is_no_caller() {
        assert_eq!(caller_from_claims(&claims(&[("groups", "[admin]")]), None), None);
        assert_eq!(caller_from_claims(&claims(&[("sub", " ")]), None), None);
        assert_eq!(caller_from_claims(&claims(&[("sub", &"x".repeat(257))]), None), None);
        assert!(caller_from_claims(&claims(&[("sub", &"x".repeat(256))]), None).is_some());
    }

    #[test]
    fn flattening_matches_api_gateway() {
        assert_eq!(flatten_claim(&serde_json::json!(["admin", "ops"])), "[admin ops]");
        assert_eq!(flatten_claim(&serde_json::json!("x")), "x");
    }
}
