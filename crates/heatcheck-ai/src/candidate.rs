//! The JSON Schema check of one generated scenario, with messages a model
//! can act on: the field as `steps[0].timeout` and the expected form. For
//! the step and assertion `oneOf`s the errors of the branch whose action key
//! is present are reported, not "is not valid under any of the schemas".

use std::collections::BTreeMap;
use std::sync::LazyLock;

use jsonschema::error::ValidationErrorKind;
use serde_json::{json, Value};

use super::answer::field_path;
use heatcheck_format::{scenario_schema, ASSERTION_KINDS, DURATION_PATTERN, STEP_KINDS};

/// The schema of one generated scenario: the suite's scenario schema plus
/// what a generated one needs (a non-empty name, at least one assertion).
/// `$defs` stay at the root so references resolve.
pub(crate) fn candidate_schema() -> Value {
    let mut s = scenario_schema();
    if let Some(m) = s.as_object_mut() {
        m.remove("$schema");
        m.remove("$id");
    }
    tighten(&mut s);
    s
}

/// Adds the generated-scenario rules to a scenario schema (in place).
pub(crate) fn tighten(s: &mut Value) {
    s["properties"]["name"]["minLength"] = json!(1);
    s["properties"]["name"]["pattern"] = json!("\\S");
    s["properties"]["assertions"]["minItems"] = json!(1);
    if let Some(req) = s["required"].as_array_mut() {
        if !req.iter().any(|r| r == "assertions") {
            req.push(json!("assertions"));
        }
    }
}

static VALIDATOR: LazyLock<jsonschema::Validator> = LazyLock::new(|| {
    jsonschema::validator_for(&candidate_schema()).expect("the candidate schema compiles")
});

/// One validator per `oneOf` branch of Step and Assertion, keyed by
/// (definition, action key).
static BRANCHES: LazyLock<BTreeMap<(&'static str, String), jsonschema::Validator>> =
    LazyLock::new(|| {
        let s = candidate_schema();
        let defs = s["$defs"].clone();
        let mut out = BTreeMap::new();
        for (def, keys) in [("Step", STEP_KINDS), ("Assertion", ASSERTION_KINDS)] {
            for branch in defs[def]["oneOf"].as_array().into_iter().flatten() {
                let Some(key) = branch["required"][0].as_str() else {
                    continue;
                };
                if !keys.contains(&key) {
                    continue;
                }
                let mut b = branch.clone();
                b["$defs"] = defs.clone();
                if let Ok(v) = jsonschema::validator_for(&b) {
                    out.insert((def, key.to_string()), v);
                }
            }
        }
        out
    });

fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        format!("{}...", s.chars().take(max).collect::<String>())
    }
}

fn show(v: &Value) -> String {
    shorten(&v.to_string(), 80)
}

/// One error as `field: what is wrong (expected form)`.
fn describe(prefix: &str, e: &jsonschema::ValidationError<'_>) -> String {
    let at = format!("{prefix}{}", e.instance_path);
    let field = field_path(&at);
    let inst = e.instance.as_ref();
    match &e.kind {
        ValidationErrorKind::Pattern { pattern } if pattern == DURATION_PATTERN => {
            format!("{field}: {} is not a duration such as 30s", show(inst))
        }
        ValidationErrorKind::MinLength { .. } if e.schema_path.to_string().contains("Duration") => {
            format!("{field}: {} is not a duration such as 30s", show(inst))
        }
        ValidationErrorKind::AdditionalProperties { unexpected } => format!(
            "{field}: unknown field(s) {}",
            unexpected
                .iter()
                .map(|u| format!("`{u}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        ValidationErrorKind::Required { property } => {
            let p = property.as_str().unwrap_or_default();
            let full = if field == "(the scenario)" {
                p.to_string()
            } else {
                format!("{field}.{p}")
            };
            format!("{full}: missing (required)")
        }
        ValidationErrorKind::Enum { options } => format!(
            "{field}: {} is not one of {}",
            show(inst),
            options
                .as_array()
                .map(|o| o
                    .iter()
                    .map(|x| x.as_str().map_or(x.to_string(), str::to_string))
                    .collect::<Vec<_>>()
                    .join(", "))
                .unwrap_or_else(|| options.to_string())
        ),
        ValidationErrorKind::MinItems { limit } => {
            format!("{field}: needs at least {limit} item(s)")
        }
        _ => format!("{field}: {}", shorten(&e.to_string(), 200)),
    }
}

/// A step or assertion that matched no `oneOf` branch: which action key is
/// missing or doubled, else the errors of the branch whose key is present.
fn one_of_problems(pointer: &str, inst: &Value) -> Option<Vec<String>> {
    let (def, keys, what) = if pointer.starts_with("/steps/") {
        ("Step", STEP_KINDS, "a step")
    } else if pointer.starts_with("/assertions/") {
        ("Assertion", ASSERTION_KINDS, "an assertion")
    } else {
        return None;
    };
    let field = field_path(pointer);
    let Some(obj) = inst.as_object() else {
        return Some(vec![format!(
            "{field}: {what} is an object such as {{\"{}\": {{...}}}}, not {}",
            keys[0],
            show(inst)
        )]);
    };
    let present: Vec<&str> = keys
        .iter()
        .copied()
        .filter(|k| obj.contains_key(*k))
        .collect();
    match present.as_slice() {
        [] => Some(vec![format!(
            "{field}: {what} needs exactly one of the keys {}; found {}",
            keys.join(", "),
            if obj.is_empty() {
                "none".to_string()
            } else {
                obj.keys().cloned().collect::<Vec<_>>().join(", ")
            }
        )]),
        [key] => {
            let v = BRANCHES.get(&(def, key.to_string()))?;
            let out: Vec<String> = v.iter_errors(inst).map(|e| describe(pointer, &e)).collect();
            (!out.is_empty()).then_some(out)
        }
        many => Some(vec![format!(
            "{field}: {what} has exactly one of {}; found {} (split them into separate entries)",
            keys.join(", "),
            many.join(" and ")
        )]),
    }
}

/// Schema problems of one candidate (empty when it matches).
pub(crate) fn schema_problems(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for e in VALIDATOR.iter_errors(v) {
        let pointer = e.instance_path.to_string();
        let lines = match &e.kind {
            ValidationErrorKind::OneOfNotValid { .. } => {
                one_of_problems(&pointer, e.instance.as_ref())
                    .unwrap_or_else(|| vec![describe("", &e)])
            }
            _ => vec![describe("", &e)],
        };
        for l in lines {
            if !out.contains(&l) {
                out.push(l);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Value {
        json!({"name": "n", "steps": [{"sleep": "1s"}],
            "assertions": [{"absent": {"kind": "Pod", "name": "p"}}]})
    }

    #[test]
    fn a_good_candidate_has_no_problems() {
        assert!(
            schema_problems(&base()).is_empty(),
            "{:?}",
            schema_problems(&base())
        );
    }

    #[test]
    fn the_branch_of_the_present_action_key_is_reported() {
        let mut v = base();
        v["steps"] = json!([{"timeout": "}, {", "delete": {"kind": "HTTPRoute", "name": "r"}}]);
        assert_eq!(
            schema_problems(&v),
            ["steps[0].timeout: \"}, {\" is not a duration such as 30s"]
        );
        v["steps"] = json!([{"scale": {"kind": "Deployment", "name": "web", "replica": 0}}]);
        let p = schema_problems(&v).join("\n");
        assert!(
            p.contains("steps[0].scale: unknown field(s) `replica`"),
            "{p}"
        );
        assert!(
            p.contains("steps[0].scale.replicas: missing (required)"),
            "{p}"
        );
    }

    #[test]
    fn missing_or_doubled_action_keys() {
        let mut v = base();
        v["steps"] = json!([{"slep": "1s"}]);
        let p = schema_problems(&v).join("\n");
        assert!(
            p.contains("steps[0]: a step needs exactly one of the keys apply"),
            "{p}"
        );
        assert!(p.contains("found slep"), "{p}");
        v["steps"] = json!([{"sleep": "1s", "scale": {"name": "w", "replicas": 1}}]);
        let p = schema_problems(&v).join("\n");
        assert!(
            p.contains("found scale and sleep") || p.contains("found sleep and scale"),
            "{p}"
        );
    }

    #[test]
    fn generated_scenarios_need_a_name_and_an_assertion() {
        let mut v = base();
        v["name"] = json!(" ");
        v["assertions"] = json!([]);
        let p = schema_problems(&v).join("\n");
        assert!(p.contains("name: "), "{p}");
        assert!(p.contains("assertions: needs at least 1 item(s)"), "{p}");
        let mut v = base();
        v.as_object_mut().unwrap().remove("assertions");
        assert_eq!(schema_problems(&v), ["assertions: missing (required)"]);
    }
}
