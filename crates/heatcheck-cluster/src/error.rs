use thiserror::Error;

/// What went wrong talking to the cluster, phrased for an SRE.
#[derive(Debug, Error)]
pub enum ClusterError {
    #[error("cannot load kubeconfig: {0}")]
    Config(String),
    #[error("cluster unreachable at {server}: {reason}")]
    Unreachable { server: String, reason: String },
    #[error("forbidden: cannot {verb} {resource}{} ({message})", .namespace.as_ref().map(|n| format!(" in namespace {n}")).unwrap_or_default())]
    Forbidden {
        verb: String,
        resource: String,
        namespace: Option<String>,
        message: String,
    },
    #[error("{kind} is not served by this cluster{}", hint_suffix(.kind))]
    NotServed { kind: String },
    #[error("{kind} {name} not found{}", .namespace.as_ref().map(|n| format!(" in namespace {n}")).unwrap_or_default())]
    NotFound {
        kind: String,
        name: String,
        namespace: Option<String>,
    },
    #[error("{verb} {kind} {name}: {message} ({reason}, {code})")]
    Api {
        verb: String,
        kind: String,
        name: String,
        code: u16,
        reason: String,
        message: String,
    },
    #[error("{0}")]
    Invalid(String),
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout {
        what: String,
        after: std::time::Duration,
    },
}

fn hint_suffix(kind: &str) -> String {
    let hint = match kind {
        "HTTPRoute" | "Gateway" | "GatewayClass" | "GRPCRoute" | "ReferenceGrant" => {
            ": install the Gateway API CRDs (https://gateway-api.sigs.k8s.io/guides/#installing-gateway-api)"
        }
        "NetworkChaos" | "PodChaos" => ": install Chaos Mesh (https://chaos-mesh.org/docs/quick-start/)",
        "ChaosEngine" => ": install Litmus (https://docs.litmuschaos.io/)",
        _ => ": check the apiVersion and kind, or install the CRD that defines it",
    };
    hint.to_string()
}

impl ClusterError {
    /// True when the failure is about reaching the cluster at all (exit code 3).
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            ClusterError::Unreachable { .. } | ClusterError::Config(_)
        )
    }

    pub fn code(&self) -> Option<u16> {
        match self {
            ClusterError::Api { code, .. } => Some(*code),
            ClusterError::NotFound { .. } => Some(404),
            ClusterError::Forbidden { .. } => Some(403),
            _ => None,
        }
    }
}
