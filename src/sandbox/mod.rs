//! The embedded sandbox: a Kubernetes API server on loopback plus an emulated
//! Gateway data plane. It imports nothing from the rest of heatcheck.

pub mod dataplane;
pub mod error;
pub mod registry;
pub mod store;
