//! The permission preflight: every verb x resource x namespace a run needs
//! (its steps, their restore, waits, faults, assertions and probes), each
//! with the reason it is needed, checked with SelfSubjectAccessReview
//! before anything changes. `heatcheck plan` prints the same set.

use std::collections::BTreeMap;

use futures::stream::{self, StreamExt};
use serde::Serialize;
use serde_json::{json, Value};

use super::policy::EffectivePolicy;
use super::preflight::selected;
use super::rbac::Permissions;
use super::touch::{assertion_reads, static_templater, touches};
use super::verbs::rbac_verbs;
use heatcheck_cluster::{ClusterClient, Resolved};
use heatcheck_format::{ApplyStep, Step, StepAction, Suite};

/// One permission the run needs, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Need {
    pub verb: String,
    /// API group ("" for the core group).
    pub group: String,
    /// Plural resource, with `/subresource` when one.
    pub resource: String,
    /// None: cluster-scoped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The first reason found, e.g. "to undo the create of step 3 of \"x\"".
    pub why: String,
}

impl Need {
    /// `delete configmaps in shop` / `get gatewayclasses (cluster-wide)`.
    pub fn describe(&self) -> String {
        let resource = if self.group.is_empty() {
            self.resource.clone()
        } else {
            format!("{}.{}", self.resource, self.group)
        };
        match &self.namespace {
            Some(ns) => format!("{} {resource} in {ns}", self.verb),
            None => format!("{} {resource} (cluster-wide)", self.verb),
        }
    }

    fn key(&self) -> (String, String, String, Option<String>) {
        (
            self.verb.clone(),
            self.group.clone(),
            self.resource.clone(),
            self.namespace.clone(),
        )
    }
}

/// What SelfSubjectAccessReview answered for one permission.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Access {
    Allowed,
    Denied,
    /// The server cannot tell (no review API, an error): not a denial.
    Unknown,
}

impl Access {
    pub fn as_str(self) -> &'static str {
        match self {
            Access::Allowed => "allowed",
            Access::Denied => "denied",
            Access::Unknown => "unknown",
        }
    }
}

/// Needs in first-seen order, one per (verb, resource, namespace).
#[derive(Default)]
struct Collector {
    needs: Vec<Need>,
}

impl Collector {
    fn add(&mut self, r: &Resolved, sub: Option<&str>, ns: &str, verb: &str, why: String) {
        let resource = match sub {
            Some(s) => format!("{}/{s}", r.ar.plural),
            None => r.ar.plural.clone(),
        };
        let need = Need {
            verb: verb.to_string(),
            group: r.ar.group.clone(),
            resource,
            namespace: r.namespaced.then(|| ns.to_string()),
            why,
        };
        if !self.needs.iter().any(|n| n.key() == need.key()) {
            self.needs.push(need);
        }
    }
}

/// Why `verb` is needed on what a step of kind `action` touches.
fn reason(action: &str, verb: &str, step: &str) -> String {
    match (action, verb) {
        (_, "get") if action != "wait" => format!("to journal the prior state before {step}"),
        ("apply", "create") | ("create", "create") => format!("{step} creates it"),
        ("apply", "patch") => format!("{step} applies it"),
        ("apply", "update") | ("patch" | "restart" | "scale", "update") => {
            format!("to undo {step} (put the prior state back)")
        }
        ("apply", "delete") | ("create", "delete") => format!("to undo the create of {step}"),
        ("delete", "list") => format!("to find what {step} deletes"),
        ("delete", "delete") => format!("{step} deletes it"),
        ("delete", "create") => format!("to undo the delete of {step} (recreate it)"),
        ("patch", "patch") => format!("{step} patches it"),
        ("restart", "patch") => format!("{step} restarts it"),
        ("fault", "create") => format!("{step} creates the chaos object"),
        ("fault", "delete") => format!("to remove the fault of {step} when the scenario ends"),
        _ => format!("{step} waits on it"),
    }
}

/// The engine's `target.createNamespace` fixture: the namespace is the first
/// fixture (and so the last thing removed). Plan and permissions show the same step.
pub fn namespace_step(ns: &str) -> Step {
    let mut step = Step::new(StepAction::Apply(ApplyStep {
        file: None,
        manifest: Some(format!(
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n"
        )),
        namespace: None,
    }));
    step.name = Some(format!("create namespace {ns}"));
    step
}

/// Every permission one suite's run needs (fixtures and the scenarios in
/// `only`, all when empty). Kinds the cluster does not serve are skipped:
/// their steps fail when they run.
pub async fn required(
    client: &ClusterClient,
    suite: &Suite,
    policy: &EffectivePolicy,
    vars: &[(String, String)],
    only: &[String],
) -> Vec<Need> {
    let t = static_templater(suite, "plan", vars);
    let mut c = Collector::default();
    let mut fixtures = Vec::new();
    if suite.spec.target.create_namespace {
        fixtures.push(namespace_step(&suite.spec.target.namespace));
    }
    fixtures.extend(suite.spec.fixtures.iter().cloned());
    let mut groups: Vec<(String, Vec<Step>)> = vec![("fixtures".into(), fixtures)];
    for sc in selected(suite, only) {
        groups.push((format!("{:?}", sc.name), sc.steps.clone()));
    }
    let pods = client.resolve(Some("v1"), "Pod").await.ok();
    for (group, steps) in &groups {
        for (i, step) in steps.iter().enumerate() {
            let label = if group == "fixtures" {
                format!("fixture step {}", i + 1)
            } else {
                format!("step {} of {group}", i + 1)
            };
            for tc in touches(suite, &t, step, i).unwrap_or_default() {
                let Ok(r) = client.resolve(tc.api_version.as_deref(), &tc.kind).await else {
                    continue;
                };
                // The pods a fault selects are only counted (blast radius).
                if tc.action == "fault" && tc.object.is_none() {
                    c.add(
                        &r,
                        None,
                        &tc.namespace,
                        "list",
                        format!("to count the pods {label} would hit (maxPodsAffected)"),
                    );
                    continue;
                }
                for verb in rbac_verbs(tc.action) {
                    c.add(
                        &r,
                        None,
                        &tc.namespace,
                        verb,
                        reason(tc.action, verb, &label),
                    );
                }
                if tc.action == "scale" {
                    c.add(
                        &r,
                        Some("scale"),
                        &tc.namespace,
                        "patch",
                        format!("{label} scales it"),
                    );
                }
                let counts_pods = tc.action == "scale"
                    || (tc.action == "delete" && tc.name.is_none() && tc.object.is_none());
                if let (true, Some(p)) = (counts_pods, &pods) {
                    c.add(
                        p,
                        None,
                        &tc.namespace,
                        "list",
                        format!("to count the pods {label} would take away (maxPodsAffected)"),
                    );
                }
            }
        }
    }
    // Reads: steady state, assertions, probes, stop conditions.
    let target = &suite.spec.target.namespace;
    let mut reads: Vec<(String, &heatcheck_format::Assertion)> = suite
        .spec
        .steady_state
        .iter()
        .map(|a| {
            (
                format!("steady-state check {:?}", a.name.as_deref().unwrap_or("")),
                a,
            )
        })
        .collect();
    for sc in selected(suite, only) {
        reads.extend(sc.assertions.iter().map(|a| {
            let name = a.name.as_deref().unwrap_or("");
            (format!("assertion {name:?} of {:?}", sc.name), a)
        }));
    }
    for (label, a) in reads {
        for (av, kind, ns) in assertion_reads(a, &t, target) {
            if let Ok(r) = client.resolve(av.as_deref(), &kind).await {
                for verb in rbac_verbs("read") {
                    c.add(&r, None, &ns, verb, format!("{label} reads it"));
                }
            }
        }
    }
    // The suite's probes and those of the scenarios that run.
    let mut probes = suite.spec.probes.iter().chain(
        selected(suite, only)
            .into_iter()
            .flat_map(|sc| sc.probes.iter()),
    );
    let gateways = probes.any(|p| {
        serde_json::to_string(p)
            .unwrap_or_default()
            .contains("gateway")
    });
    if gateways {
        if let Ok(r) = client
            .resolve(Some("gateway.networking.k8s.io/v1"), "Gateway")
            .await
        {
            for verb in rbac_verbs("read") {
                c.add(
                    &r,
                    None,
                    target,
                    verb,
                    "probes find the Gateway's address".into(),
                );
            }
        }
    }
    // Events of both APIs, whether or not discovery lists them.
    for ns in &policy.allow_namespaces {
        for group in ["", "events.k8s.io"] {
            for verb in rbac_verbs("read") {
                let need = Need {
                    verb: verb.to_string(),
                    group: group.into(),
                    resource: "events".into(),
                    namespace: Some(ns.clone()),
                    why: "events for the report".into(),
                };
                if !c.needs.iter().any(|n| n.key() == need.key()) {
                    c.needs.push(need);
                }
            }
        }
    }
    c.needs
}

/// What a `run --regenerate` needs beyond its hand-written scenarios, when
/// the AI scenarios are not known yet: the lists that gather the prompt's
/// context (`context`, from `ai.context`) and exactly what `ai.allowedSteps`
/// lets generated scenarios do, in every namespace the policy allows (with
/// their restore, waits and the pod counts of maxPodsAffected). Err: an
/// allowed kind the cluster does not serve.
pub async fn regenerate_needs(
    client: &ClusterClient,
    suite: &Suite,
    policy: &EffectivePolicy,
    context: &[heatcheck_format::ContextSelector],
) -> Result<Vec<Need>, String> {
    let Some(ai) = &suite.spec.ai else {
        return Ok(Vec::new());
    };
    let mut c = Collector::default();
    for sel in context {
        let Ok(r) = client.resolve(sel.api_version.as_deref(), &sel.kind).await else {
            continue; // gather skips kinds that are not served
        };
        let namespaces = sel
            .namespaces
            .clone()
            .unwrap_or_else(|| suite.spec.target.allow_namespaces.clone());
        for ns in &namespaces {
            c.add(
                &r,
                None,
                ns,
                "list",
                "to gather the AI context (ai.context)".into(),
            );
        }
    }
    let pods = client.resolve(Some("v1"), "Pod").await.ok();
    for allowed in &ai.allowed_steps {
        let r = client
            .resolve(allowed.api_version.as_deref(), &allowed.kind)
            .await
            .map_err(|e| format!("ai.allowedSteps: {}: {e}", allowed.kind))?;
        for ns in &policy.allow_namespaces {
            for step in &allowed.steps {
                let action = step.as_str();
                let label = format!("a generated {action} of a {}", allowed.kind);
                for verb in rbac_verbs(action) {
                    c.add(
                        &r,
                        None,
                        ns,
                        verb,
                        format!("{} (ai.allowedSteps)", reason(action, verb, &label)),
                    );
                }
                if action == "scale" {
                    c.add(
                        &r,
                        Some("scale"),
                        ns,
                        "patch",
                        format!("{label} scales it (ai.allowedSteps)"),
                    );
                }
                if let (true, Some(p)) = (matches!(action, "scale" | "delete" | "fault"), &pods) {
                    c.add(
                        p,
                        None,
                        ns,
                        "list",
                        format!("to count the pods {label} would take away (maxPodsAffected)"),
                    );
                }
            }
            for verb in rbac_verbs("read") {
                c.add(
                    &r,
                    None,
                    ns,
                    verb,
                    format!(
                        "generated waits and assertions read {} (ai.allowedSteps)",
                        allowed.kind
                    ),
                );
            }
        }
    }
    Ok(c.needs)
}

/// What `--journal-in-cluster` needs in the runner's namespace: its journal
/// Secret (create, then update before each mutation, delete once restored)
/// and the Secrets of earlier runs (list, get, update to claim, delete).
/// No patch: every write is a resourceVersion-guarded update.
pub fn journal_needs(namespace: &str) -> Vec<Need> {
    [
        (
            "list",
            "to find journals of earlier runs that crashed (--journal-in-cluster)",
        ),
        (
            "get",
            "to read a journal Secret of an earlier run (--journal-in-cluster)",
        ),
        (
            "create",
            "to keep this run's journal in a Secret (--journal-in-cluster)",
        ),
        (
            "update",
            "to write the journal Secret before each change (--journal-in-cluster)",
        ),
        (
            "delete",
            "to remove a journal Secret once its run is restored (--journal-in-cluster)",
        ),
    ]
    .into_iter()
    .map(|(verb, why)| Need {
        verb: verb.into(),
        group: String::new(),
        resource: "secrets".into(),
        namespace: Some(namespace.to_string()),
        why: why.into(),
    })
    .collect()
}

/// The Role / ClusterRole granting exactly `needs`.
pub fn to_permissions(needs: &[Need]) -> Permissions {
    let mut p = Permissions::default();
    for n in needs {
        p.add_raw(n.namespace.as_deref(), &n.group, &n.resource, &n.verb);
    }
    p
}

/// Asks the API server about each permission, concurrently; each distinct
/// permission is asked once (the answers are per run).
pub async fn review(client: &ClusterClient, needs: &[Need]) -> Vec<Access> {
    let Ok(r) = client
        .resolve(Some("authorization.k8s.io/v1"), "SelfSubjectAccessReview")
        .await
    else {
        // Not served (e.g. the sandbox today): nothing can be said.
        return vec![Access::Unknown; needs.len()];
    };
    let mut distinct: BTreeMap<(String, String, String, Option<String>), Access> =
        needs.iter().map(|n| (n.key(), Access::Unknown)).collect();
    let keys: Vec<_> = distinct.keys().cloned().collect();
    let answers: Vec<_> = stream::iter(keys)
        .map(|k| {
            let r = &r;
            async move {
                let (resource, sub) = match k.2.split_once('/') {
                    Some((res, sub)) => (res.to_string(), Some(sub.to_string())),
                    None => (k.2.clone(), None),
                };
                let mut attrs = json!({"verb": k.0, "group": k.1, "resource": resource});
                if let Some(sub) = sub {
                    attrs["subresource"] = json!(sub);
                }
                if let Some(ns) = &k.3 {
                    attrs["namespace"] = json!(ns);
                }
                let body = json!({
                    "apiVersion": "authorization.k8s.io/v1",
                    "kind": "SelfSubjectAccessReview",
                    "spec": {"resourceAttributes": attrs},
                });
                let access = match client.create(r, None, &body).await {
                    Ok(v) => match v.pointer("/status/allowed").and_then(Value::as_bool) {
                        Some(true) => Access::Allowed,
                        Some(false) => Access::Denied,
                        None => Access::Unknown,
                    },
                    Err(e) => {
                        tracing::debug!("SelfSubjectAccessReview for {k:?}: {e}");
                        Access::Unknown
                    }
                };
                (k, access)
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    distinct.extend(answers);
    needs.iter().map(|n| distinct[&n.key()]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn needs_read_like_a_sentence() {
        let n = Need {
            verb: "delete".into(),
            group: String::new(),
            resource: "configmaps".into(),
            namespace: Some("shop".into()),
            why: reason("create", "delete", "step 3 of \"x\""),
        };
        assert_eq!(
            format!("{}: {}", n.describe(), n.why),
            "delete configmaps in shop: to undo the create of step 3 of \"x\""
        );
        let g = Need {
            verb: "patch".into(),
            group: "apps".into(),
            resource: "deployments/scale".into(),
            namespace: None,
            why: String::new(),
        };
        assert_eq!(g.describe(), "patch deployments/scale.apps (cluster-wide)");
        assert_eq!(
            reason("delete", "create", "fixture step 2"),
            "to undo the delete of fixture step 2 (recreate it)"
        );
    }
}
