//! `reserve` Lambda: create, read and release reservations.

use shared::adapters::clock::SystemClock;
use shared::config::{init_tracing, Config};
use shared::http::routes::RESERVE_FN;
use shared::lambda::lambda_http::{run, service_fn, Error, Request};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_tracing();
    let app = Config::from_env()?.function_app(RESERVE_FN, Arc::new(SystemClock)).await?;
    run(service_fn(|event: Request| {
        let app = &app;
        async move { Ok::<_, Error>(shared::lambda::handle(app, RESERVE_FN, event).await) }
    }))
    .await
}
