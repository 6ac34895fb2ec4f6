//! The sandbox API server against the real kubectl binary (`$KUBECTL`, else
//! kubectl on PATH, else /usr/bin or /usr/local/bin). Each test has its own
//! server, kubeconfig and discovery cache, so they run in parallel. Without
//! kubectl each test prints a visible SKIPPED line, except under CI where a
//! missing kubectl is a failure.

use crate::common;

use std::path::PathBuf;
use std::process::{Output, Stdio};
use std::time::Duration;

use heatcheck::sandbox::registry::ResKey;
use heatcheck::sandbox::server::{serve_api, ApiConfig, ApiHandle};
use heatcheck::sandbox::store::{Store, WriteOptions};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};

struct Kubectl {
    bin: PathBuf,
    dir: tempfile::TempDir,
    server: ApiHandle,
}

impl Kubectl {
    /// None (after a visible SKIPPED line) when kubectl is missing outside CI.
    async fn start(test: &str) -> Option<Self> {
        let bin = common::kubectl(test)?;
        let server = serve_api(Store::new(), ApiConfig::default()).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        server
            .write_kubeconfig(&dir.path().join("kubeconfig"))
            .unwrap();
        Some(Kubectl { bin, dir, server })
    }

    fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut c = tokio::process::Command::new(&self.bin);
        c.arg("--kubeconfig")
            .arg(self.dir.path().join("kubeconfig"))
            .arg("--cache-dir")
            .arg(self.dir.path().join("cache"))
            .args(args)
            .env_remove("KUBECONFIG")
            .stdin(Stdio::piped())
            .kill_on_drop(true);
        c
    }

    /// Runs kubectl with `stdin` and returns stdout; panics with stderr on failure.
    async fn run_with(&self, args: &[&str], stdin: &str) -> String {
        let out = self.output(args, stdin).await;
        assert!(
            out.status.success(),
            "kubectl {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    async fn run(&self, args: &[&str]) -> String {
        self.run_with(args, "").await
    }

    async fn output(&self, args: &[&str], stdin: &str) -> Output {
        use tokio::io::AsyncWriteExt;
        let mut child = self
            .command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut pipe = child.stdin.take().unwrap();
        pipe.write_all(stdin.as_bytes()).await.unwrap();
        drop(pipe);
        tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
            .await
            .expect("kubectl finished in time")
            .unwrap()
    }

    fn create_cm(&self, name: &str) {
        self.server
            .store
            .create(
                &ResKey::new("", "configmaps"),
                Some("default"),
                json!({"metadata": {"name": name}, "data": {"k": "v"}}),
                &WriteOptions::default(),
            )
            .unwrap();
    }
}

const DEPLOYMENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: nginx
        image: nginx:1.25
        ports:
        - containerPort: 80
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_prints_tables_jsonpath_and_sorts() {
    let Some(k) = Kubectl::start("get_prints_tables_jsonpath_and_sorts").await else {
        return;
    };
    k.create_cm("zeta");
    // creationTimestamp has second precision.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    k.create_cm("alpha");
    let out = k.run(&["get", "configmaps"]).await;
    let lines: Vec<&str> = out.lines().collect();
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(header, ["NAME", "DATA", "AGE"], "{out}");
    assert_eq!(lines.len(), 3, "{out}");
    let row: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(&row[..2], ["alpha", "1"]);
    assert!(row[2].ends_with('s'), "AGE like 1s: {out}");

    let names = k
        .run(&["get", "cm", "-o", "jsonpath={.items[*].metadata.name}"])
        .await;
    assert_eq!(names, "alpha zeta");
    let sorted = k
        .run(&[
            "get",
            "cm",
            "--sort-by=.metadata.creationTimestamp",
            "-o",
            "name",
        ])
        .await;
    assert_eq!(sorted, "configmap/zeta\nconfigmap/alpha\n");
    let sorted_table = k
        .run(&["get", "cm", "--sort-by=.metadata.creationTimestamp"])
        .await;
    let first_col: Vec<&str> = sorted_table
        .lines()
        .map(|l| l.split_whitespace().next().unwrap_or(""))
        .collect();
    assert_eq!(first_col, ["NAME", "zeta", "alpha"]);
    let one = k.run(&["get", "ns", "default", "-o", "json"]).await;
    let v: serde_json::Value = serde_json::from_str(&one).unwrap();
    assert_eq!(v["status"]["phase"], "Active");
    let missing = k.output(&["get", "cm", "nope"], "").await;
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("configmaps \"nope\" not found"));
    k.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_apply_scale_delete_a_deployment() {
    let Some(k) = Kubectl::start("create_apply_scale_delete_a_deployment").await else {
        return;
    };
    let deps = ResKey::new("apps", "deployments");
    let out = k.run_with(&["create", "-f", "-"], DEPLOYMENT).await;
    assert_eq!(out.trim(), "deployment.apps/web created");
    let table = k.run(&["get", "deployments"]).await;
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]);

    let changed = DEPLOYMENT.replace("nginx:1.25", "nginx:1.27");
    let out = k
        .run_with(&["apply", "--server-side", "-f", "-"], &changed)
        .await;
    assert_eq!(out.trim(), "deployment.apps/web serverside-applied");
    let d = k.server.store.get(&deps, Some("default"), "web").unwrap();
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1.27"
    );
    assert_eq!(d["metadata"]["managedFields"][0]["manager"], "kubectl");

    let out = k.run(&["scale", "deployment", "web", "--replicas=4"]).await;
    assert_eq!(out.trim(), "deployment.apps/web scaled");
    let d = k.server.store.get(&deps, Some("default"), "web").unwrap();
    assert_eq!(d["spec"]["replicas"], 4);
    let replicas = k
        .run(&["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"])
        .await;
    assert_eq!(replicas, "4");

    let out = k.run_with(&["delete", "-f", "-"], DEPLOYMENT).await;
    assert_eq!(out.trim(), "deployment.apps \"web\" deleted");
    assert!(k.server.store.get(&deps, Some("default"), "web").is_err());
    k.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_watch_prints_new_objects() {
    let Some(k) = Kubectl::start("get_watch_prints_new_objects").await else {
        return;
    };
    k.create_cm("before");
    let mut child = k
        .command(&["get", "configmaps", "--watch"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    let found = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            let name = line.split_whitespace().next().unwrap_or("").to_string();
            if name == "before" {
                // The initial listing is on screen: now make a change.
                k.create_cm("during");
            }
            seen.push(line);
            if name == "during" {
                return true;
            }
        }
        false
    })
    .await;
    child.kill().await.unwrap();
    assert_eq!(found, Ok(true), "kubectl -w output: {seen:?}");
    assert!(seen[0].starts_with("NAME"));
    k.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_resources_and_auth() {
    let Some(k) = Kubectl::start("api_resources_and_auth").await else {
        return;
    };
    let out = k.run(&["api-resources"]).await;
    let row = |name: &str| -> Vec<String> {
        out.lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("{name} missing from:\n{out}"))
            .split_whitespace()
            .map(String::from)
            .collect()
    };
    assert_eq!(
        row("deployments"),
        ["deployments", "deploy", "apps/v1", "true", "Deployment"]
    );
    assert_eq!(
        row("httproutes"),
        [
            "httproutes",
            "gateway.networking.k8s.io/v1",
            "true",
            "HTTPRoute"
        ]
    );
    assert_eq!(
        row("namespaces"),
        ["namespaces", "ns", "v1", "false", "Namespace"]
    );

    let version = k.run(&["version", "-o", "json"]).await;
    let v: serde_json::Value = serde_json::from_str(&version).unwrap();
    assert_eq!(v["serverVersion"]["gitVersion"], "v1.36.0-heatcheck");

    // A wrong token is refused.
    let bad = k.server.kubeconfig_yaml().replace(&k.server.token, "wrong");
    std::fs::write(k.dir.path().join("kubeconfig"), bad).unwrap();
    let out = k.output(&["get", "cm"], "").await;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Unauthorized") || err.contains("provide credentials"),
        "{err}"
    );
    k.server.shutdown().await;
}

/// Kinds beyond workloads that suites and `heatcheck deploy` output use.
const MORE_KINDS: &str = "apiVersion: batch/v1
kind: Job
metadata: {name: migrate}
spec:
  completions: 2
  template:
    spec:
      restartPolicy: Never
      containers: [{name: migrate, image: busybox}]
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: nightly}
spec:
  schedule: '0 3 * * *'
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers: [{name: run, image: busybox}]
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: web}
spec:
  minAvailable: 1
  selector: {matchLabels: {app: web}}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: web}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  minReplicas: 2
  maxReplicas: 5
  metrics:
  - type: Resource
    resource: {name: cpu, target: {type: Utilization, averageUtilization: 80}}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: shop}
spec:
  ingressClassName: nginx
  rules:
  - host: shop.example.com
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
---
apiVersion: coordination.k8s.io/v1
kind: Lease
metadata: {name: leader}
spec: {holderIdentity: pod-a}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
";

fn header(table: &str) -> Vec<String> {
    // Multi-word headers ("MIN AVAILABLE") are split on runs of 2+ spaces.
    table
        .lines()
        .next()
        .unwrap_or_default()
        .split("  ")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_cronjobs_pdb_hpa_ingress_lease_pvc_print_like_a_real_server() {
    let Some(k) =
        Kubectl::start("jobs_cronjobs_pdb_hpa_ingress_lease_pvc_print_like_a_real_server").await
    else {
        return;
    };
    let out = k.run_with(&["apply", "-f", "-"], MORE_KINDS).await;
    for created in [
        "job.batch/migrate created",
        "cronjob.batch/nightly created",
        "poddisruptionbudget.policy/web created",
        "horizontalpodautoscaler.autoscaling/web created",
        "ingress.networking.k8s.io/shop created",
        "lease.coordination.k8s.io/leader created",
        "persistentvolumeclaim/data created",
    ] {
        assert!(out.contains(created), "{created}: {out}");
    }
    // Columns of kubectl against kube-apiserver (its Table printers).
    for (what, cols, row) in [
        (
            "jobs",
            &["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"][..],
            &["migrate", "Running", "0/2"][..],
        ),
        (
            "cronjobs",
            &[
                "NAME",
                "SCHEDULE",
                "TIMEZONE",
                "SUSPEND",
                "ACTIVE",
                "LAST SCHEDULE",
                "AGE",
            ][..],
            &["nightly", "0 3 * * *", "<none>", "False", "0", "<none>"][..],
        ),
        (
            "pdb",
            &[
                "NAME",
                "MIN AVAILABLE",
                "MAX UNAVAILABLE",
                "ALLOWED DISRUPTIONS",
                "AGE",
            ][..],
            &["web", "1", "N/A", "0"][..],
        ),
        (
            "hpa",
            &[
                "NAME",
                "REFERENCE",
                "TARGETS",
                "MINPODS",
                "MAXPODS",
                "REPLICAS",
                "AGE",
            ][..],
            &["web", "Deployment/web", "cpu: <unknown>/80%", "2", "5", "0"][..],
        ),
        (
            "ingress",
            &["NAME", "CLASS", "HOSTS", "ADDRESS", "PORTS", "AGE"][..],
            &["shop", "nginx", "shop.example.com", "80"][..],
        ),
        (
            "leases",
            &["NAME", "HOLDER", "AGE"][..],
            &["leader", "pod-a"][..],
        ),
        (
            "pvc",
            &[
                "NAME",
                "STATUS",
                "VOLUME",
                "CAPACITY",
                "ACCESS MODES",
                "STORAGECLASS",
                "VOLUMEATTRIBUTESCLASS",
                "AGE",
            ][..],
            &["data", "Pending"][..],
        ),
    ] {
        let table = k.run(&["get", what]).await;
        assert_eq!(header(&table), cols, "kubectl get {what}:\n{table}");
        let cells = header(table.lines().nth(1).unwrap_or_default());
        for cell in row {
            assert!(
                cells.iter().any(|c| c == cell),
                "{what}: no cell {cell:?} in {cells:?}\n{table}"
            );
        }
    }
    // Discovery lists the new groups (kubectl reads the aggregated form).
    for (group, names) in [
        ("batch", "cronjobs.batch\njobs.batch\n"),
        ("policy", "poddisruptionbudgets.policy\n"),
        ("coordination.k8s.io", "leases.coordination.k8s.io\n"),
        ("autoscaling", "horizontalpodautoscalers.autoscaling\n"),
    ] {
        let listed = k
            .run(&["api-resources", "--api-group", group, "-o", "name"])
            .await;
        assert_eq!(listed, names, "api-resources --api-group {group}");
    }
    let gw = k
        .run(&[
            "api-resources",
            "--api-group",
            "gateway.networking.k8s.io",
            "-o",
            "name",
        ])
        .await;
    for kind in [
        "grpcroutes",
        "backendtlspolicies",
        "listenersets",
        "tcproutes",
        "tlsroutes",
        "udproutes",
    ] {
        assert!(
            gw.contains(&format!("{kind}.gateway.networking.k8s.io")),
            "{gw}"
        );
    }
    // Short names and categories come from discovery.
    let all = k.run(&["get", "all", "-o", "name"]).await;
    for name in [
        "job.batch/migrate",
        "cronjob.batch/nightly",
        "horizontalpodautoscaler.autoscaling/web",
    ] {
        assert!(all.contains(name), "{name} in `get all`: {all}");
    }
    // Generation only where kube-apiserver keeps one.
    let gen = |kind: &'static str, name: &'static str| {
        let k = &k;
        async move {
            k.run(&["get", kind, name, "-o", "jsonpath={.metadata.generation}"])
                .await
        }
    };
    assert_eq!(gen("job", "migrate").await, "1");
    assert_eq!(gen("ingress", "shop").await, "1");
    assert_eq!(
        gen("lease", "leader").await,
        "",
        "a Lease has no generation"
    );
    assert_eq!(gen("pvc", "data").await, "", "a PVC has no generation");
    // What a real server refuses, worded like it.
    let bad = k
        .output(
            &["apply", "-f", "-"],
            "apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: broken}\nspec:\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          containers: [{name: c, image: busybox}]\n",
        )
        .await;
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("The CronJob \"broken\" is invalid")
            && err.contains("spec.schedule: Required value")
            && err.contains("spec.jobTemplate.spec.template.spec.restartPolicy: Unsupported value: \"Always\": supported values: \"OnFailure\", \"Never\""),
        "{err}"
    );
    k.server.shutdown().await;
}
