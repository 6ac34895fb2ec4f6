//! OpenAI "strict" structured outputs accept a subset of JSON Schema: every
//! object must list all its properties in `required` and set
//! `additionalProperties: false`; maps, free-form values, `allOf`, `not`,
//! conditionals and most `format`s are refused.
//!
//! [`strict_schema`] rewrites a schema into that subset when it can: optional
//! properties become required-but-nullable, `oneOf` becomes `anyOf`,
//! annotations the API rejects are dropped. When it cannot (a map such as
//! HTTP headers, an arbitrary JSON value), the OpenAI provider falls back to
//! `strict: false` with the original schema, which compatible servers
//! (llama.cpp, vLLM, Ollama /v1) still enforce through their grammar and
//! OpenAI follows best-effort; the caller validates the answer either way.
//!
//! [`strip_optional_nulls`] undoes the nullable rewrite on the answer: a `null`
//! for a property the original schema did not require is removed, so serde
//! sees a missing field (which `#[serde(default)]` accepts) instead of null.

use serde_json::{json, Map, Value};

const FORMATS: &[&str] = &[
    "date-time",
    "time",
    "date",
    "duration",
    "email",
    "hostname",
    "ipv4",
    "ipv6",
    "uuid",
];
const REFUSED: &[&str] = &[
    "not",
    "if",
    "then",
    "else",
    "patternProperties",
    "dependentRequired",
    "dependentSchemas",
    "unevaluatedProperties",
    "propertyNames",
    "prefixItems",
];
const DROPPED: &[&str] = &[
    "default",
    "examples",
    "$schema",
    "$id",
    "deprecated",
    "readOnly",
    "writeOnly",
];

/// The schema rewritten for `strict: true`, or why it cannot be.
pub(crate) fn strict_schema(schema: &Value) -> Result<Value, String> {
    let mut s = schema.clone();
    if !is_object_schema(&s) {
        return Err("the root is not an object schema".into());
    }
    walk(&mut s, "#")?;
    Ok(s)
}

fn is_object_schema(s: &Value) -> bool {
    match s.get("type") {
        Some(Value::String(t)) => t == "object",
        Some(Value::Array(ts)) => ts.iter().any(|t| t == "object"),
        _ => s.get("properties").is_some(),
    }
}

fn walk(s: &mut Value, path: &str) -> Result<(), String> {
    let obj = match s {
        Value::Object(o) => o,
        Value::Bool(_) => return Err(format!("{path}: a free-form value")),
        _ => return Err(format!("{path}: not a schema")),
    };
    for k in REFUSED {
        if obj.contains_key(*k) {
            return Err(format!("{path}: `{k}` is not supported"));
        }
    }
    for k in DROPPED {
        obj.remove(*k);
    }
    if let Some(Value::String(f)) = obj.get("format") {
        if !FORMATS.contains(&f.as_str()) {
            obj.remove("format");
        }
    }
    if let Some(one) = obj.remove("oneOf") {
        obj.insert("anyOf".into(), one);
    }
    if let Some(all) = obj.remove("allOf") {
        // A lone allOf (a $ref with siblings in older generators) merges in place.
        match all {
            Value::Array(mut parts) if parts.len() == 1 => {
                if let Value::Object(inner) = parts.remove(0) {
                    for (k, v) in inner {
                        obj.entry(k).or_insert(v);
                    }
                }
            }
            _ => return Err(format!("{path}: `allOf` is not supported")),
        }
    }
    for defs in ["$defs", "definitions"] {
        if let Some(Value::Object(d)) = obj.get_mut(defs) {
            for (name, sub) in d.iter_mut() {
                walk(sub, &format!("{path}/{defs}/{name}"))?;
            }
        }
    }
    if let Some(Value::Array(branches)) = obj.get_mut("anyOf") {
        for (i, b) in branches.iter_mut().enumerate() {
            walk(b, &format!("{path}/anyOf/{i}"))?;
        }
    }
    let typed = obj.contains_key("type")
        || obj.contains_key("$ref")
        || obj.contains_key("anyOf")
        || obj.contains_key("enum")
        || obj.contains_key("const");
    if !typed {
        return Err(format!("{path}: a free-form value"));
    }
    let is_object = match obj.get("type") {
        Some(Value::String(t)) => t == "object",
        Some(Value::Array(ts)) => ts.iter().any(|t| t == "object"),
        _ => false,
    } || obj.contains_key("properties");
    if is_object {
        strict_object(obj, path)?;
    }
    match obj.get_mut("items") {
        Some(items @ Value::Object(_)) => walk(items, &format!("{path}/items"))?,
        Some(Value::Bool(_)) => return Err(format!("{path}/items: a free-form value")),
        Some(_) => return Err(format!("{path}: tuple `items` is not supported")),
        None => {}
    }
    Ok(())
}

fn strict_object(obj: &mut Map<String, Value>, path: &str) -> Result<(), String> {
    match obj.get("additionalProperties") {
        None | Some(Value::Bool(false)) => {}
        Some(_) => {
            return Err(format!(
                "{path}: a map (additionalProperties) is not supported"
            ))
        }
    }
    if !obj.get("properties").is_some_and(Value::is_object) {
        return Err(format!("{path}: an object without properties"));
    }
    let required: Vec<String> = obj
        .get("required")
        .and_then(Value::as_array)
        .map(|r| {
            r.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let Some(Value::Object(props)) = obj.get_mut("properties") else {
        unreachable!("checked above")
    };
    let mut all = Vec::new();
    for (name, sub) in props.iter_mut() {
        walk(sub, &format!("{path}/properties/{name}"))?;
        if !required.contains(name) {
            make_nullable(sub);
        }
        all.push(Value::String(name.clone()));
    }
    obj.insert("required".into(), Value::Array(all));
    obj.insert("additionalProperties".into(), Value::Bool(false));
    Ok(())
}

fn make_nullable(s: &mut Value) {
    let Value::Object(o) = s else { return };
    let simple = !o.contains_key("enum") && !o.contains_key("const");
    match o.get_mut("type") {
        Some(Value::String(t)) if simple => {
            if t != "null" {
                let t = t.clone();
                o.insert("type".into(), json!([t, "null"]));
            }
            return;
        }
        Some(Value::Array(ts)) if simple => {
            if !ts.iter().any(|t| t == "null") {
                ts.push(json!("null"));
            }
            return;
        }
        _ => {}
    }
    if let Some(Value::Array(branches)) = o.get_mut("anyOf") {
        if !branches
            .iter()
            .any(|b| b.get("type") == Some(&json!("null")))
        {
            branches.push(json!({"type": "null"}));
        }
        return;
    }
    let inner = std::mem::take(s);
    *s = json!({"anyOf": [inner, {"type": "null"}]});
}

/// Removes `null` members whose property the (original) schema does not
/// require, following `$ref`s into `$defs` / `definitions`.
pub(crate) fn strip_optional_nulls(value: &mut Value, schema: &Value) {
    strip(value, schema, schema, 0);
}

fn resolve<'a>(s: &'a Value, root: &'a Value) -> &'a Value {
    let mut cur = s;
    for _ in 0..16 {
        match cur.get("$ref").and_then(Value::as_str) {
            Some(r) if r.starts_with('#') => match root.pointer(&r[1..]) {
                Some(t) => cur = t,
                None => return cur,
            },
            _ => return cur,
        }
    }
    cur
}

fn strip(v: &mut Value, s: &Value, root: &Value, depth: usize) {
    if depth > 64 {
        return;
    }
    let s = resolve(s, root);
    for combo in ["anyOf", "oneOf", "allOf"] {
        if let Some(Value::Array(branches)) = s.get(combo) {
            for b in branches {
                strip(v, b, root, depth + 1);
            }
        }
    }
    match v {
        Value::Object(map) => {
            let Some(Value::Object(props)) = s.get("properties") else {
                return;
            };
            let required: Vec<&str> = s
                .get("required")
                .and_then(Value::as_array)
                .map(|r| r.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            map.retain(|k, x| {
                !(x.is_null() && props.contains_key(k) && !required.contains(&k.as_str()))
            });
            for (k, sub) in props {
                if let Some(x) = map.get_mut(k) {
                    strip(x, sub, root, depth + 1);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = s.get("items").filter(|i| i.is_object()) {
                for x in items {
                    strip(x, item_schema, root, depth + 1);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario_like() -> Value {
        json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "properties": {
                "scenarios": {"type": "array", "items": {"$ref": "#/$defs/Scenario"}}
            },
            "required": ["scenarios"],
            "$defs": {
                "Scenario": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string"},
                        "count": {"type": "integer", "format": "uint32", "minimum": 0, "default": 1},
                        "kind": {"type": "string", "enum": ["a", "b"]},
                        "step": {"oneOf": [
                            {"type": "object", "properties": {"sleep": {"type": "string"}}, "required": ["sleep"], "additionalProperties": false}
                        ]},
                        "tags": {"type": "array", "items": {"type": "string"}}
                    },
                    "required": ["name", "step"],
                    "additionalProperties": false
                }
            }
        })
    }

    #[test]
    fn rewrites_to_strict() {
        let s = strict_schema(&scenario_like()).unwrap();
        let sc = &s["$defs"]["Scenario"];
        assert!(s.get("$schema").is_none());
        assert_eq!(s["additionalProperties"], false);
        assert_eq!(
            sc["required"],
            json!(["name", "count", "kind", "step", "tags"])
        );
        assert_eq!(sc["properties"]["name"]["type"], "string");
        assert_eq!(
            sc["properties"]["count"]["type"],
            json!(["integer", "null"])
        );
        assert!(sc["properties"]["count"].get("format").is_none());
        assert!(sc["properties"]["count"].get("default").is_none());
        assert_eq!(
            sc["properties"]["kind"]["anyOf"][1],
            json!({"type": "null"})
        );
        assert!(sc["properties"]["step"].get("oneOf").is_none());
        assert_eq!(
            sc["properties"]["step"]["anyOf"][0]["additionalProperties"],
            false
        );
        assert_eq!(sc["properties"]["tags"]["type"], json!(["array", "null"]));
    }

    #[test]
    fn refuses_maps_and_free_form() {
        let map = json!({"type": "object", "properties": {"headers": {"type": "object", "additionalProperties": {"type": "string"}}}});
        assert!(strict_schema(&map).unwrap_err().contains("headers"));
        let any = json!({"type": "object", "properties": {"v": true}});
        assert!(strict_schema(&any).unwrap_err().contains("free-form"));
        let any = json!({"type": "object", "properties": {"v": {"description": "anything"}}});
        assert!(strict_schema(&any).is_err());
        assert!(strict_schema(&json!({"type": "array"})).is_err());
        let not = json!({"type": "object", "properties": {"v": {"type": "string", "not": {"const": "x"}}}});
        assert!(strict_schema(&not).is_err());
    }

    #[test]
    fn strips_nulls_of_optional_properties_only() {
        let schema = json!({
            "type": "object",
            "properties": {
                "scenarios": {"type": "array", "items": {"$ref": "#/$defs/S"}},
                "note": {"type": ["string", "null"]}
            },
            "required": ["scenarios", "note"],
            "$defs": {"S": {"type": "object", "properties": {"name": {"type": "string"}, "tags": {"type": "array"}}, "required": ["name"]}}
        });
        let mut v = json!({"scenarios": [{"name": "a", "tags": null}, {"name": "b", "tags": ["x"]}], "note": null});
        strip_optional_nulls(&mut v, &schema);
        assert_eq!(
            v,
            json!({"scenarios": [{"name": "a"}, {"name": "b", "tags": ["x"]}], "note": null})
        );
    }
}
