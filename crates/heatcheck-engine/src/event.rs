//! What the engine emits while a run progresses, and the sink trait the
//! reporters implement. Events carry the model types, so a live reporter and
//! the final report agree.

use serde::{Deserialize, Serialize};

use super::model::{
    AssertionRecord, CaseKind, CaseReport, GameNote, ProbeLive, RestoreSummary, RunReport,
    StepRecord, SuiteReport,
};

/// One thing that happened during a run. JSON: `{"event": "stepFinished", ...}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "event",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum Event {
    RunStarted {
        run_id: String,
        suites: usize,
    },
    SuiteStarted {
        name: String,
        file: String,
        scenarios: usize,
    },
    CaseStarted {
        suite: String,
        case: String,
        kind: CaseKind,
        steps: usize,
    },
    /// A step is about to run (after the operator said so, in a game day).
    StepStarted {
        suite: String,
        case: String,
        index: usize,
        total: usize,
        name: String,
    },
    StepFinished {
        suite: String,
        case: String,
        record: StepRecord,
    },
    /// The scenario's probes as they run, every half second while any has
    /// results (and only when something changed). For live views: the
    /// report's `ProbeStats` are the final numbers.
    ProbeWindow {
        suite: String,
        case: String,
        /// From the case start.
        at_ms: u64,
        probes: Vec<ProbeLive>,
    },
    /// What stops the scenario early, in words, as it starts (maybe none).
    StopConditionsArmed {
        suite: String,
        case: String,
        conditions: Vec<String>,
    },
    /// A stop condition fired: the scenario stops, restores and errors.
    StopConditionTripped {
        suite: String,
        case: String,
        reason: String,
    },
    /// The run waits for the operator at the terminal (`--interactive`,
    /// `--pause-on-failure`) until `OperatorAnswered`.
    AwaitingOperator {
        suite: String,
        case: String,
    },
    OperatorAnswered {
        suite: String,
        case: String,
    },
    /// A game-day note, skip, pause or abort, as the case report keeps it.
    OperatorNote {
        suite: String,
        case: String,
        note: GameNote,
    },
    AssertionFinished {
        suite: String,
        case: String,
        record: AssertionRecord,
    },
    CaseFinished {
        suite: String,
        report: CaseReport,
    },
    RestoreStarted {
        suite: String,
        entries: usize,
    },
    RestoreFinished {
        suite: String,
        summary: RestoreSummary,
    },
    SuiteFinished {
        report: SuiteReport,
    },
    RunFinished {
        report: RunReport,
    },
    Log {
        level: LogLevel,
        message: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
}

impl Event {
    /// Events about the present moment only (probe windows, prompts): a
    /// reporter that prints blocks later can let them pass or drop them.
    pub fn is_live(&self) -> bool {
        matches!(
            self,
            Event::ProbeWindow { .. }
                | Event::AwaitingOperator { .. }
                | Event::OperatorAnswered { .. }
        )
    }
}

/// A live consumer of events (an output sink, not a protocol).
pub trait Reporter: Send {
    fn event(&mut self, e: &Event);
}

impl<R: Reporter + ?Sized> Reporter for Box<R> {
    fn event(&mut self, e: &Event) {
        (**self).event(e);
    }
}

/// Fan-out: every reporter sees every event, in order.
impl<R: Reporter> Reporter for Vec<R> {
    fn event(&mut self, e: &Event) {
        for r in self {
            r.event(e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    struct Count(Arc<AtomicUsize>);
    impl Reporter for Count {
        fn event(&mut self, _: &Event) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn tagged_camel_case_json() {
        let e = Event::CaseStarted {
            suite: "s".into(),
            case: "c".into(),
            kind: CaseKind::SteadyState,
            steps: 3,
        };
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"event": "caseStarted", "suite": "s", "case": "c", "kind": "steadyState", "steps": 3})
        );
        let e = Event::RunStarted {
            run_id: "r1".into(),
            suites: 2,
        };
        let text = serde_json::to_string(&e).unwrap();
        assert_eq!(text, r#"{"event":"runStarted","runId":"r1","suites":2}"#);
        assert_eq!(serde_json::from_str::<Event>(&text).unwrap(), e);
    }

    #[test]
    fn fan_out_reaches_every_reporter() {
        let (a, b) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let mut all: Vec<Box<dyn Reporter>> =
            vec![Box::new(Count(a.clone())), Box::new(Count(b.clone()))];
        let e = Event::Log {
            level: LogLevel::Info,
            message: "hi".into(),
        };
        all.event(&e);
        all.event(&e);
        assert_eq!(a.load(Ordering::SeqCst), 2);
        assert_eq!(b.load(Ordering::SeqCst), 2);
    }
}
