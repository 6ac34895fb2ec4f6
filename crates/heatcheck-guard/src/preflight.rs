//! Before anything runs: the effective policy of each suite, the scope of
//! every kind its steps name (discovery), and every violation.

use super::check::Checker;
use super::policy::{EffectivePolicy, PolicyError, PolicyOverrides};
use super::touch::touches;
use super::violation::Violation;
use heatcheck_cluster::ClusterClient;
use heatcheck_format::{Scenario, Suite};

/// The guard's verdict on one suite.
#[derive(Clone, Debug)]
pub struct Preflight {
    pub policy: EffectivePolicy,
    /// Overrides that were ignored because they would loosen the policy.
    pub notes: Vec<String>,
    pub violations: Vec<Violation>,
}

/// The scenarios a run will execute (all when `only` is empty).
pub fn selected<'a>(suite: &'a Suite, only: &[String]) -> Vec<&'a Scenario> {
    suite
        .spec
        .scenarios
        .iter()
        .filter(|s| only.is_empty() || only.iter().any(|n| n == &s.name))
        .collect()
}

/// Teaches the policy the scope of every kind the steps name (kinds the
/// cluster does not serve stay unknown: their steps fail when they run).
pub(crate) async fn learn_scopes(
    client: &ClusterClient,
    policy: &mut EffectivePolicy,
    suite: &Suite,
    vars: &[(String, String)],
) {
    let t = super::touch::static_templater(suite, "plan", vars);
    let steps = suite.spec.all_steps();
    let mut seen = std::collections::BTreeSet::new();
    for (i, step) in steps.enumerate() {
        for tc in touches(suite, &t, step, i).unwrap_or_default() {
            if !seen.insert((tc.api_version.clone(), tc.kind.clone())) {
                continue;
            }
            if let Ok(r) = client.resolve(tc.api_version.as_deref(), &tc.kind).await {
                policy.learn_scope(&tc.kind, r.namespaced);
            }
        }
    }
}

/// Checks the fixtures and the selected scenarios of one suite.
pub async fn preflight(
    client: Option<&ClusterClient>,
    suite: &Suite,
    overrides: &PolicyOverrides,
    vars: &[(String, String)],
    only: &[String],
) -> Result<Preflight, PolicyError> {
    let (mut policy, notes) = EffectivePolicy::build(suite, overrides)?;
    if let Some(c) = client {
        learn_scopes(c, &mut policy, suite, vars).await;
    }
    let checker = Checker::new(&policy, suite, vars);
    let mut violations = checker.fixtures();
    for sc in selected(suite, only) {
        violations.extend(checker.scenario(sc));
    }
    Ok(Preflight {
        policy,
        notes,
        violations,
    })
}
