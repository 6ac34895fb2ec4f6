//! `run --jobs N`: suites in different namespaces run at the same time (each
//! with its own journal scope, probes and restore); suites that may touch the
//! same namespace run one after another, with a note saying why.

use crate::common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;

use common::{args, tokio_block, Case, SandboxProcess};
use serde_json::Value;

/// A real HTTP server on 127.0.0.1:0 that answers 503 until both
/// `/left` and `/right` have been asked for, then 200: a barrier two suites
/// only pass together while they run at the same time.
fn barrier() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut arrived = BTreeSet::new();
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request = String::new();
            let _ = reader.read_line(&mut request);
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap_or(0) > 0 && line != "\r\n" {
                line.clear();
            }
            if let Some(path) = request.split_whitespace().nth(1) {
                arrived.insert(path.to_string());
            }
            let both = arrived.contains("/left") && arrived.contains("/right");
            let status = if both {
                "200 OK"
            } else {
                "503 Service Unavailable"
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            );
        }
    });
    url
}

/// A suite in `ns` that changes its namespace and then waits at the barrier.
fn rendezvous(name: &str, ns: &str, barrier: &str) -> String {
    format!(
        r#"apiVersion: heatcheck.dev/v1alpha1
kind: Suite
metadata: {{name: {name}}}
spec:
  target: {{namespace: {ns}, createNamespace: true}}
  defaults: {{timeout: 8s, interval: 100ms}}
  scenarios:
    - name: meet the other suite
      steps:
        - apply:
            manifest: |
              apiVersion: v1
              kind: ConfigMap
              metadata: {{name: marker}}
      assertions:
        - present: {{kind: ConfigMap, name: marker}}
        - name: the other suite is running too
          http:
            url: "{barrier}/{name}"
            eventually: {{within: 6s, every: 100ms}}
            expect: {{status: 200}}
"#
    )
}

fn two_suites() -> Case {
    let url = barrier();
    Case::suite(&rendezvous("left", "jobs-left", &url))
        .file("right/suite.yaml", &rendezvous("right", "jobs-right", &url))
}

fn run(case: &Case, sandbox: &SandboxProcess, extra: &[&str]) -> common::Outcome {
    let mut a = args(&[
        "run",
        "suite.yaml",
        "right",
        "--kubeconfig",
        sandbox.kubeconfig.to_str().unwrap(),
        "--report-json",
        "report.json",
    ]);
    a.extend(extra.iter().map(|s| s.to_string()));
    case.exec(&a)
}

#[test]
fn suites_in_different_namespaces_run_at_once_and_both_are_restored() {
    let sandbox = SandboxProcess::start();
    let before = tokio_block(common::snapshot(&sandbox.kubeconfig));
    let case = two_suites();

    // One at a time, the first suite waits at the barrier for a suite that
    // has not started: it fails. That is what makes the next run a proof.
    let serial = run(&case, &sandbox, &[]);
    serial.assert_code(1);
    assert_eq!(before, tokio_block(common::snapshot(&sandbox.kubeconfig)));

    // A fresh barrier: the serial run already arrived at it.
    let case = two_suites();
    let parallel = run(&case, &sandbox, &["--jobs", "2"]);
    parallel.assert_code(0);
    let report = parallel.report();
    let names: Vec<&str> = report["suites"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["left", "right"], "reports keep the suites' order");
    // Grouped output: each suite's block (header, case, totals) is contiguous.
    let out = &parallel.stdout;
    let (l, r) = (out.find("left (").unwrap(), out.find("right (").unwrap());
    let first_block = &out[l.min(r)..l.max(r)];
    assert_eq!(
        first_block.matches("✓ meet the other suite").count(),
        1,
        "{out}"
    );
    assert!(first_block.contains("2 passed, 0 failed"), "{out}");
    assert_eq!(
        before,
        tokio_block(common::snapshot(&sandbox.kubeconfig)),
        "the cluster differs after the parallel run"
    );
}

#[test]
fn suites_sharing_a_namespace_are_serialized_with_a_note() {
    let sandbox = SandboxProcess::start();
    let before = tokio_block(common::snapshot(&sandbox.kubeconfig));
    let suite = |name: &str| {
        format!(
            r#"apiVersion: heatcheck.dev/v1alpha1
kind: Suite
metadata: {{name: {name}}}
spec:
  target: {{namespace: jobs-shared, createNamespace: true}}
  scenarios:
    - name: write
      steps:
        - apply:
            manifest: |
              apiVersion: v1
              kind: ConfigMap
              metadata: {{name: {name}}}
      assertions:
        - present: {{kind: ConfigMap, name: {name}}}
        # The other suite's object is never seen: they do not overlap in time.
        - absent: {{kind: ConfigMap, name: {other}}}
"#,
            other = if name == "one" { "two" } else { "one" }
        )
    };
    let case = Case::suite(&suite("one")).file("right/suite.yaml", &suite("two"));
    let out = run(&case, &sandbox, &["--jobs", "2", "--output", "json"]);
    assert!(
        out.stdout
            .contains("suite two waits for suite one: both may touch namespace jobs-shared"),
        "{}",
        out.stdout
    );
    let events: Vec<Value> = out
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let pos = |event: &str, suite: &str| {
        events
            .iter()
            .position(|e| {
                e["event"] == event && (e["name"] == suite || e["report"]["name"] == suite)
            })
            .unwrap_or_else(|| panic!("no {event} for {suite}: {}", out.stdout))
    };
    out.assert_code(0);
    assert!(pos("suiteFinished", "one") < pos("suiteStarted", "two"));
    assert_eq!(before, tokio_block(common::snapshot(&sandbox.kubeconfig)));
}

/// Ctrl-C while two suites run at once under `--jobs 2`: both stop, both
/// restore (fixtures and scenario), exit 4, and the cluster is as before.
#[test]
fn ctrl_c_under_jobs_restores_both_suites() {
    let sandbox = SandboxProcess::start();
    let before = tokio_block(common::snapshot(&sandbox.kubeconfig));
    let suite = |name: &str| {
        format!(
            r#"apiVersion: heatcheck.dev/v1alpha1
kind: Suite
metadata: {{name: {name}}}
spec:
  target: {{namespace: jobs-{name}, createNamespace: true}}
  scenarios:
    - name: change and wait
      steps:
        - apply:
            manifest: |
              apiVersion: v1
              kind: ConfigMap
              metadata: {{name: marker}}
        - sleep: 120s
"#
        )
    };
    let case = Case::suite(&suite("left")).file("right/suite.yaml", &suite("right"));
    let mut child = std::process::Command::new(common::bin())
        .current_dir(case.dir.path())
        .args([
            "run",
            "suite.yaml",
            "right",
            "--jobs",
            "2",
            "--kubeconfig",
            sandbox.kubeconfig.to_str().unwrap(),
        ])
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Both suites' changes on the cluster: both are mid-scenario.
    let markers = |sb: &SandboxProcess| {
        tokio_block(async {
            let client = common::admin_client(&sb.kubeconfig).await;
            let mut n = 0;
            for ns in ["jobs-left", "jobs-right"] {
                let api: kube::Api<k8s_openapi::api::core::v1::ConfigMap> =
                    kube::Api::namespaced(client.clone(), ns);
                if matches!(api.get_opt("marker").await, Ok(Some(_))) {
                    n += 1;
                }
            }
            n
        })
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while markers(&sandbox) < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "both suites never got to their scenario"
        );
        assert!(child.try_wait().unwrap().is_none(), "the run ended early");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    common::send_signal(child.id(), "INT");
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert_eq!(
        before,
        tokio_block(common::snapshot(&sandbox.kubeconfig)),
        "both suites restored:\n{stderr}"
    );
}
