//! Hostile input, property-tested: arbitrary bytes never panic, never pass as something
//! they are not, and ids outside their pattern never come out of a parser.

use base64::Engine;
use hatched::domain::token::{EmbedClaims, Subject};
use hatched::domain::{
    ApiKey, BuddyId, CustomerId, Environment, GateKey, KeyKind, SessionId, TokenKey, UnixTime, UserId,
};
use hatched::error::ApiError;
use hatched::lambda_http::RequestExt;
use hatched::lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use hatched::lambda_http::http::{HeaderName, HeaderValue, Method};
use hatched::signing::{PublicKeys, SigningKey};
use proptest::prelude::*;

const CASES: u32 = 512;

fn config() -> ProptestConfig {
    ProptestConfig { cases: CASES, ..ProptestConfig::default() }
}

/// An oracle written differently from the parsers: the API.md patterns as regexes.
fn oracle(pattern: &str, text: &str) -> bool {
    regex::Regex::new(pattern).unwrap().is_match(text)
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn key_parsing_never_panics_and_accepts_only_checksummed_keys(text in ".{0,80}") {
        if let Ok(key) = ApiKey::parse(&text) {
            let shaped = oracle(r"^hatch_(live|test|pk)_[0-9A-Za-z]{38}$", &text);
            prop_assert!(shaped);
            prop_assert_eq!(key.expose(), text.as_str());
        }
    }

    #[test]
    fn near_miss_keys_are_rejected(index in 11usize..49, replacement in proptest::char::range('!', '~')) {
        let key = ApiKey::generate(KeyKind::SecretLive);
        let mut bytes = key.expose().as_bytes().to_vec();
        prop_assume!(bytes[index] != replacement as u8);
        bytes[index] = replacement as u8;
        // A single changed character fails the charset or the CRC-32 (which catches every 1-char change).
        prop_assert!(ApiKey::parse(std::str::from_utf8(&bytes).unwrap()).is_err());
    }

    #[test]
    fn ids_match_their_patterns_exactly(text in "[ -~]{0,70}|[a-z0-9_:.@-]{0,70}|\\PC{0,10}") {
        prop_assert_eq!(CustomerId::parse(&text).is_ok(), oracle(r"^[a-z0-9][a-z0-9_-]{0,63}$", &text));
        prop_assert_eq!(BuddyId::parse(&text).is_ok(), oracle(r"^[A-Za-z0-9_.:@-]{1,128}$", &text));
        prop_assert_eq!(UserId::parse(&text).is_ok(), oracle(r"^[A-Za-z0-9_.:@-]{1,128}$", &text));
        prop_assert_eq!(GateKey::parse(&text).is_ok(), oracle(r"^[a-z][a-z0-9_]{0,63}$", &text));
        prop_assert_eq!(TokenKey::parse(&text).is_ok(), oracle(r"^[a-z][a-z0-9_]{0,63}$", &text));
        prop_assert_eq!(SessionId::parse(&text).is_ok(), oracle(r"^ws_[0-9A-Za-z]{24}$", &text));
        // Nothing that could split a DynamoDB key (`#`) survives a parser.
        if text.contains('#') {
            prop_assert!(CustomerId::parse(&text).is_err() && BuddyId::parse(&text).is_err() && GateKey::parse(&text).is_err());
        }
    }

    #[test]
    fn request_bodies_never_panic(
        body in proptest::collection::vec(any::<u8>(), 0..20_000),
        content_type in prop_oneof![
            Just("application/json".to_owned()),
            Just("application/json; charset=utf-8".to_owned()),
            Just("text/plain".to_owned()),
            ".{0,20}",
        ],
        base64_flag in any::<bool>(),
    ) {
        let encoded = if base64_flag { base64::engine::general_purpose::STANDARD.encode(&body) } else { String::from_utf8_lossy(&body).into_owned() };
        // Sometimes the flag lies about the body.
        let sent = if base64_flag && body.len() % 3 == 1 { String::from_utf8_lossy(&body).into_owned() } else { encoded };
        let req = request(&content_type, &sent, base64_flag);
        match hatched::http::json_body::<serde_json::Value>(&req) {
            Ok(_) => {}
            Err(e) => prop_assert!(matches!(e.status(), 400 | 413 | 415), "{e:?}"),
        }
    }

    #[test]
    fn deep_nesting_and_duplicates_are_400s(depth in 1usize..3000) {
        let body = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        let req = request("application/json", &format!(r#"{{"key":{body}}}"#), false);
        #[derive(serde::Deserialize, Debug)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Probe { key: serde_json::Value }
        if let Err(e) = hatched::http::json_body::<Probe>(&req) {
            prop_assert!(matches!(e, ApiError::InvalidRequest(_) | ApiError::PayloadTooLarge));
        }
        let dup = request("application/json", r#"{"key":1,"key":2}"#, false);
        prop_assert!(matches!(hatched::http::json_body::<Probe>(&dup), Err(ApiError::InvalidRequest(_))));
    }

    #[test]
    fn token_verification_never_panics(text in ".{0,400}") {
        prop_assert!(ring().verify(&text, "iss").is_none());
    }

    #[test]
    fn any_changed_byte_breaks_a_genuine_token(index in 0usize..400, byte in any::<u8>()) {
        let ring = ring();
        let who = Subject {
            customer: CustomerId::parse("acme").unwrap(),
            env: Environment::Live,
            buddy: BuddyId::parse("b").unwrap(),
            user: UserId::parse("u").unwrap(),
        };
        let token = ring.current.sign(&EmbedClaims::new("iss", &who, "j".into(), UnixTime::from_secs(1), 300)).unwrap();
        let mut bytes = token.clone().into_bytes();
        let i = index % bytes.len();
        prop_assume!(bytes[i] != byte);
        bytes[i] = byte;
        let tampered = String::from_utf8_lossy(&bytes).into_owned();
        // Base64url has a few encodings of the same last bits; only a different decoding matters.
        prop_assume!(!same_decoding(&token, &tampered));
        prop_assert!(ring.verify(&tampered, "iss").is_none());
    }
}

/// Header values `lambda_http` reads to build the request URI, and worse.
fn hostile_header_value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop_oneof![
            Just("1"),
            Just("127.0.0.1:99999"),
            Just("[::1"),
            Just("a b"),
            Just(""),
            Just("@"),
            Just(":"),
            Just("host:-1"),
            Just("h/t?x#y"),
            Just("%zz"),
            Just("https"),
            Just("example.com"),
            Just("ftp"),
            Just("javascript:"),
        ]
        .prop_map(|s| s.as_bytes().to_vec()),
        "[ -~]{0,40}".prop_map(String::into_bytes),
        ".{0,20}".prop_map(String::into_bytes),
        proptest::collection::vec(any::<u8>(), 0..40),
    ]
}

fn header_name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("host".to_owned()),
        Just("x-forwarded-proto".to_owned()),
        Just("x-forwarded-host".to_owned()),
        Just("x-forwarded-port".to_owned()),
        Just("cookie".to_owned()),
        Just("content-type".to_owned()),
        "[a-zA-Z0-9-]{1,20}",
        ".{1,10}",
    ]
}

fn raw_path() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(":99999".to_owned()),
        Just("@".to_owned()),
        Just("/api/v1/gates".to_owned()),
        "/[ -~]{0,60}",
        "[ -~]{0,60}",
        ".{0,40}",
        (0usize..3).prop_map(|n| format!("/{}", "a".repeat(65_534 + n))),
    ]
}

/// Whole API Gateway events with hostile headers, paths, queries, cookies and bodies.
fn hostile_event() -> impl Strategy<Value = ApiGatewayV2httpRequest> {
    (
        proptest::collection::vec((header_name(), hostile_header_value()), 0..6),
        (raw_path(), proptest::option::of("[ -~]{0,60}|.{0,30}")),
        proptest::option::of(proptest::collection::vec(".{0,20}", 0..3)),
        proptest::collection::hash_map(".{0,8}", ".{0,16}", 0..3),
        (proptest::option::of("\\$default|[a-z]{1,5}|.{0,8}"), proptest::option::of("[ -~]{0,30}|.{0,10}")),
        "[A-Z]{1,8}|.{0,8}",
        (proptest::option::of(".{0,40}"), any::<bool>()),
    )
        .prop_map(|(headers, (path, query), cookies, params, (stage, domain), method, (body, base64))| {
            let mut event = ApiGatewayV2httpRequest::default();
            for (name, value) in headers {
                if let (Ok(name), Ok(value)) =
                    (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_bytes(&value))
                {
                    event.headers.append(name, value);
                }
            }
            event.raw_path = Some(path);
            event.raw_query_string = query;
            event.cookies = cookies;
            event.path_parameters = params;
            event.request_context.stage = stage;
            event.request_context.domain_name = domain;
            event.request_context.http.method = Method::from_bytes(method.as_bytes()).unwrap_or(Method::GET);
            event.body = body;
            event.is_base64_encoded = base64;
            event
        })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn hostile_gateway_events_never_panic(event in hostile_event()) {
        let path = event.raw_path.clone().unwrap_or_default();
        let hosts: Vec<HeaderValue> = event.headers.get_all("host").iter().cloned().collect();
        let req = hatched::lambda::into_request(event);
        // Routing reads the raw path: it comes through untouched, and so do the headers.
        prop_assert_eq!(req.raw_http_path(), path.as_str());
        let seen: Vec<HeaderValue> = req.headers().get_all("host").iter().cloned().collect();
        prop_assert_eq!(seen, hosts);
        let _ = hatched::RequestCtx::of(&req);
    }

    #[test]
    fn hostile_gateway_events_as_json_never_panic(event in hostile_event()) {
        // The way the runtime delivers them: JSON in, event out, then the adapter.
        let Ok(json) = serde_json::to_string(&event) else { return Ok(()) };
        if let Ok(event) = serde_json::from_str::<ApiGatewayV2httpRequest>(&json) {
            let _ = hatched::lambda::into_request(event);
        }
    }
}

fn event_with(header: &str, value: &str) -> ApiGatewayV2httpRequest {
    let event = serde_json::json!({
        "version": "2.0", "routeKey": "$default", "rawPath": "/api/v1/keys/validate", "rawQueryString": "",
        "headers": { header: value },
        "requestContext": { "http": { "method": "POST", "path": "/api/v1/keys/validate", "protocol": "HTTP/1.1", "sourceIp": "1.2.3.4", "userAgent": "p" },
            "requestId": "r", "routeKey": "$default", "stage": "$default", "timeEpoch": 0, "accountId": "a", "apiId": "b",
            "domainName": "api.example.com" },
        "body": "{}", "isBase64Encoded": false
    });
    serde_json::from_value(event).unwrap()
}

#[test]
fn x_forwarded_proto_1_does_not_panic() {
    let req = hatched::lambda::into_request(event_with("x-forwarded-proto", "1"));
    assert_eq!(req.raw_http_path(), "/api/v1/keys/validate");
    assert_eq!(req.headers().get("x-forwarded-proto").map(|v| v.as_bytes()), Some(&b"1"[..]));
}

#[test]
fn host_with_out_of_range_port_does_not_panic() {
    let req = hatched::lambda::into_request(event_with("host", "127.0.0.1:99999"));
    assert_eq!(req.raw_http_path(), "/api/v1/keys/validate");
    assert_eq!(req.headers().get("host").map(|v| v.as_bytes()), Some(&b"127.0.0.1:99999"[..]));
}

#[test]
fn hostile_paths_queries_and_domain_names_do_not_panic() {
    let cases: [(&str, &str, &str); 6] = [
        (":99999", "", "api.example.com"),
        ("@", "", "api.example.com"),
        ("/x", "a b\u{7f}", "api.example.com"),
        ("/x", "", "exa mple.com"),
        ("/\u{e9}", "q=\u{e9}&x=%zz", "[::1"),
        ("", "", ""),
    ];
    for (path, query, domain) in cases {
        let mut event = event_with("content-type", "application/json");
        event.raw_path = Some(path.to_owned());
        event.raw_query_string = Some(query.to_owned());
        event.request_context.domain_name = Some(domain.to_owned());
        event.headers.remove("host");
        let req = hatched::lambda::into_request(event);
        assert_eq!(req.raw_http_path(), path);
        let Some(hatched::lambda_http::request::RequestContext::ApiGatewayV2(ctx)) = req.request_context_ref() else {
            panic!("no request context");
        };
        assert_eq!(ctx.domain_name.as_deref(), Some(domain));
        assert_eq!(ctx.stage.as_deref(), Some("$default"));
    }
    // Query parameters come from rawQueryString, else from the event's own map.
    let mut event = event_with("content-type", "application/json");
    event.raw_query_string = Some("a=1&b=%C3%A9 x".to_owned());
    let req = hatched::lambda::into_request(event);
    assert_eq!(req.query_string_parameters().first("b"), Some("é x"));
    let mut event = event_with("content-type", "application/json");
    event.raw_query_string = None;
    event.query_string_parameters = "c=3".parse().unwrap();
    assert_eq!(hatched::lambda::into_request(event).query_string_parameters().first("c"), Some("3"));
    let long = format!("/{}", "a".repeat(70_000));
    let mut event = event_with("content-type", "application/json");
    event.raw_path = Some(long.clone());
    assert_eq!(hatched::lambda::into_request(event).raw_http_path(), long);
}

fn same_decoding(a: &str, b: &str) -> bool {
    let decode = |t: &str| -> Option<Vec<Vec<u8>>> {
        t.split('.').map(|p| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(p).ok()).collect()
    };
    matches!((decode(a), decode(b)), (Some(x), Some(y)) if x == y)
}

/// A signing key and the public keys that verify it.
struct Ring {
    current: SigningKey,
    keys: PublicKeys,
}

impl Ring {
    fn verify(&self, token: &str, issuer: &str) -> Option<hatched::domain::token::TokenClaims> {
        self.keys.verify(token, issuer)
    }
}

fn ring() -> Ring {
    let current = SigningKey::from_secret("prop").unwrap();
    let keys = PublicKeys::of(&[&current]);
    Ring { current, keys }
}

fn request(content_type: &str, body: &str, base64: bool) -> hatched::lambda_http::Request {
    let event = serde_json::json!({
        "version": "2.0", "routeKey": "POST /x", "rawPath": "/x", "rawQueryString": "",
        "headers": { "content-type": content_type },
        "requestContext": { "http": { "method": "POST", "path": "/x", "protocol": "HTTP/1.1", "sourceIp": "1.2.3.4", "userAgent": "p" },
            "requestId": "r", "routeKey": "POST /x", "stage": "$default", "timeEpoch": 0, "accountId": "a", "apiId": "b" },
        "body": body, "isBase64Encoded": base64
    });
    let event: ApiGatewayV2httpRequest = serde_json::from_value(event).unwrap_or_default();
    hatched::lambda::into_request(event)
}
