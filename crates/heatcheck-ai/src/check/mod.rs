//! The checks of one proposed scenario, before anything runs it: JSON
//! Schema, the suite's own validation, the policy (`policy`), the objects
//! it references (here and in `references`). Generation runs them on every
//! candidate; a lock runs the static part again when it is loaded.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::known::{manifest_objects, object_key, templater, Known};
use heatcheck_format::{parse_scenario_json, validate_scenario, Scenario, StepAction, Suite};

mod policy;
mod selector;

use policy::policy_problems;
pub(crate) use policy::shorten;

/// JSON Schema problems of one candidate, as `steps[0].timeout: ...`.
pub(crate) fn schema_problems(v: &Value) -> Vec<String> {
    crate::candidate::schema_problems(v)
        .into_iter()
        .map(|p| format!("schema: {p}"))
        .collect()
}

/// Problems that need no cluster context: the suite's validation, at least
/// one assertion, and the policy. Used at generation and again when a lock
/// is loaded.
pub fn static_problems(sc: &Scenario, suite: &Suite) -> Vec<String> {
    problems_with(sc, suite, None)
}

/// The suite's validation, the assertion rule and the policy; `known`
/// (the gathered context) sharpens the match-all selector check.
fn problems_with(sc: &Scenario, suite: &Suite, known: Option<&Known>) -> Vec<String> {
    let mut out: Vec<String> = validate_scenario(sc, suite)
        .into_iter()
        .map(|d| match d.yaml_path {
            Some(p) if !p.is_empty() => format!("{p}: {}", d.message),
            _ => d.message,
        })
        .collect();
    if sc.assertions.is_empty() {
        out.push("a generated scenario needs at least one assertion".into());
    }
    out.extend(policy_problems(sc, suite, known));
    out
}

/// Objects referenced by delete/patch/scale/restart/wait must exist in the
/// context (or the fixtures) or be written by an earlier apply/create step.
pub(crate) fn reference_problems(sc: &Scenario, suite: &Suite, known: &Known) -> Vec<String> {
    let target = &suite.spec.target.namespace;
    let t = templater(suite);
    let mut created: BTreeSet<(String, String, String)> = BTreeSet::new();
    let mut out = Vec::new();
    for (i, step) in sc.steps.iter().enumerate() {
        let at = format!("steps[{i}].{}", step.action.kind());
        let ns = step.action.namespace().unwrap_or(target).to_string();
        let named: Option<(&str, &str)> = match &step.action {
            StepAction::Delete(d) if d.file.is_none() => d.kind.as_deref().zip(d.name.as_deref()),
            StepAction::Patch(p) => Some((&p.kind, &p.name)),
            StepAction::Scale(s) => Some((&s.kind, &s.name)),
            StepAction::Restart(r) => Some((&r.kind, &r.name)),
            StepAction::Wait(w) => w.name.as_deref().map(|n| (w.kind.as_str(), n)),
            _ => None,
        };
        if let Some((kind, name)) = named {
            let key = (kind.to_string(), ns.clone(), name.to_string());
            if !name.contains("{{") && !known.contains(kind, &ns, name) && !created.contains(&key) {
                out.push(format!(
                    "{at}: {kind} {ns}/{name} is not in the context and no earlier step creates it"
                ));
            }
        }
        if let StepAction::Apply(a) | StepAction::Create(a) = &step.action {
            if let Ok(objs) = manifest_objects(a, suite, &t) {
                created.extend(objs.iter().map(|o| object_key(o, &ns)));
            }
        }
    }
    out
}

/// Every check for one proposed scenario (real names: restored already).
pub(crate) fn check_candidate(
    v: &Value,
    suite: &Suite,
    known: &Known,
) -> Result<Scenario, Vec<String>> {
    let schema = schema_problems(v);
    if !schema.is_empty() {
        return Err(schema);
    }
    let sc = parse_scenario_json(v).map_err(|e| vec![format!("shape: {e}")])?;
    let mut problems = problems_with(&sc, suite, Some(known));
    problems.extend(reference_problems(&sc, suite, known));
    problems.extend(crate::references::assertion_problems(&sc, suite, known));
    if problems.is_empty() {
        Ok(sc)
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests;
