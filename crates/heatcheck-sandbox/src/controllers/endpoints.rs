//! Service -> Endpoints and EndpointSlices from the pods its selector picks:
//! ready pods as addresses, the others as notReadyAddresses (or
//! `ready: false` endpoints), ports resolved from each pod's targetPort.

use std::collections::{BTreeMap, HashSet};

use serde_json::{json, Map, Value};
use tokio::time::Instant;

use super::kubelet::pod_ready;
use super::util::{self, key};
use super::{Reconciler, Scope};
use crate::registry::ResKey;
use crate::store::{DeleteOptions, Store};

const SERVICE_NAME: &str = "kubernetes.io/service-name";
const SLICE_MANAGED_BY: &str = "endpointslice.kubernetes.io/managed-by";
const SLICE_CONTROLLER: &str = "endpointslice-controller.k8s.io";
const EP_MANAGED_BY: &str = "endpoints.kubernetes.io/managed-by";
const EP_CONTROLLER: &str = "endpoint-controller";
const MAX_PER_SLICE: usize = 100;

pub(crate) struct Endpoints;

impl Reconciler for Endpoints {
    fn watches(&self, key: &ResKey) -> bool {
        key.group.is_empty() && (key.plural == "services" || key.plural == "pods")
    }

    fn reconcile(&mut self, store: &Store, scope: &Scope) -> Option<Instant> {
        let services = scope.list(store, &key("", "services"));
        let mut namespaces: HashSet<String> = HashSet::new();
        let mut live: HashSet<(String, String)> = HashSet::new();
        for svc in &services {
            namespaces.insert(util::namespace(svc).to_string());
            if selector(svc).is_some() && !util::is_terminating(svc) {
                live.insert((
                    util::namespace(svc).to_string(),
                    util::name(svc).to_string(),
                ));
                sync_service(store, svc);
            }
        }
        // Endpoints we manage whose Service is gone (or lost its selector).
        for ep in scope.list(store, &key("", "endpoints")) {
            let managed =
                util::labels(&ep).get(EP_MANAGED_BY).map(String::as_str) == Some(EP_CONTROLLER);
            let id = (
                util::namespace(&ep).to_string(),
                util::name(&ep).to_string(),
            );
            if managed && !live.contains(&id) {
                let _ = store.delete(
                    &key("", "endpoints"),
                    Some(&id.0),
                    &id.1,
                    &DeleteOptions::default(),
                );
            }
        }
        for slice in scope.list(store, &key("discovery.k8s.io", "endpointslices")) {
            let l = util::labels(&slice);
            let ours = l.get(SLICE_MANAGED_BY).map(String::as_str) == Some(SLICE_CONTROLLER);
            let svc = l.get(SERVICE_NAME).cloned().unwrap_or_default();
            if ours && !live.contains(&(util::namespace(&slice).to_string(), svc)) {
                let _ = store.delete(
                    &key("discovery.k8s.io", "endpointslices"),
                    Some(util::namespace(&slice)),
                    util::name(&slice),
                    &DeleteOptions::default(),
                );
            }
        }
        None
    }
}

/// The service's selector; services without one are managed by hand.
fn selector(svc: &Value) -> Option<BTreeMap<String, String>> {
    let s = util::string_map(svc.pointer("/spec/selector"));
    (!s.is_empty()).then_some(s)
}

/// One endpoint port: (name, port, protocol, appProtocol).
type Port = (Option<String>, i64, String, Option<String>);

/// Resolves each service port against a pod; a named targetPort the pod
/// does not declare leaves that port out, as the real controller does.
fn resolve_ports(svc: &Value, pod: &Value) -> Vec<Port> {
    let ports = svc
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let container_ports: Vec<Value> = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .flat_map(|c| {
                    c.get("ports")
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default()
                })
                .collect()
        })
        .unwrap_or_default();
    ports
        .iter()
        .filter_map(|p| {
            let protocol = p
                .get("protocol")
                .and_then(Value::as_str)
                .unwrap_or("TCP")
                .to_string();
            let name = p.get("name").and_then(Value::as_str).map(str::to_string);
            let app = p
                .get("appProtocol")
                .and_then(Value::as_str)
                .map(str::to_string);
            let target = p.get("targetPort").or_else(|| p.get("port"))?;
            let number = match target {
                Value::Number(n) => n.as_i64()?,
                Value::String(s) => match s.parse::<i64>() {
                    Ok(n) => n,
                    Err(_) => container_ports
                        .iter()
                        .find(|cp| cp.get("name").and_then(Value::as_str) == Some(s.as_str()))
                        .and_then(|cp| cp.get("containerPort"))
                        .and_then(Value::as_i64)?,
                },
                _ => return None,
            };
            Some((name, number, protocol, app))
        })
        .collect()
}

fn port_json(p: &Port) -> Value {
    let mut m = Map::new();
    if let Some(n) = &p.0 {
        m.insert("name".into(), json!(n));
    }
    m.insert("port".into(), json!(p.1));
    m.insert("protocol".into(), json!(p.2));
    if let Some(a) = &p.3 {
        m.insert("appProtocol".into(), json!(a));
    }
    Value::Object(m)
}

fn target_ref(pod: &Value) -> Value {
    json!({"kind": "Pod", "name": util::name(pod), "namespace": util::namespace(pod), "uid": util::uid(pod)})
}

fn sync_service(store: &Store, svc: &Value) {
    let ns = util::namespace(svc).to_string();
    let sname = util::name(svc).to_string();
    let Some(sel) = selector(svc) else { return };
    let publish_not_ready = svc
        .pointer("/spec/publishNotReadyAddresses")
        .and_then(Value::as_bool)
        == Some(true);
    let mut pods: Vec<Value> = util::list(store, &key("", "pods"), Some(&ns))
        .into_iter()
        .filter(|p| util::map_selector_matches(&sel, &util::labels(p)))
        .filter(|p| p.pointer("/status/podIP").and_then(Value::as_str).is_some())
        .filter(|p| {
            !matches!(
                p.pointer("/status/phase").and_then(Value::as_str),
                Some("Succeeded" | "Failed")
            )
        })
        .collect();
    pods.sort_by(|a, b| util::name(a).cmp(util::name(b)));

    // Group pods by their resolved port list (one subset / slice each).
    let mut groups: BTreeMap<String, (Vec<Port>, Vec<&Value>)> = BTreeMap::new();
    for p in &pods {
        let ports = resolve_ports(svc, p);
        let k = serde_json::to_string(&ports.iter().map(port_json).collect::<Vec<_>>())
            .unwrap_or_default();
        groups
            .entry(k)
            .or_insert_with(|| (ports, Vec::new()))
            .1
            .push(p);
    }
    let ip = |p: &Value| {
        p.pointer("/status/podIP")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let address = |p: &Value| {
        let mut a = json!({"ip": ip(p)});
        if let Some(h) = p.pointer("/spec/hostname").and_then(Value::as_str) {
            if p.pointer("/spec/subdomain").and_then(Value::as_str) == Some(sname.as_str()) {
                a["hostname"] = json!(h);
            }
        }
        if let Some(n) = p.pointer("/spec/nodeName") {
            a["nodeName"] = n.clone();
        }
        a["targetRef"] = target_ref(p);
        a
    };

    // Endpoints.
    let mut subsets = Vec::new();
    for (ports, members) in groups.values() {
        let mut ready: Vec<&Value> = Vec::new();
        let mut not_ready: Vec<&Value> = Vec::new();
        for p in members {
            if util::is_terminating(p) {
                continue;
            }
            if publish_not_ready || pod_ready(p) {
                ready.push(p);
            } else {
                not_ready.push(p);
            }
        }
        if ready.is_empty() && not_ready.is_empty() {
            continue;
        }
        ready.sort_by_key(|p| ip(p));
        not_ready.sort_by_key(|p| ip(p));
        let mut subset = Map::new();
        if !ready.is_empty() {
            subset.insert(
                "addresses".into(),
                Value::Array(ready.iter().map(|p| address(p)).collect()),
            );
        }
        if !not_ready.is_empty() {
            subset.insert(
                "notReadyAddresses".into(),
                Value::Array(not_ready.iter().map(|p| address(p)).collect()),
            );
        }
        if !ports.is_empty() {
            subset.insert(
                "ports".into(),
                Value::Array(ports.iter().map(port_json).collect()),
            );
        }
        subsets.push(Value::Object(subset));
    }
    let mut ep_labels = svc
        .pointer("/metadata/labels")
        .cloned()
        .unwrap_or(json!({}));
    if !ep_labels.is_object() {
        ep_labels = json!({});
    }
    ep_labels[EP_MANAGED_BY] = json!(EP_CONTROLLER);
    let ep_key = key("", "endpoints");
    match store.get(&ep_key, Some(&ns), &sname) {
        Ok(cur) => {
            let mut next = cur.clone();
            next["metadata"]["labels"] = ep_labels;
            match next.as_object_mut() {
                Some(o) if subsets.is_empty() => {
                    o.remove("subsets");
                }
                Some(o) => {
                    o.insert("subsets".into(), Value::Array(subsets));
                }
                None => {}
            }
            util::write_object(store, &ep_key, &cur, next);
        }
        Err(_) => {
            let mut ep = json!({"apiVersion": "v1", "kind": "Endpoints",
                "metadata": {"name": sname, "namespace": ns, "labels": ep_labels}});
            if !subsets.is_empty() {
                ep["subsets"] = Value::Array(subsets);
            }
            let _ = store.create(&ep_key, Some(&ns), ep, &util::W);
        }
    }

    // EndpointSlices: one per port group (chunks of 100), a placeholder when empty.
    let endpoint = |p: &Value| {
        let ready = pod_ready(p) && !util::is_terminating(p);
        let mut e = json!({
            "addresses": [ip(p)],
            "conditions": {"ready": ready || (publish_not_ready && !util::is_terminating(p)),
                "serving": pod_ready(p), "terminating": util::is_terminating(p)},
        });
        if let Some(h) = p.pointer("/spec/hostname").and_then(Value::as_str) {
            if p.pointer("/spec/subdomain").and_then(Value::as_str) == Some(sname.as_str()) {
                e["hostname"] = json!(h);
            }
        }
        if let Some(n) = p.pointer("/spec/nodeName") {
            e["nodeName"] = n.clone();
        }
        e["targetRef"] = target_ref(p);
        e
    };
    let mut desired: Vec<(Option<Vec<Value>>, Vec<Value>)> = Vec::new();
    for (ports, members) in groups.values() {
        for chunk in members.chunks(MAX_PER_SLICE) {
            desired.push((
                Some(ports.iter().map(port_json).collect()),
                chunk.iter().map(|p| endpoint(p)).collect(),
            ));
        }
    }
    if desired.is_empty() {
        desired.push((None, Vec::new()));
    }
    let mut slice_labels = svc
        .pointer("/metadata/labels")
        .cloned()
        .unwrap_or(json!({}));
    if !slice_labels.is_object() {
        slice_labels = json!({});
    }
    slice_labels[SERVICE_NAME] = json!(sname);
    slice_labels[SLICE_MANAGED_BY] = json!(SLICE_CONTROLLER);
    let slice_key = key("discovery.k8s.io", "endpointslices");
    let mut existing: Vec<Value> = util::list(store, &slice_key, Some(&ns))
        .into_iter()
        .filter(|s| {
            let l = util::labels(s);
            l.get(SERVICE_NAME) == Some(&sname)
                && l.get(SLICE_MANAGED_BY).map(String::as_str) == Some(SLICE_CONTROLLER)
        })
        .collect();
    for (ports, endpoints) in desired {
        // Reuse a slice with the same ports if there is one, else any.
        let pos = existing
            .iter()
            .position(|s| s.get("ports").cloned() == ports.clone().map(Value::Array))
            .or(if existing.is_empty() { None } else { Some(0) });
        let build = |base: Value| {
            let mut s = base;
            s["metadata"]["labels"] = slice_labels.clone();
            s["metadata"]["ownerReferences"] = json!([util::controller_ref(svc)]);
            s["addressType"] = json!("IPv4");
            s["endpoints"] = Value::Array(endpoints.clone());
            match (&ports, s.as_object_mut()) {
                (Some(p), Some(o)) => {
                    o.insert("ports".into(), Value::Array(p.clone()));
                }
                (None, Some(o)) => {
                    o.remove("ports");
                }
                _ => {}
            }
            s
        };
        match pos {
            Some(i) => {
                let cur = existing.remove(i);
                let next = build(cur.clone());
                util::write_object(store, &slice_key, &cur, next);
            }
            None => {
                let base = json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                    "metadata": {"generateName": format!("{sname}-"), "namespace": ns}});
                let _ = store.create(&slice_key, Some(&ns), build(base), &util::W);
            }
        }
    }
    for extra in existing {
        let _ = store.delete(
            &slice_key,
            Some(&ns),
            util::name(&extra),
            &DeleteOptions::default(),
        );
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::controllers::testutil::*;
    use crate::controllers::{spawn_controllers, ControllerConfig};

    fn service(name: &str, app: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "default", "labels": {"team": "a"}},
            "spec": {"selector": {"app": app}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}})
    }

    fn ep(store: &Store, name: &str) -> Option<Value> {
        store.get(&key("", "endpoints"), Some("default"), name).ok()
    }

    fn slices(store: &Store, svc: &str) -> Vec<Value> {
        util::list(
            store,
            &key("discovery.k8s.io", "endpointslices"),
            Some("default"),
        )
        .into_iter()
        .filter(|s| util::labels(s).get(SERVICE_NAME).map(String::as_str) == Some(svc))
        .collect()
    }

    #[tokio::test]
    async fn endpoints_follow_pod_readiness() {
        let store = Store::new();
        let _h = spawn_controllers(
            store.clone(),
            ControllerConfig {
                container_start_delay: Duration::from_millis(400),
                ..Default::default()
            },
        );
        create(&store, "", "services", service("web", "web"));
        // No pods yet: Endpoints without subsets and a placeholder slice.
        let e = wait_for("empty endpoints", || ep(&store, "web")).await;
        assert!(e.get("subsets").is_none());
        assert_eq!(e["metadata"]["labels"]["team"], "a");
        create(&store, "apps", "deployments", deployment("web", 2));
        let e = wait_for("not ready addresses", || {
            ep(&store, "web").filter(|e| {
                e["subsets"][0]["notReadyAddresses"]
                    .as_array()
                    .is_some_and(|a| a.len() == 2)
            })
        })
        .await;
        assert!(e["subsets"][0].get("addresses").is_none());
        assert_eq!(
            e["subsets"][0]["ports"],
            json!([{"name": "http", "port": 8080, "protocol": "TCP"}])
        );
        let s = wait_for("slice not ready", || {
            slices(&store, "web")
                .into_iter()
                .find(|s| s["endpoints"].as_array().is_some_and(|a| a.len() == 2))
        })
        .await;
        assert_eq!(s["endpoints"][0]["conditions"]["ready"], false);
        let e = wait_for("ready addresses", || {
            ep(&store, "web").filter(|e| {
                e["subsets"][0]["addresses"]
                    .as_array()
                    .is_some_and(|a| a.len() == 2)
            })
        })
        .await;
        let addr = &e["subsets"][0]["addresses"][0];
        assert!(addr["ip"].as_str().unwrap().starts_with("10.244."));
        assert_eq!(addr["targetRef"]["kind"], "Pod");
        assert_eq!(addr["nodeName"], "sandbox-node");
        let s = wait_for("slice ready", || {
            slices(&store, "web").into_iter().find(|s| {
                s["endpoints"].as_array().is_some_and(|a| {
                    a.len() == 2 && a.iter().all(|e| e["conditions"]["ready"] == true)
                })
            })
        })
        .await;
        assert!(util::name(&s).starts_with("web-") && util::name(&s).len() == "web-".len() + 5);
        assert_eq!(s["addressType"], "IPv4");
        assert_eq!(s["ports"][0]["port"], 8080);
        assert_eq!(s["metadata"]["ownerReferences"][0]["kind"], "Service");
        assert_eq!(slices(&store, "web").len(), 1);
        // Deleting the service removes both.
        store
            .delete(
                &key("", "services"),
                Some("default"),
                "web",
                &DeleteOptions::default(),
            )
            .unwrap();
        wait_for("cleanup", || {
            (ep(&store, "web").is_none() && slices(&store, "web").is_empty()).then_some(())
        })
        .await;
    }

    #[test]
    fn named_target_port_missing_on_pod_is_left_out() {
        let svc = service("s", "x");
        let pod =
            json!({"spec": {"containers": [{"ports": [{"name": "other", "containerPort": 1}]}]}});
        assert!(resolve_ports(&svc, &pod).is_empty());
        let svc = json!({"spec": {"ports": [{"port": 80}]}});
        assert_eq!(resolve_ports(&svc, &pod)[0].1, 80);
    }
}
