//! template.yaml, the route table, the local API and functions/ must agree.

use std::collections::BTreeSet;

use hatched::routes::ROUTES;
use hatched_tests::{Answer, TestApp, gateway_request};
use serde_yaml_ng::Value;

fn repo_file(path: &str) -> String {
    std::fs::read_to_string(format!("{}/../{path}", env!("CARGO_MANIFEST_DIR")))
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// (method, path, binary) of every HttpApi event in template.yaml; `$default` for the catch-all.
fn template_routes() -> BTreeSet<(String, String, String)> {
    let template: Value = serde_yaml_ng::from_str(&repo_file("template.yaml")).expect("template.yaml parses");
    let mut routes = BTreeSet::new();
    for (_, resource) in template["Resources"].as_mapping().unwrap() {
        if resource["Type"].as_str() != Some("AWS::Serverless::Function") {
            continue;
        }
        let binary = resource["Metadata"]["BuildProperties"]["Binary"]
            .as_str()
            .expect("every function names its binary")
            .to_owned();
        assert_eq!(resource["Metadata"]["BuildMethod"].as_str(), Some("rust-cargolambda"));
        for (_, event) in resource["Properties"]["Events"].as_mapping().unwrap() {
            assert_eq!(event["Type"].as_str(), Some("HttpApi"));
            let props = &event["Properties"];
            let method = props["Method"].as_str().unwrap_or("$default").to_owned();
            let path = props["Path"].as_str().unwrap_or("$default").to_owned();
            routes.insert((method, path, binary.clone()));
        }
    }
    routes
}

#[test]
fn template_declares_exactly_the_route_table() {
    let mut expected: BTreeSet<_> =
        ROUTES.iter().map(|r| (r.method.to_owned(), r.path.to_owned(), r.function.to_owned())).collect();
    expected.insert(("$default".into(), "$default".into(), "fallback".into()));
    assert_eq!(template_routes(), expected);
}

#[test]
fn every_function_crate_is_deployed() {
    let dirs: BTreeSet<String> = std::fs::read_dir(format!("{}/../functions", env!("CARGO_MANIFEST_DIR")))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let deployed: BTreeSet<String> = template_routes().into_iter().map(|(_, _, f)| f).collect();
    assert_eq!(dirs, deployed);
}

#[tokio::test]
async fn the_local_api_serves_every_declared_route_and_nothing_else() {
    let t = TestApp::new().await;
    for route in ROUTES {
        let path = route
            .path
            .replace("{buddy_id}", "b1")
            .replace("{gate_key}", "g1")
            .replace("{session_id}", "ws_000000000000000000000000");
        let req = gateway_request(route.method, &path, &[], None);
        let answer: Option<Answer> = hatchctl::serve::dispatch(&t.app, route.function, req).await.map(Into::into);
        let answer = answer.unwrap_or_else(|| panic!("{} {} is declared but not served", route.method, route.path));
        assert_ne!(answer.code(), "not_found", "{} {}", route.method, route.path);
    }
    let unknown = gateway_request("GET", "/x", &[], None);
    assert!(hatchctl::serve::dispatch(&t.app, "no-such-function", unknown).await.is_none());
}

/// (method, path) of every operation in openapi.yaml.
fn openapi_routes() -> BTreeSet<(String, String)> {
    let spec: Value = serde_yaml_ng::from_str(&repo_file("openapi.yaml")).expect("openapi.yaml parses");
    let mut routes = BTreeSet::new();
    for (path, item) in spec["paths"].as_mapping().unwrap() {
        for (method, _) in item.as_mapping().unwrap() {
            routes.insert((method.as_str().unwrap().to_uppercase(), path.as_str().unwrap().to_owned()));
        }
    }
    routes
}

#[test]
fn openapi_describes_exactly_the_template_routes() {
    let template: BTreeSet<(String, String)> =
        template_routes().into_iter().filter(|(m, _, _)| m != "$default").map(|(m, p, _)| (m, p)).collect();
    assert_eq!(openapi_routes(), template);
}
