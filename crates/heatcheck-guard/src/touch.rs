//! What a step touches, worked out without a cluster: its kind(s),
//! namespace, name or selector, and for manifest and fault steps the
//! rendered objects. Shared by the static check, the plan and the RBAC.

use std::sync::Arc;

use serde_json::Value;

use heatcheck_format::fault;
use heatcheck_format::manifest;
use heatcheck_format::{
    template_context, AssertionKind, GatewayResolver, Step, StepAction, Suite, Templater,
};

/// One object (or set of objects, for a selector) a step acts on.
#[derive(Clone, Debug, PartialEq)]
pub struct Touch {
    /// The step kind: apply, create, delete, patch, scale, restart, fault, wait.
    pub action: &'static str,
    pub api_version: Option<String>,
    pub kind: String,
    /// Where it lives if the kind is namespaced (written, else the step's, else the target's).
    pub namespace: String,
    pub name: Option<String>,
    pub selector: Option<String>,
    /// The rendered object (manifest and fault steps).
    pub object: Option<Value>,
    /// `scale`: the replicas asked for.
    pub replicas: Option<u32>,
}

impl Touch {
    /// `Kind ns/name`, `Kind ns/(selector app=x)` ...
    pub fn describe(&self, cluster_scoped: bool) -> String {
        let what = match (&self.name, &self.selector) {
            (Some(n), _) => n.clone(),
            (None, Some(s)) => format!("(selector {s:?})"),
            (None, None) => "(every object)".into(),
        };
        if cluster_scoped {
            format!("{} {what}", self.kind)
        } else {
            format!("{} {}/{what}", self.kind, self.namespace)
        }
    }

    /// Whether the step changes the object (waits only read).
    pub fn mutates(&self) -> bool {
        self.action != "wait"
    }
}

/// Renders gateway URLs as placeholders: nothing is looked up to plan.
struct NoGateways;

impl GatewayResolver for NoGateways {
    fn gateway_url(&self, namespace: &str, name: &str) -> Result<String, String> {
        Ok(format!("http://{name}.{namespace}.gateway.invalid"))
    }
}

/// A templater like the engine's, without a cluster (gateway URLs are placeholders).
pub fn static_templater(suite: &Suite, run_id: &str, vars: &[(String, String)]) -> Templater {
    let mut ctx = template_context(suite, run_id);
    for (k, v) in vars {
        ctx.insert(k.clone(), Value::String(v.clone()));
    }
    Templater::new(ctx, Arc::new(NoGateways))
}

/// Name used for a fault's chaos object when planning (the run uses its own).
pub(crate) fn plan_fault_name(step: &heatcheck_format::FaultStep, index: usize) -> String {
    format!(
        "heatcheck-{}-plan-{index}",
        step.fault_type.as_str().to_ascii_lowercase()
    )
}

/// What one step touches; Err when it cannot be rendered without the cluster
/// (the engine checks it again when it runs).
pub fn touches(
    suite: &Suite,
    t: &Templater,
    step: &Step,
    index: usize,
) -> Result<Vec<Touch>, String> {
    let render = |s: &str| t.render(s).map_err(|e| e.to_string());
    let target = suite.spec.target.namespace.clone();
    let step_ns = step.action.namespace().map(render).transpose()?;
    let ns = step_ns.clone().unwrap_or(target);
    let action = step.action.kind();
    let simple = |api_version: &Option<String>, kind: &str, name: Option<String>| Touch {
        action,
        api_version: api_version.clone(),
        kind: kind.to_string(),
        namespace: ns.clone(),
        name,
        selector: None,
        object: None,
        replicas: None,
    };
    let from_manifest = |text: String, origin: &str| -> Result<Vec<Touch>, String> {
        let rendered = render(&text)?;
        let objects = manifest::parse_documents(&rendered, origin)?;
        Ok(objects
            .into_iter()
            .map(|o| Touch {
                action,
                api_version: o["apiVersion"].as_str().map(str::to_string),
                kind: o["kind"].as_str().unwrap_or_default().to_string(),
                namespace: o
                    .pointer("/metadata/namespace")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .unwrap_or_else(|| ns.clone()),
                name: o
                    .pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                selector: None,
                object: Some(o),
                replicas: None,
            })
            .collect())
    };
    let dir = &suite.source.dir;
    Ok(match &step.action {
        StepAction::Apply(a) | StepAction::Create(a) => {
            let text = a.resolve_source(dir).map_err(|e| e.to_string())?;
            from_manifest(text, a.file.as_deref().unwrap_or("inline manifest"))?
        }
        StepAction::Delete(d) => match d.resolve_source(dir).map_err(|e| e.to_string())? {
            Some(text) => from_manifest(text, d.file.as_deref().unwrap_or_default())?,
            None => {
                let mut tc = simple(
                    &d.api_version,
                    d.kind.as_deref().unwrap_or_default(),
                    d.name.as_deref().map(render).transpose()?,
                );
                if tc.name.is_none() {
                    tc.selector = Some(render(d.selector.as_deref().unwrap_or_default())?);
                }
                vec![tc]
            }
        },
        StepAction::Patch(p) => vec![simple(&p.api_version, &p.kind, Some(render(&p.name)?))],
        StepAction::Restart(r) => vec![simple(&r.api_version, &r.kind, Some(render(&r.name)?))],
        StepAction::Scale(s) => {
            let mut tc = simple(&s.api_version, &s.kind, Some(render(&s.name)?));
            tc.replicas = Some(s.replicas);
            vec![tc]
        }
        StepAction::Wait(w) => {
            let mut tc = simple(
                &w.api_version,
                &w.kind,
                w.name.as_deref().map(render).transpose()?,
            );
            tc.selector = w.selector.as_deref().map(render).transpose()?;
            vec![tc]
        }
        StepAction::Sleep(_) => vec![],
        StepAction::Fault(f) => {
            let mut f = f.clone();
            f.selector = render(&f.selector)?;
            let mut pods = simple(&Some("v1".into()), "Pod", None);
            pods.selector = Some(f.selector.clone());
            let mut out = vec![pods];
            // An empty selector cannot be rendered; the checker reports it.
            if let Ok(obj) = fault::render(&f, &plan_fault_name(&f, index), &ns, "plan") {
                out.insert(
                    0,
                    Touch {
                        action,
                        api_version: obj["apiVersion"].as_str().map(str::to_string),
                        kind: obj["kind"].as_str().unwrap_or_default().to_string(),
                        namespace: ns.clone(),
                        name: obj["metadata"]["name"].as_str().map(str::to_string),
                        selector: None,
                        object: Some(obj),
                        replicas: None,
                    },
                );
            }
            out
        }
    })
}

/// Kinds an assertion reads (for the RBAC a run needs): (apiVersion, kind, namespace).
pub fn assertion_reads(
    a: &heatcheck_format::Assertion,
    t: &Templater,
    target: &str,
) -> Vec<(Option<String>, String, String)> {
    let ns = |n: &Option<String>| {
        n.as_deref()
            .and_then(|n| t.render(n).ok())
            .unwrap_or_else(|| target.to_string())
    };
    match &a.kind {
        AssertionKind::Http(h) => {
            let mut out = Vec::new();
            if h.url.contains("gateway") {
                out.push((
                    Some("gateway.networking.k8s.io/v1".into()),
                    "Gateway".into(),
                    target.to_string(),
                ));
            }
            out
        }
        AssertionKind::Resource(r) => {
            vec![(r.api_version.clone(), r.kind.clone(), ns(&r.namespace))]
        }
        AssertionKind::Order(o) => vec![(o.api_version.clone(), o.kind.clone(), ns(&o.namespace))],
        AssertionKind::Absent(o) | AssertionKind::Present(o) => {
            vec![(o.api_version.clone(), o.kind.clone(), ns(&o.namespace))]
        }
        // Reads Prometheus, not the cluster.
        AssertionKind::Promql(_) => Vec::new(),
    }
}
