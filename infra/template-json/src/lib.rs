//! CloudFormation templates are written in YAML with short-form intrinsics (`!Ref X`,
//! `!GetAtt A.B`, `!Sub "..."`); their JSON form spells them `{"Ref": "X"}`,
//! `{"Fn::GetAtt": "A.B"}`, `{"Fn::Sub": "..."}`. This crate turns the one into the other,
//! so that `shared`'s build script can embed `template.yaml` as JSON (no YAML parser ships
//! in a function) and tests can do the same with a template they changed.

use serde_json::{Map, Value as Json};
use serde_yaml::Value as Yaml;

/// The JSON form of a YAML template.
pub fn to_json(yaml: &str) -> Result<Json, String> {
    let value: Yaml = serde_yaml::from_str(yaml).map_err(|e| format!("the template does not parse: {e}"))?;
    convert(&value)
}

/// `to_json` as text.
pub fn to_json_text(yaml: &str) -> Result<String, String> {
    to_json(yaml).map(|v| v.to_string())
}

fn convert(v: &Yaml) -> Result<Json, String> {
    Ok(match v {
        Yaml::Null => Json::Null,
        Yaml::Bool(b) => Json::Bool(*b),
        Yaml::Number(n) => serde_json::to_value(n).map_err(|e| e.to_string())?,
        Yaml::String(s) => Json::String(s.clone()),
        Yaml::Sequence(items) => Json::Array(items.iter().map(convert).collect::<Result<_, _>>()?),
        Yaml::Mapping(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                let key = match k {
                    Yaml::String(s) => s.clone(),
                    Yaml::Number(n) => n.to_string(),
                    Yaml::Bool(b) => b.to_string(),
                    other => return Err(format!("a mapping key that is not a scalar: {other:?}")),
                };
                out.insert(key, convert(v)?);
            }
            Json::Object(out)
        }
        Yaml::Tagged(t) => {
            let tag = t.tag.to_string();
            let name = tag.trim_start_matches('!');
            let key =
                if name == "Ref" || name == "Condition" { name.to_string() } else { format!("Fn::{name}") };
            Json::Object(Map::from_iter([(key, convert(&t.value)?)]))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn short_form_intrinsics_become_their_long_forms() {
        let yaml = "A: !Ref Table\nB: !GetAtt Table.Arn\nC: !Sub 'arn:${AWS::Region}'\nD: [1, true]\n";
        assert_eq!(
            to_json(yaml).unwrap(),
            json!({"A": {"Ref": "Table"}, "B": {"Fn::GetAtt": "Table.Arn"}, "C": {"Fn::Sub": "arn:${AWS::Region}"}, "D": [1, true]})
        );
    }
}
