//! Whole warm handlers with the DynamoDB and Secrets Manager round trips taken out: the SDK
//! clients talk to an in-memory HTTP client answering canned responses at once, so what is
//! timed is the handler's own CPU (parsing, SDK request building and SigV4 signing, JSON,
//! crypto). Round trips are counted, not timed. The crypto floor (SHA-256 of the key +
//! Ed25519 signature) is measured in the same run for the ratio.

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use criterion::{Criterion, criterion_group, criterion_main};
use hatched_tests::canned::wire;
use serde_json::{Value, json};

const FIXTURE_KEY: &str = "hatch_live_abcdefghijklmnopqrstuvwxyzABCDEF1mVgZW";
const TABLE: &str = "bench";

struct Canned {
    key_item: Value,
    session_item: Value,
    gate_item: Value,
    buddy_item: Value,
    balance_item: Value,
    unlock_item: Value,
}

fn canned(key: &hatched::domain::ApiKey, session_id: &str) -> Canned {
    let far = 4_000_000_000i64;
    let hash = key.hash();
    Canned {
        key_item: wire(json!({
            "pk": format!("KEY#{}", hash.as_str()), "sk": "KEY", "gsi1pk": "CUS#acme#KEYS", "gsi1sk": "x",
            "key_hash": hash.as_str(), "prefix": key.prefix().as_str(), "key_type": "secret", "environment": "live",
            "customer_id": "acme", "primary_token": "coins", "tier": "enterprise",
            "scopes": ["widget_sessions:write", "embed_tokens:create", "write:unlocks", "read:buddies", "read:operations"],
            "allowed_origins": [], "require_signed_user_id": false, "created_at": 1, "last_used_at": far
        })),
        session_item: wire(json!({
            "pk": format!("WS#{session_id}"), "sk": "SESSION", "ttl": far, "session_id": session_id, "customer_id": "acme",
            "environment": "live", "buddy_id": "buddy_1", "user_id": "user_1", "scopes": ["read", "events:track"],
            "created_at": 1, "expires_at": far
        })),
        gate_item: wire(
            json!({ "pk": "CUS#acme", "sk": "GATE#dark_mode", "customer_id": "acme", "gate_key": "dark_mode", "token_key": "coins", "cost": 1, "metadata": { "label": "Dark mode" } }),
        ),
        buddy_item: wire(
            json!({ "pk": "BDY#acme#live#buddy_1", "sk": "BUDDY", "customer_id": "acme", "environment": "live", "buddy_id": "buddy_1", "created_at": 1 }),
        ),
        balance_item: wire(
            json!({ "pk": "BDY#acme#live#buddy_1", "sk": "BAL#coins", "token_key": "coins", "amount": 1_000_000 }),
        ),
        unlock_item: wire(json!({
            "pk": "BDY#acme#live#buddy_1", "sk": "UNLOCK#dark_mode", "gate_key": "dark_mode", "token_key": "coins", "cost": 1,
            "unlocked_at": 1_700_000_000, "metadata": { "label": "Dark mode" }, "request_id": "r"
        })),
    }
}

fn respond(status: u16, body: Value) -> (u16, Value) {
    (status, body)
}

fn app(c: Arc<Canned>, calls: Arc<AtomicUsize>) -> hatched::App {
    // The published public key of the secret below ("bench", the one-key format).
    let bench_key = hatched::signing::SigningKey::from_secret("bench").unwrap();
    let published = json!({
        "pk": { "S": "SIGNING#JWKS" }, "sk": { "S": "JWKS" }, "updated_at": { "N": "0" },
        "keys": { "L": [{ "M": {
            "kid": { "S": bench_key.kid() }, "x": { "S": bench_key.x() },
            "state": { "S": "current" }, "published_at": { "N": "0" }
        } }] }
    });
    let dynamo = move |op: &str, body: &str| {
        calls.fetch_add(1, Ordering::Relaxed);
        match op {
            "GetItem" if body.contains("SIGNING#") => respond(200, json!({ "Item": published })),
            "GetItem" if body.contains("KEY#") => respond(200, json!({ "Item": c.key_item })),
            "GetItem" if body.contains("WS#") => respond(200, json!({ "Item": c.session_item })),
            "GetItem" => respond(200, json!({ "Item": c.buddy_item })),
            "UpdateItem" if body.contains("WS#") => {
                let mut item = c.session_item.clone();
                item["revoked_at"] = json!({ "N": "1700000000" });
                respond(200, json!({ "Attributes": item }))
            }
            "UpdateItem" => respond(200, json!({ "Attributes": { "count": { "N": "1" } } })),
            "BatchGetItem" if body.contains("WS#") => {
                respond(200, json!({ "Responses": { TABLE: [c.session_item] }, "UnprocessedKeys": {} }))
            }
            "BatchGetItem" => respond(
                200,
                json!({ "Responses": { TABLE: [c.gate_item, c.buddy_item, c.balance_item] }, "UnprocessedKeys": {} }),
            ),
            "Query" if body.contains("UNLOCK#") => {
                respond(200, json!({ "Items": [c.unlock_item], "Count": 1, "ScannedCount": 1 }))
            }
            "Query" => respond(200, json!({ "Items": [c.gate_item], "Count": 1, "ScannedCount": 1 })),
            "TransactWriteItems" => respond(200, json!({})),
            _ => respond(400, json!({ "__type": "ValidationException", "message": op })),
        }
    };
    let secrets = |_: &str, body: &str| {
        if body.contains("AWSPREVIOUS") {
            respond(400, json!({ "__type": "ResourceNotFoundException", "Message": "no previous version" }))
        } else {
            respond(
                200,
                json!({ "ARN": "arn:aws:secretsmanager:us-east-1:1:secret:s", "Name": "s", "SecretString": "bench", "VersionId": "v1", "VersionStages": ["AWSCURRENT"] }),
            )
        }
    };
    hatched_tests::canned::app(dynamo, secrets, TABLE)
}

fn event(name: &str, key: &str, session_id: &str, token: &str) -> String {
    std::fs::read_to_string(format!("{}/../events/{name}", env!("CARGO_MANIFEST_DIR")))
        .unwrap()
        .replace(FIXTURE_KEY, key)
        .replace("ws_000000000000000000000000", session_id)
        .replace("not.a.jwt", token)
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let key = hatched::domain::ApiKey::generate(hatched::domain::KeyKind::SecretLive);
    let session_id = hatched::domain::SessionId::generate();
    let calls = Arc::new(AtomicUsize::new(0));
    let app = app(Arc::new(canned(&key, session_id.as_str())), calls.clone());
    let token = {
        let ring = rt.block_on(app.signer.ring()).unwrap();
        let who = hatched::domain::token::Subject {
            customer: hatched::domain::CustomerId::parse("acme").unwrap(),
            env: hatched::domain::Environment::Live,
            buddy: hatched::domain::BuddyId::parse("buddy_1").unwrap(),
            user: hatched::domain::UserId::parse("user_1").unwrap(),
        };
        let scopes = [hatched::domain::token::WidgetScope::Read, hatched::domain::token::WidgetScope::EventsTrack];
        ring.current
            .sign(&hatched::domain::token::SessionClaims::new(
                hatched::app::DEFAULT_ISSUER,
                &who,
                &session_id,
                &scopes,
                hatched::domain::UnixTime::now(),
                3600,
            ))
            .unwrap()
    };

    let pair = aws_lc_rs::signature::Ed25519KeyPair::from_seed_unchecked(&[7u8; 32]).unwrap();
    let message = token.rsplit_once('.').unwrap().0.as_bytes().to_vec();
    let text = key.expose().to_owned();
    c.bench_function("floor/sha256_plus_ed25519_sign", |b| {
        b.iter(|| {
            black_box(<sha2::Sha256 as sha2::Digest>::digest(black_box(text.as_bytes())));
            black_box(pair.sign(black_box(&message)));
        })
    });

    type Handler =
        for<'a> fn(
            &'a hatched::App,
            hatched::lambda_http::Request,
        )
            -> futures::future::BoxFuture<'a, hatched::lambda_http::Response<hatched::lambda_http::Body>>;
    let handlers: [(&str, &str, Handler); 9] = [
        ("validate-key", "validate-key/valid.json", |a, r| Box::pin(functions::validate_key::handle(a, r))),
        ("create-widget-session", "create-widget-session/valid.json", |a, r| {
            Box::pin(functions::create_widget_session::handle(a, r))
        }),
        ("revoke-widget-session", "revoke-widget-session/valid.json", |a, r| {
            Box::pin(functions::revoke_widget_session::handle(a, r))
        }),
        ("create-embed-token", "create-embed-token/valid.json", |a, r| {
            Box::pin(functions::create_embed_token::handle(a, r))
        }),
        ("introspect-token", "introspect-token/garbage.json", |a, r| {
            Box::pin(functions::introspect_token::handle(a, r))
        }),
        ("jwks", "jwks/valid.json", |a, r| Box::pin(functions::jwks::handle(a, r))),
        ("unlock-gate", "unlock-gate/valid.json", |a, r| Box::pin(functions::unlock_gate::handle(a, r))),
        ("list-gates", "list-gates/valid.json", |a, r| Box::pin(functions::list_gates::handle(a, r))),
        ("list-unlocks", "list-unlocks/valid.json", |a, r| Box::pin(functions::list_unlocks::handle(a, r))),
    ];
    for (name, fixture, handler) in handlers {
        let text = event(fixture, key.expose(), session_id.as_str(), &token);
        // Warm up (key ring fetch) and check the canned world gives a success.
        let resp = rt.block_on(handler(&app, hatched::lambda_http::request::from_str(&text).unwrap()));
        assert!(resp.status().is_success(), "{name}: {} {:?}", resp.status(), resp.body());
        calls.store(0, Ordering::Relaxed);
        rt.block_on(handler(&app, hatched::lambda_http::request::from_str(&text).unwrap()));
        println!("{name}: {} DynamoDB calls per request (counted, not timed)", calls.load(Ordering::Relaxed));
        c.bench_function(&format!("handler/{name}"), |b| {
            b.iter(|| rt.block_on(handler(&app, hatched::lambda_http::request::from_str(black_box(&text)).unwrap())))
        });
    }

    // The platform authorizer, beside validate-key: the same key check, another event shape.
    let text = event("authorize/allow.json", key.expose(), session_id.as_str(), &token);
    let parse = |t: &str| serde_json::from_str::<functions::authorize::AuthorizerRequest>(t).unwrap();
    assert!(
        rt.block_on(functions::authorize::handle(&app, parse(&text))).is_authorized,
        "authorize: the canned key is allowed"
    );
    calls.store(0, Ordering::Relaxed);
    rt.block_on(functions::authorize::handle(&app, parse(&text)));
    println!("authorize: {} DynamoDB calls per request (counted, not timed)", calls.load(Ordering::Relaxed));
    c.bench_function("handler/authorize", |b| {
        b.iter(|| rt.block_on(functions::authorize::handle(&app, parse(black_box(&text)))))
    });
}

criterion_group!(handlers, benches);
criterion_main!(handlers);
