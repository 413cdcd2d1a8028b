//! `audit` Lambda: fed by the table's DynamoDB stream (event source mapping with
//! `ReportBatchItemFailures`); writes one audit entry per change of a business entity.

use shared::adapters::clock::SystemClock;
use shared::config::{init_tracing, Config};
use shared::deadline::from_epoch_millis;
use shared::jobs::{handle_batch, StreamEvent, AUDIT_FN};
use shared::lambda::lambda_runtime::{run, service_fn, Error, LambdaEvent};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_tracing();
    let app =
        Config::from_env()?.function_app_with(AUDIT_FN, Arc::new(SystemClock), Config::no_scheduler).await?;
    run(service_fn(|event: LambdaEvent<StreamEvent>| {
        let app = &app;
        async move {
            Ok::<_, Error>(
                handle_batch(app, &event.payload, Some(from_epoch_millis(event.context.deadline))).await,
            )
        }
    }))
    .await
}
