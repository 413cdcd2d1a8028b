//! The business core: entities, value types validated at the edge, stock arithmetic,
//! reservation states and the domain error. Nothing here knows about AWS, Lambda or HTTP.

pub mod audit;
pub mod buckets;
pub mod cursor;
pub mod error;
pub mod fingerprint;
pub mod order;
pub mod order_query;
pub mod product;
pub mod reservation;
pub mod stock;
pub mod validate;

pub use error::{DomainError, FieldError};
