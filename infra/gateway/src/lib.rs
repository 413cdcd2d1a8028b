//! The local gateway: plays API Gateway for development and tests. It reads the body
//! (refusing more than 256 KiB), verifies HS256 bearer tokens the way API Gateway's JWT
//! authorizer would and flattens their claims the same way, then hands the request to
//! the same `shared::http::dispatch` the Lambda functions run, under the application of
//! the function that serves the route in AWS (so each route is held to that function's
//! IAM policy in `template.yaml`).

pub mod auth;
pub mod cors;
pub mod scheduler;
pub mod stream;
pub mod transport;
pub mod webhook;

use axum::body::Body;
use axum::extract::State;
use axum::Router;
use bytes::Bytes;
use http::header::CONTENT_LENGTH;
use shared::functions;
use shared::http::problem::Problem;
use shared::http::routes::Resolved;
use shared::http::{dispatch, request_id, ApiError, ApiRequest, ApiResponse, Serving, MAX_BODY_BYTES};
use shared::iam::IamError;
use shared::service::App;
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// The HTTP functions' applications and the authorizer.
#[derive(Clone)]
pub struct Gateway {
    /// Each HTTP function's application and its `Timeout` (the template's, as in AWS).
    functions: HashMap<&'static str, (App, Option<Duration>)>,
    /// Answers what no function serves (unknown routes, oversized bodies).
    fallback: App,
    pub verifier: auth::Verifier,
    /// The HTTP API's CORS settings from the template (none without local IAM).
    pub cors: Option<cors::Cors>,
}

impl Gateway {
    /// One application per HTTP function of the route table, each made from `app` by
    /// `App::for_function`.
    pub fn new(app: &App, verifier: auth::Verifier) -> Result<Self, IamError> {
        let mut served = HashMap::new();
        for f in functions::ALL.iter().filter(|f| f.is_http()) {
            let timeout = match app.local_iam() {
                Some(iam) => Some(Duration::from_secs(iam.template().function(f.name)?.timeout_seconds)),
                None => None,
            };
            served.insert(f.name, (app.for_function(f.name)?, timeout));
        }
        let cors = app.local_iam().and_then(|iam| iam.template().cors.clone()).map(cors::Cors);
        Ok(Self { functions: served, fallback: app.clone(), verifier, cors })
    }

    /// Allows exactly `origins` (the template's `AllowedOrigins` parameter given at
    /// deploy time); the rest of the CORS settings stay the template's.
    pub fn with_allowed_origins(mut self, origins: Vec<String>) -> Self {
        if let Some(c) = &mut self.cors {
            c.0.allow_origins = origins;
        }
        self
    }

    /// The application of the function that serves `resolved` (the fallback when none
    /// does) and the deadline that function would have, starting now.
    fn app_for(&self, resolved: &Resolved) -> (&App, Option<tokio::time::Instant>) {
        match resolved.function().and_then(|f| self.functions.get(f)) {
            Some((app, timeout)) => (app, timeout.map(shared::deadline::after)),
            None => (&self.fallback, None),
        }
    }
}

/// Serves until `shutdown` resolves, then finishes the requests in flight.
pub async fn serve(
    listener: TcpListener,
    gateway: Gateway,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let router = Router::new().fallback(handle).with_state(Arc::new(gateway));
    axum::serve(transport::ProblemListener(listener), router).with_graceful_shutdown(shutdown).await
}

/// Most of an oversized body the gateway reads (and drops) before answering 413, and how
/// long it waits for it: API Gateway takes up to 10 MB before it refuses a payload.
const DRAIN_BYTES: usize = 10 * 1024 * 1024;
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(10);

/// What arrived of a request body.
enum Received {
    Complete(Bytes),
    TooLarge,
    /// The client stopped sending (or took longer than `DRAIN_TIME`).
    Incomplete,
}

/// Reads the body. An oversized body is still read to its end (within bounds) and
/// dropped: answering while the client is still sending would close the connection under
/// it, and it would see a reset instead of the 413 that API Gateway delivers.
async fn read_body(body: Body, declared: Option<usize>) -> Received {
    use futures::StreamExt;
    let mut stream = body.into_data_stream();
    let mut kept = bytes::BytesMut::new();
    let mut too_large = declared.is_some_and(|n| n > MAX_BODY_BYTES);
    let mut seen = 0usize;
    let reading = async {
        while let Some(chunk) = stream.next().await {
            let Ok(chunk) = chunk else { return false };
            seen += chunk.len();
            if seen > MAX_BODY_BYTES {
                too_large = true;
                kept.clear();
            }
            if !too_large {
                kept.extend_from_slice(&chunk);
            }
            if seen > DRAIN_BYTES {
                break;
            }
        }
        true
    };
    let complete = tokio::time::timeout(DRAIN_TIME, reading).await.unwrap_or(false);
    match (too_large, complete) {
        (true, _) => Received::TooLarge,
        (false, false) => Received::Incomplete,
        (false, true) => Received::Complete(kept.freeze()),
    }
}

async fn handle(State(gw): State<Arc<Gateway>>, req: http::Request<Body>) -> http::Response<Body> {
    let (parts, body) = req.into_parts();
    if let Some(preflight) = gw.cors.as_ref().and_then(|c| c.preflight(&parts.method, &parts.headers)) {
        return preflight.map(Body::from);
    }
    let origin = parts.headers.get(http::header::ORIGIN).cloned();
    let rid = request_id(&parts.headers, || ulid::Ulid::new().to_string());
    let declared =
        parts.headers.get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
    let body = read_body(body, declared).await;
    let resp: ApiResponse = match body {
        Received::Complete(body) => {
            let auth = gw.verifier.authorize(&parts.headers);
            // In local development the site root shows the API docs page (in AWS it is
            // GET /api/docs; the root belongs to whatever fronts the API there).
            let path = match parts.uri.path() {
                "/" => "/api/docs",
                p => p,
            };
            // Resolved once: the route names its function, and dispatch serves it as is.
            let resolved = functions::resolve(&parts.method, path);
            let (app, deadline) = gw.app_for(&resolved);
            let req = ApiRequest {
                method: parts.method,
                path: path.to_string(),
                query: parts.uri.query().map(str::to_string),
                headers: parts.headers,
                body,
                auth,
                request_id: rid.clone(),
                deadline,
            };
            dispatch(app, req, Serving::Resolved(resolved)).await
        }
        refused => {
            let problem = match refused {
                Received::TooLarge => Problem::payload_too_large(MAX_BODY_BYTES),
                _ => Problem::from(ApiError::InvalidJson),
            };
            let mut resp = problem.into_response(&rid);
            if let Ok(v) = http::HeaderValue::from_str(&rid) {
                resp.headers_mut().insert(shared::http::REQUEST_ID_HEADER, v);
            }
            resp
        }
    };
    let mut resp = resp.map(|b: Bytes| Body::from(b));
    if let (Some(cors), Some(origin)) = (&gw.cors, origin) {
        cors.decorate(&origin, resp.headers_mut());
    }
    resp
}
