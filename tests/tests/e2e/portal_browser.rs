//! The key portal in a real browser: Debian's headless Chromium, driven over its DevTools
//! protocol (`hatched_tests::browser`), against the local API (`hatchctl serve`) on 127.0.0.1.
//! Each screen is saved under `target/portal-screens/` (the set in `docs/portal/` is a copy).

use std::path::PathBuf;

use hatched_tests::browser::Browser;
use hatched_tests::prelude::*;
use serde_json::{Value, json};

/// The local API serving `t`'s app, its portal links pointing at it: its base URL.
async fn serve(t: &TestApp) -> String {
    let listener = hatchctl::serve::bind(0).await.unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let mut app = t.app.clone();
    app.portal_base_url = Some(base.clone());
    tokio::spawn(hatchctl::serve::serve(app, listener));
    base
}

/// A portal link minted over HTTP by `key` (its URL carries the token in the fragment).
async fn link(t: &TestApp, base: &str, key: &str, body: Value) -> String {
    let mut app = t.app.clone();
    app.portal_base_url = Some(base.to_owned());
    let a = Call::new("POST", "/api/v1/portal-sessions").key(key).json(&body).send(&app).await;
    assert_eq!(a.status, 201, "{}", a.body);
    a.body["url"].as_str().unwrap().to_owned()
}

/// The repository's `target/portal-screens/`, whatever `CARGO_TARGET_DIR` says.
fn screens() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/portal-screens")
}

async fn shot(b: &Browser, name: &str) {
    b.screenshot(&screens().join(format!("{name}.png"))).await.unwrap();
}

async fn validate(t: &TestApp, key: &str, origin: Option<&str>) -> Value {
    let mut body = json!({ "key": key });
    if let Some(o) = origin {
        body["origin"] = json!(o);
    }
    t.send(Call::new("POST", "/api/v1/keys/validate").json(&body)).await.body
}

async fn open_portal(b: &Browser, url: &str) {
    b.open(url).await.unwrap();
    b.wait_for("!document.getElementById('app').hidden", "the key list").await.unwrap();
}

const SECRET_VALUE: &str = "document.getElementById('secret-key').value";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_manages_keys_in_the_portal() {
    let t = TestApp::new().await.with_customer().await;
    let (admin, admin_prefix) = t.issue(Secret, Live, tier(Tier::Enterprise)).await;
    let (spare, spare_prefix) = t.issue(Secret, Live, plain()).await;
    // Enough history for two pages of the audit trail (20 a page).
    for _ in 0..20 {
        t.issue(Publishable, Live, plain()).await;
    }
    let base = serve(&t).await;
    let url = link(&t, &base, &admin, json!({ "user_label": "Ada" })).await;
    let b = Browser::launch().await.unwrap();
    open_portal(&b, &url).await;
    // BENCHMARKS.md "The key portal": printed, not asserted.
    let timing = b
        .eval(
            "JSON.stringify({ first_contentful_paint_ms: Math.round(performance.getEntriesByName('first-contentful-paint')[0]?.startTime || -1), \
              dom_content_loaded_ms: Math.round(performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd), \
              bytes: performance.getEntriesByType('resource').filter(r => r.name.includes('/portal/')).reduce((n, r) => n + r.decodedBodySize, 0) + performance.getEntriesByType('navigation')[0].decodedBodySize })",
        )
        .await
        .unwrap();
    println!("portal first render on the local API: {}", timing.as_str().unwrap());
    // The token left the address bar at once.
    let href = b.eval("location.href").await.unwrap();
    assert_eq!(href, json!(format!("{base}/portal")), "the fragment is gone");
    assert!(b.eval("document.body.innerText").await.unwrap().as_str().unwrap().contains(&admin_prefix));
    shot(&b, "01-keys").await;

    // A publishable key, created from the page: its plaintext shown once.
    b.click("#tab-publishable").await.unwrap();
    b.click("#create-open").await.unwrap();
    b.wait_for("document.getElementById('create').open", "the create dialog").await.unwrap();
    b.click("#create-form input[name=type][value=publishable]").await.unwrap();
    b.eval(
        "(() => { const f = document.getElementById('create-form'); f.label.value = 'storefront'; \
          f.origins.value = 'https://app.example.com'; \
          f.querySelector('input[name=scope][value=\"read:buddies\"]').click(); return true; })()",
    )
    .await
    .unwrap();
    let offered: Vec<String> = serde_json::from_value(
        b.eval("[...document.querySelectorAll('#create-scopes input[name=scope]')].map(i => i.value)").await.unwrap(),
    )
    .unwrap();
    assert!(!offered.iter().any(|s| s == "keys:write" || s == "widget_sessions:write"), "{offered:?}");
    shot(&b, "02-create").await;
    b.click("#create-form button[type=submit]").await.unwrap();
    b.wait_for("document.getElementById('secret').open", "the key, shown once").await.unwrap();
    let plaintext = b.eval(SECRET_VALUE).await.unwrap().as_str().unwrap().to_owned();
    assert!(plaintext.starts_with("hatch_pk_"), "{plaintext}");
    assert_eq!(validate(&t, &plaintext, Some("https://app.example.com")).await["valid"], true);
    shot(&b, "03-shown-once").await;
    b.click("#secret .close").await.unwrap();
    assert_eq!(b.eval(SECRET_VALUE).await.unwrap(), json!(""), "gone from the page once closed");
    let created = plaintext[..15].to_owned();
    b.wait_for(&format!("document.querySelector('tr[data-prefix=\"{created}\"]')"), "the new key's row").await.unwrap();

    // Its origins, edited.
    b.click(&format!("tr[data-prefix=\"{created}\"] button[aria-label^=Edit]")).await.unwrap();
    b.wait_for("document.getElementById('edit').open", "the edit dialog").await.unwrap();
    b.eval("document.getElementById('edit-form').origins.value = 'https://app.example.com\\nhttps://shop.example.com'")
        .await
        .unwrap();
    b.click("#edit-form button[type=submit]").await.unwrap();
    b.wait_for("document.getElementById('notice').textContent.startsWith('Saved')", "the save").await.unwrap();
    assert_eq!(validate(&t, &plaintext, Some("https://shop.example.com")).await["valid"], true);

    // A secret key rolled with a day's grace: both halves valid.
    b.click("#tab-secret").await.unwrap();
    b.click(&format!("tr[data-prefix=\"{spare_prefix}\"] button[aria-label^=Roll]")).await.unwrap();
    b.wait_for("document.getElementById('roll').open", "the roll dialog").await.unwrap();
    assert_eq!(b.eval("document.getElementById('roll-form').grace.value").await.unwrap(), json!("86400"));
    b.click("#roll-form button[type=submit]").await.unwrap();
    b.wait_for("document.getElementById('secret').open", "the rolled key").await.unwrap();
    let rolled = b.eval(SECRET_VALUE).await.unwrap().as_str().unwrap().to_owned();
    assert!(rolled.starts_with("hatch_live_") && rolled != spare);
    assert_eq!(validate(&t, &spare, None).await["valid"], true, "the old half, in its grace");
    assert_eq!(validate(&t, &rolled, None).await["valid"], true, "the new half");
    shot(&b, "04-rolled").await;
    b.click("#secret .close").await.unwrap();

    // The new half revoked: refused on its next call.
    let rolled_prefix = rolled[..17].to_owned();
    b.wait_for(&format!("document.querySelector('tr[data-prefix=\"{rolled_prefix}\"]')"), "the rolled key's row")
        .await
        .unwrap();
    b.click(&format!("tr[data-prefix=\"{rolled_prefix}\"] button[aria-label^=Revoke]")).await.unwrap();
    b.wait_for("document.getElementById('revoke').open", "the confirmation").await.unwrap();
    shot(&b, "05-revoke").await;
    b.click("#revoke-form button[type=submit]").await.unwrap();
    b.wait_for("document.getElementById('notice').textContent.startsWith('Revoked')", "the revocation").await.unwrap();
    let a = t.send(Call::new("GET", "/api/v1/gates").key(&rolled)).await;
    assert_eq!((a.status, a.code()), (401, "key_revoked"));

    // The audit trail, two pages, newest first, naming the portal's actor.
    b.click("#tab-audit").await.unwrap();
    b.wait_for("document.querySelectorAll('#audit-rows tr').length === 20", "a page of events").await.unwrap();
    let first = b.eval("document.querySelector('#audit-rows tr').innerText").await.unwrap();
    assert!(first.as_str().unwrap().contains(&format!("portal:{admin_prefix}:Ada")), "{first}");
    assert!(first.as_str().unwrap().contains("key.revoked"), "{first}");
    shot(&b, "06-audit").await;
    b.click("#audit-next").await.unwrap();
    b.wait_for(
        &format!("!document.querySelector('#audit-rows tr').innerText.includes({})", json!(first)),
        "the older page",
    )
    .await
    .unwrap();
    assert!(b.eval("document.querySelectorAll('#audit-rows tr').length").await.unwrap().as_u64().unwrap() >= 1);

    // A key's usage, after requests.
    for _ in 0..6 {
        assert_eq!(t.send(Call::new("GET", "/api/v1/gates").key(&admin)).await.status, 200);
    }
    t.roll_up_usage().await;
    b.click("#tab-secret").await.unwrap();
    b.click("#refresh").await.unwrap();
    b.wait_for(
        &format!(
            "document.querySelectorAll('tr[data-prefix=\"{admin_prefix}\"] svg.spark rect:not(.base)').length > 0"
        ),
        "the admin key's sparkline",
    )
    .await
    .unwrap();
    b.click(&format!("tr[data-prefix=\"{admin_prefix}\"] button[aria-label^=Usage]")).await.unwrap();
    b.wait_for("document.querySelectorAll('#usage-chart svg rect.accepted').length > 0", "the usage chart")
        .await
        .unwrap();
    let caption = b.eval("document.getElementById('usage-caption').textContent").await.unwrap();
    let accepted: u64 = caption.as_str().unwrap().split(' ').next().unwrap().parse().unwrap();
    assert!(accepted >= 6, "{caption}");
    shot(&b, "07-usage").await;
    b.eval("document.getElementById('usage-granularity').value = 'day'; document.getElementById('usage-granularity').dispatchEvent(new Event('change')); true")
        .await
        .unwrap();
    b.wait_for("document.getElementById('usage-caption').textContent.includes('per day')", "the daily chart")
        .await
        .unwrap();
    b.click("#usage .close").await.unwrap();

    assert_eq!(b.problems().await.unwrap(), Vec::<String>::new(), "no CSP violation, error or exception");

    // A reload finds no token (it was only ever in memory): a new session is needed, and the
    // plaintext shown earlier is nowhere.
    b.reload().await.unwrap();
    b.wait_for("document.readyState === 'complete' && !document.getElementById('ended').hidden", "the ended screen")
        .await
        .unwrap();
    let text = b.eval("document.body.innerText").await.unwrap().as_str().unwrap().to_owned();
    assert!(!text.contains(&plaintext) && !text.contains(&admin_prefix), "{text}");
    assert_eq!(b.eval("localStorage.length + sessionStorage.length").await.unwrap(), json!(0));
    assert_eq!(b.eval("document.cookie").await.unwrap(), json!(""));
    shot(&b, "08-session-ended").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_tampered_or_revoked_session_shows_session_ended_and_no_data() {
    let t = TestApp::new().await.with_customer().await;
    let (admin, admin_prefix) = t.issue(Secret, Live, tier(Tier::Enterprise)).await;
    let (doomed, _) = t.issue(Secret, Live, plain()).await;
    let base = serve(&t).await;
    let b = Browser::launch().await.unwrap();
    async fn shows_ended(b: &Browser, url: &str, secret: &str) {
        b.open(url).await.unwrap();
        b.wait_for(
            "!document.getElementById('ended').hidden && document.getElementById('app').hidden",
            "session ended",
        )
        .await
        .unwrap();
        let text = b.eval("document.body.innerText").await.unwrap().as_str().unwrap().to_owned();
        assert!(text.contains("Session ended"), "{text}");
        assert!(!text.contains(secret) && !text.contains("hatch_"), "no data: {text}");
    }
    // Tampered: one character of the signature changed.
    let url = link(&t, &base, &admin, json!({ "user_label": "Ada" })).await;
    let last = url.chars().last().unwrap();
    let tampered = format!("{}{}", &url[..url.len() - 1], if last == 'A' { 'B' } else { 'A' });
    shows_ended(&b, &tampered, &admin_prefix).await;
    shot(&b, "09-tampered").await;
    // Revoked: the minting key revoked after the link was made.
    let url = link(&t, &base, &doomed, json!({ "user_label": "Bob" })).await;
    let doomed_prefix = &doomed[..17];
    assert_eq!(t.send(Call::new("DELETE", &format!("/api/v1/keys/{doomed_prefix}")).key(&admin)).await.status, 200);
    shows_ended(&b, &url, doomed_prefix).await;
    // Expired: a one-minute session, a minute later.
    let url = link(&t, &base, &admin, json!({ "user_label": "Ada", "ttl_seconds": 60 })).await;
    open_portal(&b, &url).await;
    t.app.clock.freeze();
    t.app.clock.advance(60);
    b.click("#tab-audit").await.unwrap();
    b.wait_for("!document.getElementById('ended').hidden", "the session to end on the next call").await.unwrap();
    assert!(b.eval("document.getElementById('app').hidden").await.unwrap().as_bool().unwrap(), "no data left shown");
    // No link at all.
    shows_ended(&b, &format!("{base}/portal"), &admin_prefix).await;
    assert_eq!(b.problems().await.unwrap(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_cannot_do_more_than_its_key() {
    let t = TestApp::new().await.with_customer().await;
    let (manager, _) = t.issue(Secret, Live, scopes(&["keys:read", "keys:write", "read:buddies"])).await;
    let base = serve(&t).await;
    let url = link(&t, &base, &manager, json!({ "user_label": "Eve" })).await;
    let b = Browser::launch().await.unwrap();
    open_portal(&b, &url).await;
    let before = b.eval("document.querySelectorAll('#key-rows tr[data-prefix]').length").await.unwrap();
    b.click("#create-open").await.unwrap();
    b.wait_for("document.getElementById('create').open", "the create dialog").await.unwrap();
    b.click("#create-form input[name=scope][value=\"write:unlocks\"]").await.unwrap();
    b.click("#create-form button[type=submit]").await.unwrap();
    b.wait_for("document.getElementById('create-error').textContent.length > 0", "the refusal").await.unwrap();
    let error = b.eval("document.getElementById('create-error').textContent").await.unwrap();
    assert!(error.as_str().unwrap().contains("insufficient_scope"), "{error}");
    assert!(error.as_str().unwrap().contains("write:unlocks"), "the scope it needs: {error}");
    shot(&b, "10-escalation-refused").await;
    let listed = t.send(Call::new("GET", "/api/v1/keys").key(&manager)).await;
    assert_eq!(json!(listed.body["keys"].as_array().unwrap().len()), before, "nothing created");
    assert_eq!(b.problems().await.unwrap(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_action_is_reachable_by_keyboard() {
    let t = TestApp::new().await.with_customer().await;
    let (admin, admin_prefix) = t.issue(Secret, Live, tier(Tier::Enterprise)).await;
    for _ in 0..20 {
        t.issue(Publishable, Live, plain()).await; // two pages of audit events
    }
    let base = serve(&t).await;
    let url = link(&t, &base, &admin, json!({ "user_label": "Kim" })).await;
    let b = Browser::launch().await.unwrap();
    open_portal(&b, &url).await;
    // Create, by keyboard only: Tab to the button, Enter, type, Enter submits.
    b.tab_to("#create-open").await.unwrap();
    b.press("Enter", false).await.unwrap();
    b.wait_for("document.getElementById('create').open", "the create dialog").await.unwrap();
    b.tab_to("#create-form input[name=label]").await.unwrap();
    b.type_text("by keyboard").await.unwrap();
    b.press("Enter", false).await.unwrap();
    b.wait_for("document.getElementById('secret').open", "the new key").await.unwrap();
    b.tab_to("#copy-key").await.unwrap();
    b.tab_to("#secret .close").await.unwrap();
    b.press("Enter", false).await.unwrap();
    b.wait_for("!document.getElementById('secret').open", "the dialog closed").await.unwrap();
    assert_eq!(b.eval(SECRET_VALUE).await.unwrap(), json!(""), "gone once closed from the keyboard");
    // The list redraws once the new key is in it: tabbing before that could focus a row about
    // to be replaced.
    b.wait_for(
        "[...document.querySelectorAll('#key-rows .label')].some(e => e.textContent === 'by keyboard')",
        "the new row",
    )
    .await
    .unwrap();
    let made = t.send(Call::new("GET", "/api/v1/keys").key(&admin)).await;
    assert!(made.body["keys"].as_array().unwrap().iter().any(|k| k["label"] == "by keyboard"), "{}", made.body);
    // Every row action and every dialog, reached with Tab and left with Escape.
    for action in ["Usage", "Edit", "Roll", "Revoke"] {
        b.tab_to(&format!("tr[data-prefix=\"{admin_prefix}\"] button[aria-label^={action}]")).await.unwrap();
        b.press("Enter", false).await.unwrap();
        b.wait_for("document.querySelector('dialog[open]')", action).await.unwrap();
        b.press("Escape", false).await.unwrap();
        b.wait_for("!document.querySelector('dialog[open]')", "the dialog closed").await.unwrap();
    }
    for tab in ["#tab-publishable", "#tab-audit"] {
        b.tab_to(tab).await.unwrap();
        b.press("Enter", false).await.unwrap();
    }
    b.wait_for("document.querySelectorAll('#audit-rows tr').length === 20", "the audit trail").await.unwrap();
    b.tab_to("#audit-next").await.unwrap();
    b.press("Enter", false).await.unwrap();
    b.wait_for("!document.getElementById('audit-first').disabled", "the older page").await.unwrap();
    b.press("Tab", true).await.unwrap();
    assert_eq!(
        b.eval("document.activeElement.id").await.unwrap(),
        json!("audit-first"),
        "Shift+Tab: back to the newest"
    );
    b.press("Enter", false).await.unwrap();
    b.wait_for("document.getElementById('audit-first').disabled", "the newest page again").await.unwrap();
    assert_eq!(b.problems().await.unwrap(), Vec::<String>::new());
}
