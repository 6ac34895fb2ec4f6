//! The search: every candidate on its own fresh twin (a recreated route
//! keeps its new creationTimestamp after restore, so twins are never
//! shared), several at once, within a budget; failures become findings,
//! each minimized over its steps and fault magnitudes and re-run on fresh
//! twins (a finding that does not always fail is labelled flaky, not
//! dropped).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use futures::future::{BoxFuture, LocalBoxFuture};
use futures::stream::{self, StreamExt};

use crate::catalog::{Candidate, WeaknessClass};
use crate::finding::{
    judge, Finding, FindingsReport, Judgement, Origin, Resilience, Severity, Tokens,
};
use heatcheck_engine::model::CaseReport;
use heatcheck_format::{Scenario, StepAction, Suite};

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
    /// Rounds of model candidates (with a proposer).
    pub rounds: usize,
}

impl Default for ExploreOptions {
    fn default() -> Self {
        ExploreOptions {
            jobs: 2,
            max_candidates: None,
            budget: None,
            reruns: 2,
            minimize: true,
            rounds: 3,
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
    /// Asking the model for a round of candidates.
    Asking {
        round: usize,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum ExploreError {
    #[error("the steady state does not hold on the twin before any change, so no candidate can be judged:\n{0}")]
    Unhealthy(String),
    #[error("cannot run the baseline on a twin: {0}")]
    Twin(String),
}

/// One candidate's twin run, judged once.
enum Tried {
    /// Not started: the budget was spent.
    Skipped,
    Refused(String),
    Broken(String),
    Judged(Box<CaseReport>, Judgement),
}

impl Tried {
    fn of(run: TwinRun) -> Tried {
        match run {
            TwinRun::Refused(m) => Tried::Refused(m),
            TwinRun::Broken(m) => Tried::Broken(m),
            TwinRun::Case(case) => {
                let j = judge(&case);
                Tried::Judged(case, j)
            }
        }
    }

    /// The verdict word and what goes with it.
    fn verdict(&self) -> (&'static str, Vec<String>) {
        match self {
            Tried::Skipped => ("skipped", Vec::new()),
            Tried::Refused(m) => ("refused", vec![m.clone()]),
            Tried::Broken(m) | Tried::Judged(_, Judgement::Broken(m)) => {
                ("broken", vec![m.clone()])
            }
            Tried::Judged(_, Judgement::Held) => ("held", Vec::new()),
            Tried::Judged(_, Judgement::Failed { evidence, .. }) => ("failed", evidence.clone()),
        }
    }
}

/// An earlier candidate as the model is told about it.
#[derive(Clone, Debug, PartialEq)]
pub struct Attempt {
    pub name: String,
    pub class: WeaknessClass,
    pub origin: Origin,
    /// `held`, `failed`, `refused` (by the policy or the checks, never run),
    /// `broken` (its own steps failed) or `skipped`.
    pub verdict: &'static str,
    pub details: Vec<String>,
}

impl Attempt {
    /// One line (and its details indented) for the model's next round.
    pub fn describe(&self) -> String {
        let mut s = format!(
            "- \"{}\" [{}, {}]: {}",
            self.name,
            self.class.as_str(),
            match self.origin {
                Origin::Catalog => "catalog",
                Origin::Ai => "yours",
            },
            self.verdict
        );
        for d in self.details.iter().take(4) {
            s.push_str("\n  - ");
            s.push_str(&shorten(d, 300));
        }
        s
    }
}

fn shorten(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_string(),
    }
}

/// What the model is asked in one round.
pub struct Ask<'a> {
    /// 1 for the first round.
    pub round: usize,
    /// Every earlier candidate, catalog and model, with its verdict.
    pub history: &'a [Attempt],
    /// Classes already found weak: aim elsewhere.
    pub found: &'a [WeaknessClass],
}

/// The model's answer, checked: candidates to run on twins, and what was
/// refused before running (invalid, out of policy) with the reasons.
#[derive(Default)]
pub struct Proposal {
    pub candidates: Vec<Candidate>,
    pub refused: Vec<Attempt>,
    pub tokens: Tokens,
}

/// Where model candidates come from (the binary asks the suite's provider
/// through heatcheck-ai; this crate never talks to a model). Everything it
/// returns still runs only on twins.
pub trait Proposer {
    fn propose<'a>(&'a self, ask: Ask<'a>) -> LocalBoxFuture<'a, Result<Proposal, String>>;
}

/// Explores `suite` (its scenarios replaced by candidates): a baseline run
/// first (the steady state must hold before any change), then the
/// catalog's candidates, then (with a proposer) rounds of the model's, each
/// told what every earlier candidate did.
pub async fn explore(
    twins: &dyn Twins,
    suite: &Suite,
    baseline: Scenario,
    candidates: Vec<Candidate>,
    proposer: Option<&dyn Proposer>,
    opts: &ExploreOptions,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<FindingsReport, ExploreError> {
    let started = Instant::now();
    match Tried::of(twins.run(suite, &baseline).await) {
        Tried::Judged(_, Judgement::Held) => {}
        Tried::Judged(_, Judgement::Failed { evidence, .. }) => {
            return Err(ExploreError::Unhealthy(evidence.join("\n")))
        }
        Tried::Judged(_, Judgement::Broken(m)) | Tried::Refused(m) | Tried::Broken(m) => {
            return Err(ExploreError::Twin(m))
        }
        Tried::Skipped => unreachable!("the baseline always runs"),
    }
    let mut report = FindingsReport {
        suite: suite.metadata.name.clone(),
        namespace: suite.spec.target.namespace.clone(),
        ..Default::default()
    };
    let limit = opts.max_candidates.unwrap_or(usize::MAX);
    let deadline = opts.budget.map(|b| started + b);
    let take = candidates.len().min(limit);
    report.skipped += candidates.len() - take;
    progress(Progress::Started { candidates: take });
    let mut tried = try_all(
        twins,
        suite,
        candidates.into_iter().take(take),
        deadline,
        opts,
        progress,
    )
    .await;
    let mut history: Vec<Attempt> = tried.iter().map(attempt).collect();
    if let Some(p) = proposer {
        for round in 1..=opts.rounds {
            if tried.len() >= limit || deadline.is_some_and(|d| Instant::now() >= d) {
                break;
            }
            progress(Progress::Asking { round });
            let found: Vec<WeaknessClass> = found_classes(&tried).into_iter().collect();
            let proposal = match p
                .propose(Ask {
                    round,
                    history: &history,
                    found: &found,
                })
                .await
            {
                Ok(prop) => prop,
                Err(e) => {
                    report.model_error = Some(e);
                    break;
                }
            };
            report.tokens.input += proposal.tokens.input;
            report.tokens.output += proposal.tokens.output;
            report.refused += proposal.refused.len();
            for r in &proposal.refused {
                progress(Progress::Tried {
                    id: r.name.clone(),
                    verdict: "refused",
                    detail: r.details.first().cloned(),
                });
            }
            history.extend(proposal.refused);
            let room = limit - tried.len();
            report.skipped += proposal.candidates.len().saturating_sub(room);
            let new = try_all(
                twins,
                suite,
                proposal.candidates.into_iter().take(room),
                deadline,
                opts,
                progress,
            )
            .await;
            history.extend(new.iter().map(attempt));
            tried.extend(new);
        }
    }

    let mut applicable: BTreeSet<WeaknessClass> = BTreeSet::new();
    let mut failed: Vec<(Candidate, Box<CaseReport>, Judgement)> = Vec::new();
    for (c, t) in tried {
        match t {
            Tried::Skipped => report.skipped += 1,
            Tried::Refused(_) => report.refused += 1,
            Tried::Broken(_) | Tried::Judged(_, Judgement::Broken(_)) => report.candidates += 1,
            Tried::Judged(_, Judgement::Held) => {
                report.candidates += 1;
                applicable.insert(c.class);
            }
            Tried::Judged(case, j @ Judgement::Failed { .. }) => {
                report.candidates += 1;
                applicable.insert(c.class);
                failed.push((c, case, j));
            }
        }
    }
    // One finding per weakness class and objects (the catalog makes one
    // candidate per pair; the model may make several, or repeat the catalog).
    let mut seen = BTreeSet::new();
    failed.retain(|(c, _, _)| seen.insert((c.class, c.objects.clone())));
    report.findings = confirm(twins, suite, failed, opts, progress).await;
    report.findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(b.outage_seconds.total_cmp(&a.outage_seconds))
            .then(a.id.cmp(&b.id))
    });
    // The score is over the catalog's classes; `other` (a model's change
    // that fits none) is reported but not scored.
    applicable.remove(&WeaknessClass::Other);
    let failed_classes: BTreeSet<WeaknessClass> = report
        .findings
        .iter()
        .map(|f| f.class)
        .filter(|c| *c != WeaknessClass::Other)
        .collect();
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

/// Runs candidates, `jobs` at once, each on its own twin; none starts
/// after the deadline.
async fn try_all(
    twins: &dyn Twins,
    suite: &Suite,
    candidates: impl Iterator<Item = Candidate>,
    deadline: Option<Instant>,
    opts: &ExploreOptions,
    progress: &(dyn Fn(Progress) + Sync),
) -> Vec<(Candidate, Tried)> {
    stream::iter(candidates)
        .map(|c| async move {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return (c, Tried::Skipped);
            }
            let own = suite_for(suite, &c);
            let t = Tried::of(twins.run(&own, &c.scenario).await);
            let (verdict, details) = t.verdict();
            progress(Progress::Tried {
                id: c.id.clone(),
                verdict,
                detail: details.into_iter().next().filter(|_| verdict != "held"),
            });
            (c, t)
        })
        .buffer_unordered(opts.jobs.max(1))
        .collect()
        .await
}

fn attempt((c, t): &(Candidate, Tried)) -> Attempt {
    let (verdict, details) = t.verdict();
    Attempt {
        name: c.scenario.name.clone(),
        class: c.class,
        origin: c.origin,
        verdict,
        details,
    }
}

fn found_classes(tried: &[(Candidate, Tried)]) -> BTreeSet<WeaknessClass> {
    tried
        .iter()
        .filter(|(_, t)| matches!(t, Tried::Judged(_, Judgement::Failed { .. })))
        .map(|(c, _)| c.class)
        .collect()
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

fn severity(j: &Judgement) -> Option<Severity> {
    match j {
        Judgement::Failed { severity, .. } => Some(*severity),
        _ => None,
    }
}

/// Minimizes each failed candidate, re-runs it, and writes the findings.
/// Findings are minimized side by side (each minimization is a sequence of
/// twin runs), then every re-run of every finding shares the `jobs` twins:
/// a finding's confirmation no longer waits for the one before it.
async fn confirm(
    twins: &dyn Twins,
    suite: &Suite,
    failed: Vec<(Candidate, Box<CaseReport>, Judgement)>,
    opts: &ExploreOptions,
    progress: &(dyn Fn(Progress) + Sync),
) -> Vec<Finding> {
    let jobs = opts.jobs.max(1);
    let minimized: Vec<(Candidate, Suite, Scenario, Judgement)> = stream::iter(failed)
        .map(|(c, case, j)| async move {
            let own = suite_for(suite, &c);
            let (scenario, (_, last)) =
                minimize_one(twins, &own, &c, (*case, j), opts, progress).await;
            (c, own, scenario, last)
        })
        .buffered(jobs)
        .collect()
        .await;
    for (c, ..) in &minimized {
        progress(Progress::Confirming { id: c.id.clone() });
    }
    let reruns = (0..minimized.len()).flat_map(|i| std::iter::repeat_n(i, opts.reruns));
    let failed_again: Vec<usize> = stream::iter(reruns)
        .map(|i| {
            let (_, own, scenario, _) = &minimized[i];
            async move {
                match twins.run(own, scenario).await {
                    TwinRun::Case(case) => {
                        matches!(judge(&case), Judgement::Failed { .. }).then_some(i)
                    }
                    _ => None,
                }
            }
        })
        .buffer_unordered(jobs)
        .filter_map(|i| async move { i })
        .collect()
        .await;
    minimized
        .into_iter()
        .enumerate()
        .map(|(i, (c, own, scenario, last))| {
            let failures = 1 + failed_again.iter().filter(|&&j| j == i).count();
            finding(c, &own, scenario, last, failures < opts.reruns + 1)
        })
        .collect()
}

/// Steps first, then fault magnitudes, for a minimizable candidate.
async fn minimize_one(
    twins: &dyn Twins,
    suite: &Suite,
    c: &Candidate,
    first: (CaseReport, Judgement),
    opts: &ExploreOptions,
    progress: &(dyn Fn(Progress) + Sync),
) -> (Scenario, (CaseReport, Judgement)) {
    let mut scenario = c.scenario.clone();
    let mut last = first;
    let has_fault = scenario
        .steps
        .iter()
        .any(|s| matches!(s.action, StepAction::Fault(_)));
    if opts.minimize && c.minimizable && (scenario.steps.len() > 1 || has_fault) {
        progress(Progress::Minimizing { id: c.id.clone() });
        if scenario.steps.len() > 1 {
            (scenario, last) = minimize(twins, suite, scenario, last).await;
        }
        (scenario, last) = shrink_faults(twins, suite, scenario, last).await;
    }
    (scenario, last)
}

fn finding(
    c: Candidate,
    suite: &Suite,
    scenario: Scenario,
    last: Judgement,
    flaky: bool,
) -> Finding {
    let Judgement::Failed {
        severity,
        evidence,
        outage_seconds,
    } = last
    else {
        unreachable!("minimize keeps a failing case");
    };
    let mut remediation: Vec<String> = c.remediation.clone();
    remediation.extend(c.class.remediation().iter().map(|s| s.to_string()));
    remediation.dedup();
    Finding {
        id: c.id,
        title: c.title,
        class: c.class,
        severity,
        objects: c.objects,
        scenario: serde_json::to_value(&scenario).unwrap_or_default(),
        evidence,
        outage_seconds,
        remediation,
        flaky,
        origin: c.origin,
        probes: suite.spec.probes.iter().map(|p| p.name.clone()).collect(),
    }
}

/// One-minimal over steps (delta debugging's last stage), last step first:
/// a step goes when the scenario without it still fails the same way (the
/// same failed checks, no lesser severity): deleting a route without
/// recreating it also fails, but with errors where the original misroutes,
/// so the recreate stays.
async fn minimize(
    twins: &dyn Twins,
    suite: &Suite,
    mut scenario: Scenario,
    mut last: (CaseReport, Judgement),
) -> (Scenario, (CaseReport, Judgement)) {
    let mut i = scenario.steps.len();
    while i > 0 && scenario.steps.len() > 1 {
        i -= 1;
        let mut smaller = scenario.clone();
        smaller.steps.remove(i);
        if let Some(next) = fails_the_same(twins, suite, &smaller, &last).await {
            scenario = smaller;
            last = next;
        }
    }
    (scenario, last)
}

/// The run of `smaller` when it fails as `last` did: the same failed
/// checks, no lesser severity.
async fn fails_the_same(
    twins: &dyn Twins,
    suite: &Suite,
    smaller: &Scenario,
    last: &(CaseReport, Judgement),
) -> Option<(CaseReport, Judgement)> {
    let TwinRun::Case(case) = twins.run(suite, smaller).await else {
        return None;
    };
    let j = judge(&case);
    let same = failed_checks(&case) == failed_checks(&last.0)
        && severity(&j).is_some()
        && severity(&j) >= severity(&last.1);
    same.then_some((*case, j))
}

/// Halvings tried per fault and magnitude (each is a twin run).
const HALVINGS: usize = 3;

/// Shortest fault duration tried: below it a probe at 100 ms sees too few
/// requests to tell an outage from luck.
const MIN_FAULT: Duration = Duration::from_secs(1);

/// Delta debugging over magnitudes, after the steps: each fault's
/// duration, then its share of the selected pods, halved while the
/// scenario still fails the same way (a 2 s latency on 20 % of the pods
/// says more than 16 s on 80 %).
async fn shrink_faults(
    twins: &dyn Twins,
    suite: &Suite,
    mut scenario: Scenario,
    mut last: (CaseReport, Judgement),
) -> (Scenario, (CaseReport, Judgement)) {
    for i in 0..scenario.steps.len() {
        for share in [false, true] {
            for _ in 0..HALVINGS {
                let mut smaller = scenario.clone();
                let StepAction::Fault(f) = &mut smaller.steps[i].action else {
                    break;
                };
                let changed = if share {
                    halve_share(&mut f.percent)
                } else {
                    halve_duration(&mut f.duration)
                };
                if !changed {
                    break;
                }
                match fails_the_same(twins, suite, &smaller, &last).await {
                    Some(next) => {
                        scenario = smaller;
                        last = next;
                    }
                    None => break,
                }
            }
        }
    }
    (scenario, last)
}

fn halve_duration(d: &mut heatcheck_format::Duration) -> bool {
    if d.0 <= MIN_FAULT {
        return false;
    }
    // Whole milliseconds, as a suite writes them.
    let half = Duration::from_millis((d.0.as_millis() / 2) as u64).max(MIN_FAULT);
    d.0 = half;
    true
}

fn halve_share(percent: &mut u8) -> bool {
    if *percent <= 1 {
        return false;
    }
    *percent = (*percent / 2).max(1);
    true
}

#[cfg(test)]
mod tests;
