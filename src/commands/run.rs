//! `heatcheck run`: the config step (flags → what runs, before anything
//! connects), then connect, recover earlier runs, regenerate, preflight,
//! run, and write the reports. What went wrong comes back as an [`Error`].

use std::io::Write;
use std::time::Duration;

use tokio::sync::watch;

use super::generate::{generate_lock, print_generation, provider_backend};
use super::{install_crypto, load_suites_checked, runtime, write_file};
use crate::ai::generate::ProviderBackend;
use crate::ai::lockfile::{self, sha256_hex};
use crate::cli::RunArgs;
use crate::cluster::ClusterClient;
use crate::engine::event::Reporter;
use crate::engine::gate::Gate;
use crate::engine::incluster::{JournalStore, KeptJournal};
use crate::engine::model::{RunEnvironment, RunReport, SuiteSource};
use crate::engine::run::{JournalSinkHandle, PrometheusUnusable};
use crate::engine::runstate::{wait_for_abort_file, ClusterRef, RunDir, RunState, RunStatus};
use crate::engine::{new_run_id, Emitter, Engine, RunOptions};
use crate::error::Error;
use crate::exit::{self, RunOutcome};
use crate::report::grouped::GroupedReporter;
use crate::report::human::{HumanOptions, HumanReporter};
use crate::report::json::{to_json, JsonEventReporter};
use crate::report::junit::to_junit_xml;
use crate::report::notify::{Notification, ReportLocation};
use crate::report::panel::{terminal_size, LivePanel, MonotonicClock, PanelHandle};
use crate::suite::{Scenario, Suite};

/// What to do about a suite's AI scenarios.
enum AiPlan {
    Locked(Vec<Scenario>),
    Regenerate(Box<ProviderBackend>),
}

/// Decides, per suite, which AI scenarios run.
fn plan_ai(suite: &Suite, args: &RunArgs) -> Result<AiPlan, Error> {
    if args.regenerate && suite.spec.ai.is_some() {
        let backend =
            provider_backend(suite).map_err(|e| e.context(suite.source.path.display()))?;
        return Ok(AiPlan::Regenerate(Box::new(backend)));
    }
    super::scenarios::locked_scenarios(suite, args.locked).map(AiPlan::Locked)
}

pub fn run(args: RunArgs) -> Result<(), Error> {
    install_crypto();
    let notify = args.notify.clone();
    let given: Vec<String> = args
        .suites
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    let result = RunConfig::new(args).and_then(|config| runtime().block_on(config.execute()));
    // A finished run (a verdict) has notified with its results; one that
    // never got that far (a broken suite, an unreachable cluster at 3 am)
    // is a failure the webhook must hear about too.
    if let Err(e) = &result {
        if !matches!(e, Error::Verdict(_)) {
            let outcome = RunOutcome::from_exit_code(e.exit_code());
            let summary = Notification::from_error(&given, outcome, e.to_string());
            runtime().block_on(super::notify::send(&notify, &summary));
        }
    }
    result
}

/// The config step (as ripgrep's flags become `HiArgs`): everything the
/// flags decide that needs no cluster, checked before anything connects.
struct RunConfig {
    args: RunArgs,
    gate: Gate,
    planned: Vec<(Suite, AiPlan)>,
}

impl RunConfig {
    fn new(args: RunArgs) -> Result<Self, Error> {
        let gate = if args.interactive || args.pause_on_failure {
            let g = super::gameday::TerminalGate::from_stdin().map_err(Error::invalid)?;
            Gate(Some(std::sync::Arc::new(g)))
        } else {
            Gate::default()
        };
        let suites = load_suites_checked(&args.suites)?;
        let planned = suites
            .into_iter()
            .map(|s| plan_ai(&s, &args).map(|plan| (s, plan)))
            .collect::<Result<Vec<_>, _>>()?;
        if !args.regenerate {
            let sets: Vec<(&Suite, &[Scenario])> = planned
                .iter()
                .map(|(s, plan)| match plan {
                    AiPlan::Locked(l) => (s, l.as_slice()),
                    AiPlan::Regenerate(_) => (s, &[][..]),
                })
                .collect();
            super::scenarios::check_known(&sets, &args.scenarios)?;
        }
        Ok(RunConfig {
            args,
            gate,
            planned,
        })
    }

    /// Connects, runs, and always closes the connection (and its sandbox).
    async fn execute(self) -> Result<(), Error> {
        let port = self.args.metrics.sandbox_metrics_port;
        let conn = super::connect::connect(&self.args.cluster, port).await?;
        let result = self.on_cluster(&conn.client).await;
        conn.close().await;
        result
    }

    async fn on_cluster(self, client: &ClusterClient) -> Result<(), Error> {
        let RunConfig {
            args,
            gate,
            planned,
        } = self;
        let journal = JournalStore::new(args.journal_in_cluster, client);
        // Before anything else: undo what earlier in-cluster runs left.
        let say = |m: &str| stderr_line!("{m}");
        journal
            .recover_earlier(client, &args.state_dir, args.restore_timeout, &say)
            .await?;
        let mut suites = regenerate(client, planned).await?;
        if let Some(partition) = args.partition {
            suites = super::scenarios::apply_partition(partition, &args.scenarios, suites);
        }
        let (reporter, panel) = reporter(&args);
        let run_id = new_run_id();
        let (cancel_tx, cancel_rx) = watch::channel(false);
        let (hurry_tx, hurry_rx) = watch::channel(false);
        let mut engine = Engine {
            client: client.clone(),
            options: run_options(&args, gate, hurry_rx.clone()),
            emitter: Emitter::new(vec![reporter]),
            run_id: run_id.clone(),
            cancel: cancel_rx,
        };
        let checks = preflight(&engine, &suites, &args, &journal).await?;
        // run.json before the first mutation: from here on a crash leaves something `heatcheck runs` finds.
        let run_dir = RunDir::new(&args.state_dir, &run_id);
        let state = RunState::starting(
            &run_id,
            args.suites
                .iter()
                .map(|p| p.display().to_string())
                .collect(),
            ClusterRef::from_args(
                args.cluster.kubeconfig.as_deref(),
                args.cluster.context.as_deref(),
                client.server(),
                args.cluster.sandbox,
            ),
        );
        run_dir
            .write_state(&state)
            .map_err(|e| Error::invalid(format!("cannot write run state: {e}")))?;
        // The journal's Secret exists before the first mutation; a run that
        // cannot keep it there could not be undone by the next pod: it does not start.
        let kept = match journal.keep(client, &run_id, &state).await {
            Ok(k) => k,
            Err(e) => {
                let _ = run_dir.set_status(RunStatus::Finished, Some("did not start".into()));
                return Err(e.into());
            }
        };
        if let Some(k) = &kept {
            stderr_line!(
                "journal kept in Secret {} (recovered by the next run if this one dies)",
                k.describe()
            );
            engine.options.journal_sink = JournalSinkHandle(Some(k.sink()));
        }
        // Installed here, before the first change, not when the task first runs.
        let interrupts = Interrupts::install();
        let signals = tokio::spawn(emergency_stop(
            interrupts,
            run_dir.clone(),
            cancel_tx,
            hurry_tx,
            panel,
        ));
        let policies = checks.into_iter().map(|c| c.policy).collect();
        let environment = environment(
            client.server(),
            args.cluster.context.as_deref(),
            args.cluster.sandbox,
            &suites,
        );
        let mut report = engine.run_checked(suites, policies).await;
        report.environment = Some(environment);
        signals.abort();
        let hurried = *hurry_rx.borrow();
        finish_state(&report, &args, hurried, &run_dir, kept).await;
        let outcome = write_outputs(&args, &report).await;
        Error::verdict(outcome)
    }
}

fn run_options(args: &RunArgs, gate: Gate, hurry: watch::Receiver<bool>) -> RunOptions {
    RunOptions {
        scenarios: args.scenarios.clone(),
        fail_fast: args.fail_fast,
        no_restore: args.no_restore,
        vars: args.vars.clone(),
        state_dir: Some(args.state_dir.clone()),
        policy: args.policy.overrides(),
        restore_timeout: Some(args.restore_timeout),
        stop_waiting: Some(hurry),
        retries: args.retries,
        jobs: args.jobs.into(),
        prometheus_url: args.metrics.prometheus_url.clone(),
        gate,
        interactive: args.interactive,
        pause_on_failure: args.pause_on_failure,
        journal_sink: Default::default(),
    }
}

/// `--regenerate`: fresh scenarios first, written to the lock; otherwise
/// the locked ones decided in the config step.
async fn regenerate(
    client: &ClusterClient,
    planned: Vec<(Suite, AiPlan)>,
) -> Result<Vec<(Suite, Vec<Scenario>)>, Error> {
    let mut suites = Vec::new();
    for (suite, plan) in planned {
        let locked = match plan {
            AiPlan::Locked(l) => l,
            AiPlan::Regenerate(backend) => {
                let mode = super::verify::VerifyMode::On;
                let (lock, generation) = generate_lock(client, &suite, &backend, mode, &mut |l| {
                    stderr_line!("{}: {l}", suite.metadata.name)
                })
                .await
                .map_err(|e| e.context(suite.source.path.display()))?;
                print_generation(&generation);
                let path = lockfile::lock_path(&suite.source.path);
                if lock.scenarios.is_empty() {
                    stderr_line!(
                        "warning: {}: no valid AI scenario; the lock was not rewritten",
                        suite.source.path.display()
                    );
                } else {
                    lockfile::write(&path, &lock).map_err(Error::invalid)?;
                    stderr_line!(
                        "wrote {} ({} scenario(s))",
                        super::relative(&path),
                        lock.scenarios.len()
                    );
                }
                let mut locked = lock.scenarios;
                locked.extend(lockfile::explored_scenarios(&suite).map_err(Error::invalid)?);
                locked
            }
        };
        suites.push((suite, locked));
    }
    Ok(suites)
}

/// Everything checked before the first change: the guard on hand-written
/// and locked scenarios alike (any violation and nothing runs, not even a
/// fixture), the credentials (a run that could not undo itself never
/// starts), then Prometheus.
async fn preflight(
    engine: &Engine,
    suites: &[(Suite, Vec<Scenario>)],
    args: &RunArgs,
    journal: &JournalStore,
) -> Result<Vec<crate::guard::Preflight>, Error> {
    let combined: Vec<Suite> = super::scenarios::combined(suites);
    let checks = engine.preflight(&combined).await.map_err(Error::invalid)?;
    for note in checks.iter().flat_map(|c| &c.notes) {
        stderr_line!("note: {note}");
    }
    let violations: Vec<_> = checks.iter().flat_map(|c| &c.violations).collect();
    if !violations.is_empty() {
        for v in &violations {
            stderr_line!("error: refused by policy: {v}");
        }
        return Err(Error::invalid(format!(
            "{} policy violation(s); nothing was run (see `heatcheck plan`)",
            violations.len()
        )));
    }
    if args.skip_permission_check {
        stderr_line!(
            "warning: --skip-permission-check: permissions were not checked; if a step or its restore is forbidden, the run stops half-way and may leave changes behind"
        );
    } else {
        permission_preflight(engine, &combined, &checks, args, journal).await?;
    }
    engine.reach_prometheus(suites).await.map_err(|e| match e {
        PrometheusUnusable::Config(m) => Error::Invalid(m),
        PrometheusUnusable::Unreachable(m) => Error::Unreachable(m),
    })?;
    Ok(checks)
}

/// After the run: the run's status in run.json and in the journal Secret.
async fn finish_state(
    report: &RunReport,
    args: &RunArgs,
    hurried: bool,
    run_dir: &RunDir,
    kept: Option<KeptJournal>,
) {
    let left = &report.restore.left_behind;
    let (status, message) = if args.no_restore {
        let kept = (!left.is_empty()).then(|| format!("kept by --no-restore: {}", left.join(", ")));
        (RunStatus::Finished, kept)
    } else if report.restore.is_clean() {
        (RunStatus::Finished, None)
    } else {
        let what = if left.is_empty() {
            // Every object is back; what failed is recording it (e.g. a full disk).
            format!("not recorded: {}", report.restore.errors.join("; "))
        } else {
            format!("left: {}", left.join(", "))
        };
        let status = if hurried {
            RunStatus::Aborted
        } else {
            RunStatus::RestoreFailed
        };
        (status, Some(what))
    };
    if let Some(k) = kept {
        // Restored (or kept on purpose): the journal is done with. Otherwise
        // the Secret stays, released, for the next run to recover at once.
        let name = k.describe();
        if let Err(e) = k.close(status, message.clone()).await {
            stderr_line!("warning: journal Secret {name}: {e}");
        }
    }
    if let Err(e) = run_dir.set_status(status, message) {
        stderr_line!("warning: cannot update run state: {e}");
    }
    if status != RunStatus::Finished && left.is_empty() {
        stderr_line!(
            "heatcheck: every change was undone in the cluster, but the journal could not record it ({}); `heatcheck recover {}` checks each object again and closes the run",
            report.restore.errors.join("; "),
            run_dir.run_id()
        );
    } else if status != RunStatus::Finished {
        stderr_line!(
            "heatcheck: the cluster is not fully restored; the journal keeps what is left: run `heatcheck recover {}`",
            run_dir.run_id()
        );
    }
}

/// The reports, metrics and notifications the flags ask for. A report that
/// cannot be written fails the run (exit 1); a Pushgateway or a webhook
/// that does not take what is sent does not change the verdict.
async fn write_outputs(args: &RunArgs, report: &RunReport) -> RunOutcome {
    let mut outcome = report.outcome();
    let flaky: Vec<&str> = report
        .suites
        .iter()
        .flat_map(|s| &s.cases)
        .filter(|c| c.is_flaky())
        .map(|c| c.name.as_str())
        .collect();
    if args.flaky_fails && !flaky.is_empty() {
        stderr_line!(
            "error: --flaky-fails: {} flaky scenario(s): {}",
            flaky.len(),
            flaky.join(", ")
        );
        outcome = outcome.max(RunOutcome::Failed);
    }
    let mut write = |path: &Option<std::path::PathBuf>, what: &str, render: &dyn Fn() -> String| {
        if let Some(path) = path {
            if let Err(e) = write_file(path, &render()) {
                stderr_line!("error: writing {what} {}: {e}", path.display());
                outcome = outcome.max(RunOutcome::Failed);
            }
        }
    };
    write(&args.junit, "JUnit report", &|| to_junit_xml(report));
    write(&args.report_json, "JSON report", &|| to_json(report));
    write(&args.report_html, "HTML report", &|| {
        crate::report::html::run_html(report)
    });
    if let Some(path) = &args.metrics.metrics_file {
        if let Err(e) = crate::report::metrics::write_metrics_file(path, report) {
            stderr_line!("error: writing metrics file {}: {e}", path.display());
            outcome = outcome.max(RunOutcome::Failed);
        }
    }
    if let Some(url) = &args.metrics.pushgateway {
        // The run's verdict stands whatever happens to its metrics.
        let client = crate::probe::http::client();
        if let Err(e) = crate::report::metrics::push(&client, url, report).await {
            stderr_line!("warning: metrics not pushed: {e}");
        }
    }
    let reports = [
        ("junit", &args.junit),
        ("json", &args.report_json),
        ("html", &args.report_html),
        ("metrics", &args.metrics.metrics_file),
    ]
    .into_iter()
    .filter_map(|(kind, p)| {
        p.as_ref()
            .map(|p| ReportLocation::new(kind, p.display().to_string()))
    })
    .collect();
    let summary = Notification::from_run(report, outcome, reports);
    super::notify::send(&args.notify, &summary).await;
    outcome
}

/// What prints the run: JSON lines, or lines for people; on a terminal
/// (unless `--no-live`) those scroll above the live panel, which replaces
/// the spinners. The handle lets other output past the panel.
fn reporter(args: &RunArgs) -> (Box<dyn Reporter>, PanelHandle) {
    if args.output.is_json() {
        let json = JsonEventReporter::new(std::io::stdout());
        return (Box::new(json), PanelHandle::default());
    }
    let options = HumanOptions::detect();
    let jobs = args.jobs;
    // Concurrent suites print as one block each, without live spinners.
    let lines = move |out: Box<dyn Write + Send>, progress: bool| -> Box<dyn Reporter> {
        if jobs > 1 {
            let options = HumanOptions {
                progress: false,
                ..options
            };
            Box::new(GroupedReporter::new(HumanReporter::new(out, options)))
        } else {
            Box::new(HumanReporter::new(
                out,
                HumanOptions {
                    progress,
                    ..options
                },
            ))
        }
    };
    // `progress` is true exactly when stdout is a terminal.
    if options.progress && !args.no_live {
        let panel = LivePanel::new(
            Box::new(std::io::stdout()),
            |out| lines(out, false),
            options.color,
            Box::new(terminal_size),
            Box::new(MonotonicClock::new()),
        )
        .with_ticker();
        let handle = panel.handle();
        return (Box::new(panel), handle);
    }
    (
        lines(Box::new(std::io::stdout()), options.progress),
        PanelHandle::default(),
    )
}

/// The emergency stop: the first SIGINT/SIGTERM (or an `abort` file from
/// `heatcheck abort`) cancels the run, which restores; a second one stops
/// waiting for slow deletions (what is left stays in the journal, run.json
/// says aborted); a third exits at once.
async fn emergency_stop(
    mut interrupts: Interrupts,
    run_dir: RunDir,
    cancel: watch::Sender<bool>,
    hurry: watch::Sender<bool>,
    panel: PanelHandle,
) {
    let run_id = run_dir.run_id();
    // On stderr, with the live panel (if any) out of the way; never a
    // panic on a closed stderr: this task must live to the end.
    let say = |text: String| panel.suspend(|| stderr_line!("{text}"));
    tokio::select! {
        _ = interrupts.next() => say(
            "\nheatcheck: interrupted; stopping and restoring the cluster (Ctrl-C again to stop waiting for slow deletions)".into()
        ),
        _ = wait_for_abort_file(run_dir.clone(), Duration::from_millis(200)) => say(
            "\nheatcheck: stop requested by `heatcheck abort`; stopping and restoring the cluster".into()
        ),
    }
    let _ = cancel.send(true);
    interrupts.next().await;
    say(format!(
        "heatcheck: second interrupt: not waiting for slow deletions; what is left stays in the journal (`heatcheck recover {run_id}`). Ctrl-C again to exit at once."
    ));
    let _ = hurry.send(true);
    interrupts.next().await;
    let _ = run_dir.set_status(
        RunStatus::Aborted,
        Some("exited on a third interrupt before the restore finished".into()),
    );
    say(format!(
        "heatcheck: exiting; run `heatcheck recover {run_id}` to finish the restore"
    ));
    std::process::exit(exit::RESTORE_FAILED);
}

/// SIGINT or SIGTERM.
/// SIGINT and SIGTERM listeners. They are installed when made, not when
/// first polled: made before the run's first change, a Ctrl-C at any point
/// after that restores instead of killing the process.
pub struct Interrupts {
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
}

impl Interrupts {
    /// Needs a tokio runtime (the commands run inside one).
    pub fn install() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Interrupts {
                int: signal(SignalKind::interrupt()).expect("SIGINT handler"),
                term: signal(SignalKind::terminate()).expect("SIGTERM handler"),
            }
        }
        #[cfg(not(unix))]
        Interrupts {}
    }

    /// The next SIGINT or SIGTERM.
    pub async fn next(&mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.int.recv() => {}
            _ = self.term.recv() => {}
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    }
}

pub async fn wait_for_signal() {
    Interrupts::install().next().await
}

/// Every permission the run needs, checked with SelfSubjectAccessReview.
/// Err when one is denied: it lists every missing one with why it is
/// needed, and nothing has changed.
async fn permission_preflight(
    engine: &Engine,
    suites: &[Suite],
    checks: &[crate::guard::Preflight],
    args: &RunArgs,
    journal: &JournalStore,
) -> Result<(), Error> {
    use crate::guard::permissions::{required, review, Access, Need};
    let mut needs: Vec<Need> = Vec::new();
    for (suite, check) in suites.iter().zip(checks) {
        for n in required(
            &engine.client,
            suite,
            &check.policy,
            &args.vars,
            &args.scenarios,
        )
        .await
        {
            if !needs.iter().any(|m| {
                (&m.verb, &m.group, &m.resource, &m.namespace)
                    == (&n.verb, &n.group, &n.resource, &n.namespace)
            }) {
                needs.push(n);
            }
        }
    }
    for n in journal.needs() {
        if !needs.iter().any(|m| {
            (&m.verb, &m.group, &m.resource, &m.namespace)
                == (&n.verb, &n.group, &n.resource, &n.namespace)
        }) {
            needs.push(n);
        }
    }
    let answers = review(&engine.client, &needs).await;
    let denied: Vec<&Need> = needs
        .iter()
        .zip(&answers)
        .filter(|(_, a)| **a == Access::Denied)
        .map(|(n, _)| n)
        .collect();
    if !denied.is_empty() {
        let mut text = format!(
            "these credentials cannot run the suite (or undo it); nothing was changed. Missing {} permission(s):",
            denied.len()
        );
        for n in &denied {
            text.push_str(&format!("\n  {}: {}", n.describe(), n.why));
        }
        text.push_str(&format!(
            "\nhint: bind the Role that `heatcheck plan {}` prints to this identity",
            args.suites
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(" ")
        ));
        return Err(Error::Invalid(text));
    }
    let unknown = answers.iter().filter(|a| **a == Access::Unknown).count();
    if unknown > 0 {
        stderr_line!(
            "warning: {unknown} of {} permission(s) could not be checked (the API server did not answer SelfSubjectAccessReview); running anyway",
            needs.len()
        );
    }
    Ok(())
}

/// Where the run happens and the exact suite files (content hashes).
fn environment(
    server: &str,
    context: Option<&str>,
    sandbox: bool,
    suites: &[(Suite, Vec<Scenario>)],
) -> RunEnvironment {
    RunEnvironment {
        heatcheck_version: env!("CARGO_PKG_VERSION").to_string(),
        cluster_server: server.to_string(),
        context: context
            .map(str::to_string)
            .or_else(|| sandbox.then(|| "embedded sandbox".to_string())),
        suites: suites
            .iter()
            .map(|(s, locked)| {
                let lock = lockfile::lock_path(&s.source.path);
                SuiteSource {
                    name: s.metadata.name.clone(),
                    file: super::relative(&s.source.path),
                    sha256: sha256_hex(&std::fs::read(&s.source.path).unwrap_or_default()),
                    lock_sha256: (!locked.is_empty())
                        .then(|| std::fs::read(&lock).ok())
                        .flatten()
                        .map(|b| sha256_hex(&b)),
                }
            })
            .collect(),
    }
}
