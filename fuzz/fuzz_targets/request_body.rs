#![no_main]
//! Request parsing as API Gateway delivers it: any body, any base64 flag, any content type,
//! through each body parser the routes use. Every body that parses is a JSON object (a
//! request type reads an array positionally, so an array must never get that far); anything
//! else is 400, 413 or 415.
use libfuzzer_sys::fuzz_target;
use serde::de::IgnoredAny;

/// A request type with the shape of the real ones: serde would read `["a", 1]` into it.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Positional {
    #[serde(default)]
    a: Option<String>,
    #[serde(default)]
    b: Option<i64>,
}

/// What the fuzzer's bytes become: the body as sent, or (flag bit 4) one of the non-object
/// JSON values under a leading whitespace prefix, so every case the rule names is near.
fn body(flag: u8, rest: &[u8]) -> String {
    let text = String::from_utf8_lossy(rest).into_owned();
    if flag & 4 == 0 {
        return text;
    }
    let ws = [" ", "\t", "\n", "\r", ""][usize::from(flag >> 5) % 5];
    let value = ["[", "\"", "-", "0", "n", "t", "f"][rest.len() % 7];
    format!("{ws}{value}{text}")
}

fuzz_target!(|data: &[u8]| {
    let (flag, rest) = data.split_first().unwrap_or((&0, &[]));
    let text = body(*flag, rest);
    let event = serde_json::json!({
        "version": "2.0", "routeKey": "POST /x", "rawPath": "/x", "rawQueryString": "",
        "headers": { "content-type": if flag & 2 == 0 { "application/json" } else { "text/plain" } },
        "requestContext": { "http": { "method": "POST", "path": "/x", "protocol": "HTTP/1.1", "sourceIp": "1.2.3.4", "userAgent": "f" },
            "requestId": "r", "routeKey": "POST /x", "stage": "$default", "timeEpoch": 0, "accountId": "a", "apiId": "b" },
        "body": text, "isBase64Encoded": flag & 1 == 1
    });
    let Ok(event) = serde_json::from_value(event) else { return };
    let req = hatched::lambda::into_request(event);
    let object = |v: &serde_json::Value| assert!(v.is_object(), "a non-object body was accepted: {v}");
    match hatched::http::json_body::<serde_json::Value>(&req) {
        Ok(v) => object(&v),
        Err(e) => assert!(matches!(e.status(), 400 | 413 | 415)),
    }
    match hatched::http::optional_untyped_json_body::<serde_json::Value>(&req) {
        Ok(v) => v.iter().for_each(object),
        Err(e) => assert!(matches!(e.status(), 400 | 413)),
    }
    // Had any of these accepted a non-object, the Value parses above would have caught it;
    // these check the positional reading itself is unreachable through each entry point.
    for parsed in [
        hatched::http::json_body::<Positional>(&req).map(drop),
        hatched::http::optional_untyped_json_body::<Positional>(&req).map(drop),
        hatched::http::optional_json_body::<Positional>(&req).map(drop),
        hatched::http::no_body(&req),
        hatched::http::optional_untyped_json_body::<IgnoredAny>(&req).map(drop),
    ] {
        if parsed.is_ok() {
            let bytes: &[u8] = req.body().as_ref();
            let first = bytes.iter().find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'));
            // Only an object, or nothing (all whitespace) where the body is optional.
            let empty = bytes.iter().all(u8::is_ascii_whitespace);
            assert!(empty || first == Some(&b'{'), "a non-object body was accepted");
        }
    }
});
