//! The route tables: each HTTP Lambda function's routes with their handlers, and how a
//! request resolves to one. Which function serves which table is said once, in
//! `crate::functions`; the local gateway serves all of them, each function binary only its
//! own, and a test compares them with `template.yaml`.

use super::handlers::{self as h, Handler};
use http::Method;

/// One API route.
#[derive(Debug, Clone)]
pub struct Route {
    pub method: Method,
    /// API Gateway syntax: `{name}` matches one non-empty path segment.
    pub path: &'static str,
    /// The Lambda function that serves it (its binary and template name).
    pub function: &'static str,
    /// Public routes need no token and ignore any Authorization header.
    pub public: bool,
    pub handler: Handler,
}

pub const PRODUCTS_FN: &str = "products";
pub const RESERVE_FN: &str = "reserve";
pub const ORDER_FN: &str = "order";
pub const TRANSITION_FN: &str = "transition";
pub const LIST_FN: &str = "list";
pub const AUDIT_API_FN: &str = "audit-api";

const fn route(
    method: Method,
    path: &'static str,
    function: &'static str,
    public: bool,
    handler: Handler,
) -> Route {
    Route { method, path, function, public, handler }
}

/// The catalogue, its stock (adjustments, counts and transfers between warehouses: the
/// function that owns the stock rows), and the API's own description: public, served by
/// the catalogue function (the one public-facing function) so that no function exists
/// only for documentation.
pub static PRODUCTS: &[Route] = &[
    route(Method::GET, "/api/products", PRODUCTS_FN, true, h::list_products),
    route(Method::POST, "/api/products", PRODUCTS_FN, false, h::create_product),
    route(Method::GET, "/api/products/{id}", PRODUCTS_FN, true, h::get_product),
    route(Method::PATCH, "/api/products/{id}", PRODUCTS_FN, false, h::change_product),
    route(Method::POST, "/api/products/{id}/stock", PRODUCTS_FN, false, h::adjust_stock),
    route(Method::POST, "/api/transfers", PRODUCTS_FN, false, h::create_transfer),
    route(Method::GET, "/api/transfers", PRODUCTS_FN, false, h::list_transfers),
    route(Method::GET, "/api/transfers/{id}", PRODUCTS_FN, false, h::get_transfer),
    route(Method::POST, "/api/transfers/{id}/receive", PRODUCTS_FN, false, h::receive_transfer),
    route(Method::POST, "/api/transfers/{id}/cancel", PRODUCTS_FN, false, h::cancel_transfer),
    route(Method::GET, "/api/openapi.json", PRODUCTS_FN, true, h::openapi),
    route(Method::GET, "/api/docs", PRODUCTS_FN, true, h::docs_page),
    route(Method::GET, "/api/docs/{asset}", PRODUCTS_FN, true, h::docs_asset),
];

pub static RESERVE: &[Route] = &[
    route(Method::POST, "/api/reservations", RESERVE_FN, false, h::create_reservation),
    route(Method::POST, "/api/reservations/batch", RESERVE_FN, false, h::create_reservation_batch),
    route(Method::GET, "/api/reservations/{id}", RESERVE_FN, false, h::get_reservation),
    route(Method::POST, "/api/reservations/{id}/extend", RESERVE_FN, false, h::extend_reservation),
    route(Method::DELETE, "/api/reservations/{id}", RESERVE_FN, false, h::release_reservation),
];

pub static ORDER: &[Route] = &[
    route(Method::POST, "/api/orders", ORDER_FN, false, h::create_order),
    route(Method::GET, "/api/orders/{id}", ORDER_FN, false, h::get_order),
];

/// What happens to an order after it is made: status changes and returns (both may put
/// units back on sale).
pub static TRANSITION: &[Route] = &[
    route(Method::PATCH, "/api/orders/{id}", TRANSITION_FN, false, h::change_order_status),
    route(Method::POST, "/api/orders/{id}/returns", TRANSITION_FN, false, h::create_return),
    route(Method::GET, "/api/orders/{id}/returns", TRANSITION_FN, false, h::list_returns),
];

pub static LIST: &[Route] = &[route(Method::GET, "/api/orders", LIST_FN, false, h::list_orders)];

/// The histories: entities' audit entries, the replay feed of events, and the stock ledger (a product's movements
/// and its stock at an instant), all read from the audit table.
pub static AUDIT_API: &[Route] = &[
    route(Method::GET, "/api/audit", AUDIT_API_FN, false, h::list_audit),
    route(Method::GET, "/api/events", AUDIT_API_FN, false, h::list_events),
    route(Method::GET, "/api/products/{id}/movements", AUDIT_API_FN, false, h::list_movements),
    route(Method::GET, "/api/products/{id}/stock", AUDIT_API_FN, false, h::stock_as_of),
    route(Method::GET, "/api/products/{id}/reconciliation", AUDIT_API_FN, false, h::reconciliation),
];

/// What a method and path resolve to.
#[derive(Debug)]
pub enum Resolved {
    Found {
        route: &'static Route,
        params: Vec<String>,
    },
    /// The path exists with other methods (for the `Allow` header).
    MethodNotAllowed(Vec<&'static str>),
    NotFound,
}

impl Resolved {
    /// The function that serves the route, when it was found.
    pub fn function(&self) -> Option<&'static str> {
        match self {
            Self::Found { route, .. } => Some(route.function),
            _ => None,
        }
    }
}

fn match_path(pattern: &str, path: &str) -> Option<Vec<String>> {
    let mut params = Vec::new();
    let mut p = pattern.split('/');
    let mut s = path.split('/');
    loop {
        match (p.next(), s.next()) {
            (None, None) => return Some(params),
            (Some(pp), Some(ss)) if pp.starts_with('{') && pp.ends_with('}') => {
                if ss.is_empty() {
                    return None;
                }
                params.push(ss.to_string());
            }
            (Some(pp), Some(ss)) if pp == ss => {}
            _ => return None,
        }
    }
}

/// How many segments of `pattern` are literal: of two patterns that match a path, the
/// one with more literal segments wins (`/api/reservations/batch` over
/// `/api/reservations/{id}`), as in API Gateway.
fn literal_segments(pattern: &str) -> usize {
    pattern.split('/').filter(|s| !s.starts_with('{')).count()
}

/// The route of `routes` that `method` and `path` name.
pub fn resolve(routes: impl IntoIterator<Item = &'static Route>, method: &Method, path: &str) -> Resolved {
    let matching: Vec<(&'static Route, Vec<String>)> =
        routes.into_iter().filter_map(|r| match_path(r.path, path).map(|p| (r, p))).collect();
    let Some(best) = matching.iter().map(|(r, _)| literal_segments(r.path)).max() else {
        return Resolved::NotFound;
    };
    let mut allowed = Vec::new();
    for (route, params) in matching.into_iter().filter(|(r, _)| literal_segments(r.path) == best) {
        if route.method == method {
            return Resolved::Found { route, params };
        }
        allowed.push(route.method.as_str());
    }
    allowed.sort_unstable();
    allowed.dedup();
    Resolved::MethodNotAllowed(allowed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every route of the API.
    fn api() -> impl Iterator<Item = &'static Route> {
        [PRODUCTS, RESERVE, ORDER, TRANSITION, LIST, AUDIT_API].into_iter().flatten()
    }

    #[test]
    fn paths_resolve_with_their_parameters() {
        let Resolved::Found { route, params } = resolve(api(), &Method::POST, "/api/products/01X/stock")
        else {
            panic!()
        };
        assert_eq!((route.path, params), ("/api/products/{id}/stock", vec!["01X".to_string()]));
    }

    #[test]
    fn a_known_path_with_another_method_lists_the_allowed_ones() {
        match resolve(api(), &Method::PUT, "/api/reservations/x") {
            Resolved::MethodNotAllowed(allow) => assert_eq!(allow, ["DELETE", "GET"]),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_literal_segment_wins_over_an_id() {
        match resolve(api(), &Method::GET, "/api/reservations/batch") {
            Resolved::MethodNotAllowed(allow) => assert_eq!(allow, ["POST"]),
            other => panic!("{other:?}"),
        }
        assert!(matches!(resolve(api(), &Method::GET, "/api/reservations/01X"), Resolved::Found { .. }));
    }

    #[test]
    fn unknown_paths_and_empty_segments_are_not_found() {
        for p in ["/api/nothing", "/api/products/", "/api/products/x/y", "/api//stock", ""] {
            assert!(matches!(resolve(api(), &Method::GET, p), Resolved::NotFound), "{p}");
        }
    }
}
