//! One run: fixtures, steady state, scenarios, assertions, restore.

pub mod context;
pub mod event;
pub mod fault;
#[cfg(test)]
pub(crate) mod fixture;
pub mod gate;
pub mod journal;
pub mod model;
pub mod partition;
pub mod restore;
pub mod run;
pub mod runstate;
pub mod steps;
pub mod stop;

pub use run::{new_run_id, Emitter, Engine, RunOptions, DEFAULT_RESTORE_TIMEOUT};
