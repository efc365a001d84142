//! hatchctl key management against the real server.

use aws_sdk_dynamodb::types::AttributeValue::S;
use hatched::domain::{ApiKey, KeyKind, KeyRecord};
use hatched::store::StoreError;
use hatched_tests::TestApp;
use hatched_tests::prelude::*;
use serde_json::json;

#[tokio::test]
async fn issue_prints_key_and_prefix_once_and_stores_only_the_hash() {
    let t = TestApp::new().await.with_customer().await;
    let out = t.issue_key(Publishable, Live, signed_user_ids()).await;
    let key = ApiKey::parse(out.key.as_str()).expect("a well-formed key");
    assert_eq!(out.prefix, key.prefix().as_str());
    assert_eq!(out.hmac_secret.as_deref().map(str::len), Some(40));
    let record = t.app.store.get_key(&key.hash()).await.unwrap().expect("stored by hash");
    // The item as stored, every attribute.
    let raw = t.app.store.client().get_item().table_name(t.app.store.table());
    let raw = raw.key("pk", S(format!("KEY#{}", key.hash().as_str()))).key("sk", S("KEY".into())).send().await;
    let stored = format!("{:?}", raw.unwrap().item.expect("stored by hash"));
    assert!(stored.contains(key.hash().as_str()) && !stored.contains(key.expose()));
    assert!(record.require_signed_user_id);
    // Listing shows no hash, plaintext or HMAC secret.
    let list = t.ctl(&["keys", "list", "--customer", "acme"]).await.unwrap().to_string();
    assert!(list.contains(key.prefix().as_str()));
    assert!(!list.contains(key.hash().as_str()));
    assert!(!list.contains(key.expose()));
    assert!(!list.contains(out.hmac_secret.as_deref().unwrap()));
}

#[tokio::test]
async fn prefix_claims_are_unique_and_a_collision_writes_nothing() {
    let t = TestApp::new().await.with_customer().await;
    let (key, _) = t.issue(Secret, Live, plain()).await;
    let existing = t.app.store.get_key(&ApiKey::parse(&key).unwrap().hash()).await.unwrap().unwrap();
    // A different key that claims the same display prefix.
    let other = ApiKey::generate(KeyKind::SecretLive);
    let clash = KeyRecord { key_hash: other.hash(), ..existing.clone() };
    assert!(matches!(t.app.store.create_key(&clash, None).await, Err(StoreError::AlreadyExists)));
    assert_eq!(t.app.store.get_key(&other.hash()).await.unwrap(), None, "no half-written key item");
}

#[tokio::test]
async fn bad_arguments_fail_clearly_and_write_nothing() {
    let t = TestApp::new().await.with_customer().await;
    let cases: &[(&[&str], &str)] = &[
        (&["keys", "issue", "--customer", "nobody", "--type", "secret", "--env", "live"], "no customer nobody"),
        (&["keys", "issue", "--customer", "acme", "--type", "secret", "--env", "prod"], "expected one of live, test"),
        (&["keys", "issue", "--customer", "acme", "--type", "root", "--env", "live"], "root"),
        (&["keys", "issue", "--customer", "Acme!", "--type", "secret", "--env", "live"], "customer_id"),
        (
            &["keys", "issue", "--customer", "acme", "--type", "secret", "--env", "live", "--tier", "gold"],
            "expected one of free, pro, enterprise",
        ),
        (
            &[
                "keys",
                "issue",
                "--customer",
                "acme",
                "--type",
                "publishable",
                "--env",
                "live",
                "--scopes",
                "widget_sessions:write",
            ],
            "never be granted",
        ),
        (
            &["keys", "issue", "--customer", "acme", "--type", "secret", "--env", "live", "--scopes", "admin"],
            "unknown scope",
        ),
        (
            &[
                "keys",
                "issue",
                "--customer",
                "acme",
                "--type",
                "publishable",
                "--env",
                "live",
                "--allowed-origins",
                "example.com",
            ],
            "not an origin",
        ),
        (
            &[
                "keys",
                "issue",
                "--customer",
                "acme",
                "--type",
                "secret",
                "--env",
                "live",
                "--allowed-origins",
                "https://a.com",
            ],
            "publishable keys only",
        ),
        (&["keys", "revoke", "--prefix", "hatch_live_nope"], "not a key prefix"),
        (&["keys", "revoke", "--prefix", "hatch_live_AAAAAA"], "no key with prefix"),
        (&["keys", "rotate", "--prefix", "hatch_live_AAAAAA", "--grace-hours", "-1"], "-1"),
        (
            &["customers", "create", "--customer", "acme", "--primary-token", "gems", "--progression-token", "xp"],
            "already exists",
        ),
        (
            &["customers", "create", "--customer", "c2", "--primary-token", "xp", "--progression-token", "xp"],
            "must differ",
        ),
    ];
    for (args, needle) in cases {
        let err = t.ctl(args).await.expect_err(&format!("{args:?} should fail"));
        let text = format!("{err:#}");
        assert!(text.contains(needle), "{args:?}: {text}");
    }
    let list = t.ctl(&["keys", "list", "--customer", "acme"]).await.unwrap();
    assert_eq!(list["keys"], json!([]), "nothing was issued");
}

#[tokio::test]
async fn revoked_keys_cannot_be_rotated_and_table_create_is_idempotent() {
    let t = TestApp::new().await.with_customer().await;
    assert_eq!(t.ctl(&["table", "create"]).await.unwrap()["created"], false);
    let (_, prefix) = t.issue(Secret, Test, plain()).await;
    t.ctl(&["keys", "revoke", "--prefix", &prefix]).await.unwrap();
    let err = t.ctl(&["keys", "rotate", "--prefix", &prefix]).await.unwrap_err();
    assert!(err.to_string().contains("revoked"));
    let keys = t.ctl(&["keys", "list", "--customer", "acme"]).await.unwrap();
    assert_eq!(keys["keys"].as_array().unwrap().len(), 1, "no replacement issued");
}
