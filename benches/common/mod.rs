//! Helpers shared by the bench binaries: a `heatcheck sandbox` child process,
//! /proc memory readings, kube clients and the figure/target printout.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// The real product binary, built by cargo for benches.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_heatcheck"))
}

/// `heatcheck sandbox` in its own process, killed on drop.
pub struct SandboxChild {
    child: Child,
    pub kubeconfig: PathBuf,
    pub dir: TempDir,
}

impl SandboxChild {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let kubeconfig = dir.path().join("kubeconfig");
        let child = Command::new(bin())
            .args(["sandbox", "--kubeconfig"])
            .arg(&kubeconfig)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start heatcheck sandbox");
        let deadline = Instant::now() + Duration::from_secs(30);
        while !std::fs::read_to_string(&kubeconfig)
            .unwrap_or_default()
            .contains("current-context")
        {
            assert!(
                Instant::now() < deadline,
                "heatcheck sandbox did not write its kubeconfig within 30s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        SandboxChild {
            child,
            kubeconfig,
            dir,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn kubeconfig_yaml(&self) -> String {
        std::fs::read_to_string(&self.kubeconfig).expect("read kubeconfig")
    }
}

impl Drop for SandboxChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `VmXXX:   1234 kB` field of /proc/<pid>/status, in KiB.
pub fn proc_status_kib(pid: &str, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

pub fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// A kube client for a kubeconfig text (the sandbox writes one context).
pub async fn kube_client(kubeconfig_yaml: &str) -> kube::Client {
    let kc = kube::config::Kubeconfig::from_yaml(kubeconfig_yaml).expect("kubeconfig parses");
    let cfg = kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
        .await
        .expect("kubeconfig is usable");
    kube::Client::try_from(cfg).expect("kube client")
}

pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A ConfigMap with `payload_bytes` of data, as JSON.
pub fn config_map(name: &str, payload_bytes: usize) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "labels": {"app": "bench"}},
        "data": {"payload": "x".repeat(payload_bytes)}
    })
}

/// One target line: the figure, the target and PASS/MISS. Benches never fail on it.
pub struct Target {
    pub name: String,
    pub measured: String,
    pub target: String,
    pub pass: bool,
}

impl Target {
    pub fn new(name: &str, measured: String, target: &str, pass: bool) -> Self {
        Target {
            name: name.into(),
            measured,
            target: target.into(),
            pass,
        }
    }
}

pub fn print_targets(title: &str, targets: &[Target]) {
    println!("\n== {title}: targets (informational, the bench never fails on them) ==");
    for t in targets {
        println!(
            "  {:<4} {:<44} measured {:<16} target {}",
            if t.pass { "PASS" } else { "MISS" },
            t.name,
            t.measured,
            t.target
        );
    }
}

pub fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.total_cmp(b));
    xs[xs.len() / 2]
}

/// Runs a shell-free command and returns its stdout, panicking with its output on failure.
pub fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().expect("spawn");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
