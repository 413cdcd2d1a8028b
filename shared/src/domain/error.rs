//! The one error type every service returns. The HTTP layer maps it to problem+json in
//! exactly one place (`http::problem`); nothing else decides status codes.

use thiserror::Error;

/// One invalid input field, reported back in the problem body's `errors` list.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }
}

/// Why a request could not be served. Variants carry only what a client may see;
/// internal causes are logged where they happen and never travel in this type.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DomainError {
    #[error("cursor is not valid for this query")]
    InvalidCursor,
    #[error("not allowed for this role")]
    Forbidden,
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    #[error("insufficient stock: {available} available")]
    InsufficientStock { available: i64 },
    /// A count's `expected_on_hand` is not the current `on_hand`.
    #[error("stock changed: {on_hand} on hand")]
    StockChanged { on_hand: i64 },
    #[error("reservation is not active")]
    ReservationNotActive,
    /// A receive or cancel of a transfer already received or cancelled (`status`).
    #[error("transfer is not in transit")]
    TransferNotInTransit { status: &'static str },
    /// A return for an order that is not delivered (or was fully returned).
    #[error("order is not returnable")]
    OrderNotReturnable,
    /// A return asks for more units of `product_id` than the `returnable` left.
    #[error("return exceeds the order: {returnable} of {product_id} returnable")]
    ReturnExceedsOrder { product_id: String, returnable: i64 },
    /// Joining a waitlist while a hold could be filled now: `available` units beyond the
    /// queue's.
    #[error("stock available: {available}")]
    StockAvailable { available: i64 },
    /// Leaving a waitlist entry that is no longer waiting (`status`: offered or expired).
    #[error("waitlist entry is not waiting")]
    WaitlistEntryNotWaiting { status: &'static str },
    /// The caller already holds `limit` active reservations.
    #[error("hold limit reached")]
    HoldLimitReached { limit: i64 },
    /// The product's `max_per_customer` would be exceeded; `remaining` is how many more
    /// units this customer may still hold.
    #[error("purchase limit reached")]
    PurchaseLimitReached { limit: i64, remaining: i64 },
    /// A line of a batch hold failed: `cause` names why, for the product of the first
    /// failing line in request order.
    #[error("{cause} (product {product_id})")]
    OnLine { product_id: String, cause: Box<DomainError> },
    /// The product is archived: it takes no new holds.
    #[error("product inactive")]
    ProductInactive,
    /// `If-Match` named no current version of the product.
    #[error("precondition failed")]
    PreconditionFailed,
    /// The hold already ends as late as an extension may take it.
    #[error("extension limit reached")]
    ExtensionLimitReached,
    /// An order status change the table does not allow from the current status; carries
    /// the allowed targets, sorted.
    #[error("invalid transition")]
    InvalidTransition { allowed: Vec<String> },
    #[error("conflict: {0}")]
    Conflict(&'static str),
    #[error("a request with this Idempotency-Key is still being processed")]
    IdempotencyInProgress,
    #[error("Idempotency-Key was used with a different request")]
    IdempotencyKeyReused,
    /// Storage refused or could not be reached; nothing was changed.
    #[error("storage unavailable")]
    Unavailable,
    /// A change was sent to storage and no answer says whether it applied.
    #[error("outcome unknown")]
    OutcomeUnknown,
    /// The request ran out of time before its deadline; `wrote`: a write had been sent,
    /// so its outcome is unknown.
    #[error("out of time")]
    OutOfTime { wrote: bool },
    #[error("internal error")]
    Internal,
}

impl DomainError {
    /// A 422 for a single field.
    pub fn invalid(field: &str, message: &str) -> Self {
        Self::Validation(vec![FieldError::new(field, message)])
    }
}
