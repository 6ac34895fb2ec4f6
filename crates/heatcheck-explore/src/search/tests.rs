use super::*;
use crate::catalog::WeaknessClass;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Whether a scenario fails on its n-th twin run.
type Verdicts = Box<dyn Fn(&Scenario, usize) -> bool + Sync + Send>;

/// A twin whose verdict is a function of the scenario's steps, and
/// which counts its runs: the search's logic without a sandbox.
struct ScriptedTwins {
    fails: Verdicts,
    runs: AtomicUsize,
    seen: Mutex<Vec<String>>,
}

fn scripted(fails: impl Fn(&Scenario, usize) -> bool + Sync + Send + 'static) -> ScriptedTwins {
    ScriptedTwins {
        fails: Box::new(fails),
        runs: AtomicUsize::new(0),
        seen: Mutex::new(Vec::new()),
    }
}

fn case(name: &str, failed: bool) -> CaseReport {
    let v = if failed {
        serde_json::json!({"name": name, "kind": "scenario", "status": "failed", "message": "1 check failed",
            "detail": "", "durationSeconds": 1.0,
            "assertions": [{"name": "/shop answers", "passed": false, "message": "$.pod: expected v1", "attempts": 1, "durationSeconds": 0.1}]})
    } else {
        serde_json::json!({"name": name, "kind": "scenario", "status": "passed", "durationSeconds": 1.0})
    };
    serde_json::from_value(v).unwrap()
}

impl Twins for ScriptedTwins {
    fn run<'a>(&'a self, _: &'a Suite, scenario: &'a Scenario) -> BoxFuture<'a, TwinRun> {
        let n = self.runs.fetch_add(1, Ordering::SeqCst);
        self.seen.lock().unwrap().push(scenario.name.clone());
        let failed = (self.fails)(scenario, n);
        Box::pin(async move {
            if scenario.name.contains("refused") {
                return TwinRun::Refused("refused by policy: maxPodsAffected".into());
            }
            TwinRun::Case(Box::new(case(&scenario.name, failed)))
        })
    }
}

fn scenario(name: &str, steps: serde_json::Value) -> Scenario {
    heatcheck_format::parse_scenario_json(&serde_json::json!({
        "name": name, "steps": steps,
        "assertions": [{"name": "/shop answers", "http": {"url": "http://x/shop"}}],
    }))
    .unwrap()
}

fn candidate(id: &str, class: WeaknessClass, sc: Scenario) -> Candidate {
    Candidate {
        id: id.into(),
        entry: "route-recreate",
        class,
        title: id.into(),
        objects: vec![format!("HTTPRoute/ns/{id}")],
        scenario: sc,
        drop_probes: Vec::new(),
        after_only: false,
        minimizable: true,
        origin: Origin::Catalog,
        remediation: Vec::new(),
    }
}

fn suite() -> Suite {
    heatcheck_format::parse_suite(
        "apiVersion: heatcheck.dev/v1alpha1\nkind: Suite\nmetadata: {name: s}\nspec:\n  target: {namespace: ns}\n  scenarios: []\n",
        std::path::Path::new("s.yaml"),
    )
    .unwrap()
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    futures::executor::block_on(f)
}

#[test]
fn findings_keep_their_changes_lose_needless_sleeps_and_are_ranked_and_scored() {
    let twins = scripted(
        // Fails whenever the route is deleted; the sleeps do not matter.
        |sc, _| sc.steps.iter().any(|s| s.action.kind() == "delete"),
    );
    let weak = scenario(
        "weak",
        serde_json::json!([{"sleep": "1100ms"}, {"delete": {"kind": "HTTPRoute", "name": "r"}}, {"sleep": "1s"}]),
    );
    let fine = scenario(
        "fine",
        serde_json::json!([{"scale": {"name": "d", "replicas": 1}}]),
    );
    let refused = scenario(
        "refused",
        serde_json::json!([{"scale": {"name": "d", "replicas": 0}}]),
    );
    let report = block_on(explore(
        &twins,
        &suite(),
        scenario("baseline", serde_json::json!([{"sleep": "1s"}])),
        vec![
            candidate("weak", WeaknessClass::RoutePrecedence, weak),
            candidate("fine", WeaknessClass::Capacity, fine),
            candidate("refused", WeaknessClass::Rollout, refused),
        ],
        None,
        &ExploreOptions {
            jobs: 1,
            ..Default::default()
        },
        &|_| {},
    ))
    .unwrap();
    assert_eq!(report.findings.len(), 1);
    let f = &report.findings[0];
    assert_eq!(f.id, "weak");
    assert!(!f.flaky);
    let steps = f.scenario["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 1, "only the delete is needed: {steps:?}");
    assert!(steps[0].get("delete").is_some());
    assert_eq!((report.candidates, report.refused), (2, 1));
    // Applicable: the two classes that ran; one survived.
    assert_eq!(report.resilience.score, 50);
    assert_eq!(
        report.resilience.failed,
        vec![WeaknessClass::RoutePrecedence]
    );
    assert_eq!(report.resilience.survived, vec![WeaknessClass::Capacity]);
}

#[test]
fn a_model_finding_is_shrunk_over_fault_durations_and_shares() {
    // Fails while the fault lasts 2 s or more on 20 % of the pods or more.
    let twins = scripted(|sc, _| {
        sc.steps.iter().any(|s| match &s.action {
            StepAction::Fault(f) => f.duration.0 >= Duration::from_secs(2) && f.percent >= 20,
            _ => false,
        })
    });
    let mut big = candidate(
        "ai/latency",
        WeaknessClass::TimeoutBudget,
        scenario(
            "model delays",
            serde_json::json!([{"fault": {"type": "networkDelay", "selector": "app=web",
                "percent": 80, "duration": "16s", "latency": "500ms"}}]),
        ),
    );
    big.origin = Origin::Ai;
    let report = block_on(explore(
        &twins,
        &suite(),
        scenario("baseline", serde_json::json!([{"sleep": "1s"}])),
        vec![big],
        None,
        &ExploreOptions {
            jobs: 1,
            ..Default::default()
        },
        &|_| {},
    ))
    .unwrap();
    let fault = &report.findings[0].scenario["steps"][0]["fault"];
    // 16 s -> 8 -> 4 -> 2 (three halvings, each still failing); 80 % ->
    // 40 -> 20, and 10 % held, so 20 stays.
    assert_eq!(fault["duration"], "2s", "{fault}");
    assert_eq!(fault["percent"], 20, "{fault}");
    assert!(!report.findings[0].flaky);
    // A catalog entry is minimal by construction: left as it is.
    let twins = scripted(|sc, _| sc.name == "catalog delays");
    let mut entry = candidate(
        "latency-half/x",
        WeaknessClass::TimeoutBudget,
        scenario(
            "catalog delays",
            serde_json::json!([{"fault": {"type": "networkDelay", "selector": "app=web",
                "percent": 50, "duration": "8s", "latency": "500ms"}}]),
        ),
    );
    entry.minimizable = false;
    let report = block_on(explore(
        &twins,
        &suite(),
        scenario("baseline", serde_json::json!([{"sleep": "1s"}])),
        vec![entry],
        None,
        &ExploreOptions::default(),
        &|_| {},
    ))
    .unwrap();
    let fault = &report.findings[0].scenario["steps"][0]["fault"];
    assert_eq!(
        (&fault["duration"], &fault["percent"]),
        (&serde_json::json!("8s"), &serde_json::json!(50))
    );
    // Baseline, the candidate, two re-runs: no shrinking run.
    assert_eq!(twins.runs.load(Ordering::SeqCst), 4);
}

#[test]
fn shares_and_durations_halve_to_their_floors() {
    let mut d = heatcheck_format::Duration(Duration::from_millis(3100));
    assert!(halve_duration(&mut d));
    assert_eq!(d.0, Duration::from_millis(1550));
    assert!(halve_duration(&mut d));
    assert_eq!(d.0, MIN_FAULT);
    assert!(!halve_duration(&mut d));
    let mut p = 3;
    assert!(halve_share(&mut p));
    assert_eq!(p, 1);
    assert!(!halve_share(&mut p));
}

#[test]
fn a_finding_names_the_probes_it_was_judged_with() {
    let twins = scripted(|sc, _| sc.name == "weak");
    let mut suite = suite();
    for name in ["traffic to /shop", "traffic to /solo"] {
        suite.spec.probes.push(
            serde_json::from_value(serde_json::json!({
                "name": name, "http": {"url": "http://x/"}, "every": "100ms"
            }))
            .unwrap(),
        );
    }
    let mut weak = candidate(
        "weak",
        WeaknessClass::NetworkIsolation,
        scenario("weak", serde_json::json!([{"sleep": "1ms"}])),
    );
    // Its own route's traffic is cut on purpose: not judged by that probe.
    weak.drop_probes = vec!["traffic to /shop".into()];
    let report = block_on(explore(
        &twins,
        &suite,
        scenario("baseline", serde_json::json!([{"sleep": "1s"}])),
        vec![weak],
        None,
        &ExploreOptions {
            jobs: 1,
            ..Default::default()
        },
        &|_| {},
    ))
    .unwrap();
    assert_eq!(report.findings[0].probes, ["traffic to /solo"]);
}

#[test]
fn a_finding_that_does_not_always_fail_is_flaky_not_dropped() {
    let twins = scripted(
        // The first candidate run fails, the re-runs pass.
        |sc, n| sc.name == "weak" && n == 1,
    );
    let weak = scenario(
        "weak",
        serde_json::json!([{"delete": {"kind": "HTTPRoute", "name": "r"}}]),
    );
    let report = block_on(explore(
        &twins,
        &suite(),
        scenario("baseline", serde_json::json!([{"sleep": "1s"}])),
        vec![candidate("weak", WeaknessClass::RoutePrecedence, weak)],
        None,
        &ExploreOptions {
            jobs: 1,
            ..Default::default()
        },
        &|_| {},
    ))
    .unwrap();
    assert_eq!(report.findings.len(), 1);
    assert!(report.findings[0].flaky);
    // Baseline, the candidate, two re-runs.
    assert_eq!(twins.runs.load(Ordering::SeqCst), 4);
}

/// Twins that take one poll to answer and remember how many ran at once
/// from the `from`-th run on (the re-runs, after the candidates).
struct OverlappingTwins {
    from: usize,
    runs: AtomicUsize,
    now: AtomicUsize,
    most: AtomicUsize,
}

impl Twins for OverlappingTwins {
    fn run<'a>(&'a self, _: &'a Suite, scenario: &'a Scenario) -> BoxFuture<'a, TwinRun> {
        let n = self.runs.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            let counted = n >= self.from;
            if counted {
                let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
                self.most.fetch_max(now, Ordering::SeqCst);
            }
            let mut polled = false;
            futures::future::poll_fn(|cx| {
                if polled {
                    return std::task::Poll::Ready(());
                }
                polled = true;
                cx.waker().wake_by_ref();
                std::task::Poll::Pending
            })
            .await;
            if counted {
                self.now.fetch_sub(1, Ordering::SeqCst);
            }
            let failed = scenario.name != "baseline";
            TwinRun::Case(Box::new(case(&scenario.name, failed)))
        })
    }
}

#[test]
fn the_re_runs_of_all_findings_share_the_jobs() {
    let twins = OverlappingTwins {
        // The baseline and three candidates come first.
        from: 4,
        runs: AtomicUsize::new(0),
        now: AtomicUsize::new(0),
        most: AtomicUsize::new(0),
    };
    let weak = |id: &str| {
        let mut c = candidate(
            id,
            WeaknessClass::RoutePrecedence,
            scenario(
                id,
                serde_json::json!([{"delete": {"kind": "HTTPRoute", "name": id}}]),
            ),
        );
        c.minimizable = false;
        c
    };
    let report = block_on(explore(
        &twins,
        &suite(),
        scenario("baseline", serde_json::json!([{"sleep": "1s"}])),
        vec![weak("a"), weak("b"), weak("c")],
        None,
        &ExploreOptions {
            jobs: 4,
            ..Default::default()
        },
        &|_| {},
    ))
    .unwrap();
    assert_eq!(report.findings.len(), 3);
    assert!(report.findings.iter().all(|f| !f.flaky), "{report:#?}");
    // Two re-runs each: six twins, four at a time, never more.
    assert_eq!(twins.runs.load(Ordering::SeqCst), 4 + 6);
    assert_eq!(twins.most.load(Ordering::SeqCst), 4);
}

#[test]
fn a_namespace_failing_before_any_change_is_not_explored() {
    let twins = scripted(|_, _| true);
    let err = block_on(explore(
        &twins,
        &suite(),
        scenario("baseline", serde_json::json!([{"sleep": "1s"}])),
        Vec::new(),
        None,
        &ExploreOptions::default(),
        &|_| {},
    ))
    .unwrap_err();
    assert!(matches!(err, ExploreError::Unhealthy(_)), "{err}");
}

#[test]
fn the_candidate_limit_and_the_budget_leave_the_rest_untried() {
    let twins = scripted(|_, _| false);
    let cands: Vec<Candidate> = (0..5)
        .map(|i| {
            candidate(
                &format!("c{i}"),
                WeaknessClass::Capacity,
                scenario(&format!("c{i}"), serde_json::json!([{"sleep": "1ms"}])),
            )
        })
        .collect();
    let report = block_on(explore(
        &twins,
        &suite(),
        scenario("baseline", serde_json::json!([{"sleep": "1s"}])),
        cands,
        None,
        &ExploreOptions {
            jobs: 1,
            max_candidates: Some(3),
            budget: Some(Duration::ZERO),
            ..Default::default()
        },
        &|_| {},
    ))
    .unwrap();
    // The limit leaves 2; the spent budget leaves the other 3.
    assert_eq!((report.candidates, report.skipped), (0, 5));
    assert_eq!(twins.seen.lock().unwrap().as_slice(), ["baseline"]);
}

/// Answers round n with `rounds[n-1]` and keeps what it was told.
struct ScriptedModel {
    rounds: Vec<Vec<Candidate>>,
    told: Mutex<Vec<Vec<Attempt>>>,
}

impl Proposer for ScriptedModel {
    fn propose<'a>(&'a self, ask: Ask<'a>) -> LocalBoxFuture<'a, Result<Proposal, String>> {
        self.told.lock().unwrap().push(ask.history.to_vec());
        let candidates = self.rounds.get(ask.round - 1).cloned().unwrap_or_default();
        Box::pin(async move {
            Ok(Proposal {
                candidates,
                refused: vec![Attempt {
                    name: format!("bad {}", ask.round),
                    class: WeaknessClass::Other,
                    origin: Origin::Ai,
                    verdict: "refused",
                    details: vec!["steps[0]: namespace kube-system".into()],
                }],
                tokens: Tokens {
                    input: 100,
                    output: 10,
                },
            })
        })
    }
}

#[test]
fn each_round_is_told_what_every_earlier_candidate_did() {
    let twins = scripted(|sc, _| sc.name == "model kills");
    let mut kill = candidate(
        "ai/kill",
        WeaknessClass::SinglePod,
        scenario("model kills", serde_json::json!([{"sleep": "1ms"}])),
    );
    kill.origin = Origin::Ai;
    let model = ScriptedModel {
        rounds: vec![vec![kill], vec![]],
        told: Mutex::new(Vec::new()),
    };
    let report = block_on(explore(
        &twins,
        &suite(),
        scenario("baseline", serde_json::json!([{"sleep": "1s"}])),
        vec![candidate(
            "fine",
            WeaknessClass::Capacity,
            scenario("catalog holds", serde_json::json!([{"sleep": "1ms"}])),
        )],
        Some(&model),
        &ExploreOptions {
            jobs: 1,
            rounds: 2,
            ..Default::default()
        },
        &|_| {},
    ))
    .unwrap();
    let told = model.told.lock().unwrap();
    assert_eq!(told.len(), 2);
    // Round 1 knows the catalog's result; round 2 also the model's own
    // candidate (failed, with evidence) and the refusal.
    assert_eq!(told[0].len(), 1);
    assert_eq!(
        (told[0][0].name.as_str(), told[0][0].verdict),
        ("catalog holds", "held")
    );
    let verdicts: Vec<(&str, &str)> = told[1]
        .iter()
        .map(|a| (a.name.as_str(), a.verdict))
        .collect();
    assert_eq!(
        verdicts,
        [
            ("catalog holds", "held"),
            ("bad 1", "refused"),
            ("model kills", "failed")
        ]
    );
    assert!(told[1][2]
        .describe()
        .contains("[single-pod, yours]: failed\n  - check"));
    assert_eq!(report.findings.len(), 1);
    assert_eq!(report.findings[0].origin, Origin::Ai);
    assert_eq!((report.candidates, report.refused), (2, 2));
    assert_eq!((report.tokens.input, report.tokens.output), (200, 20));
}

#[test]
fn the_candidate_limit_counts_the_model_rounds_too() {
    let twins = scripted(|_, _| false);
    let model = ScriptedModel {
        rounds: vec![(0..3)
            .map(|i| {
                candidate(
                    &format!("ai/{i}"),
                    WeaknessClass::Rollout,
                    scenario(&format!("m{i}"), serde_json::json!([{"sleep": "1ms"}])),
                )
            })
            .collect()],
        told: Mutex::new(Vec::new()),
    };
    let report = block_on(explore(
        &twins,
        &suite(),
        scenario("baseline", serde_json::json!([{"sleep": "1s"}])),
        Vec::new(),
        Some(&model),
        &ExploreOptions {
            jobs: 1,
            rounds: 5,
            max_candidates: Some(2),
            ..Default::default()
        },
        &|_| {},
    ))
    .unwrap();
    assert_eq!((report.candidates, report.skipped), (2, 1));
    // No round starts once the limit is reached.
    assert_eq!(model.told.lock().unwrap().len(), 1);
}

struct DownModel;

impl Proposer for DownModel {
    fn propose<'a>(&'a self, _: Ask<'a>) -> LocalBoxFuture<'a, Result<Proposal, String>> {
        Box::pin(async { Err("openai/fake-model: connection refused".to_string()) })
    }
}

#[test]
fn a_model_that_fails_stops_its_rounds_and_the_catalogs_findings_stand() {
    let twins = scripted(|sc, _| sc.name == "weak");
    let weak = scenario(
        "weak",
        serde_json::json!([{"delete": {"kind": "HTTPRoute", "name": "r"}}]),
    );
    let report = block_on(explore(
        &twins,
        &suite(),
        scenario("baseline", serde_json::json!([{"sleep": "1s"}])),
        vec![candidate("weak", WeaknessClass::RoutePrecedence, weak)],
        Some(&DownModel),
        &ExploreOptions {
            jobs: 1,
            rounds: 3,
            ..Default::default()
        },
        &|_| {},
    ))
    .unwrap();
    assert_eq!(
        report.model_error.as_deref(),
        Some("openai/fake-model: connection refused")
    );
    assert_eq!(report.findings.len(), 1);
    assert_eq!(report.findings[0].origin, Origin::Catalog);
    assert_eq!(report.candidates, 1);
}
