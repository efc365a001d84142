//! Signing-key states and how a rotation moves them (pure: times are the caller's clock).
//!
//! standby (published, never signs) → current (signs) → previous (verifies, still published)
//! → retired (gone from the set and the JWKS). A key is published at least
//! [`PUBLISH_BEFORE_SIGNING_SECS`] before it signs and stays published until
//! [`RETAIN_AFTER_STOP_SECS`] after it stopped signing. The whole set is one JSON document
//! ([`KeySet`], one Secrets Manager version); its public half is [`PublishedKeys`].

use serde::{Deserialize, Serialize};

word_enum!(
    /// Where a key is in its life.
    KeyState { Standby = "standby", Current = "current", Previous = "previous" }
);

/// A key is published this long before it may sign: the JWKS `max-age` (300 s) plus the
/// functions' own key cache (300 s).
pub const PUBLISH_BEFORE_SIGNING_SECS: i64 = 600;
/// The longest token lifetime (embed tokens).
pub const LONGEST_TOKEN_SECS: i64 = 86_400;
/// Slack past the longest lifetime: a warm minting instance signs with a key up to 300 s
/// after it stopped being current (its cache), `exp` has 30 s leeway, clocks differ.
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
    /// When it stopped being current (previous keys).
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
        KeySet { version: KEY_SET_VERSION, keys: vec![current, standby] }
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

    /// The next set: drops previous keys past their retirement, promotes the standby as
    /// `mode` allows, and keeps a standby (`fresh` makes a new key; its state is set here).
    pub fn next(
        &self,
        now: i64,
        mode: RotationMode,
        published_at: impl Fn(&str) -> Option<i64>,
        mut fresh: impl FnMut() -> KeyEntry,
    ) -> (KeySet, Outcome) {
        let mut keys: Vec<KeyEntry> = self
            .keys
            .iter()
            .filter(|k| !(k.state == KeyState::Previous && k.retired_after().is_some_and(|r| now >= r)))
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
            return (KeySet { version: KEY_SET_VERSION, keys }, outcome);
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
        (KeySet { version: KEY_SET_VERSION, keys }, Outcome::Promoted { from, to, emergency })
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
    /// its first `published_at`.
    pub fn publish(keys: Vec<(String, String, KeyState)>, before: Option<&PublishedKeys>, now: i64) -> PublishedKeys {
        let first = |kid: &str| before.and_then(|b| b.find(kid)).map(|k| k.published_at).filter(|t| *t <= now);
        let keys = keys
            .into_iter()
            .map(|(kid, x, state)| {
                let published_at = first(&kid).unwrap_or(now);
                PublishedKey { kid, x, state, published_at }
            })
            .collect();
        PublishedKeys { keys, updated_at: now }
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
            let (set, outcome) = self.set.next(
                now,
                mode,
                |kid| published.published_at(kid),
                || {
                    n += 1;
                    key(n - 1)
                },
            );
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
        let out = w.rotate(1000 + 599, RotationMode::Scheduled);
        assert_eq!(out, Outcome::Waited { standby: "k2".into(), remaining_secs: 1 });
        assert_eq!(w.state("k1"), Some(KeyState::Current));
        let out = w.rotate(1000 + 600, RotationMode::Scheduled);
        assert_eq!(out, Outcome::Promoted { from: "k1".into(), to: "k2".into(), emergency: false });
        assert_eq!(w.state("k1"), Some(KeyState::Previous));
        assert_eq!(w.state("k2"), Some(KeyState::Current));
        assert_eq!(w.state("k3"), Some(KeyState::Standby));
        assert_eq!(w.set.keys.iter().find(|k| k.kid == "k1").unwrap().stopped_at, Some(1600));
        // k3 was published just now: the next scheduled rotation waits for it.
        assert!(matches!(w.rotate(1601, RotationMode::Scheduled), Outcome::Waited { .. }));
    }

    #[test]
    fn previous_keys_stay_until_a_day_and_leeway_after_they_stopped_signing() {
        let mut w = World::new(0);
        w.rotate(600, RotationMode::Scheduled); // k1 stops at 600
        w.rotate(1200, RotationMode::Scheduled); // k2 stops at 1200; two previous keys
        assert_eq!((w.state("k1"), w.state("k2")), (Some(KeyState::Previous), Some(KeyState::Previous)));
        w.rotate(600 + RETAIN_AFTER_STOP_SECS - 1, RotationMode::Scheduled);
        assert_eq!(w.state("k1"), Some(KeyState::Previous), "one second early");
        w.rotate(600 + RETAIN_AFTER_STOP_SECS, RotationMode::Scheduled);
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
        let (next, out) = set.next(10, RotationMode::Force, |_| Some(0), || key(9));
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
        let k = PublishedKey { kid: "k".into(), x: "x".into(), state: KeyState::Standby, published_at: 1000 };
        assert!(!k.may_have_signed(1599));
        assert!(k.may_have_signed(1600));
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
}
