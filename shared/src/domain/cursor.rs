//! Opaque, URL-safe, authenticated list cursors. A cursor carries the position after the
//! last item of a page and is bound by an HMAC to the caller and the exact query, so a
//! tampered, truncated, foreign or replayed-with-another-query cursor is rejected.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::DomainError;

type HmacSha256 = Hmac<Sha256>;
const TAG_LEN: usize = 16;

/// Signs and checks cursors with one deployment secret.
#[derive(Clone)]
pub struct CursorCodec {
    key: Vec<u8>,
}

impl std::fmt::Debug for CursorCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CursorCodec(..)")
    }
}

impl CursorCodec {
    pub fn new(secret: &[u8]) -> Self {
        Self { key: secret.to_vec() }
    }

    fn tag(&self, binding: &str, payload: &[u8]) -> Result<HmacSha256, DomainError> {
        let mut mac = HmacSha256::new_from_slice(&self.key).map_err(|_| DomainError::Internal)?;
        mac.update(binding.as_bytes());
        mac.update(&[0]);
        mac.update(payload);
        Ok(mac)
    }

    /// `binding` names the caller and the query (filters and sort); `position` is the
    /// store's resume point.
    pub fn encode(&self, binding: &str, position: &str) -> Result<String, DomainError> {
        let tag = self.tag(binding, position.as_bytes())?.finalize().into_bytes();
        let mut raw = position.as_bytes().to_vec();
        raw.extend_from_slice(&tag[..TAG_LEN]);
        Ok(URL_SAFE_NO_PAD.encode(raw))
    }

    /// The position, if the cursor was made by `encode` with the same binding.
    pub fn decode(&self, binding: &str, cursor: &str) -> Result<String, DomainError> {
        let raw = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| DomainError::InvalidCursor)?;
        if raw.len() <= TAG_LEN || cursor.len() > 2048 {
            return Err(DomainError::InvalidCursor);
        }
        let (payload, tag) = raw.split_at(raw.len() - TAG_LEN);
        self.tag(binding, payload)?.verify_truncated_left(tag).map_err(|_| DomainError::InvalidCursor)?;
        String::from_utf8(payload.to_vec()).map_err(|_| DomainError::InvalidCursor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips_only_for_its_own_binding() {
        let c = CursorCodec::new(b"secret");
        let cur = c.encode("alice|sort=newest", "01ABC").unwrap();
        assert_eq!(c.decode("alice|sort=newest", &cur).unwrap(), "01ABC");
        assert_eq!(c.decode("bob|sort=newest", &cur), Err(DomainError::InvalidCursor));
        assert_eq!(c.decode("alice|sort=oldest", &cur), Err(DomainError::InvalidCursor));
        assert_eq!(
            CursorCodec::new(b"other").decode("alice|sort=newest", &cur),
            Err(DomainError::InvalidCursor)
        );
    }

    #[test]
    fn tampered_or_truncated_cursors_are_rejected() {
        let c = CursorCodec::new(b"secret");
        let cur = c.encode("b", "position-1").unwrap();
        for i in 0..cur.len() {
            let mut bytes = cur.clone().into_bytes();
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let tampered = String::from_utf8(bytes).unwrap();
            if tampered != cur {
                assert_eq!(c.decode("b", &tampered), Err(DomainError::InvalidCursor), "flip at {i}");
            }
            assert_eq!(c.decode("b", &cur[..i]), Err(DomainError::InvalidCursor), "cut at {i}");
        }
        assert_eq!(c.decode("b", "!!not base64!!"), Err(DomainError::InvalidCursor));
    }
}
