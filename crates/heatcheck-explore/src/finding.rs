//! Findings: what failed, how badly, the smallest scenario that shows it,
//! and the resilience score. `--findings FILE.json` is [`FindingsReport`]
//! (schema: `schemas/findings.schema.json`).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::catalog::WeaknessClass;
use heatcheck_engine::model::{CaseReport, CaseStatus};

/// Worst first: a route that lastingly serves the wrong backend, lasting
/// errors, an outage while the change is made, a missed SLO.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Severity {
    SloBreach,
    Outage,
    LastingErrors,
    LastingMisrouting,
}

impl Severity {
    /// The name in the findings JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::SloBreach => "slo-breach",
            Severity::Outage => "outage",
            Severity::LastingErrors => "lasting-errors",
            Severity::LastingMisrouting => "lasting-misrouting",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    Catalog,
    Ai,
}

#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    /// Stable across runs: `<entry>/<Kind>/<ns>/<name>`.
    pub id: String,
    pub title: String,
    pub class: WeaknessClass,
    pub severity: Severity,
    /// `Kind/ns/name` of what the scenario changes.
    pub objects: Vec<String>,
    /// The (minimized) heatcheck scenario, as in suite files.
    pub scenario: Value,
    /// The failing checks, outages and what the twin answered.
    pub evidence: Vec<String>,
    /// Seconds of outage the probes measured (0 when none).
    pub outage_seconds: f64,
    pub remediation: Vec<String>,
    /// Failed on some re-runs on fresh twins, not all.
    pub flaky: bool,
    pub origin: Origin,
    /// The probes (by name, of the explored suite) it was judged with:
    /// `explore --lock` gives the locked scenario these as its own.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub probes: Vec<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Tokens {
    pub input: u64,
    pub output: u64,
}

/// The resilience score: the share of the catalog classes that apply to
/// the namespace (a candidate of the class ran) that it survived.
#[derive(Clone, Debug, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Resilience {
    /// 0-100.
    pub score: u32,
    pub survived: Vec<WeaknessClass>,
    pub failed: Vec<WeaknessClass>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FindingsReport {
    pub suite: String,
    pub namespace: String,
    pub findings: Vec<Finding>,
    /// Candidates run on twins.
    pub candidates: usize,
    /// Candidates the policy refused (never run).
    pub refused: usize,
    /// Candidates left when the budget ran out.
    pub skipped: usize,
    pub duration_seconds: f64,
    pub tokens: Tokens,
    pub resilience: Resilience,
    /// Why the model's rounds stopped early (its provider failed); the
    /// catalog's results stand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_error: Option<String>,
}

/// What a candidate's case on its twin says.
#[derive(Clone, Debug, PartialEq)]
pub enum Judgement {
    Held,
    /// The candidate itself could not run (a step failed): not a finding.
    Broken(String),
    Failed {
        severity: Severity,
        evidence: Vec<String>,
        outage_seconds: f64,
    },
}

/// Failed checks and outages, worst first; a case that errored in its own
/// steps is a broken candidate, not a weakness.
pub fn judge(case: &CaseReport) -> Judgement {
    let mut evidence = Vec::new();
    let mut severity: Option<Severity> = None;
    let mut worse = |s: Severity| severity = Some(severity.map_or(s, |o| o.max(s)));
    for a in case.assertions.iter().filter(|a| !a.passed) {
        evidence.push(format!("check \"{}\" failed: {}", a.name, a.message));
        // A probe's verdict is about the change (its outage is counted
        // below); a check after the change is lasting. A 200 from the wrong
        // pod is misrouting; anything else is an error.
        if a.name.starts_with("probe ") {
            worse(Severity::SloBreach);
        } else if a.message.contains("$.pod") {
            worse(Severity::LastingMisrouting);
        } else {
            worse(Severity::LastingErrors);
        }
    }
    let mut outage = 0.0;
    for p in &case.probes {
        let seconds: f64 = p.outages.iter().map(|o| o.duration.as_secs_f64()).sum();
        if seconds > 0.0 {
            outage += seconds;
            evidence.push(format!(
                "probe \"{}\": {:.1}s of outage, {} of {} requests failed",
                p.name, seconds, p.failures, p.count
            ));
            worse(Severity::Outage);
        }
    }
    match &case.status {
        CaseStatus::Passed | CaseStatus::Skipped { .. } if severity.is_none() => Judgement::Held,
        CaseStatus::Errored { message, .. } if severity.is_none() => {
            Judgement::Broken(message.clone())
        }
        CaseStatus::Failed { message, .. } if severity.is_none() => {
            // Failed without a failed check or an outage: a probe's SLO.
            evidence.push(message.clone());
            Judgement::Failed {
                severity: Severity::SloBreach,
                evidence,
                outage_seconds: outage,
            }
        }
        _ => Judgement::Failed {
            severity: severity.unwrap_or(Severity::SloBreach),
            evidence,
            outage_seconds: outage,
        },
    }
}

/// The JSON Schema of `--findings FILE.json` (schemas/findings.schema.json).
pub fn findings_schema() -> Value {
    let mut s =
        serde_json::to_value(schemars::schema_for!(FindingsReport)).expect("schema serializes");
    s["$id"] = Value::String("https://heatcheck.dev/schemas/findings.schema.json".into());
    s["title"] = Value::String("heatcheck explore findings".into());
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fails when schemas/findings.schema.json differs from the types.
    /// Regenerate with `HEATCHECK_UPDATE_SCHEMAS=1 cargo test -p heatcheck-explore`.
    #[test]
    fn the_checked_in_schema_is_up_to_date() {
        let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../schemas/findings.schema.json");
        let mut want = serde_json::to_string_pretty(&findings_schema()).unwrap();
        want.push('\n');
        if std::env::var_os("HEATCHECK_UPDATE_SCHEMAS").is_some() {
            std::fs::write(&path, &want).unwrap();
        }
        assert_eq!(
            std::fs::read_to_string(&path).ok().as_deref(),
            Some(want.as_str()),
            "out of date: {}; regenerate with HEATCHECK_UPDATE_SCHEMAS=1 cargo test -p heatcheck-explore",
            path.display()
        );
    }

    #[test]
    fn names_are_the_json_names() {
        for s in [
            Severity::SloBreach,
            Severity::Outage,
            Severity::LastingErrors,
            Severity::LastingMisrouting,
        ] {
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        for c in WeaknessClass::ALL.into_iter().chain([WeaknessClass::Other]) {
            assert_eq!(serde_json::to_value(c).unwrap(), c.as_str());
        }
    }

    #[test]
    fn a_case_that_errored_in_its_own_steps_is_broken_not_a_finding() {
        let case: CaseReport = serde_json::from_value(serde_json::json!({
            "name": "x", "kind": "scenario", "status": "errored",
            "message": "step 1 failed", "detail": "", "durationSeconds": 1.0,
        }))
        .unwrap();
        assert_eq!(judge(&case), Judgement::Broken("step 1 failed".into()));
    }

    #[test]
    fn a_wrong_backend_is_worse_than_an_error() {
        let case: CaseReport = serde_json::from_value(serde_json::json!({
            "name": "x", "kind": "scenario", "status": "failed", "message": "2 checks", "detail": "",
            "durationSeconds": 1.0,
            "assertions": [
                {"name": "a", "passed": false, "message": "expected status 200, got 500", "attempts": 1, "durationSeconds": 0.1},
                {"name": "b", "passed": false, "message": "$.pod: \"v3-x\" does not match ^(v1)-", "attempts": 1, "durationSeconds": 0.1},
            ],
        }))
        .unwrap();
        let Judgement::Failed {
            severity, evidence, ..
        } = judge(&case)
        else {
            panic!("a failed check is a finding");
        };
        assert_eq!(severity, Severity::LastingMisrouting);
        assert_eq!(evidence.len(), 2);
    }
}
