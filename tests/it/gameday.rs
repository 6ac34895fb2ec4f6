//! Game-day mode, driven through a pseudo-terminal the way an operator
//! would: a note, Enter, a skip, a pause on failure, an abort; what they did
//! ends up in the JSON and HTML reports. Without a terminal it is refused.

use crate::common;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::Case;
use expectrl::{Eof, Session};
use serde_json::Value;

fn suite(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("suites")
        .join(name)
        .join("suite.yaml")
        .display()
        .to_string()
}

#[test]
fn interactive_without_a_terminal_is_exit_2() {
    let case = Case::suite("");
    for flag in ["--interactive", "--pause-on-failure"] {
        let out = case.exec(&[
            "run".into(),
            suite("scale-to-zero"),
            "--sandbox".into(),
            flag.into(),
        ]);
        out.assert_code(2);
        assert!(
            out.stderr.contains("need a terminal on stdin"),
            "{}",
            out.stderr
        );
    }
}

#[test]
fn operator_notes_runs_skips_pauses_and_aborts_through_a_pty() {
    let case = Case::suite("");
    let mut cmd = Command::new(common::bin());
    cmd.current_dir(case.dir.path())
        .env("NO_COLOR", "1")
        .env_remove("KUBECONFIG")
        .args([
            "run",
            &suite("service-latency"),
            "--sandbox",
            "--locked",
            "--interactive",
            "--pause-on-failure",
            "--report-json",
            "report.json",
            "--report-html",
            "report.html",
        ]);
    let mut p = Session::spawn(cmd).expect("spawn in a pty");
    p.set_expect_timeout(Some(Duration::from_secs(90)));
    // Scenario 1 (Chaos Mesh): a note, then Enter runs the fault.
    p.expect("latency on half the pods (Chaos Mesh): step 1/1")
        .unwrap();
    p.expect("[a] abort > ").unwrap();
    p.send_line("n").unwrap();
    p.expect("note> ").unwrap();
    p.send_line("grafana: p99 still flat").unwrap();
    p.expect("[a] abort > ").unwrap();
    p.send_line("").unwrap();
    // Scenario 2 (Litmus): skipped, so its ChaosEngine check fails and we pause.
    p.expect("latency on half the pods (Litmus): step 1/1")
        .unwrap();
    p.expect("[a] abort > ").unwrap();
    p.send_line("s").unwrap();
    p.expect("failed: the experiment runs").unwrap();
    p.expect("[Enter] restore and continue").unwrap();
    p.send_line("n").unwrap();
    p.expect("note> ").unwrap();
    p.send_line("no ChaosEngine, as expected after the skip")
        .unwrap();
    p.expect("[n] note > ").unwrap();
    p.send_line("").unwrap();
    // The locked AI scenario: abort (restore, exit 4).
    p.expect("ai: moderate latency on every v1 pod: step 1/1")
        .unwrap();
    p.expect("[a] abort > ").unwrap();
    p.send_line("a").unwrap();
    p.expect(Eof).unwrap();

    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(case.path("report.json")).unwrap()).unwrap();
    assert_eq!(report["exitCode"], 4, "aborted by the operator");
    let cases: Vec<&Value> = report["suites"][0]["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["kind"] == "scenario")
        .collect();
    assert_eq!(cases[0]["status"], "passed");
    assert_eq!(cases[0]["notes"][0]["kind"], "note");
    assert_eq!(cases[0]["notes"][0]["text"], "grafana: p99 still flat");
    assert!(cases[0]["notes"][0]["atMs"].is_u64());
    assert_eq!(cases[1]["status"], "failed");
    assert_eq!(cases[1]["steps"][0]["outcome"], "skipped");
    let kinds: Vec<&str> = cases[1]["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["skip", "pause", "note"]);
    assert_eq!(cases[2]["status"], "errored");
    assert_eq!(cases[2]["notes"][0]["kind"], "abort");
    assert!(report["restore"]["leftBehind"]
        .as_array()
        .unwrap()
        .is_empty());
    let html = std::fs::read_to_string(case.path("report.html")).unwrap();
    assert!(html.contains("grafana: p99 still flat"));
    assert!(html.contains("no ChaosEngine, as expected after the skip"));
}
