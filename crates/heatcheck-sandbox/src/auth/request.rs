//! Request attributes from an HTTP request, as kube-apiserver's
//! RequestInfoFactory derives them (verb, API group, resource, subresource,
//! name, namespace), for the authorizer.

use super::UserInfo;

/// authorizer.Attributes: who asks to do what.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Attributes {
    pub(crate) user: UserInfo,
    pub verb: String,
    pub resource_request: bool,
    /// Non-resource requests: the URL path.
    pub path: String,
    pub namespace: String,
    pub api_group: String,
    pub api_version: String,
    pub resource: String,
    pub subresource: String,
    pub name: String,
}

/// `NewRequestInfo`: the attributes of `method path?query` for `user`.
pub(crate) fn attributes(
    user: &UserInfo,
    method: &str,
    path: &str,
    query: Option<&str>,
) -> Attributes {
    let mut a = Attributes {
        user: user.clone(),
        verb: method.to_ascii_lowercase(),
        path: path.to_string(),
        ..Default::default()
    };
    let parts: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    if parts.len() < 3 || !matches!(parts[0], "api" | "apis") {
        return a;
    }
    let mut rest = &parts[1..];
    if parts[0] == "apis" {
        if rest.len() < 3 {
            return a;
        }
        a.api_group = rest[0].to_string();
        rest = &rest[1..];
    }
    a.resource_request = true;
    a.api_version = rest[0].to_string();
    rest = &rest[1..];
    let special = matches!(rest[0], "watch" | "proxy" | "redirect");
    if special {
        if rest.len() < 2 {
            return a;
        }
        a.verb = rest[0].to_string();
        rest = &rest[1..];
    } else {
        a.verb = match method {
            "POST" => "create",
            "GET" | "HEAD" => "get",
            "PUT" => "update",
            "PATCH" => "patch",
            "DELETE" => "delete",
            _ => "",
        }
        .to_string();
    }
    if rest[0] == "namespaces" && rest.len() > 1 {
        a.namespace = rest[1].to_string();
        if rest.len() > 2 && !matches!(rest[2], "status" | "finalize") {
            rest = &rest[2..];
        }
    }
    let no_sub = matches!(a.verb.as_str(), "proxy" | "redirect");
    if rest.len() >= 3 && !no_sub {
        a.subresource = rest[2].to_string();
    }
    if rest.len() >= 2 {
        a.name = rest[1].to_string();
    }
    a.resource = rest[0].to_string();
    let param = |k: &str| -> Option<String> {
        query?.split('&').find_map(|kv| {
            let (key, v) = kv.split_once('=').unwrap_or((kv, ""));
            (key == k).then(|| percent_decode(v))
        })
    };
    if a.name.is_empty() && a.verb == "get" {
        a.verb = match param("watch").map(|v| v.to_ascii_lowercase()) {
            Some(v) if v != "false" && v != "0" => "watch",
            _ => "list",
        }
        .to_string();
    }
    // A list or watch of one object by field selector authorizes by name.
    if a.name.is_empty() && matches!(a.verb.as_str(), "list" | "watch") {
        if let Some(sel) = param("fieldSelector") {
            for term in sel.split(',') {
                let t = term.trim();
                let v = t
                    .strip_prefix("metadata.name==")
                    .or_else(|| t.strip_prefix("metadata.name="));
                if let Some(v) = v {
                    a.name = v.to_string();
                }
            }
        }
    }
    if a.name.is_empty() && a.verb == "delete" {
        a.verb = "deletecollection".into();
    }
    a
}

fn percent_decode(s: &str) -> String {
    let s = s.replace('+', " ");
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(method: &str, path: &str, query: Option<&str>) -> Attributes {
        attributes(&UserInfo::default(), method, path, query)
    }

    /// Cases from kubernetes' requestinfo_test.go.
    #[test]
    #[allow(clippy::type_complexity)]
    fn request_info_like_kube_apiserver() {
        // (method, url, verb, prefix group, namespace, resource, subresource, name)
        let cases: &[(&str, &str, Option<&str>, &str, &str, &str, &str, &str, &str)] = &[
            (
                "GET",
                "/api/v1/namespaces",
                None,
                "list",
                "",
                "",
                "namespaces",
                "",
                "",
            ),
            (
                "GET",
                "/api/v1/namespaces/other",
                None,
                "get",
                "",
                "other",
                "namespaces",
                "",
                "other",
            ),
            (
                "GET",
                "/api/v1/namespaces/other/pods",
                None,
                "list",
                "",
                "other",
                "pods",
                "",
                "",
            ),
            (
                "GET",
                "/api/v1/namespaces/other/pods/foo",
                None,
                "get",
                "",
                "other",
                "pods",
                "",
                "foo",
            ),
            (
                "HEAD",
                "/api/v1/namespaces/other/pods/foo",
                None,
                "get",
                "",
                "other",
                "pods",
                "",
                "foo",
            ),
            (
                "GET",
                "/api/v1/pods",
                Some("watch=true"),
                "watch",
                "",
                "",
                "pods",
                "",
                "",
            ),
            (
                "GET",
                "/api/v1/pods",
                Some("watch=false"),
                "list",
                "",
                "",
                "pods",
                "",
                "",
            ),
            (
                "GET",
                "/api/v1/watch/pods",
                None,
                "watch",
                "",
                "",
                "pods",
                "",
                "",
            ),
            (
                "GET",
                "/api/v1/watch/namespaces/other/pods",
                None,
                "watch",
                "",
                "other",
                "pods",
                "",
                "",
            ),
            (
                "GET",
                "/api/v1/namespaces/other/pods/foo/status",
                None,
                "get",
                "",
                "other",
                "pods",
                "status",
                "foo",
            ),
            (
                "PUT",
                "/api/v1/namespaces/other/finalize",
                None,
                "update",
                "",
                "other",
                "namespaces",
                "finalize",
                "other",
            ),
            (
                "PUT",
                "/api/v1/namespaces/other/status",
                None,
                "update",
                "",
                "other",
                "namespaces",
                "status",
                "other",
            ),
            (
                "POST",
                "/api/v1/namespaces/other/pods",
                None,
                "create",
                "",
                "other",
                "pods",
                "",
                "",
            ),
            (
                "PATCH",
                "/apis/apps/v1/namespaces/other/deployments/d/scale",
                None,
                "patch",
                "apps",
                "other",
                "deployments",
                "scale",
                "d",
            ),
            (
                "DELETE",
                "/api/v1/namespaces/other/pods/foo",
                None,
                "delete",
                "",
                "other",
                "pods",
                "",
                "foo",
            ),
            (
                "DELETE",
                "/api/v1/namespaces/other/pods",
                None,
                "deletecollection",
                "",
                "other",
                "pods",
                "",
                "",
            ),
            (
                "GET",
                "/api/v1/namespaces/other/pods",
                Some("fieldSelector=metadata.name%3Dfoo"),
                "list",
                "",
                "other",
                "pods",
                "",
                "foo",
            ),
            (
                "POST",
                "/api/v1/namespaces/ns/serviceaccounts/sa/token",
                None,
                "create",
                "",
                "ns",
                "serviceaccounts",
                "token",
                "sa",
            ),
            (
                "POST",
                "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
                None,
                "create",
                "authorization.k8s.io",
                "",
                "selfsubjectaccessreviews",
                "",
                "",
            ),
        ];
        for (m, p, q, verb, group, ns, res, sub, name) in cases {
            let a = attrs(m, p, *q);
            assert!(a.resource_request, "{m} {p}");
            assert_eq!(
                (
                    a.verb.as_str(),
                    a.api_group.as_str(),
                    a.namespace.as_str(),
                    a.resource.as_str(),
                    a.subresource.as_str(),
                    a.name.as_str()
                ),
                (*verb, *group, *ns, *res, *sub, *name),
                "{m} {p}"
            );
        }
    }

    #[test]
    fn discovery_and_other_paths_are_non_resource_requests() {
        for (m, p, verb) in [
            ("GET", "/api", "get"),
            ("GET", "/api/v1", "get"),
            ("GET", "/apis", "get"),
            ("GET", "/apis/apps", "get"),
            ("GET", "/apis/apps/v1", "get"),
            ("GET", "/version", "get"),
            ("POST", "/healthz", "post"),
            ("GET", "/openapi/v3/apis/apps/v1", "get"),
        ] {
            let a = attrs(m, p, None);
            assert!(!a.resource_request, "{p}");
            assert_eq!((a.verb.as_str(), a.path.as_str()), (verb, p));
        }
    }
}
