//! Hostile requests against the real handlers and server: arbitrary bodies and path
//! segments never produce a 5xx, and an id outside its pattern never reaches DynamoDB.

use std::sync::atomic::{AtomicUsize, Ordering};

use hatched_tests::prelude::*;
use hatched_tests::{Answer, TestApp, gateway_request};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

const CASES: u32 = 96;

/// `acme` with buddy `b1` (live) and an enterprise live secret key (no 429s in the way).
async fn world() -> (TestApp, String) {
    let t = TestApp::new().await.with_customer().await;
    t.buddy(Live, "b1").await;
    let (key, _) = t.issue(Secret, Live, tier(Tier::Enterprise)).await;
    (t, key)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

#[test]
fn arbitrary_bodies_never_produce_a_5xx() {
    let rt = runtime();
    let (t, key) = rt.block_on(world());
    let sent = AtomicUsize::new(0);
    let body = prop_oneof![
        ".{0,300}",
        "\\{\"(key|buddy_id|user_id|scopes|ttl_seconds|token|origin|required_scopes|user_id_sig|user_id_ts)\": ?(null|true|-?[0-9]{1,25}|\"[^\"]{0,40}\"|\\[\\]|\\{\\})\\}",
        proptest::collection::vec(any::<u8>(), 0..300).prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
    ];
    let mut runner = TestRunner::new(Config { cases: CASES, ..Config::default() });
    runner
        .run(&(body, 0usize..5), |(body, endpoint)| {
            let auth = format!("Bearer {key}");
            let headers = [("authorization", auth.as_str()), ("content-type", "application/json")];
            let path = [
                "/api/v1/keys/validate",
                "/api/v1/widget-sessions",
                "/api/v1/embed-tokens",
                "/api/v1/tokens/introspect",
                "/api/v1/buddies/b1/gates/hat/unlock",
            ][endpoint];
            let req = gateway_request("POST", path, &headers, Some(&body));
            let a: Answer = rt
                .block_on(async {
                    match endpoint {
                        0 => functions::validate_key::handle(&t.app, req).await,
                        1 => functions::create_widget_session::handle(&t.app, req).await,
                        2 => functions::create_embed_token::handle(&t.app, req).await,
                        3 => functions::introspect_token::handle(&t.app, req).await,
                        _ => functions::unlock_gate::handle(&t.app, req).await,
                    }
                })
                .into();
            sent.fetch_add(1, Ordering::Relaxed);
            prop_assert!(a.status < 500, "endpoint {endpoint}: {} for {body:?}: {}", a.status, a.body);
            prop_assert!(a.status == 429 || a.body.is_object(), "always a JSON body");
            Ok(())
        })
        .unwrap();
    println!("hostile bodies: {} requests, no 5xx", sent.load(Ordering::Relaxed));
}

#[test]
fn ids_outside_their_pattern_never_reach_dynamodb() {
    let rt = runtime();
    let (t, key) = rt.block_on(async {
        let t = TestApp::new().await.with_customer().await;
        let (key, _) = t.issue(Secret, Live, tier(Tier::Enterprise)).await;
        // The key's first use records last_used_at; warm it so only per-request calls remain.
        functions::list_gates::handle(&t.app, hatched_tests::keyed("GET", "/api/v1/gates", &key, None)).await;
        (t, key)
    });
    let segment = "[^/?#]{1,140}";
    let mut runner = TestRunner::new(Config { cases: CASES, ..Config::default() });
    runner
        .run(&(segment, segment, 0usize..3), |(buddy, gate, endpoint)| {
            let buddy_ok = hatched::domain::BuddyId::parse(&buddy).is_ok();
            let gate_ok = hatched::domain::GateKey::parse(&gate).is_ok();
            let session_ok = hatched::domain::SessionId::parse(&buddy).is_ok();
            t.calls.clear();
            let a: Answer = rt.block_on(async {
                match endpoint {
                    0 => {
                        let path = format!("/api/v1/buddies/{buddy}/gates/{gate}/unlock");
                        functions::unlock_gate::handle(&t.app, hatched_tests::keyed("POST", &path, &key, None))
                            .await
                            .into()
                    }
                    1 => {
                        let path = format!("/api/v1/buddies/{buddy}/unlocks");
                        functions::list_unlocks::handle(&t.app, hatched_tests::keyed("GET", &path, &key, None))
                            .await
                            .into()
                    }
                    _ => {
                        let path = format!("/api/v1/widget-sessions/{buddy}");
                        functions::revoke_widget_session::handle(
                            &t.app,
                            hatched_tests::keyed("DELETE", &path, &key, None),
                        )
                        .await
                        .into()
                    }
                }
            });
            prop_assert!(a.status < 500, "{}", a.body);
            let valid = match endpoint {
                0 => buddy_ok && gate_ok,
                1 => buddy_ok,
                _ => session_ok,
            };
            let ops = t.calls.take();
            if !valid {
                prop_assert_eq!((a.status, a.code()), (400, "invalid_request"));
                // Only the key read and the rate window: the bad id touched no item.
                let mut sorted = ops.clone();
                sorted.sort();
                prop_assert!(
                    sorted.len() <= 2 && sorted.iter().all(|o| o == "GetItem" || o == "UpdateItem"),
                    "{:?}",
                    ops
                );
            }
            Ok(())
        })
        .unwrap();
}

/// Whole API Gateway events with arbitrary headers (hostile `Host`, `X-Forwarded-*` among
/// them), paths, queries and bodies, to every function through the Lambda adapter: no panic,
/// no 5xx.
#[test]
fn hostile_events_never_crash_any_function() {
    let rt = runtime();
    let (t, key) = rt.block_on(world());
    let header_name = prop_oneof![
        Just("host".to_owned()),
        Just("x-forwarded-proto".to_owned()),
        Just("x-forwarded-host".to_owned()),
        Just("x-forwarded-port".to_owned()),
        Just("x-forwarded-for".to_owned()),
        Just("origin".to_owned()),
        Just("content-type".to_owned()),
        Just("cookie".to_owned()),
        "[a-z-]{1,20}",
    ];
    let header_value = prop_oneof![
        Just("1".to_owned()),
        Just("127.0.0.1:99999".to_owned()),
        Just("[::1".to_owned()),
        Just("https".to_owned()),
        "[ -~]{0,40}",
    ];
    let headers = proptest::collection::vec((header_name, header_value), 0..6);
    let all: Vec<_> = functions::ENDPOINTS.iter().copied().chain([&functions::fallback::ENDPOINT]).collect();
    let mut runner = TestRunner::new(Config { cases: CASES * 2, ..Config::default() });
    runner
        .run(
            &(0..all.len(), headers, "[ -~]{0,60}", "[ -~]{0,40}", ".{0,200}", any::<bool>()),
            |(which, headers, path_tail, query, body, keyed)| {
                let endpoint = all[which];
                let path = if endpoint.path == "$default" {
                    format!("/{path_tail}")
                } else {
                    endpoint
                        .path
                        .replace("{buddy_id}", "b1")
                        .replace("{gate_key}", &path_tail)
                        .replace("{session_id}", &path_tail)
                };
                let mut headers: Vec<(String, String)> = headers;
                if keyed {
                    headers.push(("authorization".into(), format!("Bearer {key}")));
                }
                let req = functions::HttpRequest {
                    method: endpoint.method.trim_start_matches('$'),
                    path: &path,
                    query: &query,
                    headers,
                    body: body.as_bytes(),
                    source_ip: "198.51.100.9",
                    request_id: "hostile".into(),
                };
                let resolution = functions::route(req.method, req.path);
                let mut event = functions::gateway_event(&req, &resolution);
                // The route the event names, even if the hostile path would not match it.
                event.raw_path = Some(path.clone());
                if endpoint.access == hatched::auth::Access::Authorized {
                    // Behind API Gateway such a route only runs with the authorizer's context;
                    // the authorizer itself gets the same hostile request.
                    let verdict = rt
                        .block_on(functions::authorize::handle(&t.app, functions::authorizer_event(&req, &resolution)));
                    let mut authorizer =
                        hatched::lambda_http::aws_lambda_events::apigw::ApiGatewayRequestAuthorizer::default();
                    authorizer.fields = [("auth".to_owned(), serde_json::json!(verdict.is_authorized))].into();
                    event.request_context.authorizer = Some(authorizer);
                }
                let request = hatched::lambda::into_request(event);
                let status = rt.block_on(async {
                    match functions::handler(endpoint) {
                        Some(handle) => handle(&t.app, request).await.status().as_u16(),
                        None => functions::fallback::handle(request).await.status().as_u16(),
                    }
                });
                prop_assert!(status < 500, "{} answered {status}", endpoint.function);
                Ok(())
            },
        )
        .unwrap();
}
