#[tokio::main]
async fn main() -> Result<(), hatched::lambda_http::lambda_runtime::Error> {
    hatched::telemetry::init();
    hatched::lambda::run(fallback::handle).await
}
