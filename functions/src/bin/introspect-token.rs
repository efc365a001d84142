#[tokio::main]
async fn main() -> Result<(), hatched::lambda_http::lambda_runtime::Error> {
    hatched::telemetry::init();
    let app = hatched::App::from_env().await?;
    app.verifier.preload().await;
    hatched::lambda::run(|req| introspect_token::handle(&app, req)).await
}
