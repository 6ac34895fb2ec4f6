//! The result of one run: plain data the engine fills in and the reporters read.
//!
//! JSON is camelCase; every `Duration` is written as a float number of seconds
//! in a field named `durationSeconds`, so that jq and dashboards need no parsing.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The whole run: every suite, the exit code and what restore did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunReport {
    pub run_id: String,
    pub started_at: DateTime<Utc>,
    #[serde(rename = "durationSeconds", with = "secs")]
    pub duration: Duration,
    pub suites: Vec<SuiteReport>,
    pub exit_code: i32,
    pub restore: RestoreSummary,
    /// Where and with what the run happened (filled in by the command).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<RunEnvironment>,
}

/// The cluster, the heatcheck version and the exact suite files of a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunEnvironment {
    pub heatcheck_version: String,
    /// API server URL (never credentials).
    pub cluster_server: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    #[serde(default)]
    pub suites: Vec<SuiteSource>,
}

/// A suite file and its lockfile, by content hash.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SuiteSource {
    pub name: String,
    pub file: String,
    pub sha256: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock_sha256: Option<String>,
}

/// One suite file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SuiteReport {
    pub name: String,
    pub file: String,
    pub cases: Vec<CaseReport>,
    #[serde(rename = "durationSeconds", with = "secs")]
    pub duration: Duration,
    /// Suite-level error, e.g. fixtures failed so no scenario ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What a case is: reporters label steady-state, fixtures and restore cases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum CaseKind {
    Fixtures,
    SteadyState,
    Scenario,
    Restore,
}

impl CaseKind {
    /// Lower-case human label ("steady state").
    pub fn label(self) -> &'static str {
        match self {
            CaseKind::Fixtures => "fixtures",
            CaseKind::SteadyState => "steady state",
            CaseKind::Scenario => "scenario",
            CaseKind::Restore => "restore",
        }
    }

    /// A case name as shown: prefixed with the kind unless it is a scenario
    /// (or the name already is the kind, as in a case called "fixtures").
    pub fn case_label(self, name: &str) -> String {
        if self == CaseKind::Scenario || name.eq_ignore_ascii_case(self.label()) {
            name.to_string()
        } else {
            format!("{}: {name}", self.label())
        }
    }
}

/// One test case: fixtures, a steady-state check, a scenario or the restore.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CaseReport {
    pub name: String,
    pub kind: CaseKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Flattened so JSON reads `"status": "failed", "message": ...`.
    #[serde(flatten)]
    pub status: CaseStatus,
    #[serde(rename = "durationSeconds", with = "secs")]
    pub duration: Duration,
    #[serde(default)]
    pub steps: Vec<StepRecord>,
    #[serde(default)]
    pub assertions: Vec<AssertionRecord>,
    #[serde(default)]
    pub metrics: Vec<String>,
    #[serde(default)]
    pub remediation: Vec<String>,
    /// Where the scenario came from: "suite" or "lock".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    /// Continuous probes that ran during the case (scenarios only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub probes: Vec<ProbeStats>,
    /// Earlier attempts that failed, oldest first (`retries`); this case is
    /// the last attempt. Passed with failed attempts is a flaky verdict.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed_attempts: Vec<CaseReport>,
    /// Wall-clock start: the origin of every `...Ms` offset of the case.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) started_at: Option<DateTime<Utc>>,
    /// Faults, from injected to recovered (scenarios only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub faults: Vec<FaultSpan>,
    /// Game-day notes, skips and pauses (`run --interactive` / `--pause-on-failure`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<GameNote>,
}

/// What the operator did during a game day, at `atMs` from the case start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GameNote {
    pub at_ms: u64,
    pub kind: NoteKind,
    pub text: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum NoteKind {
    Note,
    Skip,
    Pause,
    Abort,
}

/// One fault step's chaos: in place from `injectedMs` until `recoveredMs`
/// (its duration ran out or the scenario's restore removed it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultSpan {
    /// Index of the fault step in the case.
    pub(crate) step: usize,
    /// e.g. "networkDelay on app=infra-backend-v1 (50%, 1s)"
    pub name: String,
    pub injected_ms: u64,
    /// None: still in place when the report was written (e.g. --no-restore).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovered_ms: Option<u64>,
}

impl CaseReport {
    /// Failed or errored: the case makes the run red.
    pub fn is_failure(&self) -> bool {
        matches!(
            self.status,
            CaseStatus::Failed { .. } | CaseStatus::Errored { .. }
        )
    }

    /// Failed at least once, then passed on a retry.
    pub fn is_flaky(&self) -> bool {
        matches!(self.status, CaseStatus::Passed) && !self.failed_attempts.is_empty()
    }

    /// How many times the case ran.
    pub fn attempts(&self) -> usize {
        self.failed_attempts.len() + 1
    }

    /// Name shown to people and CI tools: non-scenario cases carry their kind,
    /// e.g. "steady state: shop served by v1", so they are recognisable.
    pub fn display_name(&self) -> String {
        self.kind.case_label(&self.name)
    }
}

/// Outcome of a case. `message` is one line; `detail` is the full story.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "camelCase")]
pub enum CaseStatus {
    Passed,
    Failed { message: String, detail: String },
    Errored { message: String, detail: String },
    Skipped { reason: String },
}

impl CaseStatus {
    /// "passed", "failed", "errored" or "skipped".
    pub fn label(&self) -> &'static str {
        match self {
            CaseStatus::Passed => "passed",
            CaseStatus::Failed { .. } => "failed",
            CaseStatus::Errored { .. } => "errored",
            CaseStatus::Skipped { .. } => "skipped",
        }
    }

    /// The one-line message (skip reason for skipped cases), if any.
    pub fn message(&self) -> Option<&str> {
        match self {
            CaseStatus::Passed => None,
            CaseStatus::Failed { message, .. } | CaseStatus::Errored { message, .. } => {
                Some(message)
            }
            CaseStatus::Skipped { reason } => Some(reason),
        }
    }
}

/// One executed (or skipped) step of a case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepRecord {
    pub index: usize,
    /// e.g. "apply manifests/route.yaml"
    pub name: String,
    /// Offset from the case start.
    pub started_ms: u64,
    #[serde(rename = "durationSeconds", with = "secs")]
    pub duration: Duration,
    pub outcome: Outcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Outcome {
    Ok,
    Failed,
    /// Failed, but the step has `continueOnError`.
    Ignored,
    Skipped,
}

/// One assertion (possibly retried until it passed or timed out).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssertionRecord {
    pub name: String,
    pub passed: bool,
    /// One line: expected vs actual.
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    pub attempts: u32,
    #[serde(rename = "durationSeconds", with = "secs")]
    pub duration: Duration,
    /// When the verdict was known, from the case start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_ms: Option<u64>,
}

/// One probe over one scenario. Latencies are measured from each request's
/// intended send time (no coordinated omission) over every request sent,
/// answered or timed out; percentiles are exact (sorted samples, nearest rank).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProbeStats {
    pub name: String,
    /// "continuous", "duringFault", "before" or "after".
    pub mode: String,
    #[serde(rename = "everySeconds", with = "secs")]
    pub every: Duration,
    /// Offset of the first intended send from the case start.
    pub(crate) started_ms: u64,
    /// Sends scheduled (including those refused at the in-flight cap).
    pub count: u64,
    pub failures: u64,
    /// successes / count (1.0 when nothing was sent).
    pub success_rate: f64,
    #[serde(rename = "p50Seconds", with = "secs")]
    pub p50: Duration,
    #[serde(rename = "p95Seconds", with = "secs")]
    pub(crate) p95: Duration,
    #[serde(rename = "p99Seconds", with = "secs")]
    pub p99: Duration,
    #[serde(rename = "maxSeconds", with = "secs")]
    pub max: Duration,
    /// How late the scheduler actually sent, 99th percentile.
    #[serde(rename = "sendLatenessP99Seconds", with = "secs")]
    pub(crate) send_lateness_p99: Duration,
    /// Runs of consecutive failures, at the probe interval's resolution.
    #[serde(default)]
    pub outages: Vec<OutageWindow>,
    /// Sends per second of intended send time, for timelines.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub buckets: Vec<ProbeBucket>,
    /// Every failed send, up to [`MAX_FAILED_SAMPLES`]; the rest are counted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed_samples: Vec<FailedSample>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub(crate) failed_samples_dropped: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Failed sends kept per probe and case: a 30-minute game day at 50 req/s
/// failing throughout stays near 300 KB of JSON.
pub(crate) const MAX_FAILED_SAMPLES: usize = 5000;

/// One second of a probe: sends intended in `[startMs, startMs + 1000)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProbeBucket {
    pub start_ms: u64,
    pub count: u64,
    pub ok: u64,
    #[serde(rename = "p50Seconds", with = "secs")]
    pub p50: Duration,
    #[serde(rename = "p99Seconds", with = "secs")]
    pub p99: Duration,
    #[serde(rename = "maxSeconds", with = "secs")]
    pub(crate) max: Duration,
}

/// A failed send: when it was due (from the case start) and how long it took
/// to fail (zero when it was refused at the in-flight cap, never sent).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FailedSample {
    pub at_ms: u64,
    #[serde(rename = "latencySeconds", with = "secs")]
    pub latency: Duration,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) not_sent: bool,
}

impl ProbeStats {
    /// The longest outage (zero when there was none).
    pub fn longest_outage(&self) -> Duration {
        self.outages
            .iter()
            .map(|o| o.duration)
            .max()
            .unwrap_or_default()
    }
}

/// Consecutive failed sends: from the first failure's intended send time to
/// the next scheduled send after the last failure (offsets from the case start).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OutageWindow {
    pub start_ms: u64,
    pub end_ms: u64,
    #[serde(rename = "durationSeconds", with = "secs")]
    pub duration: Duration,
    /// Failed sends in the window.
    pub failures: u64,
}

/// One probe as it runs (the `probeWindow` event): totals so far, the
/// trailing window the live panel shows, and the outage going on, if any.
/// Nothing of it goes into the report; `ProbeStats` is the final word.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProbeLive {
    pub name: String,
    /// "continuous", "duringFault", "before" or "after".
    pub mode: String,
    /// Results known so far, and how many of them failed.
    pub count: u64,
    pub failures: u64,
    /// The trailing window the next fields cover.
    #[serde(rename = "windowSeconds", with = "secs")]
    pub window: Duration,
    /// Results of sends due within the window.
    pub window_count: u64,
    /// None when no result of the window is known yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_success_rate: Option<f64>,
    #[serde(rename = "windowP50Seconds", with = "secs")]
    pub window_p50: Duration,
    #[serde(rename = "windowP99Seconds", with = "secs")]
    pub window_p99: Duration,
    /// Every result since this outage began failed (offsets from the case start).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outage: Option<OutageWindow>,
}

/// What the restore phase did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RestoreSummary {
    /// e.g. "deleted HTTPRoute route-chaos/x"
    #[serde(default)]
    pub restored: Vec<String>,
    /// Changes that could not be undone: the cluster is dirty.
    #[serde(default)]
    pub left_behind: Vec<String>,
    #[serde(default)]
    pub errors: Vec<String>,
    /// Objects that are back but are not the same objects: recreated with a
    /// new uid and creationTimestamp.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identity_changed: Vec<IdentityChange>,
    /// Route conflicts (Gateway API precedence) won by another route after
    /// restore than before the scenario.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub precedence_changed: Vec<RoutePrecedenceChange>,
}

/// An object restore could not give back its identity: it was recreated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IdentityChange {
    pub suite: String,
    /// The scenario whose restore found it.
    pub case: String,
    /// `Kind ns/name`.
    pub object: String,
    pub uid_before: String,
    pub uid_after: String,
    pub created_before: String,
    pub created_after: String,
}

/// A conflicting route match whose winner changed (see heatcheck_gateway::route_precedence).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoutePrecedenceChange {
    pub suite: String,
    pub case: String,
    #[serde(flatten)]
    pub change: heatcheck_gateway::route_precedence::PrecedenceChange,
}

impl RestoreSummary {
    /// Nothing left behind and no restore error.
    pub fn is_clean(&self) -> bool {
        self.left_behind.is_empty() && self.errors.is_empty()
    }
}

/// Case counts of a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    pub passed: usize,
    /// Of `passed`: those that failed before passing on a retry.
    pub flaky: usize,
    pub failed: usize,
    pub errored: usize,
    pub skipped: usize,
}

impl fmt::Display for Totals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} passed", self.passed)?;
        if self.flaky > 0 {
            write!(f, " ({} flaky)", self.flaky)?;
        }
        write!(
            f,
            ", {} failed, {} errored, {} skipped",
            self.failed, self.errored, self.skipped
        )
    }
}

impl std::ops::AddAssign for Totals {
    fn add_assign(&mut self, o: Totals) {
        self.passed += o.passed;
        self.flaky += o.flaky;
        self.failed += o.failed;
        self.errored += o.errored;
        self.skipped += o.skipped;
    }
}

impl SuiteReport {
    /// Counts over the suite's cases; an unreported suite error counts as errored.
    pub fn totals(&self) -> Totals {
        let mut t = Totals::default();
        for case in &self.cases {
            t.flaky += usize::from(case.is_flaky());
            match case.status {
                CaseStatus::Passed => t.passed += 1,
                CaseStatus::Failed { .. } => t.failed += 1,
                CaseStatus::Errored { .. } => t.errored += 1,
                CaseStatus::Skipped { .. } => t.skipped += 1,
            }
        }
        if self.unreported_error().is_some() {
            t.errored += 1;
        }
        t
    }

    /// The suite error when no case already reports a failure: reporters then
    /// show it as an extra errored entry so a red suite never looks green.
    pub fn unreported_error(&self) -> Option<&str> {
        match &self.error {
            Some(e) if !self.cases.iter().any(CaseReport::is_failure) => Some(e),
            _ => None,
        }
    }
}

impl RunReport {
    /// How the run ended (the report keeps it as its exit code).
    pub fn outcome(&self) -> crate::exit::RunOutcome {
        crate::exit::RunOutcome::from_exit_code(self.exit_code)
    }

    /// Counts over every case; a suite error no case reports counts as errored.
    pub fn totals(&self) -> Totals {
        let mut t = Totals::default();
        for suite in &self.suites {
            t += suite.totals();
        }
        t
    }
}

/// `Duration` as float seconds.
mod secs {
    use std::time::Duration;

    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let secs = f64::deserialize(d)?;
        Duration::try_from_secs_f64(secs).map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::sample_run;

    #[test]
    fn totals_count_each_status_and_unreported_suite_errors() {
        let report = sample_run();
        // sample: 3 passed, 1 failed, 1 skipped; suite 2 has an error nobody reports.
        assert_eq!(
            report.totals(),
            Totals {
                passed: 3,
                flaky: 0,
                failed: 1,
                errored: 1,
                skipped: 1
            }
        );
        assert_eq!(
            report.totals().to_string(),
            "3 passed, 1 failed, 1 errored, 1 skipped"
        );
    }

    #[test]
    fn suite_error_is_not_counted_twice_when_a_case_reports_it() {
        let mut report = sample_run();
        report.suites[0].error = Some("boom".into());
        // Suite 0 already has a failed case, so its error adds nothing.
        assert_eq!(report.totals().errored, 1);
        assert!(report.suites[0].unreported_error().is_none());
    }

    #[test]
    fn is_failure_covers_failed_and_errored_only() {
        let mut case = sample_run().suites[0].cases[0].clone();
        case.status = CaseStatus::Passed;
        assert!(!case.is_failure());
        case.status = CaseStatus::Skipped { reason: "r".into() };
        assert!(!case.is_failure());
        case.status = CaseStatus::Failed {
            message: "m".into(),
            detail: "d".into(),
        };
        assert!(case.is_failure());
        case.status = CaseStatus::Errored {
            message: "m".into(),
            detail: "d".into(),
        };
        assert!(case.is_failure());
    }

    #[test]
    fn display_name_prefixes_non_scenarios() {
        let mut case = sample_run().suites[0].cases[0].clone();
        case.name = "shop served by v1".into();
        case.kind = CaseKind::SteadyState;
        assert_eq!(case.display_name(), "steady state: shop served by v1");
        case.kind = CaseKind::Scenario;
        assert_eq!(case.display_name(), "shop served by v1");
        case.kind = CaseKind::Fixtures;
        case.name = "fixtures".into();
        assert_eq!(case.display_name(), "fixtures");
    }

    #[test]
    fn json_shape_is_camel_case_with_float_seconds() {
        let report = sample_run();
        let v = serde_json::to_value(&report).unwrap();
        assert_eq!(v["durationSeconds"], serde_json::json!(12.5));
        assert_eq!(v["exitCode"], serde_json::json!(1));
        assert_eq!(v["startedAt"], serde_json::json!("2026-11-03T08:00:00Z"));
        let case = &v["suites"][0]["cases"][2];
        assert_eq!(case["kind"], "scenario");
        assert_eq!(case["status"], "failed");
        assert!(case["message"].is_string());
        assert_eq!(case["steps"][0]["startedMs"], 0);
        assert_eq!(case["steps"][0]["outcome"], "ok");
        assert_eq!(v["restore"]["leftBehind"][0], report.restore.left_behind[0]);
    }

    #[test]
    fn json_round_trips() {
        let report = sample_run();
        let text = serde_json::to_string(&report).unwrap();
        let back: RunReport = serde_json::from_str(&text).unwrap();
        assert_eq!(back, report);
    }

    #[test]
    fn negative_duration_is_rejected() {
        let text = r#"{"name":"s","passed":true,"message":"","attempts":1,"durationSeconds":-1.0}"#;
        let err = serde_json::from_str::<AssertionRecord>(text).unwrap_err();
        assert!(err.to_string().contains("negative"), "{err}");
    }
}
