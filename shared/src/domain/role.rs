//! Roles: named sets of scopes of one customer and environment. Built-in roles exist
//! everywhere and never change; custom roles are the customer's. A key's effective scopes are
//! its own scopes and its roles' scopes, resolved at each request, so a role change reaches
//! every holder at once without touching them.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

use super::{InvalidId, KeyType, Scope};

/// `^[a-z][a-z0-9_]{0,39}$`: built-in and custom names share this space.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct RoleName(String);

impl RoleName {
    pub const FIELD: &'static str = "name";
    pub const PATTERN: &'static str = "^[a-z][a-z0-9_]{0,39}$";

    pub fn parse(text: &str) -> Result<RoleName, InvalidId> {
        let b = text.as_bytes();
        let valid = (1..=40).contains(&b.len())
            && b[0].is_ascii_lowercase()
            && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_');
        if valid {
            Ok(RoleName(text.to_owned()))
        } else {
            Err(InvalidId { field: Self::FIELD, pattern: Self::PATTERN })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The built-in role of this name, if it is one.
    pub fn built_in(&self) -> Option<BuiltInRole> {
        BuiltInRole::parse(&self.0)
    }
}

impl fmt::Display for RoleName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for RoleName {
    type Err = InvalidId;
    fn from_str(s: &str) -> Result<RoleName, InvalidId> {
        RoleName::parse(s)
    }
}

impl<'de> Deserialize<'de> for RoleName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<RoleName, D::Error> {
        RoleName::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

word_enum!(
    /// The roles every customer environment has; they never change.
    BuiltInRole { Admin = "admin", Developer = "developer", ReadOnly = "read_only", Browser = "browser" }
);

impl BuiltInRole {
    pub fn scopes(self) -> BTreeSet<Scope> {
        match self {
            BuiltInRole::Admin => Scope::ALL.iter().copied().collect(),
            BuiltInRole::Developer => Scope::ALL.iter().copied().filter(|s| *s != Scope::KeysWrite).collect(),
            BuiltInRole::ReadOnly => [Scope::ReadBuddies, Scope::ReadOperations, Scope::KeysRead].into(),
            BuiltInRole::Browser => publishable_defaults(),
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            BuiltInRole::Admin => "Every secret-key scope, key and role management included",
            BuiltInRole::Developer => "Everything but changing keys and roles",
            BuiltInRole::ReadOnly => "Read gates, unlocks, keys, usage and the audit trail",
            BuiltInRole::Browser => "What a publishable key holds by default",
        }
    }

    pub fn name(self) -> RoleName {
        RoleName(self.as_str().to_owned())
    }
}

/// The version a custom role is created at: from the creation time (milliseconds × 1000, so a
/// thousand changes of one role never reach the first version of a role recreated a
/// millisecond later). Versions never repeat across a delete and a re-create of one name.
pub fn first_version(now_millis: i64) -> u64 {
    (now_millis.max(0) as u64).saturating_mul(1000)
}

/// The most roles one key may hold (each custom one is one more item in its reads and in the
/// transactions that change it).
pub const MAX_ROLES_PER_KEY: usize = 20;

/// The scopes a publishable key holds when issued without any.
pub fn publishable_defaults() -> BTreeSet<Scope> {
    [Scope::ReadBuddies, Scope::ReadOperations, Scope::EmbedTokensCreate].into()
}

/// A role as a customer sees it. `key_count` counts the unrevoked keys holding it and
/// `publishable_count` the publishable ones among them: both kept in the transactions that
/// change keys, so they are exact.
#[derive(Debug, Clone, PartialEq)]
pub struct Role {
    pub name: RoleName,
    pub description: Option<String>,
    pub scopes: BTreeSet<Scope>,
    pub built_in: bool,
    pub key_count: u64,
    pub publishable_count: u64,
    /// Bumped by every change of the role itself (not of its counts).
    pub version: u64,
}

impl Role {
    /// A built-in role with the holder counts on record (none: zero).
    pub fn built_in(role: BuiltInRole, counts: Option<(u64, u64)>) -> Role {
        let (key_count, publishable_count) = counts.unwrap_or((0, 0));
        Role {
            name: role.name(),
            description: Some(role.description().to_owned()),
            scopes: role.scopes(),
            built_in: true,
            key_count,
            publishable_count,
            version: 0,
        }
    }

    /// Can a key of this type hold the role?
    pub fn fits(&self, key_type: KeyType) -> bool {
        key_type == KeyType::Secret || !self.scopes.iter().any(|s| s.secret_only())
    }
}

/// Why a role cannot be created or changed as asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoleRuleError {
    #[error("unknown scope {0:?}")]
    UnknownScope(String),
    #[error("a role needs at least one scope")]
    NoScopes,
    #[error("the role is held by a publishable key and cannot gain {0}, which publishable keys never hold")]
    SecretScopeForPublishable(Scope),
    #[error("description: at most 200 characters")]
    Description,
}

/// The scopes of a role as asked for (by name).
pub fn role_scopes(requested: &[String]) -> Result<BTreeSet<Scope>, RoleRuleError> {
    let scopes = requested
        .iter()
        .map(|t| Scope::parse(t).ok_or_else(|| RoleRuleError::UnknownScope(t.clone())))
        .collect::<Result<BTreeSet<_>, _>>()?;
    if scopes.is_empty() {
        return Err(RoleRuleError::NoScopes);
    }
    Ok(scopes)
}

pub fn check_description(description: Option<&str>) -> Result<(), RoleRuleError> {
    match description {
        Some(d) if d.chars().count() > 200 => Err(RoleRuleError::Description),
        _ => Ok(()),
    }
}

/// A change of a role's scopes must not give a publishable holder a secret-only scope.
pub fn check_new_scopes(role: &Role, scopes: &BTreeSet<Scope>) -> Result<(), RoleRuleError> {
    if role.publishable_count > 0
        && let Some(s) = scopes.iter().find(|s| s.secret_only())
    {
        return Err(RoleRuleError::SecretScopeForPublishable(*s));
    }
    Ok(())
}

/// Only a caller holding every secret-key scope creates, changes or deletes a role: a role
/// reaches every holder, so anything weaker could widen or strip a stronger key. The scopes
/// it lacks, in order.
pub fn missing_for_role_change(caller: &BTreeSet<Scope>) -> Vec<Scope> {
    Scope::ALL.iter().copied().filter(|s| !caller.contains(s)).collect()
}

/// How a change of keys moves one role's holder counts, and the version of the role the
/// change was decided on when it newly assigns the role (so a role changed in between makes
/// the change decide again).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleCount {
    pub name: RoleName,
    pub keys: i64,
    pub publishable: i64,
    pub decided_at: Option<u64>,
}

/// The holder-count changes of replacing `old` by `new` (either absent: a key created, or
/// none removed). A revoked key holds nothing. `read` are the custom roles the change was
/// decided on: a role newly assigned must still be at that version when it commits.
pub fn holder_changes(old: Option<&super::KeyRecord>, new: Option<&super::KeyRecord>, read: &[Role]) -> Vec<RoleCount> {
    let held = |r: Option<&super::KeyRecord>| -> (BTreeSet<RoleName>, bool) {
        match r {
            Some(r) if r.revoked_at.is_none() => (r.roles.clone(), r.key_type == KeyType::Publishable),
            _ => (BTreeSet::new(), false),
        }
    };
    let (before, was_public) = held(old);
    let (after, is_public) = held(new);
    before
        .union(&after)
        .filter_map(|name| {
            let count = |set: &BTreeSet<RoleName>| i64::from(set.contains(name));
            let keys = count(&after) - count(&before);
            let publishable = count(&after) * i64::from(is_public) - count(&before) * i64::from(was_public);
            let newly = after.contains(name) && !before.contains(name);
            let decided_at = read.iter().find(|r| &r.name == name && newly && !r.built_in).map(|r| r.version);
            (keys != 0 || publishable != 0).then(|| RoleCount { name: name.clone(), keys, publishable, decided_at })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_pattern() {
        for good in ["a", "support_agent", "a0_9", &"r".repeat(40)] {
            assert!(RoleName::parse(good).is_ok(), "{good}");
        }
        for bad in ["", "0a", "_a", "A", "a-b", "a b", "é", &"r".repeat(41), "admin\n"] {
            assert!(RoleName::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(RoleName::parse("read_only").unwrap().built_in(), Some(BuiltInRole::ReadOnly));
        assert_eq!(RoleName::parse("support").unwrap().built_in(), None);
    }

    #[test]
    fn built_in_roles_hold_what_api_md_says() {
        assert_eq!(BuiltInRole::Admin.scopes().len(), Scope::ALL.len());
        assert!(!BuiltInRole::Developer.scopes().contains(&Scope::KeysWrite));
        assert_eq!(BuiltInRole::Developer.scopes().len(), Scope::ALL.len() - 1);
        assert_eq!(BuiltInRole::ReadOnly.scopes(), [Scope::ReadBuddies, Scope::ReadOperations, Scope::KeysRead].into());
        assert_eq!(BuiltInRole::Browser.scopes(), publishable_defaults());
        assert!(Role::built_in(BuiltInRole::Browser, None).fits(KeyType::Publishable));
        assert!(!Role::built_in(BuiltInRole::ReadOnly, None).fits(KeyType::Publishable), "keys:read is secret-only");
        assert!(Role::built_in(BuiltInRole::Admin, None).fits(KeyType::Secret));
    }

    #[test]
    fn holder_counts_follow_creation_change_and_revocation() {
        use crate::domain::{ApiKey, KeyKind, KeyRecord};
        let name = |n: &str| RoleName::parse(n).unwrap();
        let key = ApiKey::generate(KeyKind::Publishable);
        let mut a = KeyRecord {
            key_hash: key.hash(),
            prefix: key.prefix(),
            key_type: KeyType::Publishable,
            environment: crate::domain::Environment::Live,
            customer_id: crate::domain::CustomerId::parse("acme").unwrap(),
            primary_token: crate::domain::TokenKey::parse("coins").unwrap(),
            tier: crate::domain::Tier::Free,
            scopes: BTreeSet::new(),
            roles: [name("browser"), name("viewer")].into(),
            role_scopes: BTreeSet::new(),
            allowed_origins: vec![],
            hmac_secret: None,
            require_signed_user_id: false,
            label: None,
            owner: None,
            created_at: crate::domain::UnixTime::from_secs(0),
            last_used_at: None,
            revoked_at: None,
            expires_at: None,
            monthly_quota: None,
            version: 0,
        };
        let viewer = Role {
            name: name("viewer"),
            description: None,
            scopes: [Scope::ReadBuddies].into(),
            built_in: false,
            key_count: 0,
            publishable_count: 0,
            version: 7,
        };
        let created = holder_changes(None, Some(&a), std::slice::from_ref(&viewer));
        assert_eq!(
            created,
            vec![
                RoleCount { name: name("browser"), keys: 1, publishable: 1, decided_at: None },
                RoleCount { name: name("viewer"), keys: 1, publishable: 1, decided_at: Some(7) },
            ]
        );
        let mut b = a.clone();
        b.roles = [name("viewer")].into();
        let changed = holder_changes(Some(&a), Some(&b), std::slice::from_ref(&viewer));
        assert_eq!(changed, vec![RoleCount { name: name("browser"), keys: -1, publishable: -1, decided_at: None }]);
        a.key_type = KeyType::Secret;
        let mut revoked = a.clone();
        revoked.revoked_at = Some(crate::domain::UnixTime::from_secs(5));
        let gone = holder_changes(Some(&a), Some(&revoked), &[]);
        assert_eq!(gone.iter().map(|c| (c.keys, c.publishable)).collect::<Vec<_>>(), vec![(-1, 0), (-1, 0)]);
        assert!(holder_changes(Some(&revoked), Some(&revoked), &[]).is_empty());
    }

    #[test]
    fn role_changes_need_every_secret_scope() {
        assert!(missing_for_role_change(&BuiltInRole::Admin.scopes()).is_empty());
        assert_eq!(missing_for_role_change(&BuiltInRole::Developer.scopes()), vec![Scope::KeysWrite]);
    }

    #[test]
    fn a_role_a_publishable_key_holds_never_gains_a_secret_only_scope() {
        let mut role = Role::built_in(BuiltInRole::Browser, None);
        let wider: BTreeSet<Scope> = [Scope::ReadBuddies, Scope::KeysRead].into();
        assert_eq!(check_new_scopes(&role, &wider), Ok(()), "no publishable holder");
        role.publishable_count = 1;
        assert_eq!(check_new_scopes(&role, &wider), Err(RoleRuleError::SecretScopeForPublishable(Scope::KeysRead)));
        assert_eq!(check_new_scopes(&role, &[Scope::WriteUnlocks].into()), Ok(()));
        assert_eq!(role_scopes(&[]), Err(RoleRuleError::NoScopes));
        assert!(matches!(role_scopes(&["root".into()]), Err(RoleRuleError::UnknownScope(_))));
    }
}
