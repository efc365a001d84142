//! API.md's first input rule, "request bodies are JSON objects", on every route: an array,
//! string, number, `null` or boolean body is 400 `invalid_request` and changes nothing (serde's
//! derived structs read an array positionally, so `["secret"]` used to create a key). And the
//! origin allowlist: entries that are not origins are refused, the others stored as a browser
//! serialises its `Origin`.

use hatched::store::partition::{KEY, PREFIX, RATE_WINDOW};
use hatched_tests::Seed;
use hatched_tests::calls::iam_actions;
use hatched_tests::prelude::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Value, json};

const KEYS: &str = "/api/v1/keys";

/// What authentication writes for any request, whatever its body: the rate-window count
/// (`UpdateItem` on `RL#`) and a key's `last_used_at` (`SET #used = :now` on its two copies).
/// Anything else is a change of state.
fn written_by_authentication(target: &str, body: &Value) -> bool {
    let actions = iam_actions(target, serde_json::to_vec(body).ok().as_deref());
    let [(action, partition)] = actions.as_slice() else { return false };
    if action != "dynamodb:UpdateItem" {
        return false;
    }
    if partition == RATE_WINDOW {
        return true;
    }
    (partition == KEY || partition == PREFIX)
        && body["UpdateExpression"] == "SET #used = :now"
        && body["ExpressionAttributeNames"] == json!({ "#used": "last_used_at" })
}

/// The world every route can act in: buddy `b1` with coins and the gate `hat`, a session,
/// a key to patch, roll and revoke, and the caller: an enterprise secret key with every scope.
struct World {
    t: TestApp,
    admin: String,
    target_prefix: String,
    session_id: String,
    session_token: String,
}

async fn world() -> World {
    let t = TestApp::new().await;
    Seed::customer(&t.app, "acme").await.expect("create customer");
    t.buddy(Live, "b1").await;
    t.gate("hat", 5, None).await;
    t.credit(Live, "b1", 100).await;
    let (admin, _) = t.issue(Secret, Live, tier(Tier::Enterprise)).await;
    let (_, target_prefix) = t.issue(Publishable, Live, plain()).await;
    let minted = t.mint_session(&admin, "b1", "someone", &["read"]).await;
    assert_eq!(minted.status, 201, "{}", minted.body);
    let session_id = minted.body["session_id"].as_str().unwrap().to_owned();
    let session_token = minted.body["token"].as_str().unwrap().to_owned();
    t.calls.take_writes();
    World { t, admin, target_prefix, session_id, session_token }
}

impl World {
    /// A route's path with its parameters filled from the world.
    fn path(&self, template: &str) -> String {
        template
            .replace("{prefix}", &self.target_prefix)
            .replace("{session_id}", &self.session_id)
            .replace("{buddy_id}", "b1")
            .replace("{gate_key}", "hat")
    }

    /// `body` as sent by a client that thinks it is JSON, to `method path`, from its own
    /// source address (the anonymous routes' per-IP budget is not what is under test).
    async fn send_raw(&self, method: &str, path: &str, body: &str, n: usize) -> Answer {
        let ip = format!("2001:db8:{:x}:{:x}::1", n >> 16, n & 0xffff);
        let call = Call::new(method, path)
            .key(&self.admin)
            .header("content-type", "application/json")
            .body(body.as_bytes())
            .from_ip(&ip);
        self.t.send(call).await
    }

    /// Sends a non-object body to a route: 400 `invalid_request`, and nothing written but
    /// what authentication writes.
    async fn refused_without_change(&self, method: &str, template: &str, body: &str, n: usize) -> Result<(), String> {
        self.t.calls.take_writes();
        let a = self.send_raw(method, &self.path(template), body, n).await;
        let writes = self.t.calls.take_writes();
        if (a.status, a.code()) != (400, "invalid_request") {
            return Err(format!("{method} {template} with {body:?}: {} {}", a.status, a.body));
        }
        if let Some((target, write)) = writes.iter().find(|(target, body)| !written_by_authentication(target, body)) {
            return Err(format!("{method} {template} with {body:?} wrote {target}: {write}"));
        }
        Ok(())
    }
}

/// Each kind of JSON value that is not an object, and arrays holding what a route expects
/// (positional fields, nested arrays, the object itself inside an array).
const NOT_OBJECTS: &[&str] = &[
    "null",
    "true",
    "false",
    "0",
    "-1.5e3",
    "\"secret\"",
    "\"{}\"",
    "[]",
    "[null]",
    "[\"secret\"]",
    "[\"via-array\"]",
    "[0]",
    "[\"someone\"]",
    "[null,\"b1\"]",
    "[\"b1\",\"u1\",[\"read\"]]",
    "[[\"secret\"]]",
    "[{\"type\":\"secret\"}]",
    "[{}]",
    " \n\t[\"secret\"]",
];

/// Every route, every kind of non-object body: 400 and no change. Bodiless routes (GET,
/// DELETE) and the unlock accept an empty body, not a non-empty one that is not an object.
#[tokio::test]
async fn every_route_refuses_every_non_object_body_and_changes_nothing() {
    let w = world().await;
    let before = table_state(&w.t).await;
    let mut failures = Vec::new();
    let mut n = 0;
    for endpoint in functions::ENDPOINTS {
        for body in NOT_OBJECTS {
            n += 1;
            if let Err(e) = w.refused_without_change(endpoint.method, endpoint.path, body, n).await {
                failures.push(e);
            }
        }
    }
    assert!(failures.is_empty(), "{} of {n} requests:\n{}", failures.len(), failures.join("\n"));
    assert_eq!(table_state(&w.t).await, before, "the table, less rate windows and last_used_at");
    assert_eq!(w.t.introspect(&w.session_token).await.body["active"], true, "the session survived");
    println!("non-object bodies: {n} requests over {} routes, each 400, no change", functions::ENDPOINTS.len());
}

/// Arbitrary non-object JSON (any depth, objects nested inside arrays, leading whitespace)
/// and objects whose fields hold nested arrays, to arbitrary routes.
#[test]
fn arbitrary_non_object_bodies_are_refused_on_every_route() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let w = rt.block_on(world());
    let before = rt.block_on(table_state(&w.t));
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
        "[a-z:_ -]{0,12}".prop_map(Value::from),
    ];
    let any_json = leaf.clone().prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::btree_map("[a-z_]{1,10}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    });
    let not_object = prop_oneof![leaf, proptest::collection::vec(any_json.clone(), 0..6).prop_map(Value::Array),];
    // A field every request type has or refuses as unknown, holding an array with an array or
    // object inside: no request field takes that shape, so this too is 400 and no change.
    let field = prop::sample::select(vec![
        "type",
        "label",
        "scopes",
        "allowed_origins",
        "require_signed_user_id",
        "grace_seconds",
        "user_id",
        "buddy_id",
        "key_prefix",
        "ttl_seconds",
        "key",
        "origin",
        "required_scopes",
        "token",
        "user_id_sig",
        "user_id_ts",
    ]);
    let nested = (field, any_json.clone(), proptest::collection::vec(any_json, 0..3)).prop_map(|(f, inner, rest)| {
        let inner = if inner.is_array() || inner.is_object() { inner } else { Value::Array(vec![inner]) };
        let mut items = vec![inner];
        items.extend(rest);
        json!({ f: items })
    });
    let body = prop_oneof![
        3 => not_object.prop_map(|v| v.to_string()),
        1 => nested.prop_map(|v| v.to_string()),
        1 => ("[ \t\n\r]{1,3}", "\\[|\"|-?[0-9]|n|t|f").prop_map(|(ws, start)| format!("{ws}{start}")),
    ];
    let routes = functions::ENDPOINTS.len();
    let mut runner = TestRunner::new(Config { cases: 8 * routes as u32, ..Config::default() });
    let n = std::sync::atomic::AtomicUsize::new(10_000);
    runner
        .run(&(body, 0..routes), |(body, route)| {
            let n = n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let endpoint = functions::ENDPOINTS[route];
            // A route without a body ignores an object (only a non-object is malformed there).
            prop_assume!(!(matches!(endpoint.method, "GET" | "DELETE") && body.trim_start().starts_with('{')));
            let refused = rt.block_on(w.refused_without_change(endpoint.method, endpoint.path, &body, n));
            prop_assert!(refused.is_ok(), "{}", refused.unwrap_err());
            Ok(())
        })
        .unwrap();
    assert_eq!(rt.block_on(table_state(&w.t)), before, "the table, less rate windows and last_used_at");
}

/// The table as the API would show it: every item but the rate windows, without
/// `last_used_at` (the two things authentication writes), sorted.
async fn table_state(t: &TestApp) -> Vec<String> {
    let items = t.app.store.client().scan().table_name(t.app.store.table()).into_paginator().items().send();
    let items: Vec<_> = items.collect::<Vec<_>>().await;
    let mut state: Vec<String> = items
        .into_iter()
        .map(|item| item.expect("scan"))
        .filter(|item| item.get("pk").and_then(|v| v.as_s().ok()).is_none_or(|pk| !pk.starts_with(RATE_WINDOW)))
        .map(|mut item| {
            item.remove("last_used_at");
            // As JSON with sorted keys: a map attribute's own order is not the item's state.
            sorted(serde_dynamo::from_item::<_, Value>(item).expect("an item as JSON")).to_string()
        })
        .collect();
    state.sort();
    state
}

/// `value` with every object's keys in order, whatever map serde_json was built with.
fn sorted(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().map(|(k, v)| (k, sorted(v))).collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

/// The attack review's cases, each with the change it used to make.
#[tokio::test]
async fn the_reviewed_array_bodies_change_nothing() {
    let w = world().await;
    let key_count = |a: Answer| a.body["keys"].as_array().map_or(0, Vec::len);
    let keys_before = key_count(w.t.send(Call::new("GET", KEYS).key(&w.admin)).await);
    let target = format!("{KEYS}/{}", w.target_prefix);
    let record_before = w.t.send(Call::new("GET", &target).key(&w.admin)).await.body;

    // POST /api/v1/keys ["secret"] used to issue a secret key with every scope.
    let a = w.send_raw("POST", KEYS, r#"["secret"]"#, 1).await;
    assert_eq!((a.status, a.code()), (400, "invalid_request"), "{}", a.body);
    assert!(a.body.get("key").is_none());
    assert_eq!(key_count(w.t.send(Call::new("GET", KEYS).key(&w.admin)).await), keys_before);

    // PATCH ["via-array"] used to set the label; roll [0] to expire the old key at once.
    let a = w.send_raw("PATCH", &target, r#"["via-array"]"#, 2).await;
    assert_eq!((a.status, a.code()), (400, "invalid_request"), "{}", a.body);
    let a = w.send_raw("POST", &format!("{target}/roll"), "[0]", 3).await;
    assert_eq!((a.status, a.code()), (400, "invalid_request"), "{}", a.body);
    let record = w.t.send(Call::new("GET", &target).key(&w.admin)).await.body;
    assert_eq!(record["label"], record_before["label"]);
    assert_eq!(record["expires_at"], Value::Null, "not rolled: {record}");

    // Bulk revocation by position: ["someone"] was user_id, [null,"b1"] buddy_id.
    for (n, body) in [r#"["someone"]"#, r#"[null,"b1"]"#].into_iter().enumerate() {
        let a = w.send_raw("POST", "/api/v1/widget-sessions/revoke", body, 4 + n).await;
        assert_eq!((a.status, a.code()), (400, "invalid_request"), "{body}: {}", a.body);
    }
    assert_eq!(w.t.introspect(&w.session_token).await.body["active"], true, "the session was not revoked");

    // The same parser serves the mints and validate.
    for (n, (path, body)) in [
        ("/api/v1/widget-sessions", r#"["b1","u1",["read"]]"#),
        ("/api/v1/embed-tokens", r#"["b1","u1"]"#),
        ("/api/v1/keys/validate", &format!(r#"["{}"]"#, w.admin)),
        ("/api/v1/tokens/introspect", &format!(r#"["{}"]"#, w.session_token)),
        ("/api/v1/buddies/b1/gates/hat/unlock", r#"["u1","sig",1]"#),
    ]
    .into_iter()
    .enumerate()
    {
        let a = w.send_raw("POST", path, body, 10 + n).await;
        assert_eq!((a.status, a.code()), (400, "invalid_request"), "{path}: {}", a.body);
        assert!(a.body.get("token").is_none() && a.body.get("valid").is_none(), "{path}: {}", a.body);
    }
}

/// The attack review's origins, on issuance and on PATCH: each 400, nothing stored.
#[tokio::test]
async fn origins_that_are_not_origins_are_refused_where_origins_are_set() {
    let w = world().await;
    let target = format!("{KEYS}/{}", w.target_prefix);
    for (n, bad) in ["https://...", "https://a..b.com", "https://-.-", "https://example.com:99999", "https://:"]
        .into_iter()
        .enumerate()
    {
        let body = json!({ "type": "publishable", "allowed_origins": ["https://ok.example.com", bad] });
        let a = w.t.send(Call::new("POST", KEYS).key(&w.admin).json(&body).from_ip(&format!("203.0.113.{n}"))).await;
        assert_eq!((a.status, a.code()), (400, "invalid_request"), "{bad}: {}", a.body);
        w.t.calls.take_writes();
        let a = w.t.send(Call::new("PATCH", &target).key(&w.admin).json(&json!({ "allowed_origins": [bad] }))).await;
        assert_eq!((a.status, a.code()), (400, "invalid_request"), "{bad}: {}", a.body);
        let writes = w.t.calls.take_writes();
        assert!(writes.iter().all(|(target, body)| written_by_authentication(target, body)), "{bad}: {writes:?}");
    }
    let record = w.t.send(Call::new("GET", &target).key(&w.admin)).await.body;
    assert_eq!(record["allowed_origins"], json!([]), "{record}");
}

/// A customer types `https://App.Example.com:443`; a browser on that site sends
/// `Origin: https://app.example.com`. Stored in the browser's form, it matches.
#[tokio::test]
async fn a_mixed_case_entry_with_the_default_port_matches_the_browser_origin() {
    let w = world().await;
    let body = json!({ "type": "publishable", "allowed_origins": ["https://App.Example.com:443", "https://*.Shop.Example:443"] });
    let a = w.t.send(Call::new("POST", KEYS).key(&w.admin).json(&body)).await;
    assert_eq!(a.status, 201, "{}", a.body);
    assert_eq!(a.body["record"]["allowed_origins"], json!(["https://app.example.com", "https://*.shop.example"]));
    let pk = a.body["key"].as_str().unwrap().to_owned();
    let prefix = a.body["record"]["prefix"].as_str().unwrap().to_owned();
    let gates = |origin: &'static str| Call::new("GET", "/api/v1/gates").key(&pk).header("origin", origin);
    assert_eq!(w.t.send(gates("https://app.example.com")).await.status, 200);
    assert_eq!(w.t.send(gates("https://eu.shop.example")).await.status, 200);
    let a = w.t.send(gates("https://evil.example.com")).await;
    assert_eq!((a.status, a.code()), (403, "origin_not_allowed"));

    // PATCH and hatchctl go through the same normalisation.
    let patch = json!({ "allowed_origins": ["HTTP://LOCALHOST:3000", "https://B\u{fc}cher.example:443"] });
    let a = w.t.send(Call::new("PATCH", &format!("{KEYS}/{prefix}")).key(&w.admin).json(&patch)).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["allowed_origins"], json!(["http://localhost:3000", "https://xn--bcher-kva.example"]));
    let out =
        w.t.ctl(&[
            "keys",
            "issue",
            "--customer",
            "acme",
            "--type",
            "publishable",
            "--env",
            "live",
            "--allowed-origins",
            "https://App.Example.com:443",
        ])
        .await
        .expect("hatchctl keys issue");
    let issued = out["prefix"].as_str().expect("prefix").to_owned();
    let record = w.t.send(Call::new("GET", &format!("{KEYS}/{issued}")).key(&w.admin)).await.body;
    assert_eq!(record["allowed_origins"], json!(["https://app.example.com"]), "{record}");
    let out = w.t.ctl(&["keys", "update", "--prefix", &issued, "--allowed-origins", "https://*.Example.com:443"]).await;
    assert_eq!(out.expect("hatchctl keys update")["allowed_origins"], json!(["https://*.example.com"]));
    let refused =
        w.t.ctl(&[
            "keys",
            "issue",
            "--customer",
            "acme",
            "--type",
            "publishable",
            "--env",
            "live",
            "--allowed-origins",
            "https://a..b.com",
        ])
        .await;
    assert!(refused.is_err(), "{refused:?}");
}
