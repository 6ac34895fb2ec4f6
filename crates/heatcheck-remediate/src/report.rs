//! What `remediate` answers (`--output json` prints [`RemediationReport`]).

use serde::Serialize;
use serde_json::Value;

use crate::change::Change;
use heatcheck_explore::WeaknessClass;

/// Where a finding stands after remediation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// At least one candidate was verified.
    Fixed,
    /// No candidate was verified (or the catalog has none).
    Unfixed,
    /// The finding's scenario holds on a twin before any change: stale input.
    AlreadyHolds,
    /// The budget ran out before its candidates ran.
    NotTried,
}

/// One candidate and what the twins said of it.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Tried {
    pub id: String,
    pub title: String,
    pub fields: usize,
    pub changes: Vec<Change>,
    /// Manifest files the change edits (as the suite writes them).
    pub files: Vec<String>,
    /// Why it was rejected (none when verified).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Seconds of twin time its verification took.
    pub seconds: f64,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FindingRemedy {
    pub id: String,
    pub title: String,
    pub class: WeaknessClass,
    pub status: Status,
    /// Verified, fewest fields first: the first is the one offered.
    pub fixes: Vec<Tried>,
    pub rejected: Vec<Tried>,
    pub notes: Vec<String>,
    /// Steady-state checks (suite format) to add to the suite.
    pub steady_state_checks: Vec<Value>,
}

#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RemediationReport {
    pub suite: String,
    pub namespace: String,
    pub strategy: &'static str,
    pub findings: Vec<FindingRemedy>,
    /// Candidates verified on twins, in all.
    pub candidates: usize,
    pub verified: usize,
    pub rejected: usize,
    /// Fresh twins started.
    pub twins: usize,
    pub duration_seconds: f64,
    /// Wall time over verified fixes (none verified: null).
    pub seconds_per_verified_fix: Option<f64>,
    /// The offered fixes together, as a unified diff of the manifest files.
    pub diff: String,
    /// When the offered fixes together were verified too: what that gave.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub combined: Option<crate::verdict::Verdict>,
    /// Objects that live only in the cluster: server-side-apply YAML to review.
    pub server_side_apply: Vec<String>,
    /// Files `--fix` wrote.
    pub written: Vec<String>,
}
