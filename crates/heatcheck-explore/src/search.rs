//! The search: every candidate on its own fresh twin (a recreated route
//! keeps its new creationTimestamp after restore, so twins are never
//! shared), several at once, within a budget; failures become findings,
//! each minimized over its steps and re-run on fresh twins (a finding that
//! does not always fail is labelled flaky, not dropped).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use futures::stream::{self, StreamExt};

use crate::catalog::{Candidate, WeaknessClass};
use crate::finding::{judge, Finding, FindingsReport, Judgement, Origin, Resilience};
use heatcheck_engine::model::CaseReport;
use heatcheck_format::{Scenario, Suite};

/// What running one scenario on a fresh twin gave.
#[derive(Clone, Debug)]
pub enum TwinRun {
    Case(Box<CaseReport>),
    /// The guard refused it (nothing ran).
    Refused(String),
    /// The twin or the suite's fixtures failed: no verdict on the candidate.
    Broken(String),
}

/// Fresh twins, one per call (the binary starts an in-process sandbox
/// seeded with what was read, plus the suite's fixtures).
pub trait Twins: Sync {
    fn run<'a>(&'a self, suite: &'a Suite, scenario: &'a Scenario) -> BoxFuture<'a, TwinRun>;
}

#[derive(Clone, Debug)]
pub struct ExploreOptions {
    /// Twins at once.
    pub jobs: usize,
    pub max_candidates: Option<usize>,
    /// No new candidate starts after this.
    pub budget: Option<Duration>,
    /// Extra runs of each finding on fresh twins (flakiness).
    pub reruns: usize,
    /// Reduce the steps of each minimizable finding to those it needs.
    pub minimize: bool,
}

impl Default for ExploreOptions {
    fn default() -> Self {
        ExploreOptions {
            jobs: 2,
            max_candidates: None,
            budget: None,
            reruns: 2,
            minimize: true,
        }
    }
}

/// What the search tells as it goes (the terminal progress, JSON events).
#[derive(Clone, Debug)]
pub enum Progress {
    Started {
        candidates: usize,
    },
    Tried {
        id: String,
        verdict: &'static str,
        detail: Option<String>,
    },
    Minimizing {
        id: String,
    },
    Confirming {
        id: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum ExploreError {
    #[error("the steady state does not hold on the twin before any change, so no candidate can be judged:\n{0}")]
    Unhealthy(String),
    #[error("cannot run the baseline on a twin: {0}")]
    Twin(String),
}

/// Explores `suite` (its scenarios replaced by candidates): a baseline run
/// first (the steady state must hold before any change), then the search.
pub async fn explore(
    twins: &dyn Twins,
    suite: &Suite,
    baseline: Scenario,
    candidates: Vec<Candidate>,
    opts: &ExploreOptions,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<FindingsReport, ExploreError> {
    let started = Instant::now();
    match twins.run(suite, &baseline).await {
        TwinRun::Case(case) => match judge(&case) {
            Judgement::Held => {}
            Judgement::Broken(m) => return Err(ExploreError::Twin(m)),
            Judgement::Failed { evidence, .. } => {
                return Err(ExploreError::Unhealthy(evidence.join("\n")))
            }
        },
        TwinRun::Refused(m) | TwinRun::Broken(m) => return Err(ExploreError::Twin(m)),
    }
    let limit = opts
        .max_candidates
        .unwrap_or(usize::MAX)
        .min(candidates.len());
    let skipped_by_limit = candidates.len() - limit;
    progress(Progress::Started { candidates: limit });
    let deadline = opts.budget.map(|b| started + b);
    let runs: Vec<(Candidate, Option<TwinRun>)> = stream::iter(candidates.into_iter().take(limit))
        .map(|c| async move {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return (c, None);
            }
            let own = suite_for(suite, &c);
            let run = twins.run(&own, &c.scenario).await;
            let (verdict, detail) = match &run {
                TwinRun::Case(case) => match judge(case) {
                    Judgement::Held => ("held", None),
                    Judgement::Broken(m) => ("broken", Some(m)),
                    Judgement::Failed { evidence, .. } => ("failed", evidence.first().cloned()),
                },
                TwinRun::Refused(m) => ("refused", Some(m.clone())),
                TwinRun::Broken(m) => ("broken", Some(m.clone())),
            };
            progress(Progress::Tried {
                id: c.id.clone(),
                verdict,
                detail,
            });
            (c, Some(run))
        })
        .buffer_unordered(opts.jobs.max(1))
        .collect()
        .await;

    let mut report = FindingsReport {
        suite: suite.metadata.name.clone(),
        namespace: suite.spec.target.namespace.clone(),
        skipped: skipped_by_limit,
        ..Default::default()
    };
    let mut applicable: BTreeSet<WeaknessClass> = BTreeSet::new();
    let mut failed: Vec<(Candidate, Box<CaseReport>)> = Vec::new();
    for (c, run) in runs {
        match run {
            None => report.skipped += 1,
            Some(TwinRun::Refused(_)) => report.refused += 1,
            Some(TwinRun::Broken(_)) => report.candidates += 1,
            Some(TwinRun::Case(case)) => {
                report.candidates += 1;
                match judge(&case) {
                    Judgement::Held => {
                        applicable.insert(c.class);
                    }
                    Judgement::Broken(_) => {}
                    Judgement::Failed { .. } => {
                        applicable.insert(c.class);
                        failed.push((c, case));
                    }
                }
            }
        }
    }
    // One finding per weakness class and objects (the catalog makes one
    // candidate per pair today; the model may make several).
    let mut seen = BTreeSet::new();
    failed.retain(|(c, _)| seen.insert((c.class, c.objects.clone())));
    for (c, case) in failed {
        report
            .findings
            .push(confirm(twins, suite, c, *case, opts, progress).await);
    }
    report.findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(b.outage_seconds.total_cmp(&a.outage_seconds))
            .then(a.id.cmp(&b.id))
    });
    let failed_classes: BTreeSet<WeaknessClass> = report.findings.iter().map(|f| f.class).collect();
    report.resilience = Resilience {
        score: if applicable.is_empty() {
            100
        } else {
            (100 * (applicable.len() - failed_classes.len()) / applicable.len()) as u32
        },
        survived: applicable.difference(&failed_classes).copied().collect(),
        failed: failed_classes.into_iter().collect(),
    };
    report.duration_seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// The suite a candidate is judged with: without the probes it drops.
pub fn suite_for(suite: &Suite, c: &Candidate) -> Suite {
    let mut own = suite.clone();
    if c.after_only {
        own.spec.probes.clear();
    }
    own.spec.probes.retain(|p| !c.drop_probes.contains(&p.name));
    own
}

/// The checks that failed, by name: a smaller scenario must fail the same
/// way to count as the same finding.
fn failed_checks(case: &CaseReport) -> Vec<String> {
    let mut v: Vec<String> = case
        .assertions
        .iter()
        .filter(|a| !a.passed)
        .map(|a| a.name.clone())
        .collect();
    v.sort();
    v
}

/// Minimizes a failed candidate, re-runs it, and writes the finding.
async fn confirm(
    twins: &dyn Twins,
    suite: &Suite,
    c: Candidate,
    case: CaseReport,
    opts: &ExploreOptions,
    progress: &(dyn Fn(Progress) + Sync),
) -> Finding {
    let suite = &suite_for(suite, &c);
    let mut scenario = c.scenario.clone();
    let mut last = case;
    if opts.minimize && c.minimizable && scenario.steps.len() > 1 {
        progress(Progress::Minimizing { id: c.id.clone() });
        (scenario, last) = minimize(twins, suite, scenario, last).await;
    }
    progress(Progress::Confirming { id: c.id.clone() });
    let mut failures = 1;
    for _ in 0..opts.reruns {
        if let TwinRun::Case(case) = twins.run(suite, &scenario).await {
            if matches!(judge(&case), Judgement::Failed { .. }) {
                failures += 1;
            }
        }
    }
    let Judgement::Failed {
        severity,
        evidence,
        outage_seconds,
    } = judge(&last)
    else {
        unreachable!("minimize keeps a failing case");
    };
    Finding {
        id: c.id,
        title: c.title,
        class: c.class,
        severity,
        objects: c.objects,
        scenario: serde_json::to_value(&scenario).unwrap_or_default(),
        evidence,
        outage_seconds,
        remediation: c
            .class
            .remediation()
            .iter()
            .map(|s| s.to_string())
            .collect(),
        flaky: failures < opts.reruns + 1,
        origin: Origin::Catalog,
    }
}

/// One-minimal over steps (delta debugging's last stage), last step first:
/// a step goes when the scenario without it still fails the same way (the
/// same failed checks, no lesser severity). A catalog entry's changes are
/// what it is about and stay; its sleeps and waits may go (deleting a route
/// without recreating it also fails, but that is another story).
async fn minimize(
    twins: &dyn Twins,
    suite: &Suite,
    mut scenario: Scenario,
    mut last: CaseReport,
) -> (Scenario, CaseReport) {
    let same_as = |a: &CaseReport, b: &CaseReport| {
        let sev = |c: &CaseReport| match judge(c) {
            Judgement::Failed { severity, .. } => Some(severity),
            _ => None,
        };
        failed_checks(a) == failed_checks(b) && sev(a).is_some() && sev(a) >= sev(b)
    };
    let mut i = scenario.steps.len();
    while i > 0 && scenario.steps.len() > 1 {
        i -= 1;
        let kind = scenario.steps[i].action.kind();
        if !matches!(kind, "sleep" | "wait") {
            continue;
        }
        let mut smaller = scenario.clone();
        smaller.steps.remove(i);
        if let TwinRun::Case(case) = twins.run(suite, &smaller).await {
            if same_as(&case, &last) {
                scenario = smaller;
                last = *case;
            }
        }
    }
    (scenario, last)
}

#[cfg(test)]
mod tests {
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
        let twins = ScriptedTwins {
            // Fails whenever the route is deleted; the sleeps do not matter.
            fails: Box::new(|sc, _| sc.steps.iter().any(|s| s.action.kind() == "delete")),
            runs: AtomicUsize::new(0),
            seen: Mutex::new(Vec::new()),
        };
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
    fn a_finding_that_does_not_always_fail_is_flaky_not_dropped() {
        let twins = ScriptedTwins {
            // The first candidate run fails, the re-runs pass.
            fails: Box::new(|sc, n| sc.name == "weak" && n == 1),
            runs: AtomicUsize::new(0),
            seen: Mutex::new(Vec::new()),
        };
        let weak = scenario(
            "weak",
            serde_json::json!([{"delete": {"kind": "HTTPRoute", "name": "r"}}]),
        );
        let report = block_on(explore(
            &twins,
            &suite(),
            scenario("baseline", serde_json::json!([{"sleep": "1s"}])),
            vec![candidate("weak", WeaknessClass::RoutePrecedence, weak)],
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

    #[test]
    fn a_namespace_failing_before_any_change_is_not_explored() {
        let twins = ScriptedTwins {
            fails: Box::new(|_, _| true),
            runs: AtomicUsize::new(0),
            seen: Mutex::new(Vec::new()),
        };
        let err = block_on(explore(
            &twins,
            &suite(),
            scenario("baseline", serde_json::json!([{"sleep": "1s"}])),
            Vec::new(),
            &ExploreOptions::default(),
            &|_| {},
        ))
        .unwrap_err();
        assert!(matches!(err, ExploreError::Unhealthy(_)), "{err}");
    }

    #[test]
    fn the_candidate_limit_and_the_budget_leave_the_rest_untried() {
        let twins = ScriptedTwins {
            fails: Box::new(|_, _| false),
            runs: AtomicUsize::new(0),
            seen: Mutex::new(Vec::new()),
        };
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
}
