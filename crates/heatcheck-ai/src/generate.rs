//! Generation: send the prompt, parse `{"scenarios": [...]}`, check each
//! scenario (JSON Schema, the suite's own validation, references, policy),
//! send the problems back for repair up to `ai.maxRepairs`, and report
//! every rejected scenario with its reasons. Nothing here executes a step.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_json::Value;

use super::context::{declared_objects, Gathered};
use std::future::Future;
use std::pin::Pin;

use super::lockfile::{LockUsage, Rejected, ScenarioCheck};
use super::prompt::Prompt;
use heatcheck_format::{
    parse_scenario_json, template_context, validate_scenario, GatewayResolver, Scenario,
    StepAction, Suite, Templater,
};

pub use super::provider::{AiError, ChatRequest, ChatResponse, Message, Role, Usage};

/// The configured provider over HTTP.
pub struct ProviderBackend {
    pub client: reqwest::Client,
    pub config: super::provider::ProviderConfig,
}

impl ProviderBackend {
    /// From the suite's `ai` block and the process environment.
    pub fn from_suite(ai: &heatcheck_format::AiConfig) -> Result<Self, AiError> {
        let mut config =
            super::provider::ProviderConfig::from_suite(ai, &|k| std::env::var(k).ok())?;
        // generate() shows and counts each timed-out attempt itself.
        config.retry_timeouts = false;
        config.streamed = Some(Default::default());
        Ok(ProviderBackend {
            client: super::provider::default_client()?,
            config,
        })
    }
}

impl ProviderBackend {
    /// One request to the model over the provider's wire format.
    pub async fn chat(&self, req: &ChatRequest) -> Result<ChatResponse, AiError> {
        super::provider::chat(&self.client, &self.config, req).await
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error(transparent)]
    Provider(#[from] AiError),
}

impl GenerateError {
    pub fn is_unreachable(&self) -> bool {
        match self {
            GenerateError::Provider(e) => e.is_unreachable(),
        }
    }
}

/// The outcome of one generation.
#[derive(Clone, Debug, Default)]
pub struct Generation {
    pub scenarios: Vec<Scenario>,
    pub rejected: Vec<Rejected>,
    pub usage: LockUsage,
    /// Valid scenarios in the first answer (before any repair).
    pub valid_first: usize,
    /// Scenarios in the first answer.
    pub proposed_first: usize,
    /// Per accepted scenario (same order): repairs and sandbox verdict.
    pub checks: Vec<ScenarioCheck>,
}

/// Prefix of generated scenario names (unless they already carry it).
pub const NAME_PREFIX: &str = "ai: ";

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
    pub fn served_versions(&self, kind: &str) -> Option<BTreeSet<String>> {
        self.served
            .as_ref()
            .map(|s| s.get(kind).cloned().unwrap_or_default())
    }

    /// Names of the Gateways known in a namespace.
    pub fn names_of(&self, kind: &str, ns: &str) -> Vec<String> {
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

    pub fn contains(&self, kind: &str, ns: &str, name: &str) -> bool {
        self.objects
            .contains(&(kind.to_string(), ns.to_string(), name.to_string()))
    }

    pub fn len(&self) -> usize {
        self.objects.len()
    }

    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }
}

/// Kinds that are cluster-scoped (never created, changed or deleted by a
/// generated scenario).
pub const CLUSTER_SCOPED_KINDS: &[&str] = &[
    "Namespace",
    "Node",
    "PersistentVolume",
    "CustomResourceDefinition",
    "ClusterRole",
    "ClusterRoleBinding",
    "StorageClass",
    "PriorityClass",
    "IngressClass",
    "GatewayClass",
    "RuntimeClass",
    "CSIDriver",
    "CSINode",
    "VolumeAttachment",
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
    "APIService",
    "CertificateSigningRequest",
    "FlowSchema",
    "PriorityLevelConfiguration",
    "ClusterIssuer",
];

fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        format!("{}...", s.chars().take(max).collect::<String>())
    }
}

/// JSON Schema problems of one candidate, as `steps[0].timeout: ...`.
pub fn schema_problems(v: &Value) -> Vec<String> {
    super::candidate::schema_problems(v)
        .into_iter()
        .map(|p| format!("schema: {p}"))
        .collect()
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

/// Problems that need no cluster context: the suite's validation, at least
/// one assertion, and the policy. Used at generation and again when a lock
/// is loaded.
pub fn static_problems(sc: &Scenario, suite: &Suite) -> Vec<String> {
    problems_with(sc, suite, None)
}

/// The suite's validation, the assertion rule and the policy; `known`
/// (the gathered context) sharpens the match-all selector check.
fn problems_with(sc: &Scenario, suite: &Suite, known: Option<&Known>) -> Vec<String> {
    let mut out: Vec<String> = validate_scenario(sc, suite)
        .into_iter()
        .map(|d| match d.yaml_path {
            Some(p) if !p.is_empty() => format!("{p}: {}", d.message),
            _ => d.message,
        })
        .collect();
    if sc.assertions.is_empty() {
        out.push("a generated scenario needs at least one assertion".into());
    }
    out.extend(policy_problems(sc, suite, known));
    out
}

/// The policy pre-check: everything the guard refuses before a run (the
/// same check, so generation never locks what a run would refuse: system
/// and foreign namespaces, kinds, verbs, durations, undefined template
/// variables), plus the stricter rules for generated scenarios: no
/// cluster-scoped kind at all, no match-all selector. `known` enables the
/// "matches every pod" check against the gathered workloads.
pub fn policy_problems(sc: &Scenario, suite: &Suite, known: Option<&Known>) -> Vec<String> {
    let target = &suite.spec.target.namespace;
    let t = templater(suite);
    let mut out = Vec::new();
    match heatcheck_guard::EffectivePolicy::build(suite, &Default::default()) {
        Ok((policy, _)) => {
            for v in heatcheck_guard::check_scenario(sc, &policy, suite) {
                let at = match v.step {
                    Some(i) => format!("steps[{i}].{}", sc.steps[i].action.kind()),
                    None => "scenario".to_string(),
                };
                out.push(format!("{at}: {}: {}", v.what, v.why));
            }
        }
        Err(e) => out.push(format!("policy: {e}")),
    }
    out.extend(allowed_steps_problems(sc, suite, &t));
    for (i, step) in sc.steps.iter().enumerate() {
        let at = format!("steps[{i}].{}", step.action.kind());
        let ns = step.action.namespace().unwrap_or(target);
        let mutating_kind: Option<&str> = match &step.action {
            StepAction::Delete(d) => d.kind.as_deref(),
            StepAction::Patch(p) => Some(&p.kind),
            StepAction::Scale(s) => Some(&s.kind),
            StepAction::Restart(r) => Some(&r.kind),
            _ => None,
        };
        if let Some(k) = mutating_kind.filter(|k| CLUSTER_SCOPED_KINDS.contains(k)) {
            out.push(format!(
                "{at}: {k} is cluster-scoped; generated scenarios never change cluster-scoped kinds"
            ));
        }
        // maxPodsAffected: 100 written in the suite: every pod may be selected.
        let every_pod_ok = suite
            .spec
            .policy
            .as_ref()
            .is_some_and(|p| p.max_pods_affected == Some(100));
        let known = known.filter(|_| !every_pod_ok);
        match &step.action {
            StepAction::Apply(a) | StepAction::Create(a) => match manifest_objects(a, suite, &t) {
                Err(e) => out.push(format!("{at}: {}", shorten(&e, 200))),
                Ok(objs) => {
                    for o in objs {
                        let kind = o.get("kind").and_then(Value::as_str).unwrap_or_default();
                        if CLUSTER_SCOPED_KINDS.contains(&kind) {
                            out.push(format!(
                                "{at}: {kind} is cluster-scoped; generated scenarios never create cluster-scoped kinds"
                            ));
                        }
                    }
                }
            },
            StepAction::Delete(d) => {
                if let Some(sel) = &d.selector {
                    let kind = d.kind.as_deref().unwrap_or_default();
                    let sets = known.and_then(|k| {
                        if kind == "Pod" {
                            k.pod_labels.get(ns)
                        } else {
                            k.labels.get(&(kind.to_string(), ns.to_string()))
                        }
                    });
                    if let Some(why) = match_all(sel, sets) {
                        out.push(format!("{at}: selector \"{sel}\" {why}"));
                    }
                }
            }
            StepAction::Fault(f) => {
                // A share of the pods is bounded by maxPodsAffected at run time.
                let sets = known
                    .filter(|_| f.percent >= 100)
                    .and_then(|k| k.pod_labels.get(ns));
                if let Some(why) = match_all(&f.selector, sets) {
                    out.push(format!("{at}: selector \"{}\" {why}", f.selector));
                }
                if let Some(tsel) = &f.target {
                    if let Some(why) = match_all(tsel, None) {
                        out.push(format!("{at}: target selector \"{tsel}\" {why}"));
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// With `ai.allowedSteps` set, each object a step changes must be of a kind
/// listed there for that step kind: `deploy --regenerate` grants no more.
fn allowed_steps_problems(
    sc: &Scenario,
    suite: &Suite,
    t: &heatcheck_format::Templater,
) -> Vec<String> {
    let Some(allowed) = suite.spec.ai.as_ref().map(|a| &a.allowed_steps) else {
        return Vec::new();
    };
    if allowed.is_empty() {
        return Vec::new();
    }
    let key = heatcheck_guard::kinds::key;
    let listed = || {
        allowed
            .iter()
            .map(|a| {
                let steps: Vec<&str> = a.steps.iter().map(|s| s.as_str()).collect();
                format!("{} {}", steps.join("/"), a.kind)
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut out = Vec::new();
    for (i, step) in sc.steps.iter().enumerate() {
        let Ok(list) = heatcheck_guard::touches(suite, t, step, i) else {
            continue; // a render error is reported by the other checks
        };
        for tc in list {
            // The pods a fault selects are counted, not changed.
            let counted = tc.action == "fault" && tc.object.is_none();
            if tc.action == "wait" || counted {
                continue;
            }
            let ok = allowed.iter().any(|a| {
                key(&a.kind) == key(&tc.kind) && a.steps.iter().any(|s| s.as_str() == tc.action)
            });
            if !ok {
                out.push(format!(
                    "steps[{i}].{}: {} {} is not in ai.allowedSteps ({}); generated scenarios may only make those changes",
                    step.action.kind(),
                    tc.action,
                    tc.kind,
                    listed()
                ));
            }
        }
    }
    out
}

/// Some(reason) when a label selector selects everything: empty, no
/// positive requirement, or (given the label sets of two or more objects)
/// matching all of them.
fn match_all(selector: &str, sets: Option<&Vec<BTreeMap<String, String>>>) -> Option<String> {
    let reqs = match parse_selector(selector) {
        Ok(r) => r,
        Err(e) => return Some(format!("does not parse: {e}")),
    };
    if reqs.is_empty() {
        return Some("is empty and would match everything".into());
    }
    if !reqs.iter().any(Requirement::is_positive) {
        return Some("has no positive requirement (key=value, key in (...), or key) and would match nearly everything".into());
    }
    if let Some(sets) = sets {
        if sets.len() >= 2 && sets.iter().all(|l| reqs.iter().all(|r| r.matches(l))) {
            return Some(format!(
                "matches every one of the {} workloads in the namespace",
                sets.len()
            ));
        }
    }
    None
}

#[derive(Debug, PartialEq)]
enum Requirement {
    Eq(String, String),
    NotEq(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

impl Requirement {
    fn is_positive(&self) -> bool {
        matches!(
            self,
            Requirement::Eq(..) | Requirement::In(..) | Requirement::Exists(_)
        )
    }

    fn matches(&self, l: &BTreeMap<String, String>) -> bool {
        match self {
            Requirement::Eq(k, v) => l.get(k) == Some(v),
            Requirement::NotEq(k, v) => l.get(k) != Some(v),
            Requirement::In(k, vs) => l.get(k).is_some_and(|x| vs.contains(x)),
            Requirement::NotIn(k, vs) => !l.get(k).is_some_and(|x| vs.contains(x)),
            Requirement::Exists(k) => l.contains_key(k),
            Requirement::NotExists(k) => !l.contains_key(k),
        }
    }
}

/// Kubernetes label selector syntax: `a=b`, `a==b`, `a!=b`, `a in (x,y)`,
/// `a notin (x)`, `a`, `!a`, joined by commas.
fn parse_selector(s: &str) -> Result<Vec<Requirement>, String> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0i32, 0usize);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    let mut out = Vec::new();
    for p in parts.into_iter().map(str::trim).filter(|p| !p.is_empty()) {
        let set = |rest: &str| -> Result<Vec<String>, String> {
            let inner = rest
                .trim()
                .strip_prefix('(')
                .and_then(|r| r.strip_suffix(')'))
                .ok_or_else(|| format!("expected (values) in \"{p}\""))?;
            Ok(inner.split(',').map(|v| v.trim().to_string()).collect())
        };
        let r = if let Some((k, v)) = p.split_once("!=") {
            Requirement::NotEq(k.trim().into(), v.trim().into())
        } else if let Some((k, v)) = p.split_once("==").or_else(|| p.split_once('=')) {
            Requirement::Eq(k.trim().into(), v.trim().into())
        } else if let Some((k, rest)) = p.split_once(" notin ") {
            Requirement::NotIn(k.trim().into(), set(rest)?)
        } else if let Some((k, rest)) = p.split_once(" in ") {
            Requirement::In(k.trim().into(), set(rest)?)
        } else if let Some(k) = p.strip_prefix('!') {
            Requirement::NotExists(k.trim().into())
        } else if p.contains(char::is_whitespace) {
            return Err(format!("unexpected \"{p}\""));
        } else {
            Requirement::Exists(p.into())
        };
        out.push(r);
    }
    Ok(out)
}

/// Objects referenced by delete/patch/scale/restart/wait must exist in the
/// context (or the fixtures) or be written by an earlier apply/create step.
pub fn reference_problems(sc: &Scenario, suite: &Suite, known: &Known) -> Vec<String> {
    let target = &suite.spec.target.namespace;
    let t = templater(suite);
    let mut created: BTreeSet<(String, String, String)> = BTreeSet::new();
    let mut out = Vec::new();
    for (i, step) in sc.steps.iter().enumerate() {
        let at = format!("steps[{i}].{}", step.action.kind());
        let ns = step.action.namespace().unwrap_or(target).to_string();
        let named: Option<(&str, &str)> = match &step.action {
            StepAction::Delete(d) if d.file.is_none() => d.kind.as_deref().zip(d.name.as_deref()),
            StepAction::Patch(p) => Some((&p.kind, &p.name)),
            StepAction::Scale(s) => Some((&s.kind, &s.name)),
            StepAction::Restart(r) => Some((&r.kind, &r.name)),
            StepAction::Wait(w) => w.name.as_deref().map(|n| (w.kind.as_str(), n)),
            _ => None,
        };
        if let Some((kind, name)) = named {
            let key = (kind.to_string(), ns.clone(), name.to_string());
            if !name.contains("{{") && !known.contains(kind, &ns, name) && !created.contains(&key) {
                out.push(format!(
                    "{at}: {kind} {ns}/{name} is not in the context and no earlier step creates it"
                ));
            }
        }
        if let StepAction::Apply(a) | StepAction::Create(a) = &step.action {
            if let Ok(objs) = manifest_objects(a, suite, &t) {
                created.extend(objs.iter().map(|o| object_key(o, &ns)));
            }
        }
    }
    out
}

/// Every check for one proposed scenario (real names: restored already).
pub fn check_candidate(v: &Value, suite: &Suite, known: &Known) -> Result<Scenario, Vec<String>> {
    let schema = schema_problems(v);
    if !schema.is_empty() {
        return Err(schema);
    }
    let sc = parse_scenario_json(v).map_err(|e| vec![format!("shape: {e}")])?;
    let mut problems = problems_with(&sc, suite, Some(known));
    problems.extend(reference_problems(&sc, suite, known));
    problems.extend(super::references::assertion_problems(&sc, suite, known));
    if problems.is_empty() {
        Ok(sc)
    } else {
        Err(problems)
    }
}

fn candidate_name(v: &Value, i: usize) -> String {
    v.get("name")
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
        .map(str::to_string)
        .unwrap_or_else(|| format!("scenario #{}", i + 1))
}

/// What the execution check says about one candidate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Every step ran and every assertion held.
    Passed,
    /// An assertion evaluated and failed: maybe the weakness the scenario
    /// exposes, for the reviewer to judge.
    Failed(String),
    /// A step errored or an assertion could not be evaluated: a defect of
    /// the scenario, sent back for repair.
    Broken(Vec<String>),
    /// Not checked (why).
    NotRun(String),
}

/// Runs candidates for real somewhere safe (a sandbox) and judges them. It
/// lives outside src/ai (the AI proposes, never executes); generation only
/// receives verdicts, one per candidate, in order.
pub trait Verifier {
    fn verify<'a>(
        &'a self,
        candidates: &'a [Scenario],
    ) -> Pin<Box<dyn Future<Output = Vec<Verdict>> + 'a>>;
}

/// Whether the identity that will run the candidates may do all they need
/// (SelfSubjectAccessReview, as the run's permission preflight). Lives with
/// the cluster client outside src/ai; generation only receives, per
/// candidate in order, the reasons it cannot run (empty: it can).
pub trait PermissionCheck {
    fn denied<'a>(
        &'a self,
        candidates: &'a [Scenario],
    ) -> Pin<Box<dyn Future<Output = Vec<Vec<String>>> + 'a>>;
}

/// How one generation runs besides the suite: the permission and execution
/// checks and where progress lines go.
pub struct GenerateOptions<'a> {
    /// A candidate the running identity cannot execute is rejected and sent
    /// back for repair, never locked.
    pub permissions: Option<&'a dyn PermissionCheck>,
    pub verifier: Option<&'a dyn Verifier>,
    /// `--verify=strict`: a failing sandbox verdict rejects the scenario.
    pub strict: bool,
    pub log: &'a mut dyn FnMut(String),
}

/// The shape a repair asks for, in words a model follows.
const ANSWER_SHAPE: &str = r#"{"scenarios": [{"name": "...", "description": "...", "steps": [{"<one step kind>": {...}}], "assertions": [{"<one assertion kind>": {...}}], "metrics": ["..."], "remediation": ["..."]}]}"#;

/// Same steps and assertions (names and descriptions aside).
fn fingerprint(sc: &Scenario) -> String {
    let v = serde_json::json!({
        "steps": serde_json::to_value(&sc.steps).unwrap_or(Value::Null),
        "assertions": serde_json::to_value(&sc.assertions).unwrap_or(Value::Null),
    });
    super::lockfile::canonical_json(&v)
}

/// One accepted candidate and how it got there.
struct Accepted {
    scenario: Scenario,
    repairs: u32,
    verdict: String,
}

/// Asks the model, salvages, checks, verifies, repairs. Every request is an
/// attempt (timeouts included) and counts against `ai.maxRepairs`; every
/// rejected answer or scenario is recorded with its attempt and reasons.
pub async fn generate(
    backend: &ProviderBackend,
    suite: &Suite,
    prompt: &Prompt,
    known: &Known,
    opts: GenerateOptions<'_>,
) -> Result<Generation, GenerateError> {
    let Some(ai) = &suite.spec.ai else {
        return Ok(Generation::default());
    };
    let GenerateOptions {
        permissions,
        verifier,
        strict,
        log,
    } = opts;
    let anon = |s: &str| match &prompt.anonymizer {
        Some(a) => a.anonymize_text(s),
        None => s.to_string(),
    };
    let count = ai.count.max(1) as usize;
    let mut messages = vec![Message {
        role: Role::User,
        content: prompt.user.clone(),
    }];
    let mut gen = Generation::default();
    let mut accepted: Vec<Accepted> = Vec::new();
    let mut rejected: Vec<Rejected> = Vec::new();
    let mut seen: BTreeMap<String, String> = suite
        .spec
        .scenarios
        .iter()
        .map(|s| (fingerprint(s), s.name.clone()))
        .collect();
    let mut ask = count;
    let mut last_timeout: Option<AiError> = None;
    let mut answered = false;
    let attempts = ai.max_repairs + 1;
    for attempt in 1..=attempts {
        let want = count - accepted.len();
        let req = ChatRequest {
            system: prompt.system.clone(),
            messages: messages.clone(),
            schema: super::prompt::response_schema_range(ask.min(want).max(1) as u32, want as u32),
            schema_name: prompt.schema_name.clone(),
        };
        let whole = |reasons: Vec<String>| Rejected {
            name: "(whole answer)".into(),
            attempt,
            reasons,
        };
        // (value, raw text) of a readable answer, else the repair text.
        let (answer, raw) = match backend.chat(&req).await {
            Ok(resp) => {
                answered = true;
                gen.usage.input_tokens += resp.usage.input_tokens;
                gen.usage.output_tokens += resp.usage.output_tokens;
                gen.usage.requests += resp.attempts.max(1);
                let read = super::answer::normalize(resp.value.clone())
                    .map(|v| (v, super::answer::Salvage::Exact))
                    .or_else(|| super::answer::salvage(&resp.raw));
                match read {
                    Some((v, how)) => {
                        if how != super::answer::Salvage::Exact {
                            log(format!("attempt {attempt}: answer read {}", how.describe()));
                        }
                        (v, resp.raw)
                    }
                    None => {
                        let why =
                            "the answer is a JSON object without a \"scenarios\" list".to_string();
                        log(format!("attempt {attempt}: {why}"));
                        rejected.push(whole(vec![why.clone()]));
                        push_repair(&mut messages, Some(resp.raw), unreadable_text(&why, want));
                        ask = want;
                        continue;
                    }
                }
            }
            Err(AiError::NotJson {
                message,
                raw,
                usage,
            }) => {
                answered = true;
                gen.usage.input_tokens += usage.input_tokens;
                gen.usage.output_tokens += usage.output_tokens;
                gen.usage.requests += 1;
                match super::answer::salvage(&raw) {
                    Some((v, how)) => {
                        log(format!("attempt {attempt}: answer read {}", how.describe()));
                        (v, raw)
                    }
                    None => {
                        let why = format!("not JSON: {}", shorten(&message, 200));
                        log(format!("attempt {attempt}: the answer is {why}"));
                        rejected.push(whole(vec![format!("the answer is {why}")]));
                        push_repair(&mut messages, Some(raw), unreadable_text(&why, want));
                        ask = want;
                        continue;
                    }
                }
            }
            Err(AiError::Truncated { reason, usage }) => {
                answered = true;
                gen.usage.input_tokens += usage.input_tokens;
                gen.usage.output_tokens += usage.output_tokens;
                gen.usage.requests += 1;
                let why = format!("the answer was cut off ({reason})");
                log(format!("attempt {attempt}: {why}"));
                rejected.push(whole(vec![why.clone()]));
                ask = want.div_ceil(2);
                push_repair(
                    &mut messages,
                    None,
                    format!(
                        "Your previous answer was cut off ({reason}) before it ended. Answer again with {{\"scenarios\": [...]}} holding {ask} SHORTER scenario(s): two or three steps, one or two assertions, a one-sentence description. No prose."
                    ),
                );
                continue;
            }
            Err(AiError::Empty) => {
                answered = true;
                gen.usage.requests += 1;
                let why = "the answer was empty".to_string();
                log(format!("attempt {attempt}: {why}"));
                rejected.push(whole(vec![why.clone()]));
                push_repair(&mut messages, None, unreadable_text(&why, want));
                ask = want;
                continue;
            }
            Err(e @ AiError::Timeout { .. }) => {
                gen.usage.requests += 1;
                let why = format!("{e} (ai.timeout); the attempt counts against ai.maxRepairs");
                log(format!("attempt {attempt} of {attempts}: {why}"));
                rejected.push(whole(vec![e.to_string()]));
                last_timeout = Some(e);
                // The same request again: nothing was answered to repair.
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let answer = match &prompt.anonymizer {
            Some(a) => a.restore_value(&answer),
            None => answer,
        };
        let list = answer["scenarios"].as_array().cloned().unwrap_or_default();
        if attempt == 1 {
            gen.proposed_first = list.len();
        }
        let mut pending: Vec<Rejected> = Vec::new();
        let mut fresh: Vec<Scenario> = Vec::new();
        if list.len() < want {
            rejected.push(whole(vec![format!(
                "the answer held {} scenario(s); {want} were asked for",
                list.len()
            )]));
        }
        for (i, cand) in list.iter().enumerate() {
            let name = candidate_name(cand, i);
            match check_candidate(cand, suite, known) {
                Ok(sc) => {
                    let fp = fingerprint(&sc);
                    if let Some(other) = seen.get(&fp) {
                        pending.push(Rejected {
                            name,
                            attempt,
                            reasons: vec![format!(
                                "duplicate of \"{other}\" (same steps and assertions); dropped"
                            )],
                        });
                    } else if fresh.len() < want {
                        seen.insert(fp, sc.name.clone());
                        fresh.push(sc);
                    } // more than asked for: ignored
                }
                Err(reasons) => pending.push(Rejected {
                    name,
                    attempt,
                    reasons,
                }),
            }
        }
        if let Some(p) = permissions.filter(|_| !fresh.is_empty()) {
            let denials = p.denied(&fresh).await;
            let mut allowed = Vec::new();
            for (i, sc) in fresh.into_iter().enumerate() {
                match denials.get(i).filter(|d| !d.is_empty()) {
                    Some(reasons) => {
                        // A corrected version may come back with the same steps elsewhere.
                        seen.retain(|_, n| n != &sc.name);
                        pending.push(Rejected {
                            name: sc.name.clone(),
                            attempt,
                            reasons: reasons.clone(),
                        });
                    }
                    None => allowed.push(sc),
                }
            }
            fresh = allowed;
        }
        let verdicts = match verifier {
            Some(v) if !fresh.is_empty() => {
                log(format!(
                    "attempt {attempt}: running {} candidate(s) on a sandbox",
                    fresh.len()
                ));
                v.verify(&fresh).await
            }
            _ => Vec::new(),
        };
        for (i, sc) in fresh.into_iter().enumerate() {
            let verdict = match verifier {
                None => Verdict::NotRun("--no-verify".into()),
                Some(_) => verdicts
                    .get(i)
                    .cloned()
                    .unwrap_or_else(|| Verdict::NotRun("no verdict".into())),
            };
            let keep = |verdict: String, accepted: &mut Vec<Accepted>| {
                accepted.push(Accepted {
                    scenario: sc.clone(),
                    repairs: attempt - 1,
                    verdict,
                })
            };
            match verdict {
                Verdict::Passed => keep("passed".into(), &mut accepted),
                Verdict::NotRun(why) => keep(format!("not run: {why}"), &mut accepted),
                Verdict::Failed(why) if !strict => {
                    log(format!(
                        "\"{}\": an assertion fails on the sandbox ({why}); locked with sandboxVerdict failed for review",
                        sc.name
                    ));
                    keep(format!("failed: {why}"), &mut accepted)
                }
                Verdict::Failed(why) => pending.push(Rejected {
                    name: sc.name.clone(),
                    attempt,
                    reasons: vec![format!(
                        "sandbox: an assertion fails ({why}); rejected under --verify=strict"
                    )],
                }),
                Verdict::Broken(errors) => {
                    seen.retain(|_, n| n != &sc.name);
                    pending.push(Rejected {
                        name: sc.name.clone(),
                        attempt,
                        reasons: errors
                            .into_iter()
                            .map(|e| format!("sandbox: {e}"))
                            .collect(),
                    })
                }
            }
        }
        if attempt == 1 {
            gen.valid_first = accepted.len();
        }
        rejected.extend(pending.iter().cloned());
        let want = count - accepted.len();
        if want == 0 || attempt == attempts {
            break;
        }
        let mut text = if list.is_empty() {
            format!("Your answer held no scenarios; {want} are needed.\n")
        } else {
            format!(
                "{} scenario(s) are accepted so far; {want} more are needed.\n",
                accepted.len()
            )
        };
        if !pending.is_empty() {
            text.push_str("These were rejected:\n");
        }
        for r in &pending {
            text.push_str(&format!("- \"{}\":\n", anon(&r.name)));
            for reason in &r.reasons {
                text.push_str(&format!("  - {}\n", anon(reason)));
            }
        }
        text.push_str(&format!(
            "Answer again with {{\"scenarios\": [...]}} holding exactly {want} new or corrected scenario(s) (not the accepted ones), following the same format and rules."
        ));
        push_repair(&mut messages, Some(raw), text);
        ask = want;
    }
    if !answered {
        if let Some(e) = last_timeout {
            return Err(e.into());
        }
    }
    let names: Vec<Scenario> = accepted.iter().map(|a| a.scenario.clone()).collect();
    gen.scenarios = name_scenarios(names, suite);
    gen.checks = gen
        .scenarios
        .iter()
        .zip(&accepted)
        .map(|(sc, a)| ScenarioCheck {
            name: sc.name.clone(),
            repairs: a.repairs,
            sandbox_verdict: a.verdict.clone(),
        })
        .collect();
    gen.rejected = rejected;
    Ok(gen)
}

/// The repair text for an answer that could not be read at all.
fn unreadable_text(why: &str, want: usize) -> String {
    format!(
        "Your answer could not be read: {why}.\nAnswer ONLY with one JSON object of this shape, holding exactly {want} scenario(s), with no prose and no Markdown:\n{ANSWER_SHAPE}"
    )
}

fn push_repair(messages: &mut Vec<Message>, previous: Option<String>, text: String) {
    if let Some(raw) = previous.filter(|r| !r.trim().is_empty()) {
        messages.push(Message {
            role: Role::Assistant,
            content: raw,
        });
    }
    messages.push(Message {
        role: Role::User,
        content: text,
    });
}

/// `ai: ` prefix, unique against the suite's own scenarios and each other.
pub fn name_scenarios(scenarios: Vec<Scenario>, suite: &Suite) -> Vec<Scenario> {
    let mut taken: BTreeSet<String> = suite
        .spec
        .scenarios
        .iter()
        .map(|s| s.name.clone())
        .collect();
    scenarios
        .into_iter()
        .map(|mut sc| {
            let base = if sc.name.starts_with(NAME_PREFIX) {
                sc.name.clone()
            } else {
                format!("{NAME_PREFIX}{}", sc.name.trim())
            };
            let mut name = base.clone();
            let mut n = 2;
            while taken.contains(&name) {
                name = format!("{base} ({n})");
                n += 1;
            }
            taken.insert(name.clone());
            sc.name = name;
            sc
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::ContextItem;
    use serde_json::json;

    fn suite() -> Suite {
        let mut s: Suite = serde_json::from_value(json!({
            "apiVersion": "heatcheck.dev/v1alpha1", "kind": "Suite", "metadata": {"name": "s"},
            "spec": {"target": {"namespace": "shop"},
                "scenarios": [{"name": "ai: taken", "steps": [{"sleep": "1s"}]}],
                "ai": {"provider": "openai", "model": "m", "prompt": "p", "count": 2, "maxRepairs": 1}}
        }))
        .unwrap();
        s.spec.target.allow_namespaces = vec!["shop".into()];
        s
    }

    fn known() -> Known {
        let obj = |kind: &str, name: &str, app: &str| {
            let mut value = json!({"kind": kind, "metadata": {"name": name, "namespace": "shop", "labels": {"app": app}}});
            if kind == "Deployment" {
                value["spec"] =
                    json!({"template": {"metadata": {"labels": {"app": app, "tier": "web"}}}});
            }
            ContextItem {
                group: 0,
                kind: kind.into(),
                namespace: Some("shop".into()),
                name: name.into(),
                value,
            }
        };
        Known::from_context(
            &Gathered {
                items: vec![
                    obj("HTTPRoute", "my-route", "r"),
                    obj("Deployment", "web", "web"),
                    obj("Deployment", "api", "api"),
                ],
                declared: 0,
                ..Default::default()
            },
            &suite(),
        )
    }

    fn good(name: &str) -> Value {
        json!({"name": name, "description": "d",
            "steps": [{"delete": {"kind": "HTTPRoute", "name": "my-route"}}],
            "assertions": [{"absent": {"kind": "HTTPRoute", "name": "my-route"}}],
            "metrics": ["m"], "remediation": ["r"]})
    }

    fn problems(v: Value) -> Vec<String> {
        check_candidate(&v, &suite(), &known()).unwrap_err()
    }

    #[test]
    fn a_good_scenario_passes() {
        assert!(check_candidate(&good("g"), &suite(), &known()).is_ok());
    }

    #[test]
    fn allowed_steps_limit_what_a_candidate_may_change() {
        let mut s = suite();
        s.spec.ai.as_mut().unwrap().allowed_steps = serde_json::from_value(json!([
            {"kind": "HTTPRoute", "steps": ["delete"]},
            {"kind": "Deployment", "steps": ["scale"]}
        ]))
        .unwrap();
        assert!(check_candidate(&good("g"), &s, &known()).is_ok());
        let mut v = good("restart");
        v["steps"] = json!([
            {"restart": {"kind": "Deployment", "name": "web"}},
            {"scale": {"name": "web", "replicas": 1}},
            {"wait": {"kind": "Deployment", "name": "web", "available": true}}
        ]);
        let p = check_candidate(&v, &s, &known()).unwrap_err();
        assert_eq!(
            p,
            vec!["steps[0].restart: restart Deployment is not in ai.allowedSteps (delete HTTPRoute, scale Deployment); generated scenarios may only make those changes"],
        );
    }

    #[test]
    fn schema_errors_come_first() {
        let p = problems(json!({"name": "x", "steps": [{"slep": "1s"}]}));
        assert!(p.iter().all(|p| p.starts_with("schema: ")), "{p:?}");
        assert!(
            p.iter()
                .any(|p| p.starts_with("schema: steps[0]: a step needs exactly one of")),
            "{p:?}"
        );
    }

    #[test]
    fn policy_rejections() {
        let step = |s: Value| {
            let mut g = good("x");
            g["steps"] = json!([s]);
            problems(g).join("\n")
        };
        let p = step(
            json!({"delete": {"kind": "Deployment", "name": "coredns", "namespace": "kube-system"}}),
        );
        assert!(
            p.contains("namespace kube-system is a system namespace"),
            "{p}"
        );
        let p = step(json!({"delete": {"kind": "Namespace", "name": "shop"}}));
        assert!(p.contains("Namespace is cluster-scoped"), "{p}");
        let p = step(
            json!({"apply": {"manifest": "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: x}\n"}}),
        );
        assert!(p.contains("ClusterRole is cluster-scoped"), "{p}");
        let p = step(
            json!({"apply": {"manifest": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, namespace: prod}\n"}}),
        );
        assert!(
            p.contains("namespace prod is outside target.allowNamespaces"),
            "{p}"
        );
        let p =
            step(json!({"fault": {"type": "podKill", "selector": "tier=web", "duration": "10s"}}));
        assert!(p.contains("matches every one of the 2 workloads"), "{p}");
        let p =
            step(json!({"fault": {"type": "podKill", "selector": "app!=db", "duration": "10s"}}));
        assert!(p.contains("no positive requirement"), "{p}");
        let p = step(json!({"delete": {"kind": "Deployment", "selector": "!x"}}));
        assert!(p.contains("no positive requirement"), "{p}");
        // A selector on one workload is fine.
        let mut g = good("x");
        g["steps"] =
            json!([{"fault": {"type": "podKill", "selector": "app=web", "duration": "10s"}}]);
        assert!(check_candidate(&g, &suite(), &known()).is_ok());
    }

    #[test]
    fn references_must_exist_or_be_created_earlier() {
        let mut g = good("x");
        g["steps"] = json!([
            {"scale": {"name": "ghost", "replicas": 0}},
            {"apply": {"manifest": "apiVersion: v1\nkind: Service\nmetadata: {name: new-svc}\n"}},
            {"patch": {"kind": "Service", "name": "new-svc", "patch": {"metadata": {"labels": {"a": "b"}}}}},
            {"wait": {"kind": "Deployment", "name": "web", "available": true}}
        ]);
        let p = problems(g);
        assert_eq!(p, ["steps[0].scale: Deployment shop/ghost is not in the context and no earlier step creates it"]);
        let mut g = good("x");
        g["assertions"] = json!([]);
        assert!(problems(g)
            .iter()
            .any(|p| p.contains("assertions: needs at least 1 item(s)")));
    }

    #[test]
    fn selectors_parse() {
        let r = parse_selector("app=web, tier in (a, b),!canary,env notin (prod),x").unwrap();
        assert_eq!(r.len(), 5);
        let l: BTreeMap<String, String> = [("app", "web"), ("tier", "a"), ("x", "1")]
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        assert!(r.iter().all(|r| r.matches(&l)));
        assert!(parse_selector("app in web").is_err());
    }

    // The repair loop and rejected-scenario reporting are tested over the
    // provider's real wire format in tests/it/ai_generate.rs.
}
