//! One scenario: its steps under probes and stop conditions, its checks,
//! its restore and the route precedence it may have changed.

use super::*;

impl Engine {
    pub(super) async fn run_scenario(
        &self,
        ctx: &SuiteContext,
        sc: &Scenario,
        origin: &str,
    ) -> (CaseOutcome, RestoreOutcome) {
        let started = Instant::now();
        let started_at = chrono::Utc::now();
        let suite = ctx.suite.metadata.name.clone();
        let scope = format!("scenario:{suite}/{}", sc.name);
        self.emitter.emit(Event::CaseStarted {
            suite: suite.clone(),
            case: sc.name.clone(),
            kind: CaseKind::Scenario,
            steps: sc.steps.len(),
        });
        // Probes and stop conditions (stop.rs): the scenario runs with its
        // own cancellation, which a tripped condition fires.
        let mut probes = ScenarioProbes::new(ctx, &sc.probes, started);
        let live_windows = (!probes.is_empty())
            .then(|| self.probe_windows(&suite, &sc.name, probes.watch(), started));
        let on_trip = {
            let (emitter, suite, case) = (self.emitter.clone(), suite.clone(), sc.name.clone());
            move |reason: &str| {
                emitter.emit(Event::StopConditionTripped {
                    suite: suite.clone(),
                    case: case.clone(),
                    reason: reason.to_string(),
                })
            }
        };
        self.emitter.emit(Event::StopConditionsArmed {
            suite: suite.clone(),
            case: sc.name.clone(),
            conditions: crate::stop::armed(ctx),
        });
        let stop = StopWatch::start(ctx, probes.live(), started, on_trip);
        let outer = ctx;
        let ctx = stop.context();
        // Who wins each conflicting route match now, to compare after restore.
        let routes_before = route_conflicts(outer).await;
        probes.run_before().await;
        probes.start_continuous();
        let mut operator = Vec::new();
        let (steps, step_error) = self
            .run_steps(
                ctx,
                &scope,
                &sc.name,
                &sc.steps,
                started,
                Some(&mut probes),
                &mut operator,
            )
            .await;
        let mut aborted = matches!(step_error, Some(StepError::Aborted));
        let mut assertions: Vec<AssertionRecord> = Vec::new();
        if step_error.is_none() {
            aborted |= self
                .check_all(ctx, &sc.name, &sc.assertions, "", started, &mut assertions)
                .await;
        }
        if !aborted && !ctx.is_cancelled() {
            probes.run_after().await;
        }
        // --pause-on-failure: the team inspects the cluster before it is put back.
        let failed = step_error
            .as_ref()
            .is_some_and(|e| !matches!(e, StepError::Aborted))
            || assertions.iter().any(|a| !a.passed);
        if let (Some(gate), true, false) = (
            &self.options.gate.0,
            self.options.pause_on_failure && failed,
            aborted,
        ) {
            let message = assertions
                .iter()
                .find(|a| !a.passed)
                .map(|a| format!("{}: {}", a.name, a.message))
                .or_else(|| step_error.as_ref().map(|e| e.to_string()))
                .unwrap_or_default();
            let paused =
                OperatorNote::new(NoteKind::Pause, format!("paused before restore: {message}"));
            self.note(&suite, &sc.name, started, &mut operator, paused);
            let typed = self.ask_operator(&suite, &sc.name, || {
                gate.on_failure(&suite, &sc.name, &message)
            });
            for n in typed {
                self.note(&suite, &sc.name, started, &mut operator, n);
            }
        }
        probes.stop();
        let tripped = stop.finish();
        aborted |= tripped.is_some();
        let ctx = outer;
        // Restore this scenario's changes, then the steady state must hold again.
        let mut restore = RestoreOutcome::default();
        if !self.options.no_restore {
            let pending = ctx.journal.pending(&scope);
            if !pending.is_empty() {
                self.emitter.emit(Event::RestoreStarted {
                    suite: suite.clone(),
                    entries: pending.len(),
                });
                restore = self.restore(&ctx.journal, &scope).await;
                self.restore_honesty(ctx, &sc.name, routes_before.as_deref(), &mut restore)
                    .await;
                self.emitter.emit(Event::RestoreFinished {
                    suite: suite.clone(),
                    summary: summary_of(&restore),
                });
            }
        }
        // A fault ends when its duration runs out or the restore removes it.
        let restored_ms = (!self.options.no_restore).then(|| started.elapsed().as_millis() as u64);
        let faults = fault_spans(&sc.steps, &steps, restored_ms);
        // Outstanding probe requests finished while restore ran.
        let (probe_stats, mut probe_records) = probes.finish().await;
        drop(live_windows);
        let probes_done = started.elapsed().as_millis() as u64;
        for rec in &mut probe_records {
            rec.at_ms = Some(probes_done);
        }
        for rec in &probe_records {
            self.emitter.emit(Event::AssertionFinished {
                suite: suite.clone(),
                case: sc.name.clone(),
                record: rec.clone(),
            });
        }
        assertions.extend(probe_records);
        if !self.options.no_restore && !aborted && restore.ok() {
            let steady = &ctx.suite.spec.steady_state;
            aborted |= self
                .check_all(
                    ctx,
                    &sc.name,
                    steady,
                    "steady state after: ",
                    started,
                    &mut assertions,
                )
                .await;
        }
        let status = if let Some(reason) = &tripped {
            CaseStatus::Errored {
                message: format!("{reason}; changes were restored"),
                detail: format!("{reason}\n{}", step_log(&steps)),
            }
        } else if aborted {
            CaseStatus::Errored {
                message: "aborted; changes were restored".into(),
                detail: step_log(&steps),
            }
        } else if let Some(e) = &step_error {
            errored_with_log(e, &steps)
        } else if !restore.ok() {
            CaseStatus::Errored {
                message: format!(
                    "restore failed: {}",
                    restore.errors.first().cloned().unwrap_or_default()
                ),
                detail: restore.errors.join("\n"),
            }
        } else if let Some(first) = assertions.iter().find(|a| !a.passed) {
            let failures: Vec<String> = assertions
                .iter()
                .filter(|a| !a.passed)
                .map(|a| {
                    format!(
                        "{}: {}\n{}",
                        a.name,
                        a.message,
                        a.detail.clone().unwrap_or_default()
                    )
                })
                .collect();
            let n = assertions.iter().filter(|a| !a.passed).count();
            let message = if n > 1 {
                format!("{}: {} (and {} more)", first.name, first.message, n - 1)
            } else {
                format!("{}: {}", first.name, first.message)
            };
            CaseStatus::Failed {
                message,
                detail: failures.join("\n\n"),
            }
        } else {
            CaseStatus::Passed
        };
        let mut report = scenario_report(sc, status, started.elapsed(), steps, assertions);
        report.origin = Some(origin.into());
        report.probes = probe_stats;
        // CaseFinished is the caller's: after any retries, with every attempt.
        report.started_at = Some(started_at);
        report.faults = faults;
        report.notes = operator.iter().map(|n| n.to_game_note(started)).collect();
        (CaseOutcome { report, aborted }, restore)
    }
}

/// How often live views hear how the probes are doing.
const PROBE_WINDOW_EVERY: Duration = Duration::from_millis(500);

/// Aborts the task when the scenario is done with it.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Engine {
    /// `probeWindow` events while the scenario's probes run: every
    /// [`PROBE_WINDOW_EVERY`] when something changed.
    fn probe_windows(
        &self,
        suite: &str,
        case: &str,
        watch: crate::probe::continuous::ProbeWatch,
        started: Instant,
    ) -> AbortOnDrop {
        let (emitter, suite, case) = (self.emitter.clone(), suite.to_string(), case.to_string());
        AbortOnDrop(tokio::spawn(async move {
            let mut tick = tokio::time::interval(PROBE_WINDOW_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            let mut last = Vec::new();
            loop {
                tick.tick().await;
                let probes = watch.snapshot();
                if probes.is_empty() || probes == last {
                    continue;
                }
                last = probes.clone();
                emitter.emit(Event::ProbeWindow {
                    suite: suite.clone(),
                    case: case.clone(),
                    at_ms: started.elapsed().as_millis() as u64,
                    probes,
                });
            }
        }))
    }
}

/// The chaos of each fault step that ran: injected when the step finished
/// (it waits for the injection), recovered at the earlier of its duration's
/// end and the scenario's restore.
fn fault_spans(steps: &[Step], records: &[StepRecord], restored_ms: Option<u64>) -> Vec<FaultSpan> {
    records
        .iter()
        .filter(|r| r.outcome == Outcome::Ok)
        .filter_map(|r| {
            let StepAction::Fault(f) = &steps.get(r.index)?.action else {
                return None;
            };
            let injected_ms = r.started_ms + r.duration.as_millis() as u64;
            let ends = injected_ms + f.duration.0.as_millis() as u64;
            let mut name = format!(
                "{} on {} ({}%",
                f.fault_type.as_str(),
                f.selector,
                f.percent
            );
            if let Some(l) = f.latency {
                name.push_str(&format!(", {}", heatcheck_format::format_duration(l.0)));
            }
            name.push(')');
            Some(FaultSpan {
                step: r.index,
                name,
                injected_ms,
                // Without a restore (--no-restore) the chaos still ends with its duration.
                recovered_ms: Some(restored_ms.map_or(ends, |r| r.min(ends)).max(injected_ms)),
            })
        })
        .collect()
}
