//! Ed25519 signing keys. The signing secret (Secrets Manager) holds the whole key set
//! (`domain::signing_keys::KeySet`, JSON: kid, private seed, state, times) in one version, so
//! a minting function loads it with one `GetSecretValue` (`AWSCURRENT`) per cold start and
//! signs with its current key. The public half is published in the table
//! (`store::partition::SIGNING`); `jwks` and `introspect-token` read only that ([`Verifier`])
//! and hold no private material. The rotation (`crate::rotation`) moves keys through their
//! states with the Secrets Manager calls below. A secret that is not JSON is a key set of the
//! earlier format: any string, whose SHA-256 is the seed of the one current key.

use std::sync::Arc;

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;

use crate::aws::AwsFailure;
use crate::domain::UnixTime;
use crate::domain::portal::{PORTAL_AUDIENCE, PortalClaims};
use crate::domain::signing_keys::{KeyEntry, KeySet, KeyState, PublishedKey, PublishedKeys, SIGNER_MAX_STALE_SECS};
use crate::domain::time::Clock;
use crate::domain::token::{EMBED_AUDIENCE, SESSION_AUDIENCE, TokenClaims};
use crate::secrets::{AWSCURRENT, Secrets, Version};
use crate::store::{Store, StoreError};

/// Why keys could not be loaded or used.
#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    /// Secrets Manager or DynamoDB unreachable, throttling or refusing.
    #[error(transparent)]
    Aws(#[from] AwsFailure),
    /// Missing configuration or unusable key material: a deployment bug.
    #[error("signing keys: {0}")]
    Broken(String),
    /// An operator request refused (for example a promotion that must wait).
    #[error("{0}")]
    Refused(String),
}

impl From<StoreError> for SigningError {
    fn from(e: StoreError) -> SigningError {
        match e {
            StoreError::Aws(aws) => SigningError::Aws(aws),
            other => SigningError::Broken(other.to_string()),
        }
    }
}

/// Keys are re-read at most this often…
pub const REFRESH_SECS: i64 = crate::domain::signing_keys::KEY_CACHE_SECS;
/// …or sooner when a token names a kid we do not know, but no more often than this.
pub const UNKNOWN_KID_REFRESH_SECS: i64 = 30;

/// One Ed25519 key pair.
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

fn broken(what: impl std::fmt::Display) -> SigningError {
    SigningError::Broken(what.to_string())
}

/// RFC 7638 thumbprint of an Ed25519 public key (base64url `x`): members in lexicographic
/// order, no whitespace.
fn thumbprint(x: &str) -> String {
    let members = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
    URL_SAFE_NO_PAD.encode(Sha256::digest(members.as_bytes()))
}

impl SigningKey {
    pub fn from_seed(seed: &[u8]) -> Result<SigningKey, SigningError> {
        let internal = |what: &str| broken(format!("deriving the signing key: {what}"));
        let pair = Ed25519KeyPair::from_seed_unchecked(seed).map_err(|_| internal("seed rejected"))?;
        let pkcs8 = pair.to_pkcs8().map_err(|_| internal("pkcs8"))?;
        let x = URL_SAFE_NO_PAD.encode(pair.public_key().as_ref());
        let kid = thumbprint(&x);
        let decoding = DecodingKey::from_ed_components(&x).map_err(|_| internal("public key"))?;
        Ok(SigningKey { kid, x, encoding: EncodingKey::from_ed_der(pkcs8.as_ref()), decoding })
    }

    /// The earlier format: any string, whose SHA-256 is the seed.
    pub fn from_secret(secret: &str) -> Result<SigningKey, SigningError> {
        SigningKey::from_seed(&Sha256::digest(secret.as_bytes()))
    }

    /// The key of a set entry; its stored kid must be the key's own.
    pub fn from_entry(entry: &KeyEntry) -> Result<SigningKey, SigningError> {
        let seed = URL_SAFE_NO_PAD
            .decode(&entry.seed)
            .map_err(|_| broken(format!("key {}: seed is not base64url", entry.kid)))?;
        if seed.len() != 32 {
            return Err(broken(format!("key {}: seed is not 32 bytes", entry.kid)));
        }
        let key = SigningKey::from_seed(&seed)?;
        if key.kid != entry.kid {
            return Err(broken(format!("key {}: the seed derives another kid", entry.kid)));
        }
        Ok(key)
    }

    /// A new key from the OS generator, as a standby entry of a set.
    pub fn generate(now: UnixTime) -> Result<KeyEntry, SigningError> {
        let mut seed = [0u8; 32];
        aws_lc_rs::rand::fill(&mut seed).map_err(|_| broken("the OS random generator failed"))?;
        let key = SigningKey::from_seed(&seed)?;
        Ok(KeyEntry {
            kid: key.kid,
            seed: URL_SAFE_NO_PAD.encode(seed),
            state: KeyState::Standby,
            created_at: now.secs(),
            current_since: None,
            stopped_at: None,
        })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn x(&self) -> &str {
        &self.x
    }

    pub fn jwk(&self) -> Value {
        jwk(&self.kid, &self.x)
    }

    pub fn sign<T: Serialize>(&self, claims: &T) -> Result<String, SigningError> {
        let mut header = Header::new(Algorithm::EdDSA);
        header.typ = Some("JWT".to_owned());
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).map_err(|e| broken(format!("signing: {e}")))
    }
}

fn jwk(kid: &str, x: &str) -> Value {
    json!({ "kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "use": "sig", "alg": "EdDSA" })
}

/// Parses a secret value: a key set (JSON), or the earlier format (one current key).
pub fn parse_key_set(secret: &str) -> Result<KeySet, SigningError> {
    if secret.trim_start().starts_with('{') {
        let set: KeySet = serde_json::from_str(secret).map_err(|e| broken(format!("key set: {e}")))?;
        set.validate().map_err(|e| broken(format!("key set: {e}")))?;
        return Ok(set);
    }
    Ok(KeySet {
        version: crate::domain::signing_keys::KEY_SET_VERSION,
        keys: vec![legacy_entry(secret, KeyState::Current)?],
        built_from: None,
    })
}

/// A key of the earlier format as a set entry.
pub fn legacy_entry(secret: &str, state: KeyState) -> Result<KeyEntry, SigningError> {
    let seed = Sha256::digest(secret.as_bytes());
    let key = SigningKey::from_seed(&seed)?;
    Ok(KeyEntry {
        kid: key.kid,
        seed: URL_SAFE_NO_PAD.encode(seed),
        state,
        created_at: 0,
        current_since: None,
        stopped_at: None,
    })
}

/// The public keys of a set, ready to publish.
pub fn public_keys(set: &KeySet) -> Result<Vec<(String, String, KeyState)>, SigningError> {
    set.keys.iter().map(|e| SigningKey::from_entry(e).map(|k| (k.kid, k.x, e.state))).collect()
}

/// What a minting function holds: the key that signs, from the set in `AWSCURRENT`.
#[derive(Debug)]
pub struct KeyRing {
    pub current: SigningKey,
    pub set: KeySet,
}

impl KeyRing {
    pub fn from_set(set: KeySet) -> Result<KeyRing, SigningError> {
        let entry = set.current().ok_or_else(|| broken("the key set has no current key"))?;
        Ok(KeyRing { current: SigningKey::from_entry(entry)?, set })
    }
}

/// Public keys that verify tokens: the published set (no private material).
#[derive(Debug)]
pub struct PublicKeys {
    keys: Vec<(PublishedKey, DecodingKey)>,
}

impl PublicKeys {
    pub fn from_published(published: &PublishedKeys) -> Result<PublicKeys, SigningError> {
        let keys = published
            .keys
            .iter()
            .map(|k| {
                let decoding =
                    DecodingKey::from_ed_components(&k.x).map_err(|_| broken(format!("public key {}", k.kid)))?;
                Ok((k.clone(), decoding))
            })
            .collect::<Result<_, SigningError>>()?;
        Ok(PublicKeys { keys })
    }

    /// These keys as current keys published long ago (tests, benchmarks).
    pub fn of(keys: &[&SigningKey]) -> PublicKeys {
        PublicKeys {
            keys: keys
                .iter()
                .map(|k| {
                    let published = PublishedKey {
                        kid: k.kid.clone(),
                        x: k.x.clone(),
                        state: KeyState::Current,
                        published_at: 0,
                        stopped_at: None,
                    };
                    (published, k.decoding.clone())
                })
                .collect(),
        }
    }

    fn find(&self, kid: &str) -> Option<&(PublishedKey, DecodingKey)> {
        self.keys.iter().find(|(k, _)| k.kid == kid)
    }

    /// Whether a token names a key these keys may verify (a standby may have been promoted
    /// since they were read: worth a refresh, as an unknown kid is).
    fn settled(&self, kid: &str) -> bool {
        self.find(kid).is_some_and(|(k, _)| k.state != KeyState::Standby)
    }

    pub fn kids(&self) -> Vec<(&str, KeyState)> {
        self.keys.iter().map(|(k, _)| (k.kid.as_str(), k.state)).collect()
    }

    /// The JWK Set: current, previous and standby keys.
    pub fn jwks(&self) -> Value {
        let keys: Vec<Value> = self.keys.iter().map(|(k, _)| jwk(&k.kid, &k.x)).collect();
        json!({ "keys": keys })
    }

    /// Verifies signature, algorithm (EdDSA only, never from the token), issuer and audience,
    /// then the claim shape of the token's kind, then that the key may have signed it (a
    /// standby only tokens issued after it could sign). Time is checked by the caller's clock.
    pub fn verify(&self, token: &str, issuer: &str) -> Option<TokenClaims> {
        let required = ["exp", "nbf", "iat", "aud", "iss", "sub"];
        let (key, claims) = self.decode(token, issuer, &[SESSION_AUDIENCE, EMBED_AUDIENCE], &required)?;
        let claims = TokenClaims::from_json(claims)?;
        key.may_have_signed(claims.issued_at()).then_some(claims)
    }

    /// [`PublicKeys::verify`] for a key portal token (its own audience and claims).
    pub fn verify_portal(&self, token: &str, issuer: &str) -> Option<PortalClaims> {
        let (key, claims) = self.decode(token, issuer, &[PORTAL_AUDIENCE], &["exp", "iat", "aud", "iss"])?;
        let claims = PortalClaims::from_json(claims)?;
        key.may_have_signed(claims.iat).then_some(claims)
    }

    fn decode(
        &self,
        token: &str,
        issuer: &str,
        audiences: &[&str],
        required: &[&str],
    ) -> Option<(&PublishedKey, Value)> {
        let (key, decoding) = self.find(&token_kid(token)?)?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.leeway = 0;
        validation.set_audience(audiences);
        validation.set_issuer(&[issuer]);
        validation.set_required_spec_claims(required);
        let data = jsonwebtoken::decode::<Value>(token, decoding, &validation).ok()?;
        Some((key, data.claims))
    }

    /// Verifies a signature alone (the rotation's `testSecret`).
    pub fn verify_signature(&self, token: &str) -> bool {
        let Some((_, decoding)) = token_kid(token).and_then(|kid| self.find(&kid)) else {
            return false;
        };
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.validate_exp = false;
        validation.validate_aud = false;
        validation.set_required_spec_claims::<&str>(&[]);
        jsonwebtoken::decode::<Value>(token, decoding, &validation).is_ok()
    }
}

/// The `kid` of a token whose header says EdDSA; anything else is refused before any lookup.
fn token_kid(token: &str) -> Option<String> {
    let header = jsonwebtoken::decode_header(token).ok()?;
    (header.alg == Algorithm::EdDSA).then_some(header.kid?)
}

/// A value cached per instance, refreshed at most every [`REFRESH_SECS`], or every
/// [`UNKNOWN_KID_REFRESH_SECS`] on demand; a failed refresh keeps what is held, up to
/// `max_stale` seconds after it was read (then the failure is the answer: fail closed).
#[derive(Debug)]
struct Cache<T> {
    clock: Clock,
    max_stale: Option<i64>,
    held: Mutex<Option<(Arc<T>, UnixTime)>>,
}

impl<T> Cache<T> {
    fn new(clock: Clock, max_stale: Option<i64>) -> Cache<T> {
        Cache { clock, max_stale, held: Mutex::new(None) }
    }

    async fn get<F, Fut>(&self, max_age: i64, load: F) -> Result<Arc<T>, SigningError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<T, SigningError>>,
    {
        let now = self.clock.now();
        let mut held = self.held.lock().await;
        if let Some((value, _)) = held.as_ref().filter(|(_, at)| now.secs() - at.secs() < max_age) {
            return Ok(value.clone());
        }
        // Boxed: the SDK futures are large, and a handler's future holds this one.
        match Box::pin(load()).await {
            Ok(value) => {
                let value = Arc::new(value);
                *held = Some((value.clone(), now));
                Ok(value)
            }
            Err(e) => match held.as_ref() {
                Some((value, at)) if self.max_stale.is_none_or(|limit| now.secs() - at.secs() < limit) => {
                    tracing::warn!(cause = %e, held_secs = now.secs() - at.secs(), "signing keys not refreshed");
                    Ok(value.clone())
                }
                Some((_, at)) => {
                    tracing::error!(cause = %e, held_secs = now.secs() - at.secs(), "signing keys too stale to use");
                    Err(e)
                }
                None => Err(e),
            },
        }
    }

    async fn clear(&self) {
        *self.held.lock().await = None;
    }
}

/// The minting functions' keys: the set in `AWSCURRENT`, loaded on first use (one
/// `GetSecretValue`) and refreshed at most every [`REFRESH_SECS`]. When a refresh fails the
/// held keys still sign, but only until they are [`SIGNER_MAX_STALE_SECS`] old: an instance
/// cut off from Secrets Manager must not sign for ever with a key that may have been retired
/// in an emergency since (its tokens would not verify, or worse, keep a leaked key in use).
#[derive(Debug)]
pub struct Signer {
    secrets: Secrets,
    secret_id: Option<String>,
    cache: Cache<KeyRing>,
}

impl Signer {
    pub fn new(secrets: Secrets, secret_id: Option<String>, clock: Clock) -> Signer {
        Signer { secrets, secret_id, cache: Cache::new(clock, Some(SIGNER_MAX_STALE_SECS)) }
    }

    /// Loads the keys ahead of the first request (DESIGN.md: once per cold start), so a
    /// function that signs answers its first request as fast as later ones. A failure is only
    /// logged: the first request tries again and answers 503 if it must.
    pub async fn preload(&self) {
        if let Err(e) = self.ring().await {
            tracing::warn!(cause = %e, "signing keys not loaded at start");
        }
    }

    /// The current ring, loading or refreshing it when due.
    pub async fn ring(&self) -> Result<Arc<KeyRing>, SigningError> {
        self.cache
            .get(REFRESH_SECS, || async {
                let id = self.secret_id()?;
                let value = self
                    .secrets
                    .get(id, Version::Stage(AWSCURRENT))
                    .await?
                    .ok_or_else(|| broken("the signing secret has no AWSCURRENT version"))?;
                KeyRing::from_set(parse_key_set(&value)?)
            })
            .await
    }

    /// Forgets the cached keys (after this instance rotated them).
    pub async fn invalidate(&self) {
        self.cache.clear().await;
    }

    pub fn secret_name(&self) -> Option<&str> {
        self.secret_id.as_deref()
    }

    pub fn secret_id(&self) -> Result<&str, SigningError> {
        self.secret_id.as_deref().ok_or_else(|| broken("HATCHED_SIGNING_SECRET is not set"))
    }
}

/// The verifying functions' keys: the published public set from the table (one `GetItem`),
/// refreshed at most every [`REFRESH_SECS`], or every [`UNKNOWN_KID_REFRESH_SECS`] when a token
/// names a kid it does not know (or a standby that may have been promoted since).
#[derive(Debug)]
pub struct Verifier {
    store: Store,
    cache: Cache<PublicKeys>,
}

impl Verifier {
    pub fn new(store: Store, clock: Clock) -> Verifier {
        // No bound: `jwks` serving the last keys it read beats serving nothing to verifiers
        // whose tokens were signed by those keys; minting is where staleness is bounded.
        Verifier { store, cache: Cache::new(clock, None) }
    }

    /// Loads the public keys during init; a failure is only logged.
    pub async fn preload(&self) {
        if let Err(e) = self.keys().await {
            tracing::warn!(cause = %e, "public signing keys not loaded at start");
        }
    }

    pub async fn keys(&self) -> Result<Arc<PublicKeys>, SigningError> {
        self.fresher_than(REFRESH_SECS).await
    }

    /// Verifies `token` (see [`PublicKeys::verify`]). When the held keys refuse it and it names
    /// a kid they do not know, or one they hold as standby (it may have been promoted early,
    /// in an emergency), the keys are read again (at most every [`UNKNOWN_KID_REFRESH_SECS`],
    /// so garbage kids cannot hammer the table) and asked once more.
    pub async fn verify(&self, token: &str, issuer: &str) -> Result<Option<TokenClaims>, SigningError> {
        self.verify_with(token, |keys| keys.verify(token, issuer)).await
    }

    /// [`Verifier::verify`] for a key portal token.
    pub async fn verify_portal(&self, token: &str, issuer: &str) -> Result<Option<PortalClaims>, SigningError> {
        self.verify_with(token, |keys| keys.verify_portal(token, issuer)).await
    }

    /// `check` against the held keys, then once more against fresher ones if the token names
    /// a kid they do not hold settled.
    async fn verify_with<T>(
        &self,
        token: &str,
        check: impl Fn(&PublicKeys) -> Option<T>,
    ) -> Result<Option<T>, SigningError> {
        let keys = self.keys().await?;
        if let Some(claims) = check(&keys) {
            return Ok(Some(claims));
        }
        match token_kid(token) {
            Some(kid) if !keys.settled(&kid) => Ok(check(&*self.fresher_than(UNKNOWN_KID_REFRESH_SECS).await?)),
            _ => Ok(None),
        }
    }

    pub async fn invalidate(&self) {
        self.cache.clear().await;
    }

    async fn fresher_than(&self, max_age: i64) -> Result<Arc<PublicKeys>, SigningError> {
        self.cache
            .get(max_age, || async {
                let published =
                    self.store.published_keys().await?.ok_or_else(|| broken("no signing keys are published"))?;
                PublicKeys::from_published(&published)
            })
            .await
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

    fn claims() -> crate::domain::token::EmbedClaims {
        use crate::domain::token::{EmbedClaims, Subject};
        use crate::domain::*;
        let who = Subject {
            customer: CustomerId::parse("acme").unwrap(),
            env: Environment::Test,
            buddy: BuddyId::parse("b").unwrap(),
            user: UserId::parse("u").unwrap(),
        };
        EmbedClaims::new("iss", &who, "jti".into(), UnixTime::from_secs(10_000), 300)
    }

    #[test]
    fn sign_then_verify_and_refuse_other_keys() {
        let (now, before) = (SigningKey::from_secret("now").unwrap(), SigningKey::from_secret("before").unwrap());
        let keys = PublicKeys::of(&[&now, &before]);
        let claims = claims();
        let token = now.sign(&claims).unwrap();
        assert_eq!(keys.verify(&token, "iss"), Some(TokenClaims::Embed(claims.clone())));
        assert_eq!(keys.verify(&token, "other-issuer"), None);
        assert!(keys.verify(&before.sign(&claims).unwrap(), "iss").is_some(), "previous key still verifies");
        let stranger = SigningKey::from_secret("stranger").unwrap().sign(&claims).unwrap();
        assert_eq!(keys.verify(&stranger, "iss"), None);
    }

    #[test]
    fn key_sets_round_trip_and_legacy_secrets_are_one_current_key() {
        let now = UnixTime::from_secs(5);
        let set = KeySet::first(SigningKey::generate(now).unwrap(), SigningKey::generate(now).unwrap(), 5);
        let text = serde_json::to_string(&set).unwrap();
        assert_eq!(parse_key_set(&text).unwrap(), set);
        let ring = KeyRing::from_set(set.clone()).unwrap();
        assert_eq!(ring.current.kid(), set.keys[0].kid);
        let legacy = parse_key_set("any random string").unwrap();
        assert_eq!(legacy.current().unwrap().kid, SigningKey::from_secret("any random string").unwrap().kid());
        assert!(parse_key_set("{not json").is_err());
        let mut forged = set.clone();
        forged.keys[0].kid = set.keys[1].kid.clone();
        forged.keys[1].kid = "other".into();
        assert!(KeyRing::from_set(forged).is_err(), "a seed must derive its kid");
    }

    #[test]
    fn a_stale_copy_of_a_standby_verifies_only_tokens_issued_after_it_could_sign() {
        use crate::domain::signing_keys::PUBLISH_BEFORE_SIGNING_SECS;
        let entry = SigningKey::generate(UnixTime::from_secs(0)).unwrap();
        let key = SigningKey::from_entry(&entry).unwrap();
        let published = PublishedKeys {
            keys: vec![PublishedKey {
                kid: key.kid.clone(),
                x: key.x.clone(),
                state: KeyState::Standby,
                published_at: 10_000 - PUBLISH_BEFORE_SIGNING_SECS,
                stopped_at: None,
            }],
            updated_at: 10_000 - PUBLISH_BEFORE_SIGNING_SECS,
        };
        let keys = PublicKeys::from_published(&published).unwrap();
        assert!(keys.verify(&key.sign(&claims()).unwrap(), "iss").is_some(), "iat 10000 = published + the wait");
        let mut early = claims();
        early.iat = 9_999;
        assert!(keys.verify(&key.sign(&early).unwrap(), "iss").is_none());
    }

    #[tokio::test]
    async fn a_failed_refresh_serves_the_held_keys_only_for_a_bounded_time() {
        let clock = Clock::default();
        clock.freeze();
        let cache: Cache<u32> = Cache::new(clock.clone(), Some(SIGNER_MAX_STALE_SECS));
        let fail = || async { Err::<u32, _>(broken("Secrets Manager unreachable")) };
        assert_eq!(*cache.get(REFRESH_SECS, || async { Ok(7) }).await.unwrap(), 7);
        clock.advance(REFRESH_SECS);
        assert_eq!(*cache.get(REFRESH_SECS, fail).await.unwrap(), 7, "stale but within the bound");
        clock.advance(SIGNER_MAX_STALE_SECS - REFRESH_SECS - 1);
        assert_eq!(*cache.get(REFRESH_SECS, fail).await.unwrap(), 7);
        clock.advance(1);
        assert!(cache.get(REFRESH_SECS, fail).await.is_err(), "fails closed past the bound");
        assert_eq!(*cache.get(REFRESH_SECS, || async { Ok(8) }).await.unwrap(), 8, "and recovers");
        let unbounded: Cache<u32> = Cache::new(clock.clone(), None);
        unbounded.get(REFRESH_SECS, || async { Ok(1) }).await.unwrap();
        clock.advance(100 * SIGNER_MAX_STALE_SECS);
        assert_eq!(*unbounded.get(REFRESH_SECS, fail).await.unwrap(), 1, "verifiers keep what they hold");
    }
}
