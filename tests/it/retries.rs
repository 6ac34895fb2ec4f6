//! `--retries` / `defaults.retries`: a failed scenario is restored and run
//! again; passed after a failure is flaky. JUnit carries every attempt as
//! Maven Surefire and nextest write them.

use crate::common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::{junit_counts, Case};

/// A real HTTP/1.1 server on 127.0.0.1:0 that answers 503 to the first
/// `failures` requests and 200 afterwards: a backend that recovers.
fn recovering_server(failures: usize) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/health", listener.local_addr().unwrap());
    let seen = Arc::new(AtomicUsize::new(0));
    let count = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            // Request line and headers, up to the blank line.
            while reader.read_line(&mut line).unwrap_or(0) > 0 && line != "\r\n" {
                line.clear();
            }
            let n = count.fetch_add(1, Ordering::SeqCst);
            let status = if n < failures {
                "503 Service Unavailable"
            } else {
                "200 OK"
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"
            );
        }
    });
    (url, seen)
}

fn suite(retries: u32, url: &str) -> String {
    format!(
        r#"apiVersion: heatcheck.dev/v1alpha1
kind: Suite
metadata: {{name: retries}}
spec:
  target: {{namespace: retry-ns, createNamespace: true}}
  defaults: {{timeout: 10s, interval: 100ms, retries: {retries}}}
  scenarios:
    - name: backend recovers
      steps:
        - apply:
            manifest: |
              apiVersion: v1
              kind: ConfigMap
              metadata: {{name: marker}}
      assertions:
        - name: health is 200
          http: {{url: "{url}", expect: {{status: 200}}}}
"#
    )
}

const ALWAYS_FAILS: &str = r#"apiVersion: heatcheck.dev/v1alpha1
kind: Suite
metadata: {name: retries}
spec:
  target: {namespace: retry-ns, createNamespace: true}
  defaults: {timeout: 5s, interval: 100ms}
  scenarios:
    - name: never holds
      steps:
        - apply:
            manifest: |
              apiVersion: v1
              kind: ConfigMap
              metadata: {name: marker}
      assertions:
        - present: {kind: ConfigMap, name: does-not-exist}
"#;

/// Names of the direct children of every <testcase>, per case.
fn testcase_children(xml: &str) -> Vec<Vec<String>> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut cases: Vec<Vec<String>> = Vec::new();
    let mut depth_in_case: Option<usize> = None;
    loop {
        match reader.read_event().unwrap() {
            Event::Start(e) => {
                let name = String::from_utf8(e.name().as_ref().to_vec()).unwrap();
                match depth_in_case {
                    None if name == "testcase" => {
                        cases.push(Vec::new());
                        depth_in_case = Some(0);
                    }
                    Some(0) => {
                        cases.last_mut().unwrap().push(name);
                        depth_in_case = Some(1);
                    }
                    Some(d) => depth_in_case = Some(d + 1),
                    None => {}
                }
            }
            Event::Empty(e) => {
                let name = String::from_utf8(e.name().as_ref().to_vec()).unwrap();
                match depth_in_case {
                    None if name == "testcase" => cases.push(Vec::new()),
                    Some(0) => cases.last_mut().unwrap().push(name),
                    _ => {}
                }
            }
            Event::End(_) => {
                depth_in_case = match depth_in_case {
                    Some(0) => None,
                    Some(d) => Some(d - 1),
                    None => None,
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    cases
}

#[test]
fn a_scenario_that_always_fails_runs_every_attempt_and_reports_reruns() {
    let case = Case::suite(ALWAYS_FAILS).args(["--retries", "2"]);
    let out = case.run_sandbox();
    out.assert_code(1);
    let junit = out.junit();
    let (cases, failures, errors, _) = junit_counts(&junit);
    // The fixtures (namespace) case and the scenario.
    assert_eq!((cases, failures, errors), (2, 1, 0), "{junit}");
    let children = testcase_children(&junit);
    let reruns = children[1].iter().filter(|c| *c == "rerunFailure").count();
    assert_eq!(reruns, 2, "{junit}");
    let report = out.report();
    let sc = &report["suites"][0]["cases"][1];
    assert_eq!(sc["status"], "failed");
    assert_eq!(sc["failedAttempts"].as_array().unwrap().len(), 2);
    assert!(out.stdout.contains("3 attempts"), "{}", out.stdout);
}

#[test]
fn fail_once_then_pass_is_flaky_passes_and_keeps_the_failed_attempt() {
    let (url, seen) = recovering_server(1);
    let case = Case::suite(&suite(2, &url));
    let out = case.run_sandbox();
    out.assert_code(0);
    assert_eq!(
        seen.load(Ordering::SeqCst),
        2,
        "one failed and one passing request"
    );
    let junit = out.junit();
    let (cases, failures, errors, _) = junit_counts(&junit);
    assert_eq!((cases, failures, errors), (2, 0, 0), "{junit}");
    assert_eq!(
        testcase_children(&junit)[1],
        ["system-out", "flakyFailure"],
        "{junit}"
    );
    assert!(junit.contains("expected status 200, got 503"), "{junit}");
    let report = out.report();
    let sc = &report["suites"][0]["cases"][1];
    assert_eq!(sc["status"], "passed");
    assert_eq!(sc["failedAttempts"][0]["status"], "failed");
    assert!(out.stdout.contains("flaky"), "{}", out.stdout);
    assert!(out.stdout.contains("2 passed (1 flaky)"), "{}", out.stdout);
}

#[test]
fn flaky_fails_turns_a_flaky_verdict_into_exit_1() {
    let (url, _) = recovering_server(1);
    let out = Case::suite(&suite(1, &url))
        .args(["--flaky-fails"])
        .run_sandbox();
    out.assert_code(1);
    assert!(
        out.stderr
            .contains("--flaky-fails: 1 flaky scenario(s): backend recovers"),
        "{}",
        out.stderr
    );
}

#[test]
fn without_retries_a_failure_is_not_retried() {
    let (url, seen) = recovering_server(1);
    let out = Case::suite(&suite(0, &url)).run_sandbox();
    out.assert_code(1);
    assert_eq!(seen.load(Ordering::SeqCst), 1);
}

#[test]
fn a_scenario_stopped_by_a_stop_condition_is_never_retried() {
    let case = Case::suite(
        r#"apiVersion: heatcheck.dev/v1alpha1
kind: Suite
metadata: {name: retries}
spec:
  target: {namespace: retry-ns, createNamespace: true}
  defaults: {timeout: 10s, interval: 100ms, retries: 3}
  stopConditions:
    - resource: {kind: ConfigMap, name: marker, jsonpath: $.data.k, equals: tripped}
  scenarios:
    - name: trips its stop condition
      steps:
        - apply:
            manifest: |
              apiVersion: v1
              kind: ConfigMap
              metadata: {name: marker}
              data: {k: tripped}
        - sleep: 5s
      assertions:
        - present: {kind: ConfigMap, name: marker}
"#,
    );
    let out = case.run_sandbox();
    out.assert_code(4);
    let report = out.report();
    let sc = &report["suites"][0]["cases"][1];
    assert_eq!(sc["status"], "errored", "{sc}");
    assert!(sc.get("failedAttempts").is_none(), "{sc}");
    assert!(!out.stdout.contains("running it again"), "{}", out.stdout);
}
