//! A DynamoDB behaviour model: an HTTP proxy speaking DynamoDB's JSON protocol between the
//! functions (`AWS_ENDPOINT_URL`) and a local emulator, adding what DynamoDB does and the
//! emulators do not. The emulators run transactions one at a time, never throttle, never cut a
//! page and never leave batch keys unprocessed; so the code paths that handle those were never
//! exercised. Each rule below is DynamoDB's documented behaviour, cited where it is applied,
//! and each is switched on by itself ([`Rules`]). Secrets Manager traffic (and every
//! DynamoDB operation no rule concerns) is forwarded untouched.
//!
//! Sources (Amazon DynamoDB API Reference and Developer Guide):
//! - "TransactWriteItems" (API reference): cancellation reasons, one per item in request order,
//!   `None` for items that did not cause the cancellation.
//! - "Transaction conflict handling in DynamoDB" (Developer Guide, "Managing complex workflows
//!   with DynamoDB transactions"): which requests conflict.
//! - "Error handling with DynamoDB" (Developer Guide): error bodies (`__type`, `message`),
//!   `ProvisionedThroughputExceededException`, `ThrottlingException`,
//!   `TransactionConflictException`, all HTTP 400.
//! - "Query" (API reference) and "Paginating table query results" (Developer Guide): a page
//!   stops at 1 MB read, `LastEvaluatedKey` then holds the last item's key.
//! - "BatchGetItem" (API reference): `UnprocessedKeys`, to be asked again with backoff.
//! - "Item sizes and formats" (Developer Guide): how an item's size is counted.
//! - "TransactWriteItems" (API reference), `ClientRequestToken`: identical calls with one token
//!   within ten minutes have the effect of one; other parameters with the same token are
//!   `IdempotentParameterMismatchException`. Not a rule but always on: the emulators ignore the
//!   token, so an SDK retry of a transaction whose first attempt timed out after committing
//!   was applied twice (CI: a role's holder count 62 for 60 keys, on moto through the model).

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Args;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Map, Value, json};
use tokio::net::{TcpListener, TcpStream};

/// `hatchctl dynamodb-model`: the model in front of `--upstream`.
#[derive(Args, Debug, Clone)]
pub struct ModelArgs {
    /// The emulator to forward to (`http://host:port` or `host:port`).
    #[arg(long)]
    pub upstream: String,
    /// Where to listen.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: String,
    /// Transaction conflicts: a transaction touching an item another one holds is cancelled
    /// (`TransactionConflict`), a single-item write to it refused (`TransactionConflictException`).
    #[arg(long)]
    pub conflicts: bool,
    /// How long each transaction holds its items, from its arrival (DynamoDB's transaction
    /// time, as modelled; forwarded at once, answered no sooner).
    #[arg(long, default_value_t = 0)]
    pub hold_ms: u64,
    /// Share of data-plane calls answered as throttled (0.0–1.0).
    #[arg(long, default_value_t = 0.0)]
    pub throttle_rate: f64,
    /// Cut Query pages after this many bytes of items (DynamoDB: 1 MB).
    #[arg(long)]
    pub page_bytes: Option<usize>,
    /// Answer half of every BatchGetItem (of two keys or more), the rest as `UnprocessedKeys`.
    #[arg(long)]
    pub partial_batches: bool,
}

impl ModelArgs {
    pub fn rules(&self) -> Rules {
        Rules {
            conflicts: self.conflicts,
            hold: Duration::from_millis(self.hold_ms),
            throttle_rate: self.throttle_rate.clamp(0.0, 1.0),
            page_bytes: self.page_bytes,
            batches: if self.partial_batches { Batches::Half } else { Batches::Whole },
        }
    }
}

/// Which of DynamoDB's behaviours the model adds.
#[derive(Debug, Clone, PartialEq)]
pub struct Rules {
    pub conflicts: bool,
    pub hold: Duration,
    pub throttle_rate: f64,
    pub page_bytes: Option<usize>,
    pub batches: Batches,
}

impl Default for Rules {
    fn default() -> Rules {
        Rules { conflicts: false, hold: Duration::ZERO, throttle_rate: 0.0, page_bytes: None, batches: Batches::Whole }
    }
}

/// How `BatchGetItem` is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Batches {
    /// Every key answered.
    Whole,
    /// The first half of each table's keys answered (a single key always is), the rest left
    /// in `UnprocessedKeys`: a batch of n keys takes about log2(n) + 1 calls.
    Half,
    /// The first `n` calls answer nothing and leave every key unprocessed (what a throttled
    /// table does); `u32::MAX` for never.
    NoneFor(u32),
}

impl Rules {
    /// One line per rule in force, for people running their own client against it.
    pub fn describe(&self) -> Vec<String> {
        let mut lines = Vec::new();
        if self.conflicts {
            lines.push(format!(
                "transaction conflicts: items held {} ms per transaction; a second transaction on a held item is cancelled (TransactionConflict), a single-item write to one is refused (TransactionConflictException)",
                self.hold.as_millis()
            ));
        }
        if self.throttle_rate > 0.0 {
            lines.push(format!(
                "throttling: {:.0}% of data calls (ProvisionedThroughputExceededException / ThrottlingException; ThrottlingError reasons in transactions)",
                self.throttle_rate * 100.0
            ));
        }
        if let Some(bytes) = self.page_bytes {
            lines.push(format!("query pages cut at {bytes} bytes of items, with LastEvaluatedKey"));
        }
        match self.batches {
            Batches::Whole => {}
            Batches::Half => lines.push("BatchGetItem: half of each batch answered, the rest UnprocessedKeys".into()),
            Batches::NoneFor(n) => lines.push(format!("BatchGetItem: the first {n} calls leave every key unprocessed")),
        }
        if lines.is_empty() {
            lines.push("no rule on: everything passes through".into());
        }
        lines.push(
            "always: a TransactWriteItems repeated with its ClientRequestToken within 10 minutes writes once".into(),
        );
        lines
    }
}

/// What the model did, counted.
#[derive(Debug, Default)]
pub struct Stats {
    pub forwarded: AtomicU64,
    pub transactions: AtomicU64,
    pub transaction_conflicts: AtomicU64,
    pub write_conflicts: AtomicU64,
    pub throttled: AtomicU64,
    pub pages_cut: AtomicU64,
    pub batches_cut: AtomicU64,
    /// TransactWriteItems answered from their `ClientRequestToken`, not applied again.
    pub tokens_replayed: AtomicU64,
}

impl Stats {
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// A table's key attributes and its indexes' (for `LastEvaluatedKey` and item keys).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Schema {
    pub keys: Vec<String>,
    pub indexes: HashMap<String, Vec<String>>,
}

impl Schema {
    /// From a `DescribeTable` answer.
    pub fn from_description(desc: &Value) -> Schema {
        let names = |schema: &Value| -> Vec<String> {
            schema
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|k| k["AttributeName"].as_str().map(str::to_owned))
                .collect()
        };
        let table = &desc["Table"];
        let mut indexes = HashMap::new();
        for kind in ["GlobalSecondaryIndexes", "LocalSecondaryIndexes"] {
            for index in table[kind].as_array().into_iter().flatten() {
                if let Some(name) = index["IndexName"].as_str() {
                    indexes.insert(name.to_owned(), names(&index["KeySchema"]));
                }
            }
        }
        Schema { keys: names(&table["KeySchema"]), indexes }
    }

    /// The item's primary key, as a canonical string (attribute order does not matter).
    fn item_key(&self, table: &str, item: &Value) -> String {
        let key: BTreeMap<&str, &Value> = self.keys.iter().map(|k| (k.as_str(), &item[k.as_str()])).collect();
        format!("{table}\u{0}{}", serde_json::to_string(&key).unwrap_or_default())
    }
}

/// The model's state: items held by in-flight transactions, table schemas, counters.
pub struct Model {
    upstream: String,
    rules: Rules,
    held: Mutex<HashSet<String>>,
    schemas: Mutex<HashMap<String, Schema>>,
    rng: AtomicU64,
    batch_calls: AtomicU64,
    /// Upstream connections open at once: an emulator serving one request at a time (moto)
    /// has a 128-connection accept queue, and a burst past it is refused or stalls in SYN
    /// retries (the model then answers 502). Past this many, requests wait here instead, as
    /// behind a load balancer's connection pool.
    upstream_slots: tokio::sync::Semaphore,
    tokens: Mutex<Tokens>,
    pub stats: Stats,
}

/// DynamoDB's idempotency window for `ClientRequestToken` ("TransactWriteItems").
const TOKEN_WINDOW: Duration = Duration::from_secs(600);

/// The `ClientRequestToken`s of the last ten minutes' transactions.
#[derive(Default)]
struct Tokens {
    seen: HashMap<String, Token>,
    /// Committed tokens by commit time, to forget them after [`TOKEN_WINDOW`].
    committed: VecDeque<(Instant, String)>,
}

enum Token {
    /// The first call is still being answered (by the emulator: DynamoDB would long have
    /// finished). A repeat waits for its outcome rather than answering
    /// `TransactionInProgressException`, which would model a DynamoDB as slow as the emulator.
    Running { params: u64, outcome: tokio::sync::watch::Receiver<Option<bool>> },
    /// It committed: the same call again answers success and writes nothing.
    Committed { params: u64 },
}

impl Token {
    fn params(&self) -> u64 {
        match self {
            Token::Running { params, .. } | Token::Committed { params } => *params,
        }
    }
}

impl Tokens {
    fn forget_expired(&mut self, now: Instant) {
        while let Some((at, _)) = self.committed.front() {
            if now.duration_since(*at) < TOKEN_WINDOW {
                break;
            }
            if let Some((_, token)) = self.committed.pop_front() {
                self.seen.remove(&token);
            }
        }
    }
}

/// What a repeated token comes to.
enum Repeat {
    Answer(Answer),
    Wait(tokio::sync::watch::Receiver<Option<bool>>),
    First(tokio::sync::watch::Sender<Option<bool>>),
}

/// See [`Model::upstream_slots`].
const UPSTREAM_CONNECTIONS: usize = 64;

/// A running model; stops when dropped.
pub struct Running {
    pub addr: SocketAddr,
    pub model: Arc<Model>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts the model on `listen`, forwarding to `upstream`.
pub async fn start(upstream: &str, listen: &str, rules: Rules) -> Result<Running> {
    let listener = TcpListener::bind(listen).await.with_context(|| format!("binding {listen}"))?;
    let addr = listener.local_addr()?;
    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64);
    let model = Arc::new(Model {
        upstream: upstream.trim_start_matches("http://").trim_end_matches('/').to_owned(),
        rules,
        held: Mutex::new(HashSet::new()),
        schemas: Mutex::new(HashMap::new()),
        rng: AtomicU64::new(seed | 1),
        batch_calls: AtomicU64::new(0),
        upstream_slots: tokio::sync::Semaphore::new(UPSTREAM_CONNECTIONS),
        tokens: Mutex::new(Tokens::default()),
        stats: Stats::default(),
    });
    let serving = model.clone();
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let model = serving.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let model = model.clone();
                    async move { Ok::<_, Infallible>(model.handle(req).await) }
                });
                let _ =
                    hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
            });
        }
    });
    Ok(Running { addr, model, task })
}

/// `hatchctl dynamodb-model`: runs until Ctrl-C.
pub async fn run(args: ModelArgs) -> Result<()> {
    let running = start(&args.upstream, &args.listen, args.rules()).await?;
    println!("dynamodb model on {} -> {}", running.endpoint(), args.upstream);
    for line in args.rules().describe() {
        println!("  {line}");
    }
    use std::io::Write;
    std::io::stdout().flush()?;
    tokio::signal::ctrl_c().await?;
    let s = &running.model.stats;
    eprintln!(
        "dynamodb model: {} forwarded, {} transactions, {} cancelled by conflict, {} single writes refused, {} throttled, {} pages cut, {} batches cut, {} repeated tokens answered without writing",
        Stats::get(&s.forwarded),
        Stats::get(&s.transactions),
        Stats::get(&s.transaction_conflicts),
        Stats::get(&s.write_conflicts),
        Stats::get(&s.throttled),
        Stats::get(&s.pages_cut),
        Stats::get(&s.batches_cut),
        Stats::get(&s.tokens_replayed),
    );
    Ok(())
}

const TARGET_PREFIX: &str = "DynamoDB_20120810.";

/// Items reserved by one in-flight transaction; released when dropped (answered or not).
struct Hold<'a> {
    model: &'a Model,
    keys: Vec<String>,
}

impl Drop for Hold<'_> {
    fn drop(&mut self) {
        let mut held = self.model.held.lock().unwrap_or_else(|p| p.into_inner());
        for key in &self.keys {
            held.remove(key);
        }
    }
}

type Answer = Response<Full<Bytes>>;

impl Model {
    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    async fn handle(self: Arc<Self>, req: Request<Incoming>) -> Answer {
        let (parts, body) = req.into_parts();
        let body = match body.collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) => return plain(StatusCode::BAD_REQUEST, &format!("body: {e}")),
        };
        let target = parts.headers.get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        let Some(op) = target.strip_prefix(TARGET_PREFIX) else {
            // Secrets Manager (and anything else): untouched.
            return self.pass(&parts, body).await;
        };
        let Ok(json) = serde_json::from_slice::<Value>(&body) else {
            return self.pass(&parts, body).await;
        };
        if DATA_PLANE.contains(&op) && self.throttled() {
            return throttle_answer(op, &json, self.draw().is_multiple_of(2));
        }
        match op {
            "TransactWriteItems" => self.transact_write_once(parts, body, json).await,
            "TransactGetItems" if self.rules.conflicts => {
                let keys = match self.transaction_keys(&parts, &json).await {
                    Ok(keys) => keys,
                    Err(answer) => return answer,
                };
                // "Transaction conflict handling": a TransactGetItems is cancelled when one of its
                // items is part of an ongoing TransactWriteItems.
                let conflicts = self.conflicting(&keys);
                if conflicts.iter().any(|c| *c) {
                    self.stats.transaction_conflicts.fetch_add(1, Ordering::Relaxed);
                    return conflict_cancellation(&conflicts);
                }
                self.pass(&parts, body).await
            }
            "PutItem" | "UpdateItem" | "DeleteItem" if self.rules.conflicts => {
                let table = json["TableName"].as_str().unwrap_or_default().to_owned();
                let key = if op == "PutItem" {
                    match self.schema(&parts, &table).await {
                        Ok(schema) => schema.item_key(&table, &json["Item"]),
                        Err(answer) => return answer,
                    }
                } else {
                    canonical_key(&table, &json["Key"])
                };
                // "Transaction conflict handling": a PutItem, UpdateItem or DeleteItem for an item
                // that is part of an ongoing TransactWriteItems is refused with
                // TransactionConflictException (the write does not happen).
                if self.held.lock().unwrap_or_else(|p| p.into_inner()).contains(&key) {
                    self.stats.write_conflicts.fetch_add(1, Ordering::Relaxed);
                    return error_answer(
                        "TransactionConflictException",
                        "Transaction is ongoing for the item",
                        Map::new(),
                    );
                }
                self.pass(&parts, body).await
            }
            "Query" if self.rules.page_bytes.is_some() => self.query(&parts, body, &json).await,
            "BatchGetItem" if self.rules.batches != Batches::Whole => self.batch_get(&parts, &json).await,
            _ => self.pass(&parts, body).await,
        }
    }

    /// A TransactWriteItems under its `ClientRequestToken`: the first call with a token runs
    /// (in its own task, so its outcome is known even if the caller stops waiting, as the SDK
    /// does when an attempt times out), a repeat with the same parameters gets success without
    /// writing if it committed, and runs anew if it did not (it wrote nothing).
    async fn transact_write_once(
        self: Arc<Self>,
        parts: hyper::http::request::Parts,
        body: Bytes,
        json: Value,
    ) -> Answer {
        let Some(token) = json["ClientRequestToken"].as_str().map(str::to_owned) else {
            return self.transact_write(&parts, body, &json).await;
        };
        let params = {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            // Objects are sorted maps: the same parameters hash the same in any order.
            json.to_string().hash(&mut h);
            h.finish()
        };
        loop {
            let repeat = {
                let mut tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
                tokens.forget_expired(Instant::now());
                match tokens.seen.get(&token) {
                    Some(seen) if seen.params() != params => Repeat::Answer(error_answer(
                        "IdempotentParameterMismatchException",
                        "The request uses the same client token as a previous, but non-identical request.",
                        Map::new(),
                    )),
                    Some(Token::Committed { .. }) => {
                        self.stats.tokens_replayed.fetch_add(1, Ordering::Relaxed);
                        Repeat::Answer(json_answer(StatusCode::OK, &json!({})))
                    }
                    Some(Token::Running { outcome, .. }) => Repeat::Wait(outcome.clone()),
                    None => {
                        let (sender, outcome) = tokio::sync::watch::channel(None);
                        tokens.seen.insert(token.clone(), Token::Running { params, outcome });
                        Repeat::First(sender)
                    }
                }
            };
            match repeat {
                Repeat::Answer(answer) => return answer,
                // Committed (answered on the next turn) or not (runs anew); a first call whose
                // task died left no outcome and is forgotten.
                Repeat::Wait(mut outcome) => {
                    if outcome.wait_for(Option::is_some).await.is_err() {
                        let mut tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
                        if matches!(tokens.seen.get(&token), Some(Token::Running { .. })) {
                            tokens.seen.remove(&token);
                        }
                    }
                }
                Repeat::First(sender) => {
                    let model = self.clone();
                    let (parts, body, json, token) = (parts.clone(), body.clone(), json.clone(), token.clone());
                    let first = tokio::spawn(async move {
                        let answer = model.transact_write(&parts, body, &json).await;
                        let committed = answer.status() == StatusCode::OK;
                        let mut tokens = model.tokens.lock().unwrap_or_else(|p| p.into_inner());
                        if committed {
                            tokens.seen.insert(token.clone(), Token::Committed { params });
                            tokens.committed.push_back((Instant::now(), token));
                        } else {
                            tokens.seen.remove(&token);
                        }
                        drop(tokens);
                        let _ = sender.send(Some(committed));
                        answer
                    });
                    return match first.await {
                        Ok(answer) => answer,
                        Err(e) => plain(StatusCode::INTERNAL_SERVER_ERROR, &format!("transaction task: {e}")),
                    };
                }
            }
        }
    }

    async fn transact_write(&self, parts: &hyper::http::request::Parts, body: Bytes, json: &Value) -> Answer {
        self.stats.transactions.fetch_add(1, Ordering::Relaxed);
        if !self.rules.conflicts {
            return self.pass(parts, body).await;
        }
        let keys = match self.transaction_keys(parts, json).await {
            Ok(keys) => keys,
            Err(answer) => return answer,
        };
        let hold = {
            let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
            let conflicts: Vec<bool> = keys.iter().map(|k| held.contains(k)).collect();
            if conflicts.iter().any(|c| *c) {
                drop(held);
                self.stats.transaction_conflicts.fetch_add(1, Ordering::Relaxed);
                // "TransactWriteItems" / "Transaction conflict handling": the transaction is
                // cancelled before anything is written, reason TransactionConflict at each item
                // another transaction holds, None at the others.
                return conflict_cancellation(&conflicts);
            }
            held.extend(keys.iter().cloned());
            Hold { model: self, keys }
        };
        // A real transaction holds its items through its two phases, about as long as it takes
        // to answer. The model holds them for the configured time from arrival, forwarding at
        // once, and answers no sooner: the window is DynamoDB's (as configured), not the
        // emulator's, which under a burst can take a hundred times longer than DynamoDB and
        // would model a DynamoDB that slow. The emulator still applies transactions one at a
        // time, so a transaction let through after the window meets the committed state.
        let release = async move {
            tokio::time::sleep(self.rules.hold).await;
            drop(hold);
        };
        let (answer, ()) = tokio::join!(self.pass(parts, body), release);
        answer
    }

    /// The item key of every item of a TransactWriteItems / TransactGetItems, in order.
    async fn transaction_keys(&self, parts: &hyper::http::request::Parts, json: &Value) -> Result<Vec<String>, Answer> {
        let mut keys = Vec::new();
        for entry in json["TransactItems"].as_array().into_iter().flatten() {
            let Some((kind, item)) = entry.as_object().and_then(|o| o.iter().next()) else { continue };
            let table = item["TableName"].as_str().unwrap_or_default();
            if kind == "Put" {
                let schema = self.schema(parts, table).await?;
                keys.push(schema.item_key(table, &item["Item"]));
            } else {
                keys.push(canonical_key(table, &item["Key"]));
            }
        }
        Ok(keys)
    }

    fn conflicting(&self, keys: &[String]) -> Vec<bool> {
        let held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        keys.iter().map(|k| held.contains(k)).collect()
    }

    async fn query(&self, parts: &hyper::http::request::Parts, body: Bytes, json: &Value) -> Answer {
        let table = json["TableName"].as_str().unwrap_or_default().to_owned();
        let schema = match self.schema(parts, &table).await {
            Ok(schema) => schema,
            Err(answer) => return answer,
        };
        let answer = self.pass(parts, body).await;
        if answer.status() != StatusCode::OK {
            return answer;
        }
        let (head, bytes) = into_bytes(answer).await;
        let Ok(mut out) = serde_json::from_slice::<Value>(&bytes) else { return rebuild(head, bytes) };
        let limit = self.rules.page_bytes.unwrap_or(usize::MAX);
        if cut_page(&mut out, &schema, json["IndexName"].as_str(), limit) {
            self.stats.pages_cut.fetch_add(1, Ordering::Relaxed);
            return rebuild(head, Bytes::from(out.to_string()));
        }
        rebuild(head, bytes)
    }

    async fn batch_get(&self, parts: &hyper::http::request::Parts, json: &Value) -> Answer {
        let call = self.batch_calls.fetch_add(1, Ordering::Relaxed);
        let (send, unprocessed) = split_batch(json, self.rules.batches, call);
        if !unprocessed.is_empty() {
            self.stats.batches_cut.fetch_add(1, Ordering::Relaxed);
        }
        let mut out = if send.is_empty() {
            json!({ "Responses": {} })
        } else {
            // The request as sent, asking only for the keys answered now.
            let mut request = json.clone();
            request["RequestItems"] = Value::Object(send);
            let answer = self.pass(parts, Bytes::from(request.to_string())).await;
            if answer.status() != StatusCode::OK {
                return answer;
            }
            let (_, bytes) = into_bytes(answer).await;
            match serde_json::from_slice::<Value>(&bytes) {
                Ok(v) => v,
                Err(e) => return plain(StatusCode::BAD_GATEWAY, &format!("upstream answer: {e}")),
            }
        };
        let rest = out["UnprocessedKeys"].as_object().cloned().unwrap_or_default();
        let mut merged = unprocessed;
        for (table, keys) in rest {
            merged.entry(table).or_insert(keys);
        }
        out["UnprocessedKeys"] = Value::Object(merged);
        json_answer(StatusCode::OK, &out)
    }

    /// A table's key schema, asked of the upstream once (`DescribeTable`, with the caller's
    /// own credentials headers so an emulator files it under the same account).
    async fn schema(&self, parts: &hyper::http::request::Parts, table: &str) -> Result<Schema, Answer> {
        if let Some(schema) = self.schemas.lock().unwrap_or_else(|p| p.into_inner()).get(table) {
            return Ok(schema.clone());
        }
        let mut describe = parts.clone();
        describe.headers.insert("x-amz-target", HeaderValue::from_static("DynamoDB_20120810.DescribeTable"));
        let answer = self.forward(&describe, Bytes::from(json!({ "TableName": table }).to_string())).await;
        let answer = match answer {
            Ok(a) if a.status() == StatusCode::OK => a,
            // No such table (or a failure): the caller's own request will say so.
            Ok(_) | Err(_) => return Ok(Schema { keys: vec!["pk".into(), "sk".into()], indexes: HashMap::new() }),
        };
        let (_, bytes) = into_bytes(answer).await;
        let schema = Schema::from_description(&serde_json::from_slice(&bytes).unwrap_or_default());
        self.schemas.lock().unwrap_or_else(|p| p.into_inner()).insert(table.to_owned(), schema.clone());
        Ok(schema)
    }

    fn draw(&self) -> u64 {
        // splitmix64 over a counter: cheap, uniform enough for a rate, no dependency.
        let mut z = self.rng.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed).wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn throttled(&self) -> bool {
        let rate = self.rules.throttle_rate;
        let hit = rate > 0.0 && (self.draw() as f64 / u64::MAX as f64) < rate;
        if hit {
            self.stats.throttled.fetch_add(1, Ordering::Relaxed);
        }
        hit
    }

    async fn pass(&self, parts: &hyper::http::request::Parts, body: Bytes) -> Answer {
        self.stats.forwarded.fetch_add(1, Ordering::Relaxed);
        match self.forward(parts, body).await {
            Ok(answer) => answer,
            // As a load balancer would: the SDK treats it as a transient failure.
            Err(e) => plain(StatusCode::BAD_GATEWAY, &format!("upstream: {e:#}")),
        }
    }

    async fn forward(&self, parts: &hyper::http::request::Parts, body: Bytes) -> Result<Answer> {
        let _slot = self.upstream_slots.acquire().await?;
        let stream = TcpStream::connect(&self.upstream).await?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        let mut request = Request::builder().method(parts.method.clone()).uri(parts.uri.clone());
        for (name, value) in &parts.headers {
            if name != hyper::header::CONTENT_LENGTH && name != hyper::header::TRANSFER_ENCODING {
                request = request.header(name, value);
            }
        }
        let request = request.header(hyper::header::CONTENT_LENGTH, body.len()).body(Full::new(body))?;
        let answer = sender.send_request(request).await?;
        let (head, body) = answer.into_parts();
        let bytes = body.collect().await?.to_bytes();
        Ok(rebuild(head, bytes))
    }
}

/// Operations DynamoDB throttles per table ("Error handling": throughput exceptions).
const DATA_PLANE: &[&str] = &[
    "GetItem",
    "PutItem",
    "UpdateItem",
    "DeleteItem",
    "Query",
    "Scan",
    "BatchGetItem",
    "BatchWriteItem",
    "TransactWriteItems",
    "TransactGetItems",
];

fn canonical_key(table: &str, key: &Value) -> String {
    let key: BTreeMap<&str, &Value> = key.as_object().into_iter().flatten().map(|(k, v)| (k.as_str(), v)).collect();
    format!("{table}\u{0}{}", serde_json::to_string(&key).unwrap_or_default())
}

/// "TransactWriteItems", Errors: `TransactionCanceledException`, one reason per item in
/// request order; `TransactionConflict` where another transaction holds the item, `None` where
/// the item did not cause the cancellation.
pub fn conflict_cancellation(conflicts: &[bool]) -> Answer {
    let reasons: Vec<Value> = conflicts
        .iter()
        .map(|c| match c {
            true => json!({ "Code": "TransactionConflict", "Message": "Transaction is ongoing for the item" }),
            false => json!({ "Code": "None" }),
        })
        .collect();
    cancellation(reasons)
}

fn cancellation(reasons: Vec<Value>) -> Answer {
    let codes: Vec<&str> = reasons.iter().map(|r| r["Code"].as_str().unwrap_or("None")).collect();
    let message =
        format!("Transaction cancelled, please refer cancellation reasons for specific reasons [{}]", codes.join(", "));
    let mut extra = Map::new();
    extra.insert("CancellationReasons".into(), Value::Array(reasons.clone()));
    error_answer("TransactionCanceledException", &message, extra)
}

/// "Error handling with DynamoDB": a throttled call is a 400 with
/// `ProvisionedThroughputExceededException` (a provisioned table) or `ThrottlingException`
/// (on-demand limits); a transaction is cancelled with a `ThrottlingError` or
/// `ProvisionedThroughputExceeded` reason instead ("TransactWriteItems", Errors).
fn throttle_answer(op: &str, request: &Value, provisioned: bool) -> Answer {
    if op == "TransactWriteItems" || op == "TransactGetItems" {
        let count = request["TransactItems"].as_array().map_or(1, Vec::len).max(1);
        let code = if provisioned { "ProvisionedThroughputExceeded" } else { "ThrottlingError" };
        let mut reasons = vec![json!({ "Code": "None" }); count];
        reasons[0] =
            json!({ "Code": code, "Message": "Throughput exceeds the current capacity of your table or index." });
        return cancellation(reasons);
    }
    if provisioned {
        error_answer(
            "ProvisionedThroughputExceededException",
            "The level of configured provisioned throughput for the table was exceeded. Consider increasing your provisioning level with the UpdateTable API.",
            Map::new(),
        )
    } else {
        error_answer(
            "ThrottlingException",
            "Throughput exceeds the current capacity of your table or index. DynamoDB is automatically scaling your table or index so please try again shortly.",
            Map::new(),
        )
    }
}

/// "Error handling with DynamoDB": HTTP 400 and a JSON body naming the exception in `__type`.
fn error_answer(kind: &str, message: &str, mut extra: Map<String, Value>) -> Answer {
    extra.insert("__type".into(), Value::String(format!("com.amazonaws.dynamodb.v20120810#{kind}")));
    extra.insert("message".into(), Value::String(message.to_owned()));
    json_answer(StatusCode::BAD_REQUEST, &Value::Object(extra))
}

fn json_answer(status: StatusCode, body: &Value) -> Answer {
    let mut answer = Response::new(Full::new(Bytes::from(body.to_string())));
    *answer.status_mut() = status;
    answer.headers_mut().insert("content-type", HeaderValue::from_static("application/x-amz-json-1.0"));
    answer
}

fn plain(status: StatusCode, text: &str) -> Answer {
    let mut answer = Response::new(Full::new(Bytes::from(text.to_owned())));
    *answer.status_mut() = status;
    answer
}

async fn into_bytes(answer: Answer) -> (hyper::http::response::Parts, Bytes) {
    let (head, body) = answer.into_parts();
    let bytes = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    (head, bytes)
}

/// An answer with a (possibly rewritten) body: the length and the CRC32 of the body the
/// upstream sent no longer apply.
fn rebuild(mut head: hyper::http::response::Parts, body: Bytes) -> Answer {
    for name in
        [hyper::header::CONTENT_LENGTH, hyper::header::TRANSFER_ENCODING, HeaderName::from_static("x-amz-crc32")]
    {
        head.headers.remove(&name);
    }
    Response::from_parts(head, Full::new(body))
}

/// "Query" (API reference): a query reads at most 1 MB, then stops with `LastEvaluatedKey`,
/// the key of the last item returned — the table's key attributes, plus the index's for a
/// query of an index ("Paginating table query results"). Cuts the answer's `Items` after
/// `limit` bytes (always keeping one item: a page makes progress) and returns whether it cut.
/// (DynamoDB counts the bytes read before a filter; our queries have none.)
pub fn cut_page(out: &mut Value, schema: &Schema, index: Option<&str>, limit: usize) -> bool {
    let Some(items) = out["Items"].as_array() else { return false };
    let mut used = 0;
    let mut keep = 0;
    for item in items {
        used += item_size(item);
        if keep > 0 && used > limit {
            break;
        }
        keep += 1;
    }
    if keep >= items.len() {
        return false;
    }
    let last = &items[keep - 1];
    let mut key = Map::new();
    let index_keys = index.and_then(|i| schema.indexes.get(i)).cloned().unwrap_or_default();
    for name in schema.keys.iter().chain(index_keys.iter()) {
        if let Some(value) = last.get(name) {
            key.insert(name.clone(), value.clone());
        }
    }
    let kept: Vec<Value> = items[..keep].to_vec();
    out["Items"] = Value::Array(kept);
    out["Count"] = json!(keep);
    out["ScannedCount"] = json!(keep);
    out["LastEvaluatedKey"] = Value::Object(key);
    true
}

/// An item's size by "Item sizes and formats" (Developer Guide): each attribute's name bytes
/// plus its value's (strings UTF-8 bytes, numbers about one byte per two digits plus one,
/// binary its bytes, null and booleans one byte, lists and maps three bytes plus one per
/// element plus their elements).
pub fn item_size(item: &Value) -> usize {
    item.as_object().into_iter().flatten().map(|(name, value)| name.len() + value_size(value)).sum()
}

fn value_size(value: &Value) -> usize {
    let Some((kind, inner)) = value.as_object().and_then(|o| o.iter().next()) else { return 0 };
    match kind.as_str() {
        "S" => inner.as_str().map_or(0, str::len),
        "N" => inner.as_str().map_or(1, |n| n.trim_start_matches('-').len().div_ceil(2) + 1),
        "B" => inner.as_str().map_or(0, |b| b.len() * 3 / 4),
        "BOOL" | "NULL" => 1,
        "SS" | "NS" | "BS" => inner
            .as_array()
            .into_iter()
            .flatten()
            .map(|v| value_size(&json!({ kind.trim_end_matches('S').to_owned(): v })))
            .sum(),
        "L" => 3 + inner.as_array().into_iter().flatten().map(|v| 1 + value_size(v)).sum::<usize>(),
        "M" => 3 + inner.as_object().into_iter().flatten().map(|(k, v)| 1 + k.len() + value_size(v)).sum::<usize>(),
        _ => 0,
    }
}

/// "BatchGetItem" (API reference): a batch may be answered in part, the rest returned in
/// `UnprocessedKeys` with the same shape as `RequestItems` (for the caller to ask again, with
/// exponential backoff). Returns (what to send, what to leave unprocessed), per table.
pub fn split_batch(request: &Value, batches: Batches, call: u64) -> (Map<String, Value>, Map<String, Value>) {
    let mut send = Map::new();
    let mut left = Map::new();
    for (table, asked) in request["RequestItems"].as_object().into_iter().flatten() {
        let keys = asked["Keys"].as_array().cloned().unwrap_or_default();
        let answered = match batches {
            Batches::Whole => keys.len(),
            Batches::Half if keys.len() < 2 => keys.len(),
            Batches::Half => keys.len().div_ceil(2),
            Batches::NoneFor(n) if call < u64::from(n) => 0,
            Batches::NoneFor(_) => keys.len(),
        };
        let part = |keys: &[Value]| {
            let mut part = asked.clone();
            part["Keys"] = Value::Array(keys.to_vec());
            part
        };
        if answered > 0 {
            send.insert(table.clone(), part(&keys[..answered]));
        }
        if answered < keys.len() {
            left.insert(table.clone(), part(&keys[answered..]));
        }
    }
    (send, left)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Schema {
        Schema {
            keys: vec!["pk".into(), "sk".into()],
            indexes: HashMap::from([("gsi1".to_owned(), vec!["gsi1pk".to_owned(), "gsi1sk".to_owned()])]),
        }
    }

    fn item(i: usize, pad: usize) -> Value {
        json!({
            "pk": { "S": "P" }, "sk": { "S": format!("{i:04}") },
            "gsi1pk": { "S": "G" }, "gsi1sk": { "S": format!("g{i:04}") },
            "data": { "S": "x".repeat(pad) },
        })
    }

    async fn body(answer: Answer) -> (StatusCode, Value) {
        let status = answer.status();
        let (_, bytes) = into_bytes(answer).await;
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn a_conflict_cancels_with_the_reason_at_the_held_item_and_none_elsewhere() {
        let (status, body) = body(conflict_cancellation(&[false, true, false])).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["__type"], "com.amazonaws.dynamodb.v20120810#TransactionCanceledException");
        let codes: Vec<&str> =
            body["CancellationReasons"].as_array().unwrap().iter().map(|r| r["Code"].as_str().unwrap()).collect();
        assert_eq!(codes, ["None", "TransactionConflict", "None"]);
    }

    #[tokio::test]
    async fn throttling_is_an_exception_on_single_calls_and_a_reason_in_transactions() {
        let (status, single) = body(throttle_answer("GetItem", &json!({}), true)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(single["__type"].as_str().unwrap().ends_with("#ProvisionedThroughputExceededException"));
        let (_, single) = body(throttle_answer("Query", &json!({}), false)).await;
        assert!(single["__type"].as_str().unwrap().ends_with("#ThrottlingException"));
        let tx = json!({ "TransactItems": [{}, {}] });
        let (_, cancelled) = body(throttle_answer("TransactWriteItems", &tx, false)).await;
        assert!(cancelled["__type"].as_str().unwrap().ends_with("#TransactionCanceledException"));
        assert_eq!(cancelled["CancellationReasons"][0]["Code"], "ThrottlingError");
        assert_eq!(cancelled["CancellationReasons"][1]["Code"], "None");
    }

    #[test]
    fn item_keys_ignore_attribute_order_and_other_attributes() {
        let s = schema();
        let put = s.item_key("t", &item(3, 10));
        assert_eq!(put, canonical_key("t", &json!({ "sk": { "S": "0003" }, "pk": { "S": "P" } })));
        assert_ne!(put, s.item_key("u", &item(3, 10)));
        assert_ne!(put, s.item_key("t", &item(4, 10)));
    }

    #[test]
    fn schemas_come_from_describe_table() {
        let desc = json!({ "Table": {
            "KeySchema": [{ "AttributeName": "pk", "KeyType": "HASH" }, { "AttributeName": "sk", "KeyType": "RANGE" }],
            "GlobalSecondaryIndexes": [{ "IndexName": "gsi1", "KeySchema": [
                { "AttributeName": "gsi1pk", "KeyType": "HASH" }, { "AttributeName": "gsi1sk", "KeyType": "RANGE" }] }],
        }});
        assert_eq!(Schema::from_description(&desc), schema());
    }

    #[test]
    fn pages_are_cut_by_size_with_the_last_items_key() {
        let items: Vec<Value> = (0..10).map(|i| item(i, 1000)).collect();
        let mut out = json!({ "Items": items, "Count": 10, "ScannedCount": 10 });
        assert!(cut_page(&mut out, &schema(), None, 4096));
        assert_eq!(out["Count"], 3, "three items of ~1 KB fit in 4 KB, not four");
        assert_eq!(out["Items"].as_array().unwrap().len(), 3);
        assert_eq!(out["LastEvaluatedKey"], json!({ "pk": { "S": "P" }, "sk": { "S": "0002" } }));
        // An index query's key carries the index's keys as well.
        let mut out = json!({ "Items": (0..10).map(|i| item(i, 1000)).collect::<Vec<_>>() });
        assert!(cut_page(&mut out, &schema(), Some("gsi1"), 4096));
        assert_eq!(out["LastEvaluatedKey"]["gsi1sk"], json!({ "S": "g0002" }));
        assert_eq!(out["LastEvaluatedKey"].as_object().unwrap().len(), 4);
        // What fits is left alone (and keeps the upstream's own LastEvaluatedKey, if any).
        let mut small = json!({ "Items": [item(0, 10)], "LastEvaluatedKey": { "pk": { "S": "P" } } });
        assert!(!cut_page(&mut small, &schema(), None, 4096));
        assert_eq!(small["LastEvaluatedKey"], json!({ "pk": { "S": "P" } }));
        // An item bigger than a page still makes a page of one.
        let mut big = json!({ "Items": [item(0, 9000), item(1, 10)] });
        assert!(cut_page(&mut big, &schema(), None, 4096));
        assert_eq!(big["Count"], 1);
    }

    #[test]
    fn item_sizes_follow_the_documented_rules() {
        assert_eq!(item_size(&json!({ "ab": { "S": "héllo" } })), 2 + 6);
        assert_eq!(item_size(&json!({ "n": { "N": "12345" } })), 1 + 4);
        assert_eq!(item_size(&json!({ "b": { "BOOL": true }, "z": { "NULL": true } })), 4);
        assert_eq!(item_size(&json!({ "m": { "M": { "k": { "S": "v" } } } })), 1 + 3 + 1 + 1 + 1);
        assert_eq!(item_size(&json!({ "l": { "L": [{ "S": "ab" }] } })), 1 + 3 + 1 + 2);
    }

    #[test]
    fn batches_are_answered_in_part_with_the_rest_unprocessed() {
        let keys: Vec<Value> = (0..5).map(|i| json!({ "pk": { "S": format!("k{i}") } })).collect();
        let request = json!({ "RequestItems": { "t": { "Keys": keys, "ConsistentRead": true } } });
        let (send, left) = split_batch(&request, Batches::Half, 0);
        assert_eq!(send["t"]["Keys"].as_array().unwrap().len(), 3);
        assert_eq!(left["t"]["Keys"].as_array().unwrap().len(), 2);
        assert_eq!(left["t"]["ConsistentRead"], true, "unprocessed keys keep the request's shape");
        let one = json!({ "RequestItems": { "t": { "Keys": [{ "pk": { "S": "k" } }] } } });
        assert!(split_batch(&one, Batches::Half, 0).1.is_empty(), "a single key is always answered");
        let (send, left) = split_batch(&request, Batches::NoneFor(2), 1);
        assert!(send.is_empty());
        assert_eq!(left["t"]["Keys"].as_array().unwrap().len(), 5);
        let (send, left) = split_batch(&request, Batches::NoneFor(2), 2);
        assert_eq!((send["t"]["Keys"].as_array().unwrap().len(), left.len()), (5, 0));
    }

    #[test]
    fn held_items_conflict_until_released() {
        let model = Model {
            upstream: String::new(),
            rules: Rules { conflicts: true, ..Rules::default() },
            held: Mutex::new(HashSet::new()),
            schemas: Mutex::new(HashMap::new()),
            rng: AtomicU64::new(1),
            batch_calls: AtomicU64::new(0),
            upstream_slots: tokio::sync::Semaphore::new(UPSTREAM_CONNECTIONS),
            tokens: Mutex::new(Tokens::default()),
            stats: Stats::default(),
        };
        let a = canonical_key("t", &json!({ "pk": { "S": "a" } }));
        let b = canonical_key("t", &json!({ "pk": { "S": "b" } }));
        model.held.lock().unwrap().insert(a.clone());
        let hold = Hold { model: &model, keys: vec![a.clone()] };
        assert_eq!(model.conflicting(&[b.clone(), a.clone()]), [false, true]);
        drop(hold);
        assert_eq!(model.conflicting(&[b, a]), [false, false]);
    }

    #[test]
    fn the_throttle_rate_is_honoured() {
        let model = |rate| Model {
            upstream: String::new(),
            rules: Rules { throttle_rate: rate, ..Rules::default() },
            held: Mutex::new(HashSet::new()),
            schemas: Mutex::new(HashMap::new()),
            rng: AtomicU64::new(7),
            batch_calls: AtomicU64::new(0),
            upstream_slots: tokio::sync::Semaphore::new(UPSTREAM_CONNECTIONS),
            tokens: Mutex::new(Tokens::default()),
            stats: Stats::default(),
        };
        let (off, half) = (model(0.0), model(0.5));
        assert!((0..1000).all(|_| !off.throttled()));
        let hits = (0..10_000).filter(|_| half.throttled()).count();
        assert!((4500..5500).contains(&hits), "{hits}");
    }

    #[test]
    fn committed_tokens_are_forgotten_after_ten_minutes() {
        let start = Instant::now();
        let mut tokens = Tokens::default();
        for (i, name) in ["a", "b"].into_iter().enumerate() {
            tokens.seen.insert(name.to_owned(), Token::Committed { params: 1 });
            tokens.committed.push_back((start + Duration::from_secs(i as u64 * 60), name.to_owned()));
        }
        tokens.forget_expired(start + TOKEN_WINDOW - Duration::from_millis(1));
        assert_eq!(tokens.seen.len(), 2, "inside the window both are kept");
        tokens.forget_expired(start + TOKEN_WINDOW);
        assert!(!tokens.seen.contains_key("a") && tokens.seen.contains_key("b"));
        tokens.forget_expired(start + TOKEN_WINDOW + Duration::from_secs(60));
        assert!(tokens.seen.is_empty() && tokens.committed.is_empty());
    }
}
