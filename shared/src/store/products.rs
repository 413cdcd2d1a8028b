//! Products, SKU claims and stock rows.

use super::keys::*;
use super::{classify, n, s, set_bucket, values, Item, Store, StoreError};
use crate::adapters::clock::format_time;
use crate::domain::buckets::{plan_removal, split_evenly, Bucket};
use crate::domain::product::{Currency, Product, Sku, WarehouseId, MAX_QUANTITY};
use crate::domain::stock::StockLevel;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};
use chrono::{DateTime, Utc};
use futures::future::try_join_all;

/// Why a stock adjustment did not apply.
#[derive(Debug)]
pub enum AdjustError {
    ProductNotFound,
    WarehouseNotFound,
    Insufficient {
        available: i64,
    },
    TooMuch,
    /// A bucketed removal kept losing races with reservations; nothing was written.
    Contended,
    Store(StoreError),
}

/// How often a bucketed removal re-plans on a fresh snapshot after losing a race.
const REMOVAL_ATTEMPTS: usize = 4;

/// Why a product was not created.
#[derive(Debug)]
pub enum CreateError {
    SkuTaken,
    Store(StoreError),
}

impl Store {
    /// Creates the product, claims its SKU and writes its stock rows in one transaction.
    pub async fn create_product(&self, p: &Product, actor: &str) -> Result<(), CreateError> {
        let now = format_time(p.created_at);
        let mut items = vec![
            put(&self.table, product_item(p, actor), "attribute_not_exists(pk)")
                .map_err(CreateError::Store)?,
            put(
                &self.table,
                values([
                    (PK, s(sku_pk(p.sku.as_str()))),
                    (SK, s(SKU_SK)),
                    ("entity", s("sku_claim")),
                    ("product_id", s(&p.id)),
                    ("last_actor", s(actor)),
                ]),
                "attribute_not_exists(pk)",
            )
            .map_err(CreateError::Store)?,
        ];
        for level in &p.stock {
            let k = p.stock_buckets.max(1);
            for (bucket, (on_hand, available)) in
                split_evenly(level.on_hand, k).into_iter().zip(split_evenly(level.available, k)).enumerate()
            {
                let share = StockLevel { on_hand, available, reserved: on_hand - available, ..level.clone() };
                let item = stock_item(&p.id, bucket, &share, &now, actor);
                items.push(put(&self.table, item, "attribute_not_exists(pk)").map_err(CreateError::Store)?);
            }
        }
        match self.transact("create_product", items).await {
            Ok(()) => Ok(()),
            Err(e) if e.failed_at(1).is_some() => Err(CreateError::SkuTaken),
            Err(e) => Err(CreateError::Store(e)),
        }
    }

    /// One product with all its stock rows, read consistently in one `Query`.
    pub async fn get_product(&self, id: &str) -> Result<Option<Product>, StoreError> {
        let items = self.partition("get_product", &product_pk(id), None, true).await?;
        let Some(head) = items.iter().find(|i| i.opt_s(SK) == Some(PRODUCT_SK)) else {
            return Ok(None);
        };
        let stock = items
            .iter()
            .filter(|i| i.opt_s(SK).is_some_and(|sk| sk.starts_with(STOCK_SK_PREFIX)))
            .map(stock_from_item)
            .collect::<Result<Vec<_>, _>>()?;
        let stock = self.all_buckets(id, buckets_of(head)?, stock).await?;
        product_from_item(head, stock).map(Some)
    }

    /// A product's stock rows as of one instant. An unbucketed product's rows are bucket
    /// 0's, which came with the product's own `Query`. A bucketed product's rows, every
    /// bucket of every warehouse, are read again in one `TransactGetItems`: a gather
    /// (units moved between buckets by one transaction) is then seen whole or not at all,
    /// so no read shows a total that never was. Every warehouse has a row in every bucket
    /// (creation and additions write them all), so bucket 0's rows name the keys;
    /// `warehouses x stock_buckets <= 98` keeps them within one call's 100 items.
    async fn all_buckets(
        &self,
        id: &str,
        k: usize,
        bucket_zero: Vec<StockLevel>,
    ) -> Result<Vec<StockLevel>, StoreError> {
        // No warehouse yet (a product created without stock): nothing to read, and
        // TransactGetItems refuses an empty list.
        if k <= 1 || bucket_zero.is_empty() {
            return Ok(bucket_zero);
        }
        let keys: Vec<(String, String)> = bucket_zero
            .iter()
            .flat_map(|row| (0..k).map(move |b| (stock_pk(id, b), stock_sk(row.warehouse_id.as_str()))))
            .collect();
        self.snapshot(keys).await?.iter().map(stock_from_item).collect()
    }

    /// `stock_buckets` of a product, or `None` when it does not exist. The setting never
    /// changes after creation, so callers may keep it.
    pub async fn product_stock_buckets(&self, id: &str) -> Result<Option<usize>, StoreError> {
        self.get_item(&product_pk(id), PRODUCT_SK).await?.map(|i| buckets_of(&i)).transpose()
    }

    /// Each bucket of one warehouse's stock of a bucketed product, indexed by bucket, read
    /// consistently; a bucket without a row reads as empty. `None`: no bucket has a row
    /// (the warehouse is unknown).
    pub async fn stock_buckets(
        &self,
        product_id: &str,
        warehouse: &WarehouseId,
        k: usize,
    ) -> Result<Option<Vec<Bucket>>, StoreError> {
        let keys = (0..k).map(|b| (stock_pk(product_id, b), stock_sk(warehouse.as_str()))).collect();
        let rows = self.batch_get(keys).await?;
        if rows.is_empty() {
            return Ok(None);
        }
        let mut buckets = vec![Bucket::default(); k];
        for row in &rows {
            let level = stock_from_item(row)?;
            if let Some(slot) = buckets.get_mut(row.bucket()?) {
                *slot =
                    Bucket { on_hand: level.on_hand, reserved: level.reserved, available: level.available };
            }
        }
        Ok(Some(buckets))
    }

    /// Moves available units from `donors` into bucket `into` (net zero on-hand), each
    /// donor on condition that it still has them. `Ok(false)`: a donor no longer had its
    /// share (a racing reservation took it); nothing moved.
    pub async fn gather(
        &self,
        product_id: &str,
        warehouse: &WarehouseId,
        into: usize,
        donors: &[(usize, i64)],
        now: DateTime<Utc>,
        actor: &str,
    ) -> Result<bool, StoreError> {
        let now = format_time(now);
        let moved: i64 = donors.iter().map(|(_, x)| x).sum();
        // The receiving row must exist; each donor must still have its share.
        let shift = |bucket: usize, x: i64| {
            let update = Update::builder()
                .table_name(&self.table)
                .key(PK, s(stock_pk(product_id, bucket)))
                .key(SK, s(stock_sk(warehouse.as_str())))
                .update_expression(
                    "SET on_hand = on_hand + :x, available = available + :x, updated_at = :now, last_actor = :actor",
                )
                .expression_attribute_values(":x", n(x))
                .expression_attribute_values(":now", s(&now))
                .expression_attribute_values(":actor", s(actor));
            let update = if x >= 0 {
                update.condition_expression("attribute_exists(on_hand)")
            } else {
                update.condition_expression("available >= :need").expression_attribute_values(":need", n(-x))
            };
            update.build().map(|u| TransactWriteItem::builder().update(u).build())
        };
        let mut items = vec![shift(into, moved)?];
        for &(bucket, x) in donors {
            items.push(shift(bucket, -x)?);
        }
        match self.transact("gather_stock", items).await {
            Ok(()) => Ok(true),
            Err(StoreError::ConditionFailed(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Up to `limit` products after `after` (an id), oldest first; `more` says whether
    /// another page exists. The product index is eventually consistent: a product created
    /// a moment ago may show on the next call.
    pub async fn list_products(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<Product>, bool), StoreError> {
        // One more than asked tells whether a next page exists without returning a cursor
        // that leads to an empty page.
        let want = limit + 1;
        let mut heads = Vec::new();
        let mut start = None;
        loop {
            let mut q = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(GSI1)
                .expression_attribute_values(":pk", s(PRODUCT_LIST_PK))
                .limit(i32::try_from(want - heads.len()).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start);
            q = match after {
                Some(a) => q
                    .key_condition_expression("gsi1pk = :pk AND gsi1sk > :after")
                    .expression_attribute_values(":after", s(a)),
                None => q.key_condition_expression("gsi1pk = :pk"),
            };
            let out = q
                .return_consumed_capacity(aws_sdk_dynamodb::types::ReturnConsumedCapacity::Total)
                .send()
                .await
                .map_err(|e| classify("list_products", e))?;
            self.metrics.read(out.consumed_capacity());
            heads.extend(out.items.unwrap_or_default().into_iter().map(Item));
            start = out.last_evaluated_key;
            if start.is_none() || heads.len() >= want {
                break;
            }
        }
        let more = heads.len() > limit;
        heads.truncate(limit);
        let products = try_join_all(heads.iter().map(|h| async move {
            let id = h.s("id")?;
            let stock = self.stock_rows(id).await?;
            let stock = self.all_buckets(id, buckets_of(h)?, stock).await?;
            product_from_item(h, stock)
        }))
        .await?;
        Ok((products, more))
    }

    /// A product's stock rows in its own partition (all of them, or bucket 0's).
    async fn stock_rows(&self, product_id: &str) -> Result<Vec<StockLevel>, StoreError> {
        let rows =
            self.partition("stock_rows", &product_pk(product_id), Some(STOCK_SK_PREFIX), false).await?;
        rows.iter().map(stock_from_item).collect()
    }

    /// Every item of one partition (those whose sort key starts with `sk_prefix`, when
    /// given), following pages.
    async fn partition(
        &self,
        op: &'static str,
        pk: &str,
        sk_prefix: Option<&str>,
        consistent: bool,
    ) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let query = self
                .client
                .query()
                .table_name(&self.table)
                .expression_attribute_values(":pk", s(pk))
                .consistent_read(consistent)
                .set_exclusive_start_key(start);
            let query = match sk_prefix {
                Some(prefix) => query
                    .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                    .expression_attribute_values(":prefix", s(prefix)),
                None => query.key_condition_expression("pk = :pk"),
            };
            let out = query
                .return_consumed_capacity(aws_sdk_dynamodb::types::ReturnConsumedCapacity::Total)
                .send()
                .await
                .map_err(|e| classify(op, e))?;
            self.metrics.read(out.consumed_capacity());
            items.extend(out.items.unwrap_or_default().into_iter().map(Item));
            start = out.last_evaluated_key;
            if start.is_none() {
                return Ok(items);
            }
        }
    }

    /// Adds (`delta > 0`, creating the row if needed) or removes on-hand units in one
    /// conditional transaction: the product must exist, removal may only take available
    /// units, and on-hand may not pass the maximum. `k` is the product's `stock_buckets`.
    pub async fn adjust_stock(
        &self,
        product_id: &str,
        warehouse: &WarehouseId,
        delta: i64,
        k: usize,
        now: DateTime<Utc>,
        actor: &str,
    ) -> Result<(), AdjustError> {
        if k > 1 {
            return self.adjust_buckets(product_id, warehouse, delta, k, now, actor).await;
        }
        let now = format_time(now);
        let check = ConditionCheck::builder()
            .table_name(&self.table)
            .key(PK, s(product_pk(product_id)))
            .key(SK, s(PRODUCT_SK))
            .condition_expression("attribute_exists(pk)")
            .build()
            .map_err(|e| AdjustError::Store(e.into()))?;
        let update = Update::builder()
            .table_name(&self.table)
            .key(PK, s(product_pk(product_id)))
            .key(SK, s(stock_sk(warehouse.as_str())))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .expression_attribute_values(":d", n(delta))
            .expression_attribute_values(":now", s(&now))
            .expression_attribute_values(":actor", s(actor));
        let update = if delta > 0 {
            update
                .update_expression(
                    "SET on_hand = if_not_exists(on_hand, :zero) + :d, \
                     available = if_not_exists(available, :zero) + :d, \
                     reserved = if_not_exists(reserved, :zero), \
                     entity = :entity, product_id = :pid, warehouse_id = :wh, \
                     created_at = if_not_exists(created_at, :now), updated_at = :now, last_actor = :actor",
                )
                .condition_expression("attribute_not_exists(on_hand) OR on_hand <= :room")
                .expression_attribute_values(":zero", n(0))
                .expression_attribute_values(":room", n(MAX_QUANTITY - delta))
                .expression_attribute_values(":entity", s("stock"))
                .expression_attribute_values(":pid", s(product_id))
                .expression_attribute_values(":wh", s(warehouse.as_str()))
        } else {
            update
                .update_expression(
                    "SET on_hand = on_hand + :d, available = available + :d, updated_at = :now, last_actor = :actor",
                )
                .condition_expression("available >= :need")
                .expression_attribute_values(":need", n(-delta))
        };
        let items = vec![
            TransactWriteItem::builder().condition_check(check).build(),
            TransactWriteItem::builder()
                .update(update.build().map_err(|e| AdjustError::Store(e.into()))?)
                .build(),
        ];
        match self.transact("adjust_stock", items).await {
            Ok(()) => Ok(()),
            Err(e) if e.failed_at(0).is_some() => Err(AdjustError::ProductNotFound),
            Err(e) => match e.failed_at(1) {
                None => Err(AdjustError::Store(e)),
                Some(_) if delta > 0 => Err(AdjustError::TooMuch),
                Some(old) => {
                    let old = match old {
                        Some(item) => Some(item.clone()),
                        None => self
                            .get_item(&product_pk(product_id), &stock_sk(warehouse.as_str()))
                            .await
                            .map_err(AdjustError::Store)?,
                    };
                    match old.and_then(|i| i.opt_n("available")) {
                        None => Err(AdjustError::WarehouseNotFound),
                        Some(available) => Err(AdjustError::Insufficient { available }),
                    }
                }
            },
        }
    }

    /// `adjust_stock` for a bucketed product. An addition is split evenly over the buckets
    /// (creating rows of a new warehouse in every bucket); a removal takes available
    /// units from the fullest buckets (`plan_removal`), each on condition that they are
    /// still there, re-planned on a fresh snapshot when a reservation got there first.
    /// The maximum is checked on the snapshot's sum (and per row in the write), so only
    /// two admins adding at the same instant could pass it together.
    async fn adjust_buckets(
        &self,
        product_id: &str,
        warehouse: &WarehouseId,
        delta: i64,
        k: usize,
        now: DateTime<Utc>,
        actor: &str,
    ) -> Result<(), AdjustError> {
        let now_s = format_time(now);
        let check = TransactWriteItem::builder()
            .condition_check(
                ConditionCheck::builder()
                    .table_name(&self.table)
                    .key(PK, s(product_pk(product_id)))
                    .key(SK, s(PRODUCT_SK))
                    .condition_expression("attribute_exists(pk)")
                    .build()
                    .map_err(|e| AdjustError::Store(e.into()))?,
            )
            .build();
        let row = |bucket: usize| {
            Update::builder()
                .table_name(&self.table)
                .key(PK, s(stock_pk(product_id, bucket)))
                .key(SK, s(stock_sk(warehouse.as_str())))
                .expression_attribute_values(":now", s(&now_s))
                .expression_attribute_values(":actor", s(actor))
        };
        let fail = |e: aws_sdk_dynamodb::error::BuildError| AdjustError::Store(e.into());
        for _ in 0..REMOVAL_ATTEMPTS {
            let snapshot = self.stock_buckets(product_id, warehouse, k).await.map_err(AdjustError::Store)?;
            let mut items = vec![check.clone()];
            if delta > 0 {
                let on_hand: i64 = snapshot.iter().flatten().map(|b| b.on_hand).sum();
                if on_hand + delta > MAX_QUANTITY {
                    return Err(AdjustError::TooMuch);
                }
                for (bucket, x) in split_evenly(delta, k).into_iter().enumerate() {
                    // A known warehouse has a row in every bucket (they are created
                    // together), so a bucket whose share is 0 is left alone: writing it
                    // would change nothing but `updated_at` and audit an empty change.
                    if x == 0 && snapshot.is_some() {
                        continue;
                    }
                    // Rows of buckets 1.. name their bucket (bucket 0 is the plain row).
                    // BUCKET is one of DynamoDB's reserved words, hence `#bucket`.
                    let (tag, update) = match bucket {
                        0 => ("", row(bucket)),
                        b => (
                            ", #bucket = :b",
                            row(b)
                                .expression_attribute_names("#bucket", BUCKET)
                                .expression_attribute_values(":b", n(b as i64)),
                        ),
                    };
                    let update = update
                        .update_expression(format!(
                            "SET on_hand = if_not_exists(on_hand, :zero) + :x, \
                             available = if_not_exists(available, :zero) + :x, \
                             reserved = if_not_exists(reserved, :zero), \
                             entity = :entity, product_id = :pid, warehouse_id = :wh{tag}, \
                             created_at = if_not_exists(created_at, :now), updated_at = :now, last_actor = :actor",
                        ))
                        .condition_expression("attribute_not_exists(on_hand) OR on_hand <= :room")
                        .expression_attribute_values(":zero", n(0))
                        .expression_attribute_values(":x", n(x))
                        .expression_attribute_values(":room", n(MAX_QUANTITY - x))
                        .expression_attribute_values(":entity", s("stock"))
                        .expression_attribute_values(":pid", s(product_id))
                        .expression_attribute_values(":wh", s(warehouse.as_str()))
                        .build()
                        .map_err(fail)?;
                    items.push(TransactWriteItem::builder().update(update).build());
                }
            } else {
                let Some(buckets) = snapshot else {
                    return Err(AdjustError::WarehouseNotFound);
                };
                let Some(takes) = plan_removal(&buckets, -delta) else {
                    return Err(AdjustError::Insufficient {
                        available: buckets.iter().map(|b| b.available).sum(),
                    });
                };
                for (bucket, x) in takes {
                    let update = row(bucket)
                        .update_expression(
                            "SET on_hand = on_hand - :x, available = available - :x, updated_at = :now, last_actor = :actor",
                        )
                        .condition_expression("available >= :x")
                        .expression_attribute_values(":x", n(x))
                        .build()
                        .map_err(fail)?;
                    items.push(TransactWriteItem::builder().update(update).build());
                }
            }
            match self.transact("adjust_stock", items).await {
                Ok(()) => return Ok(()),
                Err(e) if e.failed_at(0).is_some() => return Err(AdjustError::ProductNotFound),
                Err(StoreError::ConditionFailed(_)) if delta > 0 => return Err(AdjustError::TooMuch),
                Err(StoreError::ConditionFailed(_)) => continue,
                Err(e) => return Err(AdjustError::Store(e)),
            }
        }
        Err(AdjustError::Contended)
    }

    /// One item by key, read consistently.
    pub(crate) async fn get_item(&self, pk: &str, sk: &str) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PK, s(pk))
            .key(SK, s(sk))
            .consistent_read(true)
            .return_consumed_capacity(aws_sdk_dynamodb::types::ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(|e| classify("get_item", e))?;
        self.metrics.read(out.consumed_capacity());
        Ok(out.item.map(Item))
    }
}

pub(crate) fn put(
    table: &str,
    item: std::collections::HashMap<String, AttributeValue>,
    condition: &str,
) -> Result<TransactWriteItem, StoreError> {
    Ok(TransactWriteItem::builder()
        .put(Put::builder().table_name(table).set_item(Some(item)).condition_expression(condition).build()?)
        .build())
}

fn product_item(p: &Product, actor: &str) -> std::collections::HashMap<String, AttributeValue> {
    let mut item = values([
        (PK, s(product_pk(&p.id))),
        (SK, s(PRODUCT_SK)),
        (GSI1_PK, s(PRODUCT_LIST_PK)),
        (GSI1_SK, s(&p.id)),
        ("entity", s("product")),
        ("id", s(&p.id)),
        ("sku", s(p.sku.as_str())),
        ("name", s(&p.name)),
        ("price_cents", n(p.price_cents)),
        ("currency", s(p.currency.as_str())),
        ("created_at", s(format_time(p.created_at))),
        ("updated_at", s(format_time(p.updated_at))),
        ("last_actor", s(actor)),
    ]);
    // Only bucketed products carry the setting, so other products' items stay as they were.
    if p.stock_buckets > 1 {
        item.insert("stock_buckets".into(), n(p.stock_buckets as i64));
    }
    item
}

fn stock_item(
    product_id: &str,
    bucket: usize,
    level: &StockLevel,
    now: &str,
    actor: &str,
) -> std::collections::HashMap<String, AttributeValue> {
    let mut item = values([
        (PK, s(stock_pk(product_id, bucket))),
        (SK, s(stock_sk(level.warehouse_id.as_str()))),
        ("entity", s("stock")),
        ("product_id", s(product_id)),
        ("warehouse_id", s(level.warehouse_id.as_str())),
        ("on_hand", n(level.on_hand)),
        ("reserved", n(level.reserved)),
        ("available", n(level.available)),
        ("created_at", s(now)),
        ("updated_at", s(now)),
        ("last_actor", s(actor)),
    ]);
    set_bucket(&mut item, bucket);
    item
}

/// A product's `stock_buckets`; products written before the setting existed have one.
fn buckets_of(head: &Item) -> Result<usize, StoreError> {
    let k = head.opt_n("stock_buckets").unwrap_or(1);
    usize::try_from(k)
        .ok()
        .filter(|k| *k >= 1)
        .ok_or_else(|| StoreError::Internal("bad stock_buckets".into()))
}

pub(crate) fn stock_from_item(i: &Item) -> Result<StockLevel, StoreError> {
    Ok(StockLevel {
        warehouse_id: WarehouseId::parse(i.s("warehouse_id")?).map_err(StoreError::Internal)?,
        on_hand: i.n("on_hand")?,
        reserved: i.n("reserved")?,
        available: i.n("available")?,
        updated_at: i.time("updated_at")?,
    })
}

/// `rows` are the product's stock rows of every bucket; the product shows their sums per
/// warehouse.
fn product_from_item(i: &Item, rows: Vec<StockLevel>) -> Result<Product, StoreError> {
    let mut per_warehouse: std::collections::BTreeMap<WarehouseId, StockLevel> = Default::default();
    for row in rows {
        match per_warehouse.get_mut(&row.warehouse_id) {
            Some(sum) => {
                sum.on_hand += row.on_hand;
                sum.reserved += row.reserved;
                sum.available += row.available;
                sum.updated_at = sum.updated_at.max(row.updated_at);
            }
            None => {
                per_warehouse.insert(row.warehouse_id.clone(), row);
            }
        }
    }
    let stock: Vec<StockLevel> = per_warehouse.into_values().collect();
    let own_updated = i.time("updated_at")?;
    let updated_at = stock.iter().map(|s| s.updated_at).fold(own_updated, DateTime::max);
    Ok(Product {
        id: i.s("id")?.to_string(),
        sku: Sku::parse(i.s("sku")?).map_err(StoreError::Internal)?,
        name: i.s("name")?.to_string(),
        price_cents: i.n("price_cents")?,
        currency: Currency::parse(i.s("currency")?).map_err(StoreError::Internal)?,
        stock,
        stock_buckets: buckets_of(i)?,
        created_at: i.time("created_at")?,
        updated_at,
    })
}
