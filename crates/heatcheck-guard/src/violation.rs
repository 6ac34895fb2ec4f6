//! What the guard refuses, phrased so the user can find and fix it.

use std::fmt;

use serde::Serialize;

/// The rule a step breaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) enum Rule {
    Namespace,
    Kind,
    Verb,
    Selector,
    BlastRadius,
    Duration,
    /// A template reads a variable the suite does not define or expose.
    Template,
}

/// One refused step (or scenario, when `step` is None).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Violation {
    /// Scenario name, or `fixtures`.
    pub scenario: String,
    /// 0-based index of the step (shown 1-based).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<usize>,
    /// The step as shown in reports.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) step_name: Option<String>,
    pub(crate) rule: Rule,
    /// What the step would do, e.g. `delete Namespace shop`.
    pub what: String,
    /// Why the policy refuses it.
    pub why: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.scenario)?;
        if let Some(i) = self.step {
            write!(f, " step {}", i + 1)?;
            if let Some(n) = &self.step_name {
                write!(f, " ({n})")?;
            }
        }
        write!(f, ": {}: {}", self.what, self.why)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_scenario_step_what_and_why() {
        let v = Violation {
            scenario: "nuke".into(),
            step: Some(1),
            step_name: Some("delete Namespace shop".into()),
            rule: Rule::Kind,
            what: "delete Namespace shop".into(),
            why: "scenarios never create, change or delete a Namespace".into(),
        };
        assert_eq!(
            v.to_string(),
            "\"nuke\" step 2 (delete Namespace shop): delete Namespace shop: scenarios never create, change or delete a Namespace"
        );
    }
}
