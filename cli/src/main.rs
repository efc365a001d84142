use clap::Parser;
use hatchctl::{Cli, Command};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    hatched::telemetry::init();
    if let Command::DynamodbModel(args) = cli.command {
        // Needs no table, secret or AWS configuration: it only forwards.
        return match hatchctl::model::run(args).await {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("hatchctl: {e:#}");
                std::process::ExitCode::FAILURE
            }
        };
    }
    let settings = hatched::app::Settings {
        table: cli.table.clone(),
        signing_secret: Some(cli.signing_secret.clone()),
        data_key_secret: Some(cli.data_key_secret.clone()),
        issuer: std::env::var(hatched::app::ISSUER_ENV).unwrap_or_else(|_| hatched::app::DEFAULT_ISSUER.to_owned()),
        portal_base_url: std::env::var(hatched::app::PORTAL_BASE_URL_ENV).ok().filter(|s| !s.trim().is_empty()),
    };
    let config = match hatched::app::operator_aws_config().await {
        Ok(config) => match cli.sdk_timeout_secs {
            Some(secs) => config
                .into_builder()
                .timeout_config(hatched::app::patient_timeouts(std::time::Duration::from_secs(secs)))
                .build(),
            None => config,
        },
        Err(e) => {
            eprintln!("hatchctl: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let app = hatched::App::from_config(&config, settings);
    let result = match cli.command {
        Command::Serve(args) => {
            let streams = aws_sdk_dynamodbstreams::Config::from(&config);
            let sink = hatchctl::rollup::LocalSink::from_env(&aws_sdk_eventbridge::Config::from(&config));
            serve(app, args.port, streams, sink).await.map(|()| None)
        }
        command => hatchctl::execute(&app, command).await.map(Some),
    };
    match result {
        Ok(Some(out)) if cli.json => println!("{}", out.json),
        Ok(Some(out)) => println!("{}", out.text),
        Ok(None) => {}
        Err(e) => {
            if cli.json {
                eprintln!("{}", serde_json::json!({ "error": format!("{e:#}") }));
            } else {
                eprintln!("hatchctl: {e:#}");
            }
            return std::process::ExitCode::FAILURE;
        }
    }
    std::process::ExitCode::SUCCESS
}

async fn serve(
    app: hatched::App,
    port: u16,
    streams: aws_sdk_dynamodbstreams::Config,
    sink: hatchctl::rollup::LocalSink,
) -> anyhow::Result<()> {
    let listener = hatchctl::serve::bind(port).await?;
    eprintln!("local API on http://{}", listener.local_addr()?);
    // What Lambda does deployed: the table's stream feeds the usage roll-up.
    let rollup = hatchctl::rollup::run(app.clone(), streams, sink, std::time::Duration::from_secs(1));
    tokio::select! {
        r = hatchctl::serve::serve(app, listener) => r,
        () = rollup => Ok(()),
        _ = tokio::signal::ctrl_c() => Ok(()),
    }
}
