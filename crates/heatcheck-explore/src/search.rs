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
    /// Reduce each finding's steps to those it needs.
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
fn suite_for(suite: &Suite, c: &Candidate) -> Suite {
    let mut own = suite.clone();
    own.spec.probes.retain(|p| !c.drop_probes.contains(&p.name));
    own
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
    if opts.minimize && scenario.steps.len() > 1 {
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

/// One-minimal over steps (delta debugging's last stage): drops each step
/// whose removal keeps the scenario failing, last step first.
async fn minimize(
    twins: &dyn Twins,
    suite: &Suite,
    mut scenario: Scenario,
    mut last: CaseReport,
) -> (Scenario, CaseReport) {
    let mut i = scenario.steps.len();
    while i > 0 && scenario.steps.len() > 1 {
        i -= 1;
        let mut smaller = scenario.clone();
        smaller.steps.remove(i);
        if let TwinRun::Case(case) = twins.run(suite, &smaller).await {
            if matches!(judge(&case), Judgement::Failed { .. }) {
                scenario = smaller;
                last = *case;
            }
        }
    }
    (scenario, last)
}
