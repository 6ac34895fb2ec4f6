//! The catalog strategy: from a finding's weakness class and the objects
//! it names, candidate changes to the user's objects. Nothing here knows
//! whether a candidate works: each is verified on fresh twins by the
//! caller, and only the ones that turn the finding green without breaking
//! anything else are offered.

use serde::Serialize;
use serde_json::{json, Value};

use crate::change::{object_key, size, Change};
use heatcheck_explore::snapshot::{name, namespace_of, Snapshot};
use heatcheck_explore::{Finding, Origin, WeaknessClass};

/// One candidate fix: the changes, named, and how big they are.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Proposal {
    /// `<fix>/<Kind>/<ns>/<name>`, stable across runs.
    pub id: String,
    pub title: String,
    pub changes: Vec<Change>,
    /// Fields touched (a new or removed object counts all of its own).
    pub fields: usize,
    /// Whose it is: the catalog's, or the model's.
    pub origin: Origin,
}

/// What the catalog has for one finding.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Remedies {
    /// Fewest fields first.
    pub proposals: Vec<Proposal>,
    /// What no change to the objects fixes, in words.
    pub notes: Vec<String>,
    /// Steady-state checks (suite format) the suite should keep.
    pub checks: Vec<Value>,
}

/// Splits `Kind/ns/name`.
fn parse_key(key: &str) -> Option<(&str, &str, &str)> {
    let mut it = key.splitn(3, '/');
    Some((it.next()?, it.next()?, it.next()?))
}

/// The catalog's candidates for `finding`, given what the namespace holds.
pub fn propose(finding: &Finding, snap: &Snapshot) -> Remedies {
    let mut r = Remedies::default();
    let objects: Vec<(&str, &Value)> = finding
        .objects
        .iter()
        .filter_map(|k| {
            let (kind, ns, n) = parse_key(k)?;
            snap.find(kind, ns, n).map(|o| (k.as_str(), o))
        })
        .collect();
    if objects.is_empty() {
        r.notes.push(format!(
            "none of {} is among the suite's objects: nothing to change",
            finding.objects.join(", ")
        ));
        return r;
    }
    for (key, o) in objects {
        match (finding.class, o["kind"].as_str().unwrap_or_default()) {
            (WeaknessClass::SinglePod, "Deployment") => {
                let now = Snapshot::replicas(o);
                for n in [now.max(2), now.max(3)] {
                    r.proposals.extend(deployment(
                        snap,
                        key,
                        o,
                        Some(n),
                        true,
                        false,
                        "replicas-pdb",
                    ));
                }
            }
            (WeaknessClass::Capacity, "Deployment") => {
                let n = (Snapshot::replicas(o) + 1).max(3);
                r.proposals.extend(deployment(
                    snap,
                    key,
                    o,
                    Some(n),
                    true,
                    false,
                    "replicas-pdb",
                ));
            }
            (WeaknessClass::Rollout, "Deployment") => {
                r.proposals
                    .extend(deployment(snap, key, o, None, false, true, "surge"));
                let n = Snapshot::replicas(o).max(2);
                r.proposals.extend(deployment(
                    snap,
                    key,
                    o,
                    Some(n),
                    true,
                    true,
                    "surge-replicas-pdb",
                ));
            }
            (WeaknessClass::TimeoutBudget, "Deployment") => {
                timeouts(snap, finding, key, o, &mut r);
            }
            (WeaknessClass::RoutePrecedence, "HTTPRoute") => {
                precedence(snap, key, o, &mut r);
            }
            (WeaknessClass::CrossNamespaceGrant, "ReferenceGrant") => {
                let (gns, gn) = (namespace_of(o, &snap.namespace), name(o));
                r.notes.push(format!(
                    "ReferenceGrant {gns}/{gn} is a dependency of the routes that reach Services in {gns}: no change to the objects survives losing it; keep it in the same release as those routes (or move the Services into the routes' namespace), and check it in the steady state"
                ));
                r.checks.push(json!({
                    "name": format!("ReferenceGrant {gns}/{gn} is present (routes need it)"),
                    "present": {
                        "apiVersion": o["apiVersion"].as_str().unwrap_or("gateway.networking.k8s.io/v1beta1"),
                        "kind": "ReferenceGrant", "name": gn, "namespace": gns,
                    },
                }));
            }
            (class, kind) => r.notes.push(format!(
                "the catalog has no fix for {} on a {kind}; in words: {}",
                class.as_str(),
                class.remediation().join("; ")
            )),
        }
    }
    // Fewest fields first; the catalog's order among equals.
    r.proposals.sort_by_key(|p| p.fields);
    let mut seen = std::collections::BTreeSet::new();
    r.proposals.retain(|p| seen.insert(p.id.clone()));
    r
}

/// A proposal of `changes`, sized against the objects as they are.
pub fn proposal(
    snap: &Snapshot,
    id: String,
    title: String,
    changes: Vec<Change>,
) -> Option<Proposal> {
    if changes.is_empty() {
        return None;
    }
    let fields = changes
        .iter()
        .map(|c| {
            let base = parse_key(c.anchor()).and_then(|(k, ns, n)| snap.find(k, ns, n));
            size(c, base)
        })
        .sum();
    Some(Proposal {
        id,
        title,
        changes,
        fields,
        origin: Origin::Catalog,
    })
}

/// A Deployment made to survive losing pods: replicas, a PodDisruptionBudget,
/// a readinessProbe where a container has none, a surge-only rollout.
fn deployment(
    snap: &Snapshot,
    key: &str,
    d: &Value,
    replicas: Option<u64>,
    pdb: bool,
    surge: bool,
    fix: &str,
) -> Option<Proposal> {
    let n = name(d);
    let mut fields = Vec::new();
    let mut what = Vec::new();
    let now = Snapshot::replicas(d);
    if let Some(want) = replicas.filter(|w| *w > now) {
        fields.push(("/spec/replicas".to_string(), json!(want)));
        what.push(format!("replicas {now} -> {want}"));
    }
    if surge {
        let s = d.pointer("/spec/strategy");
        let already = s.and_then(|s| s.pointer("/rollingUpdate/maxUnavailable")) == Some(&json!(0));
        if !already {
            fields.push((
                "/spec/strategy".to_string(),
                json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}),
            ));
            what.push("maxUnavailable 0, maxSurge 1".into());
        }
    }
    let containers = d
        .pointer("/spec/template/spec/containers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for (i, c) in containers.iter().enumerate() {
        if c.get("readinessProbe").is_some() {
            continue;
        }
        // A TCP check of the container's port: heatcheck cannot know the
        // application's health path; replace it with one that means ready.
        let Some(port) = c.pointer("/ports/0/containerPort").cloned() else {
            continue;
        };
        fields.push((
            format!("/spec/template/spec/containers/{i}/readinessProbe"),
            json!({"tcpSocket": {"port": port}, "periodSeconds": 5}),
        ));
        what.push(format!(
            "a readinessProbe on container {}",
            c["name"].as_str().unwrap_or("?")
        ));
    }
    let mut changes = Vec::new();
    if !fields.is_empty() {
        changes.push(Change::Set {
            key: key.to_string(),
            fields,
        });
    }
    if pdb && !snap.has_pdb(d) {
        if let Some(labels) = d.pointer("/spec/selector/matchLabels") {
            let taken = snap.find("PodDisruptionBudget", namespace_of(d, &snap.namespace), n);
            let pdb_name = if taken.is_some() {
                format!("{n}-pdb")
            } else {
                n.to_string()
            };
            let mut meta = json!({"name": pdb_name});
            if let Some(ns) = d.pointer("/metadata/namespace") {
                meta["namespace"] = ns.clone();
            }
            changes.push(Change::Add {
                beside: key.to_string(),
                object: json!({
                    "apiVersion": "policy/v1",
                    "kind": "PodDisruptionBudget",
                    "metadata": meta,
                    "spec": {"maxUnavailable": 1, "selector": {"matchLabels": labels}},
                }),
            });
            what.push("a PodDisruptionBudget (maxUnavailable 1)".into());
        }
    }
    let id = match replicas {
        Some(r) => format!("{fix}-{r}/{key}"),
        None => format!("{fix}/{key}"),
    };
    proposal(
        snap,
        id,
        format!("Deployment {n}: {}", what.join(", ")),
        changes,
    )
}

/// The latency the finding's fault added (its networkDelay).
fn latency_of(finding: &Finding) -> Option<std::time::Duration> {
    finding.scenario["steps"]
        .as_array()?
        .iter()
        .filter_map(|s| s.pointer("/fault/latency").and_then(Value::as_str))
        .filter_map(|l| heatcheck_format::parse_duration(l).ok())
        .max()
}

/// Routes' rules reaching `d` whose timeouts are below twice the latency
/// (whole seconds, at least 1 s) get that timeout.
fn timeouts(snap: &Snapshot, finding: &Finding, _key: &str, d: &Value, r: &mut Remedies) {
    let latency = latency_of(finding).unwrap_or(std::time::Duration::from_millis(500));
    let want =
        std::time::Duration::from_secs((2 * latency.as_millis()).div_ceil(1000).max(1) as u64);
    let text = heatcheck_format::format_duration(want);
    let dname = name(d);
    let mut changes = Vec::new();
    let mut routes = Vec::new();
    for route in snap.of_kind("HTTPRoute") {
        let rns = namespace_of(route, &snap.namespace).to_string();
        let rules = route
            .pointer("/spec/rules")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut fields = Vec::new();
        for (i, rule) in rules.iter().enumerate() {
            let reaches = rule["backendRefs"].as_array().is_some_and(|refs| {
                refs.iter().any(|b| {
                    let bns = b["namespace"].as_str().unwrap_or(&rns);
                    let svc = b["name"].as_str().unwrap_or_default();
                    snap.deployments_of_service(bns, svc)
                        .iter()
                        .any(|x| name(x) == dname)
                })
            });
            if !reaches {
                continue;
            }
            for t in ["request", "backendRequest"] {
                let Some(now) = rule
                    .pointer(&format!("/timeouts/{t}"))
                    .and_then(Value::as_str)
                else {
                    continue;
                };
                if heatcheck_format::parse_duration(now).is_ok_and(|n| n < want) {
                    fields.push((format!("/spec/rules/{i}/timeouts/{t}"), json!(text)));
                }
            }
        }
        if !fields.is_empty() {
            routes.push(name(route).to_string());
            changes.push(Change::Set {
                key: object_key(route, &snap.namespace),
                fields,
            });
        }
    }
    if changes.is_empty() {
        r.notes.push(format!(
            "no route to Deployment {dname} has a timeout below {text}: the errors come from elsewhere (a retry budget, which the twin does not model)"
        ));
        return;
    }
    r.proposals.extend(proposal(
        snap,
        format!("timeout-{text}/{}", object_key(d, &snap.namespace)),
        format!(
            "HTTPRoute {}: timeouts raised to {text} (twice the {} latency)",
            routes.join(", "),
            heatcheck_format::format_duration(latency)
        ),
        changes,
    ));
}

/// (parent, hostnames, plain path matches) of a route, for overlap.
fn parents(route: &Value, ns: &str) -> Vec<String> {
    route
        .pointer("/spec/parentRefs")
        .and_then(Value::as_array)
        .map(|ps| {
            ps.iter()
                .filter_map(|p| {
                    Some(format!(
                        "{}/{}",
                        p["namespace"].as_str().unwrap_or(ns),
                        p["name"].as_str()?
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn hostnames(route: &Value) -> Vec<String> {
    route
        .pointer("/spec/hostnames")
        .and_then(Value::as_array)
        .map(|h| {
            h.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// (rule, match, type, value) of every path-only match.
fn path_matches(route: &Value) -> Vec<(usize, usize, String, String)> {
    let mut out = Vec::new();
    for (i, rule) in route
        .pointer("/spec/rules")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        for (j, m) in rule["matches"].as_array().into_iter().flatten().enumerate() {
            if ["headers", "queryParams", "method"]
                .iter()
                .any(|k| m.get(*k).is_some())
            {
                continue;
            }
            let t = m
                .pointer("/path/type")
                .and_then(Value::as_str)
                .unwrap_or("PathPrefix");
            let v = m
                .pointer("/path/value")
                .and_then(Value::as_str)
                .unwrap_or("/");
            out.push((i, j, t.to_string(), v.to_string()));
        }
    }
    out
}

/// The other routes with a match of `route` (same parent, a shared
/// hostname or none, the same path match): a recreate hands them its traffic.
fn duplicates<'a>(snap: &'a Snapshot, route: &Value) -> Vec<&'a Value> {
    let ns = &snap.namespace;
    let (rp, rh, rm) = (parents(route, ns), hostnames(route), path_matches(route));
    let me = object_key(route, ns);
    snap.of_kind("HTTPRoute")
        .filter(|o| object_key(o, ns) != me)
        .filter(|o| parents(o, ns).iter().any(|p| rp.contains(p)))
        .filter(|o| {
            let h = hostnames(o);
            h.is_empty() || rh.is_empty() || h.iter().any(|x| rh.contains(x))
        })
        .filter(|o| {
            path_matches(o)
                .iter()
                .any(|(_, _, t, v)| rm.iter().any(|(_, _, t2, v2)| t == t2 && v == v2))
        })
        .collect()
}

fn precedence(snap: &Snapshot, _key: &str, route: &Value, r: &mut Remedies) {
    let dups = duplicates(snap, route);
    if dups.is_empty() {
        r.notes.push(format!(
            "no other route shares a match with HTTPRoute {}: the catalog has no change to make",
            name(route)
        ));
        return;
    }
    let (rh, rm) = (hostnames(route), path_matches(route));
    let names: Vec<&str> = dups.iter().map(|d| name(d)).collect();
    let list = names.join(", ");
    let mut host = Vec::new();
    let mut path = Vec::new();
    let mut remove = Vec::new();
    for d in &dups {
        let key = object_key(d, &snap.namespace);
        let dn = name(d);
        let h: Vec<(String, Value)> = hostnames(d)
            .iter()
            .enumerate()
            .filter(|(_, h)| rh.is_empty() || rh.contains(h))
            .map(|(i, h)| (format!("/spec/hostnames/{i}"), json!(format!("{dn}.{h}"))))
            .collect();
        if !h.is_empty() {
            host.push(Change::Set {
                key: key.clone(),
                fields: h,
            });
        }
        let p: Vec<(String, Value)> = path_matches(d)
            .into_iter()
            .filter(|(_, _, t, v)| rm.iter().any(|(_, _, t2, v2)| t == t2 && v == v2))
            .map(|(i, j, _, v)| {
                let new = if v == "/" {
                    format!("/{dn}")
                } else {
                    format!("/{dn}{v}")
                };
                (
                    format!("/spec/rules/{i}/matches/{j}/path/value"),
                    json!(new),
                )
            })
            .collect();
        if !p.is_empty() {
            path.push(Change::Set {
                key: key.clone(),
                fields: p,
            });
        }
        remove.push(Change::Remove { key });
    }
    let rkey = object_key(route, &snap.namespace);
    r.proposals.extend(proposal(
        snap,
        format!("distinct-hostname/{rkey}"),
        format!("HTTPRoute {list}: a hostname of its own (<route>.<hostname>)"),
        host,
    ));
    r.proposals.extend(proposal(
        snap,
        format!("distinct-path/{rkey}"),
        format!("HTTPRoute {list}: a path of its own (/<route><path>)"),
        path,
    ));
    r.proposals.extend(proposal(
        snap,
        format!("remove-duplicate/{rkey}"),
        format!(
            "HTTPRoute {list}: removed (it only shadows {})",
            name(route)
        ),
        remove,
    ));
}

#[cfg(test)]
mod tests {
    use super::*;
    use heatcheck_explore::{Origin, Severity};

    fn snap() -> Snapshot {
        let objects = vec![
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "solo"},
                "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "solo"}},
                  "template": {"metadata": {"labels": {"app": "solo"}},
                    "spec": {"containers": [{"name": "echo", "ports": [{"containerPort": 3000}]}]}}}}),
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "solo"},
                "spec": {"selector": {"app": "solo"}, "ports": [{"port": 8080}]}}),
            json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": {"name": "a"},
                "spec": {"parentRefs": [{"name": "gw"}], "hostnames": ["shop.example.com"],
                  "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/shop"}}],
                    "backendRefs": [{"name": "solo", "port": 8080}], "timeouts": {"request": "300ms"}}]}}),
            json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": {"name": "dup"},
                "spec": {"parentRefs": [{"name": "gw"}], "hostnames": ["shop.example.com"],
                  "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/shop"}}],
                    "backendRefs": [{"name": "other", "port": 8080}]}]}}),
            json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": {"name": "elsewhere"},
                "spec": {"parentRefs": [{"name": "gw"}], "hostnames": ["shop.example.com"],
                  "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/x"}}]}]}}),
            json!({"apiVersion": "gateway.networking.k8s.io/v1beta1", "kind": "ReferenceGrant",
                "metadata": {"name": "g", "namespace": "default"}, "spec": {}}),
        ];
        Snapshot {
            namespace: "ns".into(),
            objects,
        }
    }

    fn finding(class: WeaknessClass, object: &str, scenario: Value) -> Finding {
        Finding {
            id: format!("x/{object}"),
            title: "t".into(),
            class,
            severity: Severity::Outage,
            objects: vec![object.into()],
            scenario,
            evidence: vec![],
            outage_seconds: 0.0,
            remediation: vec![],
            flaky: false,
            origin: Origin::Catalog,
            probes: Vec::new(),
        }
    }

    #[test]
    fn one_replica_gets_replicas_a_pdb_and_a_readiness_probe() {
        let r = propose(
            &finding(WeaknessClass::SinglePod, "Deployment/ns/solo", json!({})),
            &snap(),
        );
        let ids: Vec<&str> = r.proposals.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "replicas-pdb-2/Deployment/ns/solo",
                "replicas-pdb-3/Deployment/ns/solo"
            ]
        );
        let p = &r.proposals[0];
        let Change::Set { fields, .. } = &p.changes[0] else {
            panic!("{p:?}")
        };
        assert_eq!(fields[0], ("/spec/replicas".into(), json!(2)));
        assert_eq!(
            fields[1].0,
            "/spec/template/spec/containers/0/readinessProbe"
        );
        let Change::Add { beside, object } = &p.changes[1] else {
            panic!("{p:?}")
        };
        assert_eq!(beside, "Deployment/ns/solo");
        assert_eq!(object["kind"], "PodDisruptionBudget");
        assert_eq!(object["spec"]["selector"]["matchLabels"]["app"], "solo");
        // replicas, tcpSocket.port, periodSeconds, and the PDB's 5 fields.
        assert_eq!(p.fields, 1 + 2 + 5, "{p:#?}");
        assert!(p.title.contains("replicas 1 -> 2"), "{}", p.title);
    }

    #[test]
    fn a_rollout_gets_a_surge_only_strategy_first() {
        let r = propose(
            &finding(WeaknessClass::Rollout, "Deployment/ns/solo", json!({})),
            &snap(),
        );
        assert_eq!(r.proposals[0].id, "surge/Deployment/ns/solo");
        assert!(r.proposals[0]
            .title
            .contains("maxUnavailable 0, maxSurge 1"));
        assert!(r.proposals[1].id.starts_with("surge-replicas-pdb-2/"));
    }

    #[test]
    fn a_duplicate_match_gets_a_hostname_or_path_of_its_own_or_goes() {
        let r = propose(
            &finding(WeaknessClass::RoutePrecedence, "HTTPRoute/ns/a", json!({})),
            &snap(),
        );
        let ids: Vec<&str> = r.proposals.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "distinct-hostname/HTTPRoute/ns/a",
                "distinct-path/HTTPRoute/ns/a",
                "remove-duplicate/HTTPRoute/ns/a"
            ]
        );
        // Only `dup` shares /shop; `elsewhere` is left alone.
        for p in &r.proposals {
            assert!(
                p.changes.iter().all(|c| c.anchor() == "HTTPRoute/ns/dup"),
                "{p:?}"
            );
        }
        assert_eq!(
            r.proposals[0].changes[0],
            Change::Set {
                key: "HTTPRoute/ns/dup".into(),
                fields: vec![("/spec/hostnames/0".into(), json!("dup.shop.example.com"))]
            }
        );
        assert_eq!(
            r.proposals[1].changes[0],
            Change::Set {
                key: "HTTPRoute/ns/dup".into(),
                fields: vec![(
                    "/spec/rules/0/matches/0/path/value".into(),
                    json!("/dup/shop")
                )]
            }
        );
        assert_eq!(r.proposals[0].fields, 1);
        assert!(r.proposals[2].fields > 1);
    }

    #[test]
    fn a_tight_timeout_is_raised_to_twice_the_latency() {
        let sc = json!({"steps": [{"fault": {"type": "networkDelay", "latency": "700ms"}}]});
        let r = propose(
            &finding(WeaknessClass::TimeoutBudget, "Deployment/ns/solo", sc),
            &snap(),
        );
        assert_eq!(r.proposals.len(), 1, "{r:#?}");
        assert_eq!(
            r.proposals[0].changes,
            [Change::Set {
                key: "HTTPRoute/ns/a".into(),
                fields: vec![("/spec/rules/0/timeouts/request".into(), json!("2s"))]
            }]
        );
    }

    #[test]
    fn a_lost_grant_is_a_note_and_a_steady_state_check() {
        let r = propose(
            &finding(
                WeaknessClass::CrossNamespaceGrant,
                "ReferenceGrant/default/g",
                json!({}),
            ),
            &snap(),
        );
        assert!(r.proposals.is_empty());
        assert!(r.notes[0].contains("dependency"), "{:?}", r.notes);
        assert_eq!(r.checks[0]["present"]["namespace"], "default");
        // The check is valid suite format.
        let a: heatcheck_format::Assertion = serde_json::from_value(r.checks[0].clone()).unwrap();
        assert_eq!(a.kind.key(), "present");
    }
}
