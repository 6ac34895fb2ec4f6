//! Label and field selectors, parsed and matched with the API server's
//! grammar: `a=b,c!=d,e in (x,y),f notin (z),g,!h`.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub(crate) struct SelectorError(pub String);

#[derive(Debug, Clone, PartialEq)]
enum Op {
    Eq(String),
    NotEq(String),
    In(Vec<String>),
    NotIn(Vec<String>),
    Exists,
    NotExists,
    Gt(i64),
    Lt(i64),
}

#[derive(Debug, Clone, PartialEq)]
struct Requirement {
    key: String,
    op: Op,
}

impl Requirement {
    fn matches(&self, value: Option<&str>) -> bool {
        match (&self.op, value) {
            (Op::Exists, v) => v.is_some(),
            (Op::NotExists, v) => v.is_none(),
            (Op::Eq(want), Some(v)) => v == want,
            (Op::In(set), Some(v)) => set.iter().any(|s| s == v),
            (Op::Eq(_) | Op::In(_), None) => false,
            // `!=` and `notin` also match objects without the label.
            (Op::NotEq(want), v) => v != Some(want.as_str()),
            (Op::NotIn(set), v) => v.is_none_or(|v| !set.iter().any(|s| s == v)),
            (Op::Gt(n), Some(v)) => v.parse::<i64>().is_ok_and(|v| v > *n),
            (Op::Lt(n), Some(v)) => v.parse::<i64>().is_ok_and(|v| v < *n),
            (Op::Gt(_) | Op::Lt(_), None) => false,
        }
    }
}

/// A parsed `labelSelector`. The empty selector matches everything.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct LabelSelector {
    reqs: Vec<Requirement>,
}

impl LabelSelector {
    pub(crate) fn parse(s: &str) -> Result<Self, SelectorError> {
        let mut reqs = Vec::new();
        for part in split_top_level(s)? {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            reqs.push(parse_requirement(part)?);
        }
        Ok(LabelSelector { reqs })
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.reqs.is_empty()
    }

    /// Matches the labels of an object (`metadata.labels`).
    pub(crate) fn matches(&self, obj: &Value) -> bool {
        let labels = obj.pointer("/metadata/labels").and_then(Value::as_object);
        self.reqs.iter().all(|r| {
            let v = labels.and_then(|l| l.get(&r.key)).and_then(Value::as_str);
            r.matches(v)
        })
    }
}

/// Splits on commas outside parentheses.
fn split_top_level(s: &str) -> Result<Vec<&str>, SelectorError> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth < 0 {
                    return Err(SelectorError(format!(
                        "unable to parse requirement: unexpected ')' in {s:?}"
                    )));
                }
            }
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err(SelectorError(format!(
            "unable to parse requirement: unclosed '(' in {s:?}"
        )));
    }
    out.push(&s[start..]);
    Ok(out)
}

fn parse_requirement(part: &str) -> Result<Requirement, SelectorError> {
    if let Some(key) = part.strip_prefix('!') {
        let key = key.trim();
        check_key(key)?;
        return Ok(Requirement {
            key: key.into(),
            op: Op::NotExists,
        });
    }
    // Set operators: `key in (a,b)` / `key notin (a,b)`.
    if let Some(open) = part.find('(') {
        let head = part[..open].trim();
        let close = part.rfind(')').filter(|c| *c > open).ok_or_else(|| {
            SelectorError(format!(
                "unable to parse requirement: missing ')' in {part:?}"
            ))
        })?;
        if !part[close + 1..].trim().is_empty() {
            return Err(SelectorError(format!(
                "unable to parse requirement: trailing characters in {part:?}"
            )));
        }
        let mut words = head.split_whitespace();
        let (key, op) = match (words.next(), words.next(), words.next()) {
            (Some(k), Some(op), None) => (k, op),
            _ => {
                return Err(SelectorError(format!(
                    "unable to parse requirement: expected `key in (...)` or `key notin (...)`, got {part:?}"
                )))
            }
        };
        check_key(key)?;
        let values: Vec<String> = part[open + 1..close]
            .split(',')
            .map(|v| v.trim().to_string())
            .collect();
        for v in &values {
            check_value(v)?;
        }
        let op = match op {
            "in" => Op::In(values),
            "notin" => Op::NotIn(values),
            other => {
                return Err(SelectorError(format!(
                    "unable to parse requirement: unknown operator {other:?}"
                )))
            }
        };
        return Ok(Requirement {
            key: key.into(),
            op,
        });
    }
    for (sym, mk) in [
        ("!=", (|v: String| Op::NotEq(v)) as fn(String) -> Op),
        ("==", |v| Op::Eq(v)),
        ("=", |v| Op::Eq(v)),
    ] {
        if let Some((k, v)) = part.split_once(sym) {
            let (k, v) = (k.trim(), v.trim());
            check_key(k)?;
            check_value(v)?;
            return Ok(Requirement {
                key: k.into(),
                op: mk(v.into()),
            });
        }
    }
    for (sym, gt) in [(">", true), ("<", false)] {
        if let Some((k, v)) = part.split_once(sym) {
            let k = k.trim();
            check_key(k)?;
            let n: i64 = v.trim().parse().map_err(|_| {
                SelectorError(format!(
                    "unable to parse requirement: for 'Gt', 'Lt' operators, the value must be an integer, got {:?}",
                    v.trim()
                ))
            })?;
            let op = if gt { Op::Gt(n) } else { Op::Lt(n) };
            return Ok(Requirement { key: k.into(), op });
        }
    }
    check_key(part)?;
    Ok(Requirement {
        key: part.into(),
        op: Op::Exists,
    })
}

/// A label key: optional DNS prefix `/` name of at most 63 characters.
fn check_key(key: &str) -> Result<(), SelectorError> {
    let name = match key.rsplit_once('/') {
        Some((prefix, name)) => {
            if prefix.is_empty()
                || prefix.len() > 253
                || !prefix
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
            {
                return Err(SelectorError(format!(
                    "unable to parse requirement: invalid label key {key:?}: prefix part must be a DNS-1123 subdomain"
                )));
            }
            name
        }
        None => key,
    };
    if name.is_empty() || !is_label_value(name) {
        return Err(SelectorError(format!(
            "unable to parse requirement: invalid label key {key:?}: name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
        )));
    }
    Ok(())
}

fn check_value(v: &str) -> Result<(), SelectorError> {
    if v.is_empty() || is_label_value(v) {
        Ok(())
    } else {
        Err(SelectorError(format!(
            "unable to parse requirement: invalid label value: {v:?}: a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
        )))
    }
}

fn is_label_value(v: &str) -> bool {
    v.len() <= 63
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        && v.starts_with(|c: char| c.is_ascii_alphanumeric())
        && v.ends_with(|c: char| c.is_ascii_alphanumeric())
}

/// A parsed `fieldSelector`: `=`, `==` and `!=` on supported fields.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct FieldSelector {
    reqs: Vec<(String, bool, String)>,
}

impl FieldSelector {
    /// `extra_fields` are the kind-specific fields the server indexes
    /// (besides metadata.name and metadata.namespace).
    pub(crate) fn parse(s: &str, extra_fields: &[&str]) -> Result<Self, SelectorError> {
        let mut reqs = Vec::new();
        for part in s.split(',') {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            let (field, eq, value) = if let Some((f, v)) = part.split_once("!=") {
                (f, false, v)
            } else if let Some((f, v)) = part.split_once("==") {
                (f, true, v)
            } else if let Some((f, v)) = part.split_once('=') {
                (f, true, v)
            } else {
                return Err(SelectorError(format!(
                    "invalid selector: '{part}'; can't understand '{part}'"
                )));
            };
            let field = field.trim();
            if field != "metadata.name"
                && field != "metadata.namespace"
                && !extra_fields.contains(&field)
            {
                return Err(SelectorError(format!("field label not supported: {field}")));
            }
            reqs.push((field.to_string(), eq, value.trim().to_string()));
        }
        Ok(FieldSelector { reqs })
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.reqs.is_empty()
    }

    pub(crate) fn matches(&self, obj: &Value) -> bool {
        self.reqs.iter().all(|(field, eq, want)| {
            let pointer = format!("/{}", field.replace('.', "/"));
            let got = obj
                .pointer(&pointer)
                .and_then(Value::as_str)
                .unwrap_or_default();
            (got == want) == *eq
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(labels: Value) -> Value {
        json!({"metadata": {"name": "n", "namespace": "ns", "labels": labels}})
    }

    #[test]
    fn equality_and_inequality() {
        let o = obj(json!({"app": "web", "tier": "front"}));
        assert!(LabelSelector::parse("app=web").unwrap().matches(&o));
        assert!(LabelSelector::parse("app==web,tier=front")
            .unwrap()
            .matches(&o));
        assert!(!LabelSelector::parse("app=db").unwrap().matches(&o));
        assert!(!LabelSelector::parse("app!=web").unwrap().matches(&o));
        // != matches objects without the label.
        assert!(LabelSelector::parse("env!=prod").unwrap().matches(&o));
    }

    #[test]
    fn set_operators_and_existence() {
        let o = obj(json!({"app": "web"}));
        assert!(LabelSelector::parse("app in (db, web)")
            .unwrap()
            .matches(&o));
        assert!(!LabelSelector::parse("app notin (db,web)")
            .unwrap()
            .matches(&o));
        assert!(LabelSelector::parse("env notin (prod)")
            .unwrap()
            .matches(&o));
        assert!(LabelSelector::parse("app").unwrap().matches(&o));
        assert!(!LabelSelector::parse("!app").unwrap().matches(&o));
        assert!(LabelSelector::parse("!env,app in (web),app")
            .unwrap()
            .matches(&o));
        assert!(!LabelSelector::parse("env in (a)").unwrap().matches(&o));
        assert!(LabelSelector::parse("").unwrap().matches(&obj(Value::Null)));
    }

    #[test]
    fn numeric_comparisons() {
        let o = obj(json!({"n": "5"}));
        assert!(LabelSelector::parse("n>4").unwrap().matches(&o));
        assert!(!LabelSelector::parse("n<5").unwrap().matches(&o));
        assert!(LabelSelector::parse("n>x").is_err());
    }

    #[test]
    fn malformed_selectors_are_errors() {
        for bad in [
            "app in (a",
            "a b (c)",
            "app=we b",
            "=x",
            "-bad=1",
            "a)",
            "x foo (a)",
        ] {
            assert!(LabelSelector::parse(bad).is_err(), "{bad} should fail");
        }
        assert!(LabelSelector::parse("example.com/app=x").is_ok());
    }

    #[test]
    fn field_selectors() {
        let o = obj(json!({}));
        assert!(FieldSelector::parse("metadata.name=n", &[])
            .unwrap()
            .matches(&o));
        assert!(FieldSelector::parse("metadata.namespace==ns", &[])
            .unwrap()
            .matches(&o));
        assert!(!FieldSelector::parse("metadata.name!=n", &[])
            .unwrap()
            .matches(&o));
        assert!(
            FieldSelector::parse("metadata.name=n,metadata.namespace!=x", &[])
                .unwrap()
                .matches(&o)
        );
        let e = FieldSelector::parse("spec.x=1", &[]).unwrap_err();
        assert_eq!(e.0, "field label not supported: spec.x");
        assert!(FieldSelector::parse("status.phase=Running", &["status.phase"]).is_ok());
    }
}
