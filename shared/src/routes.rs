//! The route table: one entry per Lambda function. template.yaml and the local API are
//! checked against it by tests, so the three never drift apart.

/// A route of the HTTP API and the function that serves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub method: &'static str,
    /// API Gateway path template, `{name}` for a parameter.
    pub path: &'static str,
    /// Function crate under `functions/`.
    pub function: &'static str,
    /// Called from browsers with a publishable key: CORS preflight is answered for it.
    pub browser: bool,
}

/// The function answering CORS preflights (`OPTIONS` on browser routes), unknown paths and
/// wrong methods.
pub const FALLBACK: &str = "fallback";

pub const ROUTES: &[Route] = &[
    server("POST", "/api/v1/keys/validate", "validate-key"),
    server("POST", "/api/v1/widget-sessions", "create-widget-session"),
    server("DELETE", "/api/v1/widget-sessions/{session_id}", "revoke-widget-session"),
    browser("POST", "/api/v1/embed-tokens", "create-embed-token"),
    browser("OPTIONS", "/api/v1/embed-tokens", FALLBACK),
    server("POST", "/api/v1/tokens/introspect", "introspect-token"),
    server("GET", "/.well-known/jwks.json", "jwks"),
    browser("POST", "/api/v1/buddies/{buddy_id}/gates/{gate_key}/unlock", "unlock-gate"),
    browser("OPTIONS", "/api/v1/buddies/{buddy_id}/gates/{gate_key}/unlock", FALLBACK),
    browser("GET", "/api/v1/gates", "list-gates"),
    browser("OPTIONS", "/api/v1/gates", FALLBACK),
    browser("GET", "/api/v1/buddies/{buddy_id}/unlocks", "list-unlocks"),
    browser("OPTIONS", "/api/v1/buddies/{buddy_id}/unlocks", FALLBACK),
];

const fn server(method: &'static str, path: &'static str, function: &'static str) -> Route {
    Route { method, path, function, browser: false }
}

const fn browser(method: &'static str, path: &'static str, function: &'static str) -> Route {
    Route { method, path, function, browser: true }
}

/// The methods a browser may use on `path` (its non-OPTIONS browser routes), if any.
pub fn browser_methods(path: &str) -> Vec<&'static str> {
    ROUTES
        .iter()
        .filter(|r| r.browser && r.method != "OPTIONS" && match_path(r.path, path).is_some())
        .map(|r| r.method)
        .collect()
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

/// What the router should do with a method and path.
#[derive(Debug, PartialEq, Eq)]
pub enum Resolution {
    Found(Route, Vec<(String, String)>),
    MethodNotAllowed,
    NotFound,
}

pub fn resolve(method: &str, path: &str) -> Resolution {
    let mut path_known = false;
    for route in ROUTES {
        if let Some(params) = match_path(route.path, path) {
            if route.method.eq_ignore_ascii_case(method) {
                return Resolution::Found(*route, params);
            }
            path_known = true;
        }
    }
    if path_known { Resolution::MethodNotAllowed } else { Resolution::NotFound }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_known_unknown_and_wrong_method() {
        assert!(
            matches!(resolve("POST", "/api/v1/keys/validate"), Resolution::Found(r, _) if r.function == "validate-key")
        );
        assert_eq!(resolve("GET", "/api/v1/keys/validate"), Resolution::MethodNotAllowed);
        assert_eq!(resolve("POST", "/api/v1/keys/validate/x"), Resolution::NotFound);
        assert_eq!(resolve("GET", "/"), Resolution::NotFound);
    }

    #[test]
    fn path_parameters() {
        let params = match_path("/a/{x}/b/{y}", "/a/1/b/two").unwrap();
        assert_eq!(params.iter().map(|(_, v)| v.as_str()).collect::<Vec<_>>(), ["1", "two"]);
        assert!(match_path("/a/{x}", "/a/").is_none());
        assert!(match_path("/a/{x}", "/a/1/2").is_none());
    }
}
