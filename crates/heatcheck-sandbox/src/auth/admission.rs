//! What kube-apiserver checks on writes of RBAC objects: validation
//! (pkg/apis/rbac/validation) and escalation prevention
//! (pkg/registry/rbac/*/policybased): a user may only grant permissions it
//! holds, unless it has `escalate` on the role or `bind` on the roleRef.

use serde_json::Value;

use super::rbac::{self, covers, role_ref_rules, rules_of, PolicyRule, GROUP};
use super::request::Attributes;
use super::{forbidden_error, UserInfo};
use crate::error::ApiError;
use crate::registry::ResourceType;
use crate::store::Store;

fn str_at<'a>(v: &'a Value, p: &str) -> &'a str {
    v.pointer(p).and_then(Value::as_str).unwrap_or_default()
}

fn quoted_list(v: &[String]) -> String {
    let items: Vec<String> = v.iter().map(|s| format!("{s:?}")).collect();
    format!("[{}]", items.join(" "))
}

/// Validates a write of an RBAC object by `user` and refuses escalation.
/// `old` is the stored object on update.
pub(crate) fn admit(
    store: &Store,
    user: &UserInfo,
    rt: &ResourceType,
    ns: Option<&str>,
    old: Option<&Value>,
    new: &Value,
) -> Result<(), ApiError> {
    if rt.group != GROUP {
        return Ok(());
    }
    let name = str_at(new, "/metadata/name");
    let ns = ns
        .map(str::to_string)
        .or_else(|| {
            new.pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or_default();
    let ns = if rt.namespaced { ns } else { String::new() };
    match rt.plural.as_str() {
        "roles" | "clusterroles" => {
            validate_role(rt, name, new)?;
            role_escalation(store, user, rt, name, &ns, old, new)
        }
        "rolebindings" | "clusterrolebindings" => {
            validate_binding(rt, name, old, new)?;
            binding_escalation(store, user, rt, name, &ns, old, new)
        }
        _ => Ok(()),
    }
}

fn strings(v: &Value, k: &str) -> Option<Vec<String>> {
    v.get(k).and_then(Value::as_array).map(|a| {
        a.iter()
            .map(|x| x.as_str().unwrap_or_default().to_string())
            .collect()
    })
}

fn validate_role(rt: &ResourceType, name: &str, obj: &Value) -> Result<(), ApiError> {
    let mut causes: Vec<(String, String)> = Vec::new();
    let rules = obj
        .get("rules")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for (i, r) in rules.iter().enumerate() {
        let f = |k: &str| format!("rules[{i}].{k}");
        let get = |k: &str| strings(r, k).unwrap_or_default();
        let (verbs, urls) = (get("verbs"), get("nonResourceURLs"));
        let (groups, resources, names) = (get("apiGroups"), get("resources"), get("resourceNames"));
        if verbs.is_empty() {
            causes.push((
                f("verbs"),
                "Required value: verbs must contain at least one value".into(),
            ));
        }
        if !urls.is_empty() {
            if rt.namespaced {
                causes.push((
                    f("nonResourceURLs"),
                    format!(
                        "Invalid value: {}: namespaced rules cannot apply to non-resource URLs",
                        go_strings(&urls)
                    ),
                ));
            }
            if !groups.is_empty() || !resources.is_empty() || !names.is_empty() {
                causes.push((
                    f("nonResourceURLs"),
                    format!("Invalid value: {}: rules cannot apply to both regular resources and non-resource URLs", go_strings(&urls)),
                ));
            }
            continue;
        }
        if groups.is_empty() {
            causes.push((
                f("apiGroups"),
                "Required value: resource rules must supply at least one api group".into(),
            ));
        }
        if resources.is_empty() {
            causes.push((
                f("resources"),
                "Required value: resource rules must supply at least one resource".into(),
            ));
        }
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(GROUP, &rt.kind, name, &causes))
    }
}

/// `[]string{"a", "b"}`, as Go's %#v prints a slice in field errors.
fn go_strings(v: &[String]) -> String {
    let items: Vec<String> = v.iter().map(|s| format!("{s:?}")).collect();
    format!("[]string{{{}}}", items.join(", "))
}

fn validate_binding(
    rt: &ResourceType,
    name: &str,
    old: Option<&Value>,
    obj: &Value,
) -> Result<(), ApiError> {
    let mut causes: Vec<(String, String)> = Vec::new();
    let role_ref = obj.get("roleRef").cloned().unwrap_or_default();
    let (group, kind, role) = (
        str_at(&role_ref, "/apiGroup"),
        str_at(&role_ref, "/kind"),
        str_at(&role_ref, "/name"),
    );
    if group != GROUP {
        causes.push((
            "roleRef.apiGroup".into(),
            format!("Unsupported value: {group:?}: supported values: {GROUP:?}"),
        ));
    }
    let kinds: &[&str] = if rt.namespaced {
        &["Role", "ClusterRole"]
    } else {
        &["ClusterRole"]
    };
    if !kinds.contains(&kind) {
        let supported: Vec<String> = kinds.iter().map(|k| format!("{k:?}")).collect();
        causes.push((
            "roleRef.kind".into(),
            format!(
                "Unsupported value: {kind:?}: supported values: {}",
                supported.join(", ")
            ),
        ));
    }
    if role.is_empty() {
        causes.push(("roleRef.name".into(), "Required value".into()));
    }
    let subjects = obj
        .get("subjects")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for (i, s) in subjects.iter().enumerate() {
        let f = |k: &str| format!("subjects[{i}].{k}");
        let (kind, sname, api_group) = (
            str_at(s, "/kind"),
            str_at(s, "/name"),
            str_at(s, "/apiGroup"),
        );
        if sname.is_empty() {
            causes.push((f("name"), "Required value".into()));
        }
        match kind {
            "ServiceAccount" => {
                if !api_group.is_empty() {
                    causes.push((f("apiGroup"), format!("Unsupported value: {api_group:?}: supported values: \"\"")));
                }
                if !rt.namespaced && str_at(s, "/namespace").is_empty() {
                    causes.push((f("namespace"), "Required value".into()));
                }
            }
            "User" | "Group" => {
                if api_group != GROUP {
                    causes.push((f("apiGroup"), format!("Unsupported value: {api_group:?}: supported values: {GROUP:?}")));
                }
            }
            other => causes.push((
                f("kind"),
                format!("Unsupported value: {other:?}: supported values: \"ServiceAccount\", \"User\", \"Group\""),
            )),
        }
    }
    if let Some(old) = old {
        let before = old.get("roleRef").cloned().unwrap_or_default();
        if before != role_ref {
            causes.push((
                "roleRef".into(),
                format!(
                    "Invalid value: rbac.RoleRef{{APIGroup:{:?}, Kind:{:?}, Name:{:?}}}: cannot change roleRef",
                    group, kind, role
                ),
            ));
        }
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(GROUP, &rt.kind, name, &causes))
    }
}

fn privileged(user: &UserInfo) -> bool {
    user.groups.iter().any(|g| g == rbac::MASTERS)
}

/// Whether the authorizer allows `verb` on `resource` (`name`, `ns`) of the RBAC group.
fn rbac_verb_allowed(
    store: &Store,
    user: &UserInfo,
    verb: &str,
    resource: &str,
    name: &str,
    ns: &str,
) -> bool {
    let a = Attributes {
        user: user.clone(),
        verb: verb.into(),
        resource_request: true,
        namespace: ns.into(),
        api_group: GROUP.into(),
        api_version: "*".into(),
        resource: resource.into(),
        name: name.into(),
        ..Default::default()
    };
    rbac::authorize(store, &a).allowed
}

/// `ConfirmNoEscalation`: the user's own rules in `ns` must cover `rules`.
fn confirm_no_escalation(
    store: &Store,
    user: &UserInfo,
    ns: &str,
    rules: &[PolicyRule],
) -> Result<(), String> {
    let (owner, errors) = rbac::rules_for(store, user, ns);
    covers(&owner, rules).map_err(|missing| {
        let mut msg = format!(
            "user {:?} (groups={}) is attempting to grant RBAC permissions not currently held:\n{}",
            user.name,
            quoted_list(&user.groups),
            missing.join("\n")
        );
        if !errors.is_empty() {
            msg.push_str(&format!("; resolution errors: [{}]", errors.join(" ")));
        }
        msg
    })
}

fn role_escalation(
    store: &Store,
    user: &UserInfo,
    rt: &ResourceType,
    name: &str,
    ns: &str,
    old: Option<&Value>,
    new: &Value,
) -> Result<(), ApiError> {
    if privileged(user) || rbac_verb_allowed(store, user, "escalate", &rt.plural, name, ns) {
        return Ok(());
    }
    let rules = rules_of(new);
    let aggregation = new.get("aggregationRule").filter(|a| !a.is_null());
    if let Some(old) = old {
        // Changes that grant nothing new (labels, annotations) need no check.
        if rules_of(old) == rules
            && old.get("aggregationRule").filter(|a| !a.is_null()) == aggregation
        {
            return Ok(());
        }
    }
    if rt.plural == "clusterroles" && aggregation.is_some() {
        let full = vec![
            PolicyRule {
                verbs: vec!["*".into()],
                api_groups: vec!["*".into()],
                resources: vec!["*".into()],
                ..Default::default()
            },
            PolicyRule {
                verbs: vec!["*".into()],
                non_resource_urls: vec!["*".into()],
                ..Default::default()
            },
        ];
        if confirm_no_escalation(store, user, "", &full).is_err() {
            return Err(forbidden_error(
                GROUP,
                &rt.plural,
                name,
                "must have cluster-admin privileges to use the aggregationRule",
            ));
        }
        return Ok(());
    }
    confirm_no_escalation(store, user, ns, &rules)
        .map_err(|e| forbidden_error(GROUP, &rt.plural, name, &e))
}

fn binding_escalation(
    store: &Store,
    user: &UserInfo,
    rt: &ResourceType,
    name: &str,
    ns: &str,
    old: Option<&Value>,
    new: &Value,
) -> Result<(), ApiError> {
    if privileged(user) {
        return Ok(());
    }
    if let Some(old) = old {
        if old.get("subjects") == new.get("subjects") && old.get("roleRef") == new.get("roleRef") {
            return Ok(());
        }
    }
    let role_ref = new.get("roleRef").cloned().unwrap_or_default();
    let (kind, role) = (str_at(&role_ref, "/kind"), str_at(&role_ref, "/name"));
    let resource = if kind == "Role" {
        "roles"
    } else {
        "clusterroles"
    };
    if rbac_verb_allowed(store, user, "bind", resource, role, ns) {
        return Ok(());
    }
    let rules = role_ref_rules(store, &role_ref, ns)
        .map_err(|_| ApiError::not_found(GROUP, &kind.to_ascii_lowercase(), role))?;
    confirm_no_escalation(store, user, ns, &rules)
        .map_err(|e| forbidden_error(GROUP, &rt.plural, name, &e))
}
