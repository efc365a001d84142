//! Per-cold-start state: built once, shared by every request of a function.

use std::sync::Arc;
use std::time::Duration;

use aws_config::identity::IdentityCache;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::{SharedCredentialsProvider, SharedHttpClient};
use aws_smithy_async::rt::sleep::TokioSleep;
use aws_smithy_http_client::ConnectorBuilder;
use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::tls::{self, TlsContext, TrustStore, rustls_provider::CryptoMode};

use crate::auth::Auth;
use crate::domain::ratelimit::IpBlock;
use crate::domain::time::Clock;
use crate::keys::Keys;
use crate::roles::Roles;
use crate::rotation::Rotation;
use crate::sealing::Sealer;
use crate::secrets::Secrets;
use crate::signing::{Signer, Verifier};
use crate::store::Store;
use crate::tokens::Tokens;
use crate::unlock::Unlocks;
use crate::usage::Usage;

/// Environment variable naming the DynamoDB table.
pub const TABLE_ENV: &str = "HATCHED_TABLE";
/// Environment variable naming the Secrets Manager secret (name or ARN) of the signing key.
pub const SIGNING_SECRET_ENV: &str = "HATCHED_SIGNING_SECRET";
/// Environment variable naming the Secrets Manager secret of the data key that seals HMAC
/// secrets at rest (only the functions that check signed user ids have it).
pub const DATA_KEY_SECRET_ENV: &str = "HATCHED_DATA_KEY_SECRET";
/// Environment variable overriding the `iss` of minted tokens.
pub const ISSUER_ENV: &str = "HATCHED_ISSUER";
pub const PORTAL_BASE_URL_ENV: &str = "HATCHED_PORTAL_BASE_URL";
pub const DEFAULT_ISSUER: &str = "hatched-auth-edge";
/// Environment variable choosing the TLS trust roots: `aws` (default) or `system`.
pub const TLS_ROOTS_ENV: &str = "HATCHED_TLS_ROOTS";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is not set")]
    Missing(&'static str),
    #[error("environment variable {0} must be one of: {1}")]
    Invalid(&'static str, &'static str),
}

/// The Amazon Trust Services roots that every AWS service endpoint chains to.
pub const AWS_ROOTS_PEM: &str = include_str!("../certs/aws-roots.pem");

/// Which certificate authorities the SDK's HTTPS client trusts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TlsRoots {
    /// Only the Amazon Trust Services roots: narrower than the system store, and a cold start
    /// parses five certificates instead of the ~150–300 the OS ships (BENCHMARKS.md).
    #[default]
    Aws,
    /// The operating system's store, for a TLS-intercepting proxy or a private endpoint.
    System,
}

impl TlsRoots {
    pub fn from_env() -> Result<TlsRoots, ConfigError> {
        TlsRoots::parse(std::env::var(TLS_ROOTS_ENV).ok().as_deref())
    }

    pub fn parse(value: Option<&str>) -> Result<TlsRoots, ConfigError> {
        match value {
            None | Some("") | Some("aws") => Ok(TlsRoots::Aws),
            Some("system") => Ok(TlsRoots::System),
            Some(_) => Err(ConfigError::Invalid(TLS_ROOTS_ENV, "aws, system")),
        }
    }

    fn trust_store(self) -> TrustStore {
        match self {
            TlsRoots::Aws => TrustStore::empty().with_native_roots(false).with_pem_certificate(AWS_ROOTS_PEM),
            TlsRoots::System => TrustStore::default(),
        }
    }
}

/// Everything a handler needs besides the request: the services it calls. The parts they are
/// built from stay reachable for operators (`hatchctl`) and tests; handlers use the services.
#[derive(Debug, Clone)]
pub struct App {
    pub auth: Auth,
    pub keys: Keys,
    pub roles: Roles,
    pub unlocks: Unlocks,
    pub tokens: Tokens,
    pub rotation: Rotation,
    pub usage: Usage,
    pub store: Store,
    pub clock: Clock,
    /// Every Secrets Manager call goes through this.
    pub secrets: Secrets,
    /// Signing keys (the private key set in Secrets Manager), fetched on first use: only the
    /// minting functions and the rotation use it.
    pub signer: Arc<Signer>,
    /// The published public keys (from the table), for `jwks` and `introspect-token`.
    pub verifier: Arc<Verifier>,
    /// The data key for HMAC secrets at rest, fetched on first use.
    pub sealer: Arc<Sealer>,
    /// Source IPs over their anonymous limit, as this instance has seen.
    pub ip_block: Arc<IpBlock>,
    pub issuer: String,
    pub portal_base_url: Option<String>,
}

/// Where an [`App`]'s resources live.
#[derive(Debug, Clone)]
pub struct Settings {
    pub table: String,
    pub signing_secret: Option<String>,
    pub data_key_secret: Option<String>,
    pub issuer: String,
    /// Where the key portal page is served (`PortalBaseUrl`); `None`: this API's own address.
    pub portal_base_url: Option<String>,
}

impl Settings {
    pub fn from_env() -> Result<Settings, ConfigError> {
        Ok(Settings {
            table: std::env::var(TABLE_ENV).map_err(|_| ConfigError::Missing(TABLE_ENV))?,
            signing_secret: std::env::var(SIGNING_SECRET_ENV).ok().filter(|s| !s.is_empty()),
            data_key_secret: std::env::var(DATA_KEY_SECRET_ENV).ok().filter(|s| !s.is_empty()),
            issuer: std::env::var(ISSUER_ENV).unwrap_or_else(|_| DEFAULT_ISSUER.to_owned()),
            portal_base_url: std::env::var(PORTAL_BASE_URL_ENV).ok().filter(|s| !s.trim().is_empty()),
        })
    }
}

/// SDK configuration from the environment a Lambda function is given: `AWS_REGION` (or
/// `AWS_DEFAULT_REGION`), the execution role's credentials in `AWS_ACCESS_KEY_ID`,
/// `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN`, and `AWS_ENDPOINT_URL` if set, with bounded
/// timeouts: a hung dependency becomes a 503 well inside the Lambda timeout.
///
/// Not `aws_config::defaults(…).load()`: its default chains (profile files, SSO, web identity
/// through STS, ECS and IMDS credentials) are never used in Lambda, yet linked them into every
/// function and ran at every cold start (BENCHMARKS.md "A lean SDK configuration"). The
/// operator's CLI keeps them ([`operator_aws_config`]).
pub async fn aws_config() -> Result<SdkConfig, ConfigError> {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let region = env("AWS_REGION").or_else(|| env("AWS_DEFAULT_REGION")).ok_or(ConfigError::Missing("AWS_REGION"))?;
    let credentials = aws_config::environment::EnvironmentVariableCredentialsProvider::new();
    let mut config = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region))
        .credentials_provider(SharedCredentialsProvider::new(credentials))
        .identity_cache(IdentityCache::lazy().build())
        .sleep_impl(TokioSleep::new())
        .http_client(https_client(TlsRoots::from_env()?))
        .timeout_config(function_timeouts())
        .retry_config(RetryConfig::standard().with_max_attempts(3));
    if let Some(url) = env("AWS_ENDPOINT_URL") {
        config = config.endpoint_url(url);
    }
    Ok(config.build())
}

/// SDK configuration by the SDK's default chains (profiles, SSO, …), for `hatchctl` on an
/// operator's machine; the same client, timeouts and retries as the functions'.
pub async fn operator_aws_config() -> Result<SdkConfig, ConfigError> {
    Ok(aws_config::defaults(BehaviorVersion::latest())
        .http_client(https_client(TlsRoots::from_env()?))
        .timeout_config(function_timeouts())
        .retry_config(RetryConfig::standard().with_max_attempts(3))
        .load()
        .await)
}

fn function_timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_millis(1000))
        .operation_attempt_timeout(Duration::from_millis(2000))
        .operation_timeout(Duration::from_millis(5000))
        .build()
}

/// Timeouts for a caller that can wait `whole` for a call (all attempts): a third of it per
/// attempt (the SDK tries three times), at most 10 s to connect. For local emulators — a single
/// Python process that can take seconds — never for the functions (`aws_config`'s 5 s).
pub fn patient_timeouts(whole: Duration) -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(whole.min(Duration::from_secs(10)))
        .operation_attempt_timeout(whole / 3)
        .operation_timeout(whole)
        .build()
}

/// The SDK's default HTTPS client (rustls on aws-lc, proxy settings from the environment)
/// with our trust roots instead of the system store.
fn https_client(roots: TlsRoots) -> SharedHttpClient {
    let tls =
        TlsContext::builder().with_trust_store(roots.trust_store()).build().expect("TlsContext::build cannot fail");
    aws_smithy_http_client::Builder::new().build_with_connector_fn(move |settings, components| {
        let mut connector =
            ConnectorBuilder::default().tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc)).tls_context(tls.clone());
        connector.set_connector_settings(settings.cloned());
        connector.set_sleep_impl(components.and_then(|c| c.sleep_impl()));
        connector.set_proxy_config(Some(ProxyConfig::from_env()));
        connector.build()
    })
}

impl App {
    /// The production wiring: settings from the environment, clients from the SDK defaults.
    pub async fn from_env() -> Result<App, ConfigError> {
        let settings = Settings::from_env()?;
        Ok(App::from_config(&aws_config().await?, settings))
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
        let store = Store::new(dynamo, settings.table);
        let secrets = Secrets::new(secrets);
        let verifier = Arc::new(Verifier::new(store.clone(), clock.clone()));
        let signer = Arc::new(Signer::new(secrets.clone(), settings.signing_secret, clock.clone()));
        let sealer = Arc::new(Sealer::new(secrets.clone(), settings.data_key_secret));
        let ip_block: Arc<IpBlock> = Arc::default();
        App {
            auth: Auth::new(
                store.clone(),
                clock.clone(),
                ip_block.clone(),
                sealer.clone(),
                Roles::new(store.clone(), clock.clone()),
            ),
            keys: Keys::new(store.clone(), clock.clone(), sealer.clone(), Roles::new(store.clone(), clock.clone())),
            roles: Roles::new(store.clone(), clock.clone()),
            unlocks: Unlocks::new(store.clone(), clock.clone()),
            tokens: Tokens::new(
                store.clone(),
                clock.clone(),
                signer.clone(),
                verifier.clone(),
                settings.issuer.clone(),
            ),
            rotation: Rotation::new(store.clone(), secrets.clone(), signer.clone(), verifier.clone(), clock.clone()),
            usage: Usage::new(store.clone(), clock.clone()),
            store,
            verifier,
            signer,
            sealer,
            secrets,
            ip_block,
            clock,
            issuer: settings.issuer,
            portal_base_url: settings.portal_base_url,
        }
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use sha2::{Digest, Sha256};

    use super::*;

    #[test]
    fn tls_roots_default_to_aws_and_reject_unknown_values() {
        assert_eq!(TlsRoots::parse(None).unwrap(), TlsRoots::Aws);
        assert_eq!(TlsRoots::parse(Some("")).unwrap(), TlsRoots::Aws);
        assert_eq!(TlsRoots::parse(Some("aws")).unwrap(), TlsRoots::Aws);
        assert_eq!(TlsRoots::parse(Some("system")).unwrap(), TlsRoots::System);
        for bad in ["System", "sytem", "native", "aws "] {
            assert!(TlsRoots::parse(Some(bad)).is_err(), "{bad:?}");
        }
    }

    /// The bundle holds exactly Amazon Root CA 1–4 and Starfield Services Root G2, identified
    /// by their published SHA-256 fingerprints.
    #[test]
    fn embedded_roots_are_the_amazon_trust_services_roots() {
        let fingerprints: Vec<String> = AWS_ROOTS_PEM
            .split("-----BEGIN CERTIFICATE-----")
            .skip(1)
            .map(|block| {
                let b64: String = block.split("-----END CERTIFICATE-----").next().unwrap().split_whitespace().collect();
                hex::encode(Sha256::digest(base64::engine::general_purpose::STANDARD.decode(b64).unwrap()))
            })
            .collect();
        assert_eq!(
            fingerprints,
            [
                "8ecde6884f3d87b1125ba31ac3fcb13d7016de7f57cc904fe1cb97c6ae98196e", // Amazon Root CA 1
                "1ba5b2aa8c65401a82960118f80bec4f62304d83cec4713a19c39c011ea46db4", // Amazon Root CA 2
                "18ce6cfe7bf14e60b2e347b8dfe868cb31d02ebb3ada271569f50343b46db3a4", // Amazon Root CA 3
                "e35d28419ed02025cfa69038cd623962458da5c695fbdea3c22b0bfb25897092", // Amazon Root CA 4
                "568d6905a2c88708a4b3025190edcfedb1974a606a13c6e5290fcb2ae63edab5", // Starfield Services G2
            ]
        );
    }
}
