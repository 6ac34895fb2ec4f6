//! One whole sandbox: the object store, the API server, the controllers and
//! the gateway data plane, wired together.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;

use super::controllers::{
    active_faults, spawn_controllers, ControllerConfig, ControllerHandle, FaultHook,
    ResolvedAction, ResolvedFault, RoutesHook,
};
use super::dataplane::{
    ActiveFault, ClusterView, DataPlane, Direction, FaultAction, GatewayBinding,
};
use super::registry::ResKey;
use super::server::{serve_api, ApiConfig, ApiHandle};
use super::store::{Store, WriteOptions};

/// How the twin models time (README, "The sandbox's clock"): pods start
/// `container_start_delay` after they are bound and become Ready on their
/// readinessProbe's schedule; deleted pods stay Terminating for their grace
/// period, up to `max_termination_grace`.
#[derive(Clone, Debug)]
pub struct SandboxOptions {
    /// API server port; 0 picks a free one.
    pub port: u16,
    /// How long a pod's containers take to start (image pull, runtime) once
    /// it is bound; the pod is Pending meanwhile. Default 1 s.
    pub container_start_delay: Duration,
    /// At most this long Terminating after a delete: how long the
    /// application takes to exit on SIGTERM (default 1 s, as a server that
    /// stops on the signal does; the grace period is only the most it may
    /// take). None honours the delete's gracePeriodSeconds or the pod's
    /// terminationGracePeriodSeconds in full (an application that ignores
    /// SIGTERM).
    pub max_termination_grace: Option<Duration>,
    /// Identities with a token and no permissions until RBAC grants some.
    pub users: Vec<String>,
    /// Serve the data plane's Prometheus metrics at `http://127.0.0.1:PORT/metrics`
    /// (0 picks a free port; None serves none).
    pub metrics_port: Option<u16>,
    /// Append one audit.k8s.io/v1 Event line per write request here (as
    /// kube-apiserver's `--audit-log-path`).
    pub audit_log: Option<std::path::PathBuf>,
}

/// Containers start about a second after scheduling on a warm node.
const DEFAULT_CONTAINER_START_DELAY: Duration = Duration::from_secs(1);
/// How long a deleted pod's application takes to exit (see `max_termination_grace`).
const DEFAULT_SHUTDOWN: Duration = Duration::from_secs(1);

impl Default for SandboxOptions {
    fn default() -> Self {
        SandboxOptions {
            port: 0,
            container_start_delay: DEFAULT_CONTAINER_START_DELAY,
            max_termination_grace: Some(DEFAULT_SHUTDOWN),
            users: Vec::new(),
            metrics_port: None,
            audit_log: None,
        }
    }
}

pub struct Sandbox {
    pub api: ApiHandle,
    pub store: Store,
    dataplane: DataPlane,
    controllers: ControllerHandle,
    sync: JoinHandle<()>,
    bindings: watch::Receiver<Vec<GatewayBinding>>,
    metrics: Option<(String, JoinHandle<()>)>,
}

impl Sandbox {
    pub async fn start(opts: SandboxOptions) -> std::io::Result<Sandbox> {
        let store = Store::new();
        let api = serve_api(
            store.clone(),
            ApiConfig {
                port: opts.port,
                token: None,
                users: opts.users.clone(),
                audit_log: opts.audit_log.clone(),
            },
        )
        .await?;
        let dataplane = DataPlane::new();
        let metrics = match opts.metrics_port {
            Some(port) => {
                let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
                let (bound, task) = dataplane.metrics().serve(addr).await?;
                Some((format!("http://{bound}/metrics"), task))
            }
            None => None,
        };
        // Both the chaos daemon and the sync loop rebuild the routing table;
        // each reads the store and swaps the table under this lock, so a
        // rebuild from an older read never replaces a newer one.
        let rebuild = Arc::new(Mutex::new(()));
        let apply_faults: FaultHook = {
            let (store, dp, rebuild) = (store.clone(), dataplane.clone(), rebuild.clone());
            Arc::new(move |faults: &[ResolvedFault]| {
                let _g = rebuild.lock().unwrap_or_else(|e| e.into_inner());
                dp.update(view(&store, faults));
            })
        };
        let sync_routes: RoutesHook = {
            let (store, dp, rebuild) = (store.clone(), dataplane.clone(), rebuild.clone());
            Arc::new(move || {
                let _g = rebuild.lock().unwrap_or_else(|e| e.into_inner());
                dp.update(view(&store, &active_faults(&store)));
            })
        };
        let controllers = spawn_controllers(
            store.clone(),
            ControllerConfig {
                container_start_delay: opts.container_start_delay,
                max_termination_grace: opts.max_termination_grace,
                apply_faults: Some(apply_faults),
                sync_routes: Some(sync_routes),
                root_ca_pem: Some(api.ca_pem.clone()),
                token_issuer: Some(api.auth.issuer.clone()),
            },
        );
        let (tx, bindings) = watch::channel(Vec::new());
        let sync = tokio::spawn(sync_dataplane(
            store.clone(),
            dataplane.clone(),
            rebuild,
            tx,
        ));
        Ok(Sandbox {
            api,
            store,
            dataplane,
            controllers,
            sync,
            bindings,
            metrics,
        })
    }

    pub fn kubeconfig_yaml(&self) -> String {
        self.api.kubeconfig_yaml()
    }

    pub fn write_kubeconfig(&self, path: &std::path::Path) -> std::io::Result<()> {
        self.api.write_kubeconfig(path)
    }

    /// The API server's URL (HTTPS; plain HTTP is served on the same port).
    // Deliberately the HTTPS URL, not `api.url`: clients get TLS by default.
    #[allow(clippy::misnamed_getters)]
    pub fn url(&self) -> &str {
        &self.api.https_url
    }

    /// The gateways' listeners as they are bound, updated on every change.
    pub fn gateway_bindings(&self) -> watch::Receiver<Vec<GatewayBinding>> {
        self.bindings.clone()
    }

    /// Where the data plane's metrics are served, if they are.
    pub fn metrics_url(&self) -> Option<&str> {
        self.metrics.as_ref().map(|(url, _)| url.as_str())
    }

    pub async fn shutdown(self) {
        if let Some((_, task)) = &self.metrics {
            task.abort();
        }
        self.sync.abort();
        self.controllers.abort();
        self.dataplane.shutdown().await;
        self.api.shutdown().await;
    }
}

/// Kinds whose changes alter routing.
const ROUTING_KINDS: &[(&str, &str)] = &[
    ("gateway.networking.k8s.io", "gateways"),
    ("gateway.networking.k8s.io", "httproutes"),
    ("gateway.networking.k8s.io", "referencegrants"),
    ("gateway.networking.k8s.io", "gatewayclasses"),
    ("", "services"),
    ("", "pods"),
    ("", "namespaces"),
    ("", "secrets"),
    ("discovery.k8s.io", "endpointslices"),
    ("networking.k8s.io", "networkpolicies"),
    ("chaos-mesh.org", "networkchaos"),
    ("litmuschaos.io", "chaosengines"),
];

fn list(store: &Store, group: &str, plural: &str) -> Vec<Value> {
    store
        .list(&ResKey::new(group, plural), None, &|_| true, None, None)
        .map(|p| p.items)
        .unwrap_or_default()
}

/// The data plane's input, with `faults` as the network faults in effect.
fn view(store: &Store, faults: &[ResolvedFault]) -> ClusterView {
    const GW: &str = "gateway.networking.k8s.io";
    ClusterView {
        gateways: list(store, GW, "gateways"),
        httproutes: list(store, GW, "httproutes"),
        services: list(store, "", "services"),
        pods: list(store, "", "pods"),
        network_policies: list(store, "networking.k8s.io", "networkpolicies"),
        namespaces: list(store, "", "namespaces"),
        reference_grants: list(store, GW, "referencegrants"),
        endpoint_slices: list(store, "discovery.k8s.io", "endpointslices"),
        // Only key pairs (what HTTPS listeners reference); other Secret data stays out.
        tls_secrets: list(store, "", "secrets")
            .into_iter()
            .filter(|s| {
                s.pointer("/data/tls.crt").is_some() && s.pointer("/data/tls.key").is_some()
            })
            .collect(),
        faults: faults
            .iter()
            .map(|f| ActiveFault {
                id: f.id.clone(),
                namespace: f.namespace.clone(),
                pods: f.pods.clone(),
                action: match f.action {
                    ResolvedAction::Delay { latency, jitter } => {
                        FaultAction::Delay { latency, jitter }
                    }
                    ResolvedAction::Loss { percent } => FaultAction::Loss { percent },
                    ResolvedAction::Partition => FaultAction::Partition,
                },
                direction: match f.direction.as_str() {
                    "from" => Direction::From,
                    "both" => Direction::Both,
                    _ => Direction::To,
                },
            })
            .collect(),
    }
}

/// Rebuilds the routing table and the listeners on every relevant change,
/// then publishes each Gateway's addresses in its status.
async fn sync_dataplane(
    store: Store,
    dp: DataPlane,
    rebuild: Arc<Mutex<()>>,
    tx: watch::Sender<Vec<GatewayBinding>>,
) {
    let mut rx = store.subscribe();
    loop {
        {
            let _g = rebuild.lock().unwrap_or_else(|e| e.into_inner());
            dp.update(view(&store, &active_faults(&store)));
        }
        let bindings = dp.sync_listeners().await;
        for b in &bindings {
            publish_addresses(&store, b);
        }
        let _ = tx.send(bindings);
        // Wait for a change that matters, then take every event already queued.
        loop {
            match rx.recv().await {
                Ok(e)
                    if ROUTING_KINDS
                        .iter()
                        .any(|(g, p)| e.key.group == *g && e.key.plural == *p) =>
                {
                    break
                }
                Ok(_) => continue,
                Err(broadcast::error::RecvError::Lagged(_)) => break,
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
        while rx.try_recv().is_ok() {}
        // A short pause batches bursts (a rollout writes many objects).
        tokio::time::sleep(Duration::from_millis(5)).await;
        while rx.try_recv().is_ok() {}
    }
}

fn publish_addresses(store: &Store, b: &GatewayBinding) {
    let key = ResKey::new("gateway.networking.k8s.io", "gateways");
    for _ in 0..5 {
        let Ok(mut gw) = store.get(&key, Some(&b.namespace), &b.name) else {
            return;
        };
        let addresses = json!(b.addresses);
        if gw.pointer("/status/addresses") == Some(&addresses) {
            return;
        }
        if !gw.get("status").is_some_and(Value::is_object) {
            gw["status"] = json!({});
        }
        gw["status"]["addresses"] = addresses;
        match store.update_status(
            &key,
            Some(&b.namespace),
            &b.name,
            gw,
            &WriteOptions::default(),
        ) {
            Err(e) if e.code == 409 => continue,
            _ => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use serde_json::{json, Value};

    use super::*;
    use heatcheck_gateway::gateway_url::gateway_base_url;

    const NS: &str = "e2e";

    fn create(store: &Store, group: &str, plural: &str, obj: Value) {
        let ns = obj
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .map(str::to_string);
        store
            .create(
                &ResKey::new(group, plural),
                ns.as_deref(),
                obj,
                &WriteOptions::default(),
            )
            .expect("create");
    }

    /// Polls `f` every 10ms until it yields; panics after 20s.
    async fn wait_for<T, F: std::future::Future<Output = Option<T>>>(
        what: &str,
        mut f: impl FnMut() -> F,
    ) -> T {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(v) = f().await {
                return v;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn app(store: &Store) {
        create(
            store,
            "",
            "namespaces",
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}),
        );
        create(
            store,
            "apps",
            "deployments",
            json!({"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "web", "namespace": NS},
                "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                    "template": {"metadata": {"labels": {"app": "web"}},
                        "spec": {"containers": [{"name": "echo", "image": "registry.k8s.io/echoserver:2.5",
                            "ports": [{"name": "http", "containerPort": 8080}]}]}}}}),
        );
        create(
            store,
            "",
            "services",
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": NS},
                "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}}),
        );
        create(
            store,
            "gateway.networking.k8s.io",
            "gateways",
            json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
                "metadata": {"name": "gw", "namespace": NS},
                "spec": {"gatewayClassName": "any",
                    "listeners": [{"name": "http", "protocol": "HTTP", "port": 80}]}}),
        );
        create(
            store,
            "gateway.networking.k8s.io",
            "httproutes",
            json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
                "metadata": {"name": "web", "namespace": NS},
                "spec": {"parentRefs": [{"name": "gw"}],
                    "rules": [{"backendRefs": [{"name": "web", "port": 80}]}]}}),
        );
    }

    /// Spins (yielding) until `f` holds, so the moment a status changes is
    /// seen at once, not up to a poll interval later; panics after 20s.
    async fn spin_until(what: &str, f: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !f() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::task::yield_now().await;
        }
    }

    fn chaos_condition(store: &Store, kind: &str) -> bool {
        store
            .get(
                &ResKey::new("chaos-mesh.org", "networkchaos"),
                Some(NS),
                "lag",
            )
            .ok()
            .and_then(|nc| nc.pointer("/status/conditions").cloned())
            .and_then(|cs| cs.as_array().cloned())
            .is_some_and(|cs| {
                cs.iter()
                    .any(|c| c["type"] == kind && c["status"] == "True")
            })
    }

    /// Status then request, with no waiting in between: the gateway already
    /// delays when AllInjected=True and no longer does when AllRecovered=True.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn gateway_delays_as_soon_as_the_chaos_says_injected() {
        let sb = Sandbox::start(SandboxOptions::default())
            .await
            .expect("sandbox");
        let store = sb.store.clone();
        app(&store);
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let url = wait_for("the gateway to answer 200", || {
            let (store, client) = (store.clone(), client.clone());
            async move {
                let gw = store
                    .get(
                        &ResKey::new("gateway.networking.k8s.io", "gateways"),
                        Some(NS),
                        "gw",
                    )
                    .ok()?;
                let url = gateway_base_url(&gw, None).ok()?;
                let resp = client.get(format!("{url}/")).send().await.ok()?;
                (resp.status() == 200).then_some(url)
            }
        })
        .await;
        let timed = |client: reqwest::Client, url: String| async move {
            let start = Instant::now();
            let resp = client.get(format!("{url}/")).send().await.expect("request");
            assert_eq!(resp.status(), 200);
            start.elapsed()
        };
        create(
            &store,
            "chaos-mesh.org",
            "networkchaos",
            json!({"apiVersion": "chaos-mesh.org/v1alpha1", "kind": "NetworkChaos",
                "metadata": {"name": "lag", "namespace": NS},
                "spec": {"action": "delay", "mode": "all", "duration": "3s",
                    "selector": {"namespaces": [NS], "labelSelectors": {"app": "web"}},
                    "delay": {"latency": "1500ms"}}}),
        );
        spin_until("AllInjected", || chaos_condition(&store, "AllInjected")).await;
        let took =
            futures::future::join_all((0..3).map(|_| timed(client.clone(), url.clone()))).await;
        for t in &took {
            assert!(
                *t >= Duration::from_millis(1500),
                "delayed at once: {took:?}"
            );
        }
        spin_until("AllRecovered", || chaos_condition(&store, "AllRecovered")).await;
        // A large delay keeps "not delayed" far from "delayed" on a loaded
        // machine: under half the injected latency is no delay at all.
        let t = timed(client.clone(), url.clone()).await;
        assert!(
            t < Duration::from_millis(750),
            "not delayed once recovered: {t:?}"
        );
        sb.shutdown().await;
    }
}
