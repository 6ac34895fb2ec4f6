//! The `report` tool: a saved JSON report (`run --report-json`) summarised
//! for an assistant: the verdict, each case's status and message, what the
//! restore left. The full report stays in the file.

use heatcheck_engine::exit::RunOutcome;
use heatcheck_engine::model::{CaseStatus, RunReport};
use schemars::JsonSchema;
use serde::Serialize;

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ReportSummary {
    pub(crate) run_id: String,
    pub(crate) started_at: String,
    pub(crate) duration_seconds: f64,
    pub(crate) exit_code: i32,
    /// passed, failed, invalid, unreachable, aborted or restoreFailed.
    pub(crate) outcome: String,
    pub(crate) passed: usize,
    pub(crate) failed: usize,
    pub(crate) flaky: usize,
    pub(crate) skipped: usize,
    /// True when the restore left nothing behind and had no errors.
    pub(crate) restored_clean: bool,
    pub(crate) left_behind: Vec<String>,
    pub(crate) restore_errors: Vec<String>,
    pub(crate) suites: Vec<SuiteSummary>,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SuiteSummary {
    pub(crate) name: String,
    pub(crate) file: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<String>,
    pub(crate) cases: Vec<CaseSummary>,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CaseSummary {
    pub(crate) name: String,
    /// passed, failed, errored or skipped.
    pub(crate) status: String,
    pub(crate) flaky: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) message: Option<String>,
}

/// The words of `heatcheck report` when the file is not a report.
pub(crate) fn parse(path: &str, text: &str) -> Result<RunReport, String> {
    serde_json::from_str::<RunReport>(text).map_err(|e| {
        format!(
            "{path}:{}:{}: not a heatcheck JSON report: {e}",
            e.line(),
            e.column()
        )
    })
}

pub(crate) fn outcome_name(code: i32) -> &'static str {
    match RunOutcome::from_exit_code(code) {
        RunOutcome::Passed => "passed",
        RunOutcome::Failed => "failed",
        RunOutcome::Invalid => "invalid",
        RunOutcome::Unreachable => "unreachable",
        RunOutcome::Aborted => "aborted",
        RunOutcome::RestoreFailed => "restoreFailed",
    }
}

pub(crate) fn summarise(r: &RunReport) -> ReportSummary {
    let cases = || r.suites.iter().flat_map(|s| &s.cases);
    ReportSummary {
        run_id: r.run_id.clone(),
        started_at: r.started_at.to_rfc3339(),
        duration_seconds: r.duration.as_secs_f64(),
        exit_code: r.exit_code,
        outcome: outcome_name(r.exit_code).to_string(),
        passed: cases()
            .filter(|c| matches!(c.status, CaseStatus::Passed))
            .count(),
        failed: cases().filter(|c| c.is_failure()).count(),
        flaky: cases().filter(|c| c.is_flaky()).count(),
        skipped: cases()
            .filter(|c| matches!(c.status, CaseStatus::Skipped { .. }))
            .count(),
        restored_clean: r.restore.left_behind.is_empty() && r.restore.errors.is_empty(),
        left_behind: r.restore.left_behind.clone(),
        restore_errors: r.restore.errors.clone(),
        suites: r
            .suites
            .iter()
            .map(|s| SuiteSummary {
                name: s.name.clone(),
                file: s.file.clone(),
                error: s.error.clone(),
                cases: s
                    .cases
                    .iter()
                    .map(|c| CaseSummary {
                        name: c.display_name(),
                        status: c.status.label().to_string(),
                        flaky: c.is_flaky(),
                        message: match &c.status {
                            CaseStatus::Passed => None,
                            CaseStatus::Failed { message, .. }
                            | CaseStatus::Errored { message, .. } => Some(message.clone()),
                            CaseStatus::Skipped { reason } => Some(reason.clone()),
                        },
                    })
                    .collect(),
            })
            .collect(),
    }
}
