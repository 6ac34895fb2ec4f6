//! heatcheck's preamble to the system prompt (`ai.preamble`, on by
//! default): what a scenario is, every step and assertion kind in one line,
//! the rules, and worked examples — the suite's own scenarios when it has
//! any, else a built-in one. Also the text behind the `{{examples}}`,
//! `{{gateways}}` and `{{kinds}}` prompt variables.

use serde_json::{json, Value};

use super::context::{ContextItem, ServedKind};
use heatcheck_format::Suite;

const KINDS: &str = r#"Step kinds (each step is an object with exactly one of these keys, plus optional name, timeout, continueOnError):
- apply / create: {"apply": {"manifest": "<YAML of objects>"}} writes objects (create fails if one exists).
- delete: {"delete": {"kind": "K", "name": "N"}} (or "selector": "app=x" instead of name).
- patch: {"patch": {"kind": "K", "name": "N", "patch": {...}}} merge patch ("type": "json" for a JSON patch list).
- scale: {"scale": {"kind": "Deployment", "name": "N", "replicas": 0}}.
- restart: {"restart": {"kind": "Deployment", "name": "N"}} rolling restart.
- wait: {"wait": {"kind": "K", "name": "N", "available": true}} (or "condition": "Accepted", or "jsonpath": "$.x" with "equals": v).
- sleep: {"sleep": "10s"}.
- fault: {"fault": {"type": "networkDelay"|"networkLoss"|"networkPartition"|"podKill", "selector": "app=x", "duration": "30s", "latency": "200ms"}}.
Assertion kinds (exactly one key each, plus an optional name):
- http: {"http": {"url": "{{gateway \"GW\"}}/path", "headers": {"Host": "host"}, "expect": {"status": 200}, "eventually": {"within": "20s", "every": "500ms"}}}.
- resource: {"resource": {"kind": "K", "name": "N", "expect": {"$.status.readyReplicas": 1}}}.
- order: {"order": {"kind": "K", "by": "$.metadata.creationTimestamp", "expect": ["first", "second"]}}.
- absent / present: {"absent": {"kind": "K", "name": "N"}}."#;

const RULES: &str = r#"Rules:
- Use only the target namespace (omit "namespace"); never kube-system or cluster-scoped kinds.
- Use only kinds, apiVersions and names shown in the context, or objects an earlier step creates.
- Every scenario has at least one assertion that can pass when the system is resilient.
- Durations are strings such as "500ms", "30s", "2m". Selectors name a workload, e.g. "app=web".
- HTTP assertions go through a Gateway from the context: {{gateway "NAME"}} with that Gateway's name, and a Host header the route serves."#;

/// A scenario heatcheck ships as the example when the suite has none.
fn builtin_example() -> Value {
    json!({
        "name": "route keeps serving with one replica",
        "description": "Scaling the backend to one replica must not interrupt traffic through the Gateway.",
        "steps": [
            {"scale": {"kind": "Deployment", "name": "web", "replicas": 1}},
            {"wait": {"kind": "Deployment", "name": "web", "available": true}}
        ],
        "assertions": [
            {"name": "one ready replica", "resource": {"kind": "Deployment", "name": "web", "expect": {"$.status.readyReplicas": 1}}},
            {"name": "still served", "http": {"url": "{{gateway \"gw\"}}/", "headers": {"Host": "shop.example.com"},
                "eventually": {"within": "20s", "every": "500ms"}, "expect": {"status": 200}}}
        ],
        "metrics": ["gateway 5xx rate"],
        "remediation": ["run at least two replicas with a PodDisruptionBudget"]
    })
}

/// Worked examples as an answer would hold them: up to two of the suite's
/// scenarios (those with assertions first), else the built-in one.
pub(crate) fn examples(suite: &Suite) -> String {
    let mut own: Vec<&heatcheck_format::Scenario> = suite.spec.scenarios.iter().collect();
    own.sort_by_key(|s| s.assertions.is_empty());
    let picked: Vec<Value> = own
        .into_iter()
        .take(2)
        .filter_map(|s| serde_json::to_value(s).ok())
        .collect();
    let (list, note) = if picked.is_empty() {
        (
            vec![builtin_example()],
            "A built-in example (its names are not from this cluster: use the names of the context):",
        )
    } else {
        (picked, "Examples from this suite's own scenarios:")
    };
    format!(
        "{note}\n{}",
        serde_json::to_string(&json!({ "scenarios": list })).unwrap_or_default()
    )
}

/// One line per Gateway in the context: name, namespace, listeners.
pub(crate) fn gateways(items: &[ContextItem]) -> String {
    let lines: Vec<String> = items
        .iter()
        .filter(|i| i.kind == "Gateway")
        .map(|i| {
            let listeners: Vec<String> = i
                .value
                .pointer("/spec/listeners")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|l| {
                    let mut s = format!(
                        "{} {}/{}",
                        l["name"].as_str().unwrap_or("?"),
                        l["protocol"].as_str().unwrap_or("?"),
                        l["port"]
                    );
                    if let Some(h) = l["hostname"].as_str() {
                        s.push_str(&format!(" host {h}"));
                    }
                    s
                })
                .collect();
            format!(
                "- {} (namespace {}): listeners {}; URL prefix {{{{gateway \"{}\"}}}}",
                i.name,
                i.namespace.as_deref().unwrap_or("?"),
                if listeners.is_empty() {
                    "none shown".to_string()
                } else {
                    listeners.join(", ")
                },
                i.name
            )
        })
        .collect();
    if lines.is_empty() {
        "(no Gateway in the context: do not write http assertions)".into()
    } else {
        lines.join("\n")
    }
}

/// Kinds the cluster serves that a scenario may use (namespaced ones),
/// grouped by apiVersion.
pub(crate) fn kinds(served: &[ServedKind]) -> String {
    let mut by_version: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
    for s in served.iter().filter(|s| s.namespaced) {
        by_version
            .entry(s.api_version.as_str())
            .or_default()
            .push(s.kind.as_str());
    }
    if by_version.is_empty() {
        return "(not known)".into();
    }
    by_version
        .into_iter()
        .map(|(v, ks)| format!("- {v}: {}", ks.join(", ")))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The whole preamble.
pub(crate) fn preamble(suite: &Suite, items: &[ContextItem], served: &[ServedKind]) -> String {
    format!(
        "You write chaos scenarios for heatcheck. A scenario is a JSON object: name, description, steps (changes made to the cluster, in order), assertions (checks that must hold afterwards), metrics and remediation. heatcheck runs the steps, checks the assertions, then restores everything.\n\n{KINDS}\n\n{RULES}\n\nGateways in the context:\n{}\n\nKinds the cluster serves (namespaced):\n{}\n\n{}",
        gateways(items),
        kinds(served),
        examples(suite)
    ) + &allowed_steps(suite)
}

/// `ai.allowedSteps` in words: a candidate making any other change is
/// rejected (the nightly Role grants only these).
fn allowed_steps(suite: &Suite) -> String {
    let Some(ai) = suite
        .spec
        .ai
        .as_ref()
        .filter(|a| !a.allowed_steps.is_empty())
    else {
        return String::new();
    };
    let mut s = String::from(
        "\n\nAllowed changes: steps may only make these changes (waits, sleeps and assertions may read anything):\n",
    );
    for a in &ai.allowed_steps {
        let steps: Vec<&str> = a.steps.iter().map(|s| s.as_str()).collect();
        s.push_str(&format!("- {} on {}\n", steps.join(", "), a.kind));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_example_is_a_valid_generated_scenario() {
        let v = builtin_example();
        assert!(super::super::candidate::schema_problems(&v).is_empty());
    }

    #[test]
    fn gateways_list_listeners() {
        let it = ContextItem {
            group: 0,
            kind: "Gateway".into(),
            namespace: Some("shop".into()),
            name: "gw".into(),
            value: json!({"spec": {"listeners": [{"name": "http", "protocol": "HTTP", "port": 80, "hostname": "*.example.com"}]}}),
        };
        assert_eq!(
            gateways(&[it]),
            "- gw (namespace shop): listeners http HTTP/80 host *.example.com; URL prefix {{gateway \"gw\"}}"
        );
        assert!(gateways(&[]).contains("no Gateway"));
    }
}
