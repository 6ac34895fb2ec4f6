//! The CI templates in examples/ci/ are valid for their platform (checked
//! against the platforms' public JSON Schemas: SchemaStore's
//! github-workflow.json and GitLab's ci.json, as the PyPI package
//! check-jsonschema vendors them, pinned in .ci/run) and cannot rot: every
//! `heatcheck` command they run is run here, with the template's variables,
//! and what they upload as artifacts is what those commands wrote.

use crate::common;

use std::path::PathBuf;

use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn yaml(path: &str) -> Value {
    let text = std::fs::read_to_string(root().join(path)).unwrap();
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A platform's schema as check-jsonschema vendors it (None: not installed,
/// which fails under CI).
fn validator(test: &str, schema: &str) -> Option<jsonschema::Validator> {
    let python = common::python_with(test, "check_jsonschema")?;
    let out = std::process::Command::new(python)
        .args([
            "-c",
            "import check_jsonschema, os; print(os.path.dirname(check_jsonschema.__file__))",
        ])
        .output()
        .expect("python runs");
    let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    let path = dir.join("builtin_schemas/vendor").join(schema);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let schema: Value = serde_json::from_str(&text).unwrap();
    Some(jsonschema::validator_for(&schema).unwrap_or_else(|e| panic!("{e}")))
}

fn errors(v: &jsonschema::Validator, doc: &Value) -> Vec<String> {
    v.iter_errors(doc)
        .map(|e| format!("{}: {e}", e.instance_path))
        .collect()
}

#[test]
fn the_github_workflow_is_valid_for_github_actions() {
    let Some(v) = validator(
        "the_github_workflow_is_valid_for_github_actions",
        "github-workflows.json",
    ) else {
        return;
    };
    let mut doc = yaml("examples/ci/github-actions.yml");
    assert_eq!(errors(&v, &doc), Vec::<String>::new());
    // The schema is no rubber stamp: a step that both runs and uses is refused.
    doc["jobs"]["heatcheck"]["steps"][0]["run"] = "true".into();
    assert!(!errors(&v, &doc).is_empty(), "a broken workflow passed");
}

#[test]
fn the_gitlab_job_is_valid_for_gitlab_ci() {
    let Some(v) = validator("the_gitlab_job_is_valid_for_gitlab_ci", "gitlab-ci.json") else {
        return;
    };
    let mut doc = yaml("examples/ci/gitlab-ci.yml");
    assert_eq!(errors(&v, &doc), Vec::<String>::new());
    doc["heatcheck"]["artifacts"]["when"] = "sometimes".into();
    assert!(!errors(&v, &doc).is_empty(), "a broken job passed");
}

/// The shell lines a template runs: GitHub steps' `run`, GitLab's
/// `before_script` and `script`.
fn shell_lines(doc: &Value) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(jobs) = doc["jobs"].as_object() {
        for job in jobs.values() {
            for step in job["steps"].as_array().into_iter().flatten() {
                if let Some(run) = step["run"].as_str() {
                    out.extend(run.lines().map(str::to_string));
                }
            }
        }
    } else if let Some(jobs) = doc.as_object() {
        for job in jobs.values() {
            for key in ["before_script", "script"] {
                for line in job[key].as_array().into_iter().flatten() {
                    out.push(line.as_str().unwrap().to_string());
                }
            }
        }
    }
    out
}

/// Words of a one-line shell command, `$VAR` / `"$VAR"` expanded from `vars`.
fn words(line: &str, vars: &[(&str, String)]) -> Vec<String> {
    let mut out = Vec::new();
    for w in line.split_whitespace() {
        let w = w.trim_matches('"');
        let w = match w.strip_prefix('$') {
            Some(name) => vars
                .iter()
                .find(|(k, _)| *k == name)
                .unwrap_or_else(|| panic!("{line}: ${name} is not set by the template"))
                .1
                .clone(),
            None => w.to_string(),
        };
        out.push(w);
    }
    out
}

/// Runs every `heatcheck` line of the template in a copy of a shipped suite
/// (the template's SUITES pointed at it), and checks that each file the
/// template uploads was written.
fn the_commands_run(template: &str, suites_var: &Value, artifacts: Vec<String>) {
    assert_eq!(suites_var, "suites/", "{template}: SUITES");
    let doc = yaml(template);
    let dir = tempfile::tempdir().unwrap();
    let suite = root().join("suites/httproute-conflict");
    common::copy_dir(&suite, &dir.path().join("suites/httproute-conflict"));
    let vars = [("SUITES", "suites/httproute-conflict/suite.yaml".to_string())];
    let lines: Vec<String> = shell_lines(&doc)
        .into_iter()
        .filter(|l| l.starts_with("heatcheck "))
        .collect();
    let subcommands: Vec<String> = lines
        .iter()
        .map(|l| l.split_whitespace().nth(1).unwrap().to_string())
        .collect();
    assert_eq!(subcommands, ["validate", "run"], "{template}: {lines:?}");
    for line in &lines {
        let w = words(line, &vars);
        let args: Vec<&str> = w[1..].iter().map(String::as_str).collect();
        let out = common::heatcheck_in(dir.path(), &args);
        assert_eq!(
            out.code, 0,
            "{template}: {line}\n--- stdout\n{}\n--- stderr\n{}",
            out.stdout, out.stderr
        );
    }
    for a in artifacts {
        assert!(
            dir.path().join(&a).is_file(),
            "{template}: uploads {a}, which no command wrote"
        );
    }
}

#[test]
fn the_github_workflow_runs_real_heatcheck_commands() {
    let doc = yaml("examples/ci/github-actions.yml");
    let steps = doc["jobs"]["heatcheck"]["steps"].as_array().unwrap();
    let upload = steps
        .iter()
        .find(|s| {
            s["uses"]
                .as_str()
                .is_some_and(|u| u.starts_with("actions/upload-artifact@"))
        })
        .expect("an upload-artifact step");
    let artifacts: Vec<String> = upload["with"]["path"]
        .as_str()
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let junit = steps
        .iter()
        .find(|s| {
            s["uses"]
                .as_str()
                .is_some_and(|u| u.starts_with("mikepenz/action-junit-report@"))
        })
        .expect("a JUnit annotation step");
    assert!(artifacts.contains(&junit["with"]["report_paths"].as_str().unwrap().to_string()));
    the_commands_run(
        "examples/ci/github-actions.yml",
        &doc["env"]["SUITES"],
        artifacts,
    );
}

#[test]
fn the_gitlab_job_runs_real_heatcheck_commands() {
    let doc = yaml("examples/ci/gitlab-ci.yml");
    let job = &doc["heatcheck"];
    let mut artifacts: Vec<String> = job["artifacts"]["paths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_string())
        .collect();
    artifacts.push(
        job["artifacts"]["reports"]["junit"]
            .as_str()
            .unwrap()
            .into(),
    );
    the_commands_run(
        "examples/ci/gitlab-ci.yml",
        &job["variables"]["SUITES"],
        artifacts,
    );
}
