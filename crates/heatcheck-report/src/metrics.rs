//! Every run as Prometheus metrics: `--metrics-file` (node-exporter textfile collector
//! format, written atomically) and `--pushgateway` (job `heatcheck`, one group per suite).
//! Reads the engine's results only.
//!
//! All series are gauges named `heatcheck_*` (a textfile or a push is one snapshot, not a
//! counter that grows); see README "Prometheus" for the list.

use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use heatcheck_engine::model::{CaseKind, RunReport, SuiteReport};

/// Every status a case can have, so a dashboard sees each as 0 or 1 (a state set).
/// `flaky`: passed on a retry after failing (`--retries`).
pub(crate) const STATUSES: &[&str] = &["passed", "failed", "errored", "skipped", "flaky"];

type Labels = Vec<(&'static str, String)>;
type G = Family<Labels, Gauge<f64, AtomicU64>>;

pub(crate) struct Series {
    registry: Registry,
    families: Vec<(&'static str, G)>,
}

impl Series {
    pub(crate) fn new() -> Self {
        Series {
            registry: Registry::default(),
            families: Vec::new(),
        }
    }

    /// The family `name` (registered on first use).
    fn family(&mut self, name: &'static str, help: &str) -> G {
        if let Some((_, f)) = self.families.iter().find(|(n, _)| *n == name) {
            return f.clone();
        }
        let f = G::default();
        self.registry.register(name, help, f.clone());
        self.families.push((name, f.clone()));
        f
    }

    pub(crate) fn set(&mut self, name: &'static str, help: &str, labels: Labels, value: f64) {
        self.family(name, help).get_or_create(&labels).set(value);
    }
}

fn kind_label(kind: CaseKind) -> &'static str {
    match kind {
        CaseKind::Fixtures => "fixtures",
        CaseKind::SteadyState => "steadyState",
        CaseKind::Scenario => "scenario",
        CaseKind::Restore => "restore",
    }
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// The series of one suite (every label set carries `suite`).
fn suite_series(s: &mut Series, run: &RunReport, suite: &SuiteReport) {
    let base = || vec![("suite", suite.name.clone())];
    s.set(
        "heatcheck_run_timestamp_seconds",
        "When the run started (Unix time)",
        base(),
        run.started_at.timestamp_millis() as f64 / 1000.0,
    );
    s.set(
        "heatcheck_run_exit_code",
        "Exit code of the run (0 passed, 1 failed, 4 aborted, 5 restore failed)",
        base(),
        f64::from(run.exit_code),
    );
    s.set(
        "heatcheck_suite_duration_seconds",
        "How long the suite took, fixtures and restore included",
        base(),
        secs(suite.duration),
    );
    s.set(
        "heatcheck_restore_clean",
        "1 when the run restored everything it changed, else 0",
        base(),
        if run.restore.is_clean() { 1.0 } else { 0.0 },
    );
    s.set(
        "heatcheck_restore_left_behind_objects",
        "Changes the run could not undo (see `heatcheck recover`)",
        base(),
        run.restore.left_behind.len() as f64,
    );
    for case in &suite.cases {
        let case_labels = || {
            let mut l = base();
            l.push(("scenario", case.name.clone()));
            l.push(("kind", kind_label(case.kind).to_string()));
            l
        };
        let current = if case.is_flaky() {
            "flaky"
        } else {
            case.status.label()
        };
        for status in STATUSES {
            let mut l = case_labels();
            l.push(("status", status.to_string()));
            s.set(
                "heatcheck_scenario_status",
                "1 for the status the case ended with, 0 for the others",
                l,
                if *status == current { 1.0 } else { 0.0 },
            );
        }
        s.set(
            "heatcheck_scenario_duration_seconds",
            "How long the case took",
            case_labels(),
            secs(case.duration),
        );
        for p in &case.probes {
            let labels = || {
                let mut l = base();
                l.push(("scenario", case.name.clone()));
                l.push(("probe", p.name.clone()));
                l
            };
            s.set(
                "heatcheck_probe_success_ratio",
                "Share of the probe's requests that succeeded during the scenario",
                labels(),
                p.success_rate,
            );
            s.set(
                "heatcheck_probe_requests",
                "Requests the probe sent during the scenario",
                labels(),
                p.count as f64,
            );
            s.set(
                "heatcheck_probe_latency_p99_seconds",
                "99th percentile latency of the probe's requests",
                labels(),
                secs(p.p99),
            );
            s.set(
                "heatcheck_probe_outage_seconds",
                "Total time the probe saw consecutive failures",
                labels(),
                p.outages.iter().map(|o| secs(o.duration)).sum(),
            );
            s.set(
                "heatcheck_probe_longest_outage_seconds",
                "The longest run of consecutive failures",
                labels(),
                secs(p.longest_outage()),
            );
        }
    }
}

/// The exposition with each metric's samples sorted, so files diff cleanly (the crate
/// writes a family's series in hash order).
pub(crate) fn encode(s: &Series) -> String {
    let mut text = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut text, &s.registry);
    let mut out = String::with_capacity(text.len());
    let mut samples: Vec<&str> = Vec::new();
    let flush = |samples: &mut Vec<&str>, out: &mut String| {
        samples.sort_unstable();
        for l in samples.drain(..) {
            out.push_str(l);
            out.push('\n');
        }
    };
    for line in text.lines() {
        if line.starts_with('#') {
            flush(&mut samples, &mut out);
            out.push_str(line);
            out.push('\n');
        } else {
            samples.push(line);
        }
    }
    flush(&mut samples, &mut out);
    out
}

/// The whole run in text exposition format (what `--metrics-file` writes).
pub(crate) fn to_metrics_text(run: &RunReport) -> String {
    let mut s = Series::new();
    for suite in &run.suites {
        suite_series(&mut s, run, suite);
    }
    encode(&s)
}

/// One suite's series (what is pushed to its Pushgateway group).
pub(crate) fn suite_metrics_text(run: &RunReport, suite: &SuiteReport) -> String {
    let mut s = Series::new();
    suite_series(&mut s, run, suite);
    encode(&s)
}

/// Writes the file atomically (a temporary file in the same directory, then a rename), so
/// node-exporter never reads half a file.
pub fn write_metrics_file(path: &Path, run: &RunReport) -> std::io::Result<()> {
    write_textfile(path, &to_metrics_text(run))
}

/// `text` at `path` atomically, as node-exporter's textfile collector needs.
pub fn write_textfile(path: &Path, text: &str) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "heatcheck.prom".into());
    // node-exporter only reads *.prom, so the temporary name never matches.
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("Pushgateway at {url} cannot be reached: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("Pushgateway at {url} refused suite {suite}: HTTP {status}: {body}")]
    Refused {
        url: String,
        suite: String,
        status: u16,
        body: String,
    },
}

/// `suite/NAME`, or `suite@base64/…` when the name has characters a path cannot carry.
fn grouping_path(suite: &str) -> String {
    use base64::Engine;
    let plain = !suite.is_empty()
        && suite
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if plain {
        format!("suite/{suite}")
    } else {
        let b64 = base64::engine::general_purpose::URL_SAFE.encode(suite.as_bytes());
        format!("suite@base64/{b64}")
    }
}

/// PUTs each suite's series to `{url}/metrics/job/heatcheck/suite/{suite}` (PUT replaces
/// the group, so it always holds the latest run).
pub async fn push(client: &reqwest::Client, url: &str, run: &RunReport) -> Result<(), PushError> {
    let base = url.trim_end_matches('/');
    for suite in &run.suites {
        let endpoint = format!(
            "{base}/metrics/job/heatcheck/{}",
            grouping_path(&suite.name)
        );
        let resp = client
            .put(&endpoint)
            .header("content-type", "text/plain; version=0.0.4; charset=utf-8")
            .body(suite_metrics_text(run, suite))
            .send()
            .await
            .map_err(|e| PushError::Unreachable {
                url: base.to_string(),
                reason: heatcheck_engine::probe::http::describe_reqwest(&e),
            })?;
        let status = resp.status();
        if !status.is_success() {
            let body = resp.text().await.unwrap_or_default();
            return Err(PushError::Refused {
                url: base.to_string(),
                suite: suite.name.clone(),
                status: status.as_u16(),
                body: body.trim().chars().take(300).collect(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_metrics_text() {
        let text = to_metrics_text(&heatcheck_engine::fixture::sample_run());
        insta::assert_snapshot!(text);
    }

    #[test]
    fn grouping_paths() {
        assert_eq!(grouping_path("shop-canary"), "suite/shop-canary");
        assert_eq!(grouping_path("a/b c"), "suite@base64/YS9iIGM=");
    }
}
