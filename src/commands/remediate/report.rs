//! What remediate answers: the report per finding (fixes ranked, the
//! rejected and refused ones), the offered fixes together (verified
//! together, written with --fix), the printed form, and the fixes read back
//! for the HTML report and the playbook.

use std::path::PathBuf;

use futures::stream::{self, StreamExt};

use super::model::{Asked, Model};
use super::verify::{Check, Outcome};
use super::{apply_changes, file_path, patched};
use crate::cli::RemediateArgs;
use crate::error::Error;
use crate::suite::Suite;
use heatcheck_explore::search::TwinRun;
use heatcheck_explore::Finding;
use heatcheck_remediate::{
    diff, verdict, Change, FindingRemedy, RemediationReport, Remedies, Status, Tried, Verdict,
};

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

/// The report of every finding: its verified fixes (fewest fields first),
/// the rejected ones with why, the model's refused ones, and its status.
pub(super) fn assemble(
    suite: &Suite,
    model: Option<&Model>,
    findings: &[Finding],
    remedies: &[Remedies],
    outcomes: &[Outcome],
    stale: &[bool],
    mut asked: Asked,
) -> RemediationReport {
    let ns = suite.spec.target.namespace.clone();
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

    report
}

/// The offered fixes together: their diff and server-side-apply YAML,
/// verified together when there are several, written with --fix.
pub(super) async fn offer(
    args: &RemediateArgs,
    check: &Check<'_>,
    report: &mut RemediationReport,
) -> Result<(), Error> {
    let Check {
        runner,
        suite,
        files,
        read,
        ns,
        before,
        findings,
        jobs,
        ..
    } = *check;
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
        let applied = apply_changes(files, read, ns, &chosen).map_err(Error::invalid)?;
        for (f, t) in files.iter().zip(&applied.texts) {
            report.diff.push_str(&diff::unified(&f.written, &f.text, t));
        }
        report.server_side_apply = applied.cluster.clone();
        // More than one fix at once: verified together too before it is offered.
        if together.len() > 1 && (args.fix || args.diff) {
            stderr_line!(
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
                if let Verdict::Rejected(why) = verdict(r, &after, before) {
                    v = Verdict::Rejected(why);
                    break;
                }
            }
            if runs.is_empty() {
                v = verdict(&TwinRun::Broken("no finding".into()), &after, before);
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
                crate::commands::write_file(&path, t)
                    .map_err(|e| Error::invalid(format!("writing {}: {e}", path.display())))?;
                report.written.push(f.written.clone());
            }
        }
    }
    Ok(())
}

pub(super) fn print_report(args: &RemediateArgs, report: &RemediationReport) {
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
