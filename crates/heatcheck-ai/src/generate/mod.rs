//! Generation: send the prompt, parse `{"scenarios": [...]}`, check each
//! scenario (JSON Schema, the suite's own validation, references, policy),
//! send the problems back for repair up to `ai.maxRepairs`, and report
//! every rejected scenario with its reasons. Nothing here executes a step.
//!
//! The provider is `backend.rs`, what a run passes in `options.rs`, what
//! it returns `outcome.rs`; the request/answer loop is `round.rs`, its
//! state `state.rs`, reading (or salvaging) an answer `read.rs`, what is
//! sent back for repair `repair.rs`. The checks of a candidate are the
//! crate's `check` module. This file only re-exports, so the submodules
//! import each other and never their parent.

mod backend;
mod options;
mod outcome;
mod read;
mod repair;
mod round;
mod state;

pub use crate::check::static_problems;
pub use crate::known::Known;
pub use backend::{GenerateError, ProviderBackend};
pub use options::{GenerateOptions, PermissionCheck, Verdict, Verifier};
pub use outcome::Generation;
pub use round::generate;
