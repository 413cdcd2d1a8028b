//! Products, SKU claims and stock rows.

use super::keys::*;
use super::{classify, n, s, values, Item, Store, StoreError};
use crate::adapters::clock::format_time;
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
    Insufficient { available: i64 },
    TooMuch,
    Store(StoreError),
}

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
            let item = stock_item(&p.id, level, &now, actor);
            items.push(put(&self.table, item, "attribute_not_exists(pk)").map_err(CreateError::Store)?);
        }
        match self.transact("create_product", items).await {
            Ok(()) => Ok(()),
            Err(e) if e.failed_at(1).is_some() => Err(CreateError::SkuTaken),
            Err(e) => Err(CreateError::Store(e)),
        }
    }

    /// One product with all its stock rows, read consistently in one `Query`.
    pub async fn get_product(&self, id: &str) -> Result<Option<Product>, StoreError> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(product_pk(id)))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .return_consumed_capacity(aws_sdk_dynamodb::types::ReturnConsumedCapacity::Total)
                .send()
                .await
                .map_err(|e| classify("get_product", e))?;
            self.metrics.read(out.consumed_capacity());
            items.extend(out.items.unwrap_or_default().into_iter().map(Item));
            start = out.last_evaluated_key;
            if start.is_none() {
                break;
            }
        }
        let Some(head) = items.iter().find(|i| i.opt_s(SK) == Some(PRODUCT_SK)) else {
            return Ok(None);
        };
        let stock = items
            .iter()
            .filter(|i| i.opt_s(SK).is_some_and(|sk| sk.starts_with(STOCK_SK_PREFIX)))
            .map(stock_from_item)
            .collect::<Result<Vec<_>, _>>()?;
        product_from_item(head, stock).map(Some)
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
            product_from_item(h, stock)
        }))
        .await?;
        Ok((products, more))
    }

    async fn stock_rows(&self, product_id: &str) -> Result<Vec<StockLevel>, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :stock)")
            .expression_attribute_values(":pk", s(product_pk(product_id)))
            .expression_attribute_values(":stock", s(STOCK_SK_PREFIX))
            .return_consumed_capacity(aws_sdk_dynamodb::types::ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(|e| classify("stock_rows", e))?;
        self.metrics.read(out.consumed_capacity());
        out.items.unwrap_or_default().into_iter().map(|i| stock_from_item(&Item(i))).collect()
    }

    /// Adds (`delta > 0`, creating the row if needed) or removes on-hand units in one
    /// conditional transaction: the product must exist, removal may only take available
    /// units, and on-hand may not pass the maximum.
    pub async fn adjust_stock(
        &self,
        product_id: &str,
        warehouse: &WarehouseId,
        delta: i64,
        now: DateTime<Utc>,
        actor: &str,
    ) -> Result<(), AdjustError> {
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
    values([
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
    ])
}

fn stock_item(
    product_id: &str,
    level: &StockLevel,
    now: &str,
    actor: &str,
) -> std::collections::HashMap<String, AttributeValue> {
    values([
        (PK, s(product_pk(product_id))),
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
    ])
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

fn product_from_item(i: &Item, mut stock: Vec<StockLevel>) -> Result<Product, StoreError> {
    stock.sort_by(|a, b| a.warehouse_id.cmp(&b.warehouse_id));
    let own_updated = i.time("updated_at")?;
    let updated_at = stock.iter().map(|s| s.updated_at).fold(own_updated, DateTime::max);
    Ok(Product {
        id: i.s("id")?.to_string(),
        sku: Sku::parse(i.s("sku")?).map_err(StoreError::Internal)?,
        name: i.s("name")?.to_string(),
        price_cents: i.n("price_cents")?,
        currency: Currency::parse(i.s("currency")?).map_err(StoreError::Internal)?,
        stock,
        created_at: i.time("created_at")?,
        updated_at,
    })
}
