//! Response shapes shared by several endpoints (gates and unlocks appear in three, keys in five).

use serde::Serialize;
use serde_json::Value;

use crate::domain::audit::{AuditAction, AuditEvent, Changes};
use crate::domain::gate::{Gate, Unlock};
use crate::domain::role::Role;
use crate::domain::time::rfc3339;
use crate::domain::usage::{UsagePoint, UsageQuery};
use crate::domain::{GateKey, KeyPrefix, KeyRecord, TokenKey, UnixTime};

#[derive(Debug, Serialize)]
pub struct GateView {
    pub gate_key: GateKey,
    pub token_key: TokenKey,
    pub cost: i64,
    pub metadata: Option<Value>,
}

impl From<Gate> for GateView {
    fn from(g: Gate) -> GateView {
        GateView { gate_key: g.gate_key, token_key: g.token_key, cost: g.cost, metadata: g.metadata }
    }
}

#[derive(Debug, Serialize)]
pub struct UnlockView {
    pub gate_key: GateKey,
    #[serde(with = "rfc3339")]
    pub unlocked_at: UnixTime,
    pub metadata: Option<Value>,
}

impl From<Unlock> for UnlockView {
    fn from(u: Unlock) -> UnlockView {
        UnlockView { gate_key: u.gate_key, unlocked_at: u.unlocked_at, metadata: u.metadata }
    }
}

/// `GET /api/v1/permissions`: every scope the code knows, from the one list (`Scope::ALL`).
#[derive(Debug, Serialize)]
pub struct PermissionsView {
    pub permissions: Vec<PermissionView>,
}

#[derive(Debug, Serialize)]
pub struct PermissionView {
    pub scope: &'static str,
    pub description: &'static str,
    pub key_types: Vec<&'static str>,
}

impl PermissionsView {
    pub fn all() -> PermissionsView {
        let permissions = crate::domain::Scope::ALL
            .iter()
            .map(|s| PermissionView {
                scope: s.as_str(),
                description: s.description(),
                key_types: s.key_types().iter().map(|t| t.as_str()).collect(),
            })
            .collect();
        PermissionsView { permissions }
    }
}

/// A role as `GET /api/v1/roles` shows it.
#[derive(Debug, Serialize)]
pub struct RoleView {
    pub name: String,
    pub description: Option<String>,
    pub scopes: Vec<&'static str>,
    pub built_in: bool,
    /// Unrevoked keys holding it.
    pub key_count: u64,
}

impl From<&Role> for RoleView {
    fn from(r: &Role) -> RoleView {
        RoleView {
            name: r.name.as_str().to_owned(),
            description: r.description.clone(),
            scopes: r.scopes.iter().map(|s| s.as_str()).collect(),
            built_in: r.built_in,
            key_count: r.key_count,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct RolesView {
    pub roles: Vec<RoleView>,
}

/// A key as key management shows it (API.md `KeyView`): never a hash, a plaintext or a secret.
#[derive(Debug, Serialize)]
pub struct KeyView {
    pub prefix: KeyPrefix,
    #[serde(rename = "type")]
    pub key_type: &'static str,
    pub environment: &'static str,
    pub tier: &'static str,
    pub scopes: Vec<&'static str>,
    pub roles: Vec<String>,
    /// Own scopes ∪ its roles' scopes, as they stand now.
    pub effective_scopes: Vec<&'static str>,
    pub label: Option<String>,
    pub allowed_origins: Vec<String>,
    pub require_signed_user_id: bool,
    #[serde(with = "rfc3339")]
    pub created_at: UnixTime,
    #[serde(with = "rfc3339::option")]
    pub last_used_at: Option<UnixTime>,
    #[serde(with = "rfc3339::option")]
    pub expires_at: Option<UnixTime>,
    #[serde(with = "rfc3339::option")]
    pub revoked_at: Option<UnixTime>,
    /// Requests per calendar month (UTC); `null`: none.
    pub monthly_quota: Option<u64>,
}

impl From<&KeyRecord> for KeyView {
    fn from(r: &KeyRecord) -> KeyView {
        KeyView {
            prefix: r.prefix.clone(),
            key_type: r.key_type.as_str(),
            environment: r.environment.as_str(),
            tier: r.tier.as_str(),
            scopes: r.scopes.iter().map(|s| s.as_str()).collect(),
            roles: r.roles.iter().map(|n| n.as_str().to_owned()).collect(),
            effective_scopes: r.effective_scopes().iter().map(|s| s.as_str()).collect(),
            label: r.label.clone(),
            allowed_origins: r.allowed_origins.clone(),
            require_signed_user_id: r.require_signed_user_id,
            created_at: r.created_at,
            last_used_at: r.last_used_at,
            expires_at: r.expires_at,
            revoked_at: r.revoked_at,
            monthly_quota: r.monthly_quota.map(|q| q.get()),
        }
    }
}

/// An audit event as `GET /api/v1/audit-events` shows it.
#[derive(Debug, Serialize)]
pub struct AuditEventView {
    pub id: String,
    #[serde(with = "rfc3339")]
    pub time: UnixTime,
    pub actor: String,
    pub action: AuditAction,
    pub target: String,
    pub changes: Changes,
    pub request_id: String,
    pub source_ip: String,
}

impl From<AuditEvent> for AuditEventView {
    fn from(e: AuditEvent) -> AuditEventView {
        AuditEventView {
            id: e.id,
            time: e.time,
            actor: e.actor,
            action: e.action,
            target: e.target,
            changes: e.changes,
            request_id: e.request_id,
            source_ip: e.source_ip,
        }
    }
}

/// One key's usage series (API.md `GET /api/v1/keys/{prefix}/usage`).
#[derive(Debug, Serialize)]
pub struct UsageView {
    pub prefix: KeyPrefix,
    pub granularity: &'static str,
    #[serde(with = "rfc3339")]
    pub from: UnixTime,
    #[serde(with = "rfc3339")]
    pub to: UnixTime,
    pub points: Vec<UsagePointView>,
}

#[derive(Debug, Serialize)]
pub struct UsagePointView {
    #[serde(with = "rfc3339")]
    pub start: UnixTime,
    pub accepted: u64,
    pub rate_limited: u64,
    pub quota_exceeded: u64,
}

impl UsageView {
    pub fn new(prefix: &KeyPrefix, query: &UsageQuery, points: &[UsagePoint]) -> UsageView {
        UsageView {
            prefix: prefix.clone(),
            granularity: query.granularity.as_str(),
            from: query.from,
            to: query.to,
            points: points
                .iter()
                .map(|p| UsagePointView {
                    start: p.start,
                    accepted: p.counts.accepted,
                    rate_limited: p.counts.rate_limited,
                    quota_exceeded: p.counts.quota_exceeded,
                })
                .collect(),
        }
    }
}
