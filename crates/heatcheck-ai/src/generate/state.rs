//! What the attempts of one generation have gathered so far, shared by
//! the loop (`round.rs`) and the reading of each answer (`read.rs`).

use std::collections::BTreeMap;

use super::outcome::Generation;
use crate::lockfile::Rejected;
use crate::provider::AiError;
use crate::provider::Message;
use heatcheck_format::Scenario;

/// One accepted candidate and how it got there.
pub(super) struct Accepted {
    pub(super) scenario: Scenario,
    pub(super) repairs: u32,
    pub(super) verdict: String,
}

/// What the attempts so far have gathered.
pub(super) struct State<'a> {
    pub(super) log: &'a mut dyn FnMut(String),
    /// The conversation: the prompt, then each answer and its repair.
    pub(super) messages: Vec<Message>,
    pub(super) gen: Generation,
    pub(super) accepted: Vec<Accepted>,
    pub(super) rejected: Vec<Rejected>,
    /// Fingerprint -> name of the suite's and the accepted scenarios.
    pub(super) seen: BTreeMap<String, String>,
    /// How many scenarios the next request asks for at least.
    pub(super) ask: usize,
    pub(super) last_timeout: Option<AiError>,
    /// Whether any request got an answer (not only timeouts).
    pub(super) answered: bool,
}

/// The whole answer rejected at `attempt`.
pub(super) fn whole(attempt: u32, reasons: Vec<String>) -> Rejected {
    Rejected {
        name: "(whole answer)".into(),
        attempt,
        reasons,
    }
}
