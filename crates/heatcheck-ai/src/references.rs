//! What a generated scenario names must exist, in steps and assertions
//! alike: kinds and apiVersions the cluster serves, objects a `present`,
//! `resource` or `order` assertion expects (in the context or created by a
//! step), assertion namespaces within the target, `{{gateway "NAME"}}`
//! naming a known Gateway, templates using only defined variables. A
//! scenario that fails one of these can never pass, so it is not locked.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::known::{manifest_objects, object_key, templater, Known};
use heatcheck_format::{
    template_context, AssertionKind, GatewayResolver, Scenario, StepAction, Suite, Templater,
};

fn templated(s: &str) -> bool {
    s.contains("{{")
}

/// Resolves `{{gateway}}` against the Gateways in the context.
struct KnownGateways(BTreeMap<String, Vec<String>>);

impl GatewayResolver for KnownGateways {
    fn gateway_url(&self, namespace: &str, name: &str) -> Result<String, String> {
        let names = self.0.get(namespace).cloned().unwrap_or_default();
        if names.iter().any(|n| n == name) {
            return Ok(format!("http://gateway.{namespace}.{name}.check"));
        }
        Err(if names.is_empty() {
            format!("no Gateway \"{name}\": the context holds no Gateway in namespace {namespace}")
        } else {
            format!(
                "no Gateway \"{name}\" in namespace {namespace}; the Gateways there are {}",
                names.join(", ")
            )
        })
    }
}

/// Checks `kind` (and `apiVersion` when given) against discovery.
fn served(known: &Known, at: &str, kind: &str, api_version: Option<&str>, out: &mut Vec<String>) {
    if kind.is_empty() || templated(kind) {
        return;
    }
    let Some(versions) = known.served_versions(kind) else {
        return;
    };
    if versions.is_empty() {
        out.push(format!(
            "{at}: kind \"{kind}\" is not served by the cluster (use a kind from the served list)"
        ));
        return;
    }
    if let Some(av) = api_version.filter(|a| !templated(a)) {
        if !versions.contains(av) {
            out.push(format!(
                "{at}: apiVersion \"{av}\" does not serve {kind}; the cluster serves it as {}",
                versions.into_iter().collect::<Vec<_>>().join(", ")
            ));
        }
    }
}

/// The problems of one scenario's references (see the module docs).
pub(crate) fn assertion_problems(sc: &Scenario, suite: &Suite, known: &Known) -> Vec<String> {
    let target = &suite.spec.target.namespace;
    let allow: Vec<String> = if suite.spec.target.allow_namespaces.is_empty() {
        vec![target.clone()]
    } else {
        suite.spec.target.allow_namespaces.clone()
    };
    let t = templater(suite);
    let mut out = Vec::new();
    let mut created: BTreeSet<(String, String, String)> = BTreeSet::new();
    let mut namespaces: BTreeSet<String> = allow.iter().cloned().collect();
    namespaces.insert(target.clone());

    for (i, step) in sc.steps.iter().enumerate() {
        let at = format!("steps[{i}].{}", step.action.kind());
        let ns = step.action.namespace().unwrap_or(target).to_string();
        match &step.action {
            StepAction::Delete(d) => {
                if let Some(k) = &d.kind {
                    served(known, &at, k, d.api_version.as_deref(), &mut out);
                }
            }
            StepAction::Patch(p) => served(known, &at, &p.kind, p.api_version.as_deref(), &mut out),
            StepAction::Scale(s) => served(known, &at, &s.kind, s.api_version.as_deref(), &mut out),
            StepAction::Restart(r) => {
                served(known, &at, &r.kind, r.api_version.as_deref(), &mut out)
            }
            StepAction::Wait(w) => served(known, &at, &w.kind, w.api_version.as_deref(), &mut out),
            StepAction::Apply(a) | StepAction::Create(a) => {
                for o in manifest_objects(a, suite, &t).unwrap_or_default() {
                    let kind = o["kind"].as_str().unwrap_or_default();
                    served(known, &at, kind, o["apiVersion"].as_str(), &mut out);
                    created.insert(object_key(&o, &ns));
                }
            }
            _ => {}
        }
    }

    let exists = |kind: &str, ns: &str, name: &str| {
        templated(name)
            || known.contains(kind, ns, name)
            || created.contains(&(kind.to_string(), ns.to_string(), name.to_string()))
    };
    let missing = |at: &str, kind: &str, ns: &str, name: &str, what: &str| {
        format!(
            "{at}: {kind} {ns}/{name} is not in the context and no step creates it; {what} can never pass"
        )
    };
    for (i, a) in sc.assertions.iter().enumerate() {
        let at = format!("assertions[{i}].{}", a.kind.key());
        let ns_field: Option<&str> = match &a.kind {
            AssertionKind::Resource(r) => r.namespace.as_deref(),
            AssertionKind::Order(o) => o.namespace.as_deref(),
            AssertionKind::Absent(o) | AssertionKind::Present(o) => o.namespace.as_deref(),
            AssertionKind::Http(_) | AssertionKind::Promql(_) => None,
        };
        if let Some(ns) = ns_field.filter(|n| !templated(n)) {
            if !namespaces.contains(ns) {
                out.push(format!(
                    "{at}.namespace: namespace \"{ns}\" is outside target.allowNamespaces [{}]",
                    allow.join(", ")
                ));
            }
        }
        let ns = ns_field.unwrap_or(target);
        match &a.kind {
            AssertionKind::Resource(r) => {
                served(known, &at, &r.kind, r.api_version.as_deref(), &mut out);
                if let Some(name) = &r.name {
                    if !exists(&r.kind, ns, name) {
                        out.push(missing(&at, &r.kind, ns, name, "this assertion"));
                    }
                }
            }
            AssertionKind::Order(o) => {
                served(known, &at, &o.kind, o.api_version.as_deref(), &mut out);
                for name in &o.expect {
                    if !exists(&o.kind, ns, name) {
                        out.push(missing(&at, &o.kind, ns, name, "this order"));
                    }
                }
            }
            AssertionKind::Present(o) => {
                served(known, &at, &o.kind, o.api_version.as_deref(), &mut out);
                if !exists(&o.kind, ns, &o.name) {
                    out.push(missing(&at, &o.kind, ns, &o.name, "a `present` assertion"));
                }
            }
            AssertionKind::Absent(o) => {
                // Absence of anything is checkable; the kind must still exist.
                served(known, &at, &o.kind, o.api_version.as_deref(), &mut out);
            }
            AssertionKind::Http(_) | AssertionKind::Promql(_) => {}
        }
    }
    out.extend(template_problems(sc, suite, known, &namespaces));
    out
}

/// Renders every string of every step and assertion with the suite's
/// variables and the known Gateways (strict: an undefined variable fails).
fn template_problems(
    sc: &Scenario,
    suite: &Suite,
    known: &Known,
    namespaces: &BTreeSet<String>,
) -> Vec<String> {
    let gateways: BTreeMap<String, Vec<String>> = namespaces
        .iter()
        .map(|ns| (ns.clone(), known.names_of("Gateway", ns)))
        .collect();
    let t = Templater::new(
        template_context(suite, "check"),
        Arc::new(KnownGateways(gateways)),
    );
    let mut out = Vec::new();
    let parts = sc
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| (format!("steps[{i}]"), serde_json::to_value(s)))
        .chain(
            sc.assertions
                .iter()
                .enumerate()
                .map(|(i, a)| (format!("assertions[{i}]"), serde_json::to_value(a))),
        );
    for (at, v) in parts {
        let Ok(v) = v else { continue };
        if let Err(e) = t.render_value(&v) {
            out.push(format!("{at}: {e}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::{ContextItem, Gathered, ServedKind};
    use serde_json::json;

    fn suite() -> Suite {
        let mut s: Suite = serde_json::from_value(json!({
            "apiVersion": "heatcheck.dev/v1alpha1", "kind": "Suite", "metadata": {"name": "s"},
            "spec": {"target": {"namespace": "shop"}, "vars": {"host": "shop.example.com"},
                "ai": {"provider": "openai", "model": "m", "prompt": "p"}}
        }))
        .unwrap();
        s.spec.target.allow_namespaces = vec!["shop".into()];
        s
    }

    fn known() -> Known {
        let obj = |kind: &str, name: &str| ContextItem {
            group: 0,
            kind: kind.into(),
            namespace: Some("shop".into()),
            name: name.into(),
            value: json!({"kind": kind, "metadata": {"name": name, "namespace": "shop"}}),
        };
        let served = |av: &str, kind: &str| ServedKind {
            api_version: av.into(),
            kind: kind.into(),
            namespaced: true,
        };
        Known::from_context(
            &Gathered {
                items: vec![obj("Gateway", "gw"), obj("Deployment", "web")],
                served: vec![
                    served("apps/v1", "Deployment"),
                    served("gateway.networking.k8s.io/v1", "Gateway"),
                    served("v1", "Pod"),
                ],
                declared: 0,
            },
            &suite(),
        )
    }

    fn problems(assertions: serde_json::Value) -> String {
        let sc: Scenario = serde_json::from_value(json!({"name": "n",
            "steps": [{"apply": {"manifest": "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: new}\n"}}],
            "assertions": assertions}))
        .unwrap();
        assertion_problems(&sc, &suite(), &known()).join("\n")
    }

    #[test]
    fn good_references_pass() {
        let p = problems(json!([
            {"present": {"kind": "Deployment", "name": "web"}},
            {"present": {"kind": "Deployment", "name": "new"}},
            {"absent": {"kind": "Pod", "name": "anything"}},
            {"http": {"url": "{{gateway \"gw\"}}/", "headers": {"Host": "{{host}}"}, "expect": {"status": 200}}}
        ]));
        assert_eq!(p, "");
    }

    #[test]
    fn junk_assertions_are_named() {
        let p = problems(json!([
            {"present": {"apiVersion": "latest", "kind": "Deployment", "name": "web"}},
            {"present": {"kind": "The frontend pods are healthy", "name": "x"}},
            {"present": {"kind": "Deployment", "name": "ghost"}},
            {"resource": {"kind": "Deployment", "name": "web", "namespace": "prod"}},
            {"http": {"url": "{{gateway \"GATEWAY-NAME\"}}/", "expect": {"status": 200}}},
            {"http": {"url": "{{gatway_url}}/", "expect": {"status": 200}}}
        ]));
        for want in [
            "assertions[0].present: apiVersion \"latest\" does not serve Deployment; the cluster serves it as apps/v1",
            "assertions[1].present: kind \"The frontend pods are healthy\" is not served",
            "assertions[2].present: Deployment shop/ghost is not in the context and no step creates it",
            "assertions[3].resource.namespace: namespace \"prod\" is outside target.allowNamespaces [shop]",
            "no Gateway \"GATEWAY-NAME\" in namespace shop; the Gateways there are gw",
            "gatway_url",
        ] {
            assert!(p.contains(want), "missing {want:?} in\n{p}");
        }
    }
}
