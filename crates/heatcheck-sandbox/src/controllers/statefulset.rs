//! StatefulSet -> Pods `<name>-0..n-1`: ordered creation (each pod waits for
//! the previous to be Ready unless podManagementPolicy is Parallel),
//! highest-ordinal-first scale-down and rolling updates, revision labels
//! and the real status fields.

use serde_json::{json, Value};
use tokio::time::Instant;

use super::kubelet::pod_ready;
use super::replicaset::{owned_active_pods, pod_from_template, readiness};
use super::util::{self, key};
use super::{Reconciler, Scope};
use crate::registry::ResKey;
use crate::store::{DeleteOptions, Store};

const REVISION_LABEL: &str = "controller-revision-hash";

pub(crate) struct StatefulSets;

impl Reconciler for StatefulSets {
    fn watches(&self, key: &ResKey) -> bool {
        (key.group == "apps" && key.plural == "statefulsets")
            || (key.group.is_empty() && key.plural == "pods")
    }

    fn reconcile(&mut self, store: &Store, scope: &Scope) -> Option<Instant> {
        let mut wake: Option<Instant> = None;
        for sts in scope.list(store, &key("apps", "statefulsets")) {
            if let Some(at) = reconcile_sts(store, &sts) {
                wake = Some(wake.map_or(at, |w| w.min(at)));
            }
        }
        wake
    }
}

fn ordinal(sts: &str, pod: &Value) -> Option<i64> {
    util::name(pod)
        .strip_prefix(&format!("{sts}-"))?
        .parse()
        .ok()
}

fn reconcile_sts(store: &Store, sts: &Value) -> Option<Instant> {
    if util::is_terminating(sts) {
        return None;
    }
    let pods_key = key("", "pods");
    let ns = util::namespace(sts).to_string();
    let name = util::name(sts).to_string();
    let replicas = sts
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1)
        .max(0);
    let template = sts.pointer("/spec/template").cloned().unwrap_or(json!({}));
    let revision = format!("{name}-{}", util::template_hash(&template, 0));
    let parallel = sts
        .pointer("/spec/podManagementPolicy")
        .and_then(Value::as_str)
        == Some("Parallel");
    let on_delete = sts
        .pointer("/spec/updateStrategy/type")
        .and_then(Value::as_str)
        == Some("OnDelete");
    let mut pods = owned_active_pods(store, sts);
    pods.sort_by_key(|p| ordinal(&name, p).unwrap_or(i64::MAX));

    // Scale down from the highest ordinal.
    let (keep, extra): (Vec<Value>, Vec<Value>) = pods
        .into_iter()
        .partition(|p| ordinal(&name, p).is_some_and(|o| o < replicas));
    let mut extra = extra;
    extra.sort_by_key(|p| std::cmp::Reverse(ordinal(&name, p)));
    for p in extra.iter().take(if parallel { extra.len() } else { 1 }) {
        let _ = store.delete(
            &pods_key,
            Some(&ns),
            util::name(p),
            &DeleteOptions::default(),
        );
    }
    let mut pods = keep;

    // Create missing ordinals, in order unless Parallel.
    let all_ready_before = |pods: &[Value], i: i64| {
        pods.iter()
            .filter(|p| ordinal(&name, p).is_some_and(|o| o < i))
            .filter(|p| pod_ready(p))
            .count() as i64
            == i
    };
    if extra.is_empty() || parallel {
        for i in 0..replicas {
            if pods.iter().any(|p| ordinal(&name, p) == Some(i)) {
                continue;
            }
            if !parallel && !all_ready_before(&pods, i) {
                break;
            }
            let pod_name = format!("{name}-{i}");
            let mut t = template.clone();
            if !t.pointer("/metadata/labels").is_some_and(Value::is_object) {
                t["metadata"] = json!({"labels": {}});
            }
            t["metadata"]["labels"][REVISION_LABEL] = json!(revision);
            t["metadata"]["labels"]["statefulset.kubernetes.io/pod-name"] = json!(pod_name);
            t["metadata"]["labels"]["apps.kubernetes.io/pod-index"] = json!(i.to_string());
            t["spec"]["hostname"] = json!(pod_name);
            if let Some(svc) = sts
                .pointer("/spec/serviceName")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
            {
                t["spec"]["subdomain"] = json!(svc);
            }
            match store.create(
                &pods_key,
                Some(&ns),
                pod_from_template(sts, &t, Some(&pod_name)),
                &util::W,
            ) {
                Ok(p) => pods.push(p),
                Err(_) => break,
            }
            if !parallel {
                break;
            }
        }
    }

    // Rolling update: replace the highest outdated pod once all are ready.
    let outdated = |p: &Value| util::labels(p).get(REVISION_LABEL) != Some(&revision);
    if !on_delete && pods.len() as i64 == replicas && pods.iter().all(pod_ready) {
        if let Some(p) = pods
            .iter()
            .filter(|p| outdated(p))
            .max_by_key(|p| ordinal(&name, p))
        {
            let _ = store.delete(
                &pods_key,
                Some(&ns),
                util::name(p),
                &DeleteOptions::default(),
            );
        }
    }

    let min_ready = sts
        .pointer("/spec/minReadySeconds")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let (ready, available, wake) = readiness(&pods, min_ready);
    let updated = pods.iter().filter(|p| !outdated(p)).count() as i64;
    let current_revision = if updated == pods.len() as i64 {
        revision.clone()
    } else {
        sts.pointer("/status/currentRevision")
            .and_then(Value::as_str)
            .unwrap_or(&revision)
            .to_string()
    };
    let current = pods
        .iter()
        .filter(|p| util::labels(p).get(REVISION_LABEL) == Some(&current_revision))
        .count() as i64;
    let mut status = json!({"observedGeneration": util::generation(sts), "replicas": pods.len()});
    let s = status.as_object_mut().expect("object");
    for (k, v) in [
        ("readyReplicas", ready),
        ("currentReplicas", current),
        ("updatedReplicas", updated),
    ] {
        if v > 0 {
            s.insert(k.into(), json!(v));
        }
    }
    s.insert("currentRevision".into(), json!(current_revision));
    s.insert("updateRevision".into(), json!(revision));
    s.insert("collisionCount".into(), json!(0));
    s.insert("availableReplicas".into(), json!(available));
    util::write_status(store, &key("apps", "statefulsets"), sts, status);
    wake
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controllers::spawn_controllers;
    use crate::controllers::testutil::*;

    #[tokio::test]
    async fn statefulset_pods_are_ordinal_and_scale_down_from_the_top() {
        let store = Store::new();
        let _h = spawn_controllers(store.clone(), quick_termination());
        create(
            &store,
            "apps",
            "statefulsets",
            json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "db", "namespace": "default"},
            "spec": {"replicas": 3, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
                "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [{"name": "db", "image": "postgres:16"}]}}}}),
        );
        let get = || {
            store
                .get(&key("apps", "statefulsets"), Some("default"), "db")
                .unwrap()
        };
        wait_for("3 ready", || {
            (get()["status"]["readyReplicas"] == 3).then_some(())
        })
        .await;
        let mut names: Vec<String> = ready_pods(&store, "default", "db-")
            .iter()
            .map(|p| util::name(p).to_string())
            .collect();
        names.sort();
        assert_eq!(names, ["db-0", "db-1", "db-2"]);
        let p = store
            .get(&key("", "pods"), Some("default"), "db-1")
            .unwrap();
        assert_eq!(p["spec"]["hostname"], "db-1");
        assert_eq!(p["spec"]["subdomain"], "db");
        assert_eq!(p["metadata"]["labels"]["apps.kubernetes.io/pod-index"], "1");
        let mut s = get();
        s["spec"]["replicas"] = json!(1);
        store
            .update(
                &key("apps", "statefulsets"),
                Some("default"),
                "db",
                s,
                &util::W,
            )
            .unwrap();
        // The removed pods are Terminating for a moment first.
        wait_for("scaled down", || {
            (get()["status"]["replicas"] == 1 && pods(&store, "default").len() == 1).then_some(())
        })
        .await;
        let left: Vec<String> = pods(&store, "default")
            .iter()
            .map(|p| util::name(p).to_string())
            .collect();
        assert_eq!(left, ["db-0"]);
    }
}
