//! Key management — issue, roll, change, revoke — the one code path behind the HTTP routes and
//! `hatchctl`. Each change is decided on a consistent read of the key and written with its
//! audit event in one transaction, over the version it was decided on; a concurrent change
//! makes it read and decide again. The plaintext key and HMAC secret exist only in the
//! returned [`Issued`]; the table holds the key's hash and the secret sealed.

use std::collections::BTreeSet;

use std::sync::Arc;

use crate::domain::audit::{Actor, AuditAction, AuditEvent, Changes};
use crate::domain::origin::{self, OriginPatternError};
use crate::domain::quota::{self, MonthlyQuota};
use crate::domain::role::{self, Role, RoleName, holder_changes};
use crate::domain::time::Clock;
use crate::domain::token::SessionSubject;
use crate::domain::token::revocation_needed;
use crate::domain::{
    ApiKey, CustomerId, Environment, HmacSecret, KeyKind, KeyPrefix, KeyRecord, KeyType, Scope, ScopeGrantError, Tier,
    TokenKey, UnixTime, grant_scopes,
};
use crate::roles::{RoleScope, Roles};
use crate::sealing::Sealer;
use crate::sealing::SealingError;
use crate::store::Store;
use crate::store::retry::{self, Attempt, Exhausted};
use crate::store::{AuditPage, KeyPage, StoreError};

/// The key management service.
#[derive(Debug, Clone)]
pub struct Keys {
    store: Store,
    clock: Clock,
    /// The data key sealing HMAC secrets, loaded on first use.
    sealer: Arc<Sealer>,
    /// A key's roles are checked and resolved through the roles service.
    roles: Roles,
}

impl Keys {
    pub fn new(store: Store, clock: Clock, sealer: Arc<Sealer>, roles: Roles) -> Keys {
        Keys { store, clock, sealer, roles }
    }

    /// One page of the caller's customer's keys in its environment, newest first.
    pub async fn page(
        &self,
        customer: &CustomerId,
        env: Environment,
        limit: u32,
        after: Option<&str>,
    ) -> Result<KeyPage, KeyError> {
        let mut page = self.store.list_keys_page(customer, env, limit, after).await?;
        // Custom roles resolved from one read of the customer's roles, only if a key holds any.
        if page.keys.iter().any(|k| !k.custom_roles().is_empty()) {
            let roles = self.store.list_role_items(customer, env).await?;
            for key in &mut page.keys {
                key.resolve_roles(&roles);
            }
        }
        Ok(page)
    }

    /// One page of a customer environment's audit events (or one target's), newest first.
    pub async fn audit_page(
        &self,
        customer: &CustomerId,
        env: Environment,
        target: Option<&str>,
        limit: u32,
        after: Option<&str>,
    ) -> Result<AuditPage, KeyError> {
        Ok(self.store.list_audit(customer, env, target, limit, after).await?)
    }
}

/// What a new key may be issued with besides its customer, type and environment.
#[derive(Debug, Clone, Default)]
pub struct KeyOptions {
    /// `None`: Free for the operator, the caller's own tier over HTTP.
    pub tier: Option<Tier>,
    pub label: Option<String>,
    pub owner: Option<String>,
    /// `None`: the type's default scopes (over HTTP, those the caller holds), or none at all
    /// when `roles` are given (the key then holds only its roles' scopes).
    pub scopes: Option<Vec<String>>,
    /// Built-in or custom role names.
    pub roles: Option<Vec<String>>,
    pub allowed_origins: Vec<String>,
    pub require_signed_user_id: bool,
    /// `None`: the caller's own quota (none for the operator); `Some(None)`: no quota.
    pub monthly_quota: Option<Option<MonthlyQuota>>,
}

/// The fields of a key that may change (`PATCH`); `None` leaves one as it is.
#[derive(Debug, Clone, Default)]
pub struct KeyPatch {
    pub label: Option<Option<String>>,
    pub scopes: Option<Vec<String>>,
    pub roles: Option<Vec<String>>,
    pub allowed_origins: Option<Vec<String>>,
    pub require_signed_user_id: Option<bool>,
    /// `Some(None)` removes the quota.
    pub monthly_quota: Option<Option<MonthlyQuota>>,
}

/// A key just issued: the plaintext and HMAC secret (shown once) and the record.
#[derive(Debug)]
pub struct Issued {
    pub key: ApiKey,
    pub record: KeyRecord,
    pub hmac_secret: Option<HmacSecret>,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("allowed origins and signed user ids apply to publishable keys only")]
    PublishableOnly,
    /// By position, never by value: an entry may be anything pasted, a key included.
    #[error("allowed_origins[{0}] is not an origin (expected https://host[:port] or https://*.domain)")]
    InvalidOrigin(usize),
    #[error("allowed_origins[{0}] is refused: {1}")]
    RefusedOrigin(usize, OriginPatternError),
    #[error(transparent)]
    Scopes(#[from] ScopeGrantError),
    /// By position: the text may be anything pasted.
    #[error("roles[{0}] is no role of this customer and environment")]
    UnknownRole(usize),
    #[error("a key holds at most {} roles", role::MAX_ROLES_PER_KEY)]
    TooManyRoles,
    #[error("role {0} holds a scope a publishable key may never hold")]
    RoleNotForPublishable(RoleName),
    /// The caller would grant what it does not hold itself (a scope, or a higher tier).
    #[error("a key cannot grant {0}, which it does not hold")]
    Escalation(String),
    #[error("no key with that prefix")]
    NotFound,
    #[error("the key is {0}; issue a new key instead")]
    Unusable(&'static str),
    #[error("no customer {0}")]
    NoCustomer(CustomerId),
    /// The key kept changing concurrently (or every prefix drawn was taken).
    #[error(transparent)]
    Contended(#[from] Exhausted),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Sealing(#[from] SealingError),
}

/// Who manages keys: a key over HTTP (only its own customer's keys in its own environment,
/// never granting more than it holds) or the operator (`hatchctl`).
#[derive(Debug, Clone)]
pub struct Manager<'a> {
    pub caller: Option<&'a KeyRecord>,
    pub actor: Actor,
}

impl Manager<'_> {
    pub fn operator() -> Manager<'static> {
        Manager { caller: None, actor: Actor::operator() }
    }

    /// A key managing its own customer's keys; the audit trail names `actor`.
    pub fn key(caller: &KeyRecord, actor: Actor) -> Manager<'_> {
        Manager { caller: Some(caller), actor }
    }

    /// Can this manager see the key at all? (Another customer's or environment's is "not found".)
    fn sees(&self, record: &KeyRecord) -> bool {
        self.caller.is_none_or(|c| c.customer_id == record.customer_id && c.environment == record.environment)
    }

    /// Changing a key (its scopes, origins or signature rule, its expiry, revoking it) is for a
    /// manager at least as powerful as the key: a weaker key could otherwise open up a stronger
    /// one (drop a public key's signature requirement) or disable it.
    fn may_manage(&self, target: &KeyRecord) -> Result<(), KeyError> {
        self.may_grant(&target.effective_scopes(), target.tier, target.monthly_quota)
    }

    fn may_grant(&self, scopes: &BTreeSet<Scope>, tier: Tier, monthly: Option<MonthlyQuota>) -> Result<(), KeyError> {
        let Some(caller) = self.caller else { return Ok(()) };
        if let Some(scope) = scopes.iter().find(|s| !caller.has_scope(**s)) {
            return Err(KeyError::Escalation(scope.as_str().to_owned()));
        }
        if tier > caller.tier {
            return Err(KeyError::Escalation(format!("tier:{tier}")));
        }
        if !quota::within(caller.monthly_quota, monthly) {
            // A capped key could otherwise mint an uncapped (or less capped) one.
            return Err(KeyError::Escalation("monthly_quota".to_owned()));
        }
        Ok(())
    }
}

fn check_origins(key_type: KeyType, origins: &[String], signed: bool) -> Result<(), KeyError> {
    if key_type == KeyType::Secret && (!origins.is_empty() || signed) {
        return Err(KeyError::PublishableOnly);
    }
    Ok(())
}

/// Allowlist entries being set, as they are stored: each in the form a browser sends
/// (`origin::check_pattern`). Entries already on record are not re-checked: they keep
/// matching what they matched, and a stricter rule does not block an unrelated change.
fn stored_origins(origins: &[String]) -> Result<Vec<String>, KeyError> {
    origins
        .iter()
        .enumerate()
        .map(|(i, entry)| match origin::check_pattern(entry) {
            Ok(stored) => Ok(stored),
            Err(OriginPatternError::Malformed) => Err(KeyError::InvalidOrigin(i)),
            Err(e) => Err(KeyError::RefusedOrigin(i, e)),
        })
        .collect()
}

/// What an audit event records of a key's fields (never its hash or secret).
fn key_changes(old: Option<&KeyRecord>, new: &KeyRecord) -> Changes {
    let scopes = |r: &KeyRecord| r.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>();
    let time = |t: Option<UnixTime>| t.map(UnixTime::rfc3339);
    Changes::default()
        .field("type", old.map(|o| o.key_type.as_str()), Some(new.key_type.as_str()))
        .field("tier", old.map(|o| o.tier.as_str()), Some(new.tier.as_str()))
        .field("label", old.and_then(|o| o.label.clone()), new.label.clone())
        .field("scopes", old.map(scopes), Some(scopes(new)))
        .field(
            "roles",
            old.map(|o| o.roles.iter().map(RoleName::as_str).collect::<Vec<_>>()),
            Some(new.roles.iter().map(RoleName::as_str).collect::<Vec<_>>()),
        )
        .field("allowed_origins", old.map(|o| o.allowed_origins.clone()), Some(new.allowed_origins.clone()))
        .field("require_signed_user_id", old.map(|o| o.require_signed_user_id), Some(new.require_signed_user_id))
        .field("expires_at", old.and_then(|o| time(o.expires_at)), time(new.expires_at))
        .field("revoked_at", old.and_then(|o| time(o.revoked_at)), time(new.revoked_at))
        .field(
            "monthly_quota",
            old.and_then(|o| o.monthly_quota.map(MonthlyQuota::get)),
            new.monthly_quota.map(MonthlyQuota::get),
        )
}

impl Keys {
    /// Issues a key; over HTTP, in the caller's customer and environment and within its rights.
    pub async fn issue_key(
        &self,
        customer: &CustomerId,
        key_type: KeyType,
        environment: Environment,
        options: KeyOptions,
        by: &Manager<'_>,
    ) -> Result<Issued, KeyError> {
        check_origins(key_type, &options.allowed_origins, options.require_signed_user_id)?;
        let allowed_origins = stored_origins(&options.allowed_origins)?;
        let primary_token = match by.caller {
            Some(caller) => caller.primary_token.clone(),
            None => {
                let found = self.store.get_customer(customer).await?;
                found.ok_or_else(|| KeyError::NoCustomer(customer.clone()))?.primary_token
            }
        };
        let tier = options.tier.or(by.caller.map(|c| c.tier)).unwrap_or(Tier::Free);
        let monthly_quota = options.monthly_quota.unwrap_or(by.caller.and_then(|c| c.monthly_quota));
        // Decided on the roles as read; a role changed before the commit decides again.
        retry::attempts("issue_key", |_| async {
            let (roles, read_roles) =
                self.assignable(customer, environment, key_type, options.roles.as_deref()).await?;
            let mut scopes = match (&options.scopes, roles.is_empty()) {
                (None, false) => BTreeSet::new(), // its roles' scopes only
                (requested, _) => grant_scopes(key_type, requested.as_deref())?,
            };
            if let (Some(caller), None) = (by.caller, &options.scopes) {
                // Defaults never exceed what the caller holds.
                scopes.retain(|s| caller.has_scope(*s));
            }
            let granted: BTreeSet<Scope> =
                scopes.iter().copied().chain(read_roles.iter().flat_map(|r| r.scopes.iter().copied())).collect();
            by.may_grant(&granted, tier, monthly_quota)?;
            let template = KeyTemplate {
                key_type,
                environment,
                customer_id: customer.clone(),
                primary_token: primary_token.clone(),
                tier,
                scopes,
                roles,
                read_roles,
                allowed_origins: allowed_origins.clone(),
                hmac_secret: options.require_signed_user_id.then(HmacSecret::generate),
                require_signed_user_id: options.require_signed_user_id,
                label: options.label.clone(),
                owner: options.owner.clone(),
                monthly_quota,
            };
            match self.create_from(&template, None, by).await {
                Ok(issued) => Ok(Attempt::Done(issued)),
                Err(KeyError::Store(e)) => e.retry().map_err(KeyError::from),
                Err(e) => Err(e),
            }
        })
        .await
    }

    /// The key with this prefix, if the manager may see it.
    /// Its custom roles are resolved as they stand now (one more read, only if it holds any).
    pub async fn managed_key(&self, prefix: &KeyPrefix, by: &Manager<'_>) -> Result<KeyRecord, KeyError> {
        let record = self.store.key_by_prefix(prefix).await?;
        let mut record = record.filter(|r| by.sees(r)).ok_or(KeyError::NotFound)?;
        self.roles.resolve(&mut record).await?;
        Ok(record)
    }

    /// The roles named for a key of this type, as they stand now: each must exist and fit the
    /// type. The names, and the roles read (their versions bind the commit).
    async fn assignable(
        &self,
        customer: &CustomerId,
        env: Environment,
        key_type: KeyType,
        requested: Option<&[String]>,
    ) -> Result<(BTreeSet<RoleName>, Vec<Role>), KeyError> {
        let Some(requested) = requested else { return Ok((BTreeSet::new(), Vec::new())) };
        if requested.len() > role::MAX_ROLES_PER_KEY {
            return Err(KeyError::TooManyRoles);
        }
        let names = requested
            .iter()
            .enumerate()
            .map(|(i, text)| RoleName::parse(text).map_err(|_| KeyError::UnknownRole(i)))
            .collect::<Result<BTreeSet<_>, _>>()?;
        let roles = self.roles.named(RoleScope { customer, env }, &names).await?.map_err(|missing| {
            KeyError::UnknownRole(requested.iter().position(|t| t == missing.as_str()).unwrap_or(0))
        })?;
        if let Some(unfit) = roles.iter().find(|r| !r.fits(key_type)) {
            return Err(KeyError::RoleNotForPublishable(unfit.name.clone()));
        }
        Ok((names, roles))
    }

    /// A replacement with the same attributes (the HMAC secret too: it lives with the
    /// customer's backend); the old key expires `grace_secs` from now, never later than an
    /// expiry it already had. Returns the new key and the old key as it now stands.
    pub async fn roll_key(
        &self,
        prefix: &KeyPrefix,
        grace_secs: i64,
        by: &Manager<'_>,
    ) -> Result<(Issued, KeyRecord), KeyError> {
        retry::attempts("roll_key", |_| async move {
            let old = self.managed_key(prefix, by).await?;
            let now = self.clock.now();
            if old.revoked_at.is_some() {
                return Err(KeyError::Unusable("revoked"));
            }
            if old.usable_at(now).is_err() {
                return Err(KeyError::Unusable("expired"));
            }
            // The new key holds what the old one does: only for a manager who holds it too.
            by.may_manage(&old)?;
            // A fresh secret for the new key, shown once in this answer (API.md: a secret
            // appears in exactly one response): a roll after a leak must not hand the leaked
            // secret on. The old key keeps its own until its grace ends.
            let hmac_secret = (old.hmac_secret.is_some() || old.require_signed_user_id).then(HmacSecret::generate);
            let template = KeyTemplate {
                key_type: old.key_type,
                environment: old.environment,
                customer_id: old.customer_id.clone(),
                primary_token: old.primary_token.clone(),
                tier: old.tier,
                scopes: old.scopes.clone(),
                roles: old.roles.clone(),
                read_roles: Vec::new(),
                allowed_origins: old.allowed_origins.clone(),
                hmac_secret,
                require_signed_user_id: old.require_signed_user_id,
                label: old.label.clone(),
                owner: old.owner.clone(),
                monthly_quota: old.monthly_quota,
            };
            let grace_end = now.plus_secs(grace_secs);
            let expires = old.expires_at.map_or(grace_end, |e| e.min(grace_end));
            let retired = KeyRecord { expires_at: Some(expires), version: old.version + 1, ..old.clone() };
            match self.create_from(&template, Some((&old, &retired)), by).await {
                Ok(mut issued) => {
                    // The same roles as the old key, resolved for it in this attempt.
                    issued.record.role_scopes = old.role_scopes.clone();
                    Ok(Attempt::Done((issued, retired)))
                }
                Err(KeyError::Store(e)) => e.retry().map_err(KeyError::from),
                Err(e) => Err(e),
            }
        })
        .await
    }

    /// Applies a change of label, scopes, origins or signed-user-id requirement. Returns the
    /// record and, when turning signed user ids on created a secret, that secret (shown once).
    pub async fn update_key(
        &self,
        prefix: &KeyPrefix,
        patch: &KeyPatch,
        by: &Manager<'_>,
    ) -> Result<(KeyRecord, Option<HmacSecret>), KeyError> {
        retry::attempts("update_key", |_| async move {
            let old = self.managed_key(prefix, by).await?;
            let mut new = KeyRecord { version: old.version + 1, ..old.clone() };
            if let Some(label) = &patch.label {
                new.label = label.clone();
            }
            let mut read_roles = Vec::new();
            if let (Some(_), Some(_)) = (&patch.roles, old.revoked_at) {
                return Err(KeyError::Unusable("revoked"));
            }
            if let Some(roles) = &patch.roles {
                let (names, read) =
                    self.assignable(&old.customer_id, old.environment, old.key_type, Some(roles)).await?;
                new.roles = names;
                let custom: Vec<Role> = read.iter().filter(|r| !r.built_in).cloned().collect();
                new.resolve_roles(&custom);
                read_roles = read;
            }
            if let Some(scopes) = &patch.scopes {
                new.scopes = grant_scopes(old.key_type, Some(scopes))?;
            }
            if let Some(quota) = patch.monthly_quota {
                new.monthly_quota = quota;
            }
            if patch.scopes.is_some() || patch.roles.is_some() || patch.monthly_quota.is_some() {
                by.may_grant(&new.effective_scopes(), new.tier, new.monthly_quota)?;
            }
            if let Some(origins) = &patch.allowed_origins {
                new.allowed_origins = stored_origins(origins)?;
            }
            if let Some(signed) = patch.require_signed_user_id {
                new.require_signed_user_id = signed;
            }
            check_origins(new.key_type, &new.allowed_origins, new.require_signed_user_id)?;
            by.may_manage(&old)?;
            let fresh_secret = match (new.require_signed_user_id, &new.hmac_secret) {
                (true, None) => Some(HmacSecret::generate()),
                _ => None,
            };
            if let Some(secret) = &fresh_secret {
                // A new secret for a (public) key lets its holder act with the key's scopes.
                by.may_grant(&new.effective_scopes(), new.tier, new.monthly_quota)?;
                new.hmac_secret = Some(self.sealer.key().await?.seal(secret, &new.key_hash)?);
            }
            let mut changes = key_changes(Some(&old), &new);
            if fresh_secret.is_some() {
                // That a secret was created is part of the trail; the secret never is.
                changes = changes.field("hmac_secret", None, Some("created"));
            }
            if changes.is_empty() {
                return Ok(Attempt::Done((old, None))); // nothing changes, nothing is written or audited
            }
            let event = self.key_event(by, &new, AuditAction::KeyUpdated, changes);
            let counts = holder_changes(Some(&old), Some(&new), &read_roles);
            match self.store.commit_keys("update_key", &[], &[(&old, &new)], &counts, Some(&event)).await {
                Ok(()) => Ok(Attempt::Done((new, fresh_secret))),
                Err(e) => e.retry().map_err(KeyError::from),
            }
        })
        .await
    }

    /// Revokes a key; revoking again keeps the first `revoked_at` and writes nothing.
    pub async fn revoke_key(&self, prefix: &KeyPrefix, by: &Manager<'_>) -> Result<KeyRecord, KeyError> {
        retry::attempts("revoke_key", |_| async move {
            let old = self.managed_key(prefix, by).await?;
            if old.revoked_at.is_some() {
                return Ok(Attempt::Done(old));
            }
            by.may_manage(&old)?;
            let new = KeyRecord { revoked_at: Some(self.clock.now()), version: old.version + 1, ..old.clone() };
            let event = self.key_event(by, &new, AuditAction::KeyRevoked, key_changes(Some(&old), &new));
            let counts = holder_changes(Some(&old), Some(&new), &[]);
            match self.store.commit_keys("revoke_key", &[], &[(&old, &new)], &counts, Some(&event)).await {
                Ok(()) => Ok(Attempt::Done(new)),
                Err(e) => e.retry().map_err(KeyError::from),
            }
        })
        .await
    }

    /// Ends every session of `customer`/`env` matching `subject` issued until now, at once and
    /// for good (sessions minted later are unaffected). Returns the revocation time in force.
    pub async fn revoke_sessions(
        &self,
        customer: &CustomerId,
        env: Environment,
        subject: &SessionSubject,
        by: &Manager<'_>,
    ) -> Result<UnixTime, KeyError> {
        let now_millis = self.clock.now_millis();
        let now = UnixTime::from_millis(now_millis);
        let target = format!("{}:{}", subject.field(), subject.value());
        let event = |previous: Option<UnixTime>| {
            let changes =
                Changes::default().field("revoked_before", previous.map(UnixTime::rfc3339), Some(now.rfc3339()));
            AuditEvent::new(&by.actor, customer, env, AuditAction::SessionsRevoked, target.clone(), changes, now_millis)
        };
        let previous = retry::attempts("revoke_sessions", |_| async {
            let standing = self.store.revocation_marker(customer, env, subject).await?;
            if !revocation_needed(standing, now) {
                return Ok(Attempt::Done(standing));
            }
            match self.store.put_revocation_marker(customer, env, subject, now, &event(standing)).await {
                Ok(()) => Ok(Attempt::Done(standing)),
                Err(e) => e.retry().map_err(KeyError::from),
            }
        })
        .await?;
        Ok(previous.filter(|p| *p > now).unwrap_or(now))
    }

    fn key_event(&self, by: &Manager<'_>, target: &KeyRecord, action: AuditAction, changes: Changes) -> AuditEvent {
        AuditEvent::new(
            &by.actor,
            &target.customer_id,
            target.environment,
            action,
            target.prefix.as_str(),
            changes,
            self.clock.now_millis(),
        )
    }

    /// Creates a key from `t` (and, for a roll, replaces the old key with its retired version in
    /// the same transaction), with its audit event.
    async fn create_from(
        &self,
        t: &KeyTemplate,
        replacing: Option<(&KeyRecord, &KeyRecord)>,
        by: &Manager<'_>,
    ) -> Result<Issued, KeyError> {
        let sealer = match &t.hmac_secret {
            Some(_) => Some(self.sealer.key().await?),
            None => None,
        };
        // A prefix collision (1 in 62^6 per pair) just means drawing again.
        retry::attempts("create_key", |_| async move {
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
                roles: t.roles.clone(),
                role_scopes: BTreeSet::new(),
                allowed_origins: t.allowed_origins.clone(),
                require_signed_user_id: t.require_signed_user_id,
                hmac_secret: sealed,
                label: t.label.clone(),
                owner: t.owner.clone(),
                created_at: self.clock.now(),
                last_used_at: None,
                revoked_at: None,
                expires_at: None,
                monthly_quota: t.monthly_quota,
                version: 0,
            };
            let mut record = record;
            let custom: Vec<Role> = t.read_roles.iter().filter(|r| !r.built_in).cloned().collect();
            record.resolve_roles(&custom);
            let (event, changed) = match replacing {
                None => (self.key_event(by, &record, AuditAction::KeyCreated, key_changes(None, &record)), vec![]),
                Some((old, retired)) => {
                    let changes = key_changes(Some(old), retired).field(
                        "replaced_by",
                        None,
                        Some(record.prefix.as_str().to_owned()),
                    );
                    (self.key_event(by, old, AuditAction::KeyRolled, changes), vec![(old, retired)])
                }
            };
            let counts = holder_changes(None, Some(&record), &t.read_roles);
            match self.store.commit_keys("create_key", &[&record], &changed, &counts, Some(&event)).await {
                Ok(()) => Ok(Attempt::Done(Issued { key, record, hmac_secret: t.hmac_secret.clone() })),
                Err(StoreError::AlreadyExists) => Ok(Attempt::Reread),
                Err(e) => Err(e.into()),
            }
        })
        .await
    }
}

/// The attributes a key is created with (an issue's, or copied from the key a roll replaces).
#[derive(Debug, Clone)]
struct KeyTemplate {
    key_type: KeyType,
    environment: Environment,
    customer_id: CustomerId,
    primary_token: TokenKey,
    tier: Tier,
    scopes: BTreeSet<Scope>,
    roles: BTreeSet<RoleName>,
    /// The roles as read when deciding (a newly assigned custom role must stay at that version).
    read_roles: Vec<Role>,
    allowed_origins: Vec<String>,
    hmac_secret: Option<HmacSecret>,
    require_signed_user_id: bool,
    label: Option<String>,
    owner: Option<String>,
    monthly_quota: Option<MonthlyQuota>,
}
