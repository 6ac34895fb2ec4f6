//! One whole sandbox: the object store, the API server, the controllers and
//! the gateway data plane, wired together.

use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;

use super::controllers::{active_faults, spawn_controllers, ControllerConfig, ControllerHandle, ResolvedAction};
use super::dataplane::{ActiveFault, ClusterView, DataPlane, Direction, FaultAction, GatewayBinding};
use super::registry::ResKey;
use super::server::{serve_api, ApiConfig, ApiHandle};
use super::store::{Store, WriteOptions};

#[derive(Clone, Debug, Default)]
pub struct SandboxOptions {
    /// API server port; 0 picks a free one.
    pub port: u16,
    /// How long new pods stay not-ready.
    pub pod_ready_delay: Duration,
}

pub struct Sandbox {
    pub api: ApiHandle,
    pub store: Store,
    dataplane: DataPlane,
    controllers: ControllerHandle,
    sync: JoinHandle<()>,
    bindings: watch::Receiver<Vec<GatewayBinding>>,
}

impl Sandbox {
    pub async fn start(opts: SandboxOptions) -> std::io::Result<Sandbox> {
        let store = Store::new();
        let api = serve_api(
            store.clone(),
            ApiConfig {
                port: opts.port,
                token: None,
            },
        )
        .await?;
        let controllers = spawn_controllers(
            store.clone(),
            ControllerConfig {
                pod_ready_delay: opts.pod_ready_delay,
            },
        );
        let dataplane = DataPlane::new();
        let (tx, bindings) = watch::channel(Vec::new());
        let sync = tokio::spawn(sync_dataplane(store.clone(), dataplane.clone(), tx));
        Ok(Sandbox {
            api,
            store,
            dataplane,
            controllers,
            sync,
            bindings,
        })
    }

    pub fn kubeconfig_yaml(&self) -> String {
        self.api.kubeconfig_yaml()
    }

    pub fn write_kubeconfig(&self, path: &std::path::Path) -> std::io::Result<()> {
        self.api.write_kubeconfig(path)
    }

    /// The API server's URL (HTTPS; plain HTTP is served on the same port).
    pub fn url(&self) -> &str {
        &self.api.https_url
    }

    /// The gateways' listeners as they are bound, updated on every change.
    pub fn gateway_bindings(&self) -> watch::Receiver<Vec<GatewayBinding>> {
        self.bindings.clone()
    }

    pub async fn shutdown(self) {
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

fn view(store: &Store) -> ClusterView {
    const GW: &str = "gateway.networking.k8s.io";
    ClusterView {
        gateways: list(store, GW, "gateways"),
        httproutes: list(store, GW, "httproutes"),
        services: list(store, "", "services"),
        pods: list(store, "", "pods"),
        network_policies: list(store, "networking.k8s.io", "networkpolicies"),
        namespaces: list(store, "", "namespaces"),
        reference_grants: list(store, GW, "referencegrants"),
        faults: active_faults(store)
            .into_iter()
            .map(|f| ActiveFault {
                id: f.id,
                namespace: f.namespace,
                pods: f.pods,
                action: match f.action {
                    ResolvedAction::Delay { latency, jitter } => FaultAction::Delay { latency, jitter },
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
async fn sync_dataplane(store: Store, dp: DataPlane, tx: watch::Sender<Vec<GatewayBinding>>) {
    let mut rx = store.subscribe();
    loop {
        dp.update(view(&store));
        let bindings = dp.sync_listeners().await;
        for b in &bindings {
            publish_addresses(&store, b);
        }
        let _ = tx.send(bindings);
        // Wait for a change that matters, then take every event already queued.
        loop {
            match rx.recv().await {
                Ok(e) if ROUTING_KINDS.iter().any(|(g, p)| e.key.group == *g && e.key.plural == *p) => break,
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
        match store.update_status(&key, Some(&b.namespace), &b.name, gw, &WriteOptions::default()) {
            Err(e) if e.code == 409 => continue,
            _ => return,
        }
    }
}
