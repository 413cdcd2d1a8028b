//! `openapi.yaml` must describe exactly the routes the code serves, the API must serve it,
//! and the docs page must render it (headless Chromium) from renderer files that are the
//! npm package's own.

use serde_json::Value;
use shared::functions::routes;
use std::collections::BTreeSet;
use std::path::PathBuf;
use stockhold_tests::gateway;

fn repo(path: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/..")).join(path)
}

fn spec() -> Value {
    let text = std::fs::read_to_string(repo("openapi.yaml")).expect("read openapi.yaml");
    serde_yaml::from_str(&text).expect("parse openapi.yaml")
}

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

#[test]
fn every_route_in_the_code_is_in_the_spec_and_the_spec_has_no_other() {
    let spec = spec();
    let mut in_spec = BTreeSet::new();
    for (path, item) in spec["paths"].as_object().expect("paths") {
        for m in METHODS {
            if let Some(op) = item.get(m) {
                let public = op.get("security").is_some_and(|s| s.as_array().is_some_and(Vec::is_empty));
                in_spec.insert((m.to_uppercase(), path.clone(), public));
            }
        }
    }
    let in_code: BTreeSet<_> =
        routes().map(|r| (r.method.to_string(), r.path.to_string(), r.public)).collect();
    assert_eq!(in_spec, in_code, "(method, path, public) in openapi.yaml vs shared/src/http/routes.rs");
}

#[test]
fn every_response_in_the_spec_declares_the_request_id_header() {
    let spec = spec();
    let resolve = |v: &Value| -> Value {
        match v.get("$ref").and_then(Value::as_str) {
            Some(r) => {
                let name = r.rsplit('/').next().unwrap_or_default();
                spec["components"]["responses"][name].clone()
            }
            None => v.clone(),
        }
    };
    for (path, item) in spec["paths"].as_object().expect("paths") {
        for m in METHODS {
            let Some(op) = item.get(m) else { continue };
            for (status, resp) in op["responses"].as_object().expect("responses") {
                let resp = resolve(resp);
                assert!(
                    resp["headers"].get("X-Request-Id").is_some(),
                    "{m} {path} {status} lacks X-Request-Id"
                );
            }
        }
    }
}

/// A comma-separated filter's pattern, `^(a|b)(,(a|b))*$`, names exactly the values the
/// code accepts: a pattern that lets through a value the code refuses sends schema-valid
/// requests to 422, and one that misses a value hides it from clients.
#[test]
fn every_comma_list_filter_pattern_names_exactly_the_values_the_code_takes() {
    use shared::domain::event::EventType;
    use shared::domain::movement::Reason;
    use shared::domain::order::OrderStatus;
    let spec = spec();
    let names = |path: &str, param: &str| -> BTreeSet<String> {
        let params = spec["paths"][path]["get"]["parameters"].as_array().expect("parameters");
        let p = params.iter().find(|p| p["name"] == param).unwrap_or_else(|| panic!("{path} {param}"));
        let pattern = p["schema"]["pattern"].as_str().unwrap_or_else(|| panic!("{path} {param}: no pattern"));
        let (head, tail) = pattern.split_once(")(,(").expect("^(a|b)(,(a|b))*$");
        let head = head.trim_start_matches("^(");
        assert_eq!(tail, format!("{head}))*$"), "{path} {param}: both halves name the same values");
        head.split('|').map(str::to_string).collect()
    };
    let code = |values: Vec<&str>| values.into_iter().map(str::to_string).collect::<BTreeSet<_>>();
    assert_eq!(names("/api/events", "type"), code(EventType::ALL.iter().map(|t| t.as_str()).collect()));
    assert_eq!(
        names("/api/products/{id}/movements", "reason"),
        code(Reason::ALL.iter().map(|r| r.as_str()).collect())
    );
    assert_eq!(names("/api/orders", "status"), code(OrderStatus::ALL.iter().map(|s| s.as_str()).collect()));
}

#[tokio::test]
async fn the_api_serves_the_spec_as_json_without_a_token() {
    let gw = gateway().await;
    let r = gw.get("/api/openapi.json", None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, spec());
    assert!(r.headers.contains_key("x-request-id"));
}

/// The vendored renderer files, as the API serves them (gzip), must be the npm package's
/// files of the version deps.sh installs: an upgrade goes through `make docs-assets`.
#[tokio::test]
async fn the_docs_assets_are_the_npm_packages_files_served_gzip_encoded() {
    let gw = gateway().await;
    for name in ["swagger-ui-bundle.js", "swagger-ui.css"] {
        let resp = gw.http.get(format!("{}/api/docs/{name}", gw.url)).send().await.expect("request");
        assert_eq!(resp.status(), 200, "{name}");
        assert_eq!(resp.headers()["content-encoding"], "gzip");
        let served = resp.bytes().await.expect("body");
        let vendored = repo(&format!("docs/swagger-ui/{name}.gz"));
        assert_eq!(served.as_ref(), std::fs::read(&vendored).expect("vendored file"), "{name}");
        let unzipped = std::process::Command::new("gzip").arg("-dc").arg(&vendored).output().expect("gzip");
        let npm = repo(&format!(".local/docs/node_modules/swagger-ui-dist/{name}"));
        let npm = std::fs::read(&npm).unwrap_or_else(|e| panic!("{}: {e} (run make deps)", npm.display()));
        assert!(unzipped.stdout == npm, "docs/swagger-ui/{name}.gz differs from npm's; run make docs-assets");
    }
    let r = gw.get("/api/docs/index.html", None).await;
    assert_eq!((r.status, r.code()), (404, "not_found"));
}

/// Loads the docs page at `/` in headless Chromium and reads the rendered DOM: the
/// renderer ran, fetched /api/openapi.json and listed the routes.
#[tokio::test]
async fn the_docs_page_at_the_root_renders_every_route_in_headless_chromium() {
    let gw = gateway().await;
    let page = gw.http.get(format!("{}/", gw.url)).send().await.expect("request");
    assert_eq!(page.status(), 200);
    assert!(page.headers()["content-type"].to_str().unwrap_or("").starts_with("text/html"));
    // Chromium enforces the policy below: the page must render under it.
    let csp = page.headers()["content-security-policy"].to_str().unwrap_or("").to_string();
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-eval"), "{csp}");
    let init = gw.http.get(format!("{}/api/docs/init.js", gw.url)).send().await.expect("init.js");
    let init = init.text().await.unwrap_or_default();
    assert!(init.contains("persistAuthorization: false"), "no token kept in the browser: {init}");
    // Lets the page's scripts and its fetch of the spec finish before the dump.
    let dom = stockhold_tests::browser::dump_dom(&format!("{}/", gw.url), 15000).await;
    assert!(dom.contains("swagger-ui"), "no renderer in the DOM: {dom}");
    // Swagger UI renders one block per operation, marked with its path and method.
    for route in routes() {
        let expected = routes().filter(|r| r.path == route.path).count();
        let shown = dom.matches(&format!("data-path=\"{}\"", route.path)).count();
        assert_eq!(shown, expected, "operations rendered for {}", route.path);
    }
    for method in ["GET", "POST", "PATCH", "DELETE"] {
        let expected = routes().filter(|r| r.method == method).count();
        let shown = dom.matches(&format!("opblock-summary-method\">{method}<")).count();
        assert_eq!(shown, expected, "{method} operations rendered");
    }
    assert!(dom.contains("stockhold"), "title not rendered");
}
