//! Criterion benchmarks of the hot paths, with the crypto floor (SHA-256 of a key +
//! Ed25519 signature of a token-sized message) measured in the same run for ratios.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use hatched::domain::token::{SessionClaims, Subject, WidgetScope};
use hatched::domain::{
    ApiKey, BuddyId, CustomerId, Environment, KeyKind, KeyRecord, KeyType, Scope, SessionId, Tier, TokenKey, UnixTime,
    UserId, grant_scopes,
};
use hatched::signing::{PublicKeys, SigningKey};

fn record(key: &ApiKey) -> KeyRecord {
    KeyRecord {
        key_hash: key.hash(),
        prefix: key.prefix(),
        key_type: KeyType::Publishable,
        environment: Environment::Live,
        customer_id: CustomerId::parse("acme").unwrap(),
        primary_token: TokenKey::parse("coins").unwrap(),
        tier: Tier::Pro,
        scopes: grant_scopes(KeyType::Publishable, None).unwrap(),
        roles: Default::default(),
        role_scopes: Default::default(),
        allowed_origins: vec!["https://app.example.com".into(), "https://*.example.com".into()],
        hmac_secret: None,
        require_signed_user_id: false,
        label: None,
        owner: None,
        created_at: UnixTime::from_secs(1),
        last_used_at: None,
        revoked_at: None,
        expires_at: Some(UnixTime::from_secs(4_000_000_000)),
        monthly_quota: None,
        version: 0,
    }
}

fn claims() -> SessionClaims {
    let who = Subject {
        customer: CustomerId::parse("acme").unwrap(),
        env: Environment::Live,
        buddy: BuddyId::parse("buddy_1").unwrap(),
        user: UserId::parse("user_1").unwrap(),
    };
    SessionClaims::new(
        "hatched-auth-edge",
        &who,
        &SessionId::generate(),
        &[WidgetScope::Read, WidgetScope::ItemsEquip],
        UnixTime::now(),
        3600,
    )
}

fn benches(c: &mut Criterion) {
    let key = ApiKey::generate(KeyKind::SecretLive);
    let text = key.expose().to_owned();
    let current = SigningKey::from_secret("bench").unwrap();
    let keys = PublicKeys::of(&[&current]);
    let claims = claims();
    let token = current.sign(&claims).unwrap();
    let rec = record(&ApiKey::generate(KeyKind::Publishable));

    // The floor: what any implementation must pay per request.
    let pair = aws_lc_rs::signature::Ed25519KeyPair::from_seed_unchecked(&[7u8; 32]).unwrap();
    let message = token.rsplit_once('.').unwrap().0.as_bytes().to_vec();
    c.bench_function("floor/sha256_key", |b| {
        b.iter(|| <sha2::Sha256 as sha2::Digest>::digest(black_box(text.as_bytes())))
    });
    c.bench_function("floor/ed25519_sign", |b| b.iter(|| pair.sign(black_box(&message))));

    c.bench_function("key/parse_and_hash", |b| b.iter(|| ApiKey::parse(black_box(&text)).unwrap().hash()));
    c.bench_function("key/validate_decision", |b| {
        let now = UnixTime::now();
        b.iter(|| {
            black_box(&rec).usable_at(now).is_ok()
                && rec.origin_allowed(Some(black_box("https://shop.example.com")))
                && rec.has_scope(Scope::EmbedTokensCreate)
        })
    });
    c.bench_function("jwt/sign_session", |b| b.iter(|| current.sign(black_box(&claims)).unwrap()));
    c.bench_function("jwt/verify_session", |b| b.iter(|| keys.verify(black_box(&token), "hatched-auth-edge").unwrap()));
    let event: hatched::lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequest = serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../events/create-widget-session/valid.json"))
            .unwrap(),
    )
    .unwrap();
    c.bench_function("request/event_to_request_and_json_body", |b| {
        b.iter(|| {
            let req = hatched::lambda::into_request(black_box(event.clone()));
            hatched::http::json_body::<serde_json::Value>(&req).unwrap()
        })
    });
}

criterion_group!(hot_paths, benches);
criterion_main!(hot_paths);
