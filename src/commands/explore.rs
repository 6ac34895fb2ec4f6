//! `heatcheck explore SUITE`: read the namespace (never change it), derive
//! what healthy means, and run the catalog's candidates each on a fresh
//! in-process twin seeded with what was read plus the suite's fixtures.

use futures::future::{BoxFuture, LocalBoxFuture};
use serde_json::{json, Value};

use super::verify::SandboxVerifier;
use super::{install_crypto, runtime};
use crate::ai::generate::ProviderBackend;
use crate::cli::{ExploreArgs, Strategy};
use crate::cluster::ClusterClient;
use crate::error::Error;
use crate::exit::RunOutcome;
use crate::report::notify::{Notification, ReportLocation};
use crate::suite::{load_suite, Scenario, Suite};
use heatcheck_explore::catalog::{self, CatalogOptions};
use heatcheck_explore::finding::FindingsReport;
use heatcheck_explore::search::{
    Ask, Attempt, ExploreError, ExploreOptions, Progress, Proposal, Proposer, TwinRun, Twins,
};
use heatcheck_explore::snapshot::{self, Snapshot};
use heatcheck_explore::steady;

pub fn explore(args: ExploreArgs) -> Result<(), Error> {
    install_crypto();
    let mut suite = match (&args.suite, &args.namespace) {
        (Some(path), _) => load_suite(path).map_err(Error::invalid)?,
        (None, Some(ns)) => namespace_suite(&args, ns)?,
        (None, None) => unreachable!("clap requires a suite or --namespace"),
    };
    for (k, v) in &args.vars {
        suite.spec.vars.insert(k.clone(), Value::String(v.clone()));
    }
    if !(0.0..=1.0).contains(&args.min_success_rate) {
        return Err(Error::invalid(
            "--min-success-rate: give a rate between 0 and 1",
        ));
    }
    if args.lock {
        // Before the search: minutes of twins and then no lock is worse.
        check_lockable(&args, &suite)?;
    }
    let (report, explored) = runtime().block_on(search(&args, &suite))?;
    print_report(&args, &report);
    if args.lock {
        lock_findings(&suite, &explored, &report)?;
    }
    if let Some(path) = &args.write_suite {
        write_suite(path, &explored, &report)?;
        if !report.findings.is_empty() && !args.output.is_json() {
            println!(
                "replay: heatcheck run {} --sandbox (each finding is a scenario; it fails until fixed)",
                super::relative(path)
            );
        }
    }
    if let Some(path) = &args.findings {
        let text = serde_json::to_string_pretty(&report).expect("findings serialize");
        super::write_file(path, &text)
            .map_err(|e| Error::invalid(format!("writing {}: {e}", path.display())))?;
        stderr_line!("findings written to {}", path.display());
    }
    if let Some(path) = &args.metrics_file {
        let text = crate::report::explore::explore_metrics_text(&report);
        crate::report::metrics::write_textfile(path, &text)
            .map_err(|e| Error::invalid(format!("writing {}: {e}", path.display())))?;
        stderr_line!("metrics written to {}", path.display());
    }
    if let Some(path) = &args.report_html {
        super::write_file(path, &crate::report::explore::explore_html(&report))
            .map_err(|e| Error::invalid(format!("writing {}: {e}", path.display())))?;
        stderr_line!("HTML report written to {}", path.display());
    }
    let outcome = if report.findings.is_empty() {
        RunOutcome::Passed
    } else {
        RunOutcome::Failed
    };
    if args.notify.urls.iter().any(|u| !u.trim().is_empty()) {
        let reports = [
            ("findings", &args.findings),
            ("html", &args.report_html),
            ("metrics", &args.metrics_file),
            ("suite", &args.write_suite),
        ]
        .into_iter()
        .filter_map(|(kind, p)| {
            p.as_ref()
                .map(|p| ReportLocation::new(kind, p.display().to_string()))
        })
        .collect();
        let summary = Notification::from_explore(&report, outcome, reports);
        runtime().block_on(super::notify::send(&args.notify, &summary));
    }
    Error::verdict(outcome)
}

/// `--lock` needs a suite whose lockfile can be read (when it exists) and
/// written.
fn check_lockable(args: &ExploreArgs, suite: &Suite) -> Result<(), Error> {
    if args.suite.is_none() {
        return Err(Error::invalid(
            "--lock writes the suite's lockfile, and --namespace has no suite: keep one with --write-suite FILE, then `heatcheck explore FILE --lock`",
        ));
    }
    let path = crate::ai::lockfile::lock_path(&suite.source.path);
    crate::ai::lockfile::read(&path).map_err(Error::invalid)?;
    // The lock is written through this file, renamed over it.
    let probe = path.with_extension("yaml.tmp");
    std::fs::write(&probe, b"")
        .and_then(|_| std::fs::remove_file(&probe))
        .map_err(|e| {
            Error::invalid(format!(
                "--lock: cannot write the lockfile {}: {e}",
                super::relative(&path)
            ))
        })
}

/// Each finding as an explored entry of the suite's lockfile: its
/// minimized scenario named after its id, with the derived probes it was
/// judged with as its own (a lock carries no suite-level probes).
fn lock_findings(suite: &Suite, explored: &Suite, report: &FindingsReport) -> Result<(), Error> {
    use crate::ai::lockfile::{self, ExploredScenario, LockOrigin};
    let path = lockfile::lock_path(&suite.source.path);
    if report.findings.is_empty() {
        stderr_line!(
            "--lock: no finding, {} left as it was",
            super::relative(&path)
        );
        return Ok(());
    }
    let now = chrono::Utc::now();
    let mut entries = Vec::new();
    for f in &report.findings {
        let mut sc = crate::suite::parse_scenario_json(&f.scenario).map_err(Error::invalid)?;
        sc.name = lockfile::explored_name(&f.id);
        sc.description = Some(format!("{} ({})", f.title, f.class.as_str()));
        // The suite's own probes run anyway; the derived ones only here.
        sc.probes = explored
            .spec
            .probes
            .iter()
            .filter(|p| f.probes.contains(&p.name))
            .filter(|p| !suite.spec.probes.iter().any(|q| q.name == p.name))
            .cloned()
            .collect();
        entries.push(ExploredScenario {
            id: f.id.clone(),
            origin: LockOrigin::Explore,
            class: f.class.as_str().to_string(),
            severity: f.severity.as_str().to_string(),
            flaky: f.flaky,
            locked_at: now,
            evidence: f.evidence.clone(),
            scenario: sc,
        });
    }
    let by = format!("heatcheck {} explore --lock", env!("CARGO_PKG_VERSION"));
    let done = lockfile::lock_explored(&path, entries, &by, now).map_err(Error::invalid)?;
    stderr_line!(
        "locked {} finding(s) in {} ({} new, {} replaced{}); `heatcheck run {} --locked` replays them, each fails until fixed",
        done.added.len() + done.replaced.len(),
        super::relative(&path),
        done.added.len(),
        done.replaced.len(),
        if done.kept.is_empty() {
            String::new()
        } else {
            format!(", {} earlier entr(ies) kept: {}", done.kept.len(), done.kept.join(", "))
        },
        super::relative(&suite.source.path),
    );
    Ok(())
}

/// The strategy to use: as asked, or both when the suite has a model whose
/// provider is configured (else the catalog, with a note why).
fn strategy(
    args: &ExploreArgs,
    suite: &Suite,
) -> Result<(Strategy, Option<ProviderBackend>), Error> {
    let named = |s: Strategy| if s == Strategy::Ai { "ai" } else { "both" };
    let wants = args
        .strategy
        .map(|s| (s != Strategy::Catalog).then(|| named(s)));
    let backend = model_for(wants, suite)?;
    Ok(match (args.strategy, &backend) {
        (Some(s), _) => (s, backend),
        (None, Some(_)) => (Strategy::Both, backend),
        (None, None) => (Strategy::Catalog, None),
    })
}

/// The model `--strategy` asks for: `Some(Some(flag))` (ai or both) needs
/// the suite's `ai` block, `Some(None)` (catalog) none; without the flag,
/// the model when the suite has an `ai` block and its key is set (else a
/// note why not). explore and remediate decide it the same way.
pub(crate) fn model_for(
    wants: Option<Option<&str>>,
    suite: &Suite,
) -> Result<Option<ProviderBackend>, Error> {
    match wants {
        Some(None) => Ok(None),
        Some(Some(flag)) => {
            if suite.spec.ai.is_none() {
                return Err(Error::invalid(format!(
                    "{}: --strategy {flag}: the suite has no `ai` block (use --strategy catalog, or add one)",
                    suite.source.path.display(),
                )));
            }
            Ok(Some(super::generate::provider_backend(suite)?))
        }
        None => match &suite.spec.ai {
            None => Ok(None),
            Some(_) => match super::generate::provider_backend(suite) {
                Ok(b) => Ok(Some(b)),
                Err(e) => {
                    stderr_line!("strategy catalog (the model is not used: {e})");
                    Ok(None)
                }
            },
        },
    }
}

/// The suite of `--namespace NS`: the namespace as it is (no fixtures),
/// the default policy; its steady state is derived.
fn namespace_suite(args: &ExploreArgs, ns: &str) -> Result<Suite, Error> {
    if args.cluster.sandbox {
        return Err(Error::invalid(
            "--namespace reads a namespace of a cluster: give --kubeconfig (a fresh sandbox has nothing to read), or a suite whose fixtures build the namespace",
        ));
    }
    let text = format!(
        "apiVersion: heatcheck.dev/v1alpha1\nkind: Suite\nmetadata: {{name: {}}}\nspec:\n  target: {{namespace: {}}}\n  scenarios: []\n",
        serde_json::to_string(&format!("explore-{ns}")).expect("a string"),
        serde_json::to_string(ns).expect("a string"),
    );
    // Named as it was asked for, in messages and in a written suite.
    let path = std::path::PathBuf::from(format!("--namespace {ns}"));
    crate::suite::parse_suite(&text, &path)
        .map_err(|e| Error::invalid(format!("--namespace {ns}: {e}")))
}

async fn search(args: &ExploreArgs, suite: &Suite) -> Result<(FindingsReport, Suite), Error> {
    let (strategy, backend) = strategy(args, suite)?;
    // The real cluster is only read; with --sandbox there is nothing to read
    // (a bare sandbox answers discovery for the model's context).
    let conn = if args.cluster.sandbox && backend.is_none() {
        None
    } else {
        Some(super::connect::connect(&args.cluster, None).await?)
    };
    let read = match &conn {
        Some(c) if !args.cluster.sandbox => read_namespace(&c.client, suite).await,
        _ => Ok(Vec::new()),
    };
    let gathered = match (&conn, &backend) {
        (Some(c), Some(_)) => Some(
            crate::ai::context::gather(&c.client, suite)
                .await
                .map_err(|e| Error::reaching(e.is_unreachable(), e)),
        ),
        _ => None,
    };
    if let Some(c) = conn {
        c.close().await;
    }
    let read = read?;
    let gathered = gathered.transpose()?;
    let Explored {
        snap,
        targets,
        suite: mut explored,
        baseline,
        candidates,
    } = prepare(suite, &read, args.min_success_rate)?;
    if args.suite.is_none() {
        // Derived, so a written suite checks it too (`heatcheck run`).
        explored.spec.steady_state = steady::assertions(&snap, &targets);
    }
    let candidates = if strategy == Strategy::Ai {
        Vec::new()
    } else {
        candidates
    };
    print_steady_state(args, &targets);
    let twins = SandboxTwins {
        verifier: std::sync::Arc::new(SandboxVerifier::from_objects(suite, &read)),
    };
    let proposer = match (backend, gathered) {
        (Some(backend), Some(gathered)) => Some(ModelProposer {
            known: crate::ai::generate::Known::from_context(&gathered, suite),
            // Built once: the context and its trimming to the token budget
            // are the same every round; only the explore section changes.
            base: crate::ai::prompt::build(&explored, &gathered).map_err(Error::invalid)?,
            backend,
            suite: explored.clone(),
            snap,
            targets: targets.clone(),
        }),
        _ => None,
    };
    let opts = ExploreOptions {
        jobs: args.jobs.into(),
        max_candidates: args.max_candidates,
        budget: args.budget,
        rounds: args.rounds.into(),
        ..Default::default()
    };
    let json = args.output.is_json();
    let progress = |p: Progress| {
        if json {
            stderr_line!("{}", progress_event(&p));
            return;
        }
        match p {
            Progress::Started { candidates } => stderr_line!(
                "exploring: {candidates} catalog candidate(s), each on a fresh twin, {} at once",
                opts.jobs
            ),
            Progress::Asking { round } => {
                stderr_line!("  asking the model for round {round} of candidates")
            }
            Progress::Tried {
                id,
                verdict,
                detail,
            } => match detail {
                Some(d) if verdict != "held" => stderr_line!("  {verdict:<8} {id}: {d}"),
                _ => stderr_line!("  {verdict:<8} {id}"),
            },
            Progress::Minimizing { id } => stderr_line!("  minimizing {id}"),
            Progress::Confirming { id } => stderr_line!("  re-running {id} on fresh twins"),
        }
    };
    let report = heatcheck_explore::explore(
        &twins,
        &explored,
        baseline,
        candidates,
        proposer.as_ref().map(|p| p as &dyn Proposer),
        &opts,
        &progress,
    )
    .await
    .map_err(|e| match e {
        ExploreError::Unhealthy(_) => Error::invalid(e),
        ExploreError::Twin(_) => Error::unreachable(e),
    })?;
    if let Some(e) = &report.model_error {
        // With the model alone, nothing was explored.
        if strategy == Strategy::Ai && report.candidates == 0 {
            return Err(Error::unreachable(e));
        }
        stderr_line!("warning: the model's rounds stopped: {e}");
    }
    Ok((report, explored))
}

fn print_steady_state(args: &ExploreArgs, targets: &[steady::RouteTarget]) {
    if args.output.is_json() {
        stderr_line!(
            "{}",
            json!({"event": "steadyState", "targets": targets.iter().map(|t| json!({
                "request": t.describe(), "route": t.route, "backends": t.backends,
            })).collect::<Vec<_>>()})
        );
        return;
    }
    stderr_line!("steady state (derived from the routes; a candidate must keep it):");
    for t in targets {
        stderr_line!(
            "  {} -> {} ({})",
            t.describe(),
            t.route,
            if t.backends.is_empty() {
                "any backend".to_string()
            } else {
                t.backends.join(", ")
            }
        );
    }
}

/// One progress line of `--output json` (on stderr; stdout keeps the report).
fn progress_event(p: &Progress) -> Value {
    match p {
        Progress::Started { candidates } => json!({"event": "started", "candidates": candidates}),
        Progress::Asking { round } => json!({"event": "asking", "round": round}),
        Progress::Tried {
            id,
            verdict,
            detail,
        } => json!({"event": "tried", "id": id, "verdict": verdict, "detail": detail}),
        Progress::Minimizing { id } => json!({"event": "minimizing", "id": id}),
        Progress::Confirming { id } => json!({"event": "confirming", "id": id}),
    }
}

/// The suite's model, asked through heatcheck-ai (context, redaction,
/// schema checks, policy checks and repairs as `generate`); what it
/// proposes only ever runs on twins.
struct ModelProposer {
    backend: ProviderBackend,
    /// The suite's own prompt over the gathered context.
    base: crate::ai::prompt::Prompt,
    known: crate::ai::generate::Known,
    /// The explored suite (no scenarios of its own: nothing to dedupe against).
    suite: Suite,
    snap: Snapshot,
    targets: Vec<steady::RouteTarget>,
}

impl Proposer for ModelProposer {
    fn propose<'a>(&'a self, ask: Ask<'a>) -> LocalBoxFuture<'a, Result<Proposal, String>> {
        Box::pin(async move {
            use crate::ai::generate::{generate, GenerateOptions};
            let classes: Vec<(&str, &str)> = catalog::ENTRIES
                .iter()
                .map(|(_, c, what)| (c.as_str(), *what))
                .collect();
            let found: Vec<&str> = ask.found.iter().map(|c| c.as_str()).collect();
            let history: Vec<String> = ask.history.iter().map(|a| a.describe()).collect();
            let prompt = crate::ai::explore::explore_prompt(
                self.base.clone(),
                &self.suite,
                &crate::ai::explore::ExploreAsk {
                    round: ask.round,
                    classes: &classes,
                    found: &found,
                    history: &history,
                },
            );
            let mut log = |l: String| stderr_line!("  model: {l}");
            let gen = generate(
                &self.backend,
                &self.suite,
                &prompt,
                &self.known,
                GenerateOptions {
                    permissions: None,
                    // explore runs them itself, each on its own twin.
                    verifier: None,
                    strict: false,
                    log: &mut log,
                },
            )
            .await
            .map_err(|e| e.to_string())?;
            Ok(Proposal {
                candidates: gen
                    .scenarios
                    .into_iter()
                    .map(|sc| catalog::from_model(sc, &self.snap, &self.targets))
                    .collect(),
                refused: gen
                    .rejected
                    .into_iter()
                    .map(|r| Attempt {
                        name: r.name,
                        class: heatcheck_explore::WeaknessClass::Other,
                        origin: heatcheck_explore::Origin::Ai,
                        verdict: "refused",
                        details: r.reasons,
                    })
                    .collect(),
                tokens: heatcheck_explore::finding::Tokens {
                    input: gen.usage.input_tokens,
                    output: gen.usage.output_tokens,
                },
            })
        })
    }
}

/// What explore makes of a suite and what was read: the namespace (the
/// cluster's objects plus what the fixtures will create), the derived
/// steady state, the suite with its probes (scenarios cleared), the
/// baseline and the catalog's candidates. `remediate` judges fixes with
/// the same.
pub(crate) struct Explored {
    pub snap: Snapshot,
    pub targets: Vec<steady::RouteTarget>,
    pub suite: Suite,
    pub baseline: Scenario,
    pub candidates: Vec<heatcheck_explore::Candidate>,
}

pub(crate) fn prepare(
    suite: &Suite,
    read: &[Value],
    min_success_rate: f64,
) -> Result<Explored, Error> {
    let mut objects = read.to_vec();
    // What the fixtures will create counts too (they run on every twin).
    for o in crate::ai::context::declared_objects(suite) {
        let key = |v: &Value| {
            (
                v["kind"].clone(),
                snapshot::namespace_of(v, &suite.spec.target.namespace).to_string(),
                snapshot::name(v).to_string(),
            )
        };
        if !objects.iter().any(|r| key(r) == key(&o)) {
            objects.push(o);
        }
    }
    let snap = Snapshot {
        namespace: suite.spec.target.namespace.clone(),
        objects,
    };
    let targets = steady::route_targets(&snap);
    if targets.is_empty() {
        return Err(Error::invalid(format!(
            "{}: no HTTPRoute in namespace {} serves a plain request through a Gateway: explore has nothing to keep healthy",
            suite.source.path.display(),
            snap.namespace
        )));
    }
    let mut explored = suite.clone();
    explored.spec.scenarios.clear();
    // A suite explore wrote (--write-suite) carries the derived probes already.
    for p in steady::probes(&snap, &targets, min_success_rate) {
        if !explored.spec.probes.iter().any(|q| q.name == p.name) {
            explored.spec.probes.push(p);
        }
    }
    let baseline = baseline(&snap, &targets)?;
    let candidates = catalog::candidates(&snap, &targets, &CatalogOptions::default());
    Ok(Explored {
        snap,
        targets,
        suite: explored,
        baseline,
        candidates,
    })
}

/// The explored suite (derived probes included) with one scenario per
/// finding, as a suite file. Manifest paths stay valid from where it is
/// written: absolute when it is not beside the suite.
fn write_suite(
    path: &std::path::Path,
    explored: &Suite,
    report: &FindingsReport,
) -> Result<(), Error> {
    let mut suite = explored.clone();
    // One sandbox runs them one after another: a recreated route keeps its
    // new precedence after the restore, so those replay last.
    let mut findings: Vec<_> = report.findings.iter().collect();
    findings.sort_by_key(|f| f.class == heatcheck_explore::WeaknessClass::RoutePrecedence);
    for f in findings {
        let mut sc = crate::suite::parse_scenario_json(&f.scenario).map_err(Error::invalid)?;
        sc.description = Some(format!(
            "{} ({}): {}",
            f.title,
            f.class.as_str(),
            f.evidence.first().cloned().unwrap_or_default()
        ));
        suite.spec.scenarios.push(sc);
    }
    let here = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let same_dir =
        std::fs::canonicalize(here).ok() == std::fs::canonicalize(&explored.source.dir).ok();
    let mut doc = serde_json::to_value(&suite).map_err(Error::invalid)?;
    if !same_dir {
        absolute_files(&mut doc, &explored.source.dir);
    }
    let text = format!(
        "# Written by `heatcheck explore {}`: the suite, the probes explore derived,
# and one scenario per finding (each fails until its weakness is fixed).
{}",
        super::relative(&explored.source.path),
        serde_saphyr::to_string(&doc).map_err(Error::invalid)?
    );
    super::write_file(path, &text)
        .map_err(|e| Error::invalid(format!("writing {}: {e}", path.display())))?;
    stderr_line!("suite written to {}", path.display());
    Ok(())
}

/// Every `file:` of a step, made absolute against the suite's directory.
fn absolute_files(v: &mut Value, dir: &std::path::Path) {
    match v {
        Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                if k == "file" {
                    if let Some(f) = x.as_str() {
                        let p = crate::suite::resolve_manifest_path(dir, f);
                        let p = std::fs::canonicalize(&p).unwrap_or(p);
                        *x = Value::String(p.display().to_string());
                    }
                } else {
                    absolute_files(x, dir);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| absolute_files(x, dir)),
        _ => {}
    }
}

/// The steady state alone, with no change: it must hold before any candidate.
fn baseline(snap: &Snapshot, targets: &[steady::RouteTarget]) -> Result<Scenario, Error> {
    let checks: Vec<Value> = targets
        .iter()
        .map(|t| t.assertion(&snap.namespace))
        .collect();
    crate::suite::parse_scenario_json(&json!({
        "name": "explore: baseline (no change)",
        "steps": [{"sleep": "1s"}],
        "assertions": checks,
    }))
    .map_err(Error::invalid)
}

/// Lists the kinds explore reads in the suite's namespaces: list and get
/// only, no Secrets, server noise dropped as for the AI context.
pub(crate) async fn read_namespace(
    client: &ClusterClient,
    suite: &Suite,
) -> Result<Vec<Value>, Error> {
    let t = &suite.spec.target;
    let mut namespaces = t.allow_namespaces.clone();
    namespaces.push(t.namespace.clone());
    namespaces.sort();
    namespaces.dedup();
    let mut out = Vec::new();
    for (api_version, kind) in snapshot::KINDS {
        let r = match client.resolve(Some(api_version), kind).await {
            Ok(r) => r,
            Err(crate::cluster::ClusterError::NotServed { .. }) => continue,
            Err(e) => return Err(e.into()),
        };
        for ns in &namespaces {
            for o in client.list(&r, Some(ns), None).await? {
                out.push(crate::ai::context::clean(o));
            }
        }
    }
    Ok(out)
}

pub(crate) struct SandboxTwins {
    pub verifier: std::sync::Arc<SandboxVerifier>,
}

impl Twins for SandboxTwins {
    fn run<'a>(&'a self, suite: &'a Suite, scenario: &'a Scenario) -> BoxFuture<'a, TwinRun> {
        Box::pin(async move {
            match self.verifier.clone().run_on_twin(suite, scenario).await {
                Err(e) => TwinRun::Broken(e),
                Ok(twin) => {
                    let report = twin.suite;
                    if let Some(e) = report.error.clone() {
                        return if twin.refused {
                            TwinRun::Refused(e)
                        } else {
                            TwinRun::Broken(e)
                        };
                    }
                    match report.cases.into_iter().find(|c| c.name == scenario.name) {
                        Some(case) => TwinRun::Case(Box::new(case)),
                        None => TwinRun::Broken("the twin reported no result".into()),
                    }
                }
            }
        })
    }
}

fn print_report(args: &ExploreArgs, report: &FindingsReport) {
    if args.output.is_json() {
        println!(
            "{}",
            serde_json::to_string_pretty(report).expect("findings serialize")
        );
        return;
    }
    println!(
        "\n{} finding(s) in {} candidate(s) ({} refused by policy, {} not tried) in {:.0}s",
        report.findings.len(),
        report.candidates,
        report.refused,
        report.skipped,
        report.duration_seconds
    );
    for (i, f) in report.findings.iter().enumerate() {
        println!(
            "\n{}. {} [{}{}]",
            i + 1,
            f.title,
            f.class.as_str(),
            match (f.origin, f.flaky) {
                (heatcheck_explore::Origin::Ai, true) => ", from the model, flaky",
                (heatcheck_explore::Origin::Ai, false) => ", from the model",
                (_, true) => ", flaky",
                _ => "",
            }
        );
        println!("   severity: {}", f.severity.as_str());
        println!("   objects:  {}", f.objects.join(", "));
        for e in &f.evidence {
            println!("   evidence: {e}");
        }
        println!("   steps:");
        if let Ok(sc) = crate::suite::parse_scenario_json(&f.scenario) {
            for s in &sc.steps {
                let yaml = serde_saphyr::to_string(s).unwrap_or_default();
                println!("     - {}", yaml.trim_end().replace('\n', "\n       "));
            }
        }
        for r in &f.remediation {
            println!("   fix:      {r}");
        }
    }
    if report.tokens.input + report.tokens.output > 0 {
        println!(
            "\nmodel tokens: in {} / out {}",
            report.tokens.input, report.tokens.output
        );
    }
    let classes = |c: &[heatcheck_explore::WeaknessClass]| {
        c.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(", ")
    };
    println!(
        "\nresilience score {}/100 (survived: {}; failed: {})",
        report.resilience.score,
        if report.resilience.survived.is_empty() {
            "none".into()
        } else {
            classes(&report.resilience.survived)
        },
        if report.resilience.failed.is_empty() {
            "none".into()
        } else {
            classes(&report.resilience.failed)
        }
    );
    match &args.suite {
        Some(suite) if !report.findings.is_empty() && args.write_suite.is_none() => println!(
            "each finding's scenario is in --findings FILE.json; --write-suite FILE writes a suite that replays them: `heatcheck run FILE --sandbox` (from {})",
            super::relative(suite)
        ),
        None if args.write_suite.is_none() => println!(
            "keep this steady state and the findings as a suite: add --write-suite FILE"
        ),
        _ => {}
    }
}
