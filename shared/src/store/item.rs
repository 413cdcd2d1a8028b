//! Typed reads from a DynamoDB item; a missing or mistyped attribute is a store error.

use super::StoreError;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use std::collections::HashMap;

/// One item as DynamoDB returns it.
#[derive(Debug, Clone, PartialEq)]
pub struct Item(pub HashMap<String, AttributeValue>);

impl Item {
    pub fn opt_s(&self, name: &str) -> Option<&str> {
        self.0.get(name).and_then(|v| v.as_s().ok()).map(String::as_str)
    }

    pub fn s(&self, name: &str) -> Result<&str, StoreError> {
        self.opt_s(name).ok_or_else(|| StoreError::Internal(format!("item lacks string {name}")))
    }

    pub fn opt_n(&self, name: &str) -> Option<i64> {
        self.0.get(name).and_then(|v| v.as_n().ok()).and_then(|n| n.parse().ok())
    }

    pub fn n(&self, name: &str) -> Result<i64, StoreError> {
        self.opt_n(name).ok_or_else(|| StoreError::Internal(format!("item lacks number {name}")))
    }

    /// The stock bucket the item names (`keys::BUCKET`); absent means bucket 0.
    pub fn bucket(&self) -> Result<usize, StoreError> {
        usize::try_from(self.opt_n(super::keys::BUCKET).unwrap_or(0))
            .map_err(|_| StoreError::Internal("bad bucket".into()))
    }

    pub fn time(&self, name: &str) -> Result<DateTime<Utc>, StoreError> {
        crate::adapters::clock::parse_time(self.s(name)?)
            .ok_or_else(|| StoreError::Internal(format!("item has a bad time in {name}")))
    }
}
