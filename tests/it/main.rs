//! Integration tests: HTTP through the local gateway against DynamoDB Local.

mod chaos;
mod edge;
mod idempotency;
mod products;
mod reservations;
mod template;
