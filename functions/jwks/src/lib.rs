//! GET /.well-known/jwks.json — every public key that may have signed a live token
//! (AWSCURRENT and AWSPREVIOUS), cacheable for five minutes.

use hatched::App;
use hatched::handler::anonymous;
use hatched::http::no_body;
use hatched::lambda_http::{Body, Request, Response};

pub async fn handle(app: &App, req: Request) -> Response<Body> {
    anonymous(app, req, "public, max-age=300", |req| async move {
        no_body(&req)?;
        Ok(app.signer.ring().await?.jwks())
    })
    .await
}
