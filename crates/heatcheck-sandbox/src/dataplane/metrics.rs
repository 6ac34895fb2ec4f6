//! Prometheus metrics of the data plane, served at `/metrics` on a port of their own as a
//! real data plane serves them (Envoy's admin port, Istio's 15020/15090), without auth.
//!
//! Names and labels follow Istio's standard metrics (`istio_requests_total`,
//! `istio_request_duration_milliseconds` with `response_code`, `destination_service_name`,
//! `destination_service_namespace`) plus the Gateway API objects a gateway implementation
//! knows (gateway, listener, route), in Prometheus base units (seconds):
//!
//! * `sandbox_gateway_requests_total` (counter)
//! * `sandbox_gateway_request_duration_seconds` (histogram, buckets 5 ms .. 10 s, so injected
//!   latency up to 10 s lands in a bucket of its own)
//!
//! both labelled `gateway_namespace`, `gateway_name`, `listener`, `route_namespace`,
//! `route_name`, `destination_service_namespace`, `destination_service_name`,
//! `response_code` (`unknown` where there is none, as Istio writes it: no matching route,
//! or the gateway answered before picking a Service), and
//!
//! * `sandbox_active_faults{namespace, kind, source}` (gauge): network faults in effect
//!   (`kind` delay | loss | partition; `source` NetworkChaos | ChaosEngine).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use super::routing::{Decision, RouteTable};
use super::view::{ActiveFault, FaultAction};

/// Upper bounds in seconds: fine below 100 ms (healthy answers), then the latencies chaos
/// suites inject (250 ms .. 10 s).
const DURATION_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 7.5, 10.0,
];

const UNKNOWN: &str = "unknown";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RequestLabels {
    pub gateway_namespace: String,
    pub gateway_name: String,
    pub listener: String,
    pub route_namespace: String,
    pub route_name: String,
    pub destination_service_namespace: String,
    pub destination_service_name: String,
    pub response_code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FaultLabels {
    namespace: String,
    kind: String,
    source: String,
}

struct Inner {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    durations: Family<RequestLabels, Histogram, fn() -> Histogram>,
    faults: Family<FaultLabels, Gauge>,
}

/// The data plane's metrics. Cheap to clone.
#[derive(Clone)]
pub(crate) struct GatewayMetrics {
    inner: Arc<Inner>,
}

impl Default for GatewayMetrics {
    fn default() -> Self {
        Self::new()
    }
}

fn split(key: &str) -> (String, String) {
    match key.split_once('/') {
        Some((ns, name)) => (ns.to_string(), name.to_string()),
        None => (UNKNOWN.to_string(), key.to_string()),
    }
}

/// The metadata lines of each family, in registration order, read off a
/// registry where every family has a sample (the encoder's own format).
fn family_metadata() -> &'static [String] {
    static META: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    META.get_or_init(|| {
        let m = GatewayMetrics::new();
        let labels = RequestLabels {
            gateway_namespace: String::new(),
            gateway_name: String::new(),
            listener: String::new(),
            route_namespace: String::new(),
            route_name: String::new(),
            destination_service_namespace: String::new(),
            destination_service_name: String::new(),
            response_code: String::new(),
        };
        m.inner.requests.get_or_create(&labels).inc();
        m.inner.durations.get_or_create(&labels).observe(0.0);
        m.inner
            .faults
            .get_or_create(&FaultLabels {
                namespace: String::new(),
                kind: String::new(),
                source: String::new(),
            })
            .inc();
        let mut text = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut text, &m.inner.registry);
        let mut families: Vec<String> = Vec::new();
        for line in text.lines().filter(|l| l.starts_with('#') && *l != "# EOF") {
            if line.starts_with("# HELP ") {
                families.push(String::new());
            }
            if let Some(f) = families.last_mut() {
                f.push_str(line);
                f.push('\n');
            }
        }
        families
    })
}

impl GatewayMetrics {
    pub(crate) fn new() -> Self {
        let mut registry = Registry::with_prefix("sandbox");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "gateway_requests",
            "Requests the gateway answered, by gateway, listener, route, destination Service and response code",
            requests.clone(),
        );
        let durations = Family::<RequestLabels, Histogram>::new_with_constructor(
            (|| Histogram::new(DURATION_BUCKETS)) as fn() -> Histogram,
        );
        registry.register_with_unit(
            "gateway_request_duration",
            "Time from receiving a request to answering it, injected latency included",
            Unit::Seconds,
            durations.clone(),
        );
        let faults = Family::<FaultLabels, Gauge>::default();
        registry.register(
            "active_faults",
            "Network faults in effect, by namespace of the affected pods, kind and source object",
            faults.clone(),
        );
        GatewayMetrics {
            inner: Arc::new(Inner {
                registry,
                requests,
                durations,
                faults,
            }),
        }
    }

    /// The labels of one request, from the routing decision (before it is consumed).
    pub(crate) fn labels(
        &self,
        table: &RouteTable,
        gateway: &str,
        port: u16,
        host: &str,
        decision: &Decision<'_>,
    ) -> RequestLabels {
        let (gateway_namespace, gateway_name) = split(gateway);
        let listener = table
            .listener_name(gateway, port, host)
            .unwrap_or(UNKNOWN)
            .to_string();
        let (route, service) = match decision {
            Decision::NotFound => (None, None),
            Decision::Error { route, .. } | Decision::Redirect { route, .. } => {
                (Some(*route), None)
            }
            Decision::Forward {
                route,
                namespace,
                service,
                ..
            } => (Some(*route), Some((*namespace, *service))),
        };
        let (route_namespace, route_name) = route
            .filter(|r| !r.is_empty())
            .map(split)
            .unwrap_or_else(|| (UNKNOWN.into(), UNKNOWN.into()));
        let (destination_service_namespace, destination_service_name) = service
            .map(|(ns, s)| (ns.to_string(), s.to_string()))
            .unwrap_or_else(|| (UNKNOWN.into(), UNKNOWN.into()));
        RequestLabels {
            gateway_namespace,
            gateway_name,
            listener,
            route_namespace,
            route_name,
            destination_service_namespace,
            destination_service_name,
            response_code: String::new(),
        }
    }

    /// Count one answered request.
    pub(crate) fn observe(&self, mut labels: RequestLabels, status: u16, took: Duration) {
        labels.response_code = status.to_string();
        self.inner.requests.get_or_create(&labels).inc();
        self.inner
            .durations
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
    }

    /// Publish the faults in effect (replaces the previous set).
    pub(crate) fn set_faults(&self, faults: &[ActiveFault]) {
        self.inner.faults.clear();
        for f in faults {
            let kind = match f.action {
                FaultAction::Delay { .. } => "delay",
                FaultAction::Loss { .. } => "loss",
                FaultAction::Partition => "partition",
            };
            // The chaos controllers write ids as "networkchaos/ns/name" or
            // "chaosengine/ns/name/experiment".
            let source = match f.id.split('/').next().unwrap_or_default() {
                "networkchaos" => "NetworkChaos",
                "chaosengine" => "ChaosEngine",
                _ => UNKNOWN,
            };
            self.inner
                .faults
                .get_or_create(&FaultLabels {
                    namespace: f.namespace.clone(),
                    kind: kind.into(),
                    source: source.into(),
                })
                .inc();
        }
    }

    /// The OpenMetrics text exposition. Every family is listed (HELP,
    /// TYPE, UNIT) from the start, as a real gateway's metrics port does,
    /// so a scrape config can be checked before any traffic: the encoder
    /// leaves out families without samples, so their metadata is added.
    pub(crate) fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.inner.registry);
        let body = out.strip_suffix("# EOF\n").unwrap_or(&out).to_string();
        let mut text = body.clone();
        for family in family_metadata() {
            let type_line = family
                .lines()
                .find(|l| l.starts_with("# TYPE "))
                .unwrap_or_default();
            if !body.lines().any(|l| l == type_line) {
                text.push_str(family);
            }
        }
        text.push_str("# EOF\n");
        text
    }

    /// Serve `/metrics` on `addr` until the task is aborted.
    pub(crate) async fn serve(
        &self,
        addr: SocketAddr,
    ) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
        use axum::http::header::CONTENT_TYPE;
        use axum::routing::get;
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let bound = listener.local_addr()?;
        let metrics = self.clone();
        let app = axum::Router::new().route(
            "/metrics",
            get(move || {
                let metrics = metrics.clone();
                async move {
                    (
                        [(
                            CONTENT_TYPE,
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )],
                        metrics.encode(),
                    )
                }
            }),
        );
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok((bound, task))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataplane::view::Direction;

    fn fault(id: &str, action: FaultAction) -> ActiveFault {
        ActiveFault {
            id: id.into(),
            namespace: "shop".into(),
            pods: ["web-1".to_string()].into(),
            action,
            direction: Direction::To,
        }
    }

    #[test]
    fn active_faults_are_counted_per_kind_and_source_and_replaced() {
        let m = GatewayMetrics::new();
        m.set_faults(&[
            fault("networkchaos/shop/a", FaultAction::Loss { percent: 100.0 }),
            fault("networkchaos/shop/b", FaultAction::Loss { percent: 50.0 }),
            fault(
                "chaosengine/shop/e/pod-network-partition",
                FaultAction::Partition,
            ),
        ]);
        let text = m.encode();
        assert!(
            text.contains(
                r#"sandbox_active_faults{namespace="shop",kind="loss",source="NetworkChaos"} 2"#
            ),
            "{text}"
        );
        assert!(
            text.contains(
                r#"sandbox_active_faults{namespace="shop",kind="partition",source="ChaosEngine"} 1"#
            ),
            "{text}"
        );
        m.set_faults(&[]);
        assert!(!m.encode().contains("sandbox_active_faults{"));
    }
}

#[cfg(test)]
mod families_tests {
    #[test]
    fn every_family_is_listed_before_the_first_request() {
        let text = super::GatewayMetrics::new().encode();
        for name in [
            "sandbox_gateway_requests counter",
            "sandbox_gateway_request_duration_seconds histogram",
            "sandbox_active_faults gauge",
        ] {
            assert!(
                text.contains(&format!("# TYPE {name}\n")),
                "{name}:\n{text}"
            );
        }
        assert!(text.contains("# UNIT sandbox_gateway_request_duration_seconds seconds\n"));
        assert!(text.ends_with("# EOF\n"), "{text}");
        // No sample is made up.
        assert!(!text.lines().any(|l| !l.starts_with('#')), "{text}");
    }
}
