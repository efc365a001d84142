//! The signing-key rotation, in Secrets Manager's four steps. The rotation function
//! (`functions/rotate-signing-key`) runs them as Secrets Manager invokes it; `hatchctl
//! signing-key rotate` runs the same four in a row. Every step first does what AWS's protocol
//! asks (`DescribeSecret`; rotation enabled for Secrets Manager's own runs; the token a version
//! of the secret, already `AWSCURRENT` — nothing to do — or labelled `AWSPENDING`, else an
//! error: [`check_token`]), so a retried or resumed rotation does no harm and a stray or late
//! one does nothing:
//!
//! - `createSecret`: the next key set, computed from `AWSCURRENT` by [`KeySet::next`]
//!   (standby → current only once it has been published for [`PUBLISH_BEFORE_SIGNING_SECS`];
//!   expired previous keys leave; a fresh standby), recording the version it was built from,
//!   put as version `token`, staged `AWSPENDING`. A young standby makes the rotation a no-op
//!   that only drops expired keys: it "waits".
//! - `setSecret`: publishes the pending set's public keys in the table.
//! - `testSecret`: every pending seed derives its kid; the pending current key signs a probe
//!   that the *published* keys verify.
//! - `finishSecret`: moves `AWSCURRENT` to the pending version (after checking it again), and
//!   records when the demoted key stopped signing.
//!
//! `setSecret`, `testSecret` and `finishSecret` go on only while `AWSCURRENT` is still the
//! version the pending set was built from: once another rotation (an emergency) finished, the
//! slower one stops rather than bring back a key the other retired.

use serde::Serialize;
use serde_json::json;

use std::sync::Arc;

use crate::domain::UnixTime;
use crate::domain::audit::{Actor, AuditAction, AuditEvent, Changes};
use crate::domain::signing_keys::{
    Caller, KeySet, KeyState, Outcome, PUBLISH_BEFORE_SIGNING_SECS, PublishedKeys, RotationMode, Stages, TokenCheck,
    check_token, labelled, pending_rotation,
};
use crate::domain::time::Clock;
use crate::domain::{CustomerId, Environment};
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

fn refused(what: impl std::fmt::Display) -> SigningError {
    SigningError::Refused(what.to_string())
}

/// How long a rotation may hold `AWSPENDING` before it counts as stuck (API.md: a day).
pub const STUCK_PENDING_SECS: i64 = 86_400;

impl Rotation {
    /// Runs one step for the rotation `token` of the secret `secret_id`, for `caller` (the
    /// rotation function passes [`Caller::SecretsManager`], hatchctl [`Caller::Operator`]).
    /// `mode` matters only to `createSecret` (Secrets Manager's own runs are
    /// [`RotationMode::Scheduled`]).
    pub async fn run_step(
        &self,
        secret_id: &str,
        step: Step,
        token: &str,
        mode: RotationMode,
        caller: Caller,
    ) -> Result<String, SigningError> {
        let result = self.step(secret_id, step, token, mode, caller).await;
        match &result {
            Ok(what) => tracing::info!(step = step.as_str(), token, what = what.as_str(), "rotation step"),
            Err(e) => tracing::warn!(step = step.as_str(), token, cause = %e, "rotation step failed"),
        }
        // The `RotationStep` metric (EMF, `crate::telemetry`): refusals are a rotation that
        // cannot go on (overtaken, a foreign AWSPENDING), failures a dependency or a broken set.
        let outcome = match &result {
            Ok(_) => "ok",
            Err(SigningError::Refused(_)) => "refused",
            Err(_) => "failed",
        };
        let function = crate::handler::current_function().unwrap_or("hatchctl");
        tracing::info!(target: crate::telemetry::METRICS, function, metric = "RotationStep", outcome,
            step = step.as_str(), "rotation step metric");
        // A rotation that stopped holding AWSPENDING blocks every later one, with nothing but
        // refusals to show for it: its own outcome, for its own alarm.
        match self.stuck_pending(secret_id).await {
            Ok(Some(version)) => {
                tracing::warn!(
                    version,
                    "an AWSPENDING version older than a day blocks rotation: \
                    hatchctl signing-key show, then repair"
                );
                tracing::info!(target: crate::telemetry::METRICS, function, metric = "RotationStep",
                    outcome = "stuck_pending", step = step.as_str(), "rotation step metric");
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(cause = %e, "AWSPENDING's age not known"),
        }
        result
    }

    /// The version holding `AWSPENDING` for longer than [`STUCK_PENDING_SECS`], if any: a
    /// rotation that began and never finished (every step takes seconds).
    pub async fn stuck_pending(&self, secret_id: &str) -> Result<Option<String>, SigningError> {
        let now = self.clock.now().secs();
        let pending = self.secrets.created_with_stage(secret_id, AWSPENDING).await?;
        Ok(pending.into_iter().find(|(_, created)| now - created > STUCK_PENDING_SECS).map(|(version, _)| version))
    }

    async fn step(
        &self,
        id: &str,
        step: Step,
        token: &str,
        mode: RotationMode,
        caller: Caller,
    ) -> Result<String, SigningError> {
        if token.is_empty() {
            return Err(broken("the rotation has no ClientRequestToken"));
        }
        let described = self.secrets.describe(id).await?;
        let stages = &described.stages;
        let check = check_token(caller, mode, step == Step::CreateSecret, described.rotation_enabled, stages, token)
            .map_err(refused)?;
        if check == TokenCheck::AlreadyCurrent {
            if step == Step::FinishSecret {
                // A retried finish: the stop it records may not have been written.
                self.record_stops(&self.pending_set(id, token, AWSCURRENT).await?).await?;
            }
            return Ok("version already current".into());
        }
        match step {
            Step::CreateSecret => self.create_secret(id, token, mode, &check, stages).await,
            Step::SetSecret => self.set_secret(id, token, stages).await,
            Step::TestSecret => self.test_secret(id, token, stages).await,
            Step::FinishSecret => self.finish_secret(id, token, stages).await,
        }
    }

    async fn create_secret(
        &self,
        id: &str,
        token: &str,
        mode: RotationMode,
        check: &TokenCheck,
        stages: &Stages,
    ) -> Result<String, SigningError> {
        let secrets = &self.secrets;
        if *check == TokenCheck::Pending && secrets.get(id, Version::Id(token, AWSPENDING)).await?.is_some() {
            return Ok("pending set already created".into());
        }
        let from =
            labelled(stages, AWSCURRENT).ok_or_else(|| broken("the signing secret has no AWSCURRENT version"))?;
        // Read by version id: if AWSCURRENT moved since DescribeSecret, this read fails and the
        // step is retried, rather than record one version and build from another.
        let set = self.current_set(id, Some(from)).await?;
        let published = self.store.published_keys().await?;
        let now = self.clock.now();
        // `next` takes at most one fresh key.
        let fresh = SigningKey::generate(now)?;
        let (mut next, outcome) = set.next(now.secs(), mode, published.as_ref(), || fresh.clone());
        next.built_from = Some(from.to_owned());
        next.validate().map_err(|e| broken(format!("next key set: {e}")))?;
        if let TokenCheck::TakeOver { from: other } = check {
            // An emergency wins: the rotation in progress loses its label and stops at its
            // next step (and, if it already passed that check, at the version check).
            tracing::warn!(
                discarded = other.as_str(),
                "emergency rotation takes AWSPENDING from a rotation in progress"
            );
            secrets.move_stage(id, AWSPENDING, None, Some(other)).await?;
        }
        let value = serde_json::to_string(&next).map_err(|e| broken(format!("key set: {e}")))?;
        secrets.put_pending(id, token, &value).await?;
        Ok(describe(&outcome))
    }

    /// The set in `AWSCURRENT` (that version, when given). A secret of the earlier format
    /// becomes a set with its key current and the `AWSPREVIOUS` key (if any) previous, so its
    /// tokens keep verifying.
    async fn current_set(&self, id: &str, version: Option<&str>) -> Result<KeySet, SigningError> {
        let which = match version {
            Some(v) => Version::Id(v, AWSCURRENT),
            None => Version::Stage(AWSCURRENT),
        };
        let value =
            self.secrets.get(id, which).await?.ok_or_else(|| broken("the signing secret has no AWSCURRENT version"))?;
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
    /// The set of version `token` (which must carry `stage`).
    async fn pending_set(&self, id: &str, token: &str, stage: &str) -> Result<KeySet, SigningError> {
        let value = self
            .secrets
            .get(id, Version::Id(token, stage))
            .await?
            .ok_or_else(|| broken(format!("no {stage} version {token}")))?;
        parse_key_set(&value)
    }

    /// The pending set, provided `AWSCURRENT` is still the version it was built from.
    async fn pending_unless_overtaken(&self, id: &str, token: &str, stages: &Stages) -> Result<KeySet, SigningError> {
        let set = self.pending_set(id, token, AWSPENDING).await?;
        let current = labelled(stages, AWSCURRENT);
        match set.built_from.as_deref() {
            Some(from) if Some(from) == current => Ok(set),
            Some(from) => Err(refused(format!(
                "rotation {token} was built from version {from}, but AWSCURRENT is {} now: another rotation finished \
                 meanwhile and wins; this one stops (`hatchctl signing-key repair` clears its AWSPENDING)",
                current.unwrap_or("nothing")
            ))),
            None => Err(refused(format!(
                "rotation {token} does not record the version it was built from (an earlier build made it); \
                 discard it with `hatchctl signing-key repair` and rotate again"
            ))),
        }
    }

    async fn set_secret(&self, id: &str, token: &str, stages: &Stages) -> Result<String, SigningError> {
        let set = self.pending_unless_overtaken(id, token, stages).await?;
        let published = self.publish(&set).await?;
        // Another rotation may have published between that check and this write (an
        // emergency takes AWSPENDING and retires the current key): this write would then bring
        // back the key it retired. Looked at again after the write: if this rotation no longer
        // holds AWSPENDING over the version it was built from, the winner's set is published
        // again and this one stops. A rotation that starts after this look publishes after it.
        let now = self.secrets.describe(id).await?.stages;
        let current = labelled(&now, AWSCURRENT);
        if labelled(&now, AWSPENDING) == Some(token) && set.built_from.as_deref() == current {
            return Ok(published);
        }
        let winner = match labelled(&now, AWSPENDING).filter(|other| *other != token) {
            Some(other) => match self.pending_set(id, other, AWSPENDING).await {
                Ok(theirs) if theirs.built_from.as_deref() == current => theirs,
                _ => self.current_set(id, None).await?,
            },
            None => self.current_set(id, None).await?,
        };
        self.publish(&winner).await?;
        Err(refused(format!(
            "rotation {token} was overtaken while it published (AWSCURRENT is {}, AWSPENDING {}): the winner's keys \
             are published again and this rotation stops",
            current.unwrap_or("nothing"),
            labelled(&now, AWSPENDING).unwrap_or("nothing")
        )))
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

    async fn test_secret(&self, id: &str, token: &str, stages: &Stages) -> Result<String, SigningError> {
        let set = self.pending_unless_overtaken(id, token, stages).await?;
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

    async fn finish_secret(&self, id: &str, token: &str, stages: &Stages) -> Result<String, SigningError> {
        // Never promote a set that does not hold up (a failed or skipped testSecret), nor one
        // another rotation overtook.
        let set = self.pending_unless_overtaken(id, token, stages).await?;
        public_keys(&set)?;
        let ring = KeyRing::from_set(set)?;
        // testSecret saw this key published as current, but a rotation overtaken in setSecret
        // republishes its winner's keys after it looked again, and that write can land after
        // a third rotation's setSecret and testSecret: promoting a key verifiers do not list
        // would fail every token it signs. Looked at again here; what remains is a republish
        // landing between this read and the stage move below (milliseconds, not a whole step).
        let published = self.store.published_keys().await?;
        if published.as_ref().and_then(|p| p.find(ring.current.kid())).is_none_or(|k| k.state != KeyState::Current) {
            return Err(refused(format!(
                "rotation {token}: its current key is no longer published as current (another rotation published \
                 since testSecret); nothing was promoted: `hatchctl signing-key repair`, then rotate again"
            )));
        }
        // `RemoveFromVersionId` names the version the set was built from: Secrets Manager
        // refuses the move if AWSCURRENT left it since DescribeSecret.
        let from = ring.set.built_from.as_deref();
        self.secrets.move_stage(id, AWSCURRENT, Some(token), from).await?;
        self.secrets.move_stage(id, AWSPENDING, None, Some(token)).await?;
        self.signer.invalidate().await;
        self.record_stops(&ring.set).await?;
        Ok("the pending set is current".into())
    }

    /// `set` became current now: its newly previous keys stopped signing now (recorded with the
    /// published keys; retention counts from there).
    async fn record_stops(&self, set: &KeySet) -> Result<(), SigningError> {
        if let Some(mut published) = self.store.published_keys().await?
            && published.record_stops(set, self.clock.now().secs())
        {
            self.store.publish_keys(&published).await?;
            self.verifier.invalidate().await;
        }
        Ok(())
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
    /// `hatchctl signing-key rotate`: refuses a scheduled promotion of a standby published
    /// less than [`PUBLISH_BEFORE_SIGNING_SECS`] ago (`Force` skips that wait, `Emergency`
    /// retires the current key at once). Runs the steps as [`Caller::Operator`]: no rotation
    /// schedule needed, and it never takes `AWSPENDING` from a rotation in progress — except
    /// in an emergency.
    pub async fn rotate(&self, mode: RotationMode) -> Result<Rotated, SigningError> {
        let id = self.signer.secret_id()?.to_owned();
        let now = self.clock.now().secs();
        let set = self.current_set(&id, None).await?;
        let published = self.store.published_keys().await?;
        let wait = set.standby_wait(now, |kid| published.as_ref().and_then(|p| p.published_at(kid)));
        match (mode, wait) {
            (RotationMode::Scheduled, Some(remaining)) if remaining > 0 => {
                let kid = set.standby().map(|k| k.kid.clone()).unwrap_or_default();
                let minutes = PUBLISH_BEFORE_SIGNING_SECS / 60;
                return Err(SigningError::Refused(format!(
                    "the standby key {kid} was published less than {minutes} minutes ago; verifiers that cached the \
                     JWKS may not know it yet. Try again in {remaining} s (or --force in development)"
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
            let what = self.run_step(&id, step, &token, mode, Caller::Operator).await?;
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
            self.publish(&self.current_set(&id, None).await?).await?;
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
        let set = self.current_set(&id, None).await?;
        let published = self.store.published_keys().await?;
        let now = self.clock.now().secs();
        let time = |t: i64| UnixTime::from_secs(t).rfc3339();
        let keys = set
            .keys
            .iter()
            .map(|k| {
                let at = published.as_ref().and_then(|p| p.published_at(&k.kid));
                // The finish's record when there is one: when the key really stopped signing.
                let finished = published.as_ref().and_then(|p| p.find(&k.kid)).and_then(|p| p.stopped_at);
                KeyView {
                    kid: k.kid.clone(),
                    state: k.state,
                    created_at: time(k.created_at),
                    published_at: at.map(time),
                    published_secs_ago: at.map(|t| now - t),
                    current_since: k.current_since.map(time),
                    stopped_at: finished.or(k.stopped_at).map(time),
                    retired_after: KeySet::retires_at(k, published.as_ref()).map(time),
                }
            })
            .collect();
        let kid = set.current().map(|k| k.kid.clone()).unwrap_or_default();
        Ok((kid, keys))
    }
}

/// A rotation that holds `AWSPENDING` without having finished, as `hatchctl signing-key show`
/// reports it. While it exists Secrets Manager starts no other rotation, and an operator
/// rotation refuses to start (except an emergency).
#[derive(Debug, Serialize)]
pub struct PendingView {
    /// The version (its rotation's `ClientRequestToken`).
    pub version: String,
    /// Whether `createSecret` put its set (a version without value: it stopped before that).
    pub has_value: bool,
    /// The version it was built from, if it records one.
    pub built_from: Option<String>,
    /// `AWSCURRENT` is still what it was built from: retrying its steps can finish it.
    /// Otherwise it can never finish: only `repair` clears it.
    pub resumable: bool,
}

/// What `hatchctl signing-key repair` did.
#[derive(Debug, Serialize)]
pub struct Repaired {
    /// The version whose `AWSPENDING` label was removed.
    pub discarded: String,
    /// The audit event recording it (partition `SIGNING#AUDIT`).
    pub event_id: String,
}

/// Operator events about the platform's signing key are not any customer's: they are recorded
/// in the signing partition (`SIGNING#AUDIT`, beside the published keys), which no customer's
/// audit listing (`AUD#<customer>#<env>`) can reach. The event format still names a customer
/// and environment; these two say "the platform" there.
pub fn platform_audit_scope() -> (CustomerId, Environment) {
    (CustomerId::parse("platform").expect("a valid customer id"), Environment::Live)
}

impl Rotation {
    /// The rotation holding `AWSPENDING` without having finished, if any.
    pub async fn pending(&self) -> Result<Option<PendingView>, SigningError> {
        let id = self.signer.secret_id()?.to_owned();
        let stages = self.secrets.stages(&id).await?;
        let Some(version) = pending_rotation(&stages) else {
            return Ok(None);
        };
        let value = self.secrets.get(&id, Version::Id(version, AWSPENDING)).await?;
        // A value that is not a set (or not ours) is reported, not an error: this is the
        // command that must work when things are broken.
        let built_from = value.as_deref().and_then(|v| parse_key_set(v).ok()).and_then(|set| set.built_from);
        let current = labelled(&stages, AWSCURRENT);
        let resumable = value.is_none() || (built_from.is_some() && built_from.as_deref() == current);
        Ok(Some(PendingView { version: version.to_owned(), has_value: value.is_some(), built_from, resumable }))
    }

    /// `hatchctl signing-key repair --version V`: removes `AWSPENDING` from the unfinished
    /// rotation `V` (which must be the one `show` reports, so a rotation begun since is never
    /// discarded by mistake), publishes the keys of the set that signs again (a discarded
    /// `setSecret` may have published its own states), and records an audit event.
    pub async fn repair(&self, version: &str, actor: &Actor) -> Result<Repaired, SigningError> {
        let id = self.signer.secret_id()?.to_owned();
        let stages = self.secrets.stages(&id).await?;
        match pending_rotation(&stages) {
            Some(pending) if pending == version => {}
            Some(pending) => {
                return Err(refused(format!("the unfinished rotation is {pending}, not {version}: nothing changed")));
            }
            None => return Err(refused(format!("no unfinished rotation holds AWSPENDING (asked: {version})"))),
        }
        self.secrets.move_stage(&id, AWSPENDING, None, Some(version)).await?;
        self.publish(&self.current_set(&id, None).await?).await?;
        let (customer, env) = platform_audit_scope();
        let changes = Changes::default().field("AWSPENDING", Some(version), None);
        let now_millis = self.clock.now_millis();
        let event =
            AuditEvent::new(actor, &customer, env, AuditAction::SigningKeyRepaired, id.clone(), changes, now_millis);
        self.store.record_signing_event(&event).await?;
        tracing::warn!(discarded = version, event = event.id.as_str(), "unfinished signing-key rotation discarded");
        Ok(Repaired { discarded: version.to_owned(), event_id: event.id })
    }

    /// The platform's signing-key audit events, newest first.
    pub async fn audit(&self, limit: i32) -> Result<Vec<AuditEvent>, SigningError> {
        Ok(self.store.signing_events(limit).await?)
    }
}
