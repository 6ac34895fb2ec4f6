//! Crash safety in the cluster (`run --journal-in-cluster`, what `heatcheck
//! deploy`'s CronJob runs): the runner, as a pod runs it (the unshare
//! harness: the ServiceAccount mount at its standard path, a token bound
//! only to the Role deploy rendered), is killed -9 mid-run; its journal
//! Secret survives; the next in-cluster run recovers it first and the
//! cluster ends as the snapshot taken before the first run. Recovery that
//! cannot complete keeps the next run from starting.
#![cfg(unix)]

use crate::common;

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::{snapshot, Case, SandboxProcess, ServiceAccountMount};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::api::{Api, ListParams, PostParams};
use serde_json::Value;

const NS: &str = "nightly";
const RUNNER_NS: &str = "heatcheck";

/// What the cluster holds before any run.
const BASE: &str = r#"apiVersion: v1
kind: Namespace
metadata: {name: nightly}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: nightly, labels: {app: web}}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: echo, image: echo}]}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: nightly}
data: {mode: calm}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: doomed, namespace: nightly}
data: {keep: "me"}
"#;

/// Mutates (patch, delete, scale, create) and then waits a long time: the
/// runner is killed during the sleep.
const SLOW: &str = r#"apiVersion: heatcheck.dev/v1alpha1
kind: Suite
metadata: {name: slow}
spec:
  target: {namespace: nightly}
  defaults: {timeout: 10s, interval: 100ms}
  scenarios:
    - name: storm then a long wait
      steps:
        - patch: {kind: ConfigMap, name: settings, patch: {data: {mode: storm}}}
        - delete: {kind: ConfigMap, name: doomed}
        - scale: {name: web, replicas: 1}
        - apply:
            manifest: |
              apiVersion: v1
              kind: ConfigMap
              metadata: {name: intruder}
              data: {x: "1"}
        - sleep: 120s
"#;

/// A quick suite: the "next night's" run.
const FAST: &str = r#"apiVersion: heatcheck.dev/v1alpha1
kind: Suite
metadata: {name: fast}
spec:
  target: {namespace: nightly}
  defaults: {timeout: 10s, interval: 100ms}
  scenarios:
    - name: a quick patch
      steps:
        - patch: {kind: ConfigMap, name: settings, patch: {data: {mode: breeze}}}
      assertions:
        - resource: {kind: ConfigMap, name: settings, expect: {"$.data.mode": breeze}}
"#;

fn block<F: std::future::Future>(f: F) -> F::Output {
    common::tokio_block(f)
}

async fn apply_all(kubeconfig: &Path, yaml: &str) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let c = heatcheck::cluster::ClusterClient::connect(&heatcheck::cluster::ConnectOptions {
        kubeconfig: Some(kubeconfig.to_path_buf()),
        context: None,
    })
    .await
    .unwrap();
    for obj in heatcheck::suite::manifest::parse_documents(yaml, "base").unwrap() {
        let r = c
            .resolve(obj["apiVersion"].as_str(), obj["kind"].as_str().unwrap())
            .await
            .unwrap();
        let ns = obj.pointer("/metadata/namespace").and_then(Value::as_str);
        c.apply(&r, ns, &obj).await.unwrap();
    }
}

/// The journal Secrets in the runner's namespace: (name, status annotation).
fn journals(kubeconfig: &Path) -> Vec<(String, String)> {
    block(async {
        let api: Api<Secret> = Api::namespaced(common::admin_client(kubeconfig).await, RUNNER_NS);
        api.list(
            &ListParams::default()
                .labels("app.kubernetes.io/managed-by=heatcheck,heatcheck.dev/run"),
        )
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|s| {
            assert_eq!(s.type_.as_deref(), Some("heatcheck.dev/journal"));
            let status = s
                .metadata
                .annotations
                .unwrap_or_default()
                .get("heatcheck.dev/status")
                .cloned()
                .unwrap_or_default();
            (s.metadata.name.unwrap_or_default(), status)
        })
        .collect()
    })
}

fn settings_mode(kubeconfig: &Path) -> Option<String> {
    block(async {
        let api: Api<ConfigMap> = Api::namespaced(common::admin_client(kubeconfig).await, NS);
        api.get_opt("settings")
            .await
            .unwrap()
            .and_then(|c| c.data?.get("mode").cloned())
    })
}

/// Starts the slow suite in-cluster and kills it -9 once its changes are
/// visible on the cluster (the intruder exists: every step before the sleep ran).
fn crash_mid_run(case: &Case, mount: &Path, server: &str, kubeconfig: &Path) {
    let mut child: Child = common::in_cluster_command(
        case.dir.path(),
        mount,
        server,
        &["run", "slow.yaml", "--locked", "--journal-in-cluster"],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .expect("unshare");
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let intruder = block(async {
            let api: Api<ConfigMap> = Api::namespaced(common::admin_client(kubeconfig).await, NS);
            api.get_opt("intruder").await.unwrap().is_some()
        });
        if intruder {
            break;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the slow run ended before its changes were visible: {status}");
        }
        assert!(
            Instant::now() < deadline,
            "the slow run's changes never became visible"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    child.kill().unwrap(); // SIGKILL: no restore, no cleanup
    child.wait().unwrap();
    assert_eq!(settings_mode(kubeconfig).as_deref(), Some("storm"));
}

/// Makes a journal Secret look held by a pod on another node that last
/// renewed `ago` ago (what a pod that lost its node leaves).
fn hold_elsewhere(kubeconfig: &Path, name: &str, ago: chrono::Duration) {
    block(async {
        let api: Api<Secret> = Api::namespaced(common::admin_client(kubeconfig).await, RUNNER_NS);
        let mut s = api.get(name).await.unwrap();
        let ann = s.metadata.annotations.get_or_insert_with(Default::default);
        ann.insert("heatcheck.dev/holder".into(), "nightly-29-x7k2p/1".into());
        ann.insert(
            "heatcheck.dev/renewed".into(),
            (chrono::Utc::now() - ago).to_rfc3339(),
        );
        api.replace(name, &PostParams::default(), &s).await.unwrap();
    });
}

/// A sandbox holding BASE where `heatcheck deploy --apply` put the nightly
/// CronJob for `suites` (files of `case`): its ServiceAccount and Roles,
/// and that ServiceAccount's token mounted as a pod would have it.
struct Night {
    sb: SandboxProcess,
    mount: ServiceAccountMount,
    server: String,
}

impl Night {
    fn deployed(case: &Case, suites: &[&str]) -> Night {
        let sb = SandboxProcess::start();
        block(apply_all(&sb.kubeconfig, BASE));
        let mut args = vec!["deploy"];
        args.extend_from_slice(suites);
        args.extend(["--namespace", RUNNER_NS, "--apply", "--kubeconfig"]);
        args.push(sb.kubeconfig.to_str().unwrap());
        case.exec(&common::args(&args)).assert_code(0);
        let (token, ca, server) = block(common::service_account_token(
            &sb.kubeconfig,
            RUNNER_NS,
            "heatcheck-nightly",
        ));
        let mount = ServiceAccountMount::write(&token, &ca, RUNNER_NS);
        Night { sb, mount, server }
    }
}

/// A new pod has a fresh disk: only the Secret can tell what to undo.
fn lose_the_disk(case: &Case) {
    let _ = std::fs::remove_dir_all(case.path(".heatcheck"));
}

#[test]
fn a_killed_runner_is_recovered_by_the_next_in_cluster_run() {
    if !common::can_unshare("a_killed_runner_is_recovered_by_the_next_in_cluster_run") {
        return;
    }
    let case = Case::suite(SLOW)
        .file("slow.yaml", SLOW)
        .file("fast.yaml", FAST);
    let night = Night::deployed(&case, &["slow.yaml", "fast.yaml"]);
    let sb = &night.sb;
    let before = block(snapshot(&sb.kubeconfig));

    // 1. Killed mid-run: its journal Secret is there, held by a dead process.
    crash_mid_run(&case, night.mount.dir.path(), &night.server, &sb.kubeconfig);
    let left = journals(&sb.kubeconfig);
    assert_eq!(left.len(), 1, "one journal Secret: {left:?}");
    assert_eq!(left[0].1, "running");

    // Held by a pod elsewhere that renewed just now: left alone; once its
    // lease has run out (no renewal for 30s), it is taken.
    hold_elsewhere(&sb.kubeconfig, &left[0].0, chrono::Duration::zero());
    let alone = common::run_in_cluster(
        &case,
        night.mount.dir.path(),
        &night.server,
        &["recover", "--journal-in-cluster"],
    );
    alone.assert_code(0);
    assert!(
        alone
            .stdout
            .contains("left alone: held by nightly-29-x7k2p/1, renewed 0s ago"),
        "{}",
        alone.stdout
    );
    assert_eq!(settings_mode(&sb.kubeconfig).as_deref(), Some("storm"));
    hold_elsewhere(&sb.kubeconfig, &left[0].0, chrono::Duration::seconds(31));

    // 2. The next night: another suite, on a new pod (no local state).
    lose_the_disk(&case);
    let next = common::run_in_cluster(
        &case,
        night.mount.dir.path(),
        &night.server,
        &[
            "run",
            "fast.yaml",
            "--locked",
            "--journal-in-cluster",
            "--junit",
            "junit.xml",
        ],
    );
    next.assert_code(0);
    let recovering = next.stderr.find("recovering run ").expect(&next.stderr);
    let recovered = next.stderr.find("recovered run ").expect(&next.stderr);
    let journal_of_next = next
        .stderr
        .find("journal kept in Secret")
        .expect(&next.stderr);
    assert!(
        recovering < recovered && recovered < journal_of_next,
        "recovery first, then the run:\n{}",
        next.stderr
    );
    assert_eq!(common::junit_counts(&next.junit()).1, 0, "{}", next.junit());
    assert!(
        journals(&sb.kubeconfig).is_empty(),
        "every journal Secret deleted"
    );
    assert_eq!(
        before,
        block(snapshot(&sb.kubeconfig)),
        "the cluster is as before the first run"
    );

    // 3. A recovery that cannot complete (the runner lost its rights in the
    // target namespace) keeps the next run from starting.
    crash_mid_run(&case, night.mount.dir.path(), &night.server, &sb.kubeconfig);
    let kubeconfig = sb.kubeconfig.clone();
    let bindings = || {
        let kubeconfig = kubeconfig.clone();
        async move { Api::<RoleBinding>::namespaced(common::admin_client(&kubeconfig).await, NS) }
    };
    let binding = block(async {
        let api = bindings().await;
        let b = api.get("heatcheck-nightly").await.unwrap();
        api.delete("heatcheck-nightly", &Default::default())
            .await
            .unwrap();
        b
    });
    lose_the_disk(&case);
    let refused = common::run_in_cluster(
        &case,
        night.mount.dir.path(),
        &night.server,
        &["run", "fast.yaml", "--locked", "--journal-in-cluster"],
    );
    refused.assert_code(5);
    for needle in [
        "NOT recovered",
        "earlier run(s) could not be recovered",
        "this run does not start",
    ] {
        assert!(
            refused.stderr.contains(needle),
            "{needle:?} in:\n{}",
            refused.stderr
        );
    }
    assert!(
        !refused.stderr.contains("journal kept in Secret"),
        "{}",
        refused.stderr
    );
    assert_eq!(
        settings_mode(&sb.kubeconfig).as_deref(),
        Some("storm"),
        "nothing ran"
    );
    let left = journals(&sb.kubeconfig);
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0].1, "restore-failed");

    // Rights back: `heatcheck recover --journal-in-cluster` by hand finishes it.
    block(async {
        let mut b = binding;
        b.metadata.resource_version = None;
        b.metadata.uid = None;
        b.metadata.creation_timestamp = None;
        b.metadata.managed_fields = None;
        bindings()
            .await
            .create(&PostParams::default(), &b)
            .await
            .unwrap();
    });
    let by_hand = common::run_in_cluster(
        &case,
        night.mount.dir.path(),
        &night.server,
        &["recover", "--journal-in-cluster"],
    );
    by_hand.assert_code(0);
    assert!(
        by_hand.stdout.contains("recovered run "),
        "{}",
        by_hand.stdout
    );
    assert!(journals(&sb.kubeconfig).is_empty());
    assert_eq!(before, block(snapshot(&sb.kubeconfig)));
}

/// Two runners never recover the same journal: a live run's Secret is left
/// alone (its holder is alive), and it disappears when that run restores.
#[test]
fn a_live_runs_journal_is_left_alone() {
    if !common::can_unshare("a_live_runs_journal_is_left_alone") {
        return;
    }
    let case = Case::suite(SLOW).file("slow.yaml", SLOW);
    let night = Night::deployed(&case, &["slow.yaml"]);
    let sb = &night.sb;
    let before = block(snapshot(&sb.kubeconfig));
    let mut child = common::in_cluster_command(
        case.dir.path(),
        night.mount.dir.path(),
        &night.server,
        &["run", "slow.yaml", "--locked", "--journal-in-cluster"],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    while settings_mode(&sb.kubeconfig).as_deref() != Some("storm") {
        assert!(Instant::now() < deadline, "the run never changed anything");
        std::thread::sleep(Duration::from_millis(100));
    }
    let other = common::run_in_cluster(
        &case,
        night.mount.dir.path(),
        &night.server,
        &["recover", "--journal-in-cluster"],
    );
    other.assert_code(0);
    assert!(
        other.stdout.contains("left alone: its runner"),
        "{}",
        other.stdout
    );
    assert_eq!(settings_mode(&sb.kubeconfig).as_deref(), Some("storm"));
    assert_eq!(journals(&sb.kubeconfig).len(), 1);
    // Ctrl-C: the run restores and deletes its journal Secret.
    common::send_signal(child.id(), "INT");
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(4), "aborted by a signal, restored");
    assert!(journals(&sb.kubeconfig).is_empty());
    assert_eq!(before, block(snapshot(&sb.kubeconfig)));
}

/// The permission preflight checks the journal's rules too: without
/// `create secrets` in the runner's namespace the run fails up front,
/// changing nothing.
#[test]
fn a_missing_journal_rule_fails_the_run_up_front() {
    if !common::can_unshare("a_missing_journal_rule_fails_the_run_up_front") {
        return;
    }
    let case = Case::suite(FAST).file("fast.yaml", FAST);
    let night = Night::deployed(&case, &["fast.yaml"]);
    let sb = &night.sb;
    block(async {
        use k8s_openapi::api::rbac::v1::Role;
        let roles: Api<Role> =
            Api::namespaced(common::admin_client(&sb.kubeconfig).await, RUNNER_NS);
        let mut role = roles.get("heatcheck-nightly").await.unwrap();
        for rule in role.rules.iter_mut().flatten() {
            rule.verbs.retain(|v| v != "create");
        }
        role.metadata.managed_fields = None;
        roles
            .replace("heatcheck-nightly", &PostParams::default(), &role)
            .await
            .unwrap();
    });
    let before = block(snapshot(&sb.kubeconfig));
    let out = common::run_in_cluster(
        &case,
        night.mount.dir.path(),
        &night.server,
        &["run", "fast.yaml", "--locked", "--journal-in-cluster"],
    );
    out.assert_code(2);
    assert!(
        out.stderr
            .contains("create secrets in heatcheck: to keep this run's journal in a Secret"),
        "{}",
        out.stderr
    );
    assert!(journals(&sb.kubeconfig).is_empty());
    assert_eq!(before, block(snapshot(&sb.kubeconfig)), "nothing changed");
}

/// A journal taken over (`recover --journal-in-cluster --force` while its
/// run still runs): the takeover restores it, and the old holder's next
/// journal write fails, so it stops before its next change.
#[test]
fn a_runner_whose_journal_was_taken_over_makes_no_further_change() {
    if !common::can_unshare("a_runner_whose_journal_was_taken_over_makes_no_further_change") {
        return;
    }
    const TWO_STEPS: &str = r#"apiVersion: heatcheck.dev/v1alpha1
kind: Suite
metadata: {name: two-steps}
spec:
  target: {namespace: nightly}
  defaults: {timeout: 10s, interval: 100ms}
  scenarios:
    - name: patch, wait, delete
      steps:
        - patch: {kind: ConfigMap, name: settings, patch: {data: {mode: storm}}}
        # Held until the test opens the gate, after the takeover: a wait on
        # state, not a sleep that a slow recover could outlast.
        - wait: {kind: ConfigMap, name: gate, present: true, timeout: 60s}
        - delete: {kind: ConfigMap, name: doomed}
"#;
    let case = Case::suite(TWO_STEPS);
    let night = Night::deployed(&case, &["suite.yaml"]);
    let sb = &night.sb;
    let before = block(snapshot(&sb.kubeconfig));
    let child = common::in_cluster_command(
        case.dir.path(),
        night.mount.dir.path(),
        &night.server,
        &["run", "suite.yaml", "--locked", "--journal-in-cluster"],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while settings_mode(&sb.kubeconfig).as_deref() != Some("storm") {
        assert!(Instant::now() < deadline, "the run never changed anything");
        std::thread::sleep(Duration::from_millis(50));
    }
    let taken = common::run_in_cluster(
        &case,
        night.mount.dir.path(),
        &night.server,
        &["recover", "--journal-in-cluster", "--force"],
    );
    taken.assert_code(0);
    assert!(taken.stdout.contains("recovered run "), "{}", taken.stdout);
    let gate =
        format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: gate, namespace: {NS}}}\n");
    block(apply_all(&sb.kubeconfig, &gate));
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    // It cannot vouch for a journal it no longer holds: exit 5, not 0.
    assert_eq!(out.status.code(), Some(5), "{stdout}{stderr}");
    assert!(
        format!("{stdout}{stderr}").contains("so the change is not made"),
        "{stdout}\n{stderr}"
    );
    block(async {
        let api: Api<ConfigMap> = Api::namespaced(common::admin_client(&sb.kubeconfig).await, NS);
        api.delete("gate", &Default::default()).await.unwrap();
    });
    assert_eq!(
        before,
        block(snapshot(&sb.kubeconfig)),
        "doomed was never deleted"
    );
}
