//! JSON Schemas of the format, generated from the types and checked in
//! under schemas/ (a test keeps the files in sync).

use super::types::{Scenario, Suite};

/// JSON Schema of a suite file.
pub fn suite_schema() -> serde_json::Value {
    let schema = serde_json::to_value(schemars::schema_for!(Suite)).expect("a schema is JSON");
    with_identity(schema, "suite", "heatcheck Suite")
}

/// JSON Schema of one scenario (what the AI side must produce).
pub fn scenario_schema() -> serde_json::Value {
    let schema = serde_json::to_value(schemars::schema_for!(Scenario)).expect("a schema is JSON");
    with_identity(schema, "scenario", "heatcheck Scenario")
}

/// `$id` and title on the root only: an `$id` on a nested definition would
/// change the base of its `#/$defs/...` references.
fn with_identity(schema: serde_json::Value, file: &str, title: &str) -> serde_json::Value {
    let serde_json::Value::Object(map) = schema else {
        return schema;
    };
    let mut out = serde_json::Map::new();
    out.insert(
        "$schema".into(),
        map.get("$schema").cloned().unwrap_or_default(),
    );
    out.insert(
        "$id".into(),
        format!("https://heatcheck.dev/schemas/{file}.schema.json").into(),
    );
    out.insert("title".into(), title.into());
    for (k, v) in map {
        if k != "$schema" && k != "title" {
            out.insert(k, v);
        }
    }
    serde_json::Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn pretty(v: &serde_json::Value) -> String {
        let mut s = serde_json::to_string_pretty(v).unwrap();
        s.push('\n');
        s
    }

    /// Fails when schemas/*.json differ from the types. Regenerate with
    /// `HEATCHECK_UPDATE_SCHEMAS=1 cargo test --lib schema`.
    #[test]
    fn checked_in_schemas_are_up_to_date() {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../schemas");
        let update = std::env::var_os("HEATCHECK_UPDATE_SCHEMAS").is_some();
        let mut stale = Vec::new();
        for (file, schema) in [
            ("suite.schema.json", suite_schema()),
            ("scenario.schema.json", scenario_schema()),
        ] {
            let path = dir.join(file);
            let want = pretty(&schema);
            if update {
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(&path, &want).unwrap();
            } else if std::fs::read_to_string(&path).ok().as_deref() != Some(want.as_str()) {
                stale.push(path.display().to_string());
            }
        }
        assert!(
            stale.is_empty(),
            "out of date: {}\nregenerate with: HEATCHECK_UPDATE_SCHEMAS=1 cargo test --lib suite::schema",
            stale.join(", ")
        );
    }

    #[test]
    fn step_schema_is_one_of_single_action_objects() {
        let schema = suite_schema();
        let step = &schema["$defs"]["Step"];
        let variants = step["oneOf"].as_array().unwrap();
        assert_eq!(variants.len(), super::super::step::STEP_KINDS.len());
        for v in variants {
            assert_eq!(v["additionalProperties"], false);
            assert_eq!(v["required"].as_array().unwrap().len(), 1);
        }
    }
}
