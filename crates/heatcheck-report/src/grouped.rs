//! Readable output for `--jobs N`: suites run concurrently, so their events
//! interleave. This reporter holds each suite's events and hands them to
//! the inner reporter as one block when the suite finishes; run-level
//! events and logs pass straight through.

use std::collections::HashMap;

use heatcheck_engine::event::{Event, Reporter};

pub struct GroupedReporter<R: Reporter> {
    inner: R,
    held: HashMap<String, Vec<Event>>,
}

impl<R: Reporter> GroupedReporter<R> {
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            held: HashMap::new(),
        }
    }
}

/// The suite an event belongs to, if any.
fn suite_of(e: &Event) -> Option<&str> {
    // What describes only the present moment is not worth holding.
    if e.is_live() {
        return None;
    }
    match e {
        Event::SuiteStarted { name, .. } => Some(name),
        Event::CaseStarted { suite, .. }
        | Event::StepStarted { suite, .. }
        | Event::StepFinished { suite, .. }
        | Event::StopConditionsArmed { suite, .. }
        | Event::StopConditionTripped { suite, .. }
        | Event::OperatorNote { suite, .. }
        | Event::ProbeWindow { suite, .. }
        | Event::AwaitingOperator { suite, .. }
        | Event::OperatorAnswered { suite, .. }
        | Event::AssertionFinished { suite, .. }
        | Event::CaseFinished { suite, .. }
        | Event::RestoreStarted { suite, .. }
        | Event::RestoreFinished { suite, .. } => Some(suite),
        Event::SuiteFinished { report } => Some(&report.name),
        Event::RunStarted { .. } | Event::RunFinished { .. } | Event::Log { .. } => None,
    }
}

impl<R: Reporter> Reporter for GroupedReporter<R> {
    fn event(&mut self, e: &Event) {
        let Some(suite) = suite_of(e) else {
            if matches!(e, Event::RunFinished { .. }) {
                // Whatever never finished (a cut-short run) still shows.
                for (_, events) in self.held.drain() {
                    for held in events {
                        self.inner.event(&held);
                    }
                }
            }
            self.inner.event(e);
            return;
        };
        let suite = suite.to_string();
        self.held.entry(suite.clone()).or_default().push(e.clone());
        if matches!(e, Event::SuiteFinished { .. }) {
            for held in self.held.remove(&suite).unwrap_or_default() {
                self.inner.event(&held);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use heatcheck_engine::fixture::sample_run;
    use std::sync::{Arc, Mutex};

    struct Record(Arc<Mutex<Vec<Event>>>);
    impl Reporter for Record {
        fn event(&mut self, e: &Event) {
            self.0.lock().unwrap().push(e.clone());
        }
    }

    #[test]
    fn interleaved_suites_come_out_as_blocks_in_finishing_order() {
        let run = sample_run();
        let (a, b) = (&run.suites[0], &run.suites[1]);
        let started = |s: &heatcheck_engine::model::SuiteReport| Event::SuiteStarted {
            name: s.name.clone(),
            file: s.file.clone(),
            scenarios: s.cases.len(),
        };
        let case = |s: &heatcheck_engine::model::SuiteReport| Event::CaseFinished {
            suite: s.name.clone(),
            report: s.cases[0].clone(),
        };
        let finished =
            |s: &heatcheck_engine::model::SuiteReport| Event::SuiteFinished { report: s.clone() };
        let log = Event::Log {
            level: heatcheck_engine::event::LogLevel::Info,
            message: "note".into(),
        };
        let seen = Arc::new(Mutex::new(Vec::new()));
        let mut r = GroupedReporter::new(Record(seen.clone()));
        for e in [
            started(a),
            started(b),
            case(b),
            log.clone(),
            case(a),
            finished(b),
            finished(a),
        ] {
            r.event(&e);
        }
        let got = seen.lock().unwrap().clone();
        assert_eq!(
            got,
            vec![
                log,
                started(b),
                case(b),
                finished(b),
                started(a),
                case(a),
                finished(a)
            ]
        );
    }
}
