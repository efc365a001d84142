#![no_main]
//! Request parsing as API Gateway delivers it: any body, any base64 flag, any content type.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (flag, rest) = data.split_first().unwrap_or((&0, &[]));
    let text = String::from_utf8_lossy(rest).into_owned();
    let event = serde_json::json!({
        "version": "2.0", "routeKey": "POST /x", "rawPath": "/x", "rawQueryString": "",
        "headers": { "content-type": if flag & 2 == 0 { "application/json" } else { "text/plain" } },
        "requestContext": { "http": { "method": "POST", "path": "/x", "protocol": "HTTP/1.1", "sourceIp": "1.2.3.4", "userAgent": "f" },
            "requestId": "r", "routeKey": "POST /x", "stage": "$default", "timeEpoch": 0, "accountId": "a", "apiId": "b" },
        "body": text, "isBase64Encoded": flag & 1 == 1
    });
    let Ok(event) = serde_json::from_value(event) else { return };
    let req = hatched::lambda::into_request(event);
    if let Err(e) = hatched::http::json_body::<serde_json::Value>(&req) {
        assert!(matches!(e.status(), 400 | 413 | 415));
    }
});
