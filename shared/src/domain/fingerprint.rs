//! Request fingerprints for idempotency, taken from the request as validation read it
//! (`Canonical`): two bodies that validation reads alike (whatever the key order, white
//! space, `1` or `1.0`, an optional field null or absent) have the same fingerprint.

use serde_json::Value;
use sha2::{Digest, Sha256};

/// A validated request in the form its fingerprint is taken from.
///
/// Contract: two values are equal exactly when their canonical forms are, and the form
/// holds every field that changes what the request does.
pub trait Canonical {
    fn canonical(&self) -> Value;
}

/// The fingerprint of a validated request.
pub fn of_request(r: &impl Canonical) -> String {
    fingerprint(&r.canonical())
}

/// Hex SHA-256 of the canonical form of `v` (object keys sorted, no white space).
pub fn fingerprint(v: &Value) -> String {
    let mut out = String::new();
    canonical(v, &mut out);
    hex(&Sha256::digest(out.as_bytes()))
}

fn canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                canonical(&map[k], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn same_json_in_another_key_order_has_the_same_fingerprint() {
        let a: Value =
            serde_json::from_str(r#"{"quantity": 2, "product_id": "p", "x": {"b": 1, "a": [1, 2]}}"#)
                .unwrap();
        let b: Value =
            serde_json::from_str(r#"{"x":{"a":[1,2],"b":1},"product_id":"p","quantity":2}"#).unwrap();
        assert_eq!(fingerprint(&a), fingerprint(&b));
        assert_ne!(fingerprint(&a), fingerprint(&json!({"quantity": 3, "product_id": "p"})));
    }
}
