//! PodDisruptionBudget status, as kube-controller-manager's disruption
//! controller keeps it: expectedPods, desiredHealthy, currentHealthy,
//! disruptionsAllowed, disruptedPods and the DisruptionAllowed condition.
//! The eviction subresource (`api/eviction.rs`) reads it and takes from it.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use serde_json::{json, Map, Value};
use tokio::time::Instant;

use super::kubelet::pod_ready;
use super::util::{self, key};
use super::{Reconciler, Scope};
use crate::registry::ResKey;
use crate::store::Store;

pub(crate) const GROUP: &str = "policy";

/// How long an eviction's `disruptedPods` entry keeps its pod out of
/// currentHealthy when the pod is not deleted after all (upstream: 2 min).
const DELETION_TIMEOUT: Duration = Duration::from_secs(120);

pub(crate) struct Disruption;

impl Reconciler for Disruption {
    fn watches(&self, key: &ResKey) -> bool {
        (key.group == GROUP && key.plural == "poddisruptionbudgets")
            || (key.group.is_empty() && key.plural == "pods")
            // Percentages and maxUnavailable count the controllers' replicas.
            || (key.group == "apps"
                && matches!(
                    key.plural.as_str(),
                    "deployments" | "replicasets" | "statefulsets"
                ))
    }

    fn reconcile(&mut self, store: &Store, scope: &Scope) -> Option<Instant> {
        scope
            .list(store, &key(GROUP, "poddisruptionbudgets"))
            .iter()
            .filter(|pdb| !util::is_terminating(pdb))
            .filter_map(|pdb| sync(store, pdb))
            .min()
    }
}

/// The DisruptionAllowed condition for `allowed`, merged into `old`.
pub(crate) fn disruption_allowed_condition(
    old: Option<&Value>,
    allowed: bool,
    observed_generation: i64,
) -> Value {
    let (status, reason) = if allowed {
        ("True", "SufficientPods")
    } else {
        ("False", "InsufficientPods")
    };
    util::merge_conditions(
        old,
        vec![
            json!({"type": "DisruptionAllowed", "status": status, "reason": reason,
            "message": "", "observedGeneration": observed_generation}),
        ],
        false,
    )
}

/// The budget's pod count and how many must stay healthy, as upstream's
/// `getExpectedPodCount`: an integer minAvailable counts the selected pods;
/// a percentage or maxUnavailable counts their controllers' replicas
/// (maxUnavailable rounds up, a minAvailable percentage too).
fn expected_and_desired(store: &Store, pdb: &Value, pods: &[Value]) -> (i64, i64) {
    let spec = pdb.get("spec").cloned().unwrap_or(json!({}));
    let set = |k: &str| spec.get(k).filter(|v| !v.is_null());
    if let Some(max) = set("maxUnavailable") {
        let expected = expected_scale(store, pods);
        let max = util::int_or_percent(Some(max), expected, "0", true);
        return (expected, (expected - max).max(0));
    }
    match set("minAvailable") {
        Some(Value::Number(n)) => (pods.len() as i64, n.as_i64().unwrap_or(0)),
        Some(min) => {
            let expected = expected_scale(store, pods);
            (
                expected,
                util::int_or_percent(Some(min), expected, "0", true),
            )
        }
        None => (0, 0),
    }
}

/// The replicas the pods' controllers want: a Deployment's for its
/// ReplicaSets' pods, a StatefulSet's or a bare ReplicaSet's own. Pods
/// without a controller add nothing (upstream reports them as unmanaged).
fn expected_scale(store: &Store, pods: &[Value]) -> i64 {
    let mut seen: HashSet<String> = HashSet::new();
    let mut total = 0;
    for p in pods {
        let Some(owner) = owner(store, p) else {
            continue;
        };
        if seen.insert(util::uid(&owner).to_string()) {
            total += owner
                .pointer("/spec/replicas")
                .and_then(Value::as_i64)
                .unwrap_or(1);
        }
    }
    total
}

/// The object whose scale counts for a pod.
fn owner(store: &Store, pod: &Value) -> Option<Value> {
    let ns = util::namespace(pod);
    let by_ref = |obj: &Value, plural: &str| -> Option<Value> {
        let r = obj
            .pointer("/metadata/ownerReferences")
            .and_then(Value::as_array)?
            .iter()
            .find(|r| r.get("controller") == Some(&json!(true)))?
            .clone();
        let name = r.get("name").and_then(Value::as_str)?;
        let found = store.get(&key("apps", plural), Some(ns), name).ok()?;
        (util::uid(&found) == r.get("uid").and_then(Value::as_str)?).then_some(found)
    };
    let kind = pod
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)?
        .iter()
        .find(|r| r.get("controller") == Some(&json!(true)))?
        .get("kind")
        .and_then(Value::as_str)?
        .to_string();
    match kind.as_str() {
        "ReplicaSet" => {
            let rs = by_ref(pod, "replicasets")?;
            Some(by_ref(&rs, "deployments").unwrap_or(rs))
        }
        "StatefulSet" => by_ref(pod, "statefulsets"),
        _ => None,
    }
}

/// Recomputes one budget's status; returns when an entry of disruptedPods expires.
fn sync(store: &Store, pdb: &Value) -> Option<Instant> {
    let ns = util::namespace(pdb);
    let pods: Vec<Value> = util::list(store, &key("", "pods"), Some(ns))
        .into_iter()
        .filter(|p| util::label_selector_matches(pdb.pointer("/spec/selector"), &util::labels(p)))
        .collect();
    let (expected, desired) = expected_and_desired(store, pdb, &pods);
    // Evictions not yet seen through: the pod still exists and is not
    // terminating, and the entry is younger than the deletion timeout.
    let now = chrono::Utc::now();
    let mut disrupted = Map::new();
    let mut wake: Option<Instant> = None;
    let live: BTreeMap<&str, &Value> = pods.iter().map(|p| (util::name(p), p)).collect();
    if let Some(old) = pdb
        .pointer("/status/disruptedPods")
        .and_then(Value::as_object)
    {
        for (name, at) in old {
            let Some(t) = at.as_str().and_then(util::parse_time) else {
                continue;
            };
            let expires = t + chrono::Duration::seconds(DELETION_TIMEOUT.as_secs() as i64);
            let pending = live
                .get(name.as_str())
                .is_some_and(|p| !util::is_terminating(p));
            if pending && expires > now {
                disrupted.insert(name.clone(), at.clone());
                let left = (expires - now).to_std().unwrap_or_default();
                let at = Instant::now() + left;
                wake = Some(wake.map_or(at, |w| w.min(at)));
            }
        }
    }
    let healthy = pods
        .iter()
        .filter(|p| !util::is_terminating(p))
        .filter(|p| !disrupted.contains_key(util::name(p)))
        .filter(|p| pod_ready(p))
        .count() as i64;
    // No expected pods yet: nothing may go, so a budget whose pods appear
    // before this controller counts them is safe.
    let allowed = if expected <= 0 {
        0
    } else {
        (healthy - desired).max(0)
    };
    let generation = util::generation(pdb);
    let mut status = json!({
        "observedGeneration": generation,
        "disruptionsAllowed": allowed,
        "currentHealthy": healthy,
        "desiredHealthy": desired,
        "expectedPods": expected,
        "conditions": disruption_allowed_condition(
            pdb.pointer("/status/conditions"),
            allowed > 0,
            generation,
        ),
    });
    if !disrupted.is_empty() {
        status["disruptedPods"] = Value::Object(disrupted);
    }
    util::write_status(store, &key(GROUP, "poddisruptionbudgets"), pdb, status);
    wake
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controllers::testutil::*;
    use crate::controllers::{spawn_controllers, ControllerConfig};

    fn pdb(name: &str, spec: Value) -> Value {
        let mut spec = spec;
        spec["selector"] = json!({"matchLabels": {"app": "web"}});
        json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": name, "namespace": "default"}, "spec": spec})
    }

    fn status(store: &Store, name: &str) -> Value {
        store
            .get(&key(GROUP, "poddisruptionbudgets"), Some("default"), name)
            .unwrap()["status"]
            .clone()
    }

    #[tokio::test]
    async fn budgets_count_healthy_pods_against_ints_and_percentages() {
        let store = Store::new();
        let _h = spawn_controllers(store.clone(), ControllerConfig::default());
        create(&store, "apps", "deployments", deployment("web", 4));
        wait_for("4 ready", || {
            (ready_pods(&store, "default", "web-").len() == 4).then_some(())
        })
        .await;
        // (spec, expectedPods, desiredHealthy, disruptionsAllowed)
        let cases = [
            ("min-int", json!({"minAvailable": 3}), 4, 3, 1),
            ("min-pct", json!({"minAvailable": "50%"}), 4, 2, 2),
            ("min-pct-up", json!({"minAvailable": "30%"}), 4, 2, 2),
            ("max-int", json!({"maxUnavailable": 1}), 4, 3, 1),
            ("max-pct-up", json!({"maxUnavailable": "30%"}), 4, 2, 2),
            ("max-zero", json!({"maxUnavailable": 0}), 4, 4, 0),
        ];
        for (name, spec, ..) in &cases {
            create(
                &store,
                GROUP,
                "poddisruptionbudgets",
                pdb(name, spec.clone()),
            );
        }
        for (name, _, expected, desired, allowed) in cases {
            let s = wait_for(name, || {
                let s = status(&store, name);
                (s["currentHealthy"] == 4).then_some(s)
            })
            .await;
            assert_eq!(s["expectedPods"], expected, "{name}: {s}");
            assert_eq!(s["desiredHealthy"], desired, "{name}: {s}");
            assert_eq!(s["disruptionsAllowed"], allowed, "{name}: {s}");
            let cond = &s["conditions"][0];
            assert_eq!(cond["type"], "DisruptionAllowed");
            assert_eq!(cond["status"], if allowed > 0 { "True" } else { "False" });
            assert_eq!(
                cond["reason"],
                if allowed > 0 {
                    "SufficientPods"
                } else {
                    "InsufficientPods"
                }
            );
        }
    }
}
