#[tokio::main]
async fn main() -> Result<(), hatched::lambda_http::lambda_runtime::Error> {
    hatched::telemetry::init();
    let app = hatched::App::from_env().await?;
    // Signed user ids are checked with the HMAC secret sealed under the data key.
    app.sealer.preload().await;
    app.signer.preload().await;
    hatched::lambda::run(|req| create_embed_token::handle(&app, req)).await
}
