//! `heatcheck explore`: search for weaknesses on digital twins.
//!
//! What the namespace is (a [`Snapshot`] of what was read), what "healthy"
//! means ([`steady`]: every route answers with the backend that serves it
//! now, with probes measuring outages during a change), which changes a
//! well-built system survives ([`catalog`]), and the search that runs each
//! candidate on its own fresh twin ([`search`]) and turns failures into
//! ranked, deduplicated [`finding`]s with a resilience score.
//!
//! This crate never starts a twin itself: the binary (which alone may know
//! the sandbox) hands it a [`search::Twins`]. It proposes scenarios in the
//! suite format and reads the engine's results; it never touches a cluster.

pub mod catalog;
pub mod finding;
pub mod search;
pub mod snapshot;
pub mod steady;

pub use catalog::{Candidate, WeaknessClass};
pub use finding::{Finding, FindingsReport, Origin, Severity};
pub use search::{explore, ExploreOptions, Twins};
pub use snapshot::Snapshot;
