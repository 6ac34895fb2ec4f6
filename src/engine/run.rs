//! One run: for each suite, fixtures -> steady state -> each scenario (steps,
//! assertions, restore, steady state again) -> fixtures removed. The engine
//! emits events and builds the report; it never formats output.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::context::{ClusterGatewayResolver, StepError, SuiteContext};
use super::journal::Journal;
use super::restore::{restore_scope, RestoreOptions, RestoreOutcome};
use super::runstate::RunDir;
use super::steps::run_step;
use super::stop::StopWatch;
use crate::cluster::ClusterClient;
use crate::engine::event::{Event, LogLevel, Reporter};
use crate::engine::model::{
    AssertionRecord, CaseKind, CaseReport, CaseStatus, Outcome, RestoreSummary, RunReport,
    StepRecord, SuiteReport,
};
use crate::exit;
use crate::guard::{self, EffectivePolicy, PolicyOverrides, Preflight};
use crate::probe::check_assertion;
use crate::probe::continuous::ScenarioProbes;
use crate::suite::{template_context, ApplyStep, Scenario, Step, StepAction, Suite, Templater};

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
}

pub const DEFAULT_RESTORE_TIMEOUT: Duration = Duration::from_secs(120);

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

    pub fn emit(&self, e: Event) {
        let mut rs = self.reporters.lock().unwrap_or_else(|p| p.into_inner());
        for r in rs.iter_mut() {
            r.event(&e);
        }
    }
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
pub const ORIGIN_SUITE: &str = "suite";
pub const ORIGIN_LOCK: &str = "lock";

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

    /// Checks every suite against its policy, then runs them; any violation
    /// and nothing runs (exit code 2).
    pub async fn run(&self, suites: Vec<Suite>) -> RunReport {
        self.run_with_locked(suites.into_iter().map(|s| (s, Vec::new())).collect())
            .await
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
                exit::INVALID,
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
                Ok(j) => j,
                Err(e) => {
                    return self.finish(
                        started_at,
                        started,
                        Vec::new(),
                        RestoreSummary {
                            errors: vec![e.to_string()],
                            ..Default::default()
                        },
                        exit::INVALID,
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
        let summary = RestoreSummary {
            restored: restore_total.restored.clone(),
            left_behind: restore_total.left_behind.clone(),
            errors: restore_total.errors.clone(),
        };
        let code = if !summary.is_clean() && !self.options.no_restore {
            exit::RESTORE_FAILED
        } else if aborted {
            exit::ABORTED
        } else if failed {
            exit::TEST_FAILED
        } else {
            exit::SUCCESS
        };
        self.finish(started_at, started, reports, summary, code)
    }

    fn finish(
        &self,
        started_at: chrono::DateTime<chrono::Utc>,
        started: Instant,
        suites: Vec<SuiteReport>,
        restore: RestoreSummary,
        exit_code: i32,
    ) -> RunReport {
        let report = RunReport {
            run_id: self.run_id.clone(),
            started_at,
            duration: started.elapsed(),
            suites,
            exit_code,
            restore,
        };
        self.emitter.emit(Event::RunFinished {
            report: report.clone(),
        });
        report
    }

    fn context(
        &self,
        suite: Arc<Suite>,
        policy: EffectivePolicy,
        journal: &Journal,
        run_deadline: Option<Instant>,
    ) -> Result<SuiteContext, String> {
        let mut vars = template_context(&suite, &self.run_id);
        for (k, v) in &self.options.vars {
            vars.insert(k.clone(), serde_json::Value::String(v.clone()));
        }
        let resolver = ClusterGatewayResolver {
            client: self.client.clone(),
            handle: tokio::runtime::Handle::current(),
            timeout: suite.spec.defaults.timeout.0,
        };
        Ok(SuiteContext {
            client: self.client.clone(),
            journal: journal.clone(),
            templater: Arc::new(Templater::new(vars, Arc::new(resolver))),
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
            fixture_steps.push(create_namespace_step(&suite.spec.target.namespace));
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
                let r = self.restore(journal, &fixtures_scope).await;
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

    async fn steady_case(&self, ctx: &SuiteContext, a: &crate::suite::Assertion) -> CaseOutcome {
        let started = Instant::now();
        let name = a.display_name();
        let suite = ctx.suite.metadata.name.clone();
        self.emitter.emit(Event::CaseStarted {
            suite: suite.clone(),
            case: name.clone(),
            kind: CaseKind::SteadyState,
            steps: 0,
        });
        let (status, records, aborted) = match check_assertion(ctx, a, "").await {
            Ok(rec) => {
                self.emitter.emit(Event::AssertionFinished {
                    suite: suite.clone(),
                    case: name.clone(),
                    record: rec.clone(),
                });
                let st = if rec.passed {
                    CaseStatus::Passed
                } else {
                    CaseStatus::Failed {
                        message: rec.message.clone(),
                        detail: rec.detail.clone().unwrap_or_default(),
                    }
                };
                (st, vec![rec], false)
            }
            Err(e) => (errored(&e), vec![], matches!(e, StepError::Aborted)),
        };
        let report = CaseReport {
            name,
            kind: CaseKind::SteadyState,
            description: None,
            status,
            duration: started.elapsed(),
            steps: vec![],
            assertions: records,
            metrics: vec![],
            remediation: vec![],
            origin: Some("suite".into()),
            probes: vec![],
            failed_attempts: vec![],
        };
        self.emitter.emit(Event::CaseFinished {
            suite,
            report: report.clone(),
        });
        CaseOutcome { report, aborted }
    }

    /// Runs steps as one case (fixtures). Stops at the first failing step
    /// unless it has continueOnError.
    async fn run_steps_case(
        &self,
        ctx: &SuiteContext,
        scope: &str,
        name: &str,
        kind: CaseKind,
        steps: &[Step],
    ) -> CaseOutcome {
        let started = Instant::now();
        let suite = ctx.suite.metadata.name.clone();
        self.emitter.emit(Event::CaseStarted {
            suite: suite.clone(),
            case: name.to_string(),
            kind,
            steps: steps.len(),
        });
        let (records, error) = self.run_steps(ctx, scope, name, steps, started, None).await;
        let aborted = matches!(error, Some(StepError::Aborted));
        let status = match &error {
            None => CaseStatus::Passed,
            Some(e) => errored_with_log(e, &records),
        };
        let report = CaseReport {
            name: name.to_string(),
            kind,
            description: None,
            status,
            duration: started.elapsed(),
            steps: records,
            assertions: vec![],
            metrics: vec![],
            remediation: vec![],
            origin: Some("suite".into()),
            probes: vec![],
            failed_attempts: vec![],
        };
        self.emitter.emit(Event::CaseFinished {
            suite,
            report: report.clone(),
        });
        CaseOutcome { report, aborted }
    }

    async fn run_steps(
        &self,
        ctx: &SuiteContext,
        scope: &str,
        case: &str,
        steps: &[Step],
        case_started: Instant,
        mut probes: Option<&mut ScenarioProbes>,
    ) -> (Vec<StepRecord>, Option<StepError>) {
        let suite = ctx.suite.metadata.name.clone();
        let mut records = Vec::new();
        let mut error = None;
        for (i, step) in steps.iter().enumerate() {
            let t0 = Instant::now();
            let started_ms = case_started.elapsed().as_millis() as u64;
            let (outcome, message) = if error.is_some() {
                (Outcome::Skipped, None)
            } else if ctx.is_cancelled() {
                error = Some(StepError::Aborted);
                (Outcome::Skipped, Some("aborted".into()))
            } else {
                match run_step(ctx, scope, step, i).await {
                    Ok(note) => {
                        // duringFault probes start once the chaos is in place.
                        if let (Some(p), StepAction::Fault(f)) =
                            (probes.as_deref_mut(), &step.action)
                        {
                            p.fault_injected(f.duration.0);
                        }
                        (Outcome::Ok, (!note.is_empty()).then_some(note))
                    }
                    Err(StepError::Aborted) => {
                        error = Some(StepError::Aborted);
                        (Outcome::Failed, Some("aborted".into()))
                    }
                    Err(e) if step.continue_on_error => (Outcome::Ignored, Some(e.to_string())),
                    Err(e) => {
                        let msg = e.to_string();
                        error = Some(e);
                        (Outcome::Failed, Some(msg))
                    }
                }
            };
            let record = StepRecord {
                index: i,
                name: step.display_name(),
                started_ms,
                duration: t0.elapsed(),
                outcome,
                message,
            };
            self.emitter.emit(Event::StepFinished {
                suite: suite.clone(),
                case: case.to_string(),
                record: record.clone(),
            });
            records.push(record);
        }
        (records, error)
    }

    /// Checks assertions in order, recording each; true when aborted.
    async fn check_all(
        &self,
        ctx: &SuiteContext,
        case: &str,
        list: &[crate::suite::Assertion],
        prefix: &str,
        out: &mut Vec<AssertionRecord>,
    ) -> bool {
        for a in list {
            match check_assertion(ctx, a, prefix).await {
                Ok(rec) => {
                    self.emitter.emit(Event::AssertionFinished {
                        suite: ctx.suite.metadata.name.clone(),
                        case: case.to_string(),
                        record: rec.clone(),
                    });
                    out.push(rec);
                }
                Err(_) => return true,
            }
        }
        false
    }

    async fn run_scenario(
        &self,
        ctx: &SuiteContext,
        sc: &Scenario,
        origin: &str,
    ) -> (CaseOutcome, RestoreOutcome) {
        let started = Instant::now();
        let suite = ctx.suite.metadata.name.clone();
        let scope = format!("scenario:{suite}/{}", sc.name);
        self.emitter.emit(Event::CaseStarted {
            suite: suite.clone(),
            case: sc.name.clone(),
            kind: CaseKind::Scenario,
            steps: sc.steps.len(),
        });
        // Probes and stop conditions (stop.rs): the scenario runs with its
        // own cancellation, which a tripped condition fires.
        let mut probes = ScenarioProbes::new(ctx, started);
        let stop = StopWatch::start(ctx, probes.live(), started);
        let outer = ctx;
        let ctx = stop.context();
        probes.run_before().await;
        probes.start_continuous();
        let (steps, step_error) = self
            .run_steps(ctx, &scope, &sc.name, &sc.steps, started, Some(&mut probes))
            .await;
        let mut aborted = matches!(step_error, Some(StepError::Aborted));
        let mut assertions: Vec<AssertionRecord> = Vec::new();
        if step_error.is_none() {
            aborted |= self
                .check_all(ctx, &sc.name, &sc.assertions, "", &mut assertions)
                .await;
        }
        if !aborted && !ctx.is_cancelled() {
            probes.run_after().await;
        }
        probes.stop();
        let tripped = stop.finish();
        aborted |= tripped.is_some();
        let ctx = outer;
        // Restore this scenario's changes, then the steady state must hold again.
        let mut restore = RestoreOutcome::default();
        if !self.options.no_restore {
            let pending = ctx.journal.pending(&scope);
            if !pending.is_empty() {
                self.emitter.emit(Event::RestoreStarted {
                    suite: suite.clone(),
                    entries: pending.len(),
                });
                restore = self.restore(&ctx.journal, &scope).await;
                self.emitter.emit(Event::RestoreFinished {
                    suite: suite.clone(),
                    summary: summary_of(&restore),
                });
            }
        }
        // Outstanding probe requests finished while restore ran.
        let (probe_stats, probe_records) = probes.finish().await;
        for rec in &probe_records {
            self.emitter.emit(Event::AssertionFinished {
                suite: suite.clone(),
                case: sc.name.clone(),
                record: rec.clone(),
            });
        }
        assertions.extend(probe_records);
        if !self.options.no_restore && !aborted && restore.ok() {
            let steady = &ctx.suite.spec.steady_state;
            aborted |= self
                .check_all(
                    ctx,
                    &sc.name,
                    steady,
                    "steady state after: ",
                    &mut assertions,
                )
                .await;
        }
        let status = if let Some(reason) = &tripped {
            CaseStatus::Errored {
                message: format!("{reason}; changes were restored"),
                detail: format!("{reason}\n{}", step_log(&steps)),
            }
        } else if aborted {
            CaseStatus::Errored {
                message: "aborted; changes were restored".into(),
                detail: step_log(&steps),
            }
        } else if let Some(e) = &step_error {
            errored_with_log(e, &steps)
        } else if !restore.ok() {
            CaseStatus::Errored {
                message: format!(
                    "restore failed: {}",
                    restore.errors.first().cloned().unwrap_or_default()
                ),
                detail: restore.errors.join("\n"),
            }
        } else if let Some(first) = assertions.iter().find(|a| !a.passed) {
            let failures: Vec<String> = assertions
                .iter()
                .filter(|a| !a.passed)
                .map(|a| {
                    format!(
                        "{}: {}\n{}",
                        a.name,
                        a.message,
                        a.detail.clone().unwrap_or_default()
                    )
                })
                .collect();
            let n = assertions.iter().filter(|a| !a.passed).count();
            let message = if n > 1 {
                format!("{}: {} (and {} more)", first.name, first.message, n - 1)
            } else {
                format!("{}: {}", first.name, first.message)
            };
            CaseStatus::Failed {
                message,
                detail: failures.join("\n\n"),
            }
        } else {
            CaseStatus::Passed
        };
        let mut report = scenario_report(sc, status, started.elapsed(), steps, assertions);
        report.origin = Some(origin.into());
        report.probes = probe_stats;
        // CaseFinished is the caller's: after any retries, with every attempt.
        (CaseOutcome { report, aborted }, restore)
    }
}

/// `target.createNamespace`: the namespace is the first fixture (and so the last thing removed).
fn create_namespace_step(ns: &str) -> Step {
    let mut step = Step::new(StepAction::Apply(ApplyStep {
        file: None,
        manifest: Some(format!(
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n"
        )),
        namespace: None,
    }));
    step.name = Some(format!("create namespace {ns}"));
    step
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
    }
}
