//! `heatcheck deploy` end to end against `heatcheck sandbox`: the objects
//! apply server-side, and the binary in in-cluster mode (the pod's
//! ServiceAccount mount, KUBERNETES_SERVICE_HOST/PORT) runs the suite with
//! only the Role deploy rendered — and fails when a rule is missing.
#![cfg(unix)]

use crate::common;
use crate::common::fake_provider;

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
    // common::kubectl says SKIPPED when it is missing (and fails under CI).
    if let Some(kubectl) = common::kubectl("deploy_dry_run") {
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
    let again = deploy(&c, &sb, &["--apply"]);
    again.assert_code(0);
    assert!(!again.stdout.contains("created"), "{}", again.stdout);
    assert!(again
        .stdout
        .contains("CronJob heatcheck/heatcheck-nightly configured"));
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

/// Copies the shipped suites (suite, lock, manifests) into `dir/suites`.
fn copy_shipped_suites(dir: &std::path::Path) {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("suites");
    let status = Command::new("cp")
        .args(["-r"])
        .arg(&src)
        .arg(dir.join("suites"))
        .status()
        .unwrap();
    assert!(status.success());
}

fn shipped_suite_files() -> Vec<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("suites");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|n| format!("suites/{n}/suite.yaml"))
        .collect()
}

/// The CronJob's run exactly as its pod starts it: the ConfigMap's files
/// written at their item paths under `root/bundle`, the container's command
/// and args with the pod's two volumes mapped into `root`. Returns the args
/// (after `heatcheck`) and the container's env.
fn rendered_job(yaml: &str, root: &std::path::Path) -> (Vec<String>, Vec<(String, String)>) {
    let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(yaml).unwrap();
    let cm = docs.iter().find(|d| d["kind"] == "ConfigMap").unwrap();
    let cj = docs.iter().find(|d| d["kind"] == "CronJob").unwrap();
    let pod = &cj["spec"]["jobTemplate"]["spec"]["template"]["spec"];
    let bundle = root.join("bundle");
    let work = root.join("work");
    let volume = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "suites")
        .unwrap();
    for item in volume["configMap"]["items"].as_array().unwrap() {
        let path = bundle.join(item["path"].as_str().unwrap());
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let key = item["key"].as_str().unwrap();
        std::fs::write(&path, cm["data"][key].as_str().unwrap()).unwrap();
    }
    let container = &pod["containers"][0];
    assert_eq!(container["command"], serde_json::json!(["heatcheck"]));
    let map = |s: &str| {
        s.replace("/etc/heatcheck/suites", bundle.to_str().unwrap())
            .replace("/var/run/heatcheck", work.to_str().unwrap())
    };
    let args = container["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| map(a.as_str().unwrap()))
        .collect();
    let env = container["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap().to_string(),
                map(e["value"].as_str().unwrap()),
            )
        })
        .collect();
    (args, env)
}

/// The rendered CronJob's own run, as its ServiceAccount (the pod's token
/// mount, in-cluster config), with only the rendered Roles.
fn run_rendered_job(
    sb: &SandboxProcess,
    c: &Case,
    yaml: &str,
    namespace: &str,
    name: &str,
) -> Outcome {
    let root = c.path("pod");
    let (args, env) = rendered_job(yaml, &root);
    std::fs::create_dir_all(root.join("work/reports")).unwrap();
    let (token, ca, server) = common::tokio_block(common::service_account_token(
        &sb.kubeconfig,
        namespace,
        name,
    ));
    let mount = ServiceAccountMount::write(&token, &ca, namespace);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut cmd = common::in_cluster_command(c.dir.path(), mount.dir.path(), &server, &args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("unshare");
    Outcome {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        dir: root.join("work/reports"),
    }
}

#[test]
fn the_nightly_job_of_every_shipped_suite_passes_its_own_preflight() {
    if !common::can_unshare("the_nightly_job_of_every_shipped_suite_passes_its_own_preflight") {
        return;
    }
    let sb = SandboxProcess::start();
    let c = Case::suite("");
    copy_shipped_suites(c.dir.path());
    let suites = shipped_suite_files();
    assert!(suites.len() >= 4, "{suites:?}");
    let kc = sb.kubeconfig.to_str().unwrap().to_string();
    let mut deploy_args: Vec<String> = vec!["deploy".into()];
    deploy_args.extend(suites.iter().cloned());
    deploy_args.extend(common::args(&[
        "--namespace",
        "hc-night",
        "--kubeconfig",
        &kc,
    ]));
    let yaml = c.exec(&deploy_args);
    yaml.assert_code(0);
    // The locked scenarios' needs are in the Role (the issue's five).
    for rule in ["deployments/scale", "podchaos"] {
        assert!(yaml.stdout.contains(rule), "{rule} in\n{}", yaml.stdout);
    }
    let mut apply = deploy_args.clone();
    apply.push("--apply".into());
    c.exec(&apply).assert_code(0);

    let run = run_rendered_job(&sb, &c, &yaml.stdout, "hc-night", "heatcheck-nightly");
    run.assert_code(0);
    assert!(!run.stderr.contains("Missing"), "{}", run.stderr);
    let junit = run.junit();
    let (tests, failures, errors, _) = common::junit_counts(&junit);
    assert_eq!((failures, errors), (0, 0), "{junit}");
    // Every hand-written and every locked scenario ran.
    let locked = [
        "ai: backend scaled down to one replica",
        "ai: pod kill on half the backends",
    ];
    for name in locked {
        assert!(junit.contains(name), "{name:?} ran:\n{junit}");
    }
    assert!(tests >= 8, "{tests} test cases in\n{junit}");
}

/// A lock edited to need one more permission (its first scenario applies a
/// ConfigMap, a kind nothing else in the suite changes): `plan` lists it,
/// `deploy` renders it, and the run as the rendered ServiceAccount passes.
#[test]
fn a_lock_that_needs_more_is_planned_rendered_and_runs() {
    if !common::can_unshare("a_lock_that_needs_more_is_planned_rendered_and_runs") {
        return;
    }
    let sb = SandboxProcess::start();
    let c = Case::suite("");
    copy_shipped_suites(c.dir.path());
    let suite = "suites/scale-to-zero/suite.yaml";
    let lock_path = c.path("suites/scale-to-zero/suite.lock.yaml");
    let kc = sb.kubeconfig.to_str().unwrap().to_string();
    let plan = |extra: &[&str]| {
        let mut a = common::args(&["plan", suite, "--kubeconfig", &kc, "--output", "json"]);
        a.extend(common::args(extra));
        let o = c.exec(&a);
        o.assert_code(0);
        serde_json::from_str::<serde_json::Value>(&o.stdout)
            .unwrap_or_else(|e| panic!("{e}\n{}\n{}", o.stdout, o.stderr))
    };
    let needs = |v: &serde_json::Value| -> Vec<String> {
        v["suites"][0]["permissions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                format!(
                    "{} {}",
                    p["verb"].as_str().unwrap(),
                    p["resource"].as_str().unwrap()
                )
            })
            .collect()
    };
    let cases = |v: &serde_json::Value| -> Vec<String> {
        v["suites"][0]["cases"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap().to_string())
            .collect()
    };
    let new_need = "create configmaps".to_string();
    let before = plan(&["--locked"]);
    assert!(!needs(&before).contains(&new_need), "{:?}", needs(&before));

    let text = std::fs::read_to_string(&lock_path).unwrap();
    let mut lock: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
    let locked = lock["scenarios"][0]["name"].as_str().unwrap().to_string();
    assert!(
        cases(&before).contains(&locked),
        "plan lists the locked scenario {locked:?}: {:?}",
        cases(&before)
    );
    lock["scenarios"][0]["steps"].as_array_mut().unwrap().insert(
        0,
        serde_json::json!({"apply": {"manifest":
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: nightly-marker\ndata:\n  by: lock\n"}}),
    );
    std::fs::write(&lock_path, serde_saphyr::to_string(&lock).unwrap()).unwrap();

    let after = plan(&["--locked"]);
    assert!(needs(&after).contains(&new_need), "{:?}", needs(&after));
    // --scenario narrows the set: the locked scenario alone needs it, a
    // hand-written one alone does not; unknown names are refused.
    assert!(needs(&plan(&["--scenario", &locked])).contains(&new_need));
    let hand = cases(&after)
        .into_iter()
        .find(|n| n != "fixtures" && !n.starts_with("ai: "))
        .expect("a hand-written scenario");
    let alone = plan(&["--scenario", &hand]);
    assert!(!needs(&alone).contains(&new_need), "{:?}", needs(&alone));
    let unknown = c.exec(&common::args(&[
        "plan",
        suite,
        "--kubeconfig",
        &kc,
        "--scenario",
        "nope",
    ]));
    unknown.assert_code(2);
    assert!(
        unknown.stderr.contains("no scenario named \"nope\""),
        "{}",
        unknown.stderr
    );
    // --partition: the shards together plan every scenario once.
    let mut sharded: Vec<String> = ["count:1/2", "count:2/2"]
        .iter()
        .flat_map(|p| cases(&plan(&["--partition", p])))
        .filter(|n| n != "fixtures")
        .collect();
    sharded.sort();
    let mut all: Vec<String> = cases(&after)
        .into_iter()
        .filter(|n| n != "fixtures")
        .collect();
    all.sort();
    assert_eq!(sharded, all);

    let deploy_args = common::args(&[
        "deploy",
        suite,
        "--namespace",
        "hc-night",
        "--kubeconfig",
        &kc,
    ]);
    let yaml = c.exec(&deploy_args);
    yaml.assert_code(0);
    let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(&yaml.stdout).unwrap();
    let role = docs
        .iter()
        .find(|d| d["kind"] == "Role" && d["metadata"]["namespace"] == "scale-chaos")
        .expect("a Role in the suite's namespace");
    let grants = role["rules"].as_array().unwrap().iter().any(|r| {
        r["resources"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x == "configmaps")
            && r["verbs"].as_array().unwrap().iter().any(|x| x == "create")
    });
    assert!(grants, "{role:#}");
    let mut apply = deploy_args.clone();
    apply.push("--apply".into());
    c.exec(&apply).assert_code(0);
    let run = run_rendered_job(&sb, &c, &yaml.stdout, "hc-night", "heatcheck-nightly");
    run.assert_code(0);
    assert!(run.junit().contains(&locked), "{}", run.junit());
}

/// `deploy --regenerate` cannot know tomorrow's scenarios: without
/// `ai.allowedSteps` it is refused; with it, the Role grants exactly that,
/// said in a comment.
#[test]
fn deploy_regenerate_grants_the_allowed_steps_or_refuses() {
    let sb = SandboxProcess::start();
    let c = Case::suite("");
    copy_shipped_suites(c.dir.path());
    let suite = "suites/scale-to-zero/suite.yaml";
    let kc = sb.kubeconfig.to_str().unwrap().to_string();
    let args = common::args(&[
        "deploy",
        suite,
        "-n",
        "hc-night",
        "--kubeconfig",
        &kc,
        "--regenerate",
    ]);
    let refused = c.exec(&args);
    refused.assert_code(2);
    assert!(
        refused.stderr.contains("no allowedSteps"),
        "{}",
        refused.stderr
    );
    assert!(refused.stdout.is_empty(), "{}", refused.stdout);

    let path = c.path(suite);
    let text = std::fs::read_to_string(&path).unwrap();
    let text = text.replacen(
        "  ai:\n",
        "  ai:\n    allowedSteps:\n      - {kind: ConfigMap, steps: [apply]}\n      - {kind: Deployment, steps: [scale, restart]}\n",
        1,
    );
    assert!(text.contains("allowedSteps"), "the suite has an ai block");
    std::fs::write(&path, text).unwrap();
    let yaml = c.exec(&args);
    yaml.assert_code(0);
    assert!(
        yaml.stdout.starts_with("# --regenerate: suite scale-to-zero may generate scenarios that apply ConfigMap, scale/restart Deployment in scale-chaos (ai.allowedSteps)"),
        "{}",
        yaml.stdout
    );
    let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(&yaml.stdout).unwrap();
    let role = docs
        .iter()
        .find(|d| d["kind"] == "Role" && d["metadata"]["namespace"] == "scale-chaos")
        .unwrap();
    let verbs = |res: &str| -> Vec<String> {
        role["rules"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["resources"].as_array().unwrap().iter().any(|x| x == res))
            .flat_map(|r| {
                r["verbs"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_str().unwrap().to_string())
            })
            .collect()
    };
    for v in ["get", "create", "patch", "update", "delete"] {
        assert!(
            verbs("configmaps").contains(&v.to_string()),
            "{v} configmaps: {role:#}"
        );
    }
    assert!(
        verbs("deployments/scale").contains(&"patch".to_string()),
        "{role:#}"
    );
    assert!(verbs("pods").contains(&"list".to_string()), "{role:#}");
}

fn chat_answer(scenario: serde_json::Value) -> fake_provider::Reply {
    let content = serde_json::json!({"scenarios": [scenario]}).to_string();
    fake_provider::Reply::json(
        200,
        serde_json::json!({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 1_700_000_000, "model": "fake-model",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 90, "completion_tokens": 12, "total_tokens": 102}
        }),
    )
}

fn generated(name: &str, steps: serde_json::Value) -> serde_json::Value {
    serde_json::json!({
        "name": name, "description": "generated", "steps": steps,
        "assertions": [{"name": "shop served", "http": {
            "url": "{{gateway \"my-gateway\"}}/shop", "headers": {"Host": "lior.example.com"},
            "eventually": {"within": "10s", "every": "200ms"}, "expect": {"status": 200}}}],
        "metrics": ["5xx rate"], "remediation": ["more replicas"]
    })
}

/// Generation as the nightly ServiceAccount is permission-aware: a
/// candidate the identity cannot execute (SelfSubjectAccessReview) is
/// rejected with that reason and sent back for repair, never locked.
#[test]
fn generation_rejects_a_candidate_the_identity_cannot_run() {
    let sb = SandboxProcess::start();
    let c = Case::suite("").env("FAKE_LLM_KEY", "sk-test");
    copy_shipped_suites(c.dir.path());
    let suite = "suites/scale-to-zero/suite.yaml";
    let kc = sb.kubeconfig.to_str().unwrap().to_string();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let llm = rt.block_on(fake_provider::FakeServer::start(vec![
        chat_answer(generated(
            "config marker",
            serde_json::json!([{"apply": {"manifest":
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: marker\ndata:\n  a: b\n"}}]),
        )),
        chat_answer(generated(
            "two replicas",
            serde_json::json!([
                {"scale": {"name": "infra-backend-v1", "replicas": 2}},
                {"wait": {"kind": "Deployment", "name": "infra-backend-v1", "available": true}}
            ]),
        )),
    ]));
    let path = c.path(suite);
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace(
            "    provider: anthropic\n    model: claude-sonnet-4-20250514\n",
            &format!(
                "    provider: openai\n    model: fake-model\n    baseUrl: {}/v1\n    apiKeyEnv: FAKE_LLM_KEY\n    stream: false\n    allowedSteps:\n      - {{kind: ConfigMap, steps: [apply]}}\n      - {{kind: Deployment, steps: [scale]}}\n",
                llm.url
            ),
        )
        .replace("    count: 2\n", "    count: 1\n");
    assert!(
        text.contains("fake-model") && text.contains("count: 1"),
        "{text}"
    );
    std::fs::write(&path, text).unwrap();
    c.exec(&common::args(&[
        "deploy",
        suite,
        "-n",
        "hc-night",
        "--kubeconfig",
        &kc,
        "--regenerate",
        "--apply",
    ]))
    .assert_code(0);
    // The operator narrowed the Role: no ConfigMaps.
    common::tokio_block(async {
        let roles = Api::<Role>::namespaced(admin(&sb).await, "scale-chaos");
        let mut role = roles.get("heatcheck-nightly").await.unwrap();
        let rules: Vec<_> = role
            .rules
            .take()
            .unwrap_or_default()
            .into_iter()
            .filter(|r| !r.resources.iter().flatten().any(|x| x == "configmaps"))
            .collect();
        role.rules = Some(rules);
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
    let (token, ca, server) = common::tokio_block(common::service_account_token(
        &sb.kubeconfig,
        "hc-night",
        "heatcheck-nightly",
    ));
    let mount = ServiceAccountMount::write(&token, &ca, "hc-night");
    std::fs::write(c.path("sa.kubeconfig"), mount.kubeconfig(&server)).unwrap();
    let out = c.exec(&common::args(&[
        "generate",
        suite,
        "--kubeconfig",
        "sa.kubeconfig",
    ]));
    out.assert_code(0);
    let lock = std::fs::read_to_string(c.path("suites/scale-to-zero/suite.lock.yaml")).unwrap();
    let lock: serde_json::Value = serde_saphyr::from_str(&lock).unwrap();
    let names: Vec<&str> = lock["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
    assert!(names[0].contains("two replicas"), "{names:?}");
    let why = "the running identity cannot get, create, patch, update, delete configmaps in scale-chaos: the run's permission preflight (SelfSubjectAccessReview) would refuse it";
    let rejected = lock["rejected"].to_string();
    assert!(
        rejected.contains("config marker") && rejected.contains(why),
        "{rejected}"
    );
    // The reason went back to the model in the repair request.
    let requests = llm.requests();
    assert_eq!(requests.len(), 2);
    assert!(
        requests[1].body.to_string().contains(why),
        "{}",
        requests[1].body
    );
    drop(llm);
}

/// `deploy --notify`: the webhook URL is a secret. The printed objects name
/// the Secret the CronJob reads it from (HEATCHECK_NOTIFY_URL), never the
/// URL; `--apply` puts the URL into that Secret and prints its name only.
#[test]
fn deploy_notify_keeps_the_url_in_a_secret() {
    let sb = SandboxProcess::start();
    let c = case();
    let url = "https://hooks.example.com/services/T0/B0/s3cr3t-t0ken";
    let flags = ["--notify", url, "--notify-format", "slack"];
    let yaml = deploy(&c, &sb, &flags);
    yaml.assert_code(0);
    assert!(!yaml.stdout.contains("s3cr3t"), "{}", yaml.stdout);
    assert!(!yaml.stderr.contains("s3cr3t"), "{}", yaml.stderr);
    assert!(
        yaml.stdout
            .contains("# --notify: the webhook URLs are not printed; the CronJob reads them from Secret heatcheck/heatcheck-nightly-notify"),
        "{}",
        yaml.stdout
    );
    let cron: serde_json::Value = yaml
        .stdout
        .split("---\n")
        .filter(|d| d.contains("kind: CronJob"))
        .map(|d| serde_saphyr::from_str::<serde_json::Value>(d).unwrap())
        .next()
        .expect("a CronJob");
    let container = &cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0];
    let env = container["env"].as_array().unwrap();
    let notify = env
        .iter()
        .find(|e| e["name"] == "HEATCHECK_NOTIFY_URL")
        .expect("HEATCHECK_NOTIFY_URL in the env");
    assert_eq!(
        notify["valueFrom"]["secretKeyRef"],
        serde_json::json!({"name": "heatcheck-nightly-notify", "key": "url"})
    );
    let args: Vec<&str> = container["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(
        args.windows(2).any(|w| w == ["--notify-format", "slack"]),
        "{args:?}"
    );

    let mut apply = flags.to_vec();
    apply.push("--apply");
    let applied = deploy(&c, &sb, &apply);
    applied.assert_code(0);
    assert!(!applied.stdout.contains("s3cr3t") && !applied.stderr.contains("s3cr3t"));
    assert!(
        applied
            .stdout
            .contains("Secret heatcheck/heatcheck-nightly-notify created"),
        "{}",
        applied.stdout
    );
    let secret = common::tokio_block(async {
        let api: Api<k8s_openapi::api::core::v1::Secret> =
            Api::namespaced(admin(&sb).await, "heatcheck");
        api.get("heatcheck-nightly-notify").await.unwrap()
    });
    let data = secret.data.expect("data");
    assert_eq!(data["url"].0, url.as_bytes());
}
