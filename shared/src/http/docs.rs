//! The API's own description: `openapi.yaml` (the repository's single spec, converted to
//! JSON at build time by `build.rs` and served as such) and a page rendering it with Swagger UI. The
//! renderer's two files are vendored gzip-compressed from the npm package
//! `swagger-ui-dist` (docs/swagger-ui/, refreshed by `make docs-assets` and checked
//! against the npm package by the tests), so the page works offline and in AWS without
//! any CDN.

use super::{json_response, ApiResponse};
use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_ENCODING, CONTENT_TYPE};
use http::HeaderValue;

const PAGE: &str = r##"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>stockhold API</title>
<link rel="stylesheet" href="/api/docs/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/api/docs/swagger-ui-bundle.js"></script>
<script src="/api/docs/init.js"></script>
</body>
</html>
"##;

/// Starts the renderer. A file of its own, not an inline script, so that the page's
/// Content-Security-Policy allows scripts from this origin only. A token typed into the
/// page lives as long as the tab: `persistAuthorization` off, nothing in localStorage.
const INIT_JS: &str =
    "window.ui = SwaggerUIBundle({ url: \"/api/openapi.json\", dom_id: \"#swagger-ui\", persistAuthorization: false });\n";

/// What the page may load and run: its own scripts, styles (Swagger UI also sets inline
/// styles), images and the spec, nothing from elsewhere; it may not be framed.
pub const CONTENT_SECURITY_POLICY: &str =
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; font-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

static BUNDLE_JS: &[u8] = include_bytes!("../../../docs/swagger-ui/swagger-ui-bundle.js.gz");
static STYLE_CSS: &[u8] = include_bytes!("../../../docs/swagger-ui/swagger-ui.css.gz");

/// The spec as JSON (converted from `openapi.yaml` at build time).
pub static OPENAPI_JSON: &str = include_str!(concat!(env!("OUT_DIR"), "/openapi.json"));

pub fn openapi_json() -> ApiResponse {
    json_response(200, Bytes::from_static(OPENAPI_JSON.as_bytes()))
}

/// The docs page.
pub fn page() -> ApiResponse {
    let mut resp = ApiResponse::new(Bytes::from_static(PAGE.as_bytes()));
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    h.insert(http::header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    h.insert(http::header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(http::header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    resp
}

/// One of the renderer's files, or `None` for any other name.
pub fn asset(name: &str) -> Option<ApiResponse> {
    if name == "init.js" {
        let mut resp = ApiResponse::new(Bytes::from_static(INIT_JS.as_bytes()));
        let h = resp.headers_mut();
        h.insert(CONTENT_TYPE, HeaderValue::from_static("text/javascript; charset=utf-8"));
        h.insert(CACHE_CONTROL, HeaderValue::from_static("public, max-age=86400"));
        return Some(resp);
    }
    let (body, content_type) = match name {
        "swagger-ui-bundle.js" => (BUNDLE_JS, "text/javascript; charset=utf-8"),
        "swagger-ui.css" => (STYLE_CSS, "text/css; charset=utf-8"),
        _ => return None,
    };
    let mut resp = ApiResponse::new(Bytes::from_static(body));
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    // Every browser accepts gzip; storing only the compressed form keeps each function
    // binary half a megabyte smaller than the plain files would.
    h.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("public, max-age=86400"));
    Some(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_spec_converts_to_json_and_names_itself_openapi_3_1() {
        let resp = openapi_json();
        let v: serde_json::Value = serde_json::from_slice(resp.body()).expect("json");
        assert_eq!(v["openapi"], "3.1.0");
    }

    #[test]
    fn only_the_renderer_files_are_served() {
        assert!(asset("swagger-ui-bundle.js").is_some());
        assert!(asset("swagger-ui.css").is_some());
        assert!(asset("init.js").is_some());
        for other in ["index.html", "../Cargo.toml", "swagger-ui.js", ""] {
            assert!(asset(other).is_none(), "{other}");
        }
    }
}
