//! What neither emulator produces on demand — throttling, `TransactionConflict`, DynamoDB's
//! own 500s, a transaction cancelled on both the balance and the unlock — answered from an
//! in-memory HTTP client, to check the error mapping and the unlock's retry loop.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use hatched::domain::{ApiKey, KeyKind};
use hatched::store::retry::MAX_ATTEMPTS;
use hatched_tests::canned::{app, first_count, wire};
use hatched_tests::{Answer, keyed};
use serde_json::{Value, json};

const TABLE: &str = "canned";

fn key_item(key: &ApiKey) -> Value {
    wire(json!({
        "pk": format!("KEY#{}", key.hash().as_str()), "sk": "KEY", "gsi1pk": "CUS#acme#KEYS", "gsi1sk": "x",
        "key_hash": key.hash().as_str(), "prefix": key.prefix().as_str(), "key_type": "secret", "environment": "live",
        "customer_id": "acme", "primary_token": "coins", "tier": "enterprise",
        "scopes": ["widget_sessions:write", "embed_tokens:create", "write:unlocks", "read:buddies", "read:operations"],
        "allowed_origins": [], "require_signed_user_id": false, "created_at": 1, "last_used_at": 4_000_000_000i64
    }))
}

fn unlock_view(with_unlock: bool) -> Value {
    let mut items = vec![
        wire(
            json!({ "pk": "CUS#acme", "sk": "GATE#hat", "customer_id": "acme", "gate_key": "hat", "token_key": "coins", "cost": 5 }),
        ),
        wire(json!({ "pk": "BDY#acme#live#b1", "sk": "BUDDY" })),
        wire(json!({ "pk": "BDY#acme#live#b1", "sk": "BAL#coins", "token_key": "coins", "amount": 5 })),
    ];
    if with_unlock {
        items.push(wire(json!({
            "pk": "BDY#acme#live#b1", "sk": "UNLOCK#hat", "gate_key": "hat", "token_key": "coins", "cost": 5,
            "unlocked_at": 1_700_000_000, "request_id": "someone-else"
        })));
        items[2] = wire(json!({ "pk": "BDY#acme#live#b1", "sk": "BAL#coins", "token_key": "coins", "amount": 0 }));
    }
    json!({ "Responses": { TABLE: items }, "UnprocessedKeys": {} })
}

fn cancelled(reasons: &[&str]) -> (u16, Value) {
    let reasons: Vec<Value> = reasons.iter().map(|c| json!({ "Code": c })).collect();
    (
        400,
        json!({ "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException", "Message": "cancelled", "CancellationReasons": reasons }),
    )
}

fn no_secrets(_: &str, _: &str) -> (u16, Value) {
    (400, json!({ "__type": "ResourceNotFoundException", "Message": "none" }))
}

/// A canned world where the key, window and unlock read answer normally and `spend` decides
/// each TransactWriteItems answer (by attempt number); returns the app and the call counter.
fn world(
    key: &ApiKey,
    spend: impl Fn(usize) -> (u16, Value) + Send + Sync + 'static,
) -> (hatched::App, Arc<AtomicUsize>) {
    let key_item = key_item(key);
    let transactions = Arc::new(AtomicUsize::new(0));
    let seen = transactions.clone();
    let after_spend = Arc::new(AtomicUsize::new(0));
    let dynamo = move |op: &str, body: &str| match op {
        "GetItem" => (200, json!({ "Item": key_item })),
        "UpdateItem" => (200, first_count(body)),
        "BatchGetItem" => (200, unlock_view(after_spend.load(Ordering::Relaxed) > 0)),
        "TransactWriteItems" => {
            let n = seen.fetch_add(1, Ordering::Relaxed);
            let (status, body) = spend(n);
            // Another request's unlock landed: later reads see it.
            if body["CancellationReasons"][1]["Code"] == "ConditionalCheckFailed" {
                after_spend.fetch_add(1, Ordering::Relaxed);
            }
            (status, body)
        }
        other => (400, json!({ "__type": "ValidationException", "message": other })),
    };
    (app(dynamo, no_secrets, TABLE), transactions)
}

async fn unlock(app: &hatched::App, key: &ApiKey) -> Answer {
    functions::unlock_gate::handle(app, keyed("POST", "/api/v1/buddies/b1/gates/hat/unlock", key.expose(), None))
        .await
        .into()
}

#[tokio::test]
async fn transaction_conflicts_are_retried_then_succeed() {
    let key = ApiKey::generate(KeyKind::SecretLive);
    let (app, transactions) =
        world(
            &key,
            |n| if n < 2 { cancelled(&["None", "None", "None", "TransactionConflict"]) } else { (200, json!({})) },
        );
    let a = unlock(&app, &key).await;
    assert_eq!((a.status, a.body["already_unlocked"].as_bool()), (200, Some(false)), "{}", a.body);
    assert_eq!(a.body["balance"]["amount"], 0);
    assert_eq!(transactions.load(Ordering::Relaxed), 3, "two conflicts, then the spend");
}

#[tokio::test]
async fn endless_conflicts_give_503_not_500() {
    let key = ApiKey::generate(KeyKind::SecretLive);
    let (app, transactions) = world(&key, |_| cancelled(&["None", "None", "None", "TransactionConflict"]));
    let a = unlock(&app, &key).await;
    assert_eq!((a.status, a.code()), (503, "service_unavailable"));
    assert!(a.header("retry-after").is_some());
    assert_eq!(transactions.load(Ordering::Relaxed), MAX_ATTEMPTS as usize, "bounded attempts");
}

#[tokio::test]
async fn losing_on_both_balance_and_unlock_is_already_unlocked_never_402() {
    let key = ApiKey::generate(KeyKind::SecretLive);
    let (app, _) = world(&key, |_| cancelled(&["ConditionalCheckFailed", "ConditionalCheckFailed", "None", "None"]));
    let a = unlock(&app, &key).await;
    assert_eq!((a.status, a.body["already_unlocked"].as_bool()), (200, Some(true)), "{}", a.body);
    assert_eq!(a.body["balance"]["amount"], 0);
}

#[tokio::test]
async fn a_changed_gate_is_read_again() {
    let key = ApiKey::generate(KeyKind::SecretLive);
    let (app, transactions) = world(&key, |n| {
        if n == 0 { cancelled(&["None", "None", "None", "ConditionalCheckFailed"]) } else { (200, json!({})) }
    });
    let a = unlock(&app, &key).await;
    assert_eq!((a.status, a.body["already_unlocked"].as_bool()), (200, Some(false)));
    assert_eq!(transactions.load(Ordering::Relaxed), 2);
}

/// Every DynamoDB call answers `error`; returns the answer to a keyed call and the attempts.
async fn all_calls_fail(status: u16, error: &str) -> (Answer, usize) {
    let key = ApiKey::generate(KeyKind::SecretLive);
    let attempts = Arc::new(AtomicUsize::new(0));
    let seen = attempts.clone();
    let error = error.to_owned();
    let dynamo = move |_: &str, _: &str| {
        seen.fetch_add(1, Ordering::Relaxed);
        (
            status,
            json!({ "__type": format!("com.amazonaws.dynamodb.v20120810#{error}"), "message": "secret internals: table canned, 127.0.0.1" }),
        )
    };
    let app = app(dynamo, no_secrets, TABLE);
    let a: Answer = functions::list_gates::handle(&app, keyed("GET", "/api/v1/gates", key.expose(), None)).await.into();
    (a, attempts.load(Ordering::Relaxed))
}

#[tokio::test]
async fn throttling_after_retries_is_503_with_retry_after() {
    for error in ["ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"] {
        let (a, attempts) = all_calls_fail(400, error).await;
        assert_eq!((a.status, a.code()), (503, "service_unavailable"), "{error}");
        assert!(a.header("retry-after").is_some());
        assert!(attempts >= 3, "{error}: the SDK retried ({attempts} calls)");
        assert!(!a.body.to_string().contains("internals"));
    }
}

#[tokio::test]
async fn dynamodb_500s_are_503_and_a_bug_is_a_bare_500() {
    let (a, _) = all_calls_fail(500, "InternalServerError").await;
    assert_eq!((a.status, a.code()), (503, "service_unavailable"));
    let (a, attempts) = all_calls_fail(400, "ValidationException").await;
    assert_eq!((a.status, a.code()), (500, "internal_error"));
    assert_eq!(a.body["error"]["message"], "An internal error occurred.");
    assert!(!a.body.to_string().contains("canned") && !a.body.to_string().contains("127.0.0.1"));
    assert_eq!(attempts, 2, "a validation error is not retried (key read and window, once each)");
}

#[tokio::test]
async fn throttling_inside_a_cancelled_transaction_is_503_not_500() {
    for reason in ["ThrottlingError", "ProvisionedThroughputExceeded"] {
        let key = ApiKey::generate(KeyKind::SecretLive);
        let (app, transactions) = world(&key, move |_| cancelled(&["None", reason, "None", "None"]));
        let a = unlock(&app, &key).await;
        assert_eq!((a.status, a.code()), (503, "service_unavailable"), "{reason}: {}", a.body);
        assert!(a.header("retry-after").is_some());
        assert_eq!(transactions.load(Ordering::Relaxed), 1, "{reason}: throttling is not a conflict to retry here");
    }
}

/// A widget-session mint whose transaction meets `conflicts` conflicting transactions (the
/// buddy item every mint for that buddy checks) before it commits.
async fn mint_session_through_conflicts(conflicts: usize) -> (Answer, usize) {
    let key = ApiKey::generate(KeyKind::SecretLive);
    let key_item = key_item(&key);
    let transactions = Arc::new(AtomicUsize::new(0));
    let seen = transactions.clone();
    let dynamo = move |op: &str, body: &str| match op {
        "GetItem" => (200, json!({ "Item": key_item })),
        "UpdateItem" => (200, first_count(body)),
        "TransactWriteItems" if seen.fetch_add(1, Ordering::Relaxed) < conflicts => {
            cancelled(&["TransactionConflict", "None"])
        }
        "TransactWriteItems" => (200, json!({})),
        other => (400, json!({ "__type": "ValidationException", "message": other })),
    };
    // The signing secret in its earlier format (any string): one current key.
    let secrets = |_: &str, _: &str| {
        (200, json!({ "Name": "canned", "VersionId": "v1", "SecretString": "canned-signing-secret" }))
    };
    let app = app(dynamo, secrets, TABLE);
    let body = json!({ "buddy_id": "b1", "user_id": "u1", "scopes": ["read"] });
    let req = keyed("POST", "/api/v1/widget-sessions", key.expose(), Some(&body));
    let a: Answer = functions::create_widget_session::handle(&app, req).await.into();
    (a, transactions.load(Ordering::Relaxed))
}

#[tokio::test]
async fn a_session_mint_that_meets_a_conflicting_transaction_is_sent_again() {
    let (a, transactions) = mint_session_through_conflicts(2).await;
    assert_eq!(a.status, 201, "{}", a.body);
    assert!(a.body["token"].is_string());
    assert_eq!(transactions, 3, "two conflicts, then the mint");
    let (a, transactions) = mint_session_through_conflicts(usize::MAX).await;
    assert_eq!((a.status, a.code()), (503, "service_unavailable"), "{}", a.body);
    assert!(a.header("retry-after").is_some());
    assert_eq!(transactions, MAX_ATTEMPTS as usize, "bounded attempts");
}

/// The unlock read answered with `unprocessed` partial batches (every key left unprocessed)
/// before the whole batch.
async fn unlock_through_unprocessed_batches(unprocessed: usize) -> (Answer, usize) {
    let key = ApiKey::generate(KeyKind::SecretLive);
    let key_item = key_item(&key);
    let batches = Arc::new(AtomicUsize::new(0));
    let seen = batches.clone();
    let dynamo = move |op: &str, body: &str| match op {
        "GetItem" => (200, json!({ "Item": key_item })),
        "UpdateItem" => (200, first_count(body)),
        "BatchGetItem" if seen.fetch_add(1, Ordering::Relaxed) < unprocessed => {
            let asked: Value = serde_json::from_str(body).unwrap();
            (200, json!({ "Responses": { TABLE: [] }, "UnprocessedKeys": asked["RequestItems"] }))
        }
        "BatchGetItem" => (200, unlock_view(false)),
        "TransactWriteItems" => (200, json!({})),
        other => (400, json!({ "__type": "ValidationException", "message": other })),
    };
    let app = app(dynamo, no_secrets, TABLE);
    let a = unlock(&app, &key).await;
    (a, batches.load(Ordering::Relaxed))
}

#[tokio::test]
async fn unprocessed_keys_are_asked_again_and_never_read_as_missing() {
    let (a, batches) = unlock_through_unprocessed_batches(2).await;
    assert_eq!((a.status, a.body["already_unlocked"].as_bool()), (200, Some(false)), "{}", a.body);
    assert_eq!(batches, 3, "two partial answers, then the rest");
    let (a, batches) = unlock_through_unprocessed_batches(usize::MAX).await;
    assert_eq!((a.status, a.code()), (503, "service_unavailable"), "never gate_not_found: {}", a.body);
    assert!(a.header("retry-after").is_some());
    assert_eq!(batches, MAX_ATTEMPTS as usize, "bounded attempts");
}

/// A secret key's counting write counts its month; when the key read beside it fails, the
/// request is refused (503) and its counts are given back: a client that retries is not
/// charged twice, and usage does not show the failure as accepted.
#[tokio::test]
async fn a_failed_key_read_gives_back_the_month_its_count_took() {
    let key = ApiKey::generate(KeyKind::SecretLive);
    let updates = Arc::new(std::sync::Mutex::new(Vec::<Value>::new()));
    let seen = updates.clone();
    let dynamo = move |op: &str, body: &str| match op {
        "GetItem" => {
            (500, json!({ "__type": "com.amazonaws.dynamodb.v20120810#InternalServerError", "message": "down" }))
        }
        "UpdateItem" => {
            seen.lock().unwrap().push(serde_json::from_str(body).unwrap());
            (200, first_count(body))
        }
        other => (400, json!({ "__type": "ValidationException", "message": other })),
    };
    let app = app(dynamo, no_secrets, TABLE);
    let a: Answer = functions::list_gates::handle(&app, keyed("GET", "/api/v1/gates", key.expose(), None)).await.into();
    assert_eq!((a.status, a.code()), (503, "service_unavailable"), "{}", a.body);
    let updates = updates.lock().unwrap();
    let month = format!("RL#Q#{}#", key.hash().as_str());
    let on_month: Vec<&Value> =
        updates.iter().filter(|u| u["Key"]["pk"]["S"].as_str().is_some_and(|pk| pk.starts_with(&month))).collect();
    assert_eq!(on_month.len(), 2, "counted, then given back: {updates:?}");
    assert_eq!(on_month[0]["ExpressionAttributeValues"][":one"]["N"], "1");
    // Month and minute, in one write: a request that failed is not in either.
    assert_eq!(
        on_month[1]["UpdateExpression"],
        "ADD #count :minus, #m :minus SET #ttl = if_not_exists(#ttl, :ttl), #w = :w"
    );
    assert_eq!(on_month[1]["ExpressionAttributeValues"][":minus"]["N"], "-1", "{:?}", on_month[1]);
    assert_eq!(on_month[1]["ExpressionAttributeNames"]["#m"], on_month[0]["ExpressionAttributeNames"]["#m"]);
}
