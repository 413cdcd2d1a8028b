//! The event bus in AWS: `PutEvents` on the shop's EventBridge bus, one entry per event,
//! `source` `stockhold`, the event's type as `detail-type`. EventBridge delivers each
//! entry to the rules that match it (the template's webhook, a shop's own rules).

use crate::domain::event::{Outgoing, SOURCE};
use crate::service::ports::{BusError, EventBus, Put};
use aws_sdk_eventbridge::error::DisplayErrorContext;
use aws_sdk_eventbridge::primitives::DateTime;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;

#[derive(Debug, Clone)]
pub struct EventBridgeBus {
    client: aws_sdk_eventbridge::Client,
    bus: String,
}

impl EventBridgeBus {
    /// The bus named `bus` (a name or an ARN), reached through `client`.
    pub fn new(client: aws_sdk_eventbridge::Client, bus: String) -> Self {
        Self { client, bus }
    }

    fn entry(&self, e: &Outgoing) -> PutEventsRequestEntry {
        PutEventsRequestEntry::builder()
            .event_bus_name(&self.bus)
            .source(SOURCE)
            .detail_type(e.kind.as_str())
            .detail(&e.detail)
            .time(DateTime::from_millis(e.time.timestamp_millis()))
            .build()
    }
}

impl EventBus for EventBridgeBus {
    fn put<'a>(&'a self, events: &'a [Outgoing]) -> Put<'a> {
        Box::pin(async move {
            let out = self
                .client
                .put_events()
                .set_entries(Some(events.iter().map(|e| self.entry(e)).collect()))
                .send()
                .await
                .map_err(|e| BusError::Failed(DisplayErrorContext(&e).to_string()))?;
            // One result entry per request entry, in order; one that carries an error
            // code was not taken. A missing result counts as refused (put again).
            let results = out.entries();
            Ok((0..events.len())
                .map(|i| match results.get(i) {
                    Some(r) if r.error_code().is_none() => Ok(()),
                    Some(r) => Err(format!(
                        "{}: {}",
                        r.error_code().unwrap_or_default(),
                        r.error_message().unwrap_or_default()
                    )),
                    None => Err("no result for the entry".into()),
                })
                .collect())
        })
    }
}
