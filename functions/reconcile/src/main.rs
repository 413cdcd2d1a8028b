//! `reconcile` Lambda: runs every hour (EventBridge Scheduler `rate(1 hour)`) and checks
//! every product's counters against its ledger and its active holds, logging and
//! counting each warehouse that disagrees.

use shared::adapters::clock::SystemClock;
use shared::config::{init_tracing, Config};
use shared::deadline::from_epoch_millis;
use shared::jobs::{reconcile, ReconcileEvent, ReconcileSettings};
use shared::lambda::invocation;
use shared::lambda::lambda_runtime::{run, service_fn, Error, LambdaEvent};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_tracing();
    let app = shared::functions::RECONCILE.app(&Config::from_env()?, Arc::new(SystemClock)).await?;
    let settings = ReconcileSettings::from_env()?;
    run(service_fn(|event: LambdaEvent<ReconcileEvent>| {
        let app = &app;
        let job = reconcile(app, event.payload, settings, Some(from_epoch_millis(event.context.deadline)));
        async move { Ok::<_, Error>(invocation(app, event.context.request_id, job).await?) }
    }))
    .await
}
