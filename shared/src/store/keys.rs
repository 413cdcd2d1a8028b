//! Key layout of the single application table. Every entity lives under `pk`/`sk`;
//! indexes use their own attributes so that only the items that belong in an index carry
//! them (sparse indexes).
//!
//! | item | pk | sk | index attributes |
//! |---|---|---|---|
//! | product | `P#<id>` | `#PRODUCT` | `gsi1pk = PRODUCT`, `gsi1sk = <id>` (list, oldest first) |
//! | stock row | `P#<id>` | `STOCK#<warehouse>` | none |
//! | stock bucket b >= 1 (products with `stock_buckets` > 1) | `P#<id>#B<b>` | `STOCK#<warehouse>` | none; `bucket = b` |
//! | SKU claim | `SKU#<sku>` | `#SKU` | none |
//! | reservation | `R#<id>` | `#RESERVATION` | while active: `sweep_pk = ACTIVE#<shard>`, `sweep_sk = <expires_at>#<id>`; `gsi1pk = HELD#<product>`, `gsi1sk = <warehouse>#<bucket>#<id>` (the product's held units, for reconciliation) |
//! | transfer | `T#<id>` | `#TRANSFER` | `gsi1pk = XFER#<product>`, `gsi1sk = <id>` (a product's transfers); `sweep_pk = TRANSFER`, `sweep_sk = <id>` (all transfers: admin-made and rare, so one partition takes them, as the product list does) |
//! | order | `O#<id>` | `#ORDER` | `ou_pk = U#<user>`, `ous_pk = U#<user>#<status>`, `oa_pk = A#<shard>`, `oss_pk = S#<status>#<shard>`, `o_time = <created_at>#<id>`, `o_value = <total, 16 digits>#<id>` (see `order_list`) |
//! | order return | `O#<order>` | `RETURN#<id>` | none |
//! | waitlist entry | `WL#<id>` | `#WAITLIST` | while waiting: `gsi1pk = WAITQ#<product>#<warehouse>`, `gsi1sk = <id>` (the queue, first come first) |
//! | idempotency record | `I#<sha256(user, route, key)>` | `#IDEM` | none; `ttl` expires it |
//! | a user's active-hold count | `HOLDS#<user>` | `#HOLDS` | none |
//! | a customer's allowance of a product | `ALLOW#<product>#<user>` | `#ALLOWANCE` | none; `units` held and on order |
//!
//! A product and its stock rows share a partition so that one consistent `Query` reads a
//! whole unbucketed product (bucket 0 is the stock row; a bucketed product's other
//! buckets sit in partitions of their own, which is their point). Stock rows are not on
//! the product list index: they change with every
//! reservation, and an index keyed by a constant would turn them into one hot partition.

pub const PK: &str = "pk";
pub const SK: &str = "sk";
pub const GSI1: &str = "gsi1";
pub const GSI1_PK: &str = "gsi1pk";
pub const GSI1_SK: &str = "gsi1sk";
pub const SWEEP_INDEX: &str = "sweep";
pub const SWEEP_PK: &str = "sweep_pk";
pub const SWEEP_SK: &str = "sweep_sk";
pub const TTL: &str = "ttl";
/// The stock bucket of a stock row, reservation or order line; only buckets 1.. carry it.
pub const BUCKET: &str = "bucket";
pub const ORDERS_BY_USER_TIME: &str = "ou_time";
pub const ORDERS_BY_USER_VALUE: &str = "ou_value";
pub const ORDERS_BY_USER_STATUS_TIME: &str = "ous_time";
pub const ORDERS_BY_USER_STATUS_VALUE: &str = "ous_value";
pub const ORDERS_ALL_TIME: &str = "oa_time";
pub const ORDERS_ALL_VALUE: &str = "oa_value";
pub const ORDERS_BY_STATUS_TIME: &str = "oss_time";
pub const ORDERS_BY_STATUS_VALUE: &str = "oss_value";
pub const OU_PK: &str = "ou_pk";
pub const OUS_PK: &str = "ous_pk";
pub const OA_PK: &str = "oa_pk";
pub const OSS_PK: &str = "oss_pk";
pub const O_TIME: &str = "o_time";
pub const O_VALUE: &str = "o_value";

/// Attributes that are storage bookkeeping, not business data: keys, index keys, TTL and
/// the write stamp. Audit diffs leave them out.
pub const BOOKKEEPING: &[&str] = &[
    PK,
    SK,
    "entity",
    "last_actor",
    "updated_at",
    TTL,
    GSI1_PK,
    GSI1_SK,
    SWEEP_PK,
    SWEEP_SK,
    OU_PK,
    OUS_PK,
    OA_PK,
    OSS_PK,
    O_TIME,
    O_VALUE,
    // A product's tag counter, hold terms, stock counter and list of warehouses (its stock
    // rows are audited themselves); a stock row's hold terms.
    "version",
    "terms",
    "stock_rev",
    "warehouses",
    // The cause of a stock row's last change: the ledger's input (movements describe it).
    "mv",
    EVENT_SEQ,
    // An order's count of returned units (its lines show them) and its latest return
    // (the return's event carries it).
    "returned_units",
    "last_return",
];

/// The count of an entity's changes (products, reservations, orders): set to 1 when it is
/// made and added to by every write that changes it, in that write, so the events made
/// from its stream records are numbered 1, 2, 3, ... without gap by construction.
pub const EVENT_SEQ: &str = "ev";

pub fn is_bookkeeping(attribute: &str) -> bool {
    BOOKKEEPING.contains(&attribute)
}

pub const PRODUCT_SK: &str = "#PRODUCT";
pub const PRODUCT_LIST_PK: &str = "PRODUCT";
pub const STOCK_SK_PREFIX: &str = "STOCK#";
pub const RESERVATION_SK: &str = "#RESERVATION";
pub const SKU_SK: &str = "#SKU";
pub const IDEM_SK: &str = "#IDEM";
pub const ORDER_SK: &str = "#ORDER";
pub const TRANSFER_SK: &str = "#TRANSFER";

/// All transfers, on the sweep index (whose reservation partitions are `ACTIVE#<shard>`,
/// so the two never meet): an index of their own would cost every write to the table a
/// little for the sake of a rare admin list.
pub const TRANSFER_LIST_PK: &str = "TRANSFER";

pub const WAITLIST_SK: &str = "#WAITLIST";

pub fn waitlist_pk(id: &str) -> String {
    format!("WL#{id}")
}

/// A warehouse's queue of waiting entries on the product list index (`gsi1sk` the
/// entry's id: join order).
pub fn queue_pk(product_id: &str, warehouse: &str) -> String {
    format!("WAITQ#{product_id}#{warehouse}")
}

/// A return of an order, in the order's partition, by id (so oldest first).
pub const ORDER_RETURN_SK_PREFIX: &str = "RETURN#";

pub fn order_return_sk(id: &str) -> String {
    format!("{ORDER_RETURN_SK_PREFIX}{id}")
}

pub fn transfer_pk(id: &str) -> String {
    format!("T#{id}")
}

/// A product's transfers on the product list index (`gsi1sk` the transfer's id, so
/// newest last).
pub fn transfers_of_pk(product_id: &str) -> String {
    format!("XFER#{product_id}")
}

/// Active reservations are spread over this many sweep-index partitions so that no single
/// partition takes every reservation write; the sweep queries each.
pub const SWEEP_SHARDS: u32 = 4;

pub fn product_pk(id: &str) -> String {
    format!("P#{id}")
}

/// The partition of a product's stock bucket: bucket 0 is the product's own partition.
/// Product ids are generated (ULIDs), so `P#<id>#B<b>` never names another product.
pub fn stock_pk(product_id: &str, bucket: usize) -> String {
    if bucket == 0 {
        product_pk(product_id)
    } else {
        format!("P#{product_id}#B{bucket}")
    }
}

pub fn stock_sk(warehouse: &str) -> String {
    format!("{STOCK_SK_PREFIX}{warehouse}")
}

pub fn sku_pk(sku: &str) -> String {
    format!("SKU#{sku}")
}

/// A user's count of active holds (`active`), kept in step with their reservations by the
/// same transactions that start and end holds, so the per-user cap holds under races.
pub const HOLDS_SK: &str = "#HOLDS";

pub fn holds_pk(user_id: &str) -> String {
    format!("HOLDS#{user_id}")
}

/// The units one customer holds and has on order (not cancelled) of one product, kept in
/// step by the transactions that hold, release, expire and cancel, so that a purchase
/// limit holds under races.
pub const ALLOWANCE_SK: &str = "#ALLOWANCE";

pub fn allowance_pk(product_id: &str, user_id: &str) -> String {
    format!("ALLOW#{product_id}#{user_id}")
}

pub fn reservation_pk(id: &str) -> String {
    format!("R#{id}")
}

pub fn sweep_pk(reservation_id: &str) -> String {
    let shard = reservation_id.bytes().fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
    sweep_shard_pk(shard % SWEEP_SHARDS)
}

/// The product list index doubles as the index of a product's active holds: a key that
/// is not `PRODUCT` never meets a product list query, and a second sparse index would
/// cost every table write one more index to keep (and DynamoDB Local one more to scan).
pub fn held_pk(product_id: &str) -> String {
    format!("HELD#{product_id}")
}

pub fn held_sk(warehouse: &str, bucket: usize, reservation_id: &str) -> String {
    format!("{warehouse}#{bucket}#{reservation_id}")
}

pub fn sweep_shard_pk(shard: u32) -> String {
    format!("ACTIVE#{shard}")
}

pub fn sweep_sk(expires_at: &str, reservation_id: &str) -> String {
    format!("{expires_at}#{reservation_id}")
}

pub fn order_pk(id: &str) -> String {
    format!("O#{id}")
}

/// Orders are spread over this many partitions of the admin indexes (all orders, and
/// all orders of a status), so that no single index partition takes every order write
/// (one partition takes about 1,000 writes/s); admin lists merge the shards at read time.
pub const ORDER_SHARDS: u32 = 4;

fn order_shard(order_id: &str) -> u32 {
    order_id.bytes().fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b))) % ORDER_SHARDS
}

pub fn order_user_pk(user: &str) -> String {
    format!("U#{user}")
}

pub fn order_user_status_pk(user: &str, status: &str) -> String {
    format!("U#{user}#{status}")
}

pub fn order_all_shard_pk(shard: u32) -> String {
    format!("A#{shard}")
}

pub fn order_all_pk(order_id: &str) -> String {
    order_all_shard_pk(order_shard(order_id))
}

pub fn order_status_shard_pk(status: &str, shard: u32) -> String {
    format!("S#{status}#{shard}")
}

pub fn order_status_pk(status: &str, order_id: &str) -> String {
    order_status_shard_pk(status, order_shard(order_id))
}

pub fn order_time_key(created_at: &str, id: &str) -> String {
    format!("{created_at}#{id}")
}

/// Totals are zero-padded so that string order is numeric order (16 digits exceed the
/// largest possible total: 25 lines x 10,000 units x 1e9 cents).
pub fn order_value_key(total_cents: i64, id: &str) -> String {
    format!("{total_cents:016}#{id}")
}

pub fn idempotency_pk(scope_hash: &str) -> String {
    format!("I#{scope_hash}")
}
