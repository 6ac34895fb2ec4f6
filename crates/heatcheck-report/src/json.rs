//! JSON output: the final report as one pretty document, and live events as
//! JSON lines for `--output json`.

use std::io::{self, Write};

use heatcheck_engine::event::{Event, Reporter};
use heatcheck_engine::model::RunReport;

/// The report as pretty JSON (field order follows the model, so it is stable),
/// with a trailing newline.
pub fn to_json(report: &RunReport) -> String {
    // The model has only string keys and finite numbers: it cannot fail.
    let mut text = serde_json::to_string_pretty(report).expect("RunReport serializes to JSON");
    text.push('\n');
    text
}

/// Prints each event as one JSON line, tagged `"event": "stepFinished"` etc.,
/// flushed at once so a consumer sees it live. After the first write error
/// (e.g. a closed pipe) it stops writing and keeps the error for the caller.
pub struct JsonEventReporter<W: Write> {
    out: W,
    error: Option<io::Error>,
}

impl<W: Write> JsonEventReporter<W> {
    pub fn new(out: W) -> Self {
        Self { out, error: None }
    }

    /// The first write error, if any.
    #[cfg(test)] // only the unit tests look; the binary does not
    pub(crate) fn error(&self) -> Option<&io::Error> {
        self.error.as_ref()
    }

    #[cfg(test)] // only the unit tests look; the binary does not
    pub(crate) fn into_inner(self) -> W {
        self.out
    }

    fn write(&mut self, e: &Event) -> io::Result<()> {
        serde_json::to_writer(&mut self.out, e)?;
        self.out.write_all(b"\n")?;
        self.out.flush()
    }
}

impl<W: Write + Send> Reporter for JsonEventReporter<W> {
    fn event(&mut self, e: &Event) {
        if self.error.is_none() {
            if let Err(err) = self.write(e) {
                self.error = Some(err);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use heatcheck_engine::event::LogLevel;
    use heatcheck_engine::fixture::sample_run;

    #[test]
    fn report_json_snapshot() {
        insta::assert_snapshot!("run_report_json", to_json(&sample_run()));
    }

    #[test]
    fn report_json_parses_back() {
        let report = sample_run();
        let back: RunReport = serde_json::from_str(&to_json(&report)).unwrap();
        assert_eq!(back, report);
    }

    #[test]
    fn events_are_one_tagged_line_each() {
        let report = sample_run();
        let case = report.suites[0].cases[2].clone();
        let mut r = JsonEventReporter::new(Vec::new());
        r.event(&Event::StepFinished {
            suite: "shop-canary".into(),
            case: case.name.clone(),
            record: case.steps[0].clone(),
        });
        r.event(&Event::CaseFinished {
            suite: "shop-canary".into(),
            report: case.clone(),
        });
        r.event(&Event::RunFinished { report });
        assert!(r.error().is_none());
        let out = String::from_utf8(r.into_inner()).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 3);
        let tags: Vec<String> = lines
            .iter()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                v["event"].as_str().unwrap().to_string()
            })
            .collect();
        assert_eq!(tags, ["stepFinished", "caseFinished", "runFinished"]);
        let step: Event = serde_json::from_str(lines[0]).unwrap();
        assert!(matches!(step, Event::StepFinished { record, .. } if record == case.steps[0]));
        // Hostile detail text stays on one line: JSON escapes newlines and ESC.
        assert!(lines[1].contains(r"\u001b[31m"));
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
    fn write_error_is_kept_not_panicked() {
        let mut r = JsonEventReporter::new(Broken);
        let e = Event::Log {
            level: LogLevel::Warn,
            message: "x".into(),
        };
        r.event(&e);
        r.event(&e);
        assert_eq!(r.error().unwrap().kind(), io::ErrorKind::BrokenPipe);
    }
}
