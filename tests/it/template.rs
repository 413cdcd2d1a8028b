//! `template.yaml` must agree with the code: the same routes per function and the same
//! table definition the local stack creates.

use serde_yaml::Value;
use shared::http::routes::ROUTES;
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
    let in_code: BTreeSet<_> = ROUTES
        .iter()
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
