//! The commands behind the CLI. Each returns `Result<(), Error>`; `main`
//! turns an error into the exit code (see `error.rs`).

pub mod abort;
pub mod connect;
pub mod deploy;
#[cfg(feature = "sandbox")]
pub mod explore;
pub mod gameday;
pub mod generate;
pub mod list;
pub mod mcp;
pub mod notify;
pub mod plan;
pub mod playbook;
pub mod prompt;
pub mod recover;
#[cfg(feature = "sandbox")]
pub mod remediate;
pub mod report;
pub mod run;
pub mod runs;
#[cfg(feature = "sandbox")]
pub mod sandbox;
pub mod scenarios;
pub mod schema;
pub mod validate;
pub mod verify;

use std::path::{Path, PathBuf};

use crate::suite::{load_many, Suite, SuiteError};

/// Logs go to stderr; RUST_LOG wins over --log.
pub fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| crate::stderr::Quiet)
        .with_ansi(colors_enabled())
        .try_init();
}

/// Colours only on a terminal and never with NO_COLOR set.
pub fn colors_enabled() -> bool {
    use std::io::IsTerminal;
    std::env::var_os("NO_COLOR").is_none() && std::io::stderr().is_terminal()
}

/// rustls needs one crypto provider for the whole process (ring: no C).
pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime starts")
}

/// Loads suites from files and directories. Err holds every problem found.
pub fn load_suites(paths: &[PathBuf]) -> Result<Vec<Suite>, Vec<(PathBuf, SuiteError)>> {
    let mut ok = Vec::new();
    let mut bad = Vec::new();
    for (path, res) in load_many(paths) {
        match res {
            Ok(s) => ok.push(s),
            Err(e) => bad.push((path, e)),
        }
    }
    if paths.iter().all(|p| p.exists()) && ok.is_empty() && bad.is_empty() {
        bad.push((
            paths[0].clone(),
            SuiteError::Other(format!("no suite files found in {}", display_paths(paths))),
        ));
    }
    for p in paths {
        if !p.exists() {
            bad.push((
                p.clone(),
                SuiteError::Other(format!("{}: no such file or directory", p.display())),
            ));
        }
    }
    if bad.is_empty() {
        Ok(ok)
    } else {
        Err(bad)
    }
}

pub(crate) fn display_paths(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The suites, or every load error: what each command that takes
/// SUITE... does first.
pub fn load_suites_checked(paths: &[PathBuf]) -> Result<Vec<Suite>, crate::error::Error> {
    load_suites(paths).map_err(crate::error::Error::Suites)
}

pub fn print_suite_errors(errors: &[(PathBuf, SuiteError)]) {
    for (_, e) in errors {
        stderr_line!("error: {e}\n");
    }
}

pub fn relative(p: &Path) -> String {
    std::env::current_dir()
        .ok()
        .and_then(|cwd| p.strip_prefix(cwd).ok().map(|r| r.display().to_string()))
        .unwrap_or_else(|| p.display().to_string())
}

/// Writes a report file, creating its directory first: every command that
/// writes one (run, explore, remediate, report) does it this way.
pub(crate) fn write_file(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, text)
}
