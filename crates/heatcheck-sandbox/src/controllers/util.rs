//! Small helpers over `serde_json::Value` objects shared by the controllers:
//! metadata access, label selectors, owner references, conditions, hashing.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::registry::ResKey;
use crate::store::{now_rfc3339, Store, WriteOptions};

pub(crate) const W: WriteOptions = WriteOptions { dry_run: false };

pub(crate) fn key(group: &str, plural: &str) -> ResKey {
    ResKey::new(group, plural)
}

pub(crate) fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    obj.get("metadata")?.get(field)?.as_str()
}

pub(crate) fn name(obj: &Value) -> &str {
    meta_str(obj, "name").unwrap_or_default()
}

pub(crate) fn namespace(obj: &Value) -> &str {
    meta_str(obj, "namespace").unwrap_or_default()
}

pub(crate) fn uid(obj: &Value) -> &str {
    meta_str(obj, "uid").unwrap_or_default()
}

pub(crate) fn generation(obj: &Value) -> i64 {
    obj.pointer("/metadata/generation")
        .and_then(Value::as_i64)
        .unwrap_or(1)
}

pub(crate) fn is_terminating(obj: &Value) -> bool {
    obj.pointer("/metadata/deletionTimestamp").is_some()
}

/// Labels as a string map (non-string values are ignored).
pub(crate) fn labels(obj: &Value) -> BTreeMap<String, String> {
    string_map(obj.pointer("/metadata/labels"))
}

pub(crate) fn string_map(v: Option<&Value>) -> BTreeMap<String, String> {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// Every object of a kind (in `ns`, or everywhere); an unknown kind is empty.
pub(crate) fn list(store: &Store, key: &ResKey, ns: Option<&str>) -> Vec<Value> {
    store
        .list(key, ns, &|_| true, None, None)
        .map(|p| p.items)
        .unwrap_or_default()
}

/// The uid of the managing controller (ownerReference with controller: true).
pub(crate) fn controller_uid(obj: &Value) -> Option<&str> {
    obj.pointer("/metadata/ownerReferences")?
        .as_array()?
        .iter()
        .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))?
        .get("uid")?
        .as_str()
}

/// An ownerReference making `owner` the controller of a dependent.
pub(crate) fn controller_ref(owner: &Value) -> Value {
    json!({
        "apiVersion": owner.get("apiVersion").cloned().unwrap_or(Value::Null),
        "kind": owner.get("kind").cloned().unwrap_or(Value::Null),
        "name": name(owner),
        "uid": uid(owner),
        "controller": true,
        "blockOwnerDeletion": true,
    })
}

/// metav1.LabelSelector semantics: a missing selector selects nothing, an
/// empty one everything; matchLabels and matchExpressions are ANDed.
pub(crate) fn label_selector_matches(
    sel: Option<&Value>,
    labels: &BTreeMap<String, String>,
) -> bool {
    let Some(sel) = sel.filter(|s| !s.is_null()) else {
        return false;
    };
    let ml = string_map(sel.get("matchLabels"));
    if !ml.iter().all(|(k, v)| labels.get(k) == Some(v)) {
        return false;
    }
    let exprs = sel
        .get("matchExpressions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    exprs.iter().all(|e| expression_matches(e, labels))
}

/// One matchExpressions entry (In, NotIn, Exists, DoesNotExist).
pub(crate) fn expression_matches(e: &Value, labels: &BTreeMap<String, String>) -> bool {
    let k = e.get("key").and_then(Value::as_str).unwrap_or_default();
    let values: Vec<&str> = e
        .get("values")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let have = labels.get(k).map(String::as_str);
    match e
        .get("operator")
        .and_then(Value::as_str)
        .unwrap_or_default()
    {
        "In" => have.is_some_and(|h| values.contains(&h)),
        "NotIn" => have.is_none_or(|h| !values.contains(&h)),
        "Exists" => have.is_some(),
        "DoesNotExist" => have.is_none(),
        _ => false,
    }
}

/// A plain `key: value` selector (Service spec.selector, Chaos Mesh labelSelectors).
pub(crate) fn map_selector_matches(
    sel: &BTreeMap<String, String>,
    labels: &BTreeMap<String, String>,
) -> bool {
    sel.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// A label selector string as kubectl `-l` takes it: `a=b,c!=d,e,!f`.
/// Set-based terms (`in`, `notin`) are supported too.
pub(crate) fn string_selector_matches(sel: &str, labels: &BTreeMap<String, String>) -> bool {
    split_terms(sel).iter().all(|term| {
        let term = term.trim();
        if term.is_empty() {
            return true;
        }
        if let Some((k, rest)) = term.split_once(" notin ") {
            let vals = set_values(rest);
            return labels.get(k.trim()).is_none_or(|h| !vals.contains(h));
        }
        if let Some((k, rest)) = term.split_once(" in ") {
            let vals = set_values(rest);
            return labels.get(k.trim()).is_some_and(|h| vals.contains(h));
        }
        if let Some((k, v)) = term.split_once("!=") {
            return labels.get(k.trim()).map(String::as_str) != Some(v.trim());
        }
        if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
            return labels.get(k.trim()).map(String::as_str) == Some(v.trim());
        }
        if let Some(k) = term.strip_prefix('!') {
            return !labels.contains_key(k.trim());
        }
        labels.contains_key(term)
    })
}

/// Splits on commas outside parentheses.
fn split_terms(sel: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut depth = 0;
    for c in sel.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(String::new());
                continue;
            }
            _ => {}
        }
        if let Some(last) = out.last_mut() {
            last.push(c);
        }
    }
    out
}

fn set_values(s: &str) -> Vec<String> {
    s.trim()
        .trim_start_matches('(')
        .trim_end_matches(')')
        .split(',')
        .map(|v| v.trim().to_string())
        .collect()
}

/// Conditions as the API conventions want them: `lastTransitionTime` moves
/// only when a condition's status changes; with `update_time`, a
/// `lastUpdateTime` moves when status, reason or message change (the
/// Deployment style). `wanted` conditions carry no timestamps.
pub(crate) fn merge_conditions(
    old: Option<&Value>,
    wanted: Vec<Value>,
    update_time: bool,
) -> Value {
    let old: Vec<Value> = old.and_then(Value::as_array).cloned().unwrap_or_default();
    let now = now_rfc3339();
    let merged: Vec<Value> = wanted
        .into_iter()
        .map(|mut c| {
            let prev = old.iter().find(|o| o.get("type") == c.get("type"));
            let same_status = prev.is_some_and(|p| p.get("status") == c.get("status"));
            let same_all = same_status
                && prev.is_some_and(|p| {
                    p.get("reason") == c.get("reason") && p.get("message") == c.get("message")
                });
            let ltt = match prev.and_then(|p| p.get("lastTransitionTime")) {
                Some(t) if same_status => t.clone(),
                _ => json!(now),
            };
            let o = c.as_object_mut().expect("a condition is an object");
            if update_time {
                let lut = match prev.and_then(|p| p.get("lastUpdateTime")) {
                    Some(t) if same_all => t.clone(),
                    _ => json!(now),
                };
                o.insert("lastUpdateTime".into(), lut);
            }
            o.insert("lastTransitionTime".into(), ltt);
            c
        })
        .collect();
    Value::Array(merged)
}

/// Writes `status` unless the stored status already equals it. Errors are
/// left to the next reconcile: a conflict means a newer write whose event
/// triggers another pass anyway.
pub(crate) fn write_status(store: &Store, key: &ResKey, obj: &Value, status: Value) -> bool {
    if obj.get("status") == Some(&status) {
        return false;
    }
    let mut next = obj.clone();
    next["status"] = status;
    let ns = obj.pointer("/metadata/namespace").and_then(Value::as_str);
    match store.update_status(key, ns, name(obj), next, &W) {
        Ok(_) => true,
        Err(e) => {
            tracing::debug!(%key, name = name(obj), error = %e, "status write failed");
            false
        }
    }
}

/// Replaces an object if it differs from what is stored.
pub(crate) fn write_object(store: &Store, key: &ResKey, current: &Value, next: Value) -> bool {
    if *current == next {
        return false;
    }
    let ns = next.pointer("/metadata/namespace").and_then(Value::as_str);
    match store.update(key, ns, name(current), next.clone(), &W) {
        Ok(_) => true,
        Err(e) => {
            tracing::debug!(%key, name = name(current), error = %e, "update failed");
            false
        }
    }
}

/// JSON with object keys sorted at every level, so equal objects written
/// in different key orders hash alike.
pub(crate) fn canonical(v: &Value) -> String {
    fn sort(v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                let mut out = Map::new();
                for k in keys {
                    out.insert(k.clone(), sort(&m[k]));
                }
                Value::Object(out)
            }
            Value::Array(a) => Value::Array(a.iter().map(sort).collect()),
            other => other.clone(),
        }
    }
    sort(v).to_string()
}

fn fnv32a(data: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in data {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// The pod-template-hash: FNV-32a of the template (plus the collision
/// count), its decimal digits mapped onto the alphabet Kubernetes uses for
/// generated names, as `rand.SafeEncodeString` does.
pub(crate) fn template_hash(template: &Value, collision_count: i64) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut data = canonical(template).into_bytes();
    if collision_count > 0 {
        data.extend_from_slice(collision_count.to_string().as_bytes());
    }
    fnv32a(&data)
        .to_string()
        .bytes()
        .map(|b| ALPHABET[usize::from(b) % ALPHABET.len()] as char)
        .collect()
}

/// Parses an RFC 3339 timestamp as the API stores them.
pub(crate) fn parse_time(s: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc))
}

/// Percent ("25%") or absolute int-or-string values against a total, rounding
/// up or down as the API's `GetScaledValueFromIntOrPercent` does.
pub(crate) fn int_or_percent(v: Option<&Value>, total: i64, default: &str, round_up: bool) -> i64 {
    let v = v.cloned().unwrap_or_else(|| json!(default));
    if let Some(i) = v.as_i64() {
        return i.max(0);
    }
    let s = v.as_str().unwrap_or(default);
    match s
        .strip_suffix('%')
        .and_then(|p| p.trim().parse::<f64>().ok())
    {
        Some(p) => {
            let x = p * total as f64 / 100.0;
            (if round_up { x.ceil() } else { x.floor() }) as i64
        }
        None => s.trim().parse().unwrap_or(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn label_selectors_follow_api_semantics() {
        let app = l(&[("app", "web"), ("tier", "fe")]);
        assert!(!label_selector_matches(None, &app));
        assert!(label_selector_matches(Some(&json!({})), &app));
        let sel = json!({"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "tier", "operator": "In", "values": ["fe", "be"]}]});
        assert!(label_selector_matches(Some(&sel), &app));
        let sel = json!({"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]});
        assert!(!label_selector_matches(Some(&sel), &app));
    }

    #[test]
    fn string_selectors() {
        let app = l(&[("app", "web"), ("tier", "fe")]);
        assert!(string_selector_matches("app=web", &app));
        assert!(string_selector_matches("app==web,tier!=be", &app));
        assert!(!string_selector_matches("app=web,missing", &app));
        assert!(string_selector_matches("tier in (fe, be),!missing", &app));
        assert!(!string_selector_matches("tier notin (fe)", &app));
    }

    #[test]
    fn template_hash_is_stable_and_looks_like_kubernetes() {
        let a = json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"containers": []}});
        let b = json!({"spec": {"containers": []}, "metadata": {"labels": {"b": "2", "a": "1"}}});
        let h = template_hash(&a, 0);
        assert_eq!(h, template_hash(&b, 0));
        assert_ne!(h, template_hash(&a, 1));
        assert!((1..=10).contains(&h.len()));
        assert!(h.chars().all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)));
    }

    #[test]
    fn conditions_keep_transition_time_while_status_holds() {
        let old = json!([{"type": "Ready", "status": "True", "reason": "A", "lastTransitionTime": "2020-01-01T00:00:00Z", "lastUpdateTime": "2020-01-01T00:00:00Z"}]);
        let m = merge_conditions(
            Some(&old),
            vec![json!({"type": "Ready", "status": "True", "reason": "B"})],
            true,
        );
        assert_eq!(m[0]["lastTransitionTime"], "2020-01-01T00:00:00Z");
        assert_ne!(m[0]["lastUpdateTime"], "2020-01-01T00:00:00Z");
        let m = merge_conditions(
            Some(&old),
            vec![json!({"type": "Ready", "status": "False", "reason": "A"})],
            false,
        );
        assert_ne!(m[0]["lastTransitionTime"], "2020-01-01T00:00:00Z");
        assert!(m[0].get("lastUpdateTime").is_none());
    }

    #[test]
    fn int_or_percent_rounds_like_the_api() {
        assert_eq!(int_or_percent(None, 4, "25%", false), 1);
        assert_eq!(int_or_percent(None, 3, "25%", false), 0);
        assert_eq!(int_or_percent(None, 3, "25%", true), 1);
        assert_eq!(int_or_percent(Some(&json!(2)), 3, "25%", true), 2);
        assert_eq!(int_or_percent(Some(&json!("3")), 3, "25%", true), 3);
    }
}
