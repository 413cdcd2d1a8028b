//! Local IAM enforcement: on the local stack every AWS call a function makes is checked
//! against the policy `template.yaml` gives that function, and refused the way AWS refuses
//! it (`AccessDeniedException`, same status and error code through the SDK), so that a
//! missing grant fails `make test` instead of the deployed stack. In AWS none of this is
//! built (it is `shared`'s `local` feature, which no production build turns on; `make
//! lint` and `make sam-check` check that): IAM itself enforces the same template.
//!
//! The check sits in the SDK client's HTTP connector (`guard`): that is the one SDK
//! extension point that sees every request of every operation after serialisation and can
//! answer it. An `Intercept` could only fail a call with a client-side error, which the
//! code under test would see as something other than what AWS sends.

mod guard;
pub mod policy;
pub mod request;
pub mod usage;

pub use guard::{LocalIam, Principal};
pub use policy::{CorsConfig, Decision, FunctionDef, Grant, IamError, LocalNames, Template};
pub use request::Service;
