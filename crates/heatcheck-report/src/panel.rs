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
pub(crate) const REDRAW_EVERY: Duration = Duration::from_millis(250);

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
pub(crate) struct PanelState {
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
    pub(crate) fn waiting(&self) -> bool {
        self.cases.iter().any(|c| c.waiting)
    }

    pub(crate) fn finished(&self) -> bool {
        self.finished
    }

    fn case(&mut self, suite: &str, case: &str) -> Option<&mut LiveCase> {
        self.cases
            .iter_mut()
            .rev()
            .find(|c| c.suite == suite && c.name == case)
    }

    /// Takes one event in; `now` is the panel clock's reading.
    pub(crate) fn apply(&mut self, e: &Event, now: Duration) {
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
    pub(crate) fn frame(
        &self,
        now: Duration,
        width: usize,
        height: usize,
        color: bool,
    ) -> Vec<String> {
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
pub(crate) type SizeFn = Box<dyn Fn() -> (usize, usize) + Send>;

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
    #[cfg(test)] // only the unit tests look; the binary does not
    pub(crate) fn tick(&self) {
        self.shared.tick();
    }

    /// A handle to move the panel out of the way of other output.
    pub fn handle(&self) -> PanelHandle {
        PanelHandle(Arc::downgrade(&self.shared))
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
mod tests;
