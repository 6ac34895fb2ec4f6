//! Errors of the suite format, rendered as `file:line:col: message` with a
//! source snippet and an optional `did you mean` hint.

use std::fmt;
use std::path::PathBuf;

/// One problem found in a suite file.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Diagnostic {
    /// The suite file, as given by the caller.
    pub file: PathBuf,
    /// Where in the document, e.g. `spec.scenarios[2].steps[0].wait`.
    pub yaml_path: Option<String>,
    /// 1-based line and column, when known.
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
    /// e.g. `did you mean "apply"?`
    pub hint: Option<String>,
    /// The source line at `line`, for the snippet.
    pub(crate) source_line: Option<String>,
}

impl Diagnostic {
    /// A diagnostic located at `line:column` of `text` (1-based).
    pub(crate) fn at(
        file: impl Into<PathBuf>,
        text: &str,
        line: usize,
        column: usize,
        message: impl Into<String>,
    ) -> Self {
        Diagnostic {
            file: file.into(),
            yaml_path: None,
            line: Some(line),
            column: Some(column.max(1)),
            message: message.into(),
            hint: None,
            source_line: text.lines().nth(line.saturating_sub(1)).map(str::to_string),
        }
    }

    /// A diagnostic with no known position.
    pub(crate) fn unlocated(file: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Diagnostic {
            file: file.into(),
            yaml_path: None,
            line: None,
            column: None,
            message: message.into(),
            hint: None,
            source_line: None,
        }
    }

    pub(crate) fn with_hint(mut self, hint: Option<String>) -> Self {
        self.hint = hint;
        self
    }

    pub(crate) fn with_yaml_path(mut self, path: impl Into<String>) -> Self {
        self.yaml_path = Some(path.into());
        self
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let file = self.file.display();
        let (Some(line), Some(col)) = (self.line, self.column) else {
            match &self.yaml_path {
                Some(p) if !p.is_empty() => write!(f, "{file}: {p}: {}", self.message)?,
                _ => write!(f, "{file}: {}", self.message)?,
            }
            if let Some(h) = &self.hint {
                write!(f, "\n  = help: {h}")?;
            }
            return Ok(());
        };
        write!(f, "{file}:{line}:{col}: {}", self.message)?;
        // Gutter as wide as the line number plus one space, like rustc.
        let pad = " ".repeat(line.to_string().len() + 1);
        if let Some(src) = &self.source_line {
            // Keep tabs so the caret lines up under the offending character.
            let lead: String = src
                .chars()
                .take(col - 1)
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            write!(f, "\n{pad}|\n {line} | {src}\n{pad}| {lead}^")?;
        }
        if let Some(h) = &self.hint {
            write!(f, "\n{pad}= help: {h}")?;
        }
        Ok(())
    }
}

/// Why a suite (or a manifest it names) could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SuiteError {
    /// The suite file itself cannot be read.
    #[error("{}: cannot read file: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// YAML syntax or shape error (stops at the first one).
    #[error("{0}")]
    Parse(Box<Diagnostic>),
    /// Semantic problems: all of them, in document order.
    #[error("{}", render_all(.0))]
    Invalid(Vec<Diagnostic>),
    /// A manifest file named by a step cannot be read.
    #[error("manifest file \"{written}\" (resolved to {}) cannot be read: {source}", path.display())]
    Manifest {
        written: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A step that cannot be used as given (only reachable when validation was skipped).
    #[error("{0}")]
    Other(String),
}

impl SuiteError {
    /// The located problems (Parse: one, Invalid: all; others: none).
    pub fn diagnostics(&self) -> Vec<&Diagnostic> {
        match self {
            SuiteError::Parse(d) => vec![d],
            SuiteError::Invalid(ds) => ds.iter().collect(),
            _ => Vec::new(),
        }
    }
}

fn render_all(ds: &[Diagnostic]) -> String {
    let mut out = ds
        .iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("\n\n");
    if ds.len() > 1 {
        out.push_str(&format!("\n\n{} problems found", ds.len()));
    }
    out
}

/// `did you mean "x"?` when a candidate is close enough to `got`.
pub(crate) fn suggest(got: &str, candidates: &[&str]) -> Option<String> {
    let lower = got.to_lowercase();
    candidates
        .iter()
        .map(|c| {
            (
                c,
                strsim::normalized_damerau_levenshtein(&lower, &c.to_lowercase()),
            )
        })
        .filter(|(_, score)| *score >= 0.6)
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(c, _)| format!("did you mean \"{c}\"?"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_snippet_caret_and_hint() {
        let text = "a: 1\n  - aplly: {}\n";
        let d = Diagnostic::at("x.yaml", text, 2, 5, "unknown step \"aplly\"")
            .with_hint(Some("did you mean \"apply\"?".into()));
        assert_eq!(
            d.to_string(),
            "x.yaml:2:5: unknown step \"aplly\"\n  |\n 2 |   - aplly: {}\n  |     ^\n  = help: did you mean \"apply\"?"
        );
    }

    #[test]
    fn unlocated_names_file_and_path() {
        let d = Diagnostic::unlocated("x.yaml", "boom").with_yaml_path("spec.target");
        assert_eq!(d.to_string(), "x.yaml: spec.target: boom");
    }

    #[test]
    fn suggestions_need_similarity() {
        let kinds = ["apply", "create", "delete", "wait"];
        assert_eq!(
            suggest("aplly", &kinds).as_deref(),
            Some("did you mean \"apply\"?")
        );
        assert_eq!(
            suggest("wiat", &kinds).as_deref(),
            Some("did you mean \"wait\"?")
        );
        assert_eq!(
            suggest("Delete", &kinds).as_deref(),
            Some("did you mean \"delete\"?")
        );
        assert_eq!(suggest("frobnicate", &kinds), None);
    }
}
