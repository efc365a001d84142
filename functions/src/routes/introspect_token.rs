//! POST /api/v1/tokens/introspect — is this token currently valid? (RFC 7662 in spirit.)
//! Anything not currently valid is `{"active": false}`, whatever the reason: the answer
//! never tells an attacker which check failed. Keys come from the published public set in the
//! table: this function has no access to the signing secret.

use hatched::auth::Access;
use hatched::domain::token::TokenClaims;
use hatched::endpoint::Endpoint;
use hatched::handler::anonymous;
use hatched::http::json_body;
use hatched::lambda_http::{Body, Request, Response};
use hatched::{ApiError, App};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IntrospectRequest {
    token: String,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Introspection {
    Active(Box<Active>),
    Inactive { active: bool },
}

#[derive(Serialize)]
struct Active {
    active: bool,
    token_type: &'static str,
    customer_id: String,
    environment: String,
    buddy_id: String,
    user_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    scopes: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    session_id: Option<String>,
    exp: i64,
    iat: i64,
}

pub const ENDPOINT: Endpoint = Endpoint {
    function: "introspect-token",
    method: "POST",
    path: "/api/v1/tokens/introspect",
    access: Access::Anonymous,
    browser: false,
    status: 200,
};

pub async fn handle(app: &App, req: Request) -> Response<Body> {
    anonymous(app, req, &ENDPOINT, "no-store", |req| introspect(app, req)).await
}

async fn introspect(app: &App, req: Request) -> Result<Introspection, ApiError> {
    let body: IntrospectRequest = json_body(&req)?;
    let Some(claims) = app.tokens.introspect(&body.token).await? else {
        return Ok(Introspection::Inactive { active: false });
    };
    let active = match claims {
        TokenClaims::Embed(c) => Active {
            active: true,
            token_type: "embed",
            customer_id: c.cid.to_string(),
            environment: c.env.to_string(),
            buddy_id: c.bid.to_string(),
            user_id: c.sub.to_string(),
            scopes: None,
            session_id: None,
            exp: c.exp,
            iat: c.iat,
        },
        TokenClaims::Session(c) => Active {
            active: true,
            token_type: "widget_session",
            customer_id: c.cid.to_string(),
            environment: c.env.to_string(),
            buddy_id: c.bid.to_string(),
            user_id: c.sub.to_string(),
            scopes: Some(c.scope.split(' ').map(str::to_owned).collect()),
            session_id: Some(c.sid.to_string()),
            exp: c.exp,
            iat: c.iat,
        },
    };
    Ok(Introspection::Active(Box::new(active)))
}
