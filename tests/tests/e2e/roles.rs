//! Roles, permissions and quotas (API.md "Roles, permissions, quotas").

use hatched_tests::prelude::*;
use serde_json::{Value, json};

use hatched::domain::Scope;
use hatched_tests::template::repo_file;

#[tokio::test]
async fn permissions_list_every_scope_with_its_key_types_and_need_no_key() {
    let t = TestApp::new().await.with_customer().await;
    let a = t.send(Call::new("GET", "/api/v1/permissions")).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let listed = a.body["permissions"].as_array().unwrap();
    let scopes: Vec<&str> = listed.iter().map(|p| p["scope"].as_str().unwrap()).collect();
    assert_eq!(scopes, Scope::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>());
    for p in listed {
        let scope = Scope::parse(p["scope"].as_str().unwrap()).unwrap();
        let types: Vec<&str> = p["key_types"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
        let publishable = types.contains(&"publishable");
        assert_eq!(publishable, !scope.secret_only(), "{p}");
        assert!(types.contains(&"secret"), "{p}");
        assert!(!p["description"].as_str().unwrap().is_empty());
    }
    // What the list says a publishable key may hold, key issuance grants, and nothing else.
    for p in listed {
        let scope = p["scope"].as_str().unwrap();
        let publishable = p["key_types"].as_array().unwrap().iter().any(|t| t == "publishable");
        let issued = t
            .ctl(&["keys", "issue", "--customer", "acme", "--type", "publishable", "--env", "live", "--scopes", scope])
            .await;
        assert_eq!(issued.is_ok(), publishable, "{scope}: {issued:?}");
    }
    assert_eq!(a.headers.get("cache-control").and_then(|v| v.to_str().ok()), Some("no-store"));
}

#[test]
fn openapi_scope_enum_is_the_code_scope_list() {
    let spec: Value = serde_yaml_ng::from_str(&repo_file("openapi.yaml")).unwrap();
    let listed: Vec<&str> = spec["components"]["schemas"]["KeyScope"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert_eq!(listed, Scope::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>());
}

const ROLES: &str = "/api/v1/roles";
const KEYS: &str = "/api/v1/keys";

fn call(method: &str, path: &str, key: &str, body: Option<serde_json::Value>) -> Call {
    let call = Call::new(method, path).key(key);
    match body {
        Some(b) => call.json(&b),
        None => call,
    }
}

/// `acme` with an enterprise live secret key holding every scope (what `admin` holds), a
/// buddy with a balance and a gate.
async fn setup() -> (TestApp, String) {
    let t = TestApp::new().await.with_customer().await;
    let (admin, _) = t.issue(Secret, Live, tier(Tier::Enterprise)).await;
    t.buddy(Live, "buddy_1").await;
    t.gate("dark_mode", 1, None).await;
    t.credit(Live, "buddy_1", 1_000).await;
    (t, admin)
}

async fn create_role(t: &TestApp, admin: &str, name: &str, scopes: &[&str]) -> serde_json::Value {
    let a = t.send(call("POST", ROLES, admin, Some(json!({ "name": name, "scopes": scopes })))).await;
    assert_eq!(a.status, 201, "{}", a.body);
    a.body
}

/// A key created over HTTP by `by`: (plaintext, prefix).
async fn create_key(t: &TestApp, by: &str, body: serde_json::Value) -> (String, String) {
    let a = t.send(call("POST", KEYS, by, Some(body))).await;
    assert_eq!(a.status, 201, "{}", a.body);
    (a.body["key"].as_str().unwrap().to_owned(), a.body["record"]["prefix"].as_str().unwrap().to_owned())
}

async fn role(t: &TestApp, admin: &str, name: &str) -> serde_json::Value {
    let a = t.send(call("GET", &format!("{ROLES}/{name}"), admin, None)).await;
    assert_eq!(a.status, 200, "{}", a.body);
    a.body
}

async fn list_gates(t: &TestApp, key: &str) -> u16 {
    t.send(Call::new("GET", "/api/v1/gates").key(key)).await.status
}

#[tokio::test]
async fn built_in_and_custom_roles_end_to_end() {
    let (t, admin) = setup().await;
    // Built-in roles exist everywhere, first, with what API.md gives them.
    let listed = t.send(call("GET", ROLES, &admin, None)).await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    let names: Vec<&str> =
        listed.body["roles"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["admin", "developer", "read_only", "browser"]);
    assert_eq!(role(&t, &admin, "read_only").await["scopes"], json!(["read:buddies", "read:operations", "keys:read"]));

    // roles:["read_only"] and no scopes: it holds only its role's scopes.
    let (reader, reader_prefix) = create_key(&t, &admin, json!({ "type": "secret", "roles": ["read_only"] })).await;
    assert_eq!(list_gates(&t, &reader).await, 200);
    let refused = t.unlock(&reader, "buddy_1", "dark_mode").await;
    assert_eq!(
        (refused.status, refused.body["error"]["code"].as_str()),
        (403, Some("insufficient_scope")),
        "{}",
        refused.body
    );
    let view = t.send(call("GET", &format!("{KEYS}/{reader_prefix}"), &admin, None)).await.body;
    assert_eq!(view["scopes"], json!([]));
    assert_eq!(view["roles"], json!(["read_only"]));
    assert_eq!(view["effective_scopes"], json!(["read:buddies", "read:operations", "keys:read"]));
    let validated = t.send(Call::new("POST", "/api/v1/keys/validate").json(&json!({ "key": reader }))).await.body;
    assert_eq!(validated["key"]["scopes"], json!(["read:buddies", "read:operations", "keys:read"]), "{validated}");

    // A custom role, and a key holding it with one own scope: both count.
    let support = create_role(&t, &admin, "support", &["write:unlocks"]).await;
    assert_eq!(
        support,
        json!({ "name": "support", "description": null, "scopes": ["write:unlocks"], "built_in": false, "key_count": 0 })
    );
    let (agent, agent_prefix) =
        create_key(&t, &admin, json!({ "type": "secret", "roles": ["support"], "scopes": ["read:buddies"] })).await;
    assert_eq!(t.unlock(&agent, "buddy_1", "dark_mode").await.status, 200);
    assert_eq!(list_gates(&t, &agent).await, 200);
    assert_eq!(role(&t, &admin, "support").await["key_count"], 1);
    assert_eq!(role(&t, &admin, "read_only").await["key_count"], 1);
    let listed = t.send(call("GET", KEYS, &admin, None)).await.body;
    let agent_view = listed["keys"].as_array().unwrap().iter().find(|k| k["prefix"] == agent_prefix.as_str()).unwrap();
    assert_eq!(
        agent_view["effective_scopes"],
        json!(["write:unlocks", "read:buddies"]),
        "the list resolves custom roles"
    );

    // The authorizer's context carries the effective scopes.
    let whoami = t.send(Call::new("GET", "/api/v1/whoami").key(&agent)).await;
    assert_eq!(whoami.body["scopes"], "write:unlocks read:buddies", "{}", whoami.body);

    // PATCH the role: the holder acts with the new scopes on its very next request.
    let patched = t
        .send(call(
            "PATCH",
            &format!("{ROLES}/support"),
            &admin,
            Some(json!({ "scopes": ["read:operations"], "description": "help desk" })),
        ))
        .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    assert_eq!(t.unlock(&agent, "buddy_1", "dark_mode").await.status, 403);
    // Taking the role from the key, then deleting it.
    let in_use = t.send(call("DELETE", &format!("{ROLES}/support"), &admin, None)).await;
    assert_eq!((in_use.status, in_use.body["error"]["code"].as_str()), (409, Some("role_in_use")));
    let a = t.send(call("PATCH", &format!("{KEYS}/{agent_prefix}"), &admin, Some(json!({ "roles": [] })))).await;
    assert_eq!((a.status, &a.body["roles"]), (200, &json!([])), "{}", a.body);
    assert_eq!(role(&t, &admin, "support").await["key_count"], 0);
    let deleted = t.send(call("DELETE", &format!("{ROLES}/support"), &admin, None)).await;
    assert_eq!((deleted.status, &deleted.body), (200, &json!({ "name": "support", "deleted": true })));
    let gone = t.send(call("GET", &format!("{ROLES}/support"), &admin, None)).await;
    assert_eq!((gone.status, gone.body["error"]["code"].as_str()), (404, Some("not_found")));

    // The trail: one event per role change, in the same transaction as the change.
    let events = t.send(call("GET", "/api/v1/audit-events?target=role:support", &admin, None)).await.body;
    let actions: Vec<&str> =
        events["events"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["role.deleted", "role.updated", "role.created"]);
    let updated = &events["events"][1]["changes"];
    assert_eq!(updated["scopes"], json!({ "old": ["write:unlocks"], "new": ["read:operations"] }));
    assert_eq!(updated["description"], json!({ "old": null, "new": "help desk" }));
}

#[tokio::test]
async fn built_in_roles_never_change_and_names_are_unique() {
    let (t, admin) = setup().await;
    for name in ["admin", "browser"] {
        let patch = t
            .send(call("PATCH", &format!("{ROLES}/{name}"), &admin, Some(json!({ "scopes": ["read:buddies"] }))))
            .await;
        assert_eq!((patch.status, patch.body["error"]["code"].as_str()), (409, Some("role_built_in")), "{name}");
        let delete = t.send(call("DELETE", &format!("{ROLES}/{name}"), &admin, None)).await;
        assert_eq!((delete.status, delete.body["error"]["code"].as_str()), (409, Some("role_built_in")), "{name}");
        let create =
            t.send(call("POST", ROLES, &admin, Some(json!({ "name": name, "scopes": ["read:buddies"] })))).await;
        assert_eq!((create.status, create.body["error"]["code"].as_str()), (409, Some("role_exists")), "{name}");
    }
    create_role(&t, &admin, "ops", &["read:operations"]).await;
    let again = t.send(call("POST", ROLES, &admin, Some(json!({ "name": "ops", "scopes": ["read:buddies"] })))).await;
    assert_eq!((again.status, again.body["error"]["code"].as_str()), (409, Some("role_exists")));
    assert_eq!(role(&t, &admin, "ops").await["scopes"], json!(["read:operations"]), "the first one stands");
    for (body, why) in [
        (json!({ "name": "Ops", "scopes": ["read:buddies"] }), "name pattern"),
        (json!({ "name": "x", "scopes": [] }), "no scopes"),
        (json!({ "name": "x", "scopes": ["root"] }), "unknown scope"),
        (json!({ "name": "x", "scopes": ["read:buddies"], "extra": 1 }), "unknown field"),
        (json!({ "name": "x", "scopes": ["read:buddies"], "description": "d".repeat(201) }), "long description"),
        (json!(["x"]), "not an object"),
    ] {
        let a = t.send(call("POST", ROLES, &admin, Some(body))).await;
        assert_eq!(a.status, 400, "{why}: {}", a.body);
    }
    // A role deleted and created again under its name never has a version the old one had: a
    // key change decided on the old role (its commit bound to that version) cannot land on it.
    let at = hatched::roles::RoleScope { customer: &hatched::domain::CustomerId::parse("acme").unwrap(), env: Live };
    let ops = hatched::domain::role::RoleName::parse("ops").unwrap();
    let first = t.app.roles.get(at, &ops).await.unwrap().version;
    assert_eq!(t.send(call("DELETE", &format!("{ROLES}/ops"), &admin, None)).await.status, 200);
    create_role(&t, &admin, "ops", &["keys:read"]).await;
    let second = t.app.roles.get(at, &ops).await.unwrap().version;
    assert!(second > first + 1000, "versions {first} then {second}");
    // At most 20 roles per key, refused before any read.
    let many: Vec<String> = (0..21).map(|i| format!("r{i}")).collect();
    let a = t.send(call("POST", KEYS, &admin, Some(json!({ "type": "secret", "roles": many })))).await;
    assert_eq!((a.status, a.body["error"]["code"].as_str()), (400, Some("invalid_request")), "{}", a.body);
    // Unknown roles on keys are refused, and nothing is written.
    let a = t.send(call("POST", KEYS, &admin, Some(json!({ "type": "secret", "roles": ["nope"] })))).await;
    assert_eq!((a.status, a.body["error"]["code"].as_str()), (400, Some("invalid_request")), "{}", a.body);
    let other_env = TestApp::issue(&t, Secret, Test, tier(Tier::Enterprise)).await.0;
    let a = t.send(call("POST", KEYS, &other_env, Some(json!({ "type": "secret", "roles": ["ops"] })))).await;
    assert_eq!(a.status, 400, "a role belongs to one environment: {}", a.body);
}

#[tokio::test]
async fn escalation_through_roles_is_refused() {
    let (t, admin) = setup().await;
    create_role(&t, &admin, "unlocker", &["write:unlocks", "read:buddies"]).await;
    // A manager without every secret-key scope changes no role.
    let (developer, _) = create_key(&t, &admin, json!({ "type": "secret", "roles": ["developer"] })).await;
    let (manager, _) =
        create_key(&t, &admin, json!({ "type": "secret", "scopes": ["keys:read", "keys:write", "read:buddies"] }))
            .await;
    for key in [&developer, &manager] {
        for (method, path, body) in [
            ("POST", ROLES.to_owned(), Some(json!({ "name": "mine", "scopes": ["read:buddies"] }))),
            ("PATCH", format!("{ROLES}/unlocker"), Some(json!({ "scopes": ["read:buddies"] }))),
            ("DELETE", format!("{ROLES}/unlocker"), None),
        ] {
            let a = t.send(call(method, &path, key, body)).await;
            let code = a.body["error"]["code"].as_str();
            if key == &developer && method == "POST" {
                // developer lacks keys:write: the route itself refuses.
                assert_eq!((a.status, code), (403, Some("insufficient_scope")), "{}", a.body);
                continue;
            }
            assert_eq!((a.status, code), (403, Some("insufficient_scope")), "{method} {path}: {}", a.body);
        }
    }
    let a = t.send(call("POST", ROLES, &manager, Some(json!({ "name": "mine", "scopes": ["read:buddies"] })))).await;
    assert_eq!(
        a.body["error"]["details"]["required"],
        json!(["widget_sessions:write", "embed_tokens:create", "write:unlocks", "read:operations"])
    );
    assert_eq!(role(&t, &admin, "unlocker").await["scopes"], json!(["write:unlocks", "read:buddies"]), "unchanged");

    // Assigning a role follows the key rules: its scopes must be the caller's.
    let a = t.send(call("POST", KEYS, &manager, Some(json!({ "type": "secret", "roles": ["unlocker"] })))).await;
    assert_eq!((a.status, a.body["error"]["code"].as_str()), (403, Some("insufficient_scope")), "{}", a.body);
    let (plain_key, plain_prefix) =
        create_key(&t, &manager, json!({ "type": "secret", "scopes": ["read:buddies"] })).await;
    let a =
        t.send(call("PATCH", &format!("{KEYS}/{plain_prefix}"), &manager, Some(json!({ "roles": ["admin"] })))).await;
    assert_eq!((a.status, a.body["error"]["code"].as_str()), (403, Some("insufficient_scope")), "{}", a.body);
    assert_eq!(t.unlock(&plain_key, "buddy_1", "dark_mode").await.status, 403);

    // A publishable key never holds a secret-only scope through a role…
    for role_name in ["read_only", "admin"] {
        let a = t.send(call("POST", KEYS, &admin, Some(json!({ "type": "publishable", "roles": [role_name] })))).await;
        assert_eq!(
            (a.status, a.body["error"]["code"].as_str()),
            (400, Some("invalid_request")),
            "{role_name}: {}",
            a.body
        );
    }
    // …and a role a publishable key holds never gains one.
    let (_, pk_prefix) = create_key(&t, &admin, json!({ "type": "publishable", "roles": ["unlocker"] })).await;
    let a = t
        .send(call(
            "PATCH",
            &format!("{ROLES}/unlocker"),
            &admin,
            Some(json!({ "scopes": ["read:buddies", "keys:read"] })),
        ))
        .await;
    assert_eq!((a.status, a.body["error"]["code"].as_str()), (400, Some("invalid_request")), "{}", a.body);
    // Revoked, the publishable key no longer holds it: now the role may gain the scope.
    assert_eq!(t.send(call("DELETE", &format!("{KEYS}/{pk_prefix}"), &admin, None)).await.status, 200);
    let a = t
        .send(call(
            "PATCH",
            &format!("{ROLES}/unlocker"),
            &admin,
            Some(json!({ "scopes": ["read:buddies", "keys:read"] })),
        ))
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
}

#[tokio::test]
async fn a_role_change_reaches_sixty_holders_on_their_next_request_in_one_event() {
    let (t, admin) = setup().await;
    create_role(&t, &admin, "clerk", &["write:unlocks", "read:buddies"]).await;
    // Ten at a time: every creation moves the role's holder count, one transaction each on
    // that one item (DynamoDB runs them one after another).
    let mut keys = Vec::new();
    for _ in 0..6 {
        let batch = (0..10).map(|_| create_key(&t, &admin, json!({ "type": "secret", "roles": ["clerk"] })));
        keys.extend(futures::future::join_all(batch).await.into_iter().map(|(key, _)| key));
    }
    assert_eq!(role(&t, &admin, "clerk").await["key_count"], 60, "holder count exact under concurrent creations");
    let before = t.send(call("GET", "/api/v1/audit-events?limit=100", &admin, None)).await.body["events"]
        .as_array()
        .unwrap()
        .len();
    let a = t.send(call("PATCH", &format!("{ROLES}/clerk"), &admin, Some(json!({ "scopes": ["read:buddies"] })))).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let after = t.send(call("GET", "/api/v1/audit-events?limit=100", &admin, None)).await.body["events"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(after, before + 1, "one audit event, no fan-out");
    let statuses = futures::future::join_all(keys.iter().map(|k| t.unlock(k, "buddy_1", "dark_mode"))).await;
    let refused =
        statuses.iter().filter(|a| a.status == 403 && a.body["error"]["code"] == "insufficient_scope").count();
    assert_eq!(refused, 60, "every holder refuses the removed scope on its very next request");
    assert!(futures::future::join_all(keys.iter().map(|k| list_gates(&t, k))).await.iter().all(|s| *s == 200));
}

#[tokio::test]
async fn holder_counts_stay_exact_under_create_patch_and_revoke_races() {
    let (t, admin) = setup().await;
    create_role(&t, &admin, "viewer", &["read:buddies"]).await;
    let mut prefixes = Vec::new();
    for _ in 0..12 {
        prefixes.push(create_key(&t, &admin, json!({ "type": "secret", "roles": ["viewer"] })).await.1);
    }
    let (t, admin) = (&t, admin.as_str());
    // At once: 8 more created holding it, 4 revoked, 4 patched to drop it, 4 patched to keep
    // it with another role beside it.
    let creations = (0..8).map(|_| async {
        create_key(t, admin, json!({ "type": "secret", "roles": ["viewer"] })).await;
    });
    let revocations = prefixes[0..4].iter().map(|p| async move {
        assert_eq!(t.send(call("DELETE", &format!("{KEYS}/{p}"), admin, None)).await.status, 200);
    });
    let drops = prefixes[4..8].iter().map(|p| async move {
        assert_eq!(
            t.send(call("PATCH", &format!("{KEYS}/{p}"), admin, Some(json!({ "roles": ["read_only"] })))).await.status,
            200
        );
    });
    let keeps = prefixes[8..12].iter().map(|p| async move {
        let body = json!({ "roles": ["viewer", "read_only"] });
        assert_eq!(t.send(call("PATCH", &format!("{KEYS}/{p}"), admin, Some(body))).await.status, 200);
    });
    futures::join!(
        futures::future::join_all(creations),
        futures::future::join_all(revocations),
        futures::future::join_all(drops),
        futures::future::join_all(keeps)
    );
    // The counts agree with the keys as they stand.
    let keys = t.send(call("GET", &format!("{KEYS}?limit=100"), admin, None)).await.body;
    let holding = |role: &str| {
        keys["keys"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|k| k["revoked_at"].is_null() && k["roles"].as_array().unwrap().iter().any(|r| r == role))
            .count()
    };
    assert_eq!((holding("viewer"), holding("read_only")), (12 + 8 - 4 - 4, 8));
    assert_eq!(role(t, admin, "viewer").await["key_count"], 12);
    assert_eq!(role(t, admin, "read_only").await["key_count"], 8);
}

#[tokio::test]
async fn a_role_gaining_a_secret_scope_and_a_publishable_key_gaining_the_role_never_both_succeed() {
    let (t, admin) = setup().await;
    for round in 0..6 {
        let name = format!("race{round}");
        create_role(&t, &admin, &name, &["read:buddies"]).await;
        let (_, pk) = create_key(&t, &admin, json!({ "type": "publishable" })).await;
        let widen =
            call("PATCH", &format!("{ROLES}/{name}"), &admin, Some(json!({ "scopes": ["read:buddies", "keys:read"] })));
        let assign = call("PATCH", &format!("{KEYS}/{pk}"), &admin, Some(json!({ "roles": [name] })));
        let (widened, assigned) = futures::join!(t.send(widen), t.send(assign));
        assert!(
            !(widened.status == 200 && assigned.status == 200),
            "round {round}: both went through: {} / {}",
            widened.body,
            assigned.body
        );
        assert!(widened.status == 200 || assigned.status == 200, "round {round}: one of them wins");
        let view = t.send(call("GET", &format!("{KEYS}/{pk}"), &admin, None)).await.body;
        let secret_only = view["effective_scopes"].as_array().unwrap().iter().any(|s| s == "keys:read");
        assert!(!secret_only, "round {round}: a publishable key holds keys:read: {view}");
    }
}

#[tokio::test]
async fn round_trips_of_keys_with_custom_roles_one_more_read_and_none_for_others() {
    hatched_tests::assert_happy_path_model();
    let (t, admin) = setup().await;
    create_role(&t, &admin, "lister", &["read:buddies"]).await;
    let (custom, _) = create_key(&t, &admin, json!({ "type": "secret", "roles": ["lister"] })).await;
    let (built_in, _) = create_key(&t, &admin, json!({ "type": "secret", "roles": ["read_only"] })).await;
    let (own, _) = create_key(&t, &admin, json!({ "type": "secret", "scopes": ["read:buddies"] })).await;
    for key in [&custom, &built_in, &own] {
        list_gates(&t, key).await; // first use records last_used_at
    }
    let mut seen = Vec::new();
    for key in [&own, &built_in, &custom] {
        t.calls.clear();
        assert_eq!(list_gates(&t, key).await, 200);
        let mut ops = t.calls.take();
        ops.sort();
        seen.push(ops);
    }
    assert_eq!(seen[0], ["GetItem", "Query", "UpdateItem"], "own scopes: the key read, the count, the gates");
    assert_eq!(seen[1], seen[0], "built-in roles cost nothing");
    assert_eq!(seen[2], ["GetItem", "GetItem", "Query", "UpdateItem"], "custom roles: one more consistent read");

    // What the read costs in time (BENCHMARKS.md "Roles"): printed, not asserted.
    let mut medians = Vec::new();
    for key in [&own, &custom] {
        let mut times = Vec::new();
        for _ in 0..50 {
            let started = std::time::Instant::now();
            assert_eq!(list_gates(&t, key).await, 200);
            times.push(started.elapsed().as_secs_f64() * 1000.0);
        }
        times.sort_by(f64::total_cmp);
        medians.push((times[times.len() / 2], times[times.len() * 9 / 10]));
    }
    println!(
        "list-gates in process, 50 requests each: own scopes median {:.2} ms (p90 {:.2}); custom role median {:.2} ms (p90 {:.2})",
        medians[0].0, medians[0].1, medians[1].0, medians[1].1
    );
}

#[tokio::test]
async fn every_keyed_function_resolves_a_custom_role() {
    // A key whose every scope comes from a custom role reaches each keyed route's own checks
    // (so each function reads roles, as its policy grants): never a 401 or a scope refusal.
    let (t, admin) = setup().await;
    let all: Vec<&str> = Scope::ALL.iter().map(|s| s.as_str()).collect();
    create_role(&t, &admin, "everything", &all).await;
    let (key, _) = create_key(&t, &admin, json!({ "type": "secret", "roles": ["everything"] })).await;
    for endpoint in functions::ENDPOINTS
        .iter()
        .filter(|e| !matches!(e.access, hatched::Access::Anonymous | hatched::Access::Authorized))
    {
        let path = endpoint
            .path
            .replace("{prefix}", "hatch_live_AAAAAA")
            .replace("{name}", "nobody")
            .replace("{buddy_id}", "buddy_1")
            .replace("{gate_key}", "dark_mode")
            .replace("{session_id}", "ws_000000000000000000000000");
        let a = t.send(Call::new(endpoint.method, &path).key(&key)).await;
        assert!(![401, 403, 500].contains(&a.status), "{} {}: {} {}", endpoint.method, path, a.status, a.body);
    }
    let validated = t.send(Call::new("POST", "/api/v1/keys/validate").json(&json!({ "key": key }))).await.body;
    assert_eq!(validated["valid"], true);
    let whoami = t.send(Call::new("GET", "/api/v1/whoami").key(&key)).await;
    assert_eq!((whoami.status, &whoami.body["auth"]), (200, &json!("key")), "the authorizer resolves it too");
}

#[tokio::test]
async fn a_rolled_key_hands_its_roles_on_and_both_halves_count_until_revoked() {
    let (t, admin) = setup().await;
    create_role(&t, &admin, "teller", &["write:unlocks", "read:buddies"]).await;
    let (_, old) = create_key(&t, &admin, json!({ "type": "secret", "roles": ["teller", "read_only"] })).await;
    let rolled =
        t.send(call("POST", &format!("{KEYS}/{old}/roll"), &admin, Some(json!({ "grace_seconds": 60 })))).await;
    assert_eq!(rolled.status, 201, "{}", rolled.body);
    assert_eq!(rolled.body["record"]["roles"], json!(["read_only", "teller"]));
    let effective = json!(["write:unlocks", "read:buddies", "read:operations", "keys:read"]);
    assert_eq!(rolled.body["record"]["effective_scopes"], effective, "the new half's view resolves its custom role");
    let new_key = rolled.body["key"].as_str().unwrap().to_owned();
    let new = rolled.body["record"]["prefix"].as_str().unwrap().to_owned();
    assert_eq!(t.unlock(&new_key, "buddy_1", "dark_mode").await.status, 200, "the new half holds the custom role");
    assert_eq!(role(&t, &admin, "teller").await["key_count"], 2, "both halves are unrevoked");
    for prefix in [&old, &new] {
        assert_eq!(t.send(call("DELETE", &format!("{KEYS}/{prefix}"), &admin, None)).await.status, 200);
    }
    assert_eq!(role(&t, &admin, "teller").await["key_count"], 0);
    assert_eq!(role(&t, &admin, "read_only").await["key_count"], 0);
    // A revoked key takes no roles.
    let a = t.send(call("PATCH", &format!("{KEYS}/{old}"), &admin, Some(json!({ "roles": ["teller"] })))).await;
    assert_eq!((a.status, a.body["error"]["code"].as_str()), (400, Some("invalid_request")), "{}", a.body);
    assert_eq!(role(&t, &admin, "teller").await["key_count"], 0);
    let deleted = t.send(call("DELETE", &format!("{ROLES}/teller"), &admin, None)).await;
    assert_eq!(deleted.status, 200, "{}", deleted.body);
}

#[tokio::test]
async fn hatchctl_manages_roles_as_the_operator() {
    let (t, admin) = setup().await;
    let at = ["--customer", "acme", "--env", "live"];
    let created = t
        .ctl(&[&["roles", "create"][..], &at, &["--name", "auditor", "--scopes", "keys:read,read:operations"]].concat())
        .await
        .unwrap();
    assert_eq!(created["scopes"], json!(["read:operations", "keys:read"]));
    let issued = t
        .ctl(&[&["keys", "issue", "--type", "secret"][..], &at[..2], &["--env", "live", "--roles", "auditor"]].concat())
        .await
        .unwrap();
    let key = issued["key"].as_str().unwrap().to_owned();
    assert_eq!(t.send(call("GET", "/api/v1/audit-events", &key, None)).await.status, 200, "keys:read through the role");
    let updated = t
        .ctl(&[&["roles", "update"][..], &at, &["--name", "auditor", "--scopes", "read:operations"]].concat())
        .await
        .unwrap();
    assert_eq!(updated["scopes"], json!(["read:operations"]));
    assert_eq!(
        t.send(call("GET", "/api/v1/audit-events", &key, None)).await.status,
        403,
        "the next request refuses it"
    );
    let listed = t.ctl(&[&["roles", "list"][..], &at].concat()).await.unwrap();
    let auditor = listed["roles"].as_array().unwrap().iter().find(|r| r["name"] == "auditor").unwrap().clone();
    assert_eq!((auditor["key_count"].as_u64(), auditor["built_in"].as_bool()), (Some(1), Some(false)));
    assert!(t.ctl(&[&["roles", "delete"][..], &at, &["--name", "auditor"]].concat()).await.is_err(), "held: refused");
    assert!(t.ctl(&[&["roles", "delete"][..], &at, &["--name", "admin"]].concat()).await.is_err(), "built in: refused");
    let events = t.send(call("GET", "/api/v1/audit-events?target=role:auditor", &admin, None)).await.body;
    let trail: Vec<(&str, &str)> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["action"].as_str().unwrap(), e["actor"].as_str().unwrap()))
        .collect();
    assert_eq!(trail, [("role.updated", "operator"), ("role.created", "operator")]);
}

#[tokio::test]
async fn a_role_route_records_a_fresh_key_use() {
    // `last_used_at` is written on a key's first use in a minute, by whatever route it calls.
    let (t, admin) = setup().await;
    create_role(&t, &admin, "spare", &["read:buddies"]).await;
    for (method, path) in
        [("GET", format!("{ROLES}/read_only")), ("DELETE", format!("{ROLES}/spare")), ("GET", ROLES.to_owned())]
    {
        let (key, prefix) = t.issue(Secret, Live, tier(Tier::Enterprise)).await;
        let a = t.send(call(method, &path, &key, None)).await;
        assert_eq!(a.status, 200, "{method} {path}: {}", a.body);
        let view = t.send(call("GET", &format!("{KEYS}/{prefix}"), &admin, None)).await.body;
        assert!(view["last_used_at"].is_string(), "{method} {path}: {view}");
    }
}
