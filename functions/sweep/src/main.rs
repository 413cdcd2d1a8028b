//! `sweep` Lambda: runs every minute (EventBridge Scheduler `rate(1 minute)`) and expires
//! every overdue active reservation that its own schedule has not, in bounded batches.

use shared::adapters::clock::SystemClock;
use shared::config::{init_tracing, Config};
use shared::deadline::from_epoch_millis;
use shared::jobs::{sweep, SweepEvent, SweepSettings};
use shared::lambda::invocation;
use shared::lambda::lambda_runtime::{run, service_fn, Error, LambdaEvent};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_tracing();
    let app = shared::functions::SWEEP.app(&Config::from_env()?, Arc::new(SystemClock)).await?;
    let settings = SweepSettings::from_env()?;
    // The scheduled event's payload carries nothing the sweep needs.
    run(service_fn(|event: LambdaEvent<SweepEvent>| {
        let app = &app;
        let job = sweep(app, settings, Some(from_epoch_millis(event.context.deadline)));
        async move { Ok::<_, Error>(invocation(app, event.context.request_id, job).await?) }
    }))
    .await
}
