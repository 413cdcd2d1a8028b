//! problem+json responses (RFC 9457). `From<ApiError>` (with `From<DomainError>` for the
//! domain's part) is the one place that decides a failure's status, code and wording.

use super::{ApiError, ApiResponse};
use crate::domain::{DomainError, FieldError};
use bytes::Bytes;
use http::{header, HeaderValue, StatusCode};
use serde::Serialize;

/// How long a client should wait after a 503.
const RETRY_AFTER_SECONDS: u32 = 1;

#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub type_: String,
    pub title: &'static str,
    /// The HTTP status, written as `status` unless `with_entity_status` replaced that.
    #[serde(skip)]
    pub status: u16,
    /// The `status` member as written: the HTTP status, or the state an entity is in,
    /// where the contract gives that code's body the entity's `status`.
    #[serde(rename = "status")]
    status_member: StatusMember,
    pub detail: String,
    pub code: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldError>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub available: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_hand: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remaining: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub returnable: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    #[serde(skip)]
    allow: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
enum StatusMember {
    Http(u16),
    Entity(&'static str),
}

impl Problem {
    pub fn new(
        status: StatusCode,
        code: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            type_: format!("https://stockhold.dev/problems/{}", code.replace('_', "-")),
            title,
            status: status.as_u16(),
            status_member: StatusMember::Http(status.as_u16()),
            detail: detail.into(),
            code,
            errors: None,
            available: None,
            on_hand: None,
            allowed: None,
            limit: None,
            remaining: None,
            product_id: None,
            returnable: None,
            request_id: None,
            allow: None,
        }
    }

    /// On `transfer_not_in_transit` and `waitlist_entry_not_waiting`: the contract gives
    /// those codes' bodies the entity's `status`, written in place of the HTTP status
    /// (the response's own status line still carries that).
    fn with_entity_status(&mut self, status: &'static str) {
        self.status_member = StatusMember::Entity(status);
    }

    pub fn route_not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "Not found", "no such route")
    }

    pub fn method_not_allowed(allow: &[&str]) -> Self {
        let mut p = Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "Method not allowed",
            format!("this route allows {}", allow.join(", ")),
        );
        p.allow = Some(allow.join(", "));
        p
    }

    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "Payload too large",
            format!("request bodies are limited to {limit} bytes"),
        )
    }

    pub fn into_response(mut self, request_id: &str) -> ApiResponse {
        self.request_id = Some(request_id.to_string());
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).unwrap_or_else(|_| b"{}".to_vec());
        let mut resp = ApiResponse::new(Bytes::from(body));
        *resp.status_mut() = status;
        let h = resp.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if let Some(allow) = self.allow.as_deref().and_then(|a| HeaderValue::from_str(a).ok()) {
            h.insert(header::ALLOW, allow);
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            h.insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
        }
        resp
    }
}

impl From<ApiError> for Problem {
    fn from(e: ApiError) -> Self {
        match e {
            ApiError::Domain(e) => e.into(),
            ApiError::InvalidJson => Problem::new(
                StatusCode::BAD_REQUEST,
                "invalid_json",
                "Invalid JSON",
                "the request body must be a JSON object",
            ),
            ApiError::UriTooLong => Problem::new(
                StatusCode::URI_TOO_LONG,
                "uri_too_long",
                "URI too long",
                "the request's path and query are too long",
            ),
            ApiError::HeadersTooLarge => Problem::new(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "headers_too_large",
                "Request headers too large",
                "the request's headers are too large",
            ),
            ApiError::MalformedRequest => Problem::new(
                StatusCode::BAD_REQUEST,
                "malformed_request",
                "Malformed request",
                "the request's method, path, version or a header line cannot be read",
            ),
            ApiError::Unauthorized => Problem::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "Unauthorized",
                "a valid bearer token is required",
            ),
            ApiError::RouteNotFound => Problem::route_not_found(),
        }
    }
}

impl From<DomainError> for Problem {
    fn from(e: DomainError) -> Self {
        use DomainError::*;
        use StatusCode as S;
        match e {
            InvalidCursor => Problem::new(
                S::BAD_REQUEST,
                "invalid_cursor",
                "Invalid cursor",
                "the cursor is malformed or does not belong to this query",
            ),
            Forbidden => Problem::new(S::FORBIDDEN, "forbidden", "Forbidden", "your role may not do this"),
            NotFound(what) => {
                Problem::new(S::NOT_FOUND, "not_found", "Not found", format!("{what} not found"))
            }
            Validation(errors) => {
                let detail = errors
                    .iter()
                    .map(|e| format!("{}: {}", e.field, e.message))
                    .collect::<Vec<_>>()
                    .join("; ");
                let mut p =
                    Problem::new(S::UNPROCESSABLE_ENTITY, "validation_failed", "Validation failed", detail);
                p.errors = Some(errors);
                p
            }
            InsufficientStock { available } => {
                let mut p = Problem::new(
                    S::CONFLICT,
                    "insufficient_stock",
                    "Insufficient stock",
                    format!("only {available} units available"),
                );
                p.available = Some(available);
                p
            }
            StockChanged { on_hand } => {
                let mut p = Problem::new(
                    S::CONFLICT,
                    "stock_changed",
                    "Stock changed",
                    format!("the count expected another number: {on_hand} on hand now"),
                );
                p.on_hand = Some(on_hand);
                p
            }
            HoldLimitReached { limit } => {
                let mut p = Problem::new(
                    S::CONFLICT,
                    "hold_limit_reached",
                    "Hold limit reached",
                    format!("you already hold {limit} active reservations; release one or turn them into an order"),
                );
                p.limit = Some(limit);
                p
            }
            OnLine { product_id, cause } => {
                let mut p = Problem::from(*cause);
                p.product_id = Some(product_id);
                p
            }
            PurchaseLimitReached { limit, remaining } => {
                let mut p = Problem::new(
                    S::CONFLICT,
                    "purchase_limit_reached",
                    "Purchase limit reached",
                    format!("at most {limit} units per customer; you may hold {remaining} more"),
                );
                p.limit = Some(limit);
                p.remaining = Some(remaining);
                p
            }
            ProductInactive => Problem::new(
                S::CONFLICT,
                "product_inactive",
                "Product inactive",
                "the product is archived and takes no new holds",
            ),
            PreconditionFailed => Problem::new(
                S::PRECONDITION_FAILED,
                "precondition_failed",
                "Precondition failed",
                "If-Match does not match the product's current ETag; read it again",
            ),
            ExtensionLimitReached => Problem::new(
                S::CONFLICT,
                "extension_limit_reached",
                "Extension limit reached",
                "the hold already ends as late as it may; order or release it",
            ),
            ReservationNotActive => Problem::new(
                S::CONFLICT,
                "reservation_not_active",
                "Reservation not active",
                "the reservation is expired, released or converted",
            ),
            TransferNotInTransit { status } => {
                let mut p = Problem::new(
                    S::CONFLICT,
                    "transfer_not_in_transit",
                    "Transfer not in transit",
                    format!("the transfer is already {status}"),
                );
                p.with_entity_status(status);
                p
            }
            StockAvailable { available } => {
                let mut p = Problem::new(
                    S::CONFLICT,
                    "stock_available",
                    "Stock available",
                    format!("{available} units can be held now; hold them instead of waiting"),
                );
                p.available = Some(available);
                p
            }
            WaitlistEntryNotWaiting { status } => {
                let mut p = Problem::new(
                    S::CONFLICT,
                    "waitlist_entry_not_waiting",
                    "Waitlist entry not waiting",
                    format!("the entry is already {status}"),
                );
                p.with_entity_status(status);
                p
            }
            OrderNotReturnable => Problem::new(
                S::CONFLICT,
                "order_not_returnable",
                "Order not returnable",
                "only a delivered order takes returns, until all of it is back",
            ),
            ReturnExceedsOrder { product_id, returnable } => {
                let mut p = Problem::new(
                    S::CONFLICT,
                    "return_exceeds_order",
                    "Return exceeds order",
                    format!("only {returnable} units of the product are left to return"),
                );
                p.product_id = Some(product_id);
                p.returnable = Some(returnable);
                p
            }
            InvalidTransition { allowed } => {
                let detail = if allowed.is_empty() {
                    "no status change is allowed from the current status".to_string()
                } else {
                    format!("from the current status the order may only become: {}", allowed.join(", "))
                };
                let mut p = Problem::new(S::CONFLICT, "invalid_transition", "Invalid transition", detail);
                p.allowed = Some(allowed);
                p
            }
            Conflict(detail) => Problem::new(S::CONFLICT, "conflict", "Conflict", detail),
            IdempotencyInProgress => Problem::new(
                S::CONFLICT,
                "idempotency_in_progress",
                "Request in progress",
                "a request with this Idempotency-Key is still being processed; retry later",
            ),
            IdempotencyKeyReused => Problem::new(
                S::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                "Idempotency-Key reused",
                "this Idempotency-Key was used with a different request",
            ),
            Unavailable => Problem::new(
                S::SERVICE_UNAVAILABLE,
                "unavailable",
                "Service unavailable",
                "storage is busy or unreachable; nothing was changed; retry later",
            ),
            OutcomeUnknown => Problem::new(
                S::SERVICE_UNAVAILABLE,
                "unavailable",
                "Service unavailable",
                "storage did not confirm a change it was sent, so its outcome is unknown; read before \
                 retrying, or retry with the same Idempotency-Key, which is always safe",
            ),
            OutOfTime { wrote: false } => Problem::new(
                S::SERVICE_UNAVAILABLE,
                "unavailable",
                "Service unavailable",
                "storage did not answer in time; nothing was changed; retry later",
            ),
            OutOfTime { wrote: true } => Problem::new(
                S::SERVICE_UNAVAILABLE,
                "unavailable",
                "Service unavailable",
                "the request ran out of time after sending a change, so its outcome is unknown; read before \
                 retrying, or retry with the same Idempotency-Key, which is always safe",
            ),
            Internal => Problem::new(
                S::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal error",
                "an unexpected error occurred",
            ),
        }
    }
}
