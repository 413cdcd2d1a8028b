//! Entity ids: the ones we issue (ULIDs, time-sortable so that id order is creation
//! order) and the ones clients name, each kind its own type, parsed once at the edge by
//! the one id rule.

use chrono::{DateTime, Utc};
use std::time::{Duration, UNIX_EPOCH};

/// A new ULID whose time part is `now` (the injected clock), so ids stay sortable by
/// creation time in tests that move time; the rest is random.
pub fn new_id(now: DateTime<Utc>) -> String {
    let ms = u64::try_from(now.timestamp_millis()).unwrap_or(0);
    ulid::Ulid::from_datetime(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

/// Longest id a client may name. The ids we issue are 26 characters; a longer one could
/// exceed DynamoDB's key size, so it is refused before any call.
pub const MAX_ID_CHARS: usize = 128;

/// Why a string is no id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("must be 1 to {MAX_ID_CHARS} characters")]
pub struct IdError;

/// An id a client names. Contract: `parse` accepts exactly the strings of 1 to
/// `MAX_ID_CHARS` characters (the one id rule) and keeps them unchanged; a value of the
/// type has passed it.
pub trait Id: Sized + AsRef<str> {
    fn parse(s: &str) -> Result<Self, IdError>;
}

/// Declares an id type: a string that passed the id rule, read as `&str` (`Deref`) and
/// written to JSON as the string.
macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl Id for $name {
            fn parse(s: &str) -> Result<Self, IdError> {
                if (1..=MAX_ID_CHARS).contains(&s.chars().count()) {
                    Ok(Self(s.to_string()))
                } else {
                    Err(IdError)
                }
            }
        }

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_type!(
    /// A product's id as a request names it (body or path).
    ProductId
);
id_type!(
    /// A reservation's id as a request names it (an order's `reservation_ids`, a path).
    ReservationId
);
id_type!(
    /// An order's id as a path names it.
    OrderId
);
id_type!(
    /// A transfer's id as a path names it.
    TransferId
);
id_type!(
    /// The id of an entity of any type, as the audit log's filter names it.
    EntityId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_is_one_to_128_characters_counted_as_characters_not_bytes() {
        assert_eq!(ProductId::parse(""), Err(IdError));
        assert!(ProductId::parse("x").is_ok());
        assert!(OrderId::parse(&"é".repeat(MAX_ID_CHARS)).is_ok(), "128 characters, 256 bytes");
        assert_eq!(ReservationId::parse(&"a".repeat(MAX_ID_CHARS + 1)), Err(IdError));
        assert_eq!(&*EntityId::parse("01ABC").expect("id"), "01ABC");
    }
}
