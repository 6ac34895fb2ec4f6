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
pub const ABORTED: i32 = 4;
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
