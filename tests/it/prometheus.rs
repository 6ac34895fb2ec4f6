//! Prometheus, for real: a `prometheus` server scrapes a `heatcheck sandbox`'s `/metrics`
//! every second; promql assertions and stop conditions query it through the HTTP API;
//! run metrics go to a real Pushgateway and are read back. No mock Prometheus.
//! Figures (scrape-to-assert latency) are printed: run with `--nocapture` to see them.

use crate::common;
use crate::common::prometheus as prom;

use std::time::Instant;

use common::{args, suite_with, tokio_block, Case, BASE};
use prom::{find_program, start_prometheus, MetricsSandbox};
use serde_json::Value;

/// The 5xx share of the gateway's answers in the suite's namespace over 5 s. With no
/// 5xx series at all the numerator is `vector(0)`, so a healthy gateway reads 0.
const ERROR_RATIO: &str = r#"(sum(rate(sandbox_gateway_requests_total{gateway_namespace="{{namespace}}",response_code=~"5.."}[5s])) or vector(0)) / sum(rate(sandbox_gateway_requests_total{gateway_namespace="{{namespace}}"}[5s]))"#;

const TRAFFIC: &str = r#"  probes:
    - name: traffic
      http: {url: '{{gateway "gw"}}/', headers: {Host: shop.example.com}, timeout: 2s}
      every: 50ms
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

fn assertion<'a>(case: &'a Value, name: &str) -> &'a Value {
    case["assertions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == name)
        .unwrap_or_else(|| panic!("no assertion {name} in {case}"))
}

fn kube_args(sandbox: &MetricsSandbox) -> Vec<String> {
    args(&[
        "run",
        "suite.yaml",
        "--kubeconfig",
        sandbox.kubeconfig.to_str().unwrap(),
        "--junit",
        "junit.xml",
        "--report-json",
        "report.json",
    ])
}

#[test]
fn promql_assertion_passes_on_a_healthy_gateway_and_fails_under_total_loss() {
    let test = "promql_assertion_passes_on_a_healthy_gateway_and_fails_under_total_loss";
    let Some(prometheus) = find_program(test, "prometheus") else {
        return;
    };
    let sandbox = MetricsSandbox::start();
    let server = start_prometheus(&prometheus, &sandbox.metrics_target());
    let body = format!(
        r#"  prometheus: {{url: '{url}'}}
  # The fault takes every backend pod, beyond the default maxPodsAffected (50).
  policy: {{maxPodsAffected: 100}}
{TRAFFIC}  scenarios:
    - name: no fault
      steps:
        - sleep: 3s
      assertions:
        - name: error ratio below 1%
          promql:
            query: '{ERROR_RATIO}'
            expect: "< 0.01"
            eventually: {{within: 20s, every: 500ms}}
        - name: requests are counted per gateway, listener, route and Service
          promql:
            query: 'sandbox_gateway_requests_total{{gateway_namespace="{{{{namespace}}}}",gateway_name="gw",listener="http",route_namespace="{{{{namespace}}}}",route_name="web",destination_service_namespace="{{{{namespace}}}}",destination_service_name="web",response_code="200"}}'
            expect: "> 0"
            eventually: {{within: 10s, every: 500ms}}
    - name: total loss
      steps:
        - fault: {{type: networkLoss, selector: app=web, loss: 100, duration: 60s}}
        - sleep: 3s
      assertions:
        - name: error ratio below 1%
          promql:
            query: '{ERROR_RATIO}'
            expect: "< 0.01"
            eventually: {{within: 6s, every: 500ms}}
        - name: the gateway counts the fault
          promql:
            query: 'sandbox_active_faults{{namespace="{{{{namespace}}}}",kind="loss",source="NetworkChaos"}}'
            expect: "== 1"
            eventually: {{within: 10s, every: 500ms}}
"#,
        url = server.url
    );
    let case = Case::suite(&suite_with("e2e-promql-assert", &body)).file("base.yaml", BASE);
    let before = tokio_block(common::snapshot(&sandbox.kubeconfig));
    let out = case.exec(&kube_args(&sandbox));
    out.assert_code(1);
    let report = out.report();
    let healthy = scenario_case(&report, "no fault");
    assert_eq!(healthy["status"], "passed", "{healthy}");
    let a = assertion(&healthy, "error ratio below 1%");
    eprintln!(
        "scrape-to-assert: the healthy ratio was first readable after {:.1}s ({} queries), counted from the end of a 3s scenario with traffic from its start",
        a["durationSeconds"].as_f64().unwrap(),
        a["attempts"]
    );
    assert_eq!(
        assertion(
            &healthy,
            "requests are counted per gateway, listener, route and Service"
        )["passed"],
        true
    );
    let lossy = scenario_case(&report, "total loss");
    assert_eq!(lossy["status"], "failed", "{lossy}");
    let a = assertion(&lossy, "error ratio below 1%");
    let message = a["message"].as_str().unwrap();
    assert!(
        message.contains("sandbox_gateway_requests_total{gateway_namespace=\"e2e-promql-assert\"")
            && message.ends_with("{} = 1 >= 0.01"),
        "names the rendered query, the series and its value: {message}"
    );
    assert_eq!(
        assertion(&lossy, "the gateway counts the fault")["passed"],
        true,
        "{lossy}"
    );
    let after = tokio_block(common::snapshot(&sandbox.kubeconfig));
    assert_eq!(before, after, "the cluster is restored");
}

#[test]
fn promql_stop_condition_trips_restores_and_exits_4() {
    let test = "promql_stop_condition_trips_restores_and_exits_4";
    let Some(prometheus) = find_program(test, "prometheus") else {
        return;
    };
    let sandbox = MetricsSandbox::start();
    let server = start_prometheus(&prometheus, &sandbox.metrics_target());
    let body = format!(
        r#"  policy: {{maxPodsAffected: 100}}
{TRAFFIC}  stopConditions:
    - promql:
        query: 'sum(rate(sandbox_gateway_requests_total{{gateway_namespace="{{{{namespace}}}}",response_code="503"}}[3s]))'
        above: 1
        for: 2s
  scenarios:
    - name: black hole
      steps:
        - fault: {{type: networkLoss, selector: app=web, loss: 100, duration: 60s}}
        - sleep: 45s
    - name: afterwards
      steps:
        - sleep: 1ms
"#
    );
    let case = Case::suite(&suite_with("e2e-promql-stop", &body))
        .file("base.yaml", BASE)
        .env("HEATCHECK_PROMETHEUS_URL", &server.url);
    let before = tokio_block(common::snapshot(&sandbox.kubeconfig));
    let started = Instant::now();
    let out = case.exec(&kube_args(&sandbox));
    let took = started.elapsed();
    out.assert_code(4);
    let report = out.report();
    let sc = scenario_case(&report, "black hole");
    assert_eq!(sc["status"], "errored");
    let message = sc["message"].as_str().unwrap();
    assert!(
        message.starts_with("stop condition tripped: promql sum(rate(sandbox_gateway_requests_total{gateway_namespace=\"e2e-promql-stop\",response_code=\"503\"}[3s])): {} = ")
            && message.contains(" above 1 for 2s"),
        "{message}"
    );
    let sleep = &sc["steps"][1];
    assert_eq!(sleep["outcome"], "failed", "the 45s sleep was cut short");
    let into_sleep = sleep["durationSeconds"].as_f64().unwrap();
    eprintln!(
        "scrape-to-assert: the stop condition (for: 2s) tripped {into_sleep:.1}s after the fault was in effect, so about {:.1}s from the first 503 to Prometheus answering with it; the run took {:.1}s",
        into_sleep - 2.0,
        took.as_secs_f64()
    );
    assert!(into_sleep < 40.0, "tripped early: {into_sleep}s");
    assert_eq!(scenario_case(&report, "afterwards")["status"], "skipped");
    let after = tokio_block(common::snapshot(&sandbox.kubeconfig));
    assert_eq!(before, after, "the cluster is restored");
}

const NO_FIXTURES: &str = r#"apiVersion: heatcheck.dev/v1alpha1
kind: Suite
metadata: {name: promql-errors}
spec:
  target: {namespace: default}
  scenarios:
    - name: queries
      steps:
        - sleep: 1ms
      assertions:
        - name: typo
          promql: {query: 'sum(rate(up[5s])', empty: true}
        - name: scalar
          promql: {query: 'scalar(vector(1))', expect: "== 1"}
        - name: one
          promql: {query: 'vector(1)', expect: "== 1"}
"#;

#[test]
fn bad_queries_and_non_vectors_are_explained() {
    let test = "bad_queries_and_non_vectors_are_explained";
    let Some(prometheus) = find_program(test, "prometheus") else {
        return;
    };
    // Nothing to scrape: these queries need no series.
    let server = start_prometheus(&prometheus, "127.0.0.1:9");
    let case = Case::suite(NO_FIXTURES).args(["--prometheus-url", server.url.as_str()]);
    let out = case.run_sandbox();
    out.assert_code(1);
    let report = out.report();
    let sc = scenario_case(&report, "queries");
    let typo = assertion(&sc, "typo")["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        typo.starts_with("Prometheus rejected the query (bad_data): ")
            && typo.ends_with("; query: sum(rate(up[5s])"),
        "{typo}"
    );
    let scalar = assertion(&sc, "scalar")["message"].as_str().unwrap();
    assert!(
        scalar.starts_with("the query returned a scalar, not an instant vector"),
        "{scalar}"
    );
    assert_eq!(assertion(&sc, "one")["passed"], true);
}

#[test]
fn unreachable_prometheus_exits_3_naming_the_url_before_anything_changes() {
    // A port nothing listens on (bound, then closed).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let case = Case::suite(NO_FIXTURES).env("HEATCHECK_PROMETHEUS_URL", &url);
    let out = case.run_sandbox();
    out.assert_code(3);
    assert!(
        out.stderr
            .contains(&format!("Prometheus at {url} cannot be reached")),
        "{}",
        out.stderr
    );
    assert!(out.dir.join("suite.yaml").exists());
    assert!(
        !out.dir.join("report.json").exists(),
        "nothing ran, nothing reported"
    );
}

#[test]
fn without_a_prometheus_url_promql_checks_are_skipped_with_a_warning() {
    let case = Case::suite(NO_FIXTURES).env("HEATCHECK_PROMETHEUS_URL", "");
    let out = case.run_sandbox();
    out.assert_code(0);
    assert!(
        out.stdout.contains(
            "warning: suite promql-errors: 3 promql check(s) skipped: no Prometheus URL (spec.prometheus.url, --prometheus-url or HEATCHECK_PROMETHEUS_URL)"
        ),
        "{}",
        out.stdout
    );
}

#[test]
fn run_metrics_go_to_a_textfile_and_to_a_real_pushgateway() {
    let test = "run_metrics_go_to_a_textfile_and_to_a_real_pushgateway";
    let Some(pushgateway) = find_program(test, "prometheus-pushgateway") else {
        return;
    };
    let gateway = prom::start_pushgateway(&pushgateway);
    let body = format!(
        r#"{TRAFFIC}  scenarios:
    - name: quiet
      steps:
        - sleep: 500ms
"#
    );
    let case = Case::suite(&suite_with("e2e-metrics-out", &body)).file("base.yaml", BASE);
    let out = case.exec(&args(&[
        "run",
        "suite.yaml",
        "--sandbox",
        "--metrics-file",
        "textfile/heatcheck.prom",
        "--pushgateway",
        &gateway.url,
    ]));
    out.assert_code(0);
    let file = case.path("textfile/heatcheck.prom");
    let text = std::fs::read_to_string(&file).expect("metrics file written");
    for line in [
        r#"heatcheck_scenario_status{suite="e2e",scenario="quiet",kind="scenario",status="passed"} 1.0"#,
        r#"heatcheck_scenario_status{suite="e2e",scenario="quiet",kind="scenario",status="failed"} 0.0"#,
        r#"heatcheck_probe_success_ratio{suite="e2e",scenario="quiet",probe="traffic"} 1.0"#,
        r#"heatcheck_restore_clean{suite="e2e"} 1.0"#,
        r#"heatcheck_run_exit_code{suite="e2e"} 0.0"#,
    ] {
        assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
    }
    assert!(
        text.contains("heatcheck_probe_latency_p99_seconds{suite=\"e2e\",scenario=\"quiet\",probe=\"traffic\"} "),
        "{text}"
    );
    // What node-exporter's textfile collector parses, checked by Prometheus's own linter.
    prom::promtool_check(test, &file);
    // Read back from the Pushgateway: job heatcheck, grouped by suite.
    let (status, pushed) = prom::http_get(&format!("{}/metrics", gateway.url)).unwrap();
    assert_eq!(status, 200);
    let passed = pushed
        .lines()
        .find(|l| {
            l.starts_with("heatcheck_scenario_status{")
                && l.contains(r#"job="heatcheck""#)
                && l.contains(r#"suite="e2e""#)
                && l.contains(r#"scenario="quiet""#)
                && l.contains(r#"status="passed""#)
        })
        .unwrap_or_else(|| panic!("pushed series in\n{pushed}"));
    assert!(passed.ends_with(" 1"), "{passed}");
}

#[test]
fn a_failed_push_is_a_warning_and_keeps_the_exit_code() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let case = Case::suite(NO_FIXTURES)
        .env("HEATCHECK_PROMETHEUS_URL", "")
        .args(["--pushgateway", url.as_str()]);
    let out = case.run_sandbox();
    out.assert_code(0);
    assert!(
        out.stderr.contains(&format!(
            "warning: metrics not pushed: Pushgateway at {url} cannot be reached"
        )),
        "{}",
        out.stderr
    );
}

#[test]
fn the_shipped_latency_suite_reads_the_gateway_p99_from_prometheus() {
    let test = "the_shipped_latency_suite_reads_the_gateway_p99_from_prometheus";
    let Some(prometheus) = find_program(test, "prometheus") else {
        return;
    };
    // README's way: a fixed metrics port for `run --sandbox`, scraped by Prometheus.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = start_prometheus(&prometheus, &format!("127.0.0.1:{port}"));
    let suite = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("suites/service-latency/suite.yaml");
    let case = Case::suite("unused: true\n");
    let out = case.exec(&args(&[
        "run",
        suite.to_str().unwrap(),
        "--sandbox",
        "--sandbox-metrics-port",
        &port.to_string(),
        "--prometheus-url",
        &server.url,
        "--scenario",
        "latency on half the pods (Chaos Mesh)",
        "--report-json",
        "report.json",
    ]));
    out.assert_code(0);
    assert!(
        out.stderr.contains(&format!(
            "sandbox metrics URL http://127.0.0.1:{port}/metrics"
        )),
        "{}",
        out.stderr
    );
    let report = out.report();
    let sc = scenario_case(&report, "latency on half the pods (Chaos Mesh)");
    let p99 = assertion(&sc, "the gateway's p99 shows the injected latency");
    assert_eq!(p99["passed"], true, "{p99}");
    eprintln!(
        "scrape-to-assert: the shipped suite's p99 check passed {:.1}s after the assertions began ({} queries)",
        p99["durationSeconds"].as_f64().unwrap(),
        p99["attempts"]
    );
    let errors = assertion(&sc, "latency, not errors, at the gateway");
    assert_eq!(errors["passed"], true, "{errors}");
}
