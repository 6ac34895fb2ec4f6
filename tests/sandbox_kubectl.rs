//! The sandbox API server against the real kubectl binary (`$KUBECTL`, else
//! kubectl on PATH, else /usr/bin or /usr/local/bin). Each test has its own
//! server, kubeconfig and discovery cache, so they run in parallel. Without
//! kubectl each test prints a visible SKIPPED line, except under CI where a
//! missing kubectl is a failure.

mod common;

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
