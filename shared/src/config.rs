//! Configuration from the environment, read once per cold start, and log setup.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `TABLE_NAME` | `stockhold` | the application table |
//! | `AUDIT_TABLE_NAME` | `<TABLE_NAME>-audit` | the audit table |
//! | `DYNAMODB_ENDPOINT` | unset (AWS) | e.g. `http://127.0.0.1:8001` for DynamoDB Local |
//! | `RESERVATION_TTL_SECONDS` | `600` | how long a reservation holds stock (1..=86400) |
//! | `MAX_ACTIVE_HOLDS_PER_USER` | `20` | active reservations one user may hold at once (1..=1000) |
//! | `MAX_HOLD_SECONDS` | `0` = 3 x `RESERVATION_TTL_SECONDS` | longest a hold may last from its creation, extensions included (0..=604800) |
//! | `CURSOR_SECRET_ARN` | unset | Secrets Manager secret holding the cursor key (AWS; read at cold start by `products`, `list`, `audit-api`) |
//! | `CURSOR_SECRET` | a fixed development value (local stack only) | HMAC key for list cursors, given directly |
//! | `SECRETS_ENDPOINT` | unset (AWS) | a Secrets Manager-compatible endpoint (moto in tests) |
//! | `SCHEDULE_GROUP` | `stockhold-expiry` | EventBridge Scheduler group of expiry schedules |
//! | `EXPIRE_FUNCTION_ARN` | unset | target of expiry schedules; unset: no schedules, the sweep expires holds |
//! | `SCHEDULER_ROLE_ARN` | unset | role EventBridge Scheduler assumes to invoke `expire` |
//! | `EXPIRY_DLQ_ARN` | unset | dead-letter queue for expiry invocations that exhausted retries |
//! | `SCHEDULER_ENDPOINT` | unset (AWS) | a Scheduler-compatible endpoint (moto in tests) |
//! | `EVENT_BUS_NAME` | unset | the EventBridge bus the `publish` function puts events on (the template sets it) |
//! | `EVENTBRIDGE_ENDPOINT` | unset (AWS) | an EventBridge-compatible endpoint (moto in tests) |
//! | `LOG_FORMAT` | `AWS_LAMBDA_LOG_FORMAT`, else `json` | `json` (Lambda style) or `text` |
//! | `AWS_LAMBDA_LOG_LEVEL` | unset | set by Lambda from `LoggingConfig`; wins over `RUST_LOG` (`log_settings`) |
//! | `RUST_LOG` | `info` | log filter where `AWS_LAMBDA_LOG_LEVEL` is unset |
//! | `METRICS_NAMESPACE` | `stockhold` | CloudWatch namespace of the functions' EMF metrics |

use crate::adapters::emf::Emf;
use crate::adapters::scheduler::{EventBridgeScheduler, EventBridgeTarget};
use crate::domain::cursor::CursorCodec;
use crate::service::ports::{Clock, ExpiryScheduler, NoScheduler};
use crate::service::{App, ServiceConfig};
use crate::store::{Store, StoreConfig};
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;

pub const DEV_CURSOR_SECRET: &str = "stockhold-local-cursor-secret";

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("{name} must be {expected}, got {value:?}")]
    Invalid { name: &'static str, expected: &'static str, value: String },
    #[cfg(feature = "local")]
    #[error("local IAM enforcement: {0}")]
    Iam(#[from] crate::iam::IamError),
    #[error("{name} is not set: {why}")]
    Missing { name: &'static str, why: &'static str },
    #[error("cannot read the cursor key: {0}")]
    Secret(String),
}

/// Where a function's cursor key comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CursorKey {
    /// `CURSOR_SECRET`, or on the local stack the development value.
    Given(String),
    /// The Secrets Manager secret `CURSOR_SECRET_ARN`, read at cold start.
    Secret(String),
    /// A function that has no cursors gets a random key it never uses.
    Throwaway,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub store: StoreConfig,
    pub reservation_ttl_seconds: i64,
    pub max_active_holds: i64,
    /// 0: three times the TTL.
    pub max_hold_seconds: i64,
    /// `CURSOR_SECRET`: a key given directly (local development, tests).
    pub cursor_secret: Option<String>,
    /// `CURSOR_SECRET_ARN`: the secret holding the key (AWS).
    pub cursor_secret_arn: Option<String>,
    /// `SECRETS_ENDPOINT`: a Secrets Manager endpoint other than AWS (moto in tests).
    pub secrets_endpoint: Option<String>,
    /// `None`: no per-reservation schedules.
    pub scheduler: Option<EventBridgeTarget>,
    pub scheduler_endpoint: Option<String>,
    /// `EVENT_BUS_NAME`: where the `publish` function puts events.
    pub event_bus_name: Option<String>,
    /// `EVENTBRIDGE_ENDPOINT`: an EventBridge endpoint other than AWS (moto in tests).
    pub eventbridge_endpoint: Option<String>,
}

pub(crate) fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// An integer variable in `min..=max`, or `default` when unset.
pub fn int_var(name: &'static str, default: i64, min: i64, max: i64) -> Result<i64, ConfigError> {
    match var(name) {
        None => Ok(default),
        Some(v) => match v.parse::<i64>() {
            Ok(n) if (min..=max).contains(&n) => Ok(n),
            _ => Err(ConfigError::Invalid { name, expected: "an integer in the allowed range", value: v }),
        },
    }
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        let scheduler = match (var("EXPIRE_FUNCTION_ARN"), var("SCHEDULER_ROLE_ARN")) {
            (Some(function_arn), Some(role_arn)) => Some(EventBridgeTarget {
                group: var("SCHEDULE_GROUP").unwrap_or_else(|| "stockhold-expiry".into()),
                function_arn,
                role_arn,
                dead_letter_arn: var("EXPIRY_DLQ_ARN"),
            }),
            _ => None,
        };
        Ok(Self {
            store: {
                let table = var("TABLE_NAME").unwrap_or_else(|| "stockhold".into());
                StoreConfig {
                    audit_table: var("AUDIT_TABLE_NAME").unwrap_or_else(|| format!("{table}-audit")),
                    table,
                    endpoint: var("DYNAMODB_ENDPOINT"),
                }
            },
            reservation_ttl_seconds: int_var("RESERVATION_TTL_SECONDS", 600, 1, 86_400)?,
            max_active_holds: int_var("MAX_ACTIVE_HOLDS_PER_USER", 20, 1, 1_000)?,
            max_hold_seconds: int_var("MAX_HOLD_SECONDS", 0, 0, 604_800)?,
            cursor_secret: var("CURSOR_SECRET"),
            cursor_secret_arn: var("CURSOR_SECRET_ARN"),
            secrets_endpoint: var("SECRETS_ENDPOINT"),
            scheduler,
            scheduler_endpoint: var("SCHEDULER_ENDPOINT"),
            event_bus_name: var("EVENT_BUS_NAME"),
            eventbridge_endpoint: var("EVENTBRIDGE_ENDPOINT"),
        })
    }

    /// Whether this is the local stack (some service points at a local endpoint): then no
    /// AWS account is needed, and the template's IAM policies are enforced locally.
    pub fn is_local(&self) -> bool {
        self.store.endpoint.is_some()
            || self.scheduler_endpoint.is_some()
            || self.eventbridge_endpoint.is_some()
    }

    /// The names the local stack gives the template's resources.
    #[cfg(feature = "local")]
    pub fn local_names(&self) -> crate::iam::LocalNames {
        // The group the template names; a target aimed at any other is refused.
        let group = var("SCHEDULE_GROUP").unwrap_or_else(|| "stockhold-expiry".into());
        let names = crate::iam::LocalNames::default()
            .with("Table", &self.store.table)
            .with("AuditTable", &self.store.audit_table)
            .with("ExpiryScheduleGroup", &group);
        match &self.event_bus_name {
            Some(bus) => names.with("EventBus", bus),
            None => names,
        }
    }

    /// The SDK configuration: AWS's default chain in Lambda; fixed dummy credentials and
    /// region when any service points at a local endpoint, so no AWS setup is needed.
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        if self.is_local() {
            // DynamoDB Local is a JVM that slows to seconds per call under bursts on a small
            // machine; a tight timeout there would only turn slow successes into 503s.
            let timeouts = aws_config::timeout::TimeoutConfig::builder()
                .operation_attempt_timeout(Duration::from_secs(30))
                .build();
            aws_config::SdkConfig::builder()
                .behavior_version(aws_config::BehaviorVersion::latest())
                .region(aws_config::Region::new("us-east-1"))
                .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(
                    aws_credential_types::Credentials::new("local", "local", None, None, "stockhold-local"),
                ))
                .timeout_config(timeouts)
                .build()
        } else {
            // DynamoDB answers in milliseconds; a stuck attempt is retried (the SDK reuses
            // the transaction's ClientRequestToken, so a retry cannot apply it twice) well
            // within the function's 10 s timeout.
            let timeouts = aws_config::timeout::TimeoutConfig::builder()
                .operation_attempt_timeout(Duration::from_secs(2))
                .operation_timeout(Duration::from_secs(8))
                .build();
            aws_config::defaults(aws_config::BehaviorVersion::latest()).timeout_config(timeouts).load().await
        }
    }

    /// The expiry scheduler this configuration asks for (a `Schedules` for the functions
    /// that create or delete schedules).
    pub fn scheduler(&self, sdk: &aws_config::SdkConfig) -> Arc<dyn ExpiryScheduler> {
        match &self.scheduler {
            Some(target) => {
                let mut conf = aws_sdk_scheduler::config::Builder::from(sdk);
                if let Some(endpoint) = &self.scheduler_endpoint {
                    conf = conf.endpoint_url(endpoint);
                }
                Arc::new(EventBridgeScheduler::new(
                    aws_sdk_scheduler::Client::from_conf(conf.build()),
                    target.clone(),
                ))
            }
            None => Arc::new(NoScheduler),
        }
    }

    /// No expiry scheduler, whatever the configuration says (a `Schedules` for the
    /// functions that never touch schedules).
    pub fn no_scheduler(&self, _sdk: &aws_config::SdkConfig) -> Arc<dyn ExpiryScheduler> {
        Arc::new(NoScheduler)
    }

    /// Builds the application with unrestricted clients: what the local platform and test
    /// harnesses use (table setup, inspection). A function runs `functions::Function::app` instead.
    /// On the local stack the template's IAM policies are loaded here, so that
    /// `App::for_function` can restrict each function to its own.
    #[cfg(feature = "local")]
    pub async fn build_app(&self, clock: Arc<dyn Clock>) -> Result<App, ConfigError> {
        Ok(self.build_app_with_sdk(clock, Config::scheduler).await?.0)
    }

    async fn build_app_with_sdk(
        &self,
        clock: Arc<dyn Clock>,
        schedules: Schedules,
    ) -> Result<(App, aws_config::SdkConfig), ConfigError> {
        #[cfg(feature = "local")]
        let iam = if self.is_local() {
            Some(Arc::new(crate::iam::LocalIam::from_env(&self.local_names())?))
        } else {
            None
        };
        #[cfg(not(feature = "local"))]
        if self.is_local() {
            // A production build pointed at a local endpoint (a `make lambda` artifact run
            // by hand): it works, but nothing holds it to its template policy.
            tracing::warn!("local endpoint, but built without the `local` feature: IAM is not enforced");
        }
        let sdk = self.sdk_config().await;
        #[cfg(feature = "local")]
        let sdk = match &iam {
            Some(iam) => sdk.into_builder().http_client(iam.base_client()).build(),
            None => sdk,
        };
        let store = Store::connect(&sdk, &self.store);
        // The platform's own app (gateway, tests) serves every function's routes locally.
        let key = match self.cursor_key(true)? {
            CursorKey::Given(key) => key,
            _ => throwaway_key(),
        };
        let app = App::new(
            store,
            clock,
            ServiceConfig {
                reservation_ttl: chrono::Duration::seconds(self.reservation_ttl_seconds),
                max_active_holds: self.max_active_holds,
                max_hold: chrono::Duration::seconds(match self.max_hold_seconds {
                    0 => 3 * self.reservation_ttl_seconds,
                    s => s,
                }),
                cursors: CursorCodec::new(key.as_bytes()),
                // The default of `WAITLIST_TTL_SECONDS`, read from the environment once a
                // function serves the waitlist routes.
                waitlist_ttl: chrono::Duration::seconds(86_400),
            },
        )
        .with_scheduler(schedules(self, &sdk));
        #[cfg(feature = "local")]
        let app = app.with_local_iam(iam);
        Ok((app, sdk))
    }

    /// Where the cursor key of a function comes from (`has_cursors`: it makes or reads
    /// list cursors, as `functions::Function::cursors` says; the local platform, which
    /// serves every function, has them). Outside the local stack a function with cursors
    /// refuses to start without `CURSOR_SECRET_ARN` (or `CURSOR_SECRET`): a development
    /// key there would let anyone forge cursors.
    pub fn cursor_key(&self, has_cursors: bool) -> Result<CursorKey, ConfigError> {
        let secret_reachable = !self.is_local() || self.secrets_endpoint.is_some();
        match (&self.cursor_secret_arn, &self.cursor_secret) {
            (Some(arn), _) if has_cursors && secret_reachable => Ok(CursorKey::Secret(arn.clone())),
            (_, Some(key)) => Ok(CursorKey::Given(key.clone())),
            _ if self.is_local() => Ok(CursorKey::Given(DEV_CURSOR_SECRET.into())),
            _ if has_cursors => Err(ConfigError::Missing {
                name: "CURSOR_SECRET_ARN",
                why: "this function signs list cursors and needs its key (the template sets it)",
            }),
            _ => Ok(CursorKey::Throwaway),
        }
    }

    /// The application as the function built as `binary` runs it (`functions::Function::
    /// app` passes what the table says it needs): its cursor key (read from Secrets
    /// Manager once, here, when `has_cursors`), the expiry scheduler `schedules` makes (a
    /// function that never creates or deletes schedules passes `Config::no_scheduler`, and
    /// its binary then does not link the Scheduler client), and on the local stack every
    /// AWS call it makes held to that function's policy in the template.
    pub async fn function_app_with(
        &self,
        binary: &str,
        has_cursors: bool,
        clock: Arc<dyn Clock>,
        schedules: Schedules,
    ) -> Result<App, ConfigError> {
        let key = self.cursor_key(has_cursors)?;
        let (app, sdk) = self.build_app_with_sdk(clock, schedules).await?;
        // Locally, the platform's app held to this function's policy; in AWS it was built
        // for this function alone.
        #[cfg(feature = "local")]
        let mut app = app.for_function(binary)?;
        #[cfg(not(feature = "local"))]
        let mut app = app;
        let key = match key {
            CursorKey::Given(key) => key,
            CursorKey::Throwaway => throwaway_key(),
            CursorKey::Secret(arn) => {
                let mut conf = aws_sdk_secretsmanager::config::Builder::from(&sdk);
                if let Some(endpoint) = &self.secrets_endpoint {
                    conf = conf.endpoint_url(endpoint);
                }
                #[cfg(feature = "local")]
                if let Some(iam) = app.local_iam() {
                    conf = conf.http_client(iam.client_for(binary, crate::iam::Service::SecretsManager)?);
                }
                let client = aws_sdk_secretsmanager::Client::from_conf(conf.build());
                let out = client.get_secret_value().secret_id(&arn).send().await.map_err(|e| {
                    ConfigError::Secret(aws_sdk_secretsmanager::error::DisplayErrorContext(&e).to_string())
                })?;
                out.secret_string()
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .ok_or_else(|| ConfigError::Secret(format!("{arn} holds no string")))?
            }
        };
        app.config.cursors = CursorCodec::new(key.as_bytes());
        let namespace = var("METRICS_NAMESPACE").unwrap_or_else(|| "stockhold".into());
        // The level the logs are filtered at (`log_settings`), which is Lambda's own.
        let level = crate::adapters::emf::metric_level(Some(&log_settings(var).filter));
        Ok(app.with_metrics(Arc::new(Emf::new(namespace, binary, level))))
    }
}

impl Config {
    /// The bus `EVENT_BUS_NAME` names, for `binary` (the `publish` function): on the local
    /// stack its calls are held to that function's policy in the template.
    pub async fn event_bus(
        &self,
        app: &App,
        binary: &str,
    ) -> Result<crate::adapters::eventbridge::EventBridgeBus, ConfigError> {
        let bus = self.event_bus_name.clone().ok_or(ConfigError::Missing {
            name: "EVENT_BUS_NAME",
            why: "the publish function puts every event on this bus (the template sets it)",
        })?;
        let sdk = self.sdk_config().await;
        let mut conf = aws_sdk_eventbridge::config::Builder::from(&sdk);
        if let Some(endpoint) = &self.eventbridge_endpoint {
            conf = conf.endpoint_url(endpoint);
        }
        #[cfg(feature = "local")]
        if let Some(iam) = app.local_iam() {
            conf = conf.http_client(iam.client_for(binary, crate::iam::Service::EventBridge)?);
        }
        #[cfg(not(feature = "local"))]
        let _ = (app, binary);
        Ok(crate::adapters::eventbridge::EventBridgeBus::new(
            aws_sdk_eventbridge::Client::from_conf(conf.build()),
            bus,
        ))
    }
}

/// How a function's application gets its expiry scheduler: `Config::scheduler` or
/// `Config::no_scheduler`. A function pointer chosen where the binary is wired, not a
/// flag read at run time, so that a binary names only the one it uses and the linker
/// leaves the Scheduler client out of the others (about 0.2 MB each).
pub type Schedules = fn(&Config, &aws_config::SdkConfig) -> Arc<dyn ExpiryScheduler>;

/// A random key for a function without cursors (160 random bits from two ULIDs).
fn throwaway_key() -> String {
    format!("{}{}", ulid::Ulid::new(), ulid::Ulid::new())
}

/// How a process logs, from its environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSettings {
    pub json: bool,
    /// An `EnvFilter` directive.
    pub filter: String,
}

/// Reads the log settings as Lambda documents them, so that a function's `LoggingConfig`
/// works: the level is `AWS_LAMBDA_LOG_LEVEL` (Lambda sets it from
/// `ApplicationLogLevel`; `FATAL` is our `error`), else `RUST_LOG` (finer directives, for
/// local runs), else `info`. The format is `LOG_FORMAT` (`json` or `text`) where set, else
/// `AWS_LAMBDA_LOG_FORMAT` (`JSON` or `Text`), else JSON. Empty values count as unset
/// (the template declares every variable, most of them empty).
pub fn log_settings(get: impl Fn(&str) -> Option<String>) -> LogSettings {
    let get = |name: &str| get(name).filter(|v| !v.trim().is_empty());
    let filter = match get("AWS_LAMBDA_LOG_LEVEL").map(|l| l.trim().to_ascii_lowercase()) {
        Some(level) if level == "fatal" => "error".to_string(),
        Some(level) => level,
        None => get("RUST_LOG").unwrap_or_else(|| "info".into()),
    };
    let json = match get("LOG_FORMAT") {
        Some(f) => !f.eq_ignore_ascii_case("text"),
        None => !get("AWS_LAMBDA_LOG_FORMAT").is_some_and(|f| f.eq_ignore_ascii_case("text")),
    };
    LogSettings { json, filter }
}

impl LogSettings {
    /// At `debug` or `trace`, a line for each span when it closes, with its time: each
    /// request, and each DynamoDB call inside it (`store::exec`). Quieter levels log
    /// events only.
    pub fn spans(&self) -> tracing_subscriber::fmt::format::FmtSpan {
        use tracing_subscriber::fmt::format::FmtSpan;
        let level = self.filter.split(',').find(|d| !d.contains('=')).unwrap_or("").trim();
        if matches!(level, "debug" | "trace") {
            FmtSpan::CLOSE
        } else {
            FmtSpan::NONE
        }
    }
}

/// Logs to stdout as `log_settings` says: JSON lines (what Lambda's JSON log format and
/// CloudWatch Logs Insights read: `timestamp`, `level`, `message` and the event's fields
/// at the top level) or plain text.
pub fn init_tracing() {
    let settings = log_settings(var);
    let filter = tracing_subscriber::EnvFilter::try_new(&settings.filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let result = if !settings.json {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_target(false)
            .with_span_events(settings.spans())
            .try_init()
            .map_err(|e| e.to_string())
    } else {
        tracing::subscriber::set_global_default(json_logs(filter, settings.spans(), std::io::stdout))
            .map_err(|e| e.to_string())
    };
    // Already initialised (tests): keep the first subscriber.
    let _ = result;
}

/// The JSON log format: one object per line with the event's fields at the top level and
/// the enclosing request span (its `request_id`) under `span`, so that every line a
/// request causes, down to a storage warning, names the request.
pub fn json_logs<W>(
    filter: tracing_subscriber::EnvFilter,
    spans: tracing_subscriber::fmt::format::FmtSpan,
    writer: W,
) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'a> tracing_subscriber::fmt::MakeWriter<'a> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(writer)
        .with_span_events(spans)
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(false)
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(vars: &[(&str, &str)]) -> LogSettings {
        log_settings(|name| vars.iter().find(|(n, _)| *n == name).map(|(_, v)| v.to_string()))
    }

    #[test]
    fn lambdas_log_level_wins_over_rust_log_and_fatal_means_error() {
        assert_eq!(settings(&[]).filter, "info");
        assert_eq!(settings(&[("RUST_LOG", "debug")]).filter, "debug");
        assert_eq!(settings(&[("RUST_LOG", "debug"), ("AWS_LAMBDA_LOG_LEVEL", "WARN")]).filter, "warn");
        assert_eq!(settings(&[("AWS_LAMBDA_LOG_LEVEL", "FATAL")]).filter, "error");
        assert_eq!(
            settings(&[("AWS_LAMBDA_LOG_LEVEL", ""), ("RUST_LOG", "")]).filter,
            "info",
            "empty is unset"
        );
    }

    #[test]
    fn at_debug_each_dynamodb_call_closes_with_a_line_naming_it_and_its_time() {
        use std::sync::{Arc, Mutex};
        let seen = Arc::new(Mutex::new(Vec::<u8>::new()));
        let sink = seen.clone();
        let debug = settings(&[("AWS_LAMBDA_LOG_LEVEL", "DEBUG")]);
        let subscriber =
            json_logs(tracing_subscriber::EnvFilter::new(&debug.filter), debug.spans(), move || {
                Capture(sink.clone())
            });
        tracing::subscriber::with_default(subscriber, || {
            let request = tracing::info_span!("request", request_id = "r-1");
            let _r = request.enter();
            let call = tracing::debug_span!("dynamodb", op = "reserve", api = "TransactWriteItems");
            drop(call.enter());
        });
        let text = String::from_utf8(seen.lock().map(|b| b.clone()).unwrap_or_default()).unwrap_or_default();
        let call = text
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|l| l["span"]["name"] == "dynamodb")
            .unwrap_or_default();
        assert_eq!(
            (call["message"].as_str(), call["level"].as_str()),
            (Some("close"), Some("DEBUG")),
            "{text}"
        );
        assert_eq!(
            (call["span"]["op"].as_str(), call["span"]["api"].as_str()),
            (Some("reserve"), Some("TransactWriteItems"))
        );
        assert!(call["time.busy"].is_string() && call["time.idle"].is_string(), "{call}");
        assert_eq!(
            settings(&[]).spans(),
            tracing_subscriber::fmt::format::FmtSpan::NONE,
            "info: events only"
        );
    }

    struct Capture(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Capture {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if let Ok(mut b) = self.0.lock() {
                b.extend_from_slice(buf);
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn logs_are_json_unless_text_is_asked_for() {
        assert!(settings(&[]).json);
        assert!(settings(&[("AWS_LAMBDA_LOG_FORMAT", "JSON")]).json);
        assert!(!settings(&[("AWS_LAMBDA_LOG_FORMAT", "Text")]).json);
        assert!(!settings(&[("LOG_FORMAT", "text"), ("AWS_LAMBDA_LOG_FORMAT", "JSON")]).json);
        assert!(settings(&[("LOG_FORMAT", "json"), ("AWS_LAMBDA_LOG_FORMAT", "Text")]).json);
    }

    fn config(local: bool, secret: Option<&str>, arn: Option<&str>) -> Config {
        Config {
            store: StoreConfig {
                table: "t".into(),
                audit_table: "t-audit".into(),
                endpoint: local.then(|| "http://127.0.0.1:1".into()),
            },
            reservation_ttl_seconds: 600,
            max_active_holds: 20,
            max_hold_seconds: 0,
            cursor_secret: secret.map(Into::into),
            cursor_secret_arn: arn.map(Into::into),
            secrets_endpoint: None,
            scheduler: None,
            event_bus_name: None,
            eventbridge_endpoint: None,
            scheduler_endpoint: None,
        }
    }

    #[test]
    fn outside_the_local_stack_a_function_with_cursors_refuses_to_start_without_its_key() {
        let aws = config(false, None, None);
        assert!(matches!(aws.cursor_key(true), Err(ConfigError::Missing { .. })));
        assert!(matches!(aws.cursor_key(true), Err(ConfigError::Missing { .. })));
        assert_eq!(aws.cursor_key(false).ok(), Some(CursorKey::Throwaway), "no cursors, no key");
        let with_arn = config(false, None, Some("arn:s"));
        assert_eq!(with_arn.cursor_key(true).ok(), Some(CursorKey::Secret("arn:s".into())));
        assert_eq!(
            with_arn.cursor_key(false).ok(),
            Some(CursorKey::Throwaway),
            "only cursor functions read it"
        );
        let local = config(true, None, Some("arn:s"));
        assert_eq!(local.cursor_key(true).ok(), Some(CursorKey::Given(DEV_CURSOR_SECRET.into())));
    }
}
