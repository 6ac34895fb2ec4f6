//! `heatcheck explore`: the catalog finds planted weaknesses of several
//! classes on twins, each finding replays as a failing `run`, a namespace
//! built to survive the catalog gives none, and the explored cluster is
//! only read.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::common::{bin, kubectl, SandboxProcess};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/explore")
        .join(name)
        .join("suite.yaml")
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

fn heatcheck(dir: &Path, args: &[&str]) -> Out {
    let out = Command::new(bin())
        .current_dir(dir)
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("KUBECONFIG")
        .output()
        .expect("run heatcheck");
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn read_json(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).expect("file written")).expect("JSON")
}

#[test]
fn the_catalog_finds_each_planted_weakness_and_each_finding_replays_as_a_failing_run() {
    let dir = tempfile::tempdir().unwrap();
    let suite = fixture("planted");
    let out = heatcheck(
        dir.path(),
        &[
            "explore",
            suite.to_str().unwrap(),
            "--sandbox",
            "--jobs",
            "3",
            "--findings",
            "findings.json",
            "--write-suite",
            "replay/suite.yaml",
        ],
    );
    assert_eq!(
        out.code, 1,
        "findings exit 1\n{}\n{}",
        out.stdout, out.stderr
    );
    let report = read_json(&dir.path().join("findings.json"));
    let findings = report["findings"].as_array().unwrap();
    let by_id = |id: &str| findings.iter().find(|f| f["id"] == id);
    // Recreating my-route makes it younger than duplicate-route, which then
    // serves /shop from backend-v3.
    let recreate = by_id("route-recreate/HTTPRoute/explore-planted/my-route")
        .unwrap_or_else(|| panic!("route precedence not found:\n{}", out.stderr));
    assert_eq!(recreate["class"], "route-precedence");
    assert_eq!(recreate["severity"], "lasting-misrouting");
    // grant-route reaches backend-other in `default` only through the grant.
    let grant = by_id("referencegrant-removal/ReferenceGrant/default/allow-routes")
        .unwrap_or_else(|| panic!("grant dependency not found:\n{}", out.stderr));
    assert_eq!(grant["class"], "cross-namespace-grant");
    assert_eq!(grant["severity"], "lasting-errors");
    // fast-route times out at 300ms; 500ms on half of backend-v1 breaks it.
    let latency = by_id("latency-half/Deployment/explore-planted/backend-v1")
        .unwrap_or_else(|| panic!("timeout budget not found:\n{}", out.stderr));
    assert_eq!(latency["class"], "timeout-budget");
    assert!(
        latency["evidence"].to_string().contains("/fast"),
        "{latency:#}"
    );
    // backend-solo has one replica: losing its pod is an outage until the
    // replacement is Ready (start delay plus the readinessProbe's schedule).
    let solo = by_id("pod-kill-one/Deployment/explore-planted/backend-solo")
        .unwrap_or_else(|| panic!("single pod not found:\n{}", out.stderr));
    assert_eq!(solo["class"], "single-pod");
    assert_eq!(solo["severity"], "outage", "{solo:#}");
    assert!(solo["outageSeconds"].as_f64().unwrap() >= 1.0, "{solo:#}");
    // backend-v1 has two: losing one pod is absorbed.
    assert!(
        by_id("pod-kill-one/Deployment/explore-planted/backend-v1").is_none(),
        "{findings:#?}"
    );
    for f in findings {
        assert!(!f["evidence"].as_array().unwrap().is_empty(), "{f:#}");
        assert!(!f["remediation"].as_array().unwrap().is_empty(), "{f:#}");
        assert_eq!(f["origin"], "catalog");
        assert_eq!(
            f["flaky"], false,
            "a planted weakness fails every time: {f:#}"
        );
    }
    // Isolating backend-v1 cuts its own routes on purpose: not a finding.
    assert!(
        !findings.iter().any(|f| f["class"] == "network-isolation"),
        "{findings:#?}"
    );
    // Everything else held: healthy replicas, rollouts, single pod loss.
    let score = &report["resilience"];
    assert!(score["score"].as_u64().unwrap() < 100, "{score}");
    for class in [
        "route-precedence",
        "cross-namespace-grant",
        "timeout-budget",
    ] {
        assert!(score["failed"].to_string().contains(class), "{score}");
    }
    assert!(
        score["survived"].to_string().contains("capacity"),
        "{score}"
    );
    assert!(report["candidates"].as_u64().unwrap() >= 8, "{report:#}");
    assert!(out.stdout.contains("resilience score"), "{}", out.stdout);
    assert!(
        out.stdout.contains("replay: heatcheck run"),
        "{}",
        out.stdout
    );

    // The written suite replays them: every finding's scenario fails.
    let replay = heatcheck(
        dir.path(),
        &[
            "run",
            "replay/suite.yaml",
            "--sandbox",
            "--report-json",
            "replay.json",
        ],
    );
    assert_eq!(replay.code, 1, "{}\n{}", replay.stdout, replay.stderr);
    let run = read_json(&dir.path().join("replay.json"));
    let cases: Vec<&Value> = run["suites"][0]["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["kind"] == "scenario")
        .collect();
    assert_eq!(cases.len(), findings.len(), "{run:#}");
    for c in cases {
        assert_eq!(c["status"], "failed", "{c:#}");
    }
}

#[test]
fn a_namespace_built_to_survive_the_catalog_gives_no_finding() {
    let dir = tempfile::tempdir().unwrap();
    let suite = fixture("healthy");
    let out = heatcheck(
        dir.path(),
        &[
            "explore",
            suite.to_str().unwrap(),
            "--sandbox",
            "--jobs",
            "3",
            "--output",
            "json",
        ],
    );
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let report: Value = serde_json::from_str(&out.stdout).expect("JSON on stdout");
    assert_eq!(report["findings"], serde_json::json!([]), "{report:#}");
    assert_eq!(report["resilience"]["score"], 100);
    assert!(report["candidates"].as_u64().unwrap() >= 8, "{report:#}");
}

/// Every object's kind, namespace, name and resourceVersion.
pub(crate) fn versions(kubectl: &Path, kubeconfig: &Path) -> Vec<(String, String, String, String)> {
    let out = Command::new(kubectl)
        .args([
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
            "get",
            "deployments,replicasets,pods,services,endpoints,gateways,httproutes,referencegrants,poddisruptionbudgets,networkpolicies,configmaps",
            "-A",
            "-o",
            "json",
        ])
        .output()
        .expect("kubectl get");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut v: Vec<_> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            let s = |p: &str| {
                o.pointer(p)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string()
            };
            (
                s("/kind"),
                s("/metadata/namespace"),
                s("/metadata/name"),
                s("/metadata/resourceVersion"),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn the_explored_cluster_is_only_read() {
    let Some(kubectl) = kubectl("the_explored_cluster_is_only_read") else {
        return;
    };
    let manifests =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/explore/healthy/manifests");
    let cluster = SandboxProcess::start_with(&["--manifests", manifests.to_str().unwrap()]);
    let dir = tempfile::tempdir().unwrap();
    // The namespace as it is: no fixtures, the objects live in `default`.
    std::fs::write(
        dir.path().join("suite.yaml"),
        "apiVersion: heatcheck.dev/v1alpha1\nkind: Suite\nmetadata: {name: explore-real}\nspec:\n  target: {namespace: default}\n  scenarios: []\n",
    )
    .unwrap();
    // Wait until the deployments are up, so nothing moves on its own.
    let wait = Command::new(&kubectl)
        .args([
            "--kubeconfig",
            cluster.kubeconfig.to_str().unwrap(),
            "wait",
            "--for=condition=Available",
            "deployment/shop",
            "deployment/cart",
            "--timeout=60s",
        ])
        .output()
        .unwrap();
    assert!(
        wait.status.success(),
        "{}",
        String::from_utf8_lossy(&wait.stderr)
    );
    let before = versions(&kubectl, &cluster.kubeconfig);
    let out = heatcheck(
        dir.path(),
        &[
            "explore",
            "suite.yaml",
            "--kubeconfig",
            cluster.kubeconfig.to_str().unwrap(),
            "--max-candidates",
            "4",
            "--jobs",
            "2",
            "--findings",
            "findings.json",
        ],
    );
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let report = read_json(&dir.path().join("findings.json"));
    // The candidates really ran (on twins seeded from what was read) ...
    assert_eq!(report["candidates"], 4, "{report:#}");
    assert!(
        out.stderr.contains("shop.example.com/shop"),
        "{}",
        out.stderr
    );
    // ... and the cluster they were read from did not change at all.
    assert_eq!(before, versions(&kubectl, &cluster.kubeconfig));
}
