//! What `remediate` answers (`--output json` prints [`RemediationReport`]).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::change::Change;
use heatcheck_explore::finding::Tokens;
use heatcheck_explore::{Origin, WeaknessClass};

/// Where a finding stands after remediation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tried {
    pub id: String,
    pub title: String,
    pub fields: usize,
    pub changes: Vec<Change>,
    pub origin: Origin,
    /// Manifest files the change edits (as the suite writes them).
    pub files: Vec<String>,
    /// This change alone as a unified diff of those files (empty when it
    /// changes only objects that live in the cluster).
    #[serde(default)]
    pub diff: String,
    /// This change to objects that live only in the cluster, as
    /// server-side-apply YAML.
    #[serde(default)]
    pub server_side_apply: Vec<String>,
    /// Why it was rejected (none when verified).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Seconds of twin time its verification took.
    pub seconds: f64,
}

/// A model's fix that never ran: why it was refused.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Refused {
    pub title: String,
    /// The request whose answer it was (1 = the first).
    pub attempt: u32,
    pub reasons: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FindingRemedy {
    pub id: String,
    pub title: String,
    /// The name of the finding's scenario (as `explore --write-suite`
    /// and the suite name it): where reports put its fix.
    #[serde(default)]
    pub scenario: String,
    pub class: WeaknessClass,
    pub status: Status,
    /// Verified, fewest fields first: the first is the one offered.
    pub fixes: Vec<Tried>,
    pub rejected: Vec<Tried>,
    /// The model's fixes refused before any twin ran (not valid, or outside
    /// the policy), with the reasons.
    pub refused: Vec<Refused>,
    pub notes: Vec<String>,
    /// Steady-state checks (suite format) to add to the suite.
    pub steady_state_checks: Vec<Value>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RemediationReport {
    pub suite: String,
    pub namespace: String,
    /// catalog, ai or both.
    pub strategy: String,
    pub findings: Vec<FindingRemedy>,
    /// Candidates verified on twins, in all.
    pub candidates: usize,
    pub verified: usize,
    pub rejected: usize,
    /// The model's fixes refused before any twin ran.
    pub refused: usize,
    /// Tokens the model spent (zero with the catalog alone).
    pub tokens: Tokens,
    /// The model failed mid-way: what it said (the fixes so far stand).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_error: Option<String>,
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
