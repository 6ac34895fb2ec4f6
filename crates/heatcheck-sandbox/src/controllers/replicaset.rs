//! ReplicaSet -> Pods: keeps `spec.replicas` live pods from the template,
//! replaces pods deleted by anyone, removes the newest (unready first) on
//! scale-down, and reports status as the real controller does.

use std::time::Duration;

use serde_json::{json, Value};
use tokio::time::Instant;

use super::kubelet::pod_ready;
use super::util::{self, key};
use super::{Reconciler, Scope};
use crate::registry::ResKey;
use crate::store::{DeleteOptions, Store};

pub(crate) struct ReplicaSets;

impl Reconciler for ReplicaSets {
    fn watches(&self, key: &ResKey) -> bool {
        (key.group == "apps" && key.plural == "replicasets")
            || (key.group.is_empty() && key.plural == "pods")
    }

    fn reconcile(&mut self, store: &Store, scope: &Scope) -> Option<Instant> {
        let mut wake: Option<Instant> = None;
        for rs in scope.list(store, &key("apps", "replicasets")) {
            if let Some(at) = reconcile_rs(store, &rs) {
                wake = Some(wake.map_or(at, |w| w.min(at)));
            }
        }
        wake
    }
}

/// Pods a controller owns that still count: not terminating, not finished.
pub(crate) fn owned_active_pods(store: &Store, owner: &Value) -> Vec<Value> {
    let ns = util::namespace(owner);
    let owner_uid = util::uid(owner);
    util::list(store, &key("", "pods"), Some(ns))
        .into_iter()
        .filter(|p| util::controller_uid(p) == Some(owner_uid))
        .filter(|p| !util::is_terminating(p))
        .filter(|p| {
            !matches!(
                p.pointer("/status/phase").and_then(Value::as_str),
                Some("Succeeded" | "Failed")
            )
        })
        .collect()
}

/// A new pod from a controller's template (the store fills in the name).
pub(crate) fn pod_from_template(owner: &Value, template: &Value, name: Option<&str>) -> Value {
    let mut meta = json!({
        "namespace": util::namespace(owner),
        "labels": template.pointer("/metadata/labels").cloned().unwrap_or(json!({})),
        "ownerReferences": [util::controller_ref(owner)],
    });
    match name {
        Some(n) => meta["name"] = json!(n),
        None => meta["generateName"] = json!(format!("{}-", util::name(owner))),
    }
    if let Some(a) = template.pointer("/metadata/annotations") {
        meta["annotations"] = a.clone();
    }
    let spec = template.get("spec").cloned().unwrap_or(json!({}));
    let containers = spec
        .get("containers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": spec,
        "status": {"phase": "Pending", "qosClass": super::kubelet::qos_class(&containers)},
    })
}

/// When a ready pod counts as available (`minReadySeconds` after Ready).
pub(crate) fn available_at(pod: &Value, min_ready: i64) -> Option<Instant> {
    if !pod_ready(pod) {
        return None;
    }
    if min_ready <= 0 {
        return Some(Instant::now());
    }
    let since = pod
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|cs| {
            cs.iter()
                .find(|c| c.get("type").and_then(Value::as_str) == Some("Ready"))
        })
        .and_then(|c| c.get("lastTransitionTime"))
        .and_then(Value::as_str)
        .and_then(util::parse_time)?;
    let at = since + chrono::Duration::seconds(min_ready);
    let wait = (at - chrono::Utc::now()).to_std().unwrap_or_default();
    Some(Instant::now() + wait)
}

/// Counts for a workload's status: (ready, available, next availability instant).
pub(crate) fn readiness(pods: &[Value], min_ready: i64) -> (i64, i64, Option<Instant>) {
    let mut ready = 0;
    let mut available = 0;
    let mut wake: Option<Instant> = None;
    for p in pods {
        if let Some(at) = available_at(p, min_ready) {
            ready += 1;
            if at <= Instant::now() {
                available += 1;
            } else {
                wake = Some(wake.map_or(at, |w| w.min(at)));
            }
        }
    }
    (ready, available, wake)
}

fn reconcile_rs(store: &Store, rs: &Value) -> Option<Instant> {
    if util::is_terminating(rs) {
        return None;
    }
    let pods_key = key("", "pods");
    let ns = util::namespace(rs).to_string();
    let desired = rs
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1)
        .max(0);
    let template = rs.pointer("/spec/template").cloned().unwrap_or(json!({}));
    let mut pods = owned_active_pods(store, rs);
    let mut retry = false;
    let have = pods.len() as i64;
    if have < desired {
        for _ in have..desired {
            match store.create(
                &pods_key,
                Some(&ns),
                pod_from_template(rs, &template, None),
                &util::W,
            ) {
                Ok(p) => pods.push(p),
                Err(e) => {
                    tracing::debug!(rs = util::name(rs), error = %e, "pod create failed");
                    retry = true;
                }
            }
        }
    } else if have > desired {
        // Unready pods go first, then the newest.
        pods.sort_by(|a, b| {
            pod_ready(a)
                .cmp(&pod_ready(b))
                .then_with(|| {
                    util::meta_str(b, "creationTimestamp")
                        .cmp(&util::meta_str(a, "creationTimestamp"))
                })
                .then_with(|| util::name(b).cmp(util::name(a)))
        });
        let surplus = (have - desired) as usize;
        for p in pods.drain(..surplus) {
            let _ = store.delete(
                &pods_key,
                Some(&ns),
                util::name(&p),
                &DeleteOptions::default(),
            );
        }
    }
    let min_ready = rs
        .pointer("/spec/minReadySeconds")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let (ready, available, wake) = readiness(&pods, min_ready);
    let tmpl_labels = util::string_map(template.pointer("/metadata/labels"));
    let fully_labeled = pods
        .iter()
        .filter(|p| util::map_selector_matches(&tmpl_labels, &util::labels(p)))
        .count() as i64;
    let mut status = json!({"replicas": pods.len()});
    let s = status.as_object_mut().expect("object");
    for (k, v) in [
        ("fullyLabeledReplicas", fully_labeled),
        ("readyReplicas", ready),
        ("availableReplicas", available),
    ] {
        if v > 0 {
            s.insert(k.into(), json!(v));
        }
    }
    s.insert("observedGeneration".into(), json!(util::generation(rs)));
    util::write_status(store, &key("apps", "replicasets"), rs, status);
    if retry {
        return Some(Instant::now() + Duration::from_millis(200));
    }
    wake
}
