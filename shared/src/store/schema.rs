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

/// What a table's stream carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Both images: the audit diffs a change's before and after.
    NewAndOldImages,
    /// The new image alone: the publisher needs only the item written.
    NewImage,
}

impl Stream {
    fn name(self) -> &'static str {
        match self {
            Self::NewAndOldImages => "NEW_AND_OLD_IMAGES",
            Self::NewImage => "NEW_IMAGE",
        }
    }

    fn view_type(self) -> StreamViewType {
        match self {
            Self::NewAndOldImages => StreamViewType::NewAndOldImages,
            Self::NewImage => StreamViewType::NewImage,
        }
    }
}

/// A table: string keys, optional indexes, TTL attribute and stream.
pub struct TableDef {
    pub pk: &'static str,
    pub sk: &'static str,
    pub indexes: &'static [IndexDef],
    pub ttl_attribute: Option<&'static str>,
    pub stream: Option<Stream>,
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
    // Feeds the audit function.
    stream: Some(Stream::NewAndOldImages),
};

/// The audit table: entries by entity (`E#<type>#<id>`), oldest first, and the replay
/// feed of events (`F#...`, kept 7 days by TTL; entries have no TTL and stay). Its
/// stream feeds the publisher (filtered to feed items), never the audit function, so
/// writing entries feeds nothing back.
pub const AUDIT_TABLE: TableDef =
    TableDef { pk: PK, sk: SK, indexes: &[], ttl_attribute: Some(TTL), stream: Some(Stream::NewImage) };

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
        if let Some(stream) = self.stream {
            props["StreamSpecification"] = json!({"StreamViewType": stream.name()});
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
        if let Some(stream) = self.stream {
            req = req.stream_specification(
                StreamSpecification::builder()
                    .stream_enabled(true)
                    .stream_view_type(stream.view_type())
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
            Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_in_use_exception()) => {
                return self.upgrade(client, name).await
            }
            Err(e) => return Err(classify("create_table", Access::Write, e)),
        }
        self.enable_ttl(client, name).await
    }

    /// Brings a table made by an earlier version (a `make dev` database kept in
    /// `.local/dev-data`) to this definition's stream and TTL; its keys and indexes are
    /// as they were (none has changed since tables were first made).
    async fn upgrade(&self, client: &Client, name: &str) -> Result<(), StoreError> {
        let described = client
            .describe_table()
            .table_name(name)
            .send()
            .await
            .map_err(|e| classify("describe_table", Access::Read, e))?;
        let current = described.table.and_then(|t| t.stream_specification);
        if let Some(stream) = self.stream {
            if !current.as_ref().is_some_and(|c| c.stream_enabled) {
                client
                    .update_table()
                    .table_name(name)
                    .stream_specification(
                        StreamSpecification::builder()
                            .stream_enabled(true)
                            .stream_view_type(stream.view_type())
                            .build()?,
                    )
                    .send()
                    .await
                    .map_err(|e| classify("update_table", Access::Write, e))?;
            }
        }
        let Some(ttl) = self.ttl_attribute else { return Ok(()) };
        let on = client
            .describe_time_to_live()
            .table_name(name)
            .send()
            .await
            .map_err(|e| classify("describe_time_to_live", Access::Read, e))?
            .time_to_live_description
            .and_then(|d| d.attribute_name)
            .is_some_and(|a| a == ttl);
        if on {
            Ok(())
        } else {
            self.enable_ttl(client, name).await
        }
    }

    async fn enable_ttl(&self, client: &Client, name: &str) -> Result<(), StoreError> {
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
