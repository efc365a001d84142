//! Hostile input, property-tested: arbitrary bytes never panic, never pass as something
//! they are not, and ids outside their pattern never come out of a parser.

use base64::Engine;
use hatched::domain::token::{EmbedClaims, Subject};
use hatched::domain::{
    ApiKey, BuddyId, CustomerId, Environment, GateKey, KeyKind, SessionId, TokenKey, UnixTime, UserId,
};
use hatched::error::ApiError;
use hatched::lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use hatched::signing::{KeyRing, SigningKey};
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

fn same_decoding(a: &str, b: &str) -> bool {
    let decode = |t: &str| -> Option<Vec<Vec<u8>>> {
        t.split('.').map(|p| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(p).ok()).collect()
    };
    matches!((decode(a), decode(b)), (Some(x), Some(y)) if x == y)
}

fn ring() -> KeyRing {
    KeyRing { current: SigningKey::from_secret("prop").unwrap(), previous: None }
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
