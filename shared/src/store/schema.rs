//! The table definition, written once. `create_table` builds DynamoDB Local from it and
//! `cloudformation_properties` renders it in `AWS::DynamoDB::Table` form, which a test
//! compares with `template.yaml` so the two can never drift apart.

use super::keys::*;
use super::{classify, StoreError};
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

/// The application table.
pub struct TableDef {
    pub pk: &'static str,
    pub sk: &'static str,
    pub indexes: &'static [IndexDef],
    pub ttl_attribute: &'static str,
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
    ttl_attribute: TTL,
};

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
        json!({
            "BillingMode": "PAY_PER_REQUEST",
            "AttributeDefinitions": self.attributes().iter()
                .map(|a| json!({"AttributeName": a, "AttributeType": "S"})).collect::<Vec<_>>(),
            "KeySchema": key(self.pk, self.sk),
            "GlobalSecondaryIndexes": self.indexes.iter().map(|i| json!({
                "IndexName": i.name,
                "KeySchema": key(i.pk, i.sk),
                "Projection": {"ProjectionType": "ALL"},
            })).collect::<Vec<_>>(),
            "StreamSpecification": {"StreamViewType": "NEW_AND_OLD_IMAGES"},
            "TimeToLiveSpecification": {"AttributeName": self.ttl_attribute, "Enabled": true},
        })
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
            .set_key_schema(Some(key(self.pk, self.sk)?))
            .stream_specification(
                StreamSpecification::builder()
                    .stream_enabled(true)
                    .stream_view_type(StreamViewType::NewAndOldImages)
                    .build()?,
            );
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
            Err(e) => return Err(classify("create_table", e)),
        }
        client
            .update_time_to_live()
            .table_name(name)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .attribute_name(self.ttl_attribute)
                    .enabled(true)
                    .build()?,
            )
            .send()
            .await
            .map_err(|e| classify("update_time_to_live", e))?;
        Ok(())
    }
}
