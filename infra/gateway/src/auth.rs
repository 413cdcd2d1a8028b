//! Local stand-in for API Gateway's JWT authorizer: HS256 tokens signed with
//! `JWT_SECRET`. `alg: none` and every other algorithm, bad signatures and tokens whose
//! `exp` has passed (5 s leeway) are rejected. A token without `exp` is accepted, as the
//! contract names no such rule; `sub` is required (it is the user id).

use http::HeaderMap;
use jsonwebtoken::{decode, Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};
use shared::adapters::identity::{flatten_claim, Claims};
use shared::http::Auth;

pub const DEFAULT_SECRET: &str = "local-dev-secret";

#[derive(Clone)]
pub struct Verifier {
    key: DecodingKey,
    validation: Validation,
}

impl Verifier {
    pub fn new(secret: &str) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 5;
        validation.validate_aud = false;
        validation.required_spec_claims = ["sub".to_string()].into_iter().collect();
        Self { key: DecodingKey::from_secret(secret.as_bytes()), validation }
    }

    /// What the authorizer makes of the request's `Authorization` header.
    pub fn authorize(&self, headers: &HeaderMap) -> Auth {
        let Some(value) = headers.get(http::header::AUTHORIZATION) else { return Auth::Anonymous };
        let Some(token) = value.to_str().ok().and_then(bearer) else { return Auth::Rejected };
        match decode::<Map<String, Value>>(token, &self.key, &self.validation) {
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

fn bearer(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim().split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty()).then(|| token.trim())
}
