//! Signing-key states and how a rotation moves them (pure: times are the caller's clock).
//!
//! standby (published, never signs) → current (signs) → previous (verifies, still published)
//! → retired (gone from the set and the JWKS). A key is published at least
//! [`PUBLISH_BEFORE_SIGNING_SECS`] before it signs and stays published until
//! [`RETAIN_AFTER_STOP_SECS`] after it stopped signing. The whole set is one JSON document
//! ([`KeySet`], one Secrets Manager version); its public half is [`PublishedKeys`].

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

word_enum!(
    /// Where a key is in its life.
    KeyState { Standby = "standby", Current = "current", Previous = "previous" }
);

/// The `max-age` of the JWKS answer (`functions/src/routes/jwks.rs`): a third-party verifier
/// may hold a JWKS this long after it was served.
pub const JWKS_MAX_AGE_SECS: i64 = 300;
/// How long an instance of ours holds the keys it read (the minters' key set, the verifiers'
/// published keys and so the `jwks` function's answer) before reading them again.
pub const KEY_CACHE_SECS: i64 = 300;
/// Past every cache of ours: a JWKS response leaves an instance whose copy is up to
/// [`KEY_CACHE_SECS`] old and is then kept [`JWKS_MAX_AGE_SECS`]; on top, this margin covers
/// clocks that differ between the rotation and the instances (NTP keeps them within a second,
/// but a paused Lambda sandbox resumes with its cache), a response in flight or queued, and a
/// verifier that refreshes a little after its `max-age`. Two minutes is forty times the skew
/// we could explain and costs nothing but a later promotion.
pub const PUBLICATION_MARGIN_SECS: i64 = 120;
/// A key is published this long before it may sign: every cache between the table and a
/// verifier, plus the margin.
pub const PUBLISH_BEFORE_SIGNING_SECS: i64 = KEY_CACHE_SECS + JWKS_MAX_AGE_SECS + PUBLICATION_MARGIN_SECS;
/// A minting instance whose refresh fails keeps signing with the keys it holds, but only until
/// they are this old (since they were read); after that it fails closed (503) rather than
/// sign with a key that may have been retired, in an emergency, since.
pub const SIGNER_MAX_STALE_SECS: i64 = 900;
// Checked when the crate compiles: the wait outlasts every cache of ours by a stated margin,
// and the retention leeway covers a minting instance that signs with a demoted key as long as
// it may hold it (a failed refresh included) plus `exp`'s 30 s leeway.
const _: () = assert!(PUBLICATION_MARGIN_SECS >= 60);
const _: () = assert!(PUBLISH_BEFORE_SIGNING_SECS >= KEY_CACHE_SECS + JWKS_MAX_AGE_SECS + PUBLICATION_MARGIN_SECS);
const _: () = assert!(RETIRE_LEEWAY_SECS >= SIGNER_MAX_STALE_SECS + 30);
const _: () = assert!(SIGNER_MAX_STALE_SECS > KEY_CACHE_SECS);

/// The longest token lifetime (embed tokens).
pub const LONGEST_TOKEN_SECS: i64 = 86_400;
/// Slack past the longest lifetime: a warm minting instance signs with a key up to
/// [`SIGNER_MAX_STALE_SECS`] after it stopped being current (its cache, or a failed refresh),
/// `exp` has 30 s leeway, clocks differ.
pub const RETIRE_LEEWAY_SECS: i64 = 3_600;
/// A previous key leaves the set this long after it stopped signing.
pub const RETAIN_AFTER_STOP_SECS: i64 = LONGEST_TOKEN_SECS + RETIRE_LEEWAY_SECS;
/// The format of [`KeySet`].
pub const KEY_SET_VERSION: u32 = 1;

/// One key of the set, private seed included (lives only in the secret).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyEntry {
    /// RFC 7638 thumbprint of the public key.
    pub kid: String,
    /// The Ed25519 seed: 32 bytes from the OS generator, base64url without padding.
    pub seed: String,
    pub state: KeyState,
    pub created_at: i64,
    /// When it became current (absent for a standby).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_since: Option<i64>,
    /// Previous keys: when the rotation that demoted it computed its set (`createSecret`). The
    /// key kept signing until that rotation's `finishSecret`, which records the real time with
    /// the published keys ([`PublishedKey::stopped_at`]); retention counts from the later of
    /// the two ([`KeySet::retires_at`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_at: Option<i64>,
}

/// Never the seed.
impl std::fmt::Debug for KeyEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyEntry({} {})", self.kid, self.state)
    }
}

impl KeyEntry {
    /// When this previous key leaves the set.
    pub fn retired_after(&self) -> Option<i64> {
        self.stopped_at.map(|s| s.saturating_add(RETAIN_AFTER_STOP_SECS))
    }
}

/// The whole key set: the value of one secret version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeySet {
    pub version: u32,
    pub keys: Vec<KeyEntry>,
    /// The version (`AWSCURRENT` when `createSecret` read it) this pending set was computed
    /// from. `setSecret`, `testSecret` and `finishSecret` refuse to go on once `AWSCURRENT` has
    /// moved away from it: another rotation (an emergency one) finished meanwhile, and this set
    /// may still hold the key that one retired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub built_from: Option<String>,
}

/// How a rotation treats the standby.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RotationMode {
    /// Promote the standby only if it has been published long enough; otherwise wait (the
    /// rotation ends without a promotion, expired keys still leave).
    Scheduled,
    /// Promote whatever the standby's age (development and tests).
    Force,
    /// A leaked private key: the current key leaves the set at once (its tokens stop
    /// verifying) and the standby signs whatever its age.
    Emergency,
}

/// Secrets Manager's staging labels (the rotation protocol's vocabulary).
pub const AWSCURRENT: &str = "AWSCURRENT";
pub const AWSPENDING: &str = "AWSPENDING";
pub const AWSPREVIOUS: &str = "AWSPREVIOUS";

/// Every version of the secret and its staging labels (`DescribeSecret`'s `VersionIdsToStages`).
pub type Stages = HashMap<String, Vec<String>>;

/// Who runs a rotation step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    /// Secrets Manager invoking the rotation function (its schedule, or `RotateSecret`): AWS's
    /// protocol to the letter. Rotation must be enabled on the secret, and the token is the
    /// version `RotateSecret` created, labelled `AWSPENDING`, before it invoked `createSecret`.
    SecretsManager,
    /// An operator (`hatchctl signing-key rotate`), on a secret with or without a schedule (the
    /// emergency path, local development, emulators that never invoke rotation functions). It
    /// plays `RotateSecret`'s part itself: its `createSecret` takes the `AWSPENDING` label for a
    /// fresh token, but only when no other rotation holds it — except an emergency rotation,
    /// which takes it from the rotation in progress (that one then stops at its next step).
    Operator,
}

/// What a step may do with its token, by the protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenCheck {
    /// The token's version is `AWSCURRENT` already: the rotation finished, nothing to do.
    AlreadyCurrent,
    /// The token's version carries `AWSPENDING`: this is the rotation in progress.
    Pending,
    /// An operator's `createSecret` with a fresh token and no rotation in progress: it labels
    /// its own version `AWSPENDING`.
    Claim,
    /// An operator's emergency `createSecret` while the rotation `from` is in progress: the
    /// label moves to the emergency rotation.
    TakeOver { from: String },
}

/// Why a step refuses its token (Secrets Manager sees the error and stops the rotation).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("rotation is not enabled on the signing secret (DescribeSecret RotationEnabled)")]
    NotEnabled,
    #[error("the rotation token {0} is not a version of the signing secret")]
    UnknownVersion(String),
    #[error("the rotation token {0} names a version that is neither AWSCURRENT nor AWSPENDING")]
    NotPending(String),
    #[error(
        "rotation {0} is in progress (its version holds AWSPENDING): let it finish, or discard it with \
         `hatchctl signing-key repair`"
    )]
    InProgress(String),
}

fn has(stages: &Stages, version: &str, label: &str) -> bool {
    stages.get(version).is_some_and(|labels| labels.iter().any(|l| l == label))
}

/// The version that holds `label`, if any (Secrets Manager keeps each label on one version).
pub fn labelled<'a>(stages: &'a Stages, label: &str) -> Option<&'a str> {
    stages.iter().find(|(v, _)| has(stages, v, label)).map(|(v, _)| v.as_str())
}

/// A rotation in progress, or stuck: a version labelled `AWSPENDING` that is not `AWSCURRENT`.
/// While it exists Secrets Manager refuses to start another rotation.
pub fn pending_rotation(stages: &Stages) -> Option<&str> {
    labelled(stages, AWSPENDING).filter(|v| !has(stages, v, AWSCURRENT))
}

/// AWS's checks at the top of every step (Secrets Manager user guide, "Lambda rotation
/// functions"): rotation enabled (for [`Caller::SecretsManager`]), the token a version of the
/// secret, already `AWSCURRENT` (nothing to do) or carrying `AWSPENDING` (else refuse).
/// `creating` is `createSecret`, the one step an operator may begin with a fresh token.
pub fn check_token(
    caller: Caller,
    mode: RotationMode,
    creating: bool,
    rotation_enabled: bool,
    stages: &Stages,
    token: &str,
) -> Result<TokenCheck, ProtocolError> {
    if caller == Caller::SecretsManager && !rotation_enabled {
        return Err(ProtocolError::NotEnabled);
    }
    if has(stages, token, AWSCURRENT) {
        return Ok(TokenCheck::AlreadyCurrent);
    }
    if has(stages, token, AWSPENDING) {
        return Ok(TokenCheck::Pending);
    }
    if stages.contains_key(token) {
        return Err(ProtocolError::NotPending(token.to_owned()));
    }
    if caller == Caller::SecretsManager || !creating {
        return Err(ProtocolError::UnknownVersion(token.to_owned()));
    }
    match (pending_rotation(stages), mode) {
        (None, _) => Ok(TokenCheck::Claim),
        (Some(from), RotationMode::Emergency) => Ok(TokenCheck::TakeOver { from: from.to_owned() }),
        (Some(from), _) => Err(ProtocolError::InProgress(from.to_owned())),
    }
}

/// What a rotation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// `to` (the standby) signs now; `from` became previous, or left the set in an emergency.
    Promoted { from: String, to: String, emergency: bool },
    /// The standby is younger than [`PUBLISH_BEFORE_SIGNING_SECS`]: no promotion this time.
    Waited { standby: String, remaining_secs: i64 },
    /// The set had no standby (a legacy secret): one was added, nothing promoted.
    StandbyAdded,
}

/// Why a set is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeySetError {
    #[error("key set version {0} is not supported")]
    Version(u32),
    #[error("a key set needs exactly one current key, found {0}")]
    Current(usize),
    #[error("a key set holds at most one standby key, found {0}")]
    Standby(usize),
    #[error("duplicate kid {0}")]
    Duplicate(String),
}

impl KeySet {
    /// The first set: one key that signs now, one standby.
    pub fn first(current: KeyEntry, standby: KeyEntry, now: i64) -> KeySet {
        let current = KeyEntry { state: KeyState::Current, current_since: Some(now), stopped_at: None, ..current };
        let standby = KeyEntry { state: KeyState::Standby, current_since: None, stopped_at: None, ..standby };
        KeySet { version: KEY_SET_VERSION, keys: vec![current, standby], built_from: None }
    }

    pub fn validate(&self) -> Result<(), KeySetError> {
        if self.version != KEY_SET_VERSION {
            return Err(KeySetError::Version(self.version));
        }
        let count = |s: KeyState| self.keys.iter().filter(|k| k.state == s).count();
        if count(KeyState::Current) != 1 {
            return Err(KeySetError::Current(count(KeyState::Current)));
        }
        if count(KeyState::Standby) > 1 {
            return Err(KeySetError::Standby(count(KeyState::Standby)));
        }
        for (i, k) in self.keys.iter().enumerate() {
            if self.keys[..i].iter().any(|o| o.kid == k.kid) {
                return Err(KeySetError::Duplicate(k.kid.clone()));
            }
        }
        Ok(())
    }

    /// The key that signs (a validated set has exactly one).
    pub fn current(&self) -> Option<&KeyEntry> {
        self.keys.iter().find(|k| k.state == KeyState::Current)
    }

    pub fn standby(&self) -> Option<&KeyEntry> {
        self.keys.iter().find(|k| k.state == KeyState::Standby)
    }

    /// Seconds the standby must still wait before it may sign, given when each kid was first
    /// published (`None`: never published, so it must wait the whole time). `None` when there
    /// is no standby.
    pub fn standby_wait(&self, now: i64, published_at: impl Fn(&str) -> Option<i64>) -> Option<i64> {
        let standby = self.standby()?;
        let since = published_at(&standby.kid).map_or(0, |p| now.saturating_sub(p));
        Some((PUBLISH_BEFORE_SIGNING_SECS - since).max(0))
    }

    /// When a previous key leaves the set: [`RETAIN_AFTER_STOP_SECS`] after it stopped
    /// signing, which is the later of the set's own stamp and the finish the published keys
    /// recorded (a rotation resumed hours after its `createSecret` kept signing all along).
    pub fn retires_at(entry: &KeyEntry, published: Option<&PublishedKeys>) -> Option<i64> {
        let finished = published.and_then(|p| p.find(&entry.kid)).and_then(|p| p.stopped_at);
        let stopped = match (entry.stopped_at, finished) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        stopped.map(|s| s.saturating_add(RETAIN_AFTER_STOP_SECS))
    }

    /// The next set: drops previous keys past their retirement, promotes the standby as
    /// `mode` allows, and keeps a standby (`fresh` makes a new key; its state is set here).
    /// `published` gives each kid's first publication and recorded stop.
    pub fn next(
        &self,
        now: i64,
        mode: RotationMode,
        published: Option<&PublishedKeys>,
        mut fresh: impl FnMut() -> KeyEntry,
    ) -> (KeySet, Outcome) {
        let published_at = |kid: &str| published.and_then(|p| p.published_at(kid));
        let mut keys: Vec<KeyEntry> = self
            .keys
            .iter()
            .filter(|k| !(k.state == KeyState::Previous && KeySet::retires_at(k, published).is_some_and(|r| now >= r)))
            .cloned()
            .collect();
        let new_standby = |mut k: KeyEntry| {
            k.state = KeyState::Standby;
            k.current_since = None;
            k.stopped_at = None;
            k
        };
        let wait = self.standby_wait(now, published_at);
        let promote = match (mode, wait) {
            (_, None) => false,
            (RotationMode::Scheduled, Some(remaining)) => remaining == 0,
            (RotationMode::Force | RotationMode::Emergency, Some(_)) => true,
        };
        if !promote {
            let outcome = match (self.standby(), wait) {
                (Some(s), Some(remaining)) => Outcome::Waited { standby: s.kid.clone(), remaining_secs: remaining },
                _ => {
                    keys.push(new_standby(fresh()));
                    Outcome::StandbyAdded
                }
            };
            return (KeySet { version: KEY_SET_VERSION, keys, built_from: None }, outcome);
        }
        let emergency = mode == RotationMode::Emergency;
        let mut from = String::new();
        let mut to = String::new();
        if emergency {
            keys.retain(|k| {
                if k.state == KeyState::Current {
                    from = k.kid.clone();
                }
                k.state != KeyState::Current
            });
        }
        for k in &mut keys {
            match k.state {
                KeyState::Current => {
                    from = k.kid.clone();
                    k.state = KeyState::Previous;
                    k.stopped_at = Some(now);
                }
                KeyState::Standby => {
                    to = k.kid.clone();
                    k.state = KeyState::Current;
                    k.current_since = Some(now);
                }
                KeyState::Previous => {}
            }
        }
        keys.push(new_standby(fresh()));
        (KeySet { version: KEY_SET_VERSION, keys, built_from: None }, Outcome::Promoted { from, to, emergency })
    }
}

/// One public key as `jwks` and `introspect-token` read it (no private material).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedKey {
    pub kid: String,
    /// The Ed25519 public key, base64url.
    pub x: String,
    pub state: KeyState,
    /// When this kid first appeared in the published set.
    pub published_at: i64,
    /// Previous keys: when the rotation that demoted it finished (`finishSecret` moved
    /// `AWSCURRENT`), so when minting instances began to sign with its successor.
    pub stopped_at: Option<i64>,
}

impl PublishedKey {
    /// May a token issued at `iat` have been signed by this key? Current and previous keys:
    /// yes. A standby never signed as far as this (possibly stale) copy knows; it may have
    /// been promoted since, but never before it had been published for
    /// [`PUBLISH_BEFORE_SIGNING_SECS`], so only tokens issued after that are its own.
    pub fn may_have_signed(&self, iat: i64) -> bool {
        match self.state {
            KeyState::Current | KeyState::Previous => true,
            KeyState::Standby => iat >= self.published_at.saturating_add(PUBLISH_BEFORE_SIGNING_SECS),
        }
    }
}

/// The published public half of a key set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedKeys {
    pub keys: Vec<PublishedKey>,
    pub updated_at: i64,
}

impl PublishedKeys {
    /// The public keys `(kid, x, state)` of a set to publish now; a kid published before keeps
    /// its first `published_at`, and a previous key its recorded stop.
    pub fn publish(keys: Vec<(String, String, KeyState)>, before: Option<&PublishedKeys>, now: i64) -> PublishedKeys {
        let first = |kid: &str| before.and_then(|b| b.find(kid)).map(|k| k.published_at).filter(|t| *t <= now);
        let stop = |kid: &str| before.and_then(|b| b.find(kid)).and_then(|k| k.stopped_at);
        let keys = keys
            .into_iter()
            .map(|(kid, x, state)| {
                let published_at = first(&kid).unwrap_or(now);
                let stopped_at = if state == KeyState::Previous { stop(&kid) } else { None };
                PublishedKey { kid, x, state, published_at, stopped_at }
            })
            .collect();
        PublishedKeys { keys, updated_at: now }
    }

    /// `finishSecret` made `set` current at `now`: every previous key of it with no recorded
    /// stop stopped signing now (the key this rotation demoted; on the first finish after an
    /// upgrade also older ones, whose retention then counts a little long — never short).
    /// Returns whether anything changed (a retried finish writes nothing).
    pub fn record_stops(&mut self, set: &KeySet, now: i64) -> bool {
        let mut changed = false;
        for k in &mut self.keys {
            let previous = set.keys.iter().any(|e| e.kid == k.kid && e.state == KeyState::Previous);
            if previous && k.stopped_at.is_none() {
                k.stopped_at = Some(now);
                changed = true;
            }
        }
        if changed {
            self.updated_at = now;
        }
        changed
    }

    pub fn find(&self, kid: &str) -> Option<&PublishedKey> {
        self.keys.iter().find(|k| k.kid == kid)
    }

    pub fn published_at(&self, kid: &str) -> Option<i64> {
        self.find(kid).map(|k| k.published_at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u32) -> KeyEntry {
        KeyEntry {
            kid: format!("k{n}"),
            seed: format!("seed{n}"),
            state: KeyState::Standby,
            created_at: 0,
            current_since: None,
            stopped_at: None,
        }
    }

    /// A rotation sequence with a counter for fresh keys, publishing each set as setSecret does.
    struct World {
        set: KeySet,
        published: PublishedKeys,
        next: u32,
    }

    impl World {
        fn new(now: i64) -> World {
            let set = KeySet::first(key(1), key(2), now);
            let published = publish(&set, None, now);
            World { set, published, next: 3 }
        }

        fn rotate(&mut self, now: i64, mode: RotationMode) -> Outcome {
            let published = self.published.clone();
            let mut n = self.next;
            let (set, outcome) = self.set.next(now, mode, Some(&published), || {
                n += 1;
                key(n - 1)
            });
            self.next = n;
            set.validate().unwrap();
            self.published = publish(&set, Some(&self.published), now);
            self.set = set;
            outcome
        }

        fn state(&self, kid: &str) -> Option<KeyState> {
            self.set.keys.iter().find(|k| k.kid == kid).map(|k| k.state)
        }
    }

    fn publish(set: &KeySet, before: Option<&PublishedKeys>, now: i64) -> PublishedKeys {
        PublishedKeys::publish(set.keys.iter().map(|k| (k.kid.clone(), k.kid.clone(), k.state)).collect(), before, now)
    }

    #[test]
    fn first_set_has_a_current_and_a_standby() {
        let w = World::new(100);
        w.set.validate().unwrap();
        assert_eq!((w.state("k1"), w.state("k2")), (Some(KeyState::Current), Some(KeyState::Standby)));
        assert_eq!(w.set.current().unwrap().current_since, Some(100));
    }

    #[test]
    fn a_young_standby_waits_and_an_old_one_is_promoted() {
        let mut w = World::new(1000);
        let out = w.rotate(1000 + PUBLISH_BEFORE_SIGNING_SECS - 1, RotationMode::Scheduled);
        assert_eq!(out, Outcome::Waited { standby: "k2".into(), remaining_secs: 1 });
        assert_eq!(w.state("k1"), Some(KeyState::Current));
        let out = w.rotate(1000 + PUBLISH_BEFORE_SIGNING_SECS, RotationMode::Scheduled);
        assert_eq!(out, Outcome::Promoted { from: "k1".into(), to: "k2".into(), emergency: false });
        assert_eq!(w.state("k1"), Some(KeyState::Previous));
        assert_eq!(w.state("k2"), Some(KeyState::Current));
        assert_eq!(w.state("k3"), Some(KeyState::Standby));
        let promoted_at = 1000 + PUBLISH_BEFORE_SIGNING_SECS;
        assert_eq!(w.set.keys.iter().find(|k| k.kid == "k1").unwrap().stopped_at, Some(promoted_at));
        // k3 was published just now: the next scheduled rotation waits for it.
        assert!(matches!(w.rotate(promoted_at + 1, RotationMode::Scheduled), Outcome::Waited { .. }));
    }

    #[test]
    fn previous_keys_stay_until_a_day_and_leeway_after_they_stopped_signing() {
        let wait = PUBLISH_BEFORE_SIGNING_SECS;
        let mut w = World::new(0);
        w.rotate(wait, RotationMode::Scheduled); // k1 stops at `wait`
        w.rotate(2 * wait, RotationMode::Scheduled); // k2 stops at 2 × wait; two previous keys
        assert_eq!((w.state("k1"), w.state("k2")), (Some(KeyState::Previous), Some(KeyState::Previous)));
        w.rotate(wait + RETAIN_AFTER_STOP_SECS - 1, RotationMode::Scheduled);
        assert_eq!(w.state("k1"), Some(KeyState::Previous), "one second early");
        w.rotate(wait + RETAIN_AFTER_STOP_SECS, RotationMode::Scheduled);
        assert_eq!(w.state("k1"), None, "retired");
        assert_eq!(w.published.find("k1"), None, "and unpublished");
    }

    #[test]
    fn force_promotes_a_young_standby_and_emergency_drops_the_current_key() {
        let mut w = World::new(0);
        assert!(matches!(w.rotate(1, RotationMode::Force), Outcome::Promoted { emergency: false, .. }));
        assert_eq!(w.state("k2"), Some(KeyState::Current));
        let out = w.rotate(2, RotationMode::Emergency);
        assert_eq!(out, Outcome::Promoted { from: "k2".into(), to: "k3".into(), emergency: true });
        assert_eq!(w.state("k2"), None, "the leaked key is gone at once");
        assert_eq!(w.state("k1"), Some(KeyState::Previous), "older keys stay");
    }

    #[test]
    fn a_legacy_set_without_standby_gains_one() {
        let mut set = KeySet::first(key(1), key(2), 0);
        set.keys.retain(|k| k.state == KeyState::Current);
        let (next, out) = set.next(10, RotationMode::Force, Some(&publish(&set, None, 0)), || key(9));
        assert_eq!(out, Outcome::StandbyAdded);
        assert_eq!(next.standby().unwrap().kid, "k9");
        assert_eq!(next.current().unwrap().kid, "k1");
    }

    #[test]
    fn an_unpublished_standby_waits_the_whole_time() {
        let set = KeySet::first(key(1), key(2), 0);
        assert_eq!(set.standby_wait(10_000, |_| None), Some(PUBLISH_BEFORE_SIGNING_SECS));
    }

    #[test]
    fn validation() {
        let mut set = KeySet::first(key(1), key(2), 0);
        set.validate().unwrap();
        set.keys[1].state = KeyState::Current;
        assert_eq!(set.validate(), Err(KeySetError::Current(2)));
        set.keys[1] = key(1);
        assert_eq!(set.validate(), Err(KeySetError::Duplicate("k1".into())));
        set.version = 2;
        assert_eq!(set.validate(), Err(KeySetError::Version(2)));
        assert!(!format!("{:?}", key(1)).contains("seed"), "Debug never shows the seed");
    }

    #[test]
    fn standby_keys_verify_only_tokens_issued_after_they_could_sign() {
        let k = PublishedKey {
            kid: "k".into(),
            x: "x".into(),
            state: KeyState::Standby,
            published_at: 1000,
            stopped_at: None,
        };
        assert!(!k.may_have_signed(1000 + PUBLISH_BEFORE_SIGNING_SECS - 1));
        assert!(k.may_have_signed(1000 + PUBLISH_BEFORE_SIGNING_SECS));
        let current = PublishedKey { state: KeyState::Current, ..k.clone() };
        assert!(current.may_have_signed(0));
    }

    #[test]
    fn publishing_keeps_the_first_publication_time() {
        let a = PublishedKeys::publish(vec![("k1".into(), "x".into(), KeyState::Standby)], None, 10);
        let b = PublishedKeys::publish(
            vec![("k1".into(), "x".into(), KeyState::Current), ("k2".into(), "y".into(), KeyState::Standby)],
            Some(&a),
            50,
        );
        assert_eq!((b.published_at("k1"), b.published_at("k2")), (Some(10), Some(50)));
    }
    #[test]
    fn retention_counts_from_the_finish_the_published_keys_record() {
        let mut w = World::new(0);
        // createSecret computed the set at `wait` (k1's stamp) but the rotation finished two
        // hours later: k1 signed until then.
        let created = PUBLISH_BEFORE_SIGNING_SECS;
        w.rotate(created, RotationMode::Scheduled);
        let finished = created + 7_200;
        assert!(w.published.record_stops(&w.set, finished));
        assert!(!w.published.clone().record_stops(&w.set, finished + 5), "a retried finish changes nothing");
        let k1 = w.set.keys.iter().find(|k| k.kid == "k1").unwrap().clone();
        // A later publication keeps the recorded stop of a previous key, never of another state.
        let keep = |state| {
            PublishedKeys::publish(vec![("k1".into(), "k1".into(), state)], Some(&w.published), finished + 1).keys[0]
                .stopped_at
        };
        assert_eq!((keep(KeyState::Previous), keep(KeyState::Current)), (Some(finished), None));
        assert_eq!(KeySet::retires_at(&k1, Some(&w.published)), Some(finished + RETAIN_AFTER_STOP_SECS));
        w.rotate(created + RETAIN_AFTER_STOP_SECS, RotationMode::Scheduled);
        assert_eq!(w.state("k1"), Some(KeyState::Previous), "counted from createSecret it would be gone");
        w.rotate(finished + RETAIN_AFTER_STOP_SECS, RotationMode::Scheduled);
        assert_eq!(w.state("k1"), None);
    }

    fn stages(entries: &[(&str, &[&str])]) -> Stages {
        entries.iter().map(|(v, l)| (v.to_string(), l.iter().map(|s| s.to_string()).collect())).collect()
    }

    #[test]
    fn every_step_checks_rotation_is_enabled_and_the_tokens_version_and_stage() {
        use Caller::*;
        use RotationMode::*;
        let idle = stages(&[("v0", &[AWSCURRENT]), ("old", &[AWSPREVIOUS])]);
        let busy = stages(&[("v0", &[AWSCURRENT]), ("r1", &[AWSPENDING])]);
        let check = |caller, mode, creating, enabled, st: &Stages, token| {
            check_token(caller, mode, creating, enabled, st, token)
        };
        // Secrets Manager: rotation enabled, and only its own AWSPENDING version.
        assert_eq!(check(SecretsManager, Scheduled, true, false, &busy, "r1"), Err(ProtocolError::NotEnabled));
        assert_eq!(check(SecretsManager, Scheduled, true, true, &busy, "r1"), Ok(TokenCheck::Pending));
        assert_eq!(check(SecretsManager, Scheduled, false, true, &idle, "v0"), Ok(TokenCheck::AlreadyCurrent));
        assert_eq!(
            check(SecretsManager, Scheduled, false, true, &idle, "old"),
            Err(ProtocolError::NotPending("old".into()))
        );
        // A stray token is refused, whatever the step: nobody's AWSPENDING is touched.
        for creating in [true, false] {
            assert_eq!(
                check(SecretsManager, Scheduled, creating, true, &busy, "stray"),
                Err(ProtocolError::UnknownVersion("stray".into()))
            );
        }
        // An operator needs no schedule; it claims the label only when nobody holds it …
        assert_eq!(check(Operator, Scheduled, true, false, &idle, "op"), Ok(TokenCheck::Claim));
        assert_eq!(check(Operator, Force, true, false, &busy, "op"), Err(ProtocolError::InProgress("r1".into())));
        assert_eq!(
            check(Operator, Scheduled, false, false, &idle, "op"),
            Err(ProtocolError::UnknownVersion("op".into()))
        );
        // … except in an emergency, which takes it from the rotation in progress.
        assert_eq!(
            check(Operator, Emergency, true, false, &busy, "op"),
            Ok(TokenCheck::TakeOver { from: "r1".into() })
        );
        assert_eq!(pending_rotation(&busy), Some("r1"));
        assert_eq!(pending_rotation(&idle), None);
        assert_eq!(pending_rotation(&stages(&[("v0", &[AWSCURRENT, AWSPENDING])])), None, "a finished rotation");
    }
}
