//! A state directory that cannot take the journal: read-only, the run
//! refuses to start (nothing changed); full mid-run, the run stops before
//! the change it could not journal and undoes what it did, saying that the
//! cluster is back but the restore could not be recorded. The directory is
//! a tmpfs mounted in a private mount namespace (`unshare -m`), so the test
//! needs no disk of its own and leaves nothing mounted.

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

fn can_unshare(test: &str) -> bool {
    let ok = Command::new("unshare")
        .args(["-m", "true"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        common::missing(
            test,
            "`unshare -m` (a private mount namespace) is not permitted here",
        );
    }
    ok
}

#[test]
fn a_full_or_read_only_state_dir_changes_nothing_it_cannot_journal() {
    let test = "a_full_or_read_only_state_dir_changes_nothing_it_cannot_journal";
    let Some(kubectl) = common::kubectl(test) else {
        return;
    };
    if !can_unshare(test) {
        return;
    }
    let cluster = common::SandboxProcess::start();
    let kc = |args: &[&str]| {
        let out = Command::new(&kubectl)
            .arg("--kubeconfig")
            .arg(&cluster.kubeconfig)
            .args(args)
            .output()
            .expect("kubectl runs");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string(),
        )
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
