//! `heatcheck deploy` end to end against `heatcheck sandbox`: the objects
//! apply server-side, and the binary in in-cluster mode (the pod's
//! ServiceAccount mount, KUBERNETES_SERVICE_HOST/PORT) runs the suite with
//! only the Role deploy rendered — and fails when a rule is missing.
#![cfg(unix)]

mod common;

use std::process::Command;

use common::{suite_with, Case, Outcome, SandboxProcess, ServiceAccountMount, BASE};
use k8s_openapi::api::rbac::v1::Role;
use kube::api::{Api, Patch, PatchParams};
use kube::Client;

const SCENARIO: &str = r#"  scenarios:
    - name: scale down and back
      steps:
        - scale: {name: web, replicas: 1}
        - wait: {kind: Deployment, name: web, available: true}
      assertions:
        - name: web is still served
          resource: {kind: Deployment, name: web, expect: {"$.spec.replicas": 1}}
"#;

const NS: &str = "nightly-target";

fn case() -> Case {
    Case::suite(&suite_with(NS, SCENARIO)).file("base.yaml", BASE)
}

fn deploy(case: &Case, sb: &SandboxProcess, extra: &[&str]) -> Outcome {
    let mut args = common::args(&["deploy", "suite.yaml", "--namespace", "heatcheck"]);
    args.extend(common::args(&[
        "--kubeconfig",
        sb.kubeconfig.to_str().unwrap(),
    ]));
    args.extend(common::args(extra));
    case.exec(&args)
}

async fn admin(sb: &SandboxProcess) -> Client {
    common::admin_client(&sb.kubeconfig).await
}

#[test]
fn deploy_applies_server_side_and_again_is_configured() {
    let sb = SandboxProcess::start();
    let c = case();
    let yaml = deploy(&c, &sb, &[]);
    yaml.assert_code(0);
    for kind in [
        "kind: ServiceAccount",
        "kind: Role\n",
        "kind: RoleBinding",
        "kind: ClusterRole\n",
        "kind: ConfigMap",
        "kind: CronJob",
    ] {
        assert!(yaml.stdout.contains(kind), "{kind} in\n{}", yaml.stdout);
    }
    let first = deploy(&c, &sb, &["--apply"]);
    first.assert_code(0);
    assert!(first
        .stdout
        .contains("ServiceAccount heatcheck/heatcheck-nightly created"));
    assert!(first
        .stdout
        .contains(&format!("Role {NS}/heatcheck-nightly created")));
    assert!(first
        .stdout
        .contains("CronJob heatcheck/heatcheck-nightly created"));
    // kubectl's server-side dry run accepts the printed YAML too, sharded included.
    match which_kubectl() {
        Some(kubectl) => {
            for extra in [&[][..], &["--shards", "3", "--regenerate"][..]] {
                let yaml = deploy(&c, &sb, extra);
                yaml.assert_code(0);
                let mut child = Command::new(&kubectl)
                    .args(["--kubeconfig", sb.kubeconfig.to_str().unwrap()])
                    .args(["apply", "--server-side", "--dry-run=server"])
                    .args(["--field-manager", "heatcheck", "-f", "-"])
                    .stdin(std::process::Stdio::piped())
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap();
                use std::io::Write;
                child
                    .stdin
                    .take()
                    .unwrap()
                    .write_all(yaml.stdout.as_bytes())
                    .unwrap();
                let out = child.wait_with_output().unwrap();
                let stdout = String::from_utf8_lossy(&out.stdout);
                assert!(
                    out.status.success(),
                    "{stdout}{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                assert!(
                    stdout.contains(
                        "cronjob.batch/heatcheck-nightly serverside-applied (server dry run)"
                    ),
                    "{stdout}"
                );
            }
        }
        None => eprintln!("kubectl not found: the server-side dry run through kubectl is skipped"),
    }
    let again = deploy(&c, &sb, &["--apply"]);
    again.assert_code(0);
    assert!(!again.stdout.contains("created"), "{}", again.stdout);
    assert!(again
        .stdout
        .contains("CronJob heatcheck/heatcheck-nightly configured"));
}

fn which_kubectl() -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("kubectl"))
            .find(|p| p.is_file())
    })
}

#[test]
fn in_cluster_run_with_only_the_rendered_role() {
    if !common::can_unshare("in_cluster_run_with_only_the_rendered_role") {
        return;
    }
    let sb = SandboxProcess::start();
    let c = case();
    let applied = deploy(&c, &sb, &["--apply"]);
    applied.assert_code(0);
    assert!(applied
        .stdout
        .contains("RoleBinding nightly-target/heatcheck-nightly created"));

    let (token, ca, server) = common::tokio_block(common::service_account_token(
        &sb.kubeconfig,
        "heatcheck",
        "heatcheck-nightly",
    ));
    let mount = ServiceAccountMount::write(&token, &ca, "heatcheck");
    // As the CronJob runs it (deploy renders --journal-in-cluster).
    let run = [
        "run",
        "suite.yaml",
        "--locked",
        "--journal-in-cluster",
        "--junit",
        "junit.xml",
    ];

    let ok = common::run_in_cluster(&c, mount.dir.path(), &server, &run);
    ok.assert_code(0);
    assert_eq!(common::junit_counts(&ok.junit()).1, 0, "{}", ok.junit());

    // Without the scale rule the same run cannot do its step.
    common::tokio_block(async {
        let roles = Api::<Role>::namespaced(admin(&sb).await, NS);
        let mut role = roles.get("heatcheck-nightly").await.unwrap();
        let rules = role.rules.take().unwrap_or_default();
        let before = rules.len();
        let kept: Vec<_> = rules
            .into_iter()
            .filter(|r| {
                !r.resources
                    .iter()
                    .flatten()
                    .any(|x| x == "deployments/scale")
            })
            .collect();
        assert_eq!(kept.len() + 1, before, "the rendered Role has a scale rule");
        role.rules = Some(kept);
        role.metadata.managed_fields = None;
        roles
            .patch(
                "heatcheck-nightly",
                &PatchParams::apply("test").force(),
                &Patch::Apply(&role),
            )
            .await
            .unwrap();
    });
    let denied = common::run_in_cluster(&c, mount.dir.path(), &server, &run);
    // The permission preflight refuses before anything changes (exit 2); the
    // admin kubeconfig would have had the rule, so this was the ServiceAccount.
    denied.assert_code(2);
    for needle in [
        "these credentials cannot run the suite",
        "nothing was changed",
        "patch deployments/scale.apps in nightly-target",
    ] {
        assert!(
            denied.stderr.contains(needle),
            "{needle:?} in:\n{}",
            denied.stderr
        );
    }
}

#[test]
fn a_bundle_above_the_object_limit_is_refused_saying_how_much() {
    // A 1.1 MiB comment: a valid manifest, too big for one ConfigMap.
    let big = format!("{}\n{BASE}", "# padding\n".repeat(115_000));
    let c = Case::suite(&suite_with(NS, SCENARIO)).file("base.yaml", &big);
    let out = c.exec(&common::args(&[
        "deploy",
        "suite.yaml",
        "--namespace",
        "heatcheck",
        "--sandbox",
    ]));
    out.assert_code(2);
    assert!(out.stdout.is_empty(), "nothing rendered: {}", out.stdout);
    assert!(
        out.stderr.contains("above the 1.00 MiB object limit by ")
            && out.stderr.contains("deploy fewer suites"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_manifest_outside_the_suite_directory_is_refused() {
    let suite = suite_with(NS, SCENARIO).replace("file: base.yaml", "file: ../base.yaml");
    let c = case().file("nested/suite.yaml", &suite);
    let out = c.exec(&common::args(&[
        "deploy",
        "nested/suite.yaml",
        "--namespace",
        "heatcheck",
        "--sandbox",
    ]));
    out.assert_code(2);
    assert!(
        out.stderr
            .contains("manifest \"../base.yaml\" is outside the suite's directory"),
        "{}",
        out.stderr
    );
}
