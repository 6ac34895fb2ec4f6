//! Game-day pacing: before each scenario step the engine asks a gate what
//! the operator wants (run, skip, abort), and with `--pause-on-failure` it
//! waits on the gate before restoring. The gate is the command's (a
//! terminal); the engine only records what came back as notes in the case.

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use crate::model::{GameNote, NoteKind};

/// What to do with the step about to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Run,
    Skip,
    /// Stop the run: restore and exit 4, as Ctrl-C does.
    Abort,
}

/// Something the operator did, stamped when it happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OperatorNote {
    pub at: Instant,
    pub kind: NoteKind,
    pub text: String,
}

impl OperatorNote {
    pub fn new(kind: NoteKind, text: impl Into<String>) -> Self {
        OperatorNote {
            at: Instant::now(),
            kind,
            text: text.into(),
        }
    }

    /// As the report keeps it: offset from the case start.
    pub(crate) fn to_game_note(&self, case_started: Instant) -> GameNote {
        GameNote {
            at_ms: self.at.saturating_duration_since(case_started).as_millis() as u64,
            kind: self.kind,
            text: self.text.clone(),
        }
    }
}

/// One step as the operator sees it before deciding.
pub struct StepPrompt<'a> {
    pub suite: &'a str,
    pub case: &'a str,
    pub index: usize,
    pub total: usize,
    pub name: &'a str,
}

/// Blocking calls: the engine runs them off the async workers.
pub trait StepGate: Send + Sync {
    fn before_step(&self, step: &StepPrompt<'_>) -> (Decision, Vec<OperatorNote>);
    /// A check failed and `--pause-on-failure` is on: returns when the
    /// operator lets the restore go ahead.
    fn on_failure(&self, suite: &str, case: &str, message: &str) -> Vec<OperatorNote>;
}

/// The gate of a run, if any (RunOptions stays Clone + Debug).
#[derive(Clone, Default)]
pub struct Gate(pub Option<Arc<dyn StepGate>>);

impl fmt::Debug for Gate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "Gate(some)"
        } else {
            "Gate(none)"
        })
    }
}
