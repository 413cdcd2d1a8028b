//! What one AWS API request asks IAM for: the actions it needs and on which resources,
//! read from the request the SDK is about to send (so that every call is seen, whatever
//! code made it). DynamoDB authorises a `TransactWriteItems` per item (`PutItem`,
//! `UpdateItem`, `DeleteItem`, `ConditionCheckItem` on each item's table) and a
//! `BatchGetItem` per table it names; a `Query` on an index needs the index's ARN.

use super::policy::{ACCOUNT, PARTITION, REGION};
use serde_json::Value;

/// The AWS API a guarded client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    DynamoDb,
    DynamoDbStreams,
    Scheduler,
    SecretsManager,
    EventBridge,
}

/// One authorisation the request needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Need {
    pub action: String,
    pub resource: String,
    pub context: Vec<(&'static str, String)>,
}

/// A schedule the request creates or updates: what it will invoke, as whom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleTarget {
    pub target_arn: String,
    pub role_arn: String,
    pub dead_letter_arn: Option<String>,
}

/// Everything a request needs authorised.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Needs {
    pub operation: String,
    pub needs: Vec<Need>,
    pub schedule_target: Option<ScheduleTarget>,
}

fn need(action: String, resource: String) -> Need {
    Need { action, resource, context: Vec::new() }
}

fn table_arn(name: &str) -> String {
    if name.starts_with("arn:") {
        name.to_string()
    } else {
        format!("arn:{PARTITION}:dynamodb:{REGION}:{ACCOUNT}:table/{name}")
    }
}

/// A stream ARN with DynamoDB Local's region and account replaced by the local stack's.
fn stream_arn(arn: &str) -> String {
    match arn.split_once(":table/") {
        Some((_, rest)) => format!("arn:{PARTITION}:dynamodb:{REGION}:{ACCOUNT}:table/{rest}"),
        None => arn.to_string(),
    }
}

/// Reads the needs of a request of `service`: its method, URI, `X-Amz-Target` header and
/// body. A request that cannot be read is an error (and is refused by the guard).
pub fn needs(
    service: Service,
    method: &str,
    uri: &str,
    target: Option<&str>,
    body: &[u8],
) -> Result<Needs, String> {
    match service {
        Service::DynamoDb | Service::DynamoDbStreams => {
            let op = target
                .and_then(|t| t.split_once('.'))
                .map(|(_, op)| op.to_string())
                .ok_or("no X-Amz-Target")?;
            let body: Value = if body.is_empty() {
                Value::Null
            } else {
                serde_json::from_slice(body).map_err(|e| format!("body: {e}"))?
            };
            let needs =
                if service == Service::DynamoDb { dynamodb(&op, &body)? } else { streams(&op, &body)? };
            Ok(Needs { operation: op, needs, schedule_target: None })
        }
        Service::Scheduler => scheduler(method, uri, body),
        Service::EventBridge => {
            let op = target
                .and_then(|t| t.split_once('.'))
                .map(|(_, op)| op.to_string())
                .ok_or("no X-Amz-Target")?;
            let body: Value = serde_json::from_slice(body).map_err(|e| format!("body: {e}"))?;
            Ok(Needs { needs: events(&op, &body)?, operation: op, schedule_target: None })
        }
        Service::SecretsManager => {
            let op = target
                .and_then(|t| t.split_once('.'))
                .map(|(_, op)| op.to_string())
                .ok_or("no X-Amz-Target")?;
            let body: Value = serde_json::from_slice(body).map_err(|e| format!("body: {e}"))?;
            let id = body["SecretId"].as_str().ok_or(format!("{op} without SecretId"))?;
            let resource = if id.starts_with("arn:") {
                id.to_string()
            } else {
                format!("arn:{PARTITION}:secretsmanager:{REGION}:{ACCOUNT}:secret:{id}")
            };
            Ok(Needs {
                needs: vec![need(format!("secretsmanager:{op}"), resource)],
                operation: op,
                schedule_target: None,
            })
        }
    }
}

fn dynamodb(op: &str, body: &Value) -> Result<Vec<Need>, String> {
    let table = |v: &Value| v["TableName"].as_str().map(table_arn).ok_or(format!("{op} without TableName"));
    let action = |a: &str| format!("dynamodb:{a}");
    Ok(match op {
        "TransactWriteItems" => {
            let items = body["TransactItems"].as_array().ok_or("TransactItems")?;
            let mut out = Vec::new();
            for item in items {
                let (kind, inner) =
                    item.as_object().and_then(|o| o.iter().next()).ok_or("an empty transaction item")?;
                let a = match kind.as_str() {
                    "ConditionCheck" => "ConditionCheckItem",
                    "Put" => "PutItem",
                    "Update" => "UpdateItem",
                    "Delete" => "DeleteItem",
                    other => return Err(format!("transaction item {other}")),
                };
                out.push(need(action(a), table(inner)?));
            }
            out
        }
        "TransactGetItems" => {
            let items = body["TransactItems"].as_array().ok_or("TransactItems")?;
            items
                .iter()
                .map(|i| Ok(need(action("GetItem"), table(&i["Get"])?)))
                .collect::<Result<_, String>>()?
        }
        "BatchGetItem" | "BatchWriteItem" => {
            let tables = body["RequestItems"].as_object().ok_or("RequestItems")?;
            tables.keys().map(|t| need(action(op), table_arn(t))).collect()
        }
        "Query" | "Scan" => {
            let mut resource = table(body)?;
            if let Some(index) = body["IndexName"].as_str() {
                resource = format!("{resource}/index/{index}");
            }
            vec![need(action(op), resource)]
        }
        "ListTables" => vec![need(action(op), "*".into())],
        _ => vec![need(action(op), table(body)?)],
    })
}

fn streams(op: &str, body: &Value) -> Result<Vec<Need>, String> {
    let arn = match op {
        "ListStreams" => "*".to_string(),
        // A shard iterator names its stream (DynamoDB Local: `<id>|<stream arn>|...`).
        "GetRecords" => body["ShardIterator"]
            .as_str()
            .and_then(|it| it.split('|').find(|p| p.starts_with("arn:")))
            .map(stream_arn)
            .unwrap_or_else(|| "*".into()),
        _ => body["StreamArn"].as_str().map(stream_arn).ok_or(format!("{op} without StreamArn"))?,
    };
    Ok(vec![need(format!("dynamodb:{op}"), arn)])
}

/// `PutEvents` needs `events:PutEvents` on each bus its entries name (no name: the
/// account's `default` bus); other operations on the bus their body names.
fn events(op: &str, body: &Value) -> Result<Vec<Need>, String> {
    let bus = |name: Option<&str>| {
        let name = name.unwrap_or("default");
        if name.starts_with("arn:") {
            name.to_string()
        } else {
            format!("arn:{PARTITION}:events:{REGION}:{ACCOUNT}:event-bus/{name}")
        }
    };
    let action = format!("events:{op}");
    if op == "PutEvents" {
        let entries = body["Entries"].as_array().ok_or("PutEvents without Entries")?;
        let mut out: Vec<Need> = Vec::new();
        for e in entries {
            let n = need(action.clone(), bus(e["EventBusName"].as_str()));
            if !out.contains(&n) {
                out.push(n);
            }
        }
        return Ok(out);
    }
    Ok(vec![need(action, bus(body["EventBusName"].as_str().or(body["Name"].as_str())))])
}

fn scheduler(method: &str, uri: &str, body: &[u8]) -> Result<Needs, String> {
    let uri: http::Uri = uri.parse().map_err(|e| format!("uri: {e}"))?;
    let segments: Vec<&str> = uri.path().trim_matches('/').split('/').collect();
    let query: Vec<(String, String)> =
        form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes()).into_owned().collect();
    let body: Value =
        if body.is_empty() { Value::Null } else { serde_json::from_slice(body).unwrap_or(Value::Null) };
    let group = body["GroupName"]
        .as_str()
        .map(str::to_string)
        .or_else(|| query.iter().find(|(k, _)| k == "groupName").map(|(_, v)| v.clone()))
        .unwrap_or_else(|| "default".into());
    let arn = |kind: &str, name: &str| format!("arn:{PARTITION}:scheduler:{REGION}:{ACCOUNT}:{kind}/{name}");
    let (operation, resource) = match (method, segments.as_slice()) {
        ("POST", ["schedules", name]) => ("CreateSchedule", arn("schedule", &format!("{group}/{name}"))),
        ("PUT", ["schedules", name]) => ("UpdateSchedule", arn("schedule", &format!("{group}/{name}"))),
        ("GET", ["schedules", name]) => ("GetSchedule", arn("schedule", &format!("{group}/{name}"))),
        ("DELETE", ["schedules", name]) => ("DeleteSchedule", arn("schedule", &format!("{group}/{name}"))),
        ("GET", ["schedules"]) => ("ListSchedules", "*".to_string()),
        ("POST", ["schedule-groups", name]) => ("CreateScheduleGroup", arn("schedule-group", name)),
        ("GET", ["schedule-groups", name]) => ("GetScheduleGroup", arn("schedule-group", name)),
        ("DELETE", ["schedule-groups", name]) => ("DeleteScheduleGroup", arn("schedule-group", name)),
        _ => return Err(format!("scheduler request {method} {} is not modelled locally", uri.path())),
    };
    let mut needs = vec![need(format!("scheduler:{operation}"), resource)];
    let mut schedule_target = None;
    if matches!(operation, "CreateSchedule" | "UpdateSchedule") {
        let t = &body["Target"];
        let role = t["RoleArn"].as_str().ok_or("a schedule without Target.RoleArn")?.to_string();
        // Handing a role to the scheduler is itself an action on that role.
        needs.push(Need {
            action: "iam:PassRole".into(),
            resource: role.clone(),
            context: vec![("iam:PassedToService", "scheduler.amazonaws.com".into())],
        });
        schedule_target = Some(ScheduleTarget {
            target_arn: t["Arn"].as_str().ok_or("a schedule without Target.Arn")?.to_string(),
            role_arn: role,
            dead_letter_arn: t["DeadLetterConfig"]["Arn"].as_str().map(str::to_string),
        });
    }
    Ok(Needs { operation: operation.into(), needs, schedule_target })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transaction_needs_each_item_action_on_each_items_table() {
        let body = br#"{"TransactItems":[{"Put":{"TableName":"a"}},{"ConditionCheck":{"TableName":"b"}},{"Update":{"TableName":"a"}}]}"#;
        let n = needs(Service::DynamoDb, "POST", "/", Some("DynamoDB_20120810.TransactWriteItems"), body)
            .expect("needs");
        let got: Vec<(&str, &str)> = n
            .needs
            .iter()
            .map(|n| (n.action.as_str(), n.resource.rsplit('/').next().unwrap_or("")))
            .collect();
        assert_eq!(
            got,
            [("dynamodb:PutItem", "a"), ("dynamodb:ConditionCheckItem", "b"), ("dynamodb:UpdateItem", "a")]
        );
    }

    #[test]
    fn a_query_on_an_index_needs_the_index_arn_and_a_batch_get_every_table() {
        let q = needs(
            Service::DynamoDb,
            "POST",
            "/",
            Some("DynamoDB_20120810.Query"),
            br#"{"TableName":"t","IndexName":"gsi1"}"#,
        )
        .expect("q");
        assert_eq!(q.needs[0].resource, "arn:aws:dynamodb:us-east-1:123456789012:table/t/index/gsi1");
        let b = needs(
            Service::DynamoDb,
            "POST",
            "/",
            Some("DynamoDB_20120810.BatchGetItem"),
            br#"{"RequestItems":{"t":{},"u":{}}}"#,
        )
        .expect("b");
        assert_eq!(b.needs.len(), 2);
        assert!(b.needs.iter().all(|n| n.action == "dynamodb:BatchGetItem"));
    }

    #[test]
    fn put_events_needs_put_events_on_each_bus_its_entries_name_once() {
        let body = br#"{"Entries":[{"EventBusName":"shop"},{"EventBusName":"shop"},{}]}"#;
        let n = needs(Service::EventBridge, "POST", "/", Some("AWSEvents.PutEvents"), body).expect("n");
        let got: Vec<(&str, &str)> =
            n.needs.iter().map(|n| (n.action.as_str(), n.resource.as_str())).collect();
        assert_eq!(
            got,
            [
                ("events:PutEvents", "arn:aws:events:us-east-1:123456789012:event-bus/shop"),
                ("events:PutEvents", "arn:aws:events:us-east-1:123456789012:event-bus/default"),
            ]
        );
    }

    #[test]
    fn creating_a_schedule_passes_its_role_to_the_scheduler() {
        let body = br#"{"GroupName":"g","Target":{"Arn":"arn:f","RoleArn":"arn:r","DeadLetterConfig":{"Arn":"arn:q"}}}"#;
        let n = needs(Service::Scheduler, "POST", "http://h/schedules/abc", None, body).expect("n");
        assert_eq!(n.needs[0].resource, "arn:aws:scheduler:us-east-1:123456789012:schedule/g/abc");
        assert_eq!((n.needs[1].action.as_str(), n.needs[1].resource.as_str()), ("iam:PassRole", "arn:r"));
        assert_eq!(n.schedule_target.expect("target").dead_letter_arn.as_deref(), Some("arn:q"));
        let d = needs(
            Service::Scheduler,
            "DELETE",
            "http://h/schedules/abc?groupName=g&clientToken=x",
            None,
            b"",
        )
        .expect("d");
        assert_eq!(d.needs[0].action, "scheduler:DeleteSchedule");
        assert!(d.needs[0].resource.ends_with("schedule/g/abc"));
    }
}
