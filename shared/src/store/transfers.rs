//! Transfers: each step one transaction over the transfer and the stock rows it moves,
//! so that units are in exactly one place at every instant: on the source's hand, in
//! transit (`incoming` at the destination), or on the destination's hand.

use super::catalogue::MAX_TRANSACTION_ITEMS;
use super::catalogue::{Catalogue, Revision};
use super::idempotency::Completion;
use super::keys::*;
use super::records::stock::Row;
use super::records::transfer as rec;
use super::records::{self, update};
use super::{Repo, StoreError};
use crate::domain::movement::{Cause, Reason, RefKind};
use crate::domain::product::Product;
use crate::domain::time::format_time;
use crate::domain::transfer::{Transfer, TransferEnd, TransferStatus};
use thiserror::Error;

/// The items a filtered list page reads at least per request.
const FILTERED_PAGE: usize = 100;

/// Why a transfer step did not apply.
#[derive(Debug, Error)]
pub enum TransferError {
    /// The source has fewer available units (`available`, 0 for a source it does not have).
    #[error("only {available} available")]
    Insufficient { available: i64 },
    /// The product is not at the revision read (a warehouse was added meanwhile): read it
    /// again.
    #[error("the product changed")]
    ProductMoved,
    /// A new destination would pass the product's row limit.
    #[error("too many stock rows")]
    TooManyRows,
    /// The transfer is no longer in transit: it is `status` (`None` if the refusal did
    /// not say).
    #[error("not in transit")]
    NotInTransit { status: Option<TransferStatus> },
    /// The warehouse the units join (the destination, or the source on a cancel) would
    /// pass the most units a row holds.
    #[error("the warehouse would pass the most units a row holds")]
    TooMuch,
    #[error("the idempotency lease was lost")]
    LeaseLost,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Where the destination stands: a warehouse the product has, or one it gains with
/// this transfer (the product as read, at `revision`).
#[derive(Debug, Clone, Copy)]
pub enum Destination<'a> {
    Known,
    New { product: &'a Product, revision: Revision },
}

#[derive(Debug, Clone)]
pub struct Transfers {
    pub(crate) repo: Repo,
    pub(crate) catalogue: Catalogue,
}

impl Transfers {
    fn row<'a>(
        &'a self,
        t: &'a Transfer,
        warehouse: &'a str,
        now: &'a str,
        actor: &'a str,
        cause: &'a Cause,
    ) -> Row<'a> {
        Row { table: &self.repo.table, product_id: &t.product_id, warehouse, bucket: 0, now, actor, cause }
    }

    /// Creates `t` (in transit): the units leave the source's hand (only available ones),
    /// the destination expects them (opening it when new), the transfer is put, and with
    /// `completion` the idempotency record is completed. All of it or none.
    pub async fn create(
        &self,
        t: &Transfer,
        to: Destination<'_>,
        terms: i64,
        actor: &str,
        completion: Option<Completion>,
    ) -> Result<(), TransferError> {
        let now = format_time(t.created_at);
        let out = Cause::of(Reason::TransferOut, RefKind::Transfer, &t.id);
        let source = self.row(t, t.from_warehouse_id.as_str(), &now, actor, &out);
        let dest = self.row(t, t.to_warehouse_id.as_str(), &now, actor, &out);
        let (mut items, dest_terms) = match to {
            Destination::Known => (Vec::new(), terms),
            Destination::New { product, revision } => self.catalogue.listing_warehouse(
                revision,
                product,
                &t.to_warehouse_id,
                Some(&t.from_warehouse_id),
            )?,
        };
        let listing = items.len();
        let source_at = items.len();
        // A product gaining its second warehouse gets new terms on every row; the source's
        // is written here, so it takes them in this write.
        items.push(update(source.remove_retagged(t.quantity, (dest_terms != terms).then_some(dest_terms))?));
        items.push(update(dest.expect(t.quantity, dest_terms)?));
        items.push(records::put(&self.repo.table, rec::item(t, actor)?, "attribute_not_exists(pk)")?);
        let completion_at = completion.as_ref().map(|_| items.len());
        if let Some(c) = completion {
            items.push(update(c.0));
        }
        if items.len() > MAX_TRANSACTION_ITEMS {
            return Err(TransferError::TooManyRows);
        }
        match self.repo.db.transact("create_transfer", items).await {
            Ok(()) => Ok(()),
            Err(e) if (0..listing).any(|i| e.failed_at(i).is_some()) => Err(TransferError::ProductMoved),
            Err(e) if e.failed_at(source_at).is_some() => {
                let old = e.failed_at(source_at).flatten();
                Err(TransferError::Insufficient {
                    available: old.and_then(|i| i.opt_n("available")).unwrap_or(0),
                })
            }
            Err(e) if completion_at.is_some_and(|i| e.failed_at(i).is_some()) => {
                Err(TransferError::LeaseLost)
            }
            Err(e) => Err(e.into()),
        }
    }

    pub async fn get(&self, id: &str) -> Result<Option<Transfer>, StoreError> {
        let item = self.repo.db.get("get_transfer", &self.repo.table, &transfer_pk(id), TRANSFER_SK).await?;
        item.as_ref().map(rec::transfer).transpose()
    }

    /// Up to `limit` transfers older than `before` (an id), newest first: `product`'s
    /// (its partition of the product list index) or all (the one transfer partition of
    /// the sweep index), of `status` if given; `more` says whether another page exists.
    /// The indexes are eventually consistent: a transfer made or ended a moment ago may
    /// show, or show its new status, on the next call.
    pub async fn list(
        &self,
        product: Option<&str>,
        status: Option<TransferStatus>,
        before: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<Transfer>, bool), StoreError> {
        let (index, pk_attr, sk_attr, pk) = match product {
            Some(p) => (GSI1, GSI1_PK, GSI1_SK, transfers_of_pk(p)),
            None => (SWEEP_INDEX, SWEEP_PK, SWEEP_SK, TRANSFER_LIST_PK.to_string()),
        };
        let mut q = self
            .repo
            .db
            .query(&self.repo.table)
            .index_name(index)
            .expression_attribute_names("#pk", pk_attr)
            .expression_attribute_values(":pk", records::s(pk))
            .scan_index_forward(false);
        q = match before {
            Some(b) => q
                .key_condition_expression("#pk = :pk AND #sk < :before")
                .expression_attribute_names("#sk", sk_attr)
                .expression_attribute_values(":before", records::s(b)),
            None => q.key_condition_expression("#pk = :pk"),
        };
        if let Some(st) = status {
            q = q
                .filter_expression("#status = :status")
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":status", records::s(st.as_str()));
        }
        // One more than asked tells whether a next page exists. A status filter may leave
        // pages short, so those read ahead in pages of at least FILTERED_PAGE items: the
        // next page resumes after the last transfer returned, not where a read stopped.
        let want = limit + 1;
        let mut found = Vec::new();
        let mut start = None;
        loop {
            let ask = if status.is_some() { want.max(FILTERED_PAGE) } else { want - found.len() };
            let page = self
                .repo
                .db
                .query_page("list_transfers", q.clone().limit(i32::try_from(ask).unwrap_or(i32::MAX)), start)
                .await?;
            found.extend(page.items);
            start = page.next;
            if start.is_none() || found.len() >= want {
                break;
            }
        }
        let more = found.len() > limit;
        found.truncate(limit);
        let transfers = found.iter().map(rec::transfer).collect::<Result<Vec<_>, _>>()?;
        Ok((transfers, more))
    }

    /// Ends `after` (received or cancelled, from `before` in transit) in one transaction:
    /// the transfer on condition that it is still in transit, and the units: received,
    /// from the destination's `incoming` to its hand (`transfer_in`); cancelled, back to
    /// the source's hand (`transfer_cancelled`) and out of the destination's `incoming`.
    pub async fn end(&self, after: &Transfer, end: TransferEnd, actor: &str) -> Result<(), TransferError> {
        let now = format_time(after.updated_at);
        let (from, to, q) =
            (after.from_warehouse_id.as_str(), after.to_warehouse_id.as_str(), after.quantity);
        let mut items = vec![update(rec::end(&self.repo.table, after, actor)?)];
        match end {
            TransferEnd::Receive => {
                let cause = Cause::of(Reason::TransferIn, RefKind::Transfer, &after.id);
                items.push(update(self.row(after, to, &now, actor, &cause).arrive(q)?));
            }
            TransferEnd::Cancel => {
                let cause = Cause::of(Reason::TransferCancelled, RefKind::Transfer, &after.id);
                items.push(update(self.row(after, from, &now, actor, &cause).restock(q)?));
                items.push(update(self.row(after, to, &now, actor, &cause).unexpect(q)?));
            }
        }
        let op = match end {
            TransferEnd::Receive => "receive_transfer",
            TransferEnd::Cancel => "cancel_transfer",
        };
        match self.repo.db.transact(op, items).await {
            Ok(()) => Ok(()),
            Err(e) if e.failed_at(0).is_some() => Err(TransferError::NotInTransit {
                status: e
                    .failed_at(0)
                    .flatten()
                    .and_then(|old| old.opt_s("status"))
                    .and_then(TransferStatus::parse),
            }),
            // The row the units join: the destination's hand, or the source's on a cancel.
            Err(e) if e.failed_at(1).is_some() => Err(TransferError::TooMuch),
            Err(e) => Err(e.into()),
        }
    }
}
