//! POST /api/v1/buddies/{buddy_id}/gates/{gate_key}/unlock — spend the gate's cost once.
//! Budget: the key read, one consistent batch read, one transaction (a repeat: two calls).
//! A publishable key that requires signed user ids spends only for a buddy its customer's
//! backend vouched for (`{"user_id","user_id_sig","user_id_ts"}` as the body).

use hatched::domain::gate::BuddyRef;
use hatched::domain::token::SignedUser;
use hatched::domain::{BuddyId, GateKey, Scope, TokenKey};
use hatched::endpoint::Endpoint;
use hatched::handler::keyed;
use hatched::http::{optional_untyped_json_body, path_param};
use hatched::lambda_http::{Body, Request, Response};
use hatched::views::{GateView, UnlockView};
use hatched::{Access, ApiError, App, Caller, RequestCtx};
use serde::Serialize;

#[derive(Serialize)]
struct Unlocked {
    already_unlocked: bool,
    unlock: UnlockView,
    gate: GateView,
    balance: Balance,
}

#[derive(Serialize)]
struct Balance {
    token_key: TokenKey,
    amount: i64,
}

pub const ENDPOINT: Endpoint = Endpoint {
    function: "unlock-gate",
    method: "POST",
    path: "/api/v1/buddies/{buddy_id}/gates/{gate_key}/unlock",
    access: Access::Scoped(Scope::WriteUnlocks),
    browser: true,
    status: 200,
};

pub async fn handle(app: &App, req: Request) -> Response<Body> {
    keyed(app, req, &ENDPOINT, |caller, req| unlock(app, caller, req)).await
}

async fn unlock(app: &App, caller: Caller, req: Request) -> Result<Unlocked, ApiError> {
    // Empty, or a signed user id vouching for this buddy (required for keys that ask for one).
    let proof: Option<SignedUser> = optional_untyped_json_body(&req)?;
    let buddy = path_param(&req, "buddy_id", BuddyId::parse)?;
    let gate_key = path_param(&req, "gate_key", GateKey::parse)?;
    let record = caller.record;
    app.auth.check_signed_user(&record, proof.as_ref(), &buddy).await?;
    let buddy = BuddyRef { customer: record.customer_id, env: record.environment, buddy };
    let request_id = RequestCtx::of(&req).request_id;
    let result = app.unlocks.unlock_gate(&buddy, &gate_key, &record.primary_token, &request_id).await?;
    Ok(Unlocked {
        already_unlocked: result.already_unlocked,
        balance: Balance { token_key: result.gate.token_key.clone(), amount: result.balance },
        unlock: result.unlock.into(),
        gate: result.gate.into(),
    })
}
