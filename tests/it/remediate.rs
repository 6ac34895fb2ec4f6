//! `heatcheck remediate`: the catalog's fixes for the planted namespace's
//! findings are verified on twins, `--fix` writes them (only the changed
//! documents), and `explore` afterwards finds none of the fixed weaknesses;
//! a fix that breaks another scenario of the suite is rejected with that
//! reason; `--fix` refuses a dirty tree.
//!
//! The findings are tests/fixtures/explore/planted/findings.json, written by
//! `heatcheck explore tests/fixtures/explore/planted/suite.yaml --sandbox
//! --findings ...`; remediate runs each finding on a twin first, so a stale
//! file fails these tests rather than passing them.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::common::heatcheck_in as heatcheck;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/explore")
}

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .current_dir(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
        .args(args)
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The planted fixture copied to `dir/planted`, committed in a fresh git repository.
fn planted_copy(dir: &Path, commit: bool) -> PathBuf {
    let to = dir.join("planted");
    std::fs::create_dir_all(to.join("manifests")).unwrap();
    let from = fixtures().join("planted");
    std::fs::copy(from.join("suite.yaml"), to.join("suite.yaml")).unwrap();
    for f in ["base.yaml", "duplicate.yaml", "other-namespace.yaml"] {
        std::fs::copy(from.join("manifests").join(f), to.join("manifests").join(f)).unwrap();
    }
    if commit {
        git(dir, &["init", "-q"]);
        git(dir, &["add", "."]);
        git(dir, &["commit", "-qm", "planted"]);
    }
    to.join("suite.yaml")
}

fn findings_file() -> String {
    fixtures()
        .join("planted/findings.json")
        .display()
        .to_string()
}

fn by_class<'a>(report: &'a Value, class: &str) -> &'a Value {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["class"] == class)
        .unwrap_or_else(|| panic!("no {class} finding in {report:#}"))
}

#[test]
fn the_catalog_fixes_the_planted_weaknesses_and_explore_then_finds_none_of_them() {
    let dir = tempfile::tempdir().unwrap();
    let suite = planted_copy(dir.path(), true);
    let suite = suite.to_str().unwrap();
    let findings = findings_file();
    let out = heatcheck(
        dir.path(),
        &[
            "remediate",
            suite,
            "--findings",
            &findings,
            "--sandbox",
            "--fix",
            "--jobs",
            "3",
            "--output",
            "json",
        ],
    );
    // The lost ReferenceGrant has no fix in the objects: some finding is unfixed.
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    let report: Value = serde_json::from_str(&out.stdout).expect("JSON report");
    for (class, fix) in [
        (
            "route-precedence",
            "distinct-hostname/HTTPRoute/explore-planted/my-route",
        ),
        (
            "single-pod",
            "replicas-pdb-2/Deployment/explore-planted/backend-solo",
        ),
        (
            "timeout-budget",
            "timeout-1s/Deployment/explore-planted/backend-v1",
        ),
    ] {
        let f = by_class(&report, class);
        assert_eq!(f["status"], "fixed", "{f:#}\n{}", out.stderr);
        assert_eq!(f["fixes"][0]["id"], fix, "fewest fields first: {f:#}");
        let fields: Vec<u64> = f["fixes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["fields"].as_u64().unwrap())
            .collect();
        assert!(fields.windows(2).all(|w| w[0] <= w[1]), "{fields:?}");
    }
    let grant = by_class(&report, "cross-namespace-grant");
    assert_eq!(grant["status"], "unfixed");
    assert!(grant["fixes"].as_array().unwrap().is_empty());
    assert!(
        grant["notes"][0].as_str().unwrap().contains("dependency"),
        "{grant:#}"
    );
    assert_eq!(
        grant["steadyStateChecks"][0]["present"]["kind"],
        "ReferenceGrant"
    );
    assert_eq!(report["combined"]["verdict"], "verified", "{report:#}");
    assert_eq!(
        report["written"],
        serde_json::json!(["manifests/base.yaml", "manifests/duplicate.yaml"])
    );
    assert!(report["secondsPerVerifiedFix"].as_f64().unwrap() > 0.0);

    // Only the changed documents differ; the untouched file is byte-identical.
    let planted = fixtures().join("planted/manifests");
    let copy = dir.path().join("planted/manifests");
    let read = |p: PathBuf| std::fs::read_to_string(p).unwrap();
    assert_eq!(
        read(copy.join("other-namespace.yaml")),
        read(planted.join("other-namespace.yaml"))
    );
    let (old, new) = (
        read(planted.join("base.yaml")),
        read(copy.join("base.yaml")),
    );
    let old_docs: Vec<&str> = old.split("\n---\n").collect();
    let new_docs: Vec<&str> = new.split("\n---\n").collect();
    let kept = old_docs.iter().filter(|d| new_docs.contains(d)).count();
    // fast-route's timeout and backend-solo's replicas changed; a PDB added.
    assert_eq!(kept, old_docs.len() - 2, "{new}");
    assert_eq!(new_docs.len(), old_docs.len() + 1, "{new}");
    insta::assert_snapshot!(report["diff"].as_str().unwrap());

    // What was fixed is found no more, and the steady state holds (explore
    // exits 2 when its baseline fails).
    let out = heatcheck(
        dir.path(),
        &[
            "explore",
            suite,
            "--sandbox",
            "--jobs",
            "6",
            "--findings",
            "after.json",
        ],
    );
    assert_eq!(
        out.code, 1,
        "only the grant is left\n{}\n{}",
        out.stdout, out.stderr
    );
    let after: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("after.json")).unwrap())
            .unwrap();
    let ids: Vec<&str> = after["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        ["referencegrant-removal/ReferenceGrant/default/allow-routes"],
        "{}",
        out.stderr
    );
}

#[test]
fn a_fix_that_breaks_another_scenario_is_rejected_with_that_reason() {
    let dir = tempfile::tempdir().unwrap();
    // Only the single-pod finding: its fixes scale backend-solo, which the
    // pinned suite's scenario forbids.
    let mut findings: Value =
        serde_json::from_str(&std::fs::read_to_string(findings_file()).unwrap()).unwrap();
    findings["findings"]
        .as_array_mut()
        .unwrap()
        .retain(|f| f["class"] == "single-pod");
    let path = dir.path().join("findings.json");
    std::fs::write(&path, findings.to_string()).unwrap();
    let suite = fixtures().join("pinned/suite.yaml");
    let out = heatcheck(
        dir.path(),
        &[
            "remediate",
            suite.to_str().unwrap(),
            "--findings",
            path.to_str().unwrap(),
            "--sandbox",
            "--diff",
        ],
    );
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("no verified fix"), "{}", out.stdout);
    let rejected: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.trim_start().starts_with("rejected:"))
        .collect();
    assert_eq!(rejected.len(), 2, "{}", out.stdout);
    for r in rejected {
        assert!(
            r.contains("breaks scenario \"backend-solo runs exactly one replica\", which passed before, now failed"),
            "{r}"
        );
    }
    // Nothing verified, nothing offered.
    assert!(!out.stdout.contains("--- a/"), "{}", out.stdout);
}

#[test]
fn fix_refuses_uncommitted_manifests_and_input_errors_are_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let suite = planted_copy(dir.path(), true);
    let base = dir.path().join("planted/manifests/base.yaml");
    let edited = format!(
        "{}# a local edit\n",
        std::fs::read_to_string(&base).unwrap()
    );
    std::fs::write(&base, &edited).unwrap();
    let findings = findings_file();
    let s = suite.to_str().unwrap();
    let out = heatcheck(
        dir.path(),
        &[
            "remediate",
            s,
            "--findings",
            &findings,
            "--sandbox",
            "--fix",
        ],
    );
    assert_eq!(out.code, 2, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("uncommitted changes") && out.stderr.contains("base.yaml"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("--allow-dirty"), "{}", out.stderr);
    assert_eq!(std::fs::read_to_string(&base).unwrap(), edited);

    // Outside git there is no telling: refused too.
    let bare = tempfile::tempdir().unwrap();
    let suite2 = planted_copy(bare.path(), false);
    let out = heatcheck(
        bare.path(),
        &[
            "remediate",
            suite2.to_str().unwrap(),
            "--findings",
            &findings,
            "--sandbox",
            "--fix",
        ],
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("--allow-dirty"), "{}", out.stderr);

    let healthy = fixtures().join("healthy/suite.yaml");
    let out = heatcheck(
        dir.path(),
        &[
            "remediate",
            healthy.to_str().unwrap(),
            "--findings",
            &findings,
            "--sandbox",
        ],
    );
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .contains("the findings are of namespace explore-planted"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_failing_scenario_of_the_suite_is_input_too() {
    let dir = tempfile::tempdir().unwrap();
    let suite = fixtures().join("replay/suite.yaml");
    let out = heatcheck(
        dir.path(),
        &[
            "remediate",
            suite.to_str().unwrap(),
            "--scenario",
            "explore: kill one pod of Deployment backend-solo",
            "--sandbox",
            "--output",
            "json",
        ],
    );
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let report: Value = serde_json::from_str(&out.stdout).expect("JSON report");
    let f = by_class(&report, "single-pod");
    assert_eq!(
        f["id"],
        "pod-kill-one/Deployment/explore-planted/backend-solo"
    );
    assert_eq!(f["status"], "fixed", "{f:#}");
    assert!(
        report["diff"]
            .as_str()
            .unwrap()
            .contains("+++ b/../planted/manifests/base.yaml\n"),
        "{report:#}"
    );
    let fix = &f["fixes"][0];
    assert!(
        fix["diff"].as_str().unwrap().contains("+  replicas: 2\n"),
        "each fix carries its own diff: {fix:#}"
    );

    // The verified fix beside the failure: in the playbook ...
    std::fs::write(dir.path().join("rem.json"), &out.stdout).unwrap();
    let book = heatcheck(
        dir.path(),
        &[
            "playbook",
            suite.to_str().unwrap(),
            "--remediation",
            "rem.json",
        ],
    );
    assert_eq!(book.code, 0, "{}", book.stderr);
    let at = book
        .stdout
        .find("**Verified fix:**")
        .unwrap_or_else(|| panic!("{}", book.stdout));
    assert!(
        book.stdout[at..].contains(fix["title"].as_str().unwrap())
            && book.stdout[at..].contains("```diff\n--- a/../planted/manifests/base.yaml"),
        "{}",
        &book.stdout[at..]
    );
    // ... and in the HTML report of a run, beside the scenario.
    let run = heatcheck(
        dir.path(),
        &[
            "run",
            suite.to_str().unwrap(),
            "--sandbox",
            "--report-json",
            "run.json",
        ],
    );
    // The suite alone has no probes: its assertion recovers within 10 s,
    // so the run may pass; the outage was explore's probes' finding.
    assert!(matches!(run.code, 0 | 1), "{}", run.stderr);
    let html = heatcheck(
        dir.path(),
        &[
            "report",
            "run.json",
            "--html",
            "run.html",
            "--remediation",
            "rem.json",
        ],
    );
    assert_eq!(html.code, 0, "{}", html.stderr);
    let page = std::fs::read_to_string(dir.path().join("run.html")).unwrap();
    assert!(
        page.contains("<h4>Verified fix</h4>")
            && page.contains("<span class=\"add\">+  replicas: 2</span>"),
        "{page}"
    );
    // Not a remediation report: a clear error.
    let bad = heatcheck(
        dir.path(),
        &[
            "report",
            "run.json",
            "--html",
            "x.html",
            "--remediation",
            "run.json",
        ],
    );
    assert_eq!(bad.code, 2);
    assert!(
        bad.stderr
            .contains("not a report of `heatcheck remediate --output json`"),
        "{}",
        bad.stderr
    );
    let out = heatcheck(
        dir.path(),
        &[
            "remediate",
            suite.to_str().unwrap(),
            "--scenario",
            "nope",
            "--sandbox",
        ],
    );
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("no such scenario") && out.stderr.contains("kill one pod"),
        "{}",
        out.stderr
    );
}

/// A one-replica backend in a "real" cluster (a `heatcheck sandbox`
/// process), with nothing in files.
const CLUSTER_ONLY: &str = "apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  gatewayClassName: sandbox
  listeners: [{name: http, protocol: HTTP, port: 80, allowedRoutes: {namespaces: {from: Same}}}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: solo, labels: {app: solo}}
spec:
  replicas: 1
  selector: {matchLabels: {app: solo}}
  template:
    metadata: {labels: {app: solo}}
    spec:
      containers:
        - name: echo
          image: gcr.io/k8s-staging-gateway-api/echo-basic:v20231214-v1.0.0-140-gf544a46e
          ports: [{containerPort: 3000}]
          readinessProbe: {httpGet: {path: /, port: 3000}, initialDelaySeconds: 2, periodSeconds: 1}
---
apiVersion: v1
kind: Service
metadata: {name: solo}
spec:
  selector: {app: solo}
  ports: [{protocol: TCP, port: 8080, targetPort: 3000}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: solo}
spec:
  parentRefs: [{name: gw}]
  hostnames: [solo.example.com]
  rules:
    - matches: [{path: {type: PathPrefix, value: /solo}}]
      backendRefs: [{name: solo, port: 8080}]
";

#[test]
fn a_fix_to_an_object_only_in_the_cluster_is_server_side_apply_yaml_and_the_cluster_is_only_read() {
    let Some(kubectl) = crate::common::kubectl("remediate_cluster_only") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let manifests = dir.path().join("cluster.yaml");
    std::fs::write(&manifests, CLUSTER_ONLY).unwrap();
    let cluster =
        crate::common::SandboxProcess::start_with(&["--manifests", manifests.to_str().unwrap()]);
    std::fs::write(
        dir.path().join("suite.yaml"),
        "apiVersion: heatcheck.dev/v1alpha1\nkind: Suite\nmetadata: {name: remediate-real}\nspec:\n  target: {namespace: default}\n  scenarios: []\n",
    )
    .unwrap();
    // The finding as explore writes it (remediate asks its catalog entry again).
    let finding = serde_json::json!({
        "suite": "remediate-real", "namespace": "default", "candidates": 1, "refused": 0,
        "skipped": 0, "durationSeconds": 1.0, "tokens": {"input": 0, "output": 0},
        "resilience": {"score": 0, "survived": [], "failed": ["single-pod"]},
        "findings": [{
            "id": "pod-kill-one/Deployment/default/solo", "title": "kill one pod of Deployment solo",
            "class": "single-pod", "severity": "outage", "objects": ["Deployment/default/solo"],
            "scenario": {"name": "explore: kill one pod of Deployment solo",
                "steps": [{"fault": {"type": "podKill", "selector": "app=solo", "percent": 100, "duration": "4s"}}],
                "assertions": []},
            "evidence": [], "outageSeconds": 1.0, "remediation": [], "flaky": false, "origin": "catalog",
        }],
    });
    std::fs::write(dir.path().join("findings.json"), finding.to_string()).unwrap();
    let wait = Command::new(&kubectl)
        .args([
            "--kubeconfig",
            cluster.kubeconfig.to_str().unwrap(),
            "wait",
            "--for=condition=Available",
            "deployment/solo",
            "--timeout=60s",
        ])
        .output()
        .unwrap();
    assert!(
        wait.status.success(),
        "{}",
        String::from_utf8_lossy(&wait.stderr)
    );
    let before = crate::explore::versions(&kubectl, &cluster.kubeconfig);
    let out = heatcheck(
        dir.path(),
        &[
            "remediate",
            "suite.yaml",
            "--findings",
            "findings.json",
            "--kubeconfig",
            cluster.kubeconfig.to_str().unwrap(),
        ],
    );
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("fixed"), "{}", out.stdout);
    // Nothing in files: no diff, the changed and the new object as SSA YAML.
    assert!(!out.stdout.contains("--- a/"), "{}", out.stdout);
    assert!(
        out.stdout
            .contains("# Deployment/default/solo lives only in the cluster")
            && out.stdout.contains("replicas: 2")
            && out
                .stdout
                .contains("# PodDisruptionBudget/default/solo lives only in the cluster")
            && out.stdout.contains(
                "kubectl apply --server-side --field-manager=heatcheck-remediate -f - <<'EOF'"
            ),
        "{}",
        out.stdout
    );
    // Verified on twins seeded from what was read; the cluster itself unchanged.
    assert_eq!(
        before,
        crate::explore::versions(&kubectl, &cluster.kubeconfig)
    );
}

#[test]
fn a_recreate_rollout_gets_a_surge_only_strategy_on_its_own_line_and_explore_then_finds_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let to = dir.path().join("rollout");
    std::fs::create_dir_all(to.join("manifests")).unwrap();
    let from = fixtures().join("rollout");
    std::fs::copy(from.join("suite.yaml"), to.join("suite.yaml")).unwrap();
    std::fs::copy(
        from.join("manifests/web.yaml"),
        to.join("manifests/web.yaml"),
    )
    .unwrap();
    git(dir.path(), &["init", "-q"]);
    git(dir.path(), &["add", "."]);
    git(dir.path(), &["commit", "-qm", "rollout"]);
    let findings = from.join("findings.json");
    let out = heatcheck(
        dir.path(),
        &[
            "remediate",
            "rollout/suite.yaml",
            "--findings",
            findings.to_str().unwrap(),
            "--sandbox",
            "--diff",
            "--fix",
        ],
    );
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .contains("fix:      Deployment web: maxUnavailable 0, maxSurge 1 (3 field(s)"),
        "{}",
        out.stdout
    );
    // The flow mapping is edited where it is written, nothing else moves.
    assert!(
        out.stdout.contains(
            "-  strategy: {type: Recreate}\n+  strategy: {type: RollingUpdate, rollingUpdate: {maxUnavailable: 0, maxSurge: 1}}\n"
        ),
        "{}",
        out.stdout
    );
    let changed = |sign: char| {
        out.stdout
            .lines()
            .filter(|l| l.starts_with(sign) && !l.starts_with(&sign.to_string().repeat(3)))
            .count()
    };
    assert_eq!((changed('-'), changed('+')), (1, 1), "{}", out.stdout);
    let out = heatcheck(
        dir.path(),
        &["explore", "rollout/suite.yaml", "--sandbox", "--jobs", "3"],
    );
    assert_eq!(
        out.code, 0,
        "no finding left\n{}\n{}",
        out.stdout, out.stderr
    );
}

#[test]
fn a_fix_the_policy_refuses_is_rejected_and_the_budget_stops_verification() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = "explore: kill one pod of Deployment backend-solo";
    // deniedKinds: [PodDisruptionBudget]: both single-pod fixes add one.
    let denied = fixtures().join("replay/denied.yaml");
    let out = heatcheck(
        dir.path(),
        &[
            "remediate",
            denied.to_str().unwrap(),
            "--scenario",
            scenario,
            "--sandbox",
            "--output",
            "json",
        ],
    );
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    let report: Value = serde_json::from_str(&out.stdout).expect("JSON report");
    let f = by_class(&report, "single-pod");
    assert_eq!(f["status"], "unfixed");
    let rejected = f["rejected"].as_array().unwrap();
    assert_eq!(rejected.len(), 2, "{f:#}");
    for r in rejected {
        let why = r["reason"].as_str().unwrap();
        assert!(
            why.starts_with("refused by policy: ")
                && why.contains("PodDisruptionBudget is in the policy's denied kinds"),
            "{why}"
        );
    }
    // A budget spent before the first candidate: nothing verified, said so.
    let replay = fixtures().join("replay/suite.yaml");
    let out = heatcheck(
        dir.path(),
        &[
            "remediate",
            replay.to_str().unwrap(),
            "--scenario",
            scenario,
            "--sandbox",
            "--budget",
            "1ms",
            "--output",
            "json",
        ],
    );
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    let report: Value = serde_json::from_str(&out.stdout).expect("JSON report");
    assert_eq!(by_class(&report, "single-pod")["status"], "not-tried");
    assert_eq!(report["candidates"], 0);
}

/// The replay suite that denies PodDisruptionBudgets (so the catalog's
/// single-pod fixes are refused on their twins), copied with an `ai` block
/// that points at `url`.
fn denied_with_model(dir: &Path, url: &str) -> PathBuf {
    let manifests = fixtures().join("planted/manifests");
    let text = std::fs::read_to_string(fixtures().join("replay/denied.yaml"))
        .unwrap()
        .replace("../planted/manifests/", &format!("{}/", manifests.display()))
        .replace(
            "  scenarios:\n",
            &format!(
                "  ai:\n    provider: openai\n    model: fake-model\n    baseUrl: {url}\n    apiKeyEnv: FAKE_LLM_KEY\n    maxRepairs: 1\n    prompt: unused by remediate\n  scenarios:\n"
            ),
        );
    let path = dir.join("suite.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn the_model_is_asked_for_what_the_catalog_did_not_fix_and_only_its_valid_fix_is_verified() {
    use crate::ai_generate::FakeLlm;
    use serde_json::json;
    let invalid = json!({"title": "explode the pod", "changes": [
        {"op": "explode", "object": "Deployment/explore-planted/backend-solo"}]});
    let out_of_policy = json!({"title": "a budget in kube-system", "changes": [
        {"op": "add", "manifest": {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": "solo", "namespace": "kube-system"},
            "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "backend-solo"}}}}}]});
    let valid = json!({"title": "three replicas", "changes": [
        {"op": "set", "object": "Deployment/explore-planted/backend-solo",
            "fields": [{"path": "/spec/replicas", "value": 3}]}]});
    let llm = FakeLlm::start(vec![
        json!({"fixes": [invalid, out_of_policy, valid]}),
        // The repair: nothing more to offer.
        json!({"fixes": []}),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let suite = denied_with_model(dir.path(), &llm.url);
    let out = Command::new(crate::common::bin())
        .current_dir(dir.path())
        .args([
            "remediate",
            suite.to_str().unwrap(),
            "--scenario",
            "explore: kill one pod of Deployment backend-solo",
            "--sandbox",
            "--strategy",
            "both",
            "--diff",
            "--output",
            "json",
        ])
        .env("NO_COLOR", "1")
        .env("FAKE_LLM_KEY", "sk-fake-test-key")
        .output()
        .expect("run heatcheck");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(!format!("{stdout}{stderr}").contains("sk-fake-test-key"));
    let report: Value = serde_json::from_str(&stdout).expect("JSON report");
    assert_eq!(report["strategy"], "both");
    let f = by_class(&report, "single-pod");
    assert_eq!(f["status"], "fixed", "{f:#}");
    // The catalog's two fixes add a PodDisruptionBudget: refused on their twins.
    let rejected = f["rejected"].as_array().unwrap();
    assert_eq!(rejected.len(), 2, "{f:#}");
    assert!(rejected.iter().all(|r| r["origin"] == "catalog"));
    // Of the model's three, only the valid one ran, and it was verified.
    let fixes = f["fixes"].as_array().unwrap();
    assert_eq!(fixes.len(), 1, "{f:#}");
    assert_eq!(fixes[0]["origin"], "ai");
    assert_eq!(fixes[0]["title"], "ai: three replicas");
    assert_eq!(fixes[0]["fields"], 1);
    let refused = f["refused"].as_array().unwrap();
    assert_eq!(refused.len(), 2, "{f:#}");
    let why = |title: &str| {
        refused
            .iter()
            .find(|r| r["title"] == title)
            .unwrap_or_else(|| panic!("{title} not refused: {f:#}"))["reasons"]
            .to_string()
    };
    assert!(
        why("explode the pod").contains("is not one of set, add, remove"),
        "{f:#}"
    );
    assert!(
        why("a budget in kube-system").contains("refused by policy")
            && why("a budget in kube-system").contains("kube-system"),
        "{f:#}"
    );
    assert_eq!(report["refused"], 2);
    assert_eq!(
        report["candidates"], 3,
        "2 of the catalog's, 1 of the model's"
    );
    // Twins: the suite and the finding before any change, then two per
    // candidate that ran; the refused ones never got one.
    assert_eq!(report["twins"], 2 + 2 * 3, "{report:#}");
    assert!(
        report["diff"].as_str().unwrap().contains("replicas: 3"),
        "{report:#}"
    );
    assert!(report["tokens"]["input"].as_u64().unwrap() > 0);

    let requests = llm.requests();
    assert_eq!(requests.len(), 2, "one question and one repair");
    let user = FakeLlm::user_text;
    let first = user(&requests[0]);
    for want in [
        "kill one pod of Deployment backend-solo",
        "weakness class single-pod",
        // The evidence of the run that confirmed the finding.
        "of outage",
        "Objects the finding names: Deployment/explore-planted/backend-solo",
        "namespaces that may be changed: default, explore-planted",
        "kinds that must not be changed: PodDisruptionBudget",
        // What the catalog tried, and why it was rejected.
        "Already tried on copies, and rejected",
        "PodDisruptionBudget is in the policy's denied kinds",
        "\"name\":\"backend-solo\"",
    ] {
        assert!(
            first.contains(want),
            "the question lacks {want:?}:\n{first}"
        );
    }
    let second = user(&requests[1]);
    for want in [
        "\"explode the pod\"",
        "is not one of set, add, remove",
        "\"a budget in kube-system\"",
    ] {
        assert!(
            second.contains(want),
            "the repair lacks {want:?}:\n{second}"
        );
    }
}

#[test]
fn the_model_strategies_need_an_ai_block() {
    let dir = tempfile::tempdir().unwrap();
    let suite = fixtures().join("replay/suite.yaml");
    for strategy in ["ai", "both"] {
        let out = heatcheck(
            dir.path(),
            &[
                "remediate",
                suite.to_str().unwrap(),
                "--scenario",
                "explore: kill one pod of Deployment backend-solo",
                "--sandbox",
                "--strategy",
                strategy,
            ],
        );
        assert_eq!(out.code, 2, "{}", out.stderr);
        assert!(
            out.stderr.contains(&format!(
                "--strategy {strategy}: the suite has no `ai` block"
            )),
            "{}",
            out.stderr
        );
    }
}

/// README's worked example: the shipped httproute-conflict manifests with
/// the duplicate route deployed (tests/fixtures/explore/conflict, its
/// findings written by `explore --findings`); the offered fix is one line
/// of the shipped v3.yaml.
#[test]
fn the_shipped_conflict_gets_a_hostname_of_its_own_as_readme_shows() {
    let dir = tempfile::tempdir().unwrap();
    let suite = fixtures().join("conflict/suite.yaml");
    let findings = fixtures().join("conflict/findings.json");
    let out = heatcheck(
        dir.path(),
        &[
            "remediate",
            suite.to_str().unwrap(),
            "--findings",
            findings.to_str().unwrap(),
            "--sandbox",
            "--output",
            "json",
        ],
    );
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let report: Value = serde_json::from_str(&out.stdout).expect("JSON report");
    let f = by_class(&report, "route-precedence");
    assert_eq!(f["status"], "fixed", "{f:#}");
    assert_eq!(
        f["fixes"][0]["id"],
        "distinct-hostname/HTTPRoute/route-chaos/my-route"
    );
    let diff = report["diff"].as_str().unwrap();
    assert!(
        diff.contains("+++ b/../../../../suites/httproute-conflict/manifests/v3.yaml\n")
            && diff.contains("-    - lior.example.com\n+    - my-route-v3.lior.example.com\n"),
        "{diff}"
    );
    // Removing the duplicate breaks the suite's own fixtures (they wait for it).
    let removed = f["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == "remove-duplicate/HTTPRoute/route-chaos/my-route")
        .unwrap_or_else(|| panic!("{f:#}"));
    assert!(
        removed["reason"]
            .as_str()
            .unwrap()
            .contains("fixtures failed"),
        "{removed:#}"
    );
}

/// `remediate --strategy ai` on the failing scenario of the replay suite that denies PDBs, the
/// suite's model at `url`.
fn remediate_with_model(dir: &Path, url: &str) -> crate::common::Outcome {
    let suite = denied_with_model(dir, url);
    let out = Command::new(crate::common::bin())
        .current_dir(dir)
        .args([
            "remediate",
            suite.to_str().unwrap(),
            "--scenario",
            "explore: kill one pod of Deployment backend-solo",
            "--sandbox",
            "--strategy",
            "ai",
            "--output",
            "json",
        ])
        .env("NO_COLOR", "1")
        .env("FAKE_LLM_KEY", "sk-fake-test-key")
        .output()
        .expect("run heatcheck");
    crate::common::Outcome {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        dir: dir.to_path_buf(),
    }
}

#[test]
fn a_model_that_answers_prose_or_cannot_be_reached_offers_no_fix() {
    use crate::ai_generate::FakeLlm;
    use serde_json::json;
    // Prose twice (the first answer and its one repair): nothing to verify,
    // the finding stays unfixed, and both answers are refused with why.
    let llm = FakeLlm::start(vec![json!({"__raw": "I would add replicas, I think."})]);
    let dir = tempfile::tempdir().unwrap();
    let out = remediate_with_model(dir.path(), &llm.url);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    let report: Value = serde_json::from_str(&out.stdout).expect("JSON report");
    let f = by_class(&report, "single-pod");
    assert_eq!(f["status"], "unfixed", "{f:#}");
    assert_eq!(report["candidates"], 0, "{report:#}");
    let refused = f["refused"].as_array().unwrap();
    assert_eq!(refused.len(), 2, "{f:#}");
    assert!(refused.iter().all(|r| r["title"] == "(whole answer)"
        && r["reasons"][0].as_str().unwrap().contains("\"fixes\" list")));
    assert_eq!(llm.requests().len(), 2, "the answer and one repair");

    // A model that cannot be reached, with --strategy ai: exit 3, no report.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1", closed.local_addr().unwrap());
    drop(closed);
    let dir = tempfile::tempdir().unwrap();
    let out = remediate_with_model(dir.path(), &url);
    assert_eq!(out.code, 3, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.trim().is_empty(), "{}", out.stdout);
}
