//! The replay feed (`GET /api/events`, admins only): the events of the last 7 days in the
//! order they were published, resumable exactly from a cursor while events are being
//! published.

use super::App;
use crate::domain::caller::Caller;
use crate::domain::event::{EventType, ENTITY_TYPES, FEED_DAYS};
use crate::domain::ids::{EntityId, Id};
use crate::domain::time::format_time;
use crate::domain::{DomainError, FieldError};
use crate::store::events::FeedFilter;
use std::collections::BTreeMap;

/// How far the feed trails the clock: it answers only events published before `now -
/// FEED_TRAIL`, and a writer's feed item lands within it of the time it was stamped with
/// (the write is one request that starts right after the stamp), so an event can never
/// appear behind a cursor already handed out.
pub const FEED_TRAIL: chrono::Duration = chrono::Duration::milliseconds(2000);

pub const EVENT_PARAMS: &[&str] = &["after", "type", "entity_type", "entity_id", "limit"];

/// A validated feed query.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventQuery {
    pub filter: FeedFilter,
}

impl EventQuery {
    /// `type`: one or more detail-types, comma-separated; `entity_type` one of the six;
    /// `entity_id` an id.
    pub fn from_params(p: &BTreeMap<String, String>) -> Result<Self, DomainError> {
        let mut errors = Vec::new();
        let mut filter = FeedFilter::default();
        if let Some(types) = p.get("type") {
            for t in types.split(',') {
                match EventType::parse(t.trim()) {
                    Some(t) if !filter.types.iter().any(|x| x == t.as_str()) => {
                        filter.types.push(t.as_str().into())
                    }
                    Some(_) => {}
                    None => {
                        errors.push(FieldError::new("type", format!("{t:?} is not an event type")));
                        break;
                    }
                }
            }
        }
        if let Some(t) = p.get("entity_type") {
            match ENTITY_TYPES.iter().find(|e| **e == t.as_str()) {
                Some(e) => filter.entity_type = Some((*e).to_string()),
                None => errors.push(FieldError::new(
                    "entity_type",
                    format!("must be one of {}", ENTITY_TYPES.join(", ")),
                )),
            }
        }
        if let Some(id) = p.get("entity_id") {
            match EntityId::parse(id) {
                Ok(id) => filter.entity_id = Some(id.to_string()),
                Err(e) => errors.push(FieldError::new("entity_id", e.to_string())),
            }
        }
        if errors.is_empty() {
            Ok(Self { filter })
        } else {
            Err(DomainError::Validation(errors))
        }
    }
}

/// A page of the feed: each event's detail, and the cursor to poll with next (never none).
#[derive(Debug, Clone)]
pub struct EventPage {
    pub items: Vec<serde_json::Value>,
    pub next_cursor: String,
}

impl App {
    /// Admins only. Events after `after` (a cursor of this feed; none: the oldest kept),
    /// at most `limit`, oldest first. A cursor older than the 7 days kept starts at the
    /// oldest event kept.
    pub async fn list_events(
        &self,
        caller: &Caller,
        q: &EventQuery,
        limit: usize,
        after: Option<&str>,
    ) -> Result<EventPage, DomainError> {
        if !caller.is_admin {
            return Err(DomainError::Forbidden);
        }
        let binding = format!("events\0{}", caller.user_id);
        let now = self.clock.now();
        let oldest = format_time(now - chrono::Duration::days(FEED_DAYS));
        let from = match after {
            Some(c) => self.config.cursors.decode(&binding, c)?,
            None => oldest.clone(),
        };
        // Positions are times first; anything older than the feed keeps starts at its start.
        let from = if from < oldest { oldest } else { from };
        let before = format_time(now - FEED_TRAIL);
        let page = self.store.feed.page(&from, &before, &q.filter, limit).await?;
        Ok(EventPage {
            items: page.events.into_iter().map(|(_, detail)| detail).collect(),
            next_cursor: self.config.cursors.encode(&binding, &page.next)?,
        })
    }
}
