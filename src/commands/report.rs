//! `heatcheck report`: saved JSON reports rendered again as HTML, without
//! re-running anything. One report gives the run page; several, a trend.

use std::path::{Path, PathBuf};

use crate::engine::model::RunReport;
use crate::error::Error;
use crate::report::html::{run_html_with_fixes, trend_html};

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
    super::write_file(html, &page)
        .map_err(|e| Error::invalid(format!("cannot write {}: {e}", html.display())))?;
    stderr_line!("HTML report written to {}", html.display());
    Ok(())
}
