//! The endpoint list (`functions::ENDPOINTS`, one entry per file in `functions/src/routes/`)
//! is the one description of the API: the binaries in `functions/src/bin/`, `template.yaml`
//! (routes, IAM form), `openapi.yaml`, `events/` and the local API must agree with it. Each
//! test names what is missing where.

use std::collections::{BTreeMap, BTreeSet};

use functions::ENDPOINTS;
use hatched::lambda_http::aws_lambda_events::apigw::{ApiGatewayV2CustomAuthorizerV2Request, ApiGatewayV2httpRequest};
use hatched_tests::template::{Template, functions, policy_problems, repo_file};
use hatched_tests::{Answer, Call, TestApp};
use serde_yaml_ng::Value;

/// (method, path, function) the template must route: each endpoint, and `$default` on the
/// fallback. API Gateway sends an `OPTIONS` no route matches to `$default` (the API has no CORS
/// configuration), so the fallback answers the browser routes' preflights from the list
/// without a route of their own.
fn expected_routes() -> BTreeSet<(String, String, String)> {
    let mut routes = BTreeSet::new();
    for e in ENDPOINTS {
        routes.insert((e.method.to_owned(), e.path.to_owned(), e.function.to_owned()));
    }
    routes.insert(("$default".into(), "$default".into(), functions::fallback::ENDPOINT.function.to_owned()));
    routes
}

/// (method, path) openapi.yaml must describe: each endpoint, and the preflight (`OPTIONS`)
/// of each browser route.
fn expected_operations() -> BTreeSet<(String, String)> {
    let mut operations = BTreeSet::new();
    for e in ENDPOINTS {
        operations.insert((e.method.to_owned(), e.path.to_owned()));
        if e.browser {
            operations.insert(("OPTIONS".to_owned(), e.path.to_owned()));
        }
    }
    operations
}

fn file_stems(dir: &str) -> BTreeSet<String> {
    std::fs::read_dir(format!("{}/../{dir}", env!("CARGO_MANIFEST_DIR")))
        .unwrap()
        .filter_map(|e| e.unwrap().file_name().to_string_lossy().strip_suffix(".rs").map(str::to_owned))
        .collect()
}

fn missing<T: Ord + std::fmt::Debug>(want: &BTreeSet<T>, have: &BTreeSet<T>) -> Vec<String> {
    want.difference(have).map(|x| format!("{x:?}")).collect()
}

#[test]
fn every_function_has_a_binary_and_every_route_file_names_its_function() {
    let binaries = file_stems("functions/src/bin");
    let listed: BTreeSet<String> = functions().iter().map(|f| f.to_string()).collect();
    assert!(
        binaries == listed,
        "functions/src/bin/ has no binary for {:?}; binaries that are no function: {:?}",
        missing(&listed, &binaries),
        missing(&binaries, &listed)
    );
    // A route file `<name>.rs` declares the function `<name>` in kebab-case (its binary).
    let files: BTreeSet<String> = file_stems("functions/src/routes").iter().map(|f| f.replace('_', "-")).collect();
    let declared: BTreeSet<String> = ENDPOINTS.iter().map(|e| e.function.to_owned()).collect();
    assert!(
        files == declared,
        "route files whose ENDPOINT names another function: {:?}; declared functions without their file: {:?}",
        missing(&files, &declared),
        missing(&declared, &files)
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

/// The form of every policy (scoped to known partitions, the table or its index); whether
/// each grant matches the code is `tests/tests/iam.rs`, after the suite.
#[test]
fn template_policies_are_scoped_to_known_partitions() {
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
    let want = expected_operations();
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
    for function in functions() {
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
            // broken base64 on purpose); the authorizer's are authorizer events, the roll-up's
            // stream batches, the rotation's are checked below.
            let parses = if function == functions::authorize::FUNCTION.function {
                serde_json::from_str::<ApiGatewayV2CustomAuthorizerV2Request>(&text).is_ok()
            } else if function == functions::rotate_signing_key::FUNCTION.function {
                true
            } else if function == functions::usage_rollup::FUNCTION.function {
                serde_json::from_str::<functions::usage_rollup::StreamEvent>(&text).is_ok()
            } else {
                serde_json::from_str::<ApiGatewayV2httpRequest>(&text).is_ok()
            };
            if !parses {
                problems.push(format!("{} is not an API Gateway event", file.path().display()));
            }
        }
    }
    // The rotation function's events are the ones Secrets Manager sends, one per step.
    for f in [&functions::rotate_signing_key::FUNCTION] {
        let dir = format!("{}/../events/{}", env!("CARGO_MANIFEST_DIR"), f.function);
        let mut steps = BTreeSet::new();
        for file in std::fs::read_dir(&dir).into_iter().flatten().filter_map(Result::ok) {
            let text = std::fs::read_to_string(file.path()).unwrap();
            match serde_json::from_str::<functions::rotate_signing_key::RotationEvent>(&text) {
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
            .replace("{session_id}", "ws_000000000000000000000000")
            .replace("{asset}", "portal.js");
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
/// a log group, every function's logs in a log group with retention, a table that cannot be
/// deleted.
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
    // Every function's logs go to a log group with retention: its own `LoggingConfig` or the
    // Globals' names a group of this template that has `RetentionInDays`.
    let retained: BTreeSet<String> = of_type("AWS::Logs::LogGroup")
        .filter(|(_, g)| !g["Properties"]["RetentionInDays"].is_null())
        .map(|(id, _)| id.as_str().unwrap().to_owned())
        .collect();
    let global = &template["Globals"]["Function"]["LoggingConfig"]["LogGroup"];
    for (id, function) in of_type("AWS::Serverless::Function") {
        let id = id.as_str().unwrap();
        let own = &function["Properties"]["LoggingConfig"]["LogGroup"];
        let group = serde_yaml_ng::to_string(if own.is_null() { global } else { own }).unwrap();
        assert!(
            retained.iter().any(|g| group.trim() == format!("!Ref {g}")),
            "{id} logs to {}, not a log group of this template with retention ({retained:?})",
            group.trim()
        );
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

/// Handlers tell their endpoint's story through the services (`app.auth`, `app.keys`,
/// `app.unlocks`, `app.tokens`, `app.rotation`): none reaches the table, the secrets or the
/// clock itself, so every rule of a service holds for every route that uses it.
#[test]
fn handlers_call_services_not_the_store() {
    let dir = format!("{}/../functions/src", env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(format!("{dir}/routes"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .chain(["fallback.rs", "authorize.rs", "rotate_signing_key.rs"].map(|f| format!("{dir}/{f}").into()))
        .collect();
    files.sort();
    let mut problems = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for part in ["store", "signer", "verifier", "sealer", "secrets", "clock", "ip_block"] {
            if text.contains(&format!("app.{part}")) || text.contains(&format!("app\n        .{part}")) {
                problems.push(format!("{} reaches app.{part}", file.display()));
            }
        }
    }
    assert!(files.len() > 20, "read every handler ({})", files.len());
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// API.md "Metrics and alarms": the template's alarms watch what the list names, each one
/// metric (no metric math: neither the emulator nor the rule allows it) with the topic as its
/// action; the functions' own metrics by the names and values the code emits; the crash
/// filter feeds its alarm; the dashboard body is JSON with its panels.
#[test]
fn template_alarms_and_dashboard_watch_what_api_md_lists() {
    let template: Value = serde_yaml_ng::from_str(&repo_file("template.yaml")).unwrap();
    let resources = template["Resources"].as_mapping().unwrap();
    let of_type = |t: &'static str| resources.iter().filter(move |(_, r)| r["Type"].as_str() == Some(t));
    let text = |v: &Value| serde_yaml_ng::to_string(v).unwrap().trim().to_owned();
    let mut watched = BTreeSet::new();
    for (id, alarm) in of_type("AWS::CloudWatch::Alarm") {
        let p = &alarm["Properties"];
        assert!(p["Metrics"].is_null(), "{id:?}: one metric, no metric math");
        assert_eq!(text(&p["AlarmActions"]), "- !Ref AlarmTopic", "{id:?} notifies the topic");
        let dims: Vec<String> = p["Dimensions"]
            .as_sequence()
            .into_iter()
            .flatten()
            .map(|d| format!("{}={}", d["Name"].as_str().unwrap(), text(&d["Value"])))
            .collect();
        watched.insert(format!(
            "{} {} [{}]",
            p["Namespace"].as_str().unwrap(),
            p["MetricName"].as_str().unwrap(),
            dims.join(",")
        ));
    }
    let (internal, unavailable) =
        (hatched::ApiError::Internal(String::new()).code(), hatched::ApiError::Unavailable(String::new()).code());
    let (authorize, rotation) =
        (functions::authorize::FUNCTION.function, functions::rotate_signing_key::FUNCTION.function);
    let ns = hatched::telemetry::NAMESPACE;
    for want in [
        format!("{ns} Requests [Outcome={internal}]"),
        format!("{ns} Requests [Outcome={unavailable}]"),
        format!("{ns} Requests [Function={authorize},Outcome={unavailable}]"),
        format!("{ns} FunctionCrashes []"),
        "AWS/Lambda Throttles []".to_owned(),
        "AWS/DynamoDB ReadThrottleEvents [TableName=!Ref HatchedTable]".to_owned(),
        "AWS/DynamoDB WriteThrottleEvents [TableName=!Ref HatchedTable]".to_owned(),
        "AWS/DynamoDB SystemErrors [TableName=!Ref HatchedTable,Operation=GetItem]".to_owned(),
        "AWS/DynamoDB SystemErrors [TableName=!Ref HatchedTable,Operation=UpdateItem]".to_owned(),
        "AWS/DynamoDB SystemErrors [TableName=!Ref HatchedTable,Operation=TransactWriteItems]".to_owned(),
        format!("{ns} RotationStep [Outcome=failed]"),
        format!("{ns} RotationStep [Outcome=refused]"),
        format!("{ns} RotationStep [Outcome=stuck_pending]"),
        "AWS/ApiGateway 5xx [ApiId=!Ref HttpApi,Stage=$default]".to_owned(),
    ] {
        assert!(watched.contains(&want), "no alarm on {want}; alarms: {watched:#?}");
    }
    // The dimension values the alarms name are ones the code emits.
    assert_eq!((authorize, rotation), ("authorize", "rotate-signing-key"));
    // The crash filter writes the metric its alarm reads, on the group every function logs to.
    let (_, filter) = of_type("AWS::Logs::MetricFilter").next().expect("the crash filter");
    let transform = &filter["Properties"]["MetricTransformations"][0];
    assert_eq!(
        (transform["MetricNamespace"].as_str(), transform["MetricName"].as_str()),
        (Some(ns), Some("FunctionCrashes"))
    );
    assert_eq!(
        text(&filter["Properties"]["LogGroupName"]),
        text(&template["Globals"]["Function"]["LoggingConfig"]["LogGroup"])
    );
    // The limit events' bus reaches a webhook only when one is given: every webhook resource
    // is conditional (the local emulator has no API destinations).
    let (_, bus) = of_type("AWS::Events::EventBus").next().expect("the events bus");
    assert!(matches!(bus["Properties"]["Name"], Value::Tagged(_)), "named after the stack (!Sub)");
    for kind in ["AWS::Events::Connection", "AWS::Events::ApiDestination", "AWS::Events::Rule"] {
        let (name, resource) = of_type(kind).next().unwrap_or_else(|| panic!("no {kind}"));
        assert_eq!(resource["Condition"].as_str(), Some("HasEventsWebhook"), "{name:?}");
    }
    // The topic mails someone only when asked to.
    let (_, subscription) = of_type("AWS::SNS::Subscription").next().expect("the e-mail subscription");
    assert_eq!(subscription["Condition"].as_str(), Some("HasAlarmEmail"));
    // The dashboard: JSON once CloudFormation has substituted its ${…}, with the panels listed.
    let (_, dashboard) = of_type("AWS::CloudWatch::Dashboard").next().expect("a dashboard");
    let Value::Tagged(body) = &dashboard["Properties"]["DashboardBody"] else { panic!("DashboardBody is a !Sub") };
    let mut substituted = body.value.as_str().unwrap().to_owned();
    while let Some(start) = substituted.find("${") {
        let end = start + substituted[start..].find('}').expect("a closed ${…}");
        substituted.replace_range(start..=end, "x");
    }
    let body: serde_json::Value = serde_json::from_str(&substituted).expect("the dashboard body is JSON");
    let titles: Vec<&str> =
        body["widgets"].as_array().unwrap().iter().map(|w| w["properties"]["title"].as_str().unwrap()).collect();
    assert_eq!(
        titles,
        ["Requests by outcome", "p99 latency by function (ms)", "Rate limited", "Errors", "Signing-key rotation steps"]
    );
}
