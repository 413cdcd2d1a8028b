//! stockhold's shared library: everything every Lambda function and the local gateway
//! run. Functions only wire it together; no business rule lives anywhere else.
//!
//! Layers, each using only those below it: `domain` (entities, rules, time, the caller;
//! no I/O), `store` (DynamoDB: executor, records, repositories), `service` (the business
//! operations and their ports), `adapters` (the ports' AWS and local implementations),
//! `http` (routes, handlers, problem+json), and at the top the entry points `lambda`,
//! `jobs` and `config`. `deadline` and `iam` (local IAM enforcement) sit at the bottom.

pub mod adapters;
pub mod config;
pub mod deadline;
pub mod domain;
pub mod http;
pub mod iam;
pub mod jobs;
pub mod lambda;
pub mod service;
pub mod store;
