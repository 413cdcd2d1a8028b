//! Adapter from API Gateway HTTP API events (through lambda_http) to `http::dispatch`
//! and back, and the one entry point of every HTTP function. The authorizer has already
//! validated the token; its claims arrive in the request context.

/// The Lambda runtimes, re-exported so that each function crate depends on `shared` and
/// `tokio` only: `sam build` compiles every function as its own package, and one shared
/// dependency graph lets the ten builds reuse one compiled tree instead of ten.
pub use lambda_http;
pub use lambda_runtime;

use crate::adapters::clock::SystemClock;
use crate::config::{init_tracing, Config};
use crate::functions::Function;
use crate::http::{dispatch, request_id, ApiRequest, Auth, Serving};
use crate::service::App;
use lambda_http::request::RequestContext;
use lambda_http::{service_fn, Body, Error, Request, RequestExt, Response};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Whether this process has served an invocation yet.
static WARM: AtomicBool = AtomicBool::new(false);

/// Runs one invocation `f` of `app`'s function: its metric lines carry `request_id`, and
/// the first invocation of the process counts a cold start (`ColdStarts`).
pub async fn invocation<F: std::future::Future>(app: &App, request_id: String, f: F) -> F::Output {
    crate::adapters::emf::with_request_id(request_id, async {
        if !WARM.swap(true, Ordering::Relaxed) {
            app.metrics.count(crate::service::ports::Metric::ColdStart, 1);
        }
        f.await
    })
    .await
}

/// Runs the HTTP function `function`: logs, configuration and clients once per cold
/// start, then one `dispatch` per request over that function's routes only.
pub async fn run_http(function: &'static Function) -> Result<(), Error> {
    init_tracing();
    let app = function.app(&Config::from_env()?, Arc::new(SystemClock)).await?;
    lambda_http::run(service_fn(|event: Request| {
        let app = &app;
        async move { Ok::<_, Error>(handle(app, function, event).await) }
    }))
    .await
}

/// Serves one API Gateway request for the routes of `function`.
pub async fn handle(app: &App, function: &'static Function, event: Request) -> Response<Body> {
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
    let id = req.request_id.clone();
    let (parts, body) =
        invocation(app, id, dispatch(app, req, Serving::Routes(function.routes))).await.into_parts();
    app.count_store_retries();
    let body = match String::from_utf8(body.to_vec()) {
        Ok(text) => Body::Text(text),
        Err(e) => Body::Binary(e.into_bytes()),
    };
    Response::from_parts(parts, body)
}
