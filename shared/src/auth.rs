//! Authentication shared by every keyed endpoint: one consistent key read with the counting
//! write running concurrently (`Store::count_request`: a secret key's minute and month in one
//! item), then the record's verdicts in a fixed order.

use std::sync::Arc;

use crate::domain::UnixTime;
use crate::domain::audit::Actor;
use crate::domain::portal::PortalClaims;
use crate::domain::quota::{Month, QuotaStatus};
use crate::domain::ratelimit::IpBlock;
use crate::domain::ratelimit::{Counted, RateLimitStatus};
use crate::domain::time::Clock;
use crate::domain::token::{SignedUser, user_signature_valid};
use crate::domain::{
    ANONYMOUS_PER_MINUTE, ApiKey, BuddyId, KeyHash, KeyPrefix, KeyRecord, KeyType, LAST_USED_RESOLUTION_SECS, Scope,
};
use crate::domain::{KeyFormatError, KeyRejection};
use crate::keys::Manager;
use crate::roles::Roles;
use crate::sealing::{Sealer, SealingError};
use crate::store::{Store, StoreError, Tally};

/// Who is calling, as far as authentication cares: the request id (for the audit trail), the
/// source IP (anonymous budgets) and the `Origin` header (publishable keys' allowlists). The
/// web edge builds it from the event (`crate::http`).
#[derive(Debug, Clone)]
pub struct RequestCtx {
    pub request_id: String,
    pub source_ip: String,
    pub origin: Option<String>,
    /// When the function took the request: the request line's `Latency`.
    pub received: std::time::Instant,
}

/// The authentication service: the key check, rate windows, refusals, signed user ids.
#[derive(Debug, Clone)]
pub struct Auth {
    store: Store,
    clock: Clock,
    /// Source IPs over their anonymous limit, as this instance has seen.
    ip_block: Arc<IpBlock>,
    /// The data key that opens HMAC secrets (signed user ids), loaded on first use.
    sealer: Arc<Sealer>,
    /// Resolves a key's custom roles at each request.
    roles: Roles,
    /// Publishable keys this instance has seen holding a monthly quota: their month (a second
    /// item, as they count per source IP) is counted beside the key read, not after it.
    quota_keys: Arc<QuotaKeys>,
    /// Callers this instance has seen over their minute limit, until the minute ends: a secret
    /// key (by hash) counts its minute only, a publishable key's visitor (key and source IP)
    /// does not count the key's month early. So a flood of refusals costs one write each and
    /// cannot make a month item, which a publishable key's visitors share, a hot spot.
    limited_visitors: Arc<IpBlock>,
}

/// Hashes of publishable keys with a monthly quota, as this instance has seen them. Only a cost
/// hint: a key that gained a quota is counted after its read, one that lost it gets the count
/// back.
/// Bounded, so a flood of keys cannot grow it.
#[derive(Debug, Default)]
struct QuotaKeys(std::sync::Mutex<std::collections::HashSet<String>>);

const QUOTA_KEYS_CAPACITY: usize = 10_000;

impl QuotaKeys {
    fn holds(&self, hash: &KeyHash) -> bool {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).contains(hash.as_str())
    }

    fn note(&self, hash: &KeyHash, capped: bool) {
        let mut keys = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if !capped {
            keys.remove(hash.as_str());
        } else if keys.len() < QUOTA_KEYS_CAPACITY {
            keys.insert(hash.as_str().to_owned());
        }
    }
}

impl Auth {
    pub fn new(store: Store, clock: Clock, ip_block: Arc<IpBlock>, sealer: Arc<Sealer>, roles: Roles) -> Auth {
        Auth { store, clock, ip_block, sealer, roles, quota_keys: Arc::default(), limited_visitors: Arc::default() }
    }

    /// An over-limit IP gets its 429 before any work is done (the instance remembers it).
    pub fn blocked(&self, ctx: &RequestCtx) -> Option<RateLimitStatus> {
        self.ip_block.refusal(&ctx.source_ip, self.clock.now())
    }
}

/// An authenticated caller: the key's record and where it stands in its rate window.
#[derive(Debug, Clone)]
pub struct Caller {
    pub record: KeyRecord,
    pub rate: RateLimitStatus,
    /// Where the key stands in its month, if it has a monthly quota.
    pub quota: Option<QuotaStatus>,
    /// When the request was counted (a refusal gives the count back to that window).
    pub counted_at: UnixTime,
    /// A key portal session acting for this key: the audit trail names it
    /// (`portal:<prefix>:<user_label>`) instead of the key.
    pub portal_actor: Option<String>,
}

/// Which counter (and, for a publishable key with a quota, which month) a caller's request was
/// counted in, to give the counts back on a refusal.
#[derive(Debug, Clone)]
pub struct KeyCount {
    hash: crate::domain::KeyHash,
    key_type: KeyType,
    counted_at: UnixTime,
    month: Option<Month>,
}

impl Caller {
    /// This key managing its own customer's keys over HTTP; the audit trail names its prefix.
    pub fn manager(&self, ctx: &RequestCtx) -> Manager<'_> {
        Manager::key(&self.record, self.actor(ctx))
    }

    /// Who the audit trail names for this request: the key's prefix, or the portal session
    /// acting for it.
    pub fn actor(&self, ctx: &RequestCtx) -> Actor {
        Actor {
            name: self.portal_actor.clone().unwrap_or_else(|| self.record.prefix.to_string()),
            request_id: ctx.request_id.clone(),
            source_ip: ctx.source_ip.clone(),
        }
    }

    /// Where this request was counted, to give the count back on a refusal. A secret key's
    /// month is given back with its minute (one item); a publishable key's month is its own.
    pub fn key_count(&self) -> KeyCount {
        let apart = self.record.key_type == KeyType::Publishable;
        KeyCount {
            hash: self.record.key_hash.clone(),
            key_type: self.record.key_type,
            counted_at: self.counted_at,
            month: self.quota.filter(|_| apart).map(|_| Month::of(self.counted_at)),
        }
    }
}

/// Why a caller is refused (the web edge maps each to its API.md code).
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("no Authorization header")]
    MissingKey,
    #[error("malformed key: {0}")]
    InvalidKeyFormat(#[from] KeyFormatError),
    #[error("no such key")]
    UnknownKey,
    #[error("key revoked")]
    Revoked,
    #[error("key expired")]
    Expired,
    #[error("origin not allowed")]
    OriginNotAllowed,
    #[error("rate limited")]
    RateLimited { retry_after_secs: u64 },
    #[error("monthly quota exceeded")]
    QuotaExceeded { retry_after_secs: u64 },
    #[error("a publishable key on a secret-only endpoint")]
    PublishableKey,
    #[error("missing scope {0}")]
    InsufficientScope(Scope),
    #[error("invalid user signature")]
    InvalidUserSignature,
    #[error("the key portal session has ended")]
    SessionEnded,
    #[error("a key portal token whose signature, audience or claims do not hold")]
    ForgedSession,
    #[error("a key portal session on a route it may not call")]
    NotForPortal,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Sealing(#[from] SealingError),
}

impl From<KeyRejection> for AuthError {
    fn from(r: KeyRejection) -> AuthError {
        match r {
            KeyRejection::Revoked => AuthError::Revoked,
            KeyRejection::Expired => AuthError::Expired,
        }
    }
}

impl AuthError {
    fn limited(status: &RateLimitStatus) -> AuthError {
        AuthError::RateLimited { retry_after_secs: status.reset_in_secs }
    }
}

/// A refusal, with the rate window when the key was far enough along to be counted.
#[derive(Debug)]
pub struct Rejected {
    pub error: AuthError,
    pub rate: Option<RateLimitStatus>,
}

impl From<AuthError> for Rejected {
    fn from(error: AuthError) -> Rejected {
        Rejected { error, rate: None }
    }
}

/// What an endpoint requires of its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No `Authorization`: the caller's source IP is counted instead.
    Anonymous,
    /// Secret keys only (publishable: `publishable_key_scope`), holding this scope.
    SecretOnly(Scope),
    /// As `SecretOnly`, or a key portal session acting for such a key (API.md "The key
    /// portal": key management, roles, usage and audit).
    Managing(Scope),
    /// Either kind of key, holding this scope.
    Scoped(Scope),
    /// No `Authorization` and no counting: content built into the binary (the key portal's
    /// page), served without any AWS call; API Gateway's stage throttling bounds a flood.
    Public,
    /// API Gateway runs the platform authorizer (`functions/authorize`) first; the function
    /// gets its verdict in `requestContext.authorizer.lambda`.
    Authorized,
}

impl Access {
    pub fn check(self, record: &KeyRecord) -> Result<(), AuthError> {
        match self {
            Access::Anonymous | Access::Public | Access::Authorized => Ok(()),
            Access::SecretOnly(_) | Access::Managing(_) if record.key_type == KeyType::Publishable => {
                Err(AuthError::PublishableKey)
            }
            Access::SecretOnly(scope) | Access::Managing(scope) | Access::Scoped(scope) => {
                require_scopes(record, &[scope])
            }
        }
    }

    /// Whether a key portal session may call it.
    pub fn admits_portal(self) -> bool {
        matches!(self, Access::Managing(_))
    }
}

/// What a request's counting leaves for [`Auth::check`] to settle once the verdict is known.
#[derive(Debug, Default)]
struct Counting {
    /// The counts the request holds, given back if it is refused or fails.
    held: Option<Held>,
    /// Stale minute marks to sweep from the month item of this key, at this time.
    sweep: Option<(KeyHash, UnixTime, Vec<String>)>,
}

/// A month count a request holds, taken at `at`; `with_minute` for a secret key, whose minute
/// and month are one item (a failure gives both back in one write).
#[derive(Debug)]
struct Held {
    hash: KeyHash,
    at: UnixTime,
    with_minute: bool,
}

/// A publishable key's visitor, as [`Auth`]'s memory of limited visitors names it: the key's
/// hash and the source IP's bucket (an IPv6 /64), never the raw address.
fn visitor(hash: &KeyHash, source_ip: &str) -> String {
    format!("{}#{}", hash.as_str(), crate::domain::ratelimit::ip_bucket(source_ip))
}

/// The first of `scopes` the key lacks is `insufficient_scope`.
pub fn require_scopes(record: &KeyRecord, scopes: &[Scope]) -> Result<(), AuthError> {
    match scopes.iter().find(|s| !record.has_scope(**s)) {
        Some(missing) => Err(AuthError::InsufficientScope(*missing)),
        None => Ok(()),
    }
}

impl Auth {
    /// Counts a request without a usable key against its source IP. An IP this instance has
    /// already seen over its limit this minute is refused without another write.
    pub async fn count_anonymous(&self, ctx: &RequestCtx) -> Result<RateLimitStatus, AuthError> {
        let now = self.clock.now();
        if let Some(refused) = self.ip_block.refusal(&ctx.source_ip, now) {
            return Ok(refused);
        }
        let count = self.store.count_request(&Counted::Ip(&ctx.source_ip), now).await?;
        let status = RateLimitStatus::decide(ANONYMOUS_PER_MINUTE, count.minute, now);
        self.ip_block.remember(&ctx.source_ip, &status, now);
        Ok(status)
    }

    /// A refusal of a call without a usable key: counted against the source IP, and a 429
    /// instead once the IP is over its limit.
    pub async fn refuse_anonymous(&self, ctx: &RequestCtx, error: AuthError) -> Rejected {
        match self.count_anonymous(ctx).await {
            Ok(ip) if !ip.allowed => AuthError::limited(&ip).into(),
            Ok(_) => error.into(),
            Err(unavailable) => unavailable.into(),
        }
    }

    /// A request the key itself refuses (`origin_not_allowed`, `invalid_user_signature`)
    /// never spends the key's budget: its counts (the minute's, and the month's for a key with
    /// a quota) are given back, and the source IP's anonymous window counts it instead (one
    /// more write, on the refused path only).
    pub async fn refuse_for_key(&self, count: &KeyCount, ctx: &RequestCtx, error: AuthError) -> Rejected {
        let counted = Counted::key(&count.hash, count.key_type, &ctx.source_ip);
        let (refund, (), refusal) = futures::join!(
            self.store.uncount_request(&counted, count.counted_at),
            self.give_back_month(&count.hash, count.month),
            self.refuse_anonymous(ctx, error)
        );
        if let Err(e) = refund {
            unrecorded("a refused request's count not given back", &e);
        }
        refusal
    }

    /// Verdict on a well-formed key: on record, not revoked or expired, called from an
    /// allowed origin (publishable keys), within its rate limit, then within its monthly quota.
    /// Records the use. A month counted for a request that then fails (refused before its
    /// quota is checked, or a dependency down) is given back: only accepted requests and the
    /// quota's own refusals (which give theirs back themselves) leave a trace on the month.
    pub async fn check_key(&self, key: &ApiKey, ctx: &RequestCtx, origin: Option<&str>) -> Result<Caller, Rejected> {
        let hash = key.hash();
        self.check(Lookup::Key(&hash, key.kind().key_type()), ctx, origin).await
    }

    async fn check(&self, lookup: Lookup<'_>, ctx: &RequestCtx, origin: Option<&str>) -> Result<Caller, Rejected> {
        let mut counting = Counting::default();
        // Boxed: its SDK futures are large, and every keyed handler's future holds this one.
        let verdict = Box::pin(self.check_key_counting(lookup, ctx, origin, &mut counting)).await;
        // The bookkeeping the verdict leaves, at once: `last_used_at` for an accepted request,
        // or the counts a refused or failed one holds given back; and stale minute marks swept.
        let settle = async {
            match (&verdict, counting.held) {
                (Ok(caller), _) if caller.record.last_used_is_stale(caller.counted_at) => {
                    // Bookkeeping only: a failure here must not fail an otherwise good request.
                    let (record, at) = (&caller.record, caller.counted_at);
                    if let Err(e) = self.store.touch_key_last_used(record, at, LAST_USED_RESOLUTION_SECS).await {
                        tracing::warn!(prefix = %record.prefix, cause = %e, "last_used_at not recorded");
                    }
                }
                (Ok(_), _) | (Err(_), None) => {}
                (Err(rejected), Some(held)) => self.give_back(&held, rejected).await,
            }
        };
        let sweep = async {
            if let Some((hash, at, marks)) = &counting.sweep
                && let Err(e) = self.store.sweep_marks(hash, *at, marks).await
            {
                unrecorded("stale minute marks not swept", &e);
            }
        };
        Box::pin(async { futures::join!(settle, sweep) }).await;
        verdict
    }

    /// Gives back the counts a refused or failed request holds: its month, and a secret key's
    /// minute too unless its minute limit refused it (it stays counted there).
    async fn give_back(&self, held: &Held, rejected: &Rejected) {
        let minute_too = held.with_minute && !matches!(rejected.error, AuthError::RateLimited { .. });
        let given = match minute_too {
            true => self.store.uncount_request(&Counted::Key(&held.hash), held.at).await,
            false => self.store.uncount_month(&held.hash, Month::of(held.at)).await.map(|_| ()),
        };
        if let Err(e) = given {
            unrecorded("a month's count not given back", &e);
        }
    }

    /// [`Auth::check`]'s checks; `counting` says what the request holds and what to sweep.
    async fn check_key_counting(
        &self,
        lookup: Lookup<'_>,
        ctx: &RequestCtx,
        origin: Option<&str>,
        counting: &mut Counting,
    ) -> Result<Caller, Rejected> {
        let held = &mut counting.held;
        let now = self.clock.now();
        let month = Month::of(now);
        let mut early_position = None;
        let looked_up = match lookup {
            Lookup::Key(hash, _) => Some(hash.clone()),
            Lookup::Portal(_) => None,
        };
        let (record, tally) = match lookup {
            // A portal token names its key by prefix: the read comes first, as the hash to
            // count under is on the record.
            Lookup::Portal(prefix) => match self.store.key_by_prefix(prefix).await.map_err(AuthError::from)? {
                None => return Err(self.refuse_anonymous(ctx, AuthError::UnknownKey).await),
                Some(record) => {
                    let counted = Counted::key(&record.key_hash, record.key_type, &ctx.source_ip);
                    let tally = self.store.count_request(&counted, now).await;
                    (Some(record), tally)
                }
            },
            Lookup::Key(hash, key_type) if self.ip_block.refusal(&ctx.source_ip, now).is_some() => {
                // An IP over its anonymous limit: read first, so an unknown key costs no write.
                match self.store.get_key(hash).await.map_err(AuthError::from)? {
                    None => return Err(self.refuse_anonymous(ctx, AuthError::UnknownKey).await),
                    Some(record) => {
                        let counted = Counted::key(hash, key_type, &ctx.source_ip);
                        (Some(record), self.store.count_request(&counted, now).await)
                    }
                }
            }
            Lookup::Key(hash, key_type) => {
                // A secret key's counting write counts its month too. A publishable key counts
                // per source IP, so its month is a second item: counted in the same round trip
                // once this instance has seen the key hold a quota. A request it then refuses
                // before its quota (a wrong origin) gives that count back; a stranger who wants
                // to spend a public key's quota need not be refused at all (an `Origin` header
                // is only a browser's word), so the moment's hold gives nobody anything.
                let limited = |visitor: &str| self.limited_visitors.refusal(visitor, now).is_some();
                let early = key_type == KeyType::Publishable
                    && self.quota_keys.holds(hash)
                    && !limited(&visitor(hash, &ctx.source_ip));
                // A secret key this instance has seen over its minute limit counts its minute
                // only, until the minute ends: each refusal is one write, not a count and a
                // give-back, so a runaway client cannot make its month item a hot spot.
                let minute_only = key_type == KeyType::Secret && limited(hash.as_str());
                let early_month = async {
                    match early {
                        true => Some(self.store.count_month(hash, month).await),
                        false => None,
                    }
                };
                let counted = Counted::key(hash, key_type, &ctx.source_ip);
                let count = async {
                    match minute_only {
                        true => self.store.count_key_minute(hash, now).await,
                        false => self.store.count_request(&counted, now).await,
                    }
                };
                let (record, tally, early_month) = futures::join!(self.store.get_key(hash), count, early_month);
                // A count whose write failed may or may not have been made: it is never given
                // back (the quota errs towards refusing, never towards more).
                if let Some(Ok(position)) = early_month {
                    *held = Some(Held { hash: hash.clone(), at: now, with_minute: false });
                    early_position = Some(position);
                }
                // A secret key's counting write counted its month: held from here, so a failed
                // key read gives it back.
                if let Ok(Tally { month: Some(_), .. }) = tally {
                    *held = Some(Held { hash: hash.clone(), at: now, with_minute: true });
                }
                (record.map_err(AuthError::from)?, tally)
            }
        };
        // Stale marks are swept whatever the verdict, an unknown key's included: nothing else
        // would keep a month item that an attacker repeats a random key against small.
        if let Ok(Tally { sweep, .. }) = &tally
            && !sweep.is_empty()
            && let Some(hash) = looked_up.or_else(|| record.as_ref().map(|r| r.key_hash.clone()))
        {
            counting.sweep = Some((hash, now, sweep.clone()));
        }
        let Some(record) = record else {
            // Unknown keys cost a read: hold them to the anonymous per-IP limit. A month count
            // under a hash no key has is nobody's: not worth a write to give back.
            *held = None;
            return Err(self.refuse_anonymous(ctx, AuthError::UnknownKey).await);
        };
        let hash = record.key_hash.clone();
        let tally = tally.map_err(AuthError::from)?;
        let held = &mut counting.held;
        let rate = RateLimitStatus::decide(record.tier.per_minute(), tally.minute, now);
        let mut caller = Caller { record, rate, quota: None, counted_at: now, portal_actor: None };
        let refusal = match caller.record.usable_at(now) {
            // A dead key spends no budget; its caller's IP pays, as for an unknown key.
            Err(r) => Some(AuthError::from(r)),
            Ok(()) if !caller.record.origin_allowed(origin) => Some(AuthError::OriginNotAllowed),
            Ok(()) => None,
        };
        let secret = caller.record.key_type == KeyType::Secret;
        if let Some(error) = refusal {
            // A secret key's month is given back with its minute, in one write.
            if secret {
                *held = None;
            }
            return Err(self.refuse_for_key(&caller.key_count(), ctx, error).await);
        }
        match (secret, tally.month) {
            // A secret key's month counts the requests it accepts, with a quota or without:
            // held from here, given back on any later refusal or failure.
            (true, Some(position)) => {
                *held = Some(Held { hash: hash.clone(), at: now, with_minute: true });
                early_position = Some(position);
            }
            // Counted in its minute only: its month is counted below, once its minute admits it.
            (true, None) => {}
            // Only live keys are remembered: a revoked one with a quota costs no early count.
            (false, _) => self.quota_keys.note(&hash, caller.record.monthly_quota.is_some()),
        }
        if !caller.rate.allowed {
            let limited = if secret { hash.as_str().to_owned() } else { visitor(&hash, &ctx.source_ip) };
            self.limited_visitors.remember(&limited, &caller.rate, now);
            return Err(Rejected { error: AuthError::limited(&caller.rate), rate: Some(caller.rate) });
        }
        if secret && early_position.is_none() {
            // Its minute admits it after all (a count given back since this instance saw the
            // limit): its month, now.
            let position = self.store.count_month(&hash, month).await.map_err(AuthError::from)?;
            *held = Some(Held { hash: hash.clone(), at: now, with_minute: true });
            early_position = Some(position);
        }
        match caller.record.monthly_quota {
            // A publishable key that lost its quota: its early count is given back.
            None if !secret => self.give_back_month(&hash, held.take().map(|held| Month::of(held.at))).await,
            None => {}
            Some(limit) => {
                let position = match early_position {
                    Some(position) => position,
                    // Only a publishable key's month can be uncounted here: a secret key's
                    // counting write returned it.
                    None => {
                        let position = self.store.count_month(&hash, month).await.map_err(AuthError::from)?;
                        *held = Some(Held { hash: hash.clone(), at: now, with_minute: false });
                        position
                    }
                };
                let quota = QuotaStatus::decide(limit, position, now);
                caller.quota = Some(quota);
                if !quota.allowed {
                    // Stays counted in its minute; its month count is given back with it.
                    *held = None;
                    let counted = Counted::key(&hash, caller.record.key_type, &ctx.source_ip);
                    if let Err(e) = self.store.refuse_for_quota(&counted, &hash, now).await {
                        unrecorded("a quota refusal not recorded", &e);
                    }
                    let error = AuthError::QuotaExceeded { retry_after_secs: quota.reset_in_secs };
                    return Err(Rejected { error, rate: Some(caller.rate) });
                }
            }
        }
        // Its custom roles as they stand now: a role change reaches the key on this request.
        // One consistent read, only for a key that holds custom roles.
        if let Err(e) = self.roles.resolve(&mut caller.record).await {
            return Err(Rejected { error: e.into(), rate: Some(caller.rate) });
        }
        Ok(caller)
    }

    /// Gives back a month's count taken for a request that did not end up using it.
    async fn give_back_month(&self, hash: &KeyHash, counted: Option<Month>) {
        if let Some(month) = counted
            && let Err(e) = self.store.uncount_month(hash, month).await
        {
            unrecorded("a month's count not given back", &e);
        }
    }

    /// The whole gate of a keyed endpoint: `Authorization` → key checks → access rule.
    /// Calls without a usable key count against the caller's IP.
    pub async fn authenticate(
        &self,
        key: Result<ApiKey, AuthError>,
        ctx: &RequestCtx,
        access: Access,
    ) -> Result<Caller, Rejected> {
        let key = match key {
            Ok(key) => key,
            Err(error) => return Err(self.refuse_anonymous(ctx, error).await),
        };
        let caller = self.check_key(&key, ctx, ctx.origin.as_deref()).await?;
        access.check(&caller.record).map_err(|error| Rejected { error, rate: Some(caller.rate.clone()) })?;
        Ok(caller)
    }

    /// The gate of a route a key portal session may call (`claims` from a token whose
    /// signature holds, or `None`): the session must be current, and the key it names is
    /// checked as if it called itself — on record, of the token's customer and environment,
    /// live, within its limits — then held to `access` with its powers as they are now.
    /// Refusals before the key is found count against the caller's IP.
    pub async fn authenticate_portal(
        &self,
        claims: Option<PortalClaims>,
        ctx: &RequestCtx,
        access: Access,
    ) -> Result<Caller, Rejected> {
        let now = self.clock.now();
        let (claims, prefix) = match claims.and_then(|c| c.prefix().map(|p| (c, p))) {
            Some((claims, _)) if !claims.current_at(now) => {
                return Err(self.refuse_anonymous(ctx, AuthError::SessionEnded).await);
            }
            Some(found) => found,
            // A signature, audience or claim that does not hold: no key is read (the published
            // keys are cached; a kid they do not hold rereads them at most every 30 s).
            None => return Err(self.refuse_anonymous(ctx, AuthError::ForgedSession).await),
        };
        // Not the browser's Origin: the page is served by this API, and a session acts for a
        // secret key, which no origin list governs.
        let mut caller = self.check(Lookup::Portal(&prefix), ctx, None).await?;
        let limits = Some(caller.rate.clone());
        if !claims.names(&caller.record) {
            return Err(Rejected { error: AuthError::UnknownKey, rate: limits });
        }
        if !access.admits_portal() {
            return Err(Rejected { error: AuthError::NotForPortal, rate: limits });
        }
        access.check(&caller.record).map_err(|error| Rejected { error, rate: limits })?;
        caller.portal_actor = Some(claims.act);
        Ok(caller)
    }
}

/// How the key to check is found.
#[derive(Debug, Clone, Copy)]
enum Lookup<'a> {
    /// A key presented in full: by its hash, read and counted at once.
    Key(&'a KeyHash, KeyType),
    /// A key portal session's key, by the prefix its token names.
    Portal(&'a KeyPrefix),
}

impl Auth {
    /// Keys that require signed user ids must prove their customer's backend vouched for
    /// this user acting for `buddy` (API.md "Signed user ids"). Fails closed: a key that
    /// requires them with no (or an unopenable) secret on record refuses every such request.
    pub async fn check_signed_user(
        &self,
        record: &KeyRecord,
        proof: Option<&SignedUser>,
        buddy: &BuddyId,
    ) -> Result<(), AuthError> {
        if !record.require_signed_user_id {
            return Ok(());
        }
        let (Some(proof), Some(sealed)) = (proof, record.hmac_secret.as_ref()) else {
            return Err(AuthError::InvalidUserSignature);
        };
        let Some(secret) = self.sealer.key().await?.open(sealed, &record.key_hash) else {
            tracing::error!(prefix = %record.prefix, "the key's sealed HMAC secret does not open");
            return Err(AuthError::InvalidUserSignature);
        };
        let now = self.clock.now();
        match user_signature_valid(&secret, &proof.user_id, buddy, proof.user_id_ts, &proof.user_id_sig, now) {
            true => Ok(()),
            false => Err(AuthError::InvalidUserSignature),
        }
    }
}

/// A counting write on a refused path that failed: the request's answer stands (a count left
/// behind errs towards refusing), the log says which. One call site: each `tracing` call site
/// is code in every function.
#[inline(never)]
fn unrecorded(what: &'static str, cause: &StoreError) {
    tracing::warn!(cause = %cause, what, "count bookkeeping failed");
}
