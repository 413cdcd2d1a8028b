//! Returns of delivered orders: take units back line by line, restocked or not, with the
//! customer's allowance given back, exact under any concurrency; and an order's returns.

use super::idempotency::{Created, IdempotencyRequest, Lease};
use super::products::Page;
use super::App;
use crate::domain::caller::Caller;
use crate::domain::ids::{new_id, OrderId};
use crate::domain::order_return::{plan, NewReturn, OrderReturn};
use crate::domain::DomainError;
use crate::store::orders::ReturnError;

/// How often a return is planned again after the order changed under it. Returns that
/// fit apply without retrying each other; only those racing for an order's last units
/// (or one line's) plan again, and each round settles at least one of them.
const RETURN_ATTEMPTS: usize = 8;

impl App {
    /// Admins only. Takes `new`'s units back on a delivered order; with a key, the first
    /// response is stored and replayed.
    pub async fn create_return(
        &self,
        caller: &Caller,
        order_id: &OrderId,
        new: NewReturn,
        idem: Option<IdempotencyRequest<OrderReturn>>,
    ) -> Result<Created<OrderReturn>, DomainError> {
        if !caller.is_admin {
            return Err(DomainError::Forbidden);
        }
        self.idempotently(caller, idem, |lease| async move {
            self.take_back(caller, order_id, &new, lease.as_ref()).await
        })
        .await
    }

    async fn take_back(
        &self,
        caller: &Caller,
        order_id: &OrderId,
        new: &NewReturn,
        lease: Option<&Lease<OrderReturn>>,
    ) -> Result<OrderReturn, DomainError> {
        for _ in 0..RETURN_ATTEMPTS {
            let order = self.get_order(caller, order_id).await?;
            let now = self.clock.now();
            let planned = plan(&order, new, new_id(now), now)?;
            let completion = self.completion(lease, &planned.ret)?;
            match self.store.orders.record_return(&planned, &caller.user_id, completion).await {
                Ok(()) => return Ok(planned.ret),
                Err(ReturnError::Changed) => continue,
                Err(ReturnError::LeaseLost) => return Err(DomainError::IdempotencyInProgress),
                Err(ReturnError::RowFull) => {
                    return Err(DomainError::Conflict(
                        "a warehouse would hold more than 1000000000 units on hand",
                    ))
                }
                Err(ReturnError::Store(e)) => return Err(e.into()),
            }
        }
        Err(DomainError::Conflict("the order kept changing; retry"))
    }

    /// The owner's or an admin's: an order's returns, oldest first. The cursor is bound
    /// to the caller and the order.
    pub async fn list_returns(
        &self,
        caller: &Caller,
        order_id: &OrderId,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page<OrderReturn>, DomainError> {
        let order = self.get_order(caller, order_id).await?;
        let binding = format!("returns\0{}\0{}", caller.user_id, order.id);
        let after = cursor.map(|c| self.config.cursors.decode(&binding, c)).transpose()?;
        let (items, more) = self.store.orders.returns(&order.id, after.as_deref(), limit).await?;
        Page::after_last(items, more, |x| x.id.as_str(), &self.config.cursors, &binding)
    }
}
