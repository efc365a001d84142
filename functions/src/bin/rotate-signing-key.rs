// The rotation steps nest several SDK futures in one async block.
#![recursion_limit = "256"]

use hatched::lambda_http::lambda_runtime::{self, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    hatched::telemetry::init();
    let app = hatched::App::from_env().await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<functions::rotate_signing_key::RotationEvent>| {
        let app = &app;
        async move { functions::rotate_signing_key::handle(app, event.payload).await.map_err(lambda_runtime::Error::from) }
    }))
    .await
}
