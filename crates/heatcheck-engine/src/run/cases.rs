//! The cases of a suite: steady state, steps of fixtures and scenarios,
//! the checks after them, and the operator's say on a game day.

use super::*;

impl Engine {
    pub(super) async fn steady_case(
        &self,
        ctx: &SuiteContext,
        a: &heatcheck_format::Assertion,
    ) -> CaseOutcome {
        let started = Instant::now();
        let started_at = chrono::Utc::now();
        let name = a.display_name();
        let suite = ctx.suite.metadata.name.clone();
        self.emitter.emit(Event::CaseStarted {
            suite: suite.clone(),
            case: name.clone(),
            kind: CaseKind::SteadyState,
            steps: 0,
        });
        let (status, records, aborted) = match check_assertion(ctx, a, "").await {
            Ok(mut rec) => {
                rec.at_ms = Some(started.elapsed().as_millis() as u64);
                self.emitter.emit(Event::AssertionFinished {
                    suite: suite.clone(),
                    case: name.clone(),
                    record: rec.clone(),
                });
                let st = if rec.passed {
                    CaseStatus::Passed
                } else {
                    CaseStatus::Failed {
                        message: rec.message.clone(),
                        detail: rec.detail.clone().unwrap_or_default(),
                    }
                };
                (st, vec![rec], false)
            }
            Err(e) => (errored(&e), vec![], matches!(e, StepError::Aborted)),
        };
        let report = CaseReport {
            name,
            kind: CaseKind::SteadyState,
            description: None,
            status,
            duration: started.elapsed(),
            steps: vec![],
            assertions: records,
            metrics: vec![],
            remediation: vec![],
            origin: Some("suite".into()),
            probes: vec![],
            failed_attempts: vec![],
            started_at: Some(started_at),
            faults: vec![],
            notes: vec![],
        };
        self.emitter.emit(Event::CaseFinished {
            suite,
            report: report.clone(),
        });
        CaseOutcome { report, aborted }
    }

    /// Runs steps as one case (fixtures). Stops at the first failing step
    /// unless it has continueOnError.
    pub(super) async fn run_steps_case(
        &self,
        ctx: &SuiteContext,
        scope: &str,
        name: &str,
        kind: CaseKind,
        steps: &[Step],
    ) -> CaseOutcome {
        let started = Instant::now();
        let started_at = chrono::Utc::now();
        let suite = ctx.suite.metadata.name.clone();
        self.emitter.emit(Event::CaseStarted {
            suite: suite.clone(),
            case: name.to_string(),
            kind,
            steps: steps.len(),
        });
        let (records, error) = self
            .run_steps(ctx, scope, name, steps, started, None, &mut Vec::new())
            .await;
        let aborted = matches!(error, Some(StepError::Aborted));
        let status = match &error {
            None => CaseStatus::Passed,
            Some(e) => errored_with_log(e, &records),
        };
        let report = CaseReport {
            name: name.to_string(),
            kind,
            description: None,
            status,
            duration: started.elapsed(),
            steps: records,
            assertions: vec![],
            metrics: vec![],
            remediation: vec![],
            origin: Some("suite".into()),
            probes: vec![],
            failed_attempts: vec![],
            started_at: Some(started_at),
            faults: vec![],
            notes: vec![],
        };
        self.emitter.emit(Event::CaseFinished {
            suite,
            report: report.clone(),
        });
        CaseOutcome { report, aborted }
    }

    // The scenario-only parts (probes, operator notes) ride along as arguments.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn run_steps(
        &self,
        ctx: &SuiteContext,
        scope: &str,
        case: &str,
        steps: &[Step],
        case_started: Instant,
        mut probes: Option<&mut ScenarioProbes>,
        notes: &mut Vec<OperatorNote>,
    ) -> (Vec<StepRecord>, Option<StepError>) {
        let suite = ctx.suite.metadata.name.clone();
        let mut records = Vec::new();
        let mut error = None;
        for (i, step) in steps.iter().enumerate() {
            let t0 = Instant::now();
            let started_ms = case_started.elapsed().as_millis() as u64;
            // Game day: the operator decides on each scenario step first.
            let decision = match (
                &self.options.gate.0,
                probes.is_some() && self.options.interactive,
            ) {
                (Some(gate), true) if error.is_none() && !ctx.is_cancelled() => {
                    let name = step.display_name();
                    let prompt = StepPrompt {
                        suite: &suite,
                        case,
                        index: i,
                        total: steps.len(),
                        name: &name,
                    };
                    let (d, typed) = self.ask_operator(&suite, case, || gate.before_step(&prompt));
                    for n in typed {
                        self.note(&suite, case, case_started, notes, n);
                    }
                    d
                }
                _ => Decision::Run,
            };
            let (outcome, message) = if error.is_some() {
                (Outcome::Skipped, None)
            } else if ctx.is_cancelled() {
                error = Some(StepError::Aborted);
                (Outcome::Skipped, Some("aborted".into()))
            } else if decision == Decision::Skip {
                let n = OperatorNote::new(
                    NoteKind::Skip,
                    format!("skipped step {}: {}", i + 1, step.display_name()),
                );
                self.note(&suite, case, case_started, notes, n);
                (Outcome::Skipped, Some("skipped by the operator".into()))
            } else if decision == Decision::Abort {
                let n =
                    OperatorNote::new(NoteKind::Abort, format!("aborted before step {}", i + 1));
                self.note(&suite, case, case_started, notes, n);
                error = Some(StepError::Aborted);
                (Outcome::Skipped, Some("aborted by the operator".into()))
            } else {
                self.emitter.emit(Event::StepStarted {
                    suite: suite.clone(),
                    case: case.to_string(),
                    index: i,
                    total: steps.len(),
                    name: step.display_name(),
                });
                match run_step(ctx, scope, step, i).await {
                    Ok(note) => {
                        // duringFault probes start once the chaos is in place.
                        if let (Some(p), StepAction::Fault(f)) =
                            (probes.as_deref_mut(), &step.action)
                        {
                            p.fault_injected(f.duration.0);
                        }
                        (Outcome::Ok, (!note.is_empty()).then_some(note))
                    }
                    Err(StepError::Aborted) => {
                        error = Some(StepError::Aborted);
                        (Outcome::Failed, Some("aborted".into()))
                    }
                    Err(e) if step.continue_on_error => (Outcome::Ignored, Some(e.to_string())),
                    Err(e) => {
                        let msg = e.to_string();
                        error = Some(e);
                        (Outcome::Failed, Some(msg))
                    }
                }
            };
            let record = StepRecord {
                index: i,
                name: step.display_name(),
                started_ms,
                duration: t0.elapsed(),
                outcome,
                message,
            };
            self.emitter.emit(Event::StepFinished {
                suite: suite.clone(),
                case: case.to_string(),
                record: record.clone(),
            });
            records.push(record);
        }
        (records, error)
    }

    /// Blocks on the operator (off the async workers); live views hear
    /// that the run waits, and when it goes on.
    pub(super) fn ask_operator<T>(&self, suite: &str, case: &str, ask: impl FnOnce() -> T) -> T {
        self.emitter.emit(Event::AwaitingOperator {
            suite: suite.to_string(),
            case: case.to_string(),
        });
        let answer = tokio::task::block_in_place(ask);
        self.emitter.emit(Event::OperatorAnswered {
            suite: suite.to_string(),
            case: case.to_string(),
        });
        answer
    }

    /// Keeps a game-day note for the case report and tells live views.
    pub(super) fn note(
        &self,
        suite: &str,
        case: &str,
        case_started: Instant,
        notes: &mut Vec<OperatorNote>,
        note: OperatorNote,
    ) {
        self.emitter.emit(Event::OperatorNote {
            suite: suite.to_string(),
            case: case.to_string(),
            note: note.to_game_note(case_started),
        });
        notes.push(note);
    }

    /// Checks assertions in order, recording each; true when aborted.
    pub(super) async fn check_all(
        &self,
        ctx: &SuiteContext,
        case: &str,
        list: &[heatcheck_format::Assertion],
        prefix: &str,
        case_started: Instant,
        out: &mut Vec<AssertionRecord>,
    ) -> bool {
        for a in list {
            match check_assertion(ctx, a, prefix).await {
                Ok(mut rec) => {
                    rec.at_ms = Some(case_started.elapsed().as_millis() as u64);
                    self.emitter.emit(Event::AssertionFinished {
                        suite: ctx.suite.metadata.name.clone(),
                        case: case.to_string(),
                        record: rec.clone(),
                    });
                    out.push(rec);
                }
                Err(_) => return true,
            }
        }
        false
    }
}
