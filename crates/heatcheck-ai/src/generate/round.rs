//! The request/answer loop: ask, read, check, permit, verify, repair, until
//! enough scenarios are accepted or `ai.maxRepairs` is spent.

use serde_json::Value;

use super::backend::{GenerateError, ProviderBackend};
use super::options::{GenerateOptions, PermissionCheck, Verdict, Verifier};
use super::outcome::{name_scenarios, Generation};
use super::repair::{push_repair, rejected_text};
use super::state::{whole, Accepted, State};
use crate::check::check_candidate;
use crate::known::Known;
use crate::lockfile::{Rejected, ScenarioCheck};
use crate::prompt::Prompt;
use crate::provider::{ChatRequest, Message, Role};
use heatcheck_format::{Scenario, Suite};

fn candidate_name(v: &Value, i: usize) -> String {
    v.get("name")
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
        .map(str::to_string)
        .unwrap_or_else(|| format!("scenario #{}", i + 1))
}

/// Same steps and assertions (names and descriptions aside).
fn fingerprint(sc: &Scenario) -> String {
    let v = serde_json::json!({
        "steps": serde_json::to_value(&sc.steps).unwrap_or(Value::Null),
        "assertions": serde_json::to_value(&sc.assertions).unwrap_or(Value::Null),
    });
    crate::lockfile::canonical_json(&v)
}

/// Asks the model, salvages, checks, verifies, repairs. Every request is an
/// attempt (timeouts included) and counts against `ai.maxRepairs`; every
/// rejected answer or scenario is recorded with its attempt and reasons.
pub async fn generate(
    backend: &ProviderBackend,
    suite: &Suite,
    prompt: &Prompt,
    known: &Known,
    opts: GenerateOptions<'_>,
) -> Result<Generation, GenerateError> {
    let Some(ai) = &suite.spec.ai else {
        return Ok(Generation::default());
    };
    let GenerateOptions {
        permissions,
        verifier,
        strict,
        log,
    } = opts;
    let anon = |s: &str| match &prompt.anonymizer {
        Some(a) => a.anonymize_text(s),
        None => s.to_string(),
    };
    let count = ai.count.max(1) as usize;
    let mut st = State {
        log,
        messages: vec![Message {
            role: Role::User,
            content: prompt.user.clone(),
        }],
        gen: Generation::default(),
        accepted: Vec::new(),
        rejected: Vec::new(),
        seen: suite
            .spec
            .scenarios
            .iter()
            .map(|s| (fingerprint(s), s.name.clone()))
            .collect(),
        ask: count,
        last_timeout: None,
        answered: false,
    };
    let attempts = ai.max_repairs + 1;
    for attempt in 1..=attempts {
        let want = count - st.accepted.len();
        let req = ChatRequest {
            system: prompt.system.clone(),
            messages: st.messages.clone(),
            schema: crate::prompt::response_schema_range(
                st.ask.min(want).max(1) as u32,
                want as u32,
            ),
            schema_name: prompt.schema_name.clone(),
        };
        let reply = backend.chat(&req).await;
        let Some((answer, raw)) = st.read(reply, attempt, attempts, want)? else {
            continue;
        };
        let answer = match &prompt.anonymizer {
            Some(a) => a.restore_value(&answer),
            None => answer,
        };
        let list = answer["scenarios"].as_array().cloned().unwrap_or_default();
        if attempt == 1 {
            st.gen.proposed_first = list.len();
        }
        if list.len() < want {
            st.rejected.push(whole(
                attempt,
                vec![format!(
                    "the answer held {} scenario(s); {want} were asked for",
                    list.len()
                )],
            ));
        }
        let mut pending: Vec<Rejected> = Vec::new();
        let mut fresh = st.check(&list, suite, known, attempt, want, &mut pending);
        if let Some(p) = permissions.filter(|_| !fresh.is_empty()) {
            fresh = st.permit(p, fresh, attempt, &mut pending).await;
        }
        st.judge(fresh, verifier, strict, attempt, &mut pending)
            .await;
        if attempt == 1 {
            st.gen.valid_first = st.accepted.len();
        }
        st.rejected.extend(pending.iter().cloned());
        let want = count - st.accepted.len();
        if want == 0 || attempt == attempts {
            break;
        }
        let text = rejected_text(list.is_empty(), st.accepted.len(), want, &pending, &anon);
        push_repair(&mut st.messages, Some(raw), text);
        st.ask = want;
    }
    st.finish(suite)
}

impl State<'_> {
    /// The candidates of one answer that pass every check and are new, at
    /// most `want`; the others go to `pending` with their reasons.
    fn check(
        &mut self,
        list: &[Value],
        suite: &Suite,
        known: &Known,
        attempt: u32,
        want: usize,
        pending: &mut Vec<Rejected>,
    ) -> Vec<Scenario> {
        let mut fresh: Vec<Scenario> = Vec::new();
        for (i, cand) in list.iter().enumerate() {
            let name = candidate_name(cand, i);
            match check_candidate(cand, suite, known) {
                Ok(sc) => {
                    let fp = fingerprint(&sc);
                    if let Some(other) = self.seen.get(&fp) {
                        pending.push(Rejected {
                            name,
                            attempt,
                            reasons: vec![format!(
                                "duplicate of \"{other}\" (same steps and assertions); dropped"
                            )],
                        });
                    } else if fresh.len() < want {
                        self.seen.insert(fp, sc.name.clone());
                        fresh.push(sc);
                    } // more than asked for: ignored
                }
                Err(reasons) => pending.push(Rejected {
                    name,
                    attempt,
                    reasons,
                }),
            }
        }
        fresh
    }

    /// The candidates the running identity may execute; the others go to
    /// `pending` with what is denied.
    async fn permit(
        &mut self,
        p: &dyn PermissionCheck,
        fresh: Vec<Scenario>,
        attempt: u32,
        pending: &mut Vec<Rejected>,
    ) -> Vec<Scenario> {
        let denials = p.denied(&fresh).await;
        let mut allowed = Vec::new();
        for (i, sc) in fresh.into_iter().enumerate() {
            match denials.get(i).filter(|d| !d.is_empty()) {
                Some(reasons) => {
                    // A corrected version may come back with the same steps elsewhere.
                    self.seen.retain(|_, n| n != &sc.name);
                    pending.push(Rejected {
                        name: sc.name.clone(),
                        attempt,
                        reasons: reasons.clone(),
                    });
                }
                None => allowed.push(sc),
            }
        }
        allowed
    }

    /// Runs the candidates on the verifier (when there is one) and accepts
    /// or rejects each by its verdict.
    async fn judge(
        &mut self,
        fresh: Vec<Scenario>,
        verifier: Option<&dyn Verifier>,
        strict: bool,
        attempt: u32,
        pending: &mut Vec<Rejected>,
    ) {
        let verdicts = match verifier {
            Some(v) if !fresh.is_empty() => {
                (self.log)(format!(
                    "attempt {attempt}: running {} candidate(s) on a sandbox",
                    fresh.len()
                ));
                v.verify(&fresh).await
            }
            _ => Vec::new(),
        };
        for (i, sc) in fresh.into_iter().enumerate() {
            let verdict = match verifier {
                None => Verdict::NotRun("--no-verify".into()),
                Some(_) => verdicts
                    .get(i)
                    .cloned()
                    .unwrap_or_else(|| Verdict::NotRun("no verdict".into())),
            };
            let keep = |verdict: String, accepted: &mut Vec<Accepted>| {
                accepted.push(Accepted {
                    scenario: sc.clone(),
                    repairs: attempt - 1,
                    verdict,
                })
            };
            match verdict {
                Verdict::Passed => keep("passed".into(), &mut self.accepted),
                Verdict::NotRun(why) => keep(format!("not run: {why}"), &mut self.accepted),
                Verdict::Failed(why) if !strict => {
                    (self.log)(format!(
                        "\"{}\": an assertion fails on the sandbox ({why}); locked with sandboxVerdict failed for review",
                        sc.name
                    ));
                    keep(format!("failed: {why}"), &mut self.accepted)
                }
                Verdict::Failed(why) => pending.push(Rejected {
                    name: sc.name.clone(),
                    attempt,
                    reasons: vec![format!(
                        "sandbox: an assertion fails ({why}); rejected under --verify=strict"
                    )],
                }),
                Verdict::Broken(errors) => {
                    self.seen.retain(|_, n| n != &sc.name);
                    pending.push(Rejected {
                        name: sc.name.clone(),
                        attempt,
                        reasons: errors
                            .into_iter()
                            .map(|e| format!("sandbox: {e}"))
                            .collect(),
                    })
                }
            }
        }
    }

    /// The generation: the accepted scenarios named, their checks, every
    /// rejection; a timeout when no request was ever answered.
    fn finish(self, suite: &Suite) -> Result<Generation, GenerateError> {
        if !self.answered {
            if let Some(e) = self.last_timeout {
                return Err(e.into());
            }
        }
        let mut gen = self.gen;
        let names: Vec<Scenario> = self.accepted.iter().map(|a| a.scenario.clone()).collect();
        gen.scenarios = name_scenarios(names, suite);
        gen.checks = gen
            .scenarios
            .iter()
            .zip(&self.accepted)
            .map(|(sc, a)| ScenarioCheck {
                name: sc.name.clone(),
                repairs: a.repairs,
                sandbox_verdict: a.verdict.clone(),
            })
            .collect();
        gen.rejected = self.rejected;
        Ok(gen)
    }
}
