//! The AI side: gather cluster context (redacted, optionally anonymized,
//! trimmed to a token budget), render the prompt, ask a provider for
//! scenarios, validate and repair them, and lock them. It produces
//! scenarios; it never executes them.

#![warn(unreachable_pub)]

mod anonymize;
mod answer;
pub mod budget;
mod candidate;
mod check;
pub mod context;
pub mod explore;
pub mod generate;
mod known;
pub mod lockfile;
mod preamble;
pub mod prompt;
pub mod provider;
mod redact;
mod references;
pub mod remediate;
