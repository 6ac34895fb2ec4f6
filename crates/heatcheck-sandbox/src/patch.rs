//! Strategic merge patch (application/strategic-merge-patch+json), as the API
//! server applies it to built-in kinds: lists with a merge key are merged item
//! by item, other lists are replaced, `null` deletes, and the `$patch`,
//! `$deleteFromPrimitiveList/...` directives are honoured.

use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub(crate) struct PatchError(pub String);

/// How a list field merges.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum ListStrategy<'a> {
    /// Items are maps identified by this key.
    MergeKey(&'a str),
    /// A list of scalars merged as a set (e.g. `finalizers`).
    PrimitiveSet,
    /// Replaced as a whole.
    Atomic,
}

/// The merge strategy of a list field, keyed by field name as the built-in
/// types declare `patchMergeKey`. `items` disambiguates `ports`: container
/// ports merge by containerPort, service ports by port.
pub(crate) fn list_strategy<'a>(field: &str, items: &'a [Value]) -> ListStrategy<'a> {
    match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "env"
        | "volumes"
        | "imagePullSecrets"
        | "resourceClaims" => ListStrategy::MergeKey("name"),
        "volumeMounts" => ListStrategy::MergeKey("mountPath"),
        "volumeDevices" => ListStrategy::MergeKey("devicePath"),
        "conditions" => ListStrategy::MergeKey("type"),
        "hostAliases" => ListStrategy::MergeKey("ip"),
        "ownerReferences" => ListStrategy::MergeKey("uid"),
        "topologySpreadConstraints" => ListStrategy::MergeKey("topologyKey"),
        "readinessGates" => ListStrategy::MergeKey("conditionType"),
        "ports" => {
            let has = |k: &str| {
                items
                    .iter()
                    .any(|i| i.as_object().is_some_and(|o| o.contains_key(k)))
            };
            if has("containerPort") {
                ListStrategy::MergeKey("containerPort")
            } else if has("port") {
                ListStrategy::MergeKey("port")
            } else {
                ListStrategy::Atomic
            }
        }
        "finalizers" => ListStrategy::PrimitiveSet,
        _ => ListStrategy::Atomic,
    }
}

/// Applies a strategic merge patch to `target` in place.
pub(crate) fn strategic_merge(target: &mut Value, patch: &Value) -> Result<(), PatchError> {
    let Some(p) = patch.as_object() else {
        return Err(PatchError(
            "strategic merge patch must be a JSON object".into(),
        ));
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    merge_map(target.as_object_mut().expect("made an object"), p)
}

fn merge_map(
    target: &mut Map<String, Value>,
    patch: &Map<String, Value>,
) -> Result<(), PatchError> {
    match patch.get("$patch").and_then(Value::as_str) {
        Some("replace") => {
            let mut m = patch.clone();
            m.remove("$patch");
            strip_directives(&mut m);
            *target = m;
            return Ok(());
        }
        Some("delete") => {
            target.clear();
            return Ok(());
        }
        Some(other) => return Err(PatchError(format!("unknown patch type: {other:?} in map"))),
        None => {}
    }
    for (k, v) in patch {
        if let Some(field) = k.strip_prefix("$deleteFromPrimitiveList/") {
            let drop = v.as_array().cloned().unwrap_or_default();
            if let Some(Value::Array(list)) = target.get_mut(field) {
                list.retain(|x| !drop.contains(x));
            }
            continue;
        }
        if k.starts_with('$') {
            // $setElementOrder/..., $retainKeys: ordering hints, not data.
            continue;
        }
        match v {
            Value::Null => {
                target.remove(k);
            }
            Value::Object(pm) => {
                if pm.get("$patch").and_then(Value::as_str) == Some("delete") {
                    target.remove(k);
                    continue;
                }
                let entry = target
                    .entry(k.clone())
                    .or_insert_with(|| Value::Object(Map::new()));
                if !entry.is_object() {
                    *entry = Value::Object(Map::new());
                }
                merge_map(entry.as_object_mut().expect("made an object"), pm)?;
            }
            Value::Array(items) => {
                let merged = match target.get(k) {
                    Some(Value::Array(cur)) => merge_list(k, cur, items)?,
                    _ => merge_list(k, &[], items)?,
                };
                target.insert(k.clone(), Value::Array(merged));
            }
            scalar => {
                target.insert(k.clone(), scalar.clone());
            }
        }
    }
    Ok(())
}

fn merge_list(field: &str, current: &[Value], patch: &[Value]) -> Result<Vec<Value>, PatchError> {
    // `{"$patch": "replace"}` in a list replaces it with the other items.
    let replace = patch
        .iter()
        .any(|i| i.get("$patch").and_then(Value::as_str) == Some("replace"));
    if replace {
        return Ok(patch
            .iter()
            .filter(|i| i.get("$patch").is_none())
            .cloned()
            .map(|mut i| {
                if let Some(m) = i.as_object_mut() {
                    strip_directives(m);
                }
                i
            })
            .collect());
    }
    let strategy = match list_strategy(field, patch) {
        // The merge key may only be visible on the stored items.
        ListStrategy::Atomic if field == "ports" => list_strategy(field, current),
        s => s,
    };
    match strategy {
        ListStrategy::Atomic => Ok(patch
            .iter()
            .cloned()
            .map(|mut i| {
                if let Some(m) = i.as_object_mut() {
                    strip_directives(m);
                }
                i
            })
            .collect()),
        ListStrategy::PrimitiveSet => {
            let mut out = current.to_vec();
            for i in patch {
                if !out.contains(i) {
                    out.push(i.clone());
                }
            }
            Ok(out)
        }
        ListStrategy::MergeKey(key) => {
            let mut out = current.to_vec();
            for item in patch {
                let Some(pm) = item.as_object() else {
                    return Err(PatchError(format!(
                        "{field}: list items must be objects to merge by {key:?}"
                    )));
                };
                let Some(kv) = pm.get(key) else {
                    return Err(PatchError(format!(
                        "map: {item} does not contain declared merge key: {key}"
                    )));
                };
                let pos = out.iter().position(|c| c.get(key) == Some(kv));
                let delete = pm.get("$patch").and_then(Value::as_str) == Some("delete");
                match (pos, delete) {
                    (Some(p), true) => {
                        out.remove(p);
                    }
                    (None, true) => {}
                    (Some(p), false) => {
                        let slot = &mut out[p];
                        if !slot.is_object() {
                            *slot = Value::Object(Map::new());
                        }
                        merge_map(slot.as_object_mut().expect("made an object"), pm)?;
                    }
                    (None, false) => {
                        let mut fresh = Map::new();
                        merge_map(&mut fresh, pm)?;
                        out.push(Value::Object(fresh));
                    }
                }
            }
            Ok(out)
        }
    }
}

/// Removes directive keys (and nulls) from a value that is inserted whole.
fn strip_directives(m: &mut Map<String, Value>) {
    m.retain(|k, v| !k.starts_with('$') && !v.is_null());
    for v in m.values_mut() {
        match v {
            Value::Object(o) => strip_directives(o),
            Value::Array(a) => {
                for i in a {
                    if let Some(o) = i.as_object_mut() {
                        strip_directives(o);
                    }
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn merged(target: Value, patch: Value) -> Value {
        let mut t = target;
        strategic_merge(&mut t, &patch).unwrap();
        t
    }

    #[test]
    fn containers_merge_by_name_and_env_by_name() {
        let t = json!({"spec": {"containers": [
            {"name": "a", "image": "a:1", "env": [{"name": "X", "value": "1"}]},
            {"name": "b", "image": "b:1"}]}});
        let p = json!({"spec": {"containers": [
            {"name": "a", "image": "a:2", "env": [{"name": "Y", "value": "2"}]},
            {"name": "c", "image": "c:1"}]}});
        let r = merged(t, p);
        let cs = r["spec"]["containers"].as_array().unwrap();
        assert_eq!(cs.len(), 3);
        assert_eq!(cs[0]["image"], "a:2");
        assert_eq!(cs[0]["env"].as_array().unwrap().len(), 2);
        assert_eq!(cs[1]["image"], "b:1");
        assert_eq!(cs[2]["name"], "c");
    }

    #[test]
    fn ports_merge_by_container_port_or_port() {
        let t = json!({"ports": [{"containerPort": 80, "name": "http"}]});
        let r = merged(
            t,
            json!({"ports": [{"containerPort": 80, "protocol": "TCP"}, {"containerPort": 443}]}),
        );
        assert_eq!(r["ports"].as_array().unwrap().len(), 2);
        assert_eq!(r["ports"][0]["name"], "http");
        let t = json!({"spec": {"ports": [{"port": 80, "targetPort": 8080}]}});
        let r = merged(
            t,
            json!({"spec": {"ports": [{"port": 80, "targetPort": 9090}]}}),
        );
        assert_eq!(
            r["spec"]["ports"],
            json!([{"port": 80, "targetPort": 9090}])
        );
    }

    #[test]
    fn directives_delete_and_replace() {
        let t = json!({"c": [{"name": "a"}, {"name": "b"}], "m": {"x": 1, "y": 2}, "keep": 1});
        let r = merged(
            t.clone(),
            json!({"containers": null, "c": [{"name": "z"}], "m": {"$patch": "replace", "z": 3}}),
        );
        // `c` has no merge key: replaced.
        assert_eq!(r["c"], json!([{"name": "z"}]));
        assert_eq!(r["m"], json!({"z": 3}));
        let t = json!({"containers": [{"name": "a"}, {"name": "b"}], "m": {"x": 1}});
        let r = merged(
            t,
            json!({"containers": [{"name": "a", "$patch": "delete"}], "m": {"$patch": "delete"}}),
        );
        assert_eq!(r["containers"], json!([{"name": "b"}]));
        assert!(r.get("m").is_none());
        let r = merged(
            json!({"containers": [{"name": "a"}, {"name": "b"}]}),
            json!({"containers": [{"$patch": "replace"}, {"name": "c"}]}),
        );
        assert_eq!(r["containers"], json!([{"name": "c"}]));
    }

    #[test]
    fn nulls_delete_and_primitive_sets_union() {
        let t = json!({"metadata": {"labels": {"a": "1", "b": "2"}, "finalizers": ["x"]}});
        let r = merged(
            t,
            json!({"metadata": {"labels": {"a": null}, "finalizers": ["y", "x"]}}),
        );
        assert_eq!(r["metadata"]["labels"], json!({"b": "2"}));
        assert_eq!(r["metadata"]["finalizers"], json!(["x", "y"]));
        let r = merged(
            r,
            json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["x"], "$setElementOrder/finalizers": ["y"]}}),
        );
        assert_eq!(r["metadata"]["finalizers"], json!(["y"]));
    }

    #[test]
    fn conditions_merge_by_type_and_missing_key_is_an_error() {
        let t = json!({"status": {"conditions": [{"type": "Ready", "status": "False"}]}});
        let r = merged(
            t.clone(),
            json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}}),
        );
        assert_eq!(
            r["status"]["conditions"],
            json!([{"type": "Ready", "status": "True"}])
        );
        let mut t2 = t;
        assert!(strategic_merge(
            &mut t2,
            &json!({"status": {"conditions": [{"status": "x"}]}})
        )
        .is_err());
        assert!(strategic_merge(&mut json!({}), &json!([1])).is_err());
    }
}
