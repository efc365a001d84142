#[tokio::main]
async fn main() -> Result<(), hatched::lambda_http::lambda_runtime::Error> {
    hatched::telemetry::init();
    let app = hatched::App::from_env().await?;
    app.signer.preload().await;
    hatched::lambda::run(|req| create_embed_token::handle(&app, req)).await
}
