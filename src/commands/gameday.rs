//! The terminal side of a game day (`run --interactive`, `--pause-on-failure`):
//! before each scenario step the operator presses Enter (run), `s` (skip),
//! `p` (pause), `n` (a timestamped note) or `a` (abort: restore, exit 4).
//! Line-based, so it works in any terminal; prompts go to stderr.

use std::io::{BufRead, IsTerminal, Write};
use std::sync::Mutex;

use crate::engine::gate::{Decision, OperatorNote, StepGate, StepPrompt};
use crate::engine::model::NoteKind;

/// Reads the operator's keys (one per line) from stdin.
pub struct TerminalGate {
    input: Mutex<Box<dyn BufRead + Send>>,
}

impl TerminalGate {
    /// Err when stdin is not a terminal: nobody could answer.
    pub fn from_stdin() -> Result<Self, String> {
        if !std::io::stdin().is_terminal() {
            return Err(
                "--interactive and --pause-on-failure need a terminal on stdin (nobody could answer the prompts)".into(),
            );
        }
        Ok(TerminalGate {
            input: Mutex::new(Box::new(std::io::BufReader::new(std::io::stdin()))),
        })
    }

    fn read_line(&self) -> Option<String> {
        let mut line = String::new();
        let mut input = self.input.lock().unwrap_or_else(|p| p.into_inner());
        match input.read_line(&mut line) {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(line.trim().to_string()),
        }
    }
}

fn say(text: &str) {
    let mut err = std::io::stderr();
    let _ = write!(err, "{text}");
    let _ = err.flush();
}

impl StepGate for TerminalGate {
    fn before_step(&self, step: &StepPrompt<'_>) -> (Decision, Vec<OperatorNote>) {
        let mut notes = Vec::new();
        say(&format!(
            "\n== {} / {}: step {}/{}: {}\n",
            step.suite,
            step.case,
            step.index + 1,
            step.total,
            step.name
        ));
        loop {
            say("[Enter] run  [s] skip  [p] pause  [n] note  [a] abort > ");
            // End of input: nobody is there any more; stop safely.
            let Some(key) = self.read_line() else {
                return (Decision::Abort, notes);
            };
            match key.as_str() {
                "" => return (Decision::Run, notes),
                "s" => return (Decision::Skip, notes),
                "a" => return (Decision::Abort, notes),
                "p" => {
                    let paused = OperatorNote::new(NoteKind::Pause, "paused");
                    say("paused; [Enter] to continue > ");
                    let _ = self.read_line();
                    let secs = paused.at.elapsed().as_secs_f64();
                    notes.push(OperatorNote {
                        text: format!("paused for {secs:.1}s"),
                        ..paused
                    });
                }
                "n" => {
                    let at = OperatorNote::new(NoteKind::Note, "");
                    say("note> ");
                    if let Some(text) = self.read_line().filter(|t| !t.is_empty()) {
                        notes.push(OperatorNote { text, ..at });
                        say("noted\n");
                    }
                }
                other => say(&format!("unknown key {other:?}\n")),
            }
        }
    }

    fn on_failure(&self, suite: &str, case: &str, message: &str) -> Vec<OperatorNote> {
        let mut notes = Vec::new();
        say(&format!(
            "\n!! {suite} / {case} failed: {message}\n   The cluster is as the scenario left it: inspect it now.\n"
        ));
        loop {
            say("[Enter] restore and continue  [n] note > ");
            match self.read_line().as_deref() {
                None | Some("") => return notes,
                Some("n") => {
                    let at = OperatorNote::new(NoteKind::Note, "");
                    say("note> ");
                    if let Some(text) = self.read_line().filter(|t| !t.is_empty()) {
                        notes.push(OperatorNote { text, ..at });
                    }
                }
                Some(other) => say(&format!("unknown key {other:?}\n")),
            }
        }
    }
}
