//! `publish` Lambda: fed by the audit table's DynamoDB stream, filtered to the replay
//! feed's items (event source mapping with `ReportBatchItemFailures`); puts each event on
//! the shop's EventBridge bus.

use shared::adapters::clock::SystemClock;
use shared::config::{init_tracing, Config};
use shared::deadline::from_epoch_millis;
use shared::jobs::{publish_batch, StreamEvent, PUBLISH_FN};
use shared::lambda::invocation;
use shared::lambda::lambda_runtime::{run, service_fn, Error, LambdaEvent};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_tracing();
    let config = Config::from_env()?;
    let app = shared::functions::PUBLISH.app(&config, Arc::new(SystemClock)).await?;
    let bus = config.event_bus(&app, PUBLISH_FN).await?;
    run(service_fn(|event: LambdaEvent<StreamEvent>| {
        let (app, bus) = (&app, &bus);
        async move {
            let deadline = Some(from_epoch_millis(event.context.deadline));
            let batch = publish_batch(app, bus, &event.payload, deadline);
            Ok::<_, Error>(invocation(app, event.context.request_id.clone(), batch).await)
        }
    }))
    .await
}
