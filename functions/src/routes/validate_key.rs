//! POST /api/v1/keys/validate — is this key usable, and what may it do?
//! Key problems are answers (200, `valid: false`), not errors; a bad request body is a 400.

use hatched::auth::{Access, Rejected, require_scopes};
use hatched::domain::key::display_prefix_of;
use hatched::domain::quota::QuotaStatus;
use hatched::domain::ratelimit::RateLimitStatus;
use hatched::domain::time::rfc3339;
use hatched::domain::{ApiKey, KeyPrefix, KeyRecord, Scope, UnixTime};
use hatched::endpoint::Endpoint;
use hatched::handler::{log_request, serving};
use hatched::http::json_body;
use hatched::lambda_http::{Body, Request, Response};
use hatched::{ApiError, App, Caller, Reply, RequestCtx};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ValidateRequest {
    key: String,
    #[serde(default)]
    origin: Option<String>,
    #[serde(default)]
    required_scopes: Vec<String>,
}

pub const ENDPOINT: Endpoint = Endpoint {
    function: "validate-key",
    method: "POST",
    path: "/api/v1/keys/validate",
    // The key travels in the body: no `Authorization`, yet the call counts toward that key.
    access: Access::Anonymous,
    browser: false,
    status: 200,
};

pub async fn handle(app: &App, req: Request) -> Response<Body> {
    serving(ENDPOINT.function, answer(app, req)).await
}

async fn answer(app: &App, req: Request) -> Response<Body> {
    let ctx = RequestCtx::of(&req);
    let (prefix, verdict) = validate(app, &ctx, &req).await;
    let code = verdict.as_ref().err().map(|(error, _)| error.code());
    let logged_prefix = prefix.as_ref().map(|p| p.as_str().to_owned());
    let response = match verdict {
        Ok(caller) => {
            let valid = Valid::new(&caller.record, &caller.rate, caller.quota.as_ref());
            Reply::new(&ctx).with_rate(Some(&caller.rate)).json(200, &valid)
        }
        Err((error, rate)) if is_verdict(&error) => Reply::new(&ctx)
            .with_rate(rate.as_ref())
            .with_retry_after(error.retry_after())
            .json(200, &Invalid { valid: false, code: error.code(), prefix }),
        Err((error, _)) => Reply::new(&ctx).error(&error),
    };
    // The verdict's code is the outcome, whether answered as 200 `valid: false` or as an error.
    log_request(&ctx, ENDPOINT.function, logged_prefix.as_deref(), response.status().as_u16(), code);
    response
}

/// A refusal as validate answers it: the API.md error, and the key's window where counted.
type Verdict = Result<Caller, (ApiError, Option<RateLimitStatus>)>;

/// Body → key format → record, rate window and origin → required scopes.
async fn validate(app: &App, ctx: &RequestCtx, req: &Request) -> (Option<KeyPrefix>, Verdict) {
    let parsed = json_body::<ValidateRequest>(req).and_then(|b| parse_scopes(&b.required_scopes).map(|s| (b, s)));
    let (body, required) = match parsed {
        Ok(parsed) => parsed,
        Err(e) => return (None, Err((e, None))),
    };
    let (prefix, verdict) = match ApiKey::parse(&body.key) {
        Ok(key) => (Some(key.prefix()), app.auth.check_key(&key, ctx, body.origin.as_deref()).await),
        // A malformed key costs no database read; it counts against the caller's IP instead.
        Err(format) => (display_prefix_of(&body.key), Err(app.auth.refuse_anonymous(ctx, format.into()).await)),
    };
    let verdict = verdict.and_then(|caller| match require_scopes(&caller.record, &required) {
        Err(error) => Err(Rejected { error, rate: Some(caller.rate) }),
        Ok(()) => Ok(caller),
    });
    (prefix, verdict.map_err(|r| (ApiError::from(r.error), r.rate)))
}

fn parse_scopes(texts: &[String]) -> Result<Vec<Scope>, ApiError> {
    texts.iter().map(|t| Scope::parse(t).ok_or_else(|| ApiError::InvalidScope(t.clone()))).collect()
}

/// Outcomes reported in a 200 body rather than as an error status.
fn is_verdict(error: &ApiError) -> bool {
    matches!(
        error,
        ApiError::InvalidKeyFormat(_)
            | ApiError::InvalidKey
            | ApiError::KeyRevoked
            | ApiError::KeyExpired
            | ApiError::OriginNotAllowed
            | ApiError::InsufficientScope(_)
            | ApiError::RateLimited { .. }
            | ApiError::QuotaExceeded { .. }
    )
}

#[derive(Serialize)]
struct Invalid {
    valid: bool,
    code: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    prefix: Option<KeyPrefix>,
}

#[derive(Serialize)]
struct Valid<'a> {
    valid: bool,
    key: KeyView<'a>,
    rate_limit: RateView,
    #[serde(skip_serializing_if = "Option::is_none")]
    quota: Option<QuotaView>,
}

#[derive(Serialize)]
struct KeyView<'a> {
    prefix: &'a KeyPrefix,
    #[serde(rename = "type")]
    key_type: &'static str,
    environment: &'static str,
    customer_id: &'a str,
    tier: &'static str,
    scopes: Vec<&'static str>,
    label: Option<&'a str>,
    #[serde(with = "rfc3339")]
    created_at: UnixTime,
    #[serde(with = "rfc3339::option")]
    expires_at: Option<UnixTime>,
}

#[derive(Serialize)]
struct QuotaView {
    limit: u64,
    remaining: u64,
    reset_at: String,
}

#[derive(Serialize)]
struct RateView {
    limit: u32,
    remaining: u32,
    reset_at: String,
}

impl<'a> Valid<'a> {
    fn new(record: &'a KeyRecord, rate: &RateLimitStatus, quota: Option<&QuotaStatus>) -> Valid<'a> {
        Valid {
            valid: true,
            key: KeyView {
                prefix: &record.prefix,
                key_type: record.key_type.as_str(),
                environment: record.environment.as_str(),
                customer_id: record.customer_id.as_str(),
                tier: record.tier.as_str(),
                scopes: record.effective_scopes().iter().map(|s| s.as_str()).collect(),
                label: record.label.as_deref(),
                created_at: record.created_at,
                expires_at: record.expires_at,
            },
            rate_limit: RateView { limit: rate.limit, remaining: rate.remaining, reset_at: rate.reset_at.rfc3339() },
            quota: quota.map(|q| QuotaView { limit: q.limit, remaining: q.remaining, reset_at: q.reset_at.rfc3339() }),
        }
    }
}
