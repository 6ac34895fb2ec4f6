//! What a generated scenario may reference: the objects the cluster showed
//! plus what the suite's fixtures declare, and how a step's manifest is
//! rendered to find the objects it writes. The checks (`check`,
//! `references`) and generation share it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_json::Value;

use super::context::{declared_objects, Gathered};
use heatcheck_format::{template_context, GatewayResolver, Suite, Templater};

/// Objects a scenario may reference: what the cluster showed plus what the
/// suite's fixtures declare, keyed by (kind, namespace, name), and the label
/// sets that selectors are checked against.
#[derive(Clone, Debug, Default)]
pub struct Known {
    objects: BTreeSet<(String, String, String)>,
    /// (kind, namespace) -> label sets of objects of that kind.
    labels: BTreeMap<(String, String), Vec<BTreeMap<String, String>>>,
    /// namespace -> pod label sets (pod templates of workloads, and pods).
    pod_labels: BTreeMap<String, Vec<BTreeMap<String, String>>>,
    /// kind -> apiVersions served (discovery, plus CRDs the fixtures
    /// install); None when discovery was not available.
    served: Option<BTreeMap<String, BTreeSet<String>>>,
}

fn labels_at(v: &Value, pointer: &str) -> BTreeMap<String, String> {
    v.pointer(pointer)
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

impl Known {
    pub fn from_context(gathered: &Gathered, suite: &Suite) -> Self {
        let mut k = Known::default();
        let default_ns = suite.spec.target.namespace.clone();
        let values = gathered
            .items
            .iter()
            .map(|i| i.value.clone())
            .chain(declared_objects(suite));
        for v in values {
            k.add(&v, &default_ns);
        }
        if !gathered.served.is_empty() {
            let mut served: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
            for s in &gathered.served {
                served
                    .entry(s.kind.clone())
                    .or_default()
                    .insert(s.api_version.clone());
            }
            // A CRD a fixture installs is served by the time scenarios run.
            for crd in declared_objects(suite)
                .iter()
                .filter(|o| o["kind"] == "CustomResourceDefinition")
            {
                let (Some(kind), Some(group)) = (
                    crd.pointer("/spec/names/kind").and_then(Value::as_str),
                    crd.pointer("/spec/group").and_then(Value::as_str),
                ) else {
                    continue;
                };
                for v in crd
                    .pointer("/spec/versions")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if let Some(name) = v["name"].as_str() {
                        served
                            .entry(kind.to_string())
                            .or_default()
                            .insert(format!("{group}/{name}"));
                    }
                }
            }
            k.served = Some(served);
        }
        k
    }

    /// The apiVersions serving `kind`; None when discovery is unknown,
    /// Some(empty) when the kind is not served.
    pub(crate) fn served_versions(&self, kind: &str) -> Option<BTreeSet<String>> {
        self.served
            .as_ref()
            .map(|s| s.get(kind).cloned().unwrap_or_default())
    }

    /// Names of the Gateways known in a namespace.
    pub(crate) fn names_of(&self, kind: &str, ns: &str) -> Vec<String> {
        self.objects
            .iter()
            .filter(|(k, n, _)| k == kind && n == ns)
            .map(|(_, _, name)| name.clone())
            .collect()
    }

    fn add(&mut self, v: &Value, default_ns: &str) {
        let kind = v.get("kind").and_then(Value::as_str).unwrap_or_default();
        if kind.is_empty() || kind == super::context::EVENT_KIND {
            return;
        }
        let ns = v
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or(default_ns)
            .to_string();
        let name = v
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !self
            .objects
            .insert((kind.to_string(), ns.clone(), name.to_string()))
        {
            return;
        }
        self.labels
            .entry((kind.to_string(), ns.clone()))
            .or_default()
            .push(labels_at(v, "/metadata/labels"));
        let pods = match kind {
            "Pod" => Some(labels_at(v, "/metadata/labels")),
            _ if v.pointer("/spec/template/metadata/labels").is_some() => {
                Some(labels_at(v, "/spec/template/metadata/labels"))
            }
            _ => None,
        };
        if let Some(p) = pods {
            self.pod_labels.entry(ns).or_default().push(p);
        }
    }

    /// Label sets of the objects of `kind` in `ns`.
    pub(crate) fn labels_of(&self, kind: &str, ns: &str) -> Option<&Vec<BTreeMap<String, String>>> {
        self.labels.get(&(kind.to_string(), ns.to_string()))
    }

    /// Label sets of the pods in `ns` (pod templates of workloads, and pods).
    pub(crate) fn pod_labels_in(&self, ns: &str) -> Option<&Vec<BTreeMap<String, String>>> {
        self.pod_labels.get(ns)
    }

    pub(crate) fn contains(&self, kind: &str, ns: &str, name: &str) -> bool {
        self.objects
            .contains(&(kind.to_string(), ns.to_string(), name.to_string()))
    }
}

struct NoGateways;
impl GatewayResolver for NoGateways {
    fn gateway_url(&self, _: &str, name: &str) -> Result<String, String> {
        Err(format!("gateway {name} is resolved at run time"))
    }
}

pub(crate) fn templater(suite: &Suite) -> Templater {
    Templater::new(template_context(suite, "check"), Arc::new(NoGateways))
}

/// (kind, namespace, name) of a manifest object; `ns` when it names none.
pub(crate) fn object_key(o: &Value, ns: &str) -> (String, String, String) {
    let field = |p: &str| o.pointer(p).and_then(Value::as_str);
    (
        field("/kind").unwrap_or_default().to_string(),
        field("/metadata/namespace").unwrap_or(ns).to_string(),
        field("/metadata/name").unwrap_or_default().to_string(),
    )
}

/// Objects an apply/create step would write (rendered like the engine does;
/// raw text when a template needs the cluster).
pub(crate) fn manifest_objects(
    step: &heatcheck_format::ApplyStep,
    suite: &Suite,
    t: &Templater,
) -> Result<Vec<Value>, String> {
    let src = step
        .resolve_source(&suite.source.dir)
        .map_err(|e| e.to_string())?;
    let text = t.render(&src).unwrap_or(src);
    heatcheck_format::manifest::parse_documents(&text, "manifest")
}
