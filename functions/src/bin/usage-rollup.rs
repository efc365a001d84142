// The roll-up nests the SDK futures of a chain of writes in one async block.
#![recursion_limit = "256"]

use hatched::lambda_http::lambda_runtime::{self, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    hatched::telemetry::init();
    let app = hatched::App::from_env().await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<functions::usage_rollup::StreamEvent>| {
        let app = &app;
        async move { functions::usage_rollup::handle(app, event.payload).await.map_err(lambda_runtime::Error::from) }
    }))
    .await
}
