//! Which kinds the guard refuses to mutate, and what it knows about scope
//! before discovery has run.

/// Denied unless listed in `policy.allowedKinds` (Namespace: always, for
/// user steps; see [`is_namespace`]).
pub(crate) const DEFAULT_DENIED_KINDS: &[&str] = &[
    "Namespace",
    "CustomResourceDefinition",
    "Node",
    "ClusterRole",
    "ClusterRoleBinding",
    "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration",
    "PersistentVolume",
    "StorageClass",
    "PriorityClass",
];

/// Built-in cluster-scoped kinds, so a static check (no cluster) already
/// refuses them; discovery adds every other one (CRDs included).
pub(crate) const WELL_KNOWN_CLUSTER_SCOPED: &[&str] = &[
    "Namespace",
    "Node",
    "PersistentVolume",
    "StorageClass",
    "PriorityClass",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
    "APIService",
    "CertificateSigningRequest",
    "CSIDriver",
    "CSINode",
    "VolumeAttachment",
    "RuntimeClass",
    "IngressClass",
    "GatewayClass",
    "FlowSchema",
    "PriorityLevelConfiguration",
    "ClusterIssuer",
];

/// Kind names compare case-insensitively (`namespace` == `Namespace`).
pub fn key(kind: &str) -> String {
    kind.to_ascii_lowercase()
}

pub(crate) fn is_namespace(kind: &str) -> bool {
    kind.eq_ignore_ascii_case("Namespace")
}

pub fn is_pod(kind: &str) -> bool {
    kind.eq_ignore_ascii_case("Pod")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_default_denied_kind_is_known_cluster_scoped() {
        for k in DEFAULT_DENIED_KINDS {
            assert!(WELL_KNOWN_CLUSTER_SCOPED.contains(k), "{k}");
        }
        assert_eq!(key("HTTPRoute"), "httproute");
        assert!(is_namespace("namespace") && !is_namespace("Namespaces"));
    }
}
