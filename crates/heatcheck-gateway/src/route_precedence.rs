//! Gateway API precedence between routes whose matches conflict, shared by
//! the sandbox data plane and the restore warnings (neither imports the
//! other). A tie between identical matches goes to the oldest route
//! (creationTimestamp), then to the first in "{namespace}/{name}" order.
//! Recreating a route gives it a new creationTimestamp, so a restore can
//! silently hand its traffic to a duplicate: [`changes`] says when.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The tie-break between two routes with equally specific matches: the
/// oldest first (a route without a timestamp last), then "{ns}/{name}".
pub fn tie_break(
    a_created: Option<DateTime<Utc>>,
    a_key: &str,
    b_created: Option<DateTime<Utc>>,
    b_key: &str,
) -> Ordering {
    (a_created.is_none(), a_created)
        .cmp(&(b_created.is_none(), b_created))
        .then_with(|| a_key.cmp(b_key))
}

/// One match that two or more routes declare on the same parent and hostname.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Conflict {
    /// `HTTPRoute` or `GRPCRoute`.
    pub(crate) kind: String,
    /// `Gateway ns/name` (with `/section` when the parentRef names one).
    pub(crate) parent: String,
    /// A route hostname, or `*` for routes without hostnames.
    pub(crate) hostname: String,
    /// The match, e.g. `PathPrefix /shop` or `method GET, header x-v=1`.
    #[serde(rename = "match")]
    pub(crate) matched: String,
    /// `ns/name` of the route that gets the traffic.
    pub(crate) winner: String,
    /// Every route declaring it, winner first.
    pub(crate) routes: Vec<String>,
}

impl Conflict {
    /// `HTTPRoute match PathPrefix /shop on Gateway ns/gw, host a.example`.
    pub(crate) fn describe(&self) -> String {
        format!(
            "{} match {} on {}, host {}",
            self.kind, self.matched, self.parent, self.hostname
        )
    }
}

/// A conflict whose winner is not the same after the run as before it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PrecedenceChange {
    /// [`Conflict::describe`] of the match.
    #[serde(rename = "match")]
    pub matched: String,
    pub before: String,
    pub after: String,
}

fn text(v: &Value, ptr: &str) -> Option<String> {
    v.pointer(ptr).and_then(Value::as_str).map(str::to_string)
}

/// `type value` of a path/method object, with the Gateway API defaults.
fn typed(m: &Value, default_type: &str, default_value: &str) -> String {
    format!(
        "{} {}",
        m.get("type")
            .and_then(Value::as_str)
            .unwrap_or(default_type),
        m.get("value")
            .and_then(Value::as_str)
            .unwrap_or(default_value)
    )
}

fn name_values(m: &Value, key: &str, what: &str) -> Vec<String> {
    let mut out: Vec<String> = m
        .get(key)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|h| {
            let op = match h.get("type").and_then(Value::as_str) {
                Some("RegularExpression") => "~",
                _ => "=",
            };
            format!(
                "{what} {}{op}{}",
                text(h, "/name").unwrap_or_default().to_ascii_lowercase(),
                text(h, "/value").unwrap_or_default()
            )
        })
        .collect();
    out.sort();
    out
}

/// The canonical text of one match (defaults filled in), so identical
/// matches written differently compare equal.
fn match_text(kind: &str, m: &Value) -> String {
    let mut parts = Vec::new();
    if kind == "GRPCRoute" {
        if let Some(method) = m.get("method") {
            parts.push(format!(
                "method {} {}/{}",
                method
                    .get("type")
                    .and_then(Value::as_str)
                    .unwrap_or("Exact"),
                text(method, "/service").unwrap_or_else(|| "*".into()),
                text(method, "/method").unwrap_or_else(|| "*".into())
            ));
        }
    } else {
        parts.push(typed(
            m.get("path").unwrap_or(&Value::Null),
            "PathPrefix",
            "/",
        ));
        if let Some(method) = m.get("method").and_then(Value::as_str) {
            parts.push(format!("method {method}"));
        }
        parts.extend(name_values(m, "queryParams", "query"));
    }
    parts.extend(name_values(m, "headers", "header"));
    if parts.is_empty() {
        "any request".into()
    } else {
        parts.join(", ")
    }
}

/// Every conflicting match among `routes` (HTTPRoutes and GRPCRoutes, as
/// the API server returns them), with its winner; sorted.
pub fn conflicts(routes: &[Value]) -> Vec<Conflict> {
    // (kind, parent, hostname, match) -> routes (created, "ns/name")
    type Key = (String, String, String, String);
    type Declared = Vec<(Option<DateTime<Utc>>, String)>;
    let mut by_match: BTreeMap<Key, Declared> = BTreeMap::new();
    for r in routes {
        let kind = text(r, "/kind").unwrap_or_else(|| "HTTPRoute".into());
        let ns = text(r, "/metadata/namespace").unwrap_or_else(|| "default".into());
        let key = format!("{ns}/{}", text(r, "/metadata/name").unwrap_or_default());
        let created = text(r, "/metadata/creationTimestamp")
            .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
            .map(|t| t.with_timezone(&Utc));
        let mut hostnames: Vec<String> = r
            .pointer("/spec/hostnames")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_ascii_lowercase)
            .collect();
        if hostnames.is_empty() {
            hostnames.push("*".into());
        }
        let mut matches = Vec::new();
        for rule in r
            .pointer("/spec/rules")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            match rule.get("matches").and_then(Value::as_array) {
                Some(ms) if !ms.is_empty() => {
                    matches.extend(ms.iter().map(|m| match_text(&kind, m)))
                }
                _ => matches.push(match_text(&kind, &Value::Null)),
            }
        }
        matches.sort();
        matches.dedup();
        for p in r
            .pointer("/spec/parentRefs")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let parent_kind = text(p, "/kind").unwrap_or_else(|| "Gateway".into());
            let mut parent = format!(
                "{parent_kind} {}/{}",
                text(p, "/namespace").unwrap_or_else(|| ns.clone()),
                text(p, "/name").unwrap_or_default()
            );
            if let Some(section) = text(p, "/sectionName") {
                parent = format!("{parent}/{section}");
            }
            for h in &hostnames {
                for m in &matches {
                    let entry = by_match
                        .entry((kind.clone(), parent.clone(), h.clone(), m.clone()))
                        .or_default();
                    if !entry.iter().any(|(_, k)| *k == key) {
                        entry.push((created, key.clone()));
                    }
                }
            }
        }
    }
    by_match
        .into_iter()
        .filter(|(_, rs)| rs.len() >= 2)
        .map(|((kind, parent, hostname, matched), mut rs)| {
            rs.sort_by(|a, b| tie_break(a.0, &a.1, b.0, &b.1));
            Conflict {
                kind,
                parent,
                hostname,
                matched,
                winner: rs[0].1.clone(),
                routes: rs.into_iter().map(|(_, k)| k).collect(),
            }
        })
        .collect()
}

/// Conflicts present both before and after whose winner changed.
pub fn changes(before: &[Conflict], after: &[Conflict]) -> Vec<PrecedenceChange> {
    before
        .iter()
        .filter_map(|b| {
            let a = after.iter().find(|a| {
                (&a.kind, &a.parent, &a.hostname, &a.matched)
                    == (&b.kind, &b.parent, &b.hostname, &b.matched)
            })?;
            (a.winner != b.winner).then(|| PrecedenceChange {
                matched: b.describe(),
                before: b.winner.clone(),
                after: a.winner.clone(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn route(name: &str, created: &str, path: Value) -> Value {
        json!({"kind": "HTTPRoute", "metadata": {"name": name, "namespace": "shop", "creationTimestamp": created},
            "spec": {"parentRefs": [{"name": "gw"}], "hostnames": ["Shop.example.com"],
                "rules": [{"matches": [path], "backendRefs": [{"name": name}]}]}})
    }

    #[test]
    fn the_oldest_route_wins_then_the_name() {
        let a = route(
            "b-route",
            "2026-01-01T00:00:00Z",
            json!({"path": {"value": "/shop"}}),
        );
        let b = route(
            "a-route",
            "2026-01-02T00:00:00Z",
            json!({"path": {"type": "PathPrefix", "value": "/shop"}}),
        );
        let other = route(
            "c-route",
            "2025-01-01T00:00:00Z",
            json!({"path": {"value": "/cart"}}),
        );
        let c = conflicts(&[a.clone(), b.clone(), other]);
        assert_eq!(c.len(), 1, "{c:#?}");
        assert_eq!(c[0].winner, "shop/b-route");
        assert_eq!(c[0].routes, ["shop/b-route", "shop/a-route"]);
        assert_eq!(
            c[0].describe(),
            "HTTPRoute match PathPrefix /shop on Gateway shop/gw, host shop.example.com"
        );
        // Same second: the name decides.
        let mut same = b.clone();
        same["metadata"]["creationTimestamp"] = json!("2026-01-01T00:00:00Z");
        assert_eq!(conflicts(&[a.clone(), same])[0].winner, "shop/a-route");
        // b-route recreated: newer than a-route, which now wins.
        let mut recreated = a.clone();
        recreated["metadata"]["creationTimestamp"] = json!("2026-01-03T00:00:00Z");
        let after = conflicts(&[recreated, b]);
        let ch = changes(&c, &after);
        assert_eq!(
            ch,
            [PrecedenceChange {
                matched: c[0].describe(),
                before: "shop/b-route".into(),
                after: "shop/a-route".into()
            }]
        );
    }

    #[test]
    fn headers_methods_and_grpc_are_part_of_the_match() {
        let a = route(
            "a",
            "2026-01-01T00:00:00Z",
            json!({"path": {"value": "/"}, "headers": [{"name": "X-V", "value": "1"}]}),
        );
        let b = route(
            "b",
            "2026-01-01T00:00:00Z",
            json!({"headers": [{"name": "x-v", "value": "1"}]}),
        );
        let c = route("c", "2026-01-01T00:00:00Z", json!({"method": "GET"}));
        let found = conflicts(&[a, b, c]);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].matched, "PathPrefix /, header x-v=1");
        let g = |n: &str| {
            json!({"kind": "GRPCRoute", "metadata": {"name": n, "namespace": "s"},
            "spec": {"parentRefs": [{"name": "gw", "sectionName": "grpc"}], "rules": [{"matches": [{"method": {"service": "shop.Cart", "method": "Add"}}]}]}})
        };
        let found = conflicts(&[g("x"), g("y")]);
        assert_eq!(found[0].matched, "method Exact shop.Cart/Add");
        assert_eq!(found[0].parent, "Gateway s/gw/grpc");
        // No timestamps: the name decides.
        assert_eq!(found[0].winner, "s/x");
    }
}
