//! `--strategy ai|both`: the model's fixes, checked before any twin runs
//! (crate heatcheck-ai), as proposals for the twins.

use super::verify::{Outcome, Runner};
use crate::ai::remediate::FixChange;
use crate::error::Error;
use crate::suite::Suite;
use heatcheck_explore::Finding;
use heatcheck_remediate::{Change, Proposal, Refused, Verdict};

/// The model `--strategy ai|both` asks.
pub(super) struct Model {
    pub(super) backend: crate::ai::generate::ProviderBackend,
    /// --strategy ai: the catalog is not asked.
    pub(super) alone: bool,
}

/// What the model answered, over all findings.
#[derive(Default)]
pub(super) struct Asked {
    /// Per finding: its fixes refused before any twin.
    pub(super) refused: Vec<Vec<Refused>>,
    pub(super) tokens: heatcheck_explore::finding::Tokens,
    /// The provider failed: what it said (no finding after it is asked).
    pub(super) error: Option<String>,
}

/// The model's fixes for the `open` findings, checked (refused ones are
/// kept in `asked` with the reasons and never run), as proposals.
pub(super) async fn ask_model(
    model: &Model,
    suite: &Suite,
    runner: &Runner,
    findings: &[Finding],
    open: &[usize],
    outcomes: &[Outcome],
    asked: &mut Asked,
) -> Result<Vec<(usize, Proposal)>, Error> {
    let (policy, _) =
        crate::guard::EffectivePolicy::build(suite, &Default::default()).map_err(Error::invalid)?;
    let snap = &runner.explored.snap;
    let ns = suite.spec.target.namespace.as_str();
    let mut todo = Vec::new();
    for &i in open {
        let f = &findings[i];
        let tried: Vec<String> = outcomes
            .iter()
            .filter(|o| o.finding == i)
            .filter_map(|o| match &o.verdict {
                Some(Verdict::Rejected(why)) => Some(format!("{}: {why}", o.proposal.title)),
                _ => None,
            })
            .collect();
        stderr_line!("asking the model for fixes of {}", f.id);
        let ask = crate::ai::remediate::FixAsk {
            id: &f.id,
            title: &f.title,
            class: f.class.as_str(),
            evidence: &f.evidence,
            scenario: &f.scenario,
            remediation: &f.remediation,
            named: &f.objects,
            objects: &snap.objects,
            tried: &tried,
        };
        let mut log = |l: String| stderr_line!("  model: {l}");
        let gen = match crate::ai::remediate::propose_fixes(
            &model.backend,
            suite,
            &policy,
            &ask,
            &mut log,
        )
        .await
        {
            Ok(g) => g,
            Err(e) => {
                asked.error = Some(e.to_string());
                break;
            }
        };
        asked.tokens.input += gen.usage.input_tokens;
        asked.tokens.output += gen.usage.output_tokens;
        for r in gen.refused {
            stderr_line!("  refused  {}: {}", r.name, r.reasons.join("; "));
            asked.refused[i].push(Refused {
                title: r.name,
                attempt: r.attempt,
                reasons: r.reasons,
            });
        }
        for (k, fix) in gen.fixes.into_iter().enumerate() {
            let changes: Vec<Change> = fix
                .changes
                .into_iter()
                .map(|c| match c {
                    FixChange::Set { object, fields } => Change::Set {
                        key: object,
                        fields,
                    },
                    FixChange::Add { beside, manifest } => Change::Add {
                        beside,
                        object: manifest,
                    },
                    FixChange::Remove { object } => Change::Remove { key: object },
                })
                .collect();
            let id = format!("ai-{}/{}", k + 1, changes[0].target(ns));
            if let Some(mut p) =
                heatcheck_remediate::proposal(snap, id, format!("ai: {}", fix.title), changes)
            {
                p.origin = heatcheck_explore::Origin::Ai;
                todo.push((i, p));
            }
        }
    }
    Ok(todo)
}
