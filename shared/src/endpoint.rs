//! An endpoint as a value. Each function crate declares its `ENDPOINT` once, beside its
//! handler: route, access rule, browser use, success status and the AWS actions it needs.
//! The list of them (crate `hatched-endpoints`) feeds the local API's dispatch, the
//! fallback's 404/405/preflight answers, and the tests that compare it with `template.yaml`,
//! `openapi.yaml`, `events/` and each function's IAM policy.

use std::future::Future;
use std::pin::Pin;

use lambda_http::{Body, Request, Response};

use crate::App;
use crate::auth::Access;

/// A handler as the local API calls it (a Lambda binary calls its crate's `handle` directly).
/// Kept apart from [`Endpoint`], so a function that reads the list (the fallback) links no
/// other function's code.
pub type Handler = for<'a> fn(&'a App, Request) -> Pin<Box<dyn Future<Output = Response<Body>> + Send + 'a>>;

/// Everything about one route that is not its story.
#[derive(Clone, Copy)]
pub struct Endpoint {
    /// The function crate under `functions/`, which is also its binary's name.
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
    /// What the function may do in AWS: IAM actions, and for DynamoDB the table partitions
    /// (`pk` prefixes) each may touch. Its template policy must grant exactly these (DynamoDB
    /// statements scoped with `dynamodb:LeadingKeys`), and the tests check it does nothing else.
    pub aws: &'static [Grant],
}

/// A function that no route reaches (an AWS service invokes it, e.g. Secrets Manager's
/// rotation): its crate and AWS grants, listed beside the endpoints
/// (`endpoints::OTHER_FUNCTIONS`) so the template, IAM and events checks cover it too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Function {
    /// The function crate under `functions/`, which is also its binary's name.
    pub function: &'static str,
    /// As [`Endpoint::aws`].
    pub aws: &'static [Grant],
}

impl Endpoint {
    /// What IAM needs to know of it.
    pub const fn as_function(&self) -> Function {
        Function { function: self.function, aws: self.aws }
    }
}

/// One IAM action, and the partitions it is limited to (none for Secrets Manager).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    pub action: &'static str,
    pub partitions: &'static [&'static str],
}

/// A DynamoDB action on these partitions (`crate::store::partition`).
pub const fn dynamodb(action: &'static str, partitions: &'static [&'static str]) -> Grant {
    Grant { action, partitions }
}

/// A Secrets Manager action (on the secret the template names).
pub const fn secrets(action: &'static str) -> Grant {
    Grant { action, partitions: &[] }
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

/// IAM actions, spelled once.
pub mod aws {
    pub const GET_ITEM: &str = "dynamodb:GetItem";
    pub const BATCH_GET_ITEM: &str = "dynamodb:BatchGetItem";
    pub const QUERY: &str = "dynamodb:Query";
    pub const PUT_ITEM: &str = "dynamodb:PutItem";
    pub const UPDATE_ITEM: &str = "dynamodb:UpdateItem";
    pub const CONDITION_CHECK_ITEM: &str = "dynamodb:ConditionCheckItem";
    pub const GET_SECRET_VALUE: &str = "secretsmanager:GetSecretValue";
    pub const PUT_SECRET_VALUE: &str = "secretsmanager:PutSecretValue";
    pub const DESCRIBE_SECRET: &str = "secretsmanager:DescribeSecret";
    pub const UPDATE_SECRET_VERSION_STAGE: &str = "secretsmanager:UpdateSecretVersionStage";
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
        Endpoint {
            function: "f",
            method,
            path,
            access: Access::Scoped(Scope::ReadBuddies),
            browser,
            status: 200,
            aws: &[],
        }
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
