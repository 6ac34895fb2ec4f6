//! The routing table: built once per published [`ClusterView`], then read by every request.
//!
//! Semantics follow the Gateway API v1 spec (apis/v1/httproute_types.go, gateway_types.go,
//! shared_types.go):
//! * attachment: `parentRefs` (group/kind/namespace/sectionName/port), the listener's
//!   `allowedRoutes` (namespaces From Same|All|Selector, kinds) and hostname intersection;
//! * host selection: the most specific listener hostname, then the most specific route
//!   hostname (exact names before wildcards, longer suffixes first), like Envoy's virtual
//!   hosts: a request that matches a host but none of its rules gets 404, with no fallback;
//! * match precedence across all routes of that host: Exact path, longest path, method,
//!   most headers, most query params, oldest route (creationTimestamp), "{ns}/{name}",
//!   then rule and match order;
//! * backends: weighted choice among `backendRefs`; an invalid ref answers 500 for its
//!   share of the traffic; a Service without ready endpoints answers 503.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng;
use serde_json::{Map, Value};

use super::filters::{Filters, Redirect, Timeouts};
use super::hostname::{intersect, HostPattern};
use super::matcher::{CompiledMatch, PathMatch, RequestParts};
use super::policy::{gateway_may_reach, TargetPort};
use super::selector::{labels, selector_matches, service_selects};
use super::view::{ClusterView, FaultAction};

mod backends;
mod build;

use build::Builder;

const GATEWAY_GROUP: &str = "gateway.networking.k8s.io";

/// Envoy's answers, so probes see what they would see on a real gateway.
pub(super) const NO_HEALTHY_UPSTREAM: &str = "no healthy upstream";
pub(super) const UPSTREAM_CONNECT_ERROR: &str =
    "upstream connect error or disconnect/reset before headers. reset reason: connection timeout";

fn s<'a>(v: &'a Value, ptr: &str) -> Option<&'a str> {
    v.pointer(ptr).and_then(Value::as_str)
}

fn ns_of(v: &Value) -> &str {
    s(v, "/metadata/namespace").unwrap_or("default")
}

fn name_of(v: &Value) -> &str {
    s(v, "/metadata/name").unwrap_or_default()
}

/// A condition for a route's `status.parents[]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Condition {
    pub status: bool,
    pub reason: String,
    pub message: String,
}

impl Condition {
    fn ok(reason: &str) -> Self {
        Condition {
            status: true,
            reason: reason.into(),
            message: String::new(),
        }
    }
    fn fail(reason: &str, message: impl Into<String>) -> Self {
        Condition {
            status: false,
            reason: reason.into(),
            message: message.into(),
        }
    }
}

/// What the sandbox gateway says about one `parentRef` of one HTTPRoute (only for parents that
/// are Gateways present in the view).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RouteParentStatus {
    pub route_namespace: String,
    pub route_name: String,
    /// The parentRef as written in the route (to echo into `status.parents[].parentRef`).
    pub parent_ref: Value,
    pub accepted: Condition,
    pub resolved_refs: Condition,
}

/// A listener as declared, with what the table made of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ListenerInfo {
    pub name: String,
    pub port: u16,
    pub protocol: String,
    /// HTTP listeners, and HTTPS ones whose certificate loads, get a socket.
    pub served: bool,
    pub attached_routes: u32,
}

#[derive(Debug)]
pub(crate) struct GatewayTable {
    pub namespace: String,
    pub name: String,
    pub uid: Option<String>,
    pub listeners: Vec<ListenerInfo>,
    ports: HashMap<u16, Vec<ListenerTable>>,
}

impl GatewayTable {
    /// Whether the listeners on this port speak TLS (HTTPS).
    pub(crate) fn is_tls(&self, port: u16) -> bool {
        self.ports
            .get(&port)
            .is_some_and(|ls| ls.iter().any(|l| l.cert.is_some()))
    }

    /// The certificate for a TLS handshake on `port`: the most specific listener whose
    /// hostname matches the SNI name; without SNI, the first listener that has one.
    pub(crate) fn certificate(
        &self,
        port: u16,
        sni: Option<&str>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        let ls = self.ports.get(&port)?;
        match sni {
            Some(name) => ls
                .iter()
                .find(|l| l.hostname.matches(&name.to_ascii_lowercase()))
                .and_then(|l| l.cert.clone()),
            None => ls.iter().find_map(|l| l.cert.clone()),
        }
    }
}

impl GatewayTable {
    /// Distinct ports of served listeners, in `spec.listeners` order.
    pub(crate) fn served_ports(&self) -> Vec<u16> {
        let mut out = Vec::new();
        for l in self.listeners.iter().filter(|l| l.served) {
            if !out.contains(&l.port) {
                out.push(l.port);
            }
        }
        out
    }
}

#[derive(Debug)]
struct ListenerTable {
    name: String,
    hostname: HostPattern,
    vhosts: Vec<VHost>,
    /// The serving certificate of an HTTPS listener.
    cert: Option<Arc<rustls::sign::CertifiedKey>>,
}

#[derive(Debug)]
struct VHost {
    host: HostPattern,
    entries: Vec<Entry>,
}

#[derive(Debug)]
struct Entry {
    matcher: CompiledMatch,
    target: Arc<RuleTarget>,
}

/// The action of one route rule.
#[derive(Debug)]
pub(super) struct RuleTarget {
    /// "{namespace}/{name}" of the route.
    pub route: String,
    backends: Vec<(u32, Arc<Backend>, Filters)>,
    total_weight: u64,
    pub filters: Filters,
    pub timeouts: Timeouts,
    /// Backends of RequestMirror filters (invalid ones are skipped).
    mirrors: Vec<Arc<Backend>>,
}

/// One pod a mirrored copy of the request goes to.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct MirrorTarget<'a> {
    pub namespace: &'a str,
    pub service: &'a str,
    pub pod: &'a str,
}

#[derive(Debug)]
enum Backend {
    Invalid { reason: String, message: String },
    Service(ServiceBackend),
}

#[derive(Debug)]
struct ServiceBackend {
    namespace: String,
    name: String,
    ready: usize,
    reachable: Vec<Endpoint>,
    /// Why ready endpoints are unreachable (NetworkPolicy / partition), for diagnostics.
    unreachable: String,
    next: AtomicUsize,
}

#[derive(Debug, Clone)]
struct Endpoint {
    pod: String,
    delay: Duration,
    jitter: Duration,
    /// Probability in 0..=1 that a request is dropped.
    loss: f64,
    faults: String,
}

/// What to do with a request.
#[derive(Debug, PartialEq)]
pub(crate) enum Decision<'a> {
    /// No route matches: 404.
    NotFound,
    /// The gateway answers by itself (500/503).
    Error {
        status: u16,
        message: &'static str,
        detail: String,
        route: &'a str,
        delay: Duration,
    },
    /// The backend pod answers.
    Forward {
        route: &'a str,
        namespace: &'a str,
        service: &'a str,
        pod: &'a str,
        delay: Duration,
        /// The rule's filters, then the chosen backendRef's.
        filters: &'a Filters,
        backend_filters: &'a Filters,
        timeouts: Timeouts,
        /// The matched PathPrefix (without trailing `/`), for ReplacePrefixMatch.
        matched_prefix: Option<&'a str>,
        mirrors: Vec<MirrorTarget<'a>>,
    },
    /// A RequestRedirect filter answers (the server builds Location: it knows the scheme).
    Redirect {
        route: &'a str,
        redirect: &'a Redirect,
        matched_prefix: Option<&'a str>,
        /// ResponseHeaderModifier filters of the rule.
        filters: &'a Filters,
    },
}

/// The compiled view.
#[derive(Debug, Default)]
pub(crate) struct RouteTable {
    gateways: HashMap<String, GatewayTable>,
    route_statuses: Vec<RouteParentStatus>,
}

impl RouteTable {
    /// Look a gateway up by "{namespace}/{name}".
    pub(crate) fn gateway(&self, key: &str) -> Option<&GatewayTable> {
        self.gateways.get(key)
    }

    pub(crate) fn gateways(&self) -> impl Iterator<Item = &GatewayTable> {
        self.gateways.values()
    }

    #[cfg(test)]
    pub(crate) fn route_statuses(&self) -> &[RouteParentStatus] {
        &self.route_statuses
    }

    /// Route one request arriving on `port` of gateway `key` ("{ns}/{name}").
    pub(crate) fn resolve<'a, R: Rng + ?Sized>(
        &'a self,
        key: &str,
        port: u16,
        req: &RequestParts<'_>,
        rng: &mut R,
    ) -> Decision<'a> {
        let Some(listeners) = self.gateways.get(key).and_then(|g| g.ports.get(&port)) else {
            return Decision::NotFound;
        };
        let Some(listener) = listeners.iter().find(|l| l.hostname.matches(req.host)) else {
            return Decision::NotFound;
        };
        let Some(vhost) = listener.vhosts.iter().find(|v| v.host.matches(req.host)) else {
            return Decision::NotFound;
        };
        match vhost.entries.iter().find(|e| e.matcher.matches(req)) {
            Some(e) => {
                let prefix = match &e.matcher.path {
                    PathMatch::Prefix(p) => Some(p.as_str()),
                    _ => None,
                };
                e.target.decide(rng, prefix)
            }
            None => Decision::NotFound,
        }
    }

    /// The listener a request to `port` of gateway `key` with this host lands on (metrics).
    pub(crate) fn listener_name(&self, key: &str, port: u16, host: &str) -> Option<&str> {
        let listeners = self.gateways.get(key)?.ports.get(&port)?;
        let l = listeners.iter().find(|l| l.hostname.matches(host))?;
        Some(l.name.as_str())
    }

    pub(crate) fn build(view: &ClusterView) -> RouteTable {
        Builder::new(view).build()
    }
}

impl RuleTarget {
    fn decide<'a, R: Rng + ?Sized>(
        &'a self,
        rng: &mut R,
        matched_prefix: Option<&'a str>,
    ) -> Decision<'a> {
        let route = self.route.as_str();
        if let Some(redirect) = &self.filters.redirect {
            return Decision::Redirect {
                route,
                redirect,
                matched_prefix,
                filters: &self.filters,
            };
        }
        let error = |status, message, detail: String| Decision::Error {
            status,
            message,
            detail,
            route,
            delay: Duration::ZERO,
        };
        if self.total_weight == 0 {
            return error(
                500,
                "Internal Server Error",
                "the rule has no backend with a non-zero weight".into(),
            );
        }
        let mut pick = rng.random_range(0..self.total_weight);
        let backend = self.backends.iter().find(|(w, _, _)| {
            let hit = pick < u64::from(*w);
            pick = pick.saturating_sub(u64::from(*w));
            hit
        });
        // A RequestRedirect on the chosen backendRef answers for it.
        if let Some((_, _, f)) = backend {
            if let Some(redirect) = &f.redirect {
                return Decision::Redirect {
                    route,
                    redirect,
                    matched_prefix,
                    filters: f,
                };
            }
        }
        let (svc, backend_filters) = match backend {
            Some((_, b, f)) => match b.as_ref() {
                Backend::Service(svc) => (svc, f),
                Backend::Invalid { reason, message } => {
                    return error(500, "Internal Server Error", format!("{reason}: {message}"));
                }
            },
            None => return error(500, "Internal Server Error", "no backend".into()),
        };
        if svc.ready == 0 {
            let detail = format!(
                "Service {}/{} has no ready endpoints",
                svc.namespace, svc.name
            );
            return error(503, NO_HEALTHY_UPSTREAM, detail);
        }
        if svc.reachable.is_empty() {
            return error(503, UPSTREAM_CONNECT_ERROR, svc.unreachable.clone());
        }
        let ep = &svc.reachable[svc.next.fetch_add(1, Ordering::Relaxed) % svc.reachable.len()];
        let delay = if ep.jitter.is_zero() {
            ep.delay
        } else {
            let j = ep.jitter.as_secs_f64();
            let d = ep.delay.as_secs_f64() + rng.random_range(-j..=j);
            Duration::from_secs_f64(d.max(0.0))
        };
        if ep.loss > 0.0 && rng.random::<f64>() < ep.loss {
            return Decision::Error {
                status: 503,
                message: UPSTREAM_CONNECT_ERROR,
                detail: format!(
                    "request to pod {}/{} dropped by {}",
                    svc.namespace, ep.pod, ep.faults
                ),
                route,
                delay,
            };
        }
        // A mirror that is down or unreachable simply gets no copy.
        let mirrors = self
            .mirrors
            .iter()
            .filter_map(|m| match m.as_ref() {
                Backend::Service(m) if !m.reachable.is_empty() => {
                    let ep =
                        &m.reachable[m.next.fetch_add(1, Ordering::Relaxed) % m.reachable.len()];
                    Some(MirrorTarget {
                        namespace: &m.namespace,
                        service: &m.name,
                        pod: &ep.pod,
                    })
                }
                _ => None,
            })
            .collect();
        Decision::Forward {
            route,
            namespace: &svc.namespace,
            service: &svc.name,
            pod: &ep.pod,
            delay,
            filters: &self.filters,
            backend_filters,
            timeouts: self.timeouts,
            matched_prefix,
            mirrors,
        }
    }
}

/// Per listener index of one gateway: (route index, served hostnames).
type ListenerAttachments = BTreeMap<usize, Vec<(usize, Vec<HostPattern>)>>;

/// A route's rule actions as seen from one gateway namespace, and its ResolvedRefs condition.
type RouteTargets = (Vec<Arc<RuleTarget>>, Condition);
