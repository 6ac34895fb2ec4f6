//! What one generation produced, and the names its scenarios are locked
//! under.

use std::collections::BTreeSet;

use crate::lockfile::{LockUsage, Rejected, ScenarioCheck};
use heatcheck_format::{Scenario, Suite};

/// The outcome of one generation.
#[derive(Clone, Debug, Default)]
pub struct Generation {
    pub scenarios: Vec<Scenario>,
    pub rejected: Vec<Rejected>,
    pub usage: LockUsage,
    /// Valid scenarios in the first answer (before any repair).
    pub valid_first: usize,
    /// Scenarios in the first answer.
    pub proposed_first: usize,
    /// Per accepted scenario (same order): repairs and sandbox verdict.
    pub checks: Vec<ScenarioCheck>,
}

/// Prefix of generated scenario names (unless they already carry it).
pub(crate) const NAME_PREFIX: &str = "ai: ";

/// `ai: ` prefix, unique against the suite's own scenarios and each other.
pub(crate) fn name_scenarios(scenarios: Vec<Scenario>, suite: &Suite) -> Vec<Scenario> {
    let mut taken: BTreeSet<String> = suite
        .spec
        .scenarios
        .iter()
        .map(|s| s.name.clone())
        .collect();
    scenarios
        .into_iter()
        .map(|mut sc| {
            let base = if sc.name.starts_with(NAME_PREFIX) {
                sc.name.clone()
            } else {
                format!("{NAME_PREFIX}{}", sc.name.trim())
            };
            let mut name = base.clone();
            let mut n = 2;
            while taken.contains(&name) {
                name = format!("{base} ({n})");
                n += 1;
            }
            taken.insert(name.clone());
            sc.name = name;
            sc
        })
        .collect()
}
