//! Roles — list, read, create, change, delete — and the resolution of a key's custom roles at
//! each request. A role change is decided on a consistent read and written with its audit event
//! in one transaction over the version it was decided on; no key is touched, so a change reaches
//! every holder on its next request.

use std::collections::BTreeSet;

use crate::domain::audit::{AuditAction, AuditEvent, Changes};
use crate::domain::role::{self, BuiltInRole, Role, RoleName, RoleRuleError};
use crate::domain::time::Clock;
use crate::domain::{CustomerId, Environment, KeyRecord, Scope};
use crate::keys::Manager;
use crate::store::retry::{self, Attempt, Exhausted};
use crate::store::{Store, StoreError};

/// The roles service.
#[derive(Debug, Clone)]
pub struct Roles {
    store: Store,
    clock: Clock,
}

#[derive(Debug, thiserror::Error)]
pub enum RoleError {
    #[error("no role of that name")]
    NotFound,
    #[error("a role of that name exists")]
    Exists,
    #[error("built-in roles never change")]
    BuiltIn,
    #[error("an unrevoked key holds the role")]
    InUse,
    /// Creating, changing or deleting a role needs every secret-key scope; these are missing.
    #[error("changing roles needs every secret-key scope")]
    Escalation(Vec<Scope>),
    #[error(transparent)]
    Rule(#[from] RoleRuleError),
    #[error(transparent)]
    Contended(#[from] Exhausted),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A change of a role (`PATCH`); `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct RolePatch {
    pub description: Option<Option<String>>,
    pub scopes: Option<Vec<String>>,
}

/// Where roles live and who acts on them.
#[derive(Debug, Clone, Copy)]
pub struct RoleScope<'a> {
    pub customer: &'a CustomerId,
    pub env: Environment,
}

impl Roles {
    pub fn new(store: Store, clock: Clock) -> Roles {
        Roles { store, clock }
    }

    /// Every role of a customer environment: the built-in ones first (in their fixed order),
    /// then the custom ones by name, each with its holder counts.
    pub async fn list(&self, at: RoleScope<'_>) -> Result<Vec<Role>, RoleError> {
        let items = self.store.list_role_items(at.customer, at.env).await?;
        let counts =
            |b: BuiltInRole| items.iter().find(|r| r.name == b.name()).map(|r| (r.key_count, r.publishable_count));
        let mut roles: Vec<Role> = BuiltInRole::ALL.iter().map(|b| Role::built_in(*b, counts(*b))).collect();
        roles.extend(items.iter().filter(|r| !r.built_in).cloned());
        Ok(roles)
    }

    /// One role (a built-in one always exists).
    pub async fn get(&self, at: RoleScope<'_>, name: &RoleName) -> Result<Role, RoleError> {
        let found = self.store.roles_by_name(at.customer, at.env, std::slice::from_ref(name)).await?;
        match (name.built_in(), found.into_iter().next()) {
            (Some(_), Some(counts)) => Ok(counts),
            (Some(b), None) => Ok(Role::built_in(b, None)),
            (None, Some(role)) => Ok(role),
            (None, None) => Err(RoleError::NotFound),
        }
    }

    /// The roles named, as they stand now (custom ones read together, consistent); `Err(name)`
    /// for the first name that is no role.
    pub async fn named(
        &self,
        at: RoleScope<'_>,
        names: &BTreeSet<RoleName>,
    ) -> Result<Result<Vec<Role>, RoleName>, StoreError> {
        let custom: Vec<RoleName> = names.iter().filter(|n| n.built_in().is_none()).cloned().collect();
        let found = self.store.roles_by_name(at.customer, at.env, &custom).await?;
        let mut roles = Vec::new();
        for name in names {
            match (name.built_in(), found.iter().find(|r| &r.name == name)) {
                (Some(b), _) => roles.push(Role::built_in(b, None)),
                (None, Some(role)) => roles.push(role.clone()),
                (None, None) => return Ok(Err(name.clone())),
            }
        }
        Ok(Ok(roles))
    }

    /// Resolves a key's roles' scopes as they stand now: built-in ones cost nothing, custom
    /// ones one consistent read of them all.
    pub async fn resolve(&self, record: &mut KeyRecord) -> Result<(), StoreError> {
        let custom = record.custom_roles();
        if custom.is_empty() {
            record.resolve_roles(&[]);
            return Ok(());
        }
        let roles = self.store.roles_by_name(&record.customer_id, record.environment, &custom).await?;
        record.resolve_roles(&roles);
        Ok(())
    }

    pub async fn create(
        &self,
        at: RoleScope<'_>,
        name: RoleName,
        description: Option<String>,
        scopes: &[String],
        by: &Manager<'_>,
    ) -> Result<Role, RoleError> {
        may_change_roles(by)?;
        if name.built_in().is_some() {
            return Err(RoleError::Exists);
        }
        role::check_description(description.as_deref())?;
        let scopes = role::role_scopes(scopes)?;
        retry::attempts("create_role", |_| async {
            let role = Role {
                name: name.clone(),
                description: description.clone(),
                scopes: scopes.clone(),
                built_in: false,
                key_count: 0,
                publishable_count: 0,
                // A version a deleted role of the same name never had: a key change decided on
                // the old role (bound to its version) cannot commit against the new one.
                version: role::first_version(self.clock.now_millis()),
            };
            let event = self.event(by, at, &role.name, AuditAction::RoleCreated, role_changes(None, Some(&role)));
            match self.store.create_role(at.customer, at.env, &role, &event).await {
                Ok(()) => Ok(Attempt::Done(role)),
                Err(StoreError::AlreadyExists) => Err(RoleError::Exists),
                Err(e) => e.retry().map_err(RoleError::from),
            }
        })
        .await
    }

    pub async fn update(
        &self,
        at: RoleScope<'_>,
        name: &RoleName,
        patch: &RolePatch,
        by: &Manager<'_>,
    ) -> Result<Role, RoleError> {
        may_change_roles(by)?;
        retry::attempts("update_role", |_| async move {
            let old = self.changeable(at, name).await?;
            let mut new = Role { version: old.version + 1, ..old.clone() };
            if let Some(description) = &patch.description {
                role::check_description(description.as_deref())?;
                new.description = description.clone();
            }
            if let Some(scopes) = &patch.scopes {
                new.scopes = role::role_scopes(scopes)?;
                role::check_new_scopes(&old, &new.scopes)?;
            }
            let changes = role_changes(Some(&old), Some(&new));
            if changes.is_empty() {
                return Ok(Attempt::Done(old));
            }
            let event = self.event(by, at, name, AuditAction::RoleUpdated, changes);
            match self.store.update_role(at.customer, at.env, &old, &new, &event).await {
                Ok(()) => Ok(Attempt::Done(new)),
                Err(e) => e.retry().map_err(RoleError::from),
            }
        })
        .await
    }

    pub async fn delete(&self, at: RoleScope<'_>, name: &RoleName, by: &Manager<'_>) -> Result<Role, RoleError> {
        may_change_roles(by)?;
        retry::attempts("delete_role", |_| async move {
            let old = self.changeable(at, name).await?;
            if old.key_count > 0 {
                return Err(RoleError::InUse);
            }
            let event = self.event(by, at, name, AuditAction::RoleDeleted, role_changes(Some(&old), None));
            match self.store.delete_role(at.customer, at.env, &old, &event).await {
                Ok(()) => Ok(Attempt::Done(old)),
                Err(e) => e.retry().map_err(RoleError::from),
            }
        })
        .await
    }

    /// A custom role as it stands (built-in: `BuiltIn`).
    async fn changeable(&self, at: RoleScope<'_>, name: &RoleName) -> Result<Role, RoleError> {
        if name.built_in().is_some() {
            return Err(RoleError::BuiltIn);
        }
        self.get(at, name).await
    }

    fn event(
        &self,
        by: &Manager<'_>,
        at: RoleScope<'_>,
        name: &RoleName,
        action: AuditAction,
        changes: Changes,
    ) -> AuditEvent {
        // `role:<name>`: a role's trail is one query (`?target=role:<name>`), apart from keys'.
        let target = format!("role:{name}");
        AuditEvent::new(&by.actor, at.customer, at.env, action, target, changes, self.clock.now_millis())
    }
}

/// Only the operator, or a key holding every secret-key scope, changes roles.
fn may_change_roles(by: &Manager<'_>) -> Result<(), RoleError> {
    let Some(caller) = by.caller else { return Ok(()) };
    let missing = role::missing_for_role_change(&caller.effective_scopes());
    if missing.is_empty() { Ok(()) } else { Err(RoleError::Escalation(missing)) }
}

/// What an audit event records of a role.
fn role_changes(old: Option<&Role>, new: Option<&Role>) -> Changes {
    let scopes = |r: &Role| r.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>();
    Changes::default()
        .field("description", old.and_then(|o| o.description.clone()), new.and_then(|n| n.description.clone()))
        .field("scopes", old.map(scopes), new.map(scopes))
}
