//! The APIs that answer questions about identities instead of storing
//! objects: authorization.k8s.io access reviews, authentication.k8s.io
//! SelfSubjectReview and TokenReview, and the TokenRequest subresource
//! (`serviceaccounts/NAME/token`).

use serde_json::{json, Value};

use super::rbac::{self, PolicyRule};
use super::request::Attributes;
use super::token::{claims_for, ObjRef, ISSUER};
use super::UserInfo;
use crate::error::ApiError;
use crate::registry::{ResKey, ResourceType};
use crate::store::{now_rfc3339, Store};

/// Shortest and default TokenRequest lifetimes, as kube-apiserver's.
const MIN_EXPIRATION: i64 = 600;
const DEFAULT_EXPIRATION: i64 = 3600;

fn s(v: &Value, p: &str) -> String {
    v.pointer(p)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// Answers a POST of a review kind: the body comes back with its status.
pub(crate) fn review(
    store: &Store,
    auth: &super::Authenticator,
    user: &UserInfo,
    rt: &ResourceType,
    ns: Option<&str>,
    body: Value,
) -> Result<Value, ApiError> {
    let mut out = body;
    let invalid = |causes: &[(String, String)]| ApiError::invalid(&rt.group, &rt.kind, "", causes);
    let status = match rt.plural.as_str() {
        "selfsubjectaccessreviews" => {
            let a = spec_attributes(user, &out["spec"]).map_err(|c| invalid(&c))?;
            access_status(store, &a)
        }
        "subjectaccessreviews" | "localsubjectaccessreviews" => {
            let spec = &out["spec"];
            let subject = UserInfo {
                name: s(spec, "/user"),
                uid: s(spec, "/uid"),
                groups: spec
                    .get("groups")
                    .and_then(Value::as_array)
                    .map(|g| {
                        g.iter()
                            .filter_map(|x| x.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default(),
                extra: spec
                    .get("extra")
                    .cloned()
                    .and_then(|e| serde_json::from_value(e).ok())
                    .unwrap_or_default(),
            };
            if subject.name.is_empty() && subject.groups.is_empty() {
                return Err(invalid(&[(
                    "spec.user".into(),
                    "Invalid value: \"\": at least one of user or group must be specified".into(),
                )]));
            }
            let a = spec_attributes(&subject, spec).map_err(|c| invalid(&c))?;
            if let Some(ns) = ns {
                if a.namespace != ns {
                    return Err(invalid(&[(
                        "spec.resourceAttributes.namespace".into(),
                        format!(
                            "Invalid value: {:?}: must match metadata.namespace",
                            a.namespace
                        ),
                    )]));
                }
            }
            access_status(store, &a)
        }
        "selfsubjectrulesreviews" => {
            let ns = s(&out, "/spec/namespace");
            rules_status(store, user, &ns)
        }
        "selfsubjectreviews" => json!({"userInfo": user.to_json()}),
        "tokenreviews" => {
            let token = s(&out, "/spec/token");
            match auth.authenticate_token(store, &token) {
                Some(u) => {
                    json!({"authenticated": true, "user": u.to_json(), "audiences": [ISSUER]})
                }
                None => json!({"authenticated": false, "error": "invalid bearer token"}),
            }
        }
        _ => {
            return Err(ApiError::method_not_allowed(
                "the server does not allow this method on the requested resource",
            ))
        }
    };
    out["apiVersion"] = json!(rt.api_version());
    out["kind"] = json!(rt.kind);
    if !out.get("metadata").is_some_and(Value::is_object) {
        out["metadata"] = json!({});
    }
    out["status"] = status;
    Ok(out)
}

/// authorizer attributes from a SubjectAccessReviewSpec.
fn spec_attributes(user: &UserInfo, spec: &Value) -> Result<Attributes, Vec<(String, String)>> {
    let res = spec.get("resourceAttributes").filter(|v| v.is_object());
    let non = spec.get("nonResourceAttributes").filter(|v| v.is_object());
    match (res, non) {
        (Some(r), None) => Ok(Attributes {
            user: user.clone(),
            verb: s(r, "/verb"),
            resource_request: true,
            namespace: s(r, "/namespace"),
            api_group: s(r, "/group"),
            api_version: s(r, "/version"),
            resource: s(r, "/resource"),
            subresource: s(r, "/subresource"),
            name: s(r, "/name"),
            path: String::new(),
        }),
        (None, Some(n)) => Ok(Attributes {
            user: user.clone(),
            verb: s(n, "/verb"),
            path: s(n, "/path"),
            ..Default::default()
        }),
        (Some(_), Some(_)) => Err(vec![(
            "spec.nonResourceAttributes".into(),
            "Invalid value: \"null\": cannot be specified in combination with resourceAttributes".into(),
        )]),
        (None, None) => Err(vec![(
            "spec.resourceAttributes".into(),
            "Required value: exactly one of nonResourceAttributes or resourceAttributes must be specified".into(),
        )]),
    }
}

fn access_status(store: &Store, a: &Attributes) -> Value {
    let d = rbac::authorize(store, a);
    let mut st = json!({"allowed": d.allowed});
    if !d.reason.is_empty() {
        st["reason"] = json!(d.reason);
    }
    st
}

fn rules_status(store: &Store, user: &UserInfo, ns: &str) -> Value {
    let (rules, errors) = rbac::rules_for(store, user, ns);
    let (non, res): (Vec<PolicyRule>, Vec<PolicyRule>) = rules
        .into_iter()
        .partition(|r| !r.non_resource_urls.is_empty());
    let resource_rules: Vec<Value> = res
        .iter()
        .map(|r| {
            let mut v =
                json!({"verbs": r.verbs, "apiGroups": r.api_groups, "resources": r.resources});
            if !r.resource_names.is_empty() {
                v["resourceNames"] = json!(r.resource_names);
            }
            v
        })
        .collect();
    let non_resource_rules: Vec<Value> = non
        .iter()
        .map(|r| json!({"verbs": r.verbs, "nonResourceURLs": r.non_resource_urls}))
        .collect();
    let mut st = json!({
        "resourceRules": resource_rules,
        "nonResourceRules": non_resource_rules,
        "incomplete": !errors.is_empty(),
    });
    if !errors.is_empty() {
        st["evaluationError"] = json!(errors.join(", "));
    }
    st
}

/// POST serviceaccounts/NAME/token: a TokenRequest answered with a token.
pub(crate) fn token_request(
    store: &Store,
    auth: &super::Authenticator,
    ns: &str,
    sa_name: &str,
    body: Value,
) -> Result<Value, ApiError> {
    let sa = store.get(&ResKey::new("", "serviceaccounts"), Some(ns), sa_name)?;
    let invalid = |f: &str, m: String| {
        ApiError::invalid(
            "authentication.k8s.io",
            "TokenRequest",
            sa_name,
            &[(f.into(), m)],
        )
    };
    let spec = body.get("spec").cloned().unwrap_or(json!({}));
    let expiration = match spec.get("expirationSeconds") {
        None | Some(Value::Null) => DEFAULT_EXPIRATION,
        Some(v) => v.as_i64().ok_or_else(|| {
            invalid(
                "spec.expirationSeconds",
                format!("Invalid value: {v}: must be an integer"),
            )
        })?,
    };
    if expiration < MIN_EXPIRATION {
        return Err(invalid(
            "spec.expirationSeconds",
            format!("Invalid value: {expiration}: may not specify a duration less than 10 minutes"),
        ));
    }
    if expiration > 1 << 32 {
        return Err(invalid(
            "spec.expirationSeconds",
            format!(
                "Invalid value: {expiration}: may not specify a duration larger than 2^32 seconds"
            ),
        ));
    }
    let audiences: Vec<String> = spec
        .get("audiences")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .filter(|a: &Vec<String>| !a.is_empty())
        .unwrap_or_else(|| vec![ISSUER.to_string()]);
    let exp = chrono::Utc::now().timestamp() + expiration;
    let mut claims = claims_for(
        ns,
        ObjRef {
            name: sa_name.into(),
            uid: s(&sa, "/metadata/uid"),
        },
        audiences.clone(),
        Some(exp),
    );
    let bound = spec
        .get("boundObjectRef")
        .filter(|b| b.is_object())
        .cloned();
    if let Some(b) = &bound {
        let (kind, name) = (s(b, "/kind"), s(b, "/name"));
        let plural = match kind.as_str() {
            "Pod" => "pods",
            "Secret" => "secrets",
            other => {
                return Err(invalid(
                    "spec.boundObjectRef.kind",
                    format!("Unsupported value: {other:?}: supported values: \"Pod\", \"Secret\""),
                ))
            }
        };
        let obj = store.get(&ResKey::new("", plural), Some(ns), &name)?;
        let uid = s(&obj, "/metadata/uid");
        let want = s(b, "/uid");
        if !want.is_empty() && want != uid {
            return Err(ApiError::conflict("", plural, &name, &format!(
                "the UID in the bound object reference ({want}) does not match the UID in record. The object might have been deleted and then recreated"
            )));
        }
        let r = ObjRef { name, uid };
        if plural == "pods" {
            claims.kubernetes.pod = Some(r);
        } else {
            claims.kubernetes.secret = Some(r);
        }
    }
    let token = auth.issuer.sign(&claims);
    let expires = chrono::DateTime::from_timestamp(exp, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default();
    Ok(json!({
        "kind": "TokenRequest",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"name": sa_name, "namespace": ns, "creationTimestamp": now_rfc3339()},
        "spec": {"audiences": audiences, "expirationSeconds": expiration, "boundObjectRef": bound},
        "status": {"token": token, "expirationTimestamp": expires},
    }))
}
