//! Value matchers used by assertions: `equals`, `matches` (regex), `exists`.

use std::borrow::Cow;
use std::fmt;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// Keys accepted in the mapping form of a matcher.
pub(crate) const MATCHER_KEYS: &[&str] = &["equals", "matches", "exists"];

/// How an observed value is checked.
///
/// YAML: a plain scalar (or list) means `equals`; otherwise exactly one of
/// `{equals: V}`, `{matches: REGEX}`, `{exists: BOOL}`.
#[derive(Clone, Debug, PartialEq)]
pub enum Matcher {
    Equals(Value),
    Matches(String),
    Exists(bool),
}

impl Matcher {
    /// Check `actual` (None = the path selected nothing).
    /// The error is one line: `expected X, got Y`.
    pub fn check(&self, actual: Option<&Value>) -> Result<(), String> {
        match self {
            Matcher::Exists(want) => match (want, actual) {
                (true, Some(_)) | (false, None) => Ok(()),
                (true, None) => Err("expected a value to exist, got nothing".into()),
                (false, Some(v)) => Err(format!("expected nothing, got {}", show(v))),
            },
            Matcher::Equals(want) => match actual {
                Some(v) if loosely_equal(want, v) => Ok(()),
                Some(v) => Err(format!("expected {}, got {}", show(want), show(v))),
                None => Err(format!("expected {}, got nothing", show(want))),
            },
            Matcher::Matches(pattern) => {
                let re = regex::Regex::new(pattern)
                    .map_err(|e| format!("invalid regex {pattern:?}: {e}"))?;
                match actual {
                    Some(v) => {
                        let text = as_text(v);
                        if re.is_match(&text) {
                            Ok(())
                        } else {
                            Err(format!("expected a match for /{pattern}/, got {}", show(v)))
                        }
                    }
                    None => Err(format!("expected a match for /{pattern}/, got nothing")),
                }
            }
        }
    }

    /// The regex of a `matches` matcher, for load-time validation.
    pub(crate) fn regex(&self) -> Option<&str> {
        match self {
            Matcher::Matches(p) => Some(p),
            _ => None,
        }
    }
}

/// Numbers compare by value (`1` equals `1.0`); a string equals a number
/// with the same text (`"3"` equals `3`) and a bool equals its text in any
/// case (`true` equals `"True"`): YAML turns unquoted `True` into a bool,
/// while Kubernetes condition statuses are the strings "True"/"False".
fn loosely_equal(want: &Value, got: &Value) -> bool {
    match (want, got) {
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (Value::String(s), Value::Number(n)) | (Value::Number(n), Value::String(s)) => {
            *s == n.to_string()
        }
        (Value::String(s), Value::Bool(b)) | (Value::Bool(b), Value::String(s)) => {
            s.eq_ignore_ascii_case(if *b { "true" } else { "false" })
        }
        _ => want == got,
    }
}

/// Text a regex is matched against: strings raw, everything else as JSON.
fn as_text(v: &Value) -> Cow<'_, str> {
    match v {
        Value::String(s) => Cow::Borrowed(s),
        other => Cow::Owned(other.to_string()),
    }
}

/// Short one-line rendering for messages.
fn show(v: &Value) -> String {
    let text = v.to_string();
    if text.chars().count() > 120 {
        let cut: String = text.chars().take(117).collect();
        format!("{cut}...")
    } else {
        text
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Matcher::Equals(v) => write!(f, "equals {}", show(v)),
            Matcher::Matches(p) => write!(f, "matches /{p}/"),
            Matcher::Exists(true) => f.write_str("exists"),
            Matcher::Exists(false) => f.write_str("does not exist"),
        }
    }
}

impl Serialize for Matcher {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            // Scalars stay in the short form, as people write them.
            Matcher::Equals(v) if !v.is_object() => v.serialize(serializer),
            Matcher::Equals(v) => single(serializer, "equals", v),
            Matcher::Matches(p) => single(serializer, "matches", p),
            Matcher::Exists(b) => single(serializer, "exists", b),
        }
    }
}

fn single<S: Serializer, T: Serialize>(s: S, key: &str, v: &T) -> Result<S::Ok, S::Error> {
    let mut map = s.serialize_map(Some(1))?;
    map.serialize_entry(key, v)?;
    map.end()
}

impl<'de> Deserialize<'de> for Matcher {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(MatcherVisitor)
    }
}

struct MatcherVisitor;

impl<'de> Visitor<'de> for MatcherVisitor {
    type Value = Matcher;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "a scalar to compare with, or one of {equals: V}, {matches: REGEX}, {exists: BOOL}",
        )
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Matcher, E> {
        Ok(Matcher::Equals(Value::Bool(v)))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Matcher, E> {
        Ok(Matcher::Equals(v.into()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Matcher, E> {
        Ok(Matcher::Equals(v.into()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Matcher, E> {
        Ok(Matcher::Equals(Value::from(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Matcher, E> {
        Ok(Matcher::Equals(Value::String(v.to_string())))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Matcher, E> {
        Ok(Matcher::Equals(Value::Null))
    }
    fn visit_none<E: de::Error>(self) -> Result<Matcher, E> {
        Ok(Matcher::Equals(Value::Null))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Matcher, A::Error> {
        let mut items = Vec::new();
        while let Some(v) = seq.next_element::<Value>()? {
            items.push(v);
        }
        Ok(Matcher::Equals(Value::Array(items)))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Matcher, A::Error> {
        let mut found: Option<Matcher> = None;
        while let Some(key) = map.next_key::<String>()? {
            let m = match key.as_str() {
                "equals" => Matcher::Equals(map.next_value()?),
                "matches" => Matcher::Matches(map.next_value()?),
                "exists" => Matcher::Exists(map.next_value()?),
                other => return Err(de::Error::unknown_field(other, MATCHER_KEYS)),
            };
            if found.is_some() {
                return Err(de::Error::custom(
                    "a matcher takes exactly one of equals, matches, exists",
                ));
            }
            found = Some(m);
        }
        found.ok_or_else(|| {
            de::Error::custom("empty matcher: expected one of equals, matches, exists")
        })
    }
}

impl JsonSchema for Matcher {
    fn schema_name() -> Cow<'static, str> {
        "Matcher".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A plain scalar or list means equals; otherwise exactly one of equals, matches (regex), exists.",
            "anyOf": [
                {"type": ["string", "number", "boolean", "null", "array"]},
                {"type": "object", "properties": {"equals": true}, "required": ["equals"], "additionalProperties": false},
                {"type": "object", "properties": {"matches": {"type": "string", "format": "regex"}}, "required": ["matches"], "additionalProperties": false},
                {"type": "object", "properties": {"exists": {"type": "boolean"}}, "required": ["exists"], "additionalProperties": false}
            ]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn m(v: Value) -> Matcher {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn parses_all_forms() {
        assert_eq!(m(json!("True")), Matcher::Equals(json!("True")));
        assert_eq!(m(json!(3)), Matcher::Equals(json!(3)));
        assert_eq!(m(json!([1, 2])), Matcher::Equals(json!([1, 2])));
        assert_eq!(
            m(json!({"equals": {"a": 1}})),
            Matcher::Equals(json!({"a": 1}))
        );
        assert_eq!(
            m(json!({"matches": "^v1-"})),
            Matcher::Matches("^v1-".into())
        );
        assert_eq!(m(json!({"exists": false})), Matcher::Exists(false));
        let err = serde_json::from_value::<Matcher>(json!({"equal": 1})).unwrap_err();
        assert!(err.to_string().contains("unknown field `equal`"), "{err}");
        assert!(serde_json::from_value::<Matcher>(json!({"equals": 1, "exists": true})).is_err());
        assert!(serde_json::from_value::<Matcher>(json!({})).is_err());
    }

    #[test]
    fn serializes_back_to_the_same_shape() {
        for v in [
            json!("x"),
            json!({"equals": {"a": 1}}),
            json!({"matches": "a+"}),
            json!({"exists": true}),
        ] {
            assert_eq!(serde_json::to_value(m(v.clone())).unwrap(), v);
        }
    }

    #[test]
    fn equals_checks_with_loose_scalar_comparison() {
        let eq = Matcher::Equals(json!("True"));
        assert_eq!(eq.check(Some(&json!("True"))), Ok(()));
        assert_eq!(
            eq.check(Some(&json!("False"))).unwrap_err(),
            "expected \"True\", got \"False\""
        );
        assert_eq!(
            eq.check(None).unwrap_err(),
            "expected \"True\", got nothing"
        );
        assert_eq!(Matcher::Equals(json!(3)).check(Some(&json!(3.0))), Ok(()));
        assert_eq!(Matcher::Equals(json!("3")).check(Some(&json!(3))), Ok(()));
        assert_eq!(
            Matcher::Equals(json!(true)).check(Some(&json!("True"))),
            Ok(())
        );
        assert!(Matcher::Equals(json!(false))
            .check(Some(&json!("True")))
            .is_err());
        assert!(Matcher::Equals(json!("1"))
            .check(Some(&json!(true)))
            .is_err());
    }

    #[test]
    fn matches_and_exists() {
        let re = Matcher::Matches("^infra-backend-v1-".into());
        assert_eq!(re.check(Some(&json!("infra-backend-v1-abc"))), Ok(()));
        assert_eq!(
            re.check(Some(&json!("infra-backend-v2-abc"))).unwrap_err(),
            "expected a match for /^infra-backend-v1-/, got \"infra-backend-v2-abc\""
        );
        assert_eq!(
            Matcher::Matches("^4".into()).check(Some(&json!(42))),
            Ok(())
        );
        assert_eq!(Matcher::Exists(true).check(Some(&json!(null))), Ok(()));
        assert_eq!(
            Matcher::Exists(true).check(None).unwrap_err(),
            "expected a value to exist, got nothing"
        );
        assert_eq!(
            Matcher::Exists(false).check(Some(&json!(1))).unwrap_err(),
            "expected nothing, got 1"
        );
        assert!(Matcher::Matches("(".into())
            .check(Some(&json!("x")))
            .is_err());
    }
}
