//! The safety policy. Every scenario, whatever its origin (hand-written,
//! locked or freshly generated), is checked here before the engine runs
//! anything; selector-based and manifest steps are checked again when they
//! run, against what the cluster really holds.

#![warn(unreachable_pub)]

mod check;
pub mod kinds;
pub mod permissions;
mod policy;
mod preflight;
mod rbac;
mod runtime;
mod touch;
mod verbs;
mod violation;

pub use check::{check_scenario, Checker, FIXTURES};
pub use policy::{EffectivePolicy, PolicyError, PolicyOverrides};
pub use preflight::{preflight, selected, Preflight};
pub use runtime::{
    check_blast, check_object, match_labels_selector, refuse_match_all, Blast, GuardError,
};
pub use touch::{assertion_reads, static_templater, touches, Touch};
pub use verbs::rbac_verbs;
pub use violation::Violation;
