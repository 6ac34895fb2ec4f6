//! Context gathering: the objects named in `ai.context`, listed from the
//! cluster (paginated by the client), stripped of noise, redacted, in a
//! deterministic order. This is everything about the cluster that an LLM
//! ever sees.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::{Map, Value};

use super::redact::redact_object;
use heatcheck_cluster::{ClusterClient, ClusterError};
use heatcheck_format::{template_context, GatewayResolver, StepAction, Suite, Templater};

/// One gathered object. `group` is its priority: the index of its selector
/// in `ai.context` (Events come after every selector).
#[derive(Clone, Debug, PartialEq)]
pub struct ContextItem {
    pub group: usize,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
    /// The cleaned, redacted object.
    pub value: Value,
}

/// Everything gathered for one suite.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Gathered {
    pub items: Vec<ContextItem>,
    /// The kinds the cluster serves (discovery), for the prompt and to
    /// check the kinds a scenario names. Empty when not known.
    pub served: Vec<ServedKind>,
    /// Objects the suite's fixtures declare (they exist once the fixtures ran),
    /// whether or not the cluster has them yet.
    pub declared: usize,
}

/// One kind the cluster serves.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ServedKind {
    pub api_version: String,
    pub kind: String,
    pub namespaced: bool,
}

/// The selectors listed: `ai.context`, plus Gateways when routes are asked
/// for (a route's scenario needs the Gateway's name for `{{gateway}}`).
pub fn effective_selectors(
    ai: &heatcheck_format::AiConfig,
) -> Vec<heatcheck_format::ContextSelector> {
    let mut sels = ai.context.clone();
    let routes = sels.iter().any(|s| s.kind.ends_with("Route"));
    if routes && !sels.iter().any(|s| s.kind == "Gateway") {
        sels.push(heatcheck_format::ContextSelector {
            api_version: None,
            kind: "Gateway".into(),
            namespaces: None,
            selector: None,
        });
    }
    sels
}

#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error("listing {kind} for the AI context: {source}")]
    Cluster {
        kind: String,
        #[source]
        source: Box<ClusterError>,
    },
}

impl ContextError {
    pub fn is_unreachable(&self) -> bool {
        matches!(self, ContextError::Cluster { source, .. } if matches!(**source, ClusterError::Unreachable { .. }))
    }
}

/// The kind name used for Events (lowest priority).
pub const EVENT_KIND: &str = "Event";

/// Lists every selector of `suite.spec.ai` (and Events when asked), adds the
/// objects the suite's fixtures declare, cleans and redacts them.
pub async fn gather(client: &ClusterClient, suite: &Suite) -> Result<Gathered, ContextError> {
    let Some(ai) = &suite.spec.ai else {
        return Ok(Gathered::default());
    };
    let default_ns = suite.spec.target.allow_namespaces.clone();
    let mut items = Vec::new();
    let mut seen = BTreeSet::new();
    let selectors = effective_selectors(ai);
    for (group, sel) in selectors.iter().enumerate() {
        let resolved = match client.resolve(sel.api_version.as_deref(), &sel.kind).await {
            Ok(r) => r,
            // A kind the cluster does not serve (yet: a fixture may install its CRD).
            Err(ClusterError::NotServed { .. }) => continue,
            Err(e) => return Err(cluster_err(&sel.kind, e)),
        };
        let namespaces = sel.namespaces.clone().unwrap_or_else(|| default_ns.clone());
        let mut objects = Vec::new();
        if resolved.namespaced {
            for ns in &namespaces {
                objects.extend(
                    client
                        .list(&resolved, Some(ns), sel.selector.as_deref())
                        .await
                        .map_err(|e| cluster_err(&sel.kind, e))?,
                );
            }
        } else {
            objects.extend(
                client
                    .list(&resolved, None, sel.selector.as_deref())
                    .await
                    .map_err(|e| cluster_err(&sel.kind, e))?,
            );
        }
        let mut group_items: Vec<ContextItem> = objects
            .into_iter()
            .map(|o| item(group, &sel.kind, o))
            .map(|mut it| {
                if !ai.full_context {
                    trim_containers(&mut it.value);
                }
                it
            })
            .collect();
        sort_items(&mut group_items);
        for it in group_items {
            if seen.insert(key(&it)) {
                items.push(it);
            }
        }
    }
    let declared = add_declared(suite, &mut items, &mut seen);
    let served = client
        .served_kinds()
        .await
        .map_err(|e| cluster_err("api resources", e))?
        .into_iter()
        .map(|(api_version, kind, namespaced)| ServedKind {
            api_version,
            kind,
            namespaced,
        })
        .collect();
    if ai.include_events {
        let group = selectors.len();
        let r = client
            .resolve(Some("v1"), EVENT_KIND)
            .await
            .map_err(|e| cluster_err(EVENT_KIND, e))?;
        let mut events = Vec::new();
        for ns in &default_ns {
            for e in client
                .list(&r, Some(ns), None)
                .await
                .map_err(|e| cluster_err(EVENT_KIND, e))?
            {
                events.push(event_item(group, e));
            }
        }
        sort_items(&mut events);
        items.extend(events);
    }
    Ok(Gathered {
        items,
        served,
        declared,
    })
}

fn cluster_err(kind: &str, e: ClusterError) -> ContextError {
    ContextError::Cluster {
        kind: kind.to_string(),
        source: Box::new(e),
    }
}

fn key(it: &ContextItem) -> (String, String, String) {
    (
        it.kind.clone(),
        it.namespace.clone().unwrap_or_default(),
        it.name.clone(),
    )
}

fn sort_items(items: &mut [ContextItem]) {
    items.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
}

/// Fixture manifests (rendered like the engine would) contribute the objects
/// of the selected kinds that the cluster does not show yet, in their
/// selector's group. Returns how many were added.
fn add_declared(
    suite: &Suite,
    items: &mut Vec<ContextItem>,
    seen: &mut BTreeSet<(String, String, String)>,
) -> usize {
    let Some(ai) = &suite.spec.ai else {
        return 0;
    };
    let mut added = 0;
    let selectors = effective_selectors(ai);
    for obj in declared_objects(suite) {
        let kind = obj.get("kind").and_then(Value::as_str).unwrap_or_default();
        let Some(group) = selectors.iter().position(|s| {
            s.kind == kind
                && s.api_version
                    .as_deref()
                    .is_none_or(|v| obj.get("apiVersion").and_then(Value::as_str) == Some(v))
        }) else {
            continue;
        };
        let mut it = item(group, kind, obj.clone());
        if it.namespace.is_none() {
            it.namespace = Some(suite.spec.target.namespace.clone());
            it.value["metadata"]["namespace"] = Value::String(suite.spec.target.namespace.clone());
        }
        if seen.insert(key(&it)) {
            // Keep the group order: insert after the last item of the same group.
            let at = items
                .iter()
                .rposition(|i| i.group <= group)
                .map(|p| p + 1)
                .unwrap_or(0);
            items.insert(at, it);
            added += 1;
        }
    }
    // Re-sort each group by namespace/name (stable, groups stay in order).
    items.sort_by(|a, b| (a.group, &a.namespace, &a.name).cmp(&(b.group, &b.namespace, &b.name)));
    added
}

/// Refuses `{{gateway}}` outside a run: there is no cluster lookup at gather time.
struct NoGateways;
impl GatewayResolver for NoGateways {
    fn gateway_url(&self, _: &str, name: &str) -> Result<String, String> {
        Err(format!("gateway {name}: not resolved outside a run"))
    }
}

/// The objects the suite's fixtures apply (file or inline manifests),
/// rendered with the suite's variables. Unrenderable ones are skipped.
pub fn declared_objects(suite: &Suite) -> Vec<Value> {
    let templater = Templater::new(template_context(suite, "generate"), Arc::new(NoGateways));
    let mut out = Vec::new();
    for step in &suite.spec.fixtures {
        if let StepAction::Apply(a) | StepAction::Create(a) = &step.action {
            let Ok(src) = a.resolve_source(&suite.source.dir) else {
                continue;
            };
            let Ok(text) = templater.render(&src) else {
                continue;
            };
            if let Ok(objs) = heatcheck_format::manifest::parse_documents(&text, "fixture") {
                for mut o in objs {
                    if let (Some(ns), Some(meta)) = (
                        a.namespace.as_ref(),
                        o.get_mut("metadata").and_then(Value::as_object_mut),
                    ) {
                        meta.entry("namespace")
                            .or_insert_with(|| Value::String(ns.clone()));
                    }
                    out.push(o);
                }
            }
        }
    }
    out
}

fn item(group: usize, kind: &str, obj: Value) -> ContextItem {
    let value = clean(obj);
    ContextItem {
        group,
        kind: value
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or(kind)
            .to_string(),
        namespace: value
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .map(str::to_string),
        name: value
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        value,
    }
}

const METADATA_KEEP: &[&str] = &[
    "name",
    "namespace",
    "labels",
    "annotations",
    "creationTimestamp",
    "ownerReferences",
    "deletionTimestamp",
];
const NOISY_ANNOTATIONS: &[&str] = &[
    "kubectl.kubernetes.io/last-applied-configuration",
    "deployment.kubernetes.io/revision",
];

/// Drops server noise (managedFields, uid, resourceVersion, generation,
/// selfLink, most of status) and redacts. creationTimestamp stays: it
/// decides HTTPRoute conflicts.
pub fn clean(obj: Value) -> Value {
    let Value::Object(mut map) = obj else {
        return obj;
    };
    if let Some(Value::Object(meta)) = map.get_mut("metadata") {
        meta.retain(|k, _| METADATA_KEEP.contains(&k.as_str()));
        if let Some(Value::Object(a)) = meta.get_mut("annotations") {
            a.retain(|k, _| !NOISY_ANNOTATIONS.contains(&k.as_str()));
            if a.is_empty() {
                meta.remove("annotations");
            }
        }
        if let Some(Value::Array(refs)) = meta.get_mut("ownerReferences") {
            for r in refs.iter_mut() {
                if let Value::Object(r) = r {
                    r.retain(|k, _| k == "kind" || k == "name" || k == "controller");
                }
            }
        }
    }
    if let Some(status) = map.remove("status") {
        if let Some(s) = slim_status(&status) {
            map.insert("status".into(), s);
        }
    }
    let mut v = Value::Object(map);
    redact_object(&mut v);
    v
}

/// Container name and ports only: images, env, probes and resources cost
/// context and invite the model to copy them into the wrong fields.
pub(crate) fn trim_containers(v: &mut Value) {
    for spec in [
        "/spec/template/spec",
        "/spec",
        "/spec/jobTemplate/spec/template/spec",
    ] {
        let Some(pod) = v.pointer_mut(spec).and_then(Value::as_object_mut) else {
            continue;
        };
        for key in ["containers", "initContainers"] {
            if let Some(Value::Array(cs)) = pod.get_mut(key) {
                for c in cs.iter_mut() {
                    if let Value::Object(c) = c {
                        c.retain(|k, _| k == "name" || k == "ports");
                    }
                }
            }
        }
    }
}

/// Conditions (type/status/reason), replica counts, and route parents.
fn slim_status(status: &Value) -> Option<Value> {
    let Value::Object(s) = status else {
        return None;
    };
    let mut out = Map::new();
    for (k, v) in s {
        let kept = match (k.as_str(), v) {
            ("conditions", Value::Array(c)) => {
                Some(Value::Array(c.iter().map(slim_condition).collect()))
            }
            ("parents", Value::Array(ps)) => Some(Value::Array(
                ps.iter()
                    .map(|p| {
                        let mut m = Map::new();
                        if let Some(r) = p.get("parentRef") {
                            m.insert("parentRef".into(), r.clone());
                        }
                        if let Some(Value::Array(c)) = p.get("conditions") {
                            m.insert(
                                "conditions".into(),
                                Value::Array(c.iter().map(slim_condition).collect()),
                            );
                        }
                        Value::Object(m)
                    })
                    .collect(),
            )),
            (k, Value::Number(_)) if k == "replicas" || k.ends_with("Replicas") => Some(v.clone()),
            ("phase", Value::String(_)) => Some(v.clone()),
            _ => None,
        };
        if let Some(kv) = kept {
            out.insert(k.clone(), kv);
        }
    }
    (!out.is_empty()).then_some(Value::Object(out))
}

fn slim_condition(c: &Value) -> Value {
    let mut m = Map::new();
    for k in ["type", "status", "reason"] {
        if let Some(v) = c.get(k) {
            m.insert(k.into(), v.clone());
        }
    }
    Value::Object(m)
}

/// An Event reduced to what explains behaviour.
fn event_item(group: usize, e: Value) -> ContextItem {
    let mut m = Map::new();
    m.insert("kind".into(), Value::String(EVENT_KIND.into()));
    let mut meta = Map::new();
    for k in ["name", "namespace"] {
        if let Some(v) = e.pointer(&format!("/metadata/{k}")) {
            meta.insert(k.into(), v.clone());
        }
    }
    m.insert("metadata".into(), Value::Object(meta));
    for k in ["type", "reason", "message", "count", "lastTimestamp"] {
        if let Some(v) = e.get(k).filter(|v| !v.is_null()) {
            m.insert(k.into(), v.clone());
        }
    }
    if let Some(Value::Object(io)) = e.get("involvedObject") {
        let mut o = Map::new();
        for k in ["kind", "name", "namespace"] {
            if let Some(v) = io.get(k) {
                o.insert(k.into(), v.clone());
            }
        }
        m.insert("involvedObject".into(), Value::Object(o));
    }
    let mut value = Value::Object(m);
    redact_object(&mut value);
    item(group, EVENT_KIND, value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn clean_strips_noise_and_keeps_what_matters() {
        let obj = json!({
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {
                "name": "r", "namespace": "shop", "uid": "u-1", "resourceVersion": "42", "generation": 3,
                "creationTimestamp": "2024-01-01T00:00:00Z", "selfLink": "/x",
                "managedFields": [{"manager": "kubectl"}],
                "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}", "team": "a"},
                "ownerReferences": [{"kind": "X", "name": "o", "uid": "u-2", "apiVersion": "v1", "controller": true}]
            },
            "spec": {"hostnames": ["a"]},
            "status": {"parents": [{"parentRef": {"name": "gw"}, "controllerName": "c",
                "conditions": [{"type": "Accepted", "status": "True", "reason": "Accepted", "message": "m", "lastTransitionTime": "t", "observedGeneration": 1}]}],
                "observedGeneration": 3}
        });
        let c = clean(obj);
        assert_eq!(
            c,
            json!({
                "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
                "metadata": {"name": "r", "namespace": "shop", "creationTimestamp": "2024-01-01T00:00:00Z",
                    "annotations": {"team": "a"}, "ownerReferences": [{"kind": "X", "name": "o", "controller": true}]},
                "spec": {"hostnames": ["a"]},
                "status": {"parents": [{"parentRef": {"name": "gw"}, "conditions": [{"type": "Accepted", "status": "True", "reason": "Accepted"}]}]}
            })
        );
        let d = clean(json!({"kind": "Deployment", "metadata": {"name": "d"},
            "status": {"replicas": 2, "readyReplicas": 1, "observedGeneration": 5, "conditions": [{"type": "Available", "status": "False", "message": "x"}]}}));
        assert_eq!(
            d["status"],
            json!({"replicas": 2, "readyReplicas": 1, "conditions": [{"type": "Available", "status": "False"}]})
        );
    }

    #[test]
    fn events_keep_the_story_only() {
        let e = event_item(
            3,
            json!({"kind": "Event", "metadata": {"name": "e.1", "namespace": "shop", "uid": "x"},
                "type": "Warning", "reason": "BackOff", "message": "Back-off restarting", "count": 4,
                "involvedObject": {"kind": "Pod", "name": "p", "namespace": "shop", "uid": "u"}, "source": {"component": "kubelet"}}),
        );
        assert_eq!(
            (e.group, e.kind.as_str(), e.name.as_str()),
            (3, "Event", "e.1")
        );
        assert_eq!(
            e.value,
            json!({"kind": "Event", "metadata": {"name": "e.1", "namespace": "shop"}, "type": "Warning",
                "reason": "BackOff", "message": "Back-off restarting", "count": 4,
                "involvedObject": {"kind": "Pod", "name": "p", "namespace": "shop"}})
        );
    }
}
