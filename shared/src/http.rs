//! HTTP glue shared by every function: request context, body parsing per API.md,
//! credentials from `Authorization`, and responses with the common headers.

use lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequestContext;
use lambda_http::http::{HeaderMap, HeaderValue, StatusCode, header};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::auth::AuthError;
use crate::domain::ApiKey;
use crate::domain::ratelimit::RateLimitStatus;
use crate::error::ApiError;

/// Largest accepted request body.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// Marks a request whose `isBase64Encoded` body could not be decoded (set by
/// [`crate::lambda::into_request`]; `lambda_http` itself would panic on it).
#[derive(Debug, Clone, Copy)]
pub struct UndecodableBody;

pub use crate::auth::RequestCtx;

impl RequestCtx {
    pub fn of(req: &Request) -> RequestCtx {
        match req.request_context_ref() {
            Some(RequestContext::ApiGatewayV2(ctx)) => RequestCtx::from_gateway(ctx, req.headers()),
            _ => RequestCtx::from_gateway(&Default::default(), req.headers()),
        }
    }

    /// From an API Gateway v2 request context and headers (HTTP events and authorizer
    /// events carry the same ones).
    pub fn from_gateway(ctx: &ApiGatewayV2httpRequestContext, headers: &HeaderMap) -> RequestCtx {
        RequestCtx {
            request_id: ctx
                .request_id
                .clone()
                .filter(|id| !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_graphic()))
                .unwrap_or_else(fresh_request_id),
            source_ip: ctx.http.source_ip.clone().filter(|ip| !ip.is_empty()).unwrap_or_else(|| "unknown".to_owned()),
            origin: headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()).map(str::to_owned),
            received: std::time::Instant::now(),
        }
    }
}

impl RequestCtx {
    /// The context of a request that never became an event (refused before any function).
    pub fn fresh() -> RequestCtx {
        RequestCtx {
            request_id: fresh_request_id(),
            source_ip: "unknown".to_owned(),
            origin: None,
            received: std::time::Instant::now(),
        }
    }
}

fn fresh_request_id() -> String {
    format!("req_{}", crate::domain::key::random_base62(24))
}

fn header_text<'r>(req: &'r Request, name: &str) -> Option<&'r str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// The key from `Authorization: Bearer <key>` (scheme case-insensitive).
pub fn bearer_key(req: &Request) -> Result<ApiKey, AuthError> {
    bearer_key_in(req.headers())
}

/// The bearer of `Authorization` if it has a JWT's shape (`eyJ…`, three dot-separated parts,
/// at most 4 KiB): a key portal session's token, for the routes that take one. Anything else
/// goes through [`bearer_key`] (where a JWT is `invalid_key_format`).
pub fn portal_token(req: &Request) -> Option<&str> {
    let text = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = text.split_once(' ')?;
    let shaped = token.starts_with("eyJ")
        && token.len() <= 4096
        && token.split('.').count() == 3
        && token.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    (scheme.eq_ignore_ascii_case("bearer") && shaped).then_some(token)
}

/// Where the key portal page is, with `token` in the fragment (never sent to a server):
/// `base` (the `PortalBaseUrl` parameter) if set, else this API's own address from API
/// Gateway's request context (its domain name and stage) — never from the client's `Host`.
pub fn portal_url(req: &Request, base: Option<&str>, token: &str) -> String {
    let base = match base {
        Some(base) => base.trim_end_matches('/').to_owned(),
        None => match req.request_context_ref() {
            Some(RequestContext::ApiGatewayV2(ctx)) => {
                let domain = ctx.domain_name.as_deref().unwrap_or("localhost");
                match ctx.stage.as_deref() {
                    None | Some("$default") | Some("") => format!("https://{domain}"),
                    Some(stage) => format!("https://{domain}/{stage}"),
                }
            }
            _ => String::new(),
        },
    };
    format!("{base}/portal#token={token}")
}

/// [`bearer_key`] from a header map (an authorizer's request has no body to go with it).
pub fn bearer_key_in(headers: &HeaderMap) -> Result<ApiKey, AuthError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(AuthError::MissingKey);
    };
    let text = value.to_str().map_err(|_| AuthError::InvalidKeyFormat(crate::domain::KeyFormatError::Charset))?;
    let (scheme, key) = text.split_once(' ').unwrap_or((text, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(AuthError::InvalidKeyFormat(crate::domain::KeyFormatError::UnknownPrefix));
    }
    Ok(ApiKey::parse(key)?)
}

/// The raw body bytes, after the size and base64 checks every route shares.
fn body_bytes(req: &Request) -> Result<&[u8], ApiError> {
    if req.extensions().get::<UndecodableBody>().is_some() {
        return Err(ApiError::InvalidRequest("the body is marked base64 but is not valid base64".into()));
    }
    let bytes: &[u8] = req.body().as_ref();
    if bytes.len() > MAX_BODY_BYTES {
        return Err(ApiError::PayloadTooLarge);
    }
    Ok(bytes)
}

/// A JSON object body: 413 over 16 KiB, 415 for another media type, 400 for anything
/// that does not deserialize into `T` (request types deny unknown fields).
pub fn json_body<T: DeserializeOwned>(req: &Request) -> Result<T, ApiError> {
    let bytes = body_bytes(req)?;
    let media_type = header_text(req, header::CONTENT_TYPE.as_str())
        .map(|v| v.split(';').next().unwrap_or("").trim().to_ascii_lowercase());
    if media_type.as_deref() != Some("application/json") {
        return Err(ApiError::UnsupportedMediaType);
    }
    json_object(bytes)
}

/// The one parser of request bodies: a JSON object or 400, before any field is read.
///
/// serde's derived structs also accept a JSON array, read positionally (and
/// `deny_unknown_fields` does not stop it): `["secret"]` would be `{"type":"secret"}`. So a
/// body whose first token is not `{` (an array, string, number, `null`, `true`/`false`) is
/// refused here. JSON says a value's type is its first non-whitespace byte, so that byte
/// decides, with no second parse; what follows must still deserialize into `T`.
fn json_object<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // JSON's whitespace (RFC 8259): space, tab, line feed, carriage return.
    let first = bytes.iter().find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'));
    match first {
        Some(b'{') => serde_json::from_slice(bytes).map_err(|e| ApiError::InvalidRequest(describe_json_error(&e))),
        Some(_) => Err(ApiError::InvalidRequest("the body must be a JSON object".into())),
        None => Err(ApiError::InvalidRequest("the body must be a JSON object, and it is empty".into())),
    }
}

/// A path parameter API Gateway extracted (`{session_id}` …), parsed into its id type.
pub fn path_param<T, E>(req: &Request, name: &str, parse: impl FnOnce(&str) -> Result<T, E>) -> Result<T, ApiError>
where
    E: Into<ApiError>,
{
    let params = req.path_parameters();
    let text = params.first(name).ok_or_else(|| ApiError::InvalidRequest(format!("missing path parameter {name}")))?;
    parse(text).map_err(Into::into)
}

/// A route whose body is optional (the unlock): empty is `None`, anything else must be the
/// JSON object `T`. Like the bodiless routes it ignores `Content-Type`.
pub fn optional_untyped_json_body<T: DeserializeOwned>(req: &Request) -> Result<Option<T>, ApiError> {
    let bytes = body_bytes(req)?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    json_object(bytes).map(Some)
}

/// For `Option<Option<T>>` fields: absent → `None`, `null` → `Some(None)` (a PATCH that
/// removes a value), a value → `Some(Some(v))`. Use with `#[serde(default)]`.
pub fn double_option<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    serde::Deserialize::deserialize(d).map(Some)
}

/// A listing's `?limit=` (1–100, default 50) and `?cursor=` (resuming after a sort key of
/// the given shape): anything else is `invalid_request`.
pub fn page_params(req: &Request, shape: impl Fn(&str) -> bool) -> Result<(u32, Option<String>), ApiError> {
    use crate::domain::page::{decode_cursor, parse_limit};
    let limit = parse_limit(query_param(req, "limit"))
        .ok_or_else(|| ApiError::InvalidRequest("limit must be an integer from 1 to 100".into()))?;
    let after = query_param(req, "cursor")
        .map(|c| decode_cursor(c, shape))
        .transpose()
        .map_err(|e| ApiError::InvalidRequest(e.to_string()))?;
    Ok((limit, after))
}

/// A query parameter (`?limit=…`), its first value.
pub fn query_param<'r>(req: &'r Request, name: &str) -> Option<&'r str> {
    req.query_string_parameters_ref().and_then(|q| q.first(name))
}

/// A route whose body is optional and, when present, JSON with its media type (the roll).
pub fn optional_json_body<T: DeserializeOwned>(req: &Request) -> Result<Option<T>, ApiError> {
    if body_bytes(req)?.is_empty() { Ok(None) } else { json_body(req).map(Some) }
}

/// Routes without a body (GET, DELETE) accept an empty one and ignore its type, but still
/// refuse oversize or undecodable bodies, and, like every route, a body that is not a JSON
/// object (a DELETE with `[0]` is a malformed request, not a DELETE). An object is ignored.
pub fn no_body(req: &Request) -> Result<(), ApiError> {
    optional_untyped_json_body::<serde::de::IgnoredAny>(req).map(drop)
}

/// serde's messages can quote the offending value (which may be a key or token):
/// keep only the category, a field name if it is a plain identifier, and the position.
fn describe_json_error(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let at = format!("line {}, column {}", e.line(), e.column());
    match e.classify() {
        Category::Syntax | Category::Eof | Category::Io => {
            format!("the body is not valid JSON ({at})")
        }
        Category::Data => {
            let text = e.to_string();
            let field = text
                .split('`')
                .nth(1)
                .filter(|f| !f.is_empty() && f.len() <= 32 && f.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
            for (needle, what) in [
                ("unknown field", "unknown field"),
                ("missing field", "missing field"),
                ("duplicate field", "duplicate field"),
            ] {
                if text.starts_with(needle) {
                    return match field {
                        Some(f) => format!("{what} `{f}`"),
                        None => what.to_owned(),
                    };
                }
            }
            if text.contains(" does not match ") {
                return format!("an identifier does not match its pattern ({at})");
            }
            format!("a field has the wrong type or value ({at})")
        }
    }
}

/// CORS for browser routes: any origin (publishable keys carry their own origin allowlist,
/// checked server-side), never credentials, and the headers a client needs to read.
pub fn add_cors(resp: &mut Response<Body>) {
    let h = resp.headers_mut();
    h.insert("access-control-allow-origin", HeaderValue::from_static("*"));
    h.insert(
        "access-control-expose-headers",
        HeaderValue::from_static("x-request-id, retry-after, ratelimit-limit, ratelimit-remaining, ratelimit-reset"),
    );
}

/// The answer to a preflight for a browser route allowing `methods`.
pub fn preflight(ctx: &RequestCtx, methods: &[&str]) -> Response<Body> {
    let mut resp = Response::new(Body::Empty);
    *resp.status_mut() = StatusCode::NO_CONTENT;
    add_cors(&mut resp);
    let allow = format!("{}, OPTIONS", methods.join(", "));
    let h = resp.headers_mut();
    h.insert(
        "access-control-allow-methods",
        HeaderValue::from_str(&allow).unwrap_or(HeaderValue::from_static("OPTIONS")),
    );
    h.insert("access-control-allow-headers", HeaderValue::from_static("authorization, content-type"));
    h.insert("access-control-max-age", HeaderValue::from_static("600"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(id) = HeaderValue::from_str(&ctx.request_id) {
        h.insert("x-request-id", id);
    }
    resp
}

/// Response headers every answer carries, plus rate-limit headers for keyed calls.
pub struct Reply<'a> {
    ctx: &'a RequestCtx,
    rate: Option<&'a RateLimitStatus>,
    retry_after: Option<u64>,
}

impl<'a> Reply<'a> {
    pub fn new(ctx: &'a RequestCtx) -> Reply<'a> {
        Reply { ctx, rate: None, retry_after: None }
    }

    /// Adds `Retry-After` to a successful answer that reports a limit (validate's 200).
    pub fn with_retry_after(mut self, secs: Option<u64>) -> Reply<'a> {
        self.retry_after = secs;
        self
    }

    pub fn with_rate(mut self, rate: Option<&'a RateLimitStatus>) -> Reply<'a> {
        self.rate = rate;
        self
    }

    pub fn json<T: Serialize>(&self, status: u16, body: &T) -> Response<Body> {
        match serde_json::to_string(body) {
            Ok(text) => self.raw(status, text, "no-store"),
            Err(e) => self.error(&ApiError::Internal(format!("serializing response: {e}"))),
        }
    }

    pub fn json_cacheable<T: Serialize>(&self, body: &T, cache_control: &str) -> Response<Body> {
        match serde_json::to_string(body) {
            Ok(text) => self.raw(200, text, cache_control),
            Err(e) => self.error(&ApiError::Internal(format!("serializing response: {e}"))),
        }
    }

    /// A static page or asset with the key portal's security headers (API.md "The key
    /// portal"): no script, style or connection from any other origin, never framed, no
    /// referrer, no content sniffing.
    pub fn page(&self, content_type: &'static str, body: &'static str, cache_control: &'static str) -> Response<Body> {
        let mut resp = self.raw(200, body.to_owned(), cache_control);
        let headers = resp.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"),
        );
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
        headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
        resp
    }

    pub fn error(&self, err: &ApiError) -> Response<Body> {
        if err.status() >= 500 {
            tracing::error!(request_id = %self.ctx.request_id, code = err.code(), cause = %err, "request failed");
        }
        let mut resp = self.raw(err.status(), err.body(&self.ctx.request_id).to_string(), "no-store");
        if let Some(secs) = err.retry_after() {
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }

    fn raw(&self, status: u16, body: String, cache_control: &str) -> Response<Body> {
        let mut resp = Response::new(Body::Text(body));
        *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let headers = resp.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_str(cache_control).unwrap_or(HeaderValue::from_static("no-store")),
        );
        if let Ok(id) = HeaderValue::from_str(&self.ctx.request_id) {
            headers.insert("x-request-id", id);
        }
        if let Some(secs) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if let Some(rate) = self.rate {
            headers.insert("ratelimit-limit", HeaderValue::from(rate.limit));
            headers.insert("ratelimit-remaining", HeaderValue::from(rate.remaining));
            headers.insert("ratelimit-reset", HeaderValue::from(rate.reset_in_secs));
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_http::http;

    fn request(content_type: Option<&str>, body: &str) -> Request {
        let mut b = http::Request::builder().method("POST").uri("/x");
        if let Some(ct) = content_type {
            b = b.header("content-type", ct);
        }
        b.body(Body::Text(body.to_owned())).unwrap()
    }

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Probe {
        key: String,
    }

    #[test]
    fn media_type_and_charset() {
        assert!(json_body::<Probe>(&request(Some("application/json"), r#"{"key":"a"}"#)).is_ok());
        assert!(json_body::<Probe>(&request(Some("Application/JSON; charset=utf-8"), r#"{"key":"a"}"#)).is_ok());
        let e = json_body::<Probe>(&request(Some("text/plain"), r#"{"key":"a"}"#)).unwrap_err();
        assert_eq!(e.code(), "unsupported_media_type");
        let e = json_body::<Probe>(&request(None, r#"{"key":"a"}"#)).unwrap_err();
        assert_eq!(e.code(), "unsupported_media_type");
    }

    #[test]
    fn size_limit_is_16_kib() {
        let at = format!(r#"{{"key":"{}"}}"#, "a".repeat(MAX_BODY_BYTES - 10));
        assert_eq!(at.len(), MAX_BODY_BYTES);
        assert!(json_body::<Probe>(&request(Some("application/json"), &at)).is_ok());
        let over = format!(r#"{{"key":"{}"}}"#, "a".repeat(MAX_BODY_BYTES - 9));
        assert_eq!(
            json_body::<Probe>(&request(Some("application/json"), &over)).unwrap_err().code(),
            "payload_too_large"
        );
    }

    #[test]
    fn json_errors_never_echo_values() {
        let secret = "hatch_live_abcdefghijklmnopqrstuvwxyzABCDEF1mVgZW";
        for body in [
            format!(r#"{{"key":1,"x":"{secret}"}}"#),
            format!(r#"{{"key":["{secret}"]}}"#),
            format!(r#"{{"{secret}":1}}"#),
        ] {
            let e = json_body::<Probe>(&request(Some("application/json"), &body)).unwrap_err();
            assert_eq!(e.code(), "invalid_request");
            assert!(!e.message().contains(secret), "{}", e.message());
        }
        let e = json_body::<Probe>(&request(Some("application/json"), r#"{"key":"a","key":"b"}"#)).unwrap_err();
        assert_eq!(e.message(), "The request is invalid: duplicate field `key`.");
        let e = json_body::<Probe>(&request(Some("application/json"), r#"{"key":"a","extra":1}"#)).unwrap_err();
        assert_eq!(e.message(), "The request is invalid: unknown field `extra`.");
    }

    /// serde reads `["a"]` as `Probe { key: "a" }`: the parser must refuse every body that is
    /// not an object before `T` sees it, on every body-taking entry point.
    #[test]
    fn only_a_json_object_is_a_body() {
        let not_objects = [
            r#"["a"]"#,
            r#" ["a"]"#,
            "\n\t[\"a\"]",
            r#"[["a"]]"#,
            r#"[{"key":"a"}]"#,
            r#"[]"#,
            r#""a""#,
            "1",
            "-0.5e3",
            "null",
            "true",
            "false",
        ];
        for body in not_objects {
            let e = json_body::<Probe>(&request(Some("application/json"), body)).unwrap_err();
            assert_eq!(
                (e.code(), e.message().as_str()),
                ("invalid_request", "The request is invalid: the body must be a JSON object."),
                "{body}"
            );
            let e = optional_untyped_json_body::<Probe>(&request(None, body)).unwrap_err();
            assert_eq!(e.code(), "invalid_request", "{body}");
            let e = optional_json_body::<Probe>(&request(Some("application/json"), body)).unwrap_err();
            assert_eq!(e.code(), "invalid_request", "{body}");
        }
        // A value that is an object still parses, with leading JSON whitespace.
        assert!(json_body::<Probe>(&request(Some("application/json"), " \r\n\t{\"key\":\"a\"}")).is_ok());
        assert!(optional_untyped_json_body::<Probe>(&request(None, r#"{"key":"a"}"#)).unwrap().is_some());
        // Empty stays what it was for each route kind: an error where a body is required,
        // "no body" where it is optional.
        assert_eq!(json_body::<Probe>(&request(Some("application/json"), "")).unwrap_err().code(), "invalid_request");
        assert!(optional_untyped_json_body::<Probe>(&request(None, "  ")).unwrap().is_none());
        assert!(optional_json_body::<Probe>(&request(None, "")).unwrap().is_none());
    }

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        let key = ApiKey::generate(crate::domain::KeyKind::SecretLive);
        for scheme in ["Bearer", "bearer", "BEARER"] {
            let req = http::Request::builder()
                .header("authorization", format!("{scheme} {}", key.expose()))
                .body(Body::Empty)
                .unwrap();
            assert_eq!(bearer_key(&req).unwrap(), key);
        }
        let basic = http::Request::builder().header("authorization", "Basic abc").body(Body::Empty).unwrap();
        assert_eq!(ApiError::from(bearer_key(&basic).unwrap_err()).code(), "invalid_key_format");
        let none = http::Request::builder().body(Body::Empty).unwrap();
        assert_eq!(ApiError::from(bearer_key(&none).unwrap_err()).code(), "missing_key");
    }
}
