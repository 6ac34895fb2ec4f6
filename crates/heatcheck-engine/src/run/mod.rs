//! One run: for each suite, fixtures -> steady state -> each scenario (steps,
//! assertions, restore, steady state again) -> fixtures removed. The engine
//! emits events and builds the report; it never formats output.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::watch;

use crate::context::{ClusterGatewayResolver, StepError, SuiteContext};
use crate::event::{Event, LogLevel, Reporter};
use crate::exit::RunOutcome;
use crate::gate::{Decision, Gate, OperatorNote, StepPrompt};
use crate::journal::{Journal, JournalSink};
use crate::model::{
    AssertionRecord, CaseKind, CaseReport, CaseStatus, FaultSpan, NoteKind, Outcome,
    RestoreSummary, RoutePrecedenceChange, RunReport, StepRecord, SuiteReport,
};
use crate::probe::check_assertion;
use crate::probe::continuous::ScenarioProbes;
use crate::restore::{restore_scope, RestoreOptions, RestoreOutcome};
use crate::runstate::RunDir;
use crate::steps::run_step;
use crate::stop::StopWatch;
use heatcheck_cluster::ClusterClient;
use heatcheck_format::{template_context, Scenario, Step, StepAction, Suite, Templater};
use heatcheck_gateway::route_precedence;
use heatcheck_guard::{self as guard, EffectivePolicy, PolicyOverrides, Preflight};

mod cases;
mod scenario;

/// Why the run's Prometheus cannot be used (checked before anything changes).
#[derive(Debug, thiserror::Error)]
pub enum PrometheusUnusable {
    /// The suite's Prometheus settings are wrong.
    #[error("{0}")]
    Config(String),
    /// It did not answer, or answered wrongly.
    #[error("{0}")]
    Unreachable(String),
}

/// How a run behaves (from the command line).
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Only scenarios with these names (all when empty).
    pub scenarios: Vec<String>,
    pub fail_fast: bool,
    pub no_restore: bool,
    /// `--var KEY=VALUE`, over the suite's vars.
    pub vars: Vec<(String, String)>,
    /// Where run state (the journal) lives: `<state_dir>/runs/<run-id>/`.
    pub state_dir: Option<PathBuf>,
    /// Command-line policy flags (they only tighten a suite's policy).
    pub policy: PolicyOverrides,
    /// Each restore (a scenario's, the fixtures') must finish within this
    /// (default [`DEFAULT_RESTORE_TIMEOUT`]); what is not done stays in the journal.
    pub restore_timeout: Option<Duration>,
    /// Turns true on a second Ctrl-C: restores stop waiting for deletions.
    pub stop_waiting: Option<watch::Receiver<bool>>,
    /// `--retries`: over the suites' `defaults.retries`.
    pub retries: Option<u32>,
    /// `--jobs`: suites run at once (0 and 1: one after another).
    pub jobs: usize,
    /// `--prometheus-url` / `HEATCHECK_PROMETHEUS_URL`, over each suite's `spec.prometheus.url`.
    pub prometheus_url: Option<String>,
    /// Game day: asked before each scenario step (`--interactive`).
    pub gate: Gate,
    pub interactive: bool,
    /// On a failed check, wait on the gate before restoring.
    pub pause_on_failure: bool,
    /// A second home for the journal (`--journal-in-cluster`: a Secret).
    pub journal_sink: JournalSinkHandle,
}

/// The optional [`JournalSink`] of a run.
#[derive(Clone, Default)]
pub struct JournalSinkHandle(pub Option<Arc<dyn JournalSink>>);

impl std::fmt::Debug for JournalSinkHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "JournalSink(some)"
        } else {
            "JournalSink(none)"
        })
    }
}

pub(crate) const DEFAULT_RESTORE_TIMEOUT: Duration = Duration::from_secs(120);

/// Fans events out to the reporters.
#[derive(Clone, Default)]
pub struct Emitter {
    reporters: Arc<Mutex<Vec<Box<dyn Reporter>>>>,
}

impl Emitter {
    pub fn new(reporters: Vec<Box<dyn Reporter>>) -> Self {
        Emitter {
            reporters: Arc::new(Mutex::new(reporters)),
        }
    }

    pub(crate) fn emit(&self, e: Event) {
        let mut rs = self.reporters.lock().unwrap_or_else(|p| p.into_inner());
        for r in rs.iter_mut() {
            r.event(&e);
        }
    }
}

/// Takes `promql` assertions and stop conditions out (no Prometheus to ask); returns how many.
fn strip_promql(suite: &mut Suite, locked: &mut [Scenario]) -> usize {
    use heatcheck_format::{AssertionKind, StopCondition};
    let is_promql = |a: &heatcheck_format::Assertion| matches!(a.kind, AssertionKind::Promql(_));
    let mut n = 0;
    let mut strip = |list: &mut Vec<heatcheck_format::Assertion>| {
        let before = list.len();
        list.retain(|a| !is_promql(a));
        n += before - list.len();
    };
    strip(&mut suite.spec.steady_state);
    for sc in suite.spec.scenarios.iter_mut().chain(locked.iter_mut()) {
        strip(&mut sc.assertions);
    }
    let before = suite.spec.stop_conditions.len();
    suite
        .spec
        .stop_conditions
        .retain(|c| !matches!(c, StopCondition::Promql(_)));
    n + before - suite.spec.stop_conditions.len()
}

pub fn new_run_id() -> String {
    let t = chrono::Utc::now().format("%Y%m%d-%H%M%S");
    format!("{t}-{}", &uuid::Uuid::new_v4().simple().to_string()[..6])
}

pub struct Engine {
    pub client: ClusterClient,
    pub options: RunOptions,
    pub emitter: Emitter,
    pub run_id: String,
    pub cancel: watch::Receiver<bool>,
}

struct CaseOutcome {
    report: CaseReport,
    aborted: bool,
}

/// Where a scenario comes from, for reports (`CaseReport.origin`).
pub(crate) const ORIGIN_SUITE: &str = "suite";
pub(crate) const ORIGIN_LOCK: &str = "lock";

impl Engine {
    /// The guard's verdict on every suite, before anything runs (discovery
    /// only reads). Err: a policy that cannot be built (e.g. an unknown verb).
    pub async fn preflight(&self, suites: &[Suite]) -> Result<Vec<Preflight>, String> {
        let mut out = Vec::new();
        for suite in suites {
            let p = guard::preflight(
                Some(&self.client),
                suite,
                &self.options.policy,
                &self.options.vars,
                &self.options.scenarios,
            )
            .await
            .map_err(|e| format!("suite {}: {e}", suite.metadata.name))?;
            out.push(p);
        }
        Ok(out)
    }

    /// Before anything runs: every suite with promql checks and a Prometheus URL can reach
    /// it (a trivial query).
    pub async fn reach_prometheus(
        &self,
        suites: &[(Suite, Vec<Scenario>)],
    ) -> Result<(), PrometheusUnusable> {
        use crate::probe::promql::{uses_promql, PromError, Prometheus};
        for (suite, locked) in suites {
            if !uses_promql(suite, locked) {
                continue;
            }
            let templater = self.templater(suite);
            let name = &suite.metadata.name;
            let prom = match Prometheus::from_suite(
                suite,
                self.options.prometheus_url.as_deref(),
                &templater,
            ) {
                Ok(Some(p)) => p,
                Ok(None) => continue,
                Err(e) => return Err(PrometheusUnusable::Config(format!("suite {name}: {e}"))),
            };
            match prom.query("vector(1)").await {
                Ok(_) => {}
                Err(e @ PromError::Config(_)) => {
                    return Err(PrometheusUnusable::Config(format!("suite {name}: {e}")))
                }
                Err(e) => {
                    return Err(PrometheusUnusable::Unreachable(format!(
                        "suite {name}: {e}"
                    )))
                }
            }
        }
        Ok(())
    }

    /// Runs suites, each with the scenarios from its lockfile (already
    /// validated) after its own. The guard checks all of them first: any
    /// violation and nothing runs (exit code 2).
    pub async fn run_with_locked(&self, suites: Vec<(Suite, Vec<Scenario>)>) -> RunReport {
        let started_at = chrono::Utc::now();
        let started = Instant::now();
        let refused = |reasons: Vec<(usize, String)>| {
            let reports = suites
                .iter()
                .enumerate()
                .map(|(i, (s, locked))| {
                    let mut r = skipped_suite(s, locked, "refused by policy: nothing was run");
                    r.error = reasons
                        .iter()
                        .filter(|(j, _)| *j == i)
                        .map(|(_, m)| m.clone())
                        .reduce(|a, b| format!("{a}\n{b}"));
                    r
                })
                .collect();
            self.finish(
                started_at,
                started,
                reports,
                RestoreSummary::default(),
                RunOutcome::Invalid,
            )
        };
        // Locked scenarios are checked exactly like hand-written ones.
        let combined: Vec<Suite> = suites
            .iter()
            .map(|(s, locked)| {
                let mut s = s.clone();
                s.spec.scenarios.extend(locked.iter().cloned());
                s
            })
            .collect();
        let checks = match self.preflight(&combined).await {
            Ok(c) => c,
            Err(e) => return refused(vec![(0, e)]),
        };
        let violations: Vec<(usize, String)> = checks
            .iter()
            .enumerate()
            .flat_map(|(i, c)| {
                c.violations
                    .iter()
                    .map(move |v| (i, format!("refused by policy: {v}")))
            })
            .collect();
        if !violations.is_empty() {
            return refused(violations);
        }
        let policies = checks.into_iter().map(|c| c.policy).collect();
        self.run_checked(suites, policies).await
    }

    /// Runs suites whose policies [`Engine::preflight`] found clean
    /// (`policies[i]` belongs to `suites[i]`).
    pub async fn run_checked(
        &self,
        suites: Vec<(Suite, Vec<Scenario>)>,
        policies: Vec<EffectivePolicy>,
    ) -> RunReport {
        let started_at = chrono::Utc::now();
        let started = Instant::now();
        self.emitter.emit(Event::RunStarted {
            run_id: self.run_id.clone(),
            suites: suites.len(),
        });
        let journal = match &self.options.state_dir {
            Some(dir) => match Journal::open(&RunDir::new(dir, &self.run_id).journal_path()) {
                Ok(j) => match &self.options.journal_sink.0 {
                    Some(sink) => j.with_sink(sink.clone()),
                    None => j,
                },
                Err(e) => {
                    return self.finish(
                        started_at,
                        started,
                        Vec::new(),
                        RestoreSummary {
                            errors: vec![e.to_string()],
                            ..Default::default()
                        },
                        RunOutcome::Invalid,
                    );
                }
            },
            None => Journal::in_memory(),
        };
        // The tightest policy.maxRunDuration of the suites bounds the whole run.
        let run_deadline = suites
            .iter()
            .filter_map(|(s, _)| s.spec.policy.as_ref()?.max_run_duration)
            .min()
            .map(|d| started + d.0);
        // `--jobs`: suites run concurrently unless they may touch the same
        // namespace; such a suite waits for every earlier one it overlaps,
        // so overlapping suites keep their order.
        let lanes = lanes(&suites, &policies);
        for (i, waits) in lanes.iter().enumerate() {
            if let (Some(&j), true) = (waits.last(), self.options.jobs > 1) {
                self.emitter.emit(Event::Log {
                    level: LogLevel::Info,
                    message: format!(
                        "suite {} waits for suite {}: both may touch namespace {}",
                        suites[i].0.metadata.name,
                        suites[j].0.metadata.name,
                        overlap(&policies[i], &policies[j])
                            .unwrap_or_else(|| "(cluster-scoped)".into())
                    ),
                });
            }
        }
        let permits = tokio::sync::Semaphore::new(self.options.jobs.max(1));
        let done: Vec<watch::Sender<bool>> =
            suites.iter().map(|_| watch::channel(false).0).collect();
        let aborted = std::sync::atomic::AtomicBool::new(false);
        let failed = std::sync::atomic::AtomicBool::new(false);
        let runs =
            suites
                .into_iter()
                .zip(policies)
                .enumerate()
                .map(|(i, ((suite, locked), policy))| {
                    let (lanes, done, permits) = (&lanes, &done, &permits);
                    let (aborted, failed, journal) = (&aborted, &failed, &journal);
                    async move {
                        use std::sync::atomic::Ordering::SeqCst;
                        for &j in &lanes[i] {
                            let mut rx = done[j].subscribe();
                            let _ = rx.wait_for(|d| *d).await;
                        }
                        let _permit = permits.acquire().await.expect("semaphore never closed");
                        let result = if aborted.load(SeqCst)
                            || (failed.load(SeqCst) && self.options.fail_fast)
                        {
                            let reason = if aborted.load(SeqCst) {
                                "run aborted"
                            } else {
                                "--fail-fast: an earlier suite failed"
                            };
                            (
                                skipped_suite(&suite, &locked, reason),
                                RestoreOutcome::default(),
                            )
                        } else {
                            let (report, restore, suite_aborted) = self
                                .run_suite(suite, locked, policy, journal, run_deadline)
                                .await;
                            if report.cases.iter().any(CaseReport::is_failure)
                                || report.error.is_some()
                            {
                                failed.store(true, SeqCst);
                            }
                            if suite_aborted {
                                aborted.store(true, SeqCst);
                            }
                            (report, restore)
                        };
                        done[i].send_replace(true);
                        result
                    }
                });
        let mut reports = Vec::new();
        let mut restore_total = RestoreOutcome::default();
        for (report, restore) in futures::future::join_all(runs).await {
            restore_total.merge(restore);
            reports.push(report);
        }
        let aborted = aborted.into_inner();
        let failed = failed.into_inner();
        let summary = summary_of(&restore_total);
        let outcome = if !summary.is_clean() && !self.options.no_restore {
            RunOutcome::RestoreFailed
        } else if aborted {
            RunOutcome::Aborted
        } else if failed {
            RunOutcome::Failed
        } else {
            RunOutcome::Passed
        };
        self.finish(started_at, started, reports, summary, outcome)
    }

    fn finish(
        &self,
        started_at: chrono::DateTime<chrono::Utc>,
        started: Instant,
        suites: Vec<SuiteReport>,
        restore: RestoreSummary,
        outcome: RunOutcome,
    ) -> RunReport {
        let report = RunReport {
            run_id: self.run_id.clone(),
            started_at,
            duration: started.elapsed(),
            suites,
            exit_code: outcome.exit_code(),
            restore,
            environment: None,
        };
        self.emitter.emit(Event::RunFinished {
            report: report.clone(),
        });
        report
    }

    /// The suite's templates: its vars, `--var` over them, and `{{gateway}}`
    /// resolved from the cluster.
    fn templater(&self, suite: &Suite) -> Templater {
        let mut vars = template_context(suite, &self.run_id);
        for (k, v) in &self.options.vars {
            vars.insert(k.clone(), serde_json::Value::String(v.clone()));
        }
        let resolver = ClusterGatewayResolver {
            client: self.client.clone(),
            handle: tokio::runtime::Handle::current(),
            timeout: suite.spec.defaults.timeout.0,
        };
        Templater::new(vars, Arc::new(resolver))
    }

    fn context(
        &self,
        suite: Arc<Suite>,
        policy: EffectivePolicy,
        journal: &Journal,
        run_deadline: Option<Instant>,
    ) -> Result<SuiteContext, String> {
        let templater = self.templater(&suite);
        let prometheus = crate::probe::promql::Prometheus::from_suite(
            &suite,
            self.options.prometheus_url.as_deref(),
            &templater,
        )
        .map_err(|e| e.to_string())?
        .map(Arc::new);
        Ok(SuiteContext {
            client: self.client.clone(),
            journal: journal.clone(),
            templater: Arc::new(templater),
            prometheus,
            suite,
            run_id: self.run_id.clone(),
            http: crate::probe::http::client(),
            cancel: self.cancel.clone(),
            policy: Arc::new(policy),
            run_deadline,
        })
    }

    async fn run_suite(
        &self,
        suite: Suite,
        locked: Vec<Scenario>,
        policy: EffectivePolicy,
        journal: &Journal,
        run_deadline: Option<Instant>,
    ) -> (SuiteReport, RestoreOutcome, bool) {
        let started = Instant::now();
        let (mut suite, mut locked) = (suite, locked);
        if crate::probe::promql::effective_url(&suite, self.options.prometheus_url.as_deref())
            .is_none()
        {
            let skipped = strip_promql(&mut suite, &mut locked);
            if skipped > 0 {
                self.emitter.emit(Event::Log {
                    level: LogLevel::Warn,
                    message: format!(
                        "suite {}: {skipped} promql check(s) skipped: no Prometheus URL ({})",
                        suite.metadata.name,
                        crate::probe::promql::URL_SOURCES
                    ),
                });
            }
        }
        let name = suite.metadata.name.clone();
        let file = suite.source.path.display().to_string();
        let own = suite
            .spec
            .scenarios
            .iter()
            .cloned()
            .map(|s| (s, ORIGIN_SUITE));
        let scenarios: Vec<(Scenario, &'static str)> = own
            .chain(locked.into_iter().map(|s| (s, ORIGIN_LOCK)))
            .filter(|(s, _)| {
                self.options.scenarios.is_empty()
                    || self.options.scenarios.iter().any(|n| n == &s.name)
            })
            .collect();
        self.emitter.emit(Event::SuiteStarted {
            name: name.clone(),
            file: file.clone(),
            scenarios: scenarios.len(),
        });
        let suite = Arc::new(suite);
        let ctx = match self.context(suite.clone(), policy, journal, run_deadline) {
            Ok(c) => c,
            Err(e) => {
                let report = SuiteReport {
                    name,
                    file,
                    cases: vec![],
                    duration: started.elapsed(),
                    error: Some(e),
                };
                return (report, RestoreOutcome::default(), false);
            }
        };
        let mut cases = Vec::new();
        let mut restore = RestoreOutcome::default();
        let mut aborted = false;
        let mut suite_error = None;
        let fixtures_scope = format!("fixtures:{name}");

        // Fixtures.
        let mut fixture_steps = Vec::new();
        if suite.spec.target.create_namespace {
            fixture_steps.push(heatcheck_guard::permissions::namespace_step(
                &suite.spec.target.namespace,
            ));
        }
        fixture_steps.extend(suite.spec.fixtures.iter().cloned());
        let fixtures = self
            .run_steps_case(
                &ctx,
                &fixtures_scope,
                "fixtures",
                CaseKind::Fixtures,
                &fixture_steps,
            )
            .await;
        let fixtures_ok = matches!(fixtures.report.status, CaseStatus::Passed);
        aborted |= fixtures.aborted;
        if !fixture_steps.is_empty() {
            cases.push(fixtures.report);
        }

        // Steady state before anything.
        let mut steady_ok = fixtures_ok;
        if fixtures_ok && !aborted {
            for a in &suite.spec.steady_state {
                let case = self.steady_case(&ctx, a).await;
                steady_ok &= matches!(case.report.status, CaseStatus::Passed);
                aborted |= case.aborted;
                cases.push(case.report);
            }
        }

        let mut failed = false;
        for (sc, origin) in &scenarios {
            let skip = if aborted {
                Some("run aborted".to_string())
            } else if !fixtures_ok {
                Some("fixtures failed".to_string())
            } else if !steady_ok {
                Some("steady state did not hold before the scenario".to_string())
            } else if failed && self.options.fail_fast {
                Some("--fail-fast: an earlier scenario failed".to_string())
            } else {
                None
            };
            if let Some(reason) = skip {
                let mut report = scenario_report(
                    sc,
                    CaseStatus::Skipped { reason },
                    Duration::ZERO,
                    vec![],
                    vec![],
                );
                report.origin = Some((*origin).into());
                cases.push(report);
                continue;
            }
            let retries = self.options.retries.unwrap_or(suite.spec.defaults.retries);
            let (mut case, mut r) = self.run_scenario(&ctx, sc, origin).await;
            let mut failed_attempts = Vec::new();
            // Retried only when it failed on its own: never after a stop
            // condition or a signal, nor when its restore did not finish.
            while case.report.is_failure()
                && !case.aborted
                && r.ok()
                && (failed_attempts.len() as u32) < retries
            {
                self.emitter.emit(Event::Log {
                    level: LogLevel::Info,
                    message: format!(
                        "scenario {:?} {} (attempt {} of {}); restored, running it again",
                        sc.name,
                        case.report.status.label(),
                        failed_attempts.len() + 1,
                        retries + 1
                    ),
                });
                restore.merge(r);
                failed_attempts.push(case.report);
                (case, r) = self.run_scenario(&ctx, sc, origin).await;
            }
            case.report.failed_attempts = failed_attempts;
            self.emitter.emit(Event::CaseFinished {
                suite: name.clone(),
                report: case.report.clone(),
            });
            failed |= case.report.is_failure();
            aborted |= case.aborted;
            restore.merge(r);
            cases.push(case.report);
        }
        if !fixtures_ok {
            suite_error = Some("fixtures failed; scenarios were skipped".to_string());
        }

        // Fixtures go last.
        if !self.options.no_restore {
            let pending = journal.pending(&fixtures_scope);
            if !pending.is_empty() {
                self.emitter.emit(Event::RestoreStarted {
                    suite: name.clone(),
                    entries: pending.len(),
                });
                let mut r = self.restore(journal, &fixtures_scope).await;
                for c in &mut r.identity_changed {
                    c.suite = name.clone();
                    c.case = "fixtures".into();
                }
                self.emitter.emit(Event::RestoreFinished {
                    suite: name.clone(),
                    summary: summary_of(&r),
                });
                restore.merge(r);
            }
        } else {
            restore.left_behind.extend(
                journal
                    .open_scopes()
                    .iter()
                    .flat_map(|s| journal.pending(s))
                    .map(|e| e.describe()),
            );
        }
        let report = SuiteReport {
            name,
            file,
            cases,
            duration: started.elapsed(),
            error: suite_error,
        };
        self.emitter.emit(Event::SuiteFinished {
            report: report.clone(),
        });
        (report, restore, aborted)
    }

    /// What restore could not give back: objects recreated under a new
    /// identity, and route conflicts another route now wins. Reporters show
    /// each as a warning (RestoreFinished and the run's restore summary).
    async fn restore_honesty(
        &self,
        ctx: &SuiteContext,
        case: &str,
        routes_before: Option<&[route_precedence::Conflict]>,
        restore: &mut RestoreOutcome,
    ) {
        let suite = ctx.suite.metadata.name.clone();
        for c in &mut restore.identity_changed {
            c.suite = suite.clone();
            c.case = case.to_string();
        }
        let (Some(before), Some(after)) = (routes_before, route_conflicts(ctx).await) else {
            return;
        };
        for change in route_precedence::changes(before, &after) {
            restore.precedence_changed.push(RoutePrecedenceChange {
                suite: suite.clone(),
                case: case.to_string(),
                change,
            });
        }
    }

    /// Restores one scope within the restore deadline. Each thing restored
    /// is logged as it happens: visible (info) once the run is interrupted,
    /// when someone is watching the cluster being put back.
    async fn restore(&self, journal: &Journal, scope: &str) -> RestoreOutcome {
        let cancel = self.cancel.clone();
        let emitter = self.emitter.clone();
        let progress = move |msg: &str| {
            let level = if *cancel.borrow() {
                LogLevel::Info
            } else {
                LogLevel::Debug
            };
            emitter.emit(Event::Log {
                level,
                message: format!("restore: {msg}"),
            });
        };
        let timeout = self
            .options
            .restore_timeout
            .unwrap_or(DEFAULT_RESTORE_TIMEOUT);
        let opts = RestoreOptions {
            deadline: tokio::time::Instant::now() + timeout,
            stop_waiting: self.options.stop_waiting.clone(),
            progress: &progress,
        };
        restore_scope(&self.client, journal, scope, &opts).await
    }
}

/// For each suite, the earlier suites it must wait for: those whose allowed
/// namespaces overlap its own, that allow cluster-scoped kinds (they may touch
/// anything), or that share its name (reporters group output by suite name).
fn lanes(suites: &[(Suite, Vec<Scenario>)], policies: &[EffectivePolicy]) -> Vec<Vec<usize>> {
    (0..suites.len())
        .map(|i| {
            (0..i)
                .filter(|&j| {
                    overlap(&policies[i], &policies[j]).is_some()
                        || touches_cluster(&policies[i])
                        || touches_cluster(&policies[j])
                        || suites[i].0.metadata.name == suites[j].0.metadata.name
                })
                .collect()
        })
        .collect()
}

fn touches_cluster(p: &EffectivePolicy) -> bool {
    p.allowed_kinds.iter().any(|k| p.cluster_scoped.contains(k))
}

/// A namespace both suites may change.
fn overlap(a: &EffectivePolicy, b: &EffectivePolicy) -> Option<String> {
    a.allow_namespaces
        .iter()
        .find(|n| b.allow_namespaces.contains(n))
        .cloned()
}

fn scenario_report(
    sc: &Scenario,
    status: CaseStatus,
    duration: Duration,
    steps: Vec<StepRecord>,
    assertions: Vec<AssertionRecord>,
) -> CaseReport {
    CaseReport {
        name: sc.name.clone(),
        kind: CaseKind::Scenario,
        description: sc.description.clone(),
        status,
        duration,
        steps,
        assertions,
        metrics: sc.metrics.clone(),
        remediation: sc.remediation.clone(),
        origin: Some("suite".into()),
        probes: vec![],
        failed_attempts: vec![],
        started_at: None,
        faults: vec![],
        notes: vec![],
    }
}

fn skipped_suite(suite: &Suite, locked: &[Scenario], reason: &str) -> SuiteReport {
    let own = suite.spec.scenarios.iter().map(|s| (s, ORIGIN_SUITE));
    SuiteReport {
        name: suite.metadata.name.clone(),
        file: suite.source.path.display().to_string(),
        cases: own
            .chain(locked.iter().map(|s| (s, ORIGIN_LOCK)))
            .map(|(sc, origin)| {
                let mut r = scenario_report(
                    sc,
                    CaseStatus::Skipped {
                        reason: reason.to_string(),
                    },
                    Duration::ZERO,
                    vec![],
                    vec![],
                );
                r.origin = Some(origin.into());
                r
            })
            .collect(),
        duration: Duration::ZERO,
        error: None,
    }
}

fn errored(e: &StepError) -> CaseStatus {
    CaseStatus::Errored {
        message: e.to_string(),
        detail: e.to_string(),
    }
}

fn step_log(steps: &[StepRecord]) -> String {
    steps
        .iter()
        .map(|s| {
            format!(
                "{:?} {}{}",
                s.outcome,
                s.name,
                s.message
                    .as_ref()
                    .map(|m| format!(": {m}"))
                    .unwrap_or_default()
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn errored_with_log(e: &StepError, steps: &[StepRecord]) -> CaseStatus {
    let failed = steps.iter().find(|s| s.outcome == Outcome::Failed);
    let message = match failed {
        Some(s) => format!("step {} ({}) failed: {e}", s.index + 1, s.name),
        None => e.to_string(),
    };
    CaseStatus::Errored {
        message,
        detail: step_log(steps),
    }
}

fn summary_of(r: &RestoreOutcome) -> RestoreSummary {
    RestoreSummary {
        restored: r.restored.clone(),
        left_behind: r.left_behind.clone(),
        errors: r.errors.clone(),
        identity_changed: r.identity_changed.clone(),
        precedence_changed: r.precedence_changed.clone(),
    }
}

/// Route kinds whose conflicts Gateway API precedence decides.
const ROUTE_KINDS: &[&str] = &["HTTPRoute", "GRPCRoute"];

/// The conflicting route matches in the namespaces the suite may change,
/// and who wins each. None when routes cannot be listed (no Gateway API,
/// no permission): there is then nothing to compare.
async fn route_conflicts(ctx: &SuiteContext) -> Option<Vec<route_precedence::Conflict>> {
    let mut routes = Vec::new();
    let mut served = false;
    for kind in ROUTE_KINDS {
        let Ok(r) = ctx
            .client
            .resolve(Some("gateway.networking.k8s.io/v1"), kind)
            .await
        else {
            continue;
        };
        served = true;
        for ns in &ctx.policy.allow_namespaces {
            match ctx.client.list(&r, Some(ns), None).await {
                Ok(items) => routes.extend(items.into_iter().map(|mut o| {
                    o["kind"] = Value::String(kind.to_string());
                    o
                })),
                Err(e) => {
                    tracing::debug!("route precedence: cannot list {kind} in {ns}: {e}");
                    return None;
                }
            }
        }
    }
    served.then(|| route_precedence::conflicts(&routes))
}
