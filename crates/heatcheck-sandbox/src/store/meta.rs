//! Object metadata rules: type meta, namespaces, names, generated names.

use super::*;

pub(super) fn metadata_mut(obj: &mut Value) -> Result<&mut Map<String, Value>, ApiError> {
    let o = obj
        .as_object_mut()
        .ok_or_else(|| ApiError::bad_request("the body of the request must be a JSON object"))?;
    let meta = o.entry("metadata").or_insert_with(|| json!({}));
    if meta.is_null() {
        *meta = json!({});
    }
    meta.as_object_mut()
        .ok_or_else(|| ApiError::bad_request("metadata must be an object"))
}

/// apiVersion/kind in the body must name the URL's resource; missing ones are filled in.
/// A kind served at several versions (ReferenceGrant v1 and v1beta1, same schema) is stored
/// once; the body may name any of them.
pub(super) fn check_type_meta(
    rt: &ResourceType,
    reg: &Registry,
    obj: &mut Value,
) -> Result<(), ApiError> {
    let api_version = rt.api_version();
    let o = obj.as_object_mut().expect("checked by caller");
    match o.get("apiVersion").and_then(Value::as_str) {
        Some(v) if v != api_version && reg.by_kind(v, &rt.kind).is_some_and(|t| t.key() == rt.key()) => {}
        Some(v) if v != api_version => {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({v}) does not match the expected API version ({api_version})"
            )))
        }
        _ => {
            o.insert("apiVersion".into(), json!(api_version));
        }
    }
    match o.get("kind").and_then(Value::as_str) {
        Some(k) if k != rt.kind => {
            return Err(ApiError::bad_request(format!(
                "the kind in the data ({k}) does not match the expected kind ({})",
                rt.kind
            )))
        }
        _ => {
            o.insert("kind".into(), json!(rt.kind));
        }
    }
    Ok(())
}

pub(super) fn effective_namespace(
    rt: &ResourceType,
    url_ns: Option<&str>,
    obj: &Value,
) -> Result<Option<String>, ApiError> {
    if !rt.namespaced {
        return Ok(None);
    }
    let body_ns = obj
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty());
    match (url_ns, body_ns) {
        (Some(u), Some(b)) if u != b => Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        )),
        (Some(u), _) => Ok(Some(u.to_string())),
        (None, Some(b)) => Ok(Some(b.to_string())),
        (None, None) => Ok(Some("default".to_string())),
    }
}

pub(super) fn validate_name(rt: &ResourceType, name: &str) -> Result<(), ApiError> {
    let invalid = |msg: String| {
        ApiError::invalid(&rt.group, &rt.kind, name, &[("metadata.name".into(), msg)])
    };
    if name.is_empty() {
        return Err(invalid(
            "Required value: name or generateName is required".into(),
        ));
    }
    // RBAC names are path segments (`system:discovery`), as the real server's.
    if rt.group == "rbac.authorization.k8s.io" {
        let why = match name {
            "." | ".." => Some(format!("may not be '{name}'")),
            _ if name.contains('/') => Some("may not contain '/'".to_string()),
            _ if name.contains('%') => Some("may not contain '%'".to_string()),
            _ => None,
        };
        return match why {
            Some(w) => Err(invalid(format!("Invalid value: \"{name}\": {w}"))),
            None => Ok(()),
        };
    }
    // Namespaces and Services are DNS labels; everything else a DNS subdomain.
    let label = rt.group.is_empty() && (rt.plural == "namespaces" || rt.plural == "services");
    let max = if label { 63 } else { 253 };
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || (!label && c == '.'));
    let ends_ok = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .last()
            .is_some_and(|c| c.is_ascii_alphanumeric());
    if name.len() > max || !ok_chars || !ends_ok {
        let what = if label {
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character"
        } else {
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"
        };
        return Err(invalid(format!("Invalid value: \"{name}\": {what}")));
    }
    Ok(())
}

/// The spec is everything but metadata and status.
/// The grace period a delete gives a pod, as the API server's pod strategy
/// computes it; None when the pod goes at once: not a pod, grace 0, never
/// scheduled (no kubelet would stop it) or already finished.
pub(super) fn pod_grace_period(key: &ResKey, pod: &Value, requested: Option<i64>) -> Option<i64> {
    if !(key.group.is_empty() && key.plural == "pods") {
        return None;
    }
    let scheduled = pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .is_some_and(|n| !n.is_empty());
    let finished = matches!(
        pod.pointer("/status/phase").and_then(Value::as_str),
        Some("Succeeded" | "Failed")
    );
    if !scheduled || finished {
        return None;
    }
    let grace = requested
        .or_else(|| {
            pod.pointer("/spec/terminationGracePeriodSeconds")
                .and_then(Value::as_i64)
        })
        .unwrap_or(DEFAULT_TERMINATION_GRACE_SECONDS)
        .max(0);
    (grace > 0).then_some(grace)
}

/// `terminationGracePeriodSeconds` when the pod does not say.
pub(super) const DEFAULT_TERMINATION_GRACE_SECONDS: i64 = 30;

pub(super) fn spec_changed(a: &Value, b: &Value) -> bool {
    let strip = |v: &Value| -> Map<String, Value> {
        let mut m = v.as_object().cloned().unwrap_or_default();
        m.remove("metadata");
        m.remove("status");
        m
    };
    strip(a) != strip(b)
}

pub(crate) fn random_suffix(n: usize) -> String {
    use rand::Rng;
    // The alphabet Kubernetes uses for generated names (no vowels, no 0/1/3).
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    (0..n)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}
