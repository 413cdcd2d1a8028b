//! HTTP mapping shared by every Lambda function and the local gateway: a request in
//! platform-neutral form goes through the checks in the contract's order (size, route,
//! token, JSON, validation, role, resource, state) and comes back as a response with
//! `X-Request-Id` set. This layer owns the transport's own failures (`ApiError`) and the
//! one mapping of every failure to problem+json (`problem`).

pub mod docs;
pub mod dto;
pub mod events;
mod handlers;
pub mod identity;
pub mod problem;
pub mod query;
pub mod routes;

use crate::domain::DomainError;
use crate::service::App;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method};
use identity::{caller_from_claims, Claims};
use problem::Problem;
use routes::{resolve, Resolved, Route};
use std::time::Instant;
use tracing::Instrument;

pub type ApiResponse = http::Response<Bytes>;

/// Largest accepted request body.
pub const MAX_BODY_BYTES: usize = 256 * 1024;
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Why a request failed: what a service said, or what only the transport knows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error("request body is not a JSON object")]
    InvalidJson,
    #[error("authentication required")]
    Unauthorized,
    #[error("no such route")]
    RouteNotFound,
    /// The request line is longer than the HTTP server reads (the local gateway's; in
    /// AWS, API Gateway answers these itself).
    #[error("request URI too long")]
    UriTooLong,
    /// The request's header section is larger than the HTTP server reads.
    #[error("request headers too large")]
    HeadersTooLarge,
    /// The request's head is not HTTP/1.1 (a bad method, URI, version or header line).
    #[error("malformed request")]
    MalformedRequest,
}

/// What a dispatch serves.
#[derive(Debug)]
pub enum Serving {
    /// A request the caller resolved already (the local gateway, which resolves once
    /// over the whole API to pick the function: a known path with another method is a
    /// 405).
    Resolved(Resolved),
    /// One Lambda function's routes: a path of another function is a 404, as API Gateway
    /// would never have sent it there.
    Routes(&'static [Route]),
}

/// What the authorizer concluded about the request's token.
#[derive(Debug, Clone)]
pub enum Auth {
    /// No token was presented.
    Anonymous,
    /// A valid token; its claims as API Gateway passes them.
    Claims(Claims),
    /// A token was presented but is malformed, badly signed or expired.
    Rejected,
}

/// A request as both API Gateway (through lambda_http) and the local gateway deliver it.
#[derive(Debug, Clone)]
pub struct ApiRequest {
    pub method: Method,
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub auth: Auth,
    pub request_id: String,
    /// When the platform ends the invocation (Lambda's deadline; the local gateway plays
    /// it from the function's `Timeout`). `None`: no deadline.
    pub deadline: Option<tokio::time::Instant>,
}

/// The request id to use: a well-formed incoming `X-Request-Id` (1..=128 of
/// `[A-Za-z0-9._-]`) is echoed, otherwise the platform's own id.
pub fn request_id(headers: &HeaderMap, platform_id: impl FnOnce() -> String) -> String {
    headers
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            (1..=128).contains(&v.len())
                && v.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        })
        .map_or_else(platform_id, str::to_string)
}

/// Serves one request with the routes of `serving`.
pub async fn dispatch(app: &App, req: ApiRequest, serving: Serving) -> ApiResponse {
    let started = Instant::now();
    let request_id = req.request_id.clone();
    let method = req.method.clone();
    // Every line logged while serving the request (storage warnings included) carries
    // its id through this span.
    let span = tracing::info_span!("request", request_id = %request_id);
    let (route_path, user, mut resp) = route_and_handle(app, req, serving).instrument(span.clone()).await;
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert(REQUEST_ID_HEADER, v);
    }
    span.in_scope(|| {
        tracing::info!(
            request_id,
            method = %method,
            route = route_path,
            status = resp.status().as_u16(),
            user_id = user.as_deref().unwrap_or("-"),
            latency_ms = started.elapsed().as_secs_f64() * 1000.0,
            "request"
        )
    });
    resp
}

async fn route_and_handle(
    app: &App,
    req: ApiRequest,
    serving: Serving,
) -> (&'static str, Option<String>, ApiResponse) {
    let rid = req.request_id.clone();
    if req.body.len() > MAX_BODY_BYTES {
        return ("-", None, Problem::payload_too_large(MAX_BODY_BYTES).into_response(&rid));
    }
    // A function sees another method of its own paths only where API Gateway routed the
    // request there by a pattern (GET /api/reservations/batch reaches GET
    // /api/reservations/{id}); the literal path wins, so it is a 405 there too.
    let resolved = match serving {
        Serving::Resolved(resolved) => resolved,
        Serving::Routes(routes) => resolve(routes, &req.method, &req.path),
    };
    let (route, params) = match resolved {
        Resolved::Found { route, params } => (route, params),
        Resolved::MethodNotAllowed(allow) => {
            return ("-", None, Problem::method_not_allowed(&allow).into_response(&rid))
        }
        _ => return ("-", None, Problem::route_not_found().into_response(&rid)),
    };
    let caller = match (&req.auth, route.public) {
        (_, true) => None,
        (Auth::Claims(claims), false) => match caller_from_claims(claims, bearer(&req.headers)) {
            Some(c) => Some(c),
            None => return (route.path, None, Problem::from(ApiError::Unauthorized).into_response(&rid)),
        },
        (Auth::Anonymous | Auth::Rejected, false) => {
            return (route.path, None, Problem::from(ApiError::Unauthorized).into_response(&rid))
        }
    };
    let user = caller.as_ref().map(|c| c.user_id.clone());
    let cx = handlers::Ctx { params: &params, pattern: route.path, caller: caller.as_ref(), req: &req };
    let resp = match crate::deadline::run(req.deadline, (route.handler)(app, cx)).await {
        Ok(Ok(resp)) => resp,
        Ok(Err(e)) => Problem::from(e).into_response(&rid),
        Err(out_of_time) => {
            tracing::warn!(
                route = route.path,
                wrote = out_of_time.wrote,
                "request cut off before its deadline"
            );
            Problem::from(DomainError::from(out_of_time)).into_response(&rid)
        }
    };
    (route.path, user, resp)
}

/// The request's bearer token (the one the authorizer verified), if it has one.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    bearer_token(headers.get(http::header::AUTHORIZATION)?.to_str().ok()?)
}

/// The token of an `Authorization: Bearer <token>` value (scheme case-insensitive).
pub fn bearer_token(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim().split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty()).then(|| token.trim())
}

/// A JSON response.
pub(crate) fn json_response(status: u16, body: impl Into<Bytes>) -> ApiResponse {
    let mut resp = ApiResponse::new(body.into());
    *resp.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::OK);
    resp.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}
