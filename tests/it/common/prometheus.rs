//! Real Prometheus servers for the tests: the Debian `prometheus` and
//! `prometheus-pushgateway` binaries (`.ci/run` installs them), on free loopback ports with
//! temporary storage, and a `heatcheck sandbox` whose `/metrics` they scrape.
//!
//! A missing binary fails the test under CI (`CI` set) and skips it elsewhere with a
//! visible `SKIPPED` line on stderr.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// The binary's path, or None after saying why the test is skipped. Panics under CI.
pub fn find_program(test: &str, name: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/local/bin")])
        .map(|d| d.join(name))
        .find(|p| p.is_file());
    if found.is_none() {
        let why = format!(
            "{name} is not installed (Debian: apt-get install -y prometheus prometheus-pushgateway)"
        );
        super::missing(test, &format!("{why}; .ci/run installs it"));
    }
    found
}

/// `promtool check metrics` on a textfile: what node-exporter's textfile
/// collector parses, checked by Prometheus's own linter. Needs promtool
/// ([`find_program`]: a failure under CI, a SKIPPED line elsewhere).
pub fn promtool_check(test: &str, file: &Path) {
    let Some(promtool) = find_program(test, "promtool") else {
        return;
    };
    let lint = std::process::Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(file).unwrap())
        .output()
        .expect("promtool runs");
    assert!(
        lint.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&lint.stdout),
        String::from_utf8_lossy(&lint.stderr)
    );
}

/// A port that was free a moment ago (the server binds it next; a lost race is retried).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// GET on loopback with a plain HTTP/1.0 request: (status, body).
pub fn http_get(url: &str) -> std::io::Result<(u16, String)> {
    let rest = url.strip_prefix("http://").expect("http URL");
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let mut s = std::net::TcpStream::connect(host)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(s, "GET /{path} HTTP/1.0\r\nHost: {host}\r\n\r\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    Ok((status, body.to_string()))
}

/// A server process on a free port, killed on drop.
pub struct Server {
    child: Child,
    pub url: String,
    _dir: TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_ready(
    program: &Path,
    dir: TempDir,
    args: impl Fn(u16) -> Vec<String>,
    ready_path: &str,
) -> Server {
    let mut last = String::new();
    for _ in 0..3 {
        let port = free_port();
        let log = dir.path().join(format!("log-{port}.txt"));
        let mut child = Command::new(program)
            .args(args(port))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", program.display()));
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(_)) = child.try_wait() {
                last = std::fs::read_to_string(&log).unwrap_or_default();
                break; // lost the port race, or a real failure: try again, then report
            }
            if matches!(http_get(&format!("{url}{ready_path}")), Ok((200, _))) {
                return Server {
                    child,
                    url,
                    _dir: dir,
                };
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                last = std::fs::read_to_string(&log).unwrap_or_default();
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    panic!("{} did not become ready:\n{last}", program.display());
}

/// `prometheus` scraping `target` (host:port, path /metrics) every second.
pub fn start_prometheus(program: &Path, target: &str) -> Server {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\n\
             scrape_configs:\n  - job_name: heatcheck-sandbox\n    static_configs: [{{targets: ['{target}']}}]\n"
        ),
    )
    .expect("write config");
    let storage = dir.path().join("data");
    spawn_ready(
        program,
        dir,
        move |port| {
            vec![
                format!("--config.file={}", config.display()),
                format!("--storage.tsdb.path={}", storage.display()),
                format!("--web.listen-address=127.0.0.1:{port}"),
                "--log.level=warn".into(),
            ]
        },
        "/-/ready",
    )
}

/// `prometheus-pushgateway` with no persistence.
pub fn start_pushgateway(program: &Path) -> Server {
    let dir = tempfile::tempdir().expect("temp dir");
    spawn_ready(
        program,
        dir,
        |port| {
            vec![
                format!("--web.listen-address=127.0.0.1:{port}"),
                "--log.level=warn".into(),
            ]
        },
        "/-/ready",
    )
}

/// `heatcheck sandbox` in its own process, with its metrics URL (from its `metrics URL`
/// line) and kubeconfig.
pub struct MetricsSandbox {
    child: Child,
    pub kubeconfig: PathBuf,
    pub metrics_url: String,
    _dir: TempDir,
}

impl MetricsSandbox {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        let mut child = Command::new(env!("CARGO_BIN_EXE_heatcheck"))
            .args(["sandbox", "--metrics-port", "0", "--kubeconfig"])
            .arg(&kubeconfig)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start heatcheck sandbox");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let mut metrics_url = None;
        let mut kubeconfig_written = false;
        for line in lines.by_ref() {
            let line = line.expect("sandbox output");
            if let Some(url) = line.strip_prefix("metrics URL ") {
                metrics_url = Some(url.trim().to_string());
            }
            if line.starts_with("kubeconfig ") {
                kubeconfig_written = true;
            }
            if metrics_url.is_some() && kubeconfig_written {
                break;
            }
        }
        // Keep draining so the sandbox never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        MetricsSandbox {
            child,
            kubeconfig,
            metrics_url: metrics_url.expect("the sandbox printed a `metrics URL` line"),
            _dir: dir,
        }
    }

    /// host:port of the metrics endpoint, for a scrape config.
    pub fn metrics_target(&self) -> String {
        let rest = self.metrics_url.strip_prefix("http://").unwrap();
        rest.split('/').next().unwrap().to_string()
    }
}

impl Drop for MetricsSandbox {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
