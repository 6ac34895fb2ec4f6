//! PromQL checks through the Prometheus HTTP API (`POST /api/v1/query`, form-encoded, an
//! instant query at "now"): `promql` assertions and stop conditions.
//!
//! Header values (e.g. a bearer token) are secrets: they are sent, never shown in a
//! message or a log.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde::Deserialize;
use serde_json::Value;

use super::CheckFailure;
use crate::context::SuiteContext;
use heatcheck_format::threshold::{parse_number, Threshold};
use heatcheck_format::{PromqlAssertion, Suite, Templater};

/// Where the URL comes from when nothing sets it, for the note that skips promql checks.
pub(crate) const URL_SOURCES: &str =
    "spec.prometheus.url, --prometheus-url or HEATCHECK_PROMETHEUS_URL";

#[derive(Debug, thiserror::Error)]
pub(crate) enum PromError {
    #[error("Prometheus at {url} cannot be reached: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("Prometheus rejected the query ({kind}): {message}; query: {query}")]
    BadQuery {
        kind: String,
        message: String,
        query: String,
    },
    #[error("the query returned a {result_type}, not an instant vector (select series, or wrap a scalar in `vector(...)`); query: {query}")]
    NotVector { result_type: String, query: String },
    #[error("Prometheus at {url} answered HTTP {status}: {body}")]
    Http {
        url: String,
        status: u16,
        body: String,
    },
    #[error("the Prometheus configuration is invalid: {0}")]
    Config(String),
}

/// One series of an instant vector.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Sample {
    pub(crate) labels: BTreeMap<String, String>,
    pub(crate) value: f64,
}

impl Sample {
    /// `name{a="b", c="d"}` as Prometheus prints a series.
    pub(crate) fn series(&self) -> String {
        let name = self.labels.get("__name__").cloned().unwrap_or_default();
        let labels: Vec<String> = self
            .labels
            .iter()
            .filter(|(k, _)| *k != "__name__")
            .map(|(k, v)| format!("{k}={v:?}"))
            .collect();
        format!("{name}{{{}}}", labels.join(", "))
    }
}

/// A configured Prometheus: base URL, headers (rendered), HTTP client (custom CA).
#[derive(Clone)]
pub(crate) struct Prometheus {
    url: String,
    headers: HeaderMap,
    client: reqwest::Client,
}

impl std::fmt::Debug for Prometheus {
    // Headers may hold credentials: never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prometheus")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// Whether a suite (with these extra, e.g. locked, scenarios) has any promql check.
pub(crate) fn uses_promql(suite: &Suite, extra: &[heatcheck_format::Scenario]) -> bool {
    use heatcheck_format::{AssertionKind, StopCondition};
    let is = |a: &heatcheck_format::Assertion| matches!(a.kind, AssertionKind::Promql(_));
    suite.spec.steady_state.iter().any(is)
        || suite
            .spec
            .scenarios
            .iter()
            .chain(extra)
            .any(|sc| sc.assertions.iter().any(is))
        || suite
            .spec
            .stop_conditions
            .iter()
            .any(|c| matches!(c, StopCondition::Promql(_)))
}

/// The URL in effect: the override (flag or environment), else the suite's.
pub(crate) fn effective_url(suite: &Suite, url_override: Option<&str>) -> Option<String> {
    url_override
        .filter(|u| !u.trim().is_empty())
        .map(str::to_string)
        .or_else(|| suite.spec.prometheus.as_ref()?.url.clone())
}

impl Prometheus {
    /// From the suite's `spec.prometheus` and the override; None when no URL is set.
    pub(crate) fn from_suite(
        suite: &Suite,
        url_override: Option<&str>,
        templater: &Templater,
    ) -> Result<Option<Prometheus>, PromError> {
        let Some(url) = effective_url(suite, url_override) else {
            return Ok(None);
        };
        let url = templater
            .render(&url)
            .map_err(|e| PromError::Config(format!("url: {e}")))?;
        let url = url.trim_end_matches('/').to_string();
        reqwest::Url::parse(&url).map_err(|e| PromError::Config(format!("url {url:?}: {e}")))?;
        let config = suite.spec.prometheus.clone().unwrap_or_default();
        let mut headers = HeaderMap::new();
        for (name, template) in &config.headers {
            let value = templater
                .render(template)
                .map_err(|e| PromError::Config(format!("header {name}: {e}")))?;
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| PromError::Config(format!("invalid header name {name:?}")))?;
            // The value is not shown: it may be a token.
            let mut value = HeaderValue::from_str(&value).map_err(|_| {
                PromError::Config(format!(
                    "header {name}: the value is not a valid header value"
                ))
            })?;
            value.set_sensitive(true);
            headers.insert(name, value);
        }
        let mut builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .user_agent(concat!("heatcheck/", env!("CARGO_PKG_VERSION")));
        if let Some(ca) = &config.ca_file {
            let path = suite.source.dir.join(ca);
            builder = builder.tls_certs_merge(read_ca(&path)?);
        }
        let client = builder
            .build()
            .map_err(|e| PromError::Config(format!("HTTP client: {e}")))?;
        Ok(Some(Prometheus {
            url,
            headers,
            client,
        }))
    }

    /// An instant query; the result must be a vector.
    pub(crate) async fn query(&self, query: &str) -> Result<Vec<Sample>, PromError> {
        let endpoint = format!("{}/api/v1/query", self.url);
        let resp = self
            .client
            .post(&endpoint)
            .headers(self.headers.clone())
            .form(&[("query", query)])
            .send()
            .await
            .map_err(|e| PromError::Unreachable {
                url: self.url.clone(),
                reason: super::http::describe_reqwest(&e),
            })?;
        let status = resp.status().as_u16();
        let body = resp.text().await.map_err(|e| PromError::Unreachable {
            url: self.url.clone(),
            reason: format!("reading the answer: {e}"),
        })?;
        let answer: ApiAnswer = match serde_json::from_str(&body) {
            Ok(a) => a,
            Err(_) => {
                return Err(PromError::Http {
                    url: self.url.clone(),
                    status,
                    body: short(&body),
                })
            }
        };
        if answer.status != "success" {
            return Err(PromError::BadQuery {
                kind: answer.error_type.unwrap_or_else(|| "error".into()),
                message: answer.error.unwrap_or_default(),
                query: query.to_string(),
            });
        }
        let data = answer.data.unwrap_or(Value::Null);
        let result_type = data
            .get("resultType")
            .and_then(Value::as_str)
            .unwrap_or("nothing")
            .to_string();
        if result_type != "vector" {
            return Err(PromError::NotVector {
                result_type,
                query: query.to_string(),
            });
        }
        let series: Vec<VectorEntry> = serde_json::from_value(
            data.get("result").cloned().unwrap_or(Value::Null),
        )
        .map_err(|e| PromError::Http {
            url: self.url.clone(),
            status,
            body: format!("unexpected vector shape: {e}"),
        })?;
        Ok(series
            .into_iter()
            .map(|s| Sample {
                labels: s.metric,
                // Prometheus writes sample values as strings ("NaN", "+Inf" included).
                value: parse_sample(&s.value.1),
            })
            .collect())
    }
}

fn parse_sample(s: &str) -> f64 {
    match s {
        "+Inf" | "Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        _ => s.parse().unwrap_or(f64::NAN),
    }
}

fn read_ca(path: &Path) -> Result<Vec<reqwest::Certificate>, PromError> {
    let pem = std::fs::read(path)
        .map_err(|e| PromError::Config(format!("caFile {}: {e}", path.display())))?;
    reqwest::Certificate::from_pem_bundle(&pem)
        .map_err(|e| PromError::Config(format!("caFile {}: {e}", path.display())))
}

fn short(body: &str) -> String {
    let mut b: String = body.chars().take(300).collect();
    if b.len() < body.len() {
        b.push('…');
    }
    b
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ApiAnswer {
    status: String,
    #[serde(default)]
    data: Option<Value>,
    #[serde(default)]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
struct VectorEntry {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    value: (Value, String),
}

fn fmt_value(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v}")
    }
}

fn listing(samples: &[&Sample]) -> String {
    const SHOWN: usize = 10;
    let mut lines: Vec<String> = samples
        .iter()
        .take(SHOWN)
        .map(|s| format!("  {} = {}", s.series(), fmt_value(s.value)))
        .collect();
    if samples.len() > SHOWN {
        lines.push(format!("  … and {} more", samples.len() - SHOWN));
    }
    lines.join("\n")
}

/// Judges one query result against the assertion (pure, so it is unit-tested).
pub(crate) fn judge(
    a: &PromqlAssertion,
    query: &str,
    samples: &[Sample],
) -> Result<String, CheckFailure> {
    if let Some(want_empty) = a.empty {
        let all: Vec<&Sample> = samples.iter().collect();
        return match (want_empty, samples.is_empty()) {
            (true, true) => Ok(format!("{query}: no series")),
            (false, false) => Ok(format!("{query}: {} series", samples.len())),
            (true, false) => Err(CheckFailure::with_detail(
                format!("{query}: expected no series, got {}", samples.len()),
                format!("query: {query}\nseries:\n{}", listing(&all)),
            )),
            (false, true) => Err(CheckFailure::with_detail(
                format!("{query}: expected series, got none"),
                format!("query: {query}\nthe result is an empty vector"),
            )),
        };
    }
    let text = a.expect.as_deref().unwrap_or_default();
    let threshold: Threshold<f64> =
        parse_number(text).map_err(|e| CheckFailure::new(e.to_string()))?;
    if samples.is_empty() {
        return Err(CheckFailure::with_detail(
            format!("{query}: no series to compare with {text} (use `empty: true` to expect none)"),
            format!("query: {query}\nthe result is an empty vector"),
        ));
    }
    let broken: Vec<&Sample> = samples
        .iter()
        .filter(|s| !threshold.holds(&s.value))
        .collect();
    if broken.is_empty() {
        let values: Vec<String> = samples.iter().map(|s| fmt_value(s.value)).take(5).collect();
        return Ok(format!(
            "{query}: {} series {text} ({})",
            samples.len(),
            values.join(", ")
        ));
    }
    let first = broken[0];
    Err(CheckFailure::with_detail(
        format!(
            "{query}: {} = {} {} {}",
            first.series(),
            fmt_value(first.value),
            threshold.op.negated(),
            fmt_value(threshold.value)
        ),
        format!(
            "query: {query}\nexpected every series {text}; {} of {} do not:\n{}",
            broken.len(),
            samples.len(),
            listing(&broken)
        ),
    ))
}

/// One attempt of a `promql` assertion.
pub(crate) async fn check(ctx: &SuiteContext, a: &PromqlAssertion) -> Result<String, CheckFailure> {
    let Some(prom) = &ctx.prometheus else {
        return Err(CheckFailure::new(format!(
            "no Prometheus URL ({URL_SOURCES})"
        )));
    };
    let query = ctx
        .templater
        .render(&a.query)
        .map_err(|e| CheckFailure::new(e.to_string()))?;
    let samples = prom
        .query(&query)
        .await
        .map_err(|e| CheckFailure::new(e.to_string()))?;
    judge(a, &query, &samples)
}

/// For a stop condition: the series above (`above`) or below the value, if any.
pub(crate) fn crossing(
    samples: &[Sample],
    above: Option<f64>,
    below: Option<f64>,
) -> Option<&Sample> {
    samples.iter().find(|s| match (above, below) {
        (Some(a), _) => s.value > a,
        (None, Some(b)) => s.value < b,
        (None, None) => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(route: &str, v: f64) -> Sample {
        Sample {
            labels: [
                ("__name__".to_string(), "ratio".to_string()),
                ("route_name".to_string(), route.to_string()),
            ]
            .into(),
            value: v,
        }
    }

    fn assertion(expect: Option<&str>, empty: Option<bool>) -> PromqlAssertion {
        PromqlAssertion {
            query: "q".into(),
            expect: expect.map(str::to_string),
            empty,
            eventually: None,
        }
    }

    #[test]
    fn thresholds_apply_to_every_series_and_name_the_breakers() {
        let a = assertion(Some("< 0.01"), None);
        assert!(judge(&a, "q", &[sample("a", 0.0), sample("b", 0.005)]).is_ok());
        let f = judge(&a, "q", &[sample("a", 0.0), sample("b", 0.5)]).unwrap_err();
        assert_eq!(f.message, "q: ratio{route_name=\"b\"} = 0.5 >= 0.01");
        assert!(f.detail.contains("1 of 2 do not"), "{}", f.detail);
        let f = judge(&a, "q", &[]).unwrap_err();
        assert!(f.message.contains("no series"), "{}", f.message);
    }

    #[test]
    fn empty_checks() {
        assert!(judge(&assertion(None, Some(true)), "q", &[]).is_ok());
        assert!(judge(&assertion(None, Some(true)), "q", &[sample("a", 1.0)]).is_err());
        assert!(judge(&assertion(None, Some(false)), "q", &[sample("a", 1.0)]).is_ok());
        assert!(judge(&assertion(None, Some(false)), "q", &[]).is_err());
    }

    #[test]
    fn stop_crossing() {
        let s = [sample("a", 0.2), sample("b", 0.9)];
        assert_eq!(crossing(&s, Some(0.5), None).unwrap().value, 0.9);
        assert_eq!(crossing(&s, None, Some(0.5)).unwrap().value, 0.2);
        assert!(crossing(&s, Some(1.0), None).is_none());
        assert_eq!(parse_sample("+Inf"), f64::INFINITY);
        assert!(parse_sample("NaN").is_nan());
    }
}
