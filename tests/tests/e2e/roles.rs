//! Roles, permissions and quotas (API.md "Roles, permissions, quotas").

use hatched_tests::prelude::*;
use serde_json::Value;

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
    assert_eq!(a.headers.get("cache-control").and_then(|v| v.to_str().ok()), Some("public, max-age=300"));
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
