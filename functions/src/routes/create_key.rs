//! POST /api/v1/keys — issue a key in the caller's customer and environment, never holding a
//! scope or tier the caller lacks. The plaintext (and HMAC secret) appear in this response only.
//! Budget: the caller's key read, then one transaction (both key items, the audit event).

use hatched::domain::quota::MonthlyQuota;
use hatched::domain::{KeyType, Label, Scope, Tier};
use hatched::endpoint::Endpoint;
use hatched::handler::keyed;
use hatched::http::{double_option, json_body};
use hatched::keys::KeyOptions;
use hatched::lambda_http::{Body, Request, Response};
use hatched::views::KeyView;
use hatched::{Access, ApiError, App, Caller, RequestCtx};
use serde::{Deserialize, Serialize};

pub const ENDPOINT: Endpoint = Endpoint {
    function: "create-key",
    method: "POST",
    path: "/api/v1/keys",
    access: Access::Managing(Scope::KeysWrite),
    browser: false,
    status: 201,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateRequest {
    #[serde(rename = "type")]
    key_type: KeyType,
    #[serde(default)]
    label: Option<Label>,
    #[serde(default)]
    tier: Option<Tier>,
    #[serde(default)]
    scopes: Option<Vec<String>>,
    #[serde(default)]
    roles: Option<Vec<String>>,
    #[serde(default)]
    allowed_origins: Vec<String>,
    #[serde(default)]
    require_signed_user_id: bool,
    /// Absent: the caller's own quota; `null`: none.
    #[serde(default, deserialize_with = "double_option")]
    monthly_quota: Option<Option<MonthlyQuota>>,
}

/// The plaintext key, its HMAC secret if any, and the record — shown once.
#[derive(Serialize)]
pub struct Created {
    pub key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hmac_secret: Option<String>,
    pub record: KeyView,
}

pub async fn handle(app: &App, req: Request) -> Response<Body> {
    keyed(app, req, &ENDPOINT, |caller, req| create(app, caller, req)).await
}

async fn create(app: &App, caller: Caller, req: Request) -> Result<Created, ApiError> {
    let body: CreateRequest = json_body(&req)?;
    let by = caller.manager(&RequestCtx::of(&req));
    let options = KeyOptions {
        tier: body.tier,
        label: body.label.map(Label::into_inner),
        owner: None,
        scopes: body.scopes,
        roles: body.roles,
        allowed_origins: body.allowed_origins,
        require_signed_user_id: body.require_signed_user_id,
        monthly_quota: body.monthly_quota,
    };
    let record = &caller.record;
    let issued = app.keys.issue_key(&record.customer_id, body.key_type, record.environment, options, &by).await?;
    Ok(Created {
        key: issued.key.expose().to_owned(),
        hmac_secret: issued.hmac_secret.map(|s| s.expose().to_owned()),
        record: KeyView::from(&issued.record),
    })
}
