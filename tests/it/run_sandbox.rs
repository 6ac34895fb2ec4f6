//! End to end: the real binary runs suites against the sandbox. Each case
//! states the suite, the command and what a user sees.

use crate::common;

use common::{
    args, junit_counts, junit_failures, suite_with, tokio_block, Case, SandboxProcess, BASE,
};

// podKill of 34% rounds up to 2 of the 3 pods: above the default 50%.
const EVERY_STEP: &str = r#"  policy: {maxPodsAffected: 70}
  scenarios:
    - name: every step kind
      steps:
        - apply:
            manifest: |
              apiVersion: v1
              kind: ConfigMap
              metadata: {name: settings}
              data: {mode: calm}
        - create:
            manifest: |
              apiVersion: v1
              kind: ConfigMap
              metadata: {generateName: scratch-}
              data: {a: "1"}
        - patch: {kind: ConfigMap, name: settings, patch: {data: {mode: storm}}}
        - patch: {kind: ConfigMap, name: settings, type: json, patch: [{op: add, path: /data/extra, value: x}]}
        - patch:
            kind: Deployment
            name: web
            type: strategic
            patch: {spec: {template: {spec: {containers: [{name: echo, image: "echo:v2"}]}}}}
        - scale: {name: web, replicas: 3}
        - wait: {kind: Deployment, name: web, available: true}
        - restart: {name: web}
        - wait: {kind: Deployment, name: web, available: true}
        - sleep: 50ms
        - name: kill a third of the pods
          fault: {type: podKill, selector: app=web, percent: 34, duration: 30s}
        - wait: {kind: Deployment, name: web, available: true}
        - delete: {kind: ConfigMap, selector: app=nothing-matches}
        - delete: {kind: ConfigMap, name: settings}
      assertions:
        - absent: {kind: ConfigMap, name: settings}
        - present: {kind: Deployment, name: web}
        - resource:
            kind: Deployment
            name: web
            expect:
              $.spec.replicas: 3
              $.spec.template.spec.containers[0].image: "echo:v2"
              $.spec.template.metadata.annotations: {exists: true}
        - resource: {kind: ConfigMap, selector: heatcheck.dev/run-id, count: 1}
        - name: served through the gateway
          http:
            url: '{{gateway "gw"}}/x?y=1'
            headers: {Host: shop.example.com}
            eventually: {within: 10s, every: 100ms}
            expect:
              status: 200
              headers: {content-type: {matches: json}}
              bodyContains: infra
              json:
                $.namespace: "{{namespace}}"
                $.path: /x?y=1
                $.service: web
                $.pod: {matches: "^web-[a-z0-9]+-[a-z0-9]{5}$"}
"#;

#[test]
fn every_step_and_assertion_kind_passes_and_the_cluster_is_restored() {
    let sandbox = SandboxProcess::start();
    let before = tokio_block(common::snapshot(&sandbox.kubeconfig));
    let case = Case::suite(&suite_with(
        "e2e-steps",
        EVERY_STEP
            .replace("bodyContains: infra", "bodyContains: '\"web\"'")
            .as_str(),
    ))
    .file("base.yaml", BASE);
    let out = case.exec(&args(&[
        "run",
        "suite.yaml",
        "--kubeconfig",
        sandbox.kubeconfig.to_str().unwrap(),
        "--junit",
        "junit.xml",
        "--report-json",
        "report.json",
    ]));
    out.assert_code(0);
    let (cases, failures, errors, skipped) = junit_counts(&out.junit());
    assert_eq!(
        (cases, failures, errors, skipped),
        (2, 0, 0, 0),
        "{}",
        out.junit()
    );
    let report = out.report();
    assert_eq!(report["exitCode"], 0);
    let after = tokio_block(common::snapshot(&sandbox.kubeconfig));
    assert_eq!(before, after, "the cluster differs after the run");
}

#[test]
fn a_failed_assertion_is_reported_with_expected_and_actual_and_everything_is_restored() {
    let sandbox = SandboxProcess::start();
    let before = tokio_block(common::snapshot(&sandbox.kubeconfig));
    // No `eventually`: the sandbox reports a route Accepted only once its
    // data plane routes it, so the first request already reaches a backend.
    let body = r#"  scenarios:
    - name: wrong backend
      steps:
        - apply:
            manifest: |
              apiVersion: v1
              kind: ConfigMap
              metadata: {name: left-over}
      assertions:
        - name: served by v9
          http:
            url: '{{gateway "gw"}}/shop'
            headers: {Host: shop.example.com}
            expect: {json: {$.pod: {matches: "^v9-"}}}
        - name: still there
          present: {kind: ConfigMap, name: left-over}
"#;
    let case = Case::suite(&suite_with("e2e-fail", body)).file("base.yaml", BASE);
    let out = case.exec(&args(&[
        "run",
        "suite.yaml",
        "--kubeconfig",
        sandbox.kubeconfig.to_str().unwrap(),
        "--junit",
        "junit.xml",
        "--report-json",
        "report.json",
    ]));
    out.assert_code(1);
    let xml = out.junit();
    assert_eq!(junit_counts(&xml), (2, 1, 0, 0), "{xml}");
    let failures = junit_failures(&xml);
    let (message, detail) = &failures[0];
    assert!(
        message.contains("served by v9")
            && message.contains("expected a match for /^v9-/, got \"web-"),
        "{message}"
    );
    assert!(
        detail.contains("\"service\":\"web\""),
        "the full response is in the XML: {detail}"
    );
    assert!(
        out.stdout.contains("expected a match for /^v9-/"),
        "{}",
        out.stdout
    );
    let restored = out.report()["restore"]["restored"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect::<Vec<_>>();
    assert!(
        restored.contains(&"deleted ConfigMap e2e-fail/left-over".to_string()),
        "{restored:?}"
    );
    let after = tokio_block(common::snapshot(&sandbox.kubeconfig));
    assert_eq!(before, after);
}

#[test]
fn a_step_outside_the_allowed_namespaces_touches_nothing() {
    let body = r#"  scenarios:
    - name: escape attempt
      steps:
        - apply:
            manifest: |
              apiVersion: v1
              kind: ConfigMap
              metadata: {name: evil, namespace: kube-system}
      assertions:
        - absent: {kind: ConfigMap, name: evil, namespace: kube-system}
"#;
    let case = Case::suite(&suite_with("e2e-guard", body)).file("base.yaml", BASE);
    let out = case.run_sandbox();
    // The guard refuses it before anything runs (tests/guard.rs has the details).
    out.assert_code(2);
    assert!(
        out.stderr
            .contains("namespace kube-system is a system namespace: heatcheck never changes it unless the suite's policy sets allowSystemNamespaces: true"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_wait_that_never_holds_times_out_with_the_last_observation() {
    let body = r#"  scenarios:
    - name: impatient
      steps:
        - wait: {kind: Deployment, name: web, jsonpath: $.spec.replicas, equals: 7, timeout: 500ms}
      assertions:
        - present: {kind: Deployment, name: web}
"#;
    let case = Case::suite(&suite_with("e2e-wait", body)).file("base.yaml", BASE);
    let out = case.run_sandbox();
    out.assert_code(1);
    let failures = junit_failures(&out.junit());
    assert!(
        failures[0].0.contains(
            "timed out after 500ms waiting for Deployment e2e-wait/web: web: expected 7, got 2"
        ),
        "{:?}",
        failures
    );
}

#[test]
fn no_restore_keeps_the_changes_and_says_what_is_left() {
    let sandbox = SandboxProcess::start();
    let body = r#"  scenarios:
    - name: keep it
      steps:
        - apply:
            manifest: |
              apiVersion: v1
              kind: ConfigMap
              metadata: {name: debug-me}
      assertions:
        - present: {kind: ConfigMap, name: debug-me}
"#;
    let case = Case::suite(&suite_with("e2e-keep", body)).file("base.yaml", BASE);
    let out = case.exec(&args(&[
        "run",
        "suite.yaml",
        "--kubeconfig",
        sandbox.kubeconfig.to_str().unwrap(),
        "--no-restore",
    ]));
    out.assert_code(0);
    assert!(
        out.stdout.contains("ConfigMap e2e-keep/debug-me"),
        "{}",
        out.stdout
    );
    let after = tokio_block(common::snapshot(&sandbox.kubeconfig));
    assert!(
        after.contains_key("ConfigMap/e2e-keep/debug-me"),
        "{:?}",
        after.keys()
    );
}

#[test]
fn json_output_is_one_event_per_line() {
    let body = r#"  scenarios:
    - name: tiny
      steps:
        - sleep: 10ms
      assertions:
        - present: {kind: Service, name: web}
"#;
    let case = Case::suite(&suite_with("e2e-json", body)).file("base.yaml", BASE);
    let out = case.exec(&args(&[
        "run",
        "suite.yaml",
        "--sandbox",
        "--output",
        "json",
    ]));
    out.assert_code(0);
    let events: Vec<serde_json::Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    assert_eq!(events.first().unwrap()["event"], "runStarted");
    let last = events.last().unwrap();
    assert_eq!(last["event"], "runFinished");
    assert_eq!(last["report"]["exitCode"], 0);
    assert!(events.iter().any(|e| e["event"] == "stepFinished"));
}

#[test]
fn an_unreachable_cluster_exits_3_and_names_the_server() {
    let case = Case::suite(&suite_with("e2e-unreach", "  scenarios: []\n")).file("base.yaml", BASE).file(
        "kubeconfig",
        "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'http://127.0.0.1:9'}}]\ncontexts: [{name: c, context: {cluster: c, user: u}}]\ncurrent-context: c\nusers: [{name: u, user: {token: t}}]\n",
    );
    let out = case.exec(&args(&["run", "suite.yaml", "--kubeconfig", "kubeconfig"]));
    out.assert_code(3);
    assert!(
        out.stderr
            .contains("cluster unreachable at http://127.0.0.1:9"),
        "{}",
        out.stderr
    );
}

#[test]
fn an_unknown_scenario_name_is_an_argument_error() {
    let case = Case::suite(&suite_with(
        "e2e-args",
        "  scenarios: [{name: real, steps: [{sleep: 1ms}]}]\n",
    ))
    .file("base.yaml", BASE);
    let out = case.exec(&args(&[
        "run",
        "suite.yaml",
        "--sandbox",
        "--scenario",
        "raal",
    ]));
    out.assert_code(2);
    assert!(
        out.stderr
            .contains("no scenario named \"raal\" (known: real)"),
        "{}",
        out.stderr
    );
}

#[test]
fn an_invalid_suite_exits_2_before_touching_anything() {
    let case = Case::suite("apiVersion: heatcheck.dev/v1alpha1\nkind: Suite\nmetadata: {name: x}\nspec:\n  target: {namespace: a}\n  scenarios:\n    - name: s\n      steps:\n        - aplly: {file: m.yaml}\n");
    let out = case.exec(&args(&["run", "suite.yaml", "--sandbox"]));
    out.assert_code(2);
    insta::assert_snapshot!("invalid_suite_run", out.stderr);
    let out = case.exec(&args(&["validate", "suite.yaml"]));
    out.assert_code(2);
    insta::assert_snapshot!(
        "invalid_suite_validate",
        format!("--- stdout\n{}--- stderr\n{}", out.stdout, out.stderr)
    );
}

#[cfg(unix)]
#[test]
fn ctrl_c_mid_scenario_restores_and_exits_4() {
    use std::process::{Command, Stdio};
    let sandbox = SandboxProcess::start();
    let before = tokio_block(common::snapshot(&sandbox.kubeconfig));
    let body = r#"  scenarios:
    - name: long
      steps:
        - apply:
            manifest: |
              apiVersion: v1
              kind: ConfigMap
              metadata: {name: interrupted}
        - sleep: 60s
      assertions:
        - present: {kind: ConfigMap, name: interrupted}
"#;
    let case = Case::suite(&suite_with("e2e-sigint", body)).file("base.yaml", BASE);
    let child = Command::new(common::bin())
        .current_dir(case.dir.path())
        .args([
            "run",
            "suite.yaml",
            "--kubeconfig",
            sandbox.kubeconfig.to_str().unwrap(),
        ])
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the scenario's object exists, then interrupt.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let snap = tokio_block(common::snapshot(&sandbox.kubeconfig));
        if snap.contains_key("ConfigMap/e2e-sigint/interrupted") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the scenario never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    common::send_signal(child.id(), "INT");
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(4),
        "stderr: {stderr}\nstdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(stderr.contains("interrupted"), "{stderr}");
    let after = tokio_block(common::snapshot(&sandbox.kubeconfig));
    assert_eq!(
        before, after,
        "an interrupted run must leave the cluster as it found it"
    );
}

#[test]
fn help_lists_the_exit_codes_and_examples() {
    let out = Case::suite("").exec(&args(&["run", "--help"]));
    out.assert_code(0);
    assert!(out.stdout.contains("5  restore failed"), "{}", out.stdout);
    assert!(out
        .stdout
        .contains("heatcheck run suites/httproute-conflict/suite.yaml --sandbox"));
}

/// One scenario per step and assertion kind, each made to fail; every failure
/// must say what was expected and what was found.
#[test]
fn every_step_and_assertion_kind_fails_with_a_clear_reason() {
    let scenarios: &[(&str, &str, &str)] = &[
        ("apply a broken manifest", "steps: [{apply: {manifest: 'kind: ConfigMap'}}]", "document 1 has no apiVersion"),
        ("create an existing object", "steps: [{create: {file: base.yaml}}]", "already exists"),
        ("delete a missing object", "steps: [{delete: {kind: ConfigMap, name: nope}}]", "ConfigMap e2e-fails/nope not found"),
        ("patch a missing object", "steps: [{patch: {kind: ConfigMap, name: nope, patch: {data: {a: b}}}}]", "ConfigMap e2e-fails/nope not found"),
        ("scale a missing deployment", "steps: [{scale: {name: nope, replicas: 1}}]", "Deployment e2e-fails/nope not found"),
        ("restart a missing deployment", "steps: [{restart: {name: nope}}]", "Deployment e2e-fails/nope not found"),
        ("a kind nobody serves", "steps: [{wait: {kind: Widget, name: w, present: true, timeout: 1s}}]", "Widget is not served by this cluster"),
        ("a fault that selects nothing", "steps: [{fault: {type: podKill, selector: app=nothing, duration: 5s}, timeout: 1s}]", "was not injected within 1s"),
        ("resource expectation", "assertions: [{resource: {kind: Service, name: web, expect: {'$.spec.ports[0].port': 9999}}}]", "Service web: $.spec.ports[0].port: expected 9999, got 8080"),
        ("resource count", "assertions: [{resource: {kind: Pod, selector: app=web, count: 5}}]", "expected 5 Pod, got 2"),
        ("order", "assertions: [{order: {kind: Deployment, expect: [web, ghost]}}]", "but ghost missing"),
        ("absent", "assertions: [{absent: {kind: Service, name: web}}]", "expected Service e2e-fails/web to be absent, it exists"),
        ("present", "assertions: [{present: {kind: Service, name: ghost}}]", "expected Service e2e-fails/ghost to exist, it does not"),
        ("http status", "assertions: [{http: {url: '{{gateway \"gw\"}}/', headers: {Host: nowhere.example.com}, expect: {status: 200}}}]", "expected status 200, got 404"),
    ];
    let mut body = String::from("  scenarios:\n");
    for (name, spec, _) in scenarios {
        let steps = if spec.starts_with("assertions") {
            "steps: []\n      "
        } else {
            ""
        };
        body.push_str(&format!("    - name: {name}\n      {steps}{spec}\n"));
    }
    let case = Case::suite(&suite_with("e2e-fails", &body)).file("base.yaml", BASE);
    let out = case.run_sandbox();
    out.assert_code(1);
    let report = out.report();
    let cases = report["suites"][0]["cases"].as_array().unwrap();
    for (name, _, expected) in scenarios {
        let c = cases
            .iter()
            .find(|c| c["name"] == *name)
            .unwrap_or_else(|| panic!("no case {name}"));
        assert!(
            c["status"] == "failed" || c["status"] == "errored",
            "{name}: {c}"
        );
        let message = c["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(expected),
            "{name}: expected the message to contain {expected:?}, got {message:?}"
        );
    }
    let (_, failures, errors, _) = junit_counts(&out.junit());
    assert_eq!(failures + errors, scenarios.len());
}

/// A route deleted and recreated by a scenario comes back newer than its
/// duplicate: restore puts the content back but cannot give the route its
/// age, so the duplicate now wins. The run says so in every report.
#[test]
fn restore_warns_when_a_recreated_route_loses_its_conflict() {
    let body = r#"apiVersion: heatcheck.dev/v1alpha1
kind: Suite
metadata: {name: precedence}
spec:
  target: {namespace: e2e-precedence, createNamespace: true}
  defaults: {timeout: 20s, interval: 100ms}
  fixtures:
    - apply: {file: base.yaml}
    - name: let a second pass (creationTimestamp has second precision)
      sleep: 1100ms
    - apply: {file: dup.yaml}
  scenarios:
    - name: recreate the oldest route
      steps:
        - sleep: 1100ms
        - delete: {kind: HTTPRoute, name: web}
        - apply: {file: route.yaml}
      assertions:
        - name: the duplicate is now the oldest
          order: {kind: HTTPRoute, expect: [web-dup, web]}
"#;
    let route = r#"apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web}
spec:
  parentRefs: [{name: gw}]
  hostnames: [shop.example.com]
  rules: [{backendRefs: [{name: web, port: 8080}]}]
"#;
    let dup = route.replace("name: web}", "name: web-dup}");
    let case = Case::suite(body)
        .file("base.yaml", BASE)
        .file("route.yaml", route)
        .file("dup.yaml", &dup);
    let sandbox = SandboxProcess::start();
    let before = tokio_block(common::snapshot(&sandbox.kubeconfig));
    let out = case.exec(&args(&[
        "run",
        "suite.yaml",
        "--kubeconfig",
        sandbox.kubeconfig.to_str().unwrap(),
        "--junit",
        "junit.xml",
        "--report-json",
        "report.json",
    ]));
    out.assert_code(0);
    let warning = "HTTPRoute match PathPrefix / on Gateway e2e-precedence/gw, host shop.example.com (recreate the oldest route): e2e-precedence/web won before the scenario, e2e-precedence/web-dup wins after restore";
    assert!(
        out.stdout
            .contains(&format!("⚠ route precedence changed: {warning}")),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("⚠ Route precedence changed (1)"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains(
            "HTTPRoute e2e-precedence/web was recreated (recreate the oldest route): uid "
        ),
        "{}",
        out.stdout
    );
    let restore = &out.report()["restore"];
    assert_eq!(
        restore["precedenceChanged"][0]["before"],
        "e2e-precedence/web"
    );
    assert_eq!(
        restore["precedenceChanged"][0]["after"],
        "e2e-precedence/web-dup"
    );
    let changed = &restore["identityChanged"][0];
    assert_eq!(changed["object"], "HTTPRoute e2e-precedence/web");
    assert_ne!(changed["uidBefore"], changed["uidAfter"]);
    assert_ne!(changed["createdBefore"], changed["createdAfter"]);
    assert!(
        out.junit()
            .contains(&format!("WARNING route precedence changed: {warning}")),
        "{}",
        out.junit()
    );
    // Everything the run made is gone again (the namespace with it).
    assert_eq!(tokio_block(common::snapshot(&sandbox.kubeconfig)), before);
}
