use std::path::PathBuf;

use serde_json::json;

use crate::error::Error;
use crate::suite::{load_many, SuiteError};

/// Validates every suite under the paths, reporting every problem of every file.
pub fn validate(paths: &[PathBuf], json_output: bool) -> Result<(), Error> {
    let mut results = load_many(paths);
    for p in paths {
        if !p.exists() {
            results.push((
                p.clone(),
                Err(SuiteError::Other(format!(
                    "{}: no such file or directory",
                    p.display()
                ))),
            ));
        }
    }
    let invalid = results.iter().filter(|(_, r)| r.is_err()).count();
    if json_output {
        let files: Vec<_> = results
            .iter()
            .map(|(path, r)| match r {
                Ok(s) => json!({"file": path.display().to_string(), "valid": true, "suite": s.metadata.name, "scenarios": s.spec.scenarios.len()}),
                Err(e) => json!({
                    "file": path.display().to_string(),
                    "valid": false,
                    "problems": e.diagnostics().iter().map(|d| serde_json::to_value(d).unwrap_or_default()).collect::<Vec<_>>(),
                    "message": e.to_string(),
                }),
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({"files": files, "invalid": invalid}))
                .expect("serializes")
        );
    } else {
        for (path, r) in &results {
            match r {
                Ok(s) => println!(
                    "ok      {} (suite {}, {} scenarios)",
                    path.display(),
                    s.metadata.name,
                    s.spec.scenarios.len()
                ),
                Err(e) => stderr_line!("error: {e}\n"),
            }
        }
        if results.is_empty() {
            return Err(none_found(paths));
        }
        let n = results.len();
        println!("{} valid, {invalid} invalid", n - invalid);
    }
    if results.is_empty() {
        return Err(none_found(paths));
    }
    if invalid > 0 {
        // Every problem was printed above, file by file.
        return Err(Error::Verdict(crate::exit::RunOutcome::Invalid));
    }
    Ok(())
}

/// The same words in both output modes.
fn none_found(paths: &[PathBuf]) -> Error {
    Error::invalid(format!(
        "no suite files found in {}",
        super::display_paths(paths)
    ))
}
