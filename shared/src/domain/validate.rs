//! Turns an untyped JSON object into validated values, collecting every field error so
//! that a client sees all problems at once. Unknown fields are errors (docs/api.md).

use super::{DomainError, FieldError};
use serde_json::{Map, Value};
use std::collections::BTreeSet;

/// Walks the fields of one object; `finish` reports unknown fields and all errors.
pub struct Fields<'a> {
    obj: &'a Map<String, Value>,
    seen: BTreeSet<&'static str>,
    errors: Vec<FieldError>,
}

impl<'a> Fields<'a> {
    pub fn new(obj: &'a Map<String, Value>) -> Self {
        Self { obj, seen: BTreeSet::new(), errors: Vec::new() }
    }

    pub fn error(&mut self, field: &str, message: impl Into<String>) {
        self.errors.push(FieldError::new(field, message));
    }

    /// Counts `name` as known (a field handled outside `optional`/`required`).
    pub fn mark_seen(&mut self, name: &'static str) {
        self.seen.insert(name);
    }

    fn get(&mut self, name: &'static str) -> Option<&'a Value> {
        self.seen.insert(name);
        match self.obj.get(name) {
            None | Some(Value::Null) => None,
            Some(v) => Some(v),
        }
    }

    /// Refuses an explicit null for each of `names`: where the contract gives a field no
    /// null, a null would otherwise read as absent and be silently ignored.
    pub fn not_null(&mut self, names: &[&'static str]) {
        for &name in names {
            if self.obj.get(name).is_some_and(Value::is_null) {
                self.error(name, "must not be null");
            }
        }
    }

    /// An optional value parsed by `parse`; `None` when absent or null.
    pub fn optional<T>(
        &mut self,
        name: &'static str,
        parse: impl FnOnce(&'a Value) -> Result<T, String>,
    ) -> Option<T> {
        let v = self.get(name)?;
        match parse(v) {
            Ok(t) => Some(t),
            Err(msg) => {
                self.error(name, msg);
                None
            }
        }
    }

    /// A required value; records "is required" when absent.
    pub fn required<T>(
        &mut self,
        name: &'static str,
        parse: impl FnOnce(&'a Value) -> Result<T, String>,
    ) -> Option<T> {
        if self.obj.get(name).is_none_or(Value::is_null) {
            self.seen.insert(name);
            self.error(name, "is required");
            return None;
        }
        self.optional(name, parse)
    }

    /// Ends the walk: unknown fields and collected errors become one 422; without any,
    /// `build` makes the value from the fields read. `build` sees `None` only for fields
    /// that already recorded an error (a missing required field says "is required"), so
    /// it is never the reason for a refusal.
    pub fn finish<T>(mut self, build: impl FnOnce() -> Option<T>) -> Result<T, DomainError> {
        let unknown: Vec<String> =
            self.obj.keys().filter(|k| !self.seen.contains(k.as_str())).cloned().collect();
        for k in unknown {
            self.error(&k, "unknown field");
        }
        match build() {
            Some(value) if self.errors.is_empty() => Ok(value),
            _ => Err(DomainError::Validation(self.errors)),
        }
    }
}

/// The `items` of a body made of product lines: an array of 1..=`max` objects (`what`
/// names one in the message), each read by `parse`, no product twice. A line's own errors
/// go to `errors` under `items[i].<field>` (`items[i]` for a line that is not an object),
/// a product repeated under `items[i].product_id`, so that one 422 names them all.
pub fn product_lines<T, K: Eq + std::hash::Hash>(
    v: &Value,
    max: usize,
    what: &str,
    parse: impl Fn(&Map<String, Value>) -> Result<T, DomainError>,
    product_of: impl Fn(&T) -> K,
    errors: &mut Vec<(String, String)>,
) -> Result<Vec<T>, String> {
    let items = v.as_array().ok_or_else(|| format!("must be an array of {what}s"))?;
    if items.is_empty() || items.len() > max {
        return Err(format!("must hold 1 to {max} lines"));
    }
    let mut lines = Vec::with_capacity(items.len());
    let mut seen = std::collections::HashSet::new();
    for (i, item) in items.iter().enumerate() {
        let parsed = match item.as_object() {
            Some(o) => parse(o),
            None => Err(DomainError::invalid("", "must be an object")),
        };
        match parsed {
            Ok(line) if !seen.insert(product_of(&line)) => {
                errors.push((format!("items[{i}].product_id"), "the product is listed twice".to_string()))
            }
            Ok(line) => lines.push(line),
            Err(DomainError::Validation(line_errors)) => errors.extend(line_errors.into_iter().map(|e| {
                let field = if e.field.is_empty() {
                    format!("items[{i}]")
                } else {
                    format!("items[{i}].{}", e.field)
                };
                (field, e.message)
            })),
            Err(other) => return Err(other.to_string()),
        }
    }
    Ok(lines)
}

/// A JSON integer (no fraction, no string) inside `range`.
pub fn int_in(v: &Value, min: i64, max: i64) -> Result<i64, String> {
    // JSON has one number type: `2.0` is the integer 2 (as JSON Schema counts it), while
    // `2.5` is not an integer. Beyond 2^53 a float no longer names one integer.
    const EXACT: f64 = 9_007_199_254_740_992.0;
    let n = v
        .as_i64()
        .or_else(|| v.as_f64().filter(|f| f.fract() == 0.0 && f.abs() <= EXACT).map(|f| f as i64))
        .ok_or_else(|| "must be an integer".to_string())?;
    if n < min || n > max {
        return Err(format!("must be between {min} and {max}"));
    }
    Ok(n)
}

/// A JSON string.
pub fn string(v: &Value) -> Result<&str, String> {
    v.as_str().ok_or_else(|| "must be a string".to_string())
}

/// Characters allowed by a pattern such as `[A-Za-z0-9._-]{1,64}`.
pub fn matches_charset(s: &str, min: usize, max: usize, allowed: impl Fn(char) -> bool) -> bool {
    let n = s.chars().count();
    n >= min && n <= max && s.chars().all(allowed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn integers_are_numbers_without_a_fraction_as_json_schema_counts_them() {
        assert_eq!(int_in(&json!(2), 0, 10), Ok(2));
        assert_eq!(int_in(&json!(2.0), 0, 10), Ok(2));
        assert_eq!(int_in(&json!(-3.0), -5, 10), Ok(-3));
        for bad in [json!(2.5), json!("2"), json!(null), json!(1e300), json!(true)] {
            assert!(int_in(&bad, i64::MIN, i64::MAX).is_err(), "{bad}");
        }
        assert!(int_in(&json!(11.0), 0, 10).is_err(), "range applies to floats too");
    }
}
