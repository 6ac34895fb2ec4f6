//! DaemonSet -> one pod on the sandbox's single node (when its nodeSelector
//! admits the node), replaced on template change under RollingUpdate.

use std::collections::BTreeMap;

use serde_json::{json, Value};
use tokio::time::Instant;

use super::kubelet::NODE_NAME;
use super::replicaset::{owned_active_pods, pod_from_template, readiness};
use super::util::{self, key};
use super::{Reconciler, Scope};
use crate::registry::ResKey;
use crate::store::{DeleteOptions, Store};

const REVISION_LABEL: &str = "controller-revision-hash";

pub(crate) struct DaemonSets;

impl Reconciler for DaemonSets {
    fn watches(&self, key: &ResKey) -> bool {
        (key.group == "apps" && key.plural == "daemonsets")
            || (key.group.is_empty() && key.plural == "pods")
    }

    fn reconcile(&mut self, store: &Store, scope: &Scope) -> Option<Instant> {
        let mut wake: Option<Instant> = None;
        for ds in scope.list(store, &key("apps", "daemonsets")) {
            if let Some(at) = reconcile_ds(store, &ds) {
                wake = Some(wake.map_or(at, |w| w.min(at)));
            }
        }
        wake
    }
}

fn node_labels() -> BTreeMap<String, String> {
    [
        ("kubernetes.io/hostname", NODE_NAME),
        ("kubernetes.io/os", "linux"),
        ("kubernetes.io/arch", "amd64"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn reconcile_ds(store: &Store, ds: &Value) -> Option<Instant> {
    if util::is_terminating(ds) {
        return None;
    }
    let pods_key = key("", "pods");
    let ns = util::namespace(ds).to_string();
    let template = ds.pointer("/spec/template").cloned().unwrap_or(json!({}));
    let hash = util::template_hash(&template, 0);
    let generation = util::generation(ds);
    let selector = util::string_map(template.pointer("/spec/nodeSelector"));
    let desired = i64::from(util::map_selector_matches(&selector, &node_labels()));
    let on_delete = ds
        .pointer("/spec/updateStrategy/type")
        .and_then(Value::as_str)
        == Some("OnDelete");
    let mut pods = owned_active_pods(store, ds);
    let outdated = |p: &Value| util::labels(p).get(REVISION_LABEL) != Some(&hash);
    if !on_delete {
        let (old, cur): (Vec<Value>, Vec<Value>) = pods.into_iter().partition(outdated);
        for p in &old {
            let _ = store.delete(
                &pods_key,
                Some(&ns),
                util::name(p),
                &DeleteOptions::default(),
            );
        }
        pods = cur;
    }
    if (pods.len() as i64) < desired {
        let mut t = template.clone();
        if !t.pointer("/metadata/labels").is_some_and(Value::is_object) {
            t["metadata"] = json!({"labels": {}});
        }
        t["metadata"]["labels"][REVISION_LABEL] = json!(hash);
        t["metadata"]["labels"]["pod-template-generation"] = json!(generation.to_string());
        t["spec"]["nodeName"] = json!(NODE_NAME);
        if let Ok(p) = store.create(
            &pods_key,
            Some(&ns),
            pod_from_template(ds, &t, None),
            &util::W,
        ) {
            pods.push(p);
        }
    }
    while pods.len() as i64 > desired {
        if let Some(p) = pods.pop() {
            let _ = store.delete(
                &pods_key,
                Some(&ns),
                util::name(&p),
                &DeleteOptions::default(),
            );
        }
    }
    let min_ready = ds
        .pointer("/spec/minReadySeconds")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let (ready, available, wake) = readiness(&pods, min_ready);
    let scheduled = pods.len() as i64;
    let updated = pods.iter().filter(|p| !outdated(p)).count() as i64;
    let mut status = json!({
        "currentNumberScheduled": scheduled,
        "desiredNumberScheduled": desired,
        "numberMisscheduled": 0,
        "numberReady": ready,
        "observedGeneration": generation,
    });
    let s = status.as_object_mut().expect("object");
    for (k, v) in [
        ("numberAvailable", available),
        ("numberUnavailable", (desired - available).max(0)),
        ("updatedNumberScheduled", updated),
    ] {
        if v > 0 {
            s.insert(k.into(), json!(v));
        }
    }
    util::write_status(store, &key("apps", "daemonsets"), ds, status);
    wake
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controllers::spawn_controllers;
    use crate::controllers::testutil::*;

    #[tokio::test]
    async fn daemonset_runs_one_pod_and_rolls_it() {
        let store = Store::new();
        let _h = spawn_controllers(store.clone(), quick_termination());
        create(
            &store,
            "apps",
            "daemonsets",
            json!({"apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": {"name": "agent", "namespace": "default"},
            "spec": {"selector": {"matchLabels": {"app": "agent"}},
                "template": {"metadata": {"labels": {"app": "agent"}}, "spec": {"containers": [{"name": "a", "image": "busybox:1"}]}}}}),
        );
        let get = || {
            store
                .get(&key("apps", "daemonsets"), Some("default"), "agent")
                .unwrap()
        };
        wait_for("ready", || {
            (get()["status"]["numberReady"] == 1).then_some(())
        })
        .await;
        let first = util::name(&ready_pods(&store, "default", "agent-")[0]).to_string();
        let mut ds = get();
        ds["spec"]["template"]["spec"]["containers"][0]["image"] = json!("busybox:2");
        store
            .update(
                &key("apps", "daemonsets"),
                Some("default"),
                "agent",
                ds,
                &util::W,
            )
            .unwrap();
        let p = wait_for("rolled", || {
            let ps = ready_pods(&store, "default", "agent-");
            (ps.len() == 1 && util::name(&ps[0]) != first && pods(&store, "default").len() == 1)
                .then(|| ps[0].clone())
        })
        .await;
        assert_eq!(p["spec"]["containers"][0]["image"], "busybox:2");
        assert_eq!(p["spec"]["nodeName"], NODE_NAME);
    }
}
