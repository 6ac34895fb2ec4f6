//! `heatcheck remediate SUITE --findings FILE.json`: for each finding of
//! explore, the catalog's candidate changes to the suite's manifests, each
//! verified on fresh twins (the finding's scenario with the change; the
//! whole suite with the change against the suite once without it), offered
//! as a diff or written in place. The cluster is only read; objects that
//! live only there are printed as server-side-apply YAML, never applied.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use futures::stream::{self, StreamExt};
use serde_json::Value;

use super::explore::{prepare, read_namespace, Explored, SandboxTwins};
use super::verify::SandboxVerifier;
use super::{install_crypto, runtime};
use crate::ai::remediate::FixChange;
use crate::cli::{RemediateArgs, RemediateStrategy};
use crate::engine::model::CaseReport;
use crate::error::Error;
use crate::exit::RunOutcome;
use crate::suite::{load_suite, StepAction, Suite};
use heatcheck_explore::search::{suite_for, TwinRun, Twins};
use heatcheck_explore::snapshot::reapplicable;
use heatcheck_explore::{Finding, FindingsReport};
use heatcheck_remediate::{
    diff, edit, object_key, propose, verdict, Change, FindingRemedy, ManifestFile, Proposal,
    Refused, RemediationReport, Remedies, Status, Tried, Verdict,
};

pub fn remediate(args: RemediateArgs) -> Result<(), Error> {
    install_crypto();
    if !(0.0..=1.0).contains(&args.min_success_rate) {
        return Err(Error::invalid(
            "--min-success-rate: give a rate between 0 and 1",
        ));
    }
    let mut suite = load_suite(&args.suite).map_err(Error::invalid)?;
    for (k, v) in &args.vars {
        suite.spec.vars.insert(k.clone(), Value::String(v.clone()));
    }
    let input = match &args.findings {
        Some(path) => Input::Findings(read_findings(path, &suite)?),
        None => {
            for n in &args.scenarios {
                if !suite.spec.scenarios.iter().any(|s| &s.name == n) {
                    let names: Vec<&str> = suite
                        .spec
                        .scenarios
                        .iter()
                        .map(|s| s.name.as_str())
                        .collect();
                    return Err(Error::invalid(format!(
                        "--scenario {n:?}: no such scenario in {} (it has: {})",
                        args.suite.display(),
                        if names.is_empty() {
                            "none".to_string()
                        } else {
                            names.join(", ")
                        }
                    )));
                }
            }
            Input::Scenarios(args.scenarios.clone())
        }
    };
    let files = manifest_files(&suite)?;
    if args.fix && !args.allow_dirty {
        refuse_dirty(&suite, &files)?;
    }
    let wants = args.strategy.map(|s| match s {
        RemediateStrategy::Catalog => None,
        RemediateStrategy::Ai => Some("ai"),
        RemediateStrategy::Both => Some("both"),
    });
    let backend = super::explore::model_for(wants, &suite)?;
    let strategy = match (args.strategy, &backend) {
        (Some(s), _) => s,
        (None, Some(_)) => RemediateStrategy::Both,
        (None, None) => RemediateStrategy::Catalog,
    };
    let model = backend.map(|backend| Model {
        backend,
        alone: strategy == RemediateStrategy::Ai,
    });
    let report = runtime().block_on(work(&args, &suite, &files, input, model.as_ref()))?;
    print_report(&args, &report);
    let offered = report
        .findings
        .iter()
        .filter(|f| f.status != Status::AlreadyHolds)
        .all(|f| f.status == Status::Fixed);
    let combined_ok = report
        .combined
        .as_ref()
        .is_none_or(|v| *v == Verdict::Verified);
    Error::verdict(if offered && combined_ok {
        RunOutcome::Passed
    } else {
        RunOutcome::Failed
    })
}

/// The verified fixes of `remediate --output json` reports, by suite and
/// scenario, for the HTML report and the playbook: each finding's offered
/// fix (its first verified one).
pub(crate) fn read_fixes(paths: &[PathBuf]) -> Result<crate::report::fixes::Fixes, Error> {
    let mut out = crate::report::fixes::Fixes::new();
    for p in paths {
        let text = std::fs::read_to_string(p)
            .map_err(|e| Error::invalid(format!("--remediation {}: {e}", p.display())))?;
        let report: RemediationReport = serde_json::from_str(&text).map_err(|e| {
            Error::invalid(format!(
                "{}:{}:{}: not a report of `heatcheck remediate --output json` ({e})",
                p.display(),
                e.line(),
                e.column()
            ))
        })?;
        for f in report.findings {
            let Some(fix) = f.fixes.into_iter().next() else {
                continue;
            };
            out.insert(
                (report.suite.clone(), f.scenario),
                crate::report::fixes::VerifiedFix {
                    finding: f.title,
                    title: fix.title,
                    fields: fix.fields,
                    diff: fix.diff,
                    server_side_apply: fix.server_side_apply,
                },
            );
        }
    }
    Ok(out)
}

/// What to fix: explore's findings, or failing scenarios of the suite.
enum Input {
    Findings(Vec<Finding>),
    Scenarios(Vec<String>),
}

fn read_findings(path: &Path, suite: &Suite) -> Result<Vec<Finding>, Error> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::invalid(format!("{}: {e}", path.display())))?;
    let findings: FindingsReport = serde_json::from_str(&text).map_err(|e| {
        Error::invalid(format!(
            "{}: not a findings file of `heatcheck explore --findings` ({e})",
            path.display()
        ))
    })?;
    if findings.namespace != suite.spec.target.namespace {
        return Err(Error::invalid(format!(
            "{}: the findings are of namespace {}, the suite targets {}",
            path.display(),
            findings.namespace,
            suite.spec.target.namespace
        )));
    }
    Ok(findings.findings)
}

/// The manifest files the suite's fixtures and scenarios apply, once each.
fn manifest_files(suite: &Suite) -> Result<Vec<ManifestFile>, Error> {
    let mut out: Vec<ManifestFile> = Vec::new();
    let steps = suite.spec.all_steps();
    for step in steps {
        let (StepAction::Apply(a) | StepAction::Create(a)) = &step.action else {
            continue;
        };
        let Some(written) = &a.file else { continue };
        let namespace = a
            .namespace
            .clone()
            .unwrap_or_else(|| suite.spec.target.namespace.clone());
        if out
            .iter()
            .any(|f| &f.written == written && f.namespace == namespace)
        {
            continue;
        }
        let text = a
            .resolve_source(&suite.source.dir)
            .map_err(Error::invalid)?;
        out.push(ManifestFile {
            written: written.clone(),
            text,
            namespace,
        });
    }
    Ok(out)
}

fn file_path(suite: &Suite, f: &ManifestFile) -> PathBuf {
    crate::suite::resolve_manifest_path(&suite.source.dir, &f.written)
}

/// `cargo fix`'s rule: files with uncommitted changes (or outside git) are
/// not written over unless --allow-dirty.
fn refuse_dirty(suite: &Suite, files: &[ManifestFile]) -> Result<(), Error> {
    // Absolute: `git -C` would read relative paths from the suite's directory.
    let absolute = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let paths: Vec<PathBuf> = files
        .iter()
        .map(|f| absolute(&file_path(suite, f)))
        .collect();
    let dir = absolute(if suite.source.dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        suite.source.dir.as_path()
    });
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["status", "--porcelain", "--"])
        .args(&paths)
        .output();
    let out = match out {
        Ok(o) if o.status.success() => o,
        Ok(o) => {
            return Err(Error::invalid(format!(
                "--fix: cannot tell whether the manifests have uncommitted changes ({}); commit them in git, or pass --allow-dirty",
                String::from_utf8_lossy(&o.stderr).trim()
            )))
        }
        Err(e) => {
            return Err(Error::invalid(format!(
                "--fix: cannot run git to check the manifests for uncommitted changes ({e}); pass --allow-dirty"
            )))
        }
    };
    let dirty = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if dirty.is_empty() {
        return Ok(());
    }
    Err(Error::invalid(format!(
        "--fix: the manifest files have uncommitted changes:\n{dirty}\ncommit or stash them first (the fix is then a diff of its own), or pass --allow-dirty"
    )))
}

/// The suite with its manifest files replaced by `texts` (inline).
fn patched(suite: &Suite, files: &[ManifestFile], texts: &[String]) -> Suite {
    let mut s = suite.clone();
    let fix = |step: &mut crate::suite::Step| {
        if let StepAction::Apply(a) | StepAction::Create(a) = &mut step.action {
            let ns = a
                .namespace
                .clone()
                .unwrap_or_else(|| suite.spec.target.namespace.clone());
            if let Some(i) = files
                .iter()
                .position(|f| Some(&f.written) == a.file.as_ref() && f.namespace == ns)
            {
                if texts[i] != files[i].text {
                    a.file = None;
                    a.manifest = Some(texts[i].clone());
                }
            }
        }
    };
    s.spec.fixtures.iter_mut().for_each(fix);
    for sc in &mut s.spec.scenarios {
        sc.steps.iter_mut().for_each(fix);
    }
    s
}

/// A candidate's changes made: the files' new texts and the objects read
/// from the cluster (for the ones in no file).
struct Applied {
    texts: Vec<String>,
    read: Vec<Value>,
    /// Objects in no file: what to server-side apply (or delete).
    cluster: Vec<String>,
}

fn apply_changes(
    files: &[ManifestFile],
    read: &[Value],
    ns: &str,
    changes: &[Change],
) -> Result<Applied, String> {
    let (in_files, in_cluster): (Vec<Change>, Vec<Change>) = changes
        .iter()
        .cloned()
        .partition(|c| files.iter().any(|f| f.holds(c.anchor())));
    let texts = edit::apply(files, &in_files).map_err(|e| e.to_string())?;
    let mut read = read.to_vec();
    let mut cluster = Vec::new();
    for c in &in_cluster {
        let at = read.iter().position(|o| object_key(o, ns) == c.anchor());
        let Some(at) = at else {
            return Err(format!(
                "{} is neither in the suite's manifest files nor in the cluster",
                c.anchor()
            ));
        };
        match c {
            Change::Set { fields, .. } => {
                let new = heatcheck_remediate::change::set_fields(&read[at], fields)
                    .ok_or_else(|| format!("{}: a field to set is not there", c.anchor()))?;
                read[at] = new.clone();
                cluster.push(ssa(&reapplicable(&new), ns));
            }
            Change::Add { object, .. } => {
                let mut o = object.clone();
                o["metadata"]["namespace"] = Value::String(
                    read[at]
                        .pointer("/metadata/namespace")
                        .and_then(Value::as_str)
                        .unwrap_or(ns)
                        .to_string(),
                );
                read.push(o.clone());
                cluster.push(ssa(&o, ns));
            }
            Change::Remove { key } => {
                read.remove(at);
                let mut parts = key.splitn(3, '/');
                let (kind, kns, name) = (
                    parts.next().unwrap_or_default(),
                    parts.next().unwrap_or_default(),
                    parts.next().unwrap_or_default(),
                );
                cluster.push(format!("kubectl delete {kind} {name} -n {kns}"));
            }
        }
    }
    Ok(Applied {
        texts,
        read,
        cluster,
    })
}

/// Server-side-apply YAML of an object, with the command that applies it.
fn ssa(object: &Value, ns: &str) -> String {
    let yaml = serde_saphyr::to_string(object).unwrap_or_default();
    format!(
        "# {} lives only in the cluster; review, then:\nkubectl apply --server-side --field-manager=heatcheck-remediate -f - <<'EOF'\n{}EOF",
        object_key(object, ns),
        yaml
    )
}

/// Runs scenarios on fresh twins, counting them.
struct Runner {
    /// Explore's view of the suite without any change: what healthy means.
    explored: Explored,
    min_success_rate: f64,
    twins: std::sync::atomic::AtomicUsize,
}

impl Runner {
    /// The finding's scenario on a fresh twin of `suite` seeded with `read`.
    /// A catalog finding is asked again of the changed objects: "kill one
    /// pod" of a Deployment that now has 2 replicas is 50% of its pods, not
    /// the 100% it was (that would be an outage on any design).
    async fn finding(&self, suite: &Suite, read: &[Value], finding: &Finding) -> TwinRun {
        self.twins
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let again = prepare(suite, read, self.min_success_rate)
            .ok()
            .and_then(|ex| {
                let c = ex.candidates.iter().find(|c| c.id == finding.id)?;
                Some((c.scenario.clone(), suite_for(&ex.suite, c)))
            });
        let (scenario, own) = match again {
            Some(x) => x,
            // Not the catalog's (or its object is gone): the finding as written,
            // judged with the derived probes of the suite as it was.
            None => match crate::suite::parse_scenario_json(&finding.scenario) {
                Ok(sc) => {
                    let mut explored = self.explored.suite.clone();
                    explored.spec.fixtures = suite.spec.fixtures.clone();
                    (sc, explored)
                }
                Err(e) => return TwinRun::Broken(format!("the finding's scenario: {e}")),
            },
        };
        let twins = SandboxTwins {
            verifier: Arc::new(SandboxVerifier::from_objects(suite, read)),
        };
        twins.run(&own, &scenario).await
    }

    /// The suite as `run` runs it (fixtures, steady state, every scenario)
    /// plus explore's baseline, on one fresh twin.
    async fn suite(&self, suite: &Suite, read: &[Value]) -> Result<Vec<CaseReport>, String> {
        self.twins
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let report = Arc::new(SandboxVerifier::from_objects(suite, read))
            .twin_on_own_task(suite.clone(), vec![self.explored.baseline.clone()])
            .await?
            .suite;
        match report.error {
            Some(e) => Err(e),
            None => Ok(report.cases),
        }
    }
}

/// One candidate, verified.
struct Outcome {
    finding: usize,
    proposal: Proposal,
    files: Vec<String>,
    /// The change alone, as a diff of the files.
    diff: String,
    cluster: Vec<String>,
    verdict: Option<Verdict>,
    seconds: f64,
}

async fn work(
    args: &RemediateArgs,
    suite: &Suite,
    files: &[ManifestFile],
    input: Input,
    model: Option<&Model>,
) -> Result<RemediationReport, Error> {
    let started = Instant::now();
    let read = if args.cluster.sandbox {
        Vec::new()
    } else {
        let conn = super::connect::connect(&args.cluster, None).await?;
        let objects = read_namespace(&conn.client, suite).await;
        conn.close().await;
        objects?
    };
    let ns = suite.spec.target.namespace.clone();
    let runner = Runner {
        explored: prepare(suite, &read, args.min_success_rate)?,
        min_success_rate: args.min_success_rate,
        twins: Default::default(),
    };
    let findings: Vec<Finding> = match input {
        Input::Findings(f) => f,
        Input::Scenarios(names) => names
            .iter()
            .map(|n| {
                let sc = suite
                    .spec
                    .scenarios
                    .iter()
                    .find(|s| &s.name == n)
                    .expect("checked before");
                heatcheck_remediate::finding_of_scenario(sc, &runner.explored.snap)
                    .map_err(Error::invalid)
            })
            .collect::<Result<_, _>>()?,
    };
    let findings = findings.as_slice();
    // What passed before any change, and which findings still fail.
    eprintln!(
        "remediate: {} finding(s); first the suite and each finding on fresh twins without a change",
        findings.len()
    );
    let jobs = usize::from(args.jobs);
    let before_suite = runner.suite(suite, &read);
    let confirms = stream::iter(findings.iter().enumerate())
        .map(|(i, f)| {
            let runner = &runner;
            let read = &read;
            async move { (i, runner.finding(suite, read, f).await) }
        })
        .buffer_unordered(jobs)
        .collect::<Vec<_>>();
    let (before, confirms) = futures::join!(before_suite, confirms);
    let before = before.map_err(|e| {
        Error::invalid(format!(
            "the suite does not run on a twin before any change, so no fix can be judged: {e}"
        ))
    })?;
    let mut stale = vec![false; findings.len()];
    let mut findings = findings.to_vec();
    for (i, run) in &confirms {
        match run {
            TwinRun::Case(c) => match heatcheck_explore::finding::judge(c) {
                heatcheck_explore::finding::Judgement::Held => stale[*i] = true,
                // A failing scenario of the suite comes with no evidence: this run's.
                heatcheck_explore::finding::Judgement::Failed {
                    evidence,
                    outage_seconds,
                    ..
                } if findings[*i].evidence.is_empty() => {
                    findings[*i].evidence = evidence;
                    findings[*i].outage_seconds = outage_seconds;
                }
                _ => {}
            },
            TwinRun::Refused(m) | TwinRun::Broken(m) => {
                return Err(Error::invalid(format!(
                    "finding {}: its scenario does not run on a twin: {m}",
                    findings[*i].id
                )))
            }
        }
    }
    let findings = findings.as_slice();
    let mut remedies: Vec<Remedies> = findings
        .iter()
        .map(|f| match model {
            Some(m) if m.alone => Remedies::default(),
            _ => propose(f, &runner.explored.snap),
        })
        .collect();
    let todo: Vec<(usize, Proposal)> = remedies
        .iter()
        .enumerate()
        .filter(|(i, _)| !stale[*i])
        .flat_map(|(i, r)| r.proposals.iter().cloned().map(move |p| (i, p)))
        .collect();
    let deadline = args.budget.map(|b| started + b);
    let check = Check {
        runner: &runner,
        suite,
        files,
        read: &read,
        ns: &ns,
        before: &before,
        findings,
        deadline,
        jobs,
    };
    let mut outcomes: Vec<Outcome> = if todo.is_empty() {
        Vec::new()
    } else {
        eprintln!(
            "verifying {} candidate fix(es), each on fresh twins, {jobs} at once",
            todo.len()
        );
        check.all(todo).await
    };
    let mut asked = Asked {
        refused: vec![Vec::new(); findings.len()],
        ..Default::default()
    };
    if let Some(m) = model {
        // The model, for what the catalog did not fix (with --strategy ai: everything).
        let open: Vec<usize> = (0..findings.len())
            .filter(|i| {
                !stale[*i]
                    && !outcomes
                        .iter()
                        .any(|o| o.finding == *i && o.verdict == Some(Verdict::Verified))
            })
            .collect();
        let todo = ask_model(m, suite, &runner, findings, &open, &outcomes, &mut asked).await?;
        for (i, p) in &todo {
            remedies[*i].proposals.push(p.clone());
        }
        if !todo.is_empty() {
            eprintln!(
                "verifying the model's {} fix(es), each on fresh twins, {jobs} at once",
                todo.len()
            );
            outcomes.extend(check.all(todo).await);
        }
        if let Some(e) = &asked.error {
            // With the model alone, nothing was remedied.
            if m.alone && outcomes.is_empty() {
                return Err(Error::unreachable(e));
            }
            eprintln!("warning: the model's fixes stopped: {e}");
        }
    }

    let mut report = RemediationReport {
        suite: suite.metadata.name.clone(),
        namespace: ns.clone(),
        strategy: match model {
            None => "catalog",
            Some(m) if m.alone => "ai",
            Some(_) => "both",
        }
        .into(),
        refused: asked.refused.iter().map(Vec::len).sum(),
        tokens: asked.tokens.clone(),
        model_error: asked.error.clone(),
        ..Default::default()
    };
    for (i, f) in findings.iter().enumerate() {
        let mut fixes = Vec::new();
        let mut rejected = Vec::new();
        let mut untried = 0;
        for o in outcomes.iter().filter(|o| o.finding == i) {
            let tried = |reason: Option<String>| Tried {
                id: o.proposal.id.clone(),
                title: o.proposal.title.clone(),
                fields: o.proposal.fields,
                changes: o.proposal.changes.clone(),
                origin: o.proposal.origin,
                files: o.files.clone(),
                diff: o.diff.clone(),
                server_side_apply: o.cluster.clone(),
                reason,
                seconds: o.seconds,
            };
            match &o.verdict {
                Some(Verdict::Verified) => fixes.push(tried(None)),
                Some(Verdict::Rejected(r)) => rejected.push(tried(Some(r.clone()))),
                None => untried += 1,
            }
        }
        // Fewest fields first, then the catalog's order (ids are stable).
        let order = |t: &Tried| {
            (
                t.fields,
                remedies[i]
                    .proposals
                    .iter()
                    .position(|p| p.id == t.id)
                    .unwrap_or(usize::MAX),
            )
        };
        fixes.sort_by_key(order);
        rejected.sort_by_key(order);
        let status = if stale[i] {
            Status::AlreadyHolds
        } else if !fixes.is_empty() {
            Status::Fixed
        } else if untried > 0 {
            Status::NotTried
        } else {
            Status::Unfixed
        };
        report.candidates += fixes.len() + rejected.len();
        report.verified += fixes.len();
        report.rejected += rejected.len();
        let mut notes = remedies[i].notes.clone();
        if stale[i] {
            notes.push(
                "its scenario holds on a twin before any change: nothing to fix (re-run explore)"
                    .into(),
            );
        }
        report.findings.push(FindingRemedy {
            id: f.id.clone(),
            title: f.title.clone(),
            scenario: f.scenario["name"].as_str().unwrap_or_default().to_string(),
            class: f.class,
            status,
            fixes,
            rejected,
            refused: std::mem::take(&mut asked.refused[i]),
            notes,
            steady_state_checks: remedies[i].checks.clone(),
        });
    }

    // The offered fixes together: the first of each finding, one change
    // per object (a second fix to the same object waits for the next run).
    let mut chosen: Vec<Change> = Vec::new();
    let mut touched: Vec<String> = Vec::new();
    let mut together: Vec<usize> = Vec::new();
    for (i, f) in report.findings.iter_mut().enumerate() {
        let Some(best) = f.fixes.first() else {
            continue;
        };
        let anchors: Vec<String> = best
            .changes
            .iter()
            .map(|c| c.anchor().to_string())
            .collect();
        if anchors.iter().any(|a| touched.contains(a)) {
            f.notes.push(
                "its fix changes an object another finding's fix changes too: run remediate again after this fix"
                    .to_string(),
            );
            continue;
        }
        touched.extend(anchors);
        chosen.extend(best.changes.iter().cloned());
        together.push(i);
    }
    if !chosen.is_empty() {
        let applied = apply_changes(files, &read, &ns, &chosen).map_err(Error::invalid)?;
        for (f, t) in files.iter().zip(&applied.texts) {
            report.diff.push_str(&diff::unified(&f.written, &f.text, t));
        }
        report.server_side_apply = applied.cluster.clone();
        // More than one fix at once: verified together too before it is offered.
        if together.len() > 1 && (args.fix || args.diff) {
            eprintln!(
                "verifying the {} offered fixes together on fresh twins",
                together.len()
            );
            let own = patched(suite, files, &applied.texts);
            let runs = stream::iter(together.iter().copied())
                .map(|i| {
                    let (runner, own, read) = (&runner, &own, &applied.read);
                    async move { runner.finding(own, read, &findings[i]).await }
                })
                .buffer_unordered(jobs)
                .collect::<Vec<_>>();
            let (runs, after) = futures::join!(runs, runner.suite(&own, &applied.read));
            let mut v = Verdict::Verified;
            for r in &runs {
                if let Verdict::Rejected(why) = verdict(r, &after, &before) {
                    v = Verdict::Rejected(why);
                    break;
                }
            }
            if runs.is_empty() {
                v = verdict(&TwinRun::Broken("no finding".into()), &after, &before);
            }
            report.combined = Some(v);
        }
        let combined_ok = report
            .combined
            .as_ref()
            .is_none_or(|v| *v == Verdict::Verified);
        if args.fix && combined_ok {
            for (f, t) in files.iter().zip(&applied.texts) {
                if &f.text == t {
                    continue;
                }
                let path = file_path(suite, f);
                super::run::write_file(&path, t)
                    .map_err(|e| Error::invalid(format!("writing {}: {e}", path.display())))?;
                report.written.push(f.written.clone());
            }
        }
    }
    report.twins = runner.twins.load(std::sync::atomic::Ordering::Relaxed);
    report.duration_seconds = started.elapsed().as_secs_f64();
    report.seconds_per_verified_fix =
        (report.verified > 0).then(|| report.duration_seconds / report.verified as f64);
    Ok(report)
}

/// The model `--strategy ai|both` asks.
struct Model {
    backend: crate::ai::generate::ProviderBackend,
    /// --strategy ai: the catalog is not asked.
    alone: bool,
}

/// What verifying a candidate needs: the twins, the suite before any
/// change and what passed on it.
struct Check<'a> {
    runner: &'a Runner,
    suite: &'a Suite,
    files: &'a [ManifestFile],
    read: &'a [Value],
    ns: &'a str,
    before: &'a [CaseReport],
    findings: &'a [Finding],
    deadline: Option<Instant>,
    jobs: usize,
}

impl Check<'_> {
    /// Every candidate on fresh twins, `jobs` at once; none starts after the deadline.
    async fn all(&self, todo: Vec<(usize, Proposal)>) -> Vec<Outcome> {
        stream::iter(todo)
            .map(|(i, proposal)| self.one(i, proposal))
            .buffer_unordered(self.jobs)
            .collect()
            .await
    }

    async fn one(&self, i: usize, proposal: Proposal) -> Outcome {
        let t0 = Instant::now();
        let mut out = Outcome {
            finding: i,
            files: Vec::new(),
            diff: String::new(),
            cluster: Vec::new(),
            verdict: None,
            seconds: 0.0,
            proposal,
        };
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            return out;
        }
        let applied = match apply_changes(self.files, self.read, self.ns, &out.proposal.changes) {
            Ok(a) => a,
            Err(e) => {
                out.verdict = Some(Verdict::Rejected(format!("cannot make the change: {e}")));
                return out;
            }
        };
        out.files = self
            .files
            .iter()
            .zip(&applied.texts)
            .filter(|(f, t)| &f.text != *t)
            .map(|(f, _)| f.written.clone())
            .collect();
        out.diff = self
            .files
            .iter()
            .zip(&applied.texts)
            .map(|(f, t)| diff::unified(&f.written, &f.text, t))
            .collect();
        out.cluster = applied.cluster.clone();
        let own = patched(self.suite, self.files, &applied.texts);
        let (finding, after) = futures::join!(
            self.runner.finding(&own, &applied.read, &self.findings[i]),
            self.runner.suite(&own, &applied.read)
        );
        let v = verdict(&finding, &after, self.before);
        let (word, why) = match &v {
            Verdict::Verified => ("verified", String::new()),
            Verdict::Rejected(r) => ("rejected", format!(": {r}")),
        };
        eprintln!("  {word:<9}{}{why}", out.proposal.id);
        out.verdict = Some(v);
        out.seconds = t0.elapsed().as_secs_f64();
        out
    }
}

/// What the model answered, over all findings.
#[derive(Default)]
struct Asked {
    /// Per finding: its fixes refused before any twin.
    refused: Vec<Vec<Refused>>,
    tokens: heatcheck_explore::finding::Tokens,
    /// The provider failed: what it said (no finding after it is asked).
    error: Option<String>,
}

/// The model's fixes for the `open` findings, checked (refused ones are
/// kept in `asked` with the reasons and never run), as proposals.
async fn ask_model(
    model: &Model,
    suite: &Suite,
    runner: &Runner,
    findings: &[Finding],
    open: &[usize],
    outcomes: &[Outcome],
    asked: &mut Asked,
) -> Result<Vec<(usize, Proposal)>, Error> {
    let (policy, _) =
        crate::guard::EffectivePolicy::build(suite, &Default::default()).map_err(Error::invalid)?;
    let snap = &runner.explored.snap;
    let ns = suite.spec.target.namespace.as_str();
    let mut todo = Vec::new();
    for &i in open {
        let f = &findings[i];
        let tried: Vec<String> = outcomes
            .iter()
            .filter(|o| o.finding == i)
            .filter_map(|o| match &o.verdict {
                Some(Verdict::Rejected(why)) => Some(format!("{}: {why}", o.proposal.title)),
                _ => None,
            })
            .collect();
        eprintln!("asking the model for fixes of {}", f.id);
        let ask = crate::ai::remediate::FixAsk {
            id: &f.id,
            title: &f.title,
            class: f.class.as_str(),
            evidence: &f.evidence,
            scenario: &f.scenario,
            remediation: &f.remediation,
            named: &f.objects,
            objects: &snap.objects,
            tried: &tried,
        };
        let mut log = |l: String| eprintln!("  model: {l}");
        let gen = match crate::ai::remediate::propose_fixes(
            &model.backend,
            suite,
            &policy,
            &ask,
            &mut log,
        )
        .await
        {
            Ok(g) => g,
            Err(e) => {
                asked.error = Some(e.to_string());
                break;
            }
        };
        asked.tokens.input += gen.usage.input_tokens;
        asked.tokens.output += gen.usage.output_tokens;
        for r in gen.refused {
            eprintln!("  refused  {}: {}", r.name, r.reasons.join("; "));
            asked.refused[i].push(Refused {
                title: r.name,
                attempt: r.attempt,
                reasons: r.reasons,
            });
        }
        for (k, fix) in gen.fixes.into_iter().enumerate() {
            let changes: Vec<Change> = fix
                .changes
                .into_iter()
                .map(|c| match c {
                    FixChange::Set { object, fields } => Change::Set {
                        key: object,
                        fields,
                    },
                    FixChange::Add { beside, manifest } => Change::Add {
                        beside,
                        object: manifest,
                    },
                    FixChange::Remove { object } => Change::Remove { key: object },
                })
                .collect();
            let id = format!("ai-{}/{}", k + 1, changes[0].target(ns));
            if let Some(mut p) =
                heatcheck_remediate::proposal(snap, id, format!("ai: {}", fix.title), changes)
            {
                p.origin = heatcheck_explore::Origin::Ai;
                todo.push((i, p));
            }
        }
    }
    Ok(todo)
}

fn print_report(args: &RemediateArgs, report: &RemediationReport) {
    if args.output.is_json() {
        println!(
            "{}",
            serde_json::to_string_pretty(report).expect("the report serializes")
        );
        return;
    }
    for (n, f) in report.findings.iter().enumerate() {
        println!("\n{}. {} [{}]", n + 1, f.title, f.class.as_str());
        let status = match f.status {
            Status::Fixed => "fixed",
            Status::Unfixed => "no verified fix",
            Status::AlreadyHolds => "already holds",
            Status::NotTried => "not tried (budget)",
        };
        println!("   {status}");
        for (k, t) in f.fixes.iter().enumerate() {
            println!(
                "   {} {} ({} field(s){})",
                if k == 0 { "fix:     " } else { "also:    " },
                t.title,
                t.fields,
                if t.files.is_empty() {
                    String::new()
                } else {
                    format!(", in {}", t.files.join(", "))
                }
            );
        }
        for t in &f.rejected {
            println!(
                "   rejected: {} ({} field(s)): {}",
                t.title,
                t.fields,
                t.reason.as_deref().unwrap_or_default()
            );
        }
        for r in &f.refused {
            println!(
                "   refused:  {} (the model's; never ran): {}",
                r.title,
                r.reasons.join("; ")
            );
        }
        for note in &f.notes {
            println!("   note:     {note}");
        }
        if !f.steady_state_checks.is_empty() {
            println!("   add to the suite's spec.steadyState:");
            let yaml = serde_saphyr::to_string(&f.steady_state_checks).unwrap_or_default();
            for line in yaml.lines() {
                println!("     {line}");
            }
        }
    }
    let fixed = report
        .findings
        .iter()
        .filter(|f| f.status == Status::Fixed)
        .count();
    println!(
        "\n{fixed} of {} finding(s) fixed ({}): {} candidate(s), {} verified, {} rejected{}, on {} fresh twin(s) in {:.0}s{}",
        report.findings.len(),
        report.strategy,
        report.candidates,
        report.verified,
        report.rejected,
        if report.strategy == "catalog" {
            String::new()
        } else {
            format!(
                ", {} refused before any twin ({} tokens in, {} out)",
                report.refused, report.tokens.input, report.tokens.output
            )
        },
        report.twins,
        report.duration_seconds,
        report
            .seconds_per_verified_fix
            .map(|s| format!(" ({s:.1}s per verified fix)"))
            .unwrap_or_default()
    );
    match &report.combined {
        Some(Verdict::Rejected(why)) => println!(
            "the offered fixes fail together: {why}; apply them one at a time (remediate again after each)"
        ),
        Some(Verdict::Verified) => {
            println!("the offered fixes hold together too (verified on fresh twins)")
        }
        None => {}
    }
    if args.diff && !report.diff.is_empty() {
        print!("\n{}", report.diff);
    }
    for s in &report.server_side_apply {
        println!("\n{s}");
    }
    if !report.written.is_empty() {
        println!(
            "\nwrote {} (review with `git diff`, then commit)",
            report.written.join(", ")
        );
    } else if !report.diff.is_empty() && !args.diff && !args.fix {
        println!("--diff shows the offered fixes; --fix writes them into the manifests");
    }
}
