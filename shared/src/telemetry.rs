//! JSON logs, one object per line, levels from `RUST_LOG` (default `info`).

use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;

/// The production log format, writing to `writer` (tests capture it to check for leaks).
pub fn subscriber<W>(writer: W) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .json()
        .with_current_span(false)
        .with_span_list(false)
        .with_target(false)
        .without_time()
        .with_writer(writer)
        .finish()
        .with(filter(std::env::var("RUST_LOG").ok().as_deref()))
}

/// `RUST_LOG` as `level` or `target=level,…` (e.g. `info,aws_smithy_runtime=warn`); anything
/// else means `info`. `Targets` rather than `EnvFilter`: the same everyday syntax without
/// the regex engine in every function (sizes: BENCHMARKS.md).
fn filter(spec: Option<&str>) -> Targets {
    spec.and_then(|s| s.parse::<Targets>().ok()).unwrap_or_else(|| Targets::new().with_default(LevelFilter::INFO))
}

/// Installs JSON logging to stdout (Lambda ships stdout to CloudWatch).
pub fn init() {
    let _ = tracing::subscriber::set_global_default(subscriber(std::io::stdout));
}

#[cfg(test)]
mod tests {
    use tracing::Level;

    use super::filter;

    #[test]
    fn rust_log_levels_and_targets() {
        let default = filter(None);
        assert!(default.would_enable("hatched::auth", &Level::INFO));
        assert!(!default.would_enable("hatched::auth", &Level::DEBUG));

        let tuned = filter(Some("warn,hatched=debug"));
        assert!(tuned.would_enable("hatched::store", &Level::DEBUG));
        assert!(!tuned.would_enable("aws_smithy_runtime::client", &Level::INFO));
        assert!(tuned.would_enable("aws_smithy_runtime::client", &Level::WARN));

        let garbage = filter(Some("hatched=[{bogus}]"));
        assert!(garbage.would_enable("anything", &Level::INFO));
        assert!(!garbage.would_enable("anything", &Level::DEBUG));
    }
}
