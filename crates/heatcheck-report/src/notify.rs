//! `--notify URL`: after a run (or an explore), POST a summary to a webhook,
//! as the plain JSON of [`Notification`] (schemas/notification.schema.json)
//! or as a Slack incoming-webhook body (Block Kit). A webhook URL carries its
//! token in the path: it is a secret, so errors name its host only.

use std::time::Duration;

use heatcheck_engine::exit::RunOutcome;
use heatcheck_engine::model::{CaseStatus, RunReport};
use heatcheck_explore::finding::FindingsReport;
use serde::Serialize;
use serde_json::{json, Value};

/// A webhook that hangs must not hang the run.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(10);
/// Before the one retry a 5xx answer gets.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// The body's shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotifyFormat {
    /// The [`Notification`] as it is.
    Generic,
    /// A Slack incoming-webhook message: `blocks` and a `text` fallback.
    Slack,
}

/// What a notification says (the `generic` body).
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    /// `run` or `explore`.
    pub command: String,
    /// The run's id (`heatcheck runs`, `recover`); none for explore.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// passed, failed, invalid, unreachable, aborted or restore-failed.
    pub outcome: String,
    /// The process's exit code.
    pub exit_code: i32,
    /// RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    pub duration_seconds: f64,
    pub suites: Vec<SuiteSummary>,
    pub totals: Counts,
    /// `suite/scenario` of each scenario that passed only on a retry.
    pub flaky: Vec<String>,
    /// What the restore left; none for explore (the cluster is only read).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restore: Option<RestoreState>,
    /// When explore ran: its findings and resilience score.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explore: Option<ExploreSummary>,
    /// The reports the run wrote (as the paths were given).
    pub reports: Vec<ReportLocation>,
    /// Why the run stopped before it had results (a suite that does not
    /// load, a policy refusal, a cluster that does not answer).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    pub passed: usize,
    /// Of `passed`: those that failed before passing on a retry.
    pub flaky: usize,
    pub failed: usize,
    pub errored: usize,
    pub skipped: usize,
}

#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SuiteSummary {
    pub name: String,
    pub file: String,
    pub totals: Counts,
    /// The suite's own error (e.g. its fixtures failed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Each failed or errored case with its message.
    pub failures: Vec<Failure>,
}

#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Failure {
    pub case: String,
    /// failed or errored.
    pub status: String,
    pub message: String,
}

#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RestoreState {
    /// Nothing left behind and no restore error.
    pub clean: bool,
    pub left_behind: Vec<String>,
    pub errors: Vec<String>,
}

#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExploreSummary {
    pub namespace: String,
    pub findings: usize,
    /// 0-100.
    pub resilience_score: u32,
}

#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReportLocation {
    /// junit, json, html, findings or metrics.
    pub kind: String,
    pub path: String,
}

impl ReportLocation {
    pub fn new(kind: &str, path: impl Into<String>) -> Self {
        ReportLocation {
            kind: kind.into(),
            path: path.into(),
        }
    }
}

/// The exit code's name, as the exit code table calls it.
pub(crate) fn outcome_label(outcome: RunOutcome) -> &'static str {
    match outcome {
        RunOutcome::Passed => "passed",
        RunOutcome::Failed => "failed",
        RunOutcome::Invalid => "invalid",
        RunOutcome::Unreachable => "unreachable",
        RunOutcome::Aborted => "aborted",
        RunOutcome::RestoreFailed => "restore-failed",
    }
}

impl Notification {
    /// A run's summary; `outcome` is the process's (e.g. raised by
    /// `--flaky-fails` or a report that could not be written).
    pub fn from_run(report: &RunReport, outcome: RunOutcome, reports: Vec<ReportLocation>) -> Self {
        let mut flaky = Vec::new();
        let suites = report
            .suites
            .iter()
            .map(|s| {
                let t = s.totals();
                let failures = s
                    .cases
                    .iter()
                    .filter_map(|c| match &c.status {
                        CaseStatus::Failed { message, .. }
                        | CaseStatus::Errored { message, .. } => Some(Failure {
                            case: c.display_name(),
                            status: c.status.label().into(),
                            message: message.clone(),
                        }),
                        _ => None,
                    })
                    .collect();
                flaky.extend(
                    s.cases
                        .iter()
                        .filter(|c| c.is_flaky())
                        .map(|c| format!("{}/{}", s.name, c.name)),
                );
                SuiteSummary {
                    name: s.name.clone(),
                    file: s.file.clone(),
                    totals: counts(t),
                    error: s.error.clone(),
                    failures,
                }
            })
            .collect();
        Notification {
            command: "run".into(),
            run_id: Some(report.run_id.clone()),
            outcome: outcome_label(outcome).into(),
            exit_code: outcome.exit_code(),
            started_at: Some(report.started_at.to_rfc3339()),
            duration_seconds: report.duration.as_secs_f64(),
            suites,
            totals: counts(report.totals()),
            flaky,
            restore: Some(RestoreState {
                clean: report.restore.is_clean(),
                left_behind: report.restore.left_behind.clone(),
                errors: report.restore.errors.clone(),
            }),
            explore: None,
            reports,
            error: None,
        }
    }

    /// A run that ended before it had results: the suites as given and why.
    pub fn from_error(suites: &[String], outcome: RunOutcome, error: String) -> Self {
        Notification {
            command: "run".into(),
            run_id: None,
            outcome: outcome_label(outcome).into(),
            exit_code: outcome.exit_code(),
            started_at: None,
            duration_seconds: 0.0,
            suites: suites
                .iter()
                .map(|s| SuiteSummary {
                    name: s.clone(),
                    file: s.clone(),
                    totals: Counts::default(),
                    error: None,
                    failures: Vec::new(),
                })
                .collect(),
            totals: Counts::default(),
            flaky: Vec::new(),
            restore: None,
            explore: None,
            reports: Vec::new(),
            error: Some(error),
        }
    }

    /// An explore's summary: failed when it found a weakness.
    pub fn from_explore(
        findings: &FindingsReport,
        outcome: RunOutcome,
        reports: Vec<ReportLocation>,
    ) -> Self {
        Notification {
            command: "explore".into(),
            run_id: None,
            outcome: outcome_label(outcome).into(),
            exit_code: outcome.exit_code(),
            started_at: None,
            duration_seconds: findings.duration_seconds,
            suites: Vec::new(),
            totals: Counts::default(),
            flaky: Vec::new(),
            restore: None,
            error: None,
            explore: Some(ExploreSummary {
                namespace: findings.namespace.clone(),
                findings: findings.findings.len(),
                resilience_score: findings.resilience.score,
            }),
            reports,
        }
        .with_suite_name(&findings.suite)
    }

    fn with_suite_name(mut self, suite: &str) -> Self {
        self.suites.push(SuiteSummary {
            name: suite.into(),
            file: String::new(),
            totals: Counts::default(),
            error: None,
            failures: Vec::new(),
        });
        self
    }

    /// Whether the default (failures only) sends it.
    pub fn failed(&self) -> bool {
        self.exit_code != 0
    }

    pub fn body(&self, format: NotifyFormat) -> Value {
        match format {
            NotifyFormat::Generic => serde_json::to_value(self).expect("notification serializes"),
            NotifyFormat::Slack => self.slack(),
        }
    }

    fn suite_names(&self) -> String {
        let names: Vec<&str> = self.suites.iter().map(|s| s.name.as_str()).collect();
        names.join(", ")
    }

    /// One line for notifications and clients without Block Kit.
    pub(crate) fn headline(&self) -> String {
        let icon = if self.failed() { "✗" } else { "✓" };
        match &self.explore {
            Some(e) => format!(
                "{icon} heatcheck explore {}: {} finding(s), resilience {}/100",
                self.suite_names(),
                e.findings,
                e.resilience_score
            ),
            None => format!(
                "{icon} heatcheck run {}: {} ({})",
                self.suite_names(),
                self.outcome,
                totals_text(&self.totals)
            ),
        }
    }

    /// Slack Block Kit: a header, the counts, failures, restore and reports.
    fn slack(&self) -> Value {
        // Slack refuses a header over 150 characters and a section over 3000.
        let header: String = self.headline().chars().take(150).collect();
        let mut blocks = vec![json!({
            "type": "header",
            "text": {"type": "plain_text", "text": header, "emoji": true},
        })];
        let mut facts = vec![format!(
            "*Outcome:* {} (exit {})",
            self.outcome, self.exit_code
        )];
        if let Some(id) = &self.run_id {
            facts.push(format!("*Run:* `{id}`"));
        }
        if self.explore.is_none() {
            facts.push(format!("*Cases:* {}", totals_text(&self.totals)));
        }
        if let Some(e) = &self.explore {
            facts.push(format!(
                "*Findings:* {} in `{}`, *resilience score:* {}/100",
                e.findings, e.namespace, e.resilience_score
            ));
        }
        facts.push(format!("*Duration:* {:.1}s", self.duration_seconds));
        blocks.push(section(&facts.join("\n")));
        if let Some(e) = &self.error {
            blocks.push(section(&format!("*Did not run:* {}", escape(e))));
        }
        let failures: Vec<String> = self
            .suites
            .iter()
            .flat_map(|s| {
                let own = s
                    .error
                    .iter()
                    .map(move |e| format!("• *{}*: {}", s.name, escape(e)));
                let cases = s.failures.iter().map(move |f| {
                    format!(
                        "• *{}* / {} ({}): {}",
                        s.name,
                        escape(&f.case),
                        f.status,
                        escape(&f.message)
                    )
                });
                own.chain(cases)
            })
            .collect();
        if !failures.is_empty() {
            blocks.push(section(&format!("*Failures*\n{}", failures.join("\n"))));
        }
        if !self.flaky.is_empty() {
            let list: Vec<String> = self
                .flaky
                .iter()
                .map(|f| format!("• {}", escape(f)))
                .collect();
            blocks.push(section(&format!("*Flaky*\n{}", list.join("\n"))));
        }
        if let Some(r) = &self.restore {
            let text = if r.clean {
                "*Restore:* clean".to_string()
            } else {
                let mut what: Vec<String> = r.left_behind.iter().map(|l| escape(l)).collect();
                what.extend(r.errors.iter().map(|e| escape(e)));
                format!(
                    "*Restore:* :warning: not clean (`heatcheck recover {}`)\n{}",
                    self.run_id.as_deref().unwrap_or(""),
                    what.iter()
                        .map(|w| format!("• {w}"))
                        .collect::<Vec<_>>()
                        .join("\n")
                )
            };
            blocks.push(section(&text));
        }
        if !self.reports.is_empty() {
            let list: Vec<String> = self
                .reports
                .iter()
                .map(|r| format!("{}: `{}`", r.kind, r.path))
                .collect();
            blocks.push(json!({
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": truncate(&list.join(" · "), 3000)}],
            }));
        }
        json!({"text": self.headline(), "blocks": blocks})
    }
}

fn counts(t: heatcheck_engine::model::Totals) -> Counts {
    Counts {
        passed: t.passed,
        flaky: t.flaky,
        failed: t.failed,
        errored: t.errored,
        skipped: t.skipped,
    }
}

fn totals_text(t: &Counts) -> String {
    let mut parts = vec![format!("{} passed", t.passed)];
    if t.flaky > 0 {
        parts.push(format!("{} flaky", t.flaky));
    }
    parts.push(format!("{} failed", t.failed));
    if t.errored > 0 {
        parts.push(format!("{} errored", t.errored));
    }
    if t.skipped > 0 {
        parts.push(format!("{} skipped", t.skipped));
    }
    parts.join(", ")
}

fn section(text: &str) -> Value {
    json!({"type": "section", "text": {"type": "mrkdwn", "text": truncate(text, 3000)}})
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}

/// Slack's mrkdwn control characters (its documented escaping).
fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The JSON Schema of the `generic` body (schemas/notification.schema.json).
#[cfg(test)] // only the unit tests look; the binary does not
pub(crate) fn notification_schema() -> Value {
    let mut s =
        serde_json::to_value(schemars::schema_for!(Notification)).expect("schema serializes");
    s["$id"] = Value::String("https://heatcheck.dev/schemas/notification.schema.json".into());
    s["title"] = Value::String("heatcheck notification (--notify-format generic)".into());
    s
}

/// A webhook as it may be printed: scheme and host, never the path or the
/// query (where the token is) nor credentials.
pub fn redact(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => match (u.host_str(), u.port()) {
            (Some(h), Some(p)) => format!("{}://{h}:{p}/…", u.scheme()),
            (Some(h), None) => format!("{}://{h}/…", u.scheme()),
            _ => "a webhook".into(),
        },
        Err(_) => "a webhook (not a valid URL)".into(),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("webhook {host}: not a valid http(s) URL")]
    BadUrl { host: String },
    #[error("webhook {host} cannot be reached: {reason}")]
    Unreachable { host: String, reason: String },
    #[error("webhook {host} answered HTTP {status}")]
    Refused { host: String, status: u16 },
}

/// POSTs `body` to `url` within [`TIMEOUT`]; a 5xx answer or a refused
/// connection is tried once more. Errors name the host only.
pub async fn send(client: &reqwest::Client, url: &str, body: &Value) -> Result<(), NotifyError> {
    send_within(client, url, body, TIMEOUT).await
}

async fn send_within(
    client: &reqwest::Client,
    url: &str,
    body: &Value,
    timeout: Duration,
) -> Result<(), NotifyError> {
    let host = redact(url);
    let parsed = reqwest::Url::parse(url)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .ok_or_else(|| NotifyError::BadUrl { host: host.clone() })?;
    let mut last = None;
    for attempt in 0..2 {
        if attempt > 0 {
            tokio::time::sleep(RETRY_AFTER).await;
        }
        let sent = client
            .post(parsed.clone())
            .timeout(timeout)
            .json(body)
            .send()
            .await;
        match sent {
            Ok(resp) if resp.status().is_success() => return Ok(()),
            Ok(resp) => {
                let status = resp.status();
                let e = NotifyError::Refused {
                    host: host.clone(),
                    status: status.as_u16(),
                };
                if !status.is_server_error() {
                    return Err(e);
                }
                last = Some(e);
            }
            Err(e) => {
                // reqwest's message carries the URL: drop it.
                let retry = e.is_connect();
                let e = NotifyError::Unreachable {
                    host: host.clone(),
                    reason: heatcheck_engine::probe::http::describe_reqwest(&e.without_url()),
                };
                if !retry {
                    return Err(e);
                }
                last = Some(e);
            }
        }
    }
    Err(last.expect("two attempts"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_keeps_the_host_only() {
        assert_eq!(
            redact("https://hooks.slack.com/services/T000/B000/XXXXsecret"),
            "https://hooks.slack.com/…"
        );
        assert_eq!(
            redact("http://user:pw@127.0.0.1:8080/hook?token=abc"),
            "http://127.0.0.1:8080/…"
        );
        assert!(!redact("not a url /secret").contains("secret"));
    }

    #[test]
    fn a_run_summary() {
        let run = heatcheck_engine::fixture::sample_run();
        let n = Notification::from_run(
            &run,
            run.outcome(),
            vec![ReportLocation::new("html", "report.html")],
        );
        assert_eq!(n.command, "run");
        assert_eq!(n.exit_code, run.exit_code);
        assert_eq!(n.totals.failed, run.totals().failed);
        assert!(n.restore.is_some());
        let body = n.body(NotifyFormat::Slack);
        assert!(body["text"].as_str().unwrap().contains("heatcheck run"));
        assert_eq!(body["blocks"][0]["type"], "header");
    }

    /// A webhook that accepts the connection and never answers: the POST
    /// gives up at the timeout, once (a timeout is not retried: the webhook
    /// may have taken it), and the error names the host only.
    #[test]
    fn a_hung_webhook_times_out_once() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let held = std::thread::spawn(move || {
            let mut conns = Vec::new();
            listener.set_nonblocking(true).unwrap();
            let end = std::time::Instant::now() + Duration::from_secs(2);
            while std::time::Instant::now() < end {
                if let Ok((c, _)) = listener.accept() {
                    conns.push(c);
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            conns.len()
        });
        let url = format!("http://{addr}/hook/s3cr3t");
        let _ = rustls::crypto::ring::default_provider().install_default();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let started = std::time::Instant::now();
        let e = rt
            .block_on(send_within(
                &reqwest::Client::new(),
                &url,
                &json!({}),
                Duration::from_millis(300),
            ))
            .unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(
            e.to_string(),
            format!("webhook http://{addr}/… cannot be reached: timed out")
        );
        assert_eq!(held.join().unwrap(), 1, "no retry after a timeout");
    }

    /// Fails when schemas/notification.schema.json differs from the types.
    /// Regenerate with `HEATCHECK_UPDATE_SCHEMAS=1 cargo test -p heatcheck-report`.
    #[test]
    fn the_checked_in_schema_is_up_to_date() {
        let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../schemas/notification.schema.json");
        let mut want = serde_json::to_string_pretty(&notification_schema()).unwrap();
        want.push('\n');
        if std::env::var_os("HEATCHECK_UPDATE_SCHEMAS").is_some() {
            std::fs::write(&path, &want).unwrap();
        }
        assert_eq!(
            std::fs::read_to_string(&path).ok().as_deref(),
            Some(want.as_str()),
            "out of date: {}; regenerate with HEATCHECK_UPDATE_SCHEMAS=1 cargo test -p heatcheck-report",
            path.display()
        );
    }
}
