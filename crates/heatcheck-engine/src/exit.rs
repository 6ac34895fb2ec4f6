//! Exit codes: the one place they are defined (README and `--help` list them).

/// Everything passed.
pub const SUCCESS: i32 = 0;
/// A scenario, steady-state check or assertion failed.
pub const TEST_FAILED: i32 = 1;
/// The suite or the arguments are invalid (nothing was run).
pub const INVALID: i32 = 2;
/// The cluster or the LLM could not be reached.
pub const UNREACHABLE: i32 = 3;
/// Aborted by a stop condition or a signal; the cluster state was restored.
pub(crate) const ABORTED: i32 = 4;
/// Restoring failed: the cluster was NOT put back (the message says what is left).
pub const RESTORE_FAILED: i32 = 5;

/// The table printed in `--help` and README.
pub const TABLE: &str = "\
Exit codes:
  0  all passed
  1  a test failed
  2  the suite or arguments are invalid
  3  the cluster or LLM could not be reached
  4  aborted by a stop condition or signal (state restored)
  5  restore failed (state NOT restored: the message says what is left and how to recover)";

/// How a finished run ended; its exit code is [`RunOutcome::exit_code`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunOutcome {
    Passed,
    /// A scenario, steady-state check or assertion failed.
    Failed,
    /// Refused before anything ran (policy, a broken journal).
    Invalid,
    /// The cluster or a dependency did not answer.
    Unreachable,
    /// Stopped by a stop condition or a signal; restored.
    Aborted,
    /// Not restored.
    RestoreFailed,
}

impl RunOutcome {
    pub fn exit_code(self) -> i32 {
        match self {
            RunOutcome::Passed => SUCCESS,
            RunOutcome::Failed => TEST_FAILED,
            RunOutcome::Invalid => INVALID,
            RunOutcome::Unreachable => UNREACHABLE,
            RunOutcome::Aborted => ABORTED,
            RunOutcome::RestoreFailed => RESTORE_FAILED,
        }
    }

    /// The outcome a report's exit code stands for (reports keep the number).
    pub fn from_exit_code(code: i32) -> Self {
        match code {
            SUCCESS => RunOutcome::Passed,
            TEST_FAILED => RunOutcome::Failed,
            UNREACHABLE => RunOutcome::Unreachable,
            ABORTED => RunOutcome::Aborted,
            RESTORE_FAILED => RunOutcome::RestoreFailed,
            _ => RunOutcome::Invalid,
        }
    }

    /// The worse of two outcomes (as the larger exit code).
    pub fn max(self, other: RunOutcome) -> RunOutcome {
        if other.exit_code() > self.exit_code() {
            other
        } else {
            self
        }
    }
}
