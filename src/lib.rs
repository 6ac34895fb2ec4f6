//! heatcheck: chaos-as-code for Kubernetes networking.

#[cfg(feature = "sandbox")]
pub mod sandbox;
pub mod cluster;
pub mod engine;
pub mod exit;
