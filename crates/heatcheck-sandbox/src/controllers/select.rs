//! Choosing chaos targets: Chaos Mesh selectors and modes, shared by the
//! Litmus controller for its percentage-based choice.

use rand::seq::SliceRandom;
use serde_json::Value;

use super::util::{self, key};
use crate::store::Store;

/// Pods matching a Chaos Mesh `SelectorSpec` (namespaces, labelSelectors,
/// expressionSelectors, annotationSelectors, pods, podPhaseSelectors,
/// nodes). Without namespaces the chaos object's own namespace is used.
pub(crate) fn chaos_mesh_pods(store: &Store, selector: Option<&Value>, own_ns: &str) -> Vec<Value> {
    let empty = Value::Null;
    let sel = selector.unwrap_or(&empty);
    let strs = |k: &str| -> Vec<String> {
        sel.get(k)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    let by_name = sel.get("pods").and_then(Value::as_object);
    let mut namespaces = strs("namespaces");
    if let Some(m) = by_name {
        // Explicit pods name their namespaces.
        namespaces = m.keys().cloned().collect();
    }
    if namespaces.is_empty() {
        namespaces.push(own_ns.to_string());
    }
    let label_sel = util::string_map(sel.get("labelSelectors"));
    let ann_sel = util::string_map(sel.get("annotationSelectors"));
    let exprs = sel
        .get("expressionSelectors")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let phases = strs("podPhaseSelectors");
    let nodes = strs("nodes");
    let mut out = Vec::new();
    for ns in &namespaces {
        for p in util::list(store, &key("", "pods"), Some(ns)) {
            if util::is_terminating(&p) {
                continue;
            }
            if let Some(m) = by_name {
                let names: Vec<&str> = m
                    .get(ns)
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                if !names.contains(&util::name(&p)) {
                    continue;
                }
            }
            let labels = util::labels(&p);
            if !util::map_selector_matches(&label_sel, &labels) {
                continue;
            }
            if !exprs.iter().all(|e| util::expression_matches(e, &labels)) {
                continue;
            }
            let anns = util::string_map(p.pointer("/metadata/annotations"));
            if !util::map_selector_matches(&ann_sel, &anns) {
                continue;
            }
            let phase = p
                .pointer("/status/phase")
                .and_then(Value::as_str)
                .unwrap_or("Pending");
            if !phases.is_empty() && !phases.iter().any(|x| x == phase) {
                continue;
            }
            let node = p
                .pointer("/spec/nodeName")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if !nodes.is_empty() && !nodes.iter().any(|n| n == node) {
                continue;
            }
            out.push(p);
        }
    }
    out
}

/// Applies a Chaos Mesh mode (one, all, fixed, fixed-percent,
/// random-max-percent) to the candidates, choosing at random.
pub(crate) fn apply_mode(
    mut pods: Vec<Value>,
    mode: &str,
    value: Option<&Value>,
) -> Result<Vec<Value>, String> {
    let value_num = || -> Result<f64, String> {
        let v = value.ok_or_else(|| format!("mode {mode} needs a value"))?;
        let n = match v {
            Value::String(s) => s.trim().trim_end_matches('%').parse::<f64>().ok(),
            Value::Number(n) => n.as_f64(),
            _ => None,
        };
        n.filter(|n| *n >= 0.0)
            .ok_or_else(|| format!("invalid value {v} for mode {mode}"))
    };
    let mut rng = rand::rng();
    pods.shuffle(&mut rng);
    let len = pods.len();
    let n = match mode {
        "" | "one" => len.min(1),
        "all" => len,
        "fixed" => (value_num()? as usize).min(len),
        "fixed-percent" => {
            let p = value_num()?.min(100.0);
            (len as f64 * p / 100.0).floor() as usize
        }
        "random-max-percent" => {
            use rand::Rng;
            let max = value_num()?.min(100.0) as u32;
            let p = rng.random_range(0..=max);
            (len as f64 * f64::from(p) / 100.0).floor() as usize
        }
        other => return Err(format!("unsupported mode {other}")),
    };
    pods.truncate(n);
    pods.sort_by(|a, b| {
        (util::namespace(a), util::name(a)).cmp(&(util::namespace(b), util::name(b)))
    });
    Ok(pods)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pods(n: usize) -> Vec<Value> {
        (0..n)
            .map(|i| json!({"metadata": {"name": format!("p{i}"), "namespace": "d"}}))
            .collect()
    }

    #[test]
    fn modes_pick_the_right_counts() {
        assert_eq!(apply_mode(pods(4), "one", None).unwrap().len(), 1);
        assert_eq!(apply_mode(pods(4), "all", None).unwrap().len(), 4);
        assert_eq!(
            apply_mode(pods(4), "fixed", Some(&json!("2")))
                .unwrap()
                .len(),
            2
        );
        assert_eq!(
            apply_mode(pods(4), "fixed", Some(&json!("9")))
                .unwrap()
                .len(),
            4
        );
        assert_eq!(
            apply_mode(pods(4), "fixed-percent", Some(&json!("50")))
                .unwrap()
                .len(),
            2
        );
        assert_eq!(
            apply_mode(pods(3), "fixed-percent", Some(&json!("50")))
                .unwrap()
                .len(),
            1
        );
        assert!(
            apply_mode(pods(4), "random-max-percent", Some(&json!("50")))
                .unwrap()
                .len()
                <= 2
        );
        assert!(apply_mode(pods(4), "fixed", None).is_err());
        assert!(apply_mode(pods(4), "bogus", None).is_err());
        assert_eq!(apply_mode(pods(0), "one", None).unwrap().len(), 0);
    }
}
