//! Crash safety, emergency stop and API faults, end to end: the real binary
//! against `heatcheck sandbox` in another process.
#![cfg(unix)]

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{bin, snapshot, Case, SandboxProcess};
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

/// Objects every crash trial starts from.
const TRIAL_BASE: &str = r#"apiVersion: v1
kind: Namespace
metadata: {name: trials}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: trials, labels: {app: web}}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: echo, image: echo}]}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: keep-1, namespace: trials}
data: {mode: calm}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: keep-2, namespace: trials}
data: {mode: calm}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: keep-3, namespace: trials, labels: {tier: a}}
data: {mode: calm}
"#;

/// About ten quick mutating steps of every kind, no waits.
const TRIAL_SUITE: &str = r#"apiVersion: heatcheck.dev/v1alpha1
kind: Suite
metadata: {name: trials}
spec:
  target: {namespace: trials}
  defaults: {timeout: 10s, interval: 50ms}
  scenarios:
    - name: churn
      steps:
        - apply:
            manifest: |
              apiVersion: v1
              kind: ConfigMap
              metadata: {name: new-a}
              data: {x: "1"}
        - patch: {kind: ConfigMap, name: keep-1, patch: {data: {mode: storm}}}
        - create:
            manifest: |
              apiVersion: v1
              kind: ConfigMap
              metadata: {generateName: scratch-}
              data: {a: "1"}
        - scale: {name: web, replicas: 3}
        - delete: {kind: ConfigMap, name: keep-2}
        - patch: {kind: Deployment, name: web, patch: {metadata: {labels: {tier: chaos}}}}
        - apply:
            manifest: |
              apiVersion: v1
              kind: ConfigMap
              metadata: {name: new-b}
              data: {y: "1"}
        - create:
            manifest: |
              apiVersion: v1
              kind: ConfigMap
              metadata: {generateName: scratch-}
              data: {b: "2"}
        - patch: {kind: ConfigMap, name: new-a, patch: {data: {x: "2"}}}
        - delete: {kind: ConfigMap, selector: tier=a}
        - patch: {kind: ConfigMap, name: keep-1, type: json, patch: [{op: add, path: /data/extra, value: "x"}]}
      assertions:
        - present: {kind: ConfigMap, name: new-b}
"#;

/// 30 trials by default keep `cargo test` quick; `HEATCHECK_KILL_TRIALS=200`
/// (README, "Tests") is the full sweep.
#[test]
fn kill_dash_9_at_random_points_then_recover_restores_the_cluster_every_time() {
    let trials: usize = std::env::var("HEATCHECK_KILL_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let seed: u64 = std::env::var("HEATCHECK_KILL_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(rand::random);
    println!("kill -9 trials: seed {seed} (HEATCHECK_KILL_SEED={seed} repeats them)");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);

    let sandbox = SandboxProcess::start();
    block(apply_all(&sandbox.kubeconfig, TRIAL_BASE));
    let before = block(snapshot(&sandbox.kubeconfig));
    let case = Case::suite(TRIAL_SUITE);
    let state = case.path("state");

    // One uninterrupted run: it passes, restores, and tells how long the
    // kill window must be to land anywhere in it.
    let t0 = Instant::now();
    let out = case.exec(&run_args(&sandbox.kubeconfig, &state));
    out.assert_code(0);
    let full = t0.elapsed();
    assert_eq!(before, block(snapshot(&sandbox.kubeconfig)));
    // Spread the kills over the whole run (startup, steps, assertions,
    // restore) and a little past its end.
    let window = full.mul_f64(1.2).max(Duration::from_millis(20));
    println!("kill -9 trials: an uninterrupted run takes {full:?}; killing after 0..{window:?}");

    let (mut clean, mut mid_run, mut restored_objects) = (0, 0, 0);
    let mut failures = Vec::new();
    for trial in 0..trials {
        let delay = Duration::from_micros(rng.random_range(0..window.as_micros() as u64));
        let mut child = spawn_run(&case, &sandbox.kubeconfig, &state);
        std::thread::sleep(delay);
        let finished_first = child.try_wait().unwrap().is_some();
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        let rec = case.exec(&strings(&[
            "recover",
            "--state-dir",
            state.to_str().unwrap(),
        ]));
        let undone = count_restored(&rec.stdout);
        if !finished_first && undone > 0 {
            mid_run += 1;
            restored_objects += undone;
        }
        let after = block(snapshot(&sandbox.kubeconfig));
        if rec.code == 0 && after == before {
            clean += 1;
        } else {
            failures.push(format!(
                "trial {trial} (killed after {delay:?}): recover exit {}\n{}{}\ndiff: {}",
                rec.code,
                rec.stdout,
                rec.stderr,
                diff(&before, &after)
            ));
        }
    }
    println!(
        "kill -9 trials: {trials}, clean after recover: {clean} ({mid_run} killed mid-scenario with changes to undo, {restored_objects} objects put back by recover; seed {seed})"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert_eq!(clean, trials);
    assert!(
        mid_run > 0,
        "no trial was killed mid-scenario: the kill window misses the scenario"
    );
    // Nothing is left over, and recovering again changes nothing.
    let runs = case.exec(&strings(&["runs", "--state-dir", state.to_str().unwrap()]));
    runs.assert_code(0);
    assert!(
        runs.stdout.contains("No unfinished runs"),
        "{}",
        runs.stdout
    );
    let again = case.exec(&strings(&[
        "recover",
        "--state-dir",
        state.to_str().unwrap(),
    ]));
    again.assert_code(0);
    assert!(
        again.stdout.contains("Nothing to recover"),
        "{}",
        again.stdout
    );
}

#[test]
fn runs_lists_the_crashed_run_only_and_recover_is_idempotent() {
    let sandbox = SandboxProcess::start();
    block(apply_all(&sandbox.kubeconfig, TRIAL_BASE));
    let before = block(snapshot(&sandbox.kubeconfig));
    let case = Case::suite(TRIAL_SUITE).file("slow.yaml", &slow_suite("trials", ""));
    let state = case.path("state");
    case.exec(&run_args(&sandbox.kubeconfig, &state))
        .assert_code(0);
    let clean_id = only_run(&state);

    let mut child = spawn_suite(&case, "slow.yaml", &sandbox.kubeconfig, &state, &[]);
    wait_for_object(&sandbox.kubeconfig, "ConfigMap/trials/interrupted");
    child.kill().unwrap();
    child.wait().unwrap();
    let crashed_id = newest_run(&state, &clean_id);
    assert_ne!(before, block(snapshot(&sandbox.kubeconfig)));

    // run.json: how to get back to the cluster, and no credentials.
    let run_json =
        std::fs::read_to_string(state.join("runs").join(&crashed_id).join("run.json")).unwrap();
    let rj: Value = serde_json::from_str(&run_json).unwrap();
    assert_eq!(rj["status"], "running");
    assert_eq!(rj["runId"], crashed_id.as_str());
    assert!(rj["pid"].as_u64().unwrap() > 0);
    assert!(Path::new(rj["cluster"]["kubeconfig"].as_str().unwrap()).is_absolute());
    assert!(rj["cluster"]["server"]
        .as_str()
        .unwrap()
        .starts_with("https://127.0.0.1:"));
    let token = std::fs::read_to_string(&sandbox.kubeconfig).unwrap();
    let token = token.split("token: ").nth(1).unwrap().trim();
    assert!(
        !run_json.contains(token),
        "run.json must not hold credentials"
    );

    let runs = case.exec(&strings(&["runs", "--state-dir", state.to_str().unwrap()]));
    runs.assert_code(0);
    assert!(runs.stdout.contains(&crashed_id), "{}", runs.stdout);
    assert!(runs.stdout.contains("crashed (pid"), "{}", runs.stdout);
    assert!(
        runs.stdout
            .contains("ConfigMap trials/interrupted (created by the run)"),
        "{}",
        runs.stdout
    );
    assert!(!runs.stdout.contains(&clean_id), "{}", runs.stdout);

    // Recover by id, without any cluster flags: run.json says where.
    let rec = case.exec(&strings(&[
        "recover",
        &crashed_id,
        "--state-dir",
        state.to_str().unwrap(),
    ]));
    rec.assert_code(0);
    assert!(
        rec.stdout.contains("deleted ConfigMap trials/interrupted"),
        "{}",
        rec.stdout
    );
    assert_eq!(before, block(snapshot(&sandbox.kubeconfig)));
    let again = case.exec(&strings(&[
        "recover",
        &crashed_id,
        "--state-dir",
        state.to_str().unwrap(),
    ]));
    again.assert_code(0);
    assert!(
        again.stdout.contains("nothing to recover"),
        "{}",
        again.stdout
    );
    assert_eq!(before, block(snapshot(&sandbox.kubeconfig)));
    let runs = case.exec(&strings(&["runs", "--state-dir", state.to_str().unwrap()]));
    assert!(
        runs.stdout.contains("No unfinished runs"),
        "{}",
        runs.stdout
    );
}

#[test]
fn a_restore_blocked_by_a_finalizer_exits_5_names_what_is_left_and_recover_finishes_later() {
    let sandbox = SandboxProcess::start();
    block(apply_all(&sandbox.kubeconfig, TRIAL_BASE));
    let before = block(snapshot(&sandbox.kubeconfig));
    let suite = r#"apiVersion: heatcheck.dev/v1alpha1
kind: Suite
metadata: {name: stuck}
spec:
  target: {namespace: trials}
  scenarios:
    - name: leaves a finalizer
      steps:
        - apply:
            manifest: |
              apiVersion: v1
              kind: ConfigMap
              metadata: {name: stuck, finalizers: [example.com/never]}
        - patch: {kind: ConfigMap, name: keep-1, patch: {data: {mode: storm}}}
"#;
    let case = Case::suite(suite);
    let state = case.path("state");
    let mut args = run_args(&sandbox.kubeconfig, &state);
    args.extend(strings(&["--restore-timeout", "1s"]));
    let out = case.exec(&args);
    out.assert_code(5);
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(all.contains("ConfigMap trials/stuck"), "{all}");
    assert!(all.contains("heatcheck recover"), "{all}");
    let id = only_run(&state);
    let rj = run_state(&state, &id);
    assert_eq!(rj["status"], "restore-failed");

    let runs = case.exec(&strings(&["runs", "--state-dir", state.to_str().unwrap()]));
    assert!(runs.stdout.contains("restore failed"), "{}", runs.stdout);
    assert!(
        runs.stdout.contains("ConfigMap trials/stuck"),
        "{}",
        runs.stdout
    );

    // Still blocked: recover says what and why, exit 5.
    let rec = case.exec(&strings(&[
        "recover",
        "--state-dir",
        state.to_str().unwrap(),
        "--restore-timeout",
        "1s",
    ]));
    rec.assert_code(5);
    assert!(
        rec.stdout.contains("ConfigMap trials/stuck"),
        "{}",
        rec.stdout
    );
    assert!(
        rec.stdout
            .contains("blocked by finalizers: example.com/never"),
        "{}",
        rec.stdout
    );

    // Once the finalizer is gone, recover completes.
    block(remove_finalizers(&sandbox.kubeconfig, "trials", "stuck"));
    let rec = case.exec(&strings(&[
        "recover",
        "--state-dir",
        state.to_str().unwrap(),
    ]));
    rec.assert_code(0);
    assert_eq!(before, block(snapshot(&sandbox.kubeconfig)));
    assert_eq!(run_state(&state, &id)["status"], "finished");
}

#[test]
fn a_second_interrupt_stops_waiting_keeps_the_journal_and_recover_finishes() {
    let sandbox = SandboxProcess::start();
    block(apply_all(&sandbox.kubeconfig, TRIAL_BASE));
    let before = block(snapshot(&sandbox.kubeconfig));
    let case = Case::suite(&slow_suite("trials", "finalizers: [example.com/never], "));
    let state = case.path("state");
    let mut child = spawn_suite(&case, "suite.yaml", &sandbox.kubeconfig, &state, &[]);
    wait_for_object(&sandbox.kubeconfig, "ConfigMap/trials/interrupted");
    signal(&child, "INT");
    // The restore now waits for the finalizer: seen in the cluster as the
    // deletion it requested. Only then does the second Ctrl-C stop that wait.
    wait_for_deletion_requested(&sandbox.kubeconfig, "trials", "interrupted");
    assert!(child.try_wait().unwrap().is_none(), "still restoring");
    signal(&child, "INT");
    let out = wait_with_deadline(child, Duration::from_secs(20));
    assert_eq!(out.0, Some(5), "{}\n{}", out.1, out.2);
    assert!(out.2.contains("second interrupt"), "{}", out.2);
    assert!(
        out.1.contains("restore: restored ConfigMap trials/keep-1"),
        "progress is printed as it goes:\n{}",
        out.1
    );
    assert!(out.1.contains("ConfigMap trials/interrupted"), "{}", out.1);
    let id = only_run(&state);
    assert_eq!(run_state(&state, &id)["status"], "aborted");

    block(remove_finalizers(
        &sandbox.kubeconfig,
        "trials",
        "interrupted",
    ));
    let rec = case.exec(&strings(&[
        "recover",
        "--state-dir",
        state.to_str().unwrap(),
    ]));
    rec.assert_code(0);
    assert_eq!(before, block(snapshot(&sandbox.kubeconfig)));
}

#[test]
fn abort_from_another_terminal_stops_the_run_and_restores() {
    let sandbox = SandboxProcess::start();
    block(apply_all(&sandbox.kubeconfig, TRIAL_BASE));
    let before = block(snapshot(&sandbox.kubeconfig));
    let case = Case::suite(&slow_suite("trials", ""));
    let state = case.path("state");

    // `heatcheck abort`: SIGINT to the pid and the abort file.
    let child = spawn_suite(&case, "suite.yaml", &sandbox.kubeconfig, &state, &[]);
    wait_for_object(&sandbox.kubeconfig, "ConfigMap/trials/interrupted");
    let ab = case.exec(&strings(&["abort", "--state-dir", state.to_str().unwrap()]));
    ab.assert_code(0);
    assert!(ab.stdout.contains("told to stop"), "{}", ab.stdout);
    let out = wait_with_deadline(child, Duration::from_secs(30));
    assert_eq!(out.0, Some(4), "{}\n{}", out.1, out.2);
    assert!(
        out.1
            .contains("restore: deleted ConfigMap trials/interrupted"),
        "{}",
        out.1
    );
    assert_eq!(before, block(snapshot(&sandbox.kubeconfig)));

    // The abort file alone (another machine sharing the state dir) works too.
    let first = only_run(&state);
    let child = spawn_suite(&case, "suite.yaml", &sandbox.kubeconfig, &state, &[]);
    wait_for_object(&sandbox.kubeconfig, "ConfigMap/trials/interrupted");
    let id = newest_run(&state, &first);
    std::fs::write(state.join("runs").join(&id).join("abort"), "test\n").unwrap();
    let out = wait_with_deadline(child, Duration::from_secs(30));
    assert_eq!(out.0, Some(4), "{}\n{}", out.1, out.2);
    assert!(out.2.contains("heatcheck abort"), "{}", out.2);
    assert_eq!(before, block(snapshot(&sandbox.kubeconfig)));

    // Nothing running: abort says so.
    let ab = case.exec(&strings(&["abort", "--state-dir", state.to_str().unwrap()]));
    ab.assert_code(2);
}

#[test]
fn a_suite_passes_while_the_api_server_fails_every_3rd_request_with_503_or_every_4th_with_429() {
    // Each run is mostly retry backoff: the two faults run side by side.
    let run_with = |fault: &str| {
        let sandbox = FaultySandbox::start(fault);
        let before = block(snapshot(&sandbox.kubeconfig));
        let suite = fault_suite();
        let case = Case::suite(&suite);
        let state = case.path("state");
        let t0 = Instant::now();
        let out = case.exec(&run_args(&sandbox.kubeconfig, &state));
        assert_eq!(
            out.code, 0,
            "with fault {fault}\n--- stdout\n{}\n--- stderr\n{}",
            out.stdout, out.stderr
        );
        println!("suite passed with API fault {fault} in {:?}", t0.elapsed());
        assert_eq!(
            before,
            block(snapshot(&sandbox.kubeconfig)),
            "with fault {fault}"
        );
    };
    std::thread::scope(|s| {
        for fault in ["503:3", "429:4"] {
            s.spawn(move || run_with(fault));
        }
    });
}

// ---- helpers ----

/// The trial scenario with its objects as fixtures in a namespace of its
/// own, plus a wait and an assertion: every kind of API call the runner makes.
fn fault_suite() -> String {
    let objects: String = TRIAL_BASE
        .split("---\n")
        .skip(1) // the namespace: createNamespace makes it
        .map(|doc| doc.replace("namespace: trials", "namespace: faults"))
        .collect::<Vec<_>>()
        .join("---\n");
    TRIAL_SUITE
        .replace(
            "target: {namespace: trials}",
            "target: {namespace: faults, createNamespace: true}",
        )
        .replace(
            "  scenarios:\n",
            &format!(
                "  fixtures:\n    - apply:\n        manifest: |\n{}\n    - wait: {{kind: Deployment, name: web, available: true}}\n  scenarios:\n",
                indent(&objects, 10)
            ),
        )
        .replace(
            "      assertions:\n",
            "        - wait: {kind: Deployment, name: web, available: true}\n      assertions:\n        - resource: {kind: Deployment, name: web, expect: {$.spec.replicas: 3}}\n",
        )
}

/// A scenario that creates `interrupted` and then sleeps.
fn slow_suite(ns: &str, extra_meta: &str) -> String {
    format!(
        r#"apiVersion: heatcheck.dev/v1alpha1
kind: Suite
metadata: {{name: slow}}
spec:
  target: {{namespace: {ns}}}
  scenarios:
    - name: long
      steps:
        - patch: {{kind: ConfigMap, name: keep-1, patch: {{data: {{mode: storm}}}}}}
        - apply:
            manifest: |
              apiVersion: v1
              kind: ConfigMap
              metadata: {{name: interrupted, {extra_meta}labels: {{a: b}}}}
        - sleep: 60s
"#
    )
}

fn strings(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

fn run_args(kubeconfig: &Path, state: &Path) -> Vec<String> {
    strings(&[
        "run",
        "suite.yaml",
        "--kubeconfig",
        kubeconfig.to_str().unwrap(),
        "--state-dir",
        state.to_str().unwrap(),
    ])
}

fn spawn_run(case: &Case, kubeconfig: &Path, state: &Path) -> Child {
    Command::new(bin())
        .current_dir(case.dir.path())
        .args(run_args(kubeconfig, state))
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn spawn_suite(case: &Case, suite: &str, kubeconfig: &Path, state: &Path, extra: &[&str]) -> Child {
    Command::new(bin())
        .current_dir(case.dir.path())
        .args(["run", suite, "--kubeconfig"])
        .arg(kubeconfig)
        .arg("--state-dir")
        .arg(state)
        .args(extra)
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn signal(child: &Child, sig: &str) {
    common::send_signal(child.id(), sig);
}

/// (exit code, stdout, stderr); kills the child if it overstays.
fn wait_with_deadline(mut child: Child, limit: Duration) -> (Option<i32>, String, String) {
    let deadline = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn wait_for_object(kubeconfig: &Path, key: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !block(snapshot(kubeconfig)).contains_key(key) {
        assert!(Instant::now() < deadline, "{key} never appeared");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until the ConfigMap carries a deletionTimestamp (its deletion was
/// requested and finalizers hold it).
fn wait_for_deletion_requested(kubeconfig: &Path, ns: &str, name: &str) {
    block(async {
        let c = client(kubeconfig).await;
        let r = c.resolve(Some("v1"), "ConfigMap").await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let cur = c.get(&r, Some(ns), name).await.unwrap();
            if cur
                .as_ref()
                .is_some_and(|o| o.pointer("/metadata/deletionTimestamp").is_some())
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the deletion of ConfigMap {ns}/{name} was never requested: {cur:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
}

fn run_ids(state: &Path) -> Vec<String> {
    let mut ids: Vec<String> = std::fs::read_dir(state.join("runs"))
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids
}

fn only_run(state: &Path) -> String {
    let ids = run_ids(state);
    assert_eq!(ids.len(), 1, "{ids:?}");
    ids[0].clone()
}

fn newest_run(state: &Path, not: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(id) = run_ids(state).into_iter().find(|i| i != not) {
            return id;
        }
        assert!(Instant::now() < deadline, "no new run dir");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn run_state(state: &Path, id: &str) -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(state.join("runs").join(id).join("run.json")).unwrap(),
    )
    .unwrap()
}

/// "  deleted X", "  restored X", "  recreated X" lines of `recover`.
fn count_restored(stdout: &str) -> usize {
    stdout
        .lines()
        .filter(|l| {
            let l = l.trim_start();
            l.starts_with("deleted ") || l.starts_with("restored ") || l.starts_with("recreated ")
        })
        .count()
}

fn diff(
    a: &std::collections::BTreeMap<String, Value>,
    b: &std::collections::BTreeMap<String, Value>,
) -> String {
    let mut out = Vec::new();
    for (k, v) in a {
        match b.get(k) {
            None => out.push(format!("lost {k}")),
            Some(w) if w != v => out.push(format!("changed {k}: {v} -> {w}")),
            _ => {}
        }
    }
    for k in b.keys().filter(|k| !a.contains_key(*k)) {
        out.push(format!("leaked {k}"));
    }
    out.join("\n")
}

fn indent(text: &str, n: usize) -> String {
    let pad = " ".repeat(n);
    text.lines()
        .map(|l| format!("{pad}{l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

async fn client(kubeconfig: &Path) -> heatcheck::cluster::ClusterClient {
    let _ = rustls::crypto::ring::default_provider().install_default();
    heatcheck::cluster::ClusterClient::connect(&heatcheck::cluster::ConnectOptions {
        kubeconfig: Some(kubeconfig.to_path_buf()),
        context: None,
    })
    .await
    .unwrap()
}

async fn apply_all(kubeconfig: &Path, yaml: &str) {
    let c = client(kubeconfig).await;
    for obj in heatcheck::suite::manifest::parse_documents(yaml, "base").unwrap() {
        let r = c
            .resolve(obj["apiVersion"].as_str(), obj["kind"].as_str().unwrap())
            .await
            .unwrap();
        let ns = obj.pointer("/metadata/namespace").and_then(Value::as_str);
        c.apply(&r, ns, &obj).await.unwrap();
    }
}

async fn remove_finalizers(kubeconfig: &Path, ns: &str, name: &str) {
    let c = client(kubeconfig).await;
    let r = c.resolve(Some("v1"), "ConfigMap").await.unwrap();
    c.patch(
        &r,
        Some(ns),
        name,
        heatcheck::cluster::PatchType::Merge,
        &json!({"metadata": {"finalizers": null}}),
    )
    .await
    .unwrap();
}

fn block<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// `heatcheck sandbox --inject-api-faults SPEC` in its own process.
struct FaultySandbox {
    child: Child,
    kubeconfig: PathBuf,
    _dir: tempfile::TempDir,
}

impl FaultySandbox {
    fn start(spec: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        let child = Command::new(bin())
            .args(["sandbox", "--inject-api-faults", spec, "--kubeconfig"])
            .arg(&kubeconfig)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while !std::fs::read_to_string(&kubeconfig)
            .unwrap_or_default()
            .contains("current-context")
        {
            assert!(Instant::now() < deadline, "sandbox did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        FaultySandbox {
            child,
            kubeconfig,
            _dir: dir,
        }
    }
}

impl Drop for FaultySandbox {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
