//! Generation: send the prompt, parse `{"scenarios": [...]}`, check each
//! scenario (JSON Schema, the suite's own validation, references, policy),
//! send the problems back for repair up to `ai.maxRepairs`, and report
//! every rejected scenario with its reasons. Nothing here executes a step.
//!
//! The request/answer loop is `round.rs`, reading an answer (or salvaging
//! one) `read.rs`, what is sent back for repair `repair.rs`; the checks of
//! a candidate are the crate's `check` module.

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;

use crate::lockfile::{LockUsage, Rejected, ScenarioCheck};
use heatcheck_format::{Scenario, Suite};

mod read;
mod repair;
mod round;
mod state;

pub use crate::check::static_problems;
pub use crate::known::Known;
use crate::provider::{AiError, ChatRequest, ChatResponse, Message, Role};
pub use round::generate;

/// The configured provider over HTTP.
pub struct ProviderBackend {
    pub client: reqwest::Client,
    pub config: crate::provider::ProviderConfig,
}

impl ProviderBackend {
    /// From the suite's `ai` block and the process environment.
    pub fn from_suite(ai: &heatcheck_format::AiConfig) -> Result<Self, AiError> {
        let mut config =
            crate::provider::ProviderConfig::from_suite(ai, &|k| std::env::var(k).ok())?;
        // generate() shows and counts each timed-out attempt itself.
        config.retry_timeouts = false;
        config.streamed = Some(Default::default());
        Ok(ProviderBackend {
            client: crate::provider::default_client()?,
            config,
        })
    }
}

impl ProviderBackend {
    /// One request to the model over the provider's wire format.
    pub(crate) async fn chat(&self, req: &ChatRequest) -> Result<ChatResponse, AiError> {
        crate::provider::chat(&self.client, &self.config, req).await
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error(transparent)]
    Provider(#[from] AiError),
}

impl GenerateError {
    pub fn is_unreachable(&self) -> bool {
        match self {
            GenerateError::Provider(e) => e.is_unreachable(),
        }
    }
}

/// The outcome of one generation.
#[derive(Clone, Debug, Default)]
pub struct Generation {
    pub scenarios: Vec<Scenario>,
    pub rejected: Vec<Rejected>,
    pub usage: LockUsage,
    /// Valid scenarios in the first answer (before any repair).
    pub valid_first: usize,
    /// Scenarios in the first answer.
    pub proposed_first: usize,
    /// Per accepted scenario (same order): repairs and sandbox verdict.
    pub checks: Vec<ScenarioCheck>,
}

/// Prefix of generated scenario names (unless they already carry it).
pub(crate) const NAME_PREFIX: &str = "ai: ";

/// What the execution check says about one candidate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Every step ran and every assertion held.
    Passed,
    /// An assertion evaluated and failed: maybe the weakness the scenario
    /// exposes, for the reviewer to judge.
    Failed(String),
    /// A step errored or an assertion could not be evaluated: a defect of
    /// the scenario, sent back for repair.
    Broken(Vec<String>),
    /// Not checked (why).
    NotRun(String),
}

/// Runs candidates for real somewhere safe (a sandbox) and judges them. It
/// lives outside src/ai (the AI proposes, never executes); generation only
/// receives verdicts, one per candidate, in order.
pub trait Verifier {
    fn verify<'a>(
        &'a self,
        candidates: &'a [Scenario],
    ) -> Pin<Box<dyn Future<Output = Vec<Verdict>> + 'a>>;
}

/// Whether the identity that will run the candidates may do all they need
/// (SelfSubjectAccessReview, as the run's permission preflight). Lives with
/// the cluster client outside src/ai; generation only receives, per
/// candidate in order, the reasons it cannot run (empty: it can).
pub trait PermissionCheck {
    fn denied<'a>(
        &'a self,
        candidates: &'a [Scenario],
    ) -> Pin<Box<dyn Future<Output = Vec<Vec<String>>> + 'a>>;
}

/// How one generation runs besides the suite: the permission and execution
/// checks and where progress lines go.
pub struct GenerateOptions<'a> {
    /// A candidate the running identity cannot execute is rejected and sent
    /// back for repair, never locked.
    pub permissions: Option<&'a dyn PermissionCheck>,
    pub verifier: Option<&'a dyn Verifier>,
    /// `--verify=strict`: a failing sandbox verdict rejects the scenario.
    pub strict: bool,
    pub log: &'a mut dyn FnMut(String),
}

/// `ai: ` prefix, unique against the suite's own scenarios and each other.
pub(crate) fn name_scenarios(scenarios: Vec<Scenario>, suite: &Suite) -> Vec<Scenario> {
    let mut taken: BTreeSet<String> = suite
        .spec
        .scenarios
        .iter()
        .map(|s| s.name.clone())
        .collect();
    scenarios
        .into_iter()
        .map(|mut sc| {
            let base = if sc.name.starts_with(NAME_PREFIX) {
                sc.name.clone()
            } else {
                format!("{NAME_PREFIX}{}", sc.name.trim())
            };
            let mut name = base.clone();
            let mut n = 2;
            while taken.contains(&name) {
                name = format!("{base} ({n})");
                n += 1;
            }
            taken.insert(name.clone());
            sc.name = name;
            sc
        })
        .collect()
}
