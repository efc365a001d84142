//! Per-cold-start state: built once, shared by every request of a function.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};

use crate::domain::UnixTime;
use crate::store::Store;

/// Environment variable naming the DynamoDB table.
pub const TABLE_ENV: &str = "HATCHED_TABLE";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is not set")]
    Missing(&'static str),
}

/// Wall-clock time with an offset tests can move (production never does).
#[derive(Debug, Clone, Default)]
pub struct Clock {
    offset_secs: Arc<AtomicI64>,
}

impl Clock {
    pub fn now(&self) -> UnixTime {
        UnixTime::now().plus_secs(self.offset_secs.load(Ordering::Relaxed))
    }

    /// Moves this clock (and every clone of it) forward.
    pub fn advance(&self, secs: i64) {
        self.offset_secs.fetch_add(secs, Ordering::Relaxed);
    }
}

/// Everything a handler needs besides the request.
#[derive(Debug, Clone)]
pub struct App {
    pub store: Store,
    pub clock: Clock,
}

/// SDK configuration from the standard environment (`AWS_REGION`, `AWS_ENDPOINT_URL`, …)
/// with bounded timeouts: a hung dependency becomes a 503 well inside the Lambda timeout.
pub async fn aws_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_millis(1000))
                .operation_attempt_timeout(Duration::from_millis(2000))
                .operation_timeout(Duration::from_millis(5000))
                .build(),
        )
        .retry_config(RetryConfig::standard().with_max_attempts(3))
        .load()
        .await
}

impl App {
    pub fn new(store: Store, clock: Clock) -> App {
        App { store, clock }
    }

    /// The production wiring: table from `HATCHED_TABLE`, clients from the environment.
    pub async fn from_env() -> Result<App, ConfigError> {
        let table = std::env::var(TABLE_ENV).map_err(|_| ConfigError::Missing(TABLE_ENV))?;
        let config = aws_config().await;
        Ok(App::from_config(&config, table))
    }

    pub fn from_config(config: &SdkConfig, table: impl Into<String>) -> App {
        let store = Store::new(aws_sdk_dynamodb::Client::new(config), table);
        App::new(store, Clock::default())
    }
}
