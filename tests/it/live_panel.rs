//! The live panel, end to end: the real binary on a pseudo-terminal against
//! the sandbox, scaling the backend to zero under a probe. On a terminal the
//! panel redraws in place (elapsed time, current step, the probe's success
//! rate, p99 and the outage, the stop conditions armed) and is gone when the
//! summary prints; with `--interactive` it freezes while the prompt waits.
//! Off a terminal, with `--output json` or `--no-live` there is none of it.

use crate::common;

use std::time::Duration;

use common::{args, suite_with, Case, BASE};
use serde_json::Value;

/// Scale to zero (the gateway answers 503: an outage for the probe), hold it
/// for 3s, scale back. The stop conditions are armed but never fire.
const BODY: &str = r#"  policy: {maxPodsAffected: 100}  # every web pod goes, on purpose
  probes:
    - name: shop
      http: {url: '{{gateway "gw"}}/shop', headers: {Host: shop.example.com}}
      every: 50ms
  stopConditions:
    - probe: shop
      successRate: {below: 0.01, for: 60s}
    - maxDuration: 5m
  scenarios:
    - name: zero and back
      steps:
        - scale: {name: web, replicas: 0}
        # Terminating for the default 30s grace period first.
        - wait: {kind: Pod, selector: app=web, present: false, timeout: 45s}
        - sleep: 3s
        - scale: {name: web, replicas: 2}
        - wait: {kind: Deployment, name: web, available: true}
      assertions:
        - present: {kind: Service, name: web}
"#;

fn case(ns: &str) -> Case {
    Case::suite(&suite_with(ns, BODY)).file("base.yaml", BASE)
}

fn run_args(extra: &[&str]) -> Vec<String> {
    let mut a = args(&[
        "run",
        "suite.yaml",
        "--sandbox",
        "--report-json",
        "report.json",
    ]);
    a.extend(args(extra));
    a
}

fn report(case: &Case) -> Value {
    serde_json::from_str(&std::fs::read_to_string(case.path("report.json")).unwrap()).unwrap()
}

#[test]
fn on_a_terminal_the_panel_shows_the_step_the_probe_its_outage_and_the_stop_conditions() {
    let case = case("e2e-live");
    let mut pty = case.pty(&run_args(&[]));
    // The frames as they were drawn (escapes and all) arrive while it runs.
    pty.expect("step 3/5 sleep 3s");
    pty.expect("OUTAGE");
    let code = pty.finish();
    let text = pty.text();
    assert_eq!(code, 0, "{text}");
    for want in [
        "heatcheck live ",
        " · suite 1/1 e2e",
        "▶ zero and back · ",
        "step 1/5 ✓ scale Deployment/web to 0 (",
        "  probe shop ",
        "% ok",
        " p99 ",
        " failed",
        " failed in a row)",
        "stop if: probe shop success rate < 0.01 over 1m · maxDuration 5m",
    ] {
        assert!(text.contains(want), "{want:?} never shown:\n{text}");
    }
    // Redrawn in place: the frame moves the cursor back up over itself.
    assert!(text.contains("\x1b[J"), "{text:?}");
    // NO_COLOR: no colours, but still a panel.
    assert!(
        !text.contains("\x1b[31m") && !text.contains("\x1b[1m"),
        "{text:?}"
    );
    // What is left on screen: the summary, no panel, the cursor shown.
    let (rows, cursor) = pty.screen();
    let screen = rows.join("\n");
    assert!(!screen.contains("heatcheck live"), "{screen}");
    assert!(screen.contains(" passed, 0 failed, 0 errored"), "{screen}");
    assert!(screen.contains("\nSummary\n"), "{screen}");
    // Every line the line reporter printed is whole, once.
    assert_eq!(
        rows.iter()
            .filter(|r| r.starts_with("    [+") && r.contains(" ok   sleep 3s ("))
            .count(),
        1,
        "{screen}"
    );
    assert!(cursor, "cursor restored");
    // The report is what it always was: the probe saw the outage too.
    let report = report(&case);
    let sc = &report["suites"][0]["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "zero and back")
        .unwrap()
        .clone();
    assert!(
        !sc["probes"][0]["outages"].as_array().unwrap().is_empty(),
        "{sc}"
    );
}

#[test]
fn with_interactive_the_prompt_stays_readable_and_the_keys_work() {
    let case = case("e2e-live-prompt");
    let mut pty = case.pty(&run_args(&["--interactive"]));
    pty.expect("zero and back: step 1/5: scale Deployment/web to 0");
    pty.expect("[a] abort > ");
    // While the prompt waits the panel draws nothing (probes keep running).
    assert!(
        pty.quiet_for(Duration::from_millis(1500)),
        "written while the prompt waited:\n{:?}",
        pty.text()
    );
    // On screen: the prompt on the last row, the frozen panel above it.
    let (rows, _) = pty.screen();
    assert!(rows.last().unwrap().ends_with("[a] abort >"), "{rows:#?}");
    assert!(
        rows.iter().any(|r| r.contains("waiting for the operator")),
        "{rows:#?}"
    );
    // A note: what is typed stays on its line, nothing is drawn over it.
    pty.send_line("n");
    pty.expect("note> ");
    pty.send_line("503s at the edge");
    pty.expect("noted");
    pty.expect("[a] abort > ");
    pty.send_line("");
    for step in ["2/5", "3/5", "4/5", "5/5"] {
        pty.expect(&format!("zero and back: step {step}"));
        pty.expect("[a] abort > ");
        pty.send_line("");
    }
    let code = pty.finish();
    let text = pty.text();
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("[a] abort > n\r\nnote> 503s at the edge\r\nnoted\r\n"),
        "{text:?}"
    );
    // The panel ran between prompts, and showed the note.
    assert!(text.contains("note +"), "{text}");
    assert!(text.contains("503s at the edge"));
    let report = report(&case);
    let notes = report["suites"][0]["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "zero and back")
        .unwrap()["notes"]
        .clone();
    assert_eq!(notes[0]["text"], "503s at the edge", "{notes}");
}

#[test]
fn no_panel_off_a_terminal_with_json_output_or_no_live() {
    // Piped: line output as always, not one escape.
    let case = case("e2e-live-pipe");
    let out = case.exec(&run_args(&[]));
    out.assert_code(0);
    assert!(!out.stdout.contains('\x1b'), "{:?}", out.stdout);
    assert!(!out.stderr.contains('\x1b'), "{:?}", out.stderr);
    assert!(!out.stdout.contains("heatcheck live"), "{}", out.stdout);
    assert!(out.stdout.contains("ok   sleep 3s"), "{}", out.stdout);

    // `--output json` on a terminal: JSON lines only, the live events among them.
    let case = self::case("e2e-live-json");
    let mut pty = case.pty(&run_args(&["--output", "json"]));
    assert_eq!(pty.finish(), 0, "{}", pty.text());
    let text = pty.text();
    assert!(!text.contains('\x1b'), "{text:?}");
    // (stderr shares the terminal: its notes, if any, are not events.)
    let events: Vec<Value> = text
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l.trim_end_matches('\r')).expect("each line is JSON"))
        .collect();
    let of = |name: &str| events.iter().filter(|e| e["event"] == name).count();
    assert_eq!(
        of("stepStarted"),
        4 + 5,
        "the namespace, three fixtures, five scenario steps"
    );
    assert_eq!(of("stopConditionsArmed"), 1);
    assert!(of("probeWindow") >= 2, "{text}");
    let outage = events
        .iter()
        .filter(|e| e["event"] == "probeWindow")
        .find(|e| !e["probes"][0]["outage"].is_null())
        .unwrap_or_else(|| panic!("no outage in the probe windows: {text}"));
    assert!(outage["probes"][0]["outage"]["failures"].as_u64().unwrap() > 0);
    assert_eq!(events.last().unwrap()["event"], "runFinished");

    // `--no-live` on a terminal: the spinners of before, no panel.
    let case = self::case("e2e-live-off");
    let mut pty = case.pty(&run_args(&["--no-live"]));
    assert_eq!(pty.finish(), 0, "{}", pty.text());
    let text = pty.text();
    assert!(!text.contains("heatcheck live"), "{text}");
    assert!(text.contains("✓ zero and back"), "{text}");
}

#[test]
fn ctrl_c_restores_and_leaves_a_clean_screen() {
    let case = case("e2e-live-ctrl-c");
    let mut pty = case.pty(&run_args(&[]));
    pty.expect("step 3/5 sleep 3s");
    pty.interrupt();
    pty.expect("heatcheck: interrupted; stopping and restoring the cluster");
    let code = pty.finish();
    let text = pty.text();
    assert_eq!(code, 4, "{text}");
    let (rows, cursor) = pty.screen();
    let screen = rows.join("\n");
    // The message is whole on its own row: the panel moved out of its way.
    assert!(
        rows.iter().any(|r| r
            == "heatcheck: interrupted; stopping and restoring the cluster (Ctrl-C again to stop"),
        "{screen}"
    );
    assert!(!screen.contains("heatcheck live"), "{screen}");
    assert!(
        screen.contains("aborted; changes were restored"),
        "{screen}"
    );
    assert!(cursor, "cursor restored");
    assert_eq!(report(&case)["exitCode"], 4);
}
