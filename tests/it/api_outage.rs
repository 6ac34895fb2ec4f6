//! The API server goes away mid-run: the run stops before its next change,
//! cannot restore, and exits 5 saying what is left; once the server is back,
//! `heatcheck recover` finishes. "Goes away" is a TCP proxy in front of a
//! `heatcheck sandbox` process that is shut (connections refused), so the
//! cluster's state survives for recover, as a restarted API server's would.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common;

/// Forwards 127.0.0.1:port to `upstream` until shut.
struct Proxy {
    port: u16,
    up: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    fn start(upstream: String, port: u16) -> Proxy {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind the proxy port");
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(true));
        let conns: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (u, c) = (up.clone(), conns.clone());
        listener.set_nonblocking(true).unwrap();
        std::thread::spawn(move || {
            while u.load(Ordering::SeqCst) {
                let Ok((client, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                client.set_nonblocking(false).unwrap();
                let Ok(server) = TcpStream::connect(&upstream) else {
                    continue;
                };
                c.lock().unwrap().push(client.try_clone().unwrap());
                c.lock().unwrap().push(server.try_clone().unwrap());
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    std::thread::spawn(move || {
                        let mut buf = [0u8; 16384];
                        while let Ok(n) = from.read(&mut buf) {
                            if n == 0 || to.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                        let _ = to.shutdown(Shutdown::Both);
                    });
                }
            }
            // Dropping the listener refuses new connections from here on.
        });
        Proxy { port, up, conns }
    }

    /// The API server is gone: the port refuses, open connections drop.
    fn shut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for c in self.conns.lock().unwrap().drain(..) {
            let _ = c.shutdown(Shutdown::Both);
        }
        // The accept loop notices within its poll interval and drops the listener.
        std::thread::sleep(Duration::from_millis(100));
    }
}

const SUITE: &str = r#"apiVersion: heatcheck.dev/v1alpha1
kind: Suite
metadata: {name: outage}
spec:
  target: {namespace: default}
  scenarios:
    - name: the API server goes away
      steps:
        - apply:
            manifest: |
              apiVersion: v1
              kind: ConfigMap
              metadata: {name: before-the-outage}
        - sleep: 4s
        - apply:
            manifest: |
              apiVersion: v1
              kind: ConfigMap
              metadata: {name: after-the-outage}
"#;

#[test]
fn a_run_whose_api_server_goes_away_exits_5_and_recover_finishes_once_it_is_back() {
    let test = "a_run_whose_api_server_goes_away_exits_5_and_recover_finishes_once_it_is_back";
    let Some(kubectl) = common::kubectl(test) else {
        return;
    };
    let cluster = common::SandboxProcess::start();
    let direct = std::fs::read_to_string(&cluster.kubeconfig).unwrap();
    let server = direct
        .lines()
        .find_map(|l| l.trim().strip_prefix("server: "))
        .expect("the kubeconfig names its server")
        .to_string();
    let upstream = server.trim_start_matches("https://").to_string();
    let proxy = Proxy::start(upstream.clone(), 0);
    let dir = tempfile::tempdir().unwrap();
    let proxied = dir.path().join("kubeconfig");
    std::fs::write(
        &proxied,
        direct.replace(&server, &format!("https://127.0.0.1:{}", proxy.port)),
    )
    .unwrap();
    std::fs::write(dir.path().join("suite.yaml"), SUITE).unwrap();
    let exists = |name: &str| {
        Command::new(&kubectl)
            .arg("--kubeconfig")
            .arg(&cluster.kubeconfig)
            .args(["get", "configmap", name])
            .output()
            .is_ok_and(|o| o.status.success())
    };

    let run = Command::new(common::bin())
        .current_dir(dir.path())
        .args(["run", "suite.yaml", "--kubeconfig"])
        .arg(&proxied)
        .args(["--restore-timeout", "5s"])
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !exists("before-the-outage") {
        assert!(
            Instant::now() < deadline,
            "the run never made its first change"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Mid-run (the 4 s sleep): the API server is gone.
    proxy.shut();
    let out = run.wait_with_output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(5), "{stdout}\n{stderr}");
    // It stopped before its next change and says what is left and how to finish.
    assert!(
        !exists("after-the-outage"),
        "a change was made after the outage"
    );
    assert!(exists("before-the-outage"));
    assert!(
        stderr.contains("the cluster is not fully restored")
            && stderr.contains("heatcheck recover"),
        "{stderr}"
    );
    assert!(stdout.contains("before-the-outage"), "{stdout}");

    // The server is back (same address, same state): recover finishes.
    let _back = Proxy::start(upstream, proxy.port);
    let rec = common::heatcheck_in(dir.path(), &["recover"]);
    assert_eq!(rec.code, 0, "{}\n{}", rec.stdout, rec.stderr);
    assert!(!exists("before-the-outage"), "recover left it");
    let runs = common::heatcheck_in(dir.path(), &["runs"]);
    assert!(
        runs.stdout.contains("No unfinished runs"),
        "{}",
        runs.stdout
    );
}
