//! Matching a request's method and path against the template's routes, like API Gateway's
//! resource tree: literal segments beat `{param}`, which beats greedy `{param+}`.

use std::collections::BTreeMap;

use crate::api::Route;

/// Outcome of routing one request.
#[derive(Debug, PartialEq)]
pub enum RouteMatch<'a> {
    /// A route for this method and path, with decoded path parameters.
    Found {
        /// The route.
        route: &'a Route,
        /// Path parameters by name.
        params: BTreeMap<String, String>,
    },
    /// The path is a known resource, but not with this method.
    MethodNotAllowed {
        /// Resource path template.
        resource: &'a str,
        /// Methods the resource has.
        methods: Vec<&'a str>,
    },
    /// No resource matches the path.
    NotFound,
}

/// The routes of one API.
#[derive(Debug, Clone)]
pub struct Router {
    routes: Vec<Route>,
}

/// Percent-decodes a URL component (invalid escapes are kept as they are).
pub fn percent_decode(input: &str) -> String {
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(hi), Some(lo)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push(hi << 4 | lo);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Matches `path` against a template like `/users/{id}`; returns the specificity rank (lower is
/// more specific) and the decoded parameters.
pub fn match_template(template: &str, path: &str) -> Option<(Vec<u8>, BTreeMap<String, String>)> {
    let pattern: Vec<&str> = template.trim_start_matches('/').split('/').filter(|s| !s.is_empty()).collect();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let segments: Vec<&str> = if segments == [""] { Vec::new() } else { segments };
    let mut params = BTreeMap::new();
    let mut rank = Vec::new();
    for (i, part) in pattern.iter().enumerate() {
        if let Some(name) = part.strip_prefix('{').and_then(|p| p.strip_suffix("+}")) {
            let rest = segments.get(i..).filter(|r| !r.is_empty() && r.iter().all(|s| !s.is_empty()))?;
            params.insert(name.to_owned(), percent_decode(&rest.join("/")));
            rank.push(2);
            return (i + 1 == pattern.len()).then_some((rank, params));
        }
        let segment = segments.get(i).filter(|s| !s.is_empty())?;
        if let Some(name) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
            params.insert(name.to_owned(), percent_decode(segment));
            rank.push(1);
        } else if *part == *segment {
            rank.push(0);
        } else {
            return None;
        }
    }
    (segments.len() == pattern.len()).then_some((rank, params))
}

impl Router {
    /// A router over `routes`.
    pub fn new(routes: Vec<Route>) -> Self {
        Self { routes }
    }

    /// The routes.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// Finds the route for `method` (upper case) and raw `path` (no query string).
    pub fn find(&self, method: &str, path: &str) -> RouteMatch<'_> {
        let mut best: Option<(Vec<u8>, &str, BTreeMap<String, String>)> = None;
        for route in &self.routes {
            if let Some((rank, params)) = match_template(&route.path, path) {
                if best.as_ref().is_none_or(|(r, _, _)| rank < *r) {
                    best = Some((rank, &route.path, params));
                }
            }
        }
        let Some((_, resource, params)) = best else {
            return RouteMatch::NotFound;
        };
        let on_resource = || self.routes.iter().filter(|r| r.path == resource);
        let route = on_resource().find(|r| r.method == method).or_else(|| on_resource().find(|r| r.method == "ANY"));
        match route {
            Some(route) => RouteMatch::Found { route, params },
            None => {
                RouteMatch::MethodNotAllowed { resource, methods: on_resource().map(|r| r.method.as_str()).collect() }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(method: &str, path: &str) -> Route {
        Route {
            method: method.into(),
            path: path.into(),
            function: "F".into(),
            binary: "f".into(),
            api_key_required: true,
            throttle: None,
        }
    }

    #[test]
    fn templates_match_segments() {
        let (_, p) = match_template("/users/{id}", "/users/abc%40x").unwrap();
        assert_eq!(p["id"], "abc@x");
        assert!(match_template("/users/{id}", "/users").is_none());
        assert!(match_template("/users/{id}", "/users/").is_none());
        assert!(match_template("/users/{id}", "/users/a/b").is_none());
        assert!(match_template("/register", "/register").is_some());
        assert!(match_template("/register", "/registerx").is_none());
        let (_, p) = match_template("/files/{path+}", "/files/a/b").unwrap();
        assert_eq!(p["path"], "a/b");
        assert!(match_template("/files/{path+}", "/files").is_none());
        assert!(match_template("/", "/").is_some());
    }

    #[test]
    fn router_prefers_literals_and_reports_methods() {
        let r = Router::new(vec![
            route("GET", "/users/{id}"),
            route("GET", "/users/me"),
            route("POST", "/register"),
            route("ANY", "/any"),
        ]);
        match r.find("GET", "/users/me") {
            RouteMatch::Found { route, params } => {
                assert_eq!(route.path, "/users/me");
                assert!(params.is_empty());
            }
            other => panic!("{other:?}"),
        }
        match r.find("GET", "/users/42") {
            RouteMatch::Found { route, params } => {
                assert_eq!(route.path, "/users/{id}");
                assert_eq!(params["id"], "42");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            r.find("GET", "/register"),
            RouteMatch::MethodNotAllowed { resource: "/register", methods: vec!["POST"] }
        );
        assert!(matches!(r.find("DELETE", "/any"), RouteMatch::Found { .. }));
        assert_eq!(r.find("POST", "/nope"), RouteMatch::NotFound);
        assert_eq!(percent_decode("a%2Fb%zz%4"), "a/b%zz%4");
    }
}
