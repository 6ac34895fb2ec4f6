use super::*;
use crate::context::{ContextItem, Gathered};
use serde_json::json;

fn suite() -> Suite {
    let mut s: Suite = serde_json::from_value(json!({
        "apiVersion": "heatcheck.dev/v1alpha1", "kind": "Suite", "metadata": {"name": "s"},
        "spec": {"target": {"namespace": "shop"},
            "scenarios": [{"name": "ai: taken", "steps": [{"sleep": "1s"}]}],
            "ai": {"provider": "openai", "model": "m", "prompt": "p", "count": 2, "maxRepairs": 1}}
    }))
    .unwrap();
    s.spec.target.allow_namespaces = vec!["shop".into()];
    s
}

fn known() -> Known {
    let obj = |kind: &str, name: &str, app: &str| {
        let mut value = json!({"kind": kind, "metadata": {"name": name, "namespace": "shop", "labels": {"app": app}}});
        if kind == "Deployment" {
            value["spec"] =
                json!({"template": {"metadata": {"labels": {"app": app, "tier": "web"}}}});
        }
        ContextItem {
            group: 0,
            kind: kind.into(),
            namespace: Some("shop".into()),
            name: name.into(),
            value,
        }
    };
    Known::from_context(
        &Gathered {
            items: vec![
                obj("HTTPRoute", "my-route", "r"),
                obj("Deployment", "web", "web"),
                obj("Deployment", "api", "api"),
            ],
            declared: 0,
            ..Default::default()
        },
        &suite(),
    )
}

fn good(name: &str) -> Value {
    json!({"name": name, "description": "d",
        "steps": [{"delete": {"kind": "HTTPRoute", "name": "my-route"}}],
        "assertions": [{"absent": {"kind": "HTTPRoute", "name": "my-route"}}],
        "metrics": ["m"], "remediation": ["r"]})
}

fn problems(v: Value) -> Vec<String> {
    check_candidate(&v, &suite(), &known()).unwrap_err()
}

#[test]
fn a_good_scenario_passes() {
    assert!(check_candidate(&good("g"), &suite(), &known()).is_ok());
}

#[test]
fn allowed_steps_limit_what_a_candidate_may_change() {
    let mut s = suite();
    s.spec.ai.as_mut().unwrap().allowed_steps = serde_json::from_value(json!([
        {"kind": "HTTPRoute", "steps": ["delete"]},
        {"kind": "Deployment", "steps": ["scale"]}
    ]))
    .unwrap();
    assert!(check_candidate(&good("g"), &s, &known()).is_ok());
    let mut v = good("restart");
    v["steps"] = json!([
        {"restart": {"kind": "Deployment", "name": "web"}},
        {"scale": {"name": "web", "replicas": 1}},
        {"wait": {"kind": "Deployment", "name": "web", "available": true}}
    ]);
    let p = check_candidate(&v, &s, &known()).unwrap_err();
    assert_eq!(
        p,
        vec!["steps[0].restart: restart Deployment is not in ai.allowedSteps (delete HTTPRoute, scale Deployment); generated scenarios may only make those changes"],
    );
}

#[test]
fn schema_errors_come_first() {
    let p = problems(json!({"name": "x", "steps": [{"slep": "1s"}]}));
    assert!(p.iter().all(|p| p.starts_with("schema: ")), "{p:?}");
    assert!(
        p.iter()
            .any(|p| p.starts_with("schema: steps[0]: a step needs exactly one of")),
        "{p:?}"
    );
}

#[test]
fn policy_rejections() {
    let step = |s: Value| {
        let mut g = good("x");
        g["steps"] = json!([s]);
        problems(g).join("\n")
    };
    let p = step(
        json!({"delete": {"kind": "Deployment", "name": "coredns", "namespace": "kube-system"}}),
    );
    assert!(
        p.contains("namespace kube-system is a system namespace"),
        "{p}"
    );
    let p = step(json!({"delete": {"kind": "Namespace", "name": "shop"}}));
    assert!(p.contains("Namespace is cluster-scoped"), "{p}");
    let p = step(
        json!({"apply": {"manifest": "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: x}\n"}}),
    );
    assert!(p.contains("ClusterRole is cluster-scoped"), "{p}");
    let p = step(
        json!({"apply": {"manifest": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, namespace: prod}\n"}}),
    );
    assert!(
        p.contains("namespace prod is outside target.allowNamespaces"),
        "{p}"
    );
    let p = step(json!({"fault": {"type": "podKill", "selector": "tier=web", "duration": "10s"}}));
    assert!(p.contains("matches every one of the 2 workloads"), "{p}");
    let p = step(json!({"fault": {"type": "podKill", "selector": "app!=db", "duration": "10s"}}));
    assert!(p.contains("no positive requirement"), "{p}");
    let p = step(json!({"delete": {"kind": "Deployment", "selector": "!x"}}));
    assert!(p.contains("no positive requirement"), "{p}");
    // A selector on one workload is fine.
    let mut g = good("x");
    g["steps"] = json!([{"fault": {"type": "podKill", "selector": "app=web", "duration": "10s"}}]);
    assert!(check_candidate(&g, &suite(), &known()).is_ok());
}

#[test]
fn references_must_exist_or_be_created_earlier() {
    let mut g = good("x");
    g["steps"] = json!([
        {"scale": {"name": "ghost", "replicas": 0}},
        {"apply": {"manifest": "apiVersion: v1\nkind: Service\nmetadata: {name: new-svc}\n"}},
        {"patch": {"kind": "Service", "name": "new-svc", "patch": {"metadata": {"labels": {"a": "b"}}}}},
        {"wait": {"kind": "Deployment", "name": "web", "available": true}}
    ]);
    let p = problems(g);
    assert_eq!(p, ["steps[0].scale: Deployment shop/ghost is not in the context and no earlier step creates it"]);
    let mut g = good("x");
    g["assertions"] = json!([]);
    assert!(problems(g)
        .iter()
        .any(|p| p.contains("assertions: needs at least 1 item(s)")));
}
