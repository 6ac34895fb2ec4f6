//! Scheduler and kubelet in one: binds every pod to the single sandbox node,
//! gives it an IP, starts its containers after the start delay (Pending
//! until then), marks them Ready on the probe schedule of [`Timeline`], and
//! removes a deleted pod once its grace period is over.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::time::Instant;

use super::timeline::Timeline;
use super::util::{self, key};
use super::{Reconciler, Scope};
use crate::registry::ResKey;
use crate::store::{now_rfc3339, DeleteOptions, Store};

pub(crate) const NODE_NAME: &str = "sandbox-node";
const HOST_IP: &str = "172.18.0.2";

pub(crate) struct Kubelet {
    start_delay: Duration,
    /// At most this long in Terminating, whatever the grace period says.
    max_grace: Option<Duration>,
    /// When each pod (by uid) was taken: its probe workers tick from then.
    taken: HashMap<String, Instant>,
    /// When each terminating pod (by uid) was first seen terminating.
    terminating: HashMap<String, Instant>,
    /// Pod IPs handed out (uid -> ip), so no two pods share one.
    ips: HashMap<String, String>,
    next_ip: u32,
}

impl Kubelet {
    pub(crate) fn new(start_delay: Duration, max_grace: Option<Duration>) -> Self {
        Kubelet {
            start_delay,
            max_grace,
            taken: HashMap::new(),
            terminating: HashMap::new(),
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

    /// A deleted pod's containers get the grace period to stop (the twin
    /// cannot know how fast the application exits, so it takes all of it,
    /// up to `max_grace`); then the kubelet removes the pod for good.
    fn terminate(&mut self, store: &Store, pod: &Value) -> Option<Instant> {
        let since = *self
            .terminating
            .entry(util::uid(pod).to_string())
            .or_insert_with(Instant::now);
        let grace = pod
            .pointer("/metadata/deletionGracePeriodSeconds")
            .and_then(Value::as_i64)
            .unwrap_or(0)
            .max(0) as u64;
        let mut grace = Duration::from_secs(grace);
        if let Some(cap) = self.max_grace {
            grace = grace.min(cap);
        }
        let gone_at = since + grace;
        if Instant::now() < gone_at {
            return Some(gone_at);
        }
        // Pods held by finalizers stay; the store keeps them until those go.
        let _ = store.delete(
            &key("", "pods"),
            Some(util::namespace(pod)),
            util::name(pod),
            &DeleteOptions {
                grace_period_seconds: Some(0),
                uid: Some(util::uid(pod).to_string()),
                ..Default::default()
            },
        );
        None
    }

    fn reconcile_pod(&mut self, store: &Store, pod: Value) -> Option<Instant> {
        let pods = key("", "pods");
        if util::is_terminating(&pod) {
            return self.terminate(store, &pod);
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
        let taken = *self.taken.entry(uid).or_insert_with(|| {
            // A pod taken before we saw it (a restarted controller) is aged
            // by its recorded start time; a new one is taken now.
            let age = recorded
                .as_deref()
                .and_then(util::parse_time)
                .and_then(|t| (chrono::Utc::now() - t).to_std().ok())
                .unwrap_or_default();
            Instant::now().checked_sub(age).unwrap_or_else(Instant::now)
        });
        let start_time = recorded.unwrap_or_else(now_rfc3339);
        let timeline = Timeline::of(&pod, self.start_delay);
        let now = Instant::now();
        let started = now >= taken + timeline.started;
        let ready: Vec<bool> = timeline.ready.iter().map(|r| now >= taken + *r).collect();
        let status = pod_status(&pod, &ip, &start_time, started, &ready);
        util::write_status(store, &pods, &pod, status);
        // Wake for the next change: the start, then each container's Ready.
        std::iter::once(timeline.started)
            .chain(timeline.ready.iter().copied())
            .map(|d| taken + d)
            .filter(|at| *at > now)
            .min()
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
            self.taken.retain(|u, _| live.contains(u.as_str()));
            self.terminating.retain(|u, _| live.contains(u.as_str()));
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

/// The status a kubelet reports: Pending with containers being created
/// until `started`, then Running with each container's readiness.
fn pod_status(pod: &Value, ip: &str, start_time: &str, started: bool, ready: &[bool]) -> Value {
    let old = pod.get("status");
    let containers = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let is_ready = |i: usize| started && ready.get(i).copied().unwrap_or(true);
    let unready: Vec<&str> = containers
        .iter()
        .enumerate()
        .filter(|(i, _)| !is_ready(*i))
        .filter_map(|(_, c)| c.get("name").and_then(Value::as_str))
        .collect();
    let all_ready = unready.is_empty();
    let b = |x: bool| if x { "True" } else { "False" };
    let unready_cond = |c: Value| -> Value {
        let mut c = c;
        if !all_ready {
            c["reason"] = json!("ContainersNotReady");
            c["message"] = json!(format!(
                "containers with unready status: [{}]",
                unready.join(" ")
            ));
        }
        c
    };
    let wanted = vec![
        json!({"type": "PodReadyToStartContainers", "status": "True", "lastProbeTime": null}),
        json!({"type": "Initialized", "status": "True", "lastProbeTime": null}),
        unready_cond(json!({"type": "Ready", "status": b(all_ready), "lastProbeTime": null})),
        unready_cond(
            json!({"type": "ContainersReady", "status": b(all_ready), "lastProbeTime": null}),
        ),
        json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null}),
    ];
    let conditions = util::merge_conditions(old.and_then(|s| s.get("conditions")), wanted, false);
    // Keep each container's recorded start; a container starting now gets now.
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
            .unwrap_or_else(now_rfc3339)
    };
    let uid = util::uid(pod);
    let container_statuses: Vec<Value> = containers
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let name = c.get("name").and_then(Value::as_str).unwrap_or_default();
            let image = c.get("image").and_then(Value::as_str).unwrap_or_default();
            if !started {
                return json!({
                    "image": image,
                    "imageID": "",
                    "lastState": {},
                    "name": name,
                    "ready": false,
                    "restartCount": 0,
                    "started": false,
                    "state": {"waiting": {"reason": "ContainerCreating"}},
                });
            }
            json!({
                "containerID": format!("containerd://{}", short_sha(&format!("{uid}/{name}"))),
                "image": image,
                "imageID": format!("{}@sha256:{}", image.split(':').next().unwrap_or(image), short_sha(image)),
                "lastState": {},
                "name": name,
                "ready": is_ready(i),
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
    s.insert(
        "phase".into(),
        json!(if started { "Running" } else { "Pending" }),
    );
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
        let mut k = Kubelet::new(Duration::ZERO, None);
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

    fn get(store: &Store, name: &str) -> Option<Value> {
        store.get(&key("", "pods"), Some("default"), name).ok()
    }

    /// Pending while the containers start, Running once they have, Ready
    /// only on the first probe tick after the initial delay.
    #[tokio::test]
    async fn pods_start_after_the_delay_and_are_ready_on_the_probe_schedule() {
        let store = Store::new();
        let _h = spawn_controllers(
            store.clone(),
            ControllerConfig {
                container_start_delay: Duration::from_millis(300),
                ..Default::default()
            },
        );
        let t0 = Instant::now();
        let mut pod = bare_pod("slow");
        pod["spec"]["containers"][0]["readinessProbe"] =
            json!({"httpGet": {"port": 80}, "initialDelaySeconds": 1, "periodSeconds": 1});
        create(&store, "", "pods", pod);
        let pending = wait_for("bound", || {
            get(&store, "slow").filter(|p| p["status"]["podIP"].is_string())
        })
        .await;
        assert_eq!(pending["status"]["phase"], "Pending");
        assert_eq!(
            pending["status"]["containerStatuses"][0]["state"]["waiting"]["reason"],
            "ContainerCreating"
        );
        let running = wait_for("running", || {
            get(&store, "slow").filter(|p| p["status"]["phase"] == "Running")
        })
        .await;
        assert!(!pod_ready(&running), "not ready before the probe passes");
        assert_eq!(running["status"]["containerStatuses"][0]["ready"], false);
        assert_eq!(running["status"]["containerStatuses"][0]["started"], true);
        wait_for("ready", || get(&store, "slow").filter(pod_ready)).await;
        // Started at 0.3s, probes skipped until 1.3s, next tick at 2s.
        let took = t0.elapsed();
        assert!(
            took >= Duration::from_millis(1900),
            "Ready on the tick at 2s, not at 1.3s: {took:?}"
        );
        assert_eq!(
            get(&store, "slow").unwrap()["status"]["containerStatuses"][0]["ready"],
            true
        );
    }

    #[tokio::test]
    async fn a_deleted_pod_stays_terminating_for_its_grace_period() {
        let store = Store::new();
        let _h = spawn_controllers(store.clone(), ControllerConfig::default());
        let mut pod = bare_pod("slow-exit");
        pod["spec"]["terminationGracePeriodSeconds"] = json!(1);
        create(&store, "", "pods", pod);
        create(&store, "", "pods", bare_pod("forced"));
        for name in ["slow-exit", "forced"] {
            wait_for("ready", || get(&store, name).filter(pod_ready)).await;
        }
        let t0 = Instant::now();
        let pods = key("", "pods");
        let marked = store
            .delete(
                &pods,
                Some("default"),
                "slow-exit",
                &DeleteOptions::default(),
            )
            .unwrap();
        assert_eq!(marked["metadata"]["deletionGracePeriodSeconds"], 1);
        assert!(marked["metadata"]["deletionTimestamp"].is_string());
        assert!(get(&store, "slow-exit").is_some(), "Terminating, not gone");
        // A longer grace period on a second delete does not extend it.
        let again = DeleteOptions {
            grace_period_seconds: Some(60),
            ..Default::default()
        };
        store
            .delete(&pods, Some("default"), "slow-exit", &again)
            .unwrap();
        let now = DeleteOptions {
            grace_period_seconds: Some(0),
            ..Default::default()
        };
        store
            .delete(&pods, Some("default"), "forced", &now)
            .unwrap();
        assert!(get(&store, "forced").is_none(), "grace 0 deletes at once");
        wait_for("removed", || {
            get(&store, "slow-exit").is_none().then_some(())
        })
        .await;
        let took = t0.elapsed();
        assert!(took >= Duration::from_millis(950), "{took:?}");
    }

    #[tokio::test]
    async fn max_termination_grace_caps_the_wait() {
        let store = Store::new();
        let _h = spawn_controllers(
            store.clone(),
            ControllerConfig {
                max_termination_grace: Some(Duration::from_millis(100)),
                ..Default::default()
            },
        );
        create(&store, "", "pods", bare_pod("p"));
        wait_for("ready", || get(&store, "p").filter(pod_ready)).await;
        let marked = store
            .delete(
                &key("", "pods"),
                Some("default"),
                "p",
                &DeleteOptions::default(),
            )
            .unwrap();
        // The API still says what a real server would: the default 30s.
        assert_eq!(marked["metadata"]["deletionGracePeriodSeconds"], 30);
        let t0 = Instant::now();
        wait_for("removed", || get(&store, "p").is_none().then_some(())).await;
        assert!(t0.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn unscheduled_pods_go_at_once() {
        let store = Store::new();
        create(&store, "", "pods", bare_pod("never-bound"));
        store
            .delete(
                &key("", "pods"),
                Some("default"),
                "never-bound",
                &DeleteOptions::default(),
            )
            .unwrap();
        assert!(get(&store, "never-bound").is_none());
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
