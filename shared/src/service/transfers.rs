//! Transfers between a product's warehouses: create (the units leave the source at once),
//! read, and end in transit by receiving or cancelling. Admins only.

use super::idempotency::{Created, IdempotencyRequest, Lease};
use super::products::{Page, CHANGE_ATTEMPTS};
use super::App;
use crate::domain::caller::Caller;
use crate::domain::ids::{new_id, TransferId};
use crate::domain::product::may_open_warehouse;
use crate::domain::transfer::{NewTransfer, Transfer, TransferEnd, TransferQuery, TransferStatus};
use crate::domain::DomainError;
use crate::store::transfers::{Destination, TransferError};

impl App {
    /// Moves `new.quantity` available units out of the source into transit towards the
    /// destination, opening it (within the product's row limit) when the product has no
    /// stock there yet. With a key, the first response is stored and replayed.
    pub async fn create_transfer(
        &self,
        caller: &Caller,
        new: NewTransfer,
        idem: Option<IdempotencyRequest<Transfer>>,
    ) -> Result<Created<Transfer>, DomainError> {
        if !caller.is_admin {
            return Err(DomainError::Forbidden);
        }
        self.idempotently(caller, idem, |lease| async move { self.send(caller, &new, lease.as_ref()).await })
            .await
    }

    async fn send(
        &self,
        caller: &Caller,
        new: &NewTransfer,
        lease: Option<&Lease<Transfer>>,
    ) -> Result<Transfer, DomainError> {
        for _ in 0..CHANGE_ATTEMPTS {
            let (product, revision) = self
                .store
                .catalogue
                .get_for_change(&new.product_id)
                .await?
                .ok_or(DomainError::NotFound("product"))?;
            if product.stock_buckets > 1 {
                // A bucketed warehouse is several rows; moving units out of it needs the
                // removal plan of a bucketed count, not built for transfers yet.
                return Err(DomainError::invalid(
                    "product_id",
                    "transfers of a product with stock_buckets > 1 are not supported",
                ));
            }
            let has =
                |w: &crate::domain::stock::WarehouseId| product.stock.iter().any(|l| &l.warehouse_id == w);
            if !has(&new.from_warehouse_id) {
                return Err(DomainError::NotFound("warehouse"));
            }
            let to = if has(&new.to_warehouse_id) {
                Destination::Known
            } else {
                may_open_warehouse(product.stock.len(), product.stock_buckets)
                    .map_err(|why| DomainError::invalid("to_warehouse_id", &why))?;
                Destination::New { product: &product, revision }
            };
            let now = self.clock.now();
            let transfer = Transfer {
                id: new_id(now),
                product_id: product.id.clone(),
                from_warehouse_id: new.from_warehouse_id.clone(),
                to_warehouse_id: new.to_warehouse_id.clone(),
                quantity: new.quantity,
                status: TransferStatus::InTransit,
                note: new.note.clone(),
                created_at: now,
                updated_at: now,
                ev: 1,
            };
            let completion = self.completion(lease, &transfer)?;
            match self.store.transfers.create(&transfer, to, product.terms, &caller.user_id, completion).await
            {
                Ok(()) => return Ok(transfer),
                Err(TransferError::ProductMoved) => continue,
                Err(e) => return Err(transfer_error(e)),
            }
        }
        Err(DomainError::Conflict("the product kept changing; retry"))
    }

    /// Admins only.
    pub async fn get_transfer(&self, caller: &Caller, id: &TransferId) -> Result<Transfer, DomainError> {
        if !caller.is_admin {
            return Err(DomainError::Forbidden);
        }
        self.store.transfers.get(id).await?.ok_or(DomainError::NotFound("transfer"))
    }

    /// Admins only. Newest first; the cursor is bound to the caller and the filters.
    pub async fn list_transfers(
        &self,
        caller: &Caller,
        query: TransferQuery,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page<Transfer>, DomainError> {
        if !caller.is_admin {
            return Err(DomainError::Forbidden);
        }
        let binding = query.binding(&caller.user_id);
        let before = cursor.map(|c| self.config.cursors.decode(&binding, c)).transpose()?;
        let (items, more) = self
            .store
            .transfers
            .list(query.product_id.as_deref(), query.status, before.as_deref(), limit)
            .await?;
        Page::after_last(items, more, |x| x.id.as_str(), &self.config.cursors, &binding)
    }

    /// Admins only. Receives or cancels a transfer in transit; of two racing, one wins and
    /// the other is `TransferNotInTransit`.
    pub async fn end_transfer(
        &self,
        caller: &Caller,
        id: &TransferId,
        end: TransferEnd,
    ) -> Result<Transfer, DomainError> {
        let before = self.get_transfer(caller, id).await?;
        let after = before.ended(end, self.clock.now())?;
        match self.store.transfers.end(&after, end, &caller.user_id).await {
            Ok(()) => Ok(after),
            // The other end won meanwhile: the refusal names the status it left.
            Err(TransferError::NotInTransit { status }) => {
                let status = match status {
                    Some(s) => s,
                    None => self.get_transfer(caller, id).await?.status,
                };
                Err(DomainError::TransferNotInTransit { status: status.as_str() })
            }
            Err(e) => Err(transfer_error(e)),
        }
    }
}

fn transfer_error(e: TransferError) -> DomainError {
    match e {
        TransferError::Insufficient { available } => DomainError::InsufficientStock { available },
        TransferError::NotInTransit { status } => {
            DomainError::TransferNotInTransit { status: status.map_or("unknown", TransferStatus::as_str) }
        }
        TransferError::TooManyRows => {
            DomainError::Conflict("the product has too many stock rows to add a warehouse")
        }
        TransferError::TooMuch => DomainError::Conflict(
            "the warehouse the units join would hold more than 1000000000 units on hand",
        ),
        TransferError::LeaseLost => DomainError::IdempotencyInProgress,
        TransferError::ProductMoved => DomainError::Conflict("the product kept changing; retry"),
        TransferError::Store(e) => e.into(),
    }
}
