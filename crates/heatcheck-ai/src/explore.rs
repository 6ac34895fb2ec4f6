//! The prompt of `heatcheck explore --strategy ai|both`: the suite's own
//! prompt (context, redaction, anonymization and budget as `prompt`), then
//! what exploring asks for: the policy in words, the Gateway API semantics
//! a candidate must respect, the weakness classes, and what every earlier
//! candidate did. The model proposes; explore runs each on a twin.

use super::budget::estimate_tokens;
use super::prompt::Prompt;
use super::redact::redact_text;
use heatcheck_format::{format_duration, Suite, DEFAULT_MAX_DURATION, DEFAULT_MAX_PODS_AFFECTED};

/// One round's question.
pub struct ExploreAsk<'a> {
    /// 1 for the first round.
    pub round: usize,
    /// (class, what failing under it reveals), the classes a finding can have.
    pub classes: &'a [(&'a str, &'a str)],
    /// Classes already found weak.
    pub found: &'a [&'a str],
    /// What every earlier candidate did, one entry each (already worded).
    pub history: &'a [String],
}

/// The suite's prompt with the explore section appended to the user turn.
pub fn explore_prompt(mut base: Prompt, suite: &Suite, ask: &ExploreAsk) -> Prompt {
    let anon = |s: &str| match &base.anonymizer {
        Some(a) => a.anonymize_text(s),
        None => s.to_string(),
    };
    let section = anon(&section(suite, ask));
    base.user = format!("{}\n\n{}", base.user, redact_text(&section));
    base.estimated_tokens =
        estimate_tokens(&base.user) + base.system.as_deref().map(estimate_tokens).unwrap_or(0);
    base
}

/// The policy in the words the guard applies it (unset limits as defaults).
pub(crate) fn policy_in_words(suite: &Suite) -> Vec<String> {
    let t = &suite.spec.target;
    let p = suite.spec.policy.clone().unwrap_or_default();
    let mut namespaces = vec![t.namespace.clone()];
    namespaces.extend(t.allow_namespaces.iter().cloned());
    namespaces.extend(p.allow_namespaces.iter().cloned());
    namespaces.sort();
    namespaces.dedup();
    let mut out = vec![
        format!(
            "maxPodsAffected: {}% — one step may delete, kill, scale away or fault at most this share of the namespace's pods; a step over it is refused and never runs",
            p.max_pods_affected.unwrap_or(DEFAULT_MAX_PODS_AFFECTED)
        ),
        format!(
            "maxDuration: {} — the longest a scenario (and any one sleep, wait or fault in it) may take",
            format_duration(p.max_duration.map(|d| d.0).unwrap_or(DEFAULT_MAX_DURATION))
        ),
        format!("namespaces that may be changed: {}", namespaces.join(", ")),
    ];
    if !p.denied_kinds.is_empty() {
        out.push(format!(
            "kinds that must not be changed: {}",
            p.denied_kinds.join(", ")
        ));
    }
    if !p.allowed_kinds.is_empty() {
        out.push(format!(
            "only these kinds may be changed: {}",
            p.allowed_kinds.join(", ")
        ));
    }
    if !p.forbidden_verbs.is_empty() {
        out.push(format!(
            "forbidden step kinds: {}",
            p.forbidden_verbs.join(", ")
        ));
    }
    out
}

fn section(suite: &Suite, ask: &ExploreAsk) -> String {
    let mut s = format!(
        "## Exploring for weaknesses (round {})\n\
Each scenario you propose runs on its own disposable copy of this namespace (a digital twin), never on the real cluster. \
Propose changes that a well-built system survives, so that a failure under one is a weakness of this system's design: \
a route recreated, a ReferenceGrant removed, a minority of a backend's pods killed, a backend scaled down by half, a rolling restart, \
moderate latency on some pods, one backend isolated by a NetworkPolicy. \
Do NOT propose what is an outage on any design: killing or scaling away every pod of a backend, cutting a backend off entirely, \
deleting a route without recreating it. Assert what a healthy system still does after the change (the same backend answers, no errors).\n\
## Policy (a step outside it is refused and never runs)\n",
        ask.round
    );
    for line in policy_in_words(suite) {
        s.push_str(&format!("- {line}\n"));
    }
    s.push_str(
        "## Gateway API semantics to respect\n\
- Among routes whose matches are the same, the route with the oldest metadata.creationTimestamp wins; ties go to namespace/name in alphabetical order.\n\
- creationTimestamp has one-second resolution: objects created within the same second tie. Sleep more than a second (1100ms) between creating objects whose age decides precedence.\n\
- A backendRef to a Service in another namespace needs a ReferenceGrant in that namespace; without it the rule answers 500.\n\
- A deleted pod leaves the endpoints at once; its replacement takes traffic only once Ready (readinessProbe), so killing the only ready pod is seconds of 503s.\n\
## Weakness classes\n",
    );
    for (c, what) in ask.classes {
        s.push_str(&format!("- {c}: {what}\n"));
    }
    if ask.history.is_empty() {
        s.push_str("## Earlier candidates\nNone yet.\n");
    } else {
        s.push_str(&format!(
            "## Earlier candidates ({}) and what they did on their twins\n",
            ask.history.len()
        ));
        for h in ask.history {
            s.push_str(h);
            s.push('\n');
        }
    }
    if !ask.found.is_empty() {
        s.push_str(&format!(
            "Already found weak: {}. Aim at a weakness not found yet.\n",
            ask.found.join(", ")
        ));
    }
    s.push_str(
        "Propose NEW scenarios, not repeats of earlier ones: aim at what held or was not tried, learn from what was refused or broke.",
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::Gathered;
    use serde_json::json;

    #[test]
    fn the_section_states_the_policy_the_semantics_and_every_earlier_result() {
        let mut suite: Suite = serde_json::from_value(json!({
            "apiVersion": "heatcheck.dev/v1alpha1", "kind": "Suite", "metadata": {"name": "s"},
            "spec": {"target": {"namespace": "shop", "allowNamespaces": ["shop", "edge"]},
                "policy": {"maxPodsAffected": 30, "deniedKinds": ["Secret"]},
                "ai": {"provider": "openai", "model": "m", "prompt": "Objects: {{yaml context}}", "count": 2}}
        }))
        .unwrap();
        suite.source.path = "s.yaml".into();
        let base = crate::prompt::build(&suite, &Gathered::default()).unwrap();
        let history = vec![
            "- \"kill one pod\" [single-pod, catalog]: failed\n  - probe: 2.1s of outage"
                .to_string(),
        ];
        let p = explore_prompt(
            base.clone(),
            &suite,
            &ExploreAsk {
                round: 2,
                classes: &[("single-pod", "losing one pod is an outage")],
                found: &["single-pod"],
                history: &history,
            },
        );
        assert!(
            p.user.starts_with(&base.user),
            "the suite's own prompt comes first"
        );
        for want in [
            "round 2",
            "maxPodsAffected: 30%",
            "maxDuration: 10m",
            "edge, shop",
            "must not be changed: Secret",
            "oldest metadata.creationTimestamp wins",
            "one-second resolution",
            "- single-pod: losing one pod is an outage",
            "2.1s of outage",
            "Already found weak: single-pod",
        ] {
            assert!(p.user.contains(want), "missing {want:?} in:\n{}", p.user);
        }
        assert!(p.estimated_tokens > base.estimated_tokens);
    }
}
