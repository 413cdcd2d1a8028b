//! One thin handler per route: parse the request, call a service, render the result.
//! Transport failures (no caller, a body that is not JSON) are `ApiError`s; everything
//! a service says is a `DomainError` inside one.

use super::dto::{
    AuditDto, ListDto, MovementDto, OrderDto, ProductDto, ReconciliationDto, ReservationDto, ReturnDto,
    StockAtDto, TransferDto,
};
use super::{json_response, query, ApiError, ApiRequest, ApiResponse};
use crate::domain::caller::Caller;
use crate::domain::fingerprint::{of_request, Canonical};
use crate::domain::ids::{Id, OrderId, ProductId, ReservationId, TransferId};
use crate::domain::movement::{MovementQuery, MOVEMENT_PARAMS};
use crate::domain::order::{NewOrder, StatusChange};
use crate::domain::order_query::{OrderQuery, ORDER_LIST_PARAMS};
use crate::domain::order_return::NewReturn;
use crate::domain::product::{NewProduct, Precondition, ProductChanges, StockAdjustment};
use crate::domain::reservation::{NewBatch, NewReservation};
use crate::domain::time::parse_time;
use crate::domain::transfer::{NewTransfer, TransferEnd, TransferQuery, TRANSFER_LIST_PARAMS};
use crate::domain::DomainError;
use crate::service::{App, AuditQuery, Created, EventQuery, IdempotencyRequest, AUDIT_PARAMS, EVENT_PARAMS};
use futures::future::BoxFuture;
use serde::Serialize;
use serde_json::{Map, Value};

/// A route's handler: parse, call a service, map the result.
pub type Handler = for<'a> fn(&'a App, Ctx<'a>) -> BoxFuture<'a, Result<ApiResponse, ApiError>>;

/// What a handler gets besides the application.
#[derive(Debug, Clone, Copy)]
pub struct Ctx<'a> {
    /// The values of the path's `{name}` segments, in order.
    pub params: &'a [String],
    /// The route's path pattern (`/api/orders/{id}`).
    pub pattern: &'static str,
    /// The authenticated caller; `None` on public routes.
    pub caller: Option<&'a Caller>,
    pub req: &'a ApiRequest,
}

const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// A handler: `Box::pin`s the body so that every route fits one `fn` pointer type.
macro_rules! handler {
    ($(#[$m:meta])* $name:ident($app:ident, $cx:ident) $body:block) => {
        $(#[$m])*
        pub(super) fn $name<'a>($app: &'a App, $cx: Ctx<'a>) -> BoxFuture<'a, Result<ApiResponse, ApiError>> {
            Box::pin(async move $body)
        }
    };
}

fn json<T: Serialize>(status: u16, body: &T) -> Result<ApiResponse, ApiError> {
    let bytes = serde_json::to_vec(body).map_err(|_| DomainError::Internal)?;
    Ok(json_response(status, bytes))
}

fn caller<'a>(cx: &Ctx<'a>) -> Result<&'a Caller, ApiError> {
    cx.caller.ok_or(ApiError::Unauthorized)
}

/// The request body: anything that is not a JSON object is `InvalidJson` (400).
fn body(req: &ApiRequest) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice::<Value>(&req.body) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(ApiError::InvalidJson),
    }
}

fn param<'a>(cx: &Ctx<'a>, i: usize) -> Result<&'a str, ApiError> {
    cx.params.get(i).map(String::as_str).ok_or(ApiError::RouteNotFound)
}

/// The id a path names, parsed by the id rule; one that cannot be an id cannot exist, so
/// it is `what` not found, decided before any call.
fn path_id<T: Id>(cx: &Ctx<'_>, what: &'static str) -> Result<T, ApiError> {
    T::parse(param(cx, 0)?).map_err(|_| DomainError::NotFound(what).into())
}

/// Routes without query parameters refuse any (unknown query parameters are a 422).
fn no_query(req: &ApiRequest) -> Result<(), ApiError> {
    query::parse(req.query.as_deref(), &[])?;
    Ok(())
}

fn list<D: Serialize>(items: Vec<D>, next_cursor: Option<String>) -> Result<ApiResponse, ApiError> {
    json(200, &ListDto { items, next_cursor })
}

/// A create's response: the new entity rendered, or the first response replayed as it
/// was stored (both 201).
fn created<T>(result: Created<T>, encode: fn(&T) -> String) -> ApiResponse {
    match result {
        Created::New(t) => json_response(201, encode(&t)),
        Created::Replay(stored) => json_response(201, stored),
    }
}

/// The idempotency request of a create, if it carries a valid `Idempotency-Key`; keys are
/// scoped to the method and the concrete path (`POST /api/orders`, `POST
/// /api/orders/01K.../returns`), so a key used on one order's returns never replays on
/// another's. The fingerprint is the validated request's,
/// so a retry that validation reads as the same request is the same request.
fn idempotency<T>(
    cx: &Ctx<'_>,
    request: &impl Canonical,
    encode: fn(&T) -> String,
) -> Result<Option<IdempotencyRequest<T>>, ApiError> {
    let req = cx.req;
    let route = format!("{} {}", req.method, req.path);
    let Some(v) = req.headers.get(IDEMPOTENCY_KEY) else { return Ok(None) };
    // 1..=255 visible ASCII characters.
    let key = match v.to_str() {
        Ok(s) if (1..=255).contains(&s.len()) && s.chars().all(|c| c.is_ascii_graphic() || c == ' ') => {
            s.to_string()
        }
        _ => {
            return Err(
                DomainError::invalid("Idempotency-Key", "must be 1 to 255 visible ASCII characters").into()
            )
        }
    };
    Ok(Some(IdempotencyRequest { key, route, fingerprint: of_request(request), encode }))
}

fn encode_reservation(r: &crate::domain::reservation::Reservation) -> String {
    serde_json::to_string(&ReservationDto::from(r)).unwrap_or_default()
}

/// A batch hold's body: `{"reservations": [...]}` in the order of its lines.
#[derive(Serialize)]
struct BatchDto<'a> {
    reservations: Vec<ReservationDto<'a>>,
}

// An encoder is `fn(&T)` of what the service returns, here a `Vec`.
#[allow(clippy::ptr_arg)]
fn encode_batch(rs: &Vec<crate::domain::reservation::Reservation>) -> String {
    serde_json::to_string(&BatchDto { reservations: rs.iter().map(ReservationDto::from).collect() })
        .unwrap_or_default()
}

fn encode_transfer(t: &crate::domain::transfer::Transfer) -> String {
    serde_json::to_string(&TransferDto::from(t)).unwrap_or_default()
}

fn encode_order(o: &crate::domain::order::Order) -> String {
    serde_json::to_string(&OrderDto::from(o)).unwrap_or_default()
}

handler!(list_products(app, cx) {
    let q = query::parse(cx.req.query.as_deref(), &["limit", "cursor"])?;
    let page = app.list_products(query::limit(&q)?, q.get("cursor").map(String::as_str)).await?;
    list(page.items.iter().map(ProductDto::from).collect(), page.next_cursor)
});

handler!(create_product(app, cx) {
    let who = caller(&cx)?;
    let body = body(cx.req)?;
    no_query(cx.req)?;
    let p = app.create_product(who, NewProduct::from_json(&body)?).await?;
    json(201, &ProductDto::from(&p))
});

/// A product with its `ETag`.
fn product_response(p: &crate::domain::product::Product) -> Result<ApiResponse, ApiError> {
    let mut resp = json(200, &ProductDto::from(p))?;
    if let Ok(tag) = http::HeaderValue::from_str(&super::dto::etag(p)) {
        resp.headers_mut().insert(http::header::ETAG, tag);
    }
    Ok(resp)
}

/// Longest `If-Match` read (a list of our tags is far shorter).
const MAX_IF_MATCH_CHARS: usize = 1024;

/// `If-Match`, read from the bytes of all its field lines (`Precondition::parse_if_match`):
/// a value that is not `*` or a list of entity tags, bytes that are not visible ASCII
/// included, is a 422 and changes nothing.
fn if_match(req: &ApiRequest) -> Result<Option<Precondition>, ApiError> {
    let values: Vec<&[u8]> =
        req.headers.get_all(http::header::IF_MATCH).iter().map(|v| v.as_bytes()).collect();
    if values.is_empty() {
        return Ok(None);
    }
    if values.iter().map(|v| v.len()).sum::<usize>() > MAX_IF_MATCH_CHARS {
        return Err(DomainError::invalid("If-Match", "must be at most 1024 characters").into());
    }
    let joined = values.join(&b","[..]);
    Precondition::parse_if_match(&joined)
        .map(Some)
        .map_err(|message| DomainError::invalid("If-Match", message).into())
}

handler!(get_product(app, cx) {
    no_query(cx.req)?;
    product_response(&app.get_product(&path_id::<ProductId>(&cx, "product")?).await?)
});

handler!(change_product(app, cx) {
    let who = caller(&cx)?;
    let body = body(cx.req)?;
    no_query(cx.req)?;
    let changes = ProductChanges::from_json(&body)?;
    let precondition = if_match(cx.req)?;
    product_response(&app.change_product(who, &path_id::<ProductId>(&cx, "product")?, changes, precondition).await?)
});

handler!(adjust_stock(app, cx) {
    let who = caller(&cx)?;
    let body = body(cx.req)?;
    no_query(cx.req)?;
    let adj = StockAdjustment::from_json(&body)?;
    json(200, &ProductDto::from(&app.adjust_stock(who, &path_id::<ProductId>(&cx, "product")?, adj).await?))
});

handler!(create_transfer(app, cx) {
    let who = caller(&cx)?;
    let body = body(cx.req)?;
    no_query(cx.req)?;
    let new = NewTransfer::from_json(&body)?;
    let idem = idempotency(&cx, &new, encode_transfer)?;
    Ok(created(app.create_transfer(who, new, idem).await?, encode_transfer))
});

handler!(list_transfers(app, cx) {
    let who = caller(&cx)?;
    let q = query::parse(cx.req.query.as_deref(), TRANSFER_LIST_PARAMS)?;
    let limit = query::limit(&q)?;
    let tq = TransferQuery::from_params(&q)?;
    let page = app.list_transfers(who, tq, limit, q.get("cursor").map(String::as_str)).await?;
    list(page.items.iter().map(TransferDto::from).collect(), page.next_cursor)
});

handler!(get_transfer(app, cx) {
    no_query(cx.req)?;
    json(200, &TransferDto::from(&app.get_transfer(caller(&cx)?, &path_id::<TransferId>(&cx, "transfer")?).await?))
});

/// `receive` and `cancel` take no body; one that is given must be an object without fields.
async fn end_transfer(app: &App, cx: Ctx<'_>, end: TransferEnd) -> Result<ApiResponse, ApiError> {
    let who = caller(&cx)?;
    if !cx.req.body.is_empty() {
        crate::domain::validate::Fields::new(&body(cx.req)?).finish(|| Some(()))?;
    }
    no_query(cx.req)?;
    let t = app.end_transfer(who, &path_id::<TransferId>(&cx, "transfer")?, end).await?;
    json(200, &TransferDto::from(&t))
}

handler!(receive_transfer(app, cx) {
    end_transfer(app, cx, TransferEnd::Receive).await
});

handler!(cancel_transfer(app, cx) {
    end_transfer(app, cx, TransferEnd::Cancel).await
});

handler!(create_reservation(app, cx) {
    let who = caller(&cx)?;
    let body = body(cx.req)?;
    no_query(cx.req)?;
    let new = NewReservation::from_json(&body)?;
    let idem = idempotency(&cx, &new, encode_reservation)?;
    Ok(created(app.create_reservation(who, new, idem).await?, encode_reservation))
});

handler!(create_reservation_batch(app, cx) {
    let who = caller(&cx)?;
    let body = body(cx.req)?;
    no_query(cx.req)?;
    let new = NewBatch::from_json(&body)?;
    let idem = idempotency(&cx, &new, encode_batch)?;
    Ok(created(app.create_reservation_batch(who, new, idem).await?, encode_batch))
});

handler!(get_reservation(app, cx) {
    no_query(cx.req)?;
    let r = app.get_reservation(caller(&cx)?, &path_id::<ReservationId>(&cx, "reservation")?).await?;
    json(200, &ReservationDto::from(&r))
});

handler!(release_reservation(app, cx) {
    no_query(cx.req)?;
    let r = app.release_reservation(caller(&cx)?, &path_id::<ReservationId>(&cx, "reservation")?).await?;
    json(200, &ReservationDto::from(&r))
});

handler!(extend_reservation(app, cx) {
    let who = caller(&cx)?;
    // No body is needed; one that is given must be an object without fields.
    if !cx.req.body.is_empty() {
        crate::domain::validate::Fields::new(&body(cx.req)?).finish(|| Some(()))?;
    }
    no_query(cx.req)?;
    let r = app.extend_reservation(who, &path_id::<ReservationId>(&cx, "reservation")?).await?;
    json(200, &ReservationDto::from(&r))
});

handler!(list_orders(app, cx) {
    let who = caller(&cx)?;
    let q = query::parse(cx.req.query.as_deref(), ORDER_LIST_PARAMS)?;
    let limit = query::limit(&q)?;
    let order_query = OrderQuery::from_params(&q)?;
    let page = app.list_orders(who, order_query, limit, q.get("cursor").map(String::as_str)).await?;
    list(page.items.iter().map(OrderDto::from).collect(), page.next_cursor)
});

handler!(create_order(app, cx) {
    let who = caller(&cx)?;
    let body = body(cx.req)?;
    no_query(cx.req)?;
    let new = NewOrder::from_json(&body)?;
    let idem = idempotency(&cx, &new, encode_order)?;
    Ok(created(app.create_order(who, new, idem).await?, encode_order))
});

handler!(get_order(app, cx) {
    no_query(cx.req)?;
    json(200, &OrderDto::from(&app.get_order(caller(&cx)?, &path_id::<OrderId>(&cx, "order")?).await?))
});

fn encode_return(r: &crate::domain::order_return::OrderReturn) -> String {
    serde_json::to_string(&ReturnDto::from(r)).unwrap_or_default()
}

handler!(create_return(app, cx) {
    let who = caller(&cx)?;
    let body = body(cx.req)?;
    no_query(cx.req)?;
    let order = path_id::<OrderId>(&cx, "order")?;
    let new = NewReturn::from_json(&body)?;
    let idem = idempotency(&cx, &new, encode_return)?;
    Ok(created(app.create_return(who, &order, new, idem).await?, encode_return))
});

handler!(list_returns(app, cx) {
    let who = caller(&cx)?;
    let q = query::parse(cx.req.query.as_deref(), &["limit", "cursor"])?;
    let order = path_id::<OrderId>(&cx, "order")?;
    let page = app.list_returns(who, &order, query::limit(&q)?, q.get("cursor").map(String::as_str)).await?;
    list(page.items.iter().map(ReturnDto::from).collect(), page.next_cursor)
});

handler!(change_order_status(app, cx) {
    let who = caller(&cx)?;
    let body = body(cx.req)?;
    no_query(cx.req)?;
    let change = StatusChange::from_json(&body)?;
    json(200, &OrderDto::from(&app.change_order_status(who, &path_id::<OrderId>(&cx, "order")?, change).await?))
});

handler!(list_audit(app, cx) {
    let who = caller(&cx)?;
    let q = query::parse(cx.req.query.as_deref(), AUDIT_PARAMS)?;
    let limit = query::limit(&q)?;
    let audit_query = AuditQuery::from_params(&q)?;
    let page = app.list_audit(who, audit_query, limit, q.get("cursor").map(String::as_str)).await?;
    list(page.items.iter().map(AuditDto::from).collect(), page.next_cursor)
});

handler!(list_events(app, cx) {
    let who = caller(&cx)?;
    let q = query::parse(cx.req.query.as_deref(), EVENT_PARAMS)?;
    let limit = query::limit(&q)?;
    let eq = EventQuery::from_params(&q)?;
    let page = app.list_events(who, &eq, limit, q.get("after").map(String::as_str)).await?;
    json(200, &serde_json::json!({"items": page.items, "next_cursor": page.next_cursor}))
});

handler!(list_movements(app, cx) {
    let who = caller(&cx)?;
    let q = query::parse(cx.req.query.as_deref(), MOVEMENT_PARAMS)?;
    let limit = query::limit(&q)?;
    let mq = MovementQuery::from_params(&q)?;
    let id = path_id::<ProductId>(&cx, "product")?;
    let found = app.list_movements(who, &id, mq, limit, q.get("cursor").map(String::as_str)).await?;
    let items = found.page.items.iter().map(|m| MovementDto::new(m, found.bucketed)).collect();
    list(items, found.page.next_cursor)
});

handler!(stock_as_of(app, cx) {
    let who = caller(&cx)?;
    let q = query::parse(cx.req.query.as_deref(), &["as_of"])?;
    let as_of = match q.get("as_of") {
        Some(t) => Some(parse_time(t).ok_or_else(|| DomainError::invalid("as_of", "must be an RFC 3339 time"))?),
        None => None,
    };
    let id = path_id::<ProductId>(&cx, "product")?;
    json(200, &StockAtDto::from(&app.stock_as_of(who, &id, as_of).await?))
});

handler!(reconciliation(app, cx) {
    let who = caller(&cx)?;
    no_query(cx.req)?;
    let id = path_id::<ProductId>(&cx, "product")?;
    json(200, &ReconciliationDto::from(&app.reconciliation(who, &id).await?))
});

handler!(openapi(_app, cx) {
    no_query(cx.req)?;
    Ok(super::docs::openapi_json())
});

// The docs page and its assets are for browsers, which may add cache-busting query
// strings; they are not part of the API's contract.
handler!(docs_page(_app, _cx) {
    Ok(super::docs::page())
});

handler!(docs_asset(_app, cx) {
    super::docs::asset(param(&cx, 0)?).ok_or(ApiError::RouteNotFound)
});
