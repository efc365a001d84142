//! GET /.well-known/jwks.json — the published public keys (current, previous, and the
//! standby that signs next), cacheable for five minutes. Read from the table: this function
//! has no access to the signing secret.

use hatched::App;
use hatched::auth::Access;
use hatched::endpoint::Endpoint;
use hatched::handler::anonymous;
use hatched::http::no_body;
use hatched::lambda_http::{Body, Request, Response};

pub const ENDPOINT: Endpoint = Endpoint {
    function: "jwks",
    method: "GET",
    path: "/.well-known/jwks.json",
    access: Access::Anonymous,
    browser: false,
    status: 200,
};

pub async fn handle(app: &App, req: Request) -> Response<Body> {
    anonymous(app, req, &ENDPOINT, "public, max-age=300", |req| async move {
        no_body(&req)?;
        Ok(app.tokens.jwks().await?)
    })
    .await
}
