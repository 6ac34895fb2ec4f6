//! The execution check of generated scenarios: each batch of candidates
//! runs on a fresh in-process sandbox seeded with the gathered context
//! (Secret values replaced by placeholders) and, through the engine, the
//! suite's fixtures — the same engine and guard as a real run. The AI side
//! only sees verdicts (src/ai never imports the engine).
#![cfg_attr(not(feature = "sandbox"), allow(dead_code, unused_imports))]

use std::future::Future;
use std::pin::Pin;

use serde_json::{json, Value};

use crate::ai::context::{declared_objects, Gathered, EVENT_KIND};
use crate::ai::generate::{Verdict, Verifier};
use crate::suite::{Scenario, Suite};

/// `--no-verify`, default, `--verify=strict`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum VerifyMode {
    Off,
    #[default]
    On,
    Strict,
}

/// What one twin gave: the suite's report, and whether the guard refused
/// the run before anything ran (told by the run's outcome, not its words).
pub(crate) struct TwinReport {
    pub refused: bool,
    pub suite: crate::engine::model::SuiteReport,
}

/// Runs candidates on a sandbox seeded with `seed`.
pub struct SandboxVerifier {
    suite: Suite,
    seed: Vec<Value>,
}

/// Kinds a controller makes from their owners: seeding them would only race it.
const DERIVED: &[&str] = &["Pod", "ReplicaSet", "Endpoints", "EndpointSlice", "Event"];

impl SandboxVerifier {
    pub fn new(suite: &Suite, gathered: &Gathered) -> Self {
        let declared: Vec<(String, String)> = declared_objects(suite)
            .iter()
            .map(|o| {
                (
                    o["kind"].as_str().unwrap_or_default().to_string(),
                    o.pointer("/metadata/name")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                )
            })
            .collect();
        let seed = gathered
            .items
            .iter()
            .filter(|i| i.kind != EVENT_KIND)
            // The engine applies the fixtures itself (and removes them).
            .filter(|i| !declared.contains(&(i.kind.clone(), i.name.clone())))
            .filter(|i| {
                !(DERIVED.contains(&i.kind.as_str())
                    && i.value.pointer("/metadata/ownerReferences").is_some())
            })
            .map(|i| seed_object(&i.value))
            .collect();
        let mut suite = suite.clone();
        suite.spec.scenarios.clear();
        SandboxVerifier { suite, seed }
    }

    /// A twin seeded with `objects` as read from a cluster (derived kinds
    /// left to their controllers, Secret values as placeholders), the oldest
    /// first so precedence by creationTimestamp keeps its order.
    pub(crate) fn from_objects(suite: &Suite, objects: &[Value]) -> Self {
        let mut objects: Vec<&Value> = objects
            .iter()
            .filter(|o| {
                !(DERIVED.contains(&o["kind"].as_str().unwrap_or_default())
                    && o.pointer("/metadata/ownerReferences").is_some())
            })
            .collect();
        objects.sort_by_key(|o| {
            o.pointer("/metadata/creationTimestamp")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        });
        let mut suite = suite.clone();
        suite.spec.scenarios.clear();
        SandboxVerifier {
            suite,
            seed: objects.into_iter().map(seed_object).collect(),
        }
    }

    /// Runs `scenario` of `suite` (fixtures, steady state, probes and all)
    /// on a fresh sandbox seeded as this verifier's, on its own task.
    #[cfg(feature = "sandbox")]
    pub(crate) async fn run_on_twin(
        self: std::sync::Arc<Self>,
        suite: &Suite,
        scenario: &Scenario,
    ) -> Result<TwinReport, String> {
        let mut suite = suite.clone();
        suite.spec.scenarios.clear();
        self.twin_on_own_task(suite, vec![scenario.clone()]).await
    }

    /// [`Self::twin_report`] on its own task of the worker pool: the engine
    /// blocks in place for template lookups, which must not stall the
    /// twins sharing the caller's thread.
    #[cfg(feature = "sandbox")]
    pub(crate) async fn twin_on_own_task(
        self: std::sync::Arc<Self>,
        suite: Suite,
        scenarios: Vec<Scenario>,
    ) -> Result<TwinReport, String> {
        tokio::spawn(async move { self.twin_report(suite, scenarios).await })
            .await
            .unwrap_or_else(|e| Err(format!("the twin's task failed: {e}")))
    }

    /// A fresh sandbox, seeded, running `scenarios` after `suite`'s own
    /// through the engine (guard included).
    #[cfg(feature = "sandbox")]
    async fn twin_report(
        &self,
        suite: Suite,
        scenarios: Vec<Scenario>,
    ) -> Result<TwinReport, String> {
        use crate::cluster::ClusterClient;
        use crate::engine::run::{new_run_id, Emitter, Engine, RunOptions};

        let sb = crate::sandbox::Sandbox::start(crate::sandbox::SandboxOptions::default())
            .await
            .map_err(|e| format!("cannot start the sandbox: {e}"))?;
        let res = async {
            let client = ClusterClient::from_kubeconfig_yaml(&sb.kubeconfig_yaml(), None)
                .await
                .map_err(|e| e.to_string())?;
            self.seed_into(&client).await?;
            let (_cancel_tx, cancel) = tokio::sync::watch::channel(false);
            let engine = Engine {
                client,
                options: RunOptions::default(),
                emitter: Emitter::default(),
                run_id: new_run_id(),
                cancel,
            };
            let run = engine.run_with_locked(vec![(suite, scenarios)]).await;
            Ok(TwinReport {
                refused: run.outcome() == crate::exit::RunOutcome::Invalid,
                suite: run
                    .suites
                    .into_iter()
                    .next()
                    .ok_or_else(|| "the sandbox run reported nothing".to_string())?,
            })
        }
        .await;
        sb.shutdown().await;
        res
    }

    #[cfg(feature = "sandbox")]
    async fn run(&self, candidates: &[Scenario]) -> Result<Vec<Verdict>, String> {
        // Unique names: the report is matched back by name.
        let named: Vec<Scenario> = candidates
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let mut c = c.clone();
                c.name = format!("candidate {}: {}", i + 1, c.name);
                c
            })
            .collect();
        let suite = self
            .twin_report(self.suite.clone(), named.clone())
            .await?
            .suite;
        if let Some(e) = &suite.error {
            return Err(e.clone());
        }
        Ok(named
            .iter()
            .map(|c| {
                suite
                    .cases
                    .iter()
                    .find(|r| r.name == c.name)
                    .map(verdict_of)
                    .unwrap_or_else(|| Verdict::NotRun("no result on the sandbox".into()))
            })
            .collect())
    }

    #[cfg(not(feature = "sandbox"))]
    async fn run(&self, _: &[Scenario]) -> Result<Vec<Verdict>, String> {
        Err("this build has no sandbox (built without the `sandbox` feature)".into())
    }

    #[cfg(feature = "sandbox")]
    async fn seed_into(&self, client: &crate::cluster::ClusterClient) -> Result<(), String> {
        let t = &self.suite.spec.target;
        let mut namespaces: Vec<String> = t.allow_namespaces.clone();
        namespaces.push(t.namespace.clone());
        namespaces.extend(
            self.seed
                .iter()
                .filter_map(|o| o.pointer("/metadata/namespace").and_then(Value::as_str))
                .map(str::to_string),
        );
        namespaces.sort();
        namespaces.dedup();
        let ns_kind = client
            .resolve(Some("v1"), "Namespace")
            .await
            .map_err(|e| e.to_string())?;
        for ns in &namespaces {
            let obj = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
            client
                .apply(&ns_kind, None, &obj)
                .await
                .map_err(|e| format!("seeding namespace {ns}: {e}"))?;
        }
        for obj in &self.seed {
            let kind = obj["kind"].as_str().unwrap_or_default();
            // A kind the sandbox does not serve (a CRD of the real cluster) is left out.
            let Ok(r) = client.resolve(obj["apiVersion"].as_str(), kind).await else {
                tracing::debug!(kind, "not served by the sandbox; not seeded");
                continue;
            };
            let ns = obj.pointer("/metadata/namespace").and_then(Value::as_str);
            if let Err(e) = client.apply(&r, ns, obj).await {
                tracing::debug!(kind, error = %e, "could not seed a context object");
            }
        }
        self.wait_seeded_available(client).await;
        Ok(())
    }

    /// The twin's clock starts pods after a delay and makes them Ready on
    /// their probes' schedule: a candidate starts once the seeded
    /// Deployments are available again, as they were where they were read.
    #[cfg(feature = "sandbox")]
    async fn wait_seeded_available(&self, client: &crate::cluster::ClusterClient) {
        let Ok(r) = client.resolve(Some("apps/v1"), "Deployment").await else {
            return;
        };
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
        for d in self.seed.iter().filter(|o| o["kind"] == "Deployment") {
            let ns = d.pointer("/metadata/namespace").and_then(Value::as_str);
            let name = d
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let want = d
                .pointer("/spec/replicas")
                .and_then(Value::as_u64)
                .unwrap_or(1);
            loop {
                let available = client
                    .get(&r, ns, name)
                    .await
                    .ok()
                    .flatten()
                    .and_then(|o| {
                        o.pointer("/status/availableReplicas")
                            .and_then(Value::as_u64)
                    })
                    .unwrap_or(0);
                if available >= want {
                    break;
                }
                if tokio::time::Instant::now() >= deadline {
                    // The candidate still runs; its verdict will say what
                    // the missing replicas cause.
                    tracing::warn!(
                        deployment = name,
                        available,
                        want,
                        "a seeded Deployment is not available on the twin after 60s"
                    );
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

/// A context object as it can be applied: no status, no owners, Secret
/// values as placeholders (the context never held them).
fn seed_object(v: &Value) -> Value {
    let mut o = v.clone();
    if let Some(m) = o.as_object_mut() {
        m.remove("status");
    }
    if let Some(meta) = o.get_mut("metadata").and_then(Value::as_object_mut) {
        for k in ["ownerReferences", "creationTimestamp", "deletionTimestamp"] {
            meta.remove(k);
        }
    }
    if o["kind"] == "Secret" {
        let keys: Vec<String> = o["dataKeys"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|k| k.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        if let Some(m) = o.as_object_mut() {
            m.remove("dataKeys");
            m.remove("stringData");
            // base64 of "placeholder".
            let data: serde_json::Map<String, Value> = keys
                .into_iter()
                .map(|k| (k, Value::String("cGxhY2Vob2xkZXI=".into())))
                .collect();
            m.insert("data".into(), Value::Object(data));
        }
    }
    o
}

/// Messages of assertions that could not be evaluated at all (as opposed
/// to evaluated and false).
fn unevaluable(message: &str) -> bool {
    let m = message.to_lowercase();
    [
        "not served",
        "template",
        "invalid",
        "json path",
        "jsonpath",
        "gateway ",
    ]
    .iter()
    .any(|p| m.contains(p))
}

fn verdict_of(case: &crate::engine::model::CaseReport) -> Verdict {
    use crate::engine::model::CaseStatus;
    match &case.status {
        CaseStatus::Passed => Verdict::Passed,
        CaseStatus::Skipped { reason } => Verdict::NotRun(reason.clone()),
        CaseStatus::Errored { message, .. } => Verdict::Broken(vec![message.clone()]),
        CaseStatus::Failed { message, .. } => {
            let broken: Vec<String> = case
                .assertions
                .iter()
                .filter(|a| !a.passed && unevaluable(&a.message))
                .map(|a| {
                    format!(
                        "assertion \"{}\" cannot be evaluated: {}",
                        a.name, a.message
                    )
                })
                .collect();
            if broken.is_empty() {
                Verdict::Failed(message.clone())
            } else {
                Verdict::Broken(broken)
            }
        }
    }
}

impl Verifier for SandboxVerifier {
    fn verify<'a>(
        &'a self,
        candidates: &'a [Scenario],
    ) -> Pin<Box<dyn Future<Output = Vec<Verdict>> + 'a>> {
        Box::pin(async move {
            match self.run(candidates).await {
                Ok(v) => v,
                Err(e) => candidates
                    .iter()
                    .map(|_| Verdict::NotRun(format!("sandbox: {e}")))
                    .collect(),
            }
        })
    }
}
