//! Cold-start harness: a minimal Lambda Runtime API on 127.0.0.1 that execs each release
//! function binary and measures (a) init: exec → first `/runtime/invocation/next` (for the
//! four functions that sign or verify, this includes loading the signing keys: the key set from
//! Secrets Manager for the minting functions, the public keys from the table for jwks and
//! introspect-token), (b) the first invocation (DynamoDB calls against the emulator on fresh
//! connections), (c) warm invocations, (d) peak RSS — and the same for a bare lambda_http
//! hello binary, the floor each init is divided by.
//!
//! usage: coldstart <release-bin-dir>[,<another-bin-dir>…] [warm-invocations ≤ 59] [cold-starts]
//! (AWS_ENDPOINT_URL → the emulator; 59 keeps keyless endpoints under their per-IP limit)
//!
//! Several bin dirs (before,after) are measured interleaved, each cold start of one followed by
//! the same function's cold start of the next (their order turning every round), so the
//! emulator's growth, the machine's slow moments and the warmth of going second land on all
//! alike; a last table compares their init ÷ hello round by round.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::sync::{Notify, mpsc};

const FIXTURE_KEY: &str = "hatch_live_abcdefghijklmnopqrstuvwxyzABCDEF1mVgZW";

/// What the fake Runtime API saw.
#[derive(Default)]
struct Runtime {
    queue: Mutex<VecDeque<String>>,
    first_next: Mutex<Option<Instant>>,
    served_at: Mutex<Option<Instant>>,
}

#[tokio::main]
async fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let bin_dirs: Vec<String> = args
        .next()
        .context("usage: coldstart <release-bin-dir>[,<dir>…] [warm] [cold-starts]")?
        .split(',')
        .map(str::to_owned)
        .collect();
    let warm: usize = args.next().map(|w| w.parse()).transpose()?.unwrap_or(20);
    let runs: usize = args.next().map(|r| r.parse()).transpose()?.unwrap_or(5).max(1);
    let seeded = seed().await?;

    let mut cases: Vec<(&str, String)> = vec![("hello-floor", fixture("jwks/valid.json", &seeded))];
    for (function, event) in [
        ("validate-key", "validate-key/valid.json"),
        ("create-widget-session", "create-widget-session/valid.json"),
        ("revoke-widget-session", "revoke-widget-session/valid.json"),
        ("create-embed-token", "create-embed-token/valid.json"),
        ("introspect-token", "introspect-token/garbage.json"), // its body gets the live token,
        ("jwks", "jwks/valid.json"),
        ("unlock-gate", "unlock-gate/valid.json"),
        ("list-gates", "list-gates/valid.json"),
        ("list-unlocks", "list-unlocks/valid.json"),
        ("authorize", "authorize/allow.json"),
        ("whoami", "whoami/valid.json"),
        ("list-keys", "list-keys/valid.json"),
        ("list-audit-events", "list-audit-events/valid.json"),
    ] {
        cases.push((function, fixture(event, &seeded)));
    }

    // Rounds go through every function in turn, so a slow moment of the machine spreads
    // over all of them instead of landing on one; each figure is the median of the rounds.
    // results[dir][case][run]
    let mut results: Vec<Vec<Vec<Measured>>> =
        bin_dirs.iter().map(|_| cases.iter().map(|_| Vec::with_capacity(runs)).collect()).collect();
    for run in 0..runs {
        for (case, (function, event)) in cases.iter().enumerate() {
            // The order turns every round: a start right after another runs warmer (page cache,
            // CPU caches), about 10 % on the floor, so no tree may always go first.
            for turn in 0..bin_dirs.len() {
                let dir = (turn + run) % bin_dirs.len();
                let bin_dir = &bin_dirs[dir];
                let path = format!("{bin_dir}/{function}");
                std::fs::metadata(&path).with_context(|| format!("{path}: build with --release first"))?;
                // Keyless endpoints are limited per source IP: one address per cold start keeps
                // every invocation under the limit, so no 429 stands in for real work.
                let ip = format!("198.51.{}.{}", 100 + dir, run + 10);
                let event = event.replace("198.51.100.7", &ip);
                results[dir][case].push(measure(&path, function, &seeded, &event, warm).await?);
            }
        }
    }

    for (bin_dir, results) in bin_dirs.iter().zip(&results) {
        print_table(bin_dir, &cases, results, runs, warm)?;
    }
    if bin_dirs.len() > 1 {
        println!("\ninit ÷ hello, paired by round (each round's ratio over its own hello-floor start)");
        let header: Vec<String> = bin_dirs.iter().map(|d| format!("{d} ÷ hello")).collect();
        println!("| function | {} | change (median of rounds) |", header.join(" | "));
        println!("|---|{}---|", "---|".repeat(bin_dirs.len()));
        let ratio = |dir: usize, case: usize, run: usize| {
            results[dir][case][run].init.as_secs_f64() / results[dir][0][run].init.as_secs_f64()
        };
        for (case, (function, _)) in cases.iter().enumerate().skip(1) {
            let medians: Vec<String> = (0..bin_dirs.len())
                .map(|dir| format!("{:.2}", median_f64((0..runs).map(|run| ratio(dir, case, run)).collect())))
                .collect();
            let last = bin_dirs.len() - 1;
            let change = median_f64((0..runs).map(|run| ratio(last, case, run) / ratio(0, case, run) - 1.0).collect());
            println!("| {function} | {} | {:+.0} % |", medians.join(" | "), change * 100.0);
        }
    }
    Ok(())
}

fn print_table(
    bin_dir: &str,
    cases: &[(&str, String)],
    results: &[Vec<Measured>],
    runs: usize,
    warm: usize,
) -> Result<()> {
    println!(
        "\n{bin_dir}: {runs} cold starts per function (median; init range in brackets), {warm} warm invocations after each"
    );
    println!(
        "| function | binary (bytes) | init ms | first invoke ms | cold total ms | warm p50 ms | peak RSS MB | init ÷ hello | first ÷ warm | status |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let mut floor = None;
    for ((function, _), runs) in cases.iter().zip(results) {
        let size = std::fs::metadata(format!("{bin_dir}/{function}"))?.len();
        let init = median(runs.iter().map(|m| m.init));
        let (lo, hi) = (runs.iter().map(|m| m.init).min().unwrap(), runs.iter().map(|m| m.init).max().unwrap());
        let first = median(runs.iter().map(|m| m.first));
        let warm = median(runs.iter().map(|m| m.warm[m.warm.len() / 2]));
        let rss_kb = runs.iter().map(|m| m.rss_kb).max().unwrap_or(0);
        let floor_init = *floor.get_or_insert(init);
        let statuses: std::collections::BTreeSet<&str> = runs.iter().map(|m| m.status.as_str()).collect();
        println!(
            "| {function} | {size} | {:.2} [{:.2}–{:.2}] | {:.2} | {:.2} | {:.2} | {:.1} | {:.2} | {:.1} | {} |",
            ms(init),
            ms(lo),
            ms(hi),
            ms(first),
            ms(init + first),
            ms(warm),
            rss_kb as f64 / 1024.0,
            init.as_secs_f64() / floor_init.as_secs_f64(),
            first.as_secs_f64() / warm.as_secs_f64(),
            statuses.into_iter().collect::<Vec<_>>().join(",")
        );
    }
    Ok(())
}

fn median_f64(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn median(values: impl Iterator<Item = Duration>) -> Duration {
    let mut v: Vec<Duration> = values.collect();
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

struct Seeded {
    table: String,
    secret: String,
    data_key: String,
    key: String,
    session_id: String,
    /// A live session token: introspection verifies it and reads its session.
    token: String,
}

/// The demo world (`hatchctl::seed`) in a fresh table, and a session to invoke against.
async fn seed() -> Result<Seeded> {
    let suffix = hatched::domain::key::random_base62(8);
    let settings = hatched::app::Settings {
        table: format!("coldstart_{suffix}"),
        signing_secret: Some(format!("coldstart-{suffix}")),
        data_key_secret: Some(format!("coldstart-data-{suffix}")),
        issuer: hatched::app::DEFAULT_ISSUER.to_owned(),
        portal_base_url: None,
    };
    let app = hatched::App::from_config(&hatched::app::aws_config().await?, settings.clone());
    // The demo world scripts/dev serves: buddy_1, dark_mode, an enterprise live key.
    let demo = hatchctl::seed::seed_demo(&app, "acme").await?;
    let key = demo.json["live_secret_key"].as_str().context("key")?.to_owned();
    let mint = std::fs::read_to_string("events/create-widget-session/valid.json")?.replace(FIXTURE_KEY, &key);
    let resp = functions::create_widget_session::handle(&app, hatched::lambda_http::request::from_str(&mint)?).await;
    let body: serde_json::Value = serde_json::from_slice(resp.body().as_ref())?;
    let session_id = body["session_id"].as_str().context("session")?.to_owned();
    let token = body["token"].as_str().context("token")?.to_owned();
    Ok(Seeded {
        table: settings.table,
        secret: settings.signing_secret.unwrap_or_default(),
        data_key: settings.data_key_secret.unwrap_or_default(),
        key,
        session_id,
        token,
    })
}

fn fixture(name: &str, s: &Seeded) -> String {
    std::fs::read_to_string(format!("events/{name}"))
        .unwrap_or_else(|e| panic!("events/{name}: {e}"))
        .replace(FIXTURE_KEY, &s.key)
        .replace("ws_000000000000000000000000", &s.session_id)
        .replace("not.a.jwt", &s.token)
}

struct Measured {
    init: Duration,
    first: Duration,
    warm: Vec<Duration>,
    rss_kb: u64,
    status: String,
}

async fn measure(path: &str, function: &str, seeded: &Seeded, event: &str, warm: usize) -> Result<Measured> {
    let runtime = Arc::new(Runtime::default());
    let notify = Arc::new(Notify::new());
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<(Instant, String)>();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(serve(listener, runtime.clone(), notify.clone(), done_tx));

    runtime.queue.lock().unwrap().push_back(event.to_owned());
    let started = Instant::now();
    let mut child = std::process::Command::new(path)
        .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", function)
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "coldstart")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "coldstart")
        .env("HATCHED_TABLE", &seeded.table)
        .env("HATCHED_SIGNING_SECRET", &seeded.secret)
        .env("HATCHED_DATA_KEY_SECRET", &seeded.data_key)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .spawn()?;
    let pid = child.id();
    notify.notify_one();

    let (first_done, status) =
        tokio::time::timeout(Duration::from_secs(30), done_rx.recv()).await?.context("no response")?;
    let init = runtime.first_next.lock().unwrap().context("never asked for an event")? - started;
    let first = first_done - runtime.served_at.lock().unwrap().unwrap();
    let mut warms = Vec::with_capacity(warm);
    for _ in 0..warm {
        runtime.queue.lock().unwrap().push_back(event.to_owned());
        notify.notify_one();
        let (done, _) = tokio::time::timeout(Duration::from_secs(30), done_rx.recv()).await?.context("no response")?;
        warms.push(done - runtime.served_at.lock().unwrap().unwrap());
    }
    warms.sort();
    let rss_kb = std::fs::read_to_string(format!("/proc/{pid}/status"))?
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:").map(|v| v.trim().trim_end_matches(" kB").trim().parse().unwrap_or(0)))
        .unwrap_or(0);
    child.kill().ok();
    child.wait().ok();
    server.abort();
    Ok(Measured { init, first, warm: warms, rss_kb, status })
}

async fn serve(
    listener: tokio::net::TcpListener,
    rt: Arc<Runtime>,
    notify: Arc<Notify>,
    done: mpsc::UnboundedSender<(Instant, String)>,
) {
    while let Ok((stream, _)) = listener.accept().await {
        let (rt, notify, done) = (rt.clone(), notify.clone(), done.clone());
        tokio::spawn(async move {
            let svc = service_fn(move |req: hyper::Request<Incoming>| {
                let (rt, notify, done) = (rt.clone(), notify.clone(), done.clone());
                async move { Ok::<_, Infallible>(runtime_api(req, rt, notify, done).await) }
            });
            let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
        });
    }
}

async fn runtime_api(
    req: hyper::Request<Incoming>,
    rt: Arc<Runtime>,
    notify: Arc<Notify>,
    done: mpsc::UnboundedSender<(Instant, String)>,
) -> hyper::Response<Full<Bytes>> {
    let path = req.uri().path().to_owned();
    if path.ends_with("/invocation/next") {
        rt.first_next.lock().unwrap().get_or_insert_with(Instant::now);
        let event = loop {
            if let Some(e) = rt.queue.lock().unwrap().pop_front() {
                break e;
            }
            notify.notified().await;
        };
        *rt.served_at.lock().unwrap() = Some(Instant::now());
        let deadline = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() + 30_000;
        return hyper::Response::builder()
            .header("lambda-runtime-aws-request-id", format!("req-{}", hatched::domain::key::random_base62(8)))
            .header("lambda-runtime-deadline-ms", deadline.to_string())
            .header("lambda-runtime-invoked-function-arn", "arn:aws:lambda:us-east-1:123456789012:function:bench")
            .header("lambda-runtime-trace-id", "Root=1-00000000-000000000000000000000000")
            .body(Full::new(Bytes::from(event)))
            .unwrap();
    }
    let at = Instant::now();
    let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    if path.contains("/invocation/") {
        let status = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            // An HTTP answer's status; an authorizer's verdict.
            .and_then(|v| {
                v.get("statusCode").map(|s| s.to_string()).or_else(|| {
                    v.get("isAuthorized").map(|a| if a == true { "allow".to_owned() } else { "deny".to_owned() })
                })
            })
            .unwrap_or_else(|| if path.ends_with("/error") { "error".into() } else { "?".into() });
        let _ = done.send((at, status));
    }
    hyper::Response::builder().status(202).body(Full::new(Bytes::new())).unwrap()
}
