//! `heatcheck remediate`: fixes proven on twins before anyone applies them.
//!
//! From a finding of `explore` (its weakness class and the objects it
//! names), the catalog proposes changes to the user's own objects
//! ([`propose`]); each is applied to the suite's manifest files in memory
//! ([`edit`]: only the changed document is rewritten, scalars in place),
//! and the caller runs the finding's scenario and the whole suite on fresh
//! twins with it. A candidate counts only when the finding now holds and
//! nothing that passed before fails ([`verdict`]). What is offered is a
//! unified diff ([`diff`]) to review and commit, never a change applied.
//!
//! This crate never starts a twin nor touches a cluster: the binary does.

#![warn(unreachable_pub)]

pub mod change;
pub mod diff;
pub mod edit;
mod input;
pub mod propose;
mod report;
mod scalar;
pub mod verdict;

pub use change::{object_key, Change};
pub use edit::{apply, documents, EditError, ManifestFile};
pub use input::finding_of_scenario;
pub use propose::{proposal, propose, Proposal, Remedies};
pub use report::{FindingRemedy, Refused, RemediationReport, Status, Tried};
pub use verdict::{verdict, Verdict};
