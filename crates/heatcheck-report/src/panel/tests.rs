use super::*;
use crate::human::{HumanOptions, HumanReporter};
use heatcheck_engine::fixture::sample_run;
use heatcheck_engine::model::{AssertionRecord, CaseReport, OutageWindow, StepRecord};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

const SUITE: &str = "scale-to-zero";
const CASE: &str = "zero and back recovers by itself";

/// A clock the test moves.
#[derive(Clone, Default)]
struct FakeClock(Arc<Mutex<Duration>>);

impl FakeClock {
    fn set(&self, d: Duration) {
        *self.0.lock().unwrap() = d;
    }
}

impl Clock for FakeClock {
    fn now(&self) -> Duration {
        *self.0.lock().unwrap()
    }
}

fn probe(rate: Option<f64>, outage: Option<(u64, u64, u64)>, sent: u64, failed: u64) -> ProbeLive {
    ProbeLive {
        name: "shop availability".into(),
        mode: "continuous".into(),
        count: sent,
        failures: failed,
        window: Duration::from_secs(10),
        window_count: if rate.is_some() { 200 } else { 0 },
        window_success_rate: rate,
        window_p50: ms(12),
        window_p99: ms(1020),
        outage: outage.map(|(start_ms, dur, failures)| OutageWindow {
            start_ms,
            end_ms: start_ms + dur,
            duration: ms(dur),
            failures,
        }),
    }
}

fn step(index: usize, name: &str, started_ms: u64, dur: u64) -> StepRecord {
    StepRecord {
        index,
        name: name.into(),
        started_ms,
        duration: ms(dur),
        outcome: Outcome::Ok,
        message: None,
    }
}

fn check(name: &str, passed: bool) -> AssertionRecord {
    AssertionRecord {
        name: name.into(),
        passed,
        message: if passed {
            "ok".into()
        } else {
            "expected 200, got 503".into()
        },
        detail: None,
        attempts: 1,
        duration: ms(300),
        at_ms: Some(1000),
    }
}

fn finished(name: &str, kind: CaseKind, status: CaseStatus) -> CaseReport {
    let mut report = sample_run().suites[0].cases[0].clone();
    report.name = name.into();
    report.kind = kind;
    report.status = status;
    report.steps.clear();
    report.assertions.clear();
    report.probes.clear();
    report
}

/// A game day on the scale-to-zero suite: each item is (clock in ms,
/// event). The frames the tests look at are taken at marked points.
fn story() -> Vec<(u64, Event)> {
    let (s, c) = (SUITE.to_string(), CASE.to_string());
    vec![
        (
            0,
            Event::RunStarted {
                run_id: "20261202-000000-abcdef".into(),
                suites: 2,
            },
        ),
        (
            10,
            Event::SuiteStarted {
                name: s.clone(),
                file: "suites/scale-to-zero/suite.yaml".into(),
                scenarios: 2,
            },
        ),
        (
            20,
            Event::CaseStarted {
                suite: s.clone(),
                case: "shop served".into(),
                kind: CaseKind::SteadyState,
                steps: 0,
            },
        ),
        (
            900,
            Event::AssertionFinished {
                suite: s.clone(),
                case: "shop served".into(),
                record: check("shop served", true),
            },
        ),
        (
            900,
            Event::CaseFinished {
                suite: s.clone(),
                report: finished("shop served", CaseKind::SteadyState, CaseStatus::Passed),
            },
        ),
        (
            1000,
            Event::CaseStarted {
                suite: s.clone(),
                case: c.clone(),
                kind: CaseKind::Scenario,
                steps: 4,
            },
        ),
        (
            1000,
            Event::StopConditionsArmed {
                suite: s.clone(),
                case: c.clone(),
                conditions: vec![
                    "probe shop availability success rate < 0.50 over 5s".into(),
                    "maxDuration 2m".into(),
                ],
            },
        ),
        (
            1000,
            Event::StepStarted {
                suite: s.clone(),
                case: c.clone(),
                index: 0,
                total: 4,
                name: "scale Deployment infra-backend-v1 to 0".into(),
            },
        ),
        (
            3500,
            Event::ProbeWindow {
                suite: s.clone(),
                case: c.clone(),
                at_ms: 2500,
                probes: vec![probe(Some(1.0), None, 50, 0)],
            },
        ),
        // frame "running": step 1/4 for 2.5s of a 3.1s scenario... (taken at 4100)
        (
            4200,
            Event::StepFinished {
                suite: s.clone(),
                case: c.clone(),
                record: step(0, "scale Deployment infra-backend-v1 to 0", 0, 3200),
            },
        ),
        (
            4200,
            Event::StepStarted {
                suite: s.clone(),
                case: c.clone(),
                index: 1,
                total: 4,
                name: "wait Pod app=infra-backend-v1 gone".into(),
            },
        ),
        (
            9000,
            Event::ProbeWindow {
                suite: s.clone(),
                case: c.clone(),
                at_ms: 8000,
                probes: vec![probe(Some(0.6135), Some((4400, 3600, 72)), 160, 72)],
            },
        ),
        (
            9100,
            Event::OperatorNote {
                suite: s.clone(),
                case: c.clone(),
                note: GameNote {
                    at_ms: 8100,
                    kind: NoteKind::Note,
                    text: "grafana: 503s at the edge, \x1b[31mas expected\x1b[0m".into(),
                },
            },
        ),
        // frame "outage" (taken at 9500)
        (
            9600,
            Event::StopConditionTripped {
                suite: s.clone(),
                case: c.clone(),
                reason: "probe shop availability success rate 0.42 < 0.50 over 5s".into(),
            },
        ),
        (
            9700,
            Event::RestoreStarted {
                suite: s.clone(),
                entries: 1,
            },
        ),
        // frame "stopped" (taken at 10200)
    ]
}

fn state_at(until_ms: u64) -> PanelState {
    let mut st = PanelState::default();
    for (t, e) in story().into_iter().filter(|(t, _)| *t <= until_ms) {
        st.apply(&e, ms(t));
    }
    st
}

const PLAIN: bool = false;

#[test]
fn frames_of_a_game_day_snapshot() {
    let mut out = String::new();
    for (label, at, width) in [
        ("running, 80 columns", 4100, 80),
        ("outage, 80 columns", 9500, 80),
        ("stop condition fired, restoring, 80 columns", 10_200, 80),
        ("stop condition fired, restoring, 48 columns", 10_200, 48),
    ] {
        out.push_str(&format!("--- {label} (t={at}ms)\n"));
        for line in state_at(at).frame(ms(at), width, 24, PLAIN) {
            assert!(console::measure_text_width(&line) < width, "{line}");
            out.push_str(&line);
            out.push('\n');
        }
    }
    insta::assert_snapshot!("panel_frames", out);
}

#[test]
fn frame_shows_what_the_operator_needs() {
    let frame = state_at(9500).frame(ms(9500), 200, 40, PLAIN).join("\n");
    for want in [
        "heatcheck live 9s · suite 1/2 scale-to-zero · 1 passed",
        "▶ zero and back recovers by itself · 8s",
        "step 2/4 wait Pod app=infra-backend-v1 gone · 5s",
        "probe shop availability 61.3% ok · p50 12ms p99 1.0s (10s) · 72/160 failed\n    OUTAGE 3.6s since +4.4s (72 failed in a row)",
        "stop if: probe shop availability success rate < 0.50 over 5s · maxDuration 2m",
        "note +8.1s grafana: 503s at the edge, as expected",
    ] {
        assert!(frame.contains(want), "{want:?} not in\n{frame}");
    }
    // Untrusted text never brings its own escapes.
    assert!(!frame.contains('\x1b'), "{frame:?}");
    let stopped = state_at(10_200)
        .frame(ms(10_200), 200, 40, PLAIN)
        .join("\n");
    assert!(stopped.contains("STOPPED: probe shop availability success rate 0.42 < 0.50 over 5s"));
    assert!(stopped.contains("↺ restoring 1 change · 0s"));
    assert!(!stopped.contains("stop if:"));
}

#[test]
fn frames_fit_short_terminals_and_colour_only_on_request() {
    let st = state_at(9500);
    let short = st.frame(ms(9500), 80, 5, PLAIN);
    assert_eq!(short.len(), 4);
    assert!(short[3].contains("4 more line(s)"), "{short:?}");
    assert_eq!(st.frame(ms(9500), 80, 2, PLAIN).len(), 1);
    let colour = st.frame(ms(9500), 200, 40, true).join("\n");
    assert!(
        colour.contains("\x1b[1;31mOUTAGE 3.6s\x1b[0m"),
        "{colour:?}"
    );
    assert!(colour.contains("\x1b[31m61.3% ok\x1b[0m"));
    // Nothing before the run starts; nothing once it finished.
    assert!(PanelState::default().frame(ms(0), 80, 24, PLAIN).is_empty());
    let mut done = state_at(10_200);
    done.apply(
        &Event::RunFinished {
            report: sample_run(),
        },
        ms(11_000),
    );
    assert!(done.frame(ms(11_000), 80, 24, PLAIN).is_empty());
}

#[test]
fn rates_clocks_and_rows() {
    assert_eq!(percent(1.0), "100%");
    assert_eq!(percent(0.9999), "99.9%");
    assert_eq!(percent(0.0), "0.0%");
    assert_eq!(elapsed(ms(59_999)), "59s");
    assert_eq!(elapsed(ms(65_000)), "1m05s");
    assert_eq!(elapsed(Duration::from_secs(3723)), "1h02m03s");
    // A frame drawn at 80 columns takes more rows once the terminal is narrower.
    let lines = vec!["x".repeat(79), String::new(), "y".repeat(30)];
    assert_eq!(rows(&lines, 80), 3);
    assert_eq!(rows(&lines, 40), 4);
    assert_eq!(rows(&[], 40), 0);
}

/// What a terminal shows: a shared sink fed to a vt100 emulator.
#[derive(Clone, Default)]
struct Tty(Arc<Mutex<Vec<u8>>>);

impl Write for Tty {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Tty {
    fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }
    fn bytes(&self) -> Vec<u8> {
        self.0.lock().unwrap().clone()
    }
    /// The screen's rows, trailing blanks trimmed; the cursor shown?
    fn screen(&self, cols: u16) -> (Vec<String>, bool) {
        let size = |n: u16| std::num::NonZeroU16::new(n).unwrap();
        let mut term = vt100::Parser::new(size(30), size(cols), 0);
        // The tty turns \n into \r\n (onlcr).
        let cooked: Vec<u8> = self
            .bytes()
            .iter()
            .flat_map(|&b| {
                if b == b'\n' {
                    vec![b'\r', b'\n']
                } else {
                    vec![b]
                }
            })
            .collect();
        term.process(&cooked);
        let screen = term.screen();
        let mut rows: Vec<String> = screen
            .rows(0, cols)
            .map(|r| r.trim_end().to_string())
            .collect();
        while rows.last().is_some_and(|r| r.is_empty()) {
            rows.pop();
        }
        (rows, !screen.hide_cursor())
    }
}

fn panel(tty: &Tty, clock: &FakeClock, color: bool) -> LivePanel {
    let options = HumanOptions {
        color,
        progress: false,
    };
    LivePanel::new(
        Box::new(tty.clone()),
        |out| Box::new(HumanReporter::new(out, options)),
        color,
        Box::new(|| (80, 24)),
        Box::new(clock.clone()),
    )
}

fn play(p: &mut LivePanel, clock: &FakeClock, until_ms: u64) {
    for (t, e) in story().into_iter().filter(|(t, _)| *t <= until_ms) {
        clock.set(ms(t));
        p.event(&e);
    }
}

#[test]
fn lines_scroll_above_a_panel_redrawn_in_place() {
    let (tty, clock) = (Tty::default(), FakeClock::default());
    let mut p = panel(&tty, &clock, false);
    play(&mut p, &clock, 9500);
    clock.set(ms(9500));
    p.tick();
    let (rows, cursor) = tty.screen(80);
    let text = rows.join("\n");
    // The line reporter's output, once each, above the panel.
    assert_eq!(
        text.matches("heatcheck run 20261202-000000-abcdef").count(),
        1
    );
    assert_eq!(text.matches("✓ steady state: shop served").count(), 1);
    assert_eq!(
        text.matches("ok   scale Deployment infra-backend-v1 to 0")
            .count(),
        1
    );
    // One panel, at the bottom, current.
    assert_eq!(text.matches("heatcheck live").count(), 1, "{text}");
    let top = rows
        .iter()
        .position(|r| r.starts_with("heatcheck live"))
        .unwrap();
    assert!(
        rows[top..].iter().any(|r| r.contains("OUTAGE 3.6s")),
        "{text}"
    );
    assert!(
        rows[..top].iter().all(|r| !r.contains("probe shop")),
        "{text}"
    );
    assert!(cursor, "the cursor is shown between frames");
    let bytes = String::from_utf8(tty.bytes()).unwrap();
    for colour in [
        "\x1b[1m",
        "\x1b[2m",
        "\x1b[31m",
        "\x1b[32m",
        "\x1b[33m",
        "\x1b[1;31m",
    ] {
        assert!(
            !bytes.contains(colour),
            "no colours without them: {colour:?}"
        );
    }
    assert!(bytes.contains("\x1b[J"), "still redrawn in place");
}

#[test]
fn redraws_are_throttled_and_skipped_when_nothing_changed() {
    let (tty, clock) = (Tty::default(), FakeClock::default());
    let mut p = panel(&tty, &clock, false);
    play(&mut p, &clock, 3500);
    let drawn = tty.len();
    // 100ms after the last draw: the event is taken in, not drawn.
    clock.set(ms(3600));
    p.event(&Event::ProbeWindow {
        suite: SUITE.into(),
        case: CASE.into(),
        at_ms: 2600,
        probes: vec![probe(Some(0.99), None, 52, 1)],
    });
    assert_eq!(tty.len(), drawn);
    // The tick after REDRAW_EVERY draws it.
    clock.set(ms(3800));
    p.tick();
    assert!(tty.len() > drawn);
    let bytes = String::from_utf8(tty.bytes()[drawn..].to_vec()).unwrap();
    assert!(bytes.contains("99.0% ok"), "{bytes:?}");
    // Same seconds on every clock, same numbers: nothing to draw.
    clock.set(ms(4100));
    p.tick();
    let drawn = tty.len();
    clock.set(ms(4400));
    p.tick();
    assert_eq!(tty.len(), drawn);
}

#[test]
fn a_prompt_freezes_the_panel_until_answered() {
    let (tty, clock) = (Tty::default(), FakeClock::default());
    let mut p = panel(&tty, &clock, true);
    play(&mut p, &clock, 3500);
    clock.set(ms(4000));
    p.event(&Event::AwaitingOperator {
        suite: SUITE.into(),
        case: CASE.into(),
    });
    // The gate writes its prompt (stderr, same terminal) and the operator types.
    let mut term = tty.clone();
    write!(term, "\n== {SUITE} / {CASE}: step 2/4: wait\n[Enter] run  [s] skip  [p] pause  [n] note  [a] abort > n").unwrap();
    let before = tty.len();
    for t in [4300, 4600, 9000] {
        clock.set(ms(t));
        p.tick();
        p.event(&Event::ProbeWindow {
            suite: SUITE.into(),
            case: CASE.into(),
            at_ms: t,
            probes: vec![probe(Some(0.5), Some((4400, 600, 12)), 100, 12)],
        });
    }
    assert_eq!(tty.len(), before, "nothing drawn while the prompt waits");
    let (rows, _) = tty.screen(80);
    assert!(rows.last().unwrap().ends_with("[a] abort > n"), "{rows:#?}");
    let frozen = rows
        .iter()
        .rposition(|r| r.contains("waiting for the operator"))
        .unwrap();
    assert!(frozen < rows.len() - 2);
    // Answered: the next frame comes below the prompt, which stays.
    write!(
        term,
        "\nnote> seen\n[Enter] run  [s] skip  [p] pause  [n] note  [a] abort > \n"
    )
    .unwrap();
    clock.set(ms(9100));
    p.event(&Event::OperatorAnswered {
        suite: SUITE.into(),
        case: CASE.into(),
    });
    p.event(&Event::OperatorNote {
        suite: SUITE.into(),
        case: CASE.into(),
        note: GameNote {
            at_ms: 3100,
            kind: NoteKind::Note,
            text: "seen".into(),
        },
    });
    clock.set(ms(9400));
    p.tick();
    let (rows, cursor) = tty.screen(80);
    let text = rows.join("\n");
    assert!(text.contains("[a] abort > n\nnote> seen\n"), "{text}");
    assert_eq!(
        text.matches("heatcheck live").count(),
        2,
        "the frozen frame and the live one"
    );
    let live = rows
        .iter()
        .rposition(|r| r.starts_with("heatcheck live"))
        .unwrap();
    assert!(
        rows[live..]
            .iter()
            .any(|r| r.contains("OUTAGE 600ms since +4.4s (12 failed in a row)")),
        "{text}"
    );
    assert!(
        rows[live..].iter().any(|r| r.contains("note +3.1s seen")),
        "{text}"
    );
    assert!(
        rows[live..].iter().all(|r| !r.contains("waiting")),
        "{text}"
    );
    assert!(cursor);
}

#[test]
fn the_summary_replaces_the_panel_and_drop_cleans_up() {
    let (tty, clock) = (Tty::default(), FakeClock::default());
    let mut p = panel(&tty, &clock, false);
    play(&mut p, &clock, 10_200);
    clock.set(ms(11_000));
    p.event(&Event::RunFinished {
        report: sample_run(),
    });
    let after = tty.len();
    clock.set(ms(12_000));
    p.tick();
    drop(p);
    assert_eq!(tty.len(), after, "nothing drawn after the run finished");
    let (rows, cursor) = tty.screen(200);
    let text = rows.join("\n");
    assert!(!text.contains("heatcheck live"), "{text}");
    assert!(text.contains("shop-canary › v2 backend killed"), "{text}");
    assert!(rows.last().unwrap().contains("payments (suite)"), "{text}");
    assert!(text.contains("Summary"));
    assert!(cursor);

    // Cut short (no RunFinished): dropping the panel erases it.
    let (tty, clock) = (Tty::default(), FakeClock::default());
    let mut p = panel(&tty, &clock, false);
    play(&mut p, &clock, 9500);
    drop(p);
    let (rows, cursor) = tty.screen(80);
    assert!(!rows.join("\n").contains("heatcheck live"), "{rows:#?}");
    assert!(rows
        .last()
        .unwrap()
        .contains("scale Deployment infra-backend-v1 to 0"));
    assert!(cursor);
}

#[test]
fn suspend_lets_other_output_through() {
    let (tty, clock) = (Tty::default(), FakeClock::default());
    let mut p = panel(&tty, &clock, false);
    play(&mut p, &clock, 9500);
    let mut term = tty.clone();
    p.handle().suspend(|| {
        writeln!(
            term,
            "heatcheck: interrupted; stopping and restoring the cluster"
        )
        .unwrap()
    });
    let (rows, _) = tty.screen(80);
    let text = rows.join("\n");
    let msg = rows
        .iter()
        .position(|r| r.starts_with("heatcheck: interrupted"))
        .unwrap();
    let live = rows
        .iter()
        .position(|r| r.starts_with("heatcheck live"))
        .unwrap();
    assert!(msg < live, "{text}");
    assert_eq!(text.matches("heatcheck live").count(), 1, "{text}");
    drop(p);
    // Gone with the panel: a no-op.
    PanelHandle::default().suspend(|| ());
}
