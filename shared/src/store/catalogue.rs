//! The catalogue: products with their SKU claims, read with their stock.

use super::keys::*;
use super::records::{self, product, stock as stock_rec};
use super::stock::Stock;
use super::{Repo, StoreError};
use crate::domain::buckets::split_evenly;
use crate::domain::movement::{Cause, Reason};
use crate::domain::product::{Product, StockSettings};
use crate::domain::stock::{StockLevel, Units, WarehouseId};
use crate::domain::time::format_time;
use aws_sdk_dynamodb::types::TransactWriteItem;
use futures::future::try_join_all;
use std::collections::HashMap;
use thiserror::Error;

use crate::domain::product::Terms;
use chrono::{DateTime, Utc};
pub use records::product::{PriceSnapshot, Revision};

/// What a change of a product found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Changed {
    Applied,
    /// The product moved on since it was read (another change, or stock added): nothing
    /// was written; read it again.
    Moved,
    /// Its stock rows are too many to take new terms in one transaction (DynamoDB's 100
    /// items); nothing was written.
    TooManyRows,
}

/// Why a product was not created.
/// Units that open a warehouse of a product, and why (an adjustment's or a count's).
#[derive(Debug, Clone, Copy)]
pub struct NewWarehouse<'a> {
    pub warehouse: &'a WarehouseId,
    pub units: i64,
    pub cause: &'a Cause,
}

#[derive(Debug, Error)]
pub enum CreateError {
    #[error("the sku is taken")]
    SkuTaken,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// DynamoDB's limit on the items of one transaction.
pub(crate) const MAX_TRANSACTION_ITEMS: usize = 100;

#[derive(Debug, Clone)]
pub struct Catalogue {
    pub(crate) repo: Repo,
    pub(crate) stock: Stock,
}

impl Catalogue {
    /// Creates the product, claims its SKU and writes its stock rows in one transaction.
    pub async fn create(&self, p: &Product, actor: &str) -> Result<(), CreateError> {
        let table = &*self.repo.table;
        let now = format_time(p.created_at);
        let mut items = vec![
            records::put(table, product::item(p, actor)?, "attribute_not_exists(pk)")?,
            records::put(table, product::sku_claim(p, actor), "attribute_not_exists(pk)")?,
        ];
        for level in &p.stock {
            let k = p.stock_buckets.max(1);
            let shares =
                split_evenly(level.units.on_hand, k).into_iter().zip(split_evenly(level.units.available, k));
            for (bucket, (on_hand, available)) in shares.enumerate() {
                let share = StockLevel {
                    units: Units { on_hand, available, reserved: on_hand - available },
                    ..level.clone()
                };
                let item = stock_rec::item(
                    &p.id,
                    bucket,
                    &share,
                    &now,
                    actor,
                    p.terms,
                    &Cause::new(Reason::Received),
                )?;
                items.push(records::put(table, item, "attribute_not_exists(pk)")?);
            }
        }
        match self.repo.db.transact("create_product", items).await {
            Ok(()) => Ok(()),
            Err(e) if e.failed_at(1).is_some() => Err(CreateError::SkuTaken),
            Err(e) => Err(e.into()),
        }
    }

    /// One product with all its stock rows, read consistently in one `Query` (plus one
    /// snapshot of the other buckets of a bucketed product).
    pub async fn get(&self, id: &str) -> Result<Option<Product>, StoreError> {
        Ok(self.get_for_change(id).await?.map(|(product, _)| product))
    }

    /// What governs new holds of a product (`None`: no such product), read consistently.
    /// Callers may keep it: a hold under terms that changed meanwhile is refused by its
    /// stock row (`HoldError::TermsChanged`), and `stock_buckets` never changes.
    pub async fn terms(&self, id: &str) -> Result<Option<Terms>, StoreError> {
        let head = self.repo.db.get("product_terms", &self.repo.table, &product_pk(id), PRODUCT_SK).await?;
        head.map(|i| product::terms(&i)).transpose()
    }

    /// The product as `get` reads it, with the revision a change must find unchanged.
    pub async fn get_for_change(&self, id: &str) -> Result<Option<(Product, Revision)>, StoreError> {
        let q = self.partition(&product_pk(id), None).consistent_read(true);
        let items = self.repo.db.query_all("get_product", q, None).await?;
        let Some(head) = items.iter().find(|i| i.opt_s(SK) == Some(PRODUCT_SK)) else {
            return Ok(None);
        };
        let stock = items
            .iter()
            .filter(|i| i.opt_s(SK).is_some_and(|sk| sk.starts_with(STOCK_SK_PREFIX)))
            .map(stock_rec::level)
            .collect::<Result<Vec<_>, _>>()?;
        let stock = self.stock.all_buckets(id, product::buckets_of(head)?, stock).await?;
        product::with_revision(head, stock).map(Some)
    }

    /// Writes `next` (the product as read at `revision`, changed) in one transaction; when
    /// its terms change, every stock row (every warehouse, every bucket) takes the new
    /// terms in the same transaction, so no hold can apply under the old ones afterwards.
    pub async fn change(
        &self,
        revision: Revision,
        next: &Product,
        terms_changed: bool,
        now: DateTime<Utc>,
        actor: &str,
    ) -> Result<Changed, StoreError> {
        let table = &*self.repo.table;
        let now = format_time(now);
        let mut items = vec![records::update(product::change(table, revision, next, &now, actor)?)];
        if terms_changed {
            items.extend(self.retagged(next, next.terms, None)?);
        }
        if items.len() > MAX_TRANSACTION_ITEMS {
            return Ok(Changed::TooManyRows);
        }
        match self.repo.db.transact("change_product", items).await {
            Ok(()) => Ok(Changed::Applied),
            Err(e) if e.failed_at(0).is_some() => Ok(Changed::Moved),
            Err(e) => Err(e),
        }
    }

    /// Adds `opening.units` units in `opening.warehouse`, where the product (read at `revision`) has no
    /// stock yet, in one transaction: its rows (split over the buckets), the product's
    /// list of warehouses, and when the product had exactly one warehouse, new terms for
    /// it and its rows. Holds of a one-warehouse product take that warehouse without
    /// reading the product (`Terms::sole_warehouse`); the new terms make such a hold,
    /// decided before the second warehouse came, fail on its row and decide again.
    pub async fn open_warehouse(
        &self,
        revision: Revision,
        product: &Product,
        opening: NewWarehouse<'_>,
        now: DateTime<Utc>,
        actor: &str,
    ) -> Result<Changed, StoreError> {
        let NewWarehouse { warehouse, units: delta, cause } = opening;
        let table = &*self.repo.table;
        let now = format_time(now);
        let k = product.stock_buckets.max(1);
        let (mut items, terms) = self.listing_warehouse(revision, product, warehouse, None)?;
        // Every bucket gets a row, even with a share of 0: readers rely on a known
        // warehouse having a row in each (`Stock::all_buckets`).
        for (bucket, x) in split_evenly(delta, k).into_iter().enumerate() {
            let row = stock_rec::Row {
                table,
                product_id: &product.id,
                warehouse: warehouse.as_str(),
                bucket,
                now: &now,
                actor,
                cause,
            };
            items.push(records::update(row.add(x, terms)?));
        }
        if items.len() > MAX_TRANSACTION_ITEMS {
            return Ok(Changed::TooManyRows);
        }
        match self.repo.db.transact("open_warehouse", items).await {
            Ok(()) => Ok(Changed::Applied),
            // The product moved on, or another writer opened the warehouse first.
            Err(StoreError::ConditionFailed { .. }) => Ok(Changed::Moved),
            Err(e) => Err(e),
        }
    }

    /// The writes that add `warehouse` to the product's list of warehouses (on condition
    /// that the product is still at `revision`), with, when the product had exactly one
    /// warehouse, new terms for it and its rows; and the terms the new rows take. The
    /// rows themselves are the caller's (units added, or units in transit), and so are
    /// the new terms of the rows of `retagged_by_caller` (a transaction may write an item
    /// once: a transfer's source row takes them with its own write).
    pub(crate) fn listing_warehouse(
        &self,
        revision: Revision,
        product: &Product,
        warehouse: &WarehouseId,
        retagged_by_caller: Option<&WarehouseId>,
    ) -> Result<(Vec<TransactWriteItem>, i64), StoreError> {
        let table = &*self.repo.table;
        let terms = if product.stock.len() == 1 { product.terms + 1 } else { product.terms };
        let warehouses: Vec<WarehouseId> =
            product.stock.iter().map(|l| l.warehouse_id.clone()).chain([warehouse.clone()]).collect();
        let mut items = vec![records::update(product::opened_warehouse(
            table,
            &product.id,
            revision,
            &warehouses,
            terms,
        )?)];
        if terms != product.terms {
            items.extend(self.retagged(product, terms, retagged_by_caller)?);
        }
        Ok((items, terms))
    }

    /// The updates that give every stock row of `product` (every warehouse it was read
    /// with, every bucket) the terms version `terms`: a change of terms, or a product that
    /// gains its second warehouse.
    fn retagged(
        &self,
        product: &Product,
        terms: i64,
        except: Option<&WarehouseId>,
    ) -> Result<Vec<TransactWriteItem>, StoreError> {
        let mut items = Vec::new();
        for level in product.stock.iter().filter(|l| Some(&l.warehouse_id) != except) {
            for bucket in 0..product.stock_buckets.max(1) {
                let (table, warehouse) = (&*self.repo.table, level.warehouse_id.as_str());
                items.push(records::update(stock_rec::retag(table, &product.id, bucket, warehouse, terms)?));
            }
        }
        Ok(items)
    }

    /// Up to `limit` products after `after` (an id), oldest first; `more` says whether
    /// another page exists. The product index is eventually consistent: a product created
    /// a moment ago may show on the next call.
    pub async fn list(&self, after: Option<&str>, limit: usize) -> Result<(Vec<Product>, bool), StoreError> {
        let q = self
            .repo
            .db
            .query(&self.repo.table)
            .index_name(GSI1)
            .expression_attribute_values(":pk", records::s(PRODUCT_LIST_PK));
        let q = match after {
            Some(a) => q
                .key_condition_expression("gsi1pk = :pk AND gsi1sk > :after")
                .expression_attribute_values(":after", records::s(a)),
            None => q.key_condition_expression("gsi1pk = :pk"),
        };
        // One more than asked tells whether a next page exists without returning a cursor
        // that leads to an empty page.
        let mut heads = self.repo.db.query_all("list_products", q, Some(limit + 1)).await?;
        let more = heads.len() > limit;
        heads.truncate(limit);
        let products = try_join_all(heads.iter().map(|h| async move {
            let id = h.s("id")?;
            let q = self.partition(&product_pk(id), Some(STOCK_SK_PREFIX));
            let rows = self.repo.db.query_all("stock_rows", q, None).await?;
            let stock = rows.iter().map(stock_rec::level).collect::<Result<Vec<_>, _>>()?;
            let stock = self.stock.all_buckets(id, product::buckets_of(h)?, stock).await?;
            product::product(h, stock)
        }))
        .await?;
        Ok((products, more))
    }

    /// Price snapshots of the products that exist among `ids`.
    pub async fn price_snapshots(&self, ids: &[&str]) -> Result<HashMap<String, PriceSnapshot>, StoreError> {
        let keys = ids.iter().map(|id| (product_pk(id), PRODUCT_SK.to_string())).collect();
        let heads = self.repo.db.batch_get(&self.repo.table, keys).await?;
        heads.iter().map(product::price_snapshot).collect()
    }

    /// The stock-event settings of the products that exist among `ids` (one request per
    /// 100). A product item that does not decode is left out, logged: its events are made
    /// without them (no crossings), rather than holding back every other row's.
    pub async fn stock_settings(&self, ids: &[&str]) -> Result<HashMap<String, StockSettings>, StoreError> {
        let keys = ids.iter().map(|id| (product_pk(id), PRODUCT_SK.to_string())).collect();
        let heads = self.repo.db.batch_get(&self.repo.table, keys).await?;
        Ok(heads
            .iter()
            .filter_map(|head| match product::stock_settings(head) {
                Ok(found) => Some(found),
                Err(error) => {
                    tracing::error!(%error, pk = head.opt_s("pk"), "a product item does not decode: no crossings for it");
                    None
                }
            })
            .collect())
    }

    /// A query of one partition (the items whose sort key starts with `sk_prefix`, when
    /// given).
    fn partition(
        &self,
        pk: &str,
        sk_prefix: Option<&str>,
    ) -> aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder {
        let q = self.repo.db.query(&self.repo.table).expression_attribute_values(":pk", records::s(pk));
        match sk_prefix {
            Some(prefix) => q
                .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                .expression_attribute_values(":prefix", records::s(prefix)),
            None => q.key_condition_expression("pk = :pk"),
        }
    }
}
