//! heatcheck: chaos-as-code for Kubernetes networking.

#[cfg(feature = "sandbox")]
pub mod sandbox;
