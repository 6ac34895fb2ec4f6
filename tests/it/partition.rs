//! `run --partition`: the shards of one N are disjoint and together run
//! exactly the whole set; a suite runs only in shards that have a scenario of
//! it (its fixtures and steady state included).

use crate::common;

use std::collections::BTreeSet;

use common::{args, Case};

fn suite(name: &str, ns: &str, scenarios: &[&str]) -> String {
    let mut s = format!(
        r#"apiVersion: heatcheck.dev/v1alpha1
kind: Suite
metadata: {{name: {name}}}
spec:
  target: {{namespace: {ns}, createNamespace: true}}
  defaults: {{timeout: 10s, interval: 100ms}}
  steadyState:
    - name: namespace exists
      present: {{kind: Namespace, name: {ns}}}
  scenarios:
"#
    );
    for sc in scenarios {
        s.push_str(&format!(
            r#"    - name: {sc}
      steps:
        - apply:
            manifest: |
              apiVersion: v1
              kind: ConfigMap
              metadata: {{name: {sc}}}
              data: {{k: v}}
      assertions:
        - present: {{kind: ConfigMap, name: {sc}}}
"#
        ));
    }
    s
}

fn case() -> Case {
    Case::suite(&suite("alpha", "part-a", &["a1", "a2", "a3", "a4"])).file(
        "more/beta.yaml",
        &suite("beta", "part-b", &["b1", "b2", "b3"]),
    )
}

/// (suite, scenario) of every scenario case in the JSON report, and the
/// suites that ran at all.
fn ran(case: &Case, extra: &[&str]) -> (BTreeSet<(String, String)>, BTreeSet<String>) {
    let mut a = args(&[
        "run",
        "suite.yaml",
        "more",
        "--sandbox",
        "--report-json",
        "report.json",
    ]);
    a.extend(extra.iter().map(|s| s.to_string()));
    let out = case.exec(&a);
    out.assert_code(0);
    let report = out.report();
    let mut scenarios = BTreeSet::new();
    let mut suites = BTreeSet::new();
    for s in report["suites"].as_array().unwrap() {
        let name = s["name"].as_str().unwrap().to_string();
        suites.insert(name.clone());
        for c in s["cases"].as_array().unwrap() {
            if c["kind"] == "scenario" {
                scenarios.insert((name.clone(), c["name"].as_str().unwrap().to_string()));
            }
        }
    }
    (scenarios, suites)
}

#[test]
fn shards_are_disjoint_and_their_union_is_the_whole_run() {
    let case = case();
    let (all, _) = ran(&case, &[]);
    assert_eq!(all.len(), 7);
    for strategy in ["count", "hash"] {
        let total = 3;
        let mut union = BTreeSet::new();
        for k in 1..=total {
            let (shard, suites) = ran(&case, &["--partition", &format!("{strategy}:{k}/{total}")]);
            // Only suites with a scenario in this shard ran.
            let expected: BTreeSet<String> = shard.iter().map(|(s, _)| s.clone()).collect();
            assert_eq!(suites, expected, "{strategy}:{k}/{total}");
            for item in shard {
                assert!(union.insert(item.clone()), "{item:?} ran in two shards");
            }
        }
        assert_eq!(union, all, "{strategy}: the shards together run everything");
    }
}

#[test]
fn count_deals_round_robin_in_suite_order() {
    let (shard, _) = ran(&case(), &["--partition", "count:2/2"]);
    let names: Vec<&str> = shard.iter().map(|(_, n)| n.as_str()).collect();
    assert_eq!(names, ["a2", "a4", "b2"]);
}

#[test]
fn a_bad_partition_is_an_argument_error() {
    let out = case().exec(&args(&[
        "run",
        "suite.yaml",
        "--sandbox",
        "--partition",
        "count:3/2",
    ]));
    out.assert_code(2);
    assert!(
        out.stderr.contains("expected count:K/N or hash:K/N"),
        "{}",
        out.stderr
    );
}
