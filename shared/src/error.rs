//! The one error type of the API: every variant maps to an API.md status and code here,
//! and nowhere else.

use serde_json::{Value, json};

use crate::auth::AuthError;
use crate::aws::AwsFailure;
use crate::domain::origin::OriginPatternError;
use crate::domain::role::RoleRuleError;
use crate::domain::token::{ScopeError, TtlOutOfRange};
use crate::domain::usage::UsageQueryError;
use crate::domain::{InvalidId, KeyFormatError, KeyRejection, Scope, ScopeGrantError};
use crate::keys::KeyError;
use crate::roles::RoleError;
use crate::sealing::SealingError;
use crate::signing::SigningError;
use crate::store::StoreError;
use crate::tokens::TokenError;
use crate::unlock::UnlockError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    InvalidRequest(String),
    #[error("scopes required")]
    ScopesRequired,
    #[error("invalid scope {0}")]
    InvalidScope(String),
    #[error("scopes not allowed")]
    ScopesNotAllowed,
    #[error("invalid ttl")]
    InvalidTtl { min: u32, max: u32 },
    #[error("missing key")]
    MissingKey,
    #[error("invalid key format: {0}")]
    InvalidKeyFormat(KeyFormatError),
    #[error("invalid key")]
    InvalidKey,
    #[error("key revoked")]
    KeyRevoked,
    #[error("key expired")]
    KeyExpired,
    #[error("insufficient balance")]
    InsufficientBalance { token_key: String, required: i64, available: i64 },
    #[error("publishable key used on a secret-only endpoint")]
    PublishableKeyScope,
    #[error("insufficient scope")]
    InsufficientScope(Scope),
    /// Key management would grant what the acting key does not hold (a scope, `tier:<t>`).
    #[error("escalation")]
    Escalation(String),
    /// Changing roles needs every secret-key scope; these are the ones missing.
    #[error("role change needs every secret-key scope")]
    RoleEscalation(Vec<Scope>),
    #[error("role exists")]
    RoleExists,
    #[error("role in use")]
    RoleInUse,
    #[error("role built in")]
    RoleBuiltIn,
    #[error("origin not allowed")]
    OriginNotAllowed,
    #[error("invalid user signature")]
    InvalidUserSignature,
    #[error("buddy not found")]
    BuddyNotFound,
    #[error("gate not found")]
    GateNotFound,
    #[error("session not found")]
    SessionNotFound,
    #[error("key not found")]
    KeyNotFound,
    #[error("not found")]
    NotFound,
    #[error("role not found")]
    RoleNotFound,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("payload too large")]
    PayloadTooLarge,
    #[error("unsupported media type")]
    UnsupportedMediaType,
    #[error("rate limited")]
    RateLimited { retry_after_secs: u64 },
    /// Over the key's monthly quota until the month ends.
    #[error("monthly quota exceeded")]
    QuotaExceeded { retry_after_secs: u64 },
    /// A dependency (DynamoDB, Secrets Manager) is unreachable or throttling after retries.
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// A bug or an unexpected answer. The cause is logged, never sent.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn status(&self) -> u16 {
        use ApiError::*;
        match self {
            InvalidRequest(_) | ScopesRequired | InvalidScope(_) | ScopesNotAllowed | InvalidTtl { .. } => 400,
            MissingKey | InvalidKeyFormat(_) | InvalidKey | KeyRevoked | KeyExpired => 401,
            InsufficientBalance { .. } => 402,
            PublishableKeyScope | InsufficientScope(_) | Escalation(_) | RoleEscalation(_) | OriginNotAllowed
            | InvalidUserSignature => 403,
            RoleExists | RoleInUse | RoleBuiltIn => 409,
            BuddyNotFound | GateNotFound | SessionNotFound | KeyNotFound | NotFound | RoleNotFound => 404,
            MethodNotAllowed => 405,
            PayloadTooLarge => 413,
            UnsupportedMediaType => 415,
            RateLimited { .. } | QuotaExceeded { .. } => 429,
            Internal(_) => 500,
            Unavailable(_) => 503,
        }
    }

    pub fn code(&self) -> &'static str {
        use ApiError::*;
        match self {
            InvalidRequest(_) => "invalid_request",
            ScopesRequired => "scopes_required",
            InvalidScope(_) => "invalid_scope",
            ScopesNotAllowed => "scopes_not_allowed",
            InvalidTtl { .. } => "invalid_ttl",
            MissingKey => "missing_key",
            InvalidKeyFormat(_) => "invalid_key_format",
            InvalidKey => "invalid_key",
            KeyRevoked => "key_revoked",
            KeyExpired => "key_expired",
            InsufficientBalance { .. } => "insufficient_balance",
            PublishableKeyScope => "publishable_key_scope",
            InsufficientScope(_) | Escalation(_) | RoleEscalation(_) => "insufficient_scope",
            RoleExists => "role_exists",
            RoleInUse => "role_in_use",
            RoleBuiltIn => "role_built_in",
            OriginNotAllowed => "origin_not_allowed",
            InvalidUserSignature => "invalid_user_signature",
            BuddyNotFound => "buddy_not_found",
            GateNotFound => "gate_not_found",
            SessionNotFound => "session_not_found",
            KeyNotFound => "key_not_found",
            NotFound | RoleNotFound => "not_found",
            MethodNotAllowed => "method_not_allowed",
            PayloadTooLarge => "payload_too_large",
            UnsupportedMediaType => "unsupported_media_type",
            RateLimited { .. } => "rate_limited",
            QuotaExceeded { .. } => "quota_exceeded",
            Unavailable(_) => "service_unavailable",
            Internal(_) => "internal_error",
        }
    }

    /// One human sentence, safe to send: it never carries internals or the presented key.
    pub fn message(&self) -> String {
        use ApiError::*;
        match self {
            InvalidRequest(why) => format!("The request is invalid: {why}."),
            ScopesRequired => "A widget session needs a non-empty scopes list.".into(),
            // The value is in `details.scope` (API.md); the sentence does not repeat what was
            // sent, which may be anything pasted, a key included.
            InvalidScope(_) => "A requested scope is not one this endpoint allows (see details.scope).".into(),
            ScopesNotAllowed => "Embed tokens are read-only and take no scopes field.".into(),
            InvalidTtl { min, max } => format!("ttl_seconds must be between {min} and {max}."),
            MissingKey => "An Authorization: Bearer <key> header is required.".into(),
            InvalidKeyFormat(_) => "The API key is not in a valid format.".into(),
            InvalidKey => "The API key is not recognised.".into(),
            KeyRevoked => "The API key has been revoked.".into(),
            KeyExpired => "The API key has expired.".into(),
            InsufficientBalance { .. } => "The balance cannot pay for this unlock.".into(),
            PublishableKeyScope => {
                "Publishable keys cannot use this endpoint; use a secret key from your server.".into()
            }
            InsufficientScope(scope) => format!("The API key lacks the {scope} scope."),
            Escalation(what) => format!("A key cannot grant {what}, which it does not hold itself."),
            RoleEscalation(_) => {
                "Creating, changing or deleting a role needs a key holding every secret-key scope (see details.required).".into()
            }
            RoleExists => "A role of that name exists (built-in names included).".into(),
            RoleInUse => "An unrevoked key holds this role; take it from every key first.".into(),
            RoleBuiltIn => "Built-in roles never change.".into(),
            OriginNotAllowed => "The request origin is not allowed for this key.".into(),
            InvalidUserSignature => "The signed user id is missing, wrong or too old.".into(),
            BuddyNotFound => "No such buddy.".into(),
            GateNotFound => "No such gate.".into(),
            SessionNotFound => "No such widget session.".into(),
            KeyNotFound => "No key with that prefix in this customer and environment.".into(),
            NotFound => "No such route.".into(),
            RoleNotFound => "No role of that name in this customer and environment.".into(),
            MethodNotAllowed => "This route does not accept that method.".into(),
            PayloadTooLarge => "The request body is larger than 16 KiB.".into(),
            UnsupportedMediaType => "The request body must be application/json.".into(),
            RateLimited { .. } => "Too many requests; retry after the time in Retry-After.".into(),
            QuotaExceeded { .. } => {
                "The key's monthly quota is used up; it starts again when the month ends (Retry-After).".into()
            }
            Unavailable(_) => "The service is temporarily unavailable; retry shortly.".into(),
            Internal(_) => "An internal error occurred.".into(),
        }
    }

    pub fn details(&self) -> Option<Value> {
        use ApiError::*;
        match self {
            InvalidScope(scope) => Some(json!({ "scope": scope })),
            InvalidTtl { min, max } => Some(json!({ "min": min, "max": max })),
            InsufficientBalance { token_key, required, available } => {
                Some(json!({ "token_key": token_key, "required": required, "available": available }))
            }
            InsufficientScope(scope) => Some(json!({ "required": scope.as_str() })),
            Escalation(what) => Some(json!({ "required": what })),
            RoleEscalation(missing) => {
                Some(json!({ "required": missing.iter().map(|s| s.as_str()).collect::<Vec<_>>() }))
            }
            _ => None,
        }
    }

    /// Seconds for `Retry-After`, where the status has one.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            ApiError::RateLimited { retry_after_secs } | ApiError::QuotaExceeded { retry_after_secs } => {
                Some(*retry_after_secs)
            }
            ApiError::Unavailable(_) => Some(1),
            _ => None,
        }
    }

    /// The `{"error": {...}}` body of API.md.
    pub fn body(&self, request_id: &str) -> Value {
        let mut error = json!({ "code": self.code(), "message": self.message(), "request_id": request_id });
        if let Some(details) = self.details() {
            error["details"] = details;
        }
        json!({ "error": error })
    }
}

impl From<AwsFailure> for ApiError {
    fn from(e: AwsFailure) -> ApiError {
        match e {
            AwsFailure::Unavailable { .. } => ApiError::Unavailable(e.to_string()),
            AwsFailure::Internal { .. } => ApiError::Internal(e.to_string()),
        }
    }
}

/// Outcomes a caller did not handle (`AlreadyExists`, `NotFound`, `Conflict`) are bugs here;
/// contention that outlasted its retries is a 503.
impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::Aws(aws) => aws.into(),
            StoreError::Contended | StoreError::Exhausted(_) => ApiError::Unavailable(e.to_string()),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<UsageQueryError> for ApiError {
    fn from(e: UsageQueryError) -> ApiError {
        ApiError::InvalidRequest(e.to_string())
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> ApiError {
        match e {
            AuthError::MissingKey => ApiError::MissingKey,
            AuthError::InvalidKeyFormat(e) => ApiError::InvalidKeyFormat(e),
            AuthError::UnknownKey => ApiError::InvalidKey,
            AuthError::Revoked => ApiError::KeyRevoked,
            AuthError::Expired => ApiError::KeyExpired,
            AuthError::OriginNotAllowed => ApiError::OriginNotAllowed,
            AuthError::RateLimited { retry_after_secs } => ApiError::RateLimited { retry_after_secs },
            AuthError::QuotaExceeded { retry_after_secs } => ApiError::QuotaExceeded { retry_after_secs },
            AuthError::PublishableKey => ApiError::PublishableKeyScope,
            AuthError::InsufficientScope(scope) => ApiError::InsufficientScope(scope),
            AuthError::InvalidUserSignature => ApiError::InvalidUserSignature,
            // A portal session past its `exp`: the page asks for a new one.
            AuthError::SessionEnded => ApiError::KeyExpired,
            // As any bearer that is not a key (API.md: every other route refuses it).
            AuthError::NotForPortal => ApiError::InvalidKeyFormat(crate::domain::KeyFormatError::UnknownPrefix),
            // As a key whose checksum does not hold (API.md: `invalid_key_format`).
            AuthError::ForgedSession => ApiError::InvalidKeyFormat(crate::domain::KeyFormatError::Checksum),
            AuthError::Store(e) => e.into(),
            AuthError::Sealing(e) => e.into(),
        }
    }
}

impl From<TokenError> for ApiError {
    fn from(e: TokenError) -> ApiError {
        match e {
            TokenError::BuddyNotFound => ApiError::BuddyNotFound,
            TokenError::SessionNotFound => ApiError::SessionNotFound,
            TokenError::Signing(e) => e.into(),
            TokenError::Store(e) => e.into(),
        }
    }
}

impl From<UnlockError> for ApiError {
    fn from(e: UnlockError) -> ApiError {
        match e {
            UnlockError::GateNotFound => ApiError::GateNotFound,
            UnlockError::BuddyNotFound => ApiError::BuddyNotFound,
            UnlockError::Insufficient { token_key, required, available } => {
                ApiError::InsufficientBalance { token_key: token_key.to_string(), required, available }
            }
            UnlockError::NotThePrimaryToken { .. } => ApiError::Internal(e.to_string()),
            UnlockError::Store(e) => e.into(),
        }
    }
}

impl From<SigningError> for ApiError {
    fn from(e: SigningError) -> ApiError {
        match e {
            SigningError::Aws(aws) => aws.into(),
            SigningError::Broken(why) | SigningError::Refused(why) => ApiError::Internal(why),
        }
    }
}

impl From<SealingError> for ApiError {
    fn from(e: SealingError) -> ApiError {
        match e {
            SealingError::Aws(aws) => aws.into(),
            SealingError::Broken(_) => ApiError::Internal(e.to_string()),
        }
    }
}

impl From<KeyError> for ApiError {
    fn from(e: KeyError) -> ApiError {
        match e {
            KeyError::PublishableOnly
            | KeyError::InvalidOrigin(_)
            | KeyError::RefusedOrigin(..)
            | KeyError::Unusable(_)
            | KeyError::UnknownRole(_)
            | KeyError::TooManyRoles
            | KeyError::RoleNotForPublishable(_) => ApiError::InvalidRequest(e.to_string()),
            KeyError::Scopes(ScopeGrantError::Unknown(scope)) => ApiError::InvalidScope(scope),
            KeyError::Scopes(ScopeGrantError::NotForPublishable(scope)) => ApiError::InvalidScope(scope.to_string()),
            KeyError::Escalation(what) => ApiError::Escalation(what),
            KeyError::NotFound => ApiError::KeyNotFound,
            KeyError::Contended(_) => ApiError::Unavailable(e.to_string()),
            KeyError::NoCustomer(_) => ApiError::Internal(e.to_string()),
            KeyError::Store(e) => e.into(),
            KeyError::Sealing(e) => e.into(),
        }
    }
}

impl From<RoleError> for ApiError {
    fn from(e: RoleError) -> ApiError {
        match e {
            RoleError::NotFound => ApiError::RoleNotFound,
            RoleError::Exists => ApiError::RoleExists,
            RoleError::BuiltIn => ApiError::RoleBuiltIn,
            RoleError::InUse => ApiError::RoleInUse,
            RoleError::Escalation(missing) => ApiError::RoleEscalation(missing),
            RoleError::Rule(RoleRuleError::UnknownScope(scope)) => ApiError::InvalidScope(scope),
            RoleError::Rule(rule) => ApiError::InvalidRequest(rule.to_string()),
            RoleError::Contended(_) => ApiError::Unavailable(e.to_string()),
            RoleError::Store(e) => e.into(),
        }
    }
}

impl From<OriginPatternError> for ApiError {
    fn from(e: OriginPatternError) -> ApiError {
        ApiError::InvalidRequest(e.to_string())
    }
}

impl From<InvalidId> for ApiError {
    fn from(e: InvalidId) -> ApiError {
        ApiError::InvalidRequest(e.to_string())
    }
}

impl From<ScopeError> for ApiError {
    fn from(e: ScopeError) -> ApiError {
        match e {
            ScopeError::Required => ApiError::ScopesRequired,
            ScopeError::Invalid(scope) => ApiError::InvalidScope(scope),
        }
    }
}

impl From<TtlOutOfRange> for ApiError {
    fn from(e: TtlOutOfRange) -> ApiError {
        ApiError::InvalidTtl { min: e.min, max: e.max }
    }
}

impl From<KeyFormatError> for ApiError {
    fn from(e: KeyFormatError) -> ApiError {
        ApiError::InvalidKeyFormat(e)
    }
}

impl From<KeyRejection> for ApiError {
    fn from(r: KeyRejection) -> ApiError {
        match r {
            KeyRejection::Revoked => ApiError::KeyRevoked,
            KeyRejection::Expired => ApiError::KeyExpired,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_shape_and_details() {
        let e = ApiError::InvalidTtl { min: 60, max: 3600 };
        let body = e.body("req-1");
        assert_eq!(body["error"]["code"], "invalid_ttl");
        assert_eq!(body["error"]["request_id"], "req-1");
        assert_eq!(body["error"]["details"], json!({"min": 60, "max": 3600}));
        assert_eq!(e.status(), 400);
    }

    #[test]
    fn internal_errors_say_nothing_more() {
        let e = ApiError::Internal("dynamodb: ValidationException at table hatched".into());
        let text = e.body("r").to_string();
        assert!(!text.contains("dynamodb"));
        assert!(!text.contains("hatched"));
        assert_eq!(e.status(), 500);
        let u = ApiError::Unavailable("connect refused 127.0.0.1:4566".into());
        assert!(!u.body("r").to_string().contains("127.0.0.1"));
        assert_eq!((u.status(), u.retry_after()), (503, Some(1)));
    }
}
