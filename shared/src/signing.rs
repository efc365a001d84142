//! Ed25519 signing keys from Secrets Manager. The secret's value is any string (what
//! CloudFormation generates); its SHA-256 is the Ed25519 seed, and the `kid` is the RFC 7638
//! thumbprint of the public key. `AWSCURRENT` signs; `AWSPREVIOUS` still verifies, so a
//! `PutSecretValue` rotation never breaks a token already handed out.

use std::sync::Arc;

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use aws_sdk_secretsmanager::Client;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;

use crate::aws::{AwsFailure, classify};
use crate::domain::UnixTime;
use crate::domain::time::Clock;
use crate::domain::token::{EMBED_AUDIENCE, SESSION_AUDIENCE, TokenClaims};

/// Why keys could not be loaded or used.
#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    /// Secrets Manager unreachable, throttling or refusing.
    #[error(transparent)]
    Aws(#[from] AwsFailure),
    /// Missing configuration or unusable key material: a deployment bug.
    #[error("signing keys: {0}")]
    Broken(String),
}

/// Keys are re-read from Secrets Manager at most this often…
pub const REFRESH_SECS: i64 = 300;
/// …or sooner when a token names a kid we do not know, but no more often than this.
pub const UNKNOWN_KID_REFRESH_SECS: i64 = 30;

/// One Ed25519 key, derived from a secret string.
pub struct SigningKey {
    kid: String,
    x: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({})", self.kid)
    }
}

impl SigningKey {
    pub fn from_secret(secret: &str) -> Result<SigningKey, SigningError> {
        let seed = Sha256::digest(secret.as_bytes());
        let internal = |what: &str| SigningError::Broken(format!("deriving the signing key: {what}"));
        let pair = Ed25519KeyPair::from_seed_unchecked(&seed).map_err(|_| internal("seed rejected"))?;
        let pkcs8 = pair.to_pkcs8().map_err(|_| internal("pkcs8"))?;
        let x = URL_SAFE_NO_PAD.encode(pair.public_key().as_ref());
        // RFC 7638 thumbprint: members in lexicographic order, no whitespace.
        let thumbprint = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
        let kid = URL_SAFE_NO_PAD.encode(Sha256::digest(thumbprint.as_bytes()));
        let decoding = DecodingKey::from_ed_components(&x).map_err(|_| internal("public key"))?;
        Ok(SigningKey { kid, x, encoding: EncodingKey::from_ed_der(pkcs8.as_ref()), decoding })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn jwk(&self) -> Value {
        json!({ "kty": "OKP", "crv": "Ed25519", "x": self.x, "kid": self.kid, "use": "sig", "alg": "EdDSA" })
    }

    pub fn sign<T: Serialize>(&self, claims: &T) -> Result<String, SigningError> {
        let mut header = Header::new(Algorithm::EdDSA);
        header.typ = Some("JWT".to_owned());
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).map_err(|e| SigningError::Broken(format!("signing: {e}")))
    }
}

/// The keys that may have signed a live token: current (signs) and previous (verifies).
#[derive(Debug)]
pub struct KeyRing {
    pub current: SigningKey,
    pub previous: Option<SigningKey>,
}

impl KeyRing {
    fn find(&self, kid: &str) -> Option<&SigningKey> {
        std::iter::once(&self.current).chain(self.previous.as_ref()).find(|k| k.kid == kid)
    }

    pub fn jwks(&self) -> Value {
        let keys: Vec<Value> =
            std::iter::once(&self.current).chain(self.previous.as_ref()).map(SigningKey::jwk).collect();
        json!({ "keys": keys })
    }

    /// Verifies signature, algorithm (EdDSA only, never from the token), issuer and audience,
    /// then the claim shape of the token's kind. Time is checked by the caller's clock.
    pub fn verify(&self, token: &str, issuer: &str) -> Option<TokenClaims> {
        let key = self.find(&token_kid(token)?)?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.leeway = 0;
        validation.set_audience(&[SESSION_AUDIENCE, EMBED_AUDIENCE]);
        validation.set_issuer(&[issuer]);
        validation.set_required_spec_claims(&["exp", "nbf", "iat", "aud", "iss", "sub"]);
        let data = jsonwebtoken::decode::<Value>(token, &key.decoding, &validation).ok()?;
        TokenClaims::from_json(data.claims)
    }
}

/// The `kid` of a token whose header says EdDSA; anything else is refused before any lookup.
fn token_kid(token: &str) -> Option<String> {
    let header = jsonwebtoken::decode_header(token).ok()?;
    (header.alg == Algorithm::EdDSA).then_some(header.kid?)
}

/// Loads the key ring from Secrets Manager on first use and refreshes it in the background
/// of requests: at most every [`REFRESH_SECS`], or on an unknown kid.
#[derive(Debug)]
pub struct Signer {
    client: Client,
    secret_id: Option<String>,
    clock: Clock,
    cache: Mutex<Option<Cached>>,
}

#[derive(Debug, Clone)]
struct Cached {
    ring: Arc<KeyRing>,
    loaded_at: UnixTime,
}

impl Signer {
    pub fn new(client: Client, secret_id: Option<String>, clock: Clock) -> Signer {
        Signer { client, secret_id, clock, cache: Mutex::new(None) }
    }

    /// Loads the keys ahead of the first request (DESIGN.md: once per cold start), so a
    /// function that signs or verifies answers its first request as fast as later ones. A
    /// failure is only logged: the first request tries again and answers 503 if it must.
    pub async fn preload(&self) {
        if let Err(e) = self.ring().await {
            tracing::warn!(cause = %e, "signing keys not loaded at start");
        }
    }

    /// The current ring, loading or refreshing it when due.
    pub async fn ring(&self) -> Result<Arc<KeyRing>, SigningError> {
        self.ring_fresher_than(REFRESH_SECS).await
    }

    /// The ring able to verify `kid` if Secrets Manager knows it (refreshes at most every
    /// [`UNKNOWN_KID_REFRESH_SECS`], so unknown kids cannot be used to hammer the secret).
    pub async fn ring_for(&self, token: &str) -> Result<Arc<KeyRing>, SigningError> {
        let ring = self.ring().await?;
        match token_kid(token) {
            Some(kid) if ring.find(&kid).is_none() => self.ring_fresher_than(UNKNOWN_KID_REFRESH_SECS).await,
            _ => Ok(ring),
        }
    }

    async fn ring_fresher_than(&self, max_age: i64) -> Result<Arc<KeyRing>, SigningError> {
        let now = self.clock.now();
        let mut cache = self.cache.lock().await;
        if let Some(c) = cache.as_ref().filter(|c| now.secs() - c.loaded_at.secs() < max_age) {
            return Ok(c.ring.clone());
        }
        match self.load().await {
            Ok(ring) => {
                let ring = Arc::new(ring);
                *cache = Some(Cached { ring: ring.clone(), loaded_at: now });
                Ok(ring)
            }
            // Keep serving the keys we have if a refresh fails; fail only with none.
            Err(e) => match cache.as_ref() {
                Some(c) => {
                    tracing::warn!(cause = %e, "signing keys not refreshed");
                    Ok(c.ring.clone())
                }
                None => Err(e),
            },
        }
    }

    /// Operators: creates the secret with a random value unless it exists. Returns whether
    /// it was created.
    pub async fn create_secret(&self) -> Result<bool, SigningError> {
        let id = self.secret_id()?;
        let result =
            self.client.create_secret().name(id).secret_string(crate::domain::key::random_base62(64)).send().await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|se| se.is_resource_exists_exception()) => Ok(false),
            Err(e) => Err(classify("secretsmanager:CreateSecret", e).into()),
        }
    }

    /// Operators: puts a new random version. Secrets Manager moves `AWSCURRENT` to it and
    /// `AWSPREVIOUS` to the version that was current. Returns the new ring (cache reset).
    pub async fn rotate(&self) -> Result<Arc<KeyRing>, SigningError> {
        let id = self.secret_id()?;
        self.client
            .put_secret_value()
            .secret_id(id)
            .secret_string(crate::domain::key::random_base62(64))
            .send()
            .await
            .map_err(|e| classify("secretsmanager:PutSecretValue", e))?;
        *self.cache.lock().await = None;
        self.ring().await
    }

    pub fn secret_name(&self) -> Option<&str> {
        self.secret_id.as_deref()
    }

    fn secret_id(&self) -> Result<&str, SigningError> {
        self.secret_id.as_deref().ok_or_else(|| SigningError::Broken("HATCHED_SIGNING_SECRET is not set".into()))
    }

    async fn load(&self) -> Result<KeyRing, SigningError> {
        let id = self.secret_id()?;
        let (current, previous) = futures::join!(self.fetch(id, "AWSCURRENT"), self.fetch(id, "AWSPREVIOUS"));
        let current =
            current?.ok_or_else(|| SigningError::Broken("the signing secret has no AWSCURRENT version".into()))?;
        Ok(KeyRing {
            current: SigningKey::from_secret(&current)?,
            previous: previous?.map(|p| SigningKey::from_secret(&p)).transpose()?,
        })
    }

    async fn fetch(&self, id: &str, stage: &str) -> Result<Option<String>, SigningError> {
        match self.client.get_secret_value().secret_id(id).version_stage(stage).send().await {
            Ok(out) => Ok(out.secret_string),
            Err(e) if e.as_service_error().is_some_and(|se| se.is_resource_not_found_exception()) => Ok(None),
            Err(e) => Err(classify("secretsmanager:GetSecretValue", e).into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derivation_is_deterministic_and_kids_differ() {
        let a = SigningKey::from_secret("alpha").unwrap();
        let a2 = SigningKey::from_secret("alpha").unwrap();
        let b = SigningKey::from_secret("beta").unwrap();
        assert_eq!(a.kid(), a2.kid());
        assert_ne!(a.kid(), b.kid());
        assert_eq!(a.jwk()["x"].as_str().unwrap().len(), 43);
    }

    #[test]
    fn sign_then_verify_and_refuse_other_keys() {
        use crate::domain::token::{EmbedClaims, Subject};
        use crate::domain::*;
        let who = Subject {
            customer: CustomerId::parse("acme").unwrap(),
            env: Environment::Test,
            buddy: BuddyId::parse("b").unwrap(),
            user: UserId::parse("u").unwrap(),
        };
        let ring = KeyRing {
            current: SigningKey::from_secret("now").unwrap(),
            previous: Some(SigningKey::from_secret("before").unwrap()),
        };
        let claims = EmbedClaims::new("iss", &who, "jti".into(), UnixTime::from_secs(100), 300);
        let token = ring.current.sign(&claims).unwrap();
        assert_eq!(ring.verify(&token, "iss"), Some(TokenClaims::Embed(claims.clone())));
        assert_eq!(ring.verify(&token, "other-issuer"), None);
        let old = ring.previous.as_ref().unwrap().sign(&claims).unwrap();
        assert!(ring.verify(&old, "iss").is_some(), "previous key still verifies");
        let stranger = SigningKey::from_secret("stranger").unwrap().sign(&claims).unwrap();
        assert_eq!(ring.verify(&stranger, "iss"), None);
    }
}
