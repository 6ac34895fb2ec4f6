//! How one generation runs besides the suite: the checks that run a
//! candidate (outside this crate) and where progress lines go.

use std::future::Future;
use std::pin::Pin;

use heatcheck_format::Scenario;

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
