//! GET /.well-known/jwks.json — every public key that may have signed a live token
//! (AWSCURRENT and AWSPREVIOUS), cacheable for five minutes.

use hatched::App;
use hatched::auth::Access;
use hatched::endpoint::{Endpoint, aws, dynamodb, secrets};
use hatched::handler::anonymous;
use hatched::http::no_body;
use hatched::lambda_http::{Body, Request, Response};
use hatched::store::partition::RATE_WINDOW;

pub const ENDPOINT: Endpoint = Endpoint {
    function: "jwks",
    method: "GET",
    path: "/.well-known/jwks.json",
    access: Access::Anonymous,
    browser: false,
    status: 200,
    aws: &[dynamodb(aws::UPDATE_ITEM, &[RATE_WINDOW]), secrets(aws::GET_SECRET_VALUE)],
};

pub async fn handle(app: &App, req: Request) -> Response<Body> {
    anonymous(app, req, &ENDPOINT, "public, max-age=300", |req| async move {
        no_body(&req)?;
        Ok(app.signer.ring().await?.jwks())
    })
    .await
}
