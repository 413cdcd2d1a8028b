//! Local stand-in for API Gateway's JWT authorizer: HS256 tokens signed with
//! `JWT_SECRET` (AWS checks the issuer's RSA signature instead). The time claims are
//! checked as API Gateway checks them: `exp`, when present, must be a number after now;
//! `nbf` and `iat`, when present, numbers not after now; all with 5 s leeway. A token
//! without `exp` is accepted, as the contract names no such rule. `sub` is required and
//! must be a non-empty string: it is the user id, used exactly as given.

use http::HeaderMap;
use jsonwebtoken::{decode, Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};
use shared::http::identity::{flatten_claim, Claims};
use shared::http::{bearer_token as bearer, Auth};

pub const DEFAULT_SECRET: &str = "local-dev-secret";

#[derive(Clone)]
pub struct Verifier {
    key: DecodingKey,
    validation: Validation,
}

impl Verifier {
    pub fn new(secret: &str) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        // The time claims are checked below, in one place, for every form they can take.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims = ["sub".to_string()].into_iter().collect();
        Self { key: DecodingKey::from_secret(secret.as_bytes()), validation }
    }

    /// What the authorizer makes of the request's `Authorization` header.
    pub fn authorize(&self, headers: &HeaderMap) -> Auth {
        let Some(value) = headers.get(http::header::AUTHORIZATION) else { return Auth::Anonymous };
        let Some(token) = value.to_str().ok().and_then(bearer) else { return Auth::Rejected };
        match decode::<Map<String, Value>>(token, &self.key, &self.validation) {
            Ok(data) if !claims_acceptable(&data.claims, chrono::Utc::now().timestamp()) => {
                tracing::debug!("token rejected: subject or time claims");
                Auth::Rejected
            }
            Ok(data) => {
                let claims: Claims = data.claims.iter().map(|(k, v)| (k.clone(), flatten_claim(v))).collect();
                Auth::Claims(claims)
            }
            Err(e) => {
                tracing::debug!(error = %e, "token rejected");
                Auth::Rejected
            }
        }
    }
}

const LEEWAY_SECONDS: f64 = 5.0;

/// `sub` a non-empty string; `exp` (if any) a number after `now`; `nbf`, `iat` (if any)
/// numbers not after `now`; leeway 5 s each way.
fn claims_acceptable(claims: &Map<String, Value>, now: i64) -> bool {
    let now = now as f64;
    let sub_ok = claims.get("sub").and_then(Value::as_str).is_some_and(|s| !s.trim().is_empty());
    let time = |k: &str, ok: &dyn Fn(f64) -> bool| match claims.get(k) {
        None => true,
        Some(v) => v.as_f64().is_some_and(ok),
    };
    sub_ok
        && time("exp", &|t| t + LEEWAY_SECONDS > now)
        && time("nbf", &|t| t - LEEWAY_SECONDS <= now)
        && time("iat", &|t| t - LEEWAY_SECONDS <= now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ok(v: Value) -> bool {
        claims_acceptable(v.as_object().expect("object"), 1_000_000)
    }

    #[test]
    fn the_subject_must_be_a_non_empty_string() {
        assert!(ok(json!({"sub": "alice"})));
        for sub in [json!(""), json!("  "), json!(42), json!(null), json!(["a"])] {
            assert!(!ok(json!({ "sub": sub })), "{sub}");
        }
        assert!(!ok(json!({})));
    }

    #[test]
    fn time_claims_are_numbers_on_the_right_side_of_now_with_five_seconds_leeway() {
        assert!(ok(json!({"sub": "a", "exp": 1_000_001, "nbf": 1_000_004, "iat": 1_000_005})));
        assert!(ok(json!({"sub": "a", "exp": 999_996})), "within leeway");
        assert!(!ok(json!({"sub": "a", "exp": 999_995})), "expired");
        assert!(!ok(json!({"sub": "a", "exp": "2000000000"})), "a string is no time");
        assert!(!ok(json!({"sub": "a", "nbf": 1_000_006})), "not yet valid");
        assert!(!ok(json!({"sub": "a", "iat": 1_000_006})), "issued in the future");
        assert!(!ok(json!({"sub": "a", "iat": null})));
    }
}
