//! What "healthy" means when explore derives it: every HTTPRoute path
//! through its Gateway answers 200 from the backend that serves it now
//! (the winner of Gateway API precedence when routes share a match), and
//! probes on the same requests measure outages while a change is made.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::snapshot::{name, namespace_of, Snapshot};
use heatcheck_format::{Assertion, Probe};

/// One request a user makes: a hostname and path through a Gateway.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteTarget {
    pub gateway: String,
    pub gateway_namespace: String,
    pub host: Option<String>,
    pub path: String,
    /// `ns/name` of the route that serves it now (precedence applied).
    pub route: String,
    /// Deployments behind the serving route's backends.
    pub backends: Vec<String>,
}

impl RouteTarget {
    pub fn describe(&self) -> String {
        format!(
            "{}{} via Gateway {}",
            self.host.as_deref().unwrap_or(""),
            self.path,
            self.gateway
        )
    }

    fn url(&self, local_ns: &str) -> String {
        if self.gateway_namespace == local_ns {
            format!("{{{{gateway \"{}\"}}}}{}", self.gateway, self.path)
        } else {
            format!(
                "{{{{gateway \"{}\" namespace=\"{}\"}}}}{}",
                self.gateway, self.gateway_namespace, self.path
            )
        }
    }

    fn request(&self, local_ns: &str) -> Value {
        let mut r = json!({"url": self.url(local_ns)});
        if let Some(h) = &self.host {
            r["headers"] = json!({"Host": h});
        }
        r
    }

    /// The steady-state check: 200, from one of the serving backends.
    pub fn assertion(&self, local_ns: &str) -> Value {
        let mut a = self.request(local_ns);
        a["eventually"] = json!({"within": "10s", "every": "250ms"});
        let mut expect = json!({"status": 200});
        if !self.backends.is_empty() {
            expect["json"] =
                json!({"$.pod": {"matches": format!("^({})-", self.backends.join("|"))}});
        }
        a["expect"] = expect;
        json!({
            "name": format!("{} answers from {}", self.describe(), backends_text(&self.backends)),
            "http": a,
        })
    }

    pub fn probe_name(&self) -> String {
        format!("traffic to {}", self.describe())
    }

    /// The probe that measures an outage during a change.
    pub fn probe(&self, local_ns: &str, min_success: f64) -> Value {
        let mut r = self.request(local_ns);
        r["timeout"] = json!("2s");
        json!({
            "name": self.probe_name(),
            "http": r,
            "every": "100ms",
            "expect": {"successRate": format!(">= {min_success}")},
        })
    }
}

fn backends_text(b: &[String]) -> String {
    if b.is_empty() {
        "its backend".into()
    } else {
        b.join(" or ")
    }
}

fn created(v: &Value) -> Option<DateTime<Utc>> {
    v.pointer("/metadata/creationTimestamp")
        .and_then(Value::as_str)
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
}

/// Every (gateway, host, path) the HTTPRoutes of the target namespace
/// serve, each with the route that wins it now. Matches on headers, query
/// parameters or methods are left out: a plain request would not take them.
pub fn route_targets(snap: &Snapshot) -> Vec<RouteTarget> {
    type Key = (String, String, Option<String>, String);
    let mut by_key: BTreeMap<Key, Vec<(usize, &Value)>> = BTreeMap::new();
    for (index, r) in snap.local("HTTPRoute").enumerate() {
        let ns = namespace_of(r, &snap.namespace).to_string();
        let parents: Vec<(String, String)> = r
            .pointer("/spec/parentRefs")
            .and_then(Value::as_array)
            .map(|ps| {
                ps.iter()
                    .filter(|p| p.get("kind").is_none_or(|k| k == "Gateway"))
                    .filter_map(|p| {
                        let n = p.get("name")?.as_str()?.to_string();
                        let pns = p
                            .get("namespace")
                            .and_then(Value::as_str)
                            .unwrap_or(&ns)
                            .to_string();
                        Some((pns, n))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let hosts: Vec<Option<String>> =
            match r.pointer("/spec/hostnames").and_then(Value::as_array) {
                Some(h) if !h.is_empty() => h
                    .iter()
                    .filter_map(Value::as_str)
                    .filter(|h| !h.starts_with('*'))
                    .map(|h| Some(h.to_string()))
                    .collect(),
                _ => vec![None],
            };
        for path in plain_paths(r) {
            for (gns, gw) in &parents {
                for host in &hosts {
                    by_key
                        .entry((gns.clone(), gw.clone(), host.clone(), path.clone()))
                        .or_default()
                        .push((index, r));
                }
            }
        }
    }
    by_key
        .into_iter()
        .map(|((gns, gw, host, path), mut routes)| {
            // Gateway API: the oldest route wins a shared match, then
            // namespace/name. Objects a fixture will create have no timestamp
            // yet: they are younger than what exists, in fixture order.
            routes.sort_by(|(ia, a), (ib, b)| {
                let key = |v: &Value| format!("{}/{}", namespace_of(v, &snap.namespace), name(v));
                match (created(a), created(b)) {
                    (None, None) => ia.cmp(ib),
                    (ca, cb) => {
                        heatcheck_gateway::route_precedence::tie_break(ca, &key(a), cb, &key(b))
                    }
                }
            });
            let winner = routes[0].1;
            let rns = namespace_of(winner, &snap.namespace);
            RouteTarget {
                gateway: gw,
                gateway_namespace: gns,
                host,
                backends: backends_of(snap, winner, &path),
                route: format!("{rns}/{}", name(winner)),
                path,
            }
        })
        .collect()
}

/// Paths of the route's rules whose matches are a path only (or none).
fn plain_paths(route: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for rule in route
        .pointer("/spec/rules")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let matches = rule.get("matches").and_then(Value::as_array);
        match matches {
            None => out.push("/".to_string()),
            Some(ms) if ms.is_empty() => out.push("/".to_string()),
            Some(ms) => {
                for m in ms {
                    let plain = ["headers", "queryParams", "method"]
                        .iter()
                        .all(|k| m.get(*k).is_none());
                    if !plain {
                        continue;
                    }
                    let p = m
                        .pointer("/path/value")
                        .and_then(Value::as_str)
                        .unwrap_or("/");
                    out.push(p.to_string());
                }
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The Deployments behind the rule(s) of `route` that serve `path`.
fn backends_of(snap: &Snapshot, route: &Value, path: &str) -> Vec<String> {
    let rns = namespace_of(route, &snap.namespace);
    let mut out = Vec::new();
    for rule in route
        .pointer("/spec/rules")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let serves = match rule.get("matches").and_then(Value::as_array) {
            None => path == "/",
            Some(ms) if ms.is_empty() => path == "/",
            Some(ms) => ms.iter().any(|m| {
                m.pointer("/path/value")
                    .and_then(Value::as_str)
                    .unwrap_or("/")
                    == path
            }),
        };
        if !serves {
            continue;
        }
        for b in rule
            .get("backendRefs")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if b.get("kind").is_some_and(|k| k != "Service") {
                continue;
            }
            let Some(svc) = b.get("name").and_then(Value::as_str) else {
                continue;
            };
            let ns = b.get("namespace").and_then(Value::as_str).unwrap_or(rns);
            for d in snap.deployments_of_service(ns, svc) {
                out.push(name(d).to_string());
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The derived steady state: one check per route target.
pub fn assertions(snap: &Snapshot, targets: &[RouteTarget]) -> Vec<Assertion> {
    targets
        .iter()
        .filter_map(|t| parse_assertion(&t.assertion(&snap.namespace)))
        .collect()
}

/// The derived probes: one per route target.
pub fn probes(snap: &Snapshot, targets: &[RouteTarget], min_success: f64) -> Vec<Probe> {
    targets
        .iter()
        .filter_map(|t| serde_json::from_value(t.probe(&snap.namespace, min_success)).ok())
        .collect()
}

pub(crate) fn parse_assertion(v: &Value) -> Option<Assertion> {
    // Through a one-assertion scenario: the format's own parser and validation.
    let sc = json!({"name": "x", "steps": [{"sleep": "1ms"}], "assertions": [v]});
    heatcheck_format::parse_scenario_json(&sc)
        .ok()
        .and_then(|s| s.assertions.into_iter().next())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn snap() -> Snapshot {
        let objs = serde_json::from_value::<Vec<Value>>(json!([
            {"kind": "Gateway", "metadata": {"name": "gw", "namespace": "ns"}},
            {"kind": "HTTPRoute", "metadata": {"name": "b-route", "namespace": "ns", "creationTimestamp": "2026-01-01T00:00:00Z"},
             "spec": {"parentRefs": [{"name": "gw"}], "hostnames": ["shop.example"],
                      "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/shop"}}], "backendRefs": [{"name": "v1", "port": 8080}]}]}},
            {"kind": "HTTPRoute", "metadata": {"name": "a-dup", "namespace": "ns", "creationTimestamp": "2026-01-02T00:00:00Z"},
             "spec": {"parentRefs": [{"name": "gw"}], "hostnames": ["shop.example"],
                      "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/shop"}}, {"path": {"value": "/x"}, "headers": [{"name": "a", "value": "b"}]}],
                                 "backendRefs": [{"name": "v3", "port": 8080}]}]}},
            {"kind": "Service", "metadata": {"name": "v1", "namespace": "ns"}, "spec": {"selector": {"app": "v1"}}},
            {"kind": "Service", "metadata": {"name": "v3", "namespace": "ns"}, "spec": {"selector": {"app": "v3"}}},
            {"kind": "Deployment", "metadata": {"name": "backend-v1", "namespace": "ns"},
             "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "v1"}}, "template": {"metadata": {"labels": {"app": "v1"}}}}},
            {"kind": "Deployment", "metadata": {"name": "backend-v3", "namespace": "ns"},
             "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "v3"}}, "template": {"metadata": {"labels": {"app": "v3"}}}}},
        ]))
        .unwrap();
        Snapshot {
            namespace: "ns".into(),
            objects: objs,
        }
    }

    #[test]
    fn the_oldest_route_serves_a_shared_match_and_header_matches_are_left_out() {
        let t = route_targets(&snap());
        assert_eq!(t.len(), 1, "{t:?}");
        assert_eq!(t[0].route, "ns/b-route");
        assert_eq!(t[0].backends, vec!["backend-v1"]);
        assert_eq!(t[0].host.as_deref(), Some("shop.example"));
        assert_eq!(t[0].path, "/shop");
    }

    #[test]
    fn derived_checks_and_probes_parse_as_suite_format() {
        let s = snap();
        let t = route_targets(&s);
        let a = assertions(&s, &t);
        assert_eq!(a.len(), 1);
        assert!(a[0].display_name().contains("answers from backend-v1"));
        let p = probes(&s, &t, 0.99);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].expect.success_rate.as_deref(), Some(">= 0.99"));
    }
}
