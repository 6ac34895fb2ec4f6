//! kubectl's generator commands (typed clients that send protobuf) against a
//! `heatcheck sandbox` process. Each object is created twice: by the
//! generator (protobuf on the wire) in namespace `pb`, and from the same
//! generator's `--dry-run=client -o json` output with `kubectl create -f`
//! (JSON on the wire) in namespace `js`; the two stored objects must agree
//! field by field. Without kubectl the tests skip, except under CI.

use crate::common;

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use common::SandboxProcess;
use serde_json::Value;

/// A sandbox process, kubectl pointed at it, and namespaces `pb` and `js`.
struct Cluster {
    bin: PathBuf,
    sandbox: SandboxProcess,
    cache: tempfile::TempDir,
}

impl Cluster {
    fn start() -> Option<Self> {
        let bin = common::kubectl("sandbox_protobuf")?;
        let c = Cluster {
            bin,
            sandbox: SandboxProcess::start(),
            cache: tempfile::tempdir().unwrap(),
        };
        // `create namespace` is itself a protobuf request.
        c.run(&["create", "namespace", "pb"]);
        c.run(&["create", "namespace", "js"]);
        Some(c)
    }

    fn output(&self, args: &[&str], stdin: &str) -> Output {
        use std::io::Write;
        let mut child = Command::new(&self.bin)
            .arg("--kubeconfig")
            .arg(&self.sandbox.kubeconfig)
            .arg("--cache-dir")
            .arg(self.cache.path())
            .args(args)
            .env_remove("KUBECONFIG")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }

    fn run_with(&self, args: &[&str], stdin: &str) -> String {
        let out = self.output(args, stdin);
        assert!(
            out.status.success(),
            "kubectl {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn run(&self, args: &[&str]) -> String {
        self.run_with(args, "")
    }

    fn get(&self, ns: &str, what: &str) -> Value {
        serde_json::from_str(&self.run(&["get", "-n", ns, what, "-o", "json"])).unwrap()
    }

    /// Runs `generator` (protobuf) in `pb`, its client-side JSON through
    /// `create -f` in `js`, and returns both stored objects.
    fn both(&self, generator: &[&str], what: &str) -> (Value, Value) {
        let mut pb = vec!["-n", "pb"];
        pb.extend(generator);
        self.run(&pb);
        let mut client = vec!["-n", "js"];
        client.extend(generator);
        client.extend(["--dry-run=client", "-o", "json"]);
        let manifest = self.run(&client);
        self.run_with(&["-n", "js", "create", "-f", "-"], &manifest);
        (self.get("pb", what), self.get("js", what))
    }
}

/// Drops what the server assigns per object (identity, versions, times,
/// status written by controllers) and the namespace, which differs by design.
fn normalized(mut v: Value, drop: &[&str]) -> Value {
    for p in [
        "/metadata/uid",
        "/metadata/resourceVersion",
        "/metadata/creationTimestamp",
        "/metadata/managedFields",
        "/metadata/namespace",
        "/status",
    ]
    .iter()
    .chain(drop)
    {
        if let Some((parent, key)) = p.rsplit_once('/') {
            if let Some(obj) = v.pointer_mut(parent).and_then(Value::as_object_mut) {
                obj.remove(key);
            }
        }
    }
    v
}

fn assert_same(pb: Value, js: Value, drop: &[&str]) {
    let (pb, js) = (normalized(pb, drop), normalized(js, drop));
    assert_eq!(
        pb,
        js,
        "protobuf path:\n{}\nJSON path:\n{}",
        serde_json::to_string_pretty(&pb).unwrap(),
        serde_json::to_string_pretty(&js).unwrap()
    );
}

#[test]
fn create_namespace_matches_the_json_path() {
    let Some(c) = Cluster::start() else { return };
    let pb = c.get("default", "namespace/pb");
    c.run_with(
        &["create", "-f", "-"],
        &c.run(&[
            "create",
            "namespace",
            "js2",
            "--dry-run=client",
            "-o",
            "json",
        ]),
    );
    let mut js = c.get("default", "namespace/js2");
    js["metadata"]["name"] = "pb".into();
    js["metadata"]["labels"]["kubernetes.io/metadata.name"] = "pb".into();
    assert_eq!(pb["metadata"]["name"], "pb");
    assert_same(pb, js, &[]);
}

#[test]
fn create_configmap_matches_the_json_path() {
    let Some(c) = Cluster::start() else { return };
    let (pb, js) = c.both(
        &[
            "create",
            "configmap",
            "cfg",
            "--from-literal=greeting=hello world",
            "--from-literal=empty=",
        ],
        "configmap/cfg",
    );
    assert_eq!(pb["data"]["greeting"], "hello world", "{pb}");
    assert_eq!(pb["data"]["empty"], "", "{pb}");
    assert_same(pb, js, &[]);
}

#[test]
fn create_secret_generic_matches_the_json_path() {
    let Some(c) = Cluster::start() else { return };
    let (pb, js) = c.both(
        &[
            "create",
            "secret",
            "generic",
            "creds",
            "--from-literal=user=admin",
            "--from-literal=password=s3cr\u{e9}t",
        ],
        "secret/creds",
    );
    // bytes fields are base64 in JSON.
    assert_eq!(pb["data"]["user"], "YWRtaW4=", "{pb}");
    assert_same(pb, js, &[]);
}

#[test]
fn create_deployment_matches_the_json_path() {
    let Some(c) = Cluster::start() else { return };
    let (pb, js) = c.both(
        &[
            "create",
            "deployment",
            "web",
            "--image=nginx:1.25",
            "--port=8080",
            "--replicas=0",
        ],
        "deployment/web",
    );
    // A pointer field set to zero survives (absent would default to 1).
    assert_eq!(pb["spec"]["replicas"], 0, "{pb}");
    assert_eq!(
        pb["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"], 8080,
        "{pb}"
    );
    assert_same(pb, js, &[]);
    // `expose` reads the deployment and creates a Service from it.
    let expose = [
        "expose",
        "deployment",
        "web",
        "--port=80",
        "--target-port=8080",
    ];
    let (pb, js) = c.both(&expose, "service/web");
    assert_eq!(pb["spec"]["selector"]["app"], "web", "{pb}");
    assert_same(pb, js, &["/spec/clusterIP", "/spec/clusterIPs"]);
}

#[test]
fn create_service_clusterip_matches_the_json_path() {
    let Some(c) = Cluster::start() else { return };
    let (pb, js) = c.both(
        &["create", "service", "clusterip", "web", "--tcp=80:8080"],
        "service/web",
    );
    // IntOrString as an integer.
    assert_eq!(pb["spec"]["ports"][0]["targetPort"], 8080, "{pb}");
    assert_same(pb, js, &["/spec/clusterIP", "/spec/clusterIPs"]);
}

// kubectl 1.32's `run` (and `expose`) send JSON through its resource
// helper; older and newer releases differ, so both paths are checked here.
#[test]
fn run_dry_run_server_matches_the_json_path_and_stores_nothing() {
    let Some(c) = Cluster::start() else { return };
    let run = [
        "run",
        "probe",
        "--image=busybox:1.36",
        "--labels=app=probe",
        "--env=MODE=check",
        "--port=9000",
    ];
    let mut pb_args = vec!["-n", "pb"];
    pb_args.extend(run);
    pb_args.extend(["--dry-run=server", "-o", "yaml"]);
    let pb: Value = serde_saphyr::from_str(&c.run(&pb_args)).unwrap();
    let mut client = vec!["-n", "js"];
    client.extend(run);
    client.extend(["--dry-run=client", "-o", "json"]);
    let manifest = c.run(&client);
    let js: Value = serde_saphyr::from_str(&c.run_with(
        &[
            "-n",
            "js",
            "create",
            "-f",
            "-",
            "--dry-run=server",
            "-o",
            "yaml",
        ],
        &manifest,
    ))
    .unwrap();
    assert_eq!(pb["kind"], "Pod", "{pb}");
    assert_eq!(
        pb["spec"]["containers"][0]["env"][0]["value"], "check",
        "{pb}"
    );
    assert_same(pb, js, &[]);
    let left = c.output(&["-n", "pb", "get", "pod", "probe"], "");
    assert!(!left.status.success(), "a dry run stored the pod");
}

#[test]
fn create_token_for_a_service_account() {
    let Some(c) = Cluster::start() else { return };
    let (pb, js) = c.both(
        &["create", "serviceaccount", "runner"],
        "serviceaccount/runner",
    );
    assert_same(pb, js, &[]);
    // TokenRequest (serviceaccounts/token) is served: a failure is a regression.
    let out = c.output(&["-n", "pb", "create", "token", "runner"], "");
    assert!(
        out.status.success(),
        "kubectl create token: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8_lossy(&out.stdout);
    assert_eq!(token.trim().split('.').count(), 3, "a JWT: {token}");
}
