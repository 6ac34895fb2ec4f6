//! Reversible anonymization (`ai.anonymize: true`): object names and
//! namespaces become stable placeholders (`httproute-1`, `ns-1`) before
//! anything is sent, and the model's answer is mapped back. Replacement is
//! whole-token (a name inside a longer name is left alone), longest first.

use std::collections::BTreeMap;

use regex::Regex;
use serde_json::{Map, Value};

use super::context::ContextItem;

#[derive(Clone, Debug, Default)]
pub struct Anonymizer {
    /// original -> placeholder
    forward: BTreeMap<String, String>,
    /// placeholder -> original
    back: BTreeMap<String, String>,
    forward_re: Option<Regex>,
    back_re: Option<Regex>,
}

fn token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

fn alternation(words: impl Iterator<Item = String>) -> Option<Regex> {
    let mut words: Vec<String> = words.collect();
    if words.is_empty() {
        return None;
    }
    // Longest first: the regex takes the first alternative that matches.
    words.sort_by(|a, b| b.len().cmp(&a.len()).then(a.cmp(b)));
    let pattern = words
        .iter()
        .map(|w| regex::escape(w))
        .collect::<Vec<_>>()
        .join("|");
    Regex::new(&pattern).ok()
}

impl Anonymizer {
    /// Placeholders for every namespace and object name in `items` (in
    /// their order, so the mapping is stable for the same context), plus the
    /// extra namespaces given (the suite's allowNamespaces).
    pub(crate) fn build(items: &[ContextItem], namespaces: &[String]) -> Self {
        let mut forward = BTreeMap::new();
        let mut counters: BTreeMap<String, usize> = BTreeMap::new();
        let mut assign = |original: &str, prefix: &str, forward: &mut BTreeMap<String, String>| {
            if original.is_empty() || forward.contains_key(original) {
                return;
            }
            let n = counters.entry(prefix.to_string()).or_insert(0);
            *n += 1;
            forward.insert(original.to_string(), format!("{prefix}-{n}"));
        };
        for ns in namespaces {
            assign(ns, "ns", &mut forward);
        }
        for it in items {
            if let Some(ns) = &it.namespace {
                assign(ns, "ns", &mut forward);
            }
        }
        for it in items {
            assign(&it.name, &it.kind.to_ascii_lowercase(), &mut forward);
            if let Some(Value::Object(io)) = it.value.get("involvedObject") {
                if let (Some(k), Some(n)) = (
                    io.get("kind").and_then(Value::as_str),
                    io.get("name").and_then(Value::as_str),
                ) {
                    assign(n, &k.to_ascii_lowercase(), &mut forward);
                }
            }
        }
        let back: BTreeMap<String, String> = forward
            .iter()
            .map(|(k, v)| (v.clone(), k.clone()))
            .collect();
        Anonymizer {
            forward_re: alternation(forward.keys().cloned()),
            back_re: alternation(back.keys().cloned()),
            forward,
            back,
        }
    }

    /// original -> placeholder pairs (for `heatcheck prompt` to show).
    pub fn mapping(&self) -> &BTreeMap<String, String> {
        &self.forward
    }

    pub(crate) fn anonymize_text(&self, s: &str) -> String {
        replace_tokens(s, self.forward_re.as_ref(), &self.forward)
    }

    pub(crate) fn restore_text(&self, s: &str) -> String {
        replace_tokens(s, self.back_re.as_ref(), &self.back)
    }

    /// Deep replace in every string and key.
    pub(crate) fn anonymize_value(&self, v: &Value) -> Value {
        map_strings(v, &|s| self.anonymize_text(s))
    }

    pub(crate) fn restore_value(&self, v: &Value) -> Value {
        map_strings(v, &|s| self.restore_text(s))
    }
}

fn replace_tokens(s: &str, re: Option<&Regex>, map: &BTreeMap<String, String>) -> String {
    let Some(re) = re else {
        return s.to_string();
    };
    let mut out = String::with_capacity(s.len());
    let mut last = 0;
    for m in re.find_iter(s) {
        let before = s[..m.start()].chars().next_back();
        let after = s[m.end()..].chars().next();
        if before.is_some_and(token_char) || after.is_some_and(token_char) {
            continue;
        }
        out.push_str(&s[last..m.start()]);
        out.push_str(&map[m.as_str()]);
        last = m.end();
    }
    out.push_str(&s[last..]);
    out
}

fn map_strings(v: &Value, f: &dyn Fn(&str) -> String) -> Value {
    match v {
        Value::String(s) => Value::String(f(s)),
        Value::Array(items) => Value::Array(items.iter().map(|i| map_strings(i, f)).collect()),
        Value::Object(m) => {
            let mut out = Map::with_capacity(m.len());
            for (k, val) in m {
                out.insert(f(k), map_strings(val, f));
            }
            Value::Object(out)
        }
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn it(kind: &str, ns: &str, name: &str) -> ContextItem {
        ContextItem {
            group: 0,
            kind: kind.into(),
            namespace: Some(ns.into()),
            name: name.into(),
            value: json!({"kind": kind, "metadata": {"name": name, "namespace": ns}}),
        }
    }

    fn sample() -> Anonymizer {
        Anonymizer::build(
            &[
                it("HTTPRoute", "shop", "my-route"),
                it("HTTPRoute", "shop", "my-route-v3"),
                it("Service", "shop", "web"),
                it("Deployment", "shop", "web"),
            ],
            &["shop".to_string()],
        )
    }

    #[test]
    fn placeholders_are_stable_and_per_kind() {
        let a = sample();
        let m = a.mapping();
        assert_eq!(m["shop"], "ns-1");
        assert_eq!(m["my-route"], "httproute-1");
        assert_eq!(m["my-route-v3"], "httproute-2");
        assert_eq!(m["web"], "service-1");
        assert_eq!(sample().mapping(), m);
    }

    #[test]
    fn whole_tokens_only() {
        let a = sample();
        assert_eq!(
            a.anonymize_text(
                "my-route-v3 and my-route in shop; web.shop.svc; webshop; my-route-v4"
            ),
            "httproute-2 and httproute-1 in ns-1; service-1.ns-1.svc; webshop; my-route-v4"
        );
    }

    #[test]
    fn round_trip_of_an_answer() {
        let a = sample();
        let answer = json!({"scenarios": [{"name": "delete my-route", "steps": [
            {"delete": {"kind": "HTTPRoute", "name": "my-route", "namespace": "shop"}},
            {"fault": {"type": "podKill", "selector": "app=web", "duration": "10s"}}
        ], "description": "my-route-v3 takes over web in shop"}]});
        let anon = a.anonymize_value(&answer);
        let text = anon.to_string();
        for name in ["my-route", "shop", "\"web\"", "=web"] {
            assert!(!text.contains(name), "{name} in {text}");
        }
        assert_eq!(a.restore_value(&anon), answer);
        // Placeholders with a common prefix restore correctly.
        assert_eq!(
            a.restore_text("httproute-1,httproute-2"),
            "my-route,my-route-v3"
        );
    }
}
