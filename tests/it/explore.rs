//! `heatcheck explore`: the catalog finds planted weaknesses of several
//! classes on twins, each finding replays as a failing `run`, a namespace
//! built to survive the catalog gives none, and the explored cluster is
//! only read.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::common::fake_provider::{FakeServer, Reply};
use crate::common::heatcheck_in as heatcheck;
use crate::common::{bin, kubectl, SandboxProcess};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/explore")
        .join(name)
        .join("suite.yaml")
}

fn read_json(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).expect("file written")).expect("JSON")
}

/// One explore of the planted namespace with every output asked for
/// (`--lock` too), shared by the tests that read them: the run is most of
/// their time. Each test works on its own copy of the directory.
struct PlantedRun {
    dir: tempfile::TempDir,
    out: crate::common::Outcome,
    /// The body `--notify` POSTed.
    notified: Value,
}

static PLANTED: std::sync::OnceLock<PlantedRun> = std::sync::OnceLock::new();

fn planted_run() -> &'static PlantedRun {
    PLANTED.get_or_init(|| {
        // Under target/: a static is never dropped, and cargo clean takes it.
        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
        copied("planted", dir.path());
        // A finding is a failure: --notify sends the count and the score.
        let rt = tokio::runtime::Runtime::new().unwrap();
        let webhook = rt.block_on(FakeServer::start(vec![Reply::text(200, "ok")]));
        let hook = format!("{}/hooks/s3cr3t", webhook.url);
        let out = heatcheck(
            dir.path(),
            &[
                "explore",
                "suite.yaml",
                "--sandbox",
                "--strategy",
                "catalog",
                "--jobs",
                "6",
                "--lock",
                "--findings",
                "findings.json",
                "--write-suite",
                "replay/suite.yaml",
                "--metrics-file",
                "textfile/explore.prom",
                "--report-html",
                "explore.html",
                "--notify",
                &hook,
            ],
        );
        assert_eq!(
            out.code, 1,
            "findings exit 1\n{}\n{}",
            out.stdout, out.stderr
        );
        let notified = webhook.only_request().body;
        PlantedRun { dir, out, notified }
    })
}

/// The shared run's directory, copied for one test to write in.
fn planted_copy() -> (&'static PlantedRun, tempfile::TempDir) {
    let run = planted_run();
    let dir = tempfile::tempdir().unwrap();
    crate::common::copy_dir(run.dir.path(), dir.path());
    (run, dir)
}

/// `heatcheck run SUITE --sandbox` of replayed findings in `dir`: it fails
/// (exit 1) with one scenario case per finding, returned.
fn replayed(dir: &Path, suite: &[&str], findings: usize) -> Vec<Value> {
    let mut args = vec!["run"];
    args.extend_from_slice(suite);
    args.extend_from_slice(&["--sandbox", "--report-json", "replay.json"]);
    let replay = heatcheck(dir, &args);
    assert_eq!(replay.code, 1, "{}\n{}", replay.stdout, replay.stderr);
    let run = read_json(&dir.join("replay.json"));
    let cases: Vec<Value> = run["suites"][0]["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["kind"] == "scenario")
        .cloned()
        .collect();
    assert_eq!(cases.len(), findings, "{run:#}");
    cases
}

#[test]
fn the_catalog_finds_each_planted_weakness_and_each_finding_replays_as_a_failing_run() {
    let (run, dir) = planted_copy();
    let out = &run.out;
    let report = read_json(&dir.path().join("findings.json"));
    let findings = report["findings"].as_array().unwrap();
    let sent = &run.notified;
    assert_eq!(sent["command"], "explore");
    assert_eq!(sent["outcome"], "failed");
    assert_eq!(sent["explore"]["findings"], findings.len());
    assert_eq!(
        sent["explore"]["resilienceScore"],
        report["resilience"]["score"]
    );
    assert_eq!(
        sent["reports"][0],
        serde_json::json!({"kind": "findings", "path": "findings.json"})
    );
    assert!(!out.stdout.contains("s3cr3t") && !out.stderr.contains("s3cr3t"));
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
    // The score for a nightly trend, as node-exporter's textfile collector
    // reads it (checked by Prometheus's own linter), and as a page.
    let prom = dir.path().join("textfile/explore.prom");
    let metrics = std::fs::read_to_string(&prom).expect("metrics file written");
    let want = format!(
        "heatcheck_resilience_score{{suite=\"explore-planted\",namespace=\"explore-planted\"}} {}.0",
        score["score"]
    );
    assert!(metrics.lines().any(|l| l == want), "{want} in\n{metrics}");
    assert!(
        metrics.contains("heatcheck_resilience_class_survived{suite=\"explore-planted\",namespace=\"explore-planted\",class=\"route-precedence\"} 0.0"),
        "{metrics}"
    );
    crate::common::prometheus::promtool_check("explore_metrics", &prom);
    let html = std::fs::read_to_string(dir.path().join("explore.html")).expect("HTML written");
    assert!(
        html.contains(&format!("Resilience score {}/100", score["score"])),
        "{html}"
    );
    assert_eq!(
        html.matches("<section class=\"finding\">").count(),
        findings.len()
    );
    assert!(
        out.stdout.contains("replay: heatcheck run"),
        "{}",
        out.stdout
    );

    // The written suite replays them: every finding's scenario fails.
    let cases = replayed(dir.path(), &["replay/suite.yaml"], findings.len());
    for c in &cases {
        assert_eq!(c["status"], "failed", "{c:#}");
    }
}

#[test]
fn a_namespace_built_to_survive_the_catalog_gives_no_finding() {
    let dir = tempfile::tempdir().unwrap();
    let suite = copied("healthy", dir.path());
    let out = heatcheck(
        dir.path(),
        &[
            "explore",
            suite.to_str().unwrap(),
            "--sandbox",
            "--jobs",
            "3",
            "--lock",
            "--output",
            "json",
        ],
    );
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    // Nothing found, nothing locked.
    assert!(
        !dir.path().join("suite.lock.yaml").exists(),
        "{}",
        out.stderr
    );
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
fn the_explored_cluster_is_only_read_and_its_steady_state_can_be_kept() {
    let Some(kubectl) = kubectl("the_explored_cluster_is_only_read") else {
        return;
    };
    let manifests =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/explore/healthy/manifests");
    let cluster = SandboxProcess::start_with(&["--manifests", manifests.to_str().unwrap()]);
    let dir = tempfile::tempdir().unwrap();
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
            // No suite: the namespace as it is (the objects live in `default`).
            "--namespace",
            "default",
            "--kubeconfig",
            cluster.kubeconfig.to_str().unwrap(),
            "--max-candidates",
            "4",
            "--jobs",
            "2",
            "--findings",
            "findings.json",
            "--write-suite",
            "kept/suite.yaml",
        ],
    );
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    // The derived steady state, kept as a suite that validates.
    let kept = std::fs::read_to_string(dir.path().join("kept/suite.yaml")).unwrap();
    assert!(
        kept.starts_with("# Written by `heatcheck explore --namespace default`"),
        "{kept}"
    );
    assert!(kept.contains("steadyState:"), "{kept}");
    assert!(kept.contains("shop.example.com"), "{kept}");
    let valid = heatcheck(dir.path(), &["validate", "kept/suite.yaml"]);
    assert_eq!(valid.code, 0, "{}\n{}", valid.stdout, valid.stderr);
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

/// A fixture suite copied into `dir` (its manifests referred to where they
/// are), so what is written beside it (the lockfile) stays in `dir`.
fn copied(name: &str, dir: &Path) -> PathBuf {
    let src = fixture(name);
    let manifests = src.parent().unwrap().join("manifests");
    let text = std::fs::read_to_string(&src)
        .unwrap()
        .replace("manifests/", &format!("{}/", manifests.display()));
    let path = dir.join("suite.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

fn read_lock(p: &Path) -> Value {
    serde_saphyr::from_str(&std::fs::read_to_string(p).expect("lockfile written"))
        .expect("lockfile YAML")
}

#[test]
fn explore_lock_writes_each_finding_to_the_lockfile_and_run_locked_fails_on_each() {
    let (run, dir) = planted_copy();
    let explore = |extra: &[&str]| {
        let mut args = vec![
            "explore",
            "suite.yaml",
            "--sandbox",
            "--strategy",
            "catalog",
            "--jobs",
            "3",
            "--lock",
        ];
        args.extend_from_slice(extra);
        heatcheck(dir.path(), &args)
    };
    let out = &run.out;
    assert!(out.stderr.contains("locked "), "{}", out.stderr);
    let findings = read_json(&dir.path().join("findings.json"));
    let findings = findings["findings"].as_array().unwrap().clone();
    assert!(findings.len() >= 4, "{findings:#?}");
    let lock_path = dir.path().join("suite.lock.yaml");
    let lock = read_lock(&lock_path);
    assert_eq!(lock["kind"], "ScenarioLock");
    // No model was asked: no model fields to pretend otherwise.
    assert!(
        lock.get("provider").is_none() && lock.get("aiBlockHash").is_none(),
        "{lock:#}"
    );
    let entries = lock["explored"].as_array().unwrap();
    assert_eq!(entries.len(), findings.len(), "{lock:#}");
    for f in &findings {
        let e = entries
            .iter()
            .find(|e| e["id"] == f["id"])
            .unwrap_or_else(|| panic!("{} not locked: {lock:#}", f["id"]));
        assert_eq!(e["origin"], "explore");
        assert_eq!(e["class"], f["class"]);
        let name = format!("explore: {}", f["id"].as_str().unwrap());
        assert_eq!(e["scenario"]["name"], name.as_str());
        assert!(
            !e["scenario"]["assertions"].as_array().unwrap().is_empty(),
            "{e:#}"
        );
    }
    // The outage is seen by probes only: the locked scenario carries them.
    let solo = entries
        .iter()
        .find(|e| e["id"] == "pod-kill-one/Deployment/explore-planted/backend-solo")
        .expect("the single-pod finding is locked");
    let probes = solo["scenario"]["probes"].as_array().expect("own probes");
    assert!(
        probes
            .iter()
            .any(|p| p["name"].as_str().unwrap().contains("/solo")
                && p["expect"]["successRate"] == ">= 0.99"),
        "{solo:#}"
    );
    // The suite and its lock are valid for validate and plan.
    let valid = heatcheck(dir.path(), &["validate", "suite.yaml"]);
    assert_eq!(valid.code, 0, "{}\n{}", valid.stdout, valid.stderr);
    let plan = heatcheck(dir.path(), &["plan", "suite.yaml", "--sandbox", "--locked"]);
    assert_eq!(plan.code, 0, "{}\n{}", plan.stdout, plan.stderr);
    assert!(
        plan.stdout
            .contains("explore: pod-kill-one/Deployment/explore-planted/backend-solo"),
        "{}",
        plan.stdout
    );

    // CI replays them: each fails, the outage one through its own probes.
    let cases = replayed(dir.path(), &["suite.yaml", "--locked"], findings.len());
    for c in &cases {
        assert_eq!(c["origin"], "lock", "{c:#}");
        assert_eq!(c["status"], "failed", "{c:#}");
    }
    let solo_case = cases
        .iter()
        .find(|c| c["name"] == "explore: pod-kill-one/Deployment/explore-planted/backend-solo")
        .expect("the single-pod scenario ran");
    // Its assertions pass once the pod is back: the probe is what fails.
    assert!(
        solo_case["assertions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["passed"] == false && a["name"].as_str().unwrap().starts_with("probe ")),
        "{solo_case:#}"
    );

    // Locking again replaces by id: no duplicate, and entries this run
    // did not reach are kept.
    let again = explore(&["--max-candidates", "2"]);
    assert_eq!(again.code, 1, "{}\n{}", again.stdout, again.stderr);
    assert!(again.stderr.contains("replaced"), "{}", again.stderr);
    let lock = read_lock(&lock_path);
    let ids: Vec<&str> = lock["explored"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(ids.len(), findings.len(), "{ids:?}");
    assert_eq!(unique.len(), ids.len(), "{ids:?}");
}

#[test]
fn explore_lock_is_refused_without_a_suite_or_a_writable_lockfile() {
    let dir = tempfile::tempdir().unwrap();
    copied("planted", dir.path());
    let out = heatcheck(
        dir.path(),
        &[
            "explore",
            "--namespace",
            "shop",
            "--kubeconfig",
            "nowhere",
            "--lock",
        ],
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("--namespace has no suite"),
        "{}",
        out.stderr
    );
    // The lock is written through suite.lock.yaml.tmp: make that impossible.
    std::fs::create_dir(dir.path().join("suite.lock.yaml.tmp")).unwrap();
    let out = heatcheck(
        dir.path(),
        &["explore", "suite.yaml", "--sandbox", "--lock"],
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("--lock: cannot write the lockfile"),
        "{}",
        out.stderr
    );
    assert!(
        !out.stderr.contains("exploring"),
        "refused before any twin: {}",
        out.stderr
    );
    std::fs::remove_dir(dir.path().join("suite.lock.yaml.tmp")).unwrap();
    // A lockfile that does not parse is not overwritten.
    std::fs::write(
        dir.path().join("suite.lock.yaml"),
        "apiVersion: v1\nkind: Nope\n",
    )
    .unwrap();
    let out = heatcheck(
        dir.path(),
        &["explore", "suite.yaml", "--sandbox", "--lock"],
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("not a valid lockfile"),
        "{}",
        out.stderr
    );
}

/// The planted suite, copied with an `ai` block that points at `url`.
fn planted_with_model(dir: &Path, url: &str) -> PathBuf {
    let src = fixture("planted");
    let manifests = src.parent().unwrap().join("manifests");
    let text = std::fs::read_to_string(&src)
        .unwrap()
        .replace("manifests/", &format!("{}/", manifests.display()))
        .replace(
            "  scenarios: []\n",
            &format!(
                "  scenarios: []\n  ai:\n    provider: openai\n    model: fake-model\n    baseUrl: {url}\n    apiKeyEnv: FAKE_LLM_KEY\n    maxRepairs: 0\n    count: 3\n    context: [{{kind: HTTPRoute}}, {{kind: Service}}, {{kind: Deployment}}]\n    prompt: |\n      My objects: {{{{yaml context}}}}\n      Give me {{{{count}}}} scenarios.\n"
            ),
        );
    let path = dir.join("suite.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn the_model_is_told_the_policy_and_every_earlier_result_and_what_it_proposes_runs_only_on_twins() {
    use crate::ai_generate::FakeLlm;
    use serde_json::json;
    let Some(kubectl) = kubectl("the_model_is_told_the_policy") else {
        return;
    };
    let kill_solo = json!({
        "name": "kill the only solo pod",
        "description": "one pod of backend-solo dies",
        "steps": [{"fault": {"type": "podKill", "selector": "app=backend-solo", "duration": "4s"}}],
        "assertions": [{"name": "solo answers", "http": {"url": "{{gateway \"gw\"}}/solo", "headers": {"Host": "shop.example.com"}, "eventually": {"within": "10s", "every": "200ms"}, "expect": {"status": 200}}}],
        "remediation": ["run two replicas of backend-solo"]
    });
    let out_of_policy = json!({
        "name": "break coredns",
        "steps": [{"delete": {"kind": "ConfigMap", "name": "coredns", "namespace": "kube-system"}}],
        "assertions": [{"name": "x", "http": {"url": "{{gateway \"gw\"}}/shop", "headers": {"Host": "shop.example.com"}, "expect": {"status": 200}}}]
    });
    let invalid = json!({
        "name": "explode the gateway",
        "steps": [{"explode": {"kind": "Gateway", "name": "gw"}}],
        "assertions": [{"name": "x", "http": {"url": "{{gateway \"gw\"}}/shop", "expect": {"status": 200}}}]
    });
    let llm = FakeLlm::start(vec![
        json!({"scenarios": [kill_solo, out_of_policy, invalid]}),
        json!({"scenarios": []}),
    ]);
    // The cluster explore reads (and must leave as it was): empty but for
    // what the sandbox starts with; the fixtures run on the twins only.
    let cluster = SandboxProcess::start();
    let before = versions(&kubectl, &cluster.kubeconfig);
    let dir = tempfile::tempdir().unwrap();
    let suite = planted_with_model(dir.path(), &llm.url);
    let out = Command::new(bin())
        .current_dir(dir.path())
        .args([
            "explore",
            suite.to_str().unwrap(),
            "--kubeconfig",
            cluster.kubeconfig.to_str().unwrap(),
            "--strategy",
            "ai",
            "--rounds",
            "2",
            "--findings",
            "findings.json",
            "--output",
            "json",
        ])
        .env("NO_COLOR", "1")
        .env("FAKE_LLM_KEY", "sk-fake-test-key")
        .output()
        .expect("run heatcheck");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "a finding exits 1\n{stderr}");
    let report = read_json(&dir.path().join("findings.json"));
    // Only the valid proposal ran (on a twin); the other two were refused
    // by the checks before anything ran.
    assert_eq!(report["candidates"], 1, "{report:#}");
    assert!(report["refused"].as_u64().unwrap() >= 2, "{report:#}");
    let findings = report["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 1, "{report:#}");
    let f = &findings[0];
    assert_eq!(f["origin"], "ai");
    // The class is read off what the scenario changes, not the model's words;
    // the podKill's selector names the Deployment it selects, as the catalog's.
    assert_eq!(f["class"], "single-pod");
    assert_eq!(
        f["objects"],
        json!(["Deployment/explore-planted/backend-solo"])
    );
    assert!(f["remediation"][0]
        .as_str()
        .unwrap()
        .contains("two replicas"));
    assert!(
        report["tokens"]["input"].as_u64().unwrap() >= 200,
        "{report:#}"
    );
    // JSON progress events on stderr.
    assert!(stderr.contains(r#""event":"asking""#), "{stderr}");

    let requests = llm.requests();
    assert_eq!(requests.len(), 2, "one request per round (maxRepairs 0)");
    let user = FakeLlm::user_text;
    let first = user(&requests[0]);
    for want in [
        "round 1",
        "maxPodsAffected: 50%",
        "namespaces that may be changed: default, explore-planted",
        "oldest metadata.creationTimestamp wins",
        "one-second resolution",
        "single-pod:",
        "None yet.",
    ] {
        assert!(first.contains(want), "round 1 lacks {want:?}:\n{first}");
    }
    let second = user(&requests[1]);
    for want in [
        "round 2",
        "maxPodsAffected: 50%",
        // What ran, with its verdict and evidence ...
        "\"ai: kill the only solo pod\" [single-pod, yours]: failed",
        "of outage",
        // ... and what was refused, with the reason.
        "\"break coredns\" [other, yours]: refused",
        "kube-system",
        "\"explode the gateway\" [other, yours]: refused",
        "Already found weak: single-pod",
    ] {
        assert!(second.contains(want), "round 2 lacks {want:?}:\n{second}");
    }
    // The cluster that was read is exactly as it was.
    assert_eq!(before, versions(&kubectl, &cluster.kubeconfig));
}

#[test]
fn what_explore_cannot_judge_is_an_error_with_its_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        std::fs::write(dir.path().join(name), text).unwrap();
    };
    // A namespace with no route: nothing to keep healthy.
    write(
        "noroute.yaml",
        "apiVersion: heatcheck.dev/v1alpha1\nkind: Suite\nmetadata: {name: noroute}\nspec:\n  target: {namespace: empty}\n  scenarios: []\n",
    );
    let out = heatcheck(dir.path(), &["explore", "noroute.yaml", "--sandbox"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("noroute.yaml: no HTTPRoute in namespace empty"),
        "{}",
        out.stderr
    );
    let planted = fixture("planted");
    let planted = planted.to_str().unwrap();
    let out = heatcheck(
        dir.path(),
        &["explore", planted, "--sandbox", "--min-success-rate", "2"],
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("--min-success-rate"), "{}", out.stderr);
    // The model strategies need a model.
    let out = heatcheck(
        dir.path(),
        &["explore", planted, "--sandbox", "--strategy", "ai"],
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("has no `ai` block"), "{}", out.stderr);
    let out = heatcheck(dir.path(), &["explore", "missing.yaml", "--sandbox"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    // --namespace reads a cluster; a fresh sandbox has nothing to read.
    let out = heatcheck(dir.path(), &["explore", "--namespace", "shop", "--sandbox"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("give --kubeconfig"), "{}", out.stderr);
    let out = heatcheck(dir.path(), &["explore", "--sandbox"]);
    assert_eq!(
        out.code, 2,
        "a suite or --namespace is required: {}",
        out.stderr
    );
    // A cluster that does not answer is exit 3, before any twin starts.
    write(
        "kubeconfig",
        "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'http://127.0.0.1:9'}}]\nusers: [{name: u, user: {token: t}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n",
    );
    let out = heatcheck(
        dir.path(),
        &["explore", planted, "--kubeconfig", "kubeconfig"],
    );
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(!dir.path().join("findings.json").exists());
}

#[test]
fn a_namespace_failing_before_any_change_is_not_explored() {
    let dir = tempfile::tempdir().unwrap();
    // The route's backend Service does not exist: the steady state fails
    // on the baseline, so no candidate could be judged.
    std::fs::write(
        dir.path().join("base.yaml"),
        "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: gw}\nspec:\n  gatewayClassName: heatcheck\n  listeners: [{name: http, protocol: HTTP, port: 80}]\n---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r}\nspec:\n  parentRefs: [{name: gw}]\n  hostnames: [a.example.com]\n  rules:\n    - matches: [{path: {type: PathPrefix, value: /a}}]\n      backendRefs: [{name: missing, port: 8080}]\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("suite.yaml"),
        "apiVersion: heatcheck.dev/v1alpha1\nkind: Suite\nmetadata: {name: unhealthy}\nspec:\n  target: {namespace: unhealthy, createNamespace: true}\n  fixtures:\n    - apply: {file: base.yaml}\n  scenarios: []\n",
    )
    .unwrap();
    let out = heatcheck(
        dir.path(),
        &[
            "explore",
            "suite.yaml",
            "--sandbox",
            "--findings",
            "findings.json",
        ],
    );
    assert_eq!(out.code, 2, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stderr
            .contains("does not hold on the twin before any change"),
        "{}",
        out.stderr
    );
    assert!(!dir.path().join("findings.json").exists());
}

#[test]
fn a_model_that_cannot_be_reached_is_exit_3_when_it_alone_was_to_explore() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens on port 9.
    let suite = planted_with_model(dir.path(), "http://127.0.0.1:9/v1");
    let out = Command::new(bin())
        .current_dir(dir.path())
        .args([
            "explore",
            suite.to_str().unwrap(),
            "--sandbox",
            "--strategy",
            "ai",
            "--rounds",
            "1",
            "--findings",
            "findings.json",
        ])
        .env("NO_COLOR", "1")
        .env("FAKE_LLM_KEY", "sk-fake-test-key")
        .output()
        .expect("run heatcheck");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("127.0.0.1:9"), "{stderr}");
    assert!(!dir.path().join("findings.json").exists());
}
