//! Configuration from the environment, read once per cold start, and log setup.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `TABLE_NAME` | `stockhold` | the application table |
//! | `DYNAMODB_ENDPOINT` | unset (AWS) | e.g. `http://127.0.0.1:8001` for DynamoDB Local |
//! | `RESERVATION_TTL_SECONDS` | `600` | how long a reservation holds stock (1..=86400) |
//! | `CURSOR_SECRET` | a fixed development value | HMAC key for list cursors; set per deployment |
//! | `LOG_FORMAT` | `json` | `json` (Lambda style) or `text` |

use crate::adapters::clock::Clock;
use crate::domain::cursor::CursorCodec;
use crate::service::{App, ServiceConfig};
use crate::store::{Store, StoreConfig};
use std::sync::Arc;
use thiserror::Error;

pub const DEV_CURSOR_SECRET: &str = "stockhold-local-cursor-secret";

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("{name} must be {expected}, got {value:?}")]
    Invalid { name: &'static str, expected: &'static str, value: String },
}

#[derive(Debug, Clone)]
pub struct Config {
    pub store: StoreConfig,
    pub reservation_ttl_seconds: i64,
    pub cursor_secret: String,
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        let ttl = match var("RESERVATION_TTL_SECONDS") {
            None => 600,
            Some(v) => match v.parse::<i64>() {
                Ok(n) if (1..=86_400).contains(&n) => n,
                _ => {
                    return Err(ConfigError::Invalid {
                        name: "RESERVATION_TTL_SECONDS",
                        expected: "an integer from 1 to 86400",
                        value: v,
                    })
                }
            },
        };
        Ok(Self {
            store: StoreConfig {
                table: var("TABLE_NAME").unwrap_or_else(|| "stockhold".into()),
                endpoint: var("DYNAMODB_ENDPOINT"),
            },
            reservation_ttl_seconds: ttl,
            cursor_secret: var("CURSOR_SECRET").unwrap_or_else(|| DEV_CURSOR_SECRET.into()),
        })
    }

    /// Builds the application: one SDK client, shared by every request.
    pub async fn build_app(&self, clock: Arc<dyn Clock>) -> App {
        let store = Store::connect(&self.store).await;
        App::new(
            store,
            clock,
            ServiceConfig {
                reservation_ttl: chrono::Duration::seconds(self.reservation_ttl_seconds),
                cursors: CursorCodec::new(self.cursor_secret.as_bytes()),
            },
        )
    }
}

/// Logs to stdout: JSON lines by default (what CloudWatch and Lambda's log format
/// expect), plain text with `LOG_FORMAT=text`. Level from `RUST_LOG` (default `info`).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(false);
    let result = if var("LOG_FORMAT").as_deref() == Some("text") {
        builder.try_init()
    } else {
        builder.json().flatten_event(true).with_current_span(false).try_init()
    };
    // Already initialised (tests): keep the first subscriber.
    let _ = result;
}
