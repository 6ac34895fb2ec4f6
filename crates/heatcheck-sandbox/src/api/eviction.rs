//! `POST pods/{name}/eviction` (policy/v1 Eviction): a delete that honours
//! the pod's PodDisruptionBudget, as kube-apiserver's EvictionREST does. The
//! budget's status (kept by the disruption controller) says how many pods
//! may go; an allowed eviction takes one from it and records the pod in
//! `disruptedPods` before deleting, so concurrent evictions cannot overdraw.

use serde_json::{json, Value};

use super::{parse_delete_options, Query};
use crate::controllers::util::{self, key};
use crate::error::ApiError;
use crate::store::{now_rfc3339, Store, WriteOptions};

/// Read-check-write rounds on the budget before giving up on conflicts.
const ATTEMPTS: usize = 16;

/// Evicts `ns/name`; Ok is the Status a real server answers with (201).
pub(super) fn evict(
    store: &Store,
    ns: &str,
    name: &str,
    body: &Value,
    query: &Query,
) -> Result<Value, ApiError> {
    if let Some(n) = body.pointer("/metadata/name").and_then(Value::as_str) {
        if n != name {
            return Err(ApiError::bad_request(
                "name in URL does not match name in Eviction object",
            ));
        }
    }
    let opts = parse_delete_options(body.get("deleteOptions").unwrap_or(&json!({})), query)?;
    let pods = key("", "pods");
    let pdbs = key("policy", "poddisruptionbudgets");
    for _ in 0..ATTEMPTS {
        let pod = store.get(&pods, Some(ns), name)?;
        if !can_ignore_budget(&pod) {
            let labels = util::labels(&pod);
            let mut budgets: Vec<Value> = if labels.is_empty() {
                Vec::new()
            } else {
                util::list(store, &pdbs, Some(ns))
                    .into_iter()
                    .filter(|b| util::label_selector_matches(b.pointer("/spec/selector"), &labels))
                    .collect()
            };
            if budgets.len() > 1 {
                return Err(ApiError::internal(
                    "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
                ));
            }
            if let Some(pdb) = budgets.pop() {
                match take_one(store, &pdb, &pod, opts.dry_run) {
                    Ok(()) => {}
                    Err(e) if e.code == 409 => continue,
                    Err(e) => return Err(e),
                }
            }
        }
        store.delete(&pods, Some(ns), name, &opts)?;
        return Ok(
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
        );
    }
    Err(ApiError::conflict(
        "policy",
        "poddisruptionbudgets",
        name,
        "too many concurrent evictions",
    ))
}

/// Pods that are not running (or already going) are deleted without
/// asking any budget: they count as healthy for none.
fn can_ignore_budget(pod: &Value) -> bool {
    util::is_terminating(pod)
        || matches!(
            pod.pointer("/status/phase").and_then(Value::as_str),
            Some("Succeeded" | "Failed" | "Pending")
        )
}

fn status_int(pdb: &Value, field: &str) -> i64 {
    pdb.pointer(&format!("/status/{field}"))
        .and_then(Value::as_i64)
        .unwrap_or(0)
}

/// The budget allows this pod to go: take one disruption from it (unless
/// the pod is not Ready and does not count as healthy anyway).
fn take_one(store: &Store, pdb: &Value, pod: &Value, dry_run: bool) -> Result<(), ApiError> {
    let pdb_name = util::name(pdb);
    let current = status_int(pdb, "currentHealthy");
    let desired = status_int(pdb, "desiredHealthy");
    if !crate::controllers::pod_ready(pod) {
        let always = pdb
            .pointer("/spec/unhealthyPodEvictionPolicy")
            .and_then(Value::as_str)
            == Some("AlwaysAllow");
        // IfHealthyBudget (the default): an unready pod may go while the
        // budget is met, since it is not one of the healthy pods it counts.
        if always || (current >= desired && desired > 0) {
            return Ok(());
        }
    }
    let observed = pdb
        .pointer("/status/observedGeneration")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    if observed < util::generation(pdb) {
        let mut e = ApiError::too_many_requests(
            "Cannot evict pod as it would violate the pod's disruption budget.",
        )
        .with_cause(
            "DisruptionBudget",
            &format!("The disruption budget {pdb_name} is still being processed by the server."),
        );
        if let Some(d) = e.details.as_mut() {
            d["retryAfterSeconds"] = json!(10);
        }
        return Err(e);
    }
    let allowed = status_int(pdb, "disruptionsAllowed");
    if allowed < 0 {
        return Err(crate::auth::forbidden_error(
            "policy",
            "poddisruptionbudget",
            pdb_name,
            "pdb disruptions allowed is negative",
        ));
    }
    if allowed == 0 {
        let why = if current <= desired {
            format!(
                "The disruption budget {pdb_name} needs {desired} healthy pods and has {current} currently"
            )
        } else {
            format!("The disruption budget {pdb_name} does not allow evicting pods currently")
        };
        return Err(ApiError::too_many_requests(
            "Cannot evict pod as it would violate the pod's disruption budget.",
        )
        .with_cause("DisruptionBudget", &why));
    }
    if dry_run {
        return Ok(());
    }
    let mut next = pdb.clone();
    next["status"]["disruptionsAllowed"] = json!(allowed - 1);
    if allowed - 1 == 0 {
        next["status"]["conditions"] = crate::controllers::disruption_allowed_condition(
            pdb.pointer("/status/conditions"),
            false,
            observed,
        );
    }
    if !next["status"]
        .get("disruptedPods")
        .is_some_and(Value::is_object)
    {
        next["status"]["disruptedPods"] = json!({});
    }
    // The disruption controller leaves the pod out of currentHealthy while
    // it is here, so the budget is not counted twice before the delete lands.
    next["status"]["disruptedPods"][util::name(pod)] = json!(now_rfc3339());
    store.update_status(
        &key("policy", "poddisruptionbudgets"),
        Some(util::namespace(pdb)),
        pdb_name,
        next,
        &WriteOptions::default(),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::controllers::testutil::*;
    use crate::controllers::{spawn_controllers, ControllerConfig};

    fn eviction(name: &str) -> Value {
        json!({"apiVersion": "policy/v1", "kind": "Eviction",
            "metadata": {"name": name, "namespace": "default"}})
    }

    fn budget(name: &str, spec: Value) -> Value {
        let mut spec = spec;
        spec["selector"] = json!({"matchLabels": {"app": "web"}});
        json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": name, "namespace": "default"}, "spec": spec})
    }

    fn healthy(store: &Store, pdb: &str) -> i64 {
        store
            .get(&key("policy", "poddisruptionbudgets"), Some("default"), pdb)
            .ok()
            .map(|b| status_int(&b, "currentHealthy"))
            .unwrap_or(-1)
    }

    async fn three_web_pods(store: &Store) -> Vec<String> {
        create(store, "apps", "deployments", deployment("web", 3));
        let pods = wait_for("3 ready", || {
            let ps = ready_pods(store, "default", "web-");
            (ps.len() == 3).then_some(ps)
        })
        .await;
        pods.iter().map(|p| util::name(p).to_string()).collect()
    }

    #[tokio::test]
    async fn an_eviction_takes_from_the_budget_and_429s_when_none_is_left() {
        let store = Store::new();
        let _h = spawn_controllers(
            store.clone(),
            ControllerConfig {
                // Replacements take a while to be Ready, as on a cluster.
                container_start_delay: Duration::from_millis(500),
                max_termination_grace: Some(Duration::from_millis(200)),
                ..Default::default()
            },
        );
        let pods = three_web_pods(&store).await;
        create(
            &store,
            "policy",
            "poddisruptionbudgets",
            budget("web", json!({"minAvailable": 2})),
        );
        wait_for("budget", || (healthy(&store, "web") == 3).then_some(())).await;
        let q = Query::default();
        let ok = evict(&store, "default", &pods[0], &eviction(&pods[0]), &q).unwrap();
        assert_eq!(ok["status"], "Success");
        let gone = store
            .get(&key("", "pods"), Some("default"), &pods[0])
            .unwrap();
        assert!(util::is_terminating(&gone), "deleted with its grace period");
        let b = store
            .get(
                &key("policy", "poddisruptionbudgets"),
                Some("default"),
                "web",
            )
            .unwrap();
        assert_eq!(status_int(&b, "disruptionsAllowed"), 0, "taken at once");
        assert_eq!(b["status"]["conditions"][0]["status"], "False");
        wait_for("counted", || (healthy(&store, "web") == 2).then_some(())).await;
        // The replacement is not Ready yet: a second eviction would leave 1.
        let e = evict(&store, "default", &pods[1], &eviction(&pods[1]), &q).unwrap_err();
        assert_eq!(e.code, 429);
        let s = e.status();
        assert_eq!(s["reason"], "TooManyRequests");
        assert_eq!(
            s["message"],
            "Cannot evict pod as it would violate the pod's disruption budget."
        );
        assert_eq!(s["details"]["causes"][0]["reason"], "DisruptionBudget");
        assert_eq!(
            s["details"]["causes"][0]["message"],
            "The disruption budget web needs 2 healthy pods and has 2 currently"
        );
        assert!(!util::is_terminating(
            &store
                .get(&key("", "pods"), Some("default"), &pods[1])
                .unwrap()
        ));
        // Once the replacement is Ready, one more may go.
        wait_for("healthy again", || {
            (healthy(&store, "web") == 3).then_some(())
        })
        .await;
        evict(&store, "default", &pods[1], &eviction(&pods[1]), &q).unwrap();
    }

    #[tokio::test]
    async fn no_budget_deletes_and_two_budgets_refuse() {
        let store = Store::new();
        let _h = spawn_controllers(store.clone(), ControllerConfig::default());
        let pods = three_web_pods(&store).await;
        let q = Query::default();
        let e = evict(&store, "default", &pods[0], &eviction("other"), &q).unwrap_err();
        assert_eq!(e.code, 400, "{e:?}");
        evict(&store, "default", &pods[0], &eviction(&pods[0]), &q).unwrap();
        for n in ["a", "b"] {
            create(
                &store,
                "policy",
                "poddisruptionbudgets",
                budget(n, json!({"maxUnavailable": 1})),
            );
        }
        let e = evict(&store, "default", &pods[1], &eviction(&pods[1]), &q).unwrap_err();
        assert_eq!(e.code, 500);
        assert_eq!(
            e.message,
            "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support."
        );
        let e = evict(&store, "default", "nope", &eviction("nope"), &q).unwrap_err();
        assert_eq!(e.code, 404);
    }

    #[test]
    fn a_budget_not_yet_observed_asks_to_retry() {
        let store = Store::new();
        create(
            &store,
            "",
            "pods",
            json!({"metadata": {"name": "p", "labels": {"app": "web"}},
            "spec": {"nodeName": "n", "containers": [{"name": "c", "image": "i"}]},
            "status": {"phase": "Running"}}),
        );
        create(
            &store,
            "policy",
            "poddisruptionbudgets",
            budget("fresh", json!({"minAvailable": 1})),
        );
        let e = evict(&store, "default", "p", &eviction("p"), &Query::default()).unwrap_err();
        assert_eq!(e.code, 429);
        let s = e.status();
        assert_eq!(
            s["details"]["causes"][0]["message"],
            "The disruption budget fresh is still being processed by the server."
        );
        assert_eq!(s["details"]["retryAfterSeconds"], 10);
    }
}
