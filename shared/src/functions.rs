//! The one table of stockhold's eleven Lambda functions: each one's name (its binary and
//! its resource in `template.yaml`), the routes it serves (HTTP functions), and what it
//! needs at cold start (the cursor key, the expiry scheduler). The binaries, the local
//! gateway and the tests read it; nothing else names a function's needs.

use crate::config::{Config, ConfigError, Schedules};
use crate::http::routes::{self, Resolved, Route};
use crate::jobs::{AUDIT_FN, EXPIRE_FN, PUBLISH_FN, RECONCILE_FN, SWEEP_FN};
use crate::service::ports::Clock;
use crate::service::App;
use std::sync::Arc;

/// One Lambda function.
#[derive(Debug)]
pub struct Function {
    pub name: &'static str,
    /// The routes it serves; empty for the functions events invoke.
    pub routes: &'static [Route],
    /// Whether it makes or reads list cursors: only these get the cursor key, and only
    /// they may read its secret.
    pub cursors: bool,
    /// The expiry scheduler it runs: `Config::scheduler` for the functions whose template
    /// policy grants Scheduler actions, else `Config::no_scheduler`, so that the others'
    /// binaries do not link the Scheduler client (a test holds the two together).
    pub schedules: Schedules,
}

impl Function {
    /// The application as this function runs it (`Config::function_app_with`).
    pub async fn app(&self, config: &Config, clock: Arc<dyn Clock>) -> Result<App, ConfigError> {
        config.function_app_with(self.name, self.cursors, clock, self.schedules).await
    }

    /// Whether API Gateway invokes it.
    pub fn is_http(&self) -> bool {
        !self.routes.is_empty()
    }
}

const fn function(
    name: &'static str,
    routes: &'static [Route],
    cursors: bool,
    schedules: Schedules,
) -> Function {
    Function { name, routes, cursors, schedules }
}

pub static PRODUCTS: Function = function(routes::PRODUCTS_FN, routes::PRODUCTS, true, Config::no_scheduler);
pub static RESERVE: Function = function(routes::RESERVE_FN, routes::RESERVE, false, Config::scheduler);
pub static ORDER: Function = function(routes::ORDER_FN, routes::ORDER, false, Config::scheduler);
pub static TRANSITION: Function =
    function(routes::TRANSITION_FN, routes::TRANSITION, true, Config::no_scheduler);
pub static LIST: Function = function(routes::LIST_FN, routes::LIST, true, Config::no_scheduler);
pub static AUDIT_API: Function =
    function(routes::AUDIT_API_FN, routes::AUDIT_API, true, Config::no_scheduler);
pub static EXPIRE: Function = function(EXPIRE_FN, &[], false, Config::no_scheduler);
pub static SWEEP: Function = function(SWEEP_FN, &[], false, Config::no_scheduler);
pub static RECONCILE: Function = function(RECONCILE_FN, &[], false, Config::no_scheduler);
pub static AUDIT: Function = function(AUDIT_FN, &[], false, Config::no_scheduler);
pub static PUBLISH: Function = function(PUBLISH_FN, &[], false, Config::no_scheduler);

/// Every function.
pub static ALL: &[&Function] = &[
    &PRODUCTS,
    &RESERVE,
    &ORDER,
    &TRANSITION,
    &LIST,
    &AUDIT_API,
    &EXPIRE,
    &SWEEP,
    &RECONCILE,
    &AUDIT,
    &PUBLISH,
];

/// The function named `name`.
pub fn named(name: &str) -> Option<&'static Function> {
    ALL.iter().copied().find(|f| f.name == name)
}

/// Every route of the API, as the local gateway serves it (and tests compare with the
/// template).
pub fn routes() -> impl Iterator<Item = &'static Route> {
    ALL.iter().flat_map(|f| f.routes.iter())
}

/// What `method` and `path` resolve to over the whole API: one resolution names both the
/// route and the function that serves it (`Route::function`).
pub fn resolve(method: &http::Method, path: &str) -> Resolved {
    routes::resolve(routes(), method, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_names_the_function_whose_table_holds_it_and_names_are_unique() {
        for f in ALL {
            assert!(f.routes.iter().all(|r| r.function == f.name), "{}", f.name);
            assert_eq!(ALL.iter().filter(|g| g.name == f.name).count(), 1, "{}", f.name);
        }
        assert_eq!(ALL.iter().filter(|f| f.is_http()).count(), 6);
    }
}
