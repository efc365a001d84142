// The roll-up nests the SDK futures of a chain of writes in one async block.
#![recursion_limit = "256"]

use functions::usage_rollup::{EventBridgeSink, StreamEvent, handle};
use hatched::lambda_http::lambda_runtime::{self, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    hatched::telemetry::init();
    let config = hatched::app::aws_config().await?;
    let app = hatched::App::from_config(&config, hatched::app::Settings::from_env()?);
    let sink = EventBridgeSink::from_env(&aws_sdk_eventbridge::config::Config::from(&config))?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<StreamEvent>| {
        let (app, sink) = (&app, &sink);
        async move { handle(app, sink, event.payload).await.map_err(lambda_runtime::Error::from) }
    }))
    .await
}
