//! Adapter from API Gateway HTTP API events (through lambda_http) to `http::dispatch`
//! and back. The authorizer has already validated the token; its claims arrive in the
//! request context.

/// The Lambda runtimes, re-exported so that each function crate depends on `shared` and
/// `tokio` only: `sam build` compiles every function as its own package, and one shared
/// dependency graph lets the nine builds reuse one compiled tree instead of nine.
pub use lambda_http;
pub use lambda_runtime;

use crate::http::{dispatch, request_id, ApiRequest, Auth};
use crate::service::App;
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};

/// Serves one API Gateway request for the routes of `function`.
pub async fn handle(app: &App, function: &str, event: Request) -> Response<Body> {
    let (auth, platform_id) = match event.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => {
            let claims = ctx.authorizer.as_ref().and_then(|a| a.jwt.as_ref()).map(|j| j.claims.clone());
            (claims.map_or(Auth::Anonymous, Auth::Claims), ctx.request_id.clone())
        }
        _ => (Auth::Anonymous, None),
    };
    let deadline = event.lambda_context_ref().map(|c| crate::deadline::from_epoch_millis(c.deadline));
    let (parts, body) = event.into_parts();
    let request_id =
        request_id(&parts.headers, || platform_id.unwrap_or_else(|| ulid::Ulid::new().to_string()));
    let req = ApiRequest {
        method: parts.method,
        path: parts.uri.path().to_string(),
        query: parts.uri.query().map(str::to_string),
        headers: parts.headers,
        body: bytes::Bytes::from(body.to_vec()),
        auth,
        request_id,
        deadline,
    };
    let (parts, body) = dispatch(app, req, Some(function)).await.into_parts();
    let body = match String::from_utf8(body.to_vec()) {
        Ok(text) => Body::Text(text),
        Err(e) => Body::Binary(e.into_bytes()),
    };
    Response::from_parts(parts, body)
}
