//! `heatcheck mcp` driven by a real client, the official MCP Python SDK
//! (tests/fixtures/mcp/client.py), over stdio: the tool list, validate,
//! plan and run on the sandbox, and the refusals (a path outside the root,
//! a run against a kubeconfig without --allow-mutations).

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

use crate::common;

#[test]
fn a_real_mcp_client_validates_plans_and_runs_on_the_sandbox() {
    let test = "a_real_mcp_client_validates_plans_and_runs_on_the_sandbox";
    let Some(python) = common::python_with(test, "mcp") else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    common::copy_dir(
        &manifest.join("suites/httproute-conflict"),
        &root.path().join("httproute-conflict"),
    );
    // Never read: the run is refused before anything connects.
    let kubeconfig = root.path().join("kubeconfig");
    std::fs::write(&kubeconfig, "apiVersion: v1\nkind: Config\n").unwrap();
    let out = Command::new(python)
        .arg(manifest.join("tests/fixtures/mcp/client.py"))
        .arg(common::bin())
        .arg(root.path())
        .arg("httproute-conflict/suite.yaml")
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .output()
        .expect("run the MCP client");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "client failed: {stderr}");
    let r: Value = serde_json::from_slice(&out.stdout).expect("client prints JSON");

    insta::assert_json_snapshot!("mcp_tools", r["tools"]);

    let suites = &r["list_suites"]["structured"]["suites"];
    assert_eq!(suites[0]["suite"], "httproute-conflict", "{r}");
    assert_eq!(suites[0]["valid"], true);
    assert!(suites[0]["lockfile"].is_string(), "{suites}");

    let v = &r["validate"]["structured"];
    assert_eq!(v["exitCode"], 0, "{r}");
    assert_eq!(v["result"]["invalid"], 0);

    let plan = &r["plan"]["structured"];
    assert_eq!(r["plan"]["isError"], false, "{r}");
    assert!(plan["result"]["suites"].is_array(), "{plan}");

    let run = &r["run"]["structured"];
    assert_eq!(r["run"]["isError"], false, "{r}");
    assert_eq!(run["result"]["suites"][0]["name"], "httproute-conflict");
    assert_eq!(
        run["exitCode"], run["result"]["exitCode"],
        "the answer's code is the run's"
    );
    assert_eq!(
        run["result"]["restore"]["leftBehind"],
        serde_json::json!([])
    );

    let escape = r["escape"]["mcpError"].as_str().unwrap_or_default();
    assert!(escape.contains("outside the server's root"), "{r}");
    let refused = r["run_cluster"]["mcpError"].as_str().unwrap_or_default();
    assert!(refused.contains("--allow-mutations"), "{r}");
}

/// A run that patches a ConfigMap that was there, creates one, then sleeps.
const CANCEL_SUITE: &str = r#"apiVersion: heatcheck.dev/v1alpha1
kind: Suite
metadata: {name: cancel}
spec:
  target: {namespace: default}
  scenarios:
    - name: long
      steps:
        - patch: {kind: ConfigMap, name: was-there, patch: {data: {mode: storm}}}
        - apply:
            manifest: |
              apiVersion: v1
              kind: ConfigMap
              metadata: {name: made-by-the-run}
        - sleep: 60s
"#;

#[test]
fn an_agent_sees_progress_and_a_cancelled_run_restores_remediate_answers_a_diff_and_http_serves() {
    let test = "an_agent_sees_progress_and_a_cancelled_run_restores";
    let Some(python) = common::python_with(test, "mcp") else {
        return;
    };
    let Some(kubectl) = common::kubectl(test) else {
        return;
    };
    let cluster = common::SandboxProcess::start();
    let kc = |args: &[&str]| cluster.kubectl(&kubectl, args);
    let (ok, _, err) = kc(&[
        "create",
        "configmap",
        "was-there",
        "--from-literal=mode=calm",
    ]);
    assert!(ok, "{err}");

    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("cancel")).unwrap();
    std::fs::write(root.path().join("cancel/suite.yaml"), CANCEL_SUITE).unwrap();
    // A manifest outside the root, named by a suite inside it.
    let elsewhere = tempfile::tempdir().unwrap();
    let outside = elsewhere.path().join("outside.yaml");
    std::fs::write(
        &outside,
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: outside}\n",
    )
    .unwrap();
    std::fs::create_dir_all(root.path().join("escape")).unwrap();
    std::fs::write(
        root.path().join("escape/suite.yaml"),
        format!(
            "apiVersion: heatcheck.dev/v1alpha1\nkind: Suite\nmetadata: {{name: escape}}\nspec:\n  target: {{namespace: default}}\n  scenarios:\n    - name: reads outside\n      steps:\n        - apply: {{file: {}}}\n",
            outside.display()
        ),
    )
    .unwrap();
    // remediate's input: the replay suite, its manifests beside it as it names them.
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let explore = manifest.join("tests/fixtures/explore");
    common::copy_dir(&explore.join("replay"), &root.path().join("replay"));
    common::copy_dir(
        &explore.join("planted/manifests"),
        &root.path().join("planted/manifests"),
    );

    let out = Command::new(python)
        .arg(manifest.join("tests/fixtures/mcp/agent.py"))
        .arg(common::bin())
        .arg(root.path())
        .arg(&cluster.kubeconfig)
        .output()
        .expect("run the MCP client");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "client failed: {stderr}");
    let r: Value = serde_json::from_slice(&out.stdout).expect("client prints JSON");

    // Resources: the suites under the root (not their manifests), readable;
    // a file outside the root is refused.
    let names: Vec<&str> = r["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "cancel/suite.yaml",
            "escape/suite.yaml",
            "replay/denied.yaml",
            "replay/suite.yaml"
        ],
        "{r:#}"
    );
    assert_eq!(r["resources"][0]["mimeType"], "application/yaml");
    assert!(r["resources"][0]["uri"]
        .as_str()
        .unwrap()
        .starts_with("file:///"));
    assert_eq!(r["resource_text"], CANCEL_SUITE);
    let escape = r["resource_escape"].as_str().unwrap();
    assert!(escape.contains("outside the server's root"), "{escape}");

    // A manifest outside the root is not read, though its suite is inside.
    let escaped = r["escape_manifest"].to_string();
    assert!(
        escaped.contains("is outside") && escaped.contains("refused"),
        "{escaped}"
    );
    assert_ne!(
        r["escape_manifest"]["structured"]["exitCode"], 0,
        "{escaped}"
    );

    // Progress notifications followed the run's events.
    let progress: Vec<&str> = r["progress"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        progress.iter().any(|m| m.starts_with("runStarted"))
            && progress.iter().any(|m| m.starts_with("stepFinished")),
        "{progress:?}"
    );
    // The cancelled run never answered; it restored, and its record says so.
    assert!(r.get("run_result").is_none(), "{r:#}");
    assert_eq!(
        r["recover_status"]["structured"]["result"]["runs"],
        serde_json::json!([]),
        "{r:#}"
    );
    // The 60 s sleep was cut short.
    let waited = r["restored_at"].as_f64().unwrap() - r["cancelled_at"].as_f64().unwrap();
    assert!(waited < 45.0, "restored {waited:.1}s after the cancel");
    // What the run changed is undone in the cluster itself.
    let (_, data, _) = kc(&[
        "get",
        "configmap",
        "was-there",
        "-o",
        "jsonpath={.data.mode}",
    ]);
    assert_eq!(data, "calm");
    let (ok, _, err) = kc(&["get", "configmap", "made-by-the-run"]);
    assert!(!ok && err.contains("NotFound"), "{err}");

    // remediate: verified fixes as a diff; writing them needs --allow-write.
    let rem = &r["remediate"];
    assert_eq!(rem["isError"], false, "{rem:#}");
    let result = &rem["structured"]["result"];
    assert_eq!(result["findings"][0]["status"], "fixed", "{rem:#}");
    assert!(
        result["diff"].as_str().unwrap().contains("+  replicas: 2"),
        "{rem:#}"
    );
    assert!(result["written"].as_array().unwrap().is_empty());
    let fix = r["remediate_fix"]["mcpError"].as_str().unwrap_or_default();
    assert!(fix.contains("--allow-write"), "{r:#}");

    // The streamable HTTP transport serves the same tools.
    let tools = r["http_tools"].as_array().unwrap();
    for want in ["validate", "run", "explore", "remediate", "recover_status"] {
        assert!(tools.iter().any(|t| t == want), "{tools:?}");
    }
    assert_eq!(r["http_validate"]["structured"]["exitCode"], 0, "{r:#}");
}

#[test]
fn a_client_that_goes_away_mid_run_leaves_the_cluster_restored() {
    let test = "a_client_that_goes_away_mid_run_leaves_the_cluster_restored";
    let Some(python) = common::python_with(test, "mcp") else {
        return;
    };
    let Some(kubectl) = common::kubectl(test) else {
        return;
    };
    let cluster = common::SandboxProcess::start();
    let kc = |args: &[&str]| cluster.kubectl(&kubectl, args);
    let (ok, _, err) = kc(&[
        "create",
        "configmap",
        "was-there",
        "--from-literal=mode=calm",
    ]);
    assert!(ok, "{err}");
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("cancel")).unwrap();
    std::fs::write(root.path().join("cancel/suite.yaml"), CANCEL_SUITE).unwrap();
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(python)
        .arg(manifest.join("tests/fixtures/mcp/disconnect.py"))
        .arg(common::bin())
        .arg(root.path())
        .arg(&cluster.kubeconfig)
        .output()
        .expect("run the MCP client");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("sleeping"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The run was mid-way (its ConfigMap made, the other one patched); with
    // its client gone it is interrupted and restores on its own, well before
    // its 60 s sleep would have ended.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(40);
    loop {
        let (_, mode, _) = kc(&[
            "get",
            "configmap",
            "was-there",
            "-o",
            "jsonpath={.data.mode}",
        ]);
        let (made, _, _) = kc(&["get", "configmap", "made-by-the-run"]);
        if mode == "calm" && !made {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not restored 40 s after the client left (mode {mode:?}, made-by-the-run present: {made})"
        );
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    // And its record says nothing is left (the child is done writing it).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let runs = Command::new(common::bin())
            .current_dir(root.path())
            .args(["runs", "--output", "json"])
            .output()
            .unwrap();
        let v: Value = serde_json::from_slice(&runs.stdout).expect("runs prints JSON");
        if v["runs"] == serde_json::json!([]) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{v:#}");
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
}
