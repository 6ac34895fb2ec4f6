//! The resource types the sandbox serves: the built-in kinds plus any kind a
//! CustomResourceDefinition adds at run time.

use serde_json::Value;

/// Identifies a resource independent of its version: `(group, plural)`.
/// The sandbox serves each resource at exactly one version.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResKey {
    pub(crate) group: String,
    pub(crate) plural: String,
}

impl ResKey {
    pub fn new(group: &str, plural: &str) -> Self {
        ResKey {
            group: group.to_string(),
            plural: plural.to_string(),
        }
    }
}

impl std::fmt::Display for ResKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.group.is_empty() {
            write!(f, "{}", self.plural)
        } else {
            write!(f, "{}.{}", self.plural, self.group)
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ResourceType {
    pub(crate) group: String,
    pub version: String,
    pub kind: String,
    pub(crate) plural: String,
    pub singular: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    /// Subresources served: "status", "scale", "token".
    pub subresources: Vec<String>,
    pub categories: Vec<String>,
    /// Set for kinds added by a CRD (the CRD's name).
    pub crd: Option<String>,
    /// Reviews (access reviews, TokenReview): only `create`, nothing stored.
    pub create_only: bool,
}

impl ResourceType {
    pub(crate) fn key(&self) -> ResKey {
        ResKey::new(&self.group, &self.plural)
    }

    pub(crate) fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    pub(crate) fn has_status(&self) -> bool {
        self.subresources.iter().any(|s| s == "status")
    }

    /// `serviceaccounts/token`: the TokenRequest subresource.
    pub(crate) fn has_token(&self) -> bool {
        self.subresources.iter().any(|s| s == "token")
    }

    /// `pods/eviction`: a delete that honours PodDisruptionBudgets.
    pub(crate) fn has_eviction(&self) -> bool {
        self.subresources.iter().any(|s| s == "eviction")
    }

    pub(crate) fn has_scale(&self) -> bool {
        self.subresources.iter().any(|s| s == "scale")
    }

    /// Whether the server keeps `metadata.generation`: kube-apiserver's
    /// strategies set it for kinds with a desired state (workloads, Jobs,
    /// PDBs, HPAs, Ingresses, NetworkPolicies, EndpointSlices, Pods) and
    /// every custom resource has it; ConfigMaps, Secrets, Services,
    /// Namespaces, Events, PVCs, quotas and Leases carry none.
    pub(crate) fn tracks_generation(&self) -> bool {
        self.crd.is_some()
            || matches!(
                (self.group.as_str(), self.plural.as_str()),
                ("", "pods")
                    | ("apps", _)
                    | ("batch", _)
                    | ("autoscaling", _)
                    | ("policy", "poddisruptionbudgets")
                    | ("networking.k8s.io", _)
                    | ("discovery.k8s.io", "endpointslices")
                    | ("apiextensions.k8s.io", _)
                    // CRDs on a real cluster.
                    | ("gateway.networking.k8s.io", _)
                    | ("chaos-mesh.org", _)
                    | ("litmuschaos.io", _)
            )
    }

    /// Verbs as discovery reports them.
    pub(crate) fn verbs(&self) -> Vec<&'static str> {
        if self.create_only {
            return vec!["create"];
        }
        vec![
            "create",
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "update",
            "watch",
        ]
    }
}

#[allow(clippy::too_many_arguments)]
fn rt(
    group: &str,
    version: &str,
    kind: &str,
    plural: &str,
    namespaced: bool,
    short: &[&str],
    sub: &[&str],
    categories: &[&str],
) -> ResourceType {
    ResourceType {
        group: group.into(),
        version: version.into(),
        kind: kind.into(),
        plural: plural.into(),
        singular: kind.to_ascii_lowercase(),
        namespaced,
        short_names: short.iter().map(|s| s.to_string()).collect(),
        subresources: sub.iter().map(|s| s.to_string()).collect(),
        categories: categories.iter().map(|s| s.to_string()).collect(),
        crd: None,
        create_only: false,
    }
}

/// A review kind: POST only, answered, never stored.
fn review(group: &str, kind: &str, plural: &str, namespaced: bool) -> ResourceType {
    ResourceType {
        create_only: true,
        ..rt(group, "v1", kind, plural, namespaced, &[], &[], &[])
    }
}

/// The kinds every sandbox serves from the start.
pub(crate) fn builtin_types() -> Vec<ResourceType> {
    const GW: &str = "gateway.networking.k8s.io";
    const RBAC: &str = "rbac.authorization.k8s.io";
    const AUTHN: &str = "authentication.k8s.io";
    const AUTHZ: &str = "authorization.k8s.io";
    let all = &["all"];
    vec![
        rt(
            "",
            "v1",
            "Namespace",
            "namespaces",
            false,
            &["ns"],
            &["status"],
            &[],
        ),
        rt(
            "",
            "v1",
            "Pod",
            "pods",
            true,
            &["po"],
            &["status", "eviction"],
            all,
        ),
        rt(
            "",
            "v1",
            "Service",
            "services",
            true,
            &["svc"],
            &["status"],
            all,
        ),
        rt("", "v1", "Endpoints", "endpoints", true, &["ep"], &[], &[]),
        rt("", "v1", "ConfigMap", "configmaps", true, &["cm"], &[], &[]),
        rt("", "v1", "Secret", "secrets", true, &[], &[], &[]),
        rt(
            "",
            "v1",
            "ServiceAccount",
            "serviceaccounts",
            true,
            &["sa"],
            &["token"],
            &[],
        ),
        rt("", "v1", "Event", "events", true, &["ev"], &[], &[]),
        rt(
            "",
            "v1",
            "PersistentVolumeClaim",
            "persistentvolumeclaims",
            true,
            &["pvc"],
            &["status"],
            &[],
        ),
        rt(
            "",
            "v1",
            "ResourceQuota",
            "resourcequotas",
            true,
            &["quota"],
            &["status"],
            &[],
        ),
        rt(
            "",
            "v1",
            "LimitRange",
            "limitranges",
            true,
            &["limits"],
            &[],
            &[],
        ),
        rt(
            "apps",
            "v1",
            "Deployment",
            "deployments",
            true,
            &["deploy"],
            &["status", "scale"],
            all,
        ),
        rt(
            "apps",
            "v1",
            "ReplicaSet",
            "replicasets",
            true,
            &["rs"],
            &["status", "scale"],
            all,
        ),
        rt(
            "apps",
            "v1",
            "StatefulSet",
            "statefulsets",
            true,
            &["sts"],
            &["status", "scale"],
            all,
        ),
        rt(
            "apps",
            "v1",
            "DaemonSet",
            "daemonsets",
            true,
            &["ds"],
            &["status"],
            all,
        ),
        rt("batch", "v1", "Job", "jobs", true, &[], &["status"], all),
        rt(
            "batch",
            "v1",
            "CronJob",
            "cronjobs",
            true,
            &["cj"],
            &["status"],
            all,
        ),
        rt(
            "autoscaling",
            "v2",
            "HorizontalPodAutoscaler",
            "horizontalpodautoscalers",
            true,
            &["hpa"],
            &["status"],
            all,
        ),
        rt(
            "policy",
            "v1",
            "PodDisruptionBudget",
            "poddisruptionbudgets",
            true,
            &["pdb"],
            &["status"],
            &[],
        ),
        rt(
            "coordination.k8s.io",
            "v1",
            "Lease",
            "leases",
            true,
            &[],
            &[],
            &[],
        ),
        rt(
            "discovery.k8s.io",
            "v1",
            "EndpointSlice",
            "endpointslices",
            true,
            &[],
            &[],
            &[],
        ),
        rt(
            "networking.k8s.io",
            "v1",
            "NetworkPolicy",
            "networkpolicies",
            true,
            &["netpol"],
            &[],
            &[],
        ),
        rt(
            "networking.k8s.io",
            "v1",
            "Ingress",
            "ingresses",
            true,
            &["ing"],
            &["status"],
            &[],
        ),
        rt(
            "networking.k8s.io",
            "v1",
            "IngressClass",
            "ingressclasses",
            false,
            &[],
            &[],
            &[],
        ),
        rt(
            GW,
            "v1",
            "GatewayClass",
            "gatewayclasses",
            false,
            &["gc"],
            &["status"],
            &["gateway-api"],
        ),
        rt(
            GW,
            "v1",
            "Gateway",
            "gateways",
            true,
            &["gtw"],
            &["status"],
            &["gateway-api"],
        ),
        rt(
            GW,
            "v1",
            "HTTPRoute",
            "httproutes",
            true,
            &[],
            &["status"],
            &["gateway-api"],
        ),
        // The rest of the standard channel, as its CRDs define them.
        rt(
            GW,
            "v1",
            "GRPCRoute",
            "grpcroutes",
            true,
            &[],
            &["status"],
            &["gateway-api"],
        ),
        rt(
            GW,
            "v1",
            "BackendTLSPolicy",
            "backendtlspolicies",
            true,
            &["btlspolicy"],
            &["status"],
            &["gateway-api"],
        ),
        rt(
            GW,
            "v1",
            "ListenerSet",
            "listenersets",
            true,
            &["lset"],
            &["status"],
            &["gateway-api"],
        ),
        rt(
            GW,
            "v1",
            "TCPRoute",
            "tcproutes",
            true,
            &[],
            &["status"],
            &["gateway-api"],
        ),
        rt(
            GW,
            "v1",
            "TLSRoute",
            "tlsroutes",
            true,
            &[],
            &["status"],
            &["gateway-api"],
        ),
        rt(
            GW,
            "v1",
            "UDPRoute",
            "udproutes",
            true,
            &[],
            &["status"],
            &["gateway-api"],
        ),
        // Served at v1 and v1beta1 (same schema, stored once; see store::check_type_meta).
        rt(
            GW,
            "v1",
            "ReferenceGrant",
            "referencegrants",
            true,
            &["refgrant"],
            &[],
            &["gateway-api"],
        ),
        rt(
            GW,
            "v1beta1",
            "ReferenceGrant",
            "referencegrants",
            true,
            &["refgrant"],
            &[],
            &["gateway-api"],
        ),
        rt(
            "chaos-mesh.org",
            "v1alpha1",
            "NetworkChaos",
            "networkchaos",
            true,
            &[],
            &["status"],
            &["chaos-mesh"],
        ),
        rt(
            "chaos-mesh.org",
            "v1alpha1",
            "PodChaos",
            "podchaos",
            true,
            &[],
            &["status"],
            &["chaos-mesh"],
        ),
        rt(
            "litmuschaos.io",
            "v1alpha1",
            "ChaosEngine",
            "chaosengines",
            true,
            &[],
            &["status"],
            &["litmuschaos"],
        ),
        rt(
            RBAC,
            "v1",
            "ClusterRole",
            "clusterroles",
            false,
            &[],
            &[],
            &[],
        ),
        rt(
            RBAC,
            "v1",
            "ClusterRoleBinding",
            "clusterrolebindings",
            false,
            &[],
            &[],
            &[],
        ),
        rt(RBAC, "v1", "Role", "roles", true, &[], &[], &[]),
        rt(
            RBAC,
            "v1",
            "RoleBinding",
            "rolebindings",
            true,
            &[],
            &[],
            &[],
        ),
        review(AUTHN, "SelfSubjectReview", "selfsubjectreviews", false),
        review(AUTHN, "TokenReview", "tokenreviews", false),
        review(
            AUTHZ,
            "LocalSubjectAccessReview",
            "localsubjectaccessreviews",
            true,
        ),
        review(
            AUTHZ,
            "SelfSubjectAccessReview",
            "selfsubjectaccessreviews",
            false,
        ),
        review(
            AUTHZ,
            "SelfSubjectRulesReview",
            "selfsubjectrulesreviews",
            false,
        ),
        review(AUTHZ, "SubjectAccessReview", "subjectaccessreviews", false),
        rt(
            "apiextensions.k8s.io",
            "v1",
            "CustomResourceDefinition",
            "customresourcedefinitions",
            false,
            &["crd", "crds"],
            &["status"],
            &[],
        ),
    ]
}

/// The served types, in a stable order (discovery output depends on it).
#[derive(Clone, Debug)]
pub(crate) struct Registry {
    types: Vec<ResourceType>,
}

impl Default for Registry {
    fn default() -> Self {
        Registry {
            types: builtin_types(),
        }
    }
}

impl Registry {
    pub(crate) fn types(&self) -> &[ResourceType] {
        &self.types
    }

    pub(crate) fn by_key(&self, key: &ResKey) -> Option<&ResourceType> {
        self.types
            .iter()
            .find(|t| t.group == key.group && t.plural == key.plural)
    }

    /// Lookup as a URL names a resource: group, version and plural must all match.
    pub(crate) fn by_path(
        &self,
        group: &str,
        version: &str,
        plural: &str,
    ) -> Option<&ResourceType> {
        self.types
            .iter()
            .find(|t| t.group == group && t.version == version && t.plural == plural)
    }

    /// Lookup by apiVersion ("v1", "apps/v1") and kind, as an object names its type.
    pub(crate) fn by_kind(&self, api_version: &str, kind: &str) -> Option<&ResourceType> {
        let (group, version) = split_api_version(api_version);
        self.types
            .iter()
            .find(|t| t.group == group && t.version == version && t.kind == kind)
    }

    /// Group versions served, in registration order, without duplicates.
    pub(crate) fn group_versions(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        for t in &self.types {
            let gv = (t.group.clone(), t.version.clone());
            if !out.contains(&gv) {
                out.push(gv);
            }
        }
        out
    }

    /// Registers (or replaces) the kind a CRD defines. Returns the served type.
    pub(crate) fn register_crd(&mut self, crd: &Value) -> Result<ResourceType, String> {
        let t = crd_type(crd)?;
        if let Some(existing) = self.types.iter().find(|e| e.key() == t.key()) {
            if existing.crd.is_none() {
                return Err(format!("{} is a built-in resource", t.key()));
            }
        }
        self.types.retain(|e| e.key() != t.key());
        self.types.push(t.clone());
        Ok(t)
    }

    /// Stops serving the kind a CRD defined.
    pub(crate) fn unregister_crd(&mut self, crd_name: &str) -> Option<ResourceType> {
        let pos = self
            .types
            .iter()
            .position(|t| t.crd.as_deref() == Some(crd_name))?;
        Some(self.types.remove(pos))
    }
}

pub(crate) fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    }
}

/// Reads the served type out of a CustomResourceDefinition (apiextensions.k8s.io/v1).
pub(crate) fn crd_type(crd: &Value) -> Result<ResourceType, String> {
    let spec = crd.get("spec").ok_or("spec is required")?;
    let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    let group = s(spec, "group").ok_or("spec.group is required")?;
    let names = spec.get("names").ok_or("spec.names is required")?;
    let plural = s(names, "plural").ok_or("spec.names.plural is required")?;
    let kind = s(names, "kind").ok_or("spec.names.kind is required")?;
    let singular = s(names, "singular").unwrap_or_else(|| kind.to_ascii_lowercase());
    let scope = s(spec, "scope").ok_or("spec.scope is required")?;
    let namespaced = match scope.as_str() {
        "Namespaced" => true,
        "Cluster" => false,
        other => return Err(format!("spec.scope: Unsupported value: \"{other}\": supported values: \"Cluster\", \"Namespaced\"")),
    };
    let versions = spec
        .get("versions")
        .and_then(Value::as_array)
        .filter(|v| !v.is_empty())
        .ok_or("spec.versions must have at least one version")?;
    // Serve the storage version (or the first served one).
    let chosen = versions
        .iter()
        .find(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
        .or_else(|| versions.first())
        .ok_or("spec.versions must have at least one version")?;
    let version = s(chosen, "name").ok_or("spec.versions[].name is required")?;
    let mut subresources = Vec::new();
    if let Some(sub) = chosen.get("subresources") {
        if sub.get("status").is_some() {
            subresources.push("status".to_string());
        }
        if sub.get("scale").is_some() {
            subresources.push("scale".to_string());
        }
    }
    let expected_name = format!("{plural}.{group}");
    let name = crd
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if name != expected_name {
        return Err(format!(
            "metadata.name: Invalid value: \"{name}\": must be spec.names.plural+\".\"+spec.group (\"{expected_name}\")"
        ));
    }
    let list_strs = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    Ok(ResourceType {
        group,
        version,
        kind,
        plural,
        singular,
        namespaced,
        short_names: list_strs(names.get("shortNames")),
        subresources,
        categories: list_strs(names.get("categories")),
        crd: Some(name.to_string()),
        create_only: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finds_builtin_kinds_by_path_and_kind() {
        let r = Registry::default();
        assert_eq!(
            r.by_path("apps", "v1", "deployments").unwrap().kind,
            "Deployment"
        );
        assert_eq!(
            r.by_kind("gateway.networking.k8s.io/v1", "HTTPRoute")
                .unwrap()
                .plural,
            "httproutes"
        );
        assert!(r.by_kind("v1", "Pod").unwrap().namespaced);
        assert!(r.by_path("apps", "v2", "deployments").is_none());
    }

    #[test]
    fn crd_registers_and_unregisters_its_kind() {
        let mut r = Registry::default();
        let crd = json!({"metadata": {"name": "widgets.example.com"}, "spec": {"group": "example.com", "scope": "Cluster",
            "names": {"plural": "widgets", "kind": "Widget", "shortNames": ["wd"]},
            "versions": [{"name": "v1", "served": true, "storage": true, "subresources": {"status": {}}}]}});
        let t = r.register_crd(&crd).unwrap();
        assert!(!t.namespaced);
        assert!(t.has_status());
        assert_eq!(
            r.by_kind("example.com/v1", "Widget").unwrap().short_names,
            vec!["wd"]
        );
        assert!(r.unregister_crd("widgets.example.com").is_some());
        assert!(r.by_kind("example.com/v1", "Widget").is_none());
    }

    #[test]
    fn crd_with_wrong_name_is_rejected() {
        let mut r = Registry::default();
        let crd = json!({"metadata": {"name": "nope"}, "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "widgets", "kind": "Widget"}, "versions": [{"name": "v1"}]}});
        assert!(r
            .register_crd(&crd)
            .unwrap_err()
            .contains("widgets.example.com"));
    }
}
