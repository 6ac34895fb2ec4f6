//! Reading suite files: YAML -> typed [`Suite`] -> semantic validation.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_saphyr::{Error as YamlError, MessageFormatter, UserMessageFormatter};

use super::assertion::{ASSERTION_COMMON_KEYS, ASSERTION_KINDS};
use super::error::{suggest, Diagnostic, SuiteError};
use super::locate::{Locator, Pos};
use super::step::{STEP_COMMON_KEYS, STEP_KINDS};
use super::types::{Scenario, SourceInfo, Suite, API_VERSION, KIND};
use super::validate::validate_suite;

/// Read, parse and validate one suite file.
pub fn load_suite(path: &Path) -> Result<Suite, SuiteError> {
    let text = std::fs::read_to_string(path).map_err(|source| SuiteError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_suite(&text, path)
}

/// Parse and validate suite text. `origin` names the file in messages, and
/// its directory is the base of relative manifest paths.
pub fn parse_suite(text: &str, origin: &Path) -> Result<Suite, SuiteError> {
    check_header(text, origin)?;
    let mut suite: Suite = serde_saphyr::from_str(text)
        .map_err(|e| SuiteError::Parse(Box::new(yaml_diagnostic(&e, text, origin))))?;
    let parent = match origin.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let dir = std::path::absolute(&parent).unwrap_or(parent);
    suite.source = SourceInfo {
        path: origin.to_path_buf(),
        dir,
    };
    let target = &mut suite.spec.target;
    if target.allow_namespaces.is_empty() {
        target.allow_namespaces = vec![target.namespace.clone()];
    }
    let problems = validate_suite(&suite, text, origin);
    if problems.is_empty() {
        Ok(suite)
    } else {
        Err(SuiteError::Invalid(problems))
    }
}

/// Parse one scenario given as JSON (what the AI side produces).
/// Shape only: run the result through a suite's validation before executing it.
pub fn parse_scenario_json(v: &serde_json::Value) -> Result<Scenario, String> {
    serde_json::from_value(v.clone()).map_err(|e| e.to_string())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Header {
    api_version: Option<String>,
    kind: Option<String>,
}

/// apiVersion and kind first: for another format the shape errors that
/// would follow are noise.
fn check_header(text: &str, origin: &Path) -> Result<(), SuiteError> {
    // Shape problems (not a mapping, bad YAML) are reported by the full parse.
    let Ok(header) = serde_saphyr::from_str::<Header>(text) else {
        return Ok(());
    };
    let locator = Locator::new(text);
    let mut problems = Vec::new();
    let mut check = |field: &str, got: Option<String>, want: &str| {
        let message = match got {
            Some(g) if g == want => return,
            Some(g) => format!("unsupported {field} \"{g}\"; expected \"{want}\""),
            None => format!("missing required field \"{field}\" (expected \"{want}\")"),
        };
        let d = match locator.locate_value(field) {
            Some(pos) => Diagnostic::at(origin, text, pos.line, pos.column, message),
            None => Diagnostic::unlocated(origin, message),
        };
        problems.push(d.with_yaml_path(field));
    };
    check("apiVersion", header.api_version, API_VERSION);
    check("kind", header.kind, KIND);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(SuiteError::Invalid(problems))
    }
}

/// Turn a serde-saphyr error into our one diagnostic format.
pub(crate) fn yaml_diagnostic(err: &YamlError, text: &str, origin: &Path) -> Diagnostic {
    let inner = original(err);
    let (mut message, hint) = describe(inner, text);
    let location = err.location().or_else(|| inner.location());
    let Some(loc) = location.filter(|l| l.line() > 0) else {
        return Diagnostic::unlocated(origin, message).with_hint(hint);
    };
    let mut pos = Pos {
        line: loc.line() as usize,
        column: loc.column() as usize,
    };
    let locator = Locator::new(text);
    let yaml_path = locator.enclosing_mapping(pos).map(str::to_string);
    if let (YamlError::SerdeMissingField { .. }, Some(path)) = (inner, &yaml_path) {
        // The parser stops at the end of the mapping; point at the mapping instead.
        if !path.is_empty() {
            message = format!("{message} in {path}");
        }
        pos = locator.locate(path).unwrap_or(pos);
    }
    let d = Diagnostic::at(origin, text, pos.line, pos.column, message).with_hint(hint);
    match yaml_path {
        Some(p) => d.with_yaml_path(p),
        None => d,
    }
}

fn original(mut err: &YamlError) -> &YamlError {
    while let YamlError::WithSnippet { error, .. } | YamlError::AliasError { error, .. } = err {
        err = error;
    }
    err
}

fn one_of(expected: &[&str]) -> String {
    if expected.is_empty() {
        "no fields are allowed here".to_string()
    } else {
        format!("expected one of {}", expected.join(", "))
    }
}

/// The plain scalar starting at `line:column` (1-based) of `text`.
fn scalar_at(text: &str, line: usize, column: usize) -> String {
    let src = text.lines().nth(line.saturating_sub(1)).unwrap_or("");
    let rest: String = src.chars().skip(column.saturating_sub(1)).collect();
    let end = rest.find([',', '}', ']', '#']).unwrap_or(rest.len());
    rest[..end].trim().to_string()
}

/// Message and optional hint for one error.
fn describe(err: &YamlError, text: &str) -> (String, Option<String>) {
    match err {
        YamlError::SerdeUnknownVariant {
            variant, expected, ..
        } => {
            let (what, candidates): (&str, Vec<&str>) = if expected.as_slice() == STEP_KINDS {
                ("step", [STEP_KINDS, STEP_COMMON_KEYS].concat())
            } else if expected.as_slice() == ASSERTION_KINDS {
                (
                    "assertion kind",
                    [ASSERTION_KINDS, ASSERTION_COMMON_KEYS].concat(),
                )
            } else {
                ("value", expected.to_vec())
            };
            (
                format!("unknown {what} \"{variant}\"; {}", one_of(expected)),
                suggest(variant, &candidates),
            )
        }
        YamlError::SerdeUnknownField {
            field, expected, ..
        } => (
            format!("unknown field \"{field}\"; {}", one_of(expected)),
            suggest(field, expected),
        ),
        YamlError::SerdeMissingField { field, .. } => {
            (format!("missing required field \"{field}\""), None)
        }
        YamlError::SerdeInvalidType {
            unexpected,
            expected,
            ..
        } => (
            format!("invalid type: expected {expected}, found {unexpected}"),
            None,
        ),
        YamlError::SerdeInvalidValue {
            unexpected,
            expected,
            ..
        } => (
            format!("invalid value: expected {expected}, found {unexpected}"),
            None,
        ),
        YamlError::SerdeInvalidLength { len, expected, .. } => {
            (format!("invalid length {len}: expected {expected}"), None)
        }
        YamlError::Message { msg, .. } => (msg.clone(), None),
        YamlError::DuplicateMappingKey { key: Some(k), .. } => {
            (format!("duplicate key \"{k}\""), None)
        }
        YamlError::InvalidScalar { ty, location } => {
            let want = match *ty {
                "bool" => "true or false".to_string(),
                "f32" | "f64" => "a number".to_string(),
                t if t.starts_with('u') => format!("a non-negative integer ({t})"),
                t => format!("an integer ({t})"),
            };
            let found = scalar_at(text, location.line() as usize, location.column() as usize);
            (
                format!("invalid value: expected {want}, found \"{found}\""),
                None,
            )
        }
        other => {
            let text: Cow<'_, str> = UserMessageFormatter.format_message(other);
            (text.into_owned(), None)
        }
    }
}

/// Load several suites for `heatcheck validate`. Files are loaded as given;
/// directories are searched recursively (sorted) for suites:
/// - `*.yaml` / `*.yml` files only, skipping hidden entries;
/// - not lockfiles (`*.lock.yaml`, `*.lock.yml`) and nothing under a
///   directory named `manifests`;
/// - only files that declare themselves a suite: a top-level line
///   `kind: Suite` or `apiVersion: heatcheck.dev/...` (a textual sniff, so a
///   suite with broken YAML is still found and reported).
pub fn load_many(paths: &[PathBuf]) -> Vec<(PathBuf, Result<Suite, SuiteError>)> {
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            collect_suites(p, &mut files);
        } else {
            files.push(p.clone());
        }
    }
    files
        .into_iter()
        .map(|f| {
            let r = load_suite(&f);
            (f, r)
        })
        .collect()
}

fn collect_suites(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with('.') {
            continue;
        }
        if path.is_dir() {
            if name != "manifests" {
                collect_suites(&path, out);
            }
            continue;
        }
        let yaml = name.ends_with(".yaml") || name.ends_with(".yml");
        let lock = name.ends_with(".lock.yaml") || name.ends_with(".lock.yml");
        if yaml && !lock && std::fs::read_to_string(&path).is_ok_and(|t| declares_suite(&t)) {
            out.push(path);
        }
    }
}

/// A top-level `kind: Suite` or `apiVersion: heatcheck.dev/...` line.
fn declares_suite(text: &str) -> bool {
    text.lines().any(|line| {
        let unquote = |v: &str| v.trim().trim_matches(|c| c == '"' || c == '\'').to_string();
        if let Some(v) = line.strip_prefix("kind:") {
            unquote(v.split('#').next().unwrap_or("")) == KIND
        } else if let Some(v) = line.strip_prefix("apiVersion:") {
            unquote(v).starts_with("heatcheck.dev/")
        } else {
            false
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUITE: &str = "apiVersion: heatcheck.dev/v1alpha1\nkind: Suite\nmetadata: {name: s}\nspec: {target: {namespace: shop}}\n";

    #[test]
    fn load_many_expands_directories_by_the_documented_rule() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("nested/manifests")).unwrap();
        std::fs::write(d.join("a.yaml"), SUITE).unwrap();
        std::fs::write(d.join("nested/b.yml"), SUITE).unwrap();
        std::fs::write(d.join("broken.yaml"), "kind: Suite\nspec: [\n").unwrap();
        std::fs::write(d.join("a.lock.yaml"), SUITE).unwrap();
        std::fs::write(d.join("nested/manifests/m.yaml"), SUITE).unwrap();
        std::fs::write(d.join("route.yaml"), "apiVersion: v1\nkind: Service\n").unwrap();
        std::fs::write(d.join("notes.txt"), SUITE).unwrap();
        let found = load_many(&[d.to_path_buf()]);
        let names: Vec<String> = found
            .iter()
            .map(|(p, _)| p.strip_prefix(d).unwrap().display().to_string())
            .collect();
        assert_eq!(names, ["a.yaml", "broken.yaml", "nested/b.yml"]);
        assert!(found[0].1.is_ok() && found[2].1.is_ok());
        assert!(matches!(found[1].1, Err(SuiteError::Parse(_))));
        // An explicitly named file is always loaded.
        let named = load_many(&[d.join("route.yaml")]);
        assert!(named[0].1.is_err());
    }

    #[test]
    fn allow_namespaces_defaults_to_the_target() {
        let suite = parse_suite(SUITE, Path::new("s.yaml")).unwrap();
        assert_eq!(suite.spec.target.allow_namespaces, ["shop"]);
        assert!(suite.source.dir.is_absolute());
    }

    #[test]
    fn scenario_json_errors_are_strings() {
        let ok = parse_scenario_json(&serde_json::json!({"name": "n", "steps": [{"sleep": "1s"}]}))
            .unwrap();
        assert_eq!(ok.steps.len(), 1);
        let err = parse_scenario_json(&serde_json::json!({"name": "n", "steps": [{"slep": "1s"}]}))
            .unwrap_err();
        assert!(err.contains("slep"), "{err}");
    }

    const PROBED: &str = "apiVersion: heatcheck.dev/v1alpha1
kind: Suite
metadata: {name: s}
spec:
  target: {namespace: shop}
  probes:
    - {name: shop, http: {url: 'http://gw/shop'}, every: 100ms}
  scenarios:
    - name: kill one pod
      steps: [{sleep: 1s}]
      probes:
        - name: solo
          http: {url: 'http://gw/solo', timeout: 2s}
          every: 100ms
          mode: duringFault
          expect: {successRate: '>= 0.99', maxOutage: 500ms}
";

    #[test]
    fn a_scenario_carries_probes_of_its_own() {
        let suite = parse_suite(PROBED, Path::new("s.yaml")).unwrap();
        let sc = &suite.spec.scenarios[0];
        assert_eq!(sc.probes.len(), 1);
        assert_eq!(sc.probes[0].name, "solo");
        assert_eq!(sc.probes[0].mode, crate::ProbeMode::DuringFault);
        assert_eq!(sc.probes[0].expect.success_rate.as_deref(), Some(">= 0.99"));
        // Round trip: the same document back (what a lockfile stores).
        let back: Suite = serde_json::from_value(serde_json::to_value(&suite).unwrap()).unwrap();
        assert_eq!(back.spec.scenarios[0].probes, sc.probes);
        // The schemas (suite and scenario) know the field.
        for schema in [crate::suite_schema(), crate::scenario_schema()] {
            let text = schema.to_string();
            assert!(text.contains("\"probes\""), "{text}");
        }
        let scenario = &crate::scenario_schema()["properties"]["probes"];
        assert_eq!(scenario["type"], "array", "{scenario}");
    }

    #[test]
    fn bad_scenario_probes_are_reported_at_their_line_and_column() {
        let bad = PROBED
            .replace("name: solo", "name: shop")
            .replace("every: 100ms\n          mode", "every: 0s\n          mode")
            .replace("'>= 0.99'", "'0.99'");
        let err = parse_suite(&bad, Path::new("s.yaml"))
            .unwrap_err()
            .to_string();
        for want in [
            "s.yaml:12:17: probe name \"shop\" is a probe of the suite (spec.probes) already",
            "s.yaml:14:18: a probe interval must be greater than 0s",
            "s.yaml:16:33: invalid threshold \"0.99\"",
        ] {
            assert!(err.contains(want), "{want:?} in\n{err}");
        }
        // Twice in one scenario is refused too; an unknown key is a parse
        // error at its position.
        let twice = PROBED.replace(
            "      probes:\n",
            "      probes:\n        - {name: solo, http: {url: 'http://gw/x'}, every: 1s}\n",
        );
        let err = parse_suite(&twice, Path::new("s.yaml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("probe name \"solo\" is used twice"), "{err}");
        let unknown = PROBED.replace("mode: duringFault", "mood: duringFault");
        let err = parse_suite(&unknown, Path::new("s.yaml"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("s.yaml:15:11: "), "{err}");
        assert!(err.contains("mood"), "{err}");
    }

    #[test]
    fn missing_file_is_an_io_error_naming_it() {
        let err = load_suite(Path::new("/nonexistent/s.yaml")).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("/nonexistent/s.yaml: cannot read file"),
            "{err}"
        );
    }
}
