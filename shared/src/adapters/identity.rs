//! The caller, from the JWT claims the authorizer hands over. In AWS the API Gateway HTTP
//! API authorizer validates the token and passes claims as strings (arrays flattened to
//! `"[admin ops]"`); locally the gateway verifies the token and passes the same shape.

use std::collections::HashMap;

pub const ADMIN_GROUP: &str = "admin";

/// Claims as the authorizer passes them: every value a string.
pub type Claims = HashMap<String, String>;

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub user_id: String,
    pub is_admin: bool,
}

impl Caller {
    /// `None` when there is no usable `sub`.
    pub fn from_claims(claims: &Claims) -> Option<Self> {
        let user_id = claims.get("sub").map(|s| s.trim()).filter(|s| !s.is_empty())?;
        let is_admin = ["groups", "cognito:groups"]
            .iter()
            .filter_map(|k| claims.get(*k))
            .any(|v| parse_groups(v).iter().any(|g| g == ADMIN_GROUP));
        Some(Self { user_id: user_id.to_string(), is_admin })
    }

    pub fn may_see(&self, owner: &str) -> bool {
        self.is_admin || self.user_id == owner
    }
}

/// Groups from a claim value in any of the forms seen in practice: a JSON array
/// (`["admin","ops"]`), API Gateway's flattened form (`[admin ops]`), or a single name
/// or comma/space separated list (`admin`).
pub fn parse_groups(v: &str) -> Vec<String> {
    if let Ok(list) = serde_json::from_str::<Vec<String>>(v) {
        return list;
    }
    v.trim()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|s| !s.is_empty())
        .map(|s| s.trim_matches('"').to_string())
        .collect()
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
            let c = Caller::from_claims(&claims(&[("sub", "alice"), (k, v)])).unwrap();
            assert!(c.is_admin, "{k}={v}");
        }
        let c = Caller::from_claims(&claims(&[("sub", "bob"), ("groups", "[administrators]")])).unwrap();
        assert!(!c.is_admin);
    }

    #[test]
    fn a_token_without_a_subject_is_no_caller() {
        assert_eq!(Caller::from_claims(&claims(&[("groups", "[admin]")])), None);
        assert_eq!(Caller::from_claims(&claims(&[("sub", " ")])), None);
    }

    #[test]
    fn flattening_matches_api_gateway() {
        assert_eq!(flatten_claim(&serde_json::json!(["admin", "ops"])), "[admin ops]");
        assert_eq!(flatten_claim(&serde_json::json!("x")), "x");
    }
}
