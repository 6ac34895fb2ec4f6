//! Terminal output for people: live progress while a run goes, then a
//! summary. On a terminal each running case gets an indicatif spinner with
//! its step count; elsewhere (CI logs, pipes) it prints plain lines only.

use std::collections::HashMap;
use std::fmt;
use std::io::{self, IsTerminal, Write};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle, TermLike};

use super::text::{
    assertion_line, fmt_duration, identity_line, one_line, precedence_line, probe_line, step_line,
};
use heatcheck_engine::event::{Event, LogLevel, Reporter};
use heatcheck_engine::model::{
    CaseReport, CaseStatus, Outcome, RestoreSummary, RunReport, SuiteReport,
};

/// How the human output looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanOptions {
    /// ANSI colours.
    pub color: bool,
    /// Live spinners (needs a terminal: they redraw with cursor moves).
    pub progress: bool,
}

impl HumanOptions {
    /// For output on stdout: colours and progress on a terminal, colours off
    /// when `NO_COLOR` is set to any value.
    pub fn detect() -> Self {
        Self::detect_for(&io::stdout())
    }

    /// Like `detect`, for another stream (e.g. stderr).
    pub(crate) fn detect_for(stream: &impl IsTerminal) -> Self {
        Self::decide(stream.is_terminal(), std::env::var_os("NO_COLOR").is_some())
    }

    pub(crate) fn decide(is_terminal: bool, no_color: bool) -> Self {
        Self {
            color: is_terminal && !no_color,
            progress: is_terminal,
        }
    }
}

type SharedOut = Arc<Mutex<Box<dyn Write + Send>>>;

fn lock(out: &SharedOut) -> MutexGuard<'_, Box<dyn Write + Send>> {
    // A panic while printing leaves the writer usable: keep going.
    out.lock().unwrap_or_else(|e| e.into_inner())
}

/// Live progress and a final summary, written to the given sink.
pub struct HumanReporter {
    out: SharedOut,
    paint: Paint,
    progress: Option<Progress>,
    error: Option<io::Error>,
}

struct Progress {
    multi: MultiProgress,
    bars: HashMap<(String, String), ProgressBar>,
}

impl HumanReporter {
    pub fn new(out: Box<dyn Write + Send>, options: HumanOptions) -> Self {
        let out: SharedOut = Arc::new(Mutex::new(out));
        let progress = options.progress.then(|| Progress {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::term_like(Box::new(
                SinkTerm(out.clone()),
            ))),
            bars: HashMap::new(),
        });
        Self {
            out,
            paint: Paint(options.color),
            progress,
            error: None,
        }
    }

    /// The first write error, if any (output stops after it).
    #[cfg(test)] // only the unit tests look; the binary does not
    pub(crate) fn error(&self) -> Option<&io::Error> {
        self.error.as_ref()
    }

    /// Writes whole lines, with the spinners moved out of the way.
    fn print(&mut self, lines: &[String]) {
        if self.error.is_some() || lines.is_empty() {
            return;
        }
        let out = &self.out;
        let write = || -> io::Result<()> {
            let mut w = lock(out);
            for line in lines {
                writeln!(w, "{line}")?;
            }
            w.flush()
        };
        let result = match &self.progress {
            Some(p) => p.multi.suspend(write),
            None => write(),
        };
        if let Err(e) = result {
            self.error = Some(e);
        }
    }

    fn case_started(&mut self, suite: &str, case: &str, label: String, steps: usize) {
        let Some(progress) = &mut self.progress else {
            self.print(&[format!("  {} {label}", self.paint.dim("▶"))]);
            return;
        };
        let template = if steps > 0 {
            "  {spinner} {msg} {pos}/{len} steps"
        } else {
            "  {spinner} {msg}"
        };
        let bar = progress.multi.add(ProgressBar::new(steps as u64));
        bar.set_style(ProgressStyle::with_template(template).expect("valid progress template"));
        bar.set_message(label);
        bar.enable_steady_tick(Duration::from_millis(120));
        // A case started twice (a retry) replaces its bar rather than orphaning it.
        if let Some(old) = progress
            .bars
            .insert((suite.to_string(), case.to_string()), bar)
        {
            old.finish_and_clear();
            progress.multi.remove(&old);
        }
    }

    fn step_finished(&mut self, suite: &str, case: &str, line: String, outcome: Outcome) {
        match &self.progress {
            Some(p) => {
                if let Some(bar) = p.bars.get(&(suite.to_string(), case.to_string())) {
                    bar.inc(1);
                }
                // Only the steps that went wrong are worth a line between spinners.
                if matches!(outcome, Outcome::Failed | Outcome::Ignored) {
                    self.print(&[format!("    {line}")]);
                }
            }
            None => self.print(&[format!("    {line}")]),
        }
    }

    fn case_finished(&mut self, suite: &str, case: &CaseReport) {
        if let Some(p) = &mut self.progress {
            if let Some(bar) = p.bars.remove(&(suite.to_string(), case.name.clone())) {
                bar.finish_and_clear();
                p.multi.remove(&bar);
            }
        }
        let lines = self.case_lines(case);
        self.print(&lines);
    }

    fn case_lines(&self, case: &CaseReport) -> Vec<String> {
        let p = self.paint;
        let mut lines = self.status_lines(case);
        lines.extend(
            case.probes
                .iter()
                .map(|s| format!("      {}", p.dim(&probe_line(s)))),
        );
        lines
    }

    fn status_lines(&self, case: &CaseReport) -> Vec<String> {
        let p = self.paint;
        let name = one_line(&case.display_name());
        let dur = fmt_duration(case.duration);
        match &case.status {
            CaseStatus::Passed if case.is_flaky() => {
                let mut lines = vec![format!(
                    "  {} {name} {} {}",
                    p.yellow("✓"),
                    p.yellow("flaky"),
                    p.dim(&format!("(passed on attempt {}, {dur})", case.attempts()))
                )];
                lines.extend(case.failed_attempts.iter().enumerate().map(|(i, a)| {
                    format!(
                        "      {}",
                        p.dim(&format!(
                            "attempt {}: {}",
                            i + 1,
                            one_line(a.status.message().unwrap_or_default())
                        ))
                    )
                }));
                lines
            }
            CaseStatus::Passed => vec![format!(
                "  {} {name} {}",
                p.green("✓"),
                p.dim(&format!("({dur})"))
            )],
            CaseStatus::Failed { message, .. } | CaseStatus::Errored { message, .. } => {
                let what = if matches!(case.status, CaseStatus::Errored { .. }) {
                    " errored"
                } else {
                    ""
                };
                let tries = if case.failed_attempts.is_empty() {
                    String::new()
                } else {
                    format!(", {} attempts", case.attempts())
                };
                vec![
                    format!(
                        "  {} {name}{what} {}",
                        p.red("✗"),
                        p.dim(&format!("({dur}{tries})"))
                    ),
                    format!("      {}", p.red(&one_line(message))),
                ]
            }
            CaseStatus::Skipped { reason } => vec![format!(
                "  {} {name} {}",
                p.yellow("-"),
                p.dim(&format!("skipped: {}", one_line(reason)))
            )],
        }
    }

    fn suite_finished(&mut self, suite: &SuiteReport) {
        let p = self.paint;
        let mut lines = Vec::new();
        if let Some(e) = &suite.error {
            lines.push(format!(
                "  {} suite error: {}",
                p.red("✗"),
                p.red(&one_line(e))
            ));
        }
        let t = suite.totals();
        lines.push(p.dim(&format!("  {t} in {}", fmt_duration(suite.duration))));
        self.print(&lines);
    }

    fn restore_finished(&mut self, summary: &RestoreSummary) {
        let p = self.paint;
        let mut lines = vec![format!("  restore: {} restored", summary.restored.len())];
        if !summary.left_behind.is_empty() {
            lines.push(format!(
                "  {}",
                p.red_bold(&format!("⚠ {} LEFT BEHIND", summary.left_behind.len()))
            ));
            lines.extend(
                summary
                    .left_behind
                    .iter()
                    .map(|l| format!("    {}", one_line(l))),
            );
        }
        lines.extend(
            summary
                .errors
                .iter()
                .map(|e| format!("  {} {}", p.red("restore error:"), one_line(e))),
        );
        lines.extend(
            summary
                .identity_changed
                .iter()
                .map(|c| format!("  {} {}", p.yellow("⚠ new identity:"), identity_line(c))),
        );
        lines.extend(summary.precedence_changed.iter().map(|c| {
            format!(
                "  {} {}",
                p.yellow("⚠ route precedence changed:"),
                precedence_line(c)
            )
        }));
        self.print(&lines);
    }

    fn clear_bars(&mut self) {
        if let Some(p) = &mut self.progress {
            for (_, bar) in p.bars.drain() {
                bar.finish_and_clear();
                p.multi.remove(&bar);
            }
        }
    }

    fn run_finished(&mut self, report: &RunReport) {
        self.clear_bars();
        let lines = summary_lines(report, self.paint);
        self.print(&lines);
    }
}

impl Drop for HumanReporter {
    /// A run cut short (Ctrl-C, error) must not leave spinners on screen.
    fn drop(&mut self) {
        self.clear_bars();
    }
}

impl Reporter for HumanReporter {
    fn event(&mut self, e: &Event) {
        let p = self.paint;
        match e {
            Event::RunStarted { run_id, suites } => self.print(&[p.bold(&format!(
                "heatcheck run {} ({suites} suite{})",
                one_line(run_id),
                plural(*suites)
            ))]),
            Event::SuiteStarted {
                name,
                file,
                scenarios,
            } => self.print(&[
                String::new(),
                format!(
                    "{} {}",
                    p.bold(&one_line(name)),
                    p.dim(&format!(
                        "({}, {scenarios} scenario{})",
                        one_line(file),
                        plural(*scenarios)
                    ))
                ),
            ]),
            Event::CaseStarted {
                suite,
                case,
                kind,
                steps,
            } => {
                let label = kind.case_label(case);
                self.case_started(suite, case, one_line(&label), *steps);
            }
            Event::StepFinished {
                suite,
                case,
                record,
            } => self.step_finished(suite, case, step_line(record), record.outcome),
            Event::AssertionFinished { record, .. } => {
                if self.progress.is_none() || !record.passed {
                    self.print(&[format!("    {}", assertion_line(record))]);
                }
            }
            Event::CaseFinished { suite, report } => self.case_finished(suite, report),
            Event::RestoreStarted { entries, .. } => {
                self.print(&[format!("  restoring {entries} change{}", plural(*entries))])
            }
            Event::RestoreFinished { summary, .. } => self.restore_finished(summary),
            Event::SuiteFinished { report } => self.suite_finished(report),
            Event::RunFinished { report } => self.run_finished(report),
            // The live panel's (src/report/panel.rs); line output stays as it was.
            Event::StepStarted { .. }
            | Event::ProbeWindow { .. }
            | Event::StopConditionsArmed { .. }
            | Event::StopConditionTripped { .. }
            | Event::AwaitingOperator { .. }
            | Event::OperatorAnswered { .. }
            | Event::OperatorNote { .. } => {}
            Event::Log { level, message } => {
                let line = match level {
                    LogLevel::Debug => return,
                    LogLevel::Info => one_line(message),
                    LogLevel::Warn => format!("{} {}", p.yellow("warning:"), one_line(message)),
                    LogLevel::Error => format!("{} {}", p.red("error:"), one_line(message)),
                };
                self.print(&[line]);
            }
        }
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// The end-of-run block: table, totals, restore, failures.
fn summary_lines(report: &RunReport, p: Paint) -> Vec<String> {
    // (suite, case, status, duration) rows; a suite error no case shows gets its own row.
    let mut rows: Vec<[String; 4]> = Vec::new();
    for suite in &report.suites {
        for case in &suite.cases {
            rows.push([
                one_line(&suite.name),
                one_line(&case.display_name()),
                case.status.label().to_string(),
                match case.status {
                    CaseStatus::Skipped { .. } => "-".into(),
                    _ => fmt_duration(case.duration),
                },
            ]);
        }
        if suite.unreported_error().is_some() {
            rows.push([
                one_line(&suite.name),
                "(suite)".into(),
                "errored".into(),
                "-".into(),
            ]);
        }
    }
    let header = ["SUITE", "CASE", "STATUS", "DURATION"].map(String::from);
    let width = |i: usize| {
        rows.iter()
            .chain([&header])
            .map(|r| r[i].chars().count())
            .max()
            .unwrap_or(0)
    };
    let (w0, w1, w2, w3) = (width(0), width(1), width(2), width(3));
    let row = |r: &[String; 4], status: String| {
        let pad = w2.saturating_sub(r[2].chars().count());
        format!(
            "  {:<w0$}  {:<w1$}  {status}{}  {:>w3$}",
            r[0],
            r[1],
            " ".repeat(pad),
            r[3]
        )
    };

    let mut lines = vec![String::new(), p.bold("Summary")];
    lines.push(p.dim(row(&header, header[2].clone()).trim_end()));
    for r in &rows {
        let status = match r[2].as_str() {
            "passed" => p.green(&r[2]),
            "skipped" => p.yellow(&r[2]),
            _ => p.red(&r[2]),
        };
        lines.push(row(r, status));
    }

    let totals = report.totals();
    let totals_line = format!("{totals} in {}", fmt_duration(report.duration));
    lines.push(String::new());
    lines.push(if totals.failed + totals.errored > 0 {
        p.red_bold(&totals_line)
    } else {
        p.green(&totals_line)
    });

    let restore = &report.restore;
    if !restore.restored.is_empty() {
        lines.push(String::new());
        lines.push(format!(
            "Restored {} change{}:",
            restore.restored.len(),
            plural(restore.restored.len())
        ));
        lines.extend(
            restore
                .restored
                .iter()
                .map(|r| format!("  {}", one_line(r))),
        );
    }
    if !restore.left_behind.is_empty() {
        lines.push(String::new());
        lines.push(p.red_bold(&format!(
            "⚠ LEFT BEHIND: {} change{} NOT restored, the cluster is not clean. \
             Run `heatcheck recover` or clean up by hand:",
            restore.left_behind.len(),
            plural(restore.left_behind.len())
        )));
        lines.extend(
            restore
                .left_behind
                .iter()
                .map(|l| format!("  {}", p.red(&one_line(l)))),
        );
    }
    if !restore.errors.is_empty() {
        lines.push(String::new());
        lines.push(p.red_bold("Restore errors:"));
        lines.extend(restore.errors.iter().map(|e| format!("  {}", one_line(e))));
    }
    if !restore.identity_changed.is_empty() {
        lines.push(String::new());
        lines.push(p.yellow(&format!(
            "⚠ Restored under a new identity ({}): same content, but new uid and \
             creationTimestamp (owners, watchers and route precedence may see a new object):",
            restore.identity_changed.len()
        )));
        lines.extend(
            restore
                .identity_changed
                .iter()
                .map(|c| format!("  {}", identity_line(c))),
        );
    }
    if !restore.precedence_changed.is_empty() {
        lines.push(String::new());
        lines.push(p.yellow(&format!(
            "⚠ Route precedence changed ({}): another route now wins these matches:",
            restore.precedence_changed.len()
        )));
        lines.extend(
            restore
                .precedence_changed
                .iter()
                .map(|c| format!("  {}", precedence_line(c))),
        );
    }

    let mut failures = Vec::new();
    for suite in &report.suites {
        let name = one_line(&suite.name);
        for case in suite.cases.iter().filter(|c| c.is_failure()) {
            let message = case.status.message().unwrap_or_default();
            failures.push(format!(
                "  {} {name} › {}: {}",
                p.red("✗"),
                one_line(&case.display_name()),
                one_line(message)
            ));
        }
        if let Some(e) = suite.unreported_error() {
            failures.push(format!("  {} {name} (suite): {}", p.red("✗"), one_line(e)));
        }
    }
    if !failures.is_empty() {
        lines.push(String::new());
        lines.push(p.bold("Failures:"));
        lines.extend(failures);
    }
    lines
}

/// ANSI colouring that is a no-op when colours are off.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Paint(pub(crate) bool);

impl Paint {
    pub(crate) fn wrap(self, code: &str, s: &str) -> String {
        if self.0 {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
    pub(crate) fn green(self, s: &str) -> String {
        self.wrap("32", s)
    }
    pub(crate) fn red(self, s: &str) -> String {
        self.wrap("31", s)
    }
    pub(crate) fn red_bold(self, s: &str) -> String {
        self.wrap("1;31", s)
    }
    pub(crate) fn yellow(self, s: &str) -> String {
        self.wrap("33", s)
    }
    pub(crate) fn bold(self, s: &str) -> String {
        self.wrap("1", s)
    }
    pub(crate) fn dim(self, s: &str) -> String {
        self.wrap("2", s)
    }
}

/// indicatif draws its spinners through this into the reporter's own sink,
/// so bars and lines never interleave on two different handles.
struct SinkTerm(SharedOut);

impl fmt::Debug for SinkTerm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SinkTerm")
    }
}

impl SinkTerm {
    fn put(&self, s: &str) -> io::Result<()> {
        lock(&self.0).write_all(s.as_bytes())
    }
}

impl TermLike for SinkTerm {
    fn width(&self) -> u16 {
        // The sink is a terminal when progress is on; take whichever std
        // stream knows its size.
        console::Term::stdout()
            .size_checked()
            .or_else(|| console::Term::stderr().size_checked())
            .map_or(80, |(_, w)| w)
    }

    fn move_cursor_up(&self, n: usize) -> io::Result<()> {
        if n > 0 {
            self.put(&format!("\x1b[{n}A"))?;
        }
        Ok(())
    }

    fn move_cursor_down(&self, n: usize) -> io::Result<()> {
        if n > 0 {
            self.put(&format!("\x1b[{n}B"))?;
        }
        Ok(())
    }

    fn move_cursor_right(&self, n: usize) -> io::Result<()> {
        if n > 0 {
            self.put(&format!("\x1b[{n}C"))?;
        }
        Ok(())
    }

    fn move_cursor_left(&self, n: usize) -> io::Result<()> {
        if n > 0 {
            self.put(&format!("\x1b[{n}D"))?;
        }
        Ok(())
    }

    fn write_line(&self, s: &str) -> io::Result<()> {
        self.put(&format!("{s}\n"))
    }

    fn write_str(&self, s: &str) -> io::Result<()> {
        self.put(s)
    }

    fn clear_line(&self) -> io::Result<()> {
        self.put("\r\x1b[2K")
    }

    fn flush(&self) -> io::Result<()> {
        lock(&self.0).flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use heatcheck_engine::fixture::sample_events;

    /// A sink the test can read after the reporter wrote to it.
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Buf {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    fn run(options: HumanOptions) -> String {
        let buf = Buf::default();
        let mut r = HumanReporter::new(Box::new(buf.clone()), options);
        for e in sample_events() {
            r.event(&e);
        }
        assert!(r.error().is_none());
        drop(r);
        let text = buf.text();
        if std::env::var_os("HEATCHECK_SHOW_HUMAN").is_some() {
            eprintln!("{text:?}");
        }
        text
    }

    const PLAIN: HumanOptions = HumanOptions {
        color: false,
        progress: false,
    };

    #[test]
    fn options_follow_terminal_and_no_color() {
        assert_eq!(
            HumanOptions::decide(true, false),
            HumanOptions {
                color: true,
                progress: true
            }
        );
        assert_eq!(
            HumanOptions::decide(true, true),
            HumanOptions {
                color: false,
                progress: true
            }
        );
        assert_eq!(HumanOptions::decide(false, false), PLAIN);
    }

    #[test]
    fn plain_output_snapshot() {
        let out = run(PLAIN);
        assert!(!out.contains('\x1b'), "no escapes without colour");
        insta::assert_snapshot!("human_plain", out);
    }

    #[test]
    fn summary_has_totals_restore_and_failures() {
        let out = run(PLAIN);
        assert!(out.contains("\n3 passed, 1 failed, 1 errored, 1 skipped in 12.5s\n"));
        assert!(out.contains("⚠ LEFT BEHIND: 1 change NOT restored"));
        assert!(out.contains(
            "  ✗ shop-canary › v2 backend killed mid-rollout: route falls back to v1: expected 200, got 503 (12 of 40 requests)"
        ));
        assert!(out.contains("  ✗ payments (suite): scenario generation failed"));
        // The hostile detail never reaches the terminal; only the one-line message does.
        assert!(!out.contains("<html>"));
    }

    #[test]
    fn colour_output_uses_ansi() {
        let out = run(HumanOptions {
            color: true,
            progress: false,
        });
        assert!(out.contains("\x1b[32m✓\x1b[0m fixtures"));
        assert!(out.contains("\x1b[31m✗\x1b[0m v2 backend killed mid-rollout"));
        assert!(out.contains("\x1b[1;31m3 passed, 1 failed, 1 errored, 1 skipped in 12.5s\x1b[0m"));
    }

    #[test]
    fn progress_mode_prints_results_but_not_every_step() {
        let out = run(HumanOptions {
            color: false,
            progress: true,
        });
        assert!(out.contains("  ✓ steady state: shop served by v1 (1.2s)"));
        assert!(out.contains("[+0.900s] FAIL wait HTTPRoute shop/v2-canary Accepted"));
        assert!(out.contains("[+0.400s] ign  delete Pod"));
        assert!(!out.contains("[+0.000s] ok   apply manifests/shop.yaml"));
        assert!(out.contains("3 passed, 1 failed, 1 errored, 1 skipped in 12.5s"));
    }

    struct Broken;
    impl Write for Broken {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::from(io::ErrorKind::BrokenPipe))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn write_error_is_kept() {
        let mut r = HumanReporter::new(Box::new(Broken), PLAIN);
        for e in sample_events() {
            r.event(&e);
        }
        assert_eq!(r.error().unwrap().kind(), io::ErrorKind::BrokenPipe);
    }
}
