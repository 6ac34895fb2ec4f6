//! Backends of the routing table: Services, their ready endpoints
//! (EndpointSlices, pod readiness) and target ports.

use super::*;

impl<'v> Builder<'v> {
    /// Pods named (targetRef) by ready endpoints of the EndpointSlices of Service `ns/name`.
    pub(super) fn slice_pods(&self, ns: &str, name: &str) -> Vec<&'v str> {
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
    pub(super) fn backend(&mut self, route_ns: &str, r: &Value, gw_ns: &str) -> Arc<Backend> {
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

    pub(super) fn service_backend(
        &self,
        svc_ns: &str,
        name: &str,
        port: u16,
        gw_ns: &str,
    ) -> Backend {
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
}

pub(super) fn pod_ready(pod: &Value) -> bool {
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
pub(super) fn target_port(svc_port: &Value, pod: &Value) -> TargetPort {
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
