//! `heatcheck report`: saved JSON reports rendered again as HTML, without
//! re-running anything. One report gives the run page; several, a trend.

use std::path::{Path, PathBuf};

use crate::ai::lockfile::{self, sha256_hex};
use crate::engine::model::{RunEnvironment, RunReport, SuiteSource};
use crate::error::Error;
use crate::report::html::{run_html_with_fixes, trend_html};
use crate::suite::Scenario;
use crate::suite::Suite;

pub fn report(paths: &[PathBuf], html: &Path, remediation: &[PathBuf]) -> Result<(), Error> {
    let fixes = super::remediate::read_fixes(remediation)?;
    let mut reports = Vec::new();
    for p in paths {
        let text = std::fs::read_to_string(p)
            .map_err(|e| Error::invalid(format!("cannot read {}: {e}", p.display())))?;
        let report = serde_json::from_str::<RunReport>(&text).map_err(|e| {
            Error::invalid(format!(
                "{}:{}:{}: not a heatcheck JSON report: {e}",
                p.display(),
                e.line(),
                e.column()
            ))
        })?;
        reports.push(report);
    }
    let page = match reports.as_slice() {
        [one] => run_html_with_fixes(one, &fixes),
        many => trend_html(many),
    };
    super::run::write_file(html, &page)
        .map_err(|e| Error::invalid(format!("cannot write {}: {e}", html.display())))?;
    eprintln!("HTML report written to {}", html.display());
    Ok(())
}

/// Where the run happens and the exact suite files (content hashes).
pub fn environment(
    server: &str,
    context: Option<&str>,
    sandbox: bool,
    suites: &[(Suite, Vec<Scenario>)],
) -> RunEnvironment {
    RunEnvironment {
        heatcheck_version: env!("CARGO_PKG_VERSION").to_string(),
        cluster_server: server.to_string(),
        context: context
            .map(str::to_string)
            .or_else(|| sandbox.then(|| "embedded sandbox".to_string())),
        suites: suites
            .iter()
            .map(|(s, locked)| {
                let lock = lockfile::lock_path(&s.source.path);
                SuiteSource {
                    name: s.metadata.name.clone(),
                    file: super::relative(&s.source.path),
                    sha256: sha256_hex(&std::fs::read(&s.source.path).unwrap_or_default()),
                    lock_sha256: (!locked.is_empty())
                        .then(|| std::fs::read(&lock).ok())
                        .flatten()
                        .map(|b| sha256_hex(&b)),
                }
            })
            .collect(),
    }
}
