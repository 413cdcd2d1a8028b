//! CORS as API Gateway's HTTP API applies its `CorsConfiguration` (read from
//! template.yaml, so the local stack and AWS agree): a preflight (`OPTIONS` with `Origin`
//! and `Access-Control-Request-Method`) is answered here, before the authorizer and the
//! functions, with 204 and the allowed methods, headers and max age; any other request
//! from an allowed origin gets `Access-Control-Allow-Origin` and the exposed headers on
//! its response. An origin that is not allowed gets no CORS headers at all, so the
//! browser refuses the response to the page; the request itself is still served, as in
//! AWS (CORS protects readers, not the server).

use http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE, ACCESS_CONTROL_REQUEST_METHOD, ORIGIN, VARY,
};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use shared::iam::CorsConfig;

/// The CORS settings the gateway applies.
#[derive(Debug, Clone, Default)]
pub struct Cors(pub CorsConfig);

impl Cors {
    /// The value of `Access-Control-Allow-Origin` for a request from `origin`, if allowed.
    fn allow_origin(&self, origin: &HeaderValue) -> Option<HeaderValue> {
        let origins = &self.0.allow_origins;
        if origins.iter().any(|o| o == "*") {
            return Some(HeaderValue::from_static("*"));
        }
        let given = origin.to_str().ok()?;
        origins.iter().any(|o| o.eq_ignore_ascii_case(given)).then(|| origin.clone())
    }

    /// The answer to a preflight request, or `None` when `method`/`headers` are not one.
    pub fn preflight(&self, method: &Method, headers: &HeaderMap) -> Option<http::Response<bytes::Bytes>> {
        let origin = headers.get(ORIGIN)?;
        if method != Method::OPTIONS || !headers.contains_key(ACCESS_CONTROL_REQUEST_METHOD) {
            return None;
        }
        let mut resp = http::Response::new(bytes::Bytes::new());
        *resp.status_mut() = StatusCode::NO_CONTENT;
        if let Some(origin) = self.allow_origin(origin) {
            let h = resp.headers_mut();
            h.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
            insert_list(h, ACCESS_CONTROL_ALLOW_METHODS, &self.0.allow_methods);
            insert_list(h, ACCESS_CONTROL_ALLOW_HEADERS, &self.0.allow_headers);
            if let Some(age) = self.0.max_age {
                h.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from(age));
            }
            h.insert(VARY, HeaderValue::from_static("origin"));
        }
        Some(resp)
    }

    /// Adds the CORS headers to the response of a request from `origin`.
    pub fn decorate(&self, origin: &HeaderValue, response: &mut HeaderMap) {
        if let Some(origin) = self.allow_origin(origin) {
            response.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
            insert_list(response, ACCESS_CONTROL_EXPOSE_HEADERS, &self.0.expose_headers);
            response.append(VARY, HeaderValue::from_static("origin"));
        }
    }
}

fn insert_list(headers: &mut HeaderMap, name: http::HeaderName, items: &[String]) {
    if let Ok(v) = HeaderValue::from_str(&items.join(",")) {
        if !items.is_empty() {
            headers.insert(name, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cors(origins: &[&str]) -> Cors {
        Cors(CorsConfig {
            allow_origins: origins.iter().map(|s| s.to_string()).collect(),
            allow_methods: vec!["GET".into(), "POST".into()],
            allow_headers: vec!["authorization".into()],
            expose_headers: vec!["x-request-id".into()],
            max_age: Some(600),
        })
    }

    fn request(origin: &str, preflight: bool) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(ORIGIN, HeaderValue::from_str(origin).unwrap_or(HeaderValue::from_static("x")));
        if preflight {
            h.insert(ACCESS_CONTROL_REQUEST_METHOD, HeaderValue::from_static("POST"));
        }
        h
    }

    #[test]
    fn a_preflight_from_an_allowed_origin_gets_the_configured_answer() {
        let r = cors(&["http://shop.test"]).preflight(&Method::OPTIONS, &request("http://shop.test", true));
        let r = r.expect("a preflight");
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        assert_eq!(r.headers()[ACCESS_CONTROL_ALLOW_ORIGIN], "http://shop.test");
        assert_eq!(r.headers()[ACCESS_CONTROL_ALLOW_METHODS], "GET,POST");
        assert_eq!(r.headers()[ACCESS_CONTROL_MAX_AGE], "600");
    }

    #[test]
    fn an_origin_not_allowed_gets_no_cors_headers() {
        let c = cors(&["http://shop.test"]);
        let r = c.preflight(&Method::OPTIONS, &request("http://evil.test", true)).expect("answered");
        assert!(r.headers().get(ACCESS_CONTROL_ALLOW_ORIGIN).is_none());
        let mut out = HeaderMap::new();
        c.decorate(&HeaderValue::from_static("http://evil.test"), &mut out);
        assert!(out.is_empty());
        assert!(c.preflight(&Method::OPTIONS, &HeaderMap::new()).is_none(), "not a preflight");
    }

    #[test]
    fn a_wildcard_allows_every_origin_with_a_star() {
        let mut out = HeaderMap::new();
        cors(&["*"]).decorate(&HeaderValue::from_static("http://any.test"), &mut out);
        assert_eq!(out[ACCESS_CONTROL_ALLOW_ORIGIN], "*");
        assert_eq!(out[ACCESS_CONTROL_EXPOSE_HEADERS], "x-request-id");
    }
}
