//! The authorizer and rule resolver against stored RBAC objects; cases
//! ported from kubernetes' plugin/pkg/auth/authorizer/rbac/rbac_test.go and
//! pkg/registry/rbac/validation/rule_test.go.

use serde_json::{json, Value};

use super::rbac::{authorize, covers, rules_for, PolicyRule, GROUP};
use super::request::Attributes;
use super::UserInfo;
use crate::registry::ResKey;
use crate::store::{Store, WriteOptions};

/// `newRule(verbs, apiGroups, resources, nonResourceURLs)`: comma-separated lists.
fn rule(verbs: &str, groups: &str, resources: &str, urls: &str) -> Value {
    let split = |s: &str| -> Vec<String> { s.split(',').map(str::to_string).collect() };
    json!({"verbs": split(verbs), "apiGroups": split(groups), "resources": split(resources),
        "nonResourceURLs": split(urls)})
}

fn put(store: &Store, plural: &str, ns: Option<&str>, obj: Value) {
    store
        .create(
            &ResKey::new(GROUP, plural),
            ns,
            obj,
            &WriteOptions::default(),
        )
        .unwrap_or_else(|e| panic!("create {plural}: {e}"));
}

fn cluster_role(store: &Store, name: &str, rules: Vec<Value>) {
    put(
        store,
        "clusterroles",
        None,
        json!({"metadata": {"name": name}, "rules": rules}),
    );
}

/// Subjects as "User:name", "Group:name", "ServiceAccount:ns:name".
fn subjects(list: &[&str]) -> Vec<Value> {
    list.iter()
        .map(|s| {
            let (kind, rest) = s.split_once(':').unwrap();
            match kind {
                "ServiceAccount" => {
                    let (ns, name) = rest.split_once(':').unwrap_or(("", rest));
                    json!({"kind": kind, "name": name, "namespace": ns})
                }
                _ => json!({"kind": kind, "name": rest, "apiGroup": GROUP}),
            }
        })
        .collect()
}

fn cluster_binding(store: &Store, name: &str, role: &str, who: &[&str]) {
    put(
        store,
        "clusterrolebindings",
        None,
        json!({"metadata": {"name": name},
        "roleRef": {"apiGroup": GROUP, "kind": "ClusterRole", "name": role}, "subjects": subjects(who)}),
    );
}

fn binding(store: &Store, ns: &str, name: &str, kind: &str, role: &str, who: &[&str]) {
    let n = ResKey::new("", "namespaces");
    if store.get(&n, None, ns).is_err() {
        store
            .create(
                &n,
                None,
                json!({"metadata": {"name": ns}}),
                &WriteOptions::default(),
            )
            .unwrap();
    }
    put(
        store,
        "rolebindings",
        Some(ns),
        json!({"metadata": {"name": name, "namespace": ns},
        "roleRef": {"apiGroup": GROUP, "kind": kind, "name": role}, "subjects": subjects(who)}),
    );
}

fn user(name: &str, groups: &str) -> UserInfo {
    UserInfo {
        name: name.into(),
        groups: groups
            .split(',')
            .filter(|g| !g.is_empty())
            .map(str::to_string)
            .collect(),
        ..Default::default()
    }
}

/// `defaultAttributes{user, groups, verb, resource, subresource, namespace, apiGroup}`.
fn res(
    u: &str,
    groups: &str,
    verb: &str,
    resource: &str,
    sub: &str,
    ns: &str,
    group: &str,
) -> Attributes {
    Attributes {
        user: user(u, groups),
        verb: verb.into(),
        resource_request: true,
        resource: resource.into(),
        subresource: sub.into(),
        namespace: ns.into(),
        api_group: group.into(),
        ..Default::default()
    }
}

fn url(u: &str, groups: &str, verb: &str, path: &str) -> Attributes {
    Attributes {
        user: user(u, groups),
        verb: verb.into(),
        path: path.into(),
        ..Default::default()
    }
}

fn allowed(store: &Store, a: &Attributes) -> bool {
    authorize(store, a).allowed
}

#[test]
fn cluster_role_bound_in_one_namespace_grants_only_there() {
    let s = Store::new();
    cluster_role(&s, "admin", vec![rule("*", "*", "*", "*")]);
    binding(
        &s,
        "ns1",
        "b",
        "ClusterRole",
        "admin",
        &["User:admin", "Group:admins"],
    );
    for a in [
        res("admin", "", "get", "Pods", "", "ns1", ""),
        res("admin", "", "watch", "Pods", "", "ns1", ""),
        res("admin", "group1", "watch", "Foobar", "", "ns1", ""),
        res("joe", "admins", "watch", "Foobar", "", "ns1", ""),
        res("joe", "group1,admins", "watch", "Foobar", "", "ns1", ""),
    ] {
        assert!(allowed(&s, &a), "incorrectly restricted {a:?}");
    }
    for a in [
        res("admin", "", "GET", "Pods", "", "ns2", ""),
        res("admin", "", "GET", "Nodes", "", "", ""),
        res("admin", "admins", "GET", "Pods", "", "ns2", ""),
        res("admin", "admins", "GET", "Nodes", "", "", ""),
    ] {
        assert!(!allowed(&s, &a), "incorrectly passed {a:?}");
    }
}

#[test]
fn non_resource_urls_match_exactly_or_by_prefix() {
    let s = Store::new();
    cluster_role(
        &s,
        "getter",
        vec![json!({"verbs": ["get"], "nonResourceURLs": ["/apis"]})],
    );
    cluster_role(
        &s,
        "any",
        vec![json!({"verbs": ["*"], "nonResourceURLs": ["/apis"]})],
    );
    cluster_role(
        &s,
        "prefix",
        vec![json!({"verbs": ["get"], "nonResourceURLs": ["/apis/*"]})],
    );
    cluster_binding(&s, "getter", "getter", &["User:foo", "Group:bar"]);
    cluster_binding(&s, "any", "any", &["User:admin", "Group:admin"]);
    cluster_binding(&s, "prefix", "prefix", &["User:prefixed", "Group:prefixed"]);
    for a in [
        url("foo", "", "get", "/apis"),
        url("", "bar", "get", "/apis"),
        url("admin", "", "get", "/apis"),
        url("", "admin", "get", "/apis"),
        url("admin", "", "watch", "/apis"),
        url("", "admin", "watch", "/apis"),
        url("prefixed", "", "get", "/apis/v1"),
        url("", "prefixed", "get", "/apis/v1"),
        url("prefixed", "", "get", "/apis/v1/foobar"),
    ] {
        assert!(allowed(&s, &a), "incorrectly restricted {a:?}");
    }
    for a in [
        url("foo", "", "watch", "/apis"),
        url("", "bar", "watch", "/apis"),
        url("foo", "", "get", "/api/v1"),
        url("admin", "", "get", "/api/v1"),
        url("prefixed", "", "get", "/api/v1"),
    ] {
        assert!(!allowed(&s, &a), "incorrectly passed {a:?}");
    }
}

#[test]
fn subresources_need_their_own_rule_or_a_star() {
    let s = Store::new();
    cluster_role(&s, "pods", vec![rule("*", "*", "pods", "*")]);
    cluster_role(&s, "status", vec![rule("*", "*", "pods/status", "*")]);
    cluster_role(
        &s,
        "any-scale",
        vec![rule("get,update", "apps", "*/scale", "*")],
    );
    binding(&s, "ns1", "a", "ClusterRole", "pods", &["User:a"]);
    binding(&s, "ns1", "b", "ClusterRole", "status", &["User:b"]);
    binding(&s, "ns1", "c", "ClusterRole", "any-scale", &["User:c"]);
    assert!(allowed(&s, &res("a", "", "get", "pods", "", "ns1", "")));
    assert!(!allowed(
        &s,
        &res("a", "", "get", "pods", "status", "ns1", "")
    ));
    assert!(allowed(
        &s,
        &res("b", "", "get", "pods", "status", "ns1", "")
    ));
    assert!(!allowed(&s, &res("b", "", "get", "pods", "", "ns1", "")));
    assert!(allowed(
        &s,
        &res("c", "", "update", "deployments", "scale", "ns1", "apps")
    ));
    assert!(allowed(
        &s,
        &res("c", "", "get", "statefulsets", "scale", "ns1", "apps")
    ));
    assert!(!allowed(
        &s,
        &res("c", "", "update", "deployments", "", "ns1", "apps")
    ));
    assert!(!allowed(
        &s,
        &res("c", "", "update", "deployments", "status", "ns1", "apps")
    ));
    assert!(!allowed(
        &s,
        &res("c", "", "delete", "deployments", "scale", "ns1", "apps")
    ));
}

/// TestRuleMatches: star verb, star group, star resource, tuple expansion.
#[test]
#[allow(clippy::type_complexity)]
fn rule_matching_expands_every_tuple() {
    let cases: &[(PolicyRule, &[(&str, &str, &str, bool)])] = &[
        (
            pr(&["*"], &["group1"], &["resource1"]),
            &[
                ("verb1", "group1", "resource1", true),
                ("verb1", "group2", "resource1", false),
                ("verb2", "group1", "resource1", true),
                ("verb2", "group1", "resource2", false),
            ],
        ),
        (
            pr(&["verb1"], &["*"], &["resource1"]),
            &[
                ("verb1", "group1", "resource1", true),
                ("verb1", "group2", "resource1", true),
                ("verb1", "group1", "resource2", false),
                ("verb2", "group1", "resource1", false),
            ],
        ),
        (
            pr(&["verb1"], &["group1"], &["*"]),
            &[
                ("verb1", "group1", "resource1", true),
                ("verb1", "group1", "resource2", true),
                ("verb1", "group2", "resource1", false),
                ("verb2", "group1", "resource1", false),
            ],
        ),
        (
            pr(
                &["verb1", "verb2"],
                &["group1", "group2"],
                &["resource1", "resource2"],
            ),
            &[
                ("verb1", "group1", "resource1", true),
                ("verb2", "group2", "resource2", true),
                ("verb1", "group2", "resource1", true),
                ("verb3", "group1", "resource1", false),
            ],
        ),
    ];
    for (rule, requests) in cases {
        for (verb, group, resource, want) in *requests {
            let a = res("u", "", verb, resource, "", "ns", group);
            assert_eq!(
                rule.allows(&a),
                *want,
                "{rule:?} on {verb} {group} {resource}"
            );
        }
    }
}

fn pr(verbs: &[&str], groups: &[&str], resources: &[&str]) -> PolicyRule {
    let v = |x: &[&str]| x.iter().map(|s| s.to_string()).collect();
    PolicyRule {
        verbs: v(verbs),
        api_groups: v(groups),
        resources: v(resources),
        ..Default::default()
    }
}

#[test]
fn resource_names_restrict_a_rule_to_named_objects() {
    let mut r = pr(&["get"], &[""], &["configmaps"]);
    r.resource_names = vec!["app-config".into()];
    let mut a = res("u", "", "get", "configmaps", "", "ns", "");
    a.name = "app-config".into();
    assert!(r.allows(&a));
    a.name = "other".into();
    assert!(!r.allows(&a));
    a.name = String::new();
    assert!(
        !r.allows(&a),
        "a list has no name: a named rule does not allow it"
    );
}

#[test]
fn service_account_subjects_default_to_the_binding_namespace() {
    let s = Store::new();
    cluster_role(&s, "reader", vec![rule("get", "", "pods", "")]);
    binding(
        &s,
        "ns1",
        "local",
        "ClusterRole",
        "reader",
        &["ServiceAccount:app"],
    );
    let sa = UserInfo::service_account("ns1", "app");
    let mut a = res("", "", "get", "pods", "", "ns1", "");
    a.user = sa.clone();
    let d = authorize(&s, &a);
    assert!(d.allowed);
    assert_eq!(
        d.reason,
        "RBAC: allowed by RoleBinding \"local/ns1\" of ClusterRole \"reader\" to ServiceAccount \"app/ns1\""
    );
    a.user = UserInfo::service_account("ns2", "app");
    assert!(!allowed(&s, &a));
    // A group of all ServiceAccounts in a namespace.
    binding(
        &s,
        "ns1",
        "all-sa",
        "ClusterRole",
        "reader",
        &["Group:system:serviceaccounts:ns1"],
    );
    a.user = UserInfo::service_account("ns1", "other");
    assert!(allowed(&s, &a));
}

#[test]
fn a_binding_to_a_missing_role_is_reported_in_the_reason() {
    let s = Store::new();
    binding(&s, "ns1", "dangling", "Role", "gone", &["User:u"]);
    let d = authorize(&s, &res("u", "", "get", "pods", "", "ns1", ""));
    assert!(!d.allowed);
    assert_eq!(
        d.reason,
        "RBAC: role.rbac.authorization.k8s.io \"gone\" not found"
    );
}

#[test]
fn masters_are_allowed_everything_without_bindings() {
    let s = Store::new();
    assert!(allowed(
        &s,
        &Attributes {
            user: UserInfo::admin(),
            verb: "delete".into(),
            resource_request: true,
            resource: "namespaces".into(),
            ..Default::default()
        }
    ));
    assert!(!allowed(
        &s,
        &res(
            "nobody",
            "system:authenticated",
            "get",
            "pods",
            "",
            "default",
            ""
        )
    ));
}

#[test]
fn bootstrap_policy_gives_authenticated_users_discovery_and_self_reviews() {
    let s = Store::new();
    super::bootstrap::ensure(&s);
    let u = "alice";
    let g = "system:authenticated";
    for p in [
        "/api",
        "/api/v1",
        "/apis",
        "/apis/apps/v1",
        "/version",
        "/openapi/v3",
        "/healthz",
    ] {
        assert!(allowed(&s, &url(u, g, "get", p)), "{p}");
    }
    assert!(allowed(
        &s,
        &res(
            u,
            g,
            "create",
            "selfsubjectaccessreviews",
            "",
            "",
            "authorization.k8s.io"
        )
    ));
    assert!(allowed(
        &s,
        &res(
            u,
            g,
            "create",
            "selfsubjectrulesreviews",
            "",
            "",
            "authorization.k8s.io"
        )
    ));
    assert!(allowed(
        &s,
        &res(
            u,
            g,
            "create",
            "selfsubjectreviews",
            "",
            "",
            "authentication.k8s.io"
        )
    ));
    assert!(!allowed(
        &s,
        &res(
            u,
            g,
            "create",
            "subjectaccessreviews",
            "",
            "",
            "authorization.k8s.io"
        )
    ));
    assert!(!allowed(
        &s,
        &res(u, g, "list", "configmaps", "", "default", "")
    ));
    assert!(!allowed(&s, &url(u, g, "post", "/api")));
    // The aggregated roles carry the rules of their parts.
    binding(&s, "ns1", "view", "ClusterRole", "view", &["User:alice"]);
    binding(&s, "ns1", "edit", "ClusterRole", "edit", &["User:bob"]);
    assert!(allowed(
        &s,
        &res(u, g, "list", "deployments", "", "ns1", "apps")
    ));
    assert!(!allowed(&s, &res(u, g, "get", "secrets", "", "ns1", "")));
    assert!(!allowed(&s, &res(u, g, "delete", "pods", "", "ns1", "")));
    assert!(allowed(&s, &res("bob", g, "delete", "pods", "", "ns1", "")));
    assert!(
        allowed(&s, &res("bob", g, "get", "secrets", "", "ns1", "")),
        "edit includes view and more"
    );
    assert!(allowed(
        &s,
        &res("bob", g, "patch", "deployments", "scale", "ns1", "apps")
    ));
    assert!(
        !allowed(&s, &res("bob", g, "create", "roles", "", "ns1", GROUP)),
        "edit cannot grant"
    );
}

/// rule_test.go TestCoversExactMatch, TestCoversSubresourceWildcard,
/// TestCoversResourceNameMatch, TestCoversNonResourceURLs and friends.
#[test]
#[allow(clippy::type_complexity)]
fn covers_like_the_rule_validation() {
    let names = |mut r: PolicyRule, n: &[&str]| {
        r.resource_names = n.iter().map(|s| s.to_string()).collect();
        r
    };
    let urls = |verbs: &[&str], u: &[&str]| PolicyRule {
        verbs: verbs.iter().map(|s| s.to_string()).collect(),
        non_resource_urls: u.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    };
    let cases: Vec<(
        &str,
        Vec<PolicyRule>,
        Vec<PolicyRule>,
        Result<(), Vec<&str>>,
    )> = vec![
        (
            "exact match",
            vec![pr(&["get"], &["v1"], &["builds"])],
            vec![pr(&["get"], &["v1"], &["builds"])],
            Ok(()),
        ),
        (
            "star verbs",
            vec![pr(&["*"], &["v1"], &["builds"])],
            vec![pr(&["get", "delete"], &["v1"], &["builds"])],
            Ok(()),
        ),
        (
            "star groups and resources",
            vec![pr(&["get"], &["*"], &["*"])],
            vec![pr(&["get"], &["apps", ""], &["deployments", "pods/status"])],
            Ok(()),
        ),
        (
            "missing verb",
            vec![pr(&["get", "list"], &[""], &["pods"])],
            vec![pr(&["get", "list", "delete"], &[""], &["pods"])],
            Err(vec![
                r#"{APIGroups:[""], Resources:["pods"], Verbs:["delete"]}"#,
            ]),
        ),
        (
            "missing verbs compacted",
            vec![],
            vec![pr(&["get", "list"], &[""], &["secrets"])],
            Err(vec![
                r#"{APIGroups:[""], Resources:["secrets"], Verbs:["get" "list"]}"#,
            ]),
        ),
        (
            "subresource wildcard",
            vec![pr(&["get"], &["v1"], &["*/status"])],
            vec![pr(&["get"], &["v1"], &["pods/status", "builds/status"])],
            Ok(()),
        ),
        (
            "subresource wildcard does not cover the parent",
            vec![pr(&["get"], &["v1"], &["*/status"])],
            vec![pr(&["get"], &["v1"], &["pods"])],
            Err(vec![
                r#"{APIGroups:["v1"], Resources:["pods"], Verbs:["get"]}"#,
            ]),
        ),
        (
            "resource names covered",
            vec![names(pr(&["get"], &["v1"], &["builds"]), &["foo", "bar"])],
            vec![names(pr(&["get"], &["v1"], &["builds"]), &["foo"])],
            Ok(()),
        ),
        (
            "unnamed owner covers named",
            vec![pr(&["get"], &["v1"], &["builds"])],
            vec![names(pr(&["get"], &["v1"], &["builds"]), &["foo"])],
            Ok(()),
        ),
        (
            "named owner does not cover unnamed",
            vec![names(pr(&["get"], &["v1"], &["builds"]), &["foo"])],
            vec![pr(&["get"], &["v1"], &["builds"])],
            Err(vec![
                r#"{APIGroups:["v1"], Resources:["builds"], Verbs:["get"]}"#,
            ]),
        ),
        (
            "non-resource prefix",
            vec![urls(&["get"], &["/apis/*"])],
            vec![urls(&["get"], &["/apis/v1", "/apis/apps/v1"])],
            Ok(()),
        ),
        (
            "non-resource not covered",
            vec![urls(&["get"], &["/apis/*"])],
            vec![urls(&["get", "post"], &["/api"])],
            Err(vec![
                r#"{NonResourceURLs:["/api"], Verbs:["get"]}"#,
                r#"{NonResourceURLs:["/api"], Verbs:["post"]}"#,
            ]),
        ),
    ];
    for (name, owner, requested, want) in cases {
        let got = covers(&owner, &requested);
        let want = want.map_err(|v| v.into_iter().map(String::from).collect::<Vec<_>>());
        assert_eq!(got, want, "{name}");
    }
}

#[test]
fn rules_for_collects_cluster_and_namespace_rules() {
    let s = Store::new();
    cluster_role(&s, "c", vec![rule("get", "", "nodes", "")]);
    cluster_binding(&s, "c", "c", &["Group:g"]);
    put(
        &s,
        "roles",
        Some("default"),
        json!({"metadata": {"name": "r", "namespace": "default"}, "rules": [rule("list", "", "pods", "")]}),
    );
    binding(&s, "default", "r", "Role", "r", &["User:u"]);
    let u = user("u", "g");
    let (rules, errors) = rules_for(&s, &u, "default");
    assert!(errors.is_empty());
    assert_eq!(rules.len(), 2);
    assert_eq!(rules_for(&s, &u, "").0.len(), 1);
    assert_eq!(rules_for(&s, &u, "other").0.len(), 1);
}
