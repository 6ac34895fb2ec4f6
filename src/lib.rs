//! heatcheck: chaos-as-code for Kubernetes networking.
//!
//! The binary's library: the commands behind the CLI, plus the workspace's
//! crates under the names the code and the tests use (see ARCHITECTURE.md).

// First: its macro is then in scope in every module below.
#[macro_use]
mod stderr;

pub mod cli;
pub mod commands;
pub mod deploy;
pub mod error;

pub use heatcheck_ai as ai;
pub use heatcheck_cluster as cluster;
pub use heatcheck_engine as engine;
pub use heatcheck_engine::{exit, probe};
pub use heatcheck_format as suite;
pub use heatcheck_gateway::{gateway_url, jsonpath, route_precedence, units};
pub use heatcheck_guard as guard;
pub use heatcheck_report as report;
#[cfg(feature = "sandbox")]
pub use heatcheck_sandbox as sandbox;
