//! Who is asking: the authenticated caller every service receives, and what their role
//! lets them see. How a caller is read from a token is the HTTP layer's business.

pub const ADMIN_GROUP: &str = "admin";

/// Longest usable user id: user ids go into index keys, and this keeps the longest key far
/// under DynamoDB's limits (Cognito's `sub` is a 36-character UUID).
pub const MAX_USER_ID_CHARS: usize = 256;

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub user_id: String,
    pub is_admin: bool,
}

impl Caller {
    pub fn may_see(&self, owner: &str) -> bool {
        self.is_admin || self.user_id == owner
    }
}
