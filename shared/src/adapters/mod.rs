//! The edge: implementations of the service ports that differ between AWS, local runs
//! and tests (the clock, the EventBridge Scheduler client, the EventBridge bus, business
//! metrics as CloudWatch Embedded Metric Format).

pub mod clock;
pub mod emf;
pub mod eventbridge;
pub mod scheduler;
