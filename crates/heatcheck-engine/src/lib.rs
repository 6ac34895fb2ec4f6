//! One run: the guard, fixtures, steady state, scenarios, assertions,
//! probes, stop conditions and restore. The engine emits events and
//! results; it never formats (reporters do) and never knows the sandbox.

#![warn(unreachable_pub)]

mod context;
pub mod event;
pub mod exit;
/// Sample runs and events for reporters' tests (feature `fixtures`).
#[cfg(any(test, feature = "fixtures"))]
pub mod fixture;
pub mod gate;
pub mod incluster;
pub mod journal;
pub mod model;
pub mod partition;
pub mod probe;
pub mod restore;
pub mod run;
pub mod runstate;
mod steps;
mod stop;

pub use run::{new_run_id, Emitter, Engine, RunOptions};
