//! One thin function per route: parse, call a service, map the result.

use super::dto::{AuditDto, ListDto, OrderDto, ProductDto, ReservationDto};
use super::routes::RouteId;
use super::{json_response, query, ApiRequest, ApiResponse};
use crate::adapters::identity::Caller;
use crate::domain::fingerprint::fingerprint;
use crate::domain::order::{NewOrder, Order, StatusChange};
use crate::domain::order_query::{OrderQuery, ORDER_LIST_PARAMS};
use crate::domain::product::{NewProduct, StockAdjustment};
use crate::domain::reservation::{NewReservation, Reservation};
use crate::domain::validate::parse_object;
use crate::domain::DomainError;
use crate::service::{App, AuditQuery, Created, IdempotencyRequest, AUDIT_PARAMS};
use serde::Serialize;

const IDEMPOTENCY_KEY: &str = "idempotency-key";

fn json<T: Serialize>(status: u16, body: &T) -> Result<ApiResponse, DomainError> {
    let bytes = serde_json::to_vec(body).map_err(|_| DomainError::Internal)?;
    Ok(json_response(status, bytes))
}

fn caller(c: Option<&Caller>) -> Result<&Caller, DomainError> {
    c.ok_or(DomainError::Unauthorized)
}

fn param(params: &[String], i: usize) -> Result<&str, DomainError> {
    params.get(i).map(String::as_str).ok_or(DomainError::NotFound("route"))
}

/// Longest id a path may name: the ids we issue are 26 characters, and a longer one could
/// exceed DynamoDB's key size, so it can only be a 404, decided before any call.
const MAX_PATH_ID_CHARS: usize = 128;

/// The id a path names; one that cannot exist is `what` not found.
fn path_id<'a>(params: &'a [String], what: &'static str) -> Result<&'a str, DomainError> {
    let id = param(params, 0)?;
    if id.is_empty() || id.chars().count() > MAX_PATH_ID_CHARS {
        return Err(DomainError::NotFound(what));
    }
    Ok(id)
}

/// Routes without query parameters refuse any (API.md: unknown query parameters are 422).
fn no_query(req: &ApiRequest) -> Result<(), DomainError> {
    query::parse(req.query.as_deref(), &[]).map(|_| ())
}

pub(super) async fn handle(
    app: &App,
    route: RouteId,
    params: &[String],
    who: Option<&Caller>,
    req: &ApiRequest,
) -> Result<ApiResponse, DomainError> {
    match route {
        RouteId::ListProducts => {
            let q = query::parse(req.query.as_deref(), &["limit", "cursor"])?;
            let limit = query::limit(&q)?;
            let page = app.list_products(limit, q.get("cursor").map(String::as_str)).await?;
            json(
                200,
                &ListDto {
                    items: page.items.iter().map(ProductDto::from).collect(),
                    next_cursor: page.next_cursor,
                },
            )
        }
        RouteId::CreateProduct => {
            let who = caller(who)?;
            let body = parse_object(&req.body)?;
            no_query(req)?;
            let new = NewProduct::from_json(&body)?;
            let p = app.create_product(who, new).await?;
            json(201, &ProductDto::from(&p))
        }
        RouteId::GetProduct => {
            no_query(req)?;
            json(200, &ProductDto::from(&app.get_product(path_id(params, "product")?).await?))
        }
        RouteId::AdjustStock => {
            let who = caller(who)?;
            let body = parse_object(&req.body)?;
            no_query(req)?;
            let adj = StockAdjustment::from_json(&body)?;
            let p = app.adjust_stock(who, path_id(params, "product")?, adj).await?;
            json(200, &ProductDto::from(&p))
        }
        RouteId::CreateReservation => {
            let who = caller(who)?;
            let body = parse_object(&req.body)?;
            no_query(req)?;
            let new = NewReservation::from_json(&body)?;
            let idem = idempotency(req, "POST /api/reservations", body)?;
            let render = |r: &Reservation| {
                (201u16, serde_json::to_string(&ReservationDto::from(r)).unwrap_or_default())
            };
            created(app.create_reservation(who, new, idem, &render).await?, &render)
        }
        RouteId::GetReservation => {
            no_query(req)?;
            let r = app.get_reservation(caller(who)?, path_id(params, "reservation")?).await?;
            json(200, &ReservationDto::from(&r))
        }
        RouteId::ReleaseReservation => {
            no_query(req)?;
            let r = app.release_reservation(caller(who)?, path_id(params, "reservation")?).await?;
            json(200, &ReservationDto::from(&r))
        }
        RouteId::ListOrders => {
            let who = caller(who)?;
            let q = query::parse(req.query.as_deref(), ORDER_LIST_PARAMS)?;
            let limit = query::limit(&q)?;
            let order_query = OrderQuery::from_params(&q)?;
            let page =
                app.list_orders(who, order_query, limit, q.get("cursor").map(String::as_str)).await?.page;
            json(
                200,
                &ListDto {
                    items: page.items.iter().map(OrderDto::from).collect(),
                    next_cursor: page.next_cursor,
                },
            )
        }
        RouteId::ListAudit => {
            let who = caller(who)?;
            let q = query::parse(req.query.as_deref(), AUDIT_PARAMS)?;
            let limit = query::limit(&q)?;
            let audit_query = AuditQuery::from_params(&q)?;
            let page = app.list_audit(who, audit_query, limit, q.get("cursor").map(String::as_str)).await?;
            json(
                200,
                &ListDto {
                    items: page.items.iter().map(AuditDto::from).collect(),
                    next_cursor: page.next_cursor,
                },
            )
        }
        RouteId::CreateOrder => {
            let who = caller(who)?;
            let body = parse_object(&req.body)?;
            no_query(req)?;
            let new = NewOrder::from_json(&body)?;
            let idem = idempotency(req, "POST /api/orders", body)?;
            let render = |o: &Order| (201u16, serde_json::to_string(&OrderDto::from(o)).unwrap_or_default());
            created(app.create_order(who, new, idem, &render).await?, &render)
        }
        RouteId::GetOrder => {
            no_query(req)?;
            json(200, &OrderDto::from(&app.get_order(caller(who)?, path_id(params, "order")?).await?))
        }
        RouteId::OpenApi => {
            no_query(req)?;
            super::docs::openapi_json()
        }
        // The docs page and its assets are for browsers, which may add cache-busting
        // query strings; they are not part of the API's contract.
        RouteId::Docs => Ok(super::docs::page()),
        RouteId::DocsAsset => super::docs::asset(param(params, 0)?).ok_or(DomainError::NotFound("route")),
        RouteId::ChangeOrderStatus => {
            let who = caller(who)?;
            let body = parse_object(&req.body)?;
            no_query(req)?;
            let change = StatusChange::from_json(&body)?;
            let o = app.change_order_status(who, path_id(params, "order")?, change).await?;
            json(200, &OrderDto::from(&o))
        }
    }
}

/// The response of a create: the new entity rendered, or the stored first response.
fn created<T>(result: Created<T>, render: &dyn Fn(&T) -> (u16, String)) -> Result<ApiResponse, DomainError> {
    let (status, body) = match result {
        Created::New(t) => render(&t),
        Created::Replay { status, body } => (status, body),
    };
    Ok(json_response(status, body))
}

/// The idempotency request of a create, if it carries a valid `Idempotency-Key`.
fn idempotency(
    req: &ApiRequest,
    route: &'static str,
    body: serde_json::Map<String, serde_json::Value>,
) -> Result<Option<IdempotencyRequest>, DomainError> {
    Ok(idempotency_key(req)?.map(|key| IdempotencyRequest {
        key,
        route,
        fingerprint: fingerprint(&serde_json::Value::Object(body)),
    }))
}

/// `Idempotency-Key`: 1..=255 visible ASCII characters when present.
fn idempotency_key(req: &ApiRequest) -> Result<Option<String>, DomainError> {
    let Some(v) = req.headers.get(IDEMPOTENCY_KEY) else { return Ok(None) };
    match v.to_str() {
        Ok(s) if (1..=255).contains(&s.len()) && s.chars().all(|c| c.is_ascii_graphic() || c == ' ') => {
            Ok(Some(s.to_string()))
        }
        _ => Err(DomainError::invalid("Idempotency-Key", "must be 1 to 255 visible ASCII characters")),
    }
}
