//! The guard: an HTTP client for the AWS SDK that checks each request against one
//! principal's policy before it leaves, and answers a refused one itself with the error
//! AWS would send.

use super::policy::{Decision, FunctionDef, IamError, LocalNames, Template, ACCOUNT, EMBEDDED_TEMPLATE};
use super::request::{needs, Need, ScheduleTarget, Service};
use super::usage::UsageLog;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use std::sync::Arc;

/// The local stack's IAM: the template's policies, the plain HTTP client the guarded
/// clients wrap, and where used grants are recorded.
#[derive(Debug)]
pub struct LocalIam {
    template: Template,
    base: SharedHttpClient,
    usage: Option<UsageLog>,
}

impl LocalIam {
    /// `template_text` resolved with `names`; grants used are recorded under `usage_dir`.
    pub fn new(
        template_text: &str,
        names: &LocalNames,
        usage_dir: Option<std::path::PathBuf>,
    ) -> Result<Self, IamError> {
        Ok(Self {
            template: Template::parse(template_text, names)?,
            base: plain_client(),
            usage: usage_dir.map(UsageLog::new),
        })
    }

    /// The template of `IAM_TEMPLATE` (a path) or the one built in, recording into
    /// `IAM_USAGE_DIR` when set.
    pub fn from_env(names: &LocalNames) -> Result<Self, IamError> {
        let text = match var("IAM_TEMPLATE") {
            Some(path) => std::fs::read_to_string(&path)
                .map_err(|e| IamError::Template(format!("IAM_TEMPLATE {path}: {e}")))?,
            None => EMBEDDED_TEMPLATE.to_string(),
        };
        Self::new(&text, names, var("IAM_USAGE_DIR").map(Into::into))
    }

    pub fn template(&self) -> &Template {
        &self.template
    }

    /// The unguarded client: what the local platform itself uses (table setup, the
    /// stream poller's bookkeeping), never a function.
    pub fn base_client(&self) -> SharedHttpClient {
        self.base.clone()
    }

    /// An HTTP client for `service` that lets through only what the function built as
    /// `binary` may do.
    pub fn client_for(
        self: &Arc<Self>,
        binary: &str,
        service: Service,
    ) -> Result<SharedHttpClient, IamError> {
        self.template.function(binary)?;
        Ok(SharedHttpClient::new(Guard {
            principal: Principal { iam: self.clone(), binary: binary.to_string() },
            service,
        }))
    }
}

fn plain_client() -> SharedHttpClient {
    use aws_smithy_http_client::tls;
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::AwsLc))
        .build_https()
}

/// A function of the template, as the identity a guarded client acts for.
#[derive(Debug, Clone)]
pub struct Principal {
    iam: Arc<LocalIam>,
    binary: String,
}

/// Why a request was refused: who, what, on what.
#[derive(Debug, Clone)]
struct Denial {
    principal: String,
    action: String,
    resource: String,
    why: String,
}

impl Principal {
    fn function(&self) -> Result<&FunctionDef, IamError> {
        self.iam.template.function(&self.binary)
    }

    fn check(&self, service: Service, request: &HttpRequest) -> Result<(), Denial> {
        let function = self.function().map_err(|e| Denial {
            principal: self.binary.clone(),
            action: "?".into(),
            resource: "?".into(),
            why: e.to_string(),
        })?;
        let deny = |action: &str, resource: &str, why: String| Denial {
            principal: function.logical_id.clone(),
            action: action.to_string(),
            resource: resource.to_string(),
            why,
        };
        let body = request.body().bytes().unwrap_or_default();
        let needs =
            needs(service, request.method(), request.uri(), request.headers().get("x-amz-target"), body)
                .map_err(|e| deny("?", "?", format!("the request cannot be authorised locally: {e}")))?;
        for Need { action, resource, context } in &needs.needs {
            let context: Vec<(&str, &str)> = context.iter().map(|(k, v)| (*k, v.as_str())).collect();
            match function.policy.evaluate(action, resource, &context) {
                Decision::Allowed(grant) => self.record(&grant),
                Decision::Denied => {
                    let why = format!("no identity-based policy allows the {action} action");
                    return Err(deny(action, resource, why));
                }
            }
        }
        if let Some(target) = &needs.schedule_target {
            self.check_schedule(target).map_err(|(action, resource, why)| deny(&action, &resource, why))?;
        }
        Ok(())
    }

    /// AWS accepts a schedule whose role cannot invoke its target and then fails every
    /// run (which the sweep would hide). Locally that is refused at creation: the target
    /// must be a function of the template, the role a role of the template that the
    /// scheduler may assume and that may invoke the target and send to the dead-letter
    /// queue.
    fn check_schedule(&self, t: &ScheduleTarget) -> Result<(), (String, String, String)> {
        let template = &self.iam.template;
        if template.function_by_arn(&t.target_arn).is_none() {
            return Err((
                "lambda:InvokeFunction".into(),
                t.target_arn.clone(),
                "the target is no function of the template".into(),
            ));
        }
        let Some(role) = template.role_by_arn(&t.role_arn) else {
            return Err((
                "sts:AssumeRole".into(),
                t.role_arn.clone(),
                "the role is no role of the template".into(),
            ));
        };
        if !role.trusted_services.iter().any(|s| s == "scheduler.amazonaws.com") {
            return Err((
                "sts:AssumeRole".into(),
                t.role_arn.clone(),
                "the role does not trust scheduler.amazonaws.com".into(),
            ));
        }
        let mut uses = vec![("lambda:InvokeFunction", t.target_arn.as_str())];
        if let Some(dlq) = &t.dead_letter_arn {
            uses.push(("sqs:SendMessage", dlq.as_str()));
        }
        for (action, resource) in uses {
            match role.policy.evaluate(action, resource, &[]) {
                Decision::Allowed(grant) => self.record(&grant),
                Decision::Denied => {
                    return Err((
                        action.into(),
                        resource.into(),
                        format!("{} may not {action} on it", role.logical_id),
                    ))
                }
            }
        }
        Ok(())
    }

    fn record(&self, grant: &super::policy::Grant) {
        if let Some(usage) = &self.iam.usage {
            usage.record(grant);
        }
    }
}

impl Denial {
    /// The response AWS sends for this refusal (awsJson for DynamoDB and its streams,
    /// Secrets Manager and EventBridge, restJson with `x-amzn-errortype` for EventBridge Scheduler).
    fn response(&self, service: Service) -> Result<HttpResponse, ConnectorError> {
        let message = format!(
            "User: arn:aws:sts::{ACCOUNT}:assumed-role/{p}Role/{p} is not authorized to perform: {} on resource: {} because {}",
            self.action, self.resource, self.why,
            p = self.principal,
        );
        let invalid = |e: String| ConnectorError::other(e.into(), None);
        let (status, body) = match service {
            Service::DynamoDb | Service::DynamoDbStreams | Service::SecretsManager | Service::EventBridge => {
                (
                    400,
                    serde_json::json!({"__type": "com.amazon.coral.service#AccessDeniedException", "Message": message}),
                )
            }
            Service::Scheduler => (403, serde_json::json!({"Message": message})),
        };
        let status = StatusCode::try_from(status).map_err(|e| invalid(e.to_string()))?;
        let mut resp = HttpResponse::new(status, SdkBody::from(body.to_string()));
        match service {
            Service::DynamoDb | Service::DynamoDbStreams => {
                resp.headers_mut().insert("content-type", "application/x-amz-json-1.0");
            }
            Service::SecretsManager | Service::EventBridge => {
                resp.headers_mut().insert("content-type", "application/x-amz-json-1.1");
            }
            Service::Scheduler => {
                resp.headers_mut().insert("content-type", "application/json");
                resp.headers_mut().insert("x-amzn-errortype", "AccessDeniedException");
            }
        }
        resp.headers_mut().insert("x-amzn-requestid", "local-iam-denied");
        Ok(resp)
    }
}

#[derive(Debug, Clone)]
struct Guard {
    principal: Principal,
    service: Service,
}

impl HttpClient for Guard {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        let inner = self.principal.iam.base.http_connector(settings, components);
        SharedHttpConnector::new(GuardedConnector { inner, guard: self.clone() })
    }
}

#[derive(Debug)]
struct GuardedConnector {
    inner: SharedHttpConnector,
    guard: Guard,
}

impl HttpConnector for GuardedConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        match self.guard.principal.check(self.guard.service, &request) {
            Ok(()) => self.inner.call(request),
            Err(denial) => {
                tracing::error!(
                    function = %denial.principal,
                    action = %denial.action,
                    resource = %denial.resource,
                    why = %denial.why,
                    "AccessDenied: template.yaml does not allow this call (local IAM enforcement)"
                );
                HttpConnectorFuture::ready(denial.response(self.guard.service))
            }
        }
    }
}

/// A set, non-empty environment variable (read here, not through `config`, which is built
/// on top of this module).
fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}
