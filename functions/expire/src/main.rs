//! `expire` Lambda: invoked by a reservation's EventBridge Scheduler schedule with
//! `{"reservation_id": "..."}`; ends the hold if it is still active and due.

use shared::adapters::clock::SystemClock;
use shared::config::{init_tracing, Config};
use shared::deadline::from_epoch_millis;
use shared::jobs::{expire, ExpireEvent};
use shared::lambda::invocation;
use shared::lambda::lambda_runtime::{run, service_fn, Error, LambdaEvent};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_tracing();
    let app = shared::functions::EXPIRE.app(&Config::from_env()?, Arc::new(SystemClock)).await?;
    run(service_fn(|event: LambdaEvent<ExpireEvent>| {
        let app = &app;
        let deadline = Some(from_epoch_millis(event.context.deadline));
        let job = expire(app, event.payload, deadline);
        async move { Ok::<_, Error>(invocation(app, event.context.request_id, job).await?) }
    }))
    .await
}
