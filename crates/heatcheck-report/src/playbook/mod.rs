//! The game-day playbook: one document per `heatcheck playbook` run, built
//! from the suites, their lockfiles and the guard's plan, rendered as
//! Markdown or HTML (src/report/doc.rs). It never calls the cluster: the
//! command passes in what a cluster answered (dry runs, the exact Role,
//! gateway URLs) when one was given.
//!
//! The document structure of a suite is `suite.rs`, what must be in place
//! first `prerequisites.rs`, each scenario (blast radius, expectations,
//! remediation, rollback) `scenario.rs`, and each step's words and kubectl
//! commands `steps.rs`.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

use super::doc::{Block, Doc};
use heatcheck_format::{
    template_context, GatewayResolver, Scenario, Step, StepAction, Suite, Templater,
};
use heatcheck_guard::{EffectivePolicy, Touch, Violation};

mod prerequisites;
mod scenario;
mod steps;
mod suite;

/// Everything one playbook says.
pub struct PlaybookInput {
    pub version: String,
    /// As printed; the command decides (today, or `--date`).
    pub date: String,
    /// `server (context)` when a cluster was asked; None: from the suites alone.
    pub cluster: Option<String>,
    pub suites: Vec<SuiteInput>,
}

pub struct SuiteInput {
    pub suite: Suite,
    /// The suite file as the user named it.
    pub file: String,
    pub sha256: String,
    pub lock: Option<LockInput>,
    pub policy: EffectivePolicy,
    pub notes: Vec<String>,
    pub violations: Vec<Violation>,
    pub vars: Vec<(String, String)>,
    /// Gateway `namespace/name` -> base URL, as the cluster publishes it.
    pub gateways: BTreeMap<String, String>,
    pub cluster: Option<ClusterAnswers>,
    /// Scenario name -> its verified fix (`heatcheck remediate`), shown beside it.
    pub fixes: super::fixes::Fixes,
}

pub struct LockInput {
    pub file: String,
    pub sha256: String,
    pub generated_by: String,
    pub scenarios: Vec<Scenario>,
}

/// What `plan` learned from the cluster.
#[derive(Default)]
pub struct ClusterAnswers {
    /// The least-privilege Role(s) as YAML.
    pub rbac_yaml: String,
    /// (case name, step index) -> "verb object: answer" lines.
    pub steps: BTreeMap<(String, usize), Vec<String>>,
}

/// The shell variable standing for a gateway's base URL: `GATEWAY_MY_GATEWAY`.
pub(crate) fn gateway_var(name: &str) -> String {
    let up: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("GATEWAY_{up}")
}

/// `{{gateway "x"}}` becomes the resolved URL, else `$GATEWAY_X` (set in the prerequisites).
struct PlaybookGateways(BTreeMap<String, String>);

impl GatewayResolver for PlaybookGateways {
    fn gateway_url(&self, namespace: &str, name: &str) -> Result<String, String> {
        Ok(self
            .0
            .get(&format!("{namespace}/{name}"))
            .cloned()
            .unwrap_or_else(|| format!("${}", gateway_var(name))))
    }
}

/// What a step touches, with faults labelled for `$RUN_ID` as a run labels them.
fn touches(suite: &Suite, t: &Templater, step: &Step, i: usize) -> Result<Vec<Touch>, String> {
    let mut list = heatcheck_guard::touches(suite, t, step, i)?;
    if matches!(step.action, StepAction::Fault(_)) {
        for tc in &mut list {
            if let Some(l) = tc
                .object
                .as_mut()
                .and_then(|o| o.pointer_mut("/metadata/labels/heatcheck.dev~1run-id"))
            {
                *l = Value::String("$RUN_ID".into());
            }
        }
    }
    Ok(list)
}

fn templater(s: &SuiteInput) -> Templater {
    let mut ctx = template_context(&s.suite, "$RUN_ID");
    for (k, v) in &s.vars {
        ctx.insert(k.clone(), Value::String(v.clone()));
    }
    Templater::new(ctx, Arc::new(PlaybookGateways(s.gateways.clone())))
}

/// The playbook as a document (render with `to_markdown` / `to_html`).
pub fn build(input: &PlaybookInput) -> Doc {
    let names: Vec<&str> = input
        .suites
        .iter()
        .map(|s| s.suite.metadata.name.as_str())
        .collect();
    let mut d = Doc::new(format!("Game-day playbook: {}", names.join(", ")));
    d.push(Block::Table(
        vec!["".into(), "".into()],
        vec![
            vec!["heatcheck".into(), format!("`{}`", input.version)],
            vec!["date".into(), input.date.clone()],
            vec![
                "cluster".into(),
                input
                    .cluster
                    .clone()
                    .unwrap_or_else(|| "none: written from the suites alone (no dry run)".into()),
            ],
        ],
    ));
    let mut rows = Vec::new();
    for s in &input.suites {
        rows.push(vec![
            format!("`{}`", s.file),
            format!("`{}`", s.sha256),
            "suite".into(),
        ]);
        if let Some(l) = &s.lock {
            rows.push(vec![
                format!("`{}`", l.file),
                format!("`{}`", l.sha256),
                format!("lockfile ({})", l.generated_by),
            ]);
        }
    }
    d.h(2, "Sources");
    d.push(Block::Table(
        vec!["file".into(), "sha256".into(), "what".into()],
        rows,
    ));
    d.p("Run it as rehearsed: `heatcheck run SUITE --locked` does every step below, checks every expectation and restores the cluster. The commands beside each step are the hand-run equivalent, for reading along or for doing it without heatcheck.");
    for s in &input.suites {
        d.push(Block::Break);
        suite::suite_section(&mut d, s);
    }
    d
}

fn fixtures(suite: &Suite) -> Vec<Step> {
    let mut out = Vec::new();
    if suite.spec.target.create_namespace {
        let ns = &suite.spec.target.namespace;
        let mut step = Step::new(StepAction::Apply(heatcheck_format::ApplyStep {
            file: None,
            manifest: Some(format!(
                "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n"
            )),
            namespace: None,
        }));
        step.name = Some(format!("create namespace {ns}"));
        out.push(step);
    }
    out.extend(suite.spec.fixtures.iter().cloned());
    out
}

fn all_scenarios(s: &SuiteInput) -> Vec<(Scenario, &'static str)> {
    let mut out: Vec<(Scenario, &'static str)> = s
        .suite
        .spec
        .scenarios
        .iter()
        .map(|sc| (sc.clone(), "suite"))
        .collect();
    if let Some(l) = &s.lock {
        out.extend(l.scenarios.iter().map(|sc| (sc.clone(), "lock")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateway_variables_are_shell_names() {
        assert_eq!(gateway_var("my-gateway"), "GATEWAY_MY_GATEWAY");
        let r = PlaybookGateways(BTreeMap::from([(
            "ns/a".to_string(),
            "http://127.0.0.9".to_string(),
        )]));
        assert_eq!(r.gateway_url("ns", "a").unwrap(), "http://127.0.0.9");
        assert_eq!(r.gateway_url("ns", "b").unwrap(), "$GATEWAY_B");
    }
}
