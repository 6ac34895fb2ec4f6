//! The Kubernetes verbs each step kind uses, for `forbiddenVerbs` and RBAC.

use heatcheck_format::{FaultType, StepAction};

/// Verbs the step itself performs (not its restore): `forbiddenVerbs` may
/// name these or the step kind.
pub(crate) fn step_verbs(action: &StepAction) -> &'static [&'static str] {
    match action {
        // Server-side apply is a patch that creates the object when absent.
        StepAction::Apply(_) => &["create", "patch"],
        StepAction::Create(_) => &["create"],
        StepAction::Delete(_) => &["delete"],
        StepAction::Patch(_) | StepAction::Restart(_) | StepAction::Scale(_) => &["patch"],
        // A pod kill deletes pods; every fault creates a chaos object.
        StepAction::Fault(f) if f.fault_type == FaultType::PodKill => &["create", "delete"],
        StepAction::Fault(_) => &["create"],
        StepAction::Wait(_) | StepAction::Sleep(_) => &[],
    }
}

/// Verbs needed on the touched resource to run the step AND undo it from
/// the journal (get for the prior state; create/update/delete to restore).
pub fn rbac_verbs(action: &str) -> &'static [&'static str] {
    match action {
        "apply" => &["get", "create", "patch", "update", "delete"],
        "create" => &["get", "create", "delete"],
        "delete" => &["get", "list", "delete", "create"],
        "patch" | "restart" => &["get", "patch", "update"],
        // The scale subresource is patched; restore replaces the object.
        "scale" => &["get", "update"],
        "fault" => &["get", "create", "delete"],
        // Waits and assertions poll.
        _ => &["get", "list", "watch"],
    }
}
