//! Shared helpers for the end-to-end tests: run the real binary against the
//! sandbox and read back what a user sees.
#![allow(dead_code)]

pub mod fake_provider;
pub mod prometheus;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_heatcheck"))
}

/// An external program a test needs (kubectl, git, kill, ...): `$ENV_VAR`
/// when set (an explicit choice wins), else the first `name` on PATH, else
/// the first of `usual` that exists. When it is missing the test must not
/// pass silently: under CI (env `CI` set) this panics; elsewhere it writes a
/// `SKIPPED` line straight to stderr (libtest captures `eprintln!` of passing
/// tests, so a plain notice would vanish) and returns None.
pub fn external_program(
    test: &str,
    name: &str,
    env_var: Option<&str>,
    usual: &[&str],
) -> Option<PathBuf> {
    let from_env = env_var.and_then(std::env::var_os).map(PathBuf::from);
    if let Some(p) = &from_env {
        if is_executable(p) {
            return Some(p.clone());
        }
    }
    let on_path = std::env::var_os("PATH")
        .map(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join(name))
                .find(|p| is_executable(p))
        })
        .unwrap_or_default();
    if let Some(p) = on_path.or_else(|| usual.iter().map(PathBuf::from).find(|p| is_executable(p)))
    {
        return Some(p);
    }
    let looked = format!(
        "{}PATH{}",
        env_var
            .map(|v| match &from_env {
                Some(p) => format!("${v}={} (not executable), ", p.display()),
                None => format!("${v} (unset), "),
            })
            .unwrap_or_default(),
        if usual.is_empty() {
            String::new()
        } else {
            format!(", {}", usual.join(", "))
        }
    );
    let hint = env_var
        .map(|v| format!(" (install it or set {v})"))
        .unwrap_or_default();
    missing(test, &format!("{name} not found in {looked}{hint}"));
    None
}

/// The one definition of "under CI": `CI` set to anything but empty (as
/// GitHub, GitLab and .ci/run set it). There a missing program fails a test.
pub fn under_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty())
}

/// What a test needs is missing: under CI ([`under_ci`]) that fails the
/// test; elsewhere it prints a visible SKIPPED line (libtest captures
/// println!, so straight to stderr) and the caller returns.
pub fn missing(test: &str, why: &str) {
    if under_ci() {
        panic!("{test}: {why}; CI requires it");
    }
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {why}");
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// kubectl for a test, as [`external_program`] finds it (`$KUBECTL`, PATH,
/// /usr/bin, /usr/local/bin).
pub fn kubectl(test: &str) -> Option<PathBuf> {
    external_program(
        test,
        "kubectl",
        Some("KUBECTL"),
        &["/usr/bin/kubectl", "/usr/local/bin/kubectl"],
    )
}

/// `kill -SIG pid`, with kill found like any external program (a test that
/// signals a process cannot do without it, so a missing kill always fails).
pub fn send_signal(pid: u32, sig: &str) {
    let kill = external_program("send_signal", "kill", None, &["/bin/kill", "/usr/bin/kill"])
        .expect("kill is needed to signal the process under test");
    let status = Command::new(kill)
        .args([&format!("-{sig}"), &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{sig} {pid}: {status}");
}

/// A test case: a suite (plus files) in a temp dir, run with the real binary.
pub struct Case {
    pub dir: TempDir,
    args: Vec<String>,
    env: Vec<(String, String)>,
}

pub struct Outcome {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub dir: PathBuf,
}

impl Outcome {
    pub fn junit(&self) -> String {
        std::fs::read_to_string(self.dir.join("junit.xml")).expect("junit.xml written")
    }

    pub fn report(&self) -> Value {
        serde_json::from_str(
            &std::fs::read_to_string(self.dir.join("report.json")).expect("report.json written"),
        )
        .expect("report is JSON")
    }

    pub fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code, code,
            "exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

/// Runs `cmd` to its end: what it printed and its exit code.
fn outcome(cmd: &mut Command, dir: &Path) -> Outcome {
    let out = cmd.output().expect("run heatcheck");
    Outcome {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        dir: dir.to_path_buf(),
    }
}

/// `heatcheck ARGS` in `dir`, as a user runs it there (no colour, no
/// ambient KUBECONFIG), for tests whose files are not a [`Case`].
pub fn heatcheck_in(dir: &Path, args: &[&str]) -> Outcome {
    outcome(
        Command::new(bin())
            .current_dir(dir)
            .args(args)
            .env("NO_COLOR", "1")
            .env_remove("KUBECONFIG"),
        dir,
    )
}

impl Case {
    pub fn suite(yaml: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("suite.yaml"), yaml).expect("write suite");
        Case {
            dir,
            args: Vec::new(),
            env: Vec::new(),
        }
    }

    pub fn file(self, name: &str, content: &str) -> Self {
        let p = self.dir.path().join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
        self
    }

    pub fn args<I: IntoIterator<Item = S>, S: Into<String>>(mut self, args: I) -> Self {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.into(), v.into()));
        self
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `heatcheck run suite.yaml --sandbox --junit junit.xml --report-json report.json ARGS`.
    pub fn run_sandbox(&self) -> Outcome {
        let mut args: Vec<String> = vec![
            "run".into(),
            "suite.yaml".into(),
            "--sandbox".into(),
            "--junit".into(),
            "junit.xml".into(),
            "--report-json".into(),
            "report.json".into(),
        ];
        args.extend(self.args.iter().cloned());
        self.exec(&args)
    }

    pub fn exec(&self, args: &[String]) -> Outcome {
        let mut cmd = Command::new(bin());
        cmd.current_dir(self.dir.path())
            .args(args)
            .env("NO_COLOR", "1")
            .env_remove("KUBECONFIG");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        outcome(&mut cmd, self.dir.path())
    }
}

impl Case {
    /// The binary on a pseudo-terminal (stdin, stdout and stderr; 80x24,
    /// echo on as in a shell), in the case's directory, with `NO_COLOR`.
    pub fn pty(&self, args: &[String]) -> Pty {
        let mut cmd = Command::new(bin());
        cmd.current_dir(self.dir.path())
            .args(args)
            .env("NO_COLOR", "1")
            .env_remove("KUBECONFIG");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let mut session = expectrl::Session::spawn(cmd).expect("spawn in a pty");
        session
            .get_process_mut()
            .set_echo(true, None)
            .expect("echo on");
        session.set_expect_timeout(Some(Duration::from_secs(120)));
        Pty {
            session,
            seen: Vec::new(),
        }
    }
}

/// A run on a pseudo-terminal, and every byte it (and the terminal's echo)
/// wrote so far.
pub struct Pty {
    pub session: expectrl::Session,
    pub seen: Vec<u8>,
}

impl Pty {
    /// Waits for `needle` in the output.
    pub fn expect(&mut self, needle: &str) {
        match self.session.expect(needle) {
            Ok(c) => self.seen.extend_from_slice(c.as_bytes()),
            Err(e) => panic!("waiting for {needle:?}: {e}\n--- so far:\n{}", self.text()),
        }
    }

    /// Presses Ctrl-C (the terminal sends SIGINT to the program).
    pub fn interrupt(&mut self) {
        self.session
            .send(expectrl::ControlCode::EndOfText)
            .expect("write to the pty");
    }

    /// Types a line (the key, then Enter).
    pub fn send_line(&mut self, line: &str) {
        self.session.send_line(line).expect("write to the pty");
    }

    /// True when nothing at all was written for `d`.
    pub fn quiet_for(&mut self, d: Duration) -> bool {
        std::thread::sleep(d);
        let c = self
            .session
            .check(expectrl::Regex("(?s).+"))
            .expect("read the pty");
        self.seen.extend_from_slice(c.as_bytes());
        c.is_empty()
    }

    /// Reads to the end; the exit code.
    pub fn finish(&mut self) -> i32 {
        match self.session.expect(expectrl::Eof) {
            Ok(c) => self.seen.extend_from_slice(c.as_bytes()),
            Err(e) => panic!("waiting for the end: {e}\n--- so far:\n{}", self.text()),
        }
        match self.session.get_process().wait().expect("wait") {
            expectrl::WaitStatus::Exited(_, code) => code,
            other => panic!("not an exit: {other:?}"),
        }
    }

    /// The raw output, as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.seen).into_owned()
    }

    /// What the 80-column terminal shows now, scrollback included (a tall
    /// screen: nothing scrolls away): its rows (trailing blanks trimmed,
    /// trailing empty rows dropped) and whether the cursor is shown.
    pub fn screen(&self) -> (Vec<String>, bool) {
        let size = |n: u16| std::num::NonZeroU16::new(n).unwrap();
        let mut term = vt100::Parser::new(size(1000), size(80), 0);
        term.process(&self.seen);
        let screen = term.screen();
        let mut rows: Vec<String> = screen
            .rows(0, 80)
            .map(|r| r.trim_end().to_string())
            .collect();
        while rows.last().is_some_and(|r| r.is_empty()) {
            rows.pop();
        }
        (rows, !screen.hide_cursor())
    }
}

/// `heatcheck sandbox` in its own process, for tests that need the cluster
/// to outlive one run.
pub struct SandboxProcess {
    child: Child,
    pub kubeconfig: PathBuf,
    _dir: TempDir,
}

impl SandboxProcess {
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// With more `heatcheck sandbox` arguments, e.g. `["--user", "alice"]`.
    pub fn start_with(args: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        let child = Command::new(bin())
            .args(["sandbox", "--kubeconfig"])
            .arg(&kubeconfig)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start heatcheck sandbox");
        let deadline = Instant::now() + Duration::from_secs(60);
        while !kubeconfig.exists()
            || !std::fs::read_to_string(&kubeconfig)
                .unwrap_or_default()
                .contains("current-context")
        {
            assert!(
                Instant::now() < deadline,
                "sandbox did not write its kubeconfig"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        SandboxProcess {
            child,
            kubeconfig,
            _dir: dir,
        }
    }
}

impl SandboxProcess {
    /// `kubectl ARGS` against this sandbox: (succeeded, stdout, stderr).
    pub fn kubectl(&self, kubectl: &Path, args: &[&str]) -> (bool, String, String) {
        let out = Command::new(kubectl)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .output()
            .expect("kubectl runs");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// The API server URL its kubeconfig names.
    pub fn server(&self) -> String {
        std::fs::read_to_string(&self.kubeconfig)
            .unwrap()
            .lines()
            .find_map(|l| l.trim().strip_prefix("server: "))
            .expect("the kubeconfig names its server")
            .to_string()
    }
}

/// A directory tree copied (files and folders).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}

impl Drop for SandboxProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The cluster as a user sees it: every object of every listable kind,
/// without server-managed fields, status, events, endpoints, objects
/// owned by a controller (their names are random by design), or the
/// `kube-root-ca.crt` ConfigMap the controller manager publishes in every
/// namespace (it appears a moment after its namespace).
pub async fn snapshot(kubeconfig: &Path) -> BTreeMap<String, Value> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = heatcheck::cluster::ClusterClient::connect(&heatcheck::cluster::ConnectOptions {
        kubeconfig: Some(kubeconfig.to_path_buf()),
        context: None,
    })
    .await
    .expect("connect");
    let discovery = kube::discovery::Discovery::new(client.kube().clone())
        .run()
        .await
        .expect("discovery");
    let mut out = BTreeMap::new();
    for group in discovery.groups() {
        for (ar, caps) in group.recommended_resources() {
            if !caps.supports_operation(kube::discovery::verbs::LIST) {
                continue;
            }
            if ["Event", "Endpoints", "EndpointSlice"].contains(&ar.kind.as_str()) {
                continue;
            }
            let api: kube::Api<kube::api::DynamicObject> =
                kube::Api::all_with(client.kube().clone(), &ar);
            let list = api.list(&Default::default()).await.expect("list");
            for o in list.items {
                let v = serde_json::to_value(&o).unwrap();
                let owned = v
                    .pointer("/metadata/ownerReferences")
                    .and_then(Value::as_array)
                    .is_some_and(|r| r.iter().any(|r| r["controller"] == true));
                let published = ar.kind == "ConfigMap"
                    && o.metadata.name.as_deref() == Some("kube-root-ca.crt");
                if owned || published {
                    continue;
                }
                let key = format!(
                    "{}/{}/{}",
                    ar.kind,
                    o.metadata.namespace.clone().unwrap_or_default(),
                    o.metadata.name.clone().unwrap_or_default()
                );
                out.insert(key, normalize(v));
            }
        }
    }
    out
}

fn normalize(mut v: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.remove("status");
    }
    if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        for f in [
            "uid",
            "resourceVersion",
            "creationTimestamp",
            "generation",
            "managedFields",
            "deletionTimestamp",
        ] {
            meta.remove(f);
        }
        if let Some(a) = meta.get_mut("annotations").and_then(Value::as_object_mut) {
            a.retain(|k, _| !k.starts_with("deployment.kubernetes.io/"));
        }
    }
    v
}

/// Counts in a JUnit document: (testcases, failures, errors, skipped), read
/// back with an XML parser as a CI system would.
pub fn junit_counts(xml: &str) -> (usize, usize, usize, usize) {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(xml);
    let (mut cases, mut failures, mut errors, mut skipped) = (0, 0, 0, 0);
    loop {
        match reader.read_event().expect("well-formed JUnit XML") {
            Event::Start(e) | Event::Empty(e) => match e.name().as_ref() {
                b"testcase" => cases += 1,
                b"failure" => failures += 1,
                b"error" => errors += 1,
                b"skipped" => skipped += 1,
                _ => {}
            },
            Event::Eof => break,
            _ => {}
        }
    }
    (cases, failures, errors, skipped)
}

/// The text and attributes of every <failure>/<error> element.
pub fn junit_failures(xml: &str) -> Vec<(String, String)> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    let mut text = String::new();
    loop {
        match reader.read_event().expect("well-formed JUnit XML") {
            Event::Start(e) if matches!(e.name().as_ref(), b"failure" | b"error") => {
                let msg = e
                    .attributes()
                    .filter_map(Result::ok)
                    .find(|a| a.key.as_ref() == b"message")
                    .map(|a| {
                        a.normalized_value(quick_xml::XmlVersion::Explicit1_0)
                            .unwrap()
                            .into_owned()
                    })
                    .unwrap_or_default();
                current = Some(msg);
                text.clear();
            }
            Event::Text(t) if current.is_some() => text.push_str(&t.decode().unwrap()),
            Event::CData(t) if current.is_some() => text.push_str(&String::from_utf8_lossy(&t)),
            Event::End(e) if matches!(e.name().as_ref(), b"failure" | b"error") => {
                if let Some(m) = current.take() {
                    out.push((m, text.clone()));
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    out
}

/// The base manifest every end-to-end case starts from: a gateway, a
/// backend with two pods and a route for `shop.example.com`.
pub const BASE: &str = r#"apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  gatewayClassName: any
  listeners: [{name: http, protocol: HTTP, port: 80}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, labels: {app: web}}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: echo, image: echo}]}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec: {selector: {app: web}, ports: [{port: 8080}]}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web}
spec:
  parentRefs: [{name: gw}]
  hostnames: [shop.example.com]
  rules: [{backendRefs: [{name: web, port: 8080}]}]
"#;

/// A suite header with the base fixtures in namespace `ns`.
pub fn suite_with(ns: &str, body: &str) -> String {
    format!(
        r#"apiVersion: heatcheck.dev/v1alpha1
kind: Suite
metadata: {{name: e2e}}
spec:
  target: {{namespace: {ns}, createNamespace: true}}
  defaults: {{timeout: 20s, interval: 100ms}}
  fixtures:
    - apply: {{file: base.yaml}}
    - wait: {{kind: Deployment, name: web, available: true}}
    - wait: {{kind: HTTPRoute, name: web, condition: Accepted}}
{body}"#
    )
}

/// `&["run", "x"]` as owned arguments.
pub fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

/// Runs a future to completion from a synchronous test.
pub fn tokio_block<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// The files a pod's ServiceAccount volume holds
/// (/var/run/secrets/kubernetes.io/serviceaccount): `token`, `ca.crt` and
/// `namespace`, written from a token (TokenRequest or token Secret) and the
/// server's CA, plus a kubeconfig that reads them the way in-cluster
/// clients do (tokenFile, certificate-authority).
pub struct ServiceAccountMount {
    pub dir: TempDir,
}

impl ServiceAccountMount {
    pub fn write(token: &str, ca_pem: &str, namespace: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("token"), token).unwrap();
        std::fs::write(dir.path().join("ca.crt"), ca_pem).unwrap();
        std::fs::write(dir.path().join("namespace"), namespace).unwrap();
        ServiceAccountMount { dir }
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }

    /// A kubeconfig for `server` (https://127.0.0.1:PORT) that authenticates
    /// with the mounted token file and trusts the mounted CA.
    pub fn kubeconfig(&self, server: &str) -> String {
        let ns = std::fs::read_to_string(self.path("namespace")).unwrap();
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: in-cluster\n  cluster:\n    server: {server}\n    certificate-authority: {ca}\ncontexts:\n- name: in-cluster\n  context:\n    cluster: in-cluster\n    user: sa\n    namespace: {ns}\ncurrent-context: in-cluster\nusers:\n- name: sa\n  user:\n    tokenFile: {token}\n",
            ca = self.path("ca.crt").display(),
            token = self.path("token").display(),
        )
    }
}

/// Whether `unshare -m` works here (root or CAP_SYS_ADMIN), which the
/// in-cluster tests need. Like [`external_program`], it never lets a test
/// pass silently: under CI (which runs as root) its absence panics;
/// elsewhere `test` prints a visible SKIPPED line and should return.
pub fn can_unshare(test: &str) -> bool {
    let works = Command::new("unshare")
        .args(["-m", "true"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !works {
        missing(test, "`unshare -m` is not permitted here (run as root)");
    }
    works
}

/// `heatcheck ARGS` as a pod runs it: in a private mount namespace with the
/// ServiceAccount volume `mount` at its standard path, no kubeconfig (HOME
/// is `dir`, which has none), and the service host/port of `server`.
pub fn in_cluster_command(dir: &Path, mount: &Path, server: &str, args: &[&str]) -> Command {
    let hostport = server.trim_start_matches("https://");
    let (host, port) = hostport.rsplit_once(':').expect("server host:port");
    let script = r#"set -e
mount -t tmpfs tmpfs /var/run
mkdir -p /var/run/secrets/kubernetes.io/serviceaccount
mount --bind "$SA_DIR" /var/run/secrets/kubernetes.io/serviceaccount
exec "$HEATCHECK" "$@""#;
    let mut cmd = Command::new("unshare");
    cmd.args(["-m", "sh", "-c", script, "sh"])
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("NO_COLOR", "1")
        .env("SA_DIR", mount)
        .env("HEATCHECK", bin())
        .env("KUBERNETES_SERVICE_HOST", host)
        .env("KUBERNETES_SERVICE_PORT", port);
    cmd
}

/// Runs [`in_cluster_command`] to its end.
pub fn run_in_cluster(case: &Case, mount: &Path, server: &str, args: &[&str]) -> Outcome {
    let out = in_cluster_command(case.dir.path(), mount, server, args)
        .output()
        .expect("unshare");
    Outcome {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        dir: case.dir.path().to_path_buf(),
    }
}

/// An admin client of a sandbox started with [`SandboxProcess`].
pub async fn admin_client(kubeconfig: &Path) -> kube::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let kc = kube::config::Kubeconfig::read_from(kubeconfig).unwrap();
    let cfg = kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
        .await
        .unwrap();
    kube::Client::try_from(cfg).unwrap()
}

/// A token the sandbox issues (TokenRequest) for ServiceAccount `ns/name`,
/// with the sandbox's CA (PEM) and server URL: what a pod's mount holds.
pub async fn service_account_token(
    kubeconfig: &Path,
    ns: &str,
    name: &str,
) -> (String, String, String) {
    use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
    use k8s_openapi::api::core::v1::ServiceAccount;
    let admin = admin_client(kubeconfig).await;
    let tr: TokenRequest = kube::Api::<ServiceAccount>::namespaced(admin, ns)
        .create_subresource(
            "token",
            name,
            &kube::api::PostParams::default(),
            &TokenRequest {
                spec: Some(TokenRequestSpec {
                    expiration_seconds: Some(3600),
                    ..Default::default()
                }),
                ..Default::default()
            },
        )
        .await
        .expect("TokenRequest");
    let kc = kube::config::Kubeconfig::read_from(kubeconfig).unwrap();
    let cluster = kc.clusters[0].cluster.clone().unwrap();
    let ca = cluster
        .certificate_authority_data
        .expect("sandbox kubeconfig has its CA");
    use base64::Engine;
    let ca = base64::engine::general_purpose::STANDARD
        .decode(ca)
        .unwrap();
    (
        tr.status.unwrap().token.expect("token"),
        String::from_utf8(ca).unwrap(),
        cluster.server.unwrap(),
    )
}

/// python3 that can import `module` (e.g. the MCP SDK `mcp`); missing is
/// a failure under CI as for any external program (`.ci/run` installs it).
pub fn python_with(test: &str, module: &str) -> Option<PathBuf> {
    let python = external_program(test, "python3", Some("PYTHON"), &["/usr/bin/python3"])?;
    let ok = Command::new(&python)
        .args(["-c", &format!("import {module}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        missing(
            test,
            &format!(
                "{} cannot import {module} (pip install {module})",
                python.display()
            ),
        );
        return None;
    }
    Some(python)
}
