//! The least-privilege Role / ClusterRole a run needs: verbs x resources per
//! apiGroup, from what the steps, waits and assertions touch.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

type Rules = BTreeMap<(String, String), BTreeSet<String>>;

/// Permissions gathered per namespace (Roles) and cluster-wide (ClusterRole).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Permissions {
    namespaced: BTreeMap<String, Rules>,
    cluster: Rules,
}

impl Permissions {
    /// One verb on `resource` (with `/subresource`) of `group`, in `ns`
    /// (None: cluster-wide).
    pub(crate) fn add_raw(&mut self, ns: Option<&str>, group: &str, resource: &str, verb: &str) {
        let rules = match ns {
            Some(ns) => self.namespaced.entry(ns.to_string()).or_default(),
            None => &mut self.cluster,
        };
        rules
            .entry((group.to_string(), resource.to_string()))
            .or_default()
            .insert(verb.to_string());
    }

    /// The Role objects (one per namespace) and the ClusterRole, if any.
    pub fn objects(&self, name: &str) -> Vec<Value> {
        let mut out: Vec<Value> = self
            .namespaced
            .iter()
            .map(|(ns, rules)| {
                json!({
                    "apiVersion": "rbac.authorization.k8s.io/v1",
                    "kind": "Role",
                    "metadata": {"name": name, "namespace": ns},
                    "rules": rule_list(rules),
                })
            })
            .collect();
        if !self.cluster.is_empty() {
            out.push(json!({
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRole",
                "metadata": {"name": name},
                "rules": rule_list(&self.cluster),
            }));
        }
        out
    }

    /// The objects as a multi-document YAML stream.
    pub fn to_yaml(&self, name: &str) -> String {
        self.objects(name)
            .iter()
            .map(|o| serde_saphyr::to_string(o).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("---\n")
    }
}

/// Resources of one apiGroup with the same verbs share a rule.
fn rule_list(rules: &Rules) -> Vec<Value> {
    let mut merged: BTreeMap<(String, Vec<String>), Vec<String>> = BTreeMap::new();
    for ((group, resource), verbs) in rules {
        merged
            .entry((group.clone(), ordered(verbs)))
            .or_default()
            .push(resource.clone());
    }
    merged
        .into_iter()
        .map(|((group, verbs), resources)| {
            json!({"apiGroups": [group], "resources": resources, "verbs": verbs})
        })
        .collect()
}

/// Verbs in kubectl's customary order.
fn ordered(verbs: &BTreeSet<String>) -> Vec<String> {
    const ORDER: &[&str] = &[
        "get",
        "list",
        "watch",
        "create",
        "update",
        "patch",
        "delete",
        "deletecollection",
    ];
    let mut v: Vec<String> = verbs.iter().cloned().collect();
    v.sort_by_key(|x| ORDER.iter().position(|o| o == x).unwrap_or(ORDER.len()));
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use heatcheck_cluster::Resolved;
    use kube::core::{ApiResource, GroupVersionKind};

    // Rules by resolved kind: the runner adds them verb by verb (`add_raw`).
    impl Permissions {
        /// `verbs` on the resource of `r` (in `ns` when namespaced).
        fn add(&mut self, r: &Resolved, ns: &str, verbs: &[&str]) {
            self.add_resource(r, ns, &r.ar.plural, verbs);
        }

        /// `verbs` on a subresource, e.g. `deployments/scale`.
        fn add_subresource(&mut self, r: &Resolved, ns: &str, sub: &str, verbs: &[&str]) {
            self.add_resource(r, ns, &format!("{}/{sub}", r.ar.plural), verbs);
        }

        fn add_resource(&mut self, r: &Resolved, ns: &str, resource: &str, verbs: &[&str]) {
            let rules = if r.namespaced {
                self.namespaced.entry(ns.to_string()).or_default()
            } else {
                &mut self.cluster
            };
            rules
                .entry((r.ar.group.clone(), resource.to_string()))
                .or_default()
                .extend(verbs.iter().map(|v| v.to_string()));
        }
    }

    fn res(group: &str, kind: &str, plural: &str, namespaced: bool) -> Resolved {
        Resolved {
            ar: ApiResource::from_gvk_with_plural(
                &GroupVersionKind::gvk(group, "v1", kind),
                plural,
            ),
            namespaced,
            subresources: vec![],
        }
    }

    #[test]
    fn rules_merge_per_group_and_verbs() {
        let mut p = Permissions::default();
        let deploy = res("apps", "Deployment", "deployments", true);
        p.add(&deploy, "shop", &["get", "update"]);
        p.add_subresource(&deploy, "shop", "scale", &["patch"]);
        p.add(
            &res("", "ConfigMap", "configmaps", true),
            "shop",
            &["get", "create", "delete"],
        );
        p.add(
            &res("", "Secret", "secrets", true),
            "shop",
            &["delete", "get", "create"],
        );
        p.add(&res("", "Node", "nodes", false), "", &["get"]);
        let objs = p.objects("heatcheck");
        assert_eq!(objs.len(), 2);
        assert_eq!(
            objs[0]["rules"],
            json!([
                {"apiGroups": [""], "resources": ["configmaps", "secrets"], "verbs": ["get", "create", "delete"]},
                {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "update"]},
                {"apiGroups": ["apps"], "resources": ["deployments/scale"], "verbs": ["patch"]},
            ])
        );
        assert_eq!(objs[1]["kind"], "ClusterRole");
        assert!(p.to_yaml("heatcheck").contains("---\n"));
    }
}
