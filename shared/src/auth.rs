//! Authentication shared by every keyed endpoint: one consistent key read with the
//! rate-window count running concurrently, then the record's verdicts in a fixed order.

use crate::app::App;
use crate::domain::ratelimit::{Counted, RateLimitStatus};
use crate::domain::{ANONYMOUS_PER_MINUTE, ApiKey, KeyRecord, KeyType, LAST_USED_RESOLUTION_SECS, Scope};
use crate::error::ApiError;
use crate::http::{RequestCtx, bearer_key};
use lambda_http::Request;

/// An authenticated caller: the key's record and where it stands in its rate window.
#[derive(Debug, Clone)]
pub struct Caller {
    pub record: KeyRecord,
    pub rate: RateLimitStatus,
}

/// A refusal, with the rate window when the key was far enough along to be counted.
#[derive(Debug)]
pub struct Rejected {
    pub error: ApiError,
    pub rate: Option<RateLimitStatus>,
}

impl From<ApiError> for Rejected {
    fn from(error: ApiError) -> Rejected {
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
    /// Either kind of key, holding this scope.
    Scoped(Scope),
}

impl Access {
    pub fn check(self, record: &KeyRecord) -> Result<(), ApiError> {
        match self {
            Access::Anonymous => Ok(()),
            Access::SecretOnly(_) if record.key_type == KeyType::Publishable => Err(ApiError::PublishableKeyScope),
            Access::SecretOnly(scope) | Access::Scoped(scope) => require_scopes(record, &[scope]),
        }
    }
}

/// The first of `scopes` the key lacks is `insufficient_scope`.
pub fn require_scopes(record: &KeyRecord, scopes: &[Scope]) -> Result<(), ApiError> {
    match scopes.iter().find(|s| !record.has_scope(**s)) {
        Some(missing) => Err(ApiError::InsufficientScope(*missing)),
        None => Ok(()),
    }
}

impl App {
    /// Counts a request without a usable key against its source IP.
    pub async fn count_anonymous(&self, ctx: &RequestCtx) -> Result<RateLimitStatus, ApiError> {
        let now = self.clock.now();
        let count = self.store.count_request(&Counted::Ip(&ctx.source_ip), now).await?;
        Ok(RateLimitStatus::decide(ANONYMOUS_PER_MINUTE, count, now))
    }

    /// A refusal of a call without a usable key: counted against the source IP, and a 429
    /// instead once the IP is over its limit.
    pub async fn refuse_anonymous(&self, ctx: &RequestCtx, error: ApiError) -> Rejected {
        match self.count_anonymous(ctx).await {
            Ok(ip) if !ip.allowed => ApiError::RateLimited { retry_after_secs: ip.reset_in_secs }.into(),
            Ok(_) => error.into(),
            Err(unavailable) => unavailable.into(),
        }
    }

    /// Verdict on a well-formed key: on record, not revoked or expired, within its rate
    /// limit, and (publishable keys) called from an allowed origin. Records the use.
    pub async fn check_key(&self, key: &ApiKey, ctx: &RequestCtx, origin: Option<&str>) -> Result<Caller, Rejected> {
        let now = self.clock.now();
        let hash = key.hash();
        let counted = Counted::Key(&hash);
        let (record, count) = futures::join!(self.store.get_key(&hash), self.store.count_request(&counted, now));
        let Some(record) = record.map_err(ApiError::from)? else {
            // Unknown keys cost a read: hold them to the anonymous per-IP limit.
            return Err(self.refuse_anonymous(ctx, ApiError::InvalidKey).await);
        };
        let rate = RateLimitStatus::decide(record.tier.per_minute(), count.map_err(ApiError::from)?, now);
        let reject = |error: ApiError, rate: &RateLimitStatus| Err(Rejected { error, rate: Some(rate.clone()) });
        if let Err(r) = record.usable_at(now) {
            return reject(r.into(), &rate);
        }
        if !rate.allowed {
            return reject(ApiError::RateLimited { retry_after_secs: rate.reset_in_secs }, &rate);
        }
        if !record.origin_allowed(origin) {
            return reject(ApiError::OriginNotAllowed, &rate);
        }
        if record.last_used_is_stale(now) {
            // Bookkeeping only: a failure here must not fail an otherwise good request.
            if let Err(e) = self.store.touch_key_last_used(&record.key_hash, now, LAST_USED_RESOLUTION_SECS).await {
                tracing::warn!(prefix = %record.prefix, cause = %e, "last_used_at not recorded");
            }
        }
        Ok(Caller { record, rate })
    }

    /// The whole gate of a keyed endpoint: `Authorization` → key checks → access rule.
    /// Calls without a usable key count against the caller's IP.
    pub async fn authenticate(&self, req: &Request, ctx: &RequestCtx, access: Access) -> Result<Caller, Rejected> {
        let key = match bearer_key(req) {
            Ok(key) => key,
            Err(error) => return Err(self.refuse_anonymous(ctx, error).await),
        };
        let caller = self.check_key(&key, ctx, ctx.origin.as_deref()).await?;
        access.check(&caller.record).map_err(|error| Rejected { error, rate: Some(caller.rate.clone()) })?;
        Ok(caller)
    }
}
