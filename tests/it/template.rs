//! `template.yaml` must agree with the code: the same routes per function and the same
//! table definition the local stack creates.

use serde_yaml::Value;
use shared::functions::{routes, ALL};
use shared::store::schema::{AUDIT_TABLE, TABLE};
use std::collections::BTreeSet;

fn template() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml");
    let text = std::fs::read_to_string(path).expect("read template.yaml");
    serde_yaml::from_str(&text).expect("parse template.yaml")
}

#[test]
fn every_route_in_the_code_is_in_the_template_on_the_same_function_and_nothing_else() {
    let t = template();
    let mut in_template = BTreeSet::new();
    for (name, res) in t["Resources"].as_mapping().expect("Resources") {
        if res["Type"] != "AWS::Serverless::Function" {
            continue;
        }
        let uri = res["Properties"]["CodeUri"].as_str().expect("CodeUri");
        let function = uri.trim_end_matches('/').rsplit('/').next().expect("fn").to_string();
        let Some(events) = res["Properties"]["Events"].as_mapping() else { continue };
        for (_, ev) in events {
            if ev["Type"] != "HttpApi" {
                continue;
            }
            let p = &ev["Properties"];
            let public = p["Auth"]["Authorizer"] == "NONE";
            in_template.insert((
                p["Method"].as_str().expect("Method").to_uppercase(),
                p["Path"].as_str().expect("Path").to_string(),
                function.clone(),
                public,
            ));
            let _ = name;
        }
    }
    let in_code: BTreeSet<_> = routes()
        .map(|r| (r.method.to_string(), r.path.to_string(), r.function.to_string(), r.public))
        .collect();
    assert_eq!(in_template, in_code);
}

#[test]
fn the_template_tables_match_the_tables_the_local_stack_creates() {
    let t = template();
    for (resource, def) in [("Table", &TABLE), ("AuditTable", &AUDIT_TABLE)] {
        let props = &t["Resources"][resource]["Properties"];
        let expected: Value = serde_yaml::to_value(def.cloudformation_properties()).expect("yaml");
        for (k, v) in expected.as_mapping().expect("map") {
            assert_eq!(&props[k], v, "{resource}.Properties.{}", k.as_str().unwrap_or("?"));
        }
        for key in ["GlobalSecondaryIndexes", "StreamSpecification", "TimeToLiveSpecification"] {
            assert_eq!(
                props.get(key).is_some(),
                expected.get(key).is_some(),
                "{resource}.Properties.{key} present in one and not the other"
            );
        }
    }
}

fn resolved() -> shared::iam::Template {
    use shared::iam::policy::{LocalNames, Template, EMBEDDED_TEMPLATE};
    Template::parse(EMBEDDED_TEMPLATE, &LocalNames::default()).expect("template")
}

#[test]
fn expiry_schedules_invoke_exactly_the_expire_function_through_a_role_that_can_do_only_that() {
    use shared::iam::Grant;
    let t = resolved();
    let arn = |binary: &str| t.function(binary).expect(binary).arn.clone();
    let role = t.roles.iter().find(|r| r.logical_id == "SchedulerRole").expect("SchedulerRole");
    assert_eq!(role.trusted_services, ["scheduler.amazonaws.com"]);
    let g =
        |a: &str, r: &str| Grant { principal: "SchedulerRole".into(), action: a.into(), resource: r.into() };
    assert_eq!(
        role.policy.grants(),
        [g("lambda:InvokeFunction", "ExpireFunction.Arn"), g("sqs:SendMessage", "ExpiryDeadLetterQueue.Arn")]
    );
    let reserve = &t.function("reserve").expect("reserve").environment;
    assert_eq!(reserve["EXPIRE_FUNCTION_ARN"], arn("expire"));
    assert_eq!(reserve["SCHEDULER_ROLE_ARN"], role.arn);
    assert!(reserve["EXPIRY_DLQ_ARN"].ends_with(":stockhold-ExpiryDeadLetterQueue"));
    // Only the function that creates schedules may pass a role, only that role, only to
    // the scheduler.
    for f in &t.functions {
        for grant in f.policy.grants().iter().filter(|g| g.action == "iam:PassRole") {
            assert_eq!((f.binary.as_str(), grant.resource.as_str()), ("reserve", "SchedulerRole.Arn"));
        }
    }
    let reserve = &t.function("reserve").expect("reserve").policy;
    let passed =
        |service: &str| reserve.evaluate("iam:PassRole", &role.arn, &[("iam:PassedToService", service)]);
    assert!(matches!(passed("scheduler.amazonaws.com"), shared::iam::Decision::Allowed(_)));
    assert_eq!(passed("lambda.amazonaws.com"), shared::iam::Decision::Denied);
}

#[test]
fn each_stream_feeds_one_function_whose_failures_go_to_a_queue_it_may_send_to() {
    let t = resolved();
    let mut stream_events: Vec<_> = t
        .functions
        .iter()
        .flat_map(|f| f.events.iter().map(move |e| (f, e)))
        .filter(|(_, e)| e.kind == "DynamoDB")
        .collect();
    stream_events.sort_by_key(|(f, _)| f.binary.clone());
    let got: Vec<(&str, Option<&str>)> =
        stream_events.iter().map(|(f, e)| (f.binary.as_str(), e.stream.as_deref())).collect();
    let arn = |table: &str| format!("arn:aws:dynamodb:us-east-1:123456789012:table/{table}/stream/*");
    let (table, audit_table) = (arn("stockhold-Table"), arn("stockhold-AuditTable"));
    assert_eq!(
        got,
        [("audit", Some(table.as_str())), ("publish", Some(audit_table.as_str()))],
        "the table's stream feeds the audit, the audit table's the publisher"
    );
    for ((f, e), queue) in stream_events.iter().zip(["AuditFailureQueue", "PublishFailureQueue"]) {
        let on_failure = e.on_failure.clone().expect("an on-failure destination");
        assert!(on_failure.ends_with(&format!(":stockhold-{queue}")), "{on_failure}");
        // Lambda sends a failed batch's description to the destination with the
        // function's own role.
        assert!(matches!(
            f.policy.evaluate("sqs:SendMessage", &on_failure, &[]),
            shared::iam::Decision::Allowed(_)
        ));
    }
    // The publisher may put events on the stack's bus and nothing else.
    let publish = &t.function("publish").expect("publish").policy;
    let bus = "arn:aws:events:us-east-1:123456789012:event-bus/stockhold-EventBus";
    assert!(matches!(publish.evaluate("events:PutEvents", bus, &[]), shared::iam::Decision::Allowed(_)));
    let other = "arn:aws:events:us-east-1:123456789012:event-bus/default";
    assert_eq!(publish.evaluate("events:PutEvents", other, &[]), shared::iam::Decision::Denied);
    assert_eq!(t.function("publish").expect("publish").environment["EVENT_BUS_NAME"], "stockhold-EventBus");
}

/// Whether an EventBridge pattern (the subset the template's filters use: arrays of
/// literal values and `{"prefix": ...}`, nested objects) matches `event`.
fn pattern_matches(pattern: &serde_json::Value, event: &serde_json::Value) -> bool {
    use serde_json::Value;
    match pattern {
        Value::Object(fields) => fields.iter().all(|(k, p)| pattern_matches(p, &event[k])),
        Value::Array(options) => options.iter().any(|o| match o {
            Value::Object(rule) if rule.contains_key("prefix") => {
                event.as_str().zip(rule["prefix"].as_str()).is_some_and(|(v, p)| v.starts_with(p))
            }
            literal => literal == event,
        }),
        _ => false,
    }
}

/// The publisher's filter lets through exactly the feed's new items: an event is
/// published when its feed item is written, never for an audit entry, a set-aside
/// record or the feed's own TTL removals.
#[test]
fn the_feed_stream_filter_passes_exactly_the_creation_of_feed_items() {
    use shared::store::records::event::{feed_pk, is_feed_key};
    let t = template_json();
    let filters = t["Resources"]["PublishFunction"]["Properties"]["Events"]["FeedStream"]["Properties"]
        ["FilterCriteria"]["Filters"]
        .as_array()
        .expect("FilterCriteria.Filters")
        .clone();
    let patterns: Vec<serde_json::Value> = filters
        .iter()
        .map(|f| serde_json::from_str(f["Pattern"].as_str().expect("Pattern")).expect("json"))
        .collect();
    let record = |name: &str, pk: &str| serde_json::json!({"eventName": name, "dynamodb": {"NewImage": {"pk": {"S": pk}, "sk": {"S": "x"}}}});
    let passes = |r: &serde_json::Value| patterns.iter().any(|p| pattern_matches(p, r));
    let feed = feed_pk("2026-12-07T12", 3);
    assert!(is_feed_key(&feed));
    assert!(passes(&record("INSERT", &feed)), "a new feed item");
    assert!(!passes(&record("MODIFY", &feed)), "a feed item is written once; a rewrite is no new event");
    assert!(!passes(
        &serde_json::json!({"eventName": "REMOVE", "dynamodb": {"OldImage": {"pk": {"S": feed}}}})
    ));
    for other in ["E#product#01KN", "X#set-aside", "Fx"] {
        assert!(!is_feed_key(other) && !passes(&record("INSERT", other)), "{other}");
    }
}

/// The variables the code reads (`var("...")`/`int_var("...")` in the shared crate and the
/// function crates, and `RUST_LOG` through the log filter).
fn variables_read_in(dir: &std::path::Path, found: &mut BTreeSet<String>) {
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            variables_read_in(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).expect("read source");
            for pattern in ["int_var(\"", " var(\"", "(var(\"", "::var(\""] {
                for piece in text.split(pattern).skip(1) {
                    if let Some(name) = piece
                        .split('"')
                        .next()
                        .filter(|n| n.chars().all(|c| c.is_ascii_uppercase() || c == '_'))
                    {
                        found.insert(name.to_string());
                    }
                }
            }
        }
    }
}

#[test]
fn every_function_declares_exactly_the_variables_its_code_reads() {
    let root = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    // Read through `config::log_settings` (beside the AWS_LAMBDA_* ones, which Lambda
    // reserves and sets itself: the template must not declare them).
    let mut shared = BTreeSet::from(["RUST_LOG".to_string(), "LOG_FORMAT".to_string()]);
    variables_read_in(&root.join("shared/src"), &mut shared);
    // Read by one job alone (shared::jobs::SweepSettings and ReconcileSettings::from_env).
    let only: [(&str, &[&str]); 2] = [
        ("sweep", &["SWEEP_BATCH_PER_SHARD", "SWEEP_GRACE_SECONDS"]),
        ("reconcile", &["RECONCILE_SETTLE_SECONDS"]),
    ];
    for v in only.iter().flat_map(|(_, vars)| vars.iter()) {
        assert!(shared.remove(*v), "the scan no longer finds {v}");
    }
    assert!(shared.contains("TABLE_NAME") && shared.contains("DYNAMODB_ENDPOINT"), "{shared:?}");
    for f in &resolved().functions {
        let mut read = shared.clone();
        variables_read_in(&root.join("functions").join(&f.binary).join("src"), &mut read);
        for (_, vars) in only.iter().filter(|(binary, _)| *binary == f.binary) {
            read.extend(vars.iter().map(|v| v.to_string()));
        }
        let declared: BTreeSet<String> = f.environment.keys().cloned().collect();
        assert_eq!(
            declared, read,
            "{}: template Environment (Globals + own) vs variables the code reads",
            f.binary
        );
    }
}

/// The template's own metrics (alarms and dashboard in the stack's namespace) are ones
/// the functions emit, under the function that emits them; the dashboard body and the
/// access log format are JSON once CloudFormation and API Gateway fill them in.
#[test]
fn alarms_and_dashboard_use_only_metrics_the_functions_emit_and_their_json_parses() {
    use serde_json::Value as J;
    use shared::service::ports::Metric;
    let names: BTreeSet<&str> = Metric::KINDS.iter().map(Metric::name).collect();
    let binaries: BTreeSet<String> = resolved().functions.iter().map(|f| f.binary.clone()).collect();
    let t: J =
        serde_json::from_str(&stockhold_tests::template_json(stockhold_tests::TEMPLATE_YAML)).expect("json");
    let stack = serde_json::json!({"Ref": "AWS::StackName"});
    let mut ours = 0;
    for (id, res) in t["Resources"].as_object().expect("Resources") {
        if res["Type"] != "AWS::CloudWatch::Alarm" || res["Properties"]["Namespace"] != stack {
            continue;
        }
        let p = &res["Properties"];
        assert!(
            names.contains(p["MetricName"].as_str().unwrap_or_default()),
            "{id}: {} is not emitted",
            p["MetricName"]
        );
        let function = p["Dimensions"][0]["Value"].as_str().unwrap_or_default();
        assert!(binaries.contains(function), "{id}: no function {function}");
        ours += 1;
    }
    assert!(ours >= 1, "the sweep alarm is on our own metric");

    let body =
        t["Resources"]["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"].as_str().expect("!Sub body");
    let filled = body.replace("${AWS::StackName}", "NS");
    let filled = fill_substitutions(&filled);
    let dash: J =
        serde_json::from_str(&filled).unwrap_or_else(|e| panic!("dashboard body is not JSON: {e}\n{filled}"));
    let mut seen = BTreeSet::new();
    for w in dash["widgets"].as_array().expect("widgets") {
        for m in w["properties"]["metrics"].as_array().expect("metrics") {
            if m[0] == "NS" {
                let name = m[1].as_str().unwrap_or_default();
                assert!(names.contains(name), "dashboard shows {name}, which nothing emits");
                assert!(binaries.contains(m[3].as_str().unwrap_or_default()), "{m}");
                seen.insert(name.to_string());
            } else if let Some(e) = m[0]["expression"].as_str() {
                seen.extend(names.iter().filter(|n| e.contains(*n)).map(|n| n.to_string()));
            }
        }
    }
    let missing: Vec<_> = names.iter().filter(|n| !seen.contains(**n)).collect();
    assert!(missing.is_empty(), "metrics emitted but not on the dashboard: {missing:?}");

    let format =
        t["Resources"]["HttpApi"]["Properties"]["AccessLogSettings"]["Format"].as_str().expect("format");
    let mut line = String::new();
    let mut rest = format;
    while let Some(i) = rest.find("$context.") {
        line.push_str(&rest[..i]);
        let after = &rest[i + 9..];
        let end = after.find(|c: char| !(c.is_ascii_alphanumeric() || c == '.')).unwrap_or(after.len());
        line.push('v');
        rest = &after[end..];
    }
    line.push_str(rest);
    let log: J = serde_json::from_str(&line).unwrap_or_else(|e| panic!("access log format is not JSON: {e}"));
    for key in ["requestId", "status", "routeKey", "latencyMs"] {
        assert!(log.get(key).is_some(), "access log lacks {key}");
    }
}

/// Fills every `${...}` of a `!Sub` string with a plain word.
fn fill_substitutions(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let end = rest[i..].find('}').map(|e| i + e + 1).unwrap_or(rest.len());
        out.push('x');
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// A function's binary builds the Scheduler client exactly when its template policy
/// grants Scheduler actions: a function that needs it and lacks it would create no
/// schedules (holds would wait for the sweep); one that has it without need links the
/// client for nothing.
#[test]
fn the_functions_whose_policy_grants_scheduler_actions_are_the_ones_wired_with_the_scheduler() {
    let t = template();
    let mut config = shared::config::Config::from_env().expect("config");
    config.scheduler = Some(shared::adapters::scheduler::EventBridgeTarget {
        group: "g".into(),
        function_arn: "arn:aws:lambda:us-east-1:123456789012:function:expire".into(),
        role_arn: "arn:aws:iam::123456789012:role/scheduler".into(),
        dead_letter_arn: None,
    });
    let sdk = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .build();
    let mut wired = BTreeSet::new();
    for f in ALL {
        let scheduler = (f.schedules)(&config, &sdk);
        if !format!("{scheduler:?}").starts_with("NoScheduler") {
            wired.insert(f.name.to_string());
        }
    }
    let mut granted = BTreeSet::new();
    for (_, res) in t["Resources"].as_mapping().expect("Resources") {
        if res["Type"] != "AWS::Serverless::Function" {
            continue;
        }
        let policies = serde_yaml::to_string(&res["Properties"]["Policies"]).expect("yaml");
        let binary = res["Metadata"]["BuildProperties"]["Binary"].as_str().expect("Binary");
        if policies.contains("scheduler:") && ALL.iter().any(|f| f.name == binary) {
            granted.insert(binary.to_string());
        }
    }
    assert_eq!(wired, granted);
    assert_eq!(granted, BTreeSet::from(["order".to_string(), "reserve".to_string()]));
}

/// The template in its JSON form (intrinsics as `{"Fn::GetAtt": [...]}` and the like).
fn template_json() -> serde_json::Value {
    serde_json::from_str(&stockhold_tests::template_json(stockhold_tests::TEMPLATE_YAML)).expect("json")
}

/// The logical id a `{"Fn::GetAtt": [id, attr]}` (or `"id.attr"`) names.
fn get_att<'a>(v: &'a serde_json::Value, attr: &str) -> Option<&'a str> {
    match &v["Fn::GetAtt"] {
        serde_json::Value::String(dotted) => dotted.strip_suffix(attr)?.strip_suffix('.'),
        serde_json::Value::Array(pair) => {
            (pair.get(1)?.as_str()? == attr).then_some(())?;
            pair.first()?.as_str()
        }
        _ => None,
    }
}

/// A function invoked asynchronously (by a schedule of its own, or by the Scheduler through
/// a role) has its failures inside the function go to an on-failure queue, which an alarm
/// watches: without it such failures are seen by no dead-letter queue.
#[test]
fn every_function_invoked_asynchronously_sends_its_failures_to_a_queue_an_alarm_watches() {
    let t = template_json();
    let resources = t["Resources"].as_object().expect("Resources");
    let mut asynchronous = BTreeSet::new();
    for (id, res) in resources {
        let events = res["Properties"]["Events"].as_object().into_iter().flatten();
        if res["Type"] == "AWS::Serverless::Function"
            && events
                .into_iter()
                .any(|(_, e)| ["Schedule", "ScheduleV2"].contains(&e["Type"].as_str().unwrap_or("")))
        {
            asynchronous.insert(id.clone());
        }
        // Roles that services assume to invoke a function (EventBridge Scheduler's).
        if res["Type"] == "AWS::IAM::Role" {
            for policy in res["Properties"]["Policies"].as_array().into_iter().flatten() {
                for st in policy["PolicyDocument"]["Statement"].as_array().into_iter().flatten() {
                    if st["Action"] == "lambda:InvokeFunction" {
                        asynchronous.insert(get_att(&st["Resource"], "Arn").expect("a function").to_string());
                    }
                }
            }
        }
    }
    assert_eq!(
        asynchronous,
        BTreeSet::from(["ExpireFunction", "ReconcileFunction", "SweepFunction"].map(String::from))
    );
    let watched: BTreeSet<&str> = resources
        .values()
        .filter(|r| r["Type"] == "AWS::CloudWatch::Alarm" && r["Properties"]["Namespace"] == "AWS/SQS")
        .filter_map(|r| get_att(&r["Properties"]["Dimensions"][0]["Value"], "QueueName"))
        .collect();
    for id in &asynchronous {
        let on_failure = &resources[id]["Properties"]["EventInvokeConfig"]["DestinationConfig"]["OnFailure"];
        assert_eq!(on_failure["Type"], "SQS", "{id}: {on_failure}");
        let queue =
            get_att(&on_failure["Destination"], "Arn").unwrap_or_else(|| panic!("{id}: {on_failure}"));
        assert_eq!(resources[queue]["Type"], "AWS::SQS::Queue", "{id} -> {queue}");
        assert!(watched.contains(queue), "no alarm watches {queue}");
    }
}

/// The stream mapping's filter lets through exactly the records the audit function makes
/// entries of: items whose `entity` is one of `EntityType::ALL`, by new image (creations,
/// updates) or old image (removals). Everything else the table holds (idempotency records,
/// SKU claims, hold counts, allowances) never invokes it.
#[test]
fn the_stream_filter_passes_exactly_the_entities_the_audit_records() {
    use shared::domain::audit::EntityType;
    let t = template_json();
    let filters = t["Resources"]["AuditFunction"]["Properties"]["Events"]["TableStream"]["Properties"]
        ["FilterCriteria"]["Filters"]
        .as_array()
        .expect("FilterCriteria.Filters")
        .clone();
    let ours: BTreeSet<String> = EntityType::ALL.iter().map(|e| e.as_str().to_string()).collect();
    let mut images = BTreeSet::new();
    for f in &filters {
        let pattern: serde_json::Value =
            serde_json::from_str(f["Pattern"].as_str().expect("Pattern")).expect("json");
        let change = pattern["dynamodb"].as_object().expect("dynamodb");
        assert_eq!(change.len(), 1, "{pattern}");
        let (image, fields) = change.iter().next().expect("image");
        images.insert(image.clone());
        let entities: BTreeSet<String> = fields["entity"]["S"]
            .as_array()
            .expect("entity values")
            .iter()
            .map(|v| v.as_str().expect("string").to_string())
            .collect();
        assert_eq!(entities, ours, "{image}");
    }
    assert_eq!(images, BTreeSet::from(["NewImage".to_string(), "OldImage".to_string()]));
    // What the table holds besides entities is named otherwise, or not at all.
    for bookkeeping in ["idempotency", "sku_claim"] {
        assert!(EntityType::parse(bookkeeping).is_none(), "{bookkeeping}");
    }
}

/// Reserved concurrency and warm throughput are parameters whose 0 means "not set": a
/// literal 0 of ReservedConcurrentExecutions would throttle the function entirely, and a
/// warm throughput of 0 is refused.
#[test]
fn reserved_concurrency_and_warm_throughput_are_set_only_when_their_parameter_is_not_zero() {
    let t = template_json();
    let r = &t["Resources"];
    for (function, parameter, default) in
        [("ExpireFunction", "ExpireReservedConcurrency", 8), ("SweepFunction", "SweepReservedConcurrency", 1)]
    {
        let set = &r[function]["Properties"]["ReservedConcurrentExecutions"]["Fn::If"];
        let condition = set[0].as_str().expect("a condition");
        assert_eq!(set[1], serde_json::json!({"Ref": parameter}), "{function}");
        assert_eq!(set[2], serde_json::json!({"Ref": "AWS::NoValue"}), "{function}");
        assert_eq!(
            t["Conditions"][condition],
            serde_json::json!({"Fn::Not": [{"Fn::Equals": [{"Ref": parameter}, 0]}]}),
            "{condition}"
        );
        assert_eq!(t["Parameters"][parameter]["Default"], default, "{parameter}");
    }
    let warm = &r["Table"]["Properties"]["WarmThroughput"]["Fn::If"];
    assert_eq!(warm[0], "WarmTable");
    assert_eq!(warm[1]["WriteUnitsPerSecond"], serde_json::json!({"Ref": "TableWarmWriteUnitsPerSecond"}));
    assert_eq!(warm[2], serde_json::json!({"Ref": "AWS::NoValue"}));
    assert_eq!(t["Parameters"]["TableWarmWriteUnitsPerSecond"]["Default"], 0);
}

/// The optional webhook: a rule on the bus (the one the publish function puts on) for
/// every stockhold event, whose target is the API destination with a role that may only
/// invoke it, retried as often as the local delivery retries, dead letters in a queue an
/// alarm watches and only that rule may send to; all of it only when `WebhookUrl` is set.
#[test]
fn the_webhook_rule_delivers_every_event_retried_as_locally_with_dead_letters_an_alarm_watches() {
    let t = template_json();
    let r = &t["Resources"];
    let rule = &r["WebhookRule"];
    assert_eq!(rule["Type"], "AWS::Events::Rule");
    assert_eq!(rule["Properties"]["EventPattern"], serde_json::json!({"source": ["stockhold"]}));
    assert_eq!(
        rule["Properties"]["EventBusName"],
        r["PublishFunction"]["Properties"]["Environment"]["Variables"]["EVENT_BUS_NAME"],
        "the bus the events are put on"
    );
    let target = &rule["Properties"]["Targets"][0];
    assert_eq!(get_att(&target["Arn"], "Arn"), Some("WebhookDestination"));
    let retry = gateway::webhook::WEBHOOK_RETRY;
    assert_eq!(target["RetryPolicy"]["MaximumRetryAttempts"], u64::from(retry.retries));
    let local: std::time::Duration = retry.schedule().sum();
    let age = target["RetryPolicy"]["MaximumEventAgeInSeconds"].as_u64().expect("age");
    assert!(local.as_secs() <= age, "the local retries ({local:?}) end before AWS's ({age} s)");

    let role = get_att(&target["RoleArn"], "Arn").expect("a role");
    let statements = &r[role]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"];
    assert_eq!(statements.as_array().map(Vec::len), Some(1));
    assert_eq!(statements[0]["Action"], "events:InvokeApiDestination");
    assert_eq!(get_att(&statements[0]["Resource"], "Arn"), Some("WebhookDestination"));
    assert_eq!(
        r[role]["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]["Service"],
        "events.amazonaws.com"
    );

    let destination = &r["WebhookDestination"]["Properties"];
    assert_eq!(destination["HttpMethod"], "POST");
    let connection = get_att(&destination["ConnectionArn"], "Arn").expect("a connection");
    let auth = &r[connection]["Properties"];
    assert_eq!(auth["AuthorizationType"], "API_KEY");
    assert_eq!(auth["AuthParameters"]["ApiKeyAuthParameters"]["ApiKeyName"], "X-Api-Key");

    let queue = get_att(&target["DeadLetterConfig"]["Arn"], "Arn").expect("a dead-letter queue");
    let policy = r
        .as_object()
        .into_iter()
        .flatten()
        .find(|(_, p)| p["Type"] == "AWS::SQS::QueuePolicy" && p["Properties"]["Queues"][0]["Ref"] == queue)
        .map(|(_, p)| &p["Properties"]["PolicyDocument"]["Statement"][0])
        .expect("a policy on the dead-letter queue");
    assert_eq!(policy["Principal"]["Service"], "events.amazonaws.com");
    assert_eq!(get_att(&policy["Condition"]["ArnEquals"]["aws:SourceArn"], "Arn"), Some("WebhookRule"));
    assert!(
        r.as_object().into_iter().flatten().any(|(_, a)| a["Type"] == "AWS::CloudWatch::Alarm"
            && get_att(&a["Properties"]["Dimensions"][0]["Value"], "QueueName") == Some(queue)),
        "an alarm watches {queue}"
    );
    for id in ["WebhookConnection", "WebhookDestination", "WebhookRole", "WebhookRule", queue] {
        assert_eq!(r[id]["Condition"], "Webhook", "{id}");
    }
}
