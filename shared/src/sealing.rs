//! Secrets at rest: a publishable key's HMAC secret is stored sealed with AES-256-GCM under a
//! data key held in Secrets Manager (`HATCHED_DATA_KEY_SECRET`), never in the table, so a
//! table dump or backup alone reveals none. The key record's hash is the associated data: a
//! sealed secret copied onto another key does not open.
//!
//! Only the functions that check signed user ids or issue their secrets (and the operator's
//! `hatchctl`) may load the data key, once per process and only when a request needs it: most
//! keys never require signed user ids, so a cold start does not pay for a second secret.

use aws_lc_rs::aead::{AES_256_GCM, Aad, NONCE_LEN, Nonce, RandomizedNonceKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD as B64;
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;

use crate::aws::AwsFailure;
use crate::domain::{HmacSecret, KeyHash, SealedSecret};
use crate::secrets::{AWSCURRENT, Secrets, Version};

/// Why the data key could not be loaded or used.
#[derive(Debug, thiserror::Error)]
pub enum SealingError {
    /// Secrets Manager unreachable, throttling or refusing.
    #[error(transparent)]
    Aws(#[from] AwsFailure),
    /// Missing configuration or unusable key material: a deployment bug.
    #[error("data key: {0}")]
    Broken(&'static str),
}

const VERSION: &str = "v1";

/// The AES-256-GCM data key (SHA-256 of the secret string, as for signing keys).
pub struct DataKey(RandomizedNonceKey);

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(..)")
    }
}

impl DataKey {
    pub fn from_secret(secret: &str) -> Result<DataKey, SealingError> {
        RandomizedNonceKey::new(&AES_256_GCM, &Sha256::digest(secret.as_bytes()))
            .map(DataKey)
            .map_err(|_| SealingError::Broken("rejected"))
    }

    /// `v1.<nonce>.<ciphertext+tag>`, bound to `owner`.
    pub fn seal(&self, secret: &HmacSecret, owner: &KeyHash) -> Result<SealedSecret, SealingError> {
        let mut data = secret.expose().as_bytes().to_vec();
        let nonce = self
            .0
            .seal_in_place_append_tag(Aad::from(owner.as_str().as_bytes()), &mut data)
            .map_err(|_| SealingError::Broken("sealing failed"))?;
        let nonce: &[u8; NONCE_LEN] = nonce.as_ref();
        Ok(SealedSecret::from_stored(format!("{VERSION}.{}.{}", B64.encode(nonce), B64.encode(&data))))
    }

    /// The secret, or `None` if the text is not ours, was tampered with, or belongs to
    /// another key.
    pub fn open(&self, sealed: &SealedSecret, owner: &KeyHash) -> Option<HmacSecret> {
        let mut parts = sealed.as_stored().split('.');
        let (Some(VERSION), Some(nonce), Some(data), None) = (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        let nonce = Nonce::try_assume_unique_for_key(&B64.decode(nonce).ok()?).ok()?;
        let mut data = B64.decode(data).ok()?;
        let plain = self.0.open_in_place(nonce, Aad::from(owner.as_str().as_bytes()), &mut data).ok()?;
        HmacSecret::new(String::from_utf8(plain.to_vec()).ok()?)
    }
}

/// Loads the data key from Secrets Manager on first use and keeps it for the process.
#[derive(Debug)]
pub struct Sealer {
    secrets: Secrets,
    secret_id: Option<String>,
    key: OnceCell<DataKey>,
}

impl Sealer {
    pub fn new(secrets: Secrets, secret_id: Option<String>) -> Sealer {
        Sealer { secrets, secret_id, key: OnceCell::new() }
    }

    pub async fn key(&self) -> Result<&DataKey, SealingError> {
        self.key
            .get_or_try_init(|| async {
                let id = self.secret_id()?;
                let text = self.secrets.get(id, Version::Stage(AWSCURRENT)).await?;
                DataKey::from_secret(&text.ok_or(SealingError::Broken("the secret has no value"))?)
            })
            .await
    }

    /// Operators: creates the secret with a random value unless it exists.
    pub async fn create_secret(&self) -> Result<bool, SealingError> {
        let value = crate::domain::key::random_base62(64);
        Ok(self.secrets.create(self.secret_id()?, &value).await?)
    }

    pub fn secret_name(&self) -> Option<&str> {
        self.secret_id.as_deref()
    }

    fn secret_id(&self) -> Result<&str, SealingError> {
        self.secret_id.as_deref().ok_or(SealingError::Broken("HATCHED_DATA_KEY_SECRET is not set"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ApiKey, KeyKind};

    #[test]
    fn sealed_secrets_open_only_for_their_key_and_hide_the_plaintext() {
        let key = DataKey::from_secret("data").unwrap();
        let (a, b) = (ApiKey::generate(KeyKind::Publishable).hash(), ApiKey::generate(KeyKind::Publishable).hash());
        let secret = HmacSecret::generate();
        let sealed = key.seal(&secret, &a).unwrap();
        assert!(!sealed.as_stored().contains(secret.expose()));
        assert_eq!(key.open(&sealed, &a).map(|s| s.expose().to_owned()), Some(secret.expose().to_owned()));
        assert!(key.open(&sealed, &b).is_none(), "bound to its key record");
        assert!(DataKey::from_secret("other").unwrap().open(&sealed, &a).is_none(), "another data key");
        let again = key.seal(&secret, &a).unwrap();
        assert_ne!(again, sealed, "a fresh nonce each time");
        let mut tampered = sealed.as_stored().to_owned();
        tampered.replace_range(tampered.len() - 2.., "AA");
        assert!(key.open(&SealedSecret::from_stored(tampered), &a).is_none());
        assert!(
            key.open(&SealedSecret::from_stored(secret.expose().to_owned()), &a).is_none(),
            "plaintext is not sealed"
        );
    }
}
