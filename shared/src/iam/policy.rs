//! The IAM side of `template.yaml`: each function's identity policy, the roles the stack
//! defines, and their evaluation against one (action, resource) request, as AWS's policy
//! evaluation does it for identity policies (an explicit `Deny` wins, else any `Allow`,
//! else denied). CloudFormation intrinsics (`!Ref`, `!GetAtt`, `!Sub`, long forms too) are
//! resolved to the names the local stack gives each resource, so that a resource pattern
//! in the template is compared with the ARN a local call really touches.

use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};
use thiserror::Error;

/// The account, region and partition of every ARN the local stack makes.
pub const REGION: &str = "us-east-1";
pub const ACCOUNT: &str = "123456789012";
pub const PARTITION: &str = "aws";
/// The stack name the local stack plays (`${AWS::StackName}`, names of resources without
/// a name of their own: `<stack>-<LogicalId>`).
pub const STACK: &str = "stockhold";

/// The template every local binary enforces unless `IAM_TEMPLATE` names another file:
/// `template.yaml` in its JSON form (converted at build time, so that no YAML parser
/// ships in a function; `template-json` converts a changed copy the same way).
pub const EMBEDDED_TEMPLATE: &str = include_str!(concat!(env!("OUT_DIR"), "/template.json"));

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum IamError {
    #[error("template: {0}")]
    Template(String),
    #[error("the template has no function with binary {0:?}")]
    UnknownFunction(String),
}

fn bad(what: impl Into<String>) -> IamError {
    IamError::Template(what.into())
}

/// One grant as the template writes it, for reports: `dynamodb:Query` on
/// `${Table.Arn}/index/gsi1`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub struct Grant {
    pub principal: String,
    pub action: String,
    pub resource: String,
}

#[derive(Debug, Clone)]
struct Condition {
    operator: String,
    key: String,
    values: Vec<String>,
}

#[derive(Debug, Clone)]
struct Statement {
    allow: bool,
    actions: Vec<String>,
    /// (as written in the template, resolved pattern)
    resources: Vec<(String, String)>,
    conditions: Vec<Condition>,
}

/// The statements of one principal (a function's execution role, or a role).
#[derive(Debug, Clone)]
pub struct Policy {
    pub principal: String,
    statements: Vec<Statement>,
}

/// The outcome of evaluating one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Allowed by this grant (the statement's action and resource as written).
    Allowed(Grant),
    Denied,
}

impl Policy {
    /// Evaluates `action` on `resource` with the request's condition `context`
    /// (`iam:PassedToService` and the like). A condition whose key the context lacks does
    /// not match, as in AWS.
    pub fn evaluate(&self, action: &str, resource: &str, context: &[(&str, &str)]) -> Decision {
        let applies = |s: &Statement| -> Option<(String, String)> {
            let action_pattern =
                s.actions.iter().find(|a| glob(&a.to_ascii_lowercase(), &action.to_ascii_lowercase()))?;
            let (source, _) = s.resources.iter().find(|(_, pattern)| glob(pattern, resource))?;
            let conditions_hold = s.conditions.iter().all(|c| {
                context.iter().find(|(k, _)| k.eq_ignore_ascii_case(&c.key)).is_some_and(|(_, v)| {
                    match c.operator.as_str() {
                        "StringEquals" | "ArnEquals" => c.values.iter().any(|x| x == v),
                        "StringLike" | "ArnLike" => c.values.iter().any(|x| glob(x, v)),
                        _ => false,
                    }
                })
            });
            conditions_hold.then(|| (action_pattern.clone(), source.clone()))
        };
        if self.statements.iter().filter(|s| !s.allow).any(|s| applies(s).is_some()) {
            return Decision::Denied;
        }
        match self.statements.iter().filter(|s| s.allow).find_map(applies) {
            Some((action, resource)) => {
                Decision::Allowed(Grant { principal: self.principal.clone(), action, resource })
            }
            None => Decision::Denied,
        }
    }

    /// Every (action, resource) this policy allows, as written.
    pub fn grants(&self) -> Vec<Grant> {
        let mut out = Vec::new();
        for s in self.statements.iter().filter(|s| s.allow) {
            for a in &s.actions {
                for (r, _) in &s.resources {
                    out.push(Grant {
                        principal: self.principal.clone(),
                        action: a.clone(),
                        resource: r.clone(),
                    });
                }
            }
        }
        out
    }
}

/// IAM's wildcard match: `*` any run of characters, `?` any one.
pub fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// A function of the template.
#[derive(Debug, Clone)]
pub struct FunctionDef {
    pub logical_id: String,
    /// `Metadata.BuildProperties.Binary`: the binary `sam build` makes, and the name the
    /// code uses for the function.
    pub binary: String,
    pub arn: String,
    pub policy: Policy,
    /// `Timeout` (seconds), the function's own or the global one.
    pub timeout_seconds: u64,
    /// Environment variables as the template sets them, resolved locally.
    pub environment: BTreeMap<String, String>,
    /// `ReservedConcurrentExecutions`, when set.
    pub reserved_concurrency: Option<u64>,
    /// Each event source: (event name, type, its properties resolved where they name a resource).
    pub events: Vec<EventDef>,
}

#[derive(Debug, Clone)]
pub struct EventDef {
    pub name: String,
    pub kind: String,
    /// `DestinationConfig.OnFailure.Destination`, resolved.
    pub on_failure: Option<String>,
    /// The `Stream` property, resolved.
    pub stream: Option<String>,
    /// `MaximumRetryAttempts` of a stream mapping.
    pub maximum_retry_attempts: Option<u64>,
}

/// A role the template defines (`AWS::IAM::Role`): who may assume it and what it may do.
#[derive(Debug, Clone)]
pub struct RoleDef {
    pub logical_id: String,
    pub arn: String,
    /// Services its trust policy lets assume it (`Principal.Service`).
    pub trusted_services: Vec<String>,
    pub policy: Policy,
}

/// The IAM-relevant part of a template, resolved for one local stack.
#[derive(Debug, Clone)]
pub struct Template {
    pub functions: Vec<FunctionDef>,
    pub roles: Vec<RoleDef>,
    /// The HTTP API's `CorsConfiguration`; `None` when it has none.
    pub cors: Option<CorsConfig>,
}

/// An HTTP API's CORS settings, resolved (parameters at their defaults): the local
/// gateway answers preflights and adds the response headers from them, as API Gateway
/// does from the same template.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CorsConfig {
    pub allow_origins: Vec<String>,
    pub allow_methods: Vec<String>,
    pub allow_headers: Vec<String>,
    pub expose_headers: Vec<String>,
    pub max_age: Option<u64>,
}

/// Physical names of the resources the local stack creates under names of its own (the
/// test tables, the schedule group); every other resource is `<stack>-<LogicalId>`.
#[derive(Debug, Clone, Default)]
pub struct LocalNames(pub HashMap<String, String>);

impl LocalNames {
    pub fn with(mut self, logical_id: &str, physical: &str) -> Self {
        self.0.insert(logical_id.to_string(), physical.to_string());
        self
    }
}

struct Resolver<'a> {
    resources: &'a Map<String, Value>,
    parameters: Option<&'a Map<String, Value>>,
    conditions: Option<&'a Map<String, Value>>,
    names: &'a LocalNames,
}

impl Resolver<'_> {
    fn kind(&self, id: &str) -> Option<&str> {
        self.resources.get(id)?.get("Type")?.as_str()
    }

    fn physical(&self, id: &str) -> String {
        self.names.0.get(id).cloned().unwrap_or_else(|| format!("{STACK}-{id}"))
    }

    fn reference(&self, id: &str) -> Result<String, IamError> {
        let pseudo = match id {
            "AWS::Region" => Some(REGION.to_string()),
            "AWS::AccountId" => Some(ACCOUNT.to_string()),
            "AWS::Partition" => Some(PARTITION.to_string()),
            "AWS::StackName" => Some(STACK.to_string()),
            "AWS::URLSuffix" => Some("amazonaws.com".to_string()),
            _ => None,
        };
        if let Some(v) = pseudo {
            return Ok(v);
        }
        if let Some(p) = self.parameters.and_then(|p| p.get(id)) {
            return Ok(match p.get("Default") {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Number(n)) => n.to_string(),
                Some(Value::Array(items)) => {
                    items.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(",")
                }
                _ => String::new(),
            });
        }
        let name = self.physical(id);
        Ok(match self.kind(id).ok_or_else(|| bad(format!("!Ref to unknown {id}")))? {
            "AWS::SQS::Queue" => format!("https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{name}"),
            "AWS::SecretsManager::Secret" => {
                format!("arn:{PARTITION}:secretsmanager:{REGION}:{ACCOUNT}:secret:{name}")
            }
            _ => name,
        })
    }

    fn attribute(&self, id: &str, attr: &str) -> Result<String, IamError> {
        let kind = self.kind(id).ok_or_else(|| bad(format!("!GetAtt of unknown {id}")))?;
        let name = self.physical(id);
        let table = format!("arn:{PARTITION}:dynamodb:{REGION}:{ACCOUNT}:table/{name}");
        Ok(match (kind, attr) {
            ("AWS::DynamoDB::Table", "Arn") => table,
            ("AWS::DynamoDB::Table", "StreamArn") => format!("{table}/stream/*"),
            ("AWS::Serverless::Function" | "AWS::Lambda::Function", "Arn") => {
                format!("arn:{PARTITION}:lambda:{REGION}:{ACCOUNT}:function:{name}")
            }
            ("AWS::IAM::Role", "Arn") => format!("arn:{PARTITION}:iam::{ACCOUNT}:role/{name}"),
            ("AWS::SQS::Queue", "Arn") => format!("arn:{PARTITION}:sqs:{REGION}:{ACCOUNT}:{name}"),
            ("AWS::SQS::Queue", "QueueName") => name,
            ("AWS::Events::EventBus", "Arn") => {
                format!("arn:{PARTITION}:events:{REGION}:{ACCOUNT}:event-bus/{name}")
            }
            // The webhook's (an API destination's and its connection's ARNs end in an id
            // AWS picks; the name is as good locally, where nothing is invoked by ARN).
            ("AWS::Events::ApiDestination", "Arn") => {
                format!("arn:{PARTITION}:events:{REGION}:{ACCOUNT}:api-destination/{name}")
            }
            ("AWS::Events::Connection", "Arn") => {
                format!("arn:{PARTITION}:events:{REGION}:{ACCOUNT}:connection/{name}")
            }
            ("AWS::Events::Rule", "Arn") => format!("arn:{PARTITION}:events:{REGION}:{ACCOUNT}:rule/{name}"),
            ("AWS::Scheduler::ScheduleGroup", "Arn") => {
                format!("arn:{PARTITION}:scheduler:{REGION}:{ACCOUNT}:schedule-group/{name}")
            }
            _ => return Err(bad(format!("!GetAtt {id}.{attr} is not modelled locally"))),
        })
    }

    fn substitute(&self, text: &str) -> Result<String, IamError> {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after.find('}').ok_or_else(|| bad(format!("unclosed ${{ in {text:?}")))?;
            let name = &after[..end];
            out.push_str(&match name.split_once('.') {
                Some((id, attr)) => self.attribute(id, attr)?,
                None => self.reference(name)?,
            });
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    /// (as written, resolved) of a scalar or intrinsic.
    /// A number setting as the stack gets it with the parameters' defaults: a number, a
    /// `!Ref` to a parameter, or `!If [condition, a, b]` (`AWS::NoValue`: not set).
    fn number(&self, v: Option<&Value>) -> Result<Option<u64>, IamError> {
        let Some(v) = v else { return Ok(None) };
        if let Some([condition, yes, no]) = v.get("Fn::If").and_then(Value::as_array).map(Vec::as_slice) {
            let name = condition.as_str().ok_or_else(|| bad(format!("!If condition {condition:?}")))?;
            let branch = if self.condition(name)? { yes } else { no };
            return self.number(Some(branch));
        }
        if v.get("Ref").and_then(Value::as_str) == Some("AWS::NoValue") {
            return Ok(None);
        }
        let (_, text) = self.value(v)?;
        text.parse().map(Some).map_err(|_| bad(format!("not a number: {v:?}")))
    }

    /// A template condition, evaluated with the parameters' defaults: `!Equals`, `!Not`,
    /// `!And`, `!Or` and `!Condition` over values `value` resolves.
    fn condition(&self, name: &str) -> Result<bool, IamError> {
        let c =
            self.conditions.and_then(|c| c.get(name)).ok_or_else(|| bad(format!("no condition {name}")))?;
        self.truth(c)
    }

    fn truth(&self, c: &Value) -> Result<bool, IamError> {
        let (op, args) = c
            .as_object()
            .filter(|m| m.len() == 1)
            .and_then(|m| m.iter().next())
            .ok_or_else(|| bad(format!("condition {c:?}")))?;
        let list = || args.as_array().ok_or_else(|| bad(format!("condition {c:?}")));
        match op.as_str() {
            "Fn::Equals" => match list()?.as_slice() {
                [a, b] => Ok(self.value(a)?.1 == self.value(b)?.1),
                _ => Err(bad(format!("condition {c:?}"))),
            },
            "Fn::Not" => match list()?.as_slice() {
                [a] => Ok(!self.truth(a)?),
                _ => Err(bad(format!("condition {c:?}"))),
            },
            "Fn::And" => list()?.iter().try_fold(true, |all, a| Ok(all && self.truth(a)?)),
            "Fn::Or" => list()?.iter().try_fold(false, |any, a| Ok(any || self.truth(a)?)),
            "Condition" => self.condition(args.as_str().ok_or_else(|| bad(format!("condition {c:?}")))?),
            _ => Err(bad(format!("condition {op} is not modelled locally"))),
        }
    }

    fn value(&self, v: &Value) -> Result<(String, String), IamError> {
        let (tag, inner) = match v {
            Value::String(s) => return Ok((s.clone(), s.clone())),
            Value::Number(n) => return Ok((n.to_string(), n.to_string())),
            Value::Bool(b) => return Ok((b.to_string(), b.to_string())),
            Value::Object(m) if m.len() == 1 => match m.iter().next() {
                Some((k, inner)) => (k.trim_start_matches("Fn::").to_string(), inner),
                None => return Err(bad(format!("unsupported value {v:?}"))),
            },
            _ => return Err(bad(format!("unsupported value {v:?}"))),
        };
        match (tag.as_str(), inner) {
            ("Ref", Value::String(id)) => Ok((id.clone(), self.reference(id)?)),
            ("GetAtt", Value::String(s)) => {
                let (id, attr) = s.split_once('.').ok_or_else(|| bad(format!("!GetAtt {s}")))?;
                Ok((s.clone(), self.attribute(id, attr)?))
            }
            ("GetAtt", Value::Array(parts)) if parts.len() == 2 => {
                let (id, attr) = (parts[0].as_str().unwrap_or(""), parts[1].as_str().unwrap_or(""));
                Ok((format!("{id}.{attr}"), self.attribute(id, attr)?))
            }
            ("Sub", Value::String(s)) => Ok((s.clone(), self.substitute(s)?)),
            // The branch the parameters' defaults choose (the local stack's names fill
            // in the resources, `LocalNames`).
            ("If", Value::Array(parts)) if parts.len() == 3 => {
                let name = parts[0].as_str().ok_or_else(|| bad(format!("!If condition {:?}", parts[0])))?;
                self.value(if self.condition(name)? { &parts[1] } else { &parts[2] })
            }
            _ => Err(bad(format!("intrinsic {tag} with {inner:?} is not modelled locally"))),
        }
    }

    fn values(&self, v: Option<&Value>) -> Result<Vec<(String, String)>, IamError> {
        match v {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items.iter().map(|i| self.value(i)).collect(),
            Some(one) => Ok(vec![self.value(one)?]),
        }
    }

    fn statements(&self, doc: &Value, principal: &str) -> Result<Vec<Statement>, IamError> {
        let list = match doc.get("Statement") {
            Some(Value::Array(s)) => s.clone(),
            Some(one @ Value::Object(_)) => vec![one.clone()],
            _ => return Err(bad(format!("{principal}: a policy without Statement"))),
        };
        list.iter()
            .map(|s| {
                let allow = match s.get("Effect").and_then(Value::as_str) {
                    Some("Allow") => true,
                    Some("Deny") => false,
                    other => return Err(bad(format!("{principal}: Effect {other:?}"))),
                };
                if s.get("NotAction").is_some() || s.get("NotResource").is_some() {
                    return Err(bad(format!("{principal}: NotAction/NotResource are not modelled locally")));
                }
                let actions = self.values(s.get("Action"))?.into_iter().map(|(a, _)| a).collect();
                let resources = self.values(s.get("Resource"))?;
                let mut conditions = Vec::new();
                if let Some(Value::Object(ops)) = s.get("Condition") {
                    for (op, keys) in ops {
                        let Some(Value::Object(keys)) = Some(keys) else { continue };
                        for (key, vals) in keys {
                            conditions.push(Condition {
                                operator: op.clone(),
                                key: key.clone(),
                                values: self.values(Some(vals))?.into_iter().map(|(_, v)| v).collect(),
                            });
                        }
                    }
                }
                Ok(Statement { allow, actions, resources, conditions })
            })
            .collect()
    }
}

impl Template {
    /// Reads the functions and roles of `text` (a SAM template in its JSON form), naming resources as
    /// `names` says. A policy form the local enforcement does not model (a SAM policy
    /// template, a managed policy) is an error, so that nobody adds one believing it is
    /// checked.
    pub fn parse(text: &str, names: &LocalNames) -> Result<Self, IamError> {
        let root: Value = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
        let resources =
            root.get("Resources").and_then(Value::as_object).ok_or_else(|| bad("no Resources"))?;
        let r = Resolver {
            resources,
            parameters: root.get("Parameters").and_then(Value::as_object),
            conditions: root.get("Conditions").and_then(Value::as_object),
            names,
        };
        let globals = root.get("Globals").and_then(|g| g.get("Function"));
        let mut functions = Vec::new();
        let mut roles = Vec::new();
        let mut cors = None;
        for (id, res) in resources {
            let id = id.as_str();
            let props = res.get("Properties");
            match res.get("Type").and_then(Value::as_str) {
                Some("AWS::Serverless::Function") => {
                    let binary = res
                        .get("Metadata")
                        .and_then(|m| m.get("BuildProperties"))
                        .and_then(|b| b.get("Binary"))
                        .and_then(Value::as_str)
                        .ok_or_else(|| bad(format!("{id}: no Metadata.BuildProperties.Binary")))?;
                    let mut statements = Vec::new();
                    for p in
                        props.and_then(|p| p.get("Policies")).and_then(Value::as_array).into_iter().flatten()
                    {
                        if p.get("Statement").is_none() {
                            return Err(bad(format!(
                                "{id}: only inline policy statements are enforced locally, not {p:?}"
                            )));
                        }
                        statements.extend(r.statements(p, id)?);
                    }
                    let setting = |key: &str| {
                        props.and_then(|p| p.get(key)).or_else(|| globals.and_then(|g| g.get(key)))
                    };
                    let mut environment = BTreeMap::new();
                    for source in [globals, props] {
                        let vars = source.and_then(|s| s.get("Environment")).and_then(|e| e.get("Variables"));
                        for (k, v) in vars.and_then(Value::as_object).into_iter().flatten() {
                            let key = k.clone();
                            environment.insert(key, r.value(v)?.1);
                        }
                    }
                    let mut events = Vec::new();
                    for (name, ev) in
                        props.and_then(|p| p.get("Events")).and_then(Value::as_object).into_iter().flatten()
                    {
                        let ep = ev.get("Properties");
                        let resolve = |v: Option<&Value>| v.map(|v| r.value(v).map(|x| x.1)).transpose();
                        events.push(EventDef {
                            name: name.clone(),
                            kind: ev.get("Type").and_then(Value::as_str).unwrap_or_default().to_string(),
                            on_failure: resolve(
                                ep.and_then(|p| p.get("DestinationConfig"))
                                    .and_then(|d| d.get("OnFailure"))
                                    .and_then(|o| o.get("Destination")),
                            )?,
                            stream: resolve(ep.and_then(|p| p.get("Stream")))?,
                            maximum_retry_attempts: ep
                                .and_then(|p| p.get("MaximumRetryAttempts"))
                                .and_then(Value::as_u64),
                        });
                    }
                    functions.push(FunctionDef {
                        logical_id: id.to_string(),
                        binary: binary.to_string(),
                        arn: r.attribute(id, "Arn")?,
                        policy: Policy { principal: id.to_string(), statements },
                        timeout_seconds: setting("Timeout").and_then(Value::as_u64).unwrap_or(3),
                        environment,
                        reserved_concurrency: r.number(setting("ReservedConcurrentExecutions"))?,
                        events,
                    });
                }
                Some("AWS::Serverless::HttpApi") => {
                    if let Some(c) = props.and_then(|p| p.get("CorsConfiguration")) {
                        // A list parameter resolves to its items joined by commas.
                        let list = |key: &str| -> Result<Vec<String>, IamError> {
                            let mut out = Vec::new();
                            for (_, v) in r.values(c.get(key))? {
                                out.extend(
                                    v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from),
                                );
                            }
                            Ok(out)
                        };
                        cors = Some(CorsConfig {
                            allow_origins: list("AllowOrigins")?,
                            allow_methods: list("AllowMethods")?,
                            allow_headers: list("AllowHeaders")?,
                            expose_headers: list("ExposeHeaders")?,
                            max_age: c.get("MaxAge").and_then(Value::as_u64),
                        });
                    }
                }
                Some("AWS::IAM::Role") => {
                    let mut statements = Vec::new();
                    for p in
                        props.and_then(|p| p.get("Policies")).and_then(Value::as_array).into_iter().flatten()
                    {
                        let doc = p
                            .get("PolicyDocument")
                            .ok_or_else(|| bad(format!("{id}: policy without document")))?;
                        statements.extend(r.statements(doc, id)?);
                    }
                    if props.and_then(|p| p.get("ManagedPolicyArns")).is_some() {
                        return Err(bad(format!("{id}: managed policies are not modelled locally")));
                    }
                    let mut trusted_services = Vec::new();
                    let trust = props
                        .and_then(|p| p.get("AssumeRolePolicyDocument"))
                        .and_then(|d| d.get("Statement"));
                    for s in trust.and_then(Value::as_array).into_iter().flatten() {
                        if s.get("Effect").and_then(Value::as_str) == Some("Allow") {
                            let services = s.get("Principal").and_then(|p| p.get("Service"));
                            trusted_services.extend(r.values(services)?.into_iter().map(|(_, v)| v));
                        }
                    }
                    roles.push(RoleDef {
                        logical_id: id.to_string(),
                        arn: r.attribute(id, "Arn")?,
                        trusted_services,
                        policy: Policy { principal: id.to_string(), statements },
                    });
                }
                _ => {}
            }
        }
        Ok(Self { functions, roles, cors })
    }

    pub fn function(&self, binary: &str) -> Result<&FunctionDef, IamError> {
        self.functions
            .iter()
            .find(|f| f.binary == binary)
            .ok_or_else(|| IamError::UnknownFunction(binary.into()))
    }

    pub fn function_by_arn(&self, arn: &str) -> Option<&FunctionDef> {
        self.functions.iter().find(|f| f.arn == arn)
    }

    pub fn role_by_arn(&self, arn: &str) -> Option<&RoleDef> {
        self.roles.iter().find(|r| r.arn == arn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template() -> Template {
        let names = LocalNames::default().with("Table", "t1").with("AuditTable", "t1-audit");
        Template::parse(EMBEDDED_TEMPLATE, &names).expect("the template parses")
    }

    #[test]
    fn reserved_concurrency_is_read_as_the_parameters_defaults_give_it() {
        let t = template();
        assert_eq!(t.function("expire").expect("expire").reserved_concurrency, Some(8));
        assert_eq!(t.function("sweep").expect("sweep").reserved_concurrency, Some(1));
        assert_eq!(t.function("reserve").expect("reserve").reserved_concurrency, None);
        // A parameter set to 0 reserves none.
        let none = EMBEDDED_TEMPLATE.replacen(
            "\"ExpireReservedConcurrency\":{\"Default\":8,",
            "\"ExpireReservedConcurrency\":{\"Default\":0,",
            1,
        );
        assert!(none != EMBEDDED_TEMPLATE, "the parameter's JSON form moved; update this test");
        let t = Template::parse(&none, &LocalNames::default()).expect("parses");
        assert_eq!(t.function("expire").expect("expire").reserved_concurrency, None);
    }

    #[test]
    fn wildcards_match_like_iam() {
        assert!(glob("arn:aws:scheduler:*:schedule/g/*", "arn:aws:scheduler:us-east-1:1:schedule/g/abc"));
        assert!(!glob("arn:aws:dynamodb:r:a:table/t", "arn:aws:dynamodb:r:a:table/t/index/gsi1"));
        assert!(glob("dynamodb:*", "dynamodb:getitem"));
        assert!(glob("a?c", "abc") && !glob("a?c", "ac"));
    }

    #[test]
    fn a_function_may_do_what_its_statements_say_on_the_resources_they_name_and_nothing_else() {
        let t = template();
        let list = &t.function("list").expect("list").policy;
        let index = "arn:aws:dynamodb:us-east-1:123456789012:table/t1/index/ou_time";
        assert!(matches!(list.evaluate("dynamodb:Query", index, &[]), Decision::Allowed(_)));
        let table = "arn:aws:dynamodb:us-east-1:123456789012:table/t1";
        assert_eq!(
            list.evaluate("dynamodb:Query", table, &[]),
            Decision::Denied,
            "the table is not an index"
        );
        assert_eq!(list.evaluate("dynamodb:PutItem", index, &[]), Decision::Denied);
    }

    #[test]
    fn pass_role_needs_its_condition() {
        let t = template();
        let reserve = &t.function("reserve").expect("reserve").policy;
        let role = &t.roles.iter().find(|r| r.logical_id == "SchedulerRole").expect("role").arn;
        let to_scheduler = [("iam:PassedToService", "scheduler.amazonaws.com")];
        assert!(matches!(reserve.evaluate("iam:PassRole", role, &to_scheduler), Decision::Allowed(_)));
        assert_eq!(reserve.evaluate("iam:PassRole", role, &[]), Decision::Denied);
        let to_ec2 = [("iam:PassedToService", "ec2.amazonaws.com")];
        assert_eq!(reserve.evaluate("iam:PassRole", role, &to_ec2), Decision::Denied);
    }

    #[test]
    fn an_explicit_deny_wins_and_unmodelled_policy_forms_are_refused() {
        let statements = serde_json::json!([
            {"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
            {"Effect": "Deny", "Action": "s3:DeleteObject", "Resource": "*"}
        ]);
        let template = |policies: serde_json::Value| {
            serde_json::json!({"Resources": {"F": {
                "Type": "AWS::Serverless::Function",
                "Metadata": {"BuildProperties": {"Binary": "f"}},
                "Properties": {"Policies": policies}
            }}})
            .to_string()
        };
        let text = template(serde_json::json!([{"Statement": statements}]));
        let t = Template::parse(&text, &LocalNames::default()).expect("parse");
        let p = &t.function("f").expect("f").policy;
        assert!(matches!(p.evaluate("s3:GetObject", "x", &[]), Decision::Allowed(_)));
        assert_eq!(p.evaluate("s3:DeleteObject", "x", &[]), Decision::Denied);
        let managed = template(
            serde_json::json!([{"DynamoDBCrudPolicy": {"TableName": "x"}}, {"Statement": statements}]),
        );
        assert!(Template::parse(&managed, &LocalNames::default()).is_err());
    }
}
