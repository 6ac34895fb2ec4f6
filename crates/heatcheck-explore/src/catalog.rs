//! The built-in catalog: networking chaos a well-built system survives,
//! applied to every object it fits. Each entry names the weakness class a
//! failure under it reveals. Entries that are an outage on any design
//! (every pod of a backend killed, a backend cut off entirely) are not here:
//! failing under them says nothing about the design. Packet loss on a
//! minority of pods is not here yet either: the twin drops a request
//! outright (no TCP retransmission, no HTTPRoute retries), so every design
//! would fail it.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::snapshot::{name, namespace_of, reapplicable, Snapshot};
use crate::steady::RouteTarget;
use heatcheck_format::Scenario;

/// What a finding says is weak.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum WeaknessClass {
    /// Recreating a route (a redeploy, a GitOps resync) hands its traffic to
    /// a route with the same matches: precedence is by creationTimestamp.
    RoutePrecedence,
    /// A route needs a ReferenceGrant another team or tool owns.
    CrossNamespaceGrant,
    /// Losing half the replicas (a node drain, a bad autoscaler) is an outage.
    Capacity,
    /// Losing one pod is an outage: one replica, or no readiness gating.
    SinglePod,
    /// A rolling restart drops traffic (maxUnavailable, readiness, grace period).
    Rollout,
    /// Moderate latency on some pods turns into errors: a timeout too tight.
    TimeoutBudget,
    /// Isolating one backend breaks routes to others (a hidden dependency).
    NetworkIsolation,
    /// A model's candidate whose change fits none of the above (reported,
    /// not scored).
    Other,
}

impl WeaknessClass {
    pub const ALL: [WeaknessClass; 7] = [
        WeaknessClass::RoutePrecedence,
        WeaknessClass::CrossNamespaceGrant,
        WeaknessClass::Capacity,
        WeaknessClass::SinglePod,
        WeaknessClass::Rollout,
        WeaknessClass::TimeoutBudget,
        WeaknessClass::NetworkIsolation,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            WeaknessClass::RoutePrecedence => "route-precedence",
            WeaknessClass::CrossNamespaceGrant => "cross-namespace-grant",
            WeaknessClass::Capacity => "capacity",
            WeaknessClass::SinglePod => "single-pod",
            WeaknessClass::Rollout => "rollout",
            WeaknessClass::TimeoutBudget => "timeout-budget",
            WeaknessClass::NetworkIsolation => "network-isolation",
            WeaknessClass::Other => "other",
        }
    }

    /// What to change, in words (remediate proposes the objects).
    pub fn remediation(self) -> &'static [&'static str] {
        match self {
            WeaknessClass::RoutePrecedence => &[
                "give each route a distinct hostname or path, or delete the duplicate",
                "update routes in place (apply), never delete and recreate them",
            ],
            WeaknessClass::CrossNamespaceGrant => &[
                "keep the ReferenceGrant in the same release as the route that needs it",
                "or move the backend Service into the route's namespace",
            ],
            WeaknessClass::Capacity => &[
                "run enough replicas that half of them carry the load, with an HPA floor",
                "add a PodDisruptionBudget so a drain cannot take half at once",
            ],
            WeaknessClass::SinglePod => &[
                "run at least 2 replicas (3 across zones) and add a PodDisruptionBudget",
                "give the pods a readinessProbe so traffic waits for a ready replacement",
            ],
            WeaknessClass::Rollout => &[
                "set maxUnavailable: 0 with maxSurge >= 1 and a readinessProbe",
                "give terminationGracePeriodSeconds and a preStop sleep time to drain",
            ],
            WeaknessClass::TimeoutBudget => &[
                "raise the route's timeouts above the latency the backend can show",
                "add a retry (or outlier detection) so a slow pod is routed around",
            ],
            WeaknessClass::NetworkIsolation => &[
                "make the NetworkPolicies of each backend explicit; a route must not depend on another backend",
            ],
            WeaknessClass::Other => &[],
        }
    }
}

/// One candidate: a heatcheck scenario, what it targets and why.
#[derive(Clone, Debug)]
pub struct Candidate {
    /// Stable id, e.g. `route-recreate/ns/my-route`.
    pub id: String,
    pub entry: &'static str,
    pub class: WeaknessClass,
    pub title: String,
    /// `Kind/ns/name` of what it changes.
    pub objects: Vec<String>,
    pub scenario: Scenario,
    /// Probes (by name) this candidate is not judged by: the traffic it
    /// cuts on purpose (isolating a backend makes its own routes fail).
    pub drop_probes: Vec<String>,
    /// Judged by the checks after the change only: the change itself is
    /// an outage on any design (a deleted route answers 404 until it is
    /// back), so what it reveals is what is left afterwards.
    pub after_only: bool,
    /// Worth reducing over its steps. A catalog entry is minimal by
    /// construction (one change, and the time it is watched); multi-step
    /// candidates (the model's) are not.
    pub minimizable: bool,
    pub origin: crate::finding::Origin,
    /// What the proposer says to change (the model's words), before the
    /// class's own remediation.
    pub remediation: Vec<String>,
}

/// How a catalog entry is sized (within the suite's policy).
#[derive(Clone, Debug)]
pub struct CatalogOptions {
    /// Added latency (the suite's latency budget when it states one).
    pub latency: std::time::Duration,
    /// How long a fault stays while its effect is measured.
    pub fault_window: std::time::Duration,
}

impl Default for CatalogOptions {
    fn default() -> Self {
        CatalogOptions {
            latency: std::time::Duration::from_millis(500),
            fault_window: std::time::Duration::from_secs(4),
        }
    }
}

/// The catalog's entries: id, class, what it does.
pub const ENTRIES: &[(&str, WeaknessClass, &str)] = &[
    (
        "route-recreate",
        WeaknessClass::RoutePrecedence,
        "delete and recreate an HTTPRoute (more than 1 s later): routing must stay as it was",
    ),
    (
        "referencegrant-removal",
        WeaknessClass::CrossNamespaceGrant,
        "delete a ReferenceGrant: shows which routes depend on it",
    ),
    (
        "scale-half",
        WeaknessClass::Capacity,
        "scale a backend Deployment of 2+ replicas down by half: no outage",
    ),
    (
        "pod-kill-one",
        WeaknessClass::SinglePod,
        "kill one pod of a backend Deployment: no outage",
    ),
    (
        "rollout-restart",
        WeaknessClass::Rollout,
        "rolling restart of a backend Deployment: no outage",
    ),
    (
        "latency-half",
        WeaknessClass::TimeoutBudget,
        "add moderate latency (default 500 ms) to half of a backend's pods: no errors",
    ),
    (
        "isolate-backend",
        WeaknessClass::NetworkIsolation,
        "a NetworkPolicy isolating one backend: routes to the others keep working",
    ),
];

/// Every candidate the catalog has for the namespace, in catalog order.
/// `targets` is the derived (or the suite's) steady state: each candidate
/// asserts the targets it must not break.
pub fn candidates(
    snap: &Snapshot,
    targets: &[RouteTarget],
    opts: &CatalogOptions,
) -> Vec<Candidate> {
    let mut out = Vec::new();
    let ns = snap.namespace.as_str();
    let checks = |keep: &dyn Fn(&RouteTarget) -> bool| -> Vec<Value> {
        targets
            .iter()
            .filter(|t| keep(t))
            .map(|t| t.assertion(ns))
            .collect()
    };
    let all = checks(&|_| true);
    // route-recreate: every route that serves something.
    for r in snap.local("HTTPRoute") {
        let n = name(r);
        let manifest = serde_saphyr::to_string(&reapplicable(r)).unwrap_or_default();
        let steps = json!([
            {"name": "let a second pass (creationTimestamp has one-second resolution)", "sleep": "1100ms"},
            {"delete": {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "name": n}},
            {"apply": {"manifest": manifest}},
            {"wait": {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "name": n, "condition": "Accepted"}},
        ]);
        push(
            &mut out,
            "route-recreate",
            WeaknessClass::RoutePrecedence,
            format!("recreate HTTPRoute {n}"),
            vec![format!("HTTPRoute/{ns}/{n}")],
            steps,
            all.clone(),
        );
    }
    // Grants live in the backend's namespace, not the route's.
    for g in snap.of_kind("ReferenceGrant") {
        let n = name(g);
        let gns = namespace_of(g, ns);
        let steps = json!([
            {"delete": {"apiVersion": "gateway.networking.k8s.io/v1beta1", "kind": "ReferenceGrant", "name": n, "namespace": gns}},
            {"sleep": "1s"},
        ]);
        push(
            &mut out,
            "referencegrant-removal",
            WeaknessClass::CrossNamespaceGrant,
            format!("remove ReferenceGrant {gns}/{n}"),
            vec![format!("ReferenceGrant/{gns}/{n}")],
            steps,
            all.clone(),
        );
    }
    for d in backend_deployments(snap, targets) {
        let n = name(d);
        let replicas = Snapshot::replicas(d);
        let obj = vec![format!("Deployment/{ns}/{n}")];
        let Some(selector) = Snapshot::pod_selector(d) else {
            continue;
        };
        if replicas >= 2 {
            let steps = json!([
                {"scale": {"kind": "Deployment", "name": n, "replicas": replicas / 2}},
                {"sleep": "2s"},
            ]);
            push(
                &mut out,
                "scale-half",
                WeaknessClass::Capacity,
                format!("scale Deployment {n} from {replicas} to {}", replicas / 2),
                obj.clone(),
                steps,
                all.clone(),
            );
        }
        // One pod: the share of the Deployment's pods that is exactly one,
        // rounded up (33% of 3 pods selects none: the fault is not injected).
        let one = 100u64.div_ceil(replicas.max(1)).clamp(1, 100);
        let window = heatcheck_format::format_duration(opts.fault_window);
        let steps = json!([
            {"fault": {"type": "podKill", "selector": selector, "percent": one, "duration": window}},
            {"sleep": "3s"},
        ]);
        push(
            &mut out,
            "pod-kill-one",
            WeaknessClass::SinglePod,
            format!("kill one pod of Deployment {n} ({replicas} replica(s))"),
            obj.clone(),
            steps,
            all.clone(),
        );
        let steps = json!([
            {"restart": {"kind": "Deployment", "name": n}},
            {"wait": {"kind": "Deployment", "name": n, "available": true}},
        ]);
        push(
            &mut out,
            "rollout-restart",
            WeaknessClass::Rollout,
            format!("rolling restart of Deployment {n}"),
            obj.clone(),
            steps,
            all.clone(),
        );
        let latency = heatcheck_format::format_duration(opts.latency);
        // Half, but at least one pod: 50% of a single replica selects none
        // (Chaos Mesh's fixed-percent rounds down), and the fault would wait
        // out its injection timeout for no verdict.
        let (share, whose) = if replicas >= 2 {
            (50, "half the pods")
        } else {
            (one, "the only pod")
        };
        let steps = json!([
            {"fault": {"type": "networkDelay", "selector": selector, "percent": share, "latency": latency, "duration": window}},
            {"sleep": "2s"},
        ]);
        push(
            &mut out,
            "latency-half",
            WeaknessClass::TimeoutBudget,
            format!("{latency} latency on {whose} of Deployment {n}"),
            obj.clone(),
            steps,
            all.clone(),
        );
        // Isolation: only the routes this backend does not serve must hold.
        let others = checks(&|t| !t.backends.iter().any(|b| b == n));
        if !others.is_empty() {
            let labels = d
                .pointer("/spec/selector/matchLabels")
                .cloned()
                .unwrap_or_default();
            let policy = json!({
                "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                "metadata": {"name": format!("heatcheck-isolate-{n}"), "namespace": namespace_of(d, ns)},
                "spec": {"podSelector": {"matchLabels": labels}, "policyTypes": ["Ingress"], "ingress": []},
            });
            let manifest = serde_saphyr::to_string(&policy).unwrap_or_default();
            let steps = json!([{"create": {"manifest": manifest}}, {"sleep": "1s"}]);
            push(
                &mut out,
                "isolate-backend",
                WeaknessClass::NetworkIsolation,
                format!("isolate Deployment {n} with a NetworkPolicy"),
                obj,
                steps,
                others,
            );
            if let Some(c) = out.last_mut().filter(|c| c.entry == "isolate-backend") {
                c.drop_probes = targets
                    .iter()
                    .filter(|t| t.backends.iter().any(|b| b == n))
                    .map(|t| t.probe_name())
                    .collect();
            }
        }
    }
    out
}

/// A model's scenario as a candidate. Its class and objects are read off
/// its steps (what it changes), not taken from the model's words; the
/// derived steady-state checks are added to its own assertions, so it is
/// judged as the catalog's are.
/// `Kind/ns/name` of what a scenario's steps change, in step order, once
/// each: a fault or a pod delete by selector names the Deployments whose
/// pods it selects (the catalog's own objects, so findings of the same
/// Deployment meet), or `Pod/ns/<selector>` when none of the snapshot's does.
pub fn changed_objects(sc: &Scenario, snap: &Snapshot) -> Vec<String> {
    use heatcheck_format::StepAction;
    let ns = snap.namespace.as_str();
    let mut out: Vec<String> = Vec::new();
    let mut push = |o: String| {
        if !out.contains(&o) {
            out.push(o);
        }
    };
    let by_selector = |step_ns: &str, selector: &str| -> Vec<String> {
        let found: Vec<String> = snap
            .of_kind("Deployment")
            .filter(|d| namespace_of(d, ns) == step_ns)
            .filter(|d| Snapshot::pod_selector(d).as_deref() == Some(selector))
            .map(|d| format!("Deployment/{step_ns}/{}", name(d)))
            .collect();
        if found.is_empty() {
            vec![format!("Pod/{step_ns}/{selector}")]
        } else {
            found
        }
    };
    for step in &sc.steps {
        let step_ns = step.action.namespace().unwrap_or(ns);
        match &step.action {
            StepAction::Delete(d) => match (d.kind.as_deref(), &d.name, &d.selector) {
                (Some(kind), Some(n), _) => push(format!("{kind}/{step_ns}/{n}")),
                (Some("Pod"), None, Some(sel)) => {
                    by_selector(step_ns, sel).into_iter().for_each(&mut push)
                }
                (Some(kind), None, Some(sel)) => push(format!("{kind}/{step_ns}/{sel}")),
                _ => {}
            },
            StepAction::Scale(x) => push(format!("{}/{step_ns}/{}", x.kind, x.name)),
            StepAction::Restart(x) => push(format!("{}/{step_ns}/{}", x.kind, x.name)),
            StepAction::Patch(x) => push(format!("{}/{step_ns}/{}", x.kind, x.name)),
            StepAction::Fault(f) => by_selector(step_ns, &f.selector)
                .into_iter()
                .for_each(&mut push),
            _ => {}
        }
    }
    out
}

/// A model's scenario as a candidate. Its class and objects are read off
/// its steps (what it changes), not taken from the model's words; the
/// derived steady-state checks are added to its own assertions, so it is
/// judged as the catalog's are.
pub fn from_model(mut sc: Scenario, snap: &Snapshot, targets: &[RouteTarget]) -> Candidate {
    use heatcheck_format::{FaultType, StepAction};
    let ns = snap.namespace.as_str();
    let mut class = WeaknessClass::Other;
    let mut after_only = false;
    for step in &sc.steps {
        // The first change decides the class; later ones are its set-up.
        let this = match &step.action {
            StepAction::Delete(d) => match d.kind.as_deref().unwrap_or("") {
                "HTTPRoute" | "GRPCRoute" => {
                    after_only = true;
                    Some(WeaknessClass::RoutePrecedence)
                }
                "ReferenceGrant" => {
                    after_only = true;
                    Some(WeaknessClass::CrossNamespaceGrant)
                }
                "Pod" => Some(WeaknessClass::SinglePod),
                "NetworkPolicy" => Some(WeaknessClass::NetworkIsolation),
                _ => None,
            },
            StepAction::Scale(_) => Some(WeaknessClass::Capacity),
            StepAction::Restart(_) => Some(WeaknessClass::Rollout),
            StepAction::Patch(x) => match x.kind.as_str() {
                "HTTPRoute" | "GRPCRoute" => Some(WeaknessClass::RoutePrecedence),
                "NetworkPolicy" => Some(WeaknessClass::NetworkIsolation),
                _ => None,
            },
            StepAction::Fault(f) => Some(match f.fault_type {
                FaultType::NetworkDelay => WeaknessClass::TimeoutBudget,
                FaultType::PodKill => WeaknessClass::SinglePod,
                FaultType::NetworkLoss | FaultType::NetworkPartition => {
                    WeaknessClass::NetworkIsolation
                }
            }),
            _ => None,
        };
        if let (WeaknessClass::Other, Some(c)) = (class, this) {
            class = c;
        }
    }
    let objects = changed_objects(&sc, snap);
    // The derived checks the model's assertions do not already make.
    for t in targets {
        if let Some(a) = crate::steady::parse_assertion(&t.assertion(ns)) {
            if !sc.assertions.iter().any(|x| x.name == a.name) {
                sc.assertions.push(a);
            }
        }
    }
    let slug: String = sc
        .name
        .trim_start_matches("ai: ")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect::<String>()
        .split('-')
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join("-");
    if !sc.tags.iter().any(|t| t == "explore") {
        sc.tags.extend([
            "explore".to_string(),
            "ai".to_string(),
            class.as_str().to_string(),
        ]);
    }
    let remediation = sc.remediation.clone();
    Candidate {
        id: format!("ai/{slug}"),
        entry: "ai",
        class,
        title: sc.name.trim_start_matches("ai: ").to_string(),
        objects,
        scenario: sc,
        drop_probes: Vec::new(),
        after_only,
        minimizable: true,
        origin: crate::finding::Origin::Ai,
        remediation,
    }
}

/// The Deployments behind at least one route target, in name order.
fn backend_deployments<'a>(snap: &'a Snapshot, targets: &[RouteTarget]) -> Vec<&'a Value> {
    let mut ds: Vec<&Value> = snap
        .local("Deployment")
        .filter(|d| {
            targets
                .iter()
                .any(|t| t.backends.iter().any(|b| b == name(d)))
        })
        .collect();
    ds.sort_by_key(|d| name(d).to_string());
    ds
}

#[allow(clippy::too_many_arguments)]
fn push(
    out: &mut Vec<Candidate>,
    entry: &'static str,
    class: WeaknessClass,
    title: String,
    objects: Vec<String>,
    steps: Value,
    assertions: Vec<Value>,
) {
    if assertions.is_empty() {
        return;
    }
    let id = format!("{entry}/{}", objects.join("+"));
    let remediation: Vec<&str> = class.remediation().to_vec();
    let sc = json!({
        "name": format!("explore: {title}"),
        "description": ENTRIES.iter().find(|e| e.0 == entry).map(|e| e.2).unwrap_or_default(),
        "tags": ["explore", entry, class.as_str()],
        "steps": steps,
        "assertions": assertions,
        "remediation": remediation,
    });
    match heatcheck_format::parse_scenario_json(&sc) {
        Ok(scenario) => out.push(Candidate {
            id,
            entry,
            class,
            title,
            objects,
            scenario,
            drop_probes: Vec::new(),
            after_only: matches!(entry, "route-recreate" | "referencegrant-removal"),
            minimizable: false,
            origin: crate::finding::Origin::Catalog,
            remediation: Vec::new(),
        }),
        // A catalog entry that does not parse is a bug in the catalog, not the user's.
        Err(e) => debug_assert!(false, "catalog entry {entry} does not parse: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::steady::route_targets;

    #[test]
    fn every_entry_fits_where_it_should_and_parses() {
        let s = crate::steady::tests::snap();
        let t = route_targets(&s);
        let c = candidates(&s, &t, &CatalogOptions::default());
        let ids: Vec<&str> = c.iter().map(|c| c.id.as_str()).collect();
        assert!(
            ids.contains(&"route-recreate/HTTPRoute/ns/b-route"),
            "{ids:?}"
        );
        assert!(
            ids.contains(&"route-recreate/HTTPRoute/ns/a-dup"),
            "{ids:?}"
        );
        assert!(
            ids.contains(&"scale-half/Deployment/ns/backend-v1"),
            "{ids:?}"
        );
        // backend-v3 serves nothing now (a-dup loses the shared match).
        assert!(!ids.iter().any(|i| i.contains("backend-v3")), "{ids:?}");
        // One backend only: isolating it leaves no other route to check.
        assert!(
            !ids.iter().any(|i| i.starts_with("isolate-backend")),
            "{ids:?}"
        );
        for cand in &c {
            assert!(!cand.scenario.assertions.is_empty());
            assert!(cand
                .scenario
                .tags
                .contains(&cand.class.as_str().to_string()));
        }
    }

    #[test]
    fn one_pod_is_one_pod_of_the_replicas() {
        let s = crate::steady::tests::snap();
        let t = route_targets(&s);
        let c = candidates(&s, &t, &CatalogOptions::default());
        let kill = c.iter().find(|c| c.entry == "pod-kill-one").unwrap();
        let yaml = serde_saphyr::to_string(&kill.scenario).unwrap();
        assert!(yaml.contains("percent: 34"), "{yaml}");
    }

    #[test]
    fn a_model_scenario_is_classed_by_what_it_changes_and_keeps_the_steady_state() {
        let s = crate::steady::tests::snap();
        let t = route_targets(&s);
        let sc = heatcheck_format::parse_scenario_json(&json!({
            "name": "ai: slow the backend",
            "steps": [
                {"sleep": "1s"},
                {"fault": {"type": "networkDelay", "selector": "app=v1", "duration": "5s", "latency": "800ms", "percent": 50}},
                {"scale": {"name": "v1", "replicas": 1}},
            ],
            "assertions": [{"name": "mine", "http": {"url": "http://x/", "expect": {"status": 200}}}],
            "remediation": ["raise the timeout"],
        }))
        .unwrap();
        let c = from_model(sc, &s, &t);
        // The first change decides; the model's words are not asked.
        assert_eq!(c.class, WeaknessClass::TimeoutBudget);
        assert_eq!(c.id, "ai/slow-the-backend");
        assert_eq!(c.origin, crate::finding::Origin::Ai);
        assert!(c.minimizable && !c.after_only);
        assert_eq!(c.objects.len(), 2, "{:?}", c.objects);
        assert_eq!(c.remediation, ["raise the timeout"]);
        // Its own check, then every derived one.
        assert_eq!(c.scenario.assertions.len(), 1 + t.len());
        let recreate = heatcheck_format::parse_scenario_json(&json!({
            "name": "recreate",
            "steps": [{"delete": {"kind": "HTTPRoute", "name": "r"}}],
            "assertions": [{"name": "x", "http": {"url": "http://x/", "expect": {"status": 200}}}],
        }))
        .unwrap();
        let c = from_model(recreate, &s, &t);
        assert_eq!(c.class, WeaknessClass::RoutePrecedence);
        assert!(c.after_only, "a deleted route answers 404 until it is back");
    }
}
