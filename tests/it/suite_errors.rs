//! The user-visible text of suite errors, pinned with insta snapshots.

use std::path::{Path, PathBuf};

use heatcheck::suite::{load_many, load_suite, parse_suite, AssertionKind, StepAction, SuiteError};

const HEAD: &str = "\
apiVersion: heatcheck.dev/v1alpha1
kind: Suite
metadata: {name: x}
spec:
  target: {namespace: shop}
";

/// Parse `body` (appended to a valid header) as `suites/x.yaml`.
fn error_text(body: &str) -> String {
    let text = format!("{HEAD}{body}");
    let err =
        parse_suite(&text, Path::new("suites/x.yaml")).expect_err("the suite should be invalid");
    let root = std::env::current_dir().unwrap().display().to_string();
    err.to_string().replace(&root, "[CWD]")
}

fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

#[test]
fn unknown_step_suggests_the_closest() {
    insta::assert_snapshot!(error_text(
        "  scenarios:
    - name: a
      steps:
        - aplly: {file: m.yaml}
"
    ));
}

#[test]
fn unknown_field_in_a_step() {
    insta::assert_snapshot!(error_text(
        "  scenarios:
    - name: a
      steps:
        - delete: {kind: HTTPRoute, nmae: my-route}
"
    ));
}

#[test]
fn unknown_assertion_kind() {
    insta::assert_snapshot!(error_text(
        "  scenarios:
    - name: a
      steps: [{sleep: 1s}]
      assertions:
        - name: served
          htpp: {url: http://x}
"
    ));
}

#[test]
fn bad_duration() {
    insta::assert_snapshot!(error_text(
        "  scenarios:
    - name: a
      steps:
        - sleep: 5 seconds
"
    ));
}

#[test]
fn wrong_api_version() {
    let text = "apiVersion: heatcheck.dev/v1\nkind: Suite\nmetadata: {name: x}\nspec: {target: {namespace: shop}}\n";
    let err = parse_suite(text, Path::new("suites/x.yaml")).unwrap_err();
    insta::assert_snapshot!(err.to_string());
}

#[test]
fn missing_required_field() {
    insta::assert_snapshot!(error_text(
        "  scenarios:
    - name: a
      steps:
        - patch: {kind: Service, name: s}
"
    ));
}

#[test]
fn two_actions_in_one_step() {
    insta::assert_snapshot!(error_text(
        "  scenarios:
    - name: a
      steps:
        - sleep: 1s
          delete: {kind: Pod, name: p}
"
    ));
}

#[test]
fn invalid_regex() {
    insta::assert_snapshot!(error_text(
        "  scenarios:
    - name: a
      steps: [{sleep: 1s}]
      assertions:
        - http:
            url: http://x/shop
            expect:
              json: {\"$.pod\": {matches: \"^infra-(v1\"}}
"
    ));
}

#[test]
fn template_syntax_error_is_a_load_error() {
    insta::assert_snapshot!(error_text(
        "  scenarios:
    - name: a
      steps: [{sleep: 1s}]
      assertions:
        - http: {url: '{{gateway \"gw\"}/shop'}
"
    ));
}

#[test]
fn unknown_template_variable_is_not_a_load_error() {
    let text = format!(
        "{HEAD}  scenarios:\n    - name: a\n      steps: [{{sleep: 1s}}]\n      assertions:\n        - http: {{url: 'http://{{{{nosuchvar}}}}/shop'}}\n"
    );
    let suite = parse_suite(&text, Path::new("suites/x.yaml"))
        .expect("unknown variables are found at render time");
    let AssertionKind::Http(h) = &suite.spec.scenarios[0].assertions[0].kind else {
        panic!()
    };
    assert_eq!(h.url, "http://{{nosuchvar}}/shop");
}

#[test]
fn semantic_problems_are_all_reported_in_document_order() {
    insta::assert_snapshot!(error_text(
        "  scenarios:
    - name: a
      steps:
        - wait: {kind: Pod, name: p}
        - delete: {kind: Pod}
        - apply: {file: manifests/missing.yaml}
        - scale: {name: web, namespace: kube-system, replicas: 1}
      assertions:
        - resource: {kind: Pod, expect: {\"$.status[\": Running}}
    - name: a
      steps: [{sleep: 1s}]
"
    ));
}

#[test]
fn structured_fields_are_accessible() {
    let text =
        format!("{HEAD}  scenarios:\n    - name: a\n      steps:\n        - wiat: {{kind: Pod}}\n");
    let err = parse_suite(&text, Path::new("suites/x.yaml")).unwrap_err();
    let SuiteError::Parse(d) = &err else {
        panic!("{err:?}")
    };
    assert_eq!((d.line, d.column), (Some(9), Some(11)));
    assert_eq!(d.file, Path::new("suites/x.yaml"));
    assert_eq!(d.hint.as_deref(), Some("did you mean \"wait\"?"));
    assert!(
        d.message.starts_with("unknown step \"wiat\""),
        "{}",
        d.message
    );
}

#[test]
fn full_example_loads_with_every_step_and_assertion_kind() {
    let suite = load_suite(&fixture("valid/full.yaml")).unwrap_or_else(|e| panic!("{e}"));
    let steps: Vec<_> = suite
        .spec
        .fixtures
        .iter()
        .chain(suite.spec.scenarios.iter().flat_map(|s| &s.steps))
        .map(|s| s.action.kind())
        .collect();
    for kind in heatcheck::suite::STEP_KINDS {
        assert!(steps.contains(kind), "no {kind} step in full.yaml");
    }
    let assertions: Vec<_> = suite
        .spec
        .steady_state
        .iter()
        .chain(suite.spec.scenarios.iter().flat_map(|s| &s.assertions))
        .map(|a| a.kind.key())
        .collect();
    for kind in heatcheck::suite::ASSERTION_KINDS {
        assert!(
            assertions.contains(kind),
            "no {kind} assertion in full.yaml"
        );
    }
    assert_eq!(
        suite.spec.defaults.timeout.0,
        std::time::Duration::from_secs(45)
    );
    assert!(suite.source.dir.is_absolute());
    let StepAction::Apply(apply) = &suite.spec.fixtures[0].action else {
        panic!()
    };
    let text = apply.resolve_source(&suite.source.dir).unwrap();
    assert!(text.contains("kind: Deployment"));
    // A suite survives a round trip through its serialized form.
    let again: heatcheck::suite::Suite =
        serde_json::from_value(serde_json::to_value(&suite).unwrap()).unwrap();
    assert_eq!(again.spec, suite.spec);
}

#[test]
fn load_many_finds_suites_and_skips_the_rest() {
    let found = load_many(&[fixture("valid")]);
    let names: Vec<_> = found
        .iter()
        .map(|(p, _)| p.file_name().unwrap().to_str().unwrap())
        .collect();
    assert_eq!(names, ["full.yaml"]);
    assert!(found[0].1.is_ok());
}

#[test]
fn the_schema_accepts_the_full_example_and_rejects_a_bad_step() {
    let text = std::fs::read_to_string(fixture("valid/full.yaml")).unwrap();
    let doc: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
    let validator = jsonschema::validator_for(&heatcheck::suite::suite_schema()).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&doc)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");

    let mut bad = doc.clone();
    bad["spec"]["scenarios"][0]["steps"][0] = serde_json::json!({"aplly": {"file": "x.yaml"}});
    assert!(!validator.is_valid(&bad));
    let mut two = doc.clone();
    two["spec"]["scenarios"][0]["steps"][0] =
        serde_json::json!({"sleep": "1s", "apply": {"file": "x.yaml"}});
    assert!(!validator.is_valid(&two));
    let mut dur = doc;
    dur["spec"]["defaults"]["timeout"] = serde_json::json!("30 seconds");
    assert!(!validator.is_valid(&dur));
}

#[test]
fn the_scenario_schema_accepts_every_example_scenario() {
    let suite = load_suite(&fixture("valid/full.yaml")).unwrap();
    let validator = jsonschema::validator_for(&heatcheck::suite::scenario_schema()).unwrap();
    for scenario in &suite.spec.scenarios {
        let v = serde_json::to_value(scenario).unwrap();
        assert!(validator.is_valid(&v), "{}", scenario.name);
        let back = heatcheck::suite::parse_scenario_json(&v).unwrap();
        assert_eq!(&back, scenario);
    }
}
#[test]
fn invalid_number() {
    insta::assert_snapshot!(error_text(
        "  scenarios:
    - name: a
      steps:
        - scale: {name: d, replicas: two}
"
    ));
}

#[test]
fn a_system_namespace_needs_an_explicit_policy() {
    let text = "apiVersion: heatcheck.dev/v1alpha1
kind: Suite
metadata: {name: x}
spec:
  target:
    namespace: kube-system
    allowNamespaces: [kube-system, chaos-mesh]
  scenarios:
    - name: a
      steps:
        - delete: {kind: Deployment, name: coredns}
";
    let err = parse_suite(text, Path::new("suites/x.yaml")).expect_err("refused");
    insta::assert_snapshot!(err.to_string());
    let allowed = text.replace(
        "  scenarios:",
        "  policy: {allowSystemNamespaces: true}\n  scenarios:",
    );
    assert!(parse_suite(&allowed, Path::new("suites/x.yaml")).is_ok());
}

#[test]
fn promql_problems_point_at_the_query_and_the_expectation() {
    insta::assert_snapshot!(error_text(
        r#"  stopConditions:
    - promql: {query: ' ', above: 1, for: 10s}
  scenarios:
    - name: a
      steps: [{sleep: 1s}]
      assertions:
        - promql: {query: 'rate(sandbox_gateway_requests_total{gateway_namespace="{{namespace}}"}[1m])', expect: "< 0.01"}
        - promql: {query: 'up', expect: "about 1"}
        - promql: {query: 'up'}
"#
    ));
}
