//! The embedded sandbox: a Kubernetes API server on loopback plus an emulated
//! Gateway data plane. It imports nothing from the engine, the AI or the
//! reports (only the shared `gateway_url` function).

// `pub` means used outside the crate (the binary, its tests and benches).
#![warn(unreachable_pub)]

mod api;
mod auth;
mod controllers;
pub mod dataplane;
mod error;
mod instance;
mod patch;
mod protobuf;
pub mod registry;
mod selector;
pub mod server;
pub mod store;
mod validate;

pub use instance::{Sandbox, SandboxOptions};
