//! Reading a model's answer when it is not exactly the requested JSON:
//! Markdown fences (JSON or YAML), an object embedded in prose, JSON
//! followed by text, a bare list or a single scenario. What cannot be
//! salvaged goes back to the model through the repair loop.

use serde_json::{json, Value};

/// How an answer was read, for the attempt log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Salvage {
    /// Exactly the requested object.
    Exact,
    /// Found inside a Markdown code fence.
    Fenced,
    /// Found inside prose, or followed by text.
    Embedded,
}

impl Salvage {
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Salvage::Exact => "as sent",
            Salvage::Fenced => "from a Markdown code fence",
            Salvage::Embedded => "from JSON embedded in text",
        }
    }
}

/// `{"scenarios": [...]}` from a parsed value: the object itself, a bare
/// list of scenarios, a single scenario, or an object whose only list
/// holds scenarios (`{"tests": [...]}`).
pub(crate) fn normalize(v: Value) -> Option<Value> {
    let looks_like_scenario = |v: &Value| {
        v.as_object()
            .is_some_and(|o| o.contains_key("steps") || o.contains_key("assertions"))
    };
    match v {
        Value::Object(ref o) if o.get("scenarios").is_some_and(Value::is_array) => Some(v),
        Value::Array(items) if items.iter().all(|i| i.is_object()) => {
            Some(json!({ "scenarios": items }))
        }
        Value::Object(_) if looks_like_scenario(&v) => Some(json!({ "scenarios": [v] })),
        Value::Object(o) => {
            let lists: Vec<&Value> = o
                .values()
                .filter(|x| {
                    x.as_array()
                        .is_some_and(|a| !a.is_empty() && a.iter().all(looks_like_scenario))
                })
                .collect();
            match lists.as_slice() {
                [one] => Some(json!({ "scenarios": one })),
                _ => None,
            }
        }
        _ => None,
    }
}

/// The answer as `{"scenarios": [...]}`, or None when nothing usable is
/// in the text.
pub(crate) fn salvage(text: &str) -> Option<(Value, Salvage)> {
    let t = text.trim();
    if let Ok(v) = serde_json::from_str::<Value>(t) {
        if let Some(v) = normalize(v) {
            return Some((v, Salvage::Exact));
        }
    }
    for (lang, body) in fences(t) {
        let parsed = serde_json::from_str::<Value>(body).ok().or_else(|| {
            matches!(lang, "" | "yaml" | "yml")
                .then(|| serde_saphyr::from_str::<Value>(body).ok())
                .flatten()
        });
        if let Some(v) = parsed.and_then(normalize) {
            return Some((v, Salvage::Fenced));
        }
        // A fence holding JSON followed by a remark still counts.
        if let Some(v) = first_embedded(body) {
            return Some((v, Salvage::Fenced));
        }
    }
    first_embedded(t).map(|v| (v, Salvage::Embedded))
}

/// The first `{` or `[` (left to right, at most a few hundred tried) where a
/// JSON value starts that normalizes; trailing text is ignored.
fn first_embedded(t: &str) -> Option<Value> {
    t.char_indices()
        .filter(|(_, c)| *c == '{' || *c == '[')
        .take(400)
        .find_map(|(i, _)| {
            let mut it = serde_json::Deserializer::from_str(&t[i..]).into_iter::<Value>();
            match it.next() {
                Some(Ok(v)) => normalize(v),
                _ => None,
            }
        })
}

/// Markdown code fences: (info string, body).
fn fences(t: &str) -> Vec<(&str, &str)> {
    let mut out = Vec::new();
    let mut rest = t;
    while let Some(start) = rest.find("```") {
        let after = &rest[start + 3..];
        let (info, body_start) = match after.find('\n') {
            Some(nl) => (after[..nl].trim(), nl + 1),
            None => break,
        };
        let body = &after[body_start..];
        match body.find("```") {
            Some(end) => {
                out.push((info, body[..end].trim()));
                rest = &body[end + 3..];
            }
            None => {
                // An unclosed fence (a truncated answer): take what is there.
                out.push((info, body.trim()));
                break;
            }
        }
    }
    out
}

/// A JSON pointer such as `/steps/0/timeout` as `steps[0].timeout`.
pub(crate) fn field_path(pointer: &str) -> String {
    let mut out = String::new();
    for seg in pointer.split('/').filter(|s| !s.is_empty()) {
        if seg.chars().all(|c| c.is_ascii_digit()) {
            out.push_str(&format!("[{seg}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&seg.replace("~1", "/").replace("~0", "~"));
        }
    }
    if out.is_empty() {
        "(the scenario)".into()
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one() -> Value {
        json!({"scenarios": [{"name": "a", "steps": [], "assertions": []}]})
    }

    #[test]
    fn exact_and_bare_shapes() {
        let s = one().to_string();
        assert_eq!(salvage(&s), Some((one(), Salvage::Exact)));
        let list = one()["scenarios"].to_string();
        assert_eq!(salvage(&list), Some((one(), Salvage::Exact)));
        let single = one()["scenarios"][0].to_string();
        assert_eq!(salvage(&single), Some((one(), Salvage::Exact)));
        let other_key = json!({"tests": one()["scenarios"]}).to_string();
        assert_eq!(salvage(&other_key), Some((one(), Salvage::Exact)));
    }

    #[test]
    fn fenced_json_and_yaml() {
        let s = format!("Sure! Here you go:\n```json\n{}\n```\nEnjoy.", one());
        assert_eq!(salvage(&s), Some((one(), Salvage::Fenced)));
        let y = "```yaml\nscenarios:\n  - name: a\n    steps: []\n    assertions: []\n```";
        assert_eq!(salvage(y), Some((one(), Salvage::Fenced)));
    }

    #[test]
    fn embedded_in_prose_or_followed_by_text() {
        let s = format!(
            "Here are three scenarios. {} I hope this helps {{}}.",
            one()
        );
        assert_eq!(salvage(&s), Some((one(), Salvage::Embedded)));
        let s = format!("{}\n\nNote: scenario 1 needs a Gateway.", one());
        assert_eq!(salvage(&s), Some((one(), Salvage::Embedded)));
    }

    #[test]
    fn prose_and_truncated_text_give_nothing() {
        assert_eq!(
            salvage("1. Delete the route and check 404.\n2. Scale web to 0."),
            None
        );
        assert_eq!(salvage("{\"scenarios\": [{\"name\": \"a\", \"st"), None);
        assert_eq!(salvage("{\"answer\": 42}"), None);
    }

    #[test]
    fn field_paths() {
        assert_eq!(field_path("/steps/0/timeout"), "steps[0].timeout");
        assert_eq!(
            field_path("/assertions/1/http/url"),
            "assertions[1].http.url"
        );
        assert_eq!(field_path(""), "(the scenario)");
    }
}
