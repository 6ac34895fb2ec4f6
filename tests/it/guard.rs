//! End to end: the policy guard. A violating scenario never runs a single
//! step; CLI flags only tighten; `plan` changes nothing; the runtime check
//! refuses a selector that matches too many pods.

use crate::common;

use common::{args, junit_failures, suite_with, tokio_block, Case, SandboxProcess, BASE};
use heatcheck::cluster::{ClusterClient, ConnectOptions};
use serde_json::Value;

async fn client(kubeconfig: &std::path::Path) -> ClusterClient {
    let _ = rustls::crypto::ring::default_provider().install_default();
    ClusterClient::connect(&ConnectOptions {
        kubeconfig: Some(kubeconfig.to_path_buf()),
        context: None,
    })
    .await
    .expect("connect")
}

/// Creates namespace `ns` with the base objects (as a user's cluster would hold them).
async fn seed(kubeconfig: &std::path::Path, ns: &str) {
    let c = client(kubeconfig).await;
    let nsr = c.resolve(Some("v1"), "Namespace").await.unwrap();
    c.apply(
        &nsr,
        None,
        &serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
    )
    .await
    .unwrap();
    let docs: Vec<Value> = serde_saphyr::from_multiple(BASE).unwrap();
    for d in docs {
        let r = c
            .resolve(d["apiVersion"].as_str(), d["kind"].as_str().unwrap())
            .await
            .unwrap();
        c.apply(&r, Some(ns), &d).await.unwrap();
    }
    // Wait for the two web pods.
    let pods = c.resolve(Some("v1"), "Pod").await.unwrap();
    for _ in 0..200 {
        if c.list(&pods, Some(ns), Some("app=web"))
            .await
            .unwrap()
            .len()
            == 2
        {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("web pods did not appear");
}

async fn pod_names(kubeconfig: &std::path::Path, ns: &str) -> Vec<String> {
    let c = client(kubeconfig).await;
    let pods = c.resolve(Some("v1"), "Pod").await.unwrap();
    let mut names: Vec<String> = c
        .list(&pods, Some(ns), None)
        .await
        .unwrap()
        .iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

const VIOLATIONS: &str = r#"  policy: {maxPodsAffected: 50}
  scenarios:
    - name: escape to kube-system
      steps:
        - apply:
            manifest: |
              apiVersion: v1
              kind: ConfigMap
              metadata: {name: evil, namespace: kube-system}
    - name: delete the namespace
      steps:
        - delete: {kind: Namespace, name: "{{namespace}}"}
    - name: cluster-scoped kind
      steps:
        - apply:
            manifest: |
              apiVersion: gateway.networking.k8s.io/v1
              kind: GatewayClass
              metadata: {name: mine}
              spec: {controllerName: example.com/gw}
    - name: every pod
      steps:
        - delete: {kind: Pod, selector: ""}
    - name: too many pods
      steps:
        - fault: {type: podKill, selector: app=web, percent: 80, duration: 10s}
"#;

#[test]
fn a_policy_violating_scenario_never_executes_a_single_step() {
    let sandbox = SandboxProcess::start();
    let before = tokio_block(common::snapshot(&sandbox.kubeconfig));
    let case = Case::suite(&suite_with("guard-refuse", VIOLATIONS)).file("base.yaml", BASE);
    let out = case.exec(&args(&[
        "run",
        "suite.yaml",
        "--kubeconfig",
        sandbox.kubeconfig.to_str().unwrap(),
        "--state-dir",
        "state",
    ]));
    out.assert_code(2);
    for expected in [
        "\"escape to kube-system\" step 1 (apply inline manifest): apply ConfigMap kube-system/evil: namespace kube-system is a system namespace: heatcheck never changes it unless the suite's policy sets allowSystemNamespaces: true",
        "\"delete the namespace\" step 1 (delete Namespace/{{namespace}}): delete Namespace guard-refuse: steps never create, change or delete a Namespace",
        "\"cluster-scoped kind\" step 1 (apply inline manifest): apply GatewayClass mine: GatewayClass is cluster-scoped, denied by default",
        "\"every pod\" step 1 (delete Pod/): delete Pod guard-refuse/(selector \"\"): an empty selector matches every pod in the namespace",
        "\"too many pods\" step 1 (fault podKill on app=web): podKill fault: it hits 80% of the selected pods, above maxPodsAffected 50%",
        "5 policy violation(s); nothing was run",
    ] {
        assert!(out.stderr.contains(expected), "missing {expected:?} in:\n{}", out.stderr);
    }
    // Not even the fixtures ran (createNamespace included), and no journal was written.
    let after = tokio_block(common::snapshot(&sandbox.kubeconfig));
    assert_eq!(before, after, "the cluster changed");
    assert!(
        !case.path("state/runs").exists(),
        "a journal was written: {:?}",
        std::fs::read_dir(case.path("state/runs")).map(|d| d.count())
    );
}

#[test]
fn command_line_flags_only_tighten_the_policy() {
    let body = r#"  policy: {maxPodsAffected: 50, maxDuration: 1m}
  scenarios:
    - name: half the pods for 40s
      steps:
        - fault: {type: podKill, selector: app=web, percent: 50, duration: 40s}
"#;
    let case = Case::suite(&suite_with("guard-flags", body)).file("base.yaml", BASE);
    let run = |extra: &[&str]| {
        let mut a = args(&["run", "suite.yaml", "--sandbox", "--state-dir", "state"]);
        a.extend(args(extra));
        case.exec(&a)
    };
    // Tighter flags win: refused before anything runs.
    let out = run(&["--max-pods-affected", "30"]);
    out.assert_code(2);
    assert!(
        out.stderr.contains("above maxPodsAffected 30%"),
        "{}",
        out.stderr
    );
    let out = run(&["--max-duration", "30s"]);
    out.assert_code(2);
    assert!(
        out.stderr
            .contains("fault duration 40s is longer than maxDuration 30s"),
        "{}",
        out.stderr
    );
    let out = run(&["--forbid-verb", "fault"]);
    out.assert_code(2);
    assert!(
        out.stderr.contains("fault is a forbidden verb"),
        "{}",
        out.stderr
    );
    let out = run(&["--deny-kind", "PodChaos"]);
    out.assert_code(2);
    assert!(
        out.stderr
            .contains("PodChaos is in the policy's denied kinds"),
        "{}",
        out.stderr
    );
    let out = run(&["--allow-namespace", "elsewhere"]);
    out.assert_code(2);
    assert!(
        out.stderr.contains("note: --allow-namespace elsewhere ignored: the suite does not allow it (allowed: guard-flags)"),
        "{}",
        out.stderr
    );
    // The flag cannot widen the suite's namespaces, only narrow them: the
    // intersection is empty, so every object in guard-flags is refused.
    for expected in [
        "\"fixtures\" step 1 (apply base.yaml): apply Deployment guard-flags/web: namespace guard-flags is outside target.allowNamespaces (none)",
        "\"half the pods for 40s\" step 1 (fault podKill on app=web): fault Pod guard-flags/(selector \"app=web\"): namespace guard-flags is outside target.allowNamespaces (none)",
        "policy violation(s); nothing was run",
    ] {
        assert!(out.stderr.contains(expected), "missing {expected:?} in:\n{}", out.stderr);
    }
    // Looser flags are ignored with a note; the suite's limits still hold.
    let mut looser = Case::suite(&suite_with(
        "guard-flags",
        &body.replace("percent: 50", "percent: 60"),
    ))
    .file("base.yaml", BASE);
    looser = looser.args(["--max-pods-affected", "90", "--max-duration", "1h"]);
    let out = looser.run_sandbox();
    out.assert_code(2);
    assert!(
        out.stderr
            .contains("note: --max-pods-affected 90 ignored: the suite's policy allows at most 50")
            && out
                .stderr
                .contains("note: --max-duration 1h ignored: the suite's policy allows at most 1m")
            && out
                .stderr
                .contains("it hits 60% of the selected pods, above maxPodsAffected 50%"),
        "{}",
        out.stderr
    );
    // An unknown verb is an invalid argument.
    let out = run(&["--forbid-verb", "nuke"]);
    out.assert_code(2);
    assert!(
        out.stderr.contains("--forbid-verb: unknown verb \"nuke\""),
        "{}",
        out.stderr
    );
}

const PLANNED: &str = r#"apiVersion: heatcheck.dev/v1alpha1
kind: Suite
metadata: {name: planned}
spec:
  target: {namespace: plan-ns}
  policy: {maxPodsAffected: 50}
  fixtures:
    - apply: {file: base.yaml}
    - wait: {kind: Deployment, name: web, available: true}
  steadyState:
    - name: route accepted
      resource: {kind: HTTPRoute, name: web, expect: {$.metadata.name: web}}
  scenarios:
    - name: chaos within limits
      steps:
        - patch: {kind: Service, name: web, patch: {metadata: {labels: {touched: "yes"}}}}
        - scale: {name: web, replicas: 1}
        - fault: {type: networkDelay, selector: app=web, percent: 50, duration: 10s, latency: 100ms}
        - create:
            manifest: |
              apiVersion: v1
              kind: ConfigMap
              metadata: {generateName: scratch-}
        - delete: {kind: HTTPRoute, name: web}
        - restart: {name: web}
        - sleep: 1s
      assertions:
        - absent: {kind: HTTPRoute, name: web}
    - name: kill every pod
      steps:
        - delete: {kind: Pod, selector: app=web}
        - delete: {kind: ClusterRole, name: admin}
"#;

#[test]
fn plan_shows_steps_objects_verdict_and_rbac_and_changes_nothing() {
    let sandbox = SandboxProcess::start();
    tokio_block(seed(&sandbox.kubeconfig, "plan-ns"));
    let before = tokio_block(common::snapshot(&sandbox.kubeconfig));
    let pods_before = tokio_block(pod_names(&sandbox.kubeconfig, "plan-ns"));
    let case = Case::suite(PLANNED).file("base.yaml", BASE);
    let kc = sandbox.kubeconfig.to_str().unwrap();
    let out = case.exec(&args(&["plan", "suite.yaml", "--kubeconfig", kc]));
    // One scenario is refused: the verdict is exit code 2, as `run` would give.
    out.assert_code(2);
    insta::with_settings!({filters => vec![
        (r"web-[a-z0-9]+-[a-z0-9]{5}", "web-[pod]"),
    ]}, {
        insta::assert_snapshot!("plan_human", out.stdout);
    });
    let json_out = case.exec(&args(&[
        "plan",
        "suite.yaml",
        "--kubeconfig",
        kc,
        "--output",
        "json",
    ]));
    json_out.assert_code(2);
    let v: Value = serde_json::from_str(&json_out.stdout).expect("plan JSON");
    assert_eq!(v["refused"], 1);
    let suite = &v["suites"][0];
    let verdicts: Vec<(&str, bool)> = suite["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap(), c["allowed"].as_bool().unwrap()))
        .collect();
    assert_eq!(
        verdicts,
        [
            ("fixtures", true),
            ("chaos within limits", true),
            ("kill every pod", false)
        ]
    );
    let role = &suite["rbac"][0];
    assert_eq!(role["kind"], "Role");
    let rules = role["rules"].as_array().unwrap();
    let has = |resource: &str, verb: &str| {
        rules.iter().any(|r| {
            r["resources"]
                .as_array()
                .unwrap()
                .iter()
                .any(|x| x == resource)
                && r["verbs"].as_array().unwrap().iter().any(|x| x == verb)
        })
    };
    for (res, verb) in [
        ("deployments/scale", "patch"),
        ("deployments", "update"),
        ("networkchaos", "create"),
        ("networkchaos", "delete"),
        ("pods", "list"),
        ("httproutes", "delete"),
        ("httproutes", "watch"),
        ("configmaps", "create"),
        ("events", "watch"),
        ("services", "patch"),
    ] {
        assert!(has(res, verb), "no {verb} on {res} in {rules:#?}");
    }
    assert!(!has("secrets", "get"), "nothing asked for secrets");
    // Nothing changed: same objects, same pods (none killed, none added).
    let after = tokio_block(common::snapshot(&sandbox.kubeconfig));
    assert_eq!(before, after, "plan changed the cluster");
    assert_eq!(
        pods_before,
        tokio_block(pod_names(&sandbox.kubeconfig, "plan-ns"))
    );
}

#[test]
fn the_runtime_check_refuses_a_selector_matching_too_many_pods() {
    let sandbox = SandboxProcess::start();
    tokio_block(seed(&sandbox.kubeconfig, "guard-rt"));
    let pods_before = tokio_block(pod_names(&sandbox.kubeconfig, "guard-rt"));
    let body = r#"apiVersion: heatcheck.dev/v1alpha1
kind: Suite
metadata: {name: runtime}
spec:
  target: {namespace: guard-rt}
  policy: {maxPodsAffected: 50}
  scenarios:
    - name: delete every web pod
      steps:
        - delete: {kind: Pod, selector: app=web}
    - name: delete the deployment by label
      steps:
        - delete: {kind: Deployment, selector: app=web}
    - name: scale to zero
      steps:
        - scale: {name: web, replicas: 0}
    - name: kill one of two
      steps:
        - scale: {name: web, replicas: 1}
      assertions:
        - resource: {kind: Deployment, name: web, expect: {$.spec.replicas: 1}}
"#;
    let case = Case::suite(body);
    let kc = sandbox.kubeconfig.to_str().unwrap();
    let refused = [
        "delete every web pod",
        "delete the deployment by label",
        "scale to zero",
    ];
    let mut a = args(&[
        "run",
        "suite.yaml",
        "--kubeconfig",
        kc,
        "--junit",
        "junit.xml",
    ]);
    for n in refused {
        a.extend(args(&["--scenario", n]));
    }
    let out = case.exec(&a);
    out.assert_code(1);
    let failures = junit_failures(&out.junit());
    assert_eq!(failures.len(), 3, "{failures:#?}");
    // A selector matching every pod is refused before its share is counted.
    assert!(
        failures[0].0.contains("refused by policy: the selector \"app=web\" matches every one of the 2 Pod objects in the namespace"),
        "{}",
        failures[0].0
    );
    for (msg, _) in &failures[1..] {
        assert!(
            msg.contains("refused by policy: it affects 2 of the namespace's 2 pods (100%), above maxPodsAffected 50%"),
            "{msg}"
        );
    }
    assert_eq!(
        pods_before,
        tokio_block(pod_names(&sandbox.kubeconfig, "guard-rt")),
        "no pod was deleted by a refused step"
    );
    // Within the limit (1 of 2 pods), the step runs.
    case.exec(&args(&[
        "run",
        "suite.yaml",
        "--kubeconfig",
        kc,
        "--scenario",
        "kill one of two",
    ]))
    .assert_code(0);
}
