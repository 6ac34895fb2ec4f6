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

const GATEWAY_GROUP: &str = "gateway.networking.k8s.io";

/// Envoy's answers, so probes see what they would see on a real gateway.
pub const NO_HEALTHY_UPSTREAM: &str = "no healthy upstream";
pub const UPSTREAM_CONNECT_ERROR: &str =
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
pub struct Condition {
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
pub struct RouteParentStatus {
    pub route_namespace: String,
    pub route_name: String,
    /// The parentRef as written in the route (to echo into `status.parents[].parentRef`).
    pub parent_ref: Value,
    pub accepted: Condition,
    pub resolved_refs: Condition,
}

/// A listener as declared, with what the table made of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerInfo {
    pub name: String,
    pub port: u16,
    pub protocol: String,
    /// HTTP listeners, and HTTPS ones whose certificate loads, get a socket.
    pub served: bool,
    pub attached_routes: u32,
}

#[derive(Debug)]
pub struct GatewayTable {
    pub namespace: String,
    pub name: String,
    pub uid: Option<String>,
    pub listeners: Vec<ListenerInfo>,
    ports: HashMap<u16, Vec<ListenerTable>>,
}

impl GatewayTable {
    /// Whether the listeners on this port speak TLS (HTTPS).
    pub fn is_tls(&self, port: u16) -> bool {
        self.ports
            .get(&port)
            .is_some_and(|ls| ls.iter().any(|l| l.cert.is_some()))
    }

    /// The certificate for a TLS handshake on `port`: the most specific listener whose
    /// hostname matches the SNI name; without SNI, the first listener that has one.
    pub fn certificate(
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
    pub fn served_ports(&self) -> Vec<u16> {
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
pub struct RuleTarget {
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
pub struct MirrorTarget<'a> {
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
pub enum Decision<'a> {
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
pub struct RouteTable {
    gateways: HashMap<String, GatewayTable>,
    route_statuses: Vec<RouteParentStatus>,
}

impl RouteTable {
    /// Look a gateway up by "{namespace}/{name}".
    pub fn gateway(&self, key: &str) -> Option<&GatewayTable> {
        self.gateways.get(key)
    }

    pub fn gateways(&self) -> impl Iterator<Item = &GatewayTable> {
        self.gateways.values()
    }

    pub fn route_statuses(&self) -> &[RouteParentStatus] {
        &self.route_statuses
    }

    /// Route one request arriving on `port` of gateway `key` ("{ns}/{name}").
    pub fn resolve<'a, R: Rng + ?Sized>(
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
    pub fn listener_name(&self, key: &str, port: u16, host: &str) -> Option<&str> {
        let listeners = self.gateways.get(key)?.ports.get(&port)?;
        let l = listeners.iter().find(|l| l.hostname.matches(host))?;
        Some(l.name.as_str())
    }

    pub fn build(view: &ClusterView) -> RouteTable {
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

/// One parsed route, before attachment.
struct ParsedRoute<'v> {
    obj: &'v Value,
    namespace: &'v str,
    key: String,
    created: Option<DateTime<Utc>>,
    hostnames: Vec<HostPattern>,
    /// Per rule: its compiled matches.
    rules: Vec<Vec<CompiledMatch>>,
    invalid: Option<String>,
}

struct Builder<'v> {
    view: &'v ClusterView,
    ns_labels: HashMap<&'v str, Map<String, Value>>,
    services: HashMap<(&'v str, &'v str), &'v Value>,
    pods_by_ns: HashMap<&'v str, Vec<&'v Value>>,
    policies_by_ns: HashMap<&'v str, Vec<&'v Value>>,
    faults: HashMap<(&'v str, &'v str), Vec<&'v super::view::ActiveFault>>,
    /// Service backends, shared by every rule that names the same (gateway ns, svc ns, svc, port).
    backends: HashMap<(String, String, String, u16), Arc<Backend>>,
}

impl<'v> Builder<'v> {
    fn new(view: &'v ClusterView) -> Self {
        let mut ns_labels: HashMap<&str, Map<String, Value>> = HashMap::new();
        for ns in &view.namespaces {
            let mut l = labels(ns).clone();
            // The API server sets this label on every namespace.
            l.insert(
                "kubernetes.io/metadata.name".into(),
                Value::String(name_of(ns).to_string()),
            );
            ns_labels.insert(name_of(ns), l);
        }
        let services = view
            .services
            .iter()
            .map(|s| ((ns_of(s), name_of(s)), s))
            .collect();
        let mut pods_by_ns: HashMap<&str, Vec<&Value>> = HashMap::new();
        for p in &view.pods {
            pods_by_ns.entry(ns_of(p)).or_default().push(p);
        }
        for pods in pods_by_ns.values_mut() {
            pods.sort_by_key(|p| name_of(p));
        }
        let mut policies_by_ns: HashMap<&str, Vec<&Value>> = HashMap::new();
        for p in &view.network_policies {
            policies_by_ns.entry(ns_of(p)).or_default().push(p);
        }
        let mut faults: HashMap<(&str, &str), Vec<_>> = HashMap::new();
        for f in &view.faults {
            for pod in &f.pods {
                faults
                    .entry((f.namespace.as_str(), pod.as_str()))
                    .or_default()
                    .push(f);
            }
        }
        Builder {
            view,
            ns_labels,
            services,
            pods_by_ns,
            policies_by_ns,
            faults,
            backends: HashMap::new(),
        }
    }

    fn namespace_labels(&self, ns: &str) -> Map<String, Value> {
        self.ns_labels.get(ns).cloned().unwrap_or_else(|| {
            let mut m = Map::new();
            m.insert(
                "kubernetes.io/metadata.name".into(),
                Value::String(ns.to_string()),
            );
            m
        })
    }

    fn parse_route(&self, r: &'v Value) -> ParsedRoute<'v> {
        let namespace = ns_of(r);
        let created = s(r, "/metadata/creationTimestamp")
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc));
        let hostnames = r
            .pointer("/spec/hostnames")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(HostPattern::parse)
            .collect();
        let mut invalid = None;
        let mut rules = Vec::new();
        let default_rules = [serde_json::json!({})];
        let rule_values = match r.pointer("/spec/rules").and_then(Value::as_array) {
            Some(rules) if !rules.is_empty() => rules.as_slice(),
            _ => &default_rules,
        };
        for rule in rule_values {
            let mut compiled = Vec::new();
            if let Err(e) = Filters::parse(rule.get("filters")) {
                invalid = Some(e);
            }
            if let Err(e) = Timeouts::parse(rule.get("timeouts")) {
                invalid = Some(e);
            }
            for b in rule
                .get("backendRefs")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Err(e) = Filters::parse(b.get("filters")) {
                    invalid = Some(e);
                }
            }
            match rule.get("matches").and_then(Value::as_array) {
                Some(ms) if !ms.is_empty() => {
                    for m in ms {
                        match CompiledMatch::compile(m) {
                            Ok(c) => compiled.push(c),
                            Err(e) => invalid = Some(e),
                        }
                    }
                }
                _ => compiled.push(CompiledMatch::catch_all()),
            }
            rules.push(compiled);
        }
        ParsedRoute {
            obj: r,
            namespace,
            key: format!("{namespace}/{}", name_of(r)),
            created,
            hostnames,
            rules,
            invalid,
        }
    }

    fn grant_allows(&self, route_ns: &str, svc_ns: &str, svc: &str) -> bool {
        self.grant_allows_kind("HTTPRoute", route_ns, "Service", svc_ns, svc)
    }

    /// A ReferenceGrant in `to_ns` lets `from_kind` objects of `from_ns` refer to `to_kind` `name`.
    fn grant_allows_kind(
        &self,
        from_kind: &str,
        route_ns: &str,
        to_kind: &str,
        svc_ns: &str,
        svc: &str,
    ) -> bool {
        self.view
            .reference_grants
            .iter()
            .filter(|g| ns_of(g) == svc_ns)
            .any(|g| {
                let from_ok = g
                    .pointer("/spec/from")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .any(|f| {
                        s(f, "/group") == Some(GATEWAY_GROUP)
                            && s(f, "/kind") == Some(from_kind)
                            && s(f, "/namespace") == Some(route_ns)
                    });
                let to_ok = g
                    .pointer("/spec/to")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .any(|t| {
                        matches!(s(t, "/group"), Some("") | Some("core") | None)
                            && s(t, "/kind") == Some(to_kind)
                            && s(t, "/name").is_none_or(|n| n == svc)
                    });
                from_ok && to_ok
            })
    }

    /// The first certificateRef of an HTTPS listener that loads (same namespace, or one a
    /// ReferenceGrant lets the Gateway read).
    fn listener_certificate(
        &self,
        l: &Value,
        gw_ns: &str,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        let refs = l
            .pointer("/tls/certificateRefs")
            .and_then(Value::as_array)?;
        refs.iter().find_map(|r| {
            let kind = s(r, "/kind").unwrap_or("Secret");
            let group = s(r, "/group").unwrap_or("");
            if kind != "Secret" || !(group.is_empty() || group == "core") {
                return None;
            }
            let name = s(r, "/name")?;
            let ns = s(r, "/namespace").unwrap_or(gw_ns);
            if ns != gw_ns && !self.grant_allows_kind("Gateway", gw_ns, "Secret", ns, name) {
                return None;
            }
            let secret = self
                .view
                .tls_secrets
                .iter()
                .find(|sec| ns_of(sec) == ns && name_of(sec) == name)?;
            match super::tls::certified_key(secret) {
                Ok(k) => Some(k),
                Err(e) => {
                    tracing::warn!("Secret {ns}/{name}: {e}");
                    None
                }
            }
        })
    }

    /// Pods named (targetRef) by ready endpoints of the EndpointSlices of Service `ns/name`.
    fn slice_pods(&self, ns: &str, name: &str) -> Vec<&'v str> {
        self.view
            .endpoint_slices
            .iter()
            .filter(|sl| {
                ns_of(sl) == ns
                    && s(sl, "/metadata/labels/kubernetes.io~1service-name") == Some(name)
            })
            .flat_map(|sl| {
                sl.get("endpoints")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
            })
            .filter(|e| e.pointer("/conditions/ready") != Some(&Value::Bool(false)))
            .filter(|e| s(e, "/targetRef/kind").unwrap_or("Pod") == "Pod")
            .filter_map(|e| s(e, "/targetRef/name"))
            .collect()
    }

    /// Resolve one backendRef as seen from a gateway in `gw_ns`.
    fn backend(&mut self, route_ns: &str, r: &Value, gw_ns: &str) -> Arc<Backend> {
        let invalid = |reason: &str, message: String| {
            Arc::new(Backend::Invalid {
                reason: reason.into(),
                message,
            })
        };
        let group = s(r, "/group").unwrap_or("");
        let kind = s(r, "/kind").unwrap_or("Service");
        if !(group.is_empty() || group == "core") || kind != "Service" {
            return invalid(
                "InvalidKind",
                format!("backendRef kind {group}/{kind} is not supported"),
            );
        }
        let name = s(r, "/name").unwrap_or_default();
        let svc_ns = s(r, "/namespace").unwrap_or(route_ns);
        if svc_ns != route_ns && !self.grant_allows(route_ns, svc_ns, name) {
            return invalid("RefNotPermitted", format!("no ReferenceGrant in {svc_ns} allows HTTPRoutes from {route_ns} to Service {name}"));
        }
        let Some(port) = r
            .get("port")
            .and_then(Value::as_u64)
            .and_then(|p| u16::try_from(p).ok())
        else {
            return invalid(
                "UnsupportedValue",
                format!("backendRef to Service {svc_ns}/{name} needs a port"),
            );
        };
        let key = (
            gw_ns.to_string(),
            svc_ns.to_string(),
            name.to_string(),
            port,
        );
        if let Some(b) = self.backends.get(&key) {
            return b.clone();
        }
        let b = Arc::new(self.service_backend(svc_ns, name, port, gw_ns));
        self.backends.insert(key, b.clone());
        b
    }

    fn service_backend(&self, svc_ns: &str, name: &str, port: u16, gw_ns: &str) -> Backend {
        let Some(svc) = self.services.get(&(svc_ns, name)) else {
            return Backend::Invalid {
                reason: "BackendNotFound".into(),
                message: format!("Service {svc_ns}/{name} not found"),
            };
        };
        if s(svc, "/spec/type") == Some("ExternalName") {
            return Backend::Invalid {
                reason: "UnsupportedValue".into(),
                message: format!("Service {svc_ns}/{name} is an ExternalName Service"),
            };
        }
        let svc_port = svc
            .pointer("/spec/ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|p| p.get("port").and_then(Value::as_u64) == Some(u64::from(port)));
        let Some(svc_port) = svc_port else {
            return Backend::Invalid {
                reason: "BackendNotFound".into(),
                message: format!("Service {svc_ns}/{name} has no port {port}"),
            };
        };
        let gw_labels = self.namespace_labels(gw_ns);
        let policies = self
            .policies_by_ns
            .get(svc_ns)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let mut ready = 0;
        let mut reachable = Vec::new();
        let mut unreachable = Vec::new();
        let selector = svc.pointer("/spec/selector");
        let pods = self
            .pods_by_ns
            .get(svc_ns)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let selectorless = selector.is_none_or(|s| s.as_object().is_none_or(|o| o.is_empty()));
        // A Service without a selector has the endpoints someone wrote into its
        // EndpointSlices; the data plane follows their targetRefs to pods.
        let by_slices: Vec<&Value> = if selectorless {
            let named = self.slice_pods(svc_ns, name);
            pods.iter()
                .copied()
                .filter(|p| named.contains(&name_of(p)))
                .collect()
        } else {
            Vec::new()
        };
        let candidates: &[&Value] = if selectorless { &by_slices } else { pods };
        for pod in candidates {
            if !(selectorless || service_selects(selector, labels(pod))) || !pod_ready(pod) {
                continue;
            }
            ready += 1;
            let pod_name = name_of(pod);
            let target = target_port(svc_port, pod);
            if let Err(why) = gateway_may_reach(pod, &target, policies, gw_ns, &gw_labels) {
                unreachable.push(format!("pod {pod_name} isolated by {why}"));
                continue;
            }
            let mut ep = Endpoint {
                pod: pod_name.to_string(),
                delay: Duration::ZERO,
                jitter: Duration::ZERO,
                loss: 0.0,
                faults: String::new(),
            };
            let mut partitioned = None;
            let mut keep = 1.0;
            for f in self.faults.get(&(svc_ns, pod_name)).into_iter().flatten() {
                match &f.action {
                    FaultAction::Partition => partitioned = Some(f.id.as_str()),
                    FaultAction::Delay { latency, jitter } => {
                        ep.delay += *latency;
                        ep.jitter += *jitter;
                    }
                    FaultAction::Loss { percent } => {
                        keep *= 1.0 - (percent / 100.0).clamp(0.0, 1.0)
                    }
                }
                if !ep.faults.is_empty() {
                    ep.faults.push_str(", ");
                }
                ep.faults.push_str(&f.id);
            }
            if let Some(id) = partitioned {
                unreachable.push(format!("pod {pod_name} partitioned by {id}"));
                continue;
            }
            ep.loss = 1.0 - keep;
            reachable.push(ep);
        }
        Backend::Service(ServiceBackend {
            namespace: svc_ns.to_string(),
            name: name.to_string(),
            ready,
            reachable,
            unreachable: unreachable.join("; "),
            next: AtomicUsize::new(0),
        })
    }

    fn rule_targets(&mut self, route: &ParsedRoute<'v>, gw_ns: &str) -> RouteTargets {
        let mut resolved = Condition::ok("ResolvedRefs");
        let default_rules = [serde_json::json!({})];
        let rule_values = match route.obj.pointer("/spec/rules").and_then(Value::as_array) {
            Some(rules) if !rules.is_empty() => rules.as_slice(),
            _ => &default_rules,
        };
        let mut out = Vec::new();
        for rule in rule_values {
            let mut backends = Vec::new();
            for r in rule
                .get("backendRefs")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let weight = r
                    .get("weight")
                    .and_then(Value::as_u64)
                    .unwrap_or(1)
                    .min(u64::from(u32::MAX)) as u32;
                let b = self.backend(route.namespace, r, gw_ns);
                if let Backend::Invalid { reason, message } = b.as_ref() {
                    if resolved.status {
                        resolved = Condition::fail(reason, message.clone());
                    }
                }
                // Invalid filters made the route not Accepted already (parse_route).
                let filters = Filters::parse(r.get("filters")).unwrap_or_default();
                backends.push((weight, b, filters));
            }
            let total_weight = backends.iter().map(|(w, _, _)| u64::from(*w)).sum();
            let filters = Filters::parse(rule.get("filters")).unwrap_or_default();
            let mut mirrors = Vec::new();
            for m in &filters.mirrors {
                let b = self.backend(route.namespace, m, gw_ns);
                if let Backend::Invalid { reason, message } = b.as_ref() {
                    if resolved.status {
                        resolved = Condition::fail(reason, message.clone());
                    }
                }
                mirrors.push(b);
            }
            out.push(Arc::new(RuleTarget {
                route: route.key.clone(),
                backends,
                total_weight,
                filters,
                timeouts: Timeouts::parse(rule.get("timeouts")).unwrap_or_default(),
                mirrors,
            }));
        }
        (out, resolved)
    }

    fn build(mut self) -> RouteTable {
        let view = self.view;
        let routes: Vec<ParsedRoute> = view
            .httproutes
            .iter()
            .map(|r| self.parse_route(r))
            .collect();
        let mut table = RouteTable::default();
        // Per gateway, per listener index: (route index, hostnames).
        let mut attachments: HashMap<String, ListenerAttachments> = HashMap::new();
        let mut targets: HashMap<(usize, String), RouteTargets> = HashMap::new();

        let gateways: HashMap<(&str, &str), &Value> = view
            .gateways
            .iter()
            .map(|g| ((ns_of(g), name_of(g)), g))
            .collect();

        for (ri, route) in routes.iter().enumerate() {
            for pref in route
                .obj
                .pointer("/spec/parentRefs")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if s(pref, "/group").unwrap_or(GATEWAY_GROUP) != GATEWAY_GROUP
                    || s(pref, "/kind").unwrap_or("Gateway") != "Gateway"
                {
                    continue;
                }
                let gw_ns = s(pref, "/namespace").unwrap_or(route.namespace);
                let Some(gw) = gateways.get(&(gw_ns, s(pref, "/name").unwrap_or_default())) else {
                    continue;
                };
                let gw_key = format!("{gw_ns}/{}", name_of(gw));
                let accepted = match &route.invalid {
                    Some(e) => Condition::fail("UnsupportedValue", e.clone()),
                    None => {
                        self.attach(route, ri, pref, gw, attachments.entry(gw_key).or_default())
                    }
                };
                let (_, resolved) = targets
                    .entry((ri, gw_ns.to_string()))
                    .or_insert_with(|| self.rule_targets(route, gw_ns))
                    .clone();
                table.route_statuses.push(RouteParentStatus {
                    route_namespace: route.namespace.to_string(),
                    route_name: name_of(route.obj).to_string(),
                    parent_ref: pref.clone(),
                    accepted,
                    resolved_refs: resolved,
                });
            }
        }

        for gw in &view.gateways {
            let (gw_ns, gw_name) = (ns_of(gw), name_of(gw));
            let key = format!("{gw_ns}/{gw_name}");
            let attached = attachments.remove(&key).unwrap_or_default();
            let mut listeners = Vec::new();
            let mut ports: HashMap<u16, Vec<ListenerTable>> = HashMap::new();
            for (li, l) in gw
                .pointer("/spec/listeners")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .enumerate()
            {
                let protocol = s(l, "/protocol").unwrap_or("HTTP").to_string();
                let port = l
                    .get("port")
                    .and_then(Value::as_u64)
                    .and_then(|p| u16::try_from(p).ok())
                    .unwrap_or(0);
                let cert = if protocol == "HTTPS" {
                    self.listener_certificate(l, gw_ns)
                } else {
                    None
                };
                let served = (protocol == "HTTP" || cert.is_some()) && port != 0;
                let here = attached.get(&li).map(Vec::as_slice).unwrap_or_default();
                let mut seen_routes: Vec<usize> = here.iter().map(|(ri, _)| *ri).collect();
                seen_routes.dedup();
                listeners.push(ListenerInfo {
                    name: s(l, "/name").unwrap_or_default().to_string(),
                    port,
                    protocol,
                    served,
                    attached_routes: seen_routes.len() as u32,
                });
                if !served {
                    continue;
                }
                let mut by_host: Vec<VHost> = Vec::new();
                let mut entries_meta: Vec<(HostPattern, (usize, usize, usize), Entry)> = Vec::new();
                for (ri, hosts) in here {
                    let route = &routes[*ri];
                    // Built when the route attached through this gateway's namespace.
                    let Some((rule_targets, _)) = targets.get(&(*ri, gw_ns.to_string())) else {
                        continue;
                    };
                    for host in hosts {
                        for (rule_i, (matches, target)) in
                            route.rules.iter().zip(rule_targets).enumerate()
                        {
                            for (mi, m) in matches.iter().enumerate() {
                                entries_meta.push((
                                    host.clone(),
                                    (*ri, rule_i, mi),
                                    Entry {
                                        matcher: m.clone(),
                                        target: target.clone(),
                                    },
                                ));
                            }
                        }
                    }
                }
                entries_meta.sort_by(|(_, (ra, rule_a, ma), ea), (_, (rb, rule_b, mb), eb)| {
                    let (a, b) = (&routes[*ra], &routes[*rb]);
                    ea.matcher
                        .rank()
                        .cmp(&eb.matcher.rank())
                        .then_with(|| {
                            heatcheck_gateway::route_precedence::tie_break(
                                a.created, &a.key, b.created, &b.key,
                            )
                        })
                        .then_with(|| (rule_a, ma).cmp(&(rule_b, mb)))
                });
                for (host, _, entry) in entries_meta {
                    match by_host.iter_mut().find(|v| v.host == host) {
                        Some(v) => v.entries.push(entry),
                        None => by_host.push(VHost {
                            host,
                            entries: vec![entry],
                        }),
                    }
                }
                by_host.sort_by(|a, b| a.host.specificity_cmp(&b.host));
                let hostname = s(l, "/hostname")
                    .map(HostPattern::parse)
                    .unwrap_or(HostPattern::Any);
                ports.entry(port).or_default().push(ListenerTable {
                    name: s(l, "/name").unwrap_or_default().to_string(),
                    hostname,
                    vhosts: by_host,
                    cert,
                });
            }
            for ls in ports.values_mut() {
                ls.sort_by(|a, b| a.hostname.specificity_cmp(&b.hostname));
            }
            table.gateways.insert(
                key,
                GatewayTable {
                    namespace: gw_ns.to_string(),
                    name: gw_name.to_string(),
                    uid: s(gw, "/metadata/uid").map(str::to_string),
                    listeners,
                    ports,
                },
            );
        }
        table
    }

    /// Attach a route through one parentRef; record attachments and return the Accepted condition.
    fn attach(
        &self,
        route: &ParsedRoute<'v>,
        ri: usize,
        pref: &Value,
        gw: &Value,
        out: &mut ListenerAttachments,
    ) -> Condition {
        let section = s(pref, "/sectionName");
        let port = pref.get("port").and_then(Value::as_u64);
        let listeners = gw
            .pointer("/spec/listeners")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let candidates: Vec<(usize, &Value)> = listeners
            .iter()
            .enumerate()
            .filter(|(_, l)| section.is_none_or(|sn| s(l, "/name") == Some(sn)))
            .filter(|(_, l)| port.is_none_or(|p| l.get("port").and_then(Value::as_u64) == Some(p)))
            .collect();
        if candidates.is_empty() {
            return Condition::fail(
                "NoMatchingParent",
                "no listener matches the parentRef sectionName/port",
            );
        }
        let gw_ns = ns_of(gw);
        let allowed: Vec<(usize, &Value)> = candidates
            .into_iter()
            .filter(|(_, l)| self.listener_allows(l, gw_ns, route.namespace))
            .collect();
        if allowed.is_empty() {
            return Condition::fail(
                "NotAllowedByListeners",
                format!(
                    "no listener allows HTTPRoutes from namespace {}",
                    route.namespace
                ),
            );
        }
        let mut any = false;
        for (li, l) in allowed {
            let lh = s(l, "/hostname")
                .map(HostPattern::parse)
                .unwrap_or(HostPattern::Any);
            if let Some(hosts) = intersect(&lh, &route.hostnames) {
                any = true;
                let list = out.entry(li).or_default();
                match list.iter_mut().find(|(r, _)| *r == ri) {
                    Some((_, existing)) => {
                        for h in hosts {
                            if !existing.contains(&h) {
                                existing.push(h);
                            }
                        }
                    }
                    None => list.push((ri, hosts)),
                }
            }
        }
        if any {
            Condition::ok("Accepted")
        } else {
            Condition::fail(
                "NoMatchingListenerHostname",
                "no listener hostname intersects the route hostnames",
            )
        }
    }

    fn listener_allows(&self, l: &Value, gw_ns: &str, route_ns: &str) -> bool {
        let protocol = s(l, "/protocol").unwrap_or("HTTP");
        let kinds = l.pointer("/allowedRoutes/kinds").and_then(Value::as_array);
        let kind_ok = match kinds {
            Some(k) if !k.is_empty() => k.iter().any(|k| {
                s(k, "/kind") == Some("HTTPRoute")
                    && s(k, "/group").unwrap_or(GATEWAY_GROUP) == GATEWAY_GROUP
            }),
            _ => protocol == "HTTP" || protocol == "HTTPS",
        };
        if !kind_ok {
            return false;
        }
        match s(l, "/allowedRoutes/namespaces/from").unwrap_or("Same") {
            "All" => true,
            "Same" => gw_ns == route_ns,
            "Selector" => {
                let sel = l
                    .pointer("/allowedRoutes/namespaces/selector")
                    .unwrap_or(&Value::Null);
                !sel.is_null() && selector_matches(sel, &self.namespace_labels(route_ns))
            }
            _ => false,
        }
    }
}

fn pod_ready(pod: &Value) -> bool {
    if pod
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|v| !v.is_null())
    {
        return false;
    }
    pod.pointer("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|c| s(c, "/type") == Some("Ready") && s(c, "/status") == Some("True"))
}

/// The pod port a Service port leads to: `targetPort` (number or name; defaults to `port`),
/// with named ports looked up in the pod's containers.
fn target_port(svc_port: &Value, pod: &Value) -> TargetPort {
    let container_ports = || {
        pod.pointer("/spec/containers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .flat_map(|c| {
                c.get("ports")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
            })
    };
    match svc_port.get("targetPort").or_else(|| svc_port.get("port")) {
        Some(Value::String(name)) => TargetPort {
            number: container_ports()
                .find(|p| s(p, "/name") == Some(name.as_str()))
                .and_then(|p| p.get("containerPort").and_then(Value::as_u64))
                .and_then(|n| u16::try_from(n).ok()),
            name: Some(name.clone()),
        },
        Some(v) => {
            let number = v.as_u64().and_then(|n| u16::try_from(n).ok());
            TargetPort {
                number,
                name: container_ports()
                    .find(|p| {
                        number.is_some()
                            && p.get("containerPort").and_then(Value::as_u64)
                                == number.map(u64::from)
                    })
                    .and_then(|p| s(p, "/name"))
                    .map(str::to_string),
            }
        }
        None => TargetPort::default(),
    }
}
