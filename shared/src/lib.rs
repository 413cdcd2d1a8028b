//! stockhold's shared library: the domain, the DynamoDB store, the adapters and the HTTP
//! mapping that every Lambda function and the local gateway run. Functions only wire
//! these together; no business rule lives anywhere else.

pub mod adapters;
pub mod audit;
pub mod config;
pub mod deadline;
pub mod domain;
pub mod http;
pub mod iam;
pub mod jobs;
pub mod lambda;
pub mod service;
pub mod store;
