//! Product catalogue and stock adjustments.

use super::App;
use crate::domain::caller::Caller;
use crate::domain::ids::new_id;
use crate::domain::product::{NewProduct, Product, StockAdjustment};
use crate::domain::stock::{StockLevel, Units};
use crate::domain::DomainError;
use crate::store::catalogue::CreateError;
use crate::store::stock::{AdjustError, Adjustment};

/// One page of a list and the position after its last item, if there is more.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

const PRODUCT_LIST_BINDING: &str = "products";

impl App {
    /// Admins only. SKUs are unique (`Conflict`).
    pub async fn create_product(&self, caller: &Caller, new: NewProduct) -> Result<Product, DomainError> {
        if !caller.is_admin {
            return Err(DomainError::Forbidden);
        }
        let now = self.clock.now();
        let product = Product {
            id: new_id(now),
            sku: new.sku,
            name: new.name,
            price_cents: new.price_cents,
            currency: new.currency,
            stock: new
                .stock
                .into_iter()
                .map(|(warehouse_id, q)| StockLevel {
                    warehouse_id,
                    units: Units { on_hand: q, reserved: 0, available: q },
                    updated_at: now,
                })
                .collect(),
            stock_buckets: new.stock_buckets,
            created_at: now,
            updated_at: now,
        };
        match self.store.catalogue.create(&product, &caller.user_id).await {
            Ok(()) => {
                self.remember_stock_buckets(&product.id, product.stock_buckets);
                Ok(product)
            }
            Err(CreateError::SkuTaken) => Err(DomainError::Conflict("a product with this sku exists")),
            Err(CreateError::Store(e)) => Err(e.into()),
        }
    }

    pub async fn get_product(&self, id: &str) -> Result<Product, DomainError> {
        let product = self.store.catalogue.get(id).await?.ok_or(DomainError::NotFound("product"))?;
        self.remember_stock_buckets(&product.id, product.stock_buckets);
        Ok(product)
    }

    /// Products oldest first. The cursor is bound to this list (it is public, so there is
    /// no caller to bind).
    pub async fn list_products(
        &self,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page<Product>, DomainError> {
        let after = cursor.map(|c| self.config.cursors.decode(PRODUCT_LIST_BINDING, c)).transpose()?;
        let (items, more) = self.store.catalogue.list(after.as_deref(), limit).await?;
        let next_cursor = match items.last() {
            Some(last) if more => Some(self.config.cursors.encode(PRODUCT_LIST_BINDING, &last.id)?),
            _ => None,
        };
        Ok(Page { items, next_cursor })
    }

    /// Admins only. Positive deltas may open a new warehouse; negative ones take only
    /// available units.
    pub async fn adjust_stock(
        &self,
        caller: &Caller,
        product_id: &str,
        adj: StockAdjustment,
    ) -> Result<Product, DomainError> {
        if !caller.is_admin {
            return Err(DomainError::Forbidden);
        }
        let k = self.stock_buckets_of(product_id).await?;
        let now = self.clock.now();
        let adjustment = Adjustment {
            product_id,
            warehouse: &adj.warehouse_id,
            delta: adj.delta,
            buckets: k,
            now,
            actor: &caller.user_id,
        };
        match self.store.stock.adjust(adjustment).await {
            Ok(()) => self.get_product(product_id).await,
            Err(AdjustError::ProductNotFound) => Err(DomainError::NotFound("product")),
            Err(AdjustError::WarehouseNotFound) => Err(DomainError::NotFound("warehouse")),
            Err(AdjustError::Insufficient { available }) => Err(DomainError::InsufficientStock { available }),
            Err(AdjustError::TooMuch) => {
                Err(DomainError::invalid("delta", "would take on-hand units past 1000000000"))
            }
            Err(AdjustError::Contended) => Err(DomainError::Conflict("stock changed concurrently; retry")),
            Err(AdjustError::Store(e)) => Err(e.into()),
        }
    }
}
