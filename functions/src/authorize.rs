//! The platform's API-key middleware as an API Gateway HTTP API Lambda authorizer (payload
//! 2.0, simple responses): other services put it in front of their routes and never handle
//! keys themselves. No `Authorization` header → allowed as `anonymous` within 60 requests a
//! minute per source IP; a present key must pass the very checks every endpoint of ours runs
//! (`App::check_key`: on record, not revoked or expired, origin rules, its tier's limit) or the
//! request is denied — a bad key is never downgraded to anonymous. Budget: one key read with
//! the rate count beside it; a malformed key costs no DynamoDB call at all.

use hatched::auth::AuthError;
use hatched::domain::ratelimit::RateLimitStatus;
use hatched::endpoint::Function;
use hatched::handler::{log_request, serving};
use hatched::http::bearer_key_in;
use hatched::lambda_http::aws_lambda_events::apigw::{
    ApiGatewayV2CustomAuthorizerSimpleResponse, ApiGatewayV2CustomAuthorizerV2Request,
};
use hatched::{ApiError, App, Caller, RequestCtx};
use serde::Serialize;

pub const FUNCTION: Function = Function { function: "authorize" };

pub type AuthorizerRequest = ApiGatewayV2CustomAuthorizerV2Request;
pub type AuthorizerResponse = ApiGatewayV2CustomAuthorizerSimpleResponse;

/// What the protected route receives in `requestContext.authorizer.lambda` (API.md).
#[derive(Debug, Serialize)]
pub struct Context {
    auth: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    customer_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    environment: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tier: Option<&'static str>,
    /// Space-separated, as in tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    scopes: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    prefix: Option<String>,
    rate_limit_remaining: u32,
    /// Seconds until the window resets (as the `RateLimit-Reset` header).
    rate_limit_reset: u64,
    /// Requests left this month, for a key with a monthly quota.
    #[serde(skip_serializing_if = "Option::is_none")]
    quota_remaining: Option<u64>,
    /// Seconds until the month ends, for a key with a monthly quota.
    #[serde(skip_serializing_if = "Option::is_none")]
    quota_reset: Option<u64>,
}

impl Context {
    fn anonymous(ip: &RateLimitStatus) -> Context {
        Context {
            auth: "anonymous",
            customer_id: None,
            environment: None,
            key_type: None,
            tier: None,
            scopes: None,
            prefix: None,
            rate_limit_remaining: ip.remaining,
            rate_limit_reset: ip.reset_in_secs,
            quota_remaining: None,
            quota_reset: None,
        }
    }

    fn key(caller: &Caller) -> Context {
        let record = &caller.record;
        Context {
            auth: "key",
            customer_id: Some(record.customer_id.to_string()),
            environment: Some(record.environment.as_str()),
            key_type: Some(record.key_type.as_str()),
            tier: Some(record.tier.as_str()),
            scopes: Some(record.effective_scopes().iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" ")),
            prefix: Some(record.prefix.to_string()),
            rate_limit_remaining: caller.rate.remaining,
            rate_limit_reset: caller.rate.reset_in_secs,
            quota_remaining: caller.quota.map(|q| q.remaining),
            quota_reset: caller.quota.map(|q| q.reset_in_secs),
        }
    }
}

pub async fn handle(app: &App, req: AuthorizerRequest) -> AuthorizerResponse {
    serving(FUNCTION.function, decide(app, req)).await
}

async fn decide(app: &App, req: AuthorizerRequest) -> AuthorizerResponse {
    let ctx = RequestCtx::from_gateway(&req.request_context, &req.headers);
    let verdict = match bearer_key_in(&req.headers) {
        Err(AuthError::MissingKey) => match app.auth.count_anonymous(&ctx).await {
            Ok(ip) if ip.allowed => Ok(Context::anonymous(&ip)),
            Ok(ip) => Err(ApiError::RateLimited { retry_after_secs: ip.reset_in_secs }),
            Err(e) => Err(e.into()),
        },
        // Present but malformed: decided from the key's shape alone, never anonymous.
        Err(malformed) => Err(malformed.into()),
        Ok(key) => app
            .auth
            .check_key(&key, &ctx, ctx.origin.as_deref())
            .await
            .map(|c| Context::key(&c))
            .map_err(|r| r.error.into()),
    };
    let mut response = AuthorizerResponse::default();
    match verdict {
        Ok(context) => {
            log_request(&ctx, FUNCTION.function, context.prefix.as_deref(), 200, None);
            response.is_authorized = true;
            response.context = serde_json::to_value(&context).unwrap_or_default();
        }
        // Dependencies down: denied too (fail closed), with the cause in the log.
        Err(error) => {
            if let ApiError::Unavailable(cause) | ApiError::Internal(cause) = &error {
                tracing::error!(request_id = %ctx.request_id, cause, "authorizer failed closed");
            }
            log_request(&ctx, FUNCTION.function, None, 403, Some(error.code()));
        }
    }
    response
}
