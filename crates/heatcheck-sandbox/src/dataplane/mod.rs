//! Emulated Gateway API data plane: the sandbox stands in for Istio / Envoy Gateway and
//! implements every GatewayClass. It reads Gateways, HTTPRoutes, Services, Pods,
//! NetworkPolicies, Namespaces and ReferenceGrants as plain JSON ([`ClusterView`]), serves
//! each Gateway listener on a real loopback socket, routes requests as the Gateway API spec
//! says ([`routing`]) and answers as the Gateway API conformance echo server would
//! ([`echo`]). It imports nothing from the rest of heatcheck.
//!
//! # Address policy
//!
//! Each Gateway gets its own loopback IP: a random free address `127.a.b.1` with `a` and `b`
//! in 1..=254 (never 127.0.0.1), and each listener's declared port is bound on it; listeners
//! that share a port share the socket and are told apart by hostname. If a declared port
//! cannot be bound because it is taken, other random IPs are tried (up to 8); if it still
//! cannot be bound, or binding fails with a permission error (ports below 1024 when not
//! root), every listener of that Gateway is bound on an ephemeral port of a fresh IP, and
//! besides `{type: IPAddress, value: 127.a.b.1}` the Gateway's `status.addresses` lists
//! `{type: heatcheck.dev/HostPort, value: "127.a.b.1:PORT"}`, one per distinct listener
//! port in `spec.listeners` order (`heatcheck_gateway::gateway_url::gateway_base_url` prefers those). On systems that
//! cannot bind loopback addresses other than 127.0.0.1 (macOS without aliases), ephemeral
//! ports on 127.0.0.1 are used. Parallel sandboxes (e.g. test processes) never collide: the
//! kernel refuses a second bind of the same IP:port and the loser moves on. A Gateway keeps
//! its IP for its lifetime; it is only re-chosen if the Gateway is deleted and recreated
//! (new `metadata.uid`). `protocol: HTTP` and `HTTPS` listeners are served; an HTTPS port
//! speaks TLS with the certificate of the listener whose hostname matches the SNI name
//! ([`tls`]), read from the current table at each handshake.
//!
//! # Behaviour worth knowing
//!
//! * No matching route: 404. An invalid backendRef (missing Service or port, unsupported
//!   kind, cross-namespace without ReferenceGrant): 500 for its weighted share. A Service
//!   with no ready endpoints: 503 `no healthy upstream`.
//! * Ready endpoints = pods selected by the Service, with condition Ready=True and no
//!   deletionTimestamp; round-robin per backend.
//! * NetworkPolicy and `Partition` faults make pods unreachable; when no ready endpoint is
//!   reachable the gateway answers 503 `upstream connect error or disconnect/reset before
//!   headers. reset reason: connection timeout` (at once, without waiting a connect timeout).
//! * `Delay` faults wait latency ± uniform jitter before answering. `Loss` faults fail that
//!   share of requests with the same 503 (no retry: Gateway API leaves retries off unless a
//!   rule configures them).
//! * Filters ([`filters`]) apply to rules and backendRefs; a RequestRedirect answers at once;
//!   a rule timeout shorter than the backend's delay (faults plus the echo server's
//!   `?delay=`) answers 504 `upstream request timeout` after the timeout.
//! * Gateway answers carry `x-heatcheck-detail` saying why; backend answers carry
//!   `x-heatcheck-route: ns/name` and `x-heatcheck-backend: ns/service/pod`.

pub mod echo;
mod filters;
mod hostname;
mod listeners;
mod matcher;
mod metrics;
mod policy;
mod routing;
mod selector;
mod server;
mod tls;
mod view;

use std::sync::{Arc, RwLock};

pub(crate) use listeners::GatewayBinding;
pub(crate) use metrics::GatewayMetrics;
pub(crate) use routing::RouteTable;
pub(crate) use view::{ActiveFault, ClusterView, Direction, FaultAction};

struct Inner {
    table: Arc<server::TableCell>,
    metrics: GatewayMetrics,
    listeners: tokio::sync::Mutex<listeners::Listeners>,
}

/// The data plane. Cheap to clone (shared state behind an `Arc`).
#[derive(Clone)]
pub(crate) struct DataPlane {
    inner: Arc<Inner>,
}

impl Default for DataPlane {
    fn default() -> Self {
        Self::new()
    }
}

impl DataPlane {
    pub(crate) fn new() -> Self {
        let metrics = GatewayMetrics::new();
        let listeners = listeners::Listeners::new(metrics.clone());
        DataPlane {
            inner: Arc::new(Inner {
                table: Arc::new(RwLock::new(Arc::new(RouteTable::default()))),
                metrics,
                listeners: tokio::sync::Mutex::new(listeners),
            }),
        }
    }

    /// The data plane's Prometheus metrics (see [`metrics`]).
    pub(crate) fn metrics(&self) -> &GatewayMetrics {
        &self.inner.metrics
    }

    /// Publish a new view: rebuild the routing table and swap it in atomically; in-flight
    /// requests finish with the table they started with.
    pub(crate) fn update(&self, view: ClusterView) {
        let table = Arc::new(RouteTable::build(&view));
        self.inner.metrics.set_faults(&view.faults);
        *self.inner.table.write().unwrap_or_else(|e| e.into_inner()) = table;
    }

    /// The current table (to inspect routing decisions or route statuses).
    pub(crate) fn table(&self) -> Arc<RouteTable> {
        self.inner
            .table
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Serve every HTTP listener of every gateway in the last view, stop the sockets of
    /// gateways and ports that disappeared, and return per gateway what to write into its
    /// status (addresses, listeners with attached route counts).
    pub(crate) async fn sync_listeners(&self) -> Vec<GatewayBinding> {
        let table = self.table();
        self.inner
            .listeners
            .lock()
            .await
            .sync(&table, &self.inner.table)
            .await
    }

    /// Close every listener.
    pub(crate) async fn shutdown(&self) {
        self.inner.listeners.lock().await.shutdown().await;
    }
}

#[cfg(test)]
mod tests;
