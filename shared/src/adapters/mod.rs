//! The edge: implementations of the service ports that differ between AWS, local runs
//! and tests (the clock, the EventBridge Scheduler client).

pub mod clock;
pub mod scheduler;
