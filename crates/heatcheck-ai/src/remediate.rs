//! The model's half of `heatcheck remediate --strategy ai|both`: given a
//! finding (its evidence, its scenario, the objects it names), the
//! namespace's objects (redacted, anonymized when the suite asks) and the
//! policy in words, the model answers with changes to those objects in a
//! small schema (set fields, add an object, remove one). Its answer is
//! untrusted: every fix is checked here (shape, objects that exist, fields
//! a fix may set, the policy) and refused ones go back to the model once
//! per `ai.maxRepairs`. The model proposes; remediate verifies each fix on
//! fresh twins and never applies one to a cluster.

use serde_json::{json, Value};

use super::anonymize::Anonymizer;
use super::context::ContextItem;
use super::generate::{GenerateError, ProviderBackend};
use super::lockfile::{LockUsage, Rejected};
use super::provider::{AiError, ChatRequest, Message, Role};
use super::redact::{redact_object, redact_text, MASK};
use heatcheck_format::Suite;
use heatcheck_guard::EffectivePolicy;

/// Most fixes asked for per finding, and changes per fix.
const MAX_FIXES: usize = 3;
const MAX_CHANGES: usize = 8;
const MAX_FIELDS: usize = 16;
/// A value bigger than this is not a fix one reviews.
const MAX_VALUE_BYTES: usize = 8 * 1024;

/// What the model is asked to fix.
pub struct FixAsk<'a> {
    pub id: &'a str,
    pub title: &'a str,
    /// The weakness class, as explore names it.
    pub class: &'a str,
    pub evidence: &'a [String],
    /// The finding's (minimized) scenario, as in suite files.
    pub scenario: &'a Value,
    /// The remediation in words explore suggested.
    pub remediation: &'a [String],
    /// `Kind/ns/name` of the objects the finding names.
    pub named: &'a [String],
    /// The namespace's objects as the twins are seeded (what was read plus
    /// what the fixtures create). Secrets are never among them.
    pub objects: &'a [Value],
    /// Fixes already tried on twins and why they were rejected.
    pub tried: &'a [String],
}

/// One change of a model's fix, checked.
#[derive(Clone, Debug, PartialEq)]
pub enum FixChange {
    /// Fields set on an existing object: (JSON pointer, value).
    Set {
        object: String,
        fields: Vec<(String, Value)>,
    },
    /// A new object, written beside an existing one.
    Add {
        beside: String,
        manifest: Value,
    },
    Remove {
        object: String,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct ModelFix {
    pub title: String,
    pub changes: Vec<FixChange>,
}

/// What the model answered for one finding.
#[derive(Clone, Debug, Default)]
pub struct FixGeneration {
    pub fixes: Vec<ModelFix>,
    /// Fixes (or whole answers) refused before any twin ran, and why.
    pub refused: Vec<Rejected>,
    pub usage: LockUsage,
}

/// `Kind/ns/name` of an object.
fn key_of(o: &Value, default_ns: &str) -> String {
    format!(
        "{}/{}/{}",
        o["kind"].as_str().unwrap_or_default(),
        o.pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or(default_ns),
        o.pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
    )
}

/// The JSON Schema of the answer (structured output where the provider has it).
pub(crate) fn fix_schema() -> Value {
    json!({
        "type": "object",
        "required": ["fixes"],
        "properties": {
            "fixes": {
                "type": "array",
                "maxItems": MAX_FIXES,
                "items": {
                    "type": "object",
                    "required": ["title", "changes"],
                    "properties": {
                        "title": {"type": "string", "description": "what the fix does, in one line"},
                        "changes": {
                            "type": "array",
                            "minItems": 1,
                            "maxItems": MAX_CHANGES,
                            "items": {
                                "type": "object",
                                "required": ["op"],
                                "properties": {
                                    "op": {"enum": ["set", "add", "remove"]},
                                    "object": {"type": "string", "description": "Kind/namespace/name of an existing object (set, remove)"},
                                    "fields": {
                                        "type": "array",
                                        "description": "set: JSON pointers into the object and their new values",
                                        "items": {
                                            "type": "object",
                                            "required": ["path", "value"],
                                            "properties": {"path": {"type": "string"}, "value": {}}
                                        }
                                    },
                                    "manifest": {"type": "object", "description": "add: the whole new object"},
                                    "beside": {"type": "string", "description": "add: Kind/namespace/name of the existing object to write it next to"}
                                }
                            }
                        }
                    }
                }
            }
        }
    })
}

/// Context items of the objects, for the anonymizer.
fn items(objects: &[Value]) -> Vec<ContextItem> {
    objects
        .iter()
        .map(|o| ContextItem {
            group: 0,
            kind: o["kind"].as_str().unwrap_or_default().to_string(),
            namespace: o
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .map(str::to_string),
            name: o
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            value: o.clone(),
        })
        .collect()
}

/// An object as the model sees it: redacted, without what the server writes.
fn shown(o: &Value) -> Value {
    let mut o = o.clone();
    if let Some(m) = o.as_object_mut() {
        m.remove("status");
    }
    if let Some(meta) = o.get_mut("metadata").and_then(Value::as_object_mut) {
        for k in [
            "managedFields",
            "resourceVersion",
            "uid",
            "generation",
            "selfLink",
        ] {
            meta.remove(k);
        }
        if let Some(a) = meta.get_mut("annotations").and_then(Value::as_object_mut) {
            a.remove("kubectl.kubernetes.io/last-applied-configuration");
        }
    }
    redact_object(&mut o);
    o
}

/// The request's system and user text (anonymized when the suite asks),
/// and the anonymizer to read the answer back with.
pub(crate) fn fix_prompt(suite: &Suite, ask: &FixAsk) -> (String, String, Option<Anonymizer>) {
    let objects: Vec<Value> = ask
        .objects
        .iter()
        .filter(|o| o["kind"] != "Secret")
        .map(shown)
        .collect();
    let anonymizer = suite
        .spec
        .ai
        .as_ref()
        .is_some_and(|a| a.anonymize)
        .then(|| Anonymizer::build(&items(&objects), &suite.spec.target.allow_namespaces));
    let anon = |s: &str| match &anonymizer {
        Some(a) => a.anonymize_text(s),
        None => s.to_string(),
    };
    let system = "You are a Kubernetes reliability engineer. You fix weaknesses that chaos experiments found by changing the user's own manifests, the smallest change that makes the system survive the experiment. You answer only with JSON.".to_string();
    let ns = &suite.spec.target.namespace;
    let mut u = format!("## A weakness found on a disposable copy of namespace {ns}\n");
    u.push_str(&format!(
        "Finding {}: {} (weakness class {})\n",
        ask.id, ask.title, ask.class
    ));
    u.push_str("Evidence (what failed on the copy):\n");
    for e in ask.evidence {
        u.push_str(&format!("- {e}\n"));
    }
    u.push_str(&format!(
        "The experiment (a heatcheck scenario; it must pass after your fix, unchanged):\n{}\n",
        serde_json::to_string_pretty(ask.scenario).unwrap_or_default()
    ));
    if !ask.remediation.is_empty() {
        u.push_str("Suggested in words:\n");
        for r in ask.remediation {
            u.push_str(&format!("- {r}\n"));
        }
    }
    u.push_str(&format!(
        "Objects the finding names: {}\n",
        ask.named.join(", ")
    ));
    u.push_str("## The namespace's objects (redacted; the only objects a fix may change)\n");
    for o in &objects {
        u.push_str(&format!(
            "---\n{}\n",
            serde_json::to_string(o).unwrap_or_default()
        ));
    }
    u.push_str("## Policy (a change outside it is refused and never runs)\n");
    for line in super::explore::policy_in_words(suite) {
        // Pod shares and durations limit experiments, not fixes.
        if line.starts_with("maxPodsAffected") || line.starts_with("maxDuration") {
            continue;
        }
        u.push_str(&format!("- {line}\n"));
    }
    u.push_str("- Secrets are never changed or created by a fix.\n");
    if !ask.tried.is_empty() {
        u.push_str("## Already tried on copies, and rejected\n");
        for t in ask.tried {
            u.push_str(&format!("- {t}\n"));
        }
    }
    u.push_str(&format!(
        "## Answer\n\
Each fix is verified on fresh copies: the experiment above must pass with it, and everything that passed before must still pass. \
Prefer the fix that touches the fewest fields. Do not change the experiment, and do not propose what the policy refuses.\n\
Answer ONLY with one JSON object, no prose, no Markdown, holding 1 to {MAX_FIXES} fixes:\n\
{{\"fixes\": [{{\"title\": \"one line\", \"changes\": [\n\
  {{\"op\": \"set\", \"object\": \"Kind/namespace/name\", \"fields\": [{{\"path\": \"/spec/replicas\", \"value\": 3}}]}},\n\
  {{\"op\": \"add\", \"beside\": \"Kind/namespace/name\", \"manifest\": {{\"apiVersion\": \"...\", \"kind\": \"...\", \"metadata\": {{\"name\": \"...\", \"namespace\": \"...\"}}, \"spec\": {{}}}}}},\n\
  {{\"op\": \"remove\", \"object\": \"Kind/namespace/name\"}}\n\
]}}]}}\n\
`path` is a JSON pointer (RFC 6901) into the object; missing parents are created; a list item is addressed by its index.\n"
    ));
    (
        redact_text(&anon(&system)).into_owned(),
        redact_text(&anon(&u)).into_owned(),
        anonymizer,
    )
}

/// Fields no fix sets: identity, and what the server or controllers write.
fn forbidden_path(p: &str) -> Option<&'static str> {
    let fixed = [
        ("/kind", "the kind of an object is not a fix"),
        ("/apiVersion", "the apiVersion of an object is not a fix"),
        ("/metadata/name", "renaming is not a fix (remove and add)"),
        (
            "/metadata/namespace",
            "moving an object is not a fix (remove and add)",
        ),
        ("/metadata/uid", "the server writes uid"),
        (
            "/metadata/resourceVersion",
            "the server writes resourceVersion",
        ),
        (
            "/metadata/creationTimestamp",
            "the server writes creationTimestamp",
        ),
        ("/metadata/managedFields", "the server writes managedFields"),
        ("/metadata/generation", "the server writes generation"),
        ("/status", "controllers write status, not manifests"),
    ];
    fixed
        .iter()
        .find(|(f, _)| p == *f || p.starts_with(&format!("{f}/")))
        .map(|(_, why)| *why)
}

fn holds_mask(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains(MASK),
        Value::Array(a) => a.iter().any(holds_mask),
        Value::Object(m) => m.values().any(holds_mask),
        _ => false,
    }
}

/// The policy's word on changing an object of `kind` in `ns` with `verb`.
fn policy_refusal(policy: &EffectivePolicy, kind: &str, ns: &str, verb: &str) -> Option<String> {
    if kind.eq_ignore_ascii_case("Secret") {
        return Some("a fix never changes or creates a Secret".into());
    }
    if let Err(e) = policy.check_namespace(ns) {
        return Some(e);
    }
    if let Some(e) = policy.kind_refusal(kind, None) {
        return Some(e);
    }
    policy.verb_refusal(verb, &[verb])
}

/// One fix of the answer checked against the objects and the policy.
pub(crate) fn check_fix(
    v: &Value,
    suite: &Suite,
    objects: &[Value],
    policy: &EffectivePolicy,
) -> Result<ModelFix, Vec<String>> {
    let ns = suite.spec.target.namespace.as_str();
    let mut problems = Vec::new();
    let title = match v["title"].as_str().map(str::trim) {
        Some(t) if !t.is_empty() => t.chars().take(200).collect::<String>(),
        _ => {
            problems.push("title: a one-line string is required".to_string());
            String::new()
        }
    };
    let keys: Vec<String> = objects.iter().map(|o| key_of(o, ns)).collect();
    let existing = |k: &str, at: &str, problems: &mut Vec<String>| -> bool {
        if keys.iter().any(|x| x == k) {
            return true;
        }
        problems.push(format!(
            "{at}: {k} is not among the namespace's objects (a fix changes only those; write Kind/namespace/name)"
        ));
        false
    };
    let list = v["changes"].as_array().cloned().unwrap_or_default();
    if list.is_empty() {
        problems.push("changes: at least one change is required".into());
    }
    if list.len() > MAX_CHANGES {
        problems.push(format!(
            "changes: {} changes; a fix has at most {MAX_CHANGES}",
            list.len()
        ));
    }
    let mut changes = Vec::new();
    for (i, c) in list.iter().enumerate().take(MAX_CHANGES) {
        let at = format!("changes[{i}]");
        if serde_json::to_string(c).map_or(0, |s| s.len()) > MAX_VALUE_BYTES {
            problems.push(format!("{at}: over {MAX_VALUE_BYTES} bytes"));
            continue;
        }
        if holds_mask(c) {
            problems.push(format!(
                "{at}: holds the redaction mask {MASK:?}; redacted values are never written back"
            ));
            continue;
        }
        match c["op"].as_str() {
            Some("set") => {
                let Some(object) = c["object"].as_str() else {
                    problems.push(format!("{at}.object: Kind/namespace/name is required"));
                    continue;
                };
                if !existing(object, &format!("{at}.object"), &mut problems) {
                    continue;
                }
                let mut parts = object.splitn(3, '/');
                let (kind, ons) = (
                    parts.next().unwrap_or_default(),
                    parts.next().unwrap_or_default(),
                );
                if let Some(why) = policy_refusal(policy, kind, ons, "patch") {
                    problems.push(format!("{at}: {object}: refused by policy: {why}"));
                    continue;
                }
                let fields = c["fields"].as_array().cloned().unwrap_or_default();
                if fields.is_empty() || fields.len() > MAX_FIELDS {
                    problems.push(format!(
                        "{at}.fields: 1 to {MAX_FIELDS} {{\"path\", \"value\"}} entries are required"
                    ));
                    continue;
                }
                let mut set = Vec::new();
                for (j, f) in fields.iter().enumerate() {
                    let path = f["path"].as_str().unwrap_or_default();
                    if !path.starts_with('/') || path.len() < 2 {
                        problems.push(format!(
                            "{at}.fields[{j}].path: {path:?} is not a JSON pointer such as \"/spec/replicas\""
                        ));
                    } else if let Some(why) = forbidden_path(path) {
                        problems.push(format!("{at}.fields[{j}].path: {path}: {why}"));
                    } else if f.get("value").is_none() {
                        problems.push(format!("{at}.fields[{j}].value is required"));
                    } else {
                        set.push((path.to_string(), f["value"].clone()));
                    }
                }
                if set.len() == fields.len() {
                    changes.push(FixChange::Set {
                        object: object.to_string(),
                        fields: set,
                    });
                }
            }
            Some("add") => {
                let m = &c["manifest"];
                let (Some(kind), Some(name)) = (
                    m["kind"].as_str(),
                    m.pointer("/metadata/name").and_then(Value::as_str),
                ) else {
                    problems.push(format!(
                        "{at}.manifest: an object with apiVersion, kind and metadata.name is required"
                    ));
                    continue;
                };
                if m["apiVersion"].as_str().is_none_or(str::is_empty) {
                    problems.push(format!("{at}.manifest.apiVersion is required"));
                    continue;
                }
                let mut manifest = m.clone();
                let mns = m
                    .pointer("/metadata/namespace")
                    .and_then(Value::as_str)
                    .unwrap_or(ns)
                    .to_string();
                manifest["metadata"]["namespace"] = Value::String(mns.clone());
                let key = format!("{kind}/{mns}/{name}");
                if keys.contains(&key) {
                    problems.push(format!(
                        "{at}: {key} exists already; change it with \"set\""
                    ));
                    continue;
                }
                if let Some(why) = policy_refusal(policy, kind, &mns, "create") {
                    problems.push(format!("{at}: {key}: refused by policy: {why}"));
                    continue;
                }
                if m.get("status").is_some() {
                    manifest.as_object_mut().map(|o| o.remove("status"));
                }
                let beside = match c["beside"].as_str() {
                    Some(b) => {
                        if !existing(b, &format!("{at}.beside"), &mut problems) {
                            continue;
                        }
                        b.to_string()
                    }
                    // Next to the first object of its namespace.
                    None => match keys.iter().find(|k| k.split('/').nth(1) == Some(&mns)) {
                        Some(k) => k.clone(),
                        None => {
                            problems.push(format!(
                                "{at}.beside: name the existing object to write {key} next to"
                            ));
                            continue;
                        }
                    },
                };
                changes.push(FixChange::Add { beside, manifest });
            }
            Some("remove") => {
                let Some(object) = c["object"].as_str() else {
                    problems.push(format!("{at}.object: Kind/namespace/name is required"));
                    continue;
                };
                if !existing(object, &format!("{at}.object"), &mut problems) {
                    continue;
                }
                let mut parts = object.splitn(3, '/');
                let (kind, ons) = (
                    parts.next().unwrap_or_default(),
                    parts.next().unwrap_or_default(),
                );
                if let Some(why) = policy_refusal(policy, kind, ons, "delete") {
                    problems.push(format!("{at}: {object}: refused by policy: {why}"));
                    continue;
                }
                changes.push(FixChange::Remove {
                    object: object.to_string(),
                });
            }
            other => problems.push(format!(
                "{at}.op: {} is not one of set, add, remove",
                other.map_or_else(|| "missing".to_string(), |o| format!("{o:?}"))
            )),
        }
    }
    if problems.is_empty() {
        Ok(ModelFix { title, changes })
    } else {
        Err(problems)
    }
}

/// The answer's list of fixes, when the text holds one.
fn read_answer(value: &Value, raw: &str) -> Option<Vec<Value>> {
    let from = |v: &Value| v.get("fixes").and_then(Value::as_array).cloned();
    if let Some(l) = from(value) {
        return Some(l);
    }
    // Prose or a fence around the object: the outermost braces.
    let (start, end) = (raw.find('{')?, raw.rfind('}')?);
    serde_json::from_str::<Value>(raw.get(start..=end)?)
        .ok()
        .as_ref()
        .and_then(from)
}

/// Asks the model for fixes of one finding; refused fixes go back to it
/// with the reasons, up to `ai.maxRepairs` times.
pub async fn propose_fixes(
    backend: &ProviderBackend,
    suite: &Suite,
    policy: &EffectivePolicy,
    ask: &FixAsk<'_>,
    log: &mut dyn FnMut(String),
) -> Result<FixGeneration, GenerateError> {
    let mut gen = FixGeneration::default();
    let Some(ai) = &suite.spec.ai else {
        return Ok(gen);
    };
    let (system, user, anonymizer) = fix_prompt(suite, ask);
    let anon = |s: &str| match &anonymizer {
        Some(a) => a.anonymize_text(s),
        None => s.to_string(),
    };
    let mut messages = vec![Message {
        role: Role::User,
        content: user,
    }];
    let attempts = ai.max_repairs + 1;
    for attempt in 1..=attempts {
        let req = ChatRequest {
            system: Some(system.clone()),
            messages: messages.clone(),
            schema: fix_schema(),
            schema_name: "fixes".into(),
        };
        let whole = |reasons: Vec<String>| Rejected {
            name: "(whole answer)".into(),
            attempt,
            reasons,
        };
        let (value, raw) = match backend.chat(&req).await {
            Ok(resp) => {
                gen.usage.input_tokens += resp.usage.input_tokens;
                gen.usage.output_tokens += resp.usage.output_tokens;
                gen.usage.requests += resp.attempts.max(1);
                (resp.value, resp.raw)
            }
            Err(AiError::NotJson { raw, usage, .. }) => {
                gen.usage.input_tokens += usage.input_tokens;
                gen.usage.output_tokens += usage.output_tokens;
                gen.usage.requests += 1;
                (Value::Null, raw)
            }
            Err(e @ (AiError::Truncated { .. } | AiError::Empty | AiError::Timeout { .. })) => {
                gen.usage.requests += 1;
                log(format!("attempt {attempt}: {e}"));
                gen.refused.push(whole(vec![e.to_string()]));
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let value = match &anonymizer {
            Some(a) => a.restore_value(&value),
            None => value,
        };
        let raw_back = match &anonymizer {
            Some(a) => a.restore_text(&raw),
            None => raw.clone(),
        };
        let Some(list) = read_answer(&value, &raw_back) else {
            let why = "the answer is not a JSON object with a \"fixes\" list".to_string();
            log(format!("attempt {attempt}: {why}"));
            gen.refused.push(whole(vec![why.clone()]));
            push(&mut messages, raw, format!("Your answer could not be read: {why}. Answer ONLY with {{\"fixes\": [...]}} as described, no prose."));
            continue;
        };
        let mut refused = Vec::new();
        for (i, v) in list.iter().enumerate().take(MAX_FIXES) {
            let name = v["title"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| format!("fix {}", i + 1));
            match check_fix(v, suite, ask.objects, policy) {
                Ok(fix) if gen.fixes.contains(&fix) => {}
                Ok(fix) => gen.fixes.push(fix),
                Err(reasons) => refused.push(Rejected {
                    name,
                    attempt,
                    reasons,
                }),
            }
        }
        gen.refused.extend(refused.iter().cloned());
        if refused.is_empty() || attempt == attempts {
            break;
        }
        let mut text = String::from("These fixes were refused before any copy ran:\n");
        for r in &refused {
            text.push_str(&format!("- \"{}\":\n", anon(&r.name)));
            for reason in &r.reasons {
                text.push_str(&format!("  - {}\n", anon(reason)));
            }
        }
        text.push_str("Answer again with {\"fixes\": [...]} holding corrected versions of the refused fixes only (an empty list when none can be corrected).");
        push(&mut messages, raw, text);
    }
    Ok(gen)
}

fn push(messages: &mut Vec<Message>, raw: String, text: String) {
    if !raw.trim().is_empty() {
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

#[cfg(test)]
mod tests {
    use super::*;
    use heatcheck_guard::PolicyOverrides;

    fn suite() -> Suite {
        serde_json::from_value(json!({
            "apiVersion": "heatcheck.dev/v1alpha1", "kind": "Suite", "metadata": {"name": "s"},
            "spec": {"target": {"namespace": "shop", "allowNamespaces": ["shop"]},
                "policy": {"deniedKinds": ["NetworkPolicy"]},
                "ai": {"provider": "openai", "model": "m", "prompt": "x"}}
        }))
        .unwrap()
    }

    fn objects() -> Vec<Value> {
        vec![
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "api", "namespace": "shop"},
                "spec": {"replicas": 1, "template": {"spec": {"containers": [{"name": "c", "env": [{"name": "API_TOKEN", "value": "hunter2-very-secret"}]}]}}},
                "status": {"readyReplicas": 1}}),
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds", "namespace": "shop"}, "data": {"k": "c2VjcmV0"}}),
        ]
    }

    fn policy(s: &Suite) -> EffectivePolicy {
        EffectivePolicy::build(s, &PolicyOverrides::default())
            .unwrap()
            .0
    }

    #[test]
    fn a_valid_fix_is_read_into_changes() {
        let s = suite();
        let fix = check_fix(
            &json!({"title": "two replicas", "changes": [
                {"op": "set", "object": "Deployment/shop/api", "fields": [{"path": "/spec/replicas", "value": 2}]},
                {"op": "add", "manifest": {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "api"}, "spec": {"minAvailable": 1}}}
            ]}),
            &s,
            &objects(),
            &policy(&s),
        )
        .unwrap();
        assert_eq!(fix.title, "two replicas");
        assert_eq!(
            fix.changes[0],
            FixChange::Set {
                object: "Deployment/shop/api".into(),
                fields: vec![("/spec/replicas".into(), json!(2))]
            }
        );
        let FixChange::Add { beside, manifest } = &fix.changes[1] else {
            panic!("{fix:?}")
        };
        assert_eq!(beside, "Deployment/shop/api");
        assert_eq!(manifest["metadata"]["namespace"], "shop");
    }

    #[test]
    fn an_untrusted_answer_is_refused_with_every_reason() {
        let s = suite();
        let p = policy(&s);
        let refused = |v: Value| check_fix(&v, &s, &objects(), &p).unwrap_err().join("\n");
        let r = refused(json!({"changes": [
            {"op": "explode", "object": "Deployment/shop/api"},
            {"op": "set", "object": "Deployment/shop/nope", "fields": [{"path": "/spec/replicas", "value": 2}]},
            {"op": "set", "object": "Deployment/shop/api", "fields": [{"path": "spec.replicas", "value": 2}]},
            {"op": "set", "object": "Deployment/shop/api", "fields": [{"path": "/metadata/name", "value": "x"}]},
            {"op": "set", "object": "Deployment/shop/api", "fields": [{"path": "/status/readyReplicas", "value": 3}]}
        ]}));
        for want in [
            "title: a one-line string is required",
            "changes[0].op: \"explode\" is not one of set, add, remove",
            "changes[1].object: Deployment/shop/nope is not among the namespace's objects",
            "changes[2].fields[0].path: \"spec.replicas\" is not a JSON pointer",
            "renaming is not a fix",
            "controllers write status",
        ] {
            assert!(r.contains(want), "missing {want:?} in:\n{r}");
        }
        // The policy: other namespaces, denied kinds, Secrets, deletes of what exists only.
        let r = refused(json!({"title": "t", "changes": [
            {"op": "add", "beside": "Deployment/shop/api", "manifest": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "coredns", "namespace": "kube-system"}}},
            {"op": "add", "manifest": {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "np"}}},
            {"op": "set", "object": "Secret/shop/creds", "fields": [{"path": "/data/k", "value": "eA=="}]},
            {"op": "set", "object": "Deployment/shop/api", "fields": [{"path": "/spec/template/spec/containers/0/env/0/value", "value": "***"}]}
        ]}));
        for want in [
            "ConfigMap/kube-system/coredns: refused by policy",
            "NetworkPolicy is in the policy's denied kinds",
            "a fix never changes or creates a Secret",
            "holds the redaction mask",
        ] {
            assert!(r.contains(want), "missing {want:?} in:\n{r}");
        }
    }

    #[test]
    fn the_prompt_holds_the_finding_and_the_policy_but_no_secret_data() {
        let s = suite();
        let objects = objects();
        let named = vec!["Deployment/shop/api".to_string()];
        let evidence = vec!["probe: 2.1s of outage".to_string()];
        let tried = vec!["replicas 1 -> 2: rejected: the finding still fails".to_string()];
        let (_, user, anon) = fix_prompt(
            &s,
            &FixAsk {
                id: "pod-kill-one/Deployment/shop/api",
                title: "kill one pod of api",
                class: "single-pod",
                evidence: &evidence,
                scenario: &json!({"name": "kill", "steps": []}),
                remediation: &["run two replicas".to_string()],
                named: &named,
                objects: &objects,
                tried: &tried,
            },
        );
        assert!(anon.is_none());
        for want in [
            "kill one pod of api (weakness class single-pod)",
            "2.1s of outage",
            "Objects the finding names: Deployment/shop/api",
            "namespaces that may be changed: shop",
            "kinds that must not be changed: NetworkPolicy",
            "rejected: the finding still fails",
            "\"replicas\":1",
        ] {
            assert!(user.contains(want), "missing {want:?} in:\n{user}");
        }
        for never in ["c2VjcmV0", "creds", "hunter2-very-secret", "readyReplicas"] {
            assert!(!user.contains(never), "{never:?} sent:\n{user}");
        }
    }

    #[test]
    fn answers_in_prose_are_read_and_others_are_not() {
        let l = read_answer(
            &Value::Null,
            "Here you go:\n```json\n{\"fixes\": [{\"title\": \"t\"}]}\n```",
        )
        .unwrap();
        assert_eq!(l.len(), 1);
        assert!(read_answer(&json!({"scenarios": []}), "{\"scenarios\": []}").is_none());
    }
}
