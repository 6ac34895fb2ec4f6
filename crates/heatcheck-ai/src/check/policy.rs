//! The policy pre-check of a generated scenario: the guard's own check plus
//! the stricter rules for what a model proposes.

use serde_json::Value;

use super::selector::match_all;
use crate::known::{manifest_objects, templater, Known};
use heatcheck_format::{Scenario, StepAction, Suite};

/// Kinds that are cluster-scoped (never created, changed or deleted by a
/// generated scenario).
pub(crate) const CLUSTER_SCOPED_KINDS: &[&str] = &[
    "Namespace",
    "Node",
    "PersistentVolume",
    "CustomResourceDefinition",
    "ClusterRole",
    "ClusterRoleBinding",
    "StorageClass",
    "PriorityClass",
    "IngressClass",
    "GatewayClass",
    "RuntimeClass",
    "CSIDriver",
    "CSINode",
    "VolumeAttachment",
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
    "APIService",
    "CertificateSigningRequest",
    "FlowSchema",
    "PriorityLevelConfiguration",
    "ClusterIssuer",
];

pub(crate) fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        format!("{}...", s.chars().take(max).collect::<String>())
    }
}

/// The policy pre-check: everything the guard refuses before a run (the
/// same check, so generation never locks what a run would refuse: system
/// and foreign namespaces, kinds, verbs, durations, undefined template
/// variables), plus the stricter rules for generated scenarios: no
/// cluster-scoped kind at all, no match-all selector. `known` enables the
/// "matches every pod" check against the gathered workloads.
pub(crate) fn policy_problems(sc: &Scenario, suite: &Suite, known: Option<&Known>) -> Vec<String> {
    let target = &suite.spec.target.namespace;
    let t = templater(suite);
    let mut out = Vec::new();
    match heatcheck_guard::EffectivePolicy::build(suite, &Default::default()) {
        Ok((policy, _)) => {
            for v in heatcheck_guard::check_scenario(sc, &policy, suite) {
                let at = match v.step {
                    Some(i) => format!("steps[{i}].{}", sc.steps[i].action.kind()),
                    None => "scenario".to_string(),
                };
                out.push(format!("{at}: {}: {}", v.what, v.why));
            }
        }
        Err(e) => out.push(format!("policy: {e}")),
    }
    out.extend(allowed_steps_problems(sc, suite, &t));
    for (i, step) in sc.steps.iter().enumerate() {
        let at = format!("steps[{i}].{}", step.action.kind());
        let ns = step.action.namespace().unwrap_or(target);
        let mutating_kind: Option<&str> = match &step.action {
            StepAction::Delete(d) => d.kind.as_deref(),
            StepAction::Patch(p) => Some(&p.kind),
            StepAction::Scale(s) => Some(&s.kind),
            StepAction::Restart(r) => Some(&r.kind),
            _ => None,
        };
        if let Some(k) = mutating_kind.filter(|k| CLUSTER_SCOPED_KINDS.contains(k)) {
            out.push(format!(
                "{at}: {k} is cluster-scoped; generated scenarios never change cluster-scoped kinds"
            ));
        }
        // maxPodsAffected: 100 written in the suite: every pod may be selected.
        let every_pod_ok = suite
            .spec
            .policy
            .as_ref()
            .is_some_and(|p| p.max_pods_affected == Some(100));
        let known = known.filter(|_| !every_pod_ok);
        match &step.action {
            StepAction::Apply(a) | StepAction::Create(a) => match manifest_objects(a, suite, &t) {
                Err(e) => out.push(format!("{at}: {}", shorten(&e, 200))),
                Ok(objs) => {
                    for o in objs {
                        let kind = o.get("kind").and_then(Value::as_str).unwrap_or_default();
                        if CLUSTER_SCOPED_KINDS.contains(&kind) {
                            out.push(format!(
                                "{at}: {kind} is cluster-scoped; generated scenarios never create cluster-scoped kinds"
                            ));
                        }
                    }
                }
            },
            StepAction::Delete(d) => {
                if let Some(sel) = &d.selector {
                    let kind = d.kind.as_deref().unwrap_or_default();
                    let sets = known.and_then(|k| {
                        if kind == "Pod" {
                            k.pod_labels_in(ns)
                        } else {
                            k.labels_of(kind, ns)
                        }
                    });
                    if let Some(why) = match_all(sel, sets) {
                        out.push(format!("{at}: selector \"{sel}\" {why}"));
                    }
                }
            }
            StepAction::Fault(f) => {
                // A share of the pods is bounded by maxPodsAffected at run time.
                let sets = known
                    .filter(|_| f.percent >= 100)
                    .and_then(|k| k.pod_labels_in(ns));
                if let Some(why) = match_all(&f.selector, sets) {
                    out.push(format!("{at}: selector \"{}\" {why}", f.selector));
                }
                if let Some(tsel) = &f.target {
                    if let Some(why) = match_all(tsel, None) {
                        out.push(format!("{at}: target selector \"{tsel}\" {why}"));
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// With `ai.allowedSteps` set, each object a step changes must be of a kind
/// listed there for that step kind: `deploy --regenerate` grants no more.
fn allowed_steps_problems(
    sc: &Scenario,
    suite: &Suite,
    t: &heatcheck_format::Templater,
) -> Vec<String> {
    let Some(allowed) = suite.spec.ai.as_ref().map(|a| &a.allowed_steps) else {
        return Vec::new();
    };
    if allowed.is_empty() {
        return Vec::new();
    }
    let key = heatcheck_guard::kinds::key;
    let listed = || {
        allowed
            .iter()
            .map(|a| {
                let steps: Vec<&str> = a.steps.iter().map(|s| s.as_str()).collect();
                format!("{} {}", steps.join("/"), a.kind)
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut out = Vec::new();
    for (i, step) in sc.steps.iter().enumerate() {
        let Ok(list) = heatcheck_guard::touches(suite, t, step, i) else {
            continue; // a render error is reported by the other checks
        };
        for tc in list {
            // The pods a fault selects are counted, not changed.
            let counted = tc.action == "fault" && tc.object.is_none();
            if tc.action == "wait" || counted {
                continue;
            }
            let ok = allowed.iter().any(|a| {
                key(&a.kind) == key(&tc.kind) && a.steps.iter().any(|s| s.as_str() == tc.action)
            });
            if !ok {
                out.push(format!(
                    "steps[{i}].{}: {} {} is not in ai.allowedSteps ({}); generated scenarios may only make those changes",
                    step.action.kind(),
                    tc.action,
                    tc.kind,
                    listed()
                ));
            }
        }
    }
    out
}
