//! In-process controllers that make the sandbox's store behave like a
//! cluster: workloads get pods, services get endpoints, Gateway API objects
//! get status, chaos objects take (and stop taking) effect.
//!
//! Each controller is level-triggered: it subscribes to the store's event
//! broadcast, collects the namespaces touched, and recomputes the desired
//! state there, writing only differences (the store keeps resourceVersion on
//! no-op writes, so a converged controller goes quiet). A lagged receiver
//! falls back to a full resync; time-driven work (readiness delay, chaos
//! durations) asks for a wake-up.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::registry::ResKey;
use super::store::{Store, WatchEvent};

mod chaosmesh;
mod daemon;
mod daemonset;
mod deployment;
mod disruption;
pub(crate) mod duration;
mod endpoints;
mod faults;
mod gateway;
mod kubelet;
mod litmus;
mod replicaset;
mod resolved;
mod rootca;
mod select;
mod serviceaccounts;
mod statefulset;
mod timeline;
pub(crate) mod util;

pub(crate) use disruption::disruption_allowed_condition;
pub(crate) use faults::{active_faults, ResolvedFault};
pub(crate) use kubelet::pod_ready;
pub(crate) use resolved::ResolvedAction;

/// Makes the data plane apply exactly these faults (and no others) before
/// returning; the chaos daemon reports faults injected only after it.
pub(crate) type FaultHook = Arc<dyn Fn(&[ResolvedFault]) + Send + Sync>;

/// Brings the data plane up to date with the store, synchronously.
pub(crate) type RoutesHook = Arc<dyn Fn() + Send + Sync>;

/// Tunables for the emulated cluster.
#[derive(Clone, Default)]
pub(crate) struct ControllerConfig {
    /// How long a pod's containers take to start once it is bound (the pod
    /// is Pending until then); readiness probes count from the start.
    pub container_start_delay: Duration,
    /// At most this long Terminating after a delete (None: the whole grace
    /// period the delete or the pod asks for).
    pub max_termination_grace: Option<Duration>,
    /// Where the chaos daemon applies faults; `None` applies them nowhere
    /// (statuses still progress).
    pub apply_faults: Option<FaultHook>,
    /// Called by the Gateway API controller before it writes statuses, so
    /// `Accepted` never precedes the data plane knowing the route.
    pub sync_routes: Option<RoutesHook>,
    /// PEM of the API server's CA: published in every namespace as the
    /// `kube-root-ca.crt` ConfigMap (None: not published).
    pub root_ca_pem: Option<String>,
    /// Signs ServiceAccount token Secrets; None leaves them without a token.
    pub token_issuer: Option<Arc<crate::auth::Issuer>>,
}

impl std::fmt::Debug for ControllerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControllerConfig")
            .field("container_start_delay", &self.container_start_delay)
            .field("max_termination_grace", &self.max_termination_grace)
            .field("apply_faults", &self.apply_faults.as_ref().map(|_| "Fn"))
            .field("sync_routes", &self.sync_routes.as_ref().map(|_| "Fn"))
            .field("root_ca_pem", &self.root_ca_pem.is_some())
            .field("token_issuer", &self.token_issuer.is_some())
            .finish()
    }
}

/// The running controller tasks; dropping the handle stops them.
pub(crate) struct ControllerHandle {
    tasks: Vec<JoinHandle<()>>,
}

impl ControllerHandle {
    pub(crate) fn abort(&self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Drop for ControllerHandle {
    fn drop(&mut self) {
        self.abort();
    }
}

/// Starts every controller on the current tokio runtime.
pub(crate) fn spawn_controllers(store: Store, config: ControllerConfig) -> ControllerHandle {
    let mut tasks = vec![
        spawn(
            &store,
            kubelet::Kubelet::new(config.container_start_delay, config.max_termination_grace),
        ),
        spawn(&store, replicaset::ReplicaSets),
        spawn(&store, deployment::Deployments),
        spawn(&store, statefulset::StatefulSets),
        spawn(&store, daemonset::DaemonSets),
        spawn(&store, endpoints::Endpoints),
        spawn(&store, disruption::Disruption),
        spawn(
            &store,
            gateway::GatewayApi {
                before_status: config.sync_routes.clone(),
            },
        ),
        spawn(&store, chaosmesh::ChaosMesh::default()),
        spawn(&store, litmus::Litmus::default()),
        spawn(&store, daemon::ChaosDaemon::new(config.apply_faults)),
        spawn(
            &store,
            serviceaccounts::ServiceAccounts {
                issuer: config.token_issuer,
            },
        ),
        spawn(&store, serviceaccounts::ClusterRoleAggregation),
    ];
    if let Some(ca_pem) = config.root_ca_pem {
        tasks.push(spawn(&store, rootca::RootCaPublisher { ca_pem }));
    }
    ControllerHandle { tasks }
}

/// Which namespaces a reconcile pass covers.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Scope {
    All,
    Namespaces(BTreeSet<String>),
}

impl Scope {
    fn none() -> Self {
        Scope::Namespaces(BTreeSet::new())
    }

    fn is_empty(&self) -> bool {
        matches!(self, Scope::Namespaces(s) if s.is_empty())
    }

    fn add(&mut self, ns: Option<&str>) {
        match (self, ns) {
            (Scope::All, _) => {}
            (s @ Scope::Namespaces(_), None) => *s = Scope::All,
            (Scope::Namespaces(set), Some(ns)) => {
                set.insert(ns.to_string());
            }
        }
    }

    /// Whether namespace `ns` is inside the scope.
    pub(crate) fn covers(&self, ns: &str) -> bool {
        match self {
            Scope::All => true,
            Scope::Namespaces(set) => set.contains(ns),
        }
    }

    /// The objects of a kind inside the scope.
    pub(crate) fn list(&self, store: &Store, key: &ResKey) -> Vec<serde_json::Value> {
        match self {
            Scope::All => util::list(store, key, None),
            Scope::Namespaces(set) => set
                .iter()
                .flat_map(|ns| util::list(store, key, Some(ns)))
                .collect(),
        }
    }
}

/// One controller: which kinds wake it, and a pass over a scope.
pub(crate) trait Reconciler: Send + 'static {
    fn watches(&self, key: &ResKey) -> bool;

    /// Controllers whose objects refer across namespaces resync everything
    /// on any event they watch.
    fn global(&self) -> bool {
        false
    }

    /// Brings the scope to its desired state; returns when it wants to run
    /// again even without events (a timer).
    fn reconcile(&mut self, store: &Store, scope: &Scope) -> Option<Instant>;
}

fn spawn<R: Reconciler>(store: &Store, r: R) -> JoinHandle<()> {
    // Subscribe before the first pass, so nothing written meanwhile is missed.
    let rx = store.subscribe();
    tokio::spawn(run(store.clone(), r, rx))
}

async fn run<R: Reconciler>(
    store: Store,
    mut r: R,
    mut rx: tokio::sync::broadcast::Receiver<WatchEvent>,
) {
    let mut pending = Scope::All;
    let mut wake: Option<Instant> = None;
    let note = |r: &R, pending: &mut Scope, ev: &WatchEvent| {
        if r.watches(&ev.key) {
            pending.add(if r.global() {
                None
            } else {
                ev.namespace.as_deref()
            });
        }
    };
    loop {
        if !pending.is_empty() {
            let scope = std::mem::replace(&mut pending, Scope::none());
            let next = r.reconcile(&store, &scope);
            // A partial pass only knows its own timers; keep the earliest.
            wake = match (wake, next) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        let got = match wake {
            Some(at) => tokio::select! {
                ev = rx.recv() => Some(ev),
                _ = tokio::time::sleep_until(at) => None,
            },
            None => Some(rx.recv().await),
        };
        match got {
            None => {
                wake = None;
                pending = Scope::All;
                continue;
            }
            Some(Ok(ev)) => note(&r, &mut pending, &ev),
            Some(Err(RecvError::Lagged(_))) => pending = Scope::All,
            Some(Err(RecvError::Closed)) => return,
        }
        // Batch whatever else is already queued into the same pass.
        loop {
            match rx.try_recv() {
                Ok(ev) => note(&r, &mut pending, &ev),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Lagged(_)) => pending = Scope::All,
                Err(TryRecvError::Closed) => return,
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod testutil {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use serde_json::Value;

    use super::util::{key, W};
    use crate::store::Store;

    /// Polls until `f` yields a value; panics with `what` after a generous timeout.
    pub(crate) async fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(v) = f() {
                return v;
            }
            if tokio::time::Instant::now() > deadline {
                panic!("timed out waiting for {what}");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Controllers whose deleted pods are gone after 200 ms rather than
    /// their 30 s grace period: for tests about what replaces them.
    pub(crate) fn quick_termination() -> super::ControllerConfig {
        super::ControllerConfig {
            max_termination_grace: Some(Duration::from_millis(200)),
            ..Default::default()
        }
    }

    pub(crate) fn create(store: &Store, group: &str, plural: &str, obj: Value) -> Value {
        let ns = obj
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .map(str::to_string);
        store
            .create(
                &key(group, plural),
                ns.as_deref().or(Some("default")),
                obj,
                &W,
            )
            .expect("create")
    }

    pub(crate) fn pods(store: &Store, ns: &str) -> Vec<Value> {
        super::util::list(store, &key("", "pods"), Some(ns))
    }

    pub(crate) fn ready_pods(store: &Store, ns: &str, prefix: &str) -> Vec<Value> {
        pods(store, ns)
            .into_iter()
            .filter(|p| super::util::name(p).starts_with(prefix))
            // A terminating pod may still report Ready; it serves no traffic.
            .filter(|p| !super::util::is_terminating(p))
            .filter(super::kubelet::pod_ready)
            .collect()
    }

    /// One call of a recording [`super::FaultHook`]: the fault ids it was
    /// given and the watched object's status at that moment.
    #[derive(Clone, Debug)]
    pub(crate) struct HookCall {
        pub ids: Vec<String>,
        pub status: Value,
    }

    /// A hook that records each call, with the status of one object
    /// (`group`/`plural`, default namespace, `name`) as the store has it then.
    pub(crate) fn recording_hook(
        store: &Store,
        group: &str,
        plural: &str,
        name: &str,
    ) -> (super::FaultHook, Arc<Mutex<Vec<HookCall>>>) {
        let log = Arc::new(Mutex::new(Vec::new()));
        let (store, k, name, sink) = (
            store.clone(),
            key(group, plural),
            name.to_string(),
            log.clone(),
        );
        let hook: super::FaultHook = Arc::new(move |faults: &[super::ResolvedFault]| {
            let status = store
                .get(&k, Some("default"), &name)
                .ok()
                .and_then(|o| o.get("status").cloned())
                .unwrap_or(Value::Null);
            sink.lock().unwrap().push(HookCall {
                ids: faults.iter().map(|f| f.id.clone()).collect(),
                status,
            });
        });
        (hook, log)
    }

    /// Whether a NetworkChaos status has condition `kind` True.
    pub(crate) fn condition_true(status: &Value, kind: &str) -> bool {
        status
            .get("conditions")
            .and_then(Value::as_array)
            .is_some_and(|cs| {
                cs.iter()
                    .any(|c| c["type"] == kind && c["status"] == "True")
            })
    }

    pub(crate) fn deployment(name: &str, replicas: i64) -> Value {
        serde_json::json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": {"app": name}},
                    "spec": {"containers": [{"name": "echo", "image": "registry.k8s.io/echoserver:2.5",
                        "ports": [{"name": "http", "containerPort": 8080}]}]}
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::testutil::*;
    use super::*;

    /// Every controller, driven by hand over a mixed cluster, reaches a
    /// fixpoint: a pass over converged state writes nothing (no write loops).
    #[test]
    fn all_controllers_reach_a_fixpoint() {
        let store = Store::new();
        create(&store, "apps", "deployments", deployment("web", 2));
        create(
            &store,
            "",
            "services",
            json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}}),
        );
        create(
            &store,
            "apps",
            "statefulsets",
            json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "db", "namespace": "default"},
            "spec": {"replicas": 2, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
                "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [{"name": "db", "image": "postgres:16"}]}}}}),
        );
        create(
            &store,
            "apps",
            "daemonsets",
            json!({"apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": {"name": "agent", "namespace": "default"},
            "spec": {"selector": {"matchLabels": {"app": "agent"}},
                "template": {"metadata": {"labels": {"app": "agent"}}, "spec": {"containers": [{"name": "a", "image": "busybox:1"}]}}}}),
        );
        create(
            &store,
            gateway::GW,
            "gatewayclasses",
            json!({"metadata": {"name": "c"}, "spec": {"controllerName": "x/y"}}),
        );
        create(
            &store,
            gateway::GW,
            "gateways",
            json!({"metadata": {"name": "gw", "namespace": "default"},
            "spec": {"gatewayClassName": "c", "listeners": [{"name": "http", "protocol": "HTTP", "port": 80}]}}),
        );
        create(
            &store,
            gateway::GW,
            "httproutes",
            json!({"metadata": {"name": "r", "namespace": "default"},
            "spec": {"parentRefs": [{"name": "gw"}], "rules": [{"backendRefs": [{"name": "web", "port": 80}]}]}}),
        );
        let mut all: Vec<Box<dyn Reconciler>> = vec![
            Box::new(kubelet::Kubelet::new(Duration::ZERO, None)),
            Box::new(replicaset::ReplicaSets),
            Box::new(deployment::Deployments),
            Box::new(statefulset::StatefulSets),
            Box::new(daemonset::DaemonSets),
            Box::new(endpoints::Endpoints),
            Box::new(disruption::Disruption),
            Box::new(gateway::GatewayApi::default()),
            Box::new(chaosmesh::ChaosMesh::default()),
            Box::new(litmus::Litmus::default()),
            Box::new(daemon::ChaosDaemon::new(None)),
        ];
        let mut settle = |store: &Store| {
            let mut last = 0;
            for _ in 0..30 {
                for r in all.iter_mut() {
                    r.reconcile(store, &Scope::All);
                }
                let rv = store.resource_version();
                if rv == last {
                    return true;
                }
                last = rv;
            }
            false
        };
        assert!(
            settle(&store),
            "workloads, endpoints and gateway status settle"
        );
        // Chaos with no end of its own must settle too once injected.
        create(
            &store,
            chaosmesh::GROUP,
            "networkchaos",
            json!({"metadata": {"name": "n", "namespace": "default"},
            "spec": {"action": "loss", "mode": "one", "selector": {"labelSelectors": {"app": "web"}}, "loss": {"loss": "25"}}}),
        );
        create(
            &store,
            litmus::GROUP,
            "chaosengines",
            json!({"metadata": {"name": "e", "namespace": "default"},
            "spec": {"engineState": "active", "appinfo": {"applabel": "app=db"},
                "experiments": [{"name": "pod-network-partition", "spec": {"components": {"env": [{"name": "TOTAL_CHAOS_DURATION", "value": "600"}]}}}]}}),
        );
        assert!(settle(&store), "chaos settles");
        let faults = active_faults(&store);
        assert_eq!(faults.len(), 2, "{faults:?}");
        assert!(faults
            .iter()
            .any(|f| f.action == ResolvedAction::Loss { percent: 25.0 }));
        assert!(faults.iter().any(|f| f.action == ResolvedAction::Partition
            && f.pods.iter().all(|p| p.starts_with("db-"))));
        let ep = store
            .get(&util::key("", "endpoints"), Some("default"), "web")
            .unwrap();
        assert_eq!(ep["subsets"][0]["addresses"].as_array().unwrap().len(), 2);
        assert_eq!(ep["subsets"][0]["ports"][0]["port"], 8080);
        let gw = store
            .get(&util::key(gateway::GW, "gateways"), Some("default"), "gw")
            .unwrap();
        assert_eq!(gw["status"]["listeners"][0]["attachedRoutes"], 1);
        assert_eq!(pods(&store, "default").len(), 5, "2 web + 2 db + 1 agent");
    }

    #[tokio::test]
    async fn dropping_the_handle_stops_the_controllers() {
        let store = Store::new();
        let h = spawn_controllers(store.clone(), ControllerConfig::default());
        create(&store, "apps", "deployments", deployment("a", 1));
        wait_for("a pod", || {
            (ready_pods(&store, "default", "a-").len() == 1).then_some(())
        })
        .await;
        h.abort();
        drop(h);
        // Give aborted tasks a chance to finish; then nothing reacts any more.
        tokio::task::yield_now().await;
        create(&store, "apps", "deployments", deployment("b", 1));
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
        assert!(pods(&store, "default")
            .iter()
            .all(|p| !util::name(p).starts_with("b-")));
    }
}
