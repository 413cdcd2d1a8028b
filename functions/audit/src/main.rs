//! `audit` Lambda: fed by the table's DynamoDB stream (event source mapping with
//! `ReportBatchItemFailures`); writes one audit entry per change of a business entity.

use shared::adapters::clock::SystemClock;
use shared::config::{init_tracing, Config};
use shared::deadline::from_epoch_millis;
use shared::jobs::{handle_batch, StreamEvent};
use shared::lambda::invocation;
use shared::lambda::lambda_runtime::{run, service_fn, Error, LambdaEvent};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_tracing();
    let app = shared::functions::AUDIT.app(&Config::from_env()?, Arc::new(SystemClock)).await?;
    run(service_fn(|event: LambdaEvent<StreamEvent>| {
        let app = &app;
        async move {
            let deadline = Some(from_epoch_millis(event.context.deadline));
            let batch = handle_batch(app, &event.payload, deadline);
            Ok::<_, Error>(invocation(app, event.context.request_id.clone(), batch).await)
        }
    }))
    .await
}
