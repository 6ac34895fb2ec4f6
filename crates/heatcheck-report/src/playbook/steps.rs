//! One step as the playbook tells it: what it does, its kubectl
//! equivalent, the dry run's answers, and the commands that save and undo
//! what it changes.

use super::{touches, SuiteInput};
use crate::doc::Doc;
use crate::kubectl::{sh, step_command};
use heatcheck_format::{format_duration, Step, StepAction, Templater};
use heatcheck_guard::Touch;

pub(super) fn steps_section(
    d: &mut Doc,
    s: &SuiteInput,
    t: &Templater,
    case: &str,
    steps: &[Step],
) {
    let suite = &s.suite;
    for (i, st) in steps.iter().enumerate() {
        let list = touches(suite, t, st, i).unwrap_or_default();
        let ns = st
            .action
            .namespace()
            .map(|n| t.render(n).unwrap_or_else(|_| n.to_string()))
            .unwrap_or_else(|| suite.spec.target.namespace.clone());
        d.h(4, format!("Step {}: {}", i + 1, st.display_name()));
        let mut about = Vec::new();
        if let Some(w) = step_words(st, &list) {
            about.push(w);
        }
        if !matches!(st.action, StepAction::Sleep(_)) {
            about.push(format!(
                "timeout {}",
                format_duration(st.effective_timeout(suite.spec.defaults.timeout))
            ));
        }
        if st.continue_on_error {
            about.push("a failure here does not fail the scenario".into());
        }
        if !about.is_empty() {
            d.p(about.join("; ") + ".");
        }
        let file = manifest_file(s, st, t);
        d.code("sh", step_command(st, &list, &ns, file.as_deref(), t));
        if let Some(c) = &s.cluster {
            if let Some(lines) = c.steps.get(&(case.to_string(), i)) {
                d.labeled("Dry run on the cluster", "");
                d.list(lines.clone());
            }
        }
    }
}

/// The manifest file to pass to kubectl, when the file needs no rendering.
fn manifest_file(s: &SuiteInput, st: &Step, t: &Templater) -> Option<String> {
    let written = match &st.action {
        StepAction::Apply(a) | StepAction::Create(a) => a.file.as_deref()?,
        StepAction::Delete(dl) => dl.file.as_deref()?,
        _ => return None,
    };
    let path = heatcheck_format::resolve_manifest_path(&s.suite.source.dir, written);
    let text = std::fs::read_to_string(&path).ok()?;
    if t.render(&text).ok()? != text {
        return None;
    }
    let base = std::path::Path::new(&s.file)
        .parent()
        .unwrap_or(std::path::Path::new(""));
    Some(base.join(written).display().to_string())
}

fn step_words(st: &Step, list: &[Touch]) -> Option<String> {
    let objs: Vec<String> = list
        .iter()
        .filter(|tc| !(tc.action == "fault" && tc.kind == "Pod"))
        .map(|tc| tc.describe(tc.kind == "Namespace"))
        .collect();
    Some(match &st.action {
        StepAction::Apply(_) => format!("Server-side apply of {}", objs.join(", ")),
        StepAction::Create(_) => format!("Creates {}", objs.join(", ")),
        StepAction::Delete(dl) => format!(
            "Deletes {}{}",
            objs.join(", "),
            if dl.wait { " and waits until gone" } else { "" }
        ),
        StepAction::Patch(_) => format!("Patches {}", objs.join(", ")),
        StepAction::Scale(sc) => format!("Scales {} to {} replicas", objs.join(", "), sc.replicas),
        StepAction::Restart(_) => format!("Rollout restart of {}", objs.join(", ")),
        StepAction::Wait(_) => format!("Waits for {}", objs.join(", ")),
        StepAction::Sleep(d) => format!("Waits {}", format_duration(d.0)),
        StepAction::Fault(f) => format!(
            "{} on {}% of the pods matching `{}` for {}{}; heatcheck waits until the chaos is injected and removes it when the scenario ends",
            f.fault_type.as_str(),
            f.percent,
            f.selector,
            format_duration(f.duration.0),
            f.latency
                .map(|l| format!(", adding {} of latency", format_duration(l.0)))
                .unwrap_or_default()
        ),
    })
}

/// Commands that undo what the touches change, for a by-hand rollback.
pub(super) fn undo_commands(list: &[Touch]) -> Vec<String> {
    list.iter()
        .filter(|tc| tc.mutates() && tc.kind != "Pod")
        .map(|tc| {
            let kind = tc.kind.to_ascii_lowercase();
            let name = tc.name.clone().unwrap_or_default();
            let nsf = if tc.kind == "Namespace" {
                String::new()
            } else {
                format!(" -n {}", sh(&tc.namespace))
            };
            match tc.action {
                "apply" | "create" | "fault" => format!(
                    "kubectl delete {kind} {}{nsf} --ignore-not-found   # if it did not exist before; else re-apply the saved copy",
                    sh(&name)
                ),
                "delete" => match &tc.name {
                    Some(n) => format!("kubectl apply --server-side -f saved/{kind}-{n}.yaml   # recreate from the copy saved before the step"),
                    None => format!("kubectl apply --server-side -f saved/{kind}-selected.yaml   # recreate what the selector deleted"),
                },
                _ => format!(
                    "kubectl apply --server-side --force-conflicts -f saved/{kind}-{name}.yaml   # put back the copy saved before the step"
                ),
            }
        })
        .collect()
}

/// Commands that save what the touches change, before the step.
pub(super) fn save_commands(list: &[Touch]) -> Vec<String> {
    list.iter()
        .filter(|tc| tc.mutates() && tc.kind != "Pod" && !matches!(tc.action, "fault" | "create"))
        .map(|tc| {
            let kind = tc.kind.to_ascii_lowercase();
            let nsf = format!(" -n {}", sh(&tc.namespace));
            match (&tc.name, &tc.selector) {
                (Some(n), _) => format!(
                    "kubectl get {kind} {}{nsf} -o yaml > saved/{kind}-{n}.yaml 2>/dev/null || echo absent",
                    sh(n)
                ),
                (None, Some(sel)) => format!(
                    "kubectl get {kind} -l {}{nsf} -o yaml > saved/{kind}-selected.yaml",
                    sh(sel)
                ),
                _ => String::new(),
            }
        })
        .filter(|c| !c.is_empty())
        .collect()
}
