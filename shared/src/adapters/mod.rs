//! Edges to the outside world that differ between AWS, local runs and tests: the clock,
//! id generation and the caller's identity from the authorizer's claims.

pub mod clock;
pub mod identity;
pub mod ids;
pub mod scheduler;
