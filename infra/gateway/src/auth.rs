//! Local stand-in for API Gateway's JWT authorizer: HS256 tokens signed with
//! `JWT_SECRET` (AWS checks the issuer's RSA signature instead). The time claims are
//! checked as API Gateway checks them: `exp`, when present, must be a number after now;
//! `nbf` and `iat`, when present, numbers not after now; all with 5 s leeway. A token
//! without `exp` is accepted, as the contract names no such rule. `sub` is required and
//! must be a non-empty string: it is the user id, used exactly as given. When an issuer
//! and audiences are configured (`JWT_ISSUER`, `JWT_AUDIENCE`: the template's
//! `JwtIssuer`/`JwtAudience`), a token must name that issuer in `iss` and one of the
//! audiences in `aud` (a string or a list) or, as Cognito's access tokens do, in
//! `client_id`: what API Gateway's JWT authorizer checks.

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
    /// The issuer tokens must name, when one is configured.
    issuer: Option<String>,
    /// The audiences of which a token must name one, when any are configured.
    audiences: Vec<String>,
}

impl Verifier {
    /// A verifier of tokens signed with `secret`; an empty secret is refused.
    pub fn new(secret: &str) -> Result<Self, String> {
        let mut validation = Validation::new(Algorithm::HS256);
        // The time claims are checked below, in one place, for every form they can take.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims = ["sub".to_string()].into_iter().collect();
        let key = DecodingKey::from_secret(secret.as_bytes()).map_err(|e| format!("JWT_SECRET: {e}"))?;
        Ok(Self { key, validation, issuer: None, audiences: Vec::new() })
    }

    /// Also requires `iss` to be `issuer` (when given) and `aud` or `client_id` to name one
    /// of `audiences` (when any are given), as API Gateway does for the template's
    /// `JwtIssuer` and `JwtAudience`.
    pub fn with_issuer(mut self, issuer: Option<String>, audiences: Vec<String>) -> Self {
        self.issuer = issuer.filter(|i| !i.is_empty());
        self.audiences = audiences.into_iter().filter(|a| !a.is_empty()).collect();
        self
    }

    /// `JWT_ISSUER` and `JWT_AUDIENCE` (comma-separated), empty meaning unset.
    pub fn from_env_issuer(self) -> Self {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let audiences = var("JWT_AUDIENCE")
            .map(|a| a.split(',').map(|s| s.trim().to_string()).collect())
            .unwrap_or_default();
        self.with_issuer(var("JWT_ISSUER"), audiences)
    }

    /// Whether the issuer and audience claims are what is configured (the signature and
    /// the time claims aside).
    pub fn names_us(&self, claims: &Map<String, Value>) -> bool {
        let issuer_ok =
            self.issuer.as_deref().is_none_or(|i| claims.get("iss").and_then(Value::as_str) == Some(i));
        fn named(v: Option<&Value>) -> Vec<&str> {
            match v {
                Some(Value::String(s)) => vec![s.as_str()],
                Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
                _ => Vec::new(),
            }
        }
        let audience_ok = self.audiences.is_empty()
            || named(claims.get("aud"))
                .into_iter()
                .chain(named(claims.get("client_id")))
                .any(|a| self.audiences.iter().any(|ours| ours == a));
        issuer_ok && audience_ok
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
            Ok(data) if !self.names_us(&data.claims) => {
                tracing::debug!("token rejected: issuer or audience");
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

    fn token(claims: Value) -> HeaderMap {
        let t = jsonwebtoken::encode(
            &jsonwebtoken::Header::default(),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(b"k").expect("key"),
        )
        .expect("token");
        let mut h = HeaderMap::new();
        h.insert(http::header::AUTHORIZATION, format!("Bearer {t}").parse().expect("header"));
        h
    }

    #[test]
    fn with_an_issuer_and_audiences_configured_only_tokens_naming_them_pass() {
        let v = Verifier::new("k")
            .expect("verifier")
            .with_issuer(Some("https://issuer.example".into()), vec!["app1".into(), "app2".into()]);
        let ok = |claims: Value| matches!(v.authorize(&token(claims)), Auth::Claims(_));
        let iss = "https://issuer.example";
        assert!(ok(json!({"sub": "a", "iss": iss, "aud": "app2"})));
        assert!(ok(json!({"sub": "a", "iss": iss, "aud": ["x", "app1"]})));
        assert!(ok(json!({"sub": "a", "iss": iss, "client_id": "app1"})), "a Cognito access token");
        assert!(!ok(json!({"sub": "a", "iss": "https://other.example", "aud": "app1"})), "another issuer");
        assert!(!ok(json!({"sub": "a", "aud": "app1"})), "no issuer");
        assert!(!ok(json!({"sub": "a", "iss": iss, "aud": "app3"})), "another audience");
        assert!(!ok(json!({"sub": "a", "iss": iss})), "no audience");
        assert!(!ok(json!({"sub": "a", "iss": iss, "aud": 1})), "an audience that is no string");
        // Without configuration (make dev's default), neither is required.
        assert!(matches!(
            Verifier::new("k").expect("verifier").authorize(&token(json!({"sub": "a"}))),
            Auth::Claims(_)
        ));
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
