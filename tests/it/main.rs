//! Integration tests: HTTP through the local gateway against DynamoDB Local.

mod audit;
mod chaos;
mod dev_gateway;
mod edge;
mod expiry;
mod idempotency;
mod order_list;
mod orders;
mod products;
mod reservations;
mod scheduler_contract;
mod template;
