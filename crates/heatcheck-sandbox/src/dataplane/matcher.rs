//! One compiled `HTTPRouteMatch`: path, method, headers and query parameters, ANDed.
//! Regexes are compiled once, when the routing table is built, and always match the
//! whole value (RE2-like syntax of the `regex` crate).

use std::borrow::Cow;
use std::cmp::Reverse;

use http::{HeaderMap, HeaderName};
use regex::Regex;
use serde_json::Value;

/// What the router looks at in a request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RequestParts<'a> {
    pub method: &'a str,
    /// Host without port.
    pub host: &'a str,
    /// Path without the query string.
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub headers: &'a HeaderMap,
}

#[derive(Debug, Clone)]
pub(super) enum PathMatch {
    Exact(String),
    /// The prefix without its trailing `/` ("" for "/"), matched element by element.
    Prefix(String),
    Regex(Regex),
}

#[derive(Debug, Clone)]
pub(super) enum ValueMatch {
    Exact(String),
    Regex(Regex),
}

impl ValueMatch {
    fn matches(&self, v: &str) -> bool {
        match self {
            ValueMatch::Exact(e) => e == v,
            ValueMatch::Regex(r) => r.is_match(v),
        }
    }
}

#[derive(Debug, Clone)]
pub(super) struct CompiledMatch {
    pub path: PathMatch,
    pub method: Option<String>,
    pub headers: Vec<(HeaderName, ValueMatch)>,
    pub query: Vec<(String, ValueMatch)>,
}

/// Sort key: smaller sorts first = higher precedence (apis/v1 HTTPRouteRule.Matches):
/// Exact path, then the longest path, then a method match, then more header matches, then
/// more query matches. Regex paths are implementation-specific; like Envoy Gateway they rank
/// between Exact and PathPrefix, longer patterns first.
pub(super) type MatchRank = (u8, Reverse<usize>, bool, Reverse<usize>, Reverse<usize>);

fn full_regex(pattern: &str) -> Result<Regex, String> {
    Regex::new(&format!("^(?:{pattern})$"))
        .map_err(|e| format!("invalid regular expression {pattern:?}: {e}"))
}

fn value_match(m: &Value, what: &str) -> Result<ValueMatch, String> {
    let value = m
        .get("value")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("{what} match without a value"))?;
    match m.get("type").and_then(Value::as_str).unwrap_or("Exact") {
        "Exact" => Ok(ValueMatch::Exact(value.to_string())),
        "RegularExpression" => full_regex(value).map(ValueMatch::Regex),
        other => Err(format!("unsupported {what} match type {other:?}")),
    }
}

impl CompiledMatch {
    /// The default of a rule without matches: PathPrefix "/".
    pub(super) fn catch_all() -> Self {
        CompiledMatch {
            path: PathMatch::Prefix(String::new()),
            method: None,
            headers: vec![],
            query: vec![],
        }
    }

    /// Compile an `HTTPRouteMatch` object; an error makes the match unusable (the route is
    /// then not Accepted for it, reason UnsupportedValue).
    pub(super) fn compile(m: &Value) -> Result<Self, String> {
        let path = match m.get("path") {
            None | Some(Value::Null) => PathMatch::Prefix(String::new()),
            Some(p) => {
                let value = p.get("value").and_then(Value::as_str).unwrap_or("/");
                match p
                    .get("type")
                    .and_then(Value::as_str)
                    .unwrap_or("PathPrefix")
                {
                    "Exact" => PathMatch::Exact(value.to_string()),
                    "PathPrefix" => {
                        if !value.starts_with('/') {
                            return Err(format!("path prefix {value:?} must start with '/'"));
                        }
                        PathMatch::Prefix(value.trim_end_matches('/').to_string())
                    }
                    "RegularExpression" => PathMatch::Regex(full_regex(value)?),
                    other => return Err(format!("unsupported path match type {other:?}")),
                }
            }
        };
        let method = m
            .get("method")
            .and_then(Value::as_str)
            .map(str::to_ascii_uppercase);
        let mut headers: Vec<(HeaderName, ValueMatch)> = Vec::new();
        for h in m
            .get("headers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let name = h.get("name").and_then(Value::as_str).unwrap_or_default();
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("invalid header name {name:?}"))?;
            // Only the first entry of an equivalent (case-insensitive) name counts.
            if headers.iter().any(|(n, _)| *n == name) {
                continue;
            }
            headers.push((name, value_match(h, "header")?));
        }
        let mut query: Vec<(String, ValueMatch)> = Vec::new();
        for q in m
            .get("queryParams")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let name = q
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            if name.is_empty() {
                return Err("query param match without a name".into());
            }
            if query.iter().any(|(n, _)| *n == name) {
                continue;
            }
            query.push((name, value_match(q, "query param")?));
        }
        Ok(CompiledMatch {
            path,
            method,
            headers,
            query,
        })
    }

    pub(super) fn rank(&self) -> MatchRank {
        let (kind, len) = match &self.path {
            PathMatch::Exact(p) => (0, p.len()),
            PathMatch::Regex(r) => (1, r.as_str().len() - "^(?:)$".len()),
            PathMatch::Prefix(p) => (2, p.len()),
        };
        (
            kind,
            Reverse(len),
            self.method.is_none(),
            Reverse(self.headers.len()),
            Reverse(self.query.len()),
        )
    }

    pub(super) fn matches(&self, req: &RequestParts<'_>) -> bool {
        let path_ok = match &self.path {
            PathMatch::Exact(p) => req.path == p,
            PathMatch::Prefix(p) => prefix_matches(p, req.path),
            PathMatch::Regex(r) => r.is_match(req.path),
        };
        if !path_ok {
            return false;
        }
        if let Some(m) = &self.method {
            if !req.method.eq_ignore_ascii_case(m) {
                return false;
            }
        }
        for (name, vm) in &self.headers {
            match header_value(req.headers, name) {
                Some(v) if vm.matches(&v) => {}
                _ => return false,
            }
        }
        for (name, vm) in &self.query {
            match query_value(req.query, name) {
                Some(v) if vm.matches(&v) => {}
                _ => return false,
            }
        }
        true
    }
}

/// Element-wise prefix: `/shop` matches `/shop`, `/shop/` and `/shop/x`, never `/shopping`.
pub(super) fn prefix_matches(prefix: &str, path: &str) -> bool {
    if prefix.is_empty() {
        return true;
    }
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

/// A repeated header is matched as its values joined with "," (RFC 7230 3.2.2).
fn header_value<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Option<Cow<'a, str>> {
    let mut it = headers.get_all(name).iter();
    let first = String::from_utf8_lossy(it.next()?.as_bytes());
    let mut joined: Option<String> = None;
    for v in it {
        let j = joined.get_or_insert_with(|| first.to_string());
        j.push(',');
        j.push_str(&String::from_utf8_lossy(v.as_bytes()));
    }
    Some(joined.map(Cow::Owned).unwrap_or(first))
}

/// The first value of a query parameter, percent-decoded (the spec recommends the first).
fn query_value<'a>(query: Option<&'a str>, name: &str) -> Option<Cow<'a, str>> {
    for pair in query?.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if percent_decode(k) == name {
            return Some(percent_decode(v));
        }
    }
    None
}

fn percent_decode(s: &str) -> Cow<'_, str> {
    if !s.contains('%') {
        return Cow::Borrowed(s);
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn req<'a>(path: &'a str, query: Option<&'a str>, headers: &'a HeaderMap) -> RequestParts<'a> {
        RequestParts {
            method: "GET",
            host: "h",
            path,
            query,
            headers,
        }
    }

    #[test]
    fn prefix_is_element_wise() {
        let m = CompiledMatch::compile(&json!({"path": {"type": "PathPrefix", "value": "/shop"}}))
            .unwrap();
        let h = HeaderMap::new();
        for p in ["/shop", "/shop/", "/shop/x"] {
            assert!(m.matches(&req(p, None, &h)), "{p}");
        }
        for p in ["/shopping", "/", "/sho"] {
            assert!(!m.matches(&req(p, None, &h)), "{p}");
        }
        // A trailing slash on the prefix is ignored.
        let m = CompiledMatch::compile(&json!({"path": {"type": "PathPrefix", "value": "/shop/"}}))
            .unwrap();
        assert!(m.matches(&req("/shop", None, &h)));
        assert!(!m.matches(&req("/shopping", None, &h)));
        assert!(CompiledMatch::catch_all().matches(&req("/anything", None, &h)));
    }

    #[test]
    fn exact_and_regex_paths() {
        let h = HeaderMap::new();
        let m =
            CompiledMatch::compile(&json!({"path": {"type": "Exact", "value": "/abc"}})).unwrap();
        assert!(m.matches(&req("/abc", None, &h)));
        for p in ["/abc/", "/Abc", "/abcd"] {
            assert!(!m.matches(&req(p, None, &h)));
        }
        let m = CompiledMatch::compile(
            &json!({"path": {"type": "RegularExpression", "value": "/v[0-9]+"}}),
        )
        .unwrap();
        assert!(m.matches(&req("/v12", None, &h)));
        assert!(
            !m.matches(&req("/v12/x", None, &h)),
            "regex must match the whole path"
        );
        assert!(CompiledMatch::compile(
            &json!({"path": {"type": "RegularExpression", "value": "("}})
        )
        .is_err());
        assert!(CompiledMatch::compile(&json!({"path": {"type": "Glob", "value": "/x"}})).is_err());
    }

    #[test]
    fn headers_are_case_insensitive_and_anded() {
        let m = CompiledMatch::compile(&json!({"headers": [
            {"name": "Version", "value": "two"},
            {"name": "x-env", "type": "RegularExpression", "value": "can.*"},
            {"name": "VERSION", "value": "ignored-duplicate"}
        ]}))
        .unwrap();
        assert_eq!(m.headers.len(), 2);
        let mut h = HeaderMap::new();
        h.insert("version", "two".parse().unwrap());
        assert!(!m.matches(&req("/", None, &h)));
        h.insert("X-ENV", "canary".parse().unwrap());
        assert!(m.matches(&req("/", None, &h)));
        h.insert("x-env", "xcanary".parse().unwrap());
        assert!(!m.matches(&req("/", None, &h)));
    }

    #[test]
    fn query_params_and_method() {
        let m = CompiledMatch::compile(&json!({
            "method": "POST",
            "queryParams": [{"name": "animal", "value": "whale"}, {"name": "n", "type": "RegularExpression", "value": "[0-9]+"}]
        }))
        .unwrap();
        let h = HeaderMap::new();
        let post = |q| RequestParts {
            method: "POST",
            host: "h",
            path: "/",
            query: q,
            headers: &h,
        };
        assert!(m.matches(&post(Some("animal=whale&n=42"))));
        assert!(m.matches(&post(Some("n=7&animal=wh%61le"))));
        assert!(!m.matches(&post(Some("animal=dolphin&n=42"))));
        assert!(!m.matches(&post(Some("animal=whale&n=4x"))));
        assert!(!m.matches(&post(None)));
        // First value of a repeated parameter wins.
        assert!(!m.matches(&post(Some("animal=dolphin&animal=whale&n=1"))));
        assert!(
            !m.matches(&req("/", Some("animal=whale&n=42"), &h)),
            "method must match"
        );
    }

    #[test]
    fn rank_orders_by_the_spec() {
        let c = |v: Value| CompiledMatch::compile(&v).unwrap().rank();
        let exact = c(json!({"path": {"type": "Exact", "value": "/a"}}));
        let long = c(json!({"path": {"value": "/shop/cart"}}));
        let short = c(json!({"path": {"value": "/shop"}}));
        let method = c(json!({"path": {"value": "/shop"}, "method": "GET"}));
        let headers =
            c(json!({"path": {"value": "/shop"}, "headers": [{"name": "a", "value": "1"}]}));
        let query =
            c(json!({"path": {"value": "/shop"}, "queryParams": [{"name": "a", "value": "1"}]}));
        assert!(exact < long && long < short);
        assert!(method < headers && headers < query && query < short);
    }

    #[test]
    fn percent_decoding_is_safe_on_bad_input() {
        assert_eq!(percent_decode("a%2"), "a%2");
        assert_eq!(percent_decode("%"), "%");
        assert_eq!(percent_decode("%zz%41"), "%zzA");
    }
}
