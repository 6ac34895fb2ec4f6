//! The input of the data plane: a snapshot of cluster objects as plain JSON.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::Value;

/// Snapshot of the cluster objects the data plane needs (JSON as the API server stores them).
#[derive(Debug, Clone, Default)]
pub(crate) struct ClusterView {
    pub gateways: Vec<Value>,
    pub httproutes: Vec<Value>,
    pub services: Vec<Value>,
    pub pods: Vec<Value>,
    pub network_policies: Vec<Value>,
    pub namespaces: Vec<Value>,
    /// ReferenceGrants (gateway.networking.k8s.io/v1beta1): a backendRef to a Service in
    /// another namespace is only valid when a grant in the Service's namespace allows it.
    pub reference_grants: Vec<Value>,
    /// EndpointSlices: the endpoints of Services without a selector (managed by hand).
    pub endpoint_slices: Vec<Value>,
    /// Secrets with `tls.crt` and `tls.key`: certificates of HTTPS listeners.
    pub tls_secrets: Vec<Value>,
    pub faults: Vec<ActiveFault>,
}

/// A network fault in effect on specific pods (the chaos controllers resolve NetworkChaos /
/// Litmus ChaosEngine selectors to pods and publish these).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ActiveFault {
    /// For messages, e.g. "networkchaos/route-chaos/latency".
    pub id: String,
    /// Namespace of the affected pods.
    pub namespace: String,
    /// Names of the affected pods.
    pub pods: BTreeSet<String>,
    pub action: FaultAction,
    /// Gateway-to-pod traffic is a request/response exchange, so every direction affects it.
    pub direction: Direction,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum FaultAction {
    /// Each request to the pod waits `latency` ± a uniform `jitter`.
    Delay { latency: Duration, jitter: Duration },
    /// This percentage (0..=100) of requests to the pod fail with 503.
    Loss { percent: f64 },
    /// The pod cannot be reached at all.
    Partition,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    To,
    From,
    Both,
}
