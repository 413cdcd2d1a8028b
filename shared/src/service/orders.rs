//! Orders: converting reservations, reading, and status changes under the state machine.

use super::idempotency::{Created, IdempotencyRequest, Lease};
use super::ports::Metric;
use super::products::Page;
use super::App;
use crate::domain::caller::Caller;
use crate::domain::ids::{new_id, OrderId};
use crate::domain::order::{
    judge, role_may_request, NewOrder, Order, OrderItem, OrderStatus, StatusChange, TransitionError,
};
use crate::domain::order_query::{OrderQuery, Scope};
use crate::domain::reservation::{Reservation, ReservationStatus};
use crate::domain::DomainError;
use crate::store::catalogue::PriceSnapshot;
use crate::store::order_list::PageError;
use crate::store::orders::{ConvertError, StatusWrite};
use futures::future::join_all;
use std::collections::{BTreeSet, HashMap};

/// How often a conversion reads prices again after a product changed under it.
const PRICE_ATTEMPTS: usize = 3;

/// How often a status change is judged again after losing a race.
const TRANSITION_ATTEMPTS: usize = 5;

impl App {
    /// Turns the caller's reservations into one pending order, all or nothing, at the
    /// products' current prices. With a key, the first response is stored and replayed.
    pub async fn create_order(
        &self,
        caller: &Caller,
        new: NewOrder,
        idem: Option<IdempotencyRequest<Order>>,
    ) -> Result<Created<Order>, DomainError> {
        self.idempotently(
            caller,
            idem,
            |lease| async move { self.convert(caller, &new, lease.as_ref()).await },
        )
        .await
    }

    async fn convert(
        &self,
        caller: &Caller,
        new: &NewOrder,
        lease: Option<&Lease<Order>>,
    ) -> Result<Order, DomainError> {
        let found = self.store.reservations.get_many(&new.reservation_ids).await?;
        let by_id: HashMap<&str, _> =
            found.iter().filter(|r| r.user_id == caller.user_id).map(|r| (r.id.as_str(), r)).collect();
        // Someone else's reservation is as unknown as a missing one.
        let reservations = new
            .reservation_ids
            .iter()
            .map(|id| by_id.get(id.as_str()).copied().ok_or(DomainError::NotFound("reservation")))
            .collect::<Result<Vec<_>, _>>()?;
        let product_ids: Vec<&str> =
            reservations.iter().map(|r| r.product_id.as_str()).collect::<BTreeSet<_>>().into_iter().collect();
        // Prices are read, then the order is written on condition that no product changed
        // in between (a price edited meanwhile means reading them again).
        let mut attempt = 0;
        let order = loop {
            attempt += 1;
            let prices = self.store.catalogue.price_snapshots(&product_ids).await?;
            let order = self.order_of(caller, &reservations, &prices)?;
            let versions: Vec<(&str, i64)> = prices.iter().map(|(id, p)| (id.as_str(), p.version)).collect();
            let completion = self.completion(lease, &order)?;
            match self.store.orders.create(&order, order.created_at, completion, &versions).await {
                Ok(()) => break order,
                Err(ConvertError::PricesChanged) if attempt < PRICE_ATTEMPTS => continue,
                Err(ConvertError::PricesChanged) => {
                    return Err(DomainError::Conflict("the products' prices kept changing; retry"))
                }
                Err(ConvertError::ReservationsChanged) => return Err(DomainError::ReservationNotActive),
                Err(ConvertError::LeaseLost) => return Err(DomainError::IdempotencyInProgress),
                Err(ConvertError::Store(e)) => return Err(e.into()),
            }
        };
        // Converted holds no longer need their expiry schedules (best effort: a leftover
        // one fires, finds the hold converted and does nothing).
        let cancels = join_all(reservations.iter().map(|r| self.scheduler.cancel(&r.id, r.expires_at))).await;
        for (r, result) in reservations.iter().zip(cancels) {
            if let Err(e) = result {
                tracing::warn!(reservation_id = %r.id, error = %e, "could not delete expiry schedule");
            }
        }
        Ok(order)
    }

    /// The order `reservations` make at `prices` (one currency, all still active now).
    fn order_of(
        &self,
        caller: &Caller,
        reservations: &[&Reservation],
        prices: &HashMap<String, PriceSnapshot>,
    ) -> Result<Order, DomainError> {
        let currencies: BTreeSet<&str> = prices.values().map(|p| p.currency.as_str()).collect();
        if currencies.len() > 1 {
            return Err(DomainError::invalid(
                "reservation_ids",
                "the reservations' products are priced in different currencies; order them separately",
            ));
        }
        let now = self.clock.now();
        if reservations.iter().any(|r| r.status_at(now) != ReservationStatus::Active) {
            return Err(DomainError::ReservationNotActive);
        }
        let items = reservations
            .iter()
            .map(|r| {
                let p = prices.get(&r.product_id).ok_or(DomainError::NotFound("product"))?;
                Ok(OrderItem {
                    product_id: r.product_id.clone(),
                    sku: p.sku.clone(),
                    name: p.name.clone(),
                    warehouse_id: r.warehouse_id.as_str().to_string(),
                    reservation_id: r.id.clone(),
                    quantity: r.quantity,
                    returned: 0,
                    unit_price_cents: p.price_cents,
                    bucket: r.bucket,
                })
            })
            .collect::<Result<Vec<_>, DomainError>>()?;
        Ok(Order {
            id: new_id(now),
            user_id: caller.user_id.clone(),
            status: OrderStatus::Pending,
            currency: currencies.into_iter().next().unwrap_or("USD").to_string(),
            items,
            created_at: now,
            updated_at: now,
            last_return: None,
        })
    }

    /// Lists orders: a customer's own, or for an admin every user's (or one user's with
    /// `user_id`). The cursor is bound to the caller, the scope and the whole query.
    pub async fn list_orders(
        &self,
        caller: &Caller,
        query: OrderQuery,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page<Order>, DomainError> {
        let scope = match (&query.user_id, caller.is_admin) {
            (Some(_), false) => return Err(DomainError::Forbidden),
            (Some(u), true) => Scope::User(u.clone()),
            (None, true) => Scope::All,
            (None, false) => Scope::User(caller.user_id.clone()),
        };
        let binding = query.binding(&caller.user_id, &scope);
        let after = cursor.map(|c| self.config.cursors.decode(&binding, c)).transpose()?;
        let page = match self.store.order_lists.page(&scope, &query, after.as_deref(), limit).await {
            Ok(page) => page,
            // Authenticated, so ours; still refused when it is not a position.
            Err(PageError::Position(_)) => return Err(DomainError::InvalidCursor),
            Err(PageError::Store(e)) => return Err(e.into()),
        };
        let next_cursor = page.next.map(|p| self.config.cursors.encode(&binding, &p)).transpose()?;
        Ok(Page { items: page.orders, next_cursor })
    }

    /// The owner's or an admin's view; anyone else gets `NotFound`.
    pub async fn get_order(&self, caller: &Caller, id: &OrderId) -> Result<Order, DomainError> {
        let order = self.store.orders.get(id).await?.filter(|o| caller.may_see(&o.user_id));
        order.ok_or(DomainError::NotFound("order"))
    }

    /// Moves an order to `change.status` if the caller's role and the transition table
    /// allow it from the status it has when the change applies. Of concurrent changes one
    /// applies at a time, each judged against the status it finds.
    pub async fn change_order_status(
        &self,
        caller: &Caller,
        id: &OrderId,
        change: StatusChange,
    ) -> Result<Order, DomainError> {
        if !role_may_request(caller.is_admin, change.status) {
            return Err(DomainError::Forbidden);
        }
        for _ in 0..TRANSITION_ATTEMPTS {
            let order = self.get_order(caller, id).await?;
            match judge(caller.is_admin, order.status, change.status) {
                Ok(()) => {}
                Err(TransitionError::Forbidden) => return Err(DomainError::Forbidden),
                Err(TransitionError::NotAllowed { allowed }) => {
                    return Err(DomainError::InvalidTransition { allowed })
                }
            }
            let now = self.clock.now();
            match self.store.orders.change_status(&order, change.status, now, &caller.user_id).await? {
                StatusWrite::Applied => {
                    self.metrics.count(Metric::OrderStatusChanged(change.status), 1);
                    return Ok(Order { status: change.status, updated_at: now, ..order });
                }
                StatusWrite::Changed => {}
                StatusWrite::RowFull => {
                    return Err(DomainError::Conflict(
                        "a warehouse would hold more than 1000000000 units on hand; remove some first",
                    ))
                }
            }
        }
        Err(DomainError::Conflict("the order kept changing; retry"))
    }
}
