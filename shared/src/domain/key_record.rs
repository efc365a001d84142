//! A key's record and the words it is made of: environment, type, tier, scopes, and what a
//! key on record may do (its verdicts).

use std::collections::BTreeSet;

use super::*;

word_enum!(
    /// Live and test data never mix: every buddy, balance and session key carries this.
    Environment { Live = "live", Test = "test" }
);
word_enum!(KeyType { Secret = "secret", Publishable = "publishable" });
word_enum!(Tier { Free = "free", Pro = "pro", Enterprise = "enterprise" });
word_enum!(
    /// What an API key may do.
    Scope {
        WidgetSessionsWrite = "widget_sessions:write",
        EmbedTokensCreate = "embed_tokens:create",
        WriteUnlocks = "write:unlocks",
        ReadBuddies = "read:buddies",
        ReadOperations = "read:operations",
        KeysRead = "keys:read",
        KeysWrite = "keys:write",
    }
);

impl Scope {
    /// Scopes a publishable key (public by design) may never hold.
    pub fn secret_only(self) -> bool {
        matches!(self, Scope::WidgetSessionsWrite | Scope::KeysRead | Scope::KeysWrite)
    }

    /// What holding the scope allows, as `GET /api/v1/permissions` tells integrators.
    pub fn description(self) -> &'static str {
        match self {
            Scope::WidgetSessionsWrite => "Mint and revoke widget-session tokens",
            Scope::EmbedTokensCreate => "Mint read-only embed tokens",
            Scope::WriteUnlocks => "Unlock gates, spending a buddy's token balance",
            Scope::ReadBuddies => "List gates and a buddy's unlocks",
            Scope::ReadOperations => "Read operational data: gates, unlocks and their history",
            Scope::KeysRead => "Read the customer's keys, roles, usage and audit trail",
            Scope::KeysWrite => "Create, change, roll and revoke keys and roles",
        }
    }

    /// The key types that may hold the scope.
    pub fn key_types(self) -> &'static [KeyType] {
        if self.secret_only() { &[KeyType::Secret] } else { &[KeyType::Secret, KeyType::Publishable] }
    }
}

impl Tier {
    /// Requests per minute per key.
    pub fn per_minute(self) -> u32 {
        match self {
            Tier::Free => 60,
            Tier::Pro => 600,
            Tier::Enterprise => 6000,
        }
    }
}

/// Requests per minute per source IP for calls that carry no usable key.
pub const ANONYMOUS_PER_MINUTE: u32 = 60;

/// Why a scope list cannot be granted to a key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeGrantError {
    #[error("unknown scope {0:?}")]
    Unknown(String),
    #[error("scope {0} can never be granted to a publishable key")]
    NotForPublishable(Scope),
}

/// The scopes a new key gets: the requested ones, or its type's defaults.
pub fn grant_scopes(key_type: KeyType, requested: Option<&[String]>) -> Result<BTreeSet<Scope>, ScopeGrantError> {
    let Some(requested) = requested else {
        return Ok(match key_type {
            KeyType::Secret => Scope::ALL.iter().copied().collect(),
            KeyType::Publishable => [Scope::ReadBuddies, Scope::ReadOperations, Scope::EmbedTokensCreate].into(),
        });
    };
    let mut granted = BTreeSet::new();
    for text in requested {
        let scope = Scope::parse(text).ok_or_else(|| ScopeGrantError::Unknown(text.clone()))?;
        if key_type == KeyType::Publishable && scope.secret_only() {
            return Err(ScopeGrantError::NotForPublishable(scope));
        }
        granted.insert(scope);
    }
    Ok(granted)
}

/// Everything on record about an API key (never its plaintext).
#[derive(Debug, Clone, PartialEq)]
pub struct KeyRecord {
    pub key_hash: KeyHash,
    pub prefix: KeyPrefix,
    pub key_type: KeyType,
    pub environment: Environment,
    pub customer_id: CustomerId,
    /// The customer's primary (spendable) token key, copied at issuance: it never changes,
    /// and having it here saves the unlock path a customer read.
    pub primary_token: TokenKey,
    pub tier: Tier,
    /// The key's own scopes (its effective scopes add its roles').
    pub scopes: BTreeSet<Scope>,
    /// Built-in and custom roles the key holds.
    pub roles: BTreeSet<role::RoleName>,
    /// Its roles' scopes as resolved for this request (built-in ones when read, custom ones by
    /// `Roles::resolve`): never stored, so a role change reaches the key on its next request.
    pub role_scopes: BTreeSet<Scope>,
    pub allowed_origins: Vec<String>,
    /// HMAC secret for signed user ids (publishable keys that require them), sealed: the
    /// table never holds it in the clear.
    pub hmac_secret: Option<SealedSecret>,
    pub require_signed_user_id: bool,
    pub label: Option<String>,
    pub owner: Option<String>,
    pub created_at: UnixTime,
    pub last_used_at: Option<UnixTime>,
    pub revoked_at: Option<UnixTime>,
    pub expires_at: Option<UnixTime>,
    /// Requests per calendar month (UTC), if capped.
    pub monthly_quota: Option<quota::MonthlyQuota>,
    /// Bumped by every change: a change is written only over the version it was decided on.
    pub version: u64,
}

/// Why a key on record may not be used now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRejection {
    Revoked,
    Expired,
}

/// `last_used_at` is written at most once per this many seconds per key.
pub const LAST_USED_RESOLUTION_SECS: i64 = 60;

impl KeyRecord {
    /// Revocation wins over expiry: it is the operator's explicit word.
    pub fn usable_at(&self, now: UnixTime) -> Result<(), KeyRejection> {
        if self.revoked_at.is_some() {
            return Err(KeyRejection::Revoked);
        }
        match self.expires_at {
            Some(expires) if expires <= now => Err(KeyRejection::Expired),
            _ => Ok(()),
        }
    }

    pub fn has_scope(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope) || self.role_scopes.contains(&scope)
    }

    /// Own scopes ∪ its roles' scopes (as resolved).
    pub fn effective_scopes(&self) -> BTreeSet<Scope> {
        self.scopes.union(&self.role_scopes).copied().collect()
    }

    /// The custom roles it holds (those that cost a read to resolve).
    pub fn custom_roles(&self) -> Vec<role::RoleName> {
        self.roles.iter().filter(|r| r.built_in().is_none()).cloned().collect()
    }

    /// Resolves its roles' scopes: built-in ones from the code, custom ones from `custom`
    /// (the roles as read now; a custom role not among them gives nothing).
    pub fn resolve_roles(&mut self, custom: &[role::Role]) {
        let mut scopes = BTreeSet::new();
        for name in &self.roles {
            match name.built_in() {
                Some(built_in) => scopes.extend(built_in.scopes()),
                None => scopes.extend(custom.iter().filter(|r| &r.name == name).flat_map(|r| r.scopes.iter().copied())),
            }
        }
        if self.key_type == KeyType::Publishable {
            // Never through a role, whatever a role came to hold (the role rules refuse it; this
            // holds even if they were bypassed).
            scopes.retain(|s| !s.secret_only());
        }
        self.role_scopes = scopes;
    }

    /// Publishable keys with an allowlist need a matching `Origin`; secret keys ignore it.
    pub fn origin_allowed(&self, origin: Option<&str>) -> bool {
        if self.key_type == KeyType::Secret || self.allowed_origins.is_empty() {
            return true;
        }
        origin.is_some_and(|o| self.allowed_origins.iter().any(|pattern| origin::matches(pattern, o)))
    }

    pub fn last_used_is_stale(&self, now: UnixTime) -> bool {
        self.last_used_at.is_none_or(|last| now.secs() - last.secs() >= LAST_USED_RESOLUTION_SECS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_scopes_by_type() {
        let secret = grant_scopes(KeyType::Secret, None).unwrap();
        assert_eq!(secret.len(), Scope::ALL.len());
        let pk = grant_scopes(KeyType::Publishable, None).unwrap();
        assert!(!pk.contains(&Scope::WriteUnlocks));
        assert!(!pk.contains(&Scope::WidgetSessionsWrite));
        assert!(pk.contains(&Scope::EmbedTokensCreate));
    }

    #[test]
    fn every_scope_says_what_it_allows_and_who_may_hold_it() {
        for scope in Scope::ALL {
            assert!(!scope.description().is_empty(), "{scope}");
            assert!(scope.key_types().contains(&KeyType::Secret), "{scope}");
            let publishable = scope.key_types().contains(&KeyType::Publishable);
            assert_eq!(publishable, grant_scopes(KeyType::Publishable, Some(&[scope.to_string()])).is_ok(), "{scope}");
        }
    }

    #[test]
    fn publishable_keys_never_get_session_writes() {
        let asked = vec!["widget_sessions:write".to_owned()];
        assert_eq!(
            grant_scopes(KeyType::Publishable, Some(&asked)),
            Err(ScopeGrantError::NotForPublishable(Scope::WidgetSessionsWrite))
        );
        assert!(grant_scopes(KeyType::Secret, Some(&asked)).is_ok());
        let unknown = vec!["admin".to_owned()];
        assert!(matches!(grant_scopes(KeyType::Secret, Some(&unknown)), Err(ScopeGrantError::Unknown(_))));
    }

    fn record() -> KeyRecord {
        let key = ApiKey::generate(KeyKind::Publishable);
        KeyRecord {
            key_hash: key.hash(),
            prefix: key.prefix(),
            key_type: KeyType::Publishable,
            environment: Environment::Live,
            customer_id: CustomerId::parse("acme").unwrap(),
            primary_token: TokenKey::parse("coins").unwrap(),
            tier: Tier::Free,
            scopes: grant_scopes(KeyType::Publishable, None).unwrap(),
            roles: BTreeSet::new(),
            role_scopes: BTreeSet::new(),
            allowed_origins: vec![],
            hmac_secret: None,
            require_signed_user_id: false,
            label: None,
            owner: None,
            created_at: UnixTime::from_secs(1000),
            last_used_at: None,
            revoked_at: None,
            expires_at: None,
            monthly_quota: None,
            version: 0,
        }
    }

    #[test]
    fn revoked_beats_expired_and_expiry_is_inclusive() {
        let mut r = record();
        assert_eq!(r.usable_at(UnixTime::from_secs(2000)), Ok(()));
        r.expires_at = Some(UnixTime::from_secs(2000));
        assert_eq!(r.usable_at(UnixTime::from_secs(1999)), Ok(()));
        assert_eq!(r.usable_at(UnixTime::from_secs(2000)), Err(KeyRejection::Expired));
        r.revoked_at = Some(UnixTime::from_secs(1500));
        assert_eq!(r.usable_at(UnixTime::from_secs(1999)), Err(KeyRejection::Revoked));
    }

    #[test]
    fn origin_rules_apply_to_publishable_keys_only() {
        let mut r = record();
        assert!(r.origin_allowed(None));
        r.allowed_origins = vec!["https://app.example.com".into()];
        assert!(r.origin_allowed(Some("https://app.example.com")));
        assert!(!r.origin_allowed(Some("https://evil.example.com")));
        assert!(!r.origin_allowed(None));
        r.key_type = KeyType::Secret;
        assert!(r.origin_allowed(None));
    }

    #[test]
    fn effective_scopes_are_own_and_roles_resolved_now() {
        let mut r = record();
        r.key_type = KeyType::Secret;
        r.scopes = BTreeSet::new();
        r.roles = [role::RoleName::parse("read_only").unwrap(), role::RoleName::parse("support").unwrap()].into();
        assert_eq!(r.custom_roles(), vec![role::RoleName::parse("support").unwrap()]);
        r.resolve_roles(&[]);
        assert!(r.has_scope(Scope::KeysRead));
        assert!(!r.has_scope(Scope::WriteUnlocks), "an unresolved custom role gives nothing");
        let support = role::Role {
            name: role::RoleName::parse("support").unwrap(),
            description: None,
            scopes: [Scope::WriteUnlocks].into(),
            built_in: false,
            key_count: 1,
            publishable_count: 0,
            version: 0,
        };
        r.resolve_roles(std::slice::from_ref(&support));
        assert!(r.has_scope(Scope::WriteUnlocks));
        assert_eq!(
            r.effective_scopes(),
            [Scope::ReadBuddies, Scope::ReadOperations, Scope::KeysRead, Scope::WriteUnlocks].into()
        );
        // A publishable key never holds a secret-only scope through a role.
        r.key_type = KeyType::Publishable;
        r.resolve_roles(&[support]);
        assert!(!r.has_scope(Scope::KeysRead));
        assert!(r.has_scope(Scope::WriteUnlocks));
    }

    #[test]
    fn last_used_resolution() {
        let mut r = record();
        assert!(r.last_used_is_stale(UnixTime::from_secs(1000)));
        r.last_used_at = Some(UnixTime::from_secs(1000));
        assert!(!r.last_used_is_stale(UnixTime::from_secs(1059)));
        assert!(r.last_used_is_stale(UnixTime::from_secs(1060)));
    }
}
