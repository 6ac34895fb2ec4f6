//! The verbs on resource URLs: get, list, create, update, patch, delete,
//! deletecollection, and the status and scale subresources.

use axum::body::Body;
use base64::Engine;
use http::{Method, Response};
use serde_json::{json, Map, Value};

use super::table::{self, IncludeObject};
use super::{
    apply, check_field_validation, decode_json, decode_yaml, dry_run, json_response,
    json_response_as, parse_delete_options, ApiState, Req,
};
use crate::auth::{admission, review};
use crate::error::ApiError;
use crate::patch::strategic_merge;
use crate::registry::{Registry, ResourceType};
use crate::store::{DeleteOptions, WriteOptions};

use super::path::ResourcePath;
use super::select::{partial, selectors};

/// Attempts of a read-modify-write (patch, scale) before giving up on conflicts.
const PATCH_ATTEMPTS: usize = 64;

const TABLE_CONTENT_TYPE: &str = "application/json;as=Table;v=v1;g=meta.k8s.io";

fn not_found() -> ApiError {
    ApiError {
        code: 404,
        reason: "NotFound",
        message: "the server could not find the requested resource".into(),
        details: None,
    }
}

fn method_not_allowed() -> ApiError {
    ApiError::method_not_allowed("the server does not allow this method on the requested resource")
}

pub(super) async fn dispatch(
    state: &ApiState,
    reg: &Registry,
    p: ResourcePath,
    r: Req,
) -> Result<Response<Body>, ApiError> {
    let rt = reg
        .by_path(&p.group, &p.version, &p.plural)
        .cloned()
        .ok_or_else(not_found)?;
    if p.namespace.is_some() && !rt.namespaced {
        return Err(not_found());
    }
    if rt.namespaced && p.namespace.is_none() && p.name.is_some() {
        return Err(not_found());
    }
    // A real server has no protobuf form for custom resources.
    if rt.crd.is_some() && r.media_type() == crate::protobuf::MEDIA_TYPE {
        return Err(ApiError::unsupported_media_type(
            crate::protobuf::MEDIA_TYPE,
        ));
    }
    let ns = p.namespace.as_deref();
    if rt.create_only {
        return match (r.method.clone(), p.name.as_deref()) {
            (Method::POST, None) if !rt.namespaced || ns.is_some() => {
                let body = r.object_body()?;
                let out = review::review(&state.store, &state.auth, &r.user, &rt, ns, body)?;
                Ok(json_response(201, &out))
            }
            _ => Err(method_not_allowed()),
        };
    }
    let watching = p.watch_prefix || r.query.flag("watch");
    match (p.name.as_deref(), p.subresource.as_deref()) {
        (None, _) => match r.method {
            Method::GET if watching => super::watch::watch(state, &rt, ns, None, &r),
            Method::GET => list(state, &rt, ns, &r),
            Method::POST if rt.namespaced && ns.is_none() => Err(method_not_allowed()),
            Method::POST => create(state, &rt, ns, &r),
            Method::DELETE => delete_collection(state, &rt, ns, &r),
            _ => Err(method_not_allowed()),
        },
        (Some(name), None) => match r.method {
            Method::GET if watching => super::watch::watch(state, &rt, ns, Some(name), &r),
            Method::GET => {
                let obj = state.store.get(&rt.key(), ns, name)?;
                Ok(respond_object(&rt, &r, obj, 200))
            }
            Method::PUT => update(state, &rt, ns, name, &r),
            Method::PATCH => patch(state, &rt, ns, name, Part::Main, &r).await,
            Method::DELETE => delete(state, &rt, ns, name, &r),
            _ => Err(method_not_allowed()),
        },
        (Some(name), Some("status")) if rt.has_status() => match r.method {
            Method::GET => {
                let obj = state.store.get(&rt.key(), ns, name)?;
                Ok(json_response(200, &obj))
            }
            Method::PUT => {
                let dry = dry_run(&r.query)?;
                check_field_validation(&r.query)?;
                let body = r.object_body()?;
                let out = state.store.update_status(
                    &rt.key(),
                    ns,
                    name,
                    body,
                    &WriteOptions { dry_run: dry },
                )?;
                Ok(json_response(200, &out))
            }
            Method::PATCH => patch(state, &rt, ns, name, Part::Status, &r).await,
            _ => Err(method_not_allowed()),
        },
        (Some(name), Some("scale")) if rt.has_scale() => match r.method {
            Method::GET => {
                let obj = state.store.get(&rt.key(), ns, name)?;
                Ok(json_response(200, &scale_of(&obj)))
            }
            Method::PUT | Method::PATCH => patch(state, &rt, ns, name, Part::Scale, &r).await,
            _ => Err(method_not_allowed()),
        },
        (Some(name), Some("eviction")) if rt.has_eviction() => match (r.method.clone(), ns) {
            (Method::POST, Some(ns)) => {
                let body = r.object_body()?;
                let out = super::eviction::evict(&state.store, ns, name, &body, &r.query)?;
                Ok(json_response(201, &out))
            }
            _ => Err(method_not_allowed()),
        },
        (Some(name), Some("token")) if rt.has_token() => match (r.method.clone(), ns) {
            (Method::POST, Some(ns)) => {
                let body = r.object_body()?;
                let out = review::token_request(&state.store, &state.auth, ns, name, body)?;
                Ok(json_response(201, &out))
            }
            _ => Err(method_not_allowed()),
        },
        (Some(_), Some(_)) => Err(not_found()),
    }
}

/// An object in the representation the client asked for.
fn respond_object(rt: &ResourceType, r: &Req, mut obj: Value, code: u16) -> Response<Body> {
    // A kind served at several versions answers in the version the URL names.
    if let Some(v) = obj.get_mut("apiVersion") {
        *v = json!(rt.api_version());
    }
    if r.accepts_as("Table") {
        let include =
            IncludeObject::parse(r.query.get("includeObject")).unwrap_or(IncludeObject::Metadata);
        let rv = obj
            .pointer("/metadata/resourceVersion")
            .cloned()
            .unwrap_or(json!(""));
        let t = table::table(rt, &[obj], include, json!({"resourceVersion": rv}));
        return json_response_as(code, &t, TABLE_CONTENT_TYPE);
    }
    if r.accepts_as("PartialObjectMetadata") {
        return json_response_as(
            code,
            &partial(&obj),
            "application/json;as=PartialObjectMetadata;v=v1;g=meta.k8s.io",
        );
    }
    json_response(code, &obj)
}

/// The opaque `continue` token: where the next page starts, and the list's version.
fn encode_continue(rv: u64, after: &(String, String)) -> String {
    let raw = json!({"v": "meta.k8s.io/v1", "rv": rv, "ns": after.0, "name": after.1});
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw.to_string())
}

fn decode_continue(token: &str) -> Result<(u64, (String, String)), ApiError> {
    let bad = |why: &str| ApiError::bad_request(format!("continue key is not valid: {why}"));
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.trim_end_matches('='))
        .map_err(|_| bad("not base64"))?;
    let v: Value = serde_json::from_slice(&raw).map_err(|_| bad("not JSON"))?;
    let rv = v
        .get("rv")
        .and_then(Value::as_u64)
        .ok_or_else(|| bad("no resource version"))?;
    let ns = v
        .get("ns")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("no key"))?;
    let name = v
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("no key"))?;
    Ok((rv, (ns.to_string(), name.to_string())))
}

fn list(
    state: &ApiState,
    rt: &ResourceType,
    ns: Option<&str>,
    r: &Req,
) -> Result<Response<Body>, ApiError> {
    let (label, field) = selectors(rt, r)?;
    let limit = match r.query.get("limit") {
        None | Some("") => None,
        Some(l) => match l.parse::<i64>() {
            Ok(n) if n > 0 => Some(n as usize),
            Ok(_) => None,
            Err(_) => {
                return Err(ApiError::bad_request(format!(
                    "limit: Invalid value: {l:?}: must be an integer"
                )))
            }
        },
    };
    let cont = match r.query.get("continue") {
        None | Some("") => None,
        Some(t) => Some(decode_continue(t)?),
    };
    let include =
        IncludeObject::parse(r.query.get("includeObject")).map_err(ApiError::bad_request)?;
    let page = state.store.list(
        &rt.key(),
        ns,
        &|o| label.matches(o) && field.matches(o),
        limit,
        cont.as_ref().map(|c| &c.1),
    )?;
    // All pages of one list report the first page's version.
    let rv = cont.as_ref().map(|c| c.0).unwrap_or(page.resource_version);
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if let Some(next) = &page.next {
        meta["continue"] = json!(encode_continue(rv, next));
        meta["remainingItemCount"] = json!(page.remaining);
    }
    if r.accepts_as("Table") {
        let t = table::table(rt, &page.items, include, meta);
        return Ok(json_response_as(200, &t, TABLE_CONTENT_TYPE));
    }
    if r.accepts_as("PartialObjectMetadataList") {
        let items: Vec<Value> = page.items.iter().map(partial).collect();
        let l = json!({"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1", "metadata": meta, "items": items});
        return Ok(json_response_as(
            200,
            &l,
            "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io",
        ));
    }
    let l = json!({
        "kind": format!("{}List", rt.kind),
        "apiVersion": rt.api_version(),
        "metadata": meta,
        "items": page.items,
    });
    Ok(json_response(200, &l))
}

fn create(
    state: &ApiState,
    rt: &ResourceType,
    ns: Option<&str>,
    r: &Req,
) -> Result<Response<Body>, ApiError> {
    let dry = dry_run(&r.query)?;
    check_field_validation(&r.query)?;
    let body = r.object_body()?;
    admission::admit(&state.store, &r.user, rt, ns, None, &body)?;
    let out = state
        .store
        .create(&rt.key(), ns, body, &WriteOptions { dry_run: dry })?;
    Ok(json_response(201, &out))
}

fn update(
    state: &ApiState,
    rt: &ResourceType,
    ns: Option<&str>,
    name: &str,
    r: &Req,
) -> Result<Response<Body>, ApiError> {
    let dry = dry_run(&r.query)?;
    check_field_validation(&r.query)?;
    let mut body = r.object_body()?;
    // An update without managedFields keeps the stored ones, as the server does.
    if body.pointer("/metadata/managedFields").is_none() {
        if let Ok(cur) = state.store.get(&rt.key(), ns, name) {
            if let (Some(mf), Some(meta)) = (
                cur.pointer("/metadata/managedFields"),
                body.get_mut("metadata").and_then(Value::as_object_mut),
            ) {
                meta.insert("managedFields".into(), mf.clone());
            }
        }
    }
    let current = state.store.get(&rt.key(), ns, name).ok();
    admission::admit(&state.store, &r.user, rt, ns, current.as_ref(), &body)?;
    let out = state
        .store
        .update(&rt.key(), ns, name, body, &WriteOptions { dry_run: dry })?;
    Ok(json_response(200, &out))
}

/// DeleteOptions from the body (if any) and the query.
fn delete_options(r: &Req) -> Result<DeleteOptions, ApiError> {
    let body = if r.body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else if r.media_type() == crate::protobuf::MEDIA_TYPE {
        // client-go's typed clients send DeleteOptions as protobuf too.
        super::decode_protobuf(&r.body, crate::protobuf::MEDIA_TYPE)?
    } else {
        let v = decode_json(&r.body)?;
        if !v.is_object() {
            return Err(ApiError::bad_request("DeleteOptions must be a JSON object"));
        }
        v
    };
    parse_delete_options(&body, &r.query)
}

fn still_present(obj: &Value) -> bool {
    let graceful = obj
        .pointer("/metadata/deletionGracePeriodSeconds")
        .and_then(Value::as_i64)
        .is_some_and(|g| g > 0);
    obj.pointer("/metadata/deletionTimestamp").is_some()
        && (graceful
            || obj
                .pointer("/metadata/finalizers")
                .and_then(Value::as_array)
                .is_some_and(|f| !f.is_empty()))
}

fn delete(
    state: &ApiState,
    rt: &ResourceType,
    ns: Option<&str>,
    name: &str,
    r: &Req,
) -> Result<Response<Body>, ApiError> {
    let opts = delete_options(r)?;
    let out = state.store.delete(&rt.key(), ns, name, &opts)?;
    let pending = if opts.dry_run {
        out.pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|f| !f.is_empty())
    } else {
        still_present(&out)
    };
    if pending {
        // Deletion waits for finalizers: the object itself comes back.
        return Ok(json_response(200, &out));
    }
    Ok(json_response(
        200,
        &super::success_status(json!({
            "name": name,
            "group": rt.group,
            "kind": rt.plural,
            "uid": out.pointer("/metadata/uid").cloned().unwrap_or(Value::Null),
        })),
    ))
}

fn delete_collection(
    state: &ApiState,
    rt: &ResourceType,
    ns: Option<&str>,
    r: &Req,
) -> Result<Response<Body>, ApiError> {
    let (label, field) = selectors(rt, r)?;
    let opts = delete_options(r)?;
    let page = state.store.list(
        &rt.key(),
        ns,
        &|o| label.matches(o) && field.matches(o),
        None,
        None,
    )?;
    let mut deleted = Vec::new();
    for o in page.items {
        let name = o
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let ons = o.pointer("/metadata/namespace").and_then(Value::as_str);
        match state.store.delete(&rt.key(), ons, name, &opts) {
            Ok(d) => deleted.push(d),
            // Gone meanwhile (e.g. garbage-collected with its owner).
            Err(e) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    let l = json!({
        "kind": format!("{}List", rt.kind),
        "apiVersion": rt.api_version(),
        "metadata": {"resourceVersion": state.store.resource_version().to_string()},
        "items": deleted,
    });
    Ok(json_response(200, &l))
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Part {
    Main,
    Status,
    Scale,
}

#[derive(Debug)]
enum PatchKind {
    Merge(Value),
    Json(json_patch::Patch),
    Strategic(Value),
    Apply {
        config: Value,
        manager: String,
    },
    /// PUT on /scale: the body replaces the Scale.
    Replace(Value),
}

fn patch_kind(rt: &ResourceType, part: Part, r: &Req) -> Result<PatchKind, ApiError> {
    if r.method == Method::PUT {
        return Ok(PatchKind::Replace(r.object_body()?));
    }
    let mt = r.media_type();
    match mt.as_str() {
        "application/merge-patch+json" => Ok(PatchKind::Merge(decode_json(&r.body)?)),
        "application/json-patch+json" => {
            let v = decode_json(&r.body)?;
            let p: json_patch::Patch = serde_json::from_value(v).map_err(|e| {
                ApiError::bad_request(format!("the JSON patch could not be decoded: {e}"))
            })?;
            Ok(PatchKind::Json(p))
        }
        "application/strategic-merge-patch+json" => {
            if rt.crd.is_some() {
                return Err(ApiError::unsupported_media_type(&mt));
            }
            let v = decode_json(&r.body)?;
            if !v.is_object() {
                return Err(ApiError::bad_request(
                    "strategic merge patch must be a JSON object",
                ));
            }
            Ok(PatchKind::Strategic(v))
        }
        "application/apply-patch+yaml" => {
            let manager = r.query.get("fieldManager").unwrap_or_default();
            if manager.is_empty() {
                return Err(ApiError::bad_request(
                    "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
                ));
            }
            if part == Part::Scale {
                return Err(ApiError::unsupported_media_type(&mt));
            }
            let config = decode_yaml(&r.body)?;
            if !config.is_object() {
                return Err(ApiError::bad_request(
                    "the applied configuration must be an object",
                ));
            }
            Ok(PatchKind::Apply {
                config,
                manager: manager.to_string(),
            })
        }
        _ => Err(ApiError::unsupported_media_type(
            r.headers
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default(),
        )),
    }
}

fn rv_of(v: &Value) -> String {
    v.pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn set_rv(v: &mut Value, rv: &str) {
    if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        m.insert("resourceVersion".into(), json!(rv));
    }
}

/// Patch (and PUT on /scale): read, compute, write with the read version;
/// a conflict with a concurrent writer retries, so no update is lost.
async fn patch(
    state: &ApiState,
    rt: &ResourceType,
    ns: Option<&str>,
    name: &str,
    part: Part,
    r: &Req,
) -> Result<Response<Body>, ApiError> {
    let dry = dry_run(&r.query)?;
    check_field_validation(&r.query)?;
    let kind = patch_kind(rt, part, r)?;
    let opts = WriteOptions { dry_run: dry };
    let key = rt.key();
    for attempt in 0..PATCH_ATTEMPTS {
        let current = match state.store.get(&key, ns, name) {
            Ok(c) => c,
            Err(e) if e.code == 404 && part == Part::Main => {
                if let PatchKind::Apply { config, manager } = &kind {
                    let mut obj = config.clone();
                    obj["metadata"]["name"] = json!(name);
                    admission::admit(&state.store, &r.user, rt, ns, None, &obj)?;
                    return apply_create(state, rt, ns, name, config, manager, &opts);
                }
                return Err(e);
            }
            Err(e) => return Err(e),
        };
        let cur_rv = rv_of(&current);
        let target = match part {
            Part::Scale => scale_of(&current),
            _ => current.clone(),
        };
        let mut next = compute(rt, part, target, &kind)?;
        // A version the patch itself names is a precondition: no retry.
        let explicit = {
            let v = rv_of(&next);
            (!v.is_empty() && v != cur_rv).then_some(v)
        };
        if part == Part::Scale {
            let replicas = next
                .pointer("/spec/replicas")
                .and_then(Value::as_i64)
                .ok_or_else(|| {
                    ApiError::invalid(
                        "autoscaling",
                        "Scale",
                        name,
                        &[("spec.replicas".into(), "Required value".into())],
                    )
                })?;
            if replicas < 0 {
                return Err(ApiError::invalid(
                    "autoscaling",
                    "Scale",
                    name,
                    &[(
                        "spec.replicas".into(),
                        format!("Invalid value: {replicas}: must be greater than or equal to 0"),
                    )],
                ));
            }
            let mut obj = current.clone();
            obj["spec"]["replicas"] = json!(replicas);
            next = obj;
        }
        set_rv(&mut next, explicit.as_deref().unwrap_or(&cur_rv));
        if part == Part::Main {
            admission::admit(&state.store, &r.user, rt, ns, Some(&current), &next)?;
        }
        let res = match part {
            Part::Status => state.store.update_status(&key, ns, name, next, &opts),
            _ => state.store.update(&key, ns, name, next, &opts),
        };
        match res {
            Err(e)
                if e.reason == "Conflict" && explicit.is_none() && attempt + 1 < PATCH_ATTEMPTS =>
            {
                tokio::task::yield_now().await;
                continue;
            }
            Err(e) => return Err(e),
            Ok(out) => {
                let body = if part == Part::Scale {
                    scale_of(&out)
                } else {
                    out
                };
                return Ok(json_response(200, &body));
            }
        }
    }
    Err(ApiError::conflict(
        &rt.group,
        &rt.plural,
        name,
        "too many concurrent updates, please retry",
    ))
}

fn compute(
    rt: &ResourceType,
    part: Part,
    mut target: Value,
    kind: &PatchKind,
) -> Result<Value, ApiError> {
    let invalid = |m: String| ApiError {
        code: 422,
        reason: "Invalid",
        message: m,
        details: None,
    };
    match kind {
        PatchKind::Merge(p) => {
            json_patch::merge(&mut target, p);
        }
        PatchKind::Json(p) => {
            json_patch::patch(&mut target, p)
                .map_err(|e| invalid(format!("the JSON patch could not be applied: {e}")))?;
        }
        PatchKind::Strategic(p) => {
            strategic_merge(&mut target, p).map_err(|e| invalid(e.0))?;
        }
        PatchKind::Apply { config, manager } => {
            let sub = (part == Part::Status).then_some("status");
            target = apply::apply(&target, config, manager, &rt.api_version(), sub)
                .map_err(|e| invalid(e.0))?;
        }
        PatchKind::Replace(v) => target = v.clone(),
    }
    if !target.is_object() {
        return Err(ApiError::bad_request(
            "the patched object must be a JSON object",
        ));
    }
    Ok(target)
}

/// Server-side apply of an object that does not exist yet: create it.
fn apply_create(
    state: &ApiState,
    rt: &ResourceType,
    ns: Option<&str>,
    name: &str,
    config: &Value,
    manager: &str,
    opts: &WriteOptions,
) -> Result<Response<Body>, ApiError> {
    let mut obj = config.clone();
    let meta = obj
        .as_object_mut()
        .ok_or_else(|| ApiError::bad_request("the applied configuration must be an object"))?
        .entry("metadata")
        .or_insert_with(|| json!({}));
    let meta = meta
        .as_object_mut()
        .ok_or_else(|| ApiError::bad_request("metadata must be an object"))?;
    match meta.get("name").and_then(Value::as_str) {
        Some(n) if n != name => {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({n}) does not match the name on the URL ({name})"
            )))
        }
        _ => {
            meta.insert("name".into(), json!(name));
        }
    }
    meta.remove("resourceVersion");
    let created = state.store.create(&rt.key(), ns, obj, opts)?;
    let entry = apply::managed_entry(manager, &rt.api_version(), apply::fieldset(config), None);
    let mut with_fields = created;
    with_fields["metadata"]["managedFields"] = json!([entry]);
    if opts.dry_run {
        return Ok(json_response(201, &with_fields));
    }
    // The store assigns server metadata on create and drops managedFields:
    // record them with a follow-up write (retried if someone wrote between).
    let key = rt.key();
    let obj_ns = with_fields
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .map(str::to_string);
    for _ in 0..PATCH_ATTEMPTS {
        match state
            .store
            .update(&key, obj_ns.as_deref(), name, with_fields.clone(), opts)
        {
            Ok(out) => return Ok(json_response(201, &out)),
            Err(e) if e.reason == "Conflict" => {
                let mut cur = state.store.get(&key, obj_ns.as_deref(), name)?;
                let mut entries: Vec<Value> = cur
                    .pointer("/metadata/managedFields")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                entries.retain(|e| e["manager"] != manager);
                entries.push(entry.clone());
                cur["metadata"]["managedFields"] = json!(entries);
                with_fields = cur;
            }
            Err(e) => return Err(e),
        }
    }
    Err(ApiError::conflict(
        &rt.group,
        &rt.plural,
        name,
        "too many concurrent updates, please retry",
    ))
}

/// autoscaling/v1 Scale of an object with a scale subresource.
fn scale_of(obj: &Value) -> Value {
    let mut meta = Map::new();
    for k in [
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "creationTimestamp",
    ] {
        if let Some(v) = obj.pointer(&format!("/metadata/{k}")) {
            meta.insert(k.into(), v.clone());
        }
    }
    let selector: Vec<String> = obj
        .pointer("/spec/selector/matchLabels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default();
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": meta,
        "spec": {"replicas": obj.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1)},
        "status": {
            "replicas": obj.pointer("/status/replicas").and_then(Value::as_i64).unwrap_or(0),
            "selector": selector.join(","),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_tokens_round_trip_and_reject_garbage() {
        let t = encode_continue(42, &("ns".into(), "a".into()));
        assert_eq!(
            decode_continue(&t).unwrap(),
            (42, ("ns".into(), "a".into()))
        );
        assert_eq!(decode_continue("!!!").unwrap_err().code, 400);
        let not_json = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("x");
        assert_eq!(decode_continue(&not_json).unwrap_err().code, 400);
    }

    #[test]
    fn scale_reads_replicas_and_selector() {
        let d = json!({"metadata": {"name": "d", "resourceVersion": "5"},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}}, "status": {"replicas": 2}});
        let s = scale_of(&d);
        assert_eq!(s["spec"]["replicas"], 3);
        assert_eq!(s["status"]["replicas"], 2);
        assert_eq!(s["status"]["selector"], "app=web");
        assert_eq!(s["metadata"]["resourceVersion"], "5");
    }
}
