//! The embedded sandbox: a Kubernetes API server on loopback plus an emulated
//! Gateway API data plane. It imports nothing from the rest of heatcheck.

pub mod controllers;
pub mod error;
pub mod registry;
pub mod store;
