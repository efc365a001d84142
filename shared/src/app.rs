//! Per-cold-start state: built once, shared by every request of a function.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};

use crate::domain::UnixTime;
use crate::signing::Signer;
use crate::store::Store;

/// Environment variable naming the DynamoDB table.
pub const TABLE_ENV: &str = "HATCHED_TABLE";
/// Environment variable naming the Secrets Manager secret (name or ARN) of the signing key.
pub const SIGNING_SECRET_ENV: &str = "HATCHED_SIGNING_SECRET";
/// Environment variable overriding the `iss` of minted tokens.
pub const ISSUER_ENV: &str = "HATCHED_ISSUER";
pub const DEFAULT_ISSUER: &str = "hatched-auth-edge";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is not set")]
    Missing(&'static str),
}

/// Wall-clock time that tests can move or stop (production does neither).
#[derive(Debug, Clone, Default)]
pub struct Clock {
    offset_secs: Arc<AtomicI64>,
    /// Non-zero: the clock is stopped at this time (plus later advances).
    frozen_at: Arc<AtomicI64>,
}

impl Clock {
    pub fn now(&self) -> UnixTime {
        match self.frozen_at.load(Ordering::Relaxed) {
            0 => UnixTime::now().plus_secs(self.offset_secs.load(Ordering::Relaxed)),
            at => UnixTime::from_secs(at),
        }
    }

    /// Moves this clock (and every clone of it) forward.
    pub fn advance(&self, secs: i64) {
        if self.frozen_at.load(Ordering::Relaxed) != 0 {
            self.frozen_at.fetch_add(secs, Ordering::Relaxed);
        }
        self.offset_secs.fetch_add(secs, Ordering::Relaxed);
    }

    /// Stops the clock at its current time, so a test can sit exactly on a boundary.
    pub fn freeze(&self) -> UnixTime {
        let now = self.now();
        self.frozen_at.store(now.secs(), Ordering::Relaxed);
        now
    }
}

/// Everything a handler needs besides the request.
#[derive(Debug, Clone)]
pub struct App {
    pub store: Store,
    pub clock: Clock,
    /// Signing keys, fetched on first use (functions that never sign never fetch).
    pub signer: Arc<Signer>,
    pub issuer: String,
}

/// Where an [`App`]'s resources live.
#[derive(Debug, Clone)]
pub struct Settings {
    pub table: String,
    pub signing_secret: Option<String>,
    pub issuer: String,
}

impl Settings {
    pub fn from_env() -> Result<Settings, ConfigError> {
        Ok(Settings {
            table: std::env::var(TABLE_ENV).map_err(|_| ConfigError::Missing(TABLE_ENV))?,
            signing_secret: std::env::var(SIGNING_SECRET_ENV).ok().filter(|s| !s.is_empty()),
            issuer: std::env::var(ISSUER_ENV).unwrap_or_else(|_| DEFAULT_ISSUER.to_owned()),
        })
    }
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
    /// The production wiring: settings from the environment, clients from the SDK defaults.
    pub async fn from_env() -> Result<App, ConfigError> {
        let settings = Settings::from_env()?;
        Ok(App::from_config(&aws_config().await, settings))
    }

    pub fn from_config(config: &SdkConfig, settings: Settings) -> App {
        App::with_clients(aws_sdk_dynamodb::Client::new(config), aws_sdk_secretsmanager::Client::new(config), settings)
    }

    pub fn with_clients(
        dynamo: aws_sdk_dynamodb::Client,
        secrets: aws_sdk_secretsmanager::Client,
        settings: Settings,
    ) -> App {
        let clock = Clock::default();
        App {
            store: Store::new(dynamo, settings.table),
            signer: Arc::new(Signer::new(secrets, settings.signing_secret, clock.clone())),
            clock,
            issuer: settings.issuer,
        }
    }
}
