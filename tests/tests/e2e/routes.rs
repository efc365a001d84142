//! The endpoint list (each function's `ENDPOINT`) is the one description of the API:
//! `functions/`, `template.yaml` (routes and IAM), `openapi.yaml`, `events/` and the local
//! API must agree with it. Each test names what is missing where.

use std::collections::{BTreeMap, BTreeSet};

use endpoints::ENDPOINTS;
use hatched::lambda_http::aws_lambda_events::apigw::{ApiGatewayV2CustomAuthorizerV2Request, ApiGatewayV2httpRequest};
use hatched_tests::template::{Template, functions, policy_problems, repo_file};
use hatched_tests::{Answer, Call, TestApp};
use serde_yaml_ng::Value;

/// (method, path, function) the template must route: each endpoint, the preflight of each
/// browser route, and `$default`, both served by the fallback.
fn expected_routes() -> BTreeSet<(String, String, String)> {
    let mut routes = BTreeSet::new();
    for e in ENDPOINTS {
        routes.insert((e.method.to_owned(), e.path.to_owned(), e.function.to_owned()));
        if e.browser {
            routes.insert(("OPTIONS".to_owned(), e.path.to_owned(), fallback::ENDPOINT.function.to_owned()));
        }
    }
    routes.insert(("$default".into(), "$default".into(), fallback::ENDPOINT.function.to_owned()));
    routes
}

fn missing<T: Ord + std::fmt::Debug>(want: &BTreeSet<T>, have: &BTreeSet<T>) -> Vec<String> {
    want.difference(have).map(|x| format!("{x:?}")).collect()
}

#[test]
fn every_function_crate_is_an_endpoint_and_every_endpoint_a_crate() {
    let dirs: BTreeSet<String> = std::fs::read_dir(format!("{}/../functions", env!("CARGO_MANIFEST_DIR")))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let listed: BTreeSet<String> = functions().iter().map(|(f, _)| f.to_string()).collect();
    assert!(
        dirs == listed,
        "functions/ without an entry in endpoints/src/lib.rs: {:?}; listed without a crate: {:?}",
        missing(&dirs, &listed),
        missing(&listed, &dirs)
    );
}

#[test]
fn template_routes_exactly_the_endpoints() {
    let template = Template::load();
    let have = template.routes();
    let want = expected_routes();
    assert!(
        have == want,
        "template.yaml lacks the routes {:?} and routes {:?} that no endpoint declares",
        missing(&want, &have),
        missing(&have, &want)
    );
}

#[test]
fn template_policies_grant_exactly_the_declared_actions() {
    let problems = policy_problems(None);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
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
fn openapi_describes_exactly_the_endpoints_and_preflights() {
    let want: BTreeSet<(String, String)> =
        expected_routes().into_iter().filter(|(m, _, _)| m != "$default").map(|(m, p, _)| (m, p)).collect();
    let have = openapi_routes();
    assert!(
        have == want,
        "openapi.yaml lacks {:?} and describes {:?} that no endpoint declares",
        missing(&want, &have),
        missing(&have, &want)
    );
}

#[test]
fn every_function_has_sample_events() {
    let mut problems = Vec::new();
    for (function, _) in functions() {
        let dir = format!("{}/../events/{function}", env!("CARGO_MANIFEST_DIR"));
        let events: Vec<_> = std::fs::read_dir(&dir)
            .map(|d| d.filter_map(Result::ok).filter(|f| f.file_name().to_string_lossy().ends_with(".json")).collect())
            .unwrap_or_default();
        if events.is_empty() {
            problems.push(format!("events/{function}/ has no sample event"));
        }
        for file in events {
            let text = std::fs::read_to_string(file.path()).unwrap();
            // Parsed as the runtime would (not `lambda_http::request::from_str`: one fixture is
            // broken base64 on purpose); the authorizer's are authorizer events, the rotation's
            // are checked below.
            let parses = if function == authorize::FUNCTION.function {
                serde_json::from_str::<ApiGatewayV2CustomAuthorizerV2Request>(&text).is_ok()
            } else if function == rotate_signing_key::FUNCTION.function {
                true
            } else {
                serde_json::from_str::<ApiGatewayV2httpRequest>(&text).is_ok()
            };
            if !parses {
                problems.push(format!("{} is not an API Gateway event", file.path().display()));
            }
        }
    }
    // The rotation function's events are the ones Secrets Manager sends, one per step.
    for f in [&rotate_signing_key::FUNCTION] {
        let dir = format!("{}/../events/{}", env!("CARGO_MANIFEST_DIR"), f.function);
        let mut steps = BTreeSet::new();
        for file in std::fs::read_dir(&dir).into_iter().flatten().filter_map(Result::ok) {
            let text = std::fs::read_to_string(file.path()).unwrap();
            match serde_json::from_str::<rotate_signing_key::RotationEvent>(&text) {
                Ok(event) => {
                    steps.insert(event.step);
                }
                Err(_) => problems.push(format!("{} is not a rotation event", file.path().display())),
            }
        }
        if steps.len() != 4 {
            problems.push(format!("events/{}/ needs one event per rotation step, has {steps:?}", f.function));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[tokio::test]
async fn the_local_api_serves_every_endpoint_with_its_own_function() {
    let t = TestApp::new().await;
    let mut served = BTreeMap::new();
    for e in ENDPOINTS {
        let path = e
            .path
            .replace("{buddy_id}", "b1")
            .replace("{gate_key}", "g1")
            .replace("{session_id}", "ws_000000000000000000000000");
        let answer: Answer = t.send(Call::new(e.method, &path)).await;
        assert_ne!(answer.code(), "not_found", "{e:?} is declared but not served");
        assert_ne!(answer.code(), "method_not_allowed", "{e:?} is declared but not served");
        served.insert(e.function, answer.status);
    }
    assert_eq!(served.len(), ENDPOINTS.len());
    assert_eq!(t.send(Call::new("GET", "/x")).await.code(), "not_found");
    assert_eq!(t.send(Call::new("PUT", "/api/v1/gates")).await.code(), "method_not_allowed");
    assert_eq!(t.send(Call::new("OPTIONS", "/api/v1/gates")).await.status, 204);
}

/// The deployed shape protects itself: stage throttling from parameters, JSON access logs to
/// a log group, a log group with retention per function, a table that cannot be deleted.
#[test]
fn template_throttles_logs_and_protects_the_table() {
    let template: Value = serde_yaml_ng::from_str(&repo_file("template.yaml")).unwrap();
    let resources = template["Resources"].as_mapping().unwrap();
    let of_type = |t: &'static str| resources.iter().filter(move |(_, r)| r["Type"].as_str() == Some(t));
    let (_, api) = of_type("AWS::Serverless::HttpApi").next().expect("an HttpApi");
    let throttling = &api["Properties"]["DefaultRouteSettings"];
    for (setting, parameter) in
        [("ThrottlingBurstLimit", "ThrottlingBurstLimit"), ("ThrottlingRateLimit", "ThrottlingRateLimit")]
    {
        let value = serde_yaml_ng::to_string(&throttling[setting]).unwrap();
        assert!(value.contains(parameter), "{setting} comes from the parameter {parameter}: {value}");
        assert!(template["Parameters"][parameter].is_mapping(), "parameter {parameter}");
    }
    let logs = &api["Properties"]["AccessLogSettings"];
    let format: serde_json::Value =
        serde_json::from_str(logs["Format"].as_str().expect("a Format")).expect("the access log format is JSON");
    let format = format.to_string();
    for variable in ["requestId", "sourceIp", "routeKey", "status", "responseLatency", "integrationErrorMessage"] {
        assert!(format.contains(&format!("$context.{variable}")) || format.contains(variable), "{variable}");
    }
    assert!(!logs["DestinationArn"].is_null(), "access logs go to a log group");
    let groups: Vec<String> =
        of_type("AWS::Logs::LogGroup").map(|(_, g)| serde_yaml_ng::to_string(&g["Properties"]).unwrap()).collect();
    for (id, _) in of_type("AWS::Serverless::Function") {
        let id = id.as_str().unwrap();
        let group = groups
            .iter()
            .find(|g| g.contains(&format!("/aws/lambda/${{{id}}}")))
            .unwrap_or_else(|| panic!("{id} has no log group"));
        assert!(group.contains("RetentionInDays"), "{id}'s log group keeps logs forever");
    }
    let (_, table) = of_type("AWS::DynamoDB::Table").next().expect("the table");
    assert_eq!(table["Properties"]["DeletionProtectionEnabled"].as_bool(), Some(true));
}

/// Exactly the endpoints that rely on the authorizer sit behind it in the template, and the
/// authorizer has no identity source (a missing header must reach it) and no result cache.
#[test]
fn the_authorizer_guards_exactly_the_authorized_routes() {
    let template: Value = serde_yaml_ng::from_str(&repo_file("template.yaml")).unwrap();
    let resources = template["Resources"].as_mapping().unwrap();
    let mut guarded = BTreeSet::new();
    for (_, resource) in resources {
        for (_, event) in resource["Properties"]["Events"].as_mapping().into_iter().flatten() {
            if event["Properties"]["Auth"]["Authorizer"].as_str() == Some("HatchedKeyAuthorizer") {
                guarded.insert(event["Properties"]["Path"].as_str().unwrap_or("$default").to_owned());
            }
        }
    }
    let authorized: BTreeSet<String> =
        ENDPOINTS.iter().filter(|e| e.access == hatched::auth::Access::Authorized).map(|e| e.path.to_owned()).collect();
    assert_eq!(guarded, authorized);
    let api = resources.iter().find(|(_, r)| r["Type"].as_str() == Some("AWS::Serverless::HttpApi")).unwrap().1;
    let authorizer = &api["Properties"]["Auth"]["Authorizers"]["HatchedKeyAuthorizer"];
    assert_eq!(authorizer["AuthorizerPayloadFormatVersion"].as_str(), Some("2.0"));
    assert_eq!(authorizer["EnableSimpleResponses"].as_bool(), Some(true));
    assert!(authorizer["Identity"]["Headers"].is_null(), "no identity source");
    assert_eq!(authorizer["Identity"]["ReauthorizeEvery"].as_u64(), Some(0), "no result cache");
}
