//! The table's items as stored: each its own type with its own attribute names, mapped to and
//! from the domain here. A domain field can be renamed without changing what is written; the
//! golden items in the tests below pin every attribute name and type, so the table format
//! cannot change by accident (a deployed table holds items in this format).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::domain::audit::{AuditAction, AuditEvent, Changes};
use crate::domain::gate::{Customer, Gate, LedgerEntry, Unlock};
use crate::domain::quota::MonthlyQuota;
use crate::domain::role::{Role, RoleName};
use crate::domain::signing_keys::{KeyState, PublishedKey, PublishedKeys};
use crate::domain::token::{WidgetScope, WidgetSession};
use crate::domain::{
    BuddyId, CustomerId, Environment, GateKey, KeyHash, KeyPrefix, KeyRecord, KeyType, Scope, SealedSecret, SessionId,
    Tier, TokenKey, UnixTime, UserId,
};

/// What both copies of a key carry (the `KEY#` item for authentication, the `PREFIX#` item for
/// key management and its index entry).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct KeyFields {
    key_hash: KeyHash,
    prefix: KeyPrefix,
    key_type: KeyType,
    environment: Environment,
    customer_id: CustomerId,
    primary_token: TokenKey,
    tier: Tier,
    scopes: BTreeSet<Scope>,
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    roles: BTreeSet<RoleName>,
    #[serde(default)]
    allowed_origins: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    hmac_secret_sealed: Option<SealedSecret>,
    #[serde(default)]
    require_signed_user_id: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    label: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    owner: Option<String>,
    created_at: UnixTime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_used_at: Option<UnixTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    revoked_at: Option<UnixTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expires_at: Option<UnixTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    monthly_quota: Option<MonthlyQuota>,
    /// Bumped by every change; a change is written only over the version it was decided on.
    #[serde(default)]
    version: u64,
}

impl From<&KeyRecord> for KeyFields {
    fn from(r: &KeyRecord) -> KeyFields {
        KeyFields {
            key_hash: r.key_hash.clone(),
            prefix: r.prefix.clone(),
            key_type: r.key_type,
            environment: r.environment,
            customer_id: r.customer_id.clone(),
            primary_token: r.primary_token.clone(),
            tier: r.tier,
            scopes: r.scopes.clone(),
            roles: r.roles.clone(),
            allowed_origins: r.allowed_origins.clone(),
            hmac_secret_sealed: r.hmac_secret.clone(),
            require_signed_user_id: r.require_signed_user_id,
            label: r.label.clone(),
            owner: r.owner.clone(),
            created_at: r.created_at,
            last_used_at: r.last_used_at,
            revoked_at: r.revoked_at,
            expires_at: r.expires_at,
            monthly_quota: r.monthly_quota,
            version: r.version,
        }
    }
}

impl From<KeyFields> for KeyRecord {
    fn from(f: KeyFields) -> KeyRecord {
        let mut record = KeyRecord {
            key_hash: f.key_hash,
            prefix: f.prefix,
            key_type: f.key_type,
            environment: f.environment,
            customer_id: f.customer_id,
            primary_token: f.primary_token,
            tier: f.tier,
            scopes: f.scopes,
            roles: f.roles,
            role_scopes: BTreeSet::new(),
            allowed_origins: f.allowed_origins,
            hmac_secret: f.hmac_secret_sealed,
            require_signed_user_id: f.require_signed_user_id,
            label: f.label,
            owner: f.owner,
            created_at: f.created_at,
            last_used_at: f.last_used_at,
            revoked_at: f.revoked_at,
            expires_at: f.expires_at,
            monthly_quota: f.monthly_quota,
            version: f.version,
        };
        // Built-in roles are resolved here (they cost no read); custom ones by `Roles::resolve`.
        record.resolve_roles(&[]);
        record
    }
}

/// `ROLE#<customer>#<env>` / `R#<name>`: a custom role, or a built-in role's holder counts
/// alone (created by the first `ADD`, so it has no scopes or version).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct RoleItem {
    pub pk: String,
    pub sk: String,
    pub name: RoleName,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    #[serde(default)]
    scopes: BTreeSet<Scope>,
    #[serde(default)]
    key_count: u64,
    #[serde(default)]
    publishable_count: u64,
    #[serde(default)]
    version: u64,
}

impl RoleItem {
    pub fn new(pk: String, sk: String, role: &Role) -> RoleItem {
        RoleItem {
            pk,
            sk,
            name: role.name.clone(),
            description: role.description.clone(),
            scopes: role.scopes.clone(),
            key_count: role.key_count,
            publishable_count: role.publishable_count,
            version: role.version,
        }
    }

    pub fn role(self) -> Role {
        match self.name.built_in() {
            Some(built_in) => Role::built_in(built_in, Some((self.key_count, self.publishable_count))),
            None => Role {
                name: self.name,
                description: self.description,
                scopes: self.scopes,
                built_in: false,
                key_count: self.key_count,
                publishable_count: self.publishable_count,
                version: self.version,
            },
        }
    }
}

/// `KEY#<hash>` / `KEY`.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct KeyItem {
    pub pk: String,
    pub sk: String,
    #[serde(flatten)]
    pub fields: KeyFields,
}

/// `PREFIX#<prefix>` / `PREFIX`, listed by `gsi1`.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct PrefixItem {
    pub pk: String,
    pub sk: String,
    pub gsi1pk: String,
    pub gsi1sk: String,
    #[serde(flatten)]
    pub fields: KeyFields,
}

/// `WS#<id>` / `SESSION`.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct SessionItem {
    pub pk: String,
    pub sk: String,
    pub ttl: i64,
    session_id: SessionId,
    customer_id: CustomerId,
    environment: Environment,
    buddy_id: BuddyId,
    user_id: UserId,
    scopes: Vec<WidgetScope>,
    created_at: UnixTime,
    expires_at: UnixTime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    revoked_at: Option<UnixTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    minted_by: Option<KeyPrefix>,
}

impl SessionItem {
    pub fn new(pk: String, sk: String, ttl: i64, s: &WidgetSession) -> SessionItem {
        SessionItem {
            pk,
            sk,
            ttl,
            session_id: s.session_id.clone(),
            customer_id: s.customer_id.clone(),
            environment: s.environment,
            buddy_id: s.buddy_id.clone(),
            user_id: s.user_id.clone(),
            scopes: s.scopes.clone(),
            created_at: s.created_at,
            expires_at: s.expires_at,
            revoked_at: s.revoked_at,
            minted_by: s.minted_by.clone(),
        }
    }

    pub fn session(self) -> WidgetSession {
        WidgetSession {
            session_id: self.session_id,
            customer_id: self.customer_id,
            environment: self.environment,
            buddy_id: self.buddy_id,
            user_id: self.user_id,
            scopes: self.scopes,
            created_at: self.created_at,
            expires_at: self.expires_at,
            revoked_at: self.revoked_at,
            minted_by: self.minted_by,
        }
    }
}

/// `REV#<customer>#<env>#<field>#<value>` / `REV`: a bulk revocation marker.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct MarkerItem {
    pub pk: String,
    pub sk: String,
    pub ttl: i64,
    pub revoked_before: UnixTime,
}

/// `CUS#<id>` / `CUSTOMER`.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct CustomerItem {
    pub pk: String,
    pub sk: String,
    customer_id: CustomerId,
    primary_token: TokenKey,
    progression_token: TokenKey,
    created_at: UnixTime,
}

impl CustomerItem {
    pub fn new(pk: String, sk: String, c: &Customer) -> CustomerItem {
        CustomerItem {
            pk,
            sk,
            customer_id: c.customer_id.clone(),
            primary_token: c.primary_token.clone(),
            progression_token: c.progression_token.clone(),
            created_at: c.created_at,
        }
    }

    pub fn customer(self) -> Customer {
        Customer {
            customer_id: self.customer_id,
            primary_token: self.primary_token,
            progression_token: self.progression_token,
            created_at: self.created_at,
        }
    }
}

/// `BDY#<customer>#<env>#<buddy>` / `BUDDY`.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct BuddyItem {
    pub pk: String,
    pub sk: String,
    pub customer_id: CustomerId,
    pub environment: Environment,
    pub buddy_id: BuddyId,
    pub created_at: UnixTime,
}

/// `CUS#<id>` / `GATE#<gate>`.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct GateItem {
    pub pk: String,
    pub sk: String,
    customer_id: CustomerId,
    gate_key: GateKey,
    token_key: TokenKey,
    cost: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    metadata: Option<Value>,
}

impl GateItem {
    pub fn new(pk: String, sk: String, g: &Gate) -> GateItem {
        GateItem {
            pk,
            sk,
            customer_id: g.customer_id.clone(),
            gate_key: g.gate_key.clone(),
            token_key: g.token_key.clone(),
            cost: g.cost,
            metadata: g.metadata.clone(),
        }
    }

    pub fn gate(self) -> Gate {
        Gate {
            customer_id: self.customer_id,
            gate_key: self.gate_key,
            token_key: self.token_key,
            cost: self.cost,
            metadata: self.metadata,
        }
    }
}

/// `BDY#…` / `BAL#<token>`.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct BalanceItem {
    pub pk: String,
    pub sk: String,
    pub token_key: TokenKey,
    pub amount: i64,
}

/// `BDY#…` / `UNLOCK#<gate>`.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct UnlockItem {
    pub pk: String,
    pub sk: String,
    gate_key: GateKey,
    token_key: TokenKey,
    cost: i64,
    unlocked_at: UnixTime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    metadata: Option<Value>,
    request_id: String,
}

impl UnlockItem {
    pub fn new(pk: String, sk: String, u: &Unlock) -> UnlockItem {
        UnlockItem {
            pk,
            sk,
            gate_key: u.gate_key.clone(),
            token_key: u.token_key.clone(),
            cost: u.cost,
            unlocked_at: u.unlocked_at,
            metadata: u.metadata.clone(),
            request_id: u.request_id.clone(),
        }
    }

    pub fn unlock(self) -> Unlock {
        Unlock {
            gate_key: self.gate_key,
            token_key: self.token_key,
            cost: self.cost,
            unlocked_at: self.unlocked_at,
            metadata: self.metadata,
            request_id: self.request_id,
        }
    }
}

/// `BDY#…` / `LEDGER#<time>#<id>`.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct LedgerItem {
    pub pk: String,
    pub sk: String,
    customer_id: CustomerId,
    environment: Environment,
    buddy_id: BuddyId,
    gate_key: GateKey,
    token_key: TokenKey,
    amount: i64,
    at: UnixTime,
    request_id: String,
}

impl LedgerItem {
    pub fn new(pk: String, sk: String, e: &LedgerEntry) -> LedgerItem {
        LedgerItem {
            pk,
            sk,
            customer_id: e.customer_id.clone(),
            environment: e.environment,
            buddy_id: e.buddy_id.clone(),
            gate_key: e.gate_key.clone(),
            token_key: e.token_key.clone(),
            amount: e.amount,
            at: e.at,
            request_id: e.request_id.clone(),
        }
    }

    pub fn entry(self) -> LedgerEntry {
        LedgerEntry {
            customer_id: self.customer_id,
            environment: self.environment,
            buddy_id: self.buddy_id,
            gate_key: self.gate_key,
            token_key: self.token_key,
            amount: self.amount,
            at: self.at,
            request_id: self.request_id,
        }
    }
}

/// `AUD#<customer>#<env>[#T#<target>]` / `<time>#<id>`.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct AuditItem {
    pub pk: String,
    pub sk: String,
    pub ttl: i64,
    id: String,
    customer_id: CustomerId,
    environment: Environment,
    time: UnixTime,
    actor: String,
    action: AuditAction,
    target: String,
    changes: Changes,
    request_id: String,
    source_ip: String,
}

impl AuditItem {
    pub fn new(pk: String, sk: String, ttl: i64, e: &AuditEvent) -> AuditItem {
        AuditItem {
            pk,
            sk,
            ttl,
            id: e.id.clone(),
            customer_id: e.customer_id.clone(),
            environment: e.environment,
            time: e.time,
            actor: e.actor.clone(),
            action: e.action,
            target: e.target.clone(),
            changes: e.changes.clone(),
            request_id: e.request_id.clone(),
            source_ip: e.source_ip.clone(),
        }
    }

    pub fn event(self) -> AuditEvent {
        AuditEvent {
            id: self.id,
            customer_id: self.customer_id,
            environment: self.environment,
            time: self.time,
            actor: self.actor,
            action: self.action,
            target: self.target,
            changes: self.changes,
            request_id: self.request_id,
            source_ip: self.source_ip,
        }
    }
}

/// One published public key, as stored in the `SIGNING#JWKS` item.
#[derive(Debug, Serialize, Deserialize)]
struct PublishedKeyFields {
    kid: String,
    x: String,
    state: KeyState,
    published_at: i64,
    /// Written by `finishSecret` for a previous key (absent before it, and on older items).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    stopped_at: Option<i64>,
}

/// `SIGNING#JWKS` / `JWKS`: the public signing keys.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct PublishedItem {
    pub pk: String,
    pub sk: String,
    keys: Vec<PublishedKeyFields>,
    updated_at: i64,
}

impl PublishedItem {
    pub fn new(pk: String, sk: String, p: &PublishedKeys) -> PublishedItem {
        let keys = p
            .keys
            .iter()
            .map(|k| PublishedKeyFields {
                kid: k.kid.clone(),
                x: k.x.clone(),
                state: k.state,
                published_at: k.published_at,
                stopped_at: k.stopped_at,
            })
            .collect();
        PublishedItem { pk, sk, keys, updated_at: p.updated_at }
    }

    pub fn keys(self) -> PublishedKeys {
        let keys = self
            .keys
            .into_iter()
            .map(|k| PublishedKey {
                kid: k.kid,
                x: k.x,
                state: k.state,
                published_at: k.published_at,
                stopped_at: k.stopped_at,
            })
            .collect();
        PublishedKeys { keys, updated_at: self.updated_at }
    }
}

#[cfg(test)]
mod tests {
    //! Golden items: each type written from fixed values, in DynamoDB's own JSON (`{"S": …}`,
    //! `{"N": …}`, …), and read back to the same domain value. A change here is a change of the
    //! table format: it needs a migration, not an edit of the expected text.

    use aws_sdk_dynamodb::types::AttributeValue;
    use serde_json::json;

    use super::*;
    use crate::store::{Item, from_item, to_item};

    /// An item in DynamoDB's JSON form, attributes sorted.
    fn dynamo_json(item: &Item) -> Value {
        fn value(v: &AttributeValue) -> Value {
            match v {
                AttributeValue::S(s) => json!({ "S": s }),
                AttributeValue::N(n) => json!({ "N": n }),
                AttributeValue::Bool(b) => json!({ "BOOL": b }),
                AttributeValue::Null(_) => json!({ "NULL": true }),
                AttributeValue::L(l) => json!({ "L": l.iter().map(value).collect::<Vec<_>>() }),
                AttributeValue::M(m) => {
                    json!({ "M": m.iter().map(|(k, v)| (k.clone(), value(v))).collect::<serde_json::Map<_, _>>() })
                }
                AttributeValue::Ss(s) => json!({ "SS": s }),
                AttributeValue::Ns(n) => json!({ "NS": n }),
                other => panic!("unexpected attribute type {other:?}"),
            }
        }
        Value::Object(item.iter().map(|(k, v)| (k.clone(), value(v))).collect())
    }

    fn golden<T: Serialize + serde::de::DeserializeOwned + std::fmt::Debug>(item: &T, expected: Value) -> T {
        let written = to_item(item).unwrap();
        assert_eq!(dynamo_json(&written), expected, "the stored format of {}", std::any::type_name::<T>());
        from_item(written).unwrap()
    }

    fn s(text: &str) -> Value {
        json!({ "S": text })
    }
    fn n(number: i64) -> Value {
        json!({ "N": number.to_string() })
    }

    fn record() -> KeyRecord {
        KeyRecord {
            key_hash: KeyHash::from_stored(&"ab".repeat(32)).unwrap(),
            prefix: KeyPrefix::parse("hatch_pk_Ab12Cd").unwrap(),
            key_type: KeyType::Publishable,
            environment: Environment::Test,
            customer_id: CustomerId::parse("acme").unwrap(),
            primary_token: TokenKey::parse("coins").unwrap(),
            tier: Tier::Pro,
            scopes: [Scope::ReadBuddies, Scope::WriteUnlocks].into(),
            roles: [RoleName::parse("browser").unwrap(), RoleName::parse("support").unwrap()].into(),
            role_scopes: crate::domain::role::BuiltInRole::Browser.scopes(),
            allowed_origins: vec!["https://*.example.com".into()],
            hmac_secret: Some(SealedSecret::from_stored("c2VhbGVk".into())),
            require_signed_user_id: true,
            label: Some("site".into()),
            owner: Some("ops".into()),
            created_at: UnixTime::from_secs(1_700_000_000),
            last_used_at: Some(UnixTime::from_secs(1_700_000_060)),
            revoked_at: Some(UnixTime::from_secs(1_700_000_120)),
            expires_at: Some(UnixTime::from_secs(1_700_000_180)),
            monthly_quota: Some(MonthlyQuota::new(1_000).unwrap()),
            version: 3,
        }
    }

    fn key_fields_json() -> serde_json::Map<String, Value> {
        let fields = json!({
            "key_hash": s(&"ab".repeat(32)),
            "prefix": s("hatch_pk_Ab12Cd"),
            "key_type": s("publishable"),
            "environment": s("test"),
            "customer_id": s("acme"),
            "primary_token": s("coins"),
            "tier": s("pro"),
            "scopes": { "L": [s("write:unlocks"), s("read:buddies")] },
            "roles": { "L": [s("browser"), s("support")] },
            "allowed_origins": { "L": [s("https://*.example.com")] },
            "hmac_secret_sealed": s("c2VhbGVk"),
            "require_signed_user_id": { "BOOL": true },
            "label": s("site"),
            "owner": s("ops"),
            "created_at": n(1_700_000_000),
            "last_used_at": n(1_700_000_060),
            "revoked_at": n(1_700_000_120),
            "expires_at": n(1_700_000_180),
            "monthly_quota": n(1_000),
            "version": n(3),
        });
        fields.as_object().unwrap().clone()
    }

    #[test]
    fn key_items() {
        let mut expected = key_fields_json();
        expected.insert("pk".into(), s("KEY#h"));
        expected.insert("sk".into(), s("KEY"));
        let item = KeyItem { pk: "KEY#h".into(), sk: "KEY".into(), fields: (&record()).into() };
        let read = golden(&item, Value::Object(expected));
        assert_eq!(KeyRecord::from(read.fields), record());

        let mut expected = key_fields_json();
        for (name, value) in [("pk", "PREFIX#p"), ("sk", "PREFIX"), ("gsi1pk", "CUS#acme#KEYS#test"), ("gsi1sk", "x")] {
            expected.insert(name.into(), s(value));
        }
        let item = PrefixItem {
            pk: "PREFIX#p".into(),
            sk: "PREFIX".into(),
            gsi1pk: "CUS#acme#KEYS#test".into(),
            gsi1sk: "x".into(),
            fields: (&record()).into(),
        };
        assert_eq!(KeyRecord::from(golden(&item, Value::Object(expected)).fields), record());
    }

    #[test]
    fn a_minimal_key_item_omits_what_it_lacks() {
        let bare = KeyRecord {
            allowed_origins: vec![],
            roles: BTreeSet::new(),
            role_scopes: BTreeSet::new(),
            hmac_secret: None,
            require_signed_user_id: false,
            label: None,
            owner: None,
            last_used_at: None,
            revoked_at: None,
            expires_at: None,
            monthly_quota: None,
            version: 0,
            ..record()
        };
        let item = to_item(&KeyItem { pk: "KEY#h".into(), sk: "KEY".into(), fields: (&bare).into() }).unwrap();
        let mut names: Vec<&str> = item.keys().map(String::as_str).collect();
        names.sort();
        assert_eq!(
            names,
            [
                "allowed_origins",
                "created_at",
                "customer_id",
                "environment",
                "key_hash",
                "key_type",
                "pk",
                "prefix",
                "primary_token",
                "require_signed_user_id",
                "scopes",
                "sk",
                "tier",
                "version"
            ]
        );
        let read: KeyItem = from_item(item).unwrap();
        assert_eq!(KeyRecord::from(read.fields), bare);
    }

    #[test]
    fn role_items() {
        let role = Role {
            name: RoleName::parse("support").unwrap(),
            description: Some("help desk".into()),
            scopes: [Scope::KeysRead, Scope::ReadBuddies].into(),
            built_in: false,
            key_count: 4,
            publishable_count: 1,
            version: 2,
        };
        let item = RoleItem::new("ROLE#acme#live".into(), "R#support".into(), &role);
        let expected = json!({
            "pk": s("ROLE#acme#live"),
            "sk": s("R#support"),
            "name": s("support"),
            "description": s("help desk"),
            "scopes": { "L": [s("read:buddies"), s("keys:read")] },
            "key_count": n(4),
            "publishable_count": n(1),
            "version": n(2),
        });
        assert_eq!(golden(&item, expected).role(), role);
        // A built-in role's item holds only its counts (written by `ADD`): read, it is the role
        // the code defines with those counts.
        let counts: RoleItem = from_item(
            serde_dynamo::to_item(json!({"pk": "ROLE#acme#live", "sk": "R#admin", "name": "admin", "key_count": 3}))
                .unwrap(),
        )
        .unwrap();
        assert_eq!(counts.role(), Role::built_in(crate::domain::role::BuiltInRole::Admin, Some((3, 0))));
    }

    #[test]
    fn session_item() {
        let session = WidgetSession {
            session_id: SessionId::parse("ws_0123456789abcdefghijABCD").unwrap(),
            customer_id: CustomerId::parse("acme").unwrap(),
            environment: Environment::Live,
            buddy_id: BuddyId::parse("b-1").unwrap(),
            user_id: UserId::parse("u:1").unwrap(),
            scopes: vec![WidgetScope::Read, WidgetScope::ItemsEquip],
            created_at: UnixTime::from_secs(100),
            expires_at: UnixTime::from_secs(1000),
            revoked_at: Some(UnixTime::from_secs(500)),
            minted_by: Some(KeyPrefix::parse("hatch_live_Ab12Cd").unwrap()),
        };
        let item = SessionItem::new("WS#ws_0123456789abcdefghijABCD".into(), "SESSION".into(), 87_400, &session);
        let read = golden(
            &item,
            json!({
                "pk": s("WS#ws_0123456789abcdefghijABCD"), "sk": s("SESSION"), "ttl": n(87_400),
                "session_id": s("ws_0123456789abcdefghijABCD"), "customer_id": s("acme"),
                "environment": s("live"), "buddy_id": s("b-1"), "user_id": s("u:1"),
                "scopes": { "L": [s("read"), s("items:equip")] },
                "created_at": n(100), "expires_at": n(1000), "revoked_at": n(500),
                "minted_by": s("hatch_live_Ab12Cd"),
            }),
        );
        assert_eq!(read.session(), session);
        let marker =
            MarkerItem { pk: "REV#x".into(), sk: "REV".into(), ttl: 9, revoked_before: UnixTime::from_secs(7) };
        let read = golden(&marker, json!({ "pk": s("REV#x"), "sk": s("REV"), "ttl": n(9), "revoked_before": n(7) }));
        assert_eq!(read.revoked_before, UnixTime::from_secs(7));
    }

    #[test]
    fn customer_buddy_gate_balance_unlock_and_ledger_items() {
        let customer = Customer {
            customer_id: CustomerId::parse("acme").unwrap(),
            primary_token: TokenKey::parse("coins").unwrap(),
            progression_token: TokenKey::parse("xp").unwrap(),
            created_at: UnixTime::from_secs(5),
        };
        let item = CustomerItem::new("CUS#acme".into(), "CUSTOMER".into(), &customer);
        let expected = json!({
            "pk": s("CUS#acme"), "sk": s("CUSTOMER"), "customer_id": s("acme"),
            "primary_token": s("coins"), "progression_token": s("xp"), "created_at": n(5),
        });
        assert_eq!(golden(&item, expected).customer(), customer);

        let buddy = BuddyItem {
            pk: "BDY#acme#live#b1".into(),
            sk: "BUDDY".into(),
            customer_id: customer.customer_id.clone(),
            environment: Environment::Live,
            buddy_id: BuddyId::parse("b1").unwrap(),
            created_at: UnixTime::from_secs(6),
        };
        golden(
            &buddy,
            json!({
                "pk": s("BDY#acme#live#b1"), "sk": s("BUDDY"), "customer_id": s("acme"),
                "environment": s("live"), "buddy_id": s("b1"), "created_at": n(6),
            }),
        );

        let gate = Gate {
            customer_id: customer.customer_id.clone(),
            gate_key: GateKey::parse("door").unwrap(),
            token_key: TokenKey::parse("coins").unwrap(),
            cost: 3,
            metadata: Some(json!({ "title": "Door", "tags": ["a"], "n": 1 })),
        };
        let expected = json!({
            "pk": s("CUS#acme"), "sk": s("GATE#door"), "customer_id": s("acme"), "gate_key": s("door"),
            "token_key": s("coins"), "cost": n(3),
            "metadata": { "M": { "title": s("Door"), "tags": { "L": [s("a")] }, "n": n(1) } },
        });
        assert_eq!(golden(&GateItem::new("CUS#acme".into(), "GATE#door".into(), &gate), expected).gate(), gate);

        let balance =
            BalanceItem { pk: "BDY#b".into(), sk: "BAL#coins".into(), token_key: gate.token_key.clone(), amount: 40 };
        golden(&balance, json!({ "pk": s("BDY#b"), "sk": s("BAL#coins"), "token_key": s("coins"), "amount": n(40) }));

        let unlock = Unlock {
            gate_key: gate.gate_key.clone(),
            token_key: gate.token_key.clone(),
            cost: 3,
            unlocked_at: UnixTime::from_secs(9),
            metadata: None,
            request_id: "req-1".into(),
        };
        let expected = json!({
            "pk": s("BDY#b"), "sk": s("UNLOCK#door"), "gate_key": s("door"), "token_key": s("coins"),
            "cost": n(3), "unlocked_at": n(9), "request_id": s("req-1"),
        });
        assert_eq!(golden(&UnlockItem::new("BDY#b".into(), "UNLOCK#door".into(), &unlock), expected).unlock(), unlock);

        let entry = LedgerEntry {
            customer_id: customer.customer_id.clone(),
            environment: Environment::Live,
            buddy_id: BuddyId::parse("b1").unwrap(),
            gate_key: gate.gate_key.clone(),
            token_key: gate.token_key.clone(),
            amount: 3,
            at: UnixTime::from_secs(9),
            request_id: "req-1".into(),
        };
        let expected = json!({
            "pk": s("BDY#b"), "sk": s("LEDGER#x"), "customer_id": s("acme"), "environment": s("live"),
            "buddy_id": s("b1"), "gate_key": s("door"), "token_key": s("coins"), "amount": n(3),
            "at": n(9), "request_id": s("req-1"),
        });
        assert_eq!(golden(&LedgerItem::new("BDY#b".into(), "LEDGER#x".into(), &entry), expected).entry(), entry);
    }

    #[test]
    fn audit_and_published_keys_items() {
        let event = AuditEvent {
            id: "ev_00000000000000000000".into(),
            customer_id: CustomerId::parse("acme").unwrap(),
            environment: Environment::Test,
            time: UnixTime::from_secs(11),
            actor: "hatch_test_Ab12Cd".into(),
            action: AuditAction::KeyUpdated,
            target: "hatch_pk_Ab12Cd".into(),
            changes: Changes::default().field("label", Some("a"), Some("b")),
            request_id: "req-2".into(),
            source_ip: "192.0.2.1".into(),
        };
        let expected = json!({
            "pk": s("AUD#acme#test"), "sk": s("x"), "ttl": n(12), "id": s("ev_00000000000000000000"),
            "customer_id": s("acme"), "environment": s("test"), "time": n(11), "actor": s("hatch_test_Ab12Cd"),
            "action": s("key.updated"), "target": s("hatch_pk_Ab12Cd"),
            "changes": { "M": { "label": { "M": { "old": s("a"), "new": s("b") } } } },
            "request_id": s("req-2"), "source_ip": s("192.0.2.1"),
        });
        let item = AuditItem::new("AUD#acme#test".into(), "x".into(), 12, &event);
        assert_eq!(golden(&item, expected).event(), event);

        let published = PublishedKeys {
            keys: vec![PublishedKey {
                kid: "k1".into(),
                x: "eA".into(),
                state: KeyState::Current,
                published_at: 4,
                stopped_at: None,
            }],
            updated_at: 8,
        };
        let expected = json!({
            "pk": s("SIGNING#JWKS"), "sk": s("JWKS"), "updated_at": n(8),
            "keys": { "L": [{ "M": { "kid": s("k1"), "x": s("eA"), "state": s("current"), "published_at": n(4) } }] },
        });
        let item = PublishedItem::new("SIGNING#JWKS".into(), "JWKS".into(), &published);
        assert_eq!(golden(&item, expected).keys(), published);
        // A previous key whose rotation finished carries the time it stopped signing.
        let mut stopped = published.clone();
        stopped.keys[0].state = KeyState::Previous;
        stopped.keys[0].stopped_at = Some(6);
        let expected = json!({
            "pk": s("SIGNING#JWKS"), "sk": s("JWKS"), "updated_at": n(8),
            "keys": { "L": [{ "M": { "kid": s("k1"), "x": s("eA"), "state": s("previous"), "published_at": n(4), "stopped_at": n(6) } }] },
        });
        let item = PublishedItem::new("SIGNING#JWKS".into(), "JWKS".into(), &stopped);
        assert_eq!(golden(&item, expected).keys(), stopped);
    }
}
