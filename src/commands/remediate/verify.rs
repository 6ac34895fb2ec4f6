//! Running candidates on fresh twins: the finding's scenario and the
//! whole suite, each change applied in memory first.

use std::sync::Arc;
use std::time::Instant;

use futures::stream::{self, StreamExt};
use serde_json::Value;

use super::{apply_changes, patched};
use crate::commands::explore::{prepare, Explored, SandboxTwins};
use crate::commands::verify::SandboxVerifier;
use crate::engine::model::CaseReport;
use crate::suite::Suite;
use heatcheck_explore::search::{suite_for, TwinRun, Twins};
use heatcheck_explore::Finding;
use heatcheck_remediate::{diff, verdict, ManifestFile, Proposal, Verdict};

/// Runs scenarios on fresh twins, counting them.
pub(super) struct Runner {
    /// Explore's view of the suite without any change: what healthy means.
    pub(super) explored: Explored,
    pub(super) min_success_rate: f64,
    pub(super) twins: std::sync::atomic::AtomicUsize,
}

impl Runner {
    /// The finding's scenario on a fresh twin of `suite` seeded with `read`.
    /// A catalog finding is asked again of the changed objects: "kill one
    /// pod" of a Deployment that now has 2 replicas is 50% of its pods, not
    /// the 100% it was (that would be an outage on any design).
    pub(super) async fn finding(
        &self,
        suite: &Suite,
        read: &[Value],
        finding: &Finding,
    ) -> TwinRun {
        self.twins
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let again = prepare(suite, read, self.min_success_rate)
            .ok()
            .and_then(|ex| {
                let c = ex.candidates.iter().find(|c| c.id == finding.id)?;
                Some((c.scenario.clone(), suite_for(&ex.suite, c)))
            });
        let (scenario, own) = match again {
            Some(x) => x,
            // Not the catalog's (or its object is gone): the finding as written,
            // judged with the derived probes of the suite as it was.
            None => match crate::suite::parse_scenario_json(&finding.scenario) {
                Ok(sc) => {
                    let mut explored = self.explored.suite.clone();
                    explored.spec.fixtures = suite.spec.fixtures.clone();
                    (sc, explored)
                }
                Err(e) => return TwinRun::Broken(format!("the finding's scenario: {e}")),
            },
        };
        let twins = SandboxTwins {
            verifier: Arc::new(SandboxVerifier::from_objects(suite, read)),
        };
        twins.run(&own, &scenario).await
    }

    /// The suite as `run` runs it (fixtures, steady state, every scenario)
    /// plus explore's baseline, on one fresh twin.
    pub(super) async fn suite(
        &self,
        suite: &Suite,
        read: &[Value],
    ) -> Result<Vec<CaseReport>, String> {
        self.twins
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let report = Arc::new(SandboxVerifier::from_objects(suite, read))
            .twin_on_own_task(suite.clone(), vec![self.explored.baseline.clone()])
            .await?
            .suite;
        match report.error {
            Some(e) => Err(e),
            None => Ok(report.cases),
        }
    }
}

/// One candidate, verified.
pub(super) struct Outcome {
    pub(super) finding: usize,
    pub(super) proposal: Proposal,
    pub(super) files: Vec<String>,
    /// The change alone, as a diff of the files.
    pub(super) diff: String,
    pub(super) cluster: Vec<String>,
    pub(super) verdict: Option<Verdict>,
    pub(super) seconds: f64,
}

/// What verifying a candidate needs: the twins, the suite before any
/// change and what passed on it.
pub(super) struct Check<'a> {
    pub(super) runner: &'a Runner,
    pub(super) suite: &'a Suite,
    pub(super) files: &'a [ManifestFile],
    pub(super) read: &'a [Value],
    pub(super) ns: &'a str,
    pub(super) before: &'a [CaseReport],
    pub(super) findings: &'a [Finding],
    pub(super) deadline: Option<Instant>,
    pub(super) jobs: usize,
}

impl Check<'_> {
    /// Every candidate on fresh twins, `jobs` at once; none starts after the deadline.
    pub(super) async fn all(&self, todo: Vec<(usize, Proposal)>) -> Vec<Outcome> {
        stream::iter(todo)
            .map(|(i, proposal)| self.one(i, proposal))
            .buffer_unordered(self.jobs)
            .collect()
            .await
    }

    pub(super) async fn one(&self, i: usize, proposal: Proposal) -> Outcome {
        let t0 = Instant::now();
        let mut out = Outcome {
            finding: i,
            files: Vec::new(),
            diff: String::new(),
            cluster: Vec::new(),
            verdict: None,
            seconds: 0.0,
            proposal,
        };
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            return out;
        }
        let applied = match apply_changes(self.files, self.read, self.ns, &out.proposal.changes) {
            Ok(a) => a,
            Err(e) => {
                out.verdict = Some(Verdict::Rejected(format!("cannot make the change: {e}")));
                return out;
            }
        };
        out.files = self
            .files
            .iter()
            .zip(&applied.texts)
            .filter(|(f, t)| &f.text != *t)
            .map(|(f, _)| f.written.clone())
            .collect();
        out.diff = self
            .files
            .iter()
            .zip(&applied.texts)
            .map(|(f, t)| diff::unified(&f.written, &f.text, t))
            .collect();
        out.cluster = applied.cluster.clone();
        let own = patched(self.suite, self.files, &applied.texts);
        let (finding, after) = futures::join!(
            self.runner.finding(&own, &applied.read, &self.findings[i]),
            self.runner.suite(&own, &applied.read)
        );
        let v = verdict(&finding, &after, self.before);
        let (word, why) = match &v {
            Verdict::Verified => ("verified", String::new()),
            Verdict::Rejected(r) => ("rejected", format!(": {r}")),
        };
        stderr_line!("  {word:<9}{}{why}", out.proposal.id);
        out.verdict = Some(v);
        out.seconds = t0.elapsed().as_secs_f64();
        out
    }
}
