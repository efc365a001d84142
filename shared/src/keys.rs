//! Issuing and rolling API keys: the one code path behind `hatchctl keys` (and the tests).
//! The plaintext exists only in the returned [`Issued`]; the table holds its hash.

use std::collections::BTreeSet;

use crate::App;
use crate::domain::origin::OriginPatternError;
use crate::domain::{
    ApiKey, CustomerId, Environment, HmacSecret, KeyKind, KeyRecord, KeyType, Scope, ScopeGrantError, Tier, UnixTime,
    grant_scopes, origin,
};
use crate::signing::SigningError;
use crate::store::StoreError;

/// What a new key may be issued with besides its customer, type and environment.
#[derive(Debug, Clone, Default)]
pub struct KeyOptions {
    /// `None`: the type's defaults (Free).
    pub tier: Option<Tier>,
    pub label: Option<String>,
    pub owner: Option<String>,
    /// `None`: the type's default scopes.
    pub scopes: Option<Vec<String>>,
    pub allowed_origins: Vec<String>,
    pub require_signed_user_id: bool,
}

/// A key just issued: the plaintext and HMAC secret (shown once) and the record.
#[derive(Debug)]
pub struct Issued {
    pub key: ApiKey,
    pub record: KeyRecord,
    pub hmac_secret: Option<HmacSecret>,
}

#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    #[error("allowed origins and signed user ids apply to publishable keys only")]
    PublishableOnly,
    #[error("{0:?} is not an origin (expected https://host[:port] or https://*.domain)")]
    InvalidOrigin(String),
    #[error("{0:?} is refused: {1}")]
    RefusedOrigin(String, OriginPatternError),
    #[error(transparent)]
    Scopes(#[from] ScopeGrantError),
    #[error("no customer {0}")]
    NoCustomer(CustomerId),
    #[error("could not find a free key prefix")]
    NoFreePrefix,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Sealing(#[from] SigningError),
}

/// The attributes a key is created with (an issue's, or copied from the key a roll replaces).
#[derive(Debug, Clone)]
struct KeyTemplate {
    key_type: KeyType,
    environment: Environment,
    customer_id: CustomerId,
    primary_token: crate::domain::TokenKey,
    tier: Tier,
    scopes: BTreeSet<Scope>,
    allowed_origins: Vec<String>,
    hmac_secret: Option<HmacSecret>,
    require_signed_user_id: bool,
    label: Option<String>,
    owner: Option<String>,
}

impl App {
    pub async fn issue_key(
        &self,
        customer: &CustomerId,
        key_type: KeyType,
        environment: Environment,
        options: KeyOptions,
    ) -> Result<Issued, IssueError> {
        if key_type == KeyType::Secret && (!options.allowed_origins.is_empty() || options.require_signed_user_id) {
            return Err(IssueError::PublishableOnly);
        }
        for entry in &options.allowed_origins {
            match origin::check_pattern(entry) {
                Ok(()) => {}
                Err(OriginPatternError::Malformed) => return Err(IssueError::InvalidOrigin(entry.clone())),
                Err(e) => return Err(IssueError::RefusedOrigin(entry.clone(), e)),
            }
        }
        let scopes = grant_scopes(key_type, options.scopes.as_deref())?;
        let found = self.store.get_customer(customer).await?;
        let primary_token = found.ok_or_else(|| IssueError::NoCustomer(customer.clone()))?.primary_token;
        let template = KeyTemplate {
            key_type,
            environment,
            customer_id: customer.clone(),
            primary_token,
            tier: options.tier.unwrap_or(Tier::Free),
            scopes,
            allowed_origins: options.allowed_origins,
            hmac_secret: options.require_signed_user_id.then(HmacSecret::generate),
            require_signed_user_id: options.require_signed_user_id,
            label: options.label,
            owner: options.owner,
        };
        self.create_from(&template).await
    }

    /// A replacement with the same attributes (the HMAC secret too: it lives with the
    /// customer's backend); the old key expires at `now + grace`, never later than an expiry
    /// it already had. Returns the new key and the old key's expiry.
    pub async fn roll_key(&self, old: &KeyRecord, grace_secs: i64) -> Result<(Issued, UnixTime), IssueError> {
        // Re-sealed for the new key (the seal is bound to its record); one that no longer
        // opens is dropped, and the new key fails closed like the old one.
        let hmac_secret = match &old.hmac_secret {
            Some(sealed) => self.sealer.key().await?.open(sealed, &old.key_hash),
            None => None,
        };
        let template = KeyTemplate {
            key_type: old.key_type,
            environment: old.environment,
            customer_id: old.customer_id.clone(),
            primary_token: old.primary_token.clone(),
            tier: old.tier,
            scopes: old.scopes.clone(),
            allowed_origins: old.allowed_origins.clone(),
            hmac_secret,
            require_signed_user_id: old.require_signed_user_id,
            label: old.label.clone(),
            owner: old.owner.clone(),
        };
        let issued = self.create_from(&template).await?;
        let grace_end = self.clock.now().plus_secs(grace_secs);
        let expires = old.expires_at.map_or(grace_end, |e| e.min(grace_end));
        self.store.set_key_expiry(&old.key_hash, expires).await?;
        Ok((issued, expires))
    }

    async fn create_from(&self, t: &KeyTemplate) -> Result<Issued, IssueError> {
        let sealer = match &t.hmac_secret {
            Some(_) => Some(self.sealer.key().await?),
            None => None,
        };
        // A prefix collision (1 in 62^6 per pair) just means drawing again.
        for _ in 0..5 {
            let key = ApiKey::generate(KeyKind::for_issue(t.key_type, t.environment));
            let sealed = match (sealer, &t.hmac_secret) {
                (Some(data_key), Some(secret)) => Some(data_key.seal(secret, &key.hash())?),
                _ => None,
            };
            let record = KeyRecord {
                key_hash: key.hash(),
                prefix: key.prefix(),
                key_type: t.key_type,
                environment: t.environment,
                customer_id: t.customer_id.clone(),
                primary_token: t.primary_token.clone(),
                tier: t.tier,
                scopes: t.scopes.clone(),
                allowed_origins: t.allowed_origins.clone(),
                require_signed_user_id: t.require_signed_user_id,
                hmac_secret: sealed,
                label: t.label.clone(),
                owner: t.owner.clone(),
                created_at: self.clock.now(),
                last_used_at: None,
                revoked_at: None,
                expires_at: None,
            };
            match self.store.create_key(&record).await {
                Ok(()) => return Ok(Issued { key, record, hmac_secret: t.hmac_secret.clone() }),
                Err(StoreError::AlreadyExists) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(IssueError::NoFreePrefix)
    }
}
