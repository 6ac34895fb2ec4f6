//! Deployment -> ReplicaSets, like kube-controller-manager: one ReplicaSet
//! per pod template (`<deploy>-<pod-template-hash>`), rollouts that scale the
//! new one up and the old ones down as new pods become available, revision
//! annotations, history cleanup and the real status and conditions.

use std::time::Duration;

use serde_json::{json, Map, Value};
use tokio::time::Instant;

use super::util::{self, key};
use super::{Reconciler, Scope};
use crate::registry::ResKey;
use crate::store::{DeleteOptions, Store};

pub(crate) const HASH_LABEL: &str = "pod-template-hash";
const REVISION: &str = "deployment.kubernetes.io/revision";
const DESIRED: &str = "deployment.kubernetes.io/desired-replicas";
const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";

pub(crate) struct Deployments;

impl Reconciler for Deployments {
    fn watches(&self, key: &ResKey) -> bool {
        // Pods too: a Recreate waits for the last old pod to be gone.
        (key.group == "apps" && (key.plural == "deployments" || key.plural == "replicasets"))
            || (key.group.is_empty() && key.plural == "pods")
    }

    fn reconcile(&mut self, store: &Store, scope: &Scope) -> Option<Instant> {
        let mut wake = None;
        for d in scope.list(store, &key("apps", "deployments")) {
            if let Some(at) = reconcile_deployment(store, &d) {
                wake = Some(at);
            }
        }
        wake
    }
}

fn revision(rs: &Value) -> i64 {
    rs.pointer("/metadata/annotations")
        .and_then(|a| a.get(REVISION))
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

fn int(v: &Value, ptr: &str) -> i64 {
    v.pointer(ptr).and_then(Value::as_i64).unwrap_or(0)
}

/// A template without the pod-template-hash label, for comparing templates.
fn without_hash(template: &Value) -> Value {
    let mut t = template.clone();
    if let Some(l) = t
        .pointer_mut("/metadata/labels")
        .and_then(Value::as_object_mut)
    {
        l.remove(HASH_LABEL);
        if l.is_empty() {
            if let Some(m) = t.get_mut("metadata").and_then(Value::as_object_mut) {
                m.remove("labels");
            }
        }
    }
    if t.get("metadata")
        .and_then(Value::as_object)
        .is_some_and(Map::is_empty)
    {
        if let Some(o) = t.as_object_mut() {
            o.remove("metadata");
        }
    }
    t
}

fn same_template(a: &Value, b: &Value) -> bool {
    util::canonical(&without_hash(a)) == util::canonical(&without_hash(b))
}

fn with_annotations(obj: &Value, pairs: &[(&str, String)]) -> Value {
    let mut next = obj.clone();
    let meta = next["metadata"].as_object_mut().expect("metadata");
    let ann = meta.entry("annotations").or_insert_with(|| json!({}));
    if !ann.is_object() {
        *ann = json!({});
    }
    for (k, v) in pairs {
        ann[*k] = json!(v);
    }
    next
}

fn set_replicas(store: &Store, rs: &Value, n: i64, annotations: &[(&str, String)]) {
    let mut next = with_annotations(rs, annotations);
    next["spec"]["replicas"] = json!(n);
    util::write_object(store, &key("apps", "replicasets"), rs, next);
}

/// The new ReplicaSet for the deployment's current template.
fn new_replicaset(
    d: &Value,
    hash: &str,
    revision: i64,
    replicas: i64,
    annotations: &[(&str, String)],
) -> Value {
    let dname = util::name(d);
    let mut template = d.pointer("/spec/template").cloned().unwrap_or(json!({}));
    if !template.get("metadata").is_some_and(Value::is_object) {
        template["metadata"] = json!({});
    }
    if !template["metadata"]
        .get("labels")
        .is_some_and(Value::is_object)
    {
        template["metadata"]["labels"] = json!({});
    }
    template["metadata"]["labels"][HASH_LABEL] = json!(hash);
    let mut selector = d.pointer("/spec/selector").cloned().unwrap_or(json!({}));
    if !selector.get("matchLabels").is_some_and(Value::is_object) {
        selector["matchLabels"] = json!({});
    }
    selector["matchLabels"][HASH_LABEL] = json!(hash);
    let mut ann = Map::new();
    for (k, v) in annotations {
        ann.insert(k.to_string(), json!(v));
    }
    ann.insert(REVISION.into(), json!(revision.to_string()));
    let mut spec = json!({"replicas": replicas, "selector": selector, "template": template});
    if let Some(m) = d.pointer("/spec/minReadySeconds") {
        spec["minReadySeconds"] = m.clone();
    }
    json!({
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": format!("{dname}-{hash}"),
            "namespace": util::namespace(d),
            "labels": template["metadata"]["labels"].clone(),
            "annotations": ann,
            "ownerReferences": [util::controller_ref(d)],
        },
        "spec": spec,
    })
}

fn reconcile_deployment(store: &Store, d: &Value) -> Option<Instant> {
    if util::is_terminating(d) {
        return None;
    }
    let rs_key = key("apps", "replicasets");
    let ns = util::namespace(d).to_string();
    let desired = d
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1)
        .max(0);
    let template = d.pointer("/spec/template").cloned().unwrap_or(json!({}));
    let recreate = d.pointer("/spec/strategy/type").and_then(Value::as_str) == Some("Recreate");
    let (max_surge, max_unavailable) = if recreate {
        (0, 0)
    } else {
        fenceposts(d.pointer("/spec/strategy/rollingUpdate"), desired)
    };
    let paused = d.pointer("/spec/paused").and_then(Value::as_bool) == Some(true);
    let collision = int(d, "/status/collisionCount");
    let owner_uid = util::uid(d);
    let mut all: Vec<Value> = util::list(store, &rs_key, Some(&ns))
        .into_iter()
        .filter(|rs| util::controller_uid(rs) == Some(owner_uid))
        .collect();
    all.sort_by(|a, b| {
        util::meta_str(a, "creationTimestamp")
            .cmp(&util::meta_str(b, "creationTimestamp"))
            .then_with(|| revision(a).cmp(&revision(b)))
    });
    let find_new = |all: &[Value]| {
        all.iter().position(|rs| {
            same_template(
                rs.pointer("/spec/template").unwrap_or(&Value::Null),
                &template,
            )
        })
    };
    let scale_annotations = [
        (DESIRED, desired.to_string()),
        (MAX_REPLICAS, (desired + max_surge).to_string()),
    ];
    let mut created = false;
    let mut collision_next = collision;
    let mut new_idx = find_new(&all);
    let max_old_rev = all
        .iter()
        .enumerate()
        .filter(|(i, _)| Some(*i) != new_idx)
        .map(|(_, rs)| revision(rs))
        .max()
        .unwrap_or(0);
    if new_idx.is_none() && !paused {
        let hash = util::template_hash(&template, collision);
        let old_pods: i64 = all
            .iter()
            .map(|rs| int(rs, "/status/replicas") + int(rs, "/spec/replicas"))
            .sum();
        // The first pass of the plan below sizes it; a first rollout (no old
        // pods) starts at full size, as the real controller's does.
        let initial = if old_pods > 0 { 0 } else { desired };
        let rs = new_replicaset(d, &hash, max_old_rev + 1, initial, &scale_annotations);
        match store.create(&rs_key, Some(&ns), rs, &util::W) {
            Ok(rs) => {
                all.push(rs);
                new_idx = Some(all.len() - 1);
                created = true;
            }
            Err(e) if e.reason == "AlreadyExists" => {
                // Same name, different template: a hash collision.
                collision_next = collision + 1;
            }
            Err(e) => {
                tracing::debug!(deployment = util::name(d), error = %e, "replicaset create failed");
                return Some(Instant::now() + Duration::from_millis(200));
            }
        }
    }
    let new_rs = new_idx.map(|i| all[i].clone());
    let olds: Vec<Value> = all
        .iter()
        .enumerate()
        .filter(|(i, _)| Some(*i) != new_idx)
        .map(|(_, rs)| rs.clone())
        .collect();

    // Scaling.
    if let Some(new_rs) = &new_rs {
        let mut ann = scale_annotations.to_vec();
        if revision(new_rs) <= max_old_rev {
            // A rollback to an older template makes it the newest revision.
            ann.push((REVISION, (max_old_rev + 1).to_string()));
        }
        let plan = if paused {
            // Paused: scaling still applies, the rollout does not progress.
            Plan {
                new: desired,
                olds: olds.iter().map(|rs| int(rs, "/spec/replicas")).collect(),
            }
        } else if recreate {
            recreate_plan(store, new_rs, &olds, desired)
        } else {
            rolling_plan(new_rs, &olds, desired, max_surge, max_unavailable)
        };
        set_replicas(store, new_rs, plan.new, &ann);
        for (rs, n) in olds.iter().zip(plan.olds) {
            if n != int(rs, "/spec/replicas") {
                set_replicas(store, rs, n, &[]);
            }
        }
    } else if paused {
        // Paused before any rollout: just scale the latest ReplicaSet.
        if let Some(latest) = all.iter().max_by_key(|rs| revision(rs)) {
            set_replicas(store, latest, desired, &scale_annotations);
        }
    }

    cleanup_history(store, d, &olds);

    // The deployment carries its current revision.
    let current_rev = match &new_rs {
        Some(rs) if revision(rs) <= max_old_rev => max_old_rev + 1,
        Some(rs) => revision(rs),
        None => max_old_rev,
    };
    if current_rev > 0 {
        let ann = d
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(REVISION))
            .and_then(Value::as_str);
        if ann != Some(current_rev.to_string().as_str()) {
            let next = with_annotations(d, &[(REVISION, current_rev.to_string())]);
            if let Ok(updated) = store.update(
                &key("apps", "deployments"),
                Some(&ns),
                util::name(d),
                next,
                &util::W,
            ) {
                return write_deployment_status(
                    store,
                    &updated,
                    &all,
                    new_rs.as_ref(),
                    desired,
                    max_unavailable,
                    created,
                    collision_next,
                );
            }
            return Some(Instant::now() + Duration::from_millis(100));
        }
    }
    write_deployment_status(
        store,
        d,
        &all,
        new_rs.as_ref(),
        desired,
        max_unavailable,
        created,
        collision_next,
    )
}

/// maxSurge and maxUnavailable resolved against the desired replicas as
/// Kubernetes' `ResolveFenceposts` does: surge rounds up, unavailable rounds
/// down (defaults 25%), and when both come to 0 one pod may be unavailable.
fn fenceposts(ru: Option<&Value>, desired: i64) -> (i64, i64) {
    let surge = util::int_or_percent(ru.and_then(|r| r.get("maxSurge")), desired, "25%", true);
    let unavailable = util::int_or_percent(
        ru.and_then(|r| r.get("maxUnavailable")),
        desired,
        "25%",
        false,
    );
    if surge == 0 && unavailable == 0 {
        return (0, 1);
    }
    (surge, unavailable.min(desired))
}

/// The spec.replicas one pass gives the new ReplicaSet and each old one
/// (in the order of `olds`, oldest first).
#[derive(Debug, PartialEq)]
struct Plan {
    new: i64,
    olds: Vec<i64>,
}

/// A RollingUpdate step, as the deployment controller takes it: scale the
/// new ReplicaSet up within desired + maxSurge pods; scale old ones down,
/// their unavailable pods first, while desired - maxUnavailable pods stay
/// available (counted from each ReplicaSet's availableReplicas, so a pod
/// only counts once it is Ready for minReadySeconds).
fn rolling_plan(
    new_rs: &Value,
    olds: &[Value],
    desired: i64,
    max_surge: i64,
    max_unavailable: i64,
) -> Plan {
    let spec = |rs: &Value| int(rs, "/spec/replicas");
    let available = |rs: &Value| int(rs, "/status/availableReplicas");
    let mut old_spec: Vec<i64> = olds.iter().map(spec).collect();
    let new_spec = spec(new_rs);
    let total: i64 = new_spec + old_spec.iter().sum::<i64>();
    let new = if new_spec >= desired {
        desired
    } else {
        let room = (desired + max_surge - total).max(0);
        new_spec + room.min(desired - new_spec)
    };
    let min_available = desired - max_unavailable;
    let new_unavailable = (new - available(new_rs)).max(0);
    let total = new + old_spec.iter().sum::<i64>();
    let max_scaled_down = total - min_available - new_unavailable;
    if max_scaled_down > 0 {
        // Unavailable old pods go first: removing them costs no availability.
        let mut cleaned = 0;
        for (rs, n) in olds.iter().zip(old_spec.iter_mut()) {
            let unhealthy = (*n - available(rs)).max(0);
            let take = unhealthy.min(max_scaled_down - cleaned);
            *n -= take;
            cleaned += take;
        }
        // Then available ones, down to the availability floor.
        let available_now = available(new_rs) + olds.iter().map(available).sum::<i64>();
        let mut budget = (available_now - min_available).max(0);
        for n in old_spec.iter_mut() {
            let take = (*n).min(budget);
            *n -= take;
            budget -= take;
        }
    }
    Plan {
        new,
        olds: old_spec,
    }
}

/// Recreate: every old pod goes first; the new ReplicaSet is scaled up only
/// once none is left, Terminating ones included (the outage is by design).
fn recreate_plan(store: &Store, new_rs: &Value, olds: &[Value], desired: i64) -> Plan {
    let old_uids: Vec<&str> = olds.iter().map(util::uid).collect();
    let old_pods_left = util::list(store, &key("", "pods"), Some(util::namespace(new_rs)))
        .iter()
        .filter(|p| util::controller_uid(p).is_some_and(|u| old_uids.contains(&u)))
        .any(|p| {
            !matches!(
                p.pointer("/status/phase").and_then(Value::as_str),
                Some("Succeeded" | "Failed")
            )
        });
    let olds_down = olds.iter().all(|rs| int(rs, "/spec/replicas") == 0);
    Plan {
        new: if olds_down && !old_pods_left {
            desired
        } else {
            int(new_rs, "/spec/replicas").min(desired)
        },
        olds: vec![0; olds.len()],
    }
}

/// Deletes the oldest fully scaled-down ReplicaSets beyond revisionHistoryLimit.
fn cleanup_history(store: &Store, d: &Value, olds: &[Value]) {
    let limit = d
        .pointer("/spec/revisionHistoryLimit")
        .and_then(Value::as_i64)
        .unwrap_or(10)
        .max(0) as usize;
    let mut idle: Vec<&Value> = olds
        .iter()
        .filter(|rs| int(rs, "/spec/replicas") == 0 && int(rs, "/status/replicas") == 0)
        .collect();
    if idle.len() <= limit {
        return;
    }
    idle.sort_by_key(|rs| revision(rs));
    let n = idle.len() - limit;
    for rs in idle.into_iter().take(n) {
        let _ = store.delete(
            &key("apps", "replicasets"),
            Some(util::namespace(rs)),
            util::name(rs),
            &DeleteOptions::default(),
        );
    }
}

#[allow(clippy::too_many_arguments)]
fn write_deployment_status(
    store: &Store,
    d: &Value,
    all: &[Value],
    new_rs: Option<&Value>,
    desired: i64,
    max_unavailable: i64,
    created: bool,
    collision: i64,
) -> Option<Instant> {
    // Re-read the ReplicaSets: this pass may have scaled them.
    let current: Vec<Value> = all
        .iter()
        .filter_map(|rs| {
            store
                .get(
                    &key("apps", "replicasets"),
                    Some(util::namespace(rs)),
                    util::name(rs),
                )
                .ok()
        })
        .collect();
    let sum = |ptr: &str| current.iter().map(|rs| int(rs, ptr)).sum::<i64>();
    let replicas = sum("/status/replicas");
    let ready = sum("/status/readyReplicas");
    let available = sum("/status/availableReplicas");
    let total_spec = sum("/spec/replicas");
    let new_name = new_rs.map(util::name).unwrap_or_default().to_string();
    let updated = current
        .iter()
        .find(|rs| util::name(rs) == new_name)
        .map(|rs| int(rs, "/status/replicas"))
        .unwrap_or(0);
    let unavailable = (total_spec - available).max(0);
    let generation = util::generation(d);
    let mut status = Map::new();
    status.insert("observedGeneration".into(), json!(generation));
    for (k, v) in [
        ("replicas", replicas),
        ("updatedReplicas", updated),
        ("readyReplicas", ready),
        ("availableReplicas", available),
        ("unavailableReplicas", unavailable),
    ] {
        if v > 0 {
            status.insert(k.into(), json!(v));
        }
    }
    let available_cond = if available >= desired - max_unavailable.min(desired) {
        json!({"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable",
            "message": "Deployment has minimum availability."})
    } else {
        json!({"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable",
            "message": "Deployment does not have minimum availability."})
    };
    let complete =
        updated == desired && replicas == desired && available == desired && new_rs.is_some();
    let prev_progressing = d
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Progressing"))
        .and_then(|c| c.get("reason"))
        .and_then(Value::as_str);
    let progressing = if new_rs.is_none() {
        None
    } else if complete {
        Some(
            json!({"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable",
            "message": format!("ReplicaSet \"{new_name}\" has successfully progressed.")}),
        )
    } else if created || (prev_progressing.is_none() && replicas == 0) {
        Some(
            json!({"type": "Progressing", "status": "True", "reason": "NewReplicaSetCreated",
            "message": format!("Created new replica set \"{new_name}\"")}),
        )
    } else {
        Some(
            json!({"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated",
            "message": format!("ReplicaSet \"{new_name}\" is progressing.")}),
        )
    };
    let mut wanted = vec![available_cond];
    wanted.extend(progressing);
    status.insert(
        "conditions".into(),
        util::merge_conditions(d.pointer("/status/conditions"), wanted, true),
    );
    if collision > 0 {
        status.insert("collisionCount".into(), json!(collision));
    }
    let wrote = util::write_status(store, &key("apps", "deployments"), d, Value::Object(status));
    // A collision needs another pass with the new count.
    (collision > int(d, "/status/collisionCount") && wrote)
        .then(|| Instant::now() + Duration::from_millis(10))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controllers::testutil::*;
    use crate::controllers::{spawn_controllers, ControllerConfig};

    fn rs_of(store: &Store, deploy: &str) -> Vec<Value> {
        util::list(store, &key("apps", "replicasets"), Some("default"))
            .into_iter()
            .filter(|rs| util::name(rs).starts_with(&format!("{deploy}-")))
            .collect()
    }

    fn dep(store: &Store, name: &str) -> Value {
        store
            .get(&key("apps", "deployments"), Some("default"), name)
            .unwrap()
    }

    fn rollout_done(d: &Value, replicas: i64) -> bool {
        let st = &d["status"];
        let n = |k: &str| st.get(k).and_then(Value::as_i64).unwrap_or(0);
        st["observedGeneration"] == d["metadata"]["generation"]
            && n("replicas") == replicas
            && n("updatedReplicas") == replicas
            && n("availableReplicas") == replicas
            && st["conditions"].as_array().is_some_and(|cs| {
                cs.iter()
                    .any(|c| c["type"] == "Progressing" && c["reason"] == "NewReplicaSetAvailable")
            })
    }

    #[tokio::test]
    async fn deployment_creates_replicaset_and_ready_pods() {
        let store = Store::new();
        let _h = spawn_controllers(store.clone(), ControllerConfig::default());
        create(&store, "apps", "deployments", deployment("web", 3));
        let d = wait_for("rollout", || {
            Some(dep(&store, "web")).filter(|d| rollout_done(d, 3))
        })
        .await;
        assert_eq!(d["status"]["readyReplicas"], 3);
        assert!(d["status"].get("unavailableReplicas").is_none());
        assert_eq!(d["metadata"]["annotations"][REVISION], "1");
        let conds = d["status"]["conditions"].as_array().unwrap();
        assert_eq!(conds[0]["type"], "Available");
        assert_eq!(conds[0]["status"], "True");
        assert_eq!(conds[0]["message"], "Deployment has minimum availability.");
        let rss = rs_of(&store, "web");
        assert_eq!(rss.len(), 1);
        let rs = &rss[0];
        let hash = rs["metadata"]["labels"][HASH_LABEL].as_str().unwrap();
        assert_eq!(util::name(rs), format!("web-{hash}"));
        assert_eq!(rs["metadata"]["ownerReferences"][0]["kind"], "Deployment");
        assert_eq!(rs["metadata"]["ownerReferences"][0]["controller"], true);
        assert_eq!(rs["metadata"]["annotations"][REVISION], "1");
        assert_eq!(rs["status"]["replicas"], 3);
        let pods = ready_pods(&store, "default", &format!("web-{hash}-"));
        assert_eq!(pods.len(), 3);
        for p in &pods {
            let suffix = util::name(p).rsplit('-').next().unwrap();
            assert_eq!(suffix.len(), 5, "{}", util::name(p));
            assert_eq!(p["metadata"]["labels"][HASH_LABEL], hash);
            assert_eq!(p["metadata"]["ownerReferences"][0]["name"], util::name(rs));
            assert_eq!(p["spec"]["nodeName"], "sandbox-node");
        }
    }

    #[tokio::test]
    async fn scale_to_zero_and_back() {
        let store = Store::new();
        let _h = spawn_controllers(store.clone(), quick_termination());
        create(&store, "apps", "deployments", deployment("sc", 2));
        wait_for("initial", || {
            Some(dep(&store, "sc")).filter(|d| rollout_done(d, 2))
        })
        .await;
        let mut d = dep(&store, "sc");
        d["spec"]["replicas"] = json!(0);
        store
            .update(
                &key("apps", "deployments"),
                Some("default"),
                "sc",
                d,
                &util::W,
            )
            .unwrap();
        let d = wait_for("scaled to zero", || {
            let d = dep(&store, "sc");
            (pods(&store, "default")
                .iter()
                .all(|p| !util::name(p).starts_with("sc-"))
                && d["status"]["observedGeneration"] == d["metadata"]["generation"]
                && d["status"].get("replicas").is_none())
            .then_some(d)
        })
        .await;
        assert!(
            d["status"].get("readyReplicas").is_none(),
            "zero counts are omitted"
        );
        assert_eq!(d["status"]["conditions"][0]["status"], "True");
        assert_eq!(
            rs_of(&store, "sc")[0]["status"]["replicas"],
            0,
            "RS status keeps replicas: 0"
        );
        let mut d = dep(&store, "sc");
        d["spec"]["replicas"] = json!(2);
        store
            .update(
                &key("apps", "deployments"),
                Some("default"),
                "sc",
                d,
                &util::W,
            )
            .unwrap();
        wait_for("scaled back", || {
            Some(dep(&store, "sc")).filter(|d| rollout_done(d, 2))
        })
        .await;
        assert_eq!(ready_pods(&store, "default", "sc-").len(), 2);
        assert_eq!(
            rs_of(&store, "sc").len(),
            1,
            "scaling makes no new ReplicaSet"
        );
    }

    #[tokio::test]
    async fn rollout_restart_replaces_pods() {
        let store = Store::new();
        let _h = spawn_controllers(store.clone(), quick_termination());
        create(&store, "apps", "deployments", deployment("rr", 2));
        wait_for("initial", || {
            Some(dep(&store, "rr")).filter(|d| rollout_done(d, 2))
        })
        .await;
        let before: Vec<String> = ready_pods(&store, "default", "rr-")
            .iter()
            .map(|p| util::name(p).to_string())
            .collect();
        let mut d = dep(&store, "rr");
        d["spec"]["template"]["metadata"]["annotations"] =
            json!({"kubectl.kubernetes.io/restartedAt": "2026-01-01T00:00:00Z"});
        store
            .update(
                &key("apps", "deployments"),
                Some("default"),
                "rr",
                d,
                &util::W,
            )
            .unwrap();
        let d = wait_for("restart rollout", || {
            let d = dep(&store, "rr");
            (rollout_done(&d, 2)
                && pods(&store, "default")
                    .iter()
                    .filter(|p| util::name(p).starts_with("rr-"))
                    .count()
                    == 2)
                .then_some(d)
        })
        .await;
        assert_eq!(d["metadata"]["annotations"][REVISION], "2");
        let after: Vec<String> = ready_pods(&store, "default", "rr-")
            .iter()
            .map(|p| util::name(p).to_string())
            .collect();
        assert_eq!(after.len(), 2);
        assert!(
            after.iter().all(|p| !before.contains(p)),
            "{before:?} -> {after:?}"
        );
        let rss = rs_of(&store, "rr");
        assert_eq!(rss.len(), 2);
        let old = rss
            .iter()
            .find(|rs| rs["metadata"]["annotations"][REVISION] == "1")
            .unwrap();
        assert_eq!(old["spec"]["replicas"], 0);
        let new = rss
            .iter()
            .find(|rs| rs["metadata"]["annotations"][REVISION] == "2")
            .unwrap();
        assert_eq!(
            new["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"],
            "2026-01-01T00:00:00Z"
        );
        assert_ne!(util::name(old), util::name(new));
    }

    #[tokio::test]
    async fn deleted_pod_is_replaced() {
        let store = Store::new();
        let _h = spawn_controllers(store.clone(), ControllerConfig::default());
        create(&store, "apps", "deployments", deployment("del", 2));
        wait_for("initial", || {
            Some(dep(&store, "del")).filter(|d| rollout_done(d, 2))
        })
        .await;
        let victim = util::name(&ready_pods(&store, "default", "del-")[0]).to_string();
        store
            .delete(
                &key("", "pods"),
                Some("default"),
                &victim,
                &DeleteOptions::default(),
            )
            .unwrap();
        let now = wait_for("replacement", || {
            let ps = ready_pods(&store, "default", "del-");
            (ps.len() == 2).then_some(ps)
        })
        .await;
        assert!(now.iter().all(|p| util::name(p) != victim));
    }

    fn rs(spec: i64, available: i64) -> Value {
        json!({"spec": {"replicas": spec}, "status": {"availableReplicas": available}})
    }

    #[test]
    fn fenceposts_round_as_kubernetes_does() {
        let ru = |surge: Value, unavailable: Value| json!({"maxSurge": surge, "maxUnavailable": unavailable});
        assert_eq!(fenceposts(None, 4), (1, 1), "25% / 25% of 4");
        assert_eq!(
            fenceposts(None, 3),
            (1, 0),
            "surge rounds up, unavailable down"
        );
        assert_eq!(fenceposts(Some(&ru(json!("50%"), json!("50%"))), 3), (2, 1));
        assert_eq!(fenceposts(Some(&ru(json!(0), json!(0))), 3), (0, 1));
        assert_eq!(
            fenceposts(Some(&ru(json!("0%"), json!("10%"))), 3),
            (0, 1),
            "both round to 0: one may be unavailable"
        );
        assert_eq!(fenceposts(Some(&ru(json!(2), json!(5))), 3), (2, 3));
    }

    #[test]
    fn a_rolling_step_surges_then_scales_old_down_within_availability() {
        // 4 replicas, 25%/25%: one surge pod, one old pod down, at once.
        assert_eq!(
            rolling_plan(&rs(0, 0), &[rs(4, 4)], 4, 1, 1),
            Plan {
                new: 1,
                olds: vec![3]
            }
        );
        // maxSurge 0: old pods go first, one at a time.
        assert_eq!(
            rolling_plan(&rs(0, 0), &[rs(3, 3)], 3, 0, 1),
            Plan {
                new: 0,
                olds: vec![2]
            }
        );
        assert_eq!(
            rolling_plan(&rs(0, 0), &[rs(2, 2)], 3, 0, 1),
            Plan {
                new: 1,
                olds: vec![2]
            }
        );
        // The new pod is not available yet: no further old pod may go.
        assert_eq!(
            rolling_plan(&rs(1, 0), &[rs(2, 2)], 3, 0, 1),
            Plan {
                new: 1,
                olds: vec![2]
            }
        );
        assert_eq!(
            rolling_plan(&rs(1, 1), &[rs(2, 2)], 3, 0, 1),
            Plan {
                new: 1,
                olds: vec![1]
            }
        );
        // maxUnavailable 0: nothing old goes before a new pod is available.
        assert_eq!(
            rolling_plan(&rs(1, 0), &[rs(3, 3)], 3, 1, 0),
            Plan {
                new: 1,
                olds: vec![3]
            }
        );
        // Unavailable old pods are removed first, whatever the floor says.
        assert_eq!(
            rolling_plan(&rs(1, 1), &[rs(2, 0), rs(2, 2)], 3, 1, 0),
            Plan {
                new: 1,
                olds: vec![0, 2]
            }
        );
        // Scaling down the deployment shrinks the new ReplicaSet at once.
        assert_eq!(
            rolling_plan(&rs(5, 5), &[], 2, 1, 0),
            Plan {
                new: 2,
                olds: vec![]
            }
        );
    }

    /// Pods that serve traffic: Ready and not terminating.
    fn serving(store: &Store, prefix: &str) -> usize {
        ready_pods(store, "default", prefix).len()
    }

    async fn roll(store: &Store, name: &str, strategy: Value) -> Vec<(usize, usize)> {
        let mut d = deployment(name, 3);
        d["spec"]["strategy"] = strategy;
        d["spec"]["template"]["spec"]["containers"][0]["readinessProbe"] =
            json!({"tcpSocket": {"port": 8080}, "periodSeconds": 1, "initialDelaySeconds": 1});
        create(store, "apps", "deployments", d);
        wait_for("initial", || {
            Some(dep(store, name)).filter(|d| rollout_done(d, 3))
        })
        .await;
        let mut d = dep(store, name);
        d["spec"]["template"]["metadata"]["annotations"] = json!({"restart": "1"});
        store
            .update(
                &key("apps", "deployments"),
                Some("default"),
                name,
                d,
                &util::W,
            )
            .unwrap();
        // (serving pods, all pods incl. terminating) as the rollout goes.
        let mut seen = Vec::new();
        wait_for("rolled", || {
            seen.push((
                serving(store, &format!("{name}-")),
                pods(store, "default")
                    .iter()
                    .filter(|p| util::name(p).starts_with(&format!("{name}-")))
                    .filter(|p| !util::is_terminating(p))
                    .count(),
            ));
            let d = dep(store, name);
            (rollout_done(&d, 3) && d["metadata"]["annotations"][REVISION] == "2").then_some(())
        })
        .await;
        seen
    }

    fn timed_config() -> ControllerConfig {
        ControllerConfig {
            container_start_delay: Duration::from_millis(100),
            max_termination_grace: Some(Duration::from_millis(300)),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn a_rolling_update_with_max_unavailable_0_never_drops_below_desired() {
        let store = Store::new();
        let _h = spawn_controllers(store.clone(), timed_config());
        let seen = roll(
            &store,
            "zd",
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}),
        )
        .await;
        assert!(seen.iter().all(|(s, _)| *s >= 3), "{seen:?}");
        assert!(
            seen.iter().all(|(_, all)| *all <= 4),
            "at most desired + maxSurge pods: {seen:?}"
        );
        assert!(seen.iter().any(|(_, all)| *all == 4), "it surged: {seen:?}");
    }

    #[tokio::test]
    async fn recreate_has_no_pod_serving_between_old_and_new() {
        let store = Store::new();
        let _h = spawn_controllers(store.clone(), timed_config());
        let seen = roll(&store, "rc", json!({"type": "Recreate"})).await;
        assert!(
            seen.iter().any(|(s, all)| *s == 0 && *all == 0),
            "an outage by design: {seen:?}"
        );
        assert!(seen.iter().all(|(_, all)| *all <= 3), "{seen:?}");
    }

    #[test]
    fn converged_deployment_writes_nothing() {
        use crate::controllers::{kubelet::Kubelet, replicaset::ReplicaSets, Reconciler};
        let store = Store::new();
        create(&store, "apps", "deployments", deployment("idem", 2));
        let mut k = Kubelet::new(Duration::ZERO, None);
        let (mut r, mut d) = (ReplicaSets, Deployments);
        let mut last = 0;
        for _ in 0..10 {
            d.reconcile(&store, &Scope::All);
            r.reconcile(&store, &Scope::All);
            k.reconcile(&store, &Scope::All);
            let rv = store.resource_version();
            if rv == last {
                break;
            }
            last = rv;
        }
        let rv = store.resource_version();
        d.reconcile(&store, &Scope::All);
        r.reconcile(&store, &Scope::All);
        k.reconcile(&store, &Scope::All);
        assert_eq!(
            store.resource_version(),
            rv,
            "converged within 10 passes and stays quiet"
        );
        let d = dep(&store, "idem");
        assert!(
            rollout_done(&d, 2),
            "{d:#}\n{:#}",
            serde_json::Value::Array(rs_of(&store, "idem"))
        );
    }
}
