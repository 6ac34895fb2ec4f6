//! Run results and their reporters. The engine fills in the model and emits
//! events; reporters turn them into JUnit XML, JSON or terminal output. No
//! reporter talks to the cluster.

pub mod event;
pub mod human;
pub mod json;
pub mod junit;
pub mod model;
pub mod text;

#[cfg(test)]
mod fixture;

pub use event::{Event, LogLevel, Reporter};
pub use human::{HumanOptions, HumanReporter};
pub use json::{to_json, JsonEventReporter};
pub use junit::to_junit_xml;
pub use model::{
    AssertionRecord, CaseKind, CaseReport, CaseStatus, Outcome, RestoreSummary, RunReport,
    StepRecord, SuiteReport, Totals,
};
