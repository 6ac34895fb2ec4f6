//! HTTP checks: one request, its status, headers, body and JSON fields.

use std::time::Duration;

use reqwest::Method;
use serde_json::Value;

use super::CheckFailure;
use crate::context::SuiteContext;
use heatcheck_format::{HttpAssertion, Matcher};

/// The one HTTP client setup of the project (rustls, no proxies from the
/// environment for loopback gateways, bounded timeouts).
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .pool_idle_timeout(Duration::from_secs(30))
        .user_agent(concat!("heatcheck/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("HTTP client builds")
}

pub(crate) async fn check(ctx: &SuiteContext, h: &HttpAssertion) -> Result<String, CheckFailure> {
    let render = |s: &str| {
        ctx.templater
            .render(s)
            .map_err(|e| CheckFailure::new(e.to_string()))
    };
    let url = render(&h.url)?;
    let method = Method::from_bytes(h.method.to_ascii_uppercase().as_bytes())
        .map_err(|_| CheckFailure::new(format!("invalid HTTP method {:?}", h.method)))?;
    let mut req = ctx.http.request(method.clone(), &url);
    for (k, v) in &h.headers {
        let v = render(v)?;
        // Host is a header users set to pick a route; reqwest honours it.
        req = req.header(k.as_str(), v);
    }
    if let Some(b) = &h.body {
        req = req.body(render(b)?);
    }
    let timeout = h.timeout.map(|t| t.0).unwrap_or(Duration::from_secs(10));
    let resp = req
        .timeout(timeout)
        .send()
        .await
        .map_err(|e| CheckFailure::new(format!("{method} {url}: {}", describe_reqwest(&e))))?;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp
        .text()
        .await
        .map_err(|e| CheckFailure::new(format!("{method} {url}: reading body: {e}")))?;
    let show_body = || {
        let mut b = body.clone();
        if b.len() > 2000 {
            b.truncate(2000);
            b.push('…');
        }
        format!("{method} {url} -> {status}\n{b}")
    };
    let fail =
        |msg: String| CheckFailure::with_detail(format!("{method} {url}: {msg}"), show_body());
    if !h.expect.status_ok(status) {
        let want = match &h.expect.status {
            Some(s) => s
                .codes()
                .iter()
                .map(u16::to_string)
                .collect::<Vec<_>>()
                .join(" or "),
            None => "2xx".into(),
        };
        return Err(fail(format!("expected status {want}, got {status}")));
    }
    for (name, m) in &h.expect.headers {
        let got = headers
            .get(name.as_str())
            .and_then(|v| v.to_str().ok())
            .map(|s| Value::String(s.to_string()));
        m.check(got.as_ref())
            .map_err(|e| fail(format!("header {name}: {e}")))?;
    }
    if let Some(needle) = &h.expect.body_contains {
        let needle = render(needle)?;
        if !body.contains(&needle) {
            return Err(fail(format!(
                "expected body to contain {needle:?}, it does not"
            )));
        }
    }
    if let Some(re) = &h.expect.body_matches {
        let rx = regex::Regex::new(re)
            .map_err(|e| CheckFailure::new(format!("invalid regex {re:?}: {e}")))?;
        if !rx.is_match(&body) {
            return Err(fail(format!("expected body to match /{re}/, it does not")));
        }
    }
    if !h.expect.json.is_empty() {
        let doc: Value =
            serde_json::from_str(&body).map_err(|e| fail(format!("expected a JSON body: {e}")))?;
        for (path, m) in &h.expect.json {
            let m = render_matcher(ctx, m)?;
            let got = heatcheck_gateway::jsonpath::first(&doc, path).map_err(CheckFailure::new)?;
            m.check(got.as_ref())
                .map_err(|e| fail(format!("{path}: {e}")))?;
        }
    }
    Ok(format!("{method} {url} -> {status}"))
}

/// Matcher values may hold templates (e.g. `{{namespace}}`).
fn render_matcher(ctx: &SuiteContext, m: &Matcher) -> Result<Matcher, CheckFailure> {
    Ok(match m {
        Matcher::Equals(v) => Matcher::Equals(
            ctx.templater
                .render_value(v)
                .map_err(|e| CheckFailure::new(e.to_string()))?,
        ),
        Matcher::Matches(r) => Matcher::Matches(
            ctx.templater
                .render(r)
                .map_err(|e| CheckFailure::new(e.to_string()))?,
        ),
        Matcher::Exists(b) => Matcher::Exists(*b),
    })
}

pub fn describe_reqwest(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        return "timed out".into();
    }
    if e.is_connect() {
        let mut msg = "connection failed".to_string();
        let mut src = std::error::Error::source(e);
        while let Some(s) = src {
            msg = format!("{msg}: {s}");
            src = s.source();
        }
        return msg;
    }
    e.to_string()
}
