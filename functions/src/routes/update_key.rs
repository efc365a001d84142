//! PATCH /api/v1/keys/{prefix} — change a key's label, scopes, origins or signed-user-id
//! requirement; takes effect on the next request. Never a scope the caller lacks. Turning on
//! signed user ids for a key without a secret creates one, shown in this response only.
//! Budget: the caller's key read, one read of the key, one transaction (both items + event).

use hatched::domain::Label;
use hatched::domain::quota::MonthlyQuota;
use hatched::domain::{KeyPrefix, Scope};
use hatched::endpoint::Endpoint;
use hatched::handler::keyed;
use hatched::http::double_option;
use hatched::http::{json_body, path_param};
use hatched::keys::KeyPatch;
use hatched::lambda_http::{Body, Request, Response};
use hatched::views::KeyView;
use hatched::{Access, ApiError, App, Caller, RequestCtx};
use serde::{Deserialize, Serialize};

pub const ENDPOINT: Endpoint = Endpoint {
    function: "update-key",
    method: "PATCH",
    path: "/api/v1/keys/{prefix}",
    access: Access::Managing(Scope::KeysWrite),
    browser: false,
    status: 200,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchRequest {
    /// Absent: unchanged; `null`: removed.
    #[serde(default, deserialize_with = "double_option")]
    label: Option<Option<Label>>,
    #[serde(default)]
    scopes: Option<Vec<String>>,
    #[serde(default)]
    roles: Option<Vec<String>>,
    #[serde(default)]
    allowed_origins: Option<Vec<String>>,
    #[serde(default)]
    require_signed_user_id: Option<bool>,
    /// Absent: unchanged; `null`: removed.
    #[serde(default, deserialize_with = "double_option")]
    monthly_quota: Option<Option<MonthlyQuota>>,
}

#[derive(Serialize)]
struct Updated {
    #[serde(flatten)]
    record: KeyView,
    #[serde(skip_serializing_if = "Option::is_none")]
    hmac_secret: Option<String>,
}

pub async fn handle(app: &App, req: Request) -> Response<Body> {
    keyed(app, req, &ENDPOINT, |caller, req| update(app, caller, req)).await
}

async fn update(app: &App, caller: Caller, req: Request) -> Result<Updated, ApiError> {
    let body: PatchRequest = json_body(&req)?;
    let prefix = path_param(&req, "prefix", KeyPrefix::parse_id)?;
    let patch = KeyPatch {
        label: body.label.map(|l| l.map(Label::into_inner)),
        scopes: body.scopes,
        roles: body.roles,
        allowed_origins: body.allowed_origins,
        require_signed_user_id: body.require_signed_user_id,
        monthly_quota: body.monthly_quota,
    };
    let by = caller.manager(&RequestCtx::of(&req));
    let (record, secret) = app.keys.update_key(&prefix, &patch, &by).await?;
    Ok(Updated { record: KeyView::from(&record), hmac_secret: secret.map(|s| s.expose().to_owned()) })
}
