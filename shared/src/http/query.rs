//! Query-string parsing: every parameter must be known and given at most once.

use crate::domain::{DomainError, FieldError};
use std::collections::BTreeMap;

pub const DEFAULT_LIMIT: usize = 20;
pub const MAX_LIMIT: usize = 100;

/// Parses `query`, allowing only `allowed` names, each once. Unknown or repeated
/// parameters are a 422.
pub fn parse(query: Option<&str>, allowed: &[&str]) -> Result<BTreeMap<String, String>, DomainError> {
    let mut out = BTreeMap::new();
    let mut errors = Vec::new();
    for (k, v) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        if !allowed.contains(&k.as_ref()) {
            errors.push(FieldError::new(k.as_ref(), "unknown query parameter"));
        } else if out.insert(k.to_string(), v.to_string()).is_some() {
            errors.push(FieldError::new(k.as_ref(), "must be given at most once"));
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(DomainError::Validation(errors))
    }
}

/// `limit`: an integer in 1..=100, default 20.
pub fn limit(params: &BTreeMap<String, String>) -> Result<usize, DomainError> {
    match params.get("limit") {
        None => Ok(DEFAULT_LIMIT),
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
            _ => Err(DomainError::invalid("limit", "must be an integer from 1 to 100")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_and_repeated_parameters_are_rejected() {
        assert!(parse(Some("limit=5&cursor=x"), &["limit", "cursor"]).is_ok());
        assert!(matches!(parse(Some("limt=5"), &["limit"]), Err(DomainError::Validation(_))));
        assert!(matches!(parse(Some("limit=5&limit=6"), &["limit"]), Err(DomainError::Validation(_))));
    }

    #[test]
    fn limit_is_1_to_100_with_default_20() {
        let p = |q| parse(Some(q), &["limit"]).and_then(|m| limit(&m));
        assert_eq!(p(""), Ok(20));
        assert_eq!(p("limit=100"), Ok(100));
        for bad in ["limit=0", "limit=101", "limit=abc", "limit=-1", "limit=2.5", "limit="] {
            assert!(p(bad).is_err(), "{bad}");
        }
    }
}
