//! Kubernetes label selectors over JSON objects.

use serde_json::{Map, Value};

/// The labels of an object (`metadata.labels`), empty when absent.
pub(super) fn labels(obj: &Value) -> &Map<String, Value> {
    static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
    obj.pointer("/metadata/labels")
        .and_then(Value::as_object)
        .unwrap_or_else(|| EMPTY.get_or_init(Map::new))
}

fn label<'a>(labels: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    labels.get(key).and_then(Value::as_str)
}

/// A `metav1.LabelSelector` (matchLabels + matchExpressions). An empty selector matches
/// everything; a malformed one matches nothing (safer than matching all).
pub(super) fn selector_matches(selector: &Value, labels: &Map<String, Value>) -> bool {
    let Some(sel) = selector.as_object() else {
        return selector.is_null();
    };
    if let Some(ml) = sel.get("matchLabels") {
        let Some(ml) = ml.as_object() else {
            return false;
        };
        for (k, v) in ml {
            if label(labels, k) != v.as_str() {
                return false;
            }
        }
    }
    if let Some(exprs) = sel.get("matchExpressions") {
        let Some(exprs) = exprs.as_array() else {
            return false;
        };
        for e in exprs {
            if !expression_matches(e, labels) {
                return false;
            }
        }
    }
    true
}

fn expression_matches(expr: &Value, labels: &Map<String, Value>) -> bool {
    let Some(key) = expr.get("key").and_then(Value::as_str) else {
        return false;
    };
    let values: Vec<&str> = expr
        .get("values")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let have = label(labels, key);
    match expr.get("operator").and_then(Value::as_str) {
        Some("In") => have.is_some_and(|h| values.contains(&h)),
        Some("NotIn") => have.is_none_or(|h| !values.contains(&h)),
        Some("Exists") => have.is_some(),
        Some("DoesNotExist") => have.is_none(),
        _ => false,
    }
}

/// A Service's `spec.selector` (a plain map). An empty or absent selector selects no pods:
/// such Services have manually managed endpoints, which the sandbox does not model.
pub(super) fn service_selects(selector: Option<&Value>, labels: &Map<String, Value>) -> bool {
    match selector.and_then(Value::as_object) {
        Some(sel) if !sel.is_empty() => sel
            .iter()
            .all(|(k, v)| v.as_str().is_some() && label(labels, k) == v.as_str()),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn l(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn match_labels_and_expressions() {
        let labels = l(json!({"app": "web", "tier": "front"}));
        assert!(selector_matches(&json!({}), &labels));
        assert!(selector_matches(
            &json!({"matchLabels": {"app": "web"}}),
            &labels
        ));
        assert!(!selector_matches(
            &json!({"matchLabels": {"app": "db"}}),
            &labels
        ));
        let expr = |op: &str, vals: Value| json!({"matchExpressions": [{"key": "tier", "operator": op, "values": vals}]});
        assert!(selector_matches(
            &expr("In", json!(["front", "x"])),
            &labels
        ));
        assert!(!selector_matches(&expr("NotIn", json!(["front"])), &labels));
        assert!(selector_matches(&expr("Exists", json!(null)), &labels));
        assert!(!selector_matches(
            &expr("DoesNotExist", json!(null)),
            &labels
        ));
        assert!(!selector_matches(&expr("Bogus", json!([])), &labels));
        assert!(!selector_matches(&json!("nonsense"), &labels));
    }

    #[test]
    fn service_selector_needs_labels() {
        let labels = l(json!({"app": "web"}));
        assert!(service_selects(Some(&json!({"app": "web"})), &labels));
        assert!(!service_selects(Some(&json!({"app": "db"})), &labels));
        assert!(!service_selects(Some(&json!({})), &labels));
        assert!(!service_selects(None, &labels));
    }
}
