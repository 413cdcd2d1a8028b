//! The clocks: the wall clock (AWS and local runs) and a clock tests set by hand (the
//! `local` feature only).

use crate::domain::time::truncate_ms;
use crate::service::ports::Clock;
use chrono::{DateTime, Utc};
#[cfg(any(test, feature = "local"))]
use std::sync::{Arc, Mutex};

/// Wall-clock time.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        truncate_ms(Utc::now())
    }
}

/// A clock tests set and advance by hand.
#[cfg(any(test, feature = "local"))]
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<Mutex<DateTime<Utc>>>);

#[cfg(any(test, feature = "local"))]
impl ManualClock {
    pub fn new(start: DateTime<Utc>) -> Self {
        Self(Arc::new(Mutex::new(truncate_ms(start))))
    }
    pub fn advance(&self, by: chrono::Duration) {
        let mut t = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *t += by;
    }
}

#[cfg(any(test, feature = "local"))]
impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}
