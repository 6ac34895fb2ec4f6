//! HTTPRoute filters (apis/v1/httproute_types.go `HTTPRouteFilter`), compiled once per table:
//! RequestHeaderModifier, ResponseHeaderModifier, RequestRedirect, URLRewrite and
//! RequestMirror, on rules and on backendRefs, plus the rule's `timeouts`.

use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;

use crate::controllers::duration::parse_duration;

/// `set` / `add` / `remove` of an `HTTPHeaderFilter`.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct HeaderModifier {
    set: Vec<(HeaderName, HeaderValue)>,
    add: Vec<(HeaderName, HeaderValue)>,
    remove: Vec<HeaderName>,
}

impl HeaderModifier {
    fn parse(v: &Value) -> Result<Self, String> {
        let pairs = |field: &str| -> Result<Vec<(HeaderName, HeaderValue)>, String> {
            v.get(field)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|h| {
                    let name = h.get("name").and_then(Value::as_str).unwrap_or_default();
                    let value = h.get("value").and_then(Value::as_str).unwrap_or_default();
                    Ok((
                        HeaderName::try_from(name)
                            .map_err(|_| format!("invalid header name {name:?}"))?,
                        HeaderValue::try_from(value)
                            .map_err(|_| format!("invalid header value {value:?}"))?,
                    ))
                })
                .collect()
        };
        let remove = v
            .get("remove")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(|n| HeaderName::try_from(n).map_err(|_| format!("invalid header name {n:?}")))
            .collect::<Result<_, _>>()?;
        Ok(HeaderModifier {
            set: pairs("set")?,
            add: pairs("add")?,
            remove,
        })
    }

    /// Set overwrites, add appends to what is there, remove drops (names are case-insensitive).
    pub(crate) fn apply(&self, headers: &mut HeaderMap) {
        for (n, v) in &self.set {
            headers.insert(n.clone(), v.clone());
        }
        for (n, v) in &self.add {
            headers.append(n.clone(), v.clone());
        }
        for n in &self.remove {
            headers.remove(n);
        }
    }
}

/// `HTTPPathModifier`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PathModifier {
    Full(String),
    Prefix(String),
}

impl PathModifier {
    fn parse(v: &Value) -> Result<Self, String> {
        match v.get("type").and_then(Value::as_str) {
            Some("ReplaceFullPath") => Ok(PathModifier::Full(
                v.get("replaceFullPath")
                    .and_then(Value::as_str)
                    .unwrap_or("/")
                    .to_string(),
            )),
            Some("ReplacePrefixMatch") => Ok(PathModifier::Prefix(
                v.get("replacePrefixMatch")
                    .and_then(Value::as_str)
                    .unwrap_or("/")
                    .to_string(),
            )),
            other => Err(format!("unsupported path modifier type {other:?}")),
        }
    }

    /// The new path. `matched_prefix` is the rule's PathPrefix without its trailing `/`
    /// (`None` when the match was not a prefix: ReplacePrefixMatch then keeps the path).
    pub(crate) fn apply(&self, path: &str, matched_prefix: Option<&str>) -> String {
        match self {
            PathModifier::Full(p) => p.clone(),
            PathModifier::Prefix(p) => {
                let Some(prefix) = matched_prefix else {
                    return path.to_string();
                };
                let rest = path.get(prefix.len()..).unwrap_or_default();
                let out = format!("{}{rest}", p.trim_end_matches('/'));
                if out.is_empty() {
                    "/".into()
                } else if out.starts_with('/') {
                    out
                } else {
                    format!("/{out}")
                }
            }
        }
    }
}

/// `HTTPRequestRedirectFilter`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Redirect {
    pub scheme: Option<String>,
    pub hostname: Option<String>,
    pub path: Option<PathModifier>,
    pub port: Option<u16>,
    pub status: u16,
}

impl Redirect {
    /// The Location header (spec rules for the port: an explicit port; else the well-known
    /// port of an explicit scheme; else the listener port. Default ports are left out).
    pub(crate) fn location(&self, req: &RedirectInput<'_>, matched_prefix: Option<&str>) -> String {
        let scheme = self.scheme.as_deref().unwrap_or(req.scheme);
        let host = self.hostname.as_deref().unwrap_or(req.host);
        let port = match (self.port, &self.scheme) {
            (Some(p), _) => p,
            (None, Some(s)) if s == "https" => 443,
            (None, Some(_)) => 80,
            (None, None) => req.listener_port,
        };
        let default = (scheme == "http" && port == 80) || (scheme == "https" && port == 443);
        let path = match &self.path {
            Some(m) => m.apply(req.path, matched_prefix),
            None => req.path.to_string(),
        };
        let query = req.query.map(|q| format!("?{q}")).unwrap_or_default();
        if default {
            format!("{scheme}://{host}{path}{query}")
        } else {
            format!("{scheme}://{host}:{port}{path}{query}")
        }
    }
}

/// What a redirect needs from the request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RedirectInput<'a> {
    /// "http" or "https", as the client spoke to the gateway.
    pub scheme: &'a str,
    /// Host without port.
    pub host: &'a str,
    pub path: &'a str,
    pub query: Option<&'a str>,
    /// The declared port of the listener the request came in on.
    pub listener_port: u16,
}

/// `HTTPURLRewriteFilter`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Rewrite {
    pub hostname: Option<String>,
    pub path: Option<PathModifier>,
}

/// The filters of one rule or one backendRef, in effect order.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Filters {
    pub request_headers: Vec<HeaderModifier>,
    pub response_headers: Vec<HeaderModifier>,
    pub redirect: Option<Redirect>,
    pub rewrite: Option<Rewrite>,
    /// backendRefs of RequestMirror filters, resolved by the table builder.
    pub mirrors: Vec<Value>,
}

impl Filters {
    /// Compile a `filters` array; an error makes the route not Accepted (UnsupportedValue).
    pub(crate) fn parse(filters: Option<&Value>) -> Result<Self, String> {
        let mut out = Filters::default();
        for f in filters.and_then(Value::as_array).into_iter().flatten() {
            let empty = Value::Null;
            match f.get("type").and_then(Value::as_str).unwrap_or_default() {
                "RequestHeaderModifier" => out.request_headers.push(HeaderModifier::parse(
                    f.get("requestHeaderModifier").unwrap_or(&empty),
                )?),
                "ResponseHeaderModifier" => out.response_headers.push(HeaderModifier::parse(
                    f.get("responseHeaderModifier").unwrap_or(&empty),
                )?),
                "RequestRedirect" => {
                    let r = f.get("requestRedirect").unwrap_or(&empty);
                    let s = |k: &str| r.get(k).and_then(Value::as_str).map(str::to_string);
                    out.redirect = Some(Redirect {
                        scheme: s("scheme"),
                        hostname: s("hostname"),
                        path: r.get("path").map(PathModifier::parse).transpose()?,
                        port: r
                            .get("port")
                            .and_then(Value::as_u64)
                            .and_then(|p| u16::try_from(p).ok()),
                        status: r
                            .get("statusCode")
                            .and_then(Value::as_u64)
                            .and_then(|c| u16::try_from(c).ok())
                            .unwrap_or(302),
                    });
                }
                "URLRewrite" => {
                    let r = f.get("urlRewrite").unwrap_or(&empty);
                    out.rewrite = Some(Rewrite {
                        hostname: r
                            .get("hostname")
                            .and_then(Value::as_str)
                            .map(str::to_string),
                        path: r.get("path").map(PathModifier::parse).transpose()?,
                    });
                }
                "RequestMirror" => {
                    if let Some(b) = f.pointer("/requestMirror/backendRef") {
                        out.mirrors.push(b.clone());
                    }
                }
                other => return Err(format!("unsupported filter type {other:?}")),
            }
        }
        Ok(out)
    }
}

/// `HTTPRouteTimeouts`: `request` bounds the whole exchange, `backendRequest` one backend
/// attempt; "0s" disables a timeout.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Timeouts {
    pub request: Option<Duration>,
    pub backend_request: Option<Duration>,
}

impl Timeouts {
    pub(crate) fn parse(v: Option<&Value>) -> Result<Self, String> {
        let d = |k: &str| -> Result<Option<Duration>, String> {
            match v.and_then(|v| v.get(k)).and_then(Value::as_str) {
                None => Ok(None),
                Some(s) => match parse_duration(s) {
                    Some(d) if d.is_zero() => Ok(None),
                    Some(d) => Ok(Some(d)),
                    None => Err(format!("invalid timeout {s:?}")),
                },
            }
        };
        Ok(Timeouts {
            request: d("request")?,
            backend_request: d("backendRequest")?,
        })
    }

    /// The tightest bound on waiting for the backend.
    pub(crate) fn limit(&self) -> Option<Duration> {
        match (self.request, self.backend_request) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn prefix_rewrites_like_the_conformance_cases() {
        let m = PathModifier::Prefix("/one".into());
        assert_eq!(m.apply("/prefix/one/two", Some("/prefix/one")), "/one/two");
        let strip = PathModifier::Prefix("/".into());
        assert_eq!(
            strip.apply("/strip-prefix/three", Some("/strip-prefix")),
            "/three"
        );
        assert_eq!(strip.apply("/strip-prefix", Some("/strip-prefix")), "/");
        assert_eq!(
            PathModifier::Full("/one".into()).apply("/full/one/two", Some("/full/one")),
            "/one"
        );
    }

    #[test]
    fn redirect_ports_follow_the_spec() {
        let req = RedirectInput {
            scheme: "http",
            host: "example.com",
            path: "/a",
            query: None,
            listener_port: 8080,
        };
        let r = |v: Value| {
            Filters::parse(Some(
                &json!([{"type": "RequestRedirect", "requestRedirect": v}]),
            ))
            .unwrap()
            .redirect
            .unwrap()
        };
        assert_eq!(
            r(json!({})).location(&req, None),
            "http://example.com:8080/a"
        );
        assert_eq!(
            r(json!({"scheme": "https"})).location(&req, None),
            "https://example.com/a"
        );
        assert_eq!(
            r(json!({"port": 80})).location(&req, None),
            "http://example.com/a"
        );
        assert_eq!(
            r(json!({"scheme": "https", "port": 8443, "hostname": "x.org"})).location(&req, None),
            "https://x.org:8443/a"
        );
        assert_eq!(r(json!({})).status, 302);
    }

    #[test]
    fn header_modifier_sets_adds_and_removes() {
        let f = Filters::parse(Some(
            &json!([{"type": "RequestHeaderModifier", "requestHeaderModifier": {
            "set": [{"name": "X-Header-Set", "value": "s"}],
            "add": [{"name": "X-Header-Add", "value": "a"}],
            "remove": ["X-Header-Remove"]}}]),
        ))
        .unwrap();
        let mut h = HeaderMap::new();
        h.insert("x-header-set", "old".parse().unwrap());
        h.insert("x-header-add", "old".parse().unwrap());
        h.insert("x-header-remove", "x".parse().unwrap());
        f.request_headers[0].apply(&mut h);
        assert_eq!(h["x-header-set"], "s");
        let added: Vec<_> = h.get_all("x-header-add").iter().collect();
        assert_eq!(added, ["old", "a"]);
        assert!(!h.contains_key("x-header-remove"));
        assert!(Filters::parse(Some(&json!([{"type": "Bogus"}]))).is_err());
    }

    #[test]
    fn zero_timeouts_disable() {
        let t =
            Timeouts::parse(Some(&json!({"request": "0s", "backendRequest": "500ms"}))).unwrap();
        assert_eq!(t.limit(), Some(Duration::from_millis(500)));
        assert_eq!(Timeouts::parse(None).unwrap().limit(), None);
    }
}
