//! heatcheck: chaos-as-code for Kubernetes networking.

pub mod ai;
pub mod cluster;
pub mod commands;
pub mod deploy;
pub mod engine;
pub mod exit;
pub mod gateway_url;
pub mod guard;
pub mod jsonpath;
pub mod probe;
pub mod report;
pub mod route_precedence;
#[cfg(feature = "sandbox")]
pub mod sandbox;
pub mod suite;
pub mod units;
