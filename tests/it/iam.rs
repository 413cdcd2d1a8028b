//! Local IAM enforcement bites: a call the template does not allow the function fails as
//! AWS fails it, and removing one action from the template fails the route that needs it.

use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::json;
use shared::iam::LocalIam;
use std::sync::Arc;
use stockhold_tests::*;

/// A `GetItem` of a key that does not exist, in `table`, as the function `binary`.
async fn get_nothing(
    binary: &str,
    table: &str,
) -> Result<
    aws_sdk_dynamodb::operation::get_item::GetItemOutput,
    aws_sdk_dynamodb::error::SdkError<aws_sdk_dynamodb::operation::get_item::GetItemError>,
> {
    let key = |v: &str| AttributeValue::S(v.into());
    let client = function_client(&app().await, binary).await;
    client.get_item().table_name(table).key("pk", key("x")).key("sk", key("y")).send().await
}

#[tokio::test]
async fn a_call_outside_the_functions_policy_fails_with_aws_access_denied() {
    let app = app().await;
    // The list function may only query the order indexes: reading an item is refused...
    let err = get_nothing("list", app.store.table()).await.expect_err("refused");
    assert_eq!(err.code(), Some("AccessDeniedException"), "{err:?}");
    assert!(err.message().unwrap_or_default().contains("dynamodb:GetItem"), "{err:?}");
    // ...while the order function, which may, reads it (and finds nothing).
    assert!(get_nothing("order", app.store.table()).await.expect("allowed").item.is_none());
    // The audit table is another resource: the order function may not touch it.
    let audit = get_nothing("order", app.store.audit_table()).await;
    assert_eq!(audit.expect_err("refused").code(), Some("AccessDeniedException"));
}

/// `template` with `action` taken out of the products function's item statement, enforced
/// on a gateway of its own (beside the intact one).
async fn products_without(action: &str) -> (TestGateway, TestGateway) {
    let products = "Action: [dynamodb:GetItem, dynamodb:Query, dynamodb:PutItem";
    assert!(TEMPLATE_YAML.contains(products), "the products policy changed; update this test");
    let without = TEMPLATE_YAML.replacen(products, &products.replace(&format!("{action}, "), ""), 1);
    assert_ne!(without, TEMPLATE_YAML);
    let without = template_json(&without);
    let base = app().await;
    let names = shared::iam::LocalNames::default()
        .with("Table", base.store.table())
        .with("AuditTable", base.store.audit_table());
    let iam = LocalIam::new(&without, &names, None).expect("template");
    (gateway_for(base.clone().with_local_iam(Some(Arc::new(iam)))).await, gateway_for(base).await)
}

#[tokio::test]
async fn removing_get_item_from_the_products_policy_fails_the_bucketed_product_read() {
    let (crippled, intact) = products_without("dynamodb:GetItem").await;
    let id = intact.bucketed_product(json!({"main": 8}), 4).await;
    let path = format!("/api/products/{id}");
    assert_eq!(intact.get(&path, None).await.status, 200);
    // Its snapshot of every bucket row is a TransactGetItems: GetItem on each row.
    let r = crippled.get(&path, None).await;
    assert_eq!((r.status, r.code()), (500, "internal"), "{}", r.body);
    let plain = intact.product(json!({"main": 1})).await;
    assert_eq!(crippled.get(&format!("/api/products/{plain}"), None).await.status, 200);
}
