#[tokio::main]
async fn main() -> Result<(), hatched::lambda_http::lambda_runtime::Error> {
    hatched::telemetry::init();
    let app = hatched::App::from_env().await?;
    hatched::lambda::run_authorizer(|req| functions::authorize::handle(&app, req)).await
}
