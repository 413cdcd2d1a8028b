//! Typed reads from a DynamoDB item; a missing or mistyped attribute is a store error.

use super::StoreError;
use aws_sdk_dynamodb::types::AttributeValue;
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
}
