//! `heatcheck remediate SUITE --findings FILE.json`: for each finding of
//! explore, the catalog's candidate changes to the suite's manifests, each
//! verified on fresh twins (the finding's scenario with the change; the
//! whole suite with the change against the suite once without it), offered
//! as a diff or written in place. The cluster is only read; objects that
//! live only there are printed as server-side-apply YAML, never applied.

mod model;
mod report;
mod verify;

use std::path::{Path, PathBuf};
use std::time::Instant;

use futures::stream::{self, StreamExt};
use serde_json::Value;

use super::explore::{prepare, read_namespace};
use super::{install_crypto, runtime};
use crate::cli::{RemediateArgs, RemediateStrategy};
use crate::error::Error;
use crate::exit::RunOutcome;
use crate::suite::{load_suite, StepAction, Suite};
use heatcheck_explore::search::TwinRun;
use heatcheck_explore::snapshot::reapplicable;
use heatcheck_explore::{Finding, FindingsReport};
use heatcheck_remediate::{
    edit, object_key, propose, Change, ManifestFile, Proposal, RemediationReport, Remedies, Status,
    Verdict,
};
use model::{ask_model, Asked, Model};
use report::print_report;
pub(crate) use report::read_fixes;
use verify::{Check, Outcome, Runner};

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
    let jobs = usize::from(args.jobs);
    let (before, findings, stale) = confirm(&runner, suite, &read, findings, jobs).await?;
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
        stderr_line!(
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
            stderr_line!(
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
            stderr_line!("warning: the model's fixes stopped: {e}");
        }
    }

    let mut report = report::assemble(suite, model, findings, &remedies, &outcomes, &stale, asked);
    report::offer(args, &check, &mut report).await?;
    report.twins = runner.twins.load(std::sync::atomic::Ordering::Relaxed);
    report.duration_seconds = started.elapsed().as_secs_f64();
    report.seconds_per_verified_fix =
        (report.verified > 0).then(|| report.duration_seconds / report.verified as f64);
    Ok(report)
}

/// Each finding and the suite on fresh twins without a change: what passed
/// before (the bar a fix must keep), and which findings still fail (with
/// the run's evidence for a suite's scenario, which comes with none).
async fn confirm(
    runner: &Runner,
    suite: &Suite,
    read: &[Value],
    findings: Vec<Finding>,
    jobs: usize,
) -> Result<
    (
        Vec<crate::engine::model::CaseReport>,
        Vec<Finding>,
        Vec<bool>,
    ),
    Error,
> {
    // What passed before any change, and which findings still fail.
    stderr_line!(
        "remediate: {} finding(s); first the suite and each finding on fresh twins without a change",
        findings.len()
    );
    let before_suite = runner.suite(suite, read);
    let confirms = stream::iter(findings.iter().enumerate())
        .map(|(i, f)| async move { (i, runner.finding(suite, read, f).await) })
        .buffer_unordered(jobs)
        .collect::<Vec<_>>();
    let (before, confirms) = futures::join!(before_suite, confirms);
    let before = before.map_err(|e| {
        Error::invalid(format!(
            "the suite does not run on a twin before any change, so no fix can be judged: {e}"
        ))
    })?;
    let mut stale = vec![false; findings.len()];
    let mut findings = findings;
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
    Ok((before, findings, stale))
}
