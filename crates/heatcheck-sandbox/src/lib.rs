//! The embedded sandbox: a Kubernetes API server on loopback plus an emulated
//! Gateway data plane. It imports nothing from the engine, the AI or the
//! reports (only the shared `gateway_url` function).

pub mod api;
pub mod auth;
pub mod controllers;
pub mod dataplane;
pub mod error;
mod instance;
pub mod patch;
pub mod protobuf;
pub mod registry;
pub mod selector;
pub mod server;
pub mod store;
pub mod validate;

pub use instance::{Sandbox, SandboxOptions, DEFAULT_CONTAINER_START_DELAY, DEFAULT_SHUTDOWN};
