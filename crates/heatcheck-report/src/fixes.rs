//! Verified fixes (of `heatcheck remediate`) shown beside the failures they
//! fix, in the HTML report and the game-day playbook. The binary reads
//! the remediation report and hands these over; reporters never run twins.

use std::collections::BTreeMap;

/// The offered fix of one finding, verified on fresh twins.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct VerifiedFix {
    /// The remediate finding's title.
    pub finding: String,
    pub title: String,
    /// Fields touched.
    pub fields: usize,
    /// The change as a unified diff of the suite's manifest files.
    pub diff: String,
    /// Changes to objects that live only in the cluster (server-side-apply YAML).
    pub server_side_apply: Vec<String>,
}

impl VerifiedFix {
    /// One line: what it is and how it was verified.
    pub(crate) fn summary(&self) -> String {
        format!(
            "{} ({} field(s)); verified on fresh twins by `heatcheck remediate`: the scenario passes with it and nothing that passed before fails",
            self.title, self.fields
        )
    }
}

/// (suite name, scenario name) -> the scenario's verified fix.
pub type Fixes = BTreeMap<(String, String), VerifiedFix>;
