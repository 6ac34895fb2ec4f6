//! Reporters: they consume the engine's events and results (src/engine/event.rs,
//! src/engine/model.rs) and turn them into JUnit XML, JSON or terminal output.
//! No reporter talks to the cluster.

#![warn(unreachable_pub)]

mod doc;
pub mod explore;
pub mod fixes;
pub mod grouped;
pub mod html;
pub mod human;
pub mod json;
pub mod junit;
mod kubectl;
pub mod metrics;
pub mod notify;
pub mod panel;
pub mod playbook;
mod text;
