//! End to end: continuous probes and stop conditions, with the real binary
//! against the sandbox.

use crate::common;

use std::time::Duration;

use common::{args, junit_failures, suite_with, tokio_block, Case, SandboxProcess, BASE};
use serde_json::Value;

const PROBE: &str = r#"      http: {url: '{{gateway "gw"}}/shop', headers: {Host: shop.example.com}}
      every: 20ms
"#;

fn scenario_case(report: &Value, name: &str) -> Value {
    report["suites"][0]["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no case {name} in {report}"))
        .clone()
}

fn probe<'a>(case: &'a Value, name: &str) -> &'a Value {
    case["probes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no probe {name} in {case}"))
}

fn secs(v: &Value) -> Duration {
    Duration::from_secs_f64(v.as_f64().unwrap())
}

#[test]
fn a_probe_during_a_network_delay_shows_the_latency_in_its_p99() {
    let body = format!(
        r#"  policy: {{maxPodsAffected: 100}}  # the fault is on every web pod, on purpose
  probes:
    - name: shop availability
{PROBE}      expect: {{successRate: ">= 0.95", p99: "< 5s"}}
    - name: shop under fault
{PROBE}      mode: duringFault
  scenarios:
    - name: no fault
      steps:
        - sleep: 1s
      assertions:
        - present: {{kind: Service, name: web}}
    - name: slow backend
      steps:
        - fault: {{type: networkDelay, selector: app=web, latency: 500ms, duration: 2s}}
        - sleep: 1500ms
      assertions:
        - present: {{kind: Service, name: web}}
"#
    );
    let case = Case::suite(&suite_with("e2e-probe-delay", &body)).file("base.yaml", BASE);
    let out = case.run_sandbox();
    out.assert_code(0);
    let report = out.report();
    let sc = scenario_case(&report, "slow backend");
    let all = probe(&sc, "shop availability");
    assert_eq!(all["mode"], "continuous");
    // (The very first request may race the data plane picking up the route.)
    assert!(all["successRate"].as_f64().unwrap() >= 0.95, "{all}");
    assert!(
        secs(&all["p99Seconds"]) >= Duration::from_millis(500),
        "the delay shows in p99: {all}"
    );
    // duringFault starts once the chaos is injected: every request is slow,
    // by the delay once. Judged against the same probe in the same run
    // without a fault (what this machine adds to every request): the
    // median is the baseline plus the delay, not plus twice the delay
    // (requests queued behind each other, or the delay applied twice).
    let baseline =
        secs(&probe(&scenario_case(&report, "no fault"), "shop availability")["p50Seconds"]);
    let during = probe(&sc, "shop under fault");
    let p50 = secs(&during["p50Seconds"]);
    let delay = Duration::from_millis(500);
    assert!(
        p50 >= delay - Duration::from_millis(10) && p50 < baseline + delay * 3 / 2,
        "baseline p50 {baseline:?}: {during}"
    );
    // The schedule is absolute: from the injection to the stop, which comes
    // after the 1.5s sleep and at the latest at the fault's 2s end.
    let n = during["count"].as_u64().unwrap();
    assert!((75..=101).contains(&n), "1.5s to 2s at 20ms: {n}");
    assert!(all["count"].as_u64().unwrap() >= n, "{all}\n{during}");
    // The expectations are assertions of the scenario.
    let names: Vec<&str> = sc["assertions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["message"].as_str().unwrap())
        .collect();
    assert!(
        names
            .iter()
            .any(|m| m.starts_with("successRate ") && m.ends_with(" >= 0.95")),
        "{names:?}"
    );
    assert!(
        out.stdout
            .contains("probe shop availability (continuous, every 20ms)"),
        "{}",
        out.stdout
    );
    assert!(
        out.junit().contains("probe shop under fault (duringFault"),
        "{}",
        out.junit()
    );
}

#[test]
fn a_stop_condition_tripped_by_packet_loss_aborts_restores_and_exits_4() {
    let sandbox = SandboxProcess::start();
    let before = tokio_block(common::snapshot(&sandbox.kubeconfig));
    let body = format!(
        r#"  policy: {{maxPodsAffected: 100}}  # the fault is on every web pod, on purpose
  probes:
    - name: shop availability
{PROBE}  stopConditions:
    - probe: shop availability
      successRate: {{below: 0.5, for: 500ms}}
  scenarios:
    - name: black hole
      steps:
        - apply:
            manifest: |
              apiVersion: v1
              kind: ConfigMap
              metadata: {{name: marker}}
        - fault: {{type: networkLoss, selector: app=web, loss: 100, duration: 60s}}
        - sleep: 30s
        - apply:
            manifest: |
              apiVersion: v1
              kind: ConfigMap
              metadata: {{name: never}}
      assertions:
        - present: {{kind: ConfigMap, name: never}}
    - name: afterwards
      steps:
        - sleep: 1ms
"#
    );
    let case = Case::suite(&suite_with("e2e-stop-loss", &body)).file("base.yaml", BASE);
    let out = case.exec(&args(&[
        "run",
        "suite.yaml",
        "--kubeconfig",
        sandbox.kubeconfig.to_str().unwrap(),
        "--junit",
        "junit.xml",
        "--report-json",
        "report.json",
    ]));
    out.assert_code(4);
    let failures = junit_failures(&out.junit());
    assert_eq!(failures.len(), 1, "{failures:?}");
    let (message, detail) = &failures[0];
    assert!(
        message.starts_with("stop condition tripped: probe shop availability success rate 0.")
            && message.contains(" < 0.50 over 500ms"),
        "{message}"
    );
    assert!(detail.contains("sleep"), "{detail}");
    let report = out.report();
    assert_eq!(report["exitCode"], 4);
    let sc = scenario_case(&report, "black hole");
    assert_eq!(sc["status"], "errored");
    assert!(sc["message"]
        .as_str()
        .unwrap()
        .contains("stop condition tripped"));
    let outcomes: Vec<&str> = sc["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes[..2], ["ok", "ok"]);
    assert_eq!(
        outcomes[2], "failed",
        "the 30s sleep was cut short: {outcomes:?}"
    );
    assert_eq!(
        outcomes[3], "skipped",
        "no step after the trip: {outcomes:?}"
    );
    let p = probe(&sc, "shop availability");
    assert!(!p["outages"].as_array().unwrap().is_empty(), "{p}");
    assert_eq!(scenario_case(&report, "afterwards")["status"], "skipped");
    let after = tokio_block(common::snapshot(&sandbox.kubeconfig));
    assert_eq!(before, after, "the cluster is restored");
}

#[test]
fn failing_probe_expectations_fail_the_scenario_with_exit_1() {
    let body = r#"  probes:
    - name: nowhere
      http: {url: '{{gateway "gw"}}/x', headers: {Host: nowhere.example.com}}
      every: 25ms
      expect: {successRate: ">= 0.99", maxOutage: 100ms}
  scenarios:
    - name: unrouted host
      steps:
        - sleep: 500ms
"#;
    let case = Case::suite(&suite_with("e2e-probe-fail", body)).file("base.yaml", BASE);
    let out = case.run_sandbox();
    out.assert_code(1);
    let failures = junit_failures(&out.junit());
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert!(
        failures[0]
            .0
            .starts_with("probe nowhere: successRate 0.00 < 0.99 (and 1 more)"),
        "{:?}",
        failures[0]
    );
    assert!(
        failures[0].1.contains("probe nowhere: maxOutage "),
        "{}",
        failures[0].1
    );
    let report = out.report();
    let sc = scenario_case(&report, "unrouted host");
    let p = probe(&sc, "nowhere");
    assert_eq!(p["successRate"], 0.0);
    assert_eq!(p["outages"].as_array().unwrap().len(), 1, "{p}");
}

#[test]
fn max_duration_trips_and_exits_4() {
    let body = r#"  stopConditions:
    - maxDuration: 1s
  scenarios:
    - name: too long
      steps:
        - sleep: 20s
"#;
    let case = Case::suite(&suite_with("e2e-max-duration", body)).file("base.yaml", BASE);
    let out = case.run_sandbox();
    out.assert_code(4);
    let failures = junit_failures(&out.junit());
    assert!(
        failures[0]
            .0
            .starts_with("stop condition tripped: scenario ran longer than maxDuration 1s"),
        "{failures:?}"
    );
}

#[test]
fn policy_max_run_duration_stops_the_whole_run() {
    let body = r#"  policy:
    maxRunDuration: 1s
  scenarios:
    - name: first
      steps:
        - sleep: 20s
    - name: second
      steps:
        - sleep: 1ms
"#;
    let case = Case::suite(&suite_with("e2e-run-duration", body)).file("base.yaml", BASE);
    let out = case.run_sandbox();
    out.assert_code(4);
    let report = out.report();
    let first = scenario_case(&report, "first");
    assert_eq!(first["status"], "errored", "{first}");
    assert!(
        first["message"]
            .as_str()
            .unwrap()
            .starts_with("stop condition tripped: the run went past policy maxRunDuration 1s"),
        "{first}"
    );
    assert_eq!(scenario_case(&report, "second")["status"], "skipped");
}
