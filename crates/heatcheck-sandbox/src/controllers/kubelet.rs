//! Scheduler and kubelet in one: binds every pod to the single sandbox node,
//! gives it an IP, starts its containers (phase Running) and marks it Ready
//! once `pod_ready_delay` has passed.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::time::Instant;

use super::util::{self, key};
use super::{Reconciler, Scope};
use crate::registry::ResKey;
use crate::store::{now_rfc3339, Store};

pub(crate) const NODE_NAME: &str = "sandbox-node";
const HOST_IP: &str = "172.18.0.2";

pub(crate) struct Kubelet {
    ready_delay: Duration,
    /// When each pod (by uid) was seen started, for the readiness delay.
    started: HashMap<String, Instant>,
    /// Pod IPs handed out (uid -> ip), so no two pods share one.
    ips: HashMap<String, String>,
    next_ip: u32,
}

impl Kubelet {
    pub(crate) fn new(ready_delay: Duration) -> Self {
        Kubelet {
            ready_delay,
            started: HashMap::new(),
            ips: HashMap::new(),
            next_ip: 2,
        }
    }

    /// The next free address in 10.244.0.0/16, skipping network/broadcast-like ends.
    fn allocate_ip(&mut self) -> String {
        let used: HashSet<&String> = self.ips.values().collect();
        loop {
            let n = self.next_ip;
            self.next_ip = if n >= 0xfffe { 2 } else { n + 1 };
            let (hi, lo) = (n >> 8, n & 0xff);
            if lo == 0 || lo == 1 || lo == 255 {
                continue;
            }
            let ip = format!("10.244.{hi}.{lo}");
            if !used.contains(&ip) {
                return ip;
            }
        }
    }

    fn reconcile_pod(&mut self, store: &Store, pod: Value) -> Option<Instant> {
        let pods = key("", "pods");
        if util::is_terminating(&pod) {
            return None;
        }
        let phase = pod.pointer("/status/phase").and_then(Value::as_str);
        if matches!(phase, Some("Succeeded" | "Failed")) {
            return None;
        }
        let pod = if pod
            .pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .is_none()
        {
            // Binding, as the scheduler does.
            let mut bound = pod.clone();
            bound["spec"]["nodeName"] = json!(NODE_NAME);
            let ns = util::namespace(&pod).to_string();
            match store.update(&pods, Some(&ns), util::name(&pod), bound, &util::W) {
                Ok(p) => p,
                Err(_) => return Some(Instant::now() + Duration::from_millis(100)),
            }
        } else {
            pod
        };
        let uid = util::uid(&pod).to_string();
        let ip = match pod.pointer("/status/podIP").and_then(Value::as_str) {
            Some(ip) => ip.to_string(),
            None => match self.ips.get(&uid) {
                Some(ip) => ip.clone(),
                None => self.allocate_ip(),
            },
        };
        self.ips.insert(uid.clone(), ip.clone());
        let recorded = pod
            .pointer("/status/startTime")
            .and_then(Value::as_str)
            .map(str::to_string);
        let started = *self.started.entry(uid).or_insert_with(|| {
            // A pod started before we saw it (a restarted controller) is aged
            // by its recorded start time; a new one starts now.
            let age = recorded
                .as_deref()
                .and_then(util::parse_time)
                .and_then(|t| (chrono::Utc::now() - t).to_std().ok())
                .unwrap_or_default();
            Instant::now().checked_sub(age).unwrap_or_else(Instant::now)
        });
        let start_time = recorded.unwrap_or_else(now_rfc3339);
        let ready_at = started + self.ready_delay;
        let ready = Instant::now() >= ready_at;
        let status = pod_status(&pod, &ip, &start_time, ready);
        util::write_status(store, &pods, &pod, status);
        (!ready).then_some(ready_at)
    }
}

impl Reconciler for Kubelet {
    fn watches(&self, key: &ResKey) -> bool {
        key.group.is_empty() && key.plural == "pods"
    }

    fn reconcile(&mut self, store: &Store, scope: &Scope) -> Option<Instant> {
        let pods = scope.list(store, &key("", "pods"));
        if *scope == Scope::All {
            // Forget pods that are gone (their IPs may be reused much later).
            let live: HashSet<&str> = pods.iter().map(util::uid).collect();
            self.ips.retain(|u, _| live.contains(u.as_str()));
            self.started.retain(|u, _| live.contains(u.as_str()));
        }
        let mut wake: Option<Instant> = None;
        for pod in pods {
            if let Some(at) = self.reconcile_pod(store, pod) {
                wake = Some(wake.map_or(at, |w| w.min(at)));
            }
        }
        wake
    }
}

/// Whether a pod's Ready condition is True.
pub(crate) fn pod_ready(pod: &Value) -> bool {
    pod.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter().any(|c| {
                c.get("type").and_then(Value::as_str) == Some("Ready")
                    && c.get("status").and_then(Value::as_str) == Some("True")
            })
        })
}

fn short_sha(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// The status a kubelet reports for a running pod.
fn pod_status(pod: &Value, ip: &str, start_time: &str, ready: bool) -> Value {
    let old = pod.get("status");
    let containers = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let names: Vec<&str> = containers
        .iter()
        .filter_map(|c| c.get("name").and_then(Value::as_str))
        .collect();
    let b = |x: bool| if x { "True" } else { "False" };
    let unready = |c: Value| -> Value {
        let mut c = c;
        if !ready {
            c["reason"] = json!("ContainersNotReady");
            c["message"] = json!(format!(
                "containers with unready status: [{}]",
                names.join(" ")
            ));
        }
        c
    };
    let wanted = vec![
        json!({"type": "PodReadyToStartContainers", "status": "True", "lastProbeTime": null}),
        json!({"type": "Initialized", "status": "True", "lastProbeTime": null}),
        unready(json!({"type": "Ready", "status": b(ready), "lastProbeTime": null})),
        unready(json!({"type": "ContainersReady", "status": b(ready), "lastProbeTime": null})),
        json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null}),
    ];
    let conditions = util::merge_conditions(old.and_then(|s| s.get("conditions")), wanted, false);
    // Containers started when the pod did; keep the recorded times.
    let old_started = |name: &str| -> String {
        old.and_then(|s| s.get("containerStatuses"))
            .and_then(Value::as_array)
            .and_then(|cs| {
                cs.iter()
                    .find(|c| c.get("name").and_then(Value::as_str) == Some(name))
            })
            .and_then(|c| c.pointer("/state/running/startedAt"))
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| start_time.to_string())
    };
    let uid = util::uid(pod);
    let container_statuses: Vec<Value> = containers
        .iter()
        .map(|c| {
            let name = c.get("name").and_then(Value::as_str).unwrap_or_default();
            let image = c.get("image").and_then(Value::as_str).unwrap_or_default();
            json!({
                "containerID": format!("containerd://{}", short_sha(&format!("{uid}/{name}"))),
                "image": image,
                "imageID": format!("{}@sha256:{}", image.split(':').next().unwrap_or(image), short_sha(image)),
                "lastState": {},
                "name": name,
                "ready": ready,
                "restartCount": 0,
                "started": true,
                "state": {"running": {"startedAt": old_started(name)}},
            })
        })
        .collect();
    let mut status = json!({
        "conditions": conditions,
        "containerStatuses": container_statuses,
        "hostIP": HOST_IP,
        "hostIPs": [{"ip": HOST_IP}],
    });
    let init: Vec<Value> = pod
        .pointer("/spec/initContainers")
        .and_then(Value::as_array)
        .map(|ics| {
            ics.iter()
                .map(|c| {
                    let name = c.get("name").and_then(Value::as_str).unwrap_or_default();
                    let image = c.get("image").and_then(Value::as_str).unwrap_or_default();
                    json!({
                        "containerID": format!("containerd://{}", short_sha(&format!("{uid}/init/{name}"))),
                        "image": image,
                        "imageID": format!("{}@sha256:{}", image.split(':').next().unwrap_or(image), short_sha(image)),
                        "lastState": {},
                        "name": name,
                        "ready": true,
                        "restartCount": 0,
                        "started": false,
                        "state": {"terminated": {"exitCode": 0, "reason": "Completed",
                            "startedAt": start_time, "finishedAt": start_time}},
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let s = status.as_object_mut().expect("status is an object");
    if !init.is_empty() {
        s.insert("initContainerStatuses".into(), json!(init));
    }
    s.insert("phase".into(), json!("Running"));
    s.insert("podIP".into(), json!(ip));
    s.insert("podIPs".into(), json!([{"ip": ip}]));
    s.insert("qosClass".into(), json!(qos_class(&containers)));
    s.insert("startTime".into(), json!(start_time));
    status
}

/// Guaranteed when every container limits cpu and memory with equal (or no)
/// requests; BestEffort with no resources at all; Burstable otherwise.
pub(crate) fn qos_class(containers: &[Value]) -> &'static str {
    let res =
        |c: &Value, kind: &str, r: &str| c.pointer(&format!("/resources/{kind}/{r}")).cloned();
    let any = containers.iter().any(|c| {
        ["requests", "limits"].iter().any(|k| {
            c.pointer(&format!("/resources/{k}"))
                .and_then(Value::as_object)
                .is_some_and(|m| !m.is_empty())
        })
    });
    if !any {
        return "BestEffort";
    }
    let guaranteed = containers.iter().all(|c| {
        ["cpu", "memory"].iter().all(|r| {
            let limit = res(c, "limits", r);
            let request = res(c, "requests", r);
            limit.is_some() && (request.is_none() || request == limit)
        })
    });
    if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controllers::testutil::*;
    use crate::controllers::{spawn_controllers, ControllerConfig};

    fn bare_pod(name: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
            "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]}})
    }

    #[test]
    fn reconcile_is_idempotent_and_ips_unique() {
        let store = Store::new();
        create(&store, "", "pods", bare_pod("a"));
        create(&store, "", "pods", bare_pod("b"));
        let mut k = Kubelet::new(Duration::ZERO);
        assert!(k.reconcile(&store, &Scope::All).is_none());
        let rv = store.resource_version();
        k.reconcile(&store, &Scope::All);
        assert_eq!(
            store.resource_version(),
            rv,
            "a converged pass writes nothing"
        );
        let ps = pods(&store, "default");
        assert!(ps.iter().all(pod_ready));
        assert_eq!(ps[0]["spec"]["nodeName"], NODE_NAME);
        assert_eq!(ps[0]["status"]["phase"], "Running");
        assert_eq!(ps[0]["status"]["qosClass"], "BestEffort");
        let ips: HashSet<&str> = ps
            .iter()
            .map(|p| p["status"]["podIP"].as_str().unwrap())
            .collect();
        assert_eq!(ips.len(), 2);
        assert!(ips.iter().all(|ip| ip.starts_with("10.244.")));
    }

    #[tokio::test]
    async fn pods_become_ready_after_the_delay() {
        let store = Store::new();
        let _h = spawn_controllers(
            store.clone(),
            ControllerConfig {
                pod_ready_delay: Duration::from_millis(300),
                ..Default::default()
            },
        );
        create(&store, "", "pods", bare_pod("slow"));
        let get = || {
            store
                .get(&key("", "pods"), Some("default"), "slow")
                .unwrap()
        };
        let running = wait_for("running", || {
            let p = get();
            (p["status"]["phase"] == "Running").then_some(p)
        })
        .await;
        assert!(!pod_ready(&running), "not ready before the delay");
        assert_eq!(running["status"]["containerStatuses"][0]["ready"], false);
        wait_for("ready", || pod_ready(&get()).then_some(())).await;
        assert_eq!(get()["status"]["containerStatuses"][0]["ready"], true);
    }

    #[test]
    fn qos() {
        assert_eq!(
            qos_class(&[json!({"resources": {"limits": {"cpu": "1", "memory": "1Gi"}}})]),
            "Guaranteed"
        );
        assert_eq!(
            qos_class(&[json!({"resources": {"requests": {"cpu": "1"}}})]),
            "Burstable"
        );
    }
}
