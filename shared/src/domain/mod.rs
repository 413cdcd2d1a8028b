//! The business core: entities, value types validated at the edge, stock rules,
//! reservation and order states, time, the caller, and the domain error. Nothing here
//! knows about AWS, Lambda, HTTP or storage.

pub mod audit;
pub mod buckets;
pub mod caller;
pub mod cursor;
pub mod error;
pub mod event;
pub mod fingerprint;
pub mod ids;
pub mod movement;
pub mod order;
pub mod order_query;
pub mod order_return;
pub mod product;
pub mod reservation;
pub mod stock;
pub mod time;
pub mod transfer;
pub mod validate;
pub mod waitlist;

pub use error::{DomainError, FieldError};
