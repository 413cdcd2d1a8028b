//! The route table: the one list of routes that the local gateway serves, each Lambda
//! function answers, and a test compares with `template.yaml`.

use http::Method;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RouteId {
    ListProducts,
    CreateProduct,
    GetProduct,
    AdjustStock,
    CreateReservation,
    GetReservation,
    ReleaseReservation,
    ListOrders,
    CreateOrder,
    GetOrder,
    ChangeOrderStatus,
    ListAudit,
    OpenApi,
    Docs,
    DocsAsset,
}

/// One API route and the Lambda function that serves it.
#[derive(Debug, Clone)]
pub struct Route {
    pub id: RouteId,
    pub method: Method,
    /// API Gateway syntax: `{name}` matches one non-empty path segment.
    pub path: &'static str,
    pub function: &'static str,
    /// Public routes need no token and ignore any Authorization header.
    pub public: bool,
}

pub const PRODUCTS_FN: &str = "products";
pub const RESERVE_FN: &str = "reserve";
pub const ORDER_FN: &str = "order";
pub const TRANSITION_FN: &str = "transition";
pub const LIST_FN: &str = "list";
pub const AUDIT_API_FN: &str = "audit-api";

pub static ROUTES: &[Route] = &[
    Route {
        id: RouteId::ListProducts,
        method: Method::GET,
        path: "/api/products",
        function: PRODUCTS_FN,
        public: true,
    },
    Route {
        id: RouteId::CreateProduct,
        method: Method::POST,
        path: "/api/products",
        function: PRODUCTS_FN,
        public: false,
    },
    Route {
        id: RouteId::GetProduct,
        method: Method::GET,
        path: "/api/products/{id}",
        function: PRODUCTS_FN,
        public: true,
    },
    Route {
        id: RouteId::AdjustStock,
        method: Method::POST,
        path: "/api/products/{id}/stock",
        function: PRODUCTS_FN,
        public: false,
    },
    Route {
        id: RouteId::CreateReservation,
        method: Method::POST,
        path: "/api/reservations",
        function: RESERVE_FN,
        public: false,
    },
    Route {
        id: RouteId::GetReservation,
        method: Method::GET,
        path: "/api/reservations/{id}",
        function: RESERVE_FN,
        public: false,
    },
    Route {
        id: RouteId::ReleaseReservation,
        method: Method::DELETE,
        path: "/api/reservations/{id}",
        function: RESERVE_FN,
        public: false,
    },
    Route {
        id: RouteId::ListOrders,
        method: Method::GET,
        path: "/api/orders",
        function: LIST_FN,
        public: false,
    },
    Route {
        id: RouteId::CreateOrder,
        method: Method::POST,
        path: "/api/orders",
        function: ORDER_FN,
        public: false,
    },
    Route {
        id: RouteId::GetOrder,
        method: Method::GET,
        path: "/api/orders/{id}",
        function: ORDER_FN,
        public: false,
    },
    Route {
        id: RouteId::ChangeOrderStatus,
        method: Method::PATCH,
        path: "/api/orders/{id}",
        function: TRANSITION_FN,
        public: false,
    },
    Route {
        id: RouteId::ListAudit,
        method: Method::GET,
        path: "/api/audit",
        function: AUDIT_API_FN,
        public: false,
    },
    // The API's own description: public, served by the catalogue function (the one
    // public-facing function) so that no tenth function exists only for documentation.
    Route {
        id: RouteId::OpenApi,
        method: Method::GET,
        path: "/api/openapi.json",
        function: PRODUCTS_FN,
        public: true,
    },
    Route { id: RouteId::Docs, method: Method::GET, path: "/api/docs", function: PRODUCTS_FN, public: true },
    Route {
        id: RouteId::DocsAsset,
        method: Method::GET,
        path: "/api/docs/{asset}",
        function: PRODUCTS_FN,
        public: true,
    },
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

pub fn resolve(method: &Method, path: &str) -> Resolved {
    let mut allowed = Vec::new();
    for route in ROUTES {
        if let Some(params) = match_path(route.path, path) {
            if route.method == method {
                return Resolved::Found { route, params };
            }
            allowed.push(route.method.as_str());
        }
    }
    if allowed.is_empty() {
        Resolved::NotFound
    } else {
        allowed.sort_unstable();
        allowed.dedup();
        Resolved::MethodNotAllowed(allowed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_resolve_with_their_parameters() {
        let Resolved::Found { route, params } = resolve(&Method::POST, "/api/products/01X/stock") else {
            panic!()
        };
        assert_eq!((route.id, params), (RouteId::AdjustStock, vec!["01X".to_string()]));
    }

    #[test]
    fn a_known_path_with_another_method_lists_the_allowed_ones() {
        match resolve(&Method::PUT, "/api/reservations/x") {
            Resolved::MethodNotAllowed(allow) => assert_eq!(allow, ["DELETE", "GET"]),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unknown_paths_and_empty_segments_are_not_found() {
        for p in ["/api/nothing", "/api/products/", "/api/products/x/y", "/api//stock", ""] {
            assert!(matches!(resolve(&Method::GET, p), Resolved::NotFound), "{p}");
        }
    }
}
