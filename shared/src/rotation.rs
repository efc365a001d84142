//! The signing-key rotation, in Secrets Manager's four steps. The rotation function
//! (`functions/rotate-signing-key`) runs them as Secrets Manager invokes it; `hatchctl
//! signing-key rotate` runs the same four in a row. Every step is idempotent for its
//! `ClientRequestToken`, so a retried or resumed rotation does no harm:
//!
//! - `createSecret`: the next key set, computed from `AWSCURRENT` by
//!   [`KeySet::next`] (standby → current only once it has been published for 10 minutes;
//!   expired previous keys leave; a fresh standby), put as version `token`, staged `AWSPENDING`.
//!   A young standby makes the rotation a no-op that only drops expired keys: it "waits".
//! - `setSecret`: publishes the pending set's public keys in the table.
//! - `testSecret`: every pending seed derives its kid; the pending current key signs a probe
//!   that the *published* keys verify.
//! - `finishSecret`: moves `AWSCURRENT` to the pending version (after checking it again).

use serde::Serialize;
use serde_json::json;

use std::sync::Arc;

use crate::domain::UnixTime;
use crate::domain::signing_keys::{KeySet, KeyState, Outcome, PublishedKeys, RotationMode};
use crate::domain::time::Clock;
use crate::secrets::Secrets;
use crate::secrets::{AWSCURRENT, AWSPENDING, AWSPREVIOUS, Version};
use crate::signing::{KeyRing, PublicKeys, SigningError, SigningKey, legacy_entry, parse_key_set, public_keys};
use crate::signing::{Signer, Verifier};
use crate::store::Store;

/// One step of the Secrets Manager rotation contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    CreateSecret,
    SetSecret,
    TestSecret,
    FinishSecret,
}

impl Step {
    pub const ALL: [Step; 4] = [Step::CreateSecret, Step::SetSecret, Step::TestSecret, Step::FinishSecret];

    /// The `Step` field of the event Secrets Manager sends.
    pub fn parse(text: &str) -> Option<Step> {
        Step::ALL.into_iter().find(|s| s.as_str() == text)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Step::CreateSecret => "createSecret",
            Step::SetSecret => "setSecret",
            Step::TestSecret => "testSecret",
            Step::FinishSecret => "finishSecret",
        }
    }
}

/// The rotation service: the four steps of AWS's rotation-function protocol, and what
/// operators run through them (`hatchctl signing-key`).
#[derive(Debug, Clone)]
pub struct Rotation {
    store: Store,
    secrets: Secrets,
    signer: Arc<Signer>,
    verifier: Arc<Verifier>,
    clock: Clock,
}

impl Rotation {
    pub fn new(store: Store, secrets: Secrets, signer: Arc<Signer>, verifier: Arc<Verifier>, clock: Clock) -> Rotation {
        Rotation { store, secrets, signer, verifier, clock }
    }

    /// The signing secret this function rotates (its configuration).
    pub fn secret_id(&self) -> Result<&str, SigningError> {
        self.signer.secret_id()
    }
}

fn broken(what: impl std::fmt::Display) -> SigningError {
    SigningError::Broken(what.to_string())
}

impl Rotation {
    /// Runs one step for the rotation `token` of the secret `secret_id`. `mode` matters only to
    /// `createSecret` (Secrets Manager's own runs are [`RotationMode::Scheduled`]).
    pub async fn run_step(
        &self,
        secret_id: &str,
        step: Step,
        token: &str,
        mode: RotationMode,
    ) -> Result<String, SigningError> {
        if token.is_empty() {
            return Err(broken("the rotation has no ClientRequestToken"));
        }
        let result = match step {
            Step::CreateSecret => self.create_secret(secret_id, token, mode).await,
            Step::SetSecret => self.set_secret(secret_id, token).await,
            Step::TestSecret => self.test_secret(secret_id, token).await,
            Step::FinishSecret => self.finish_secret(secret_id, token).await,
        };
        match &result {
            Ok(what) => tracing::info!(step = step.as_str(), token, what = what.as_str(), "rotation step"),
            Err(e) => tracing::warn!(step = step.as_str(), token, cause = %e, "rotation step failed"),
        }
        result
    }

    async fn create_secret(&self, id: &str, token: &str, mode: RotationMode) -> Result<String, SigningError> {
        let secrets = &self.secrets;
        let stages = secrets.stages(id).await?;
        if stages.get(token).is_some_and(|s| s.iter().any(|l| l == AWSCURRENT)) {
            return Ok("version already current".into());
        }
        if secrets.get(id, Version::Id(token, AWSPENDING)).await?.is_some() {
            return Ok("pending set already created".into());
        }
        let set = self.current_set(id).await?;
        let published = self.store.published_keys().await?;
        let now = self.clock.now();
        // `next` takes at most one fresh key.
        let fresh = SigningKey::generate(now)?;
        let (next, outcome) =
            set.next(now.secs(), mode, |kid| published.as_ref().and_then(|p| p.published_at(kid)), || fresh.clone());
        next.validate().map_err(|e| broken(format!("next key set: {e}")))?;
        // A pending version left by an interrupted rotation gives way to this one.
        for (version, labels) in &stages {
            if version != token && labels.iter().any(|l| l == AWSPENDING) {
                secrets.move_stage(id, AWSPENDING, None, Some(version)).await?;
            }
        }
        let value = serde_json::to_string(&next).map_err(|e| broken(format!("key set: {e}")))?;
        secrets.put_pending(id, token, &value).await?;
        Ok(describe(&outcome))
    }

    /// The set in `AWSCURRENT`. A secret of the earlier format becomes a set with its key
    /// current and the `AWSPREVIOUS` key (if any) previous, so its tokens keep verifying.
    async fn current_set(&self, id: &str) -> Result<KeySet, SigningError> {
        let value = self
            .secrets
            .get(id, Version::Stage(AWSCURRENT))
            .await?
            .ok_or_else(|| broken("the signing secret has no AWSCURRENT version"))?;
        let mut set = parse_key_set(&value)?;
        if !value.trim_start().starts_with('{') {
            let now = self.clock.now().secs();
            if let Some(k) = set.keys.first_mut() {
                k.current_since = Some(now);
            }
            if let Some(old) =
                self.secrets.get(id, Version::Stage(AWSPREVIOUS)).await?.filter(|v| !v.trim_start().starts_with('{'))
            {
                let mut previous = legacy_entry(&old, KeyState::Previous)?;
                previous.stopped_at = Some(now);
                if previous.kid != set.keys.first().map(|k| k.kid.clone()).unwrap_or_default() {
                    set.keys.push(previous);
                }
            }
        }
        Ok(set)
    }
}

fn describe(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Promoted { from, to, emergency: false } => format!("{to} signs next; {from} becomes previous"),
        Outcome::Promoted { from, to, emergency: true } => format!("{to} signs next; {from} is retired at once"),
        Outcome::Waited { standby, remaining_secs } => {
            format!("no promotion: standby {standby} may sign in {remaining_secs} s")
        }
        Outcome::StandbyAdded => "a standby key was added".into(),
    }
}

impl Rotation {
    async fn pending_set(&self, id: &str, token: &str) -> Result<KeySet, SigningError> {
        let value = self
            .secrets
            .get(id, Version::Id(token, AWSPENDING))
            .await?
            .ok_or_else(|| broken(format!("no AWSPENDING version {token}")))?;
        parse_key_set(&value)
    }

    /// Whether the rotation `token` already finished (a retried step then has nothing to do).
    async fn finished(&self, id: &str, token: &str) -> Result<bool, SigningError> {
        let stages = self.secrets.stages(id).await?;
        Ok(stages.get(token).is_some_and(|labels| labels.iter().any(|l| l == AWSCURRENT)))
    }

    async fn set_secret(&self, id: &str, token: &str) -> Result<String, SigningError> {
        if self.finished(id, token).await? {
            return Ok("version already current".into());
        }
        let set = self.pending_set(id, token).await?;
        self.publish(&set).await
    }

    /// Publishes a set's public keys (a kid published before keeps its first time); writes
    /// nothing when the table already shows exactly these keys in these states.
    pub async fn publish(&self, set: &KeySet) -> Result<String, SigningError> {
        let keys = public_keys(set)?;
        let before = self.store.published_keys().await?;
        let same = before.as_ref().is_some_and(|b| {
            b.keys.len() == keys.len()
                && keys.iter().all(|(kid, x, state)| b.find(kid).is_some_and(|p| &p.x == x && p.state == *state))
        });
        if same {
            return Ok("already published".into());
        }
        let published = PublishedKeys::publish(keys, before.as_ref(), self.clock.now().secs());
        self.store.publish_keys(&published).await?;
        self.verifier.invalidate().await;
        Ok(format!("published {} keys", published.keys.len()))
    }

    async fn test_secret(&self, id: &str, token: &str) -> Result<String, SigningError> {
        if self.finished(id, token).await? {
            return Ok("version already current".into());
        }
        let set = self.pending_set(id, token).await?;
        // Every seed derives its kid (KeyRing checks the current one, public_keys all of them).
        public_keys(&set)?;
        let ring = KeyRing::from_set(set)?;
        let published = self.store.published_keys().await?.ok_or_else(|| broken("testSecret: nothing is published"))?;
        if published.find(ring.current.kid()).is_none_or(|k| k.state != KeyState::Current) {
            return Err(broken("testSecret: the pending current key is not published as current"));
        }
        let probe = ring.current.sign(&json!({ "probe": token, "iat": self.clock.now().secs() }))?;
        if !PublicKeys::from_published(&published)?.verify_signature(&probe) {
            return Err(broken("testSecret: the published keys do not verify the pending key's signature"));
        }
        Ok("the pending key signs and the published keys verify".into())
    }

    async fn finish_secret(&self, id: &str, token: &str) -> Result<String, SigningError> {
        let (secrets, signer) = (&self.secrets, &self.signer);
        let stages = secrets.stages(id).await?;
        let current = stages.iter().find(|(_, labels)| labels.iter().any(|l| l == AWSCURRENT)).map(|(v, _)| v.clone());
        if current.as_deref() == Some(token) {
            return Ok("version already current".into());
        }
        // Never promote a set that does not hold up (a failed or skipped testSecret).
        let set = self.pending_set(id, token).await?;
        public_keys(&set)?;
        KeyRing::from_set(set)?;
        secrets.move_stage(id, AWSCURRENT, Some(token), current.as_deref()).await?;
        if stages.get(token).is_some_and(|l| l.iter().any(|l| l == AWSPENDING)) {
            secrets.move_stage(id, AWSPENDING, None, Some(token)).await?;
        }
        signer.invalidate().await;
        Ok("the pending set is current".into())
    }
}

/// A rotation as an operator runs it: the four steps with a fresh token.
#[derive(Debug, Serialize)]
pub struct Rotated {
    pub token: String,
    pub outcome: String,
    pub kid: String,
    pub keys: Vec<KeyView>,
}

impl Rotation {
    /// `hatchctl signing-key rotate`: refuses a scheduled promotion of a standby younger than 10
    /// minutes (`Force` skips that wait, `Emergency` retires the current key at once).
    pub async fn rotate(&self, mode: RotationMode) -> Result<Rotated, SigningError> {
        let id = self.signer.secret_id()?.to_owned();
        let now = self.clock.now().secs();
        let set = self.current_set(&id).await?;
        let published = self.store.published_keys().await?;
        let wait = set.standby_wait(now, |kid| published.as_ref().and_then(|p| p.published_at(kid)));
        match (mode, wait) {
            (RotationMode::Scheduled, Some(remaining)) if remaining > 0 => {
                let kid = set.standby().map(|k| k.kid.clone()).unwrap_or_default();
                return Err(SigningError::Refused(format!(
                    "the standby key {kid} was published less than 10 minutes ago; verifiers that cached the JWKS \
                 may not know it yet. Try again in {remaining} s (or --force in development)"
                )));
            }
            (RotationMode::Force, _) => {
                tracing::warn!("forced signing-key rotation: the standby's publication wait is skipped")
            }
            (RotationMode::Emergency, _) => {
                tracing::warn!(
                    "emergency signing-key rotation: the current key is retired and its tokens stop verifying"
                )
            }
            _ => {}
        }
        let token = rotation_token();
        let mut outcome = String::new();
        for step in Step::ALL {
            let what = self.run_step(&id, step, &token, mode).await?;
            if step == Step::CreateSecret {
                outcome = what;
            }
        }
        let (kid, keys) = self.show().await?;
        Ok(Rotated { token, outcome, kid, keys })
    }
}

/// A `ClientRequestToken` (a UUID-shaped random string, as Secrets Manager's own).
pub fn rotation_token() -> String {
    let mut bytes = [0u8; 16];
    // The OS generator; on the impossible failure, a base62 token of the same length.
    if aws_lc_rs::rand::fill(&mut bytes).is_err() {
        return crate::domain::key::random_base62(32);
    }
    let h = hex::encode(bytes);
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

impl Rotation {
    /// `hatchctl signing-key create`: the secret with a first set (a current key and a standby),
    /// and its public keys published. Returns whether the secret was created. An existing secret
    /// is left as it is, and its keys published if the table has none.
    pub async fn create_first(&self) -> Result<bool, SigningError> {
        let id = self.signer.secret_id()?.to_owned();
        let now = self.clock.now();
        let set = KeySet::first(SigningKey::generate(now)?, SigningKey::generate(now)?, now.secs());
        let value = serde_json::to_string(&set).map_err(|e| broken(format!("key set: {e}")))?;
        let created = self.secrets.create(&id, &value).await?;
        if created {
            self.publish(&set).await?;
        } else if self.store.published_keys().await?.is_none() {
            self.publish(&self.current_set(&id).await?).await?;
        }
        self.signer.invalidate().await;
        Ok(created)
    }
}

/// One key as `hatchctl signing-key show` lists it: never private material.
#[derive(Debug, Serialize)]
pub struct KeyView {
    pub kid: String,
    pub state: KeyState,
    pub created_at: String,
    pub published_at: Option<String>,
    pub published_secs_ago: Option<i64>,
    pub current_since: Option<String>,
    pub stopped_at: Option<String>,
    pub retired_after: Option<String>,
}

impl Rotation {
    /// The current key's kid and every key of the set in `AWSCURRENT`.
    pub async fn show(&self) -> Result<(String, Vec<KeyView>), SigningError> {
        let id = self.signer.secret_id()?.to_owned();
        let set = self.current_set(&id).await?;
        let published = self.store.published_keys().await?;
        let now = self.clock.now().secs();
        let time = |t: i64| UnixTime::from_secs(t).rfc3339();
        let keys = set
            .keys
            .iter()
            .map(|k| {
                let at = published.as_ref().and_then(|p| p.published_at(&k.kid));
                KeyView {
                    kid: k.kid.clone(),
                    state: k.state,
                    created_at: time(k.created_at),
                    published_at: at.map(time),
                    published_secs_ago: at.map(|t| now - t),
                    current_since: k.current_since.map(time),
                    stopped_at: k.stopped_at.map(time),
                    retired_after: k.retired_after().map(time),
                }
            })
            .collect();
        let kid = set.current().map(|k| k.kid.clone()).unwrap_or_default();
        Ok((kid, keys))
    }
}
