//! One scenario as the playbook tells it: origin and hypothesis, blast
//! radius, the steps, the expected observations, remediation (and a
//! verified fix), rollback.

use super::steps::{save_commands, steps_section, undo_commands};
use super::{touches, SuiteInput};
use crate::doc::Doc;
use crate::kubectl::{assertion_text, probe_command};
use heatcheck_format::{format_duration, Scenario, StepAction, Templater};
use heatcheck_guard::Touch;

pub(super) fn scenario_section(
    d: &mut Doc,
    s: &SuiteInput,
    t: &Templater,
    n: usize,
    sc: &Scenario,
    origin: &str,
) {
    d.h(3, format!("Scenario {n}: {}", sc.name));
    d.labeled(
        "Origin",
        if origin == "lock" {
            "AI-generated, reviewed and locked in the lockfile (runs with `--locked`)"
        } else {
            "hand-written in the suite"
        },
    );
    let hypothesis = sc
        .description
        .as_deref()
        .map(|x| x.split_whitespace().collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| {
            "the expected observations below hold while the steps run, and the steady state holds again after the restore".into()
        });
    d.labeled("Hypothesis", hypothesis);
    if let Some(v) = s.violations.iter().find(|v| v.scenario == sc.name) {
        d.labeled("Guard", format!("REFUSED: {v}"));
    }

    let all = blast_radius(d, s, t, sc);
    let saves: Vec<String> = all.iter().flat_map(|l| save_commands(l)).collect();
    if !saves.is_empty() {
        d.p("By hand, save what the steps change first (heatcheck journals the same before each change):");
        d.code("sh", format!("mkdir -p saved\n{}", saves.join("\n")));
    }
    d.labeled("Steps", "");
    steps_section(d, s, t, &sc.name, &sc.steps);

    expected_observations(d, s, t, sc);
    remediation(d, s, sc);
    d.labeled("Rollback", "when the scenario ends (passed, failed or aborted) heatcheck undoes its journal in reverse: objects it created are deleted, deleted ones recreated without server-set fields, changed ones put back; faults are removed. If heatcheck was killed, `heatcheck runs` lists the unfinished run and `heatcheck recover` restores it. By hand:");
    let mut undo: Vec<String> = all.iter().rev().flat_map(|l| undo_commands(l)).collect();
    undo.push(
        "heatcheck runs && heatcheck recover   # after a crash: restores from the journal".into(),
    );
    d.code("sh", undo.join("\n"));
}

/// What the scenario changes and how many pods at most; the touches of
/// each step, in order.
fn blast_radius(d: &mut Doc, s: &SuiteInput, t: &Templater, sc: &Scenario) -> Vec<Vec<Touch>> {
    let suite = &s.suite;
    let ns = suite.spec.target.namespace.as_str();
    let mut touched = Vec::new();
    let mut pods = Vec::new();
    let mut all: Vec<Vec<Touch>> = Vec::new();
    for (i, st) in sc.steps.iter().enumerate() {
        let list = touches(suite, t, st, i).unwrap_or_default();
        for tc in list.iter().filter(|tc| tc.mutates()) {
            if tc.kind == "Pod" && tc.object.is_none() {
                continue;
            }
            touched.push(format!(
                "{} `{}`",
                tc.action,
                tc.describe(tc.kind == "Namespace")
            ));
        }
        match &st.action {
            StepAction::Fault(f) => pods.push(format!(
                "{}% of the pods matching `{}` in `{}` ({} for {})",
                f.percent,
                t.render(&f.selector).unwrap_or_else(|_| f.selector.clone()),
                ns,
                f.fault_type.as_str(),
                format_duration(f.duration.0)
            )),
            StepAction::Scale(x) => pods.push(format!(
                "the pods of {} `{}` above {} replicas",
                x.kind, x.name, x.replicas
            )),
            StepAction::Restart(x) => pods.push(format!(
                "every pod of {} `{}`, one rollout at a time",
                x.kind, x.name
            )),
            StepAction::Delete(x)
                if x.kind
                    .as_deref()
                    .is_some_and(heatcheck_guard::kinds::is_pod) =>
            {
                pods.push(format!(
                    "the pods deleted: {}",
                    x.name.clone().or(x.selector.clone()).unwrap_or_default()
                ))
            }
            _ => {}
        }
        all.push(list);
    }
    let mut blast = Vec::new();
    blast.push(if touched.is_empty() {
        "Changes nothing in the cluster.".into()
    } else {
        format!("Changes: {}.", touched.join(", "))
    });
    blast.push(if pods.is_empty() {
        "Pods affected directly: none (no fault, scale, restart or pod deletion).".into()
    } else {
        format!("Pods affected at most: {}.", pods.join("; "))
    });
    if let Some(m) = s.policy.max_pods_affected {
        blast.push(format!(
            "The guard refuses any step that would take away more than {m}% of a namespace's pods."
        ));
    }
    d.labeled("Blast radius", "");
    d.list(blast);
    all
}

/// The scenario's assertions and the probes that must meet their
/// thresholds while it runs.
fn expected_observations(d: &mut Doc, s: &SuiteInput, t: &Templater, sc: &Scenario) {
    let suite = &s.suite;
    let ns = suite.spec.target.namespace.as_str();
    d.labeled("Expected observations", "");
    if sc.assertions.is_empty() {
        d.p("none (the scenario states no assertion)");
    }
    for a in &sc.assertions {
        let (words, cmd) = assertion_text(a, ns, t);
        d.labeled(a.display_name(), words);
        d.code("sh", cmd);
    }
    for p in &suite.spec.probes {
        if let Some(th) = p.expect.success_rate.as_ref().or(p.expect.p99.as_ref()) {
            let _ = th;
            d.p(format!(
                "Probe `{}` must meet its thresholds during the scenario (see Probes to watch).",
                p.name
            ));
        }
    }
    // The scenario's own probes run only here, so they are told here.
    for p in &sc.probes {
        let mut th = Vec::new();
        if let Some(r) = &p.expect.success_rate {
            th.push(format!("success rate {r}"));
        }
        if let Some(r) = &p.expect.p99 {
            th.push(format!("p99 {r}"));
        }
        if let Some(m) = &p.expect.max_outage {
            th.push(format!("longest outage <= {}", format_duration(m.0)));
        }
        d.p(format!(
            "Probe `{}` (this scenario's, every {}): {}.",
            p.name,
            format_duration(p.every.0),
            if th.is_empty() {
                "measured only".to_string()
            } else {
                th.join(", ")
            }
        ));
        d.code("sh", format!("# {}\n{}", p.name, probe_command(&p.http, t)));
    }
    d.p("Afterwards the steady-state hypothesis must hold again.");
}

/// The metrics to watch, the written remediation and the verified fix.
fn remediation(d: &mut Doc, s: &SuiteInput, sc: &Scenario) {
    let suite = &s.suite;
    let mut watch: Vec<String> = sc.metrics.clone();
    watch.extend(
        suite
            .spec
            .probes
            .iter()
            .map(|p| format!("probe {} (success rate, p50/p99, outages)", p.name)),
    );
    d.labeled("Metrics to watch", "");
    if watch.is_empty() {
        d.list(vec![
            "the gateway's request rate, error rate and latency".into()
        ]);
    } else {
        d.list(watch);
    }
    d.labeled("Remediation", "");
    if sc.remediation.is_empty() {
        d.list(vec!["(none written)".into()]);
    } else {
        d.list(sc.remediation.clone());
    }
    if let Some(f) = s.fixes.get(&(suite.metadata.name.clone(), sc.name.clone())) {
        d.labeled("Verified fix", f.summary());
        if !f.diff.is_empty() {
            d.code("diff", f.diff.clone());
        }
        for y in &f.server_side_apply {
            d.code("sh", y.clone());
        }
    }
}
