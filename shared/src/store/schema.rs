//! The table definition, written once. `create_table` builds DynamoDB Local from it and
//! `cloudformation_properties` renders it in `AWS::DynamoDB::Table` form, which a test
//! compares with `template.yaml` so the two can never drift apart.

use super::exec::{classify, Access};
use super::keys::*;
use super::StoreError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, StreamSpecification, StreamViewType, TimeToLiveSpecification,
};
use aws_sdk_dynamodb::Client;
use serde_json::{json, Value};

/// A global secondary index: string keys, all attributes projected.
pub struct IndexDef {
    pub name: &'static str,
    pub pk: &'static str,
    pub sk: &'static str,
}

/// A table: string keys, optional indexes, TTL attribute and stream.
pub struct TableDef {
    pub pk: &'static str,
    pub sk: &'static str,
    pub indexes: &'static [IndexDef],
    pub ttl_attribute: Option<&'static str>,
    /// `NEW_AND_OLD_IMAGES` stream (feeds the audit function).
    pub stream: bool,
}

pub const TABLE: TableDef = TableDef {
    pk: PK,
    sk: SK,
    indexes: &[
        IndexDef { name: GSI1, pk: GSI1_PK, sk: GSI1_SK },
        IndexDef { name: SWEEP_INDEX, pk: SWEEP_PK, sk: SWEEP_SK },
        IndexDef { name: ORDERS_BY_USER_TIME, pk: OU_PK, sk: O_TIME },
        IndexDef { name: ORDERS_BY_USER_VALUE, pk: OU_PK, sk: O_VALUE },
        IndexDef { name: ORDERS_BY_USER_STATUS_TIME, pk: OUS_PK, sk: O_TIME },
        IndexDef { name: ORDERS_BY_USER_STATUS_VALUE, pk: OUS_PK, sk: O_VALUE },
        IndexDef { name: ORDERS_ALL_TIME, pk: OA_PK, sk: O_TIME },
        IndexDef { name: ORDERS_ALL_VALUE, pk: OA_PK, sk: O_VALUE },
        IndexDef { name: ORDERS_BY_STATUS_TIME, pk: OSS_PK, sk: O_TIME },
        IndexDef { name: ORDERS_BY_STATUS_VALUE, pk: OSS_PK, sk: O_VALUE },
    ],
    ttl_attribute: Some(TTL),
    stream: true,
};

/// The audit table: entries by entity (`E#<type>#<id>`), oldest first. It has no stream,
/// so writing audit entries never feeds the audit function.
pub const AUDIT_TABLE: TableDef =
    TableDef { pk: PK, sk: SK, indexes: &[], ttl_attribute: None, stream: false };

impl TableDef {
    /// Key attributes of the table and its indexes, each once, in first-use order.
    fn attributes(&self) -> Vec<&'static str> {
        let mut names = vec![self.pk, self.sk];
        for i in self.indexes {
            for a in [i.pk, i.sk] {
                if !names.contains(&a) {
                    names.push(a);
                }
            }
        }
        names
    }

    /// The table's `Properties` as `template.yaml` must spell them (minus the name and
    /// deployment toggles such as deletion protection).
    pub fn cloudformation_properties(&self) -> Value {
        let key = |pk: &str, sk: &str| json!([{"AttributeName": pk, "KeyType": "HASH"}, {"AttributeName": sk, "KeyType": "RANGE"}]);
        let mut props = json!({
            "BillingMode": "PAY_PER_REQUEST",
            "AttributeDefinitions": self.attributes().iter()
                .map(|a| json!({"AttributeName": a, "AttributeType": "S"})).collect::<Vec<_>>(),
            "KeySchema": key(self.pk, self.sk),
        });
        if !self.indexes.is_empty() {
            props["GlobalSecondaryIndexes"] = self
                .indexes
                .iter()
                .map(|i| {
                    json!({
                        "IndexName": i.name,
                        "KeySchema": key(i.pk, i.sk),
                        "Projection": {"ProjectionType": "ALL"},
                    })
                })
                .collect::<Vec<_>>()
                .into();
        }
        if self.stream {
            props["StreamSpecification"] = json!({"StreamViewType": "NEW_AND_OLD_IMAGES"});
        }
        if let Some(ttl) = self.ttl_attribute {
            props["TimeToLiveSpecification"] = json!({"AttributeName": ttl, "Enabled": true});
        }
        props
    }

    /// Creates the table (and its TTL setting) if it does not exist yet.
    pub async fn create(&self, client: &Client, name: &str) -> Result<(), StoreError> {
        let key = |pk: &str, sk: &str| -> Result<Vec<KeySchemaElement>, StoreError> {
            Ok(vec![
                KeySchemaElement::builder().attribute_name(pk).key_type(KeyType::Hash).build()?,
                KeySchemaElement::builder().attribute_name(sk).key_type(KeyType::Range).build()?,
            ])
        };
        let mut req = client
            .create_table()
            .table_name(name)
            .billing_mode(BillingMode::PayPerRequest)
            .set_key_schema(Some(key(self.pk, self.sk)?));
        if self.stream {
            req = req.stream_specification(
                StreamSpecification::builder()
                    .stream_enabled(true)
                    .stream_view_type(StreamViewType::NewAndOldImages)
                    .build()?,
            );
        }
        for a in self.attributes() {
            req = req.attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(a)
                    .attribute_type(ScalarAttributeType::S)
                    .build()?,
            );
        }
        for i in self.indexes {
            req = req.global_secondary_indexes(
                GlobalSecondaryIndex::builder()
                    .index_name(i.name)
                    .set_key_schema(Some(key(i.pk, i.sk)?))
                    .projection(Projection::builder().projection_type(ProjectionType::All).build())
                    .build()?,
            );
        }
        match req.send().await {
            Ok(_) => {}
            Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_in_use_exception()) => return Ok(()),
            Err(e) => return Err(classify("create_table", Access::Write, e)),
        }
        if let Some(ttl) = self.ttl_attribute {
            client
                .update_time_to_live()
                .table_name(name)
                .time_to_live_specification(
                    TimeToLiveSpecification::builder().attribute_name(ttl).enabled(true).build()?,
                )
                .send()
                .await
                .map_err(|e| classify("update_time_to_live", Access::Write, e))?;
        }
        Ok(())
    }
}
