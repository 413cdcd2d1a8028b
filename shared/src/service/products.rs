//! Product catalogue and stock adjustments.

use super::App;
use crate::domain::caller::Caller;
use crate::domain::ids::{new_id, ProductId};
use crate::domain::product::Terms;
use crate::domain::product::{
    may_open_warehouse, NewProduct, Precondition, Product, ProductChanges, StockAdjustment, StockChange,
};
use crate::domain::stock::{StockLevel, Units};
use crate::domain::DomainError;
use crate::store::catalogue::{Changed, CreateError, NewWarehouse};
use crate::store::stock::{AdjustError, Adjustment, Count};

/// One page of a list and the position after its last item, if there is more.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// A page of a list keyed by id: `next_cursor` is the position after its last item,
    /// signed for `binding`, when `more` says another page exists.
    pub(super) fn after_last(
        items: Vec<T>,
        more: bool,
        id: impl Fn(&T) -> &str,
        cursors: &crate::domain::cursor::CursorCodec,
        binding: &str,
    ) -> Result<Self, DomainError> {
        let next_cursor = match items.last() {
            Some(last) if more => Some(cursors.encode(binding, id(last))?),
            _ => None,
        };
        Ok(Self { items, next_cursor })
    }
}

const PRODUCT_LIST_BINDING: &str = "products";

/// How often a product change (or a stock addition) is tried again after the product
/// moved on under it.
pub(super) const CHANGE_ATTEMPTS: usize = 5;

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
                    incoming: 0,
                    waiting: 0,
                    updated_at: now,
                })
                .collect(),
            stock_buckets: new.stock_buckets,
            created_at: now,
            updated_at: now,
            active: new.active,
            max_per_customer: new.max_per_customer,
            low_stock_threshold: new.low_stock_threshold,
            version: 1,
            terms: 1,
        };
        match self.store.catalogue.create(&product, &caller.user_id).await {
            Ok(()) => {
                self.remember_terms(&product.id, Terms::of(&product));
                Ok(product)
            }
            Err(CreateError::SkuTaken) => Err(DomainError::Conflict("a product with this sku exists")),
            Err(CreateError::Store(e)) => Err(e.into()),
        }
    }

    pub async fn get_product(&self, id: &ProductId) -> Result<Product, DomainError> {
        let product = self.store.catalogue.get(id).await?.ok_or(DomainError::NotFound("product"))?;
        self.remember_terms(&product.id, Terms::of(&product));
        Ok(product)
    }

    /// Admins only. Changes the product's own fields when `precondition` (the client's
    /// `If-Match`) holds for its current version (`PreconditionFailed` otherwise); a change
    /// that changes nothing writes nothing and keeps the version. A change of `active` or
    /// `max_per_customer` reaches every stock row in the same transaction, so no hold can
    /// apply under the old terms afterwards. Of two changes made against one version, one
    /// applies and the other finds the version moved (412 with `If-Match`, else it is
    /// judged again against the new state).
    pub async fn change_product(
        &self,
        caller: &Caller,
        id: &ProductId,
        changes: ProductChanges,
        precondition: Option<Precondition>,
    ) -> Result<Product, DomainError> {
        if !caller.is_admin {
            return Err(DomainError::Forbidden);
        }
        for _ in 0..CHANGE_ATTEMPTS {
            let (product, revision) =
                self.store.catalogue.get_for_change(id).await?.ok_or(DomainError::NotFound("product"))?;
            if precondition.as_ref().is_some_and(|p| !p.holds_for(product.version)) {
                return Err(DomainError::PreconditionFailed);
            }
            let Some(mut next) = product.changed(&changes) else { return Ok(product) };
            let now = self.clock.now();
            let terms_changed = next.terms != product.terms;
            match self.store.catalogue.change(revision, &next, terms_changed, now, &caller.user_id).await? {
                Changed::Applied => {
                    next.updated_at = next.updated_at.max(now);
                    self.remember_terms(&next.id, Terms::of(&next));
                    return Ok(next);
                }
                Changed::Moved => continue,
                Changed::TooManyRows => {
                    return Err(DomainError::Conflict(
                        "the product has too many stock rows to change active or max_per_customer",
                    ))
                }
            }
        }
        Err(DomainError::Conflict("the product kept changing; retry"))
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
        Page::after_last(items, more, |x| x.id.as_str(), &self.config.cursors, PRODUCT_LIST_BINDING)
    }

    /// Admins only. A delta or a count (`StockChange`) of one warehouse's on-hand units,
    /// answered with the product after it. Positive deltas and counts may open a new
    /// warehouse; negative deltas take only available units, and counts keep the held
    /// ones. Stock changed in a warehouse this instance knows is one transaction on the
    /// rows; in one it does not know, the product is read first and a new warehouse is
    /// opened with the product's list of warehouses (`Catalogue::open_warehouse`).
    pub async fn adjust_stock(
        &self,
        caller: &Caller,
        product_id: &ProductId,
        adj: StockAdjustment,
    ) -> Result<Product, DomainError> {
        if !caller.is_admin {
            return Err(DomainError::Forbidden);
        }
        let mut result = Err(AdjustError::TermsChanged);
        for _ in 0..CHANGE_ATTEMPTS {
            let terms = self.terms_of(product_id).await?;
            let opens = match adj.change {
                StockChange::Delta(delta) => (delta > 0).then_some(delta),
                StockChange::Count { set_on_hand, .. } => Some(set_on_hand),
            };
            if let Some(units) = opens.filter(|_| !terms.knows(&adj.warehouse_id)) {
                // Perhaps a new warehouse: the product's list of warehouses (and, for one
                // that had one, its terms) change with the new rows.
                let (product, revision) = self
                    .store
                    .catalogue
                    .get_for_change(product_id)
                    .await?
                    .ok_or(DomainError::NotFound("product"))?;
                self.remember_terms(product_id, Terms::of(&product));
                if product.stock.iter().any(|l| l.warehouse_id == adj.warehouse_id) {
                    continue;
                }
                // A warehouse the product does not have holds nothing: a count expecting
                // other units there finds 0.
                if let StockChange::Count { expected: Some(e), .. } = adj.change {
                    if e != 0 {
                        return Err(DomainError::StockChanged { on_hand: 0 });
                    }
                }
                may_open_warehouse(product.stock.len(), product.stock_buckets)
                    .map_err(|why| DomainError::invalid("warehouse_id", &why))?;
                let opening = NewWarehouse { warehouse: &adj.warehouse_id, units, cause: &adj.cause };
                match self
                    .store
                    .catalogue
                    .open_warehouse(revision, &product, opening, self.clock.now(), &caller.user_id)
                    .await?
                {
                    Changed::Applied => {
                        result = Ok(());
                        break;
                    }
                    Changed::Moved => continue,
                    Changed::TooManyRows => {
                        return Err(DomainError::Conflict(
                            "the product has too many stock rows to add a warehouse",
                        ))
                    }
                }
            }
            result = match adj.change {
                StockChange::Delta(delta) => {
                    let adjustment = Adjustment {
                        product_id,
                        warehouse: &adj.warehouse_id,
                        delta,
                        buckets: terms.buckets,
                        terms: terms.terms,
                        now: self.clock.now(),
                        actor: &caller.user_id,
                        cause: &adj.cause,
                    };
                    self.store.stock.adjust(adjustment).await
                }
                StockChange::Count { set_on_hand, expected } => {
                    let count = Count {
                        product_id,
                        warehouse: &adj.warehouse_id,
                        set_on_hand,
                        expected,
                        buckets: terms.buckets,
                        now: self.clock.now(),
                        actor: &caller.user_id,
                        cause: &adj.cause,
                    };
                    self.store.stock.count(count).await.map(|_| ())
                }
            };
            match result {
                // New rows take the product's current terms: read them again.
                Err(AdjustError::TermsChanged) => self.forget_terms(product_id),
                // The warehouse this instance thought the product had is not there (a
                // count reads the rows): read the product again.
                Err(AdjustError::WarehouseNotFound) if opens.is_some() && terms.knows(&adj.warehouse_id) => {
                    self.forget_terms(product_id)
                }
                _ => break,
            }
        }
        match result {
            Ok(()) => self.get_product(product_id).await,
            Err(AdjustError::TermsChanged) => Err(DomainError::Conflict("the product kept changing; retry")),
            Err(AdjustError::ProductNotFound) => Err(DomainError::NotFound("product")),
            Err(AdjustError::WarehouseNotFound) => Err(DomainError::NotFound("warehouse")),
            Err(AdjustError::Insufficient { available }) => Err(DomainError::InsufficientStock { available }),
            Err(AdjustError::StockChanged { on_hand }) => Err(DomainError::StockChanged { on_hand }),
            Err(AdjustError::TooMuch) => {
                Err(DomainError::invalid("delta", "would take on-hand units past 1000000000"))
            }
            Err(AdjustError::Contended) => Err(DomainError::Conflict("stock changed concurrently; retry")),
            Err(AdjustError::Store(e)) => Err(e.into()),
        }
    }
}
