//! JSON logs, one object per line, levels from `RUST_LOG` (default `info`); metrics ride in
//! the same lines as CloudWatch Embedded Metric Format (EMF), so they cost no AWS call.
//!
//! A line is `{"level","fields":{…}}`. An event with the target [`METRICS`] (the per-request
//! line, a rotation step) also carries, at the root where EMF looks for them, the `_aws`
//! directive and its members: dimensions `Function` and `Outcome` (an API.md error code or
//! `ok`; never a key or prefix: one series per function and outcome, not per key), metrics
//! `Requests` and `Latency`, or `RotationStep`.

use std::fmt::Debug;

use serde_json::{Map, Value, json};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;

/// The target of events whose line carries an EMF block.
pub const METRICS: &str = "hatched::metrics";
/// The CloudWatch namespace of every metric (API.md "Metrics and alarms").
pub const NAMESPACE: &str = "Hatched/AuthEdge";

/// The production log format, writing to `writer` (tests capture it to check for leaks).
pub fn subscriber<W>(writer: W) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .event_format(LogLine)
        .with_writer(writer)
        .finish()
        .with(filter(std::env::var("RUST_LOG").ok().as_deref()))
}

/// `RUST_LOG` as `level` or `target=level,…` (e.g. `info,aws_smithy_runtime=warn`); anything
/// else means `info`. `Targets` rather than `EnvFilter`: the same everyday syntax without
/// the regex engine in every function (sizes: BENCHMARKS.md).
/// The metric lines are kept whatever the level: a quieter log must not drop metrics.
fn filter(spec: Option<&str>) -> Targets {
    spec.and_then(|s| s.parse::<Targets>().ok())
        .unwrap_or_else(|| Targets::new().with_default(LevelFilter::INFO))
        .with_target(METRICS, LevelFilter::INFO)
}

/// Installs JSON logging to stdout (Lambda ships stdout to CloudWatch).
pub fn init() {
    let _ = tracing::subscriber::set_global_default(subscriber(std::io::stdout));
}

/// The line of one request as answered: `outcome` is the error code or `ok`.
pub fn request_metrics(function: &str, outcome: &str, latency_ms: f64) -> Map<String, Value> {
    emf(function, outcome, &[("Requests", "Count", json!(1)), ("Latency", "Milliseconds", json!(latency_ms))])
}

/// The line of one rotation step: `outcome` is `ok`, `refused`, `failed` or `stuck_pending`.
pub fn rotation_metrics(function: &str, outcome: &str) -> Map<String, Value> {
    emf(function, outcome, &[("RotationStep", "Count", json!(1))])
}

/// The EMF root members for one observation. Two dimension sets: by function and outcome, and
/// by outcome alone, so that one single-metric alarm covers every function (CloudWatch does
/// not add series up without metric math, which the template avoids).
fn emf(function: &str, outcome: &str, metrics: &[(&str, &str, Value)]) -> Map<String, Value> {
    let timestamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let directives: Vec<Value> = metrics.iter().map(|(name, unit, _)| json!({ "Name": name, "Unit": unit })).collect();
    let mut root = Map::new();
    root.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [["Function", "Outcome"], ["Outcome"]],
                "Metrics": directives,
            }],
        }),
    );
    root.insert("Function".into(), json!(function));
    root.insert("Outcome".into(), json!(outcome));
    for (name, _, value) in metrics {
        root.insert((*name).into(), value.clone());
    }
    root
}

/// One JSON object per event: `level`, `fields` (the event's fields, `message` included), and
/// for a [`METRICS`] event the EMF members its fields name (`function`, `outcome`, and
/// `latency_ms` for a request or `metric = "RotationStep"`).
struct LogLine;

impl<S, N> FormatEvent<S, N> for LogLine
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, _ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> std::fmt::Result {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let mut line = match event.metadata().target() {
            METRICS => metrics_of(&fields.0),
            _ => Map::new(),
        };
        line.insert("level".into(), json!(event.metadata().level().as_str()));
        line.insert("fields".into(), Value::Object(fields.0));
        writeln!(writer, "{}", Value::Object(line))
    }
}

fn metrics_of(fields: &Map<String, Value>) -> Map<String, Value> {
    let text = |name: &str| fields.get(name).and_then(Value::as_str);
    let (Some(function), Some(outcome)) = (text("function"), text("outcome")) else { return Map::new() };
    match (fields.get("latency_ms").and_then(Value::as_f64), text("metric")) {
        (Some(latency), _) => request_metrics(function, outcome, latency),
        (None, Some("RotationStep")) => rotation_metrics(function, outcome),
        _ => Map::new(),
    }
}

#[derive(Default)]
struct Fields(Map<String, Value>);

impl Visit for Fields {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), json!(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), json!(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), json!(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), json!(value));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), json!(value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0.insert(field.name().into(), json!(value.to_string()));
    }
    /// `%value` fields arrive here too, their `Debug` being their `Display`.
    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        self.0.insert(field.name().into(), json!(format!("{value:?}")));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing::Level;

    use super::*;

    #[test]
    fn rust_log_levels_and_targets() {
        let default = filter(None);
        assert!(default.would_enable("hatched::auth", &Level::INFO));
        assert!(!default.would_enable("hatched::auth", &Level::DEBUG));

        let tuned = filter(Some("warn,hatched=debug"));
        assert!(tuned.would_enable("hatched::store", &Level::DEBUG));
        assert!(!tuned.would_enable("aws_smithy_runtime::client", &Level::INFO));
        assert!(tuned.would_enable("aws_smithy_runtime::client", &Level::WARN));

        let quiet = filter(Some("error"));
        assert!(!quiet.would_enable("hatched::handler", &Level::INFO));
        assert!(quiet.would_enable(METRICS, &Level::INFO), "metrics survive a quiet log");

        let garbage = filter(Some("hatched=[{bogus}]"));
        assert!(garbage.would_enable("anything", &Level::INFO));
        assert!(!garbage.would_enable("anything", &Level::DEBUG));
    }

    fn lines_of(emit: impl FnOnce()) -> Vec<Value> {
        let captured = Arc::new(Mutex::new(Vec::<u8>::new()));
        let sink = captured.clone();
        let writer = move || Sink(sink.clone());
        tracing::subscriber::with_default(subscriber(writer), emit);
        let text = String::from_utf8(captured.lock().unwrap().clone()).unwrap();
        text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    }

    struct Sink(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_request_line_carries_its_emf_block_and_other_lines_none() {
        let lines = lines_of(|| {
            tracing::info!(target: METRICS, request_id = "r1", function = "validate-key", status = 429u16,
                outcome = "rate_limited", latency_ms = 3.5, "request");
            tracing::warn!(cause = %"boom", count = 2i64, ok = true, "something else");
        });
        let [request, other] = lines.as_slice() else { panic!("{lines:?}") };
        assert_eq!(request["fields"]["message"], "request");
        assert_eq!(request["fields"]["status"], 429);
        assert_eq!((&request["Function"], &request["Outcome"]), (&json!("validate-key"), &json!("rate_limited")));
        assert_eq!((&request["Requests"], &request["Latency"]), (&json!(1), &json!(3.5)));
        let directive = &request["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], NAMESPACE);
        assert_eq!(directive["Dimensions"], json!([["Function", "Outcome"], ["Outcome"]]));
        assert!(request["_aws"]["Timestamp"].as_u64().is_some_and(|t| t > 1_700_000_000_000));
        assert_eq!(other["level"], "WARN");
        assert_eq!(other["fields"], json!({ "message": "something else", "cause": "boom", "count": 2, "ok": true }));
        assert!(other.get("_aws").is_none());
    }

    #[test]
    fn a_rotation_step_line_counts_one_step() {
        let lines = lines_of(|| {
            tracing::info!(target: METRICS, function = "rotate-signing-key", metric = "RotationStep",
                outcome = "stuck_pending", step = "createSecret", "rotation step");
        });
        assert_eq!(lines[0]["RotationStep"], 1);
        assert_eq!(lines[0]["Outcome"], "stuck_pending");
        assert_eq!(
            lines[0]["_aws"]["CloudWatchMetrics"][0]["Metrics"],
            json!([{ "Name": "RotationStep", "Unit": "Count" }])
        );
        // A metrics event without its dimensions is an ordinary line, never a broken EMF one.
        let partial = lines_of(|| tracing::info!(target: METRICS, function = "x", "no outcome"));
        assert!(partial[0].get("_aws").is_none());
    }
}
