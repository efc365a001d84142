//! Widget-session and embed token rules: scopes, TTLs, claims and their time checks.
//! Signing and verification of the JWT itself live in `crate::signing`.

use serde::{Deserialize, Serialize};

use super::{BuddyId, CustomerId, Environment, HmacSecret, KeyPrefix, SessionId, UnixTime, UserId};

pub const SESSION_AUDIENCE: &str = "hatched:widget-session";
pub const EMBED_AUDIENCE: &str = "hatched:embed";
pub const SESSION_MODE: &str = "interactive";
pub const EMBED_MODE: &str = "read-only";
/// How far past `exp` a token still introspects active (clock skew between parties).
pub const EXP_LEEWAY_SECS: i64 = 30;
/// How far ahead of `nbf` we accept (our own Lambdas' clocks differ by a little).
pub const NBF_LEEWAY_SECS: i64 = 5;

word_enum!(
    /// What a widget session may do in the widget.
    WidgetScope {
        Read = "read",
        EventsTrack = "events:track",
        MarketplaceBrowse = "marketplace:browse",
        MarketplacePurchase = "marketplace:purchase",
        ItemsEquip = "items:equip",
    }
);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    #[error("a non-empty scopes list is required")]
    Required,
    #[error("unknown scope {0:?}")]
    Invalid(String),
}

/// Parses a widget session's scopes: non-empty, each known, duplicates collapsed
/// (first occurrence keeps its place).
pub fn widget_scopes(requested: Option<&[String]>) -> Result<Vec<WidgetScope>, ScopeError> {
    let requested = requested.filter(|r| !r.is_empty()).ok_or(ScopeError::Required)?;
    let mut scopes = Vec::with_capacity(requested.len());
    for text in requested {
        let scope = WidgetScope::parse(text).ok_or_else(|| ScopeError::Invalid(text.clone()))?;
        if !scopes.contains(&scope) {
            scopes.push(scope);
        }
    }
    Ok(scopes)
}

/// Allowed lifetimes of a token kind, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TtlRange {
    pub min: u32,
    pub max: u32,
    pub default: u32,
}

pub const SESSION_TTL: TtlRange = TtlRange { min: 60, max: 3600, default: 3600 };
pub const EMBED_TTL: TtlRange = TtlRange { min: 300, max: 86400, default: 86400 };

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("ttl_seconds must be between {min} and {max}")]
pub struct TtlOutOfRange {
    pub min: u32,
    pub max: u32,
}

impl TtlRange {
    pub fn pick(self, requested: Option<TtlSeconds>) -> Result<i64, TtlOutOfRange> {
        match requested {
            None => Ok(i64::from(self.default)),
            Some(TtlSeconds(t)) if (i64::from(self.min)..=i64::from(self.max)).contains(&t) => Ok(t),
            Some(_) => Err(TtlOutOfRange { min: self.min, max: self.max }),
        }
    }
}

/// A requested `ttl_seconds`: any whole JSON number, saturated into `i64` so that one too large
/// for it (`9223372036854775808`, `1e20`) is out of range (`invalid_ttl` with the range), not a
/// body error. A fraction or a non-number is not a TTL at all (`invalid_request`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TtlSeconds(pub i64);

impl<'de> Deserialize<'de> for TtlSeconds {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = serde_json::Number::deserialize(d)?;
        let whole = match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => Some(i),
            (None, Some(_), _) => Some(i64::MAX),
            // `as` saturates: ±1e300 become i64::MAX / i64::MIN.
            (None, None, Some(f)) if f.is_finite() && f.fract() == 0.0 => Some(f as i64),
            _ => None,
        };
        whole.map(TtlSeconds).ok_or_else(|| serde::de::Error::custom("ttl_seconds must be a whole number of seconds"))
    }
}

/// Claims of a widget-session JWT, exactly as API.md lists them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionClaims {
    pub iss: String,
    pub aud: String,
    pub sub: UserId,
    pub bid: BuddyId,
    pub cid: CustomerId,
    pub env: Environment,
    /// Space-separated widget scopes.
    pub scope: String,
    pub sid: SessionId,
    pub jti: SessionId,
    pub mode: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
}

/// Claims of a read-only embed JWT: no scope, no session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbedClaims {
    pub iss: String,
    pub aud: String,
    pub sub: UserId,
    pub bid: BuddyId,
    pub cid: CustomerId,
    pub env: Environment,
    pub jti: String,
    pub mode: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
}

/// A verified token of either kind. The audience decides the kind, and each kind's claims
/// deny the other's fields, so one can never stand in for the other.
#[derive(Debug, Clone, PartialEq)]
pub enum TokenClaims {
    Session(SessionClaims),
    Embed(EmbedClaims),
}

/// Who and what a token is minted for.
#[derive(Debug, Clone)]
pub struct Subject {
    pub customer: CustomerId,
    pub env: Environment,
    pub buddy: BuddyId,
    pub user: UserId,
}

impl Subject {
    /// `user` of `buddy`, in the customer and environment of the key that mints for them.
    pub fn of_key(key: &super::KeyRecord, buddy: BuddyId, user: UserId) -> Subject {
        Subject { customer: key.customer_id.clone(), env: key.environment, buddy, user }
    }
}

impl SessionClaims {
    pub fn new(
        issuer: &str,
        who: &Subject,
        session: &SessionId,
        scopes: &[WidgetScope],
        now: UnixTime,
        ttl: i64,
    ) -> SessionClaims {
        SessionClaims {
            iss: issuer.to_owned(),
            aud: SESSION_AUDIENCE.to_owned(),
            sub: who.user.clone(),
            bid: who.buddy.clone(),
            cid: who.customer.clone(),
            env: who.env,
            scope: scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" "),
            sid: session.clone(),
            jti: session.clone(),
            mode: SESSION_MODE.to_owned(),
            iat: now.secs(),
            nbf: now.secs(),
            exp: now.plus_secs(ttl).secs(),
        }
    }

    /// Shape rules beyond the types: the audience, mode and id pairing of a session token.
    pub fn well_formed(&self) -> bool {
        self.aud == SESSION_AUDIENCE
            && self.mode == SESSION_MODE
            && self.sid == self.jti
            && !self.scope.is_empty()
            && self.scope.split(' ').all(|s| WidgetScope::parse(s).is_some())
    }
}

impl EmbedClaims {
    pub fn new(issuer: &str, who: &Subject, jti: String, now: UnixTime, ttl: i64) -> EmbedClaims {
        EmbedClaims {
            iss: issuer.to_owned(),
            aud: EMBED_AUDIENCE.to_owned(),
            sub: who.user.clone(),
            bid: who.buddy.clone(),
            cid: who.customer.clone(),
            env: who.env,
            jti,
            mode: EMBED_MODE.to_owned(),
            iat: now.secs(),
            nbf: now.secs(),
            exp: now.plus_secs(ttl).secs(),
        }
    }

    pub fn well_formed(&self) -> bool {
        self.aud == EMBED_AUDIENCE && self.mode == EMBED_MODE && !self.jti.is_empty()
    }
}

impl TokenClaims {
    /// Picks the claim set by audience; anything else is not one of our tokens.
    pub fn from_json(value: serde_json::Value) -> Option<TokenClaims> {
        match value.get("aud").and_then(|a| a.as_str()) {
            Some(SESSION_AUDIENCE) => serde_json::from_value::<SessionClaims>(value)
                .ok()
                .filter(SessionClaims::well_formed)
                .map(TokenClaims::Session),
            Some(EMBED_AUDIENCE) => serde_json::from_value::<EmbedClaims>(value)
                .ok()
                .filter(EmbedClaims::well_formed)
                .map(TokenClaims::Embed),
            _ => None,
        }
    }

    fn times(&self) -> (i64, i64, i64) {
        match self {
            TokenClaims::Session(c) => (c.iat, c.nbf, c.exp),
            TokenClaims::Embed(c) => (c.iat, c.nbf, c.exp),
        }
    }

    /// `iat`: when the token says it was signed.
    pub fn issued_at(&self) -> i64 {
        self.times().0
    }

    pub fn issuer(&self) -> &str {
        match self {
            TokenClaims::Session(c) => &c.iss,
            TokenClaims::Embed(c) => &c.iss,
        }
    }

    /// Current at `now`: not before `nbf`, not more than the leeway past `exp`.
    pub fn current_at(&self, now: UnixTime) -> bool {
        let (iat, nbf, exp) = self.times();
        let now = now.secs();
        iat <= exp && nbf <= now.saturating_add(NBF_LEEWAY_SECS) && now <= exp.saturating_add(EXP_LEEWAY_SECS)
    }
}

/// What a customer's backend signs to vouch that `user_id` may act for `buddy_id`:
/// `user_id + "\n" + buddy_id + "\n" + user_id_ts` (the old `"{user_id}.{ts}"` form binds no
/// buddy and is refused).
pub fn signed_user_message(user: &UserId, buddy: &BuddyId, ts: i64) -> String {
    format!("{}\n{}\n{ts}", user.as_str(), buddy.as_str())
}

/// A signed user id as a request carries it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedUser {
    pub user_id: UserId,
    pub user_id_sig: String,
    pub user_id_ts: i64,
}

/// Checks a signed user id: hex HMAC-SHA256 of [`signed_user_message`] under the key's
/// secret, at most 300 s old and 30 s ahead. The comparison is constant-time.
pub fn user_signature_valid(
    secret: &HmacSecret,
    user: &UserId,
    buddy: &BuddyId,
    ts: i64,
    sig_hex: &str,
    now: UnixTime,
) -> bool {
    use hmac::{Hmac, Mac};
    // `ts` is whatever the request says (i64::MIN included): no unchecked arithmetic on it.
    let Some(age) = now.secs().checked_sub(ts) else {
        return false;
    };
    if !(-30..=300).contains(&age) {
        return false;
    }
    let Ok(sig) = hex::decode(sig_hex) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(secret.expose().as_bytes()) else {
        return false;
    };
    mac.update(signed_user_message(user, buddy, ts).as_bytes());
    mac.verify_slice(&sig).is_ok()
}

/// A bulk revocation at `now` is written only when no equal or later one stands: revoking the
/// same subject again changes nothing and records nothing.
pub fn revocation_needed(standing: Option<UnixTime>, now: UnixTime) -> bool {
    standing.is_none_or(|before| before < now)
}

/// A widget session as recorded: what its token may do, until when, and whether revoked.
#[derive(Debug, Clone, PartialEq)]
pub struct WidgetSession {
    pub session_id: SessionId,
    pub customer_id: CustomerId,
    pub environment: Environment,
    pub buddy_id: BuddyId,
    pub user_id: UserId,
    pub scopes: Vec<WidgetScope>,
    pub created_at: UnixTime,
    pub expires_at: UnixTime,
    pub revoked_at: Option<UnixTime>,
    /// The secret key that minted it (bulk revocation by `key_prefix`).
    pub minted_by: Option<KeyPrefix>,
}

impl WidgetSession {
    /// Does the session say what a token's claims say it does (a token is only as good as
    /// its session)?
    pub fn matches(&self, c: &SessionClaims) -> bool {
        let scopes: Vec<&str> = self.scopes.iter().map(|x| x.as_str()).collect();
        self.customer_id == c.cid
            && self.environment == c.env
            && self.buddy_id == c.bid
            && self.user_id == c.sub
            && scopes.join(" ") == c.scope
    }

    /// Active at `now`: not revoked, not past expiry (with the token leeway).
    pub fn active_at(&self, now: UnixTime) -> bool {
        self.revoked_at.is_none() && now.secs() <= self.expires_at.secs().saturating_add(EXP_LEEWAY_SECS)
    }

    /// Still standing against bulk revocations: every session issued at or before a matching
    /// marker's `revoked_before` is revoked (whole seconds: one minted in the same second
    /// as the revocation is revoked too — the safe side).
    pub fn survives(&self, revoked_before: &[UnixTime]) -> bool {
        revoked_before.iter().all(|before| self.created_at > *before)
    }

    /// What bulk revocations could match this session.
    pub fn subjects(&self) -> Vec<SessionSubject> {
        let mut subjects =
            vec![SessionSubject::User(self.user_id.clone()), SessionSubject::Buddy(self.buddy_id.clone())];
        subjects.extend(self.session_id.minting_key(self.environment).map(SessionSubject::Key));
        subjects
    }
}

/// What a bulk revocation matches: every session of a user, of a buddy, or minted by a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionSubject {
    User(UserId),
    Buddy(BuddyId),
    Key(KeyPrefix),
}

impl SessionSubject {
    /// `user_id`, `buddy_id` or `key_prefix`: the request field, and the audit target's kind.
    pub fn field(&self) -> &'static str {
        match self {
            SessionSubject::User(_) => "user_id",
            SessionSubject::Buddy(_) => "buddy_id",
            SessionSubject::Key(_) => "key_prefix",
        }
    }

    pub fn value(&self) -> &str {
        match self {
            SessionSubject::User(u) => u.as_str(),
            SessionSubject::Buddy(b) => b.as_str(),
            SessionSubject::Key(k) => k.as_str(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who() -> Subject {
        Subject {
            customer: CustomerId::parse("acme").unwrap(),
            env: Environment::Live,
            buddy: BuddyId::parse("b1").unwrap(),
            user: UserId::parse("u1").unwrap(),
        }
    }

    #[test]
    fn scopes_are_required_known_and_deduplicated() {
        assert_eq!(widget_scopes(None), Err(ScopeError::Required));
        assert_eq!(widget_scopes(Some(&[])), Err(ScopeError::Required));
        let asked = ["read".to_owned(), "items:equip".to_owned(), "read".to_owned()];
        assert_eq!(widget_scopes(Some(&asked)), Ok(vec![WidgetScope::Read, WidgetScope::ItemsEquip]));
        let bad = ["read".to_owned(), "admin".to_owned()];
        assert_eq!(widget_scopes(Some(&bad)), Err(ScopeError::Invalid("admin".into())));
    }

    #[test]
    fn ttl_ranges() {
        assert_eq!(SESSION_TTL.pick(None), Ok(3600));
        assert_eq!(SESSION_TTL.pick(Some(TtlSeconds(60))), Ok(60));
        assert_eq!(SESSION_TTL.pick(Some(TtlSeconds(59))), Err(TtlOutOfRange { min: 60, max: 3600 }));
        assert!(SESSION_TTL.pick(Some(TtlSeconds(3601))).is_err());
        assert_eq!(EMBED_TTL.pick(None), Ok(86400));
        assert!(EMBED_TTL.pick(Some(TtlSeconds(299))).is_err());
        assert!(EMBED_TTL.pick(Some(TtlSeconds(-1))).is_err());
    }

    #[test]
    fn kinds_never_stand_in_for_each_other() {
        let now = UnixTime::from_secs(1000);
        let sid = SessionId::generate();
        let session = SessionClaims::new("iss", &who(), &sid, &[WidgetScope::Read], now, 60);
        let embed = EmbedClaims::new("iss", &who(), "j".into(), now, 300);
        let mut v = serde_json::to_value(&session).unwrap();
        assert!(matches!(TokenClaims::from_json(v.clone()), Some(TokenClaims::Session(_))));
        v["aud"] = EMBED_AUDIENCE.into();
        assert_eq!(TokenClaims::from_json(v), None, "session claims under the embed audience");
        let mut e = serde_json::to_value(&embed).unwrap();
        assert!(matches!(TokenClaims::from_json(e.clone()), Some(TokenClaims::Embed(_))));
        e["aud"] = SESSION_AUDIENCE.into();
        assert_eq!(TokenClaims::from_json(e.clone()), None, "embed claims under the session audience");
        e["aud"] = EMBED_AUDIENCE.into();
        e["mode"] = SESSION_MODE.into();
        assert_eq!(TokenClaims::from_json(e), None, "embed claims with the interactive mode");
    }

    #[test]
    fn time_window_with_leeway() {
        let now = UnixTime::from_secs(10_000);
        let c = TokenClaims::Embed(EmbedClaims::new("iss", &who(), "j".into(), now, 300));
        assert!(c.current_at(now));
        assert!(c.current_at(now.plus_secs(300 + 30)));
        assert!(!c.current_at(now.plus_secs(300 + 31)));
        assert!(!c.current_at(now.plus_secs(-6)), "nbf in the future");
    }

    #[test]
    fn signed_user_ids_bind_user_buddy_and_time() {
        use hmac::{Hmac, Mac};
        let (user, buddy) = (UserId::parse("user_42").unwrap(), BuddyId::parse("buddy_1").unwrap());
        let secret = HmacSecret::new("s3cret".into()).unwrap();
        let now = UnixTime::from_secs(1_800_000_000);
        let sign = |secret: &str, text: &str| {
            let mut m = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
            m.update(text.as_bytes());
            hex::encode(m.finalize().into_bytes())
        };
        let valid = |user: &UserId, buddy: &BuddyId, ts: i64, sig: &str| {
            user_signature_valid(&secret, user, buddy, ts, sig, now)
        };
        let ts = now.secs() - 10;
        let sig = sign("s3cret", &format!("user_42\nbuddy_1\n{ts}"));
        assert!(valid(&user, &buddy, ts, &sig));
        assert!(!user_signature_valid(&HmacSecret::new("other".into()).unwrap(), &user, &buddy, ts, &sig, now));
        assert!(!valid(&UserId::parse("user_43").unwrap(), &buddy, ts, &sig));
        assert!(!valid(&user, &BuddyId::parse("buddy_2").unwrap(), ts, &sig), "bound to one buddy");
        assert!(!valid(&user, &buddy, ts, &sign("s3cret", &format!("user_42.{ts}"))), "the old form is refused");
        let at = |ts: i64| sign("s3cret", &format!("user_42\nbuddy_1\n{ts}"));
        let (old, ahead, edge) = (now.secs() - 301, now.secs() + 31, now.secs() - 300);
        assert!(!valid(&user, &buddy, old, &at(old)));
        assert!(!valid(&user, &buddy, ahead, &at(ahead)));
        assert!(valid(&user, &buddy, edge, &at(edge)));
        assert!(valid(&user, &buddy, now.secs() + 30, &at(now.secs() + 30)));
        assert!(!valid(&user, &buddy, ts, "zz"));
    }

    #[test]
    fn extreme_user_id_timestamps_are_refused_without_overflow() {
        let (user, buddy) = (UserId::parse("user_42").unwrap(), BuddyId::parse("b").unwrap());
        let secret = HmacSecret::new("s3cret".into()).unwrap();
        for now in [UnixTime::from_secs(1_800_000_000), UnixTime::from_secs(i64::MAX), UnixTime::from_secs(i64::MIN)] {
            for ts in [i64::MIN, i64::MIN + 1, -1, i64::MAX - 1, i64::MAX] {
                if ts == now.secs() {
                    continue;
                }
                assert!(!user_signature_valid(&secret, &user, &buddy, ts, "00", now), "ts {ts} at {now:?}");
            }
        }
    }

    #[test]
    fn a_ttl_is_any_whole_json_number_saturated() {
        let ttl = |json: &str| serde_json::from_str::<TtlSeconds>(json).map(|t| t.0).ok();
        assert_eq!(ttl("60"), Some(60));
        assert_eq!(ttl("-60"), Some(-60));
        assert_eq!(ttl("60.0"), Some(60));
        assert_eq!(ttl("9223372036854775808"), Some(i64::MAX));
        assert_eq!(ttl("18446744073709551615"), Some(i64::MAX));
        assert_eq!(ttl("1e20"), Some(i64::MAX));
        assert_eq!(ttl("-1e20"), Some(i64::MIN));
        assert_eq!(ttl("60.5"), None);
        assert_eq!(ttl("\"60\""), None);
        assert_eq!(ttl("null"), None);
    }

    #[test]
    fn extreme_ttls_are_refused_and_claims_never_overflow() {
        for range in [SESSION_TTL, EMBED_TTL] {
            assert!(range.pick(Some(TtlSeconds(i64::MIN))).is_err());
            assert!(range.pick(Some(TtlSeconds(i64::MAX))).is_err());
        }
        let sid = SessionId::generate();
        for (now, ttl) in [(i64::MAX, 3600), (i64::MAX, i64::MAX), (i64::MIN, i64::MIN), (0, i64::MAX), (0, i64::MIN)] {
            let now = UnixTime::from_secs(now);
            let s = SessionClaims::new("iss", &who(), &sid, &[WidgetScope::Read], now, ttl);
            let e = EmbedClaims::new("iss", &who(), "j".into(), now, ttl);
            assert_eq!(s.exp, now.plus_secs(ttl).secs());
            assert_eq!(e.exp, now.plus_secs(ttl).secs());
            let _ = TokenClaims::Session(s).current_at(now);
            let _ = TokenClaims::Embed(e).current_at(now);
        }
        let mut far = EmbedClaims::new("iss", &who(), "j".into(), UnixTime::from_secs(0), 300);
        (far.iat, far.nbf, far.exp) = (i64::MIN, i64::MIN, i64::MAX);
        assert!(TokenClaims::Embed(far.clone()).current_at(UnixTime::from_secs(i64::MAX)));
        (far.iat, far.nbf, far.exp) = (i64::MAX, i64::MAX, i64::MAX);
        assert!(!TokenClaims::Embed(far).current_at(UnixTime::from_secs(i64::MIN)));
    }

    #[test]
    fn sessions_at_the_end_of_time_do_not_overflow() {
        let session = WidgetSession {
            session_id: SessionId::generate(),
            customer_id: CustomerId::parse("acme").unwrap(),
            environment: Environment::Live,
            buddy_id: BuddyId::parse("b1").unwrap(),
            user_id: UserId::parse("u1").unwrap(),
            scopes: vec![WidgetScope::Read],
            created_at: UnixTime::from_secs(0),
            expires_at: UnixTime::from_secs(i64::MAX),
            revoked_at: None,
            minted_by: None,
        };
        assert!(session.active_at(UnixTime::from_secs(i64::MAX)));
    }
}
