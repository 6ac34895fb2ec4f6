//! The live panel of `heatcheck run` on a terminal: a few lines at the
//! bottom that redraw in place while the run goes (elapsed time, the current
//! suite, scenario and step, each probe's success rate, p50/p99 over its
//! recent window and the outage going on, the stop conditions armed and the
//! one that fired, game-day notes), with the line reporter's output
//! scrolling above it. It consumes engine events only.
//!
//! [`PanelState`] is the pure part (events in, frame lines out, time from a
//! clock the caller passes); [`LivePanel`] draws it: at most 4 frames a
//! second, lines truncated to the terminal width, frozen (left on screen as
//! plain text) while the operator answers a prompt, cleared before the
//! run's summary and when dropped.

use std::io::{self, Write};
use std::sync::{mpsc, Arc, Mutex, MutexGuard, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::human::Paint;
use super::text::one_line;
use heatcheck_engine::event::{Event, Reporter};
use heatcheck_engine::model::{CaseKind, CaseStatus, GameNote, NoteKind, Outcome, ProbeLive};
use heatcheck_format::format_duration;
use heatcheck_gateway::units::{fmt_duration, fmt_latency};

/// At most this often a frame is drawn (4 per second).
pub const REDRAW_EVERY: Duration = Duration::from_millis(250);

/// Notes of the case shown at once (the latest).
const NOTES_SHOWN: usize = 3;

/// Time as the panel reads it: an offset from some fixed start.
pub trait Clock: Send + Sync {
    fn now(&self) -> Duration;
}

/// The real clock: time since the panel was made.
pub struct MonotonicClock(Instant);

impl MonotonicClock {
    pub fn new() -> Self {
        MonotonicClock(Instant::now())
    }
}

impl Default for MonotonicClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for MonotonicClock {
    fn now(&self) -> Duration {
        self.0.elapsed()
    }
}

/// One case that is running.
#[derive(Debug, Clone)]
struct LiveCase {
    suite: String,
    name: String,
    kind: CaseKind,
    started: Duration,
    steps: usize,
    /// (index, name, since): the step running now.
    step: Option<(usize, String, Duration)>,
    /// (index, name, outcome, took): the step that finished last.
    last_step: Option<(usize, String, Outcome, Duration)>,
    checks_passed: usize,
    checks_failed: usize,
    last_check: Option<(String, bool)>,
    probes: Vec<ProbeLive>,
    /// None: no stop condition was announced (not a scenario).
    stop_armed: Option<Vec<String>>,
    stop_tripped: Option<String>,
    /// (changes, since) while restoring.
    restoring: Option<(usize, Duration)>,
    notes: Vec<GameNote>,
    waiting: bool,
}

/// What the panel knows, from events alone.
#[derive(Debug, Clone, Default)]
pub struct PanelState {
    run_started: Option<Duration>,
    suites: usize,
    suites_started: usize,
    suite: Option<String>,
    passed: usize,
    failed: usize,
    errored: usize,
    cases: Vec<LiveCase>,
    finished: bool,
}

impl PanelState {
    /// True while the run waits for the operator at the terminal.
    pub fn waiting(&self) -> bool {
        self.cases.iter().any(|c| c.waiting)
    }

    pub fn finished(&self) -> bool {
        self.finished
    }

    fn case(&mut self, suite: &str, case: &str) -> Option<&mut LiveCase> {
        self.cases
            .iter_mut()
            .rev()
            .find(|c| c.suite == suite && c.name == case)
    }

    /// Takes one event in; `now` is the panel clock's reading.
    pub fn apply(&mut self, e: &Event, now: Duration) {
        match e {
            Event::RunStarted { suites, .. } => {
                self.run_started = Some(now);
                self.suites = *suites;
            }
            Event::SuiteStarted { name, .. } => {
                self.suites_started += 1;
                self.suite = Some(name.clone());
            }
            Event::CaseStarted {
                suite,
                case,
                kind,
                steps,
            } => {
                // A retry starts the case again.
                self.cases
                    .retain(|c| !(c.suite == *suite && c.name == *case));
                self.cases.push(LiveCase {
                    suite: suite.clone(),
                    name: case.clone(),
                    kind: *kind,
                    started: now,
                    steps: *steps,
                    step: None,
                    last_step: None,
                    checks_passed: 0,
                    checks_failed: 0,
                    last_check: None,
                    probes: Vec::new(),
                    stop_armed: None,
                    stop_tripped: None,
                    restoring: None,
                    notes: Vec::new(),
                    waiting: false,
                });
            }
            Event::StepStarted {
                suite,
                case,
                index,
                total,
                name,
            } => {
                if let Some(c) = self.case(suite, case) {
                    c.step = Some((*index, name.clone(), now));
                    c.steps = (*total).max(c.steps);
                }
            }
            Event::StepFinished {
                suite,
                case,
                record,
            } => {
                if let Some(c) = self.case(suite, case) {
                    c.step = None;
                    c.last_step = Some((
                        record.index,
                        record.name.clone(),
                        record.outcome,
                        record.duration,
                    ));
                }
            }
            Event::AssertionFinished {
                suite,
                case,
                record,
            } => {
                if let Some(c) = self.case(suite, case) {
                    if record.passed {
                        c.checks_passed += 1;
                    } else {
                        c.checks_failed += 1;
                    }
                    c.last_check = Some((record.name.clone(), record.passed));
                }
            }
            Event::ProbeWindow {
                suite,
                case,
                probes,
                ..
            } => {
                if let Some(c) = self.case(suite, case) {
                    c.probes = probes.clone();
                }
            }
            Event::StopConditionsArmed {
                suite,
                case,
                conditions,
            } => {
                if let Some(c) = self.case(suite, case) {
                    c.stop_armed = Some(conditions.clone());
                }
            }
            Event::StopConditionTripped {
                suite,
                case,
                reason,
            } => {
                if let Some(c) = self.case(suite, case) {
                    c.stop_tripped = Some(reason.clone());
                }
            }
            Event::AwaitingOperator { suite, case } => {
                if let Some(c) = self.case(suite, case) {
                    c.waiting = true;
                }
            }
            Event::OperatorAnswered { suite, case } => {
                if let Some(c) = self.case(suite, case) {
                    c.waiting = false;
                }
            }
            Event::OperatorNote { suite, case, note } => {
                if let Some(c) = self.case(suite, case) {
                    c.notes.push(note.clone());
                }
            }
            Event::RestoreStarted { suite, entries } => {
                // A scenario restores before it finishes; fixtures after every case.
                if let Some(c) = self
                    .cases
                    .iter_mut()
                    .rev()
                    .find(|c| c.suite == *suite && c.kind == CaseKind::Scenario)
                {
                    c.step = None;
                    c.restoring = Some((*entries, now));
                }
            }
            Event::RestoreFinished { suite, .. } => {
                for c in self.cases.iter_mut().filter(|c| c.suite == *suite) {
                    c.restoring = None;
                }
            }
            Event::CaseFinished { suite, report } => {
                self.cases
                    .retain(|c| !(c.suite == *suite && c.name == report.name));
                match report.status {
                    CaseStatus::Passed => self.passed += 1,
                    CaseStatus::Failed { .. } => self.failed += 1,
                    CaseStatus::Errored { .. } => self.errored += 1,
                    CaseStatus::Skipped { .. } => {}
                }
            }
            Event::SuiteFinished { report } => {
                self.cases.retain(|c| c.suite != report.name);
            }
            Event::RunFinished { .. } => {
                self.cases.clear();
                self.finished = true;
            }
            Event::Log { .. } => {}
        }
    }

    /// The panel's lines at `now`: at most `height - 1` of them (the cursor
    /// rests on the line below), each at most `width - 1` columns wide (no
    /// terminal wraps them). Empty before the run starts and after it ends.
    pub fn frame(&self, now: Duration, width: usize, height: usize, color: bool) -> Vec<String> {
        let Some(run_started) = self.run_started.filter(|_| !self.finished) else {
            return Vec::new();
        };
        let p = Paint(color);
        let mut lines = Vec::new();
        let mut header = format!(
            "{} {}",
            p.bold("heatcheck live"),
            elapsed(now.saturating_sub(run_started))
        );
        if let Some(suite) = &self.suite {
            header.push_str(&format!(
                " · suite {}/{} {}",
                self.suites_started,
                self.suites,
                one_line(suite)
            ));
        }
        let mut done = Vec::new();
        if self.passed > 0 {
            done.push(p.green(&format!("{} passed", self.passed)));
        }
        if self.failed > 0 {
            done.push(p.red(&format!("{} failed", self.failed)));
        }
        if self.errored > 0 {
            done.push(p.red(&format!("{} errored", self.errored)));
        }
        if !done.is_empty() {
            header.push_str(&format!(" · {}", done.join(", ")));
        }
        lines.push(header);
        for c in &self.cases {
            case_lines(c, now, p, &mut lines);
        }
        fit(lines, width, height)
    }
}

fn case_lines(c: &LiveCase, now: Duration, p: Paint, lines: &mut Vec<String>) {
    lines.push(format!(
        "{} {} · {}",
        p.bold("▶"),
        one_line(&c.kind.case_label(&c.name)),
        elapsed(now.saturating_sub(c.started))
    ));
    if c.waiting {
        lines.push(format!(
            "  {}",
            p.yellow("waiting for the operator (the probes keep running)")
        ));
    }
    if let Some((entries, since)) = c.restoring {
        lines.push(format!(
            "  ↺ restoring {entries} change{} · {}",
            if entries == 1 { "" } else { "s" },
            elapsed(now.saturating_sub(since))
        ));
    } else if let Some((i, name, since)) = &c.step {
        lines.push(format!(
            "  step {}/{} {} · {}",
            i + 1,
            c.steps,
            one_line(name),
            elapsed(now.saturating_sub(*since))
        ));
    } else if let Some((i, name, outcome, took)) = &c.last_step {
        let mark = match outcome {
            Outcome::Ok => p.green("✓"),
            Outcome::Failed => p.red("✗"),
            Outcome::Ignored => p.yellow("!"),
            Outcome::Skipped => p.yellow("-"),
        };
        lines.push(format!(
            "  step {}/{} {mark} {} ({})",
            i + 1,
            c.steps,
            one_line(name),
            fmt_duration(*took)
        ));
    }
    if c.checks_passed + c.checks_failed > 0 {
        let mut line = format!("  checks {} passed", c.checks_passed);
        if c.checks_failed > 0 {
            line.push_str(&format!(
                ", {}",
                p.red(&format!("{} failed", c.checks_failed))
            ));
        }
        if let Some((name, passed)) = &c.last_check {
            let mark = if *passed {
                p.green("✓")
            } else {
                p.red("✗")
            };
            line.push_str(&format!(" · last {mark} {}", one_line(name)));
        }
        lines.push(line);
    }
    for probe in &c.probes {
        probe_lines(probe, p, lines);
    }
    if let Some(reason) = &c.stop_tripped {
        lines.push(format!(
            "  {} {}",
            p.red_bold("STOPPED:"),
            p.red(&one_line(reason))
        ));
    } else if let Some(armed) = &c.stop_armed {
        let what = if armed.is_empty() {
            p.dim("none armed")
        } else {
            armed
                .iter()
                .map(|a| one_line(a))
                .collect::<Vec<_>>()
                .join(" · ")
        };
        lines.push(format!("  stop if: {what}"));
    }
    let skip = c.notes.len().saturating_sub(NOTES_SHOWN);
    for n in &c.notes[skip..] {
        let kind = match n.kind {
            NoteKind::Note => "note",
            NoteKind::Skip => "skip",
            NoteKind::Pause => "pause",
            NoteKind::Abort => "abort",
        };
        lines.push(format!(
            "  {} +{} {}",
            p.yellow(kind),
            fmt_duration(Duration::from_millis(n.at_ms)),
            one_line(&n.text)
        ));
    }
}

/// `probe shop 99.5% ok · p50 12ms p99 1.0s (10s) · 4/812 failed`, then the
/// outage going on, if any, on a line of its own: both fit 80 columns.
fn probe_lines(probe: &ProbeLive, p: Paint, lines: &mut Vec<String>) {
    let window = format_duration(probe.window);
    let mut line = format!("  probe {} ", one_line(&probe.name));
    match probe.window_success_rate {
        Some(rate) => {
            let text = format!("{} ok", percent(rate));
            line.push_str(&if rate >= 1.0 {
                p.green(&text)
            } else {
                p.red(&text)
            });
        }
        None => line.push_str(&p.dim(&format!("no result in {window}"))),
    }
    if probe.window_count > 0 {
        line.push_str(&format!(
            " · p50 {} p99 {} ({window})",
            fmt_latency(probe.window_p50),
            fmt_latency(probe.window_p99)
        ));
    }
    line.push_str(&p.dim(&format!(" · {}/{} failed", probe.failures, probe.count)));
    lines.push(line);
    if let Some(o) = &probe.outage {
        lines.push(format!(
            "    {} since +{} ({} failed in a row)",
            p.red_bold(&format!("OUTAGE {}", fmt_duration(o.duration))),
            fmt_duration(Duration::from_millis(o.start_ms)),
            o.failures
        ));
    }
}

/// "100%", "99.9%" (never rounded up to 100%), "0%".
fn percent(rate: f64) -> String {
    if rate >= 1.0 {
        return "100%".into();
    }
    // The epsilon keeps 0.99 (989.999...) at 99.0%.
    let tenths = (rate * 1000.0 + 1e-6).floor() / 10.0;
    format!("{tenths:.1}%")
}

/// A ticking clock: "7s", "1m05s", "1h02m03s".
fn elapsed(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m{:02}s", s / 3600, (s / 60) % 60, s % 60),
    }
}

/// At most `height - 1` lines of at most `width - 1` columns.
fn fit(mut lines: Vec<String>, width: usize, height: usize) -> Vec<String> {
    let rows = height.saturating_sub(1).max(1);
    if lines.len() > rows && rows <= 2 {
        lines.truncate(rows);
    } else if lines.len() > rows {
        let hidden = lines.len() - rows + 1;
        lines.truncate(rows - 1);
        lines.push(format!(
            "  … {hidden} more line(s) (a taller terminal shows them)"
        ));
        lines.truncate(rows);
    }
    let cols = width.saturating_sub(1).max(1);
    lines
        .into_iter()
        .map(|l| console::truncate_str(&l, cols, "…").into_owned())
        .collect()
}

/// Screen rows `lines` take at `width` (a narrowed terminal wraps them).
fn rows(lines: &[String], width: usize) -> usize {
    let width = width.max(1);
    lines
        .iter()
        .map(|l| console::measure_text_width(l).div_ceil(width).max(1))
        .sum()
}

const HIDE_CURSOR: &str = "\x1b[?25l";
const SHOW_CURSOR: &str = "\x1b[?25h";

/// Collects what the wrapped line reporter writes, so the panel can move
/// out of the way first.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn take(&self) -> Vec<u8> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl Write for Captured {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// (columns, rows) of the terminal.
pub type SizeFn = Box<dyn Fn() -> (usize, usize) + Send>;

/// The size of the terminal on stdout (or stderr), 80x24 when unknown.
pub fn terminal_size() -> (usize, usize) {
    let known = |size: Option<(u16, u16)>| size.filter(|&(rows, cols)| rows > 0 && cols > 0);
    known(console::Term::stdout().size_checked())
        .or_else(|| known(console::Term::stderr().size_checked()))
        .map_or((80, 24), |(rows, cols)| (cols as usize, rows as usize))
}

struct Screen {
    state: PanelState,
    inner: Box<dyn Reporter>,
    captured: Captured,
    out: Box<dyn Write + Send>,
    size: SizeFn,
    color: bool,
    /// The frame on screen now (empty: none), and the width it was drawn at.
    drawn: Vec<String>,
    last_draw: Option<Duration>,
    /// The last frame stays as text while the operator answers a prompt.
    frozen: bool,
    error: Option<io::Error>,
}

impl Screen {
    fn write(&mut self, bytes: &[u8]) {
        if self.error.is_some() || bytes.is_empty() {
            return;
        }
        let result = self.out.write_all(bytes).and_then(|_| self.out.flush());
        if let Err(e) = result {
            self.error = Some(e);
        }
    }

    /// The escape sequence that moves up over the frame on screen and
    /// erases it (and anything below it).
    fn erase(&mut self, width: usize) -> String {
        let n = rows(&self.drawn, width);
        self.drawn.clear();
        if n == 0 {
            String::new()
        } else {
            format!("\r\x1b[{n}A\x1b[J")
        }
    }

    /// Removes the frame from the screen (nothing else is written).
    fn clear(&mut self) {
        let (width, _) = (self.size)();
        let seq = self.erase(width);
        self.write(seq.as_bytes());
    }

    /// Draws the current frame over the previous one, unless it would look
    /// the same; `force` ignores the 4-per-second limit.
    fn draw(&mut self, now: Duration, force: bool) {
        if self.frozen || self.state.finished() {
            return;
        }
        if !force
            && self
                .last_draw
                .is_some_and(|t| now.saturating_sub(t) < REDRAW_EVERY)
        {
            return;
        }
        let (width, height) = (self.size)();
        let frame = self.state.frame(now, width, height, self.color);
        if frame == self.drawn {
            return;
        }
        let mut buf = String::from(HIDE_CURSOR);
        buf.push_str(&self.erase(width));
        for line in &frame {
            buf.push_str(line);
            buf.push('\n');
        }
        buf.push_str(SHOW_CURSOR);
        self.write(buf.as_bytes());
        self.drawn = frame;
        self.last_draw = Some(now);
    }

    fn event(&mut self, e: &Event, now: Duration) {
        self.state.apply(e, now);
        self.inner.event(e);
        let printed = self.captured.take();
        if !printed.is_empty() {
            // Lines go above the panel: erase it, print, draw it again below.
            self.clear();
            self.write(&printed);
        }
        match e {
            Event::AwaitingOperator { .. } => {
                // The prompt comes below this frame, which stays as text: no
                // redraw may move the cursor over the prompt or the typing.
                self.draw(now, true);
                self.drawn.clear();
                self.frozen = true;
            }
            Event::OperatorAnswered { .. } if !self.state.waiting() => {
                self.frozen = false;
                self.draw(now, true);
            }
            Event::RunFinished { .. } => self.clear(),
            _ => self.draw(now, !printed.is_empty()),
        }
    }
}

/// Locks the screen, whatever a panicking holder left.
fn lock(screen: &Mutex<Screen>) -> MutexGuard<'_, Screen> {
    screen.lock().unwrap_or_else(|p| p.into_inner())
}

struct Shared {
    screen: Mutex<Screen>,
    clock: Box<dyn Clock>,
}

/// The panel as a reporter: it wraps the line reporter (whose output it
/// prints above itself) and redraws on events and on a 4 Hz tick.
pub struct LivePanel {
    shared: Arc<Shared>,
    stop: Option<mpsc::Sender<()>>,
    ticker: Option<JoinHandle<()>>,
}

impl LivePanel {
    /// `make_inner` builds the line reporter on the writer it is given
    /// (what it writes is printed above the panel, on `out`).
    pub fn new(
        out: Box<dyn Write + Send>,
        make_inner: impl FnOnce(Box<dyn Write + Send>) -> Box<dyn Reporter>,
        color: bool,
        size: SizeFn,
        clock: Box<dyn Clock>,
    ) -> Self {
        let captured = Captured::default();
        let inner = make_inner(Box::new(captured.clone()));
        let screen = Screen {
            state: PanelState::default(),
            inner,
            captured,
            out,
            size,
            color,
            drawn: Vec::new(),
            last_draw: None,
            frozen: false,
            error: None,
        };
        LivePanel {
            shared: Arc::new(Shared {
                screen: Mutex::new(screen),
                clock,
            }),
            stop: None,
            ticker: None,
        }
    }

    /// Redraws on its own every [`REDRAW_EVERY`] (elapsed times tick
    /// between events) until the run finishes or the panel is dropped.
    pub fn with_ticker(mut self) -> Self {
        let (tx, rx) = mpsc::channel::<()>();
        let shared = Arc::downgrade(&self.shared);
        self.stop = Some(tx);
        self.ticker = Some(std::thread::spawn(move || {
            while let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(REDRAW_EVERY) {
                let Some(shared) = shared.upgrade() else {
                    return;
                };
                shared.tick();
            }
        }));
        self
    }

    /// One tick of the redraw clock (the ticker thread's work).
    pub fn tick(&self) {
        self.shared.tick();
    }

    /// A handle to move the panel out of the way of other output.
    pub fn handle(&self) -> PanelHandle {
        PanelHandle(Arc::downgrade(&self.shared))
    }

    /// The first write error, if any (drawing stops after it).
    pub fn error(&self) -> Option<String> {
        lock(&self.shared.screen)
            .error
            .as_ref()
            .map(|e| e.to_string())
    }
}

impl Shared {
    fn tick(&self) {
        let now = self.clock.now();
        lock(&self.screen).draw(now, false);
    }
}

impl Reporter for LivePanel {
    fn event(&mut self, e: &Event) {
        let now = self.shared.clock.now();
        lock(&self.shared.screen).event(e, now);
    }
}

impl Drop for LivePanel {
    /// A run cut short must not leave a half-updated panel: erase it.
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.ticker.take() {
            let _ = t.join();
        }
        let mut screen = lock(&self.shared.screen);
        if !screen.drawn.is_empty() {
            screen.clear();
        }
    }
}

/// Lets other output (e.g. the Ctrl-C messages on stderr) through without
/// the panel drawing over it. Does nothing once the panel is gone.
#[derive(Clone, Default)]
pub struct PanelHandle(Weak<Shared>);

impl PanelHandle {
    /// Erases the panel, runs `f`, draws the panel again below what `f` wrote.
    pub fn suspend<T>(&self, f: impl FnOnce() -> T) -> T {
        let Some(shared) = self.0.upgrade() else {
            return f();
        };
        let now = shared.clock.now();
        let mut screen = lock(&shared.screen);
        screen.clear();
        let out = f();
        screen.draw(now, true);
        out
    }
}

#[cfg(test)]
mod tests {
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

    fn probe(
        rate: Option<f64>,
        outage: Option<(u64, u64, u64)>,
        sent: u64,
        failed: u64,
    ) -> ProbeLive {
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
        assert!(
            stopped.contains("STOPPED: probe shop availability success rate 0.42 < 0.50 over 5s")
        );
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
}
