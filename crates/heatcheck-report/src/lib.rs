//! Reporters: they consume the engine's events and results (src/engine/event.rs,
//! src/engine/model.rs) and turn them into JUnit XML, JSON or terminal output.
//! No reporter talks to the cluster.

pub mod doc;
pub mod explore;
pub mod fixes;
pub mod grouped;
pub mod html;
pub mod human;
pub mod json;
pub mod junit;
pub mod kubectl;
pub mod metrics;
pub mod notify;
pub mod panel;
pub mod playbook;
pub mod text;

pub use heatcheck_engine::event::{Event, LogLevel, Reporter};
pub use heatcheck_engine::model::{
    AssertionRecord, CaseKind, CaseReport, CaseStatus, Outcome, RestoreSummary, RunReport,
    StepRecord, SuiteReport, Totals,
};
pub use human::{HumanOptions, HumanReporter};
pub use json::{to_json, JsonEventReporter};
pub use junit::to_junit_xml;
