//! The audit trail of key management: one event per change, written in the change's own
//! transaction (never a change without its event, never an event without its change), kept
//! at least 400 days. `changes` holds old and new values of what changed — never a secret.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::{CustomerId, Environment, UnixTime};

/// How long an event is kept (DynamoDB TTL deletes it some time after).
pub const RETENTION_SECS: i64 = 400 * 86_400 + 86_400;

word_enum!(AuditAction {
    KeyCreated = "key.created",
    KeyUpdated = "key.updated",
    KeyRolled = "key.rolled",
    KeyRevoked = "key.revoked",
    SessionsRevoked = "sessions.revoked",
    RoleCreated = "role.created",
    RoleUpdated = "role.updated",
    RoleDeleted = "role.deleted",
    PortalSessionCreated = "portal.session_created",
    // An unfinished signing-key rotation discarded by an operator: a platform event, recorded
    // in the signing partition (`SIGNING#AUDIT`), never in a customer's trail.
    SigningKeyRepaired = "signing_key.repaired",
});

/// Who made a change and from where: the acting key's prefix over HTTP, `operator` for hatchctl.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// The acting key's prefix, or `operator`.
    pub name: String,
    pub request_id: String,
    pub source_ip: String,
}

impl Actor {
    pub fn operator() -> Actor {
        Actor {
            name: "operator".into(),
            request_id: format!("op_{}", super::key::random_base62(20)),
            source_ip: "local".into(),
        }
    }
}

/// Old and new values of the fields a change touched.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Changes(Map<String, Value>);

impl Changes {
    /// Records `field` if its value changed.
    pub fn field<T: Serialize + PartialEq>(mut self, field: &str, old: T, new: T) -> Changes {
        if old != new {
            self.0.insert(field.to_owned(), json!({ "old": old, "new": new }));
        }
        self
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn get(&self, field: &str) -> Option<&Value> {
        self.0.get(field)
    }
}

/// `ev_` + the time in milliseconds (8 base62 digits) + 12 random: events of the same second
/// sort in the order they happened.
fn event_id(millis: i64) -> String {
    const DIGITS: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut millis = millis.max(0) as u128;
    let mut stamp = [b'0'; 8];
    for digit in stamp.iter_mut().rev() {
        *digit = DIGITS[(millis % 62) as usize];
        millis /= 62;
    }
    format!("ev_{}{}", String::from_utf8_lossy(&stamp), super::key::random_base62(12))
}

#[derive(Debug, Clone, PartialEq)]
pub struct AuditEvent {
    pub id: String,
    pub customer_id: CustomerId,
    pub environment: Environment,
    pub time: UnixTime,
    pub actor: String,
    pub action: AuditAction,
    pub target: String,
    pub changes: Changes,
    pub request_id: String,
    pub source_ip: String,
}

impl AuditEvent {
    pub fn new(
        who: &Actor,
        customer: &CustomerId,
        env: Environment,
        action: AuditAction,
        target: impl Into<String>,
        changes: Changes,
        now_millis: i64,
    ) -> AuditEvent {
        AuditEvent {
            id: event_id(now_millis),
            customer_id: customer.clone(),
            environment: env,
            time: UnixTime::from_millis(now_millis),
            actor: who.name.clone(),
            action,
            target: target.into(),
            changes,
            request_id: who.request_id.clone(),
            source_ip: who.source_ip.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_changed_fields_are_recorded() {
        let changes = Changes::default().field("label", Some("a"), Some("b")).field("tier", "free", "free");
        assert_eq!(changes.get("label"), Some(&json!({ "old": "a", "new": "b" })));
        assert!(changes.get("tier").is_none());
        assert!(Changes::default().field("x", 1, 1).is_empty());
    }
}
