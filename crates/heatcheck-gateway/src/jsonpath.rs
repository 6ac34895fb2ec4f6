//! JSON path queries, with kubectl's forms accepted too: `$.a.b`, `.a.b`,
//! `{.a.b}`. The one place paths are normalised and evaluated.

use jsonpath_rust::JsonPath;
use serde_json::Value;

/// `{.status.x}` / `.status.x` / `status.x` become `$.status.x`.
pub(crate) fn normalize(path: &str) -> String {
    let p = path.trim();
    let p = p
        .strip_prefix('{')
        .and_then(|p| p.strip_suffix('}'))
        .unwrap_or(p)
        .trim();
    if p.starts_with('$') {
        p.to_string()
    } else if p.starts_with('.') || p.starts_with('[') {
        format!("${p}")
    } else {
        format!("$.{p}")
    }
}

/// Checks a path parses. Load-time validation lives in heatcheck-format
/// (which depends on nothing of ours), so only the tests here use it.
#[cfg(test)]
fn check(path: &str) -> Result<(), String> {
    jsonpath_rust::parser::parse_json_path(&normalize(path))
        .map(|_| ())
        .map_err(|e| format!("invalid JSON path {path:?}: {e}"))
}

/// Every value the path selects.
pub(crate) fn query(value: &Value, path: &str) -> Result<Vec<Value>, String> {
    value
        .query(&normalize(path))
        .map(|v| v.into_iter().cloned().collect())
        .map_err(|e| format!("invalid JSON path {path:?}: {e}"))
}

/// The first value the path selects, if any.
pub fn first(value: &Value, path: &str) -> Result<Option<Value>, String> {
    Ok(query(value, path)?.into_iter().next())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn accepts_kubectl_forms_and_filters() {
        let v = json!({"status": {"parents": [{"conditions": [{"type": "Accepted", "status": "True"}]}]}});
        let p = "$.status.parents[0].conditions[?(@.type=='Accepted')].status";
        assert_eq!(first(&v, p).unwrap(), Some(json!("True")));
        assert_eq!(
            first(&v, "{.status.parents[0].conditions[0].type}").unwrap(),
            Some(json!("Accepted"))
        );
        assert_eq!(first(&v, ".status.missing").unwrap(), None);
        assert!(check("$.[[").is_err());
    }
}
