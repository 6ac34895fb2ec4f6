//! A change to the user's objects, and how big it is.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One change to one object, by `Kind/ns/name`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "camelCase")]
pub enum Change {
    /// Fields of the object set: (JSON pointer, value); missing parents
    /// are created. Applied to the object where it is (a file's document,
    /// or the copy read from the cluster), never to a copy of another.
    Set {
        key: String,
        fields: Vec<(String, Value)>,
    },
    /// A new object, written right after `beside` (in its file).
    Add {
        beside: String,
        object: Value,
    },
    Remove {
        key: String,
    },
}

impl Change {
    /// The existing object the change is anchored to.
    pub fn anchor(&self) -> &str {
        match self {
            Change::Set { key, .. } | Change::Remove { key } => key,
            Change::Add { beside, .. } => beside,
        }
    }

    /// `Kind/ns/name` of the object the change makes, changes or removes.
    pub fn target(&self, default_ns: &str) -> String {
        match self {
            Change::Set { key, .. } | Change::Remove { key } => key.clone(),
            Change::Add { object, .. } => object_key(object, default_ns),
        }
    }
}

/// `Kind/ns/name` of an object (`default_ns` when it names none).
pub fn object_key(o: &Value, default_ns: &str) -> String {
    format!(
        "{}/{}/{}",
        o["kind"].as_str().unwrap_or_default(),
        o.pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or(default_ns),
        o.pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
    )
}

/// Leaves (scalars, empty lists and maps) of a value.
fn leaves(v: &Value) -> usize {
    match v {
        Value::Object(m) if !m.is_empty() => m.values().map(leaves).sum(),
        Value::Array(a) if !a.is_empty() => a.iter().map(leaves).sum(),
        _ => 1,
    }
}

/// Fields touched going from `old` to `new`: leaves changed, added or removed.
pub(crate) fn fields_touched(old: &Value, new: &Value) -> usize {
    match (old, new) {
        (Value::Object(a), Value::Object(b)) if !a.is_empty() || !b.is_empty() => {
            let mut n = 0;
            for (k, va) in a {
                n += match b.get(k) {
                    Some(vb) => fields_touched(va, vb),
                    None => leaves(va),
                };
            }
            n + b
                .iter()
                .filter(|(k, _)| !a.contains_key(*k))
                .map(|(_, v)| leaves(v))
                .sum::<usize>()
        }
        (Value::Array(a), Value::Array(b)) if !a.is_empty() || !b.is_empty() => {
            let common = a.len().min(b.len());
            let mut n: usize = (0..common).map(|i| fields_touched(&a[i], &b[i])).sum();
            n += a[common..].iter().map(leaves).sum::<usize>();
            n + b[common..].iter().map(leaves).sum::<usize>()
        }
        (a, b) if a == b => 0,
        (a, b) => leaves(a).max(leaves(b)),
    }
}

/// The size of a change: fields touched (a new or removed object counts
/// every field it has).
pub(crate) fn size(change: &Change, before: Option<&Value>) -> usize {
    match change {
        Change::Set { fields, .. } => match before {
            Some(b) => set_fields(b, fields).map_or(fields.len(), |n| fields_touched(b, &n)),
            None => fields.iter().map(|(_, v)| leaves(v)).sum(),
        },
        Change::Add { object, .. } => leaves(object),
        Change::Remove { .. } => before.map_or(1, leaves),
    }
}

/// `object` with `fields` set; None when a pointer goes through a scalar
/// or past the end of a list.
pub fn set_fields(object: &Value, fields: &[(String, Value)]) -> Option<Value> {
    let mut out = object.clone();
    for (pointer, value) in fields {
        let mut at = &mut out;
        let parts: Vec<String> = pointer
            .split('/')
            .skip(1)
            .map(|p| p.replace("~1", "/").replace("~0", "~"))
            .collect();
        for (i, part) in parts.iter().enumerate() {
            let last = i + 1 == parts.len();
            at = match at {
                Value::Object(m) => {
                    if last {
                        m.insert(part.clone(), value.clone());
                        break;
                    }
                    m.entry(part.clone())
                        .or_insert_with(|| Value::Object(Default::default()))
                }
                Value::Array(a) => {
                    let slot = a.get_mut(part.parse::<usize>().ok()?)?;
                    if last {
                        *slot = value.clone();
                        break;
                    }
                    slot
                }
                Value::Null => {
                    *at = Value::Object(Default::default());
                    let m = at.as_object_mut().expect("just made");
                    if last {
                        m.insert(part.clone(), value.clone());
                        break;
                    }
                    m.entry(part.clone())
                        .or_insert_with(|| Value::Object(Default::default()))
                }
                _ => return None,
            };
        }
    }
    Some(out)
}

/// One scalar replaced at a path that exists on both sides.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ScalarEdit {
    /// JSON pointer.
    pub(crate) pointer: String,
    pub(crate) old: Value,
    pub(crate) new: Value,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_touched_counts_changed_added_and_removed_leaves() {
        let a = json!({"spec": {"replicas": 1, "selector": {"app": "a"}}});
        let mut b = a.clone();
        assert_eq!(fields_touched(&a, &b), 0);
        b["spec"]["replicas"] = json!(2);
        assert_eq!(fields_touched(&a, &b), 1);
        b["spec"]["strategy"] = json!({"rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}});
        assert_eq!(fields_touched(&a, &b), 3);
        let c = json!({"spec": {"selector": {"app": "a"}}});
        assert_eq!(fields_touched(&a, &c), 1);
        assert_eq!(
            size(&Change::Remove { key: "x".into() }, Some(&a)),
            2,
            "a removed object counts all its fields"
        );
    }

    #[test]
    fn set_fields_creates_parents_and_indexes_lists() {
        let a = json!({"spec": {"template": {"spec": {"containers": [{"name": "c"}]}}}});
        let b = set_fields(
            &a,
            &[
                ("/spec/replicas".into(), json!(2)),
                ("/spec/strategy/rollingUpdate/maxSurge".into(), json!(1)),
                (
                    "/spec/template/spec/containers/0/readinessProbe".into(),
                    json!({"tcpSocket": {"port": 80}}),
                ),
            ],
        )
        .unwrap();
        assert_eq!(b["spec"]["replicas"], 2);
        assert_eq!(b["spec"]["strategy"]["rollingUpdate"]["maxSurge"], 1);
        assert_eq!(
            b["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["tcpSocket"]["port"],
            80
        );
        assert_eq!(
            set_fields(
                &a,
                &[("/spec/template/spec/containers/3/x".into(), json!(1))]
            ),
            None
        );
    }
}
