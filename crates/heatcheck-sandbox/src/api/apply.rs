//! Server-side apply, simplified: the applied configuration is merged with
//! strategic-merge rules, and each manager's field set is recorded in
//! `metadata.managedFields` (FieldsV1: `f:<field>`, `k:{<merge key>}`,
//! `v:<value>`). Fields a manager applied before but no longer applies are
//! removed unless another manager owns them. Conflict detection between
//! managers is not modelled (every apply behaves as `force=true`).

use serde_json::{json, Map, Value};

use crate::patch::{list_strategy, strategic_merge, ListStrategy, PatchError};
use crate::store::now_rfc3339;

/// Metadata fields the server owns; they never enter a field set.
const SERVER_META: [&str; 9] = [
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
];

/// The FieldsV1 set of an applied configuration.
pub(crate) fn fieldset(config: &Value) -> Value {
    let mut out = Map::new();
    if let Some(o) = config.as_object() {
        for (k, v) in o {
            if k == "apiVersion" || k == "kind" {
                continue;
            }
            if k == "metadata" {
                let mut meta = v.as_object().cloned().unwrap_or_default();
                meta.retain(|k, _| !SERVER_META.contains(&k.as_str()));
                if !meta.is_empty() {
                    out.insert("f:metadata".into(), Value::Object(fields_of_map(&meta)));
                }
                continue;
            }
            out.insert(format!("f:{k}"), field(k, v));
        }
    }
    Value::Object(out)
}

fn fields_of_map(m: &Map<String, Value>) -> Map<String, Value> {
    m.iter()
        .map(|(k, v)| (format!("f:{k}"), field(k, v)))
        .collect()
}

fn field(name: &str, v: &Value) -> Value {
    match v {
        Value::Object(m) if !m.is_empty() => Value::Object(fields_of_map(m)),
        Value::Array(items) if !items.is_empty() => match list_strategy(name, items) {
            ListStrategy::MergeKey(key) if items.iter().all(|i| i.get(key).is_some()) => {
                let mut out = Map::new();
                for i in items {
                    let id = json!({key: i[key].clone()}).to_string();
                    let inner = i.as_object().map(fields_of_map).unwrap_or_default();
                    out.insert(format!("k:{id}"), Value::Object(inner));
                }
                Value::Object(out)
            }
            ListStrategy::PrimitiveSet => Value::Object(
                items
                    .iter()
                    .map(|i| (format!("v:{i}"), json!({})))
                    .collect(),
            ),
            _ => json!({}),
        },
        _ => json!({}),
    }
}

/// Deep union of two field sets.
fn union(a: &Value, b: &Value) -> Value {
    let mut out = a.as_object().cloned().unwrap_or_default();
    if let Some(bm) = b.as_object() {
        for (k, bv) in bm {
            let merged = match out.get(k) {
                Some(av) => union(av, bv),
                None => bv.clone(),
            };
            out.insert(k.clone(), merged);
        }
    }
    Value::Object(out)
}

fn has_children(v: &Value) -> bool {
    v.as_object().is_some_and(|m| !m.is_empty())
}

/// Removes from `obj` what `old` owns and `keep` does not.
fn prune(obj: &mut Value, old: &Value, keep: &Value) {
    let Some(old) = old.as_object() else { return };
    let empty = Map::new();
    let keep = keep.as_object().unwrap_or(&empty);
    for (k, osub) in old {
        let ksub = keep.get(k);
        if let Some(name) = k.strip_prefix("f:") {
            let Some(map) = obj.as_object_mut() else {
                continue;
            };
            match ksub {
                None => remove_owned(map, name, osub),
                Some(ks) if has_children(osub) && has_children(ks) => {
                    if let Some(child) = map.get_mut(name) {
                        prune(child, osub, ks);
                    }
                }
                Some(_) => {}
            }
        } else if let Some(id) = k.strip_prefix("k:") {
            let Ok(Value::Object(id)) = serde_json::from_str::<Value>(id) else {
                continue;
            };
            let Some(items) = obj.as_array_mut() else {
                continue;
            };
            let Some(pos) = items
                .iter()
                .position(|i| id.iter().all(|(ik, iv)| i.get(ik) == Some(iv)))
            else {
                continue;
            };
            match ksub {
                None => {
                    items.remove(pos);
                }
                Some(ks) if has_children(osub) => prune(&mut items[pos], osub, ks),
                Some(_) => {}
            }
        } else if let Some(raw) = k.strip_prefix("v:") {
            if ksub.is_some() {
                continue;
            }
            let Ok(val) = serde_json::from_str::<Value>(raw) else {
                continue;
            };
            if let Some(items) = obj.as_array_mut() {
                items.retain(|i| *i != val);
            }
        }
    }
}

fn remove_owned(map: &mut Map<String, Value>, name: &str, owned: &Value) {
    if !has_children(owned) {
        map.remove(name);
        return;
    }
    if let Some(child) = map.get_mut(name) {
        prune(child, owned, &json!({}));
        let now_empty = match child {
            Value::Object(m) => m.is_empty(),
            Value::Array(a) => a.is_empty(),
            _ => false,
        };
        if now_empty {
            map.remove(name);
        }
    }
}

/// One managedFields entry.
pub(crate) fn managed_entry(
    manager: &str,
    api_version: &str,
    fields: Value,
    subresource: Option<&str>,
) -> Value {
    let mut e = json!({
        "manager": manager,
        "operation": "Apply",
        "apiVersion": api_version,
        "time": now_rfc3339(),
        "fieldsType": "FieldsV1",
        "fieldsV1": fields,
    });
    if let Some(s) = subresource {
        e["subresource"] = json!(s);
    }
    e
}

fn is_entry_of(e: &Value, manager: &str, subresource: Option<&str>) -> bool {
    e["manager"] == manager
        && e["operation"] == "Apply"
        && e.get("subresource").and_then(Value::as_str) == subresource
}

/// Applies `config` for `manager` to the current object; returns the new object.
pub(crate) fn apply(
    current: &Value,
    config: &Value,
    manager: &str,
    api_version: &str,
    subresource: Option<&str>,
) -> Result<Value, PatchError> {
    let entries: Vec<Value> = current
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let old = entries
        .iter()
        .find(|e| is_entry_of(e, manager, subresource))
        .map(|e| e["fieldsV1"].clone())
        .unwrap_or(json!({}));
    let new = fieldset(config);
    let others = entries
        .iter()
        .filter(|e| !is_entry_of(e, manager, subresource))
        .fold(json!({}), |acc, e| union(&acc, &e["fieldsV1"]));
    let mut next = current.clone();
    prune(&mut next, &old, &union(&new, &others));
    let mut clean = config.clone();
    if let Some(meta) = clean.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.retain(|k, _| !SERVER_META.contains(&k.as_str()) || k == "name" || k == "namespace");
    }
    strategic_merge(&mut next, &clean)?;
    let mut entries: Vec<Value> = entries
        .into_iter()
        .filter(|e| !is_entry_of(e, manager, subresource))
        .collect();
    entries.push(managed_entry(manager, api_version, new, subresource));
    next["metadata"]["managedFields"] = json!(entries);
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "d", "resourceVersion": "7"}})
    }

    #[test]
    fn fieldset_uses_merge_keys() {
        let fs = fieldset(
            &json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x", "labels": {"a": "1"}},
            "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}}}),
        );
        assert!(fs.pointer("/f:metadata/f:labels/f:a").is_some());
        assert!(fs.pointer("/f:metadata/f:name").is_none());
        let cs = fs
            .pointer("/f:spec/f:template/f:spec/f:containers")
            .unwrap();
        assert!(cs
            .get("k:{\"name\":\"c\"}")
            .unwrap()
            .get("f:image")
            .is_some());
    }

    #[test]
    fn reapply_removes_fields_no_longer_applied() {
        let mut c1 = base();
        c1["data"] = json!({"a": "1", "b": "2"});
        c1["metadata"]["labels"] = json!({"x": "1"});
        let o1 = apply(&base(), &c1, "m", "v1", None).unwrap();
        assert_eq!(o1["data"], json!({"a": "1", "b": "2"}));
        let mut c2 = base();
        c2["data"] = json!({"a": "9"});
        let o2 = apply(&o1, &c2, "m", "v1", None).unwrap();
        assert_eq!(o2["data"], json!({"a": "9"}));
        assert!(o2.pointer("/metadata/labels").is_none());
        assert_eq!(o2["metadata"]["managedFields"].as_array().unwrap().len(), 1);
        assert_eq!(o2["metadata"]["managedFields"][0]["operation"], "Apply");
    }

    #[test]
    fn fields_owned_by_another_manager_stay() {
        let mut a = base();
        a["data"] = json!({"shared": "1", "mine": "1"});
        let o1 = apply(&base(), &a, "alice", "v1", None).unwrap();
        let mut b = base();
        b["data"] = json!({"shared": "1"});
        let o2 = apply(&o1, &b, "bob", "v1", None).unwrap();
        let o3 = apply(&o2, &base(), "alice", "v1", None).unwrap();
        assert_eq!(o3["data"], json!({"shared": "1"}));
        assert_eq!(o3["metadata"]["managedFields"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn list_items_by_key_are_pruned() {
        let dep = |cs: Value| json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}, "spec": {"template": {"spec": {"containers": cs}}}});
        let o1 = apply(
            &json!({"metadata": {"name": "d"}}),
            &dep(json!([{"name": "a", "image": "1"}, {"name": "b", "image": "1"}])),
            "m",
            "apps/v1",
            None,
        )
        .unwrap();
        let o2 = apply(
            &o1,
            &dep(json!([{"name": "a", "image": "2"}])),
            "m",
            "apps/v1",
            None,
        )
        .unwrap();
        assert_eq!(
            o2["spec"]["template"]["spec"]["containers"],
            json!([{"name": "a", "image": "2"}])
        );
        let o3 = apply(
            &o2,
            &json!({"metadata": {"finalizers": ["x", "y"]}}),
            "f",
            "apps/v1",
            None,
        )
        .unwrap();
        let o4 = apply(
            &o3,
            &json!({"metadata": {"finalizers": ["y"]}}),
            "f",
            "apps/v1",
            None,
        )
        .unwrap();
        assert_eq!(o4["metadata"]["finalizers"], json!(["y"]));
    }
}
