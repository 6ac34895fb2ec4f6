//! What explore read of the namespace: plain objects as the API returned
//! them (Secrets are never read), with the lookups the catalog needs.

use serde_json::Value;

/// The kinds explore reads (apiVersion, kind). Secrets are not among them.
pub const KINDS: &[(&str, &str)] = &[
    ("gateway.networking.k8s.io/v1", "Gateway"),
    ("gateway.networking.k8s.io/v1", "HTTPRoute"),
    ("gateway.networking.k8s.io/v1beta1", "ReferenceGrant"),
    ("v1", "Service"),
    ("apps/v1", "Deployment"),
    ("policy/v1", "PodDisruptionBudget"),
    ("networking.k8s.io/v1", "NetworkPolicy"),
];

#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// The suite's target namespace.
    pub namespace: String,
    pub objects: Vec<Value>,
}

pub fn name(v: &Value) -> &str {
    v.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

pub fn namespace_of<'a>(v: &'a Value, default: &'a str) -> &'a str {
    v.pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or(default)
}

impl Snapshot {
    pub fn of_kind<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
        self.objects.iter().filter(move |o| o["kind"] == kind)
    }

    /// Objects of `kind` in the target namespace.
    pub fn local<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
        let ns = self.namespace.as_str();
        self.of_kind(kind)
            .filter(move |o| namespace_of(o, ns) == ns)
    }

    pub fn find<'a>(&'a self, kind: &'a str, ns: &str, name_: &str) -> Option<&'a Value> {
        self.of_kind(kind)
            .find(|o| name(o) == name_ && namespace_of(o, &self.namespace) == ns)
    }

    /// The Deployments whose pods a Service selects.
    pub fn deployments_of_service(&self, ns: &str, service: &str) -> Vec<&Value> {
        let Some(svc) = self.find("Service", ns, service) else {
            return Vec::new();
        };
        let Some(sel) = svc.pointer("/spec/selector").and_then(Value::as_object) else {
            return Vec::new();
        };
        if sel.is_empty() {
            return Vec::new();
        }
        self.of_kind("Deployment")
            .filter(|d| namespace_of(d, &self.namespace) == ns)
            .filter(|d| {
                let labels = d.pointer("/spec/template/metadata/labels");
                sel.iter()
                    .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
            })
            .collect()
    }

    /// A Deployment's pod label selector as `k=v,k2=v2` (matchLabels only).
    pub fn pod_selector(deployment: &Value) -> Option<String> {
        let labels = deployment
            .pointer("/spec/selector/matchLabels")
            .and_then(Value::as_object)?;
        let parts: Vec<String> = labels
            .iter()
            .filter_map(|(k, v)| v.as_str().map(|v| format!("{k}={v}")))
            .collect();
        (!parts.is_empty()).then(|| parts.join(","))
    }

    pub fn replicas(deployment: &Value) -> u64 {
        deployment
            .pointer("/spec/replicas")
            .and_then(Value::as_u64)
            .unwrap_or(1)
    }

    /// Whether a PodDisruptionBudget covers the Deployment's pods.
    pub fn has_pdb(&self, deployment: &Value) -> bool {
        let ns = namespace_of(deployment, &self.namespace);
        let labels = deployment.pointer("/spec/template/metadata/labels");
        self.of_kind("PodDisruptionBudget")
            .filter(|p| namespace_of(p, &self.namespace) == ns)
            .any(|p| {
                p.pointer("/spec/selector/matchLabels")
                    .and_then(Value::as_object)
                    .is_some_and(|m| {
                        !m.is_empty()
                            && m.iter()
                                .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
                    })
            })
    }
}

/// An object as it can be applied again: no status, no server-set metadata.
pub fn reapplicable(v: &Value) -> Value {
    let mut o = v.clone();
    if let Some(m) = o.as_object_mut() {
        m.remove("status");
    }
    if let Some(meta) = o.get_mut("metadata").and_then(Value::as_object_mut) {
        for k in [
            "resourceVersion",
            "uid",
            "creationTimestamp",
            "generation",
            "managedFields",
            "deletionTimestamp",
            "ownerReferences",
        ] {
            meta.remove(k);
        }
    }
    o
}
