//! The embedded sandbox: a Kubernetes API server on loopback plus an emulated
//! Gateway API data plane. It imports nothing from the rest of heatcheck.

pub mod api;
pub mod error;
pub mod patch;
pub mod registry;
pub mod selector;
pub mod server;
pub mod store;
