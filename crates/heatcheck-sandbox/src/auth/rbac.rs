//! The RBAC authorizer and rule resolver, as kube-apiserver's
//! (plugin/pkg/auth/authorizer/rbac, pkg/registry/rbac/validation): which
//! rules apply to a user in a namespace, whether one allows a request, and
//! whether a set of rules covers another (escalation prevention).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::request::Attributes;
use super::UserInfo;
use crate::registry::ResKey;
use crate::store::Store;

pub(crate) const GROUP: &str = "rbac.authorization.k8s.io";
/// Members skip authorization entirely (kube-apiserver's privileged group).
pub(crate) const MASTERS: &str = "system:masters";

/// rbac.authorization.k8s.io/v1 PolicyRule.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PolicyRule {
    #[serde(default)]
    pub verbs: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub api_groups: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resource_names: Vec<String>,
    #[serde(
        default,
        rename = "nonResourceURLs",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub non_resource_urls: Vec<String>,
}

fn has(set: &[String], v: &str) -> bool {
    set.iter().any(|s| s == v)
}

fn has_all(set: &[String], vs: &[String]) -> bool {
    vs.iter().all(|v| has(set, v))
}

impl PolicyRule {
    /// `RuleAllows`: whether this rule grants the request.
    pub(crate) fn allows(&self, a: &Attributes) -> bool {
        let verb = has(&self.verbs, "*") || has(&self.verbs, &a.verb);
        if !a.resource_request {
            return verb && self.non_resource_url_matches(&a.path);
        }
        let combined = if a.subresource.is_empty() {
            a.resource.clone()
        } else {
            format!("{}/{}", a.resource, a.subresource)
        };
        verb && (has(&self.api_groups, "*") || has(&self.api_groups, &a.api_group))
            && self.resource_matches(&combined, &a.subresource)
            && (self.resource_names.is_empty() || has(&self.resource_names, &a.name))
    }

    fn resource_matches(&self, combined: &str, subresource: &str) -> bool {
        self.resources.iter().any(|r| {
            r == "*"
                || r == combined
                || (!subresource.is_empty()
                    && r.len() == subresource.len() + 2
                    && r.starts_with("*/")
                    && r.ends_with(subresource))
        })
    }

    fn non_resource_url_matches(&self, path: &str) -> bool {
        self.non_resource_urls.iter().any(|u| {
            u == "*" || u == path || (u.ends_with('*') && path.starts_with(u.trim_end_matches('*')))
        })
    }

    /// `rbacv1helpers.CompactString`, as escalation errors print rules.
    pub(crate) fn compact_string(&self) -> String {
        let q = |v: &[String]| {
            let items: Vec<String> = v.iter().map(|s| format!("{s:?}")).collect();
            format!("[{}]", items.join(" "))
        };
        let mut parts = Vec::new();
        if !self.api_groups.is_empty() {
            parts.push(format!("APIGroups:{}", q(&self.api_groups)));
        }
        if !self.resources.is_empty() {
            parts.push(format!("Resources:{}", q(&self.resources)));
        }
        if !self.non_resource_urls.is_empty() {
            parts.push(format!("NonResourceURLs:{}", q(&self.non_resource_urls)));
        }
        if !self.resource_names.is_empty() {
            parts.push(format!("ResourceNames:{}", q(&self.resource_names)));
        }
        if !self.verbs.is_empty() {
            parts.push(format!("Verbs:{}", q(&self.verbs)));
        }
        format!("{{{}}}", parts.join(", "))
    }

    /// `BreakdownRule`: one verb, group, resource and name per rule.
    fn breakdown(&self) -> Vec<PolicyRule> {
        let one = |s: &String| vec![s.clone()];
        let mut out = Vec::new();
        for g in &self.api_groups {
            for r in &self.resources {
                for v in &self.verbs {
                    if self.resource_names.is_empty() {
                        out.push(PolicyRule {
                            api_groups: one(g),
                            resources: one(r),
                            verbs: one(v),
                            ..Default::default()
                        });
                    }
                    for n in &self.resource_names {
                        out.push(PolicyRule {
                            api_groups: one(g),
                            resources: one(r),
                            verbs: one(v),
                            resource_names: one(n),
                            ..Default::default()
                        });
                    }
                }
            }
        }
        for u in &self.non_resource_urls {
            for v in &self.verbs {
                out.push(PolicyRule {
                    non_resource_urls: one(u),
                    verbs: one(v),
                    ..Default::default()
                });
            }
        }
        out
    }

    /// `ruleCovers`: whether this (owner) rule covers a broken-down rule.
    fn covers(&self, sub: &PolicyRule) -> bool {
        let verbs = has(&self.verbs, "*") || has_all(&self.verbs, &sub.verbs);
        let groups = has(&self.api_groups, "*") || has_all(&self.api_groups, &sub.api_groups);
        let resources = has(&self.resources, "*")
            || has_all(&self.resources, &sub.resources)
            || sub.resources.iter().all(|p| {
                has(&self.resources, p)
                    || p.split_once('/')
                        .is_some_and(|(_, s)| has(&self.resources, &format!("*/{s}")))
            });
        let urls = sub.non_resource_urls.iter().all(|p| {
            self.non_resource_urls
                .iter()
                .any(|o| o == p || (o.ends_with('*') && p.starts_with(o.trim_end_matches('*'))))
        });
        let names = if sub.resource_names.is_empty() {
            self.resource_names.is_empty()
        } else {
            self.resource_names.is_empty() || has_all(&self.resource_names, &sub.resource_names)
        };
        verbs && groups && resources && names && urls
    }
}

/// `Covers`: whether `owner` grants everything `requested` does; the rules
/// it does not, compacted and printed as the real server does.
pub(crate) fn covers(owner: &[PolicyRule], requested: &[PolicyRule]) -> Result<(), Vec<String>> {
    let mut missing = Vec::new();
    for r in requested {
        for sub in r.breakdown() {
            if !owner.iter().any(|o| o.covers(&sub)) {
                missing.push(sub);
            }
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    let set: BTreeSet<String> = compact(missing)
        .iter()
        .map(PolicyRule::compact_string)
        .collect();
    Err(set.into_iter().collect())
}

/// `CompactRules`: simple resource rules with the same group, resource and
/// name merge their verbs.
fn compact(rules: Vec<PolicyRule>) -> Vec<PolicyRule> {
    let mut out = Vec::new();
    let mut simple: BTreeMap<(String, String, Option<String>), PolicyRule> = BTreeMap::new();
    for r in rules {
        let is_simple = r.api_groups.len() == 1
            && r.resources.len() == 1
            && r.non_resource_urls.is_empty()
            && r.resource_names.len() <= 1;
        if !is_simple {
            out.push(r);
            continue;
        }
        let key = (
            r.api_groups[0].clone(),
            r.resources[0].clone(),
            r.resource_names.first().cloned(),
        );
        match simple.get_mut(&key) {
            Some(e) => e.verbs.extend(r.verbs),
            None => {
                simple.insert(key, r);
            }
        }
    }
    out.extend(simple.into_values());
    out
}

/// Rules of a role object (Role or ClusterRole); unreadable rules are skipped.
pub(crate) fn rules_of(role: &Value) -> Vec<PolicyRule> {
    role.get("rules")
        .and_then(Value::as_array)
        .map(|rs| {
            rs.iter()
                .filter_map(|r| serde_json::from_value(r.clone()).ok())
                .collect()
        })
        .unwrap_or_default()
}

/// A binding's subject, as stored.
#[derive(Clone, Debug, Default, Deserialize)]
struct Subject {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    namespace: String,
}

impl Subject {
    /// `appliesToUser`.
    fn applies_to(&self, user: &UserInfo, binding_ns: &str) -> bool {
        match self.kind.as_str() {
            "User" => user.name == self.name,
            "Group" => user.groups.contains(&self.name),
            "ServiceAccount" => {
                let ns = if self.namespace.is_empty() {
                    binding_ns
                } else {
                    &self.namespace
                };
                !ns.is_empty() && user.name == format!("system:serviceaccount:{ns}:{}", self.name)
            }
            _ => false,
        }
    }

    /// `describeSubject`.
    fn describe(&self, binding_ns: &str) -> String {
        match self.kind.as_str() {
            "ServiceAccount" => {
                let ns = if self.namespace.is_empty() {
                    binding_ns
                } else {
                    &self.namespace
                };
                format!("{} {:?}", self.kind, format!("{}/{ns}", self.name))
            }
            _ => format!("{} {:?}", self.kind, self.name),
        }
    }
}

fn subjects(binding: &Value) -> Vec<Subject> {
    binding
        .get("subjects")
        .and_then(Value::as_array)
        .map(|s| {
            s.iter()
                .filter_map(|x| serde_json::from_value(x.clone()).ok())
                .collect()
        })
        .unwrap_or_default()
}

fn str_at<'a>(v: &'a Value, p: &str) -> &'a str {
    v.pointer(p).and_then(Value::as_str).unwrap_or_default()
}

fn list(store: &Store, plural: &str, ns: Option<&str>) -> Vec<Value> {
    store
        .list(&ResKey::new(GROUP, plural), ns, &|_| true, None, None)
        .map(|p| p.items)
        .unwrap_or_default()
}

/// The rules a roleRef names (`GetRoleReferenceRules`); `Err` is the
/// resolution error the real server reports.
pub(crate) fn role_ref_rules(
    store: &Store,
    role_ref: &Value,
    ns: &str,
) -> Result<Vec<PolicyRule>, String> {
    let kind = str_at(role_ref, "/kind");
    let name = str_at(role_ref, "/name");
    match kind {
        "ClusterRole" => store
            .get(&ResKey::new(GROUP, "clusterroles"), None, name)
            .map(|r| rules_of(&r))
            .map_err(|_| format!("clusterrole.{GROUP} {name:?} not found")),
        "Role" => store
            .get(&ResKey::new(GROUP, "roles"), Some(ns), name)
            .map(|r| rules_of(&r))
            .map_err(|_| format!("role.{GROUP} {name:?} not found")),
        other => Err(format!("unsupported role reference kind: {other:?}")),
    }
}

/// Visits every rule that applies to `user` in `ns` (cluster-wide bindings
/// first, then the namespace's RoleBindings) with a description of where it
/// comes from; stops when `visit` returns false. Returns resolution errors.
fn visit_rules(
    store: &Store,
    user: &UserInfo,
    ns: &str,
    visit: &mut dyn FnMut(&str, &PolicyRule) -> bool,
) -> Vec<String> {
    let mut errors = Vec::new();
    for b in list(store, "clusterrolebindings", None) {
        let Some(subject) = subjects(&b).into_iter().find(|s| s.applies_to(user, "")) else {
            continue;
        };
        let role_ref = b.get("roleRef").cloned().unwrap_or_default();
        match role_ref_rules(store, &role_ref, "") {
            Ok(rules) => {
                let source = format!(
                    "ClusterRoleBinding {:?} of {} {:?} to {}",
                    str_at(&b, "/metadata/name"),
                    str_at(&role_ref, "/kind"),
                    str_at(&role_ref, "/name"),
                    subject.describe("")
                );
                for r in &rules {
                    if !visit(&source, r) {
                        return errors;
                    }
                }
            }
            Err(e) => errors.push(e),
        }
    }
    if ns.is_empty() {
        return errors;
    }
    for b in list(store, "rolebindings", Some(ns)) {
        let Some(subject) = subjects(&b).into_iter().find(|s| s.applies_to(user, ns)) else {
            continue;
        };
        let role_ref = b.get("roleRef").cloned().unwrap_or_default();
        match role_ref_rules(store, &role_ref, ns) {
            Ok(rules) => {
                let source = format!(
                    "RoleBinding {:?} of {} {:?} to {}",
                    format!("{}/{ns}", str_at(&b, "/metadata/name")),
                    str_at(&role_ref, "/kind"),
                    str_at(&role_ref, "/name"),
                    subject.describe(ns)
                );
                for r in &rules {
                    if !visit(&source, r) {
                        return errors;
                    }
                }
            }
            Err(e) => errors.push(e),
        }
    }
    errors
}

/// Every rule that applies to `user` in `ns` (`RulesFor`), and resolution errors.
pub(crate) fn rules_for(
    store: &Store,
    user: &UserInfo,
    ns: &str,
) -> (Vec<PolicyRule>, Vec<String>) {
    let mut rules = Vec::new();
    let errors = visit_rules(store, user, ns, &mut |_, r| {
        rules.push(r.clone());
        true
    });
    (rules, errors)
}

/// An authorization decision and the reason the real server would give.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Decision {
    pub allowed: bool,
    pub reason: String,
}

/// Authorizes a request: members of system:masters always, everyone else
/// by RBAC.
pub(crate) fn authorize(store: &Store, a: &Attributes) -> Decision {
    if a.user.groups.iter().any(|g| g == MASTERS) {
        return Decision {
            allowed: true,
            reason: String::new(),
        };
    }
    let mut allowed_by = None;
    let errors = visit_rules(store, &a.user, &a.namespace, &mut |source, rule| {
        if rule.allows(a) {
            allowed_by = Some(format!("RBAC: allowed by {source}"));
            return false;
        }
        true
    });
    match allowed_by {
        Some(reason) => Decision {
            allowed: true,
            reason,
        },
        None => Decision {
            allowed: false,
            reason: if errors.is_empty() {
                String::new()
            } else if errors.len() == 1 {
                format!("RBAC: {}", errors[0])
            } else {
                format!("RBAC: [{}]", errors.join(", "))
            },
        },
    }
}

/// ClusterRole aggregation (the clusterrole-aggregation controller): every
/// ClusterRole with an aggregationRule gets the rules of the ClusterRoles
/// its selectors pick, in selector then name order, without duplicates.
pub(crate) fn aggregate_cluster_roles(store: &Store) {
    use crate::controllers::util::{label_selector_matches, labels};
    let key = ResKey::new(GROUP, "clusterroles");
    let roles = list(store, "clusterroles", None);
    for role in &roles {
        let Some(selectors) = role
            .pointer("/aggregationRule/clusterRoleSelectors")
            .and_then(Value::as_array)
        else {
            continue;
        };
        let me = str_at(role, "/metadata/name");
        let mut rules: Vec<Value> = Vec::new();
        for sel in selectors {
            for other in &roles {
                if str_at(other, "/metadata/name") == me
                    || !label_selector_matches(Some(sel), &labels(other))
                {
                    continue;
                }
                for r in other
                    .get("rules")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if !rules.contains(r) {
                        rules.push(r.clone());
                    }
                }
            }
        }
        if role.get("rules").and_then(Value::as_array) == Some(&rules) {
            continue;
        }
        let mut next = role.clone();
        next["rules"] = Value::Array(rules);
        // A conflict means someone wrote meanwhile; the next event retries.
        let _ = store.update(&key, None, me, next, &crate::store::WriteOptions::default());
    }
}
