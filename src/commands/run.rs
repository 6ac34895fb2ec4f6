//! `heatcheck run`: load, connect, run, report, map to an exit code.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::watch;

use super::generate::{generate_lock, print_generation, provider_backend};
use super::{install_crypto, load_suites_or_exit, runtime};
use crate::ai::generate::ProviderBackend;
use crate::ai::lockfile;
use crate::engine::event::Reporter;
use crate::engine::partition::Partition;
use crate::engine::runstate::{wait_for_abort_file, ClusterRef, RunDir, RunState, RunStatus};
use crate::engine::{new_run_id, Emitter, Engine, RunOptions};
use crate::exit;
use crate::report::grouped::GroupedReporter;
use crate::report::human::{HumanOptions, HumanReporter};
use crate::report::json::{to_json, JsonEventReporter};
use crate::report::junit::to_junit_xml;
use crate::report::panel::{terminal_size, LivePanel, MonotonicClock, PanelHandle};
use crate::suite::{Scenario, Suite};

pub struct RunArgs {
    pub suites: Vec<PathBuf>,
    pub sandbox: bool,
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    pub scenarios: Vec<String>,
    pub junit: Option<PathBuf>,
    pub report_json: Option<PathBuf>,
    pub report_html: Option<PathBuf>,
    pub json_output: bool,
    pub fail_fast: bool,
    pub no_restore: bool,
    /// `--skip-permission-check`: no SelfSubjectAccessReview before the run.
    pub skip_permission_check: bool,
    pub vars: Vec<(String, String)>,
    pub state_dir: PathBuf,
    /// Keep the journal in a Secret too, and first recover earlier runs'.
    pub journal_in_cluster: bool,
    /// Policy flags (they only tighten the suites' policies).
    pub policy: crate::guard::PolicyOverrides,
    /// CI mode: only locked AI scenarios, never an LLM call; a missing or
    /// stale lock is an error.
    pub locked: bool,
    /// Generate fresh AI scenarios (and write the lock) before running.
    pub regenerate: bool,
    /// Each restore must be done within this; the rest stays in the journal.
    pub restore_timeout: Duration,
    /// Run only this shard of the scenarios.
    pub partition: Option<Partition>,
    /// Over the suites' `defaults.retries`.
    pub retries: Option<u32>,
    /// A flaky scenario fails the run.
    pub flaky_fails: bool,
    /// Suites run at once.
    pub jobs: usize,
    /// Game day: confirm each scenario step at the terminal.
    pub interactive: bool,
    /// On a failed check, wait at the terminal before restoring.
    pub pause_on_failure: bool,
    /// `--no-live`: no live panel on a terminal.
    pub no_live: bool,
    pub metrics: MetricsOptions,
}

/// Prometheus in and out.
#[derive(Clone, Debug, Default)]
pub struct MetricsOptions {
    /// Over each suite's `spec.prometheus.url`.
    pub prometheus_url: Option<String>,
    /// node-exporter textfile output.
    pub metrics_file: Option<PathBuf>,
    /// Pushgateway base URL.
    pub pushgateway: Option<String>,
    /// With `--sandbox`: the port of the data plane's `/metrics`.
    pub sandbox_metrics_port: Option<u16>,
}

/// What to do about a suite's AI scenarios.
enum AiPlan {
    Locked(Vec<Scenario>),
    Regenerate(Box<ProviderBackend>),
}

/// Decides, per suite, which AI scenarios run. Err is the exit code
/// (the message is printed).
fn plan_ai(suite: &Suite, args: &RunArgs) -> Result<AiPlan, i32> {
    if suite.spec.ai.is_none() {
        return Ok(AiPlan::Locked(Vec::new()));
    }
    if args.regenerate {
        return match provider_backend(suite) {
            Ok(b) => Ok(AiPlan::Regenerate(Box::new(b))),
            Err((code, msg)) => {
                eprintln!("error: {}: {msg}", suite.source.path.display());
                Err(code)
            }
        };
    }
    super::scenarios::locked_scenarios(suite, args.locked).map(AiPlan::Locked)
}

pub fn run(args: RunArgs) -> i32 {
    install_crypto();
    let gate = if args.interactive || args.pause_on_failure {
        match super::gameday::TerminalGate::from_stdin() {
            Ok(g) => crate::engine::gate::Gate(Some(std::sync::Arc::new(g))),
            Err(e) => {
                eprintln!("error: {e}");
                return exit::INVALID;
            }
        }
    } else {
        crate::engine::gate::Gate::default()
    };
    let suites = match load_suites_or_exit(&args.suites) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let mut planned = Vec::new();
    for suite in suites {
        match plan_ai(&suite, &args) {
            Ok(plan) => planned.push((suite, plan)),
            Err(code) => return code,
        }
    }
    if !args.regenerate {
        let sets: Vec<(&Suite, &[Scenario])> = planned
            .iter()
            .map(|(s, plan)| {
                let locked = match plan {
                    AiPlan::Locked(l) => l.as_slice(),
                    AiPlan::Regenerate(_) => &[],
                };
                (s, locked)
            })
            .collect();
        if let Err(code) = super::scenarios::check_known(&sets, &args.scenarios) {
            return code;
        }
    }
    runtime().block_on(run_async(args, planned, gate))
}

async fn run_async(
    args: RunArgs,
    planned: Vec<(Suite, AiPlan)>,
    gate: crate::engine::gate::Gate,
) -> i32 {
    let conn = match super::connect::connect(&super::connect::ClusterArgs {
        sandbox: args.sandbox,
        kubeconfig: args.kubeconfig.clone(),
        context: args.context.clone(),
        sandbox_metrics_port: args.metrics.sandbox_metrics_port,
    })
    .await
    {
        Ok(c) => c,
        Err((code, msg)) => {
            eprintln!("error: {msg}");
            return code;
        }
    };
    let client = conn.client.clone();
    // Before anything else: undo what earlier in-cluster runs left.
    if args.journal_in_cluster {
        if let Err(code) = recover_earlier_runs(&client, &args).await {
            conn.close().await;
            return code;
        }
    }
    // `--regenerate`: fresh scenarios first, written to the lock.
    let mut suites: Vec<(Suite, Vec<Scenario>)> = Vec::new();
    for (suite, plan) in planned {
        let locked = match plan {
            AiPlan::Locked(l) => l,
            AiPlan::Regenerate(backend) => {
                let mode = super::verify::VerifyMode::On;
                let res = generate_lock(&client, &suite, &backend, mode, &mut |l| {
                    eprintln!("{}: {l}", suite.metadata.name)
                })
                .await;
                let lock = match res {
                    Ok((lock, generation)) => {
                        print_generation(&generation);
                        lock
                    }
                    Err((code, msg)) => {
                        eprintln!("error: {}: {msg}", suite.source.path.display());
                        return code;
                    }
                };
                let path = lockfile::lock_path(&suite.source.path);
                if lock.scenarios.is_empty() {
                    eprintln!(
                        "warning: {}: no valid AI scenario; the lock was not rewritten",
                        suite.source.path.display()
                    );
                } else if let Err(e) = lockfile::write(&path, &lock) {
                    eprintln!("error: {e}");
                    return exit::INVALID;
                } else {
                    eprintln!(
                        "wrote {} ({} scenario(s))",
                        super::relative(&path),
                        lock.scenarios.len()
                    );
                }
                lock.scenarios
            }
        };
        suites.push((suite, locked));
    }

    if let Some(partition) = args.partition {
        suites = super::scenarios::apply_partition(partition, &args.scenarios, suites);
    }

    let (reporter, panel) = reporter(&args);
    let run_id = new_run_id();
    let run_dir = RunDir::new(&args.state_dir, &run_id);
    let (cancel_tx, cancel_rx) = watch::channel(false);
    let (hurry_tx, hurry_rx) = watch::channel(false);
    let mut engine = Engine {
        client,
        options: RunOptions {
            scenarios: args.scenarios.clone(),
            fail_fast: args.fail_fast,
            no_restore: args.no_restore,
            vars: args.vars.clone(),
            state_dir: Some(args.state_dir.clone()),
            policy: args.policy.clone(),
            restore_timeout: Some(args.restore_timeout),
            stop_waiting: Some(hurry_rx.clone()),
            retries: args.retries,
            jobs: args.jobs,
            prometheus_url: args.metrics.prometheus_url.clone(),
            gate,
            interactive: args.interactive,
            pause_on_failure: args.pause_on_failure,
            journal_sink: Default::default(),
        },
        emitter: Emitter::new(vec![reporter]),
        run_id: run_id.clone(),
        cancel: cancel_rx,
    };
    // The guard first, on hand-written and locked scenarios alike: any
    // violation and nothing runs (no fixture, no journal).
    let combined: Vec<Suite> = super::scenarios::combined(&suites);
    let checks = match engine.preflight(&combined).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::INVALID;
        }
    };
    for note in checks.iter().flat_map(|c| &c.notes) {
        eprintln!("note: {note}");
    }
    let violations: Vec<_> = checks.iter().flat_map(|c| &c.violations).collect();
    if !violations.is_empty() {
        for v in &violations {
            eprintln!("error: refused by policy: {v}");
        }
        eprintln!(
            "error: {} policy violation(s); nothing was run (see `heatcheck plan`)",
            violations.len()
        );
        return exit::INVALID;
    }
    // Then the credentials: a run that could not undo itself never starts.
    if args.skip_permission_check {
        eprintln!(
            "warning: --skip-permission-check: permissions were not checked; if a step or its restore is forbidden, the run stops half-way and may leave changes behind"
        );
    } else if let Err(code) = permission_preflight(&engine, &combined, &checks, &args).await {
        return code;
    }
    // Prometheus next: an unreachable one fails the run before anything changes.
    if let Err((code, msg)) = engine.reach_prometheus(&suites).await {
        eprintln!("error: {msg}");
        conn.close().await;
        return code;
    }
    // run.json before the first mutation: from here on a crash leaves something `heatcheck runs` finds.
    let state = RunState::starting(
        &run_id,
        args.suites
            .iter()
            .map(|p| p.display().to_string())
            .collect(),
        ClusterRef::from_args(
            args.kubeconfig.as_deref(),
            args.context.as_deref(),
            engine.client.server(),
            args.sandbox,
        ),
    );
    if let Err(e) = run_dir.write_state(&state) {
        eprintln!("error: cannot write run state: {e}");
        return exit::INVALID;
    }
    // The journal's Secret exists before the first mutation; a run that
    // cannot keep it there could not be undone by the next pod: it does not start.
    let journal_secret = if args.journal_in_cluster {
        let ns = engine.client.default_namespace().to_string();
        let run_state = serde_json::to_vec(&state).expect("run state serializes");
        match crate::cluster::journal_secret::JournalSecret::create(
            &engine.client,
            &ns,
            &run_id,
            &super::incluster::holder(),
            &run_state,
        )
        .await
        {
            Ok(secret) => {
                let secret = std::sync::Arc::new(secret);
                eprintln!(
                    "journal kept in Secret {ns}/{} (recovered by the next run if this one dies)",
                    secret.name()
                );
                engine.options.journal_sink = crate::engine::run::JournalSinkHandle(Some(
                    std::sync::Arc::new(super::incluster::SecretSink(secret.clone())),
                ));
                Some((super::incluster::keep_renewed(secret.clone()), secret))
            }
            Err(e) => {
                eprintln!(
                    "error: cannot keep the journal in the cluster: {e}; nothing was changed (a run that could not undo itself does not start)"
                );
                let _ = run_dir.set_status(RunStatus::Finished, Some("did not start".into()));
                conn.close().await;
                return if e.is_unreachable() {
                    exit::UNREACHABLE
                } else {
                    exit::INVALID
                };
            }
        }
    } else {
        None
    };
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
    let environment = super::report::environment(
        engine.client.server(),
        args.context.as_deref(),
        args.sandbox,
        &suites,
    );
    let mut report = engine.run_checked(suites, policies).await;
    report.environment = Some(environment);
    signals.abort();
    let left = &report.restore.left_behind;
    let (status, message) = if args.no_restore {
        let kept = (!left.is_empty()).then(|| format!("kept by --no-restore: {}", left.join(", ")));
        (RunStatus::Finished, kept)
    } else if report.restore.is_clean() {
        (RunStatus::Finished, None)
    } else {
        let what = if left.is_empty() {
            report.restore.errors.join("; ")
        } else {
            left.join(", ")
        };
        let status = if *hurry_rx.borrow() {
            RunStatus::Aborted
        } else {
            RunStatus::RestoreFailed
        };
        (status, Some(format!("left: {what}")))
    };
    if let Some((renewing, secret)) = journal_secret {
        renewing.abort();
        // Restored (or kept on purpose): the journal is done with. Otherwise
        // the Secret stays, released, for the next run to recover at once.
        let done = if status == RunStatus::Finished {
            secret.finish().await
        } else {
            secret.release(status.as_str(), message.clone()).await
        };
        if let Err(e) = done {
            eprintln!(
                "warning: journal Secret {}/{}: {e}",
                secret.namespace(),
                secret.name()
            );
        }
    }
    if let Err(e) = run_dir.set_status(status, message) {
        eprintln!("warning: cannot update run state: {e}");
    }
    if status != RunStatus::Finished {
        eprintln!(
            "heatcheck: the cluster is not fully restored; the journal keeps what is left: run `heatcheck recover {run_id}`"
        );
    }
    let mut code = report.exit_code;
    let flaky: Vec<&str> = report
        .suites
        .iter()
        .flat_map(|s| &s.cases)
        .filter(|c| c.is_flaky())
        .map(|c| c.name.as_str())
        .collect();
    if args.flaky_fails && !flaky.is_empty() {
        eprintln!(
            "error: --flaky-fails: {} flaky scenario(s): {}",
            flaky.len(),
            flaky.join(", ")
        );
        code = code.max(exit::TEST_FAILED);
    }
    if let Some(path) = &args.junit {
        if let Err(e) = write_file(path, &to_junit_xml(&report)) {
            eprintln!("error: writing JUnit report {}: {e}", path.display());
            code = code.max(exit::TEST_FAILED);
        }
    }
    if let Some(path) = &args.report_json {
        if let Err(e) = write_file(path, &to_json(&report)) {
            eprintln!("error: writing JSON report {}: {e}", path.display());
            code = code.max(exit::TEST_FAILED);
        }
    }
    if let Some(path) = &args.metrics.metrics_file {
        if let Err(e) = crate::report::metrics::write_metrics_file(path, &report) {
            eprintln!("error: writing metrics file {}: {e}", path.display());
            code = code.max(exit::TEST_FAILED);
        }
    }
    if let Some(url) = &args.metrics.pushgateway {
        // The run's verdict stands whatever happens to its metrics.
        let client = crate::probe::http::client();
        if let Err(e) = crate::report::metrics::push(&client, url, &report).await {
            eprintln!("warning: metrics not pushed: {e}");
        }
    }
    if let Some(path) = &args.report_html {
        if let Err(e) = write_file(path, &crate::report::html::run_html(&report)) {
            eprintln!("error: writing HTML report {}: {e}", path.display());
            code = code.max(exit::TEST_FAILED);
        }
    }
    conn.close().await;
    code
}

/// What prints the run: JSON lines, or lines for people; on a terminal
/// (unless `--no-live`) those scroll above the live panel, which replaces
/// the spinners. The handle lets other output past the panel.
fn reporter(args: &RunArgs) -> (Box<dyn Reporter>, PanelHandle) {
    if args.json_output {
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

/// `--journal-in-cluster`: recovers the journals earlier runs left in the
/// runner's namespace. Err(exit code) when one could not be restored (or
/// the journals cannot be read): this run must not start on such a cluster.
async fn recover_earlier_runs(
    client: &crate::cluster::ClusterClient,
    args: &RunArgs,
) -> Result<(), i32> {
    let ns = client.default_namespace().to_string();
    let say = |m: &str| eprintln!("{m}");
    match super::incluster::recover_journals(
        client,
        &ns,
        &args.state_dir,
        args.restore_timeout,
        false,
        &say,
    )
    .await
    {
        Ok(r) if r.failed.is_empty() => Ok(()),
        Ok(r) => {
            eprintln!(
                "error: {} earlier run(s) could not be recovered ({}); this run does not start on a cluster that is not as it should be. Fix the cause, then run again or `heatcheck recover --journal-in-cluster`",
                r.failed.len(),
                r.failed.join(", ")
            );
            Err(exit::RESTORE_FAILED)
        }
        Err(e) => {
            eprintln!(
                "error: cannot look for journals of earlier runs in namespace {ns}: {e}; nothing was changed"
            );
            Err(if e.is_unreachable() {
                exit::UNREACHABLE
            } else {
                exit::INVALID
            })
        }
    }
}

pub(crate) fn write_file(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, text)
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
    // On stderr, with the live panel (if any) out of the way.
    let say = |text: String| panel.suspend(|| eprintln!("{text}"));
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
/// Err(exit code) when one is denied: every missing one is printed with
/// why it is needed, and nothing has changed.
async fn permission_preflight(
    engine: &Engine,
    suites: &[Suite],
    checks: &[crate::guard::Preflight],
    args: &RunArgs,
) -> Result<(), i32> {
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
    if args.journal_in_cluster {
        let ns = engine.client.default_namespace().to_string();
        for n in crate::guard::permissions::journal_needs(&ns) {
            if !needs.iter().any(|m| {
                (&m.verb, &m.group, &m.resource, &m.namespace)
                    == (&n.verb, &n.group, &n.resource, &n.namespace)
            }) {
                needs.push(n);
            }
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
        eprintln!(
            "error: these credentials cannot run the suite (or undo it); nothing was changed. Missing {} permission(s):",
            denied.len()
        );
        for n in &denied {
            eprintln!("  {}: {}", n.describe(), n.why);
        }
        eprintln!(
            "hint: bind the Role that `heatcheck plan {}` prints to this identity",
            args.suites
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(" ")
        );
        return Err(exit::INVALID);
    }
    let unknown = answers.iter().filter(|a| **a == Access::Unknown).count();
    if unknown > 0 {
        eprintln!(
            "warning: {unknown} of {} permission(s) could not be checked (the API server did not answer SelfSubjectAccessReview); running anyway",
            needs.len()
        );
    }
    Ok(())
}
