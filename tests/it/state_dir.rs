//! Where the journal is kept cannot take it. A state directory read-only:
//! the run refuses to start (nothing changed); full mid-run: the run stops
//! before the change it could not journal and undoes what it did, saying
//! that the cluster is back but the restore could not be recorded (the
//! directory is a tmpfs mounted in a private mount namespace, `unshare -m`,
//! so the test needs no disk of its own and leaves nothing mounted). The
//! journal Secret of `--journal-in-cluster` crossing the API server's 1 MiB
//! limit: the same, before the change that would cross it. And a stderr
//! nobody reads any more: what fails to print changes neither the restore
//! nor the exit code.

use std::path::Path;
use std::process::Command;

use crate::common;

const SUITE: &str = r#"apiVersion: heatcheck.dev/v1alpha1
kind: Suite
metadata: {name: state}
spec:
  target: {namespace: default}
  scenarios:
    - name: grows the journal
      steps:
        - apply:
            manifest: |
              apiVersion: v1
              kind: ConfigMap
              metadata: {name: small}
        - patch: {kind: ConfigMap, name: big, patch: {data: {mode: storm}}}
"#;

/// `heatcheck run` with its state dir a fresh tmpfs (`mount_opts`) of its own.
fn run_on_tmpfs(dir: &Path, kubeconfig: &Path, mount_opts: &str) -> common::Outcome {
    let state = dir.join("state");
    std::fs::create_dir_all(&state).unwrap();
    let script = format!(
        "mount -t tmpfs -o {mount_opts} tmpfs '{s}' && exec '{bin}' run suite.yaml --kubeconfig '{k}' --state-dir '{s}'",
        s = state.display(),
        bin = common::bin().display(),
        k = kubeconfig.display()
    );
    let out = Command::new("unshare")
        .current_dir(dir)
        .args(["-m", "sh", "-c", &script])
        .env("NO_COLOR", "1")
        .output()
        .expect("unshare runs");
    common::Outcome {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        dir: dir.to_path_buf(),
    }
}

#[test]
fn a_full_or_read_only_state_dir_changes_nothing_it_cannot_journal() {
    let test = "a_full_or_read_only_state_dir_changes_nothing_it_cannot_journal";
    let Some(kubectl) = common::kubectl(test) else {
        return;
    };
    if !common::can_unshare(test) {
        return;
    }
    let cluster = common::SandboxProcess::start();
    let kc = |args: &[&str]| {
        let (ok, stdout, _) = cluster.kubectl(&kubectl, args);
        (ok, stdout)
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("suite.yaml"), SUITE).unwrap();
    // The patched ConfigMap is journaled whole: 200 kB that a 64 kB state dir cannot take.
    let big = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: big}}\ndata:\n  blob: {}\n",
        "x".repeat(200_000)
    );
    std::fs::write(dir.path().join("big.yaml"), big).unwrap();
    let (ok, _) = kc(&["apply", "-f", dir.path().join("big.yaml").to_str().unwrap()]);
    assert!(ok);

    // Read-only: no run starts, nothing is changed.
    let out = run_on_tmpfs(dir.path(), &cluster.kubeconfig, "size=64k,ro");
    assert_eq!(out.code, 2, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("cannot write run state")
            && out.stderr.contains("Read-only file system"),
        "{}",
        out.stderr
    );
    assert!(
        !kc(&["get", "configmap", "small"]).0,
        "read-only: small was created"
    );

    // Full mid-run: the first change fits in the journal, the second does not.
    let out = run_on_tmpfs(dir.path(), &cluster.kubeconfig, "size=64k");
    assert_eq!(out.code, 5, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("No space left on device"),
        "{}",
        out.stdout
    );
    // The change that could not be journaled was never made ...
    let (_, mode) = kc(&["get", "configmap", "big", "-o", "jsonpath={.data.mode}"]);
    assert_eq!(mode, "", "the unjournaled patch was applied");
    // ... the one before it was undone ...
    assert!(
        !kc(&["get", "configmap", "small"]).0,
        "small is left behind"
    );
    assert!(
        out.stdout.contains("deleted ConfigMap default/small"),
        "{}",
        out.stdout
    );
    // ... and the words say so: back in the cluster, not recorded.
    assert!(
        out.stderr.contains(
            "every change was undone in the cluster, but the journal could not record it"
        ),
        "{}",
        out.stderr
    );
}

/// A ConfigMap of `bytes` random bytes (base64): what a journal cannot compress away.
fn random_configmap(name: &str, bytes: usize) -> String {
    use base64::Engine as _;
    let mut data = vec![0u8; bytes];
    // xorshift: incompressible enough, no extra crate.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15 ^ bytes as u64;
    for b in data.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}}}\ndata:\n  blob: {}\n",
        base64::engine::general_purpose::STANDARD.encode(data)
    )
}

#[test]
fn a_journal_secret_that_would_cross_the_limit_stops_the_run_before_that_change() {
    let test = "a_journal_secret_that_would_cross_the_limit_stops_the_run_before_that_change";
    let Some(kubectl) = common::kubectl(test) else {
        return;
    };
    let cluster = common::SandboxProcess::start();
    let kc = |args: &[&str]| {
        let (ok, stdout, _) = cluster.kubectl(&kubectl, args);
        (ok, stdout)
    };
    let dir = tempfile::tempdir().unwrap();
    // Each patched ConfigMap is journaled whole: one fits in a Secret, two do not.
    for n in ["cm-a", "cm-b"] {
        let f = dir.path().join(format!("{n}.yaml"));
        std::fs::write(&f, random_configmap(n, 300_000)).unwrap();
        assert!(kc(&["apply", "-f", f.to_str().unwrap()]).0);
    }
    std::fs::write(
        dir.path().join("suite.yaml"),
        "apiVersion: heatcheck.dev/v1alpha1\nkind: Suite\nmetadata: {name: big-journal}\nspec:\n  target: {namespace: default}\n  scenarios:\n    - name: journals more than a Secret holds\n      steps:\n        - patch: {kind: ConfigMap, name: cm-a, patch: {data: {mode: storm}}}\n        - patch: {kind: ConfigMap, name: cm-b, patch: {data: {mode: storm}}}\n",
    )
    .unwrap();
    let out = common::heatcheck_in(
        dir.path(),
        &[
            "run",
            "suite.yaml",
            "--kubeconfig",
            cluster.kubeconfig.to_str().unwrap(),
            "--journal-in-cluster",
        ],
    );
    assert_eq!(out.code, 5, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .contains("above the 1048576-byte limit of a Secret")
            && out.stdout.contains("the change is not made"),
        "{}",
        out.stdout
    );
    let mode = |n: &str| kc(&["get", "configmap", n, "-o", "jsonpath={.data.mode}"]).1;
    // The second patch was never made; the first was undone.
    assert_eq!(mode("cm-b"), "", "the patch past the limit was made");
    assert_eq!(mode("cm-a"), "", "the first patch is left behind");
    assert!(
        out.stdout.contains("restored ConfigMap default/cm-a"),
        "{}",
        out.stdout
    );
    assert!(
        out.stderr.contains(
            "every change was undone in the cluster, but the journal could not record it"
        ),
        "{}",
        out.stderr
    );
}

#[test]
fn an_interrupted_run_whose_stderr_is_gone_still_restores_in_full() {
    // Who reads the run's output may die first (an MCP server whose client
    // left, a closed terminal pipe): its words then fail to print, and that
    // must not cut the restore short.
    let test = "an_interrupted_run_whose_stderr_is_gone_still_restores_in_full";
    let Some(kubectl) = common::kubectl(test) else {
        return;
    };
    let cluster = common::SandboxProcess::start();
    let kc = |args: &[&str]| cluster.kubectl(&kubectl, args).0;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("suite.yaml"),
        "apiVersion: heatcheck.dev/v1alpha1\nkind: Suite\nmetadata: {name: quiet}\nspec:\n  target: {namespace: default}\n  scenarios:\n    - name: long\n      steps:\n        - apply:\n            manifest: |\n              apiVersion: v1\n              kind: ConfigMap\n              metadata: {name: made-by-the-run}\n        - sleep: 60s\n",
    )
    .unwrap();
    let mut run = Command::new(common::bin())
        .current_dir(dir.path())
        .args(["run", "suite.yaml", "--kubeconfig"])
        .arg(&cluster.kubeconfig)
        .args(["--output", "json"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The reader is gone before anything is said.
    drop(run.stderr.take());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !kc(&["get", "configmap", "made-by-the-run"]) {
        assert!(
            std::time::Instant::now() < deadline,
            "the run never made its change"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    common::send_signal(run.id(), "INT");
    let status = run.wait().unwrap();
    assert_eq!(status.code(), Some(4), "interrupted and restored: exit 4");
    assert!(!kc(&["get", "configmap", "made-by-the-run"]));
    let runs = common::heatcheck_in(dir.path(), &["runs", "--output", "json"]);
    let v: serde_json::Value = serde_json::from_str(&runs.stdout).unwrap();
    assert_eq!(v["runs"], serde_json::json!([]), "{v:#}");
}

#[test]
fn a_broken_suite_with_stderr_gone_still_exits_with_its_own_code() {
    // Printing the errors fails when nobody reads stderr; the exit code
    // must still say "invalid" (2), not a panic's 101.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("suite.yaml"),
        "apiVersion: heatcheck.dev/v1alpha1\nkind: Suite\nmetadata: {name: broken}\nspec:\n  target: {namespace: default}\n  scenarios: [{name: x, steps: [{nonsense: 1}]}]\n",
    )
    .unwrap();
    for command in ["validate", "plan"] {
        let mut child = Command::new(common::bin())
            .current_dir(dir.path())
            .args([command, "suite.yaml"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stderr.take());
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(2), "heatcheck {command}");
    }
}
