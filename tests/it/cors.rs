//! Browser clients: a storefront page on another origin calls the API through the local
//! gateway, which applies the template's `CorsConfiguration` as API Gateway does. Real
//! headless Chromium enforces CORS, so what passes here passes in a browser.

use serde_json::json;
use stockhold_tests::browser::dump_dom;
use stockhold_tests::*;

/// The storefront: reads a product, then reserves a unit with a bearer token and an
/// idempotency key (headers that make the browser send a preflight), and writes what
/// each call gave into the DOM, including a header only CORS exposure lets it read.
/// What it calls comes from its own query string.
const PAGE: &str = r#"<!doctype html><html><body><pre id="out">pending</pre><script>
const q = new URLSearchParams(location.search);
const out = document.getElementById("out");
(async () => {
  const log = [];
  try {
    const read = await fetch(q.get("api") + "/api/products/" + q.get("product"));
    log.push("read:" + read.status);
    const reserve = await fetch(q.get("api") + "/api/reservations", {
      method: "POST",
      headers: { "Authorization": "Bearer " + q.get("token"), "Content-Type": "application/json", "Idempotency-Key": q.get("key") },
      body: JSON.stringify({ product_id: q.get("product"), quantity: 1 }),
    });
    log.push("reserve:" + reserve.status);
    log.push("request-id:" + (reserve.headers.get("x-request-id") ? "readable" : "hidden"));
  } catch (e) {
    log.push("blocked:" + e.name);
  }
  out.textContent = "done " + log.join(" ");
})();
</script></body></html>"#;

/// Serves `PAGE` on an origin of its own until the returned sender is dropped.
async fn storefront() -> (String, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let origin = format!("http://{}", listener.local_addr().expect("addr"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let site = axum::Router::new()
        .route("/", axum::routing::get(|| async { ([("content-type", "text/html; charset=utf-8")], PAGE) }));
    tokio::spawn(async move {
        let _ = axum::serve(listener, site)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await;
    });
    (origin, stop)
}

/// What the storefront at `origin` printed after calling `api`.
async fn visit(origin: &str, api: &str, product: &str, buyer: &str, key: &str) -> String {
    let url = format!("{origin}/?api={api}&product={product}&token={buyer}&key={key}");
    let dom = dump_dom(&url, 10_000).await;
    let start = dom.find("<pre id=\"out\">").map(|i| i + 14).unwrap_or(0);
    dom[start..].split("</pre>").next().unwrap_or_default().to_string()
}

#[tokio::test]
async fn a_storefront_on_an_allowed_origin_reads_and_reserves_and_another_origin_is_refused_by_the_browser() {
    let (shop, _shop) = storefront().await;
    let (other, _other) = storefront().await;
    let gw = gateway_with(app().await, |g| g.with_allowed_origins(vec![shop.clone()])).await;
    let product = gw.product(json!({"main": 5})).await;
    let buyer = token(&unique("cors-buyer"), false);

    let seen = visit(&shop, &gw.url, &product, &buyer, &unique("cors")).await;
    assert_eq!(seen, "done read:200 reserve:201 request-id:readable", "from the allowed origin");

    let seen = visit(&other, &gw.url, &product, &buyer, &unique("cors")).await;
    assert_eq!(seen, "done blocked:TypeError", "the browser refuses a response without CORS headers");
    // The refused page's first call was a simple GET (served, but unreadable to it); its
    // reservation needed a preflight, which failed, so nothing was held for it.
    assert_eq!(gw.stock_of(&product, "main").await.1, 1, "one unit held: the allowed page's");
}

#[tokio::test]
async fn preflights_are_answered_from_the_template_before_the_authorizer() {
    let gw = gateway().await;
    let http = reqwest::Client::new();
    let r = http
        .request(reqwest::Method::OPTIONS, format!("{}/api/reservations", gw.url))
        .header("origin", "https://shop.example")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "authorization,content-type,idempotency-key")
        .send()
        .await
        .expect("preflight");
    assert_eq!(r.status(), 204, "no token needed for a preflight");
    let h = r.headers();
    // The template's default allows any origin.
    assert_eq!(h["access-control-allow-origin"], "*");
    assert_eq!(h["access-control-allow-methods"], "GET,POST,PATCH,DELETE");
    assert_eq!(
        h["access-control-allow-headers"],
        "authorization,content-type,idempotency-key,if-match,x-request-id"
    );
    assert_eq!(h["access-control-max-age"], "600");
    let r = http
        .get(format!("{}/api/products/none", gw.url))
        .header("origin", "https://shop.example")
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 404);
    assert_eq!(r.headers()["access-control-expose-headers"], "x-request-id,etag,retry-after");
}
