#![no_main]
//! Whole API Gateway v2 events as the runtime delivers them: any JSON that deserialises as an
//! event (hostile Host, X-Forwarded-*, rawPath, rawQueryString, cookies, stage, domain name,
//! body) goes through the adapter without a panic, and the raw path comes through untouched.
use hatched::lambda_http::RequestExt;
use hatched::lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(event) = serde_json::from_slice::<ApiGatewayV2httpRequest>(data) else { return };
    let path = event.raw_path.clone().unwrap_or_default();
    let req = hatched::lambda::into_request(event);
    assert_eq!(req.raw_http_path(), path);
    let _ = hatched::RequestCtx::of(&req);
});
