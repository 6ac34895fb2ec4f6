//! A representative run shared by the reporter tests: passes, a failure with
//! hostile detail text, a skip, an unreported suite error, and a dirty restore.

use std::time::Duration;

use chrono::{TimeZone, Utc};

use crate::model::*;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn step(index: usize, name: &str, started_ms: u64, dur: u64, outcome: Outcome) -> StepRecord {
    StepRecord {
        index,
        name: name.into(),
        started_ms,
        duration: ms(dur),
        outcome,
        message: None,
    }
}

/// A probe over the sample scenario: healthy, then failing while v2 is gone.
fn sample_probe() -> ProbeStats {
    let bucket = |sec: u64, count: u64, ok: u64, p50: u64, p99: u64| ProbeBucket {
        start_ms: sec * 1000,
        count,
        ok,
        p50: ms(p50),
        p99: ms(p99),
        max: ms(p99 + 5),
    };
    ProbeStats {
        name: "shop availability".into(),
        mode: "continuous".into(),
        every: ms(250),
        started_ms: 0,
        count: 24,
        failures: 3,
        success_rate: 0.875,
        p50: ms(4),
        p95: ms(900),
        p99: ms(1800),
        max: ms(1805),
        send_lateness_p99: ms(1),
        outages: vec![OutageWindow {
            start_ms: 2000,
            end_ms: 2750,
            duration: ms(750),
            failures: 3,
        }],
        buckets: vec![
            bucket(0, 4, 4, 3, 5),
            bucket(1, 4, 4, 4, 6),
            bucket(2, 4, 1, 900, 1800),
            bucket(3, 4, 4, 5, 9),
            bucket(4, 4, 4, 4, 7),
            bucket(5, 4, 4, 3, 6),
        ],
        failed_samples: vec![
            FailedSample {
                at_ms: 2000,
                latency: ms(1800),
                not_sent: false,
            },
            FailedSample {
                at_ms: 2250,
                latency: ms(1550),
                not_sent: false,
            },
            FailedSample {
                at_ms: 2500,
                latency: ms(0),
                not_sent: true,
            },
        ],
        failed_samples_dropped: 0,
    }
}

pub fn sample_run() -> RunReport {
    let fixtures = CaseReport {
        name: "fixtures".into(),
        kind: CaseKind::Fixtures,
        description: None,
        status: CaseStatus::Passed,
        duration: ms(450),
        steps: vec![step(0, "apply manifests/shop.yaml", 0, 420, Outcome::Ok)],
        assertions: vec![],
        metrics: vec![],
        remediation: vec![],
        origin: None,
        probes: vec![],
        failed_attempts: vec![],
        started_at: None,
        faults: vec![],
        notes: vec![],
    };
    let steady = CaseReport {
        name: "shop served by v1".into(),
        kind: CaseKind::SteadyState,
        description: Some("GET /shop answers 200 from v1".into()),
        status: CaseStatus::Passed,
        duration: ms(1200),
        steps: vec![],
        assertions: vec![AssertionRecord {
            name: "GET http://shop/ is 200".into(),
            passed: true,
            message: "expected 200, got 200".into(),
            detail: None,
            attempts: 2,
            duration: ms(1150),
            at_ms: Some(1150),
        }],
        metrics: vec![],
        remediation: vec![],
        origin: Some("suite".into()),
        probes: vec![],
        failed_attempts: vec![],
        started_at: None,
        faults: vec![],
        notes: vec![],
    };
    let detail = "request GET http://shop/ -> 503\n\
        body: <html>\"Service Unavailable\" & 'retry'</html>\n\
        log: \x1b[31mupstream connect error\x1b[0m\x07 reset\n\
        raw: ]]> end";
    let mut wait = step(
        2,
        "wait HTTPRoute shop/v2-canary Accepted",
        900,
        2000,
        Outcome::Failed,
    );
    wait.message = Some("timed out after 2s".into());
    let mut ignored = step(
        1,
        "delete Pod shop/backend-v2-0",
        400,
        300,
        Outcome::Ignored,
    );
    ignored.message = Some("pods \"backend-v2-0\" not found".into());
    let scenario = CaseReport {
        name: "v2 backend killed mid-rollout".into(),
        kind: CaseKind::Scenario,
        description: Some("Kill v2 while 10% of traffic goes to it".into()),
        status: CaseStatus::Failed {
            message: "route falls back to v1: expected 200, got 503 (12 of 40 requests)".into(),
            detail: detail.into(),
        },
        duration: ms(6300),
        steps: vec![
            step(0, "apply manifests/route-canary.yaml", 0, 380, Outcome::Ok),
            ignored,
            wait,
            step(
                3,
                "scale Deployment shop/backend-v1 to 3",
                2900,
                0,
                Outcome::Skipped,
            ),
        ],
        assertions: vec![AssertionRecord {
            name: "route falls back to v1".into(),
            passed: false,
            message: "expected 200, got 503 (12 of 40 requests)".into(),
            detail: Some(detail.into()),
            attempts: 40,
            duration: ms(3300),
            at_ms: Some(6200),
        }],
        metrics: vec!["error rate 30.0% (12/40)".into(), "p99 latency 1.8s".into()],
        remediation: vec!["Add a retry policy with `retryOn: 5xx` to the HTTPRoute".into()],
        origin: Some("lock".into()),
        probes: vec![sample_probe()],
        started_at: Some(Utc.with_ymd_and_hms(2026, 11, 3, 8, 0, 2).unwrap()),
        faults: vec![FaultSpan {
            step: 1,
            name: "podKill on app=backend-v2 (100%)".into(),
            injected_ms: 700,
            recovered_ms: Some(6100),
        }],
        notes: vec![GameNote {
            at_ms: 2500,
            kind: NoteKind::Note,
            text: "dashboards show 503s from v2 <b>only</b>".into(),
        }],
        failed_attempts: vec![],
    };
    let skipped = CaseReport {
        name: "dns outage".into(),
        kind: CaseKind::Scenario,
        description: None,
        status: CaseStatus::Skipped {
            reason: "guard: kind NetworkPolicy is not allowed".into(),
        },
        duration: Duration::ZERO,
        steps: vec![],
        assertions: vec![],
        metrics: vec![],
        remediation: vec![],
        origin: Some("lock".into()),
        probes: vec![],
        failed_attempts: vec![],
        started_at: None,
        faults: vec![],
        notes: vec![],
    };
    let payments_fixtures = CaseReport {
        duration: ms(300),
        steps: vec![step(
            0,
            "apply manifests/payments.yaml",
            0,
            280,
            Outcome::Ok,
        )],
        ..fixtures.clone()
    };
    RunReport {
        environment: Some(RunEnvironment {
            heatcheck_version: "0.1.0".into(),
            cluster_server: "https://127.0.0.1:6443".into(),
            context: Some("staging".into()),
            suites: vec![SuiteSource {
                name: "shop-canary".into(),
                file: "suites/shop.yaml".into(),
                sha256: "ab".repeat(32),
                lock_sha256: None,
            }],
        }),
        run_id: "run-20261103-0800".into(),
        started_at: Utc.with_ymd_and_hms(2026, 11, 3, 8, 0, 0).unwrap(),
        duration: ms(12_500),
        suites: vec![
            SuiteReport {
                name: "shop-canary".into(),
                file: "suites/shop.yaml".into(),
                cases: vec![fixtures, steady, scenario, skipped],
                duration: ms(10_000),
                error: None,
            },
            SuiteReport {
                name: "payments".into(),
                file: "suites/payments.yaml".into(),
                cases: vec![payments_fixtures],
                duration: ms(2_500),
                error: Some(
                    "scenario generation failed: response did not match the schema after 3 repairs"
                        .into(),
                ),
            },
        ],
        exit_code: 1,
        restore: RestoreSummary {
            restored: vec![
                "deleted HTTPRoute shop/v2-canary".into(),
                "scaled Deployment shop/backend-v2 back to 2 replicas".into(),
            ],
            left_behind: vec!["NetworkPolicy shop/deny-v2".into()],
            errors: vec!["delete NetworkPolicy shop/deny-v2: 403 Forbidden".into()],
            ..Default::default()
        },
    }
}

/// The events an engine would emit for `sample_run`, in order.
pub fn sample_events() -> Vec<crate::event::Event> {
    use crate::event::{Event, LogLevel};
    let report = sample_run();
    let mut events = vec![Event::RunStarted {
        run_id: report.run_id.clone(),
        suites: report.suites.len(),
    }];
    for (i, suite) in report.suites.iter().enumerate() {
        events.push(Event::SuiteStarted {
            name: suite.name.clone(),
            file: suite.file.clone(),
            scenarios: suite
                .cases
                .iter()
                .filter(|c| c.kind == CaseKind::Scenario)
                .count(),
        });
        for case in &suite.cases {
            let (s, c) = (suite.name.clone(), case.name.clone());
            if !matches!(case.status, CaseStatus::Skipped { .. }) {
                events.push(Event::CaseStarted {
                    suite: s.clone(),
                    case: c.clone(),
                    kind: case.kind,
                    steps: case.steps.len(),
                });
            }
            for record in &case.steps {
                events.push(Event::StepFinished {
                    suite: s.clone(),
                    case: c.clone(),
                    record: record.clone(),
                });
            }
            for record in &case.assertions {
                events.push(Event::AssertionFinished {
                    suite: s.clone(),
                    case: c.clone(),
                    record: record.clone(),
                });
            }
            events.push(Event::CaseFinished {
                suite: s,
                report: case.clone(),
            });
        }
        if i == 0 {
            events.push(Event::RestoreStarted {
                suite: suite.name.clone(),
                entries: 3,
            });
            events.push(Event::RestoreFinished {
                suite: suite.name.clone(),
                summary: report.restore.clone(),
            });
        } else {
            events.push(Event::Log {
                level: LogLevel::Warn,
                message: "LLM answer needed 3 repairs".into(),
            });
            events.push(Event::Log {
                level: LogLevel::Debug,
                message: "not shown".into(),
            });
        }
        events.push(Event::SuiteFinished {
            report: suite.clone(),
        });
    }
    events.push(Event::RunFinished { report });
    events
}
