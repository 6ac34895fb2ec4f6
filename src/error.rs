//! The one place where what went wrong becomes an exit code (as nextest's
//! `ExpectedError::process_exit_code`): every command returns
//! `Result<(), Error>` and `main` prints the error and exits with
//! [`Error::exit_code`]. The codes themselves are defined in `exit`.

use std::fmt::Display;
use std::path::PathBuf;

use crate::exit::{self, RunOutcome};
use crate::suite::SuiteError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Suites that did not load: every problem of every file.
    #[error("{} suite file(s) could not be loaded", .0.len())]
    Suites(Vec<(PathBuf, SuiteError)>),
    /// Bad arguments or suite content, a refused or unsafe run: nothing was run.
    #[error("{0}")]
    Invalid(String),
    /// The cluster, the LLM or Prometheus could not be reached.
    #[error("{0}")]
    Unreachable(String),
    /// A check failed (e.g. generation gave no valid scenario).
    #[error("{0}")]
    Failed(String),
    /// Changes are still in the cluster; the message says what and how to recover.
    #[error("{0}")]
    RestoreFailed(String),
    /// A finished run whose verdict is not "passed"; what failed was
    /// reported as it happened, so nothing more is printed.
    #[error("the run ended: {0:?}")]
    Verdict(RunOutcome),
}

impl Error {
    pub fn invalid(msg: impl Display) -> Self {
        Error::Invalid(msg.to_string())
    }

    pub fn unreachable(msg: impl Display) -> Self {
        Error::Unreachable(msg.to_string())
    }

    /// A dependency's failure: `Unreachable` when it did not answer, else
    /// `Invalid` (it answered, and refused).
    pub fn reaching(unreachable: bool, msg: impl Display) -> Self {
        if unreachable {
            Error::unreachable(msg)
        } else {
            Error::invalid(msg)
        }
    }

    /// The same error with `context: ` in front of its message.
    pub fn context(self, context: impl Display) -> Self {
        match self {
            Error::Invalid(m) => Error::Invalid(format!("{context}: {m}")),
            Error::Unreachable(m) => Error::Unreachable(format!("{context}: {m}")),
            Error::Failed(m) => Error::Failed(format!("{context}: {m}")),
            Error::RestoreFailed(m) => Error::RestoreFailed(format!("{context}: {m}")),
            e @ (Error::Suites(_) | Error::Verdict(_)) => e,
        }
    }

    /// A finished run: Ok when it passed.
    pub fn verdict(outcome: RunOutcome) -> Result<(), Error> {
        match outcome {
            RunOutcome::Passed => Ok(()),
            o => Err(Error::Verdict(o)),
        }
    }

    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Suites(_) | Error::Invalid(_) => exit::INVALID,
            Error::Unreachable(_) => exit::UNREACHABLE,
            Error::Failed(_) => exit::TEST_FAILED,
            Error::RestoreFailed(_) => exit::RESTORE_FAILED,
            Error::Verdict(o) => o.exit_code(),
        }
    }

    /// What the user reads on stderr.
    pub fn print(&self) {
        match self {
            Error::Suites(errors) => crate::commands::print_suite_errors(errors),
            Error::Verdict(_) => {}
            e => stderr_line!("error: {e}"),
        }
    }
}

impl From<heatcheck_cluster::ClusterError> for Error {
    fn from(e: heatcheck_cluster::ClusterError) -> Self {
        Error::reaching(e.is_unreachable(), e)
    }
}

impl From<heatcheck_engine::incluster::JournalStoreError> for Error {
    fn from(e: heatcheck_engine::incluster::JournalStoreError) -> Self {
        if e.is_restore_failure() {
            Error::RestoreFailed(e.to_string())
        } else {
            Error::reaching(e.is_unreachable(), e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_of_error_has_its_documented_code() {
        let cases = [
            (Error::Suites(Vec::new()), 2),
            (Error::invalid("x"), 2),
            (Error::unreachable("x"), 3),
            (Error::Failed("x".into()), 1),
            (Error::RestoreFailed("x".into()), 5),
            (Error::Verdict(RunOutcome::Failed), 1),
            (Error::Verdict(RunOutcome::Aborted), 4),
            (Error::Verdict(RunOutcome::RestoreFailed), 5),
            (Error::reaching(true, "x"), 3),
            (Error::reaching(false, "x"), 2),
        ];
        for (e, code) in cases {
            assert_eq!(e.exit_code(), code, "{e:?}");
        }
        assert!(Error::verdict(RunOutcome::Passed).is_ok());
        assert_eq!(
            Error::unreachable("no answer")
                .context("suite a")
                .to_string(),
            "suite a: no answer"
        );
    }
}
