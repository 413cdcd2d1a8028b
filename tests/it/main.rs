//! Integration tests: HTTP through the local gateway against DynamoDB Local.

mod audit;
mod authz;
mod batch;
mod buckets;
mod chaos;
mod cognito;
mod cors;
mod dev_gateway;
mod edge;
mod expiry;
mod extend;
mod faults;
mod hostile;
mod iam;
mod idempotency;
mod local_stack;
mod order_list;
mod orders;
mod product_changes;
mod products;
mod purchase_limits;
mod reservations;
mod scheduler_contract;
mod secrets;
mod spec;
mod template;
