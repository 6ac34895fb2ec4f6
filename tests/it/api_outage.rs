//! The API server goes away mid-run (the run stops before its next change,
//! cannot restore) or mid-restore (part of the undo is done): either way
//! the run exits 5 saying what is left, and once the server is back,
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
    /// Each chunk forwarded 20 ms late: a slow link, so a restore takes long
    /// enough to be cut in the middle.
    slow: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    fn start(upstream: String, port: u16) -> Proxy {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind the proxy port");
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(true));
        let slow = Arc::new(AtomicBool::new(false));
        let conns: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (u, c, sl) = (up.clone(), conns.clone(), slow.clone());
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
                    let sl = sl.clone();
                    std::thread::spawn(move || {
                        let mut buf = [0u8; 16384];
                        while let Ok(n) = from.read(&mut buf) {
                            if sl.load(Ordering::SeqCst) {
                                std::thread::sleep(Duration::from_millis(20));
                            }
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
        Proxy {
            port,
            up,
            slow,
            conns,
        }
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

/// A proxy in front of `cluster`, and a kubeconfig in `dir` that goes
/// through it: (the proxy, that kubeconfig, the address proxied to).
fn behind_a_proxy(
    cluster: &common::SandboxProcess,
    dir: &std::path::Path,
) -> (Proxy, std::path::PathBuf, String) {
    let server = cluster.server();
    let upstream = server.trim_start_matches("https://").to_string();
    let proxy = Proxy::start(upstream.clone(), 0);
    let proxied = dir.join("kubeconfig");
    let direct = std::fs::read_to_string(&cluster.kubeconfig).unwrap();
    std::fs::write(
        &proxied,
        direct.replace(&server, &format!("https://127.0.0.1:{}", proxy.port)),
    )
    .unwrap();
    (proxy, proxied, upstream)
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
    let dir = tempfile::tempdir().unwrap();
    let (proxy, proxied, upstream) = behind_a_proxy(&cluster, dir.path());
    std::fs::write(dir.path().join("suite.yaml"), SUITE).unwrap();
    let exists = |name: &str| cluster.kubectl(&kubectl, &["get", "configmap", name]).0;

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

#[test]
fn a_restore_cut_short_by_the_api_server_going_away_is_finished_by_recover() {
    use std::io::BufRead;
    let test = "a_restore_cut_short_by_the_api_server_going_away_is_finished_by_recover";
    let Some(kubectl) = common::kubectl(test) else {
        return;
    };
    const N: usize = 120;
    let cluster = common::SandboxProcess::start();
    let dir = tempfile::tempdir().unwrap();
    let (proxy, proxied, upstream) = behind_a_proxy(&cluster, dir.path());
    let mut suite = String::from(
        "apiVersion: heatcheck.dev/v1alpha1\nkind: Suite\nmetadata: {name: many}\nspec:\n  target: {namespace: default}\n  scenarios:\n    - name: many changes\n      steps:\n",
    );
    for i in 0..N {
        suite.push_str(&format!(
            "        - apply:\n            manifest: |\n              apiVersion: v1\n              kind: ConfigMap\n              metadata: {{name: made-{i:03}, labels: {{made: by-the-run}}}}\n"
        ));
    }
    std::fs::write(dir.path().join("suite.yaml"), suite).unwrap();
    let made = || {
        let (_, names, _) = cluster.kubectl(
            &kubectl,
            &["get", "configmaps", "-l", "made=by-the-run", "-o", "name"],
        );
        names.lines().count()
    };

    let mut run = Command::new(common::bin())
        .current_dir(dir.path())
        .args(["run", "suite.yaml", "--kubeconfig"])
        .arg(&proxied)
        .args(["--restore-timeout", "5s"])
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = run.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if line.contains("restoring") {
                let _ = tx.send(line.clone());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    // The restore starts: slow the link, let part of it through, then cut it.
    rx.recv_timeout(Duration::from_secs(60))
        .expect("the run never started its restore");
    proxy.slow.store(true, Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(800));
    proxy.shut();
    let t0 = Instant::now();
    let status = run.wait().unwrap();
    // --restore-timeout 5s is a promise: the run gives up then, it does not
    // ask a server that is gone about every object left (it took 60 s).
    assert!(
        t0.elapsed() < Duration::from_secs(30),
        "the run took {:?} to give up after --restore-timeout 5s",
        t0.elapsed()
    );
    let stdout = reader.join().unwrap();
    let mut stderr = String::new();
    run.stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(status.code(), Some(5), "{stdout}\n{stderr}");
    let left = made();
    assert!(
        left > 0 && left < N,
        "the cut came {} the restore: {left} of {N} left",
        if left == 0 { "after" } else { "before" }
    );
    assert!(
        stderr.contains("the cluster is not fully restored")
            && stderr.contains("heatcheck recover"),
        "{stderr}"
    );

    let _back = Proxy::start(upstream, proxy.port);
    let rec = common::heatcheck_in(dir.path(), &["recover"]);
    assert_eq!(rec.code, 0, "{}\n{}", rec.stdout, rec.stderr);
    assert_eq!(made(), 0, "recover left some behind");
    let runs = common::heatcheck_in(dir.path(), &["runs"]);
    assert!(
        runs.stdout.contains("No unfinished runs"),
        "{}",
        runs.stdout
    );
}
