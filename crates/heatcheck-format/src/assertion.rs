//! Assertions: checks on HTTP responses and cluster objects.
//!
//! YAML shape: one kind key beside an optional `name`:
//! `- name: served by v1\n  http: {url: ..., expect: {status: 200}}`.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use super::duration::Duration;
use super::matcher::Matcher;
use super::step::set_once;

/// Kind keys of an assertion, in the order shown to users.
pub const ASSERTION_KINDS: &[&str] = &["http", "resource", "order", "absent", "present", "promql"];

/// Keys every assertion may carry beside its kind.
pub(crate) const ASSERTION_COMMON_KEYS: &[&str] = &["name"];

#[derive(Clone, Debug, PartialEq)]
pub struct Assertion {
    pub name: Option<String>,
    pub kind: AssertionKind,
}

#[derive(Clone, Debug, PartialEq)]
pub enum AssertionKind {
    Http(HttpAssertion),
    Resource(ResourceAssertion),
    Order(OrderAssertion),
    Absent(ObjectRef),
    Present(ObjectRef),
    Promql(PromqlAssertion),
}

impl AssertionKind {
    /// The YAML key of this kind (`http`, `resource`, ...).
    pub fn key(&self) -> &'static str {
        match self {
            AssertionKind::Http(_) => "http",
            AssertionKind::Resource(_) => "resource",
            AssertionKind::Order(_) => "order",
            AssertionKind::Absent(_) => "absent",
            AssertionKind::Present(_) => "present",
            AssertionKind::Promql(_) => "promql",
        }
    }
}

impl Assertion {
    /// A name for reports: the given name, else `<kind> <target>`.
    pub fn display_name(&self) -> String {
        if let Some(n) = &self.name {
            return n.clone();
        }
        let detail = match &self.kind {
            AssertionKind::Http(h) => format!("{} {}", h.method, h.url),
            AssertionKind::Resource(r) => {
                format!(
                    "{}/{}",
                    r.kind,
                    r.name.as_deref().or(r.selector.as_deref()).unwrap_or("*")
                )
            }
            AssertionKind::Order(o) => format!("{} by {}", o.kind, o.by),
            AssertionKind::Absent(o) | AssertionKind::Present(o) => {
                format!("{}/{}", o.kind, o.name)
            }
            AssertionKind::Promql(q) => q.query.clone(),
        };
        format!("{} {}", self.kind.key(), detail)
    }
}

fn default_get() -> String {
    "GET".to_string()
}

fn default_every() -> Duration {
    Duration::from_millis(500)
}

fn default_order_by() -> String {
    "$.metadata.creationTimestamp".to_string()
}

/// An HTTP request, as used by probes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpRequestSpec {
    #[serde(default = "default_get")]
    pub method: String,
    /// Template, e.g. `{{gateway "my-gateway"}}/shop`.
    pub url: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Per-request timeout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
}

/// `http`: send one request (optionally retried until it passes) and check the response.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpAssertion {
    #[serde(default = "default_get")]
    pub method: String,
    pub url: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    /// Retry until the expectation holds, up to `within`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eventually: Option<Eventually>,
    #[serde(default)]
    pub expect: HttpExpect,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Eventually {
    pub within: Duration,
    #[serde(default = "default_every")]
    pub every: Duration,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpExpect {
    /// Expected status code(s); when absent any 2xx passes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<StatusExpect>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, Matcher>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_contains: Option<String>,
    /// Regex the body must match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_matches: Option<String>,
    /// JSON path (on the JSON body) -> matcher.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub json: BTreeMap<String, Matcher>,
}

impl HttpExpect {
    /// Whether a status code passes: the listed code(s), else any 2xx.
    pub fn status_ok(&self, code: u16) -> bool {
        match &self.status {
            Some(s) => s.codes().contains(&code),
            None => (200..300).contains(&code),
        }
    }
}

/// `status: 200` or `status: [200, 204]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StatusExpect {
    One(u16),
    AnyOf(Vec<u16>),
}

impl StatusExpect {
    pub fn codes(&self) -> &[u16] {
        match self {
            StatusExpect::One(c) => std::slice::from_ref(c),
            StatusExpect::AnyOf(v) => v,
        }
    }
}

impl Serialize for StatusExpect {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            StatusExpect::One(c) => c.serialize(serializer),
            StatusExpect::AnyOf(v) => v.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for StatusExpect {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = StatusExpect;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an HTTP status code or a list of them")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<StatusExpect, E> {
                code(v).map(StatusExpect::One)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<StatusExpect, E> {
                code(u64::try_from(v).unwrap_or(0)).map(StatusExpect::One)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<StatusExpect, A::Error> {
                let mut codes = Vec::new();
                while let Some(c) = seq.next_element::<u64>()? {
                    codes.push(code(c)?);
                }
                if codes.is_empty() {
                    return Err(de::Error::custom("the list of status codes is empty"));
                }
                Ok(StatusExpect::AnyOf(codes))
            }
        }
        fn code<E: de::Error>(v: u64) -> Result<u16, E> {
            match u16::try_from(v) {
                Ok(c) if (100..=599).contains(&c) => Ok(c),
                _ => Err(E::custom(format!(
                    "invalid HTTP status {v}: expected 100..=599"
                ))),
            }
        }
        deserializer.deserialize_any(V)
    }
}

impl JsonSchema for StatusExpect {
    fn schema_name() -> Cow<'static, str> {
        "StatusExpect".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "An HTTP status code or a list of accepted codes.",
            "anyOf": [
                {"type": "integer", "minimum": 100, "maximum": 599},
                {"type": "array", "items": {"type": "integer", "minimum": 100, "maximum": 599}, "minItems": 1}
            ]
        })
    }
}

/// `resource`: JSON paths on one object (by name) or all objects matching a selector.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResourceAssertion {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// JSON path -> matcher, checked on every selected object.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub expect: BTreeMap<String, Matcher>,
    /// Exact number of selected objects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
}

/// `order`: the named objects, sorted by `by`, appear in this order (oldest first).
/// Objects not named in `expect` are ignored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OrderAssertion {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    #[serde(default = "default_order_by")]
    pub by: String,
    pub expect: Vec<String>,
}

/// `promql`: an instant query against the suite's Prometheus. `expect` (a threshold such as
/// `"< 0.01"`) must hold for every series of the vector result, which must not be empty;
/// `empty: true|false` checks for (no) series instead. Exactly one of the two.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PromqlAssertion {
    /// PromQL; a template (`{{namespace}}`, `{{runId}}`, vars).
    pub query: String,
    /// e.g. `"< 0.01"`, `">= 0.99"`, `"== 0"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub empty: Option<bool>,
    /// Re-query until the expectation holds, up to `within`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eventually: Option<Eventually>,
}

/// One object by kind and name (`absent`, `present`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ObjectRef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    pub kind: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

impl Serialize for Assertion {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        if let Some(n) = &self.name {
            map.serialize_entry("name", n)?;
        }
        let key = self.kind.key();
        match &self.kind {
            AssertionKind::Http(a) => map.serialize_entry(key, a)?,
            AssertionKind::Resource(a) => map.serialize_entry(key, a)?,
            AssertionKind::Order(a) => map.serialize_entry(key, a)?,
            AssertionKind::Absent(a) | AssertionKind::Present(a) => map.serialize_entry(key, a)?,
            AssertionKind::Promql(a) => map.serialize_entry(key, a)?,
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Assertion {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(AssertionVisitor)
    }
}

struct AssertionVisitor;

impl<'de> Visitor<'de> for AssertionVisitor {
    type Value = Assertion;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "an assertion: a mapping with one of {}",
            ASSERTION_KINDS.join(", ")
        )
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Assertion, A::Error> {
        let mut name = None;
        let mut kind: Option<(String, AssertionKind)> = None;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "name" => set_once(&mut name, "name", map.next_value()?)?,
                k if ASSERTION_KINDS.contains(&k) => {
                    if let Some((first, _)) = &kind {
                        return Err(de::Error::custom(format!(
                            "an assertion takes exactly one kind, found both \"{first}\" and \"{k}\""
                        )));
                    }
                    let a = match k {
                        "http" => AssertionKind::Http(map.next_value()?),
                        "resource" => AssertionKind::Resource(map.next_value()?),
                        "order" => AssertionKind::Order(map.next_value()?),
                        "absent" => AssertionKind::Absent(map.next_value()?),
                        "promql" => AssertionKind::Promql(map.next_value()?),
                        _ => AssertionKind::Present(map.next_value()?),
                    };
                    kind = Some((key, a));
                }
                other => return Err(de::Error::unknown_variant(other, ASSERTION_KINDS)),
            }
        }
        let (_, kind) = kind.ok_or_else(|| {
            de::Error::custom(format!(
                "an assertion needs one kind: one of {}",
                ASSERTION_KINDS.join(", ")
            ))
        })?;
        Ok(Assertion { name, kind })
    }
}

impl JsonSchema for Assertion {
    fn schema_name() -> Cow<'static, str> {
        "Assertion".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let object_ref = generator.subschema_for::<ObjectRef>();
        let kinds: Vec<(&str, Schema)> = vec![
            ("http", generator.subschema_for::<HttpAssertion>()),
            ("resource", generator.subschema_for::<ResourceAssertion>()),
            ("order", generator.subschema_for::<OrderAssertion>()),
            ("absent", object_ref.clone()),
            ("present", object_ref),
            ("promql", generator.subschema_for::<PromqlAssertion>()),
        ];
        let variants: Vec<Value> = kinds
            .into_iter()
            .map(|(key, schema)| {
                serde_json::json!({
                    "type": "object",
                    "properties": {"name": {"type": "string"}, key: schema},
                    "required": [key],
                    "additionalProperties": false
                })
            })
            .collect();
        json_schema!({
            "description": "One assertion: exactly one kind key (http, resource, order, absent, present, promql) beside an optional name.",
            "oneOf": variants
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Assertion {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn parses_every_kind_and_round_trips() {
        let cases = [
            json!({"name": "served", "http": {"method": "GET", "url": "http://x/shop", "headers": {"Host": "a"},
                "eventually": {"within": "10s", "every": "500ms"},
                "expect": {"status": 200, "headers": {"content-type": {"matches": "json"}}, "bodyContains": "ok",
                           "json": {"$.pod": {"matches": "^v1-"}}}}}),
            json!({"resource": {"kind": "HTTPRoute", "name": "r", "expect": {"$.spec.hostnames[0]": "a.example.com"}, "count": 1}}),
            json!({"order": {"kind": "HTTPRoute", "by": "$.metadata.creationTimestamp", "expect": ["a", "b"]}}),
            json!({"absent": {"kind": "HTTPRoute", "name": "r"}}),
            json!({"present": {"apiVersion": "v1", "kind": "Service", "name": "s", "namespace": "n"}}),
        ];
        for v in cases {
            assert_eq!(serde_json::to_value(parse(v.clone())).unwrap(), v);
        }
    }

    #[test]
    fn defaults_and_status_forms() {
        let a = parse(
            json!({"http": {"url": "u", "eventually": {"within": "1s"}, "expect": {"status": [200, 204]}}}),
        );
        let AssertionKind::Http(h) = a.kind else {
            panic!()
        };
        assert_eq!(h.method, "GET");
        assert_eq!(h.eventually.unwrap().every, Duration::from_millis(500));
        assert!(h.expect.status_ok(204) && !h.expect.status_ok(500));
        assert!(HttpExpect::default().status_ok(201));
        assert!(!HttpExpect::default().status_ok(404));
        let a = parse(json!({"order": {"kind": "X", "expect": []}}));
        let AssertionKind::Order(o) = a.kind else {
            panic!()
        };
        assert_eq!(o.by, "$.metadata.creationTimestamp");
        assert!(serde_json::from_value::<StatusExpect>(json!(99)).is_err());
        assert!(serde_json::from_value::<StatusExpect>(json!([])).is_err());
    }

    #[test]
    fn rejects_unknown_kind_and_two_kinds() {
        let err = serde_json::from_value::<Assertion>(json!({"htp": {}})).unwrap_err();
        assert!(err.to_string().contains("unknown variant `htp`"), "{err}");
        let err = serde_json::from_value::<Assertion>(
            json!({"absent": {"kind": "A", "name": "a"}, "present": {"kind": "A", "name": "a"}}),
        )
        .unwrap_err();
        assert!(err.to_string().contains("exactly one kind"), "{err}");
    }
}
