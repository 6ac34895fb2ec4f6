//! Manifests: multi-document YAML (or a `kind: List`) into objects.

use serde_json::Value;

/// Parses rendered manifest text into objects, skipping empty documents and
/// flattening `List` kinds. Every object must have apiVersion, kind and
/// metadata.name (or generateName).
pub fn parse_documents(text: &str, origin: &str) -> Result<Vec<Value>, String> {
    let docs: Vec<Value> =
        serde_saphyr::from_multiple(text).map_err(|e| format!("{origin}: {e}"))?;
    let mut out = Vec::new();
    for (i, doc) in docs.into_iter().enumerate() {
        match doc {
            Value::Null => {}
            Value::Object(_) => {
                if doc
                    .get("kind")
                    .and_then(Value::as_str)
                    .is_some_and(|k| k == "List" || k.ends_with("List"))
                    && doc.get("items").is_some()
                {
                    for item in doc["items"].as_array().cloned().unwrap_or_default() {
                        out.push(check_object(item, origin, i)?);
                    }
                } else {
                    out.push(check_object(doc, origin, i)?);
                }
            }
            other => {
                return Err(format!(
                    "{origin}: document {} is not a mapping (got {})",
                    i + 1,
                    kind_of(&other)
                ))
            }
        }
    }
    Ok(out)
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Array(_) => "a list",
        Value::String(_) => "a string",
        Value::Number(_) => "a number",
        Value::Bool(_) => "a boolean",
        _ => "something else",
    }
}

fn check_object(obj: Value, origin: &str, i: usize) -> Result<Value, String> {
    let missing = |what: &str| format!("{origin}: document {} has no {what}", i + 1);
    obj.get("apiVersion")
        .and_then(Value::as_str)
        .ok_or_else(|| missing("apiVersion"))?;
    obj.get("kind")
        .and_then(Value::as_str)
        .ok_or_else(|| missing("kind"))?;
    let named = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .is_some()
        || obj
            .pointer("/metadata/generateName")
            .and_then(Value::as_str)
            .is_some();
    if !named {
        return Err(missing("metadata.name"));
    }
    Ok(obj)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_several_documents_and_lists() {
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n---\napiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: b}}\n";
        let docs = parse_documents(text, "m.yaml").unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[1]["metadata"]["name"], "b");
    }

    #[test]
    fn names_what_is_missing() {
        let e = parse_documents("apiVersion: v1\nkind: ConfigMap\n", "m.yaml").unwrap_err();
        assert_eq!(e, "m.yaml: document 1 has no metadata.name");
        assert!(parse_documents("- a\n", "m.yaml")
            .unwrap_err()
            .contains("not a mapping"));
    }
}
