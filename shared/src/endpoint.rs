//! An endpoint as a value. Each route file (`functions/src/routes/<name>.rs`) declares its
//! `ENDPOINT` once, beside its handler: route, access rule, browser use, success status.
//! The list of them (`functions::ENDPOINTS`, built from the route files) feeds the local API's
//! dispatch, the fallback's 404/405/preflight answers, and the tests that compare it with
//! `template.yaml`, `openapi.yaml` and `events/`. What a function may do in AWS is written
//! once, in its `template.yaml` policy; `tests/tests/iam.rs` compares that with what the
//! function did in the end-to-end suite, both ways.

use std::future::Future;
use std::pin::Pin;

use lambda_http::{Body, Request, Response};

use crate::App;
use crate::auth::Access;

/// A handler as the local API calls it (a Lambda binary calls its route's `handle` directly).
/// Kept apart from [`Endpoint`], so a function that reads the list (the fallback) links no
/// other function's code.
pub type Handler = for<'a> fn(&'a App, Request) -> Pin<Box<dyn Future<Output = Response<Body>> + Send + 'a>>;

/// Everything about one route that is not its story.
#[derive(Clone, Copy)]
pub struct Endpoint {
    /// The function's binary (`functions/src/bin/<function>.rs`, the template's
    /// `BuildProperties: Binary`); its route file is the same name in snake_case.
    pub function: &'static str,
    /// HTTP method; `$default` for the fallback.
    pub method: &'static str,
    /// API Gateway path template (`{name}` for a parameter); `$default` for the fallback.
    pub path: &'static str,
    pub access: Access,
    /// Called from browsers with a publishable key: CORS headers on every answer, and the
    /// fallback answers its preflight.
    pub browser: bool,
    /// Status of a successful answer.
    pub status: u16,
}

/// A function that no route reaches (an AWS service invokes it, e.g. Secrets Manager's
/// rotation): listed beside the endpoints (`functions::OTHER_FUNCTIONS`) so the template,
/// IAM and events checks cover it too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Function {
    /// The function's binary, as [`Endpoint::function`].
    pub function: &'static str,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} ({})", self.method, self.path, self.function)
    }
}

impl PartialEq for Endpoint {
    fn eq(&self, other: &Endpoint) -> bool {
        (self.function, self.method, self.path) == (other.function, other.method, other.path)
    }
}

/// Matches a concrete path against a template, returning the parameters by name.
pub fn match_path(template: &str, path: &str) -> Option<Vec<(String, String)>> {
    let mut params = Vec::new();
    let mut t_parts = template.split('/');
    let mut p_parts = path.split('/');
    loop {
        match (t_parts.next(), p_parts.next()) {
            (None, None) => return Some(params),
            (Some(t), Some(p)) if t.starts_with('{') && t.ends_with('}') => {
                if p.is_empty() {
                    return None;
                }
                params.push((t[1..t.len() - 1].to_owned(), p.to_owned()));
            }
            (Some(t), Some(p)) if t == p => {}
            _ => return None,
        }
    }
}

/// What API Gateway does with a method and path, given the deployed endpoints.
#[derive(Debug, PartialEq)]
pub enum Resolution<'a> {
    /// The endpoint's function, with the path parameters.
    Found(&'a Endpoint, Vec<(String, String)>),
    /// `OPTIONS` on a browser route (its path template): the fallback answers with the
    /// route's methods.
    Preflight(&'static str, Vec<&'static str>),
    /// Known path, other method (the fallback's 405).
    MethodNotAllowed,
    /// The fallback's 404.
    NotFound,
}

impl Resolution<'_> {
    /// API Gateway's `routeKey` for the event.
    pub fn route_key(&self) -> String {
        match self {
            Resolution::Found(e, _) => format!("{} {}", e.method, e.path),
            Resolution::Preflight(template, _) => format!("OPTIONS {template}"),
            Resolution::MethodNotAllowed | Resolution::NotFound => "$default".to_owned(),
        }
    }
}

/// As API Gateway routes: among the routes whose template matches, the most specific (fewest
/// path parameters) for the method wins (`POST /api/v1/keys/validate` over `/api/v1/keys/{prefix}`).
pub fn resolve<'a>(endpoints: &[&'a Endpoint], method: &str, path: &str) -> Resolution<'a> {
    let mut browser = (None, Vec::new());
    let mut path_known = false;
    let mut found: Option<(&'a Endpoint, Vec<(String, String)>)> = None;
    for endpoint in endpoints {
        if let Some(params) = match_path(endpoint.path, path) {
            if endpoint.method.eq_ignore_ascii_case(method) {
                if found.as_ref().is_none_or(|(_, best)| params.len() < best.len()) {
                    found = Some((endpoint, params));
                }
                continue;
            }
            path_known = true;
            if endpoint.browser {
                browser.0 = Some(endpoint.path);
                browser.1.push(endpoint.method);
            }
        }
    }
    if let Some((endpoint, params)) = found {
        return Resolution::Found(endpoint, params);
    }
    match (method.eq_ignore_ascii_case("OPTIONS"), browser, path_known) {
        (true, (Some(template), methods), _) => Resolution::Preflight(template, methods),
        (_, _, true) => Resolution::MethodNotAllowed,
        (_, _, false) => Resolution::NotFound,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Scope;

    fn endpoint(method: &'static str, path: &'static str, browser: bool) -> Endpoint {
        Endpoint { function: "f", method, path, access: Access::Scoped(Scope::ReadBuddies), browser, status: 200 }
    }

    #[test]
    fn resolves_known_unknown_wrong_method_and_preflight() {
        let (validate, gates) = (endpoint("POST", "/v/{id}", false), endpoint("GET", "/gates", true));
        let all = [&validate, &gates];
        assert!(matches!(resolve(&all, "POST", "/v/1"), Resolution::Found(e, p) if *e == validate && p[0].1 == "1"));
        assert_eq!(resolve(&all, "GET", "/v/1"), Resolution::MethodNotAllowed);
        assert_eq!(resolve(&all, "OPTIONS", "/v/1"), Resolution::MethodNotAllowed, "server routes invite no browser");
        assert_eq!(resolve(&all, "OPTIONS", "/gates"), Resolution::Preflight("/gates", vec!["GET"]));
        assert_eq!(resolve(&all, "POST", "/v/1/x"), Resolution::NotFound);
        assert_eq!(resolve(&all, "GET", "/"), Resolution::NotFound);
    }

    #[test]
    fn path_parameters() {
        let params = match_path("/a/{x}/b/{y}", "/a/1/b/two").unwrap();
        assert_eq!(params.iter().map(|(_, v)| v.as_str()).collect::<Vec<_>>(), ["1", "two"]);
        assert!(match_path("/a/{x}", "/a/").is_none());
        assert!(match_path("/a/{x}", "/a/1/2").is_none());
    }
}
