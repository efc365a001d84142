//! Signing keys that rotate themselves: the four rotation steps driven with the events Secrets
//! Manager sends (no local emulator runs rotation functions), a third-party verifier that
//! caches the JWKS for its max-age, stale instances, the emergency path, verify-only
//! functions without any Secrets Manager access; AWS's protocol (rotation enabled, the token's
//! version and stage), racing rotations, stray tokens, retention from the finish, a stuck
//! rotation shown and repaired.
//!
//! What the emulators do (probed with boto3 against both): a secret never rotated describes
//! `RotationEnabled: false` (ministack) or no `RotationEnabled` at all (moto: `false` to us).
//! `RotateSecret` with `RotationRules` and `RotateImmediately: false` turns it on in both, and
//! (no Lambda runs) both then promote a new version holding a copy of the current value —
//! harmless, so [`enable_rotation`] uses it. Real Secrets Manager's `RotateSecret` creates the
//! token's version labelled `AWSPENDING` *without a value* and then invokes `createSecret`:
//! ministack stores such a version (`PutSecretValue` without a value), moto refuses it ("You
//! must provide either SecretString or SecretBinary"). So [`begin`] stages the token as AWS
//! does on ministack, and on moto lets the operator's `createSecret` claim it (the function's
//! own `createSecret` then finds the set made, as a retried one does).

use functions::rotate_signing_key::RotationEvent;
use hatched::App;
use hatched::domain::signing_keys::{Caller, PUBLISH_BEFORE_SIGNING_SECS, RETAIN_AFTER_STOP_SECS, RotationMode};
use hatched::rotation::Step;
use hatched::secrets::{AWSCURRENT, AWSPENDING, Version};
use hatched_tests::TestApp;
use hatched_tests::faults::{Fault, FaultProxy, Hold};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};

use crate::tokens::{introspect, introspect_with, jwks, mint_embed, parts, setup};

const STEPS: [&str; 4] = ["create-secret", "set-secret", "test-secret", "finish-secret"];
/// How long a standby is published before a scheduled rotation promotes it.
const WAIT: i64 = PUBLISH_BEFORE_SIGNING_SECS;

async fn secrets_client() -> aws_sdk_secretsmanager::Client {
    aws_sdk_secretsmanager::Client::new(&hatched_tests::sdk_config().await)
}

/// Turns rotation on for `name` as a `RotationSchedule` does (see the module comment for what
/// the emulators do with it).
async fn enable_rotation_of(app: &App, name: &str) {
    let rules = aws_sdk_secretsmanager::types::RotationRulesType::builder().automatically_after_days(30).build();
    let before = app.secrets.get(name, Version::Stage(AWSCURRENT)).await.unwrap();
    secrets_client()
        .await
        .rotate_secret()
        .secret_id(name)
        .rotation_rules(rules)
        .rotate_immediately(false)
        .send()
        .await
        .expect("RotateSecret");
    assert!(app.secrets.describe(name).await.unwrap().rotation_enabled);
    assert_eq!(app.secrets.get(name, Version::Stage(AWSCURRENT)).await.unwrap(), before, "the same set signs");
}

async fn enable_rotation(t: &TestApp) {
    enable_rotation_of(&t.app, &secret(t)).await;
}

/// What `RotateSecret` does before it invokes `createSecret`: the token becomes a version of the
/// secret labelled `AWSPENDING`, without a value (ministack); where the emulator cannot hold a
/// version without a value (moto), the operator's `createSecret` claims the token instead.
async fn begin_of(app: &App, name: &str, token: &str) {
    let staged = secrets_client()
        .await
        .put_secret_value()
        .secret_id(name)
        .client_request_token(token)
        .version_stages(AWSPENDING)
        .send()
        .await;
    match staged {
        Ok(_) => assert_eq!(app.secrets.get(name, Version::Id(token, AWSPENDING)).await.unwrap(), None),
        Err(e) => {
            let e = e.into_service_error();
            assert!(e.is_invalid_request_exception(), "{e:?}");
            app.rotation
                .run_step(name, Step::CreateSecret, token, RotationMode::Scheduled, Caller::Operator)
                .await
                .unwrap();
        }
    }
}

async fn begin(t: &TestApp, token: &str) {
    begin_of(&t.app, &secret(t), token).await;
}

/// The sample event of `step` (events/rotate-signing-key/), for this test's secret and `token`.
fn event(t: &TestApp, step: &str, token: &str) -> RotationEvent {
    let path = format!("{}/../events/rotate-signing-key/{step}.json", env!("CARGO_MANIFEST_DIR"));
    let mut event: RotationEvent = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    event.secret_id = t.app.signer.secret_name().unwrap().to_owned();
    event.client_request_token = token.to_owned();
    event
}

async fn step(t: &TestApp, step: &str, token: &str) -> Result<String, functions::rotate_signing_key::RotationError> {
    functions::rotate_signing_key::handle(&t.app, event(t, step, token)).await
}

/// One whole rotation as Secrets Manager runs it.
async fn rotation(t: &TestApp, token: &str) {
    begin(t, token).await;
    for s in STEPS {
        step(t, s, token).await.unwrap_or_else(|e| panic!("{s}: {e}"));
    }
}

fn secret(t: &TestApp) -> String {
    t.app.signer.secret_name().unwrap().to_owned()
}

async fn current_version(t: &TestApp) -> String {
    let stages = t.app.secrets.stages(&secret(t)).await.unwrap();
    stages.into_iter().find(|(_, l)| l.iter().any(|l| l == AWSCURRENT)).map(|(v, _)| v).unwrap()
}

/// (kid, state) of the set in AWSCURRENT, as `hatchctl signing-key show` lists it.
async fn states(t: &TestApp) -> Vec<(String, String)> {
    let shown = t.ctl(&["signing-key", "show"]).await.unwrap();
    shown["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| (k["kid"].as_str().unwrap().to_owned(), k["state"].as_str().unwrap().to_owned()))
        .collect()
}

async fn kid_in(t: &TestApp, state: &str) -> String {
    states(t).await.into_iter().find(|(_, s)| s == state).map(|(k, _)| k).unwrap()
}

async fn jwks_kids(app: &App) -> Vec<String> {
    jwks(app).await.body["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap().to_owned()).collect()
}

fn kid(token: &str) -> String {
    parts(token).0["kid"].as_str().unwrap().to_owned()
}

async fn embed(t: &TestApp, app: &App, key: &str, ttl: i64) -> String {
    let body = json!({ "buddy_id": "b1", "user_id": "u1", "ttl_seconds": ttl });
    let a: hatched_tests::Answer = functions::create_embed_token::handle(
        app,
        hatched_tests::keyed("POST", crate::tokens::EMBEDS, key, Some(&body)),
    )
    .await
    .into();
    assert_eq!(a.status, 201, "{}", a.body);
    let _ = t;
    a.body["token"].as_str().unwrap().to_owned()
}

/// Another instance (own caches) whose stopped clock reads what the test's clock reads.
async fn instance(t: &TestApp) -> App {
    let other = t.sibling().await;
    other.clock.freeze();
    other.clock.advance(t.app.clock.now().secs() - other.clock.now().secs());
    other
}

fn advance(apps: &[&App], secs: i64) {
    for app in apps {
        app.clock.advance(secs);
    }
}

/// A verifier as a customer's backend or a standard JOSE library runs one: it fetches the
/// JWKS, keeps it for the `max-age` the answer's `Cache-Control` gave, and refreshes only
/// when that expired — never on an unknown kid (the strictest cache). Independent of the
/// project's verification code: `jsonwebtoken`'s JWK parsing and EdDSA check.
struct ThirdPartyVerifier {
    issuer: String,
    cached: Option<(JwkSet, i64)>,
    fetches: usize,
}

impl ThirdPartyVerifier {
    async fn jwks(&mut self, jwks_app: &App, now: i64) -> &JwkSet {
        if self.cached.as_ref().is_none_or(|(_, until)| now >= *until) {
            let a = jwks(jwks_app).await;
            assert_eq!(a.status, 200);
            let control = a.header("cache-control").unwrap();
            let max_age: i64 =
                control.split(',').find_map(|p| p.trim().strip_prefix("max-age=")).unwrap().parse().unwrap();
            self.cached = Some((serde_json::from_value(a.body).unwrap(), now + max_age));
            self.fetches += 1;
        }
        &self.cached.as_ref().unwrap().0
    }

    async fn verify(&mut self, jwks_app: &App, token: &str, now: i64) -> Result<Value, String> {
        let issuer = self.issuer.clone();
        let header = jsonwebtoken::decode_header(token).map_err(|e| e.to_string())?;
        let kid = header.kid.ok_or("no kid")?;
        let set = self.jwks(jwks_app, now).await;
        let jwk = set.find(&kid).ok_or_else(|| format!("unknown kid {kid}"))?;
        let key = DecodingKey::from_jwk(jwk).map_err(|e| e.to_string())?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.validate_exp = false;
        validation.set_audience(&["hatched:embed"]);
        validation.set_issuer(&[issuer]);
        let claims = jsonwebtoken::decode::<Value>(token, &key, &validation).map_err(|e| e.to_string())?.claims;
        if now > claims["exp"].as_i64().unwrap() {
            return Err("expired".into());
        }
        Ok(claims)
    }
}

#[tokio::test]
async fn a_cache_honouring_third_party_verifier_never_meets_an_unknown_kid_across_rotations() {
    let (t, key) = setup().await;
    // A second minting instance whose key cache lags (it signs with the old key for up to
    // five minutes after a rotation), and a jwks instance of its own.
    let minter = instance(&t).await;
    let jwks_instance = instance(&t).await;
    let apps = [&t.app, &minter, &jwks_instance];
    let mut verifier = ThirdPartyVerifier { issuer: t.app.issuer.clone(), cached: None, fetches: 0 };
    let mut tokens: Vec<(String, i64)> = Vec::new();
    let (mut unknown_kid, mut rotations) = (Vec::new(), 0);
    let mut kids = std::collections::BTreeSet::new();
    // One simulated hour, a minute per step; a scheduled rotation every 15 minutes.
    for minute in 0..60 {
        if minute % 15 == 14 {
            t.ctl(&["signing-key", "rotate"]).await.expect("the standby is old enough");
            rotations += 1;
        }
        let now = t.app.clock.now().secs();
        for app in [&t.app, &minter] {
            let token = embed(&t, app, &key, 300).await;
            kids.insert(kid(&token));
            tokens.push((token, now + 300));
        }
        for (token, exp) in &tokens {
            match verifier.verify(&jwks_instance, token, now).await {
                Ok(_) => assert!(now <= *exp),
                Err(e) if e.starts_with("unknown kid") => unknown_kid.push((minute, e)),
                Err(e) => assert!(now > *exp, "minute {minute}: a live token failed: {e}"),
            }
        }
        advance(&apps, 60);
    }
    assert_eq!(rotations, 4);
    assert!(kids.len() >= 4, "tokens were signed by {} keys", kids.len());
    assert!(verifier.fetches >= 10, "the verifier refreshed on its max-age ({} fetches)", verifier.fetches);
    assert!(unknown_kid.is_empty(), "unknown-kid failures: {unknown_kid:?}");
}

#[tokio::test]
async fn a_stale_introspection_instance_accepts_fresh_tokens_right_after_a_rotation() {
    let (t, key) = setup().await;
    let stale = instance(&t).await;
    advance(&[&t.app, &stale], WAIT - 200);
    let before = embed(&t, &t.app, &key, 300).await;
    // The stale instance reads the published keys now (the standby is still a standby) …
    assert_eq!(introspect_with(&stale, &before).await["active"], true);
    let standby = kid_in(&t, "standby").await;
    advance(&[&t.app, &stale], 200);
    t.ctl(&["signing-key", "rotate"]).await.unwrap();
    // … and 200 s later, well inside its cache time, meets the promoted key's tokens.
    let fresh = embed(&t, &t.app, &key, 300).await;
    assert_eq!(kid(&fresh), standby);
    assert_eq!(introspect_with(&stale, &fresh).await["active"], true);
    assert_eq!(introspect_with(&stale, &before).await["active"], true);
}

#[tokio::test]
async fn after_two_rotations_within_a_day_the_first_keys_tokens_still_introspect_active() {
    let (t, key) = setup().await;
    let first = embed(&t, &t.app, &key, 86_400).await;
    let first_kid = kid(&first);
    t.app.clock.advance(WAIT);
    t.ctl(&["signing-key", "rotate"]).await.unwrap();
    t.app.clock.advance(WAIT);
    t.ctl(&["signing-key", "rotate"]).await.unwrap();
    assert_eq!(states(&t).await.iter().filter(|(_, s)| s == "previous").count(), 2);
    let fresh = instance(&t).await;
    assert_eq!(introspect_with(&fresh, &first).await["active"], true);
    assert!(jwks_kids(&t.app).await.contains(&first_kid));
    // Almost a day later, still; then it expires, and the next rotation after its key's
    // retention drops the key.
    t.app.clock.advance(86_400 - 2 * WAIT);
    assert_eq!(introspect(&t, &first).await["active"], true);
    // It stopped signing at +WAIT: it leaves at +WAIT + 24 h + 1 h.
    t.app.clock.advance(WAIT + RETAIN_AFTER_STOP_SECS - 86_400);
    t.ctl(&["signing-key", "rotate"]).await.unwrap();
    assert!(!jwks_kids(&t.app).await.contains(&first_kid), "retired a day and leeway after it stopped signing");
}

#[tokio::test]
async fn each_rotation_step_is_idempotent_when_retried() {
    let (t, _) = setup().await;
    enable_rotation(&t).await;
    t.app.clock.advance(WAIT);
    let (old_current, standby) = (kid_in(&t, "current").await, kid_in(&t, "standby").await);
    let token = "0b3e4a53-1a9f-4c34-9d7e-000000000001";
    begin(&t, token).await;
    step(&t, "create-secret", token).await.unwrap();
    let pending = t.app.secrets.get(&secret(&t), Version::Id(token, AWSPENDING)).await.unwrap().unwrap();
    for s in STEPS {
        step(&t, s, token).await.unwrap_or_else(|e| panic!("{s}: {e}"));
        step(&t, s, token).await.unwrap_or_else(|e| panic!("{s} retried: {e}"));
        if s == "create-secret" {
            let again = t.app.secrets.get(&secret(&t), Version::Id(token, AWSPENDING)).await.unwrap().unwrap();
            assert_eq!(again, pending, "a retried createSecret keeps the pending set");
        }
    }
    assert_eq!(current_version(&t).await, token);
    assert_eq!(kid_in(&t, "current").await, standby);
    assert_eq!(kid_in(&t, "previous").await, old_current);
    // Retrying any step after the rotation finished changes nothing.
    for s in STEPS {
        step(&t, s, token).await.unwrap_or_else(|e| panic!("{s} after finish: {e}"));
    }
    assert_eq!(kid_in(&t, "current").await, standby);
    assert_eq!(states(&t).await.len(), 3);
}

#[tokio::test]
async fn an_interrupted_rotation_resumes_or_is_shown_and_repaired_before_the_next_run() {
    let (t, key) = setup().await;
    enable_rotation(&t).await;
    t.app.clock.advance(WAIT);
    let standby = kid_in(&t, "standby").await;
    // Interrupted after setSecret; the same rotation resumes with its own token.
    let token = "0b3e4a53-1a9f-4c34-9d7e-000000000002";
    begin(&t, token).await;
    step(&t, "create-secret", token).await.unwrap();
    step(&t, "set-secret", token).await.unwrap();
    assert_eq!(introspect(&t, &embed(&t, &t.app, &key, 300).await).await["active"], true, "still signs meanwhile");
    step(&t, "test-secret", token).await.unwrap();
    step(&t, "finish-secret", token).await.unwrap();
    assert_eq!(kid_in(&t, "current").await, standby);

    // Interrupted after createSecret and never retried: it holds AWSPENDING, so Secrets Manager
    // starts no other rotation and neither does an operator (no emergency).
    t.app.clock.advance(WAIT);
    let next_standby = kid_in(&t, "standby").await;
    let abandoned = "0b3e4a53-1a9f-4c34-9d7e-000000000003";
    begin(&t, abandoned).await;
    step(&t, "create-secret", abandoned).await.unwrap();
    let err = t.ctl(&["signing-key", "rotate"]).await.unwrap_err().to_string();
    assert!(err.contains(abandoned) && err.contains("signing-key repair"), "{err}");
    // `show` reports it; `repair` discards it (naming it), audited.
    let shown = t.ctl(&["signing-key", "show"]).await.unwrap();
    assert_eq!(shown["pending"]["version"], abandoned, "{shown}");
    assert_eq!(shown["pending"]["resumable"], true);
    let wrong = t.ctl(&["signing-key", "repair", "--version", token]).await.unwrap_err().to_string();
    assert!(wrong.contains("nothing changed"), "{wrong}");
    let repaired = t.ctl(&["signing-key", "repair", "--version", abandoned]).await.unwrap();
    assert_eq!(repaired["discarded"], abandoned);
    let shown = t.ctl(&["signing-key", "show"]).await.unwrap();
    assert!(shown["pending"].is_null(), "{shown}");
    let event = &shown["audit"][0];
    assert_eq!(
        (&event["action"], &event["actor"], &event["id"]),
        (&json!("signing_key.repaired"), &json!("operator"), &repaired["event_id"])
    );
    assert_eq!(event["changes"]["AWSPENDING"], json!({ "old": abandoned, "new": null }));
    let rerun = "0b3e4a53-1a9f-4c34-9d7e-000000000004";
    rotation(&t, rerun).await;
    assert_eq!(current_version(&t).await, rerun);
    assert_eq!(kid_in(&t, "current").await, next_standby, "exactly one promotion");
    let stages = t.app.secrets.stages(&secret(&t)).await.unwrap();
    assert!(!stages.get(abandoned).is_some_and(|l| l.iter().any(|l| l == AWSPENDING)), "{stages:?}");
    let minted = embed(&t, &t.app, &key, 300).await;
    assert_eq!(kid(&minted), next_standby);
    assert_eq!(introspect(&t, &minted).await["active"], true);
}

#[tokio::test]
async fn a_failed_test_secret_never_promotes() {
    let (t, _) = setup().await;
    enable_rotation(&t).await;
    t.app.clock.advance(WAIT);
    let (current, version) = (kid_in(&t, "current").await, current_version(&t).await);
    // setSecret skipped: the pending key is not published, so testSecret fails.
    let token = "0b3e4a53-1a9f-4c34-9d7e-000000000005";
    begin(&t, token).await;
    step(&t, "create-secret", token).await.unwrap();
    assert!(step(&t, "test-secret", token).await.is_err());
    assert_eq!((current_version(&t).await, kid_in(&t, "current").await), (version.clone(), current.clone()));

    // A pending set whose seed does not derive its kid fails testSecret, and finishSecret
    // refuses it too.
    let forged_token = "0b3e4a53-1a9f-4c34-9d7e-000000000006";
    let mut forged: Value =
        serde_json::from_str(&t.app.secrets.get(&secret(&t), Version::Id(token, AWSPENDING)).await.unwrap().unwrap())
            .unwrap();
    let keys = forged["keys"].as_array_mut().unwrap();
    let seed = keys[1]["seed"].clone();
    keys[0]["seed"] = seed;
    t.app.secrets.put_pending(&secret(&t), forged_token, &forged.to_string()).await.unwrap();
    assert!(step(&t, "test-secret", forged_token).await.is_err());
    assert!(step(&t, "finish-secret", forged_token).await.is_err());
    assert_eq!((current_version(&t).await, kid_in(&t, "current").await), (version, current));
}

#[tokio::test]
async fn the_operator_rotation_refuses_a_young_standby_unless_forced() {
    let (t, _) = setup().await;
    enable_rotation(&t).await;
    let err = t.ctl(&["signing-key", "rotate"]).await.unwrap_err().to_string();
    assert!(err.contains(&format!("less than {} minutes", WAIT / 60)), "{err}");
    let standby = kid_in(&t, "standby").await;
    let forced = t.ctl(&["signing-key", "rotate", "--force"]).await.unwrap();
    assert_eq!(forced["kid"], standby.as_str());
    // A scheduled run with a young standby waits: no promotion, the rotation still succeeds.
    rotation(&t, "0b3e4a53-1a9f-4c34-9d7e-000000000007").await;
    assert_eq!(kid_in(&t, "current").await, standby);
    let shown = t.ctl(&["signing-key", "show"]).await.unwrap().to_string();
    assert!(!shown.contains("seed"), "show never prints private material");
}

#[tokio::test]
async fn the_emergency_rotation_retires_the_current_key_at_once() {
    let (t, key) = setup().await;
    let leaked = embed(&t, &t.app, &key, 3_600).await;
    let warm = instance(&t).await;
    assert_eq!(introspect_with(&warm, &leaked).await["active"], true);
    let standby = kid_in(&t, "standby").await;
    let out = t.ctl(&["signing-key", "rotate", "--emergency"]).await.unwrap();
    assert_eq!(out["kid"], standby.as_str());
    assert!(!jwks_kids(&t.app).await.contains(&kid(&leaked)));
    assert_eq!(introspect(&t, &leaked).await["active"], false);
    assert_eq!(introspect_with(&instance(&t).await, &leaked).await["active"], false);
    // The young standby signs at once; even an instance holding the old keys accepts its
    // tokens (it re-reads the keys for a standby that signed early).
    let fresh = embed(&t, &t.app, &key, 300).await;
    assert_eq!(kid(&fresh), standby);
    warm.clock.advance(31);
    assert_eq!(introspect_with(&warm, &fresh).await["active"], true);
}

#[tokio::test]
async fn jwks_and_introspection_work_with_no_secrets_manager_access_at_all() {
    let (t, key) = setup().await;
    let config = hatched_tests::sdk_config().await;
    // No secret configured, and a Secrets Manager endpoint that refuses every connection.
    let secrets = aws_sdk_secretsmanager::config::Builder::from(&config).endpoint_url("http://127.0.0.1:9").build();
    let settings = hatched::app::Settings {
        table: t.app.store.table().to_owned(),
        signing_secret: None,
        data_key_secret: None,
        issuer: t.app.issuer.clone(),
        portal_base_url: None,
    };
    let verify_only = App::with_clients(
        aws_sdk_dynamodb::Client::new(&config),
        aws_sdk_secretsmanager::Client::from_conf(secrets),
        settings,
    );
    let token = embed(&t, &t.app, &key, 300).await;
    let keys = jwks(&verify_only).await;
    assert_eq!(keys.status, 200, "{}", keys.body);
    assert_eq!(keys.body["keys"].as_array().unwrap().len(), 2, "current and standby");
    assert_eq!(introspect_with(&verify_only, &token).await["active"], true);
    // And their policies (IAM lives in template.yaml) grant no Secrets Manager action at all.
    let template = hatched_tests::template::Template::load();
    for function in [&functions::jwks::ENDPOINT, &functions::introspect_token::ENDPOINT] {
        let resource = template.function(function.function).expect("in template.yaml");
        let granted = template.actions(&resource);
        assert!(
            !granted.is_empty() && granted.iter().all(|g| !g.starts_with("secretsmanager:")),
            "{function:?}: {granted:?}"
        );
    }
}

#[tokio::test]
async fn a_minting_instance_fetches_the_secret_once() {
    let (t, key) = setup().await;
    let config = hatched_tests::sdk_config().await;
    let log = hatched_tests::CallLog::default();
    let secrets = aws_sdk_secretsmanager::config::Builder::from(&config).interceptor(log.clone()).build();
    let settings = hatched::app::Settings {
        table: t.app.store.table().to_owned(),
        signing_secret: t.app.signer.secret_name().map(str::to_owned),
        data_key_secret: None,
        issuer: t.app.issuer.clone(),
        portal_base_url: None,
    };
    let app = App::with_clients(
        aws_sdk_dynamodb::Client::new(&config),
        aws_sdk_secretsmanager::Client::from_conf(secrets),
        settings,
    );
    app.signer.preload().await;
    for _ in 0..3 {
        mint_embed_with(&app, &key).await;
    }
    assert_eq!(log.take(), ["GetSecretValue"], "one secret version per cold start");
}

async fn mint_embed_with(app: &App, key: &str) {
    let body = json!({ "buddy_id": "b1", "user_id": "u1" });
    let a: hatched_tests::Answer = functions::create_embed_token::handle(
        app,
        hatched_tests::keyed("POST", crate::tokens::EMBEDS, key, Some(&body)),
    )
    .await
    .into();
    assert_eq!(a.status, 201, "{}", a.body);
    let _ = mint_embed;
}

#[tokio::test]
async fn a_secret_of_the_earlier_format_is_migrated_by_the_first_rotation() {
    let (t, key) = setup().await;
    // A secret as CloudFormation generates it: any string, its SHA-256 the one key's seed.
    let name = format!("{}-legacy", secret(&t));
    let config = hatched_tests::sdk_config().await;
    let legacy = App::with_clients(
        aws_sdk_dynamodb::Client::new(&config),
        aws_sdk_secretsmanager::Client::new(&config),
        hatched::app::Settings {
            table: t.app.store.table().to_owned(),
            signing_secret: Some(name.clone()),
            data_key_secret: None,
            issuer: t.app.issuer.clone(),
            portal_base_url: None,
        },
    );
    assert!(legacy.secrets.create(&name, "AbCdEfGh0123456789legacy").await.unwrap());
    let legacy_kid = hatched::signing::SigningKey::from_secret("AbCdEfGh0123456789legacy").unwrap().kid().to_owned();
    let before = embed(&t, &legacy, &key, 300).await;
    assert_eq!(kid(&before), legacy_kid, "minting functions read the earlier format");
    let token = "0b3e4a53-1a9f-4c34-9d7e-000000000008";
    enable_rotation_of(&legacy, &name).await;
    begin_of(&legacy, &name, token).await;
    for s in STEPS {
        let mut e = event(&t, s, token);
        e.secret_id = name.clone();
        functions::rotate_signing_key::handle(&legacy, e).await.unwrap_or_else(|e| panic!("{s}: {e}"));
    }
    let set: Value =
        serde_json::from_str(&legacy.secrets.get(&name, Version::Stage(AWSCURRENT)).await.unwrap().unwrap()).unwrap();
    let states: Vec<(&str, &str)> = set["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| (k["kid"].as_str().unwrap(), k["state"].as_str().unwrap()))
        .collect();
    assert_eq!(states.len(), 2);
    assert_eq!(states[0], (legacy_kid.as_str(), "current"), "the same key keeps signing");
    assert_eq!(states[1].1, "standby");
    assert_eq!(introspect_with(&instance(&t).await, &before).await["active"], true);
}

#[tokio::test]
async fn hostile_rotation_events_are_errors_and_change_nothing() {
    let (t, _) = setup().await;
    enable_rotation(&t).await;
    let version = current_version(&t).await;
    let token = "0b3e4a53-1a9f-4c34-9d7e-000000000009";
    for (name, step_name, tok) in [
        ("unknown step", "rotate", token),
        ("empty step", "", token),
        ("step in another case", "CreateSecret", token),
        ("empty token", "createSecret", ""),
    ] {
        let mut e = event(&t, "create-secret", tok);
        e.step = step_name.to_owned();
        assert!(functions::rotate_signing_key::handle(&t.app, e).await.is_err(), "{name}");
    }
    let mut other = event(&t, "create-secret", token);
    other.secret_id = "arn:aws:secretsmanager:us-east-1:123456789012:secret:someone-else-AbCdEf".into();
    assert!(matches!(
        functions::rotate_signing_key::handle(&t.app, other).await,
        Err(functions::rotate_signing_key::RotationError::OtherSecret)
    ));
    for s in ["set-secret", "test-secret", "finish-secret"] {
        assert!(step(&t, s, token).await.is_err(), "{s} without a pending version");
    }
    assert_eq!(current_version(&t).await, version);
}

/// The labels of every version, sorted (to compare before and after).
async fn labels(t: &TestApp) -> Vec<(String, Vec<String>)> {
    let mut all: Vec<(String, Vec<String>)> = t
        .app
        .secrets
        .stages(&secret(t))
        .await
        .unwrap()
        .into_iter()
        .map(|(v, mut l)| {
            l.sort();
            (v, l)
        })
        .collect();
    all.sort();
    all
}

#[tokio::test]
async fn secrets_managers_runs_need_rotation_enabled_and_operators_do_not() {
    let (t, _) = setup().await;
    t.app.clock.advance(WAIT);
    let before = labels(&t).await;
    let token = "0b3e4a53-1a9f-4c34-9d7e-000000000010";
    for s in STEPS {
        let err = step(&t, s, token).await.unwrap_err().to_string();
        assert!(err.contains("rotation is not enabled"), "{s}: {err}");
    }
    assert_eq!(labels(&t).await, before, "nothing changed");
    // The operator path needs no schedule (emergencies, local development).
    let standby = kid_in(&t, "standby").await;
    assert_eq!(t.ctl(&["signing-key", "rotate"]).await.unwrap()["kid"], standby.as_str());
}

#[tokio::test]
async fn a_stray_create_secret_leaves_the_rotation_in_progress_alone() {
    let (t, key) = setup().await;
    enable_rotation(&t).await;
    t.app.clock.advance(WAIT);
    let standby = kid_in(&t, "standby").await;
    let real = "0b3e4a53-1a9f-4c34-9d7e-000000000011";
    begin(&t, real).await;
    step(&t, "create-secret", real).await.unwrap();
    let before = labels(&t).await;
    // A createSecret (or any step) with a token that is no version of the secret, or a version
    // that is neither pending nor current, is refused before it touches anything.
    let stray = "0b3e4a53-1a9f-4c34-9d7e-0000000000ff";
    for s in STEPS {
        let err = step(&t, s, stray).await.unwrap_err().to_string();
        assert!(err.contains("is not a version"), "{s}: {err}");
    }
    let previous = before.iter().find(|(_, l)| l.iter().any(|l| l == "AWSPREVIOUS")).map(|(v, _)| v.clone());
    if let Some(previous) = previous {
        let err = step(&t, "create-secret", &previous).await.unwrap_err().to_string();
        assert!(err.contains("neither AWSCURRENT nor AWSPENDING"), "{err}");
    }
    assert_eq!(labels(&t).await, before, "the rotation in progress keeps AWSPENDING");
    for s in &STEPS[1..] {
        step(&t, s, real).await.unwrap_or_else(|e| panic!("{s}: {e}"));
    }
    assert_eq!(current_version(&t).await, real);
    assert_eq!(kid(&embed(&t, &t.app, &key, 300).await), standby);
}

#[tokio::test]
async fn a_slower_scheduled_rotation_never_brings_back_the_key_an_emergency_retired() {
    let (t, key) = setup().await;
    enable_rotation(&t).await;
    t.app.clock.advance(WAIT);
    let leaked = kid_in(&t, "current").await;
    let leaked_token = embed(&t, &t.app, &key, 3_600).await;
    // A scheduled rotation computes its set (the leaked key as previous) and is slow …
    let slow = "0b3e4a53-1a9f-4c34-9d7e-000000000012";
    begin(&t, slow).await;
    step(&t, "create-secret", slow).await.unwrap();
    // … while an operator's emergency rotation retires the leaked key: it takes AWSPENDING.
    let emergency = t.ctl(&["signing-key", "rotate", "--emergency"]).await.unwrap();
    let (winner, winner_kid) = (current_version(&t).await, emergency["kid"].as_str().unwrap().to_owned());
    assert!(!jwks_kids(&t.app).await.contains(&leaked));
    let settled = labels(&t).await;
    // The slow rotation's steps now stop: its token is no longer pending.
    // (A version left with no label: Secrets Manager may list it with none, or not at all.)
    for s in &STEPS[1..] {
        let err = step(&t, s, slow).await.unwrap_err().to_string();
        assert!(err.contains("neither AWSCURRENT nor AWSPENDING") || err.contains("is not a version"), "{s}: {err}");
    }
    // Had it passed that check just before the emergency took the label, the version it was
    // built from stops it: AWSCURRENT moved on.
    t.app.secrets.move_stage(&secret(&t), AWSPENDING, Some(slow), None).await.unwrap();
    for s in &STEPS[1..] {
        let err = step(&t, s, slow).await.unwrap_err().to_string();
        assert!(err.contains("another rotation finished meanwhile"), "{s}: {err}");
    }
    assert_eq!((current_version(&t).await, kid_in(&t, "current").await), (winner, winner_kid.clone()));
    assert!(!jwks_kids(&t.app).await.contains(&leaked), "the leaked key stays out of the JWKS");
    assert!(states(&t).await.iter().all(|(k, _)| *k != leaked));
    assert_eq!(introspect_with(&instance(&t).await, &leaked_token).await["active"], false);
    assert_eq!(kid(&embed(&t, &t.app, &key, 300).await), winner_kid);
    // The slow rotation is reported as one that can never finish, and repaired.
    let shown = t.ctl(&["signing-key", "show"]).await.unwrap();
    assert_eq!((&shown["pending"]["version"], &shown["pending"]["resumable"]), (&json!(slow), &json!(false)));
    t.ctl(&["signing-key", "repair", "--version", slow]).await.unwrap();
    assert_eq!(labels(&t).await, settled);
}

/// The same race one step later: the slow rotation has passed every check of its setSecret
/// and its write of the published keys is in flight (held by a proxy) while the emergency runs
/// to the end. The write lands last; the look it takes after writing sees it was overtaken,
/// publishes the winner's keys again and stops. (The sequential order above cannot show this.)
#[tokio::test]
async fn set_secret_racing_an_emergency_cannot_republish_the_retired_kid() {
    let (t, key) = setup().await;
    enable_rotation(&t).await;
    t.app.clock.advance(WAIT);
    let leaked = kid_in(&t, "current").await;
    let leaked_token = embed(&t, &t.app, &key, 3_600).await;
    let slow = "0b3e4a53-1a9f-4c34-9d7e-000000000015";
    begin(&t, slow).await;
    step(&t, "create-secret", slow).await.unwrap();
    let proxy = FaultProxy::start(TestApp::upstream()).await;
    let hold = Hold::default();
    proxy.set(Fault::HoldFirst("PutItem", hold.clone())).await;
    let slow_app = t.patiently_behind(&proxy).await;
    let slow_step = event(&t, "set-secret", slow);
    let slow_set = tokio::spawn(async move { functions::rotate_signing_key::handle(&slow_app, slow_step).await });
    hold.arrived().await;
    let emergency = t.ctl(&["signing-key", "rotate", "--emergency"]).await.unwrap();
    let winner_kid = emergency["kid"].as_str().unwrap().to_owned();
    let published_kids = |app: App| async move {
        let published = app.store.published_keys().await.unwrap().unwrap();
        published.keys.iter().map(|k| k.kid.clone()).collect::<Vec<_>>()
    };
    assert!(!published_kids(t.app.clone()).await.contains(&leaked));
    hold.release();
    let err = slow_set.await.unwrap().unwrap_err().to_string();
    assert!(err.contains("overtaken while it published"), "{err}");
    let kids = published_kids(t.app.clone()).await;
    assert!(!kids.contains(&leaked), "the retired key is not published again: {kids:?}");
    assert!(kids.contains(&winner_kid), "{kids:?}");
    assert!(!jwks_kids(&instance(&t).await).await.contains(&leaked));
    assert_eq!(introspect_with(&instance(&t).await, &leaked_token).await["active"], false);
    assert_eq!(kid(&embed(&t, &t.app, &key, 300).await), winner_kid);
}

#[tokio::test]
async fn retention_counts_from_the_finish_of_a_resumed_rotation() {
    let (t, key) = setup().await;
    enable_rotation(&t).await;
    t.app.clock.advance(WAIT);
    let old = kid_in(&t, "current").await;
    let token = "0b3e4a53-1a9f-4c34-9d7e-000000000013";
    begin(&t, token).await;
    step(&t, "create-secret", token).await.unwrap();
    let created = t.app.clock.now().secs();
    // Interrupted for two hours: the old key signs all along, a day-long token at the end.
    t.app.clock.advance(7_200);
    let last = embed(&t, &t.app, &key, 86_400).await;
    assert_eq!(kid(&last), old);
    for s in &STEPS[1..] {
        step(&t, s, token).await.unwrap_or_else(|e| panic!("{s}: {e}"));
    }
    let finished = t.app.clock.now().secs();
    let shown = states_full(&t).await;
    let stopped = shown.iter().find(|k| k["kid"] == old.as_str()).unwrap()["stopped_at"].clone();
    assert_eq!(stopped, hatched::domain::UnixTime::from_secs(finished).rfc3339().as_str());
    // A rotation when retention counted from createSecret would have ended keeps the key: its
    // last token is still live.
    t.app.clock.advance(created + RETAIN_AFTER_STOP_SECS - finished);
    t.ctl(&["signing-key", "rotate"]).await.unwrap();
    assert!(jwks_kids(&t.app).await.contains(&old));
    assert_eq!(introspect_with(&instance(&t).await, &last).await["active"], true);
    // Counted from the finish, it leaves.
    t.app.clock.advance(finished - created);
    t.ctl(&["signing-key", "rotate", "--force"]).await.unwrap();
    assert!(!jwks_kids(&t.app).await.contains(&old));
}

/// Every key of `show` as JSON.
async fn states_full(t: &TestApp) -> Vec<Value> {
    t.ctl(&["signing-key", "show"]).await.unwrap()["keys"].as_array().unwrap().clone()
}

#[tokio::test]
async fn the_publication_wait_outlasts_the_served_max_age_and_our_caches_by_a_margin() {
    let (t, _) = setup().await;
    let a = jwks(&t.app).await;
    let control = a.header("cache-control").unwrap();
    let max_age: i64 = control.split(',').find_map(|p| p.trim().strip_prefix("max-age=")).unwrap().parse().unwrap();
    let margin = hatched::domain::signing_keys::PUBLICATION_MARGIN_SECS;
    assert!(margin > 0);
    assert!(WAIT >= max_age + hatched::signing::REFRESH_SECS + margin, "{WAIT} < {max_age} + caches + {margin}");
}

/// A rotation that began and never finished is reported as `stuck_pending` once it has held
/// AWSPENDING for over a day (its own alarm), not before, and not once repaired.
#[tokio::test]
async fn an_awspending_older_than_a_day_is_reported_stuck() {
    let (t, _) = setup().await;
    enable_rotation(&t).await;
    t.app.clock.advance(WAIT);
    let abandoned = "0b3e4a53-1a9f-4c34-9d7e-00000000000a";
    begin(&t, abandoned).await;
    step(&t, "create-secret", abandoned).await.unwrap();
    let id = secret(&t);
    assert_eq!(t.app.rotation.stuck_pending(&id).await.unwrap(), None, "young: a rotation in progress");
    t.app.clock.advance(hatched::rotation::STUCK_PENDING_SECS + 60);
    assert_eq!(t.app.rotation.stuck_pending(&id).await.unwrap().as_deref(), Some(abandoned));
    t.ctl(&["signing-key", "repair", "--version", abandoned]).await.unwrap();
    assert_eq!(t.app.rotation.stuck_pending(&id).await.unwrap(), None, "repaired");
}

/// A rotation overtaken in setSecret republishes its winner's keys; that write can land after a
/// third rotation's setSecret and testSecret. That third rotation's finishSecret then finds its
/// key no longer published as current and promotes nothing (promoting it would fail every token
/// it signed). Modelled by putting the earlier publication back between test and finish.
#[tokio::test]
async fn set_secret_recheck_does_not_overwrite_a_later_rotations_publication() {
    let (t, _) = setup().await;
    enable_rotation(&t).await;
    t.app.clock.advance(WAIT);
    let current = kid_in(&t, "current").await;
    let before = t.app.store.published_keys().await.unwrap().unwrap();
    let token = "0b3e4a53-1a9f-4c34-9d7e-00000000000c";
    begin(&t, token).await;
    for s in ["create-secret", "set-secret", "test-secret"] {
        step(&t, s, token).await.unwrap_or_else(|e| panic!("{s}: {e}"));
    }
    // The overtaken rotation's late write of the keys it saw as the winner's.
    t.app.store.publish_keys(&before).await.unwrap();
    let refused = step(&t, "finish-secret", token).await.unwrap_err().to_string();
    assert!(refused.contains("no longer published as current"), "{refused}");
    assert_eq!(kid_in(&t, "current").await, current, "nothing was promoted");
    // Once its keys are published again (its setSecret, retried), the same rotation finishes.
    step(&t, "set-secret", token).await.unwrap();
    step(&t, "test-secret", token).await.unwrap();
    step(&t, "finish-secret", token).await.unwrap();
    assert_ne!(kid_in(&t, "current").await, current);
}
