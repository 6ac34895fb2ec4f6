//! The suite format `heatcheck.dev/v1alpha1`: typed, validated,
//! schema-described YAML. It knows no cluster, no LLM and no output.

#![warn(unreachable_pub)]

mod assertion;
mod duration;
mod error;
pub mod fault;
mod load;
mod locate;
pub mod manifest;
mod matcher;
mod schema;
mod step;
pub mod template;
pub mod threshold;
mod types;
mod validate;

pub use assertion::*;
pub use duration::{format_duration, parse_duration, Duration, DURATION_PATTERN};
pub use error::{Diagnostic, SuiteError};
pub use load::{load_many, load_suite, parse_scenario_json, parse_suite};
pub use matcher::Matcher;
pub use schema::{scenario_schema, suite_schema};
pub use step::*;
pub use template::{template_context, GatewayResolver, TemplateError, Templater};
pub use types::*;
pub use validate::validate_scenario;
