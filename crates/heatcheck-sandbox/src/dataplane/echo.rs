//! The backend's answer, built in-process: the JSON of the Gateway API conformance echo
//! server (conformance/echo-basic/echo-basic.go, `RequestAssertions` with its inline
//! `Context`), as a backend pod behind Envoy would send it.

use std::collections::BTreeMap;
use std::net::IpAddr;

use http::HeaderMap;
use serde::Serialize;

/// Who answers: the pod of a Service.
#[derive(Debug, Clone, Copy)]
pub struct EchoContext<'a> {
    pub namespace: &'a str,
    pub service: &'a str,
    pub pod: &'a str,
}

/// The request as the backend sees it.
#[derive(Debug, Clone, Copy)]
pub struct EchoRequest<'a> {
    pub method: &'a str,
    /// Path with its query string, as sent (Go's `RequestURI`).
    pub path_and_query: &'a str,
    /// The Host header as sent (port included).
    pub host: &'a str,
    pub headers: &'a HeaderMap,
    /// The client address; the gateway appends it to X-Forwarded-For like Envoy does.
    pub client: Option<IpAddr>,
}

#[derive(Serialize)]
struct RequestAssertions<'a> {
    path: &'a str,
    host: &'a str,
    method: &'a str,
    proto: &'a str,
    headers: BTreeMap<String, Vec<String>>,
    namespace: &'a str,
    ingress: &'a str,
    service: &'a str,
    pod: &'a str,
    sni: &'a str,
}

/// Go's `textproto.CanonicalMIMEHeaderKey`: "x-request-id" -> "X-Request-Id". Names with
/// characters outside the token set are returned unchanged, as Go does.
pub(crate) fn canonical_header_name(name: &str) -> String {
    let valid = name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if !valid {
        return name.to_string();
    }
    let mut upper = true;
    name.chars()
        .map(|c| {
            let out = if upper {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            };
            upper = c == '-';
            out
        })
        .collect()
}

/// The JSON body of the echo answer.
pub fn echo_body(req: &EchoRequest<'_>, ctx: &EchoContext<'_>) -> Vec<u8> {
    let mut headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in req.headers {
        // Go's server moves Host out of the header map into Request.Host.
        if name == http::header::HOST {
            continue;
        }
        headers
            .entry(canonical_header_name(name.as_str()))
            .or_default()
            .push(String::from_utf8_lossy(value.as_bytes()).into_owned());
    }
    if let Some(ip) = req.client {
        let xff = headers.entry("X-Forwarded-For".into()).or_default();
        match xff.last_mut() {
            Some(last) => {
                last.push_str(", ");
                last.push_str(&ip.to_string());
            }
            None => xff.push(ip.to_string()),
        }
    }
    headers
        .entry("X-Forwarded-Proto".into())
        .or_insert_with(|| vec!["http".into()]);
    let body = RequestAssertions {
        path: req.path_and_query,
        host: req.host,
        method: req.method,
        // Envoy talks HTTP/1.1 to upstreams whatever the client spoke.
        proto: "HTTP/1.1",
        headers,
        namespace: ctx.namespace,
        ingress: "",
        service: ctx.service,
        pod: ctx.pod,
        sni: "",
    };
    serde_json::to_vec(&body).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    #[test]
    fn canonical_names_like_go() {
        assert_eq!(canonical_header_name("x-request-id"), "X-Request-Id");
        assert_eq!(canonical_header_name("USER-AGENT"), "User-Agent");
        assert_eq!(canonical_header_name("accept"), "Accept");
        assert_eq!(canonical_header_name("bad header"), "bad header");
    }

    #[test]
    fn body_has_the_conformance_fields() {
        let mut h = HeaderMap::new();
        h.insert("host", "lior.example.com".parse().unwrap());
        h.append("x-multi", "a".parse().unwrap());
        h.append("x-multi", "b".parse().unwrap());
        let req = EchoRequest {
            method: "GET",
            path_and_query: "/shop?x=1",
            host: "lior.example.com",
            headers: &h,
            client: Some("127.0.0.1".parse().unwrap()),
        };
        let ctx = EchoContext {
            namespace: "infra",
            service: "infra-backend-v1",
            pod: "infra-backend-v1-abc",
        };
        let v: Value = serde_json::from_slice(&echo_body(&req, &ctx)).unwrap();
        assert_eq!(
            v,
            json!({
                "path": "/shop?x=1", "host": "lior.example.com", "method": "GET", "proto": "HTTP/1.1",
                "headers": {"X-Forwarded-For": ["127.0.0.1"], "X-Forwarded-Proto": ["http"], "X-Multi": ["a", "b"]},
                "namespace": "infra", "ingress": "", "service": "infra-backend-v1", "pod": "infra-backend-v1-abc", "sni": ""
            })
        );
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            [
                "path",
                "host",
                "method",
                "proto",
                "headers",
                "namespace",
                "ingress",
                "service",
                "pod",
                "sni"
            ]
        );
    }
}
