//! `list` Lambda: GET /api/orders, filtered, sorted and cursor-paged.

use shared::adapters::clock::SystemClock;
use shared::config::{init_tracing, Config};
use shared::http::routes::LIST_FN;
use shared::lambda::lambda_http::{run, service_fn, Error, Request};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_tracing();
    let app = Config::from_env()?.function_app(LIST_FN, Arc::new(SystemClock)).await?;
    run(service_fn(|event: Request| {
        let app = &app;
        async move { Ok::<_, Error>(shared::lambda::handle(app, LIST_FN, event).await) }
    }))
    .await
}
