//! The HTML report of a real sandbox run (service-latency: a probe under a
//! Chaos Mesh and a Litmus fault), its structure parsed back, the timeline
//! data in the JSON report (shape snapshotted), and `heatcheck report`
//! rendering saved reports again, one run or a trend over several.

use crate::common;

use std::path::PathBuf;

use common::Case;
use serde_json::{json, Map, Value};

fn suite(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("suites")
        .join(name)
        .join("suite.yaml")
        .display()
        .to_string()
}

fn run(case: &Case, suite_name: &str, json_name: &str, html_name: &str) -> common::Outcome {
    case.exec(&[
        "run".into(),
        suite(suite_name),
        "--sandbox".into(),
        "--locked".into(),
        "--report-json".into(),
        json_name.into(),
        "--report-html".into(),
        html_name.into(),
    ])
}

/// Every attribute that could make a browser fetch something.
fn external_refs(html: &str) -> Vec<String> {
    let dom = tl::parse(html, tl::ParserOptions::default()).unwrap();
    let parser = dom.parser();
    let mut out = Vec::new();
    for node in dom.nodes() {
        if let Some(tag) = node.as_tag() {
            for (k, v) in tag.attributes().iter() {
                let v = v.unwrap_or_default();
                let k = k.to_ascii_lowercase();
                if ["src", "href", "xlink:href", "srcset", "poster", "data"].contains(&k.as_str())
                    && !v.starts_with('#')
                {
                    out.push(format!("{k}={v}"));
                }
            }
        }
    }
    let _ = parser;
    if html.contains("url(") || html.contains("@import") {
        out.push("css url()/@import".into());
    }
    out
}

fn texts(html: &str, selector: &str) -> Vec<String> {
    let dom = tl::parse(html, tl::ParserOptions::default()).unwrap();
    let parser = dom.parser();
    dom.query_selector(selector)
        .unwrap()
        .filter_map(|h| h.get(parser))
        .map(|n| n.inner_text(parser).into_owned())
        .collect()
}

/// The JSON's shape: every key seen in any array element, values as type names.
fn shape(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), shape(v))).collect()),
        Value::Array(items) => {
            let mut merged = Value::Null;
            for i in items {
                merged = merge(merged, shape(i));
            }
            json!([merged])
        }
        Value::String(_) => json!("string"),
        Value::Number(_) => json!("number"),
        Value::Bool(_) => json!("bool"),
        Value::Null => json!("null"),
    }
}

fn merge(a: Value, b: Value) -> Value {
    match (a, b) {
        (Value::Null, b) => b,
        (Value::Object(mut a), Value::Object(b)) => {
            for (k, v) in b {
                let old = a.remove(&k).unwrap_or(Value::Null);
                a.insert(k, merge(old, v));
            }
            let mut sorted: Vec<(String, Value)> = a.into_iter().collect();
            sorted.sort_by(|x, y| x.0.cmp(&y.0));
            Value::Object(sorted.into_iter().collect::<Map<_, _>>())
        }
        (Value::Array(a), Value::Array(b)) => {
            let x = a.into_iter().next().unwrap_or(Value::Null);
            let y = b.into_iter().next().unwrap_or(Value::Null);
            json!([merge(x, y)])
        }
        (a, _) => a,
    }
}

#[test]
fn service_latency_report_has_a_timeline_per_scenario_with_the_fault_and_probe() {
    let case = Case::suite("");
    let out = run(&case, "service-latency", "report.json", "report.html");
    out.assert_code(0);
    let html = std::fs::read_to_string(case.path("report.html")).unwrap();
    assert_eq!(external_refs(&html), Vec::<String>::new());
    assert_eq!(texts(&html, "script").len(), 0);

    let report = out.report();
    let scenarios: Vec<&Value> = report["suites"][0]["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["kind"] == "scenario")
        .collect();
    assert_eq!(scenarios.len(), 3, "two hand-written, one locked");
    assert_eq!(texts(&html, "article.scenario").len(), 3);
    assert_eq!(
        texts(&html, "figure.timeline").len(),
        3,
        "one timeline per scenario"
    );
    assert_eq!(texts(&html, "svg").len(), 3);
    // The fault span: drawn (its fill) and listed, for each fault step.
    assert!(html.contains("fill=\"#F4A261\""), "fault span drawn");
    let spans = texts(&html, "li.fault-span");
    assert_eq!(spans.len(), 3, "{spans:?}");
    assert!(
        spans[0].starts_with("networkDelay on app=infra-backend-v1 (50%, 1s): injected at"),
        "{spans:?}"
    );
    // The probe's latency panel, and the summary table lists every case.
    assert!(html.contains("probe shop latency: latency per second (ms)"));
    assert_eq!(texts(&html, "tr.case-row").len(), 5);

    // Timeline data in the JSON: times for steps, faults and checks; probe buckets.
    let chaos = scenarios[0];
    assert!(chaos["startedAt"].is_string());
    let fault = &chaos["faults"][0];
    let injected = fault["injectedMs"].as_u64().unwrap();
    let recovered = fault["recoveredMs"].as_u64().unwrap();
    assert!(recovered >= injected, "{fault}");
    assert!(chaos["assertions"]
        .as_array()
        .unwrap()
        .iter()
        .all(|a| a["atMs"].is_u64()));
    let probe = &chaos["probes"][0];
    let buckets = probe["buckets"].as_array().unwrap();
    assert!(!buckets.is_empty());
    let sent: u64 = buckets.iter().map(|b| b["count"].as_u64().unwrap()).sum();
    assert_eq!(
        sent,
        probe["count"].as_u64().unwrap(),
        "buckets cover every send"
    );
    assert!(
        report["environment"]["suites"][0]["sha256"]
            .as_str()
            .unwrap()
            .len()
            == 64
    );

    // Failed samples appear only when a send fails (load-dependent): not part of the shape.
    let mut v = report.clone();
    strip(&mut v, &["failedSamples", "failedSamplesDropped"]);
    insta::assert_snapshot!(
        "run_report_json_shape",
        serde_json::to_string_pretty(&shape(&v)).unwrap()
    );
}

fn strip(v: &mut Value, keys: &[&str]) {
    match v {
        Value::Object(m) => {
            for k in keys {
                m.remove(*k);
            }
            for x in m.values_mut() {
                strip(x, keys);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| strip(x, keys)),
        _ => {}
    }
}

#[test]
fn report_renders_saved_json_again_and_a_trend_over_several() {
    let case = Case::suite("");
    run(&case, "scale-to-zero", "a.json", "a.html").assert_code(0);
    run(&case, "service-latency", "b.json", "b.html").assert_code(0);
    // One report: the run page again, from the JSON alone.
    let again = case.exec(&[
        "report".into(),
        "a.json".into(),
        "--html".into(),
        "again.html".into(),
    ]);
    again.assert_code(0);
    let html = std::fs::read_to_string(case.path("again.html")).unwrap();
    let original = std::fs::read_to_string(case.path("a.html")).unwrap();
    assert_eq!(
        texts(&html, "figure.timeline").len(),
        texts(&original, "figure.timeline").len()
    );
    assert_eq!(texts(&html, "tr.case-row"), texts(&original, "tr.case-row"));
    // Several: the trend, one row per scenario, one cell per run.
    let trend = case.exec(&[
        "report".into(),
        "a.json".into(),
        "b.json".into(),
        "--html".into(),
        "nightly/trend.html".into(),
    ]);
    trend.assert_code(0);
    let html = std::fs::read_to_string(case.path("nightly/trend.html")).unwrap();
    assert_eq!(external_refs(&html), Vec::<String>::new());
    let rows = texts(&html, "tr.trend-row");
    let scenarios = |name: &str| {
        let v: Value =
            serde_json::from_str(&std::fs::read_to_string(case.path(name)).unwrap()).unwrap();
        v["suites"][0]["cases"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["kind"] == "scenario")
            .count()
    };
    assert_eq!(rows.len(), scenarios("a.json") + scenarios("b.json"));
    assert_eq!(texts(&html, "td.cell").len(), rows.len() * 2);
    assert!(
        html.contains("probe shop latency"),
        "the probe's p99 and success rate per run"
    );
    // Not a report: a clear error with the position, exit 2.
    std::fs::write(case.path("bad.json"), "{\"runId\": 1}").unwrap();
    let bad = case.exec(&[
        "report".into(),
        "bad.json".into(),
        "--html".into(),
        "x.html".into(),
    ]);
    bad.assert_code(2);
    assert!(bad.stderr.contains("bad.json:1:"), "{}", bad.stderr);
}
