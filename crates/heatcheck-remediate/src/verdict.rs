//! Whether a candidate counts: the finding's scenario now holds on its
//! twin, and every case of the suite that passed before the change still
//! passes after it.

use serde::{Deserialize, Serialize};

use heatcheck_engine::model::{CaseReport, CaseStatus};
use heatcheck_explore::finding::{judge, Judgement};
use heatcheck_explore::search::TwinRun;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "verdict", content = "reason", rename_all = "camelCase")]
pub enum Verdict {
    Verified,
    Rejected(String),
}

fn case_name(c: &CaseReport) -> String {
    format!("{} \"{}\"", c.kind.label(), c.name)
}

/// `finding`: the finding's scenario on a twin with the change;
/// `after`: the suite's cases with the change (Err: the suite did not run);
/// `before`: the suite's cases without it.
pub fn verdict(
    finding: &TwinRun,
    after: &Result<Vec<CaseReport>, String>,
    before: &[CaseReport],
) -> Verdict {
    match finding {
        TwinRun::Refused(m) if m.starts_with("refused by policy") => {
            return Verdict::Rejected(m.clone())
        }
        TwinRun::Refused(m) => return Verdict::Rejected(format!("refused by policy: {m}")),
        TwinRun::Broken(m) => {
            return Verdict::Rejected(format!("the twin does not run with the change: {m}"))
        }
        TwinRun::Case(case) => match judge(case) {
            Judgement::Held => {}
            Judgement::Broken(m) => {
                return Verdict::Rejected(format!(
                    "the finding's scenario does not run with the change: {m}"
                ))
            }
            Judgement::Failed { evidence, .. } => {
                return Verdict::Rejected(format!(
                    "the finding still fails: {}",
                    evidence.first().cloned().unwrap_or_default()
                ))
            }
        },
    }
    let after = match after {
        Ok(a) => a,
        Err(e) => return Verdict::Rejected(format!("the suite does not run with the change: {e}")),
    };
    let mut broken = Vec::new();
    for b in before.iter().filter(|b| b.status == CaseStatus::Passed) {
        let now = after.iter().find(|a| a.kind == b.kind && a.name == b.name);
        match now.map(|a| &a.status) {
            Some(CaseStatus::Passed) => {}
            Some(s) => broken.push(format!(
                "{}, which passed before, now {}: {}",
                case_name(b),
                s.label(),
                s.message().unwrap_or_default()
            )),
            None => broken.push(format!(
                "{}, which passed before, did not run",
                case_name(b)
            )),
        }
    }
    if broken.is_empty() {
        Verdict::Verified
    } else {
        Verdict::Rejected(format!("breaks {}", broken.join("; ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn case(name: &str, status: &str) -> CaseReport {
        let mut v =
            json!({"name": name, "kind": "scenario", "status": status, "durationSeconds": 1.0});
        if status != "passed" {
            v["message"] = json!("expected 1, got 2");
            v["detail"] = json!("");
        }
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn verified_only_when_the_finding_holds_and_nothing_that_passed_breaks() {
        let held = TwinRun::Case(Box::new(case("finding", "passed")));
        let before = vec![case("a", "passed"), case("b", "failed")];
        // b failed before: failing after is not the change's doing.
        let after = Ok(vec![case("a", "passed"), case("b", "failed")]);
        assert_eq!(verdict(&held, &after, &before), Verdict::Verified);
        let after = Ok(vec![case("a", "failed"), case("b", "passed")]);
        let Verdict::Rejected(why) = verdict(&held, &after, &before) else {
            panic!("a broken scenario rejects the change")
        };
        assert!(
            why.starts_with(
                "breaks scenario \"a\", which passed before, now failed: expected 1, got 2"
            ),
            "{why}"
        );
        let still = TwinRun::Case(Box::new(case("finding", "failed")));
        assert!(matches!(
            verdict(&still, &Ok(vec![]), &[]),
            Verdict::Rejected(w) if w.starts_with("the finding still fails")
        ));
        assert!(matches!(
            verdict(&held, &Err("fixtures failed".into()), &before),
            Verdict::Rejected(w) if w.contains("fixtures failed")
        ));
    }
}
