//! POST /api/v1/embed-tokens — mint a stateless read-only embed token.
//! Secret keys, or publishable keys with `embed_tokens:create` (and, where the key
//! requires it, an HMAC-signed user id). Budget: the key read and the buddy read.

use hatched::domain::time::rfc3339;
use hatched::domain::token::{EMBED_MODE, EMBED_TTL, SignedUser, Subject, TtlSeconds};
use hatched::domain::{BuddyId, Scope, UnixTime, UserId};
use hatched::endpoint::Endpoint;
use hatched::handler::keyed;
use hatched::http::json_body;
use hatched::lambda_http::{Body, Request, Response};
use hatched::tokens::Minted;
use hatched::{Access, ApiError, App, Caller};
use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer, Serialize};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MintRequest {
    buddy_id: BuddyId,
    user_id: UserId,
    #[serde(default)]
    ttl_seconds: Option<TtlSeconds>,
    #[serde(default)]
    user_id_sig: Option<String>,
    #[serde(default)]
    user_id_ts: Option<i64>,
    /// Embed tokens are read-only: a `scopes` field of any value (even null) is refused.
    #[serde(default, deserialize_with = "present")]
    scopes: bool,
}

fn present<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    IgnoredAny::deserialize(d).map(|_| true)
}

#[derive(Serialize)]
struct MintedEmbed {
    token: String,
    #[serde(with = "rfc3339")]
    expires_at: UnixTime,
    buddy_id: BuddyId,
    user_id: UserId,
    mode: &'static str,
}

pub const ENDPOINT: Endpoint = Endpoint {
    function: "create-embed-token",
    method: "POST",
    path: "/api/v1/embed-tokens",
    access: Access::Scoped(Scope::EmbedTokensCreate),
    browser: true,
    status: 201,
};

pub async fn handle(app: &App, req: Request) -> Response<Body> {
    keyed(app, req, &ENDPOINT, |caller, req| mint(app, caller, req)).await
}

async fn mint(app: &App, caller: Caller, req: Request) -> Result<MintedEmbed, ApiError> {
    let body: MintRequest = json_body(&req)?;
    if body.scopes {
        return Err(ApiError::ScopesNotAllowed);
    }
    let ttl = EMBED_TTL.pick(body.ttl_seconds)?;
    let proof = match (body.user_id_sig, body.user_id_ts) {
        (Some(user_id_sig), Some(user_id_ts)) => {
            Some(SignedUser { user_id: body.user_id.clone(), user_id_sig, user_id_ts })
        }
        _ => None,
    };
    app.auth.check_signed_user(&caller.record, proof.as_ref(), &body.buddy_id).await?;
    let who = Subject::of_key(&caller.record, body.buddy_id, body.user_id);
    let Minted { token, minted: claims } = app.tokens.mint_embed(who, ttl).await?;
    Ok(MintedEmbed {
        token,
        expires_at: UnixTime::from_secs(claims.exp),
        buddy_id: claims.bid,
        user_id: claims.sub,
        mode: EMBED_MODE,
    })
}
