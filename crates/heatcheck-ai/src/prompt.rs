//! The prompt: `ai.system` and `ai.prompt` rendered with handlebars (strict:
//! an unknown variable is an error), the gathered context as `context`, and a
//! fixed block describing the answer format and the rules. `heatcheck
//! prompt` prints exactly this; generation sends exactly this.

use std::sync::Arc;

use serde_json::{json, Map, Value};

use super::anonymize::Anonymizer;
use super::budget::{estimate_tokens, trim, Dropped};
use super::context::{ContextItem, Gathered};
use super::redact::redact_text;
use heatcheck_format::{
    scenario_schema, template_context, GatewayResolver, Suite, TemplateError, Templater,
    ASSERTION_KINDS, STEP_KINDS,
};

/// The name of the response schema (tool name / json_schema name).
pub(crate) const SCHEMA_NAME: &str = "heatcheck_scenarios";

#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    #[error("the suite has no `ai` block")]
    NoAiBlock,
    #[error("spec.ai.{field}: {source}")]
    Template {
        field: &'static str,
        #[source]
        source: TemplateError,
    },
}

/// Exactly what is sent to the model.
#[derive(Clone, Debug)]
pub struct Prompt {
    pub system: Option<String>,
    pub user: String,
    pub schema: Value,
    pub schema_name: String,
    /// The context objects sent (after trimming; real names).
    pub items: Vec<ContextItem>,
    pub dropped: Dropped,
    pub anonymizer: Option<Anonymizer>,
    /// Estimated tokens of system + user prompt.
    pub estimated_tokens: usize,
    pub token_budget: usize,
}

impl Prompt {
    pub fn token_budget_hint(&self) -> usize {
        self.token_budget
    }

    /// sha256 of the rendered system and user prompt (what the lock records).
    pub fn prompt_hash(&self) -> String {
        let text = format!(
            "{}\n\0\n{}",
            self.system.as_deref().unwrap_or(""),
            self.user
        );
        super::lockfile::sha256_hex(text.as_bytes())
    }

    /// sha256 of the canonical JSON of the context objects sent.
    pub fn context_hash(&self) -> String {
        let values = Value::Array(self.items.iter().map(|i| i.value.clone()).collect());
        super::lockfile::sha256_hex(super::lockfile::canonical_json(&values).as_bytes())
    }
}

/// The answer schema, bounded to `count` scenarios: grammar-constrained
/// servers then stop after the requested number instead of running into
/// the token limit, and do not stop at zero.
pub fn response_schema_for(count: u32) -> Value {
    response_schema_range(count, count)
}

/// The answer schema holding `min..=max` scenarios (a repair after a
/// truncated answer asks for fewer).
pub(crate) fn response_schema_range(min: u32, max: u32) -> Value {
    let mut schema = response_schema();
    let max = max.max(1);
    schema["properties"]["scenarios"]["minItems"] = json!(min.clamp(1, max));
    schema["properties"]["scenarios"]["maxItems"] = json!(max);
    schema
}

/// The answer's JSON Schema: `{"scenarios": [<Scenario>...]}`, with the
/// scenario schema's definitions hoisted to the root so references resolve,
/// and a generated scenario's rules (a name, at least one assertion).
pub(crate) fn response_schema() -> Value {
    let mut scenario = scenario_schema();
    let defs = scenario
        .as_object_mut()
        .and_then(|m| m.remove("$defs"))
        .unwrap_or_else(|| json!({}));
    if let Some(m) = scenario.as_object_mut() {
        m.remove("$schema");
        m.remove("$id");
    }
    super::candidate::tighten(&mut scenario);
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "heatcheck generated scenarios",
        "type": "object",
        "properties": {"scenarios": {"type": "array", "items": scenario}},
        "required": ["scenarios"],
        "additionalProperties": false,
        "$defs": defs
    })
}

/// `{{gateway}}` in an ai prompt has no cluster lookup behind it.
struct NoGateways;
impl GatewayResolver for NoGateways {
    fn gateway_url(&self, _: &str, name: &str) -> Result<String, String> {
        Err(format!(
            "gateway {name}: not available in ai prompts (write the name; scenarios use {{{{gateway}}}})"
        ))
    }
}

/// Builds the prompt from gathered context: anonymize (if asked), trim to
/// the token budget, render, redact the result once more.
pub fn build(suite: &Suite, gathered: &Gathered) -> Result<Prompt, PromptError> {
    let ai = suite.spec.ai.as_ref().ok_or(PromptError::NoAiBlock)?;
    let anonymizer = ai
        .anonymize
        .then(|| Anonymizer::build(&gathered.items, &suite.spec.target.allow_namespaces));
    let anon = |s: &str| match &anonymizer {
        Some(a) => a.anonymize_text(s),
        None => s.to_string(),
    };
    let namespace = anon(&suite.spec.target.namespace);
    let allow: Vec<String> = suite
        .spec
        .target
        .allow_namespaces
        .iter()
        .map(|n| anon(n))
        .collect();
    let render = |items: &[ContextItem],
                  dropped: &Dropped|
     -> Result<(Option<String>, String), PromptError> {
        let context: Vec<Value> = items
            .iter()
            .map(|i| match &anonymizer {
                Some(a) => a.anonymize_value(&i.value),
                None => i.value.clone(),
            })
            .collect();
        let mut vars: Map<String, Value> = template_context(suite, "prompt");
        vars.insert("namespace".into(), Value::String(namespace.clone()));
        vars.insert("allowNamespaces".into(), json!(allow));
        vars.insert("count".into(), json!(ai.count));
        vars.insert("context".into(), Value::Array(context));
        vars.insert("dropped".into(), Value::String(dropped.note()));
        vars.insert(
            "examples".into(),
            Value::String(super::preamble::examples(suite)),
        );
        vars.insert(
            "gateways".into(),
            Value::String(super::preamble::gateways(items)),
        );
        vars.insert(
            "kinds".into(),
            Value::String(super::preamble::kinds(&gathered.served)),
        );
        let t = Templater::new(vars, Arc::new(NoGateways));
        let system = ai
            .system
            .as_deref()
            .map(|s| t.render(s))
            .transpose()
            .map_err(|source| PromptError::Template {
                field: "system",
                source,
            })?
            .map(|s| redact_text(&anon(&s)).into_owned());
        // The preamble is not a template: its examples keep `{{gateway}}` literal.
        let system = if ai.preamble {
            let pre = super::preamble::preamble(suite, items, &gathered.served);
            let pre = redact_text(&anon(&pre)).into_owned();
            Some(match system {
                Some(s) => format!("{pre}\n\n{s}"),
                None => pre,
            })
        } else {
            system
        };
        let body = t
            .render(&ai.prompt)
            .map_err(|source| PromptError::Template {
                field: "prompt",
                source,
            })?;
        let user = format!(
            "{}\n\n{}",
            redact_text(&anon(body.trim_end())),
            instructions(
                ai.count,
                &namespace,
                &allow,
                dropped,
                &gateway_hint(items, &anon)
            )
        );
        Ok((system, user))
    };
    let total = |s: &Option<String>, u: &str| {
        estimate_tokens(u) + s.as_deref().map(estimate_tokens).unwrap_or(0)
    };
    let budget = ai.token_budget as usize;
    let mut items = gathered.items.clone();
    let mut dropped = Dropped::default();
    let (s0, u0) = render(&[], &Dropped::default())?;
    // The note about dropped objects needs room too (about 40 tokens).
    let overhead = total(&s0, &u0) + 40;
    trim(&mut items, budget.saturating_sub(overhead), &mut dropped);
    let (mut system, mut user) = render(&items, &dropped)?;
    // The per-item estimate is close, not exact: drop more until it fits.
    while total(&system, &user) > budget && !items.is_empty() {
        let extra = (total(&system, &user) - budget).max(1);
        let target = super::budget::estimate_total(&items).saturating_sub(extra);
        trim(&mut items, target, &mut dropped);
        (system, user) = render(&items, &dropped)?;
    }
    let estimated_tokens = total(&system, &user);
    Ok(Prompt {
        system,
        user,
        schema: response_schema_for(ai.count),
        schema_name: SCHEMA_NAME.into(),
        items,
        dropped,
        anonymizer,
        estimated_tokens,
        token_budget: budget,
    })
}

/// The Gateway to name in the URL example: the first one in the context.
fn gateway_hint(items: &[ContextItem], anon: &dyn Fn(&str) -> String) -> String {
    items
        .iter()
        .find(|i| i.kind == "Gateway")
        .map(|i| anon(&i.name))
        .unwrap_or_else(|| "NAME-OF-A-GATEWAY-IN-THE-CONTEXT".into())
}

/// The fixed part of the user prompt: answer format and rules.
fn instructions(
    count: u32,
    namespace: &str,
    allow: &[String],
    dropped: &Dropped,
    gateway: &str,
) -> String {
    let mut s = format!(
        "## Answer format\n\
Answer with one JSON object {{\"scenarios\": [...]}} holding {count} scenario(s). Each scenario follows the \
JSON Schema of the response (a heatcheck Scenario):\n\
- name: short and unique. description: what the scenario tests and why it matters for this cluster.\n\
- steps: a list; each step is an object with exactly one of the keys {steps} \
(plus optional name, timeout, continueOnError).\n  \
apply/create take an inline `manifest` (YAML text). delete/patch/scale/restart/wait name objects by kind and name.\n  \
fault: {{\"type\": \"networkDelay\"|\"networkLoss\"|\"networkPartition\"|\"podKill\", \"selector\": \"app=...\", \"duration\": \"30s\", ...}}.\n\
- assertions: at least one; each has exactly one of the keys {assertions} (plus an optional name).\n  \
HTTP URLs start with the gateway template, e.g. '{{{{gateway \"{gateway}\"}}}}/path', with a Host header.\n\
- metrics: what to watch while the scenario runs. remediation: what to do if it fails.\n\
- Durations are strings such as \"500ms\", \"10s\", \"2m\".\n\
## Rules\n\
- Only these namespaces may be touched: {allow}. Omit `namespace` to use {namespace}.\n\
- Never touch kube-system, Namespaces, CustomResourceDefinitions or other cluster-scoped kinds.\n\
- Reference only objects shown in the context above, or created by an earlier step of the same scenario.\n\
- Never use an empty selector or one that matches every pod.",
        steps = STEP_KINDS.join(", "),
        assertions = ASSERTION_KINDS.join(", "),
        allow = allow.join(", "),
    );
    if !dropped.is_empty() {
        s.push_str(&format!(
            "\n## Context note\nSome objects were left out {}.",
            dropped.note()
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn suite(ai: Value) -> Suite {
        let mut s: Suite = serde_json::from_value(json!({
            "apiVersion": "heatcheck.dev/v1alpha1", "kind": "Suite", "metadata": {"name": "s"},
            "spec": {"target": {"namespace": "shop"}, "vars": {"host": "shop.example.com"}, "ai": ai}
        }))
        .unwrap();
        s.spec.target.allow_namespaces = vec!["shop".into()];
        s
    }

    fn item(group: usize, kind: &str, name: &str) -> ContextItem {
        ContextItem {
            group,
            kind: kind.into(),
            namespace: Some("shop".into()),
            name: name.into(),
            value: json!({"kind": kind, "metadata": {"name": name, "namespace": "shop"}}),
        }
    }

    #[test]
    fn renders_context_count_vars_and_the_fixed_block() {
        let s = suite(
            json!({"provider": "openai", "model": "m", "system": "Expert for {{suite.name}}.",
            "prompt": "Objects:\n{{yaml context}}\nGive {{count}} for {{host}} in {{namespace}}.", "count": 2}),
        );
        let g = Gathered {
            items: vec![item(0, "HTTPRoute", "my-route")],
            declared: 0,
            ..Default::default()
        };
        let p = build(&s, &g).unwrap();
        let system = p.system.as_deref().unwrap();
        assert!(
            system.starts_with("You write chaos scenarios for heatcheck."),
            "{system}"
        );
        assert!(system.ends_with("\n\nExpert for s."), "{system}");
        assert!(system.contains("A built-in example"), "{system}");
        assert!(
            p.user
                .starts_with("Objects:\n- kind: HTTPRoute\n  metadata:\n    name: my-route"),
            "{}",
            p.user
        );
        assert!(p.user.contains("Give 2 for shop.example.com in shop."));
        assert!(p
            .user
            .contains("Only these namespaces may be touched: shop."));
        assert!(p
            .user
            .contains("{{gateway \"NAME-OF-A-GATEWAY-IN-THE-CONTEXT\"}}"));
        assert!(p.dropped.is_empty());
    }

    #[test]
    fn the_preamble_can_be_switched_off_and_helpers_render() {
        let s = suite(
            json!({"provider": "openai", "model": "m", "system": "Only this.", "preamble": false,
                "prompt": "{{gateways}}\n{{kinds}}\n{{examples}}"}),
        );
        let g = Gathered {
            items: vec![item(0, "Gateway", "gw")],
            served: vec![crate::context::ServedKind {
                api_version: "apps/v1".into(),
                kind: "Deployment".into(),
                namespaced: true,
            }],
            declared: 0,
        };
        let p = build(&s, &g).unwrap();
        assert_eq!(p.system.as_deref(), Some("Only this."));
        assert!(p.user.starts_with("- gw (namespace shop): listeners none shown; URL prefix {{gateway \"gw\"}}\n- apps/v1: Deployment\nA built-in example"), "{}", p.user);
        assert!(p.user.contains("'{{gateway \"gw\"}}/path'"), "{}", p.user);
    }

    #[test]
    fn unknown_variables_are_errors() {
        let s = suite(json!({"provider": "openai", "model": "m", "prompt": "{{yaml contxt}}"}));
        let err = build(&s, &Gathered::default()).unwrap_err();
        assert!(err.to_string().contains("contxt"), "{err}");
    }

    #[test]
    fn over_budget_drops_and_says_so() {
        let s = suite(
            json!({"provider": "openai", "model": "m", "prompt": "{{yaml context}}", "tokenBudget": 700, "context": [{"kind": "HTTPRoute"}], "preamble": false}),
        );
        let mut items: Vec<ContextItem> = (0..40)
            .map(|i| item(0, "HTTPRoute", &format!("r{i:02}")))
            .collect();
        items.extend((0..40).map(|i| item(1, "Event", &format!("e{i:02}"))));
        let p = build(
            &s,
            &Gathered {
                items,
                declared: 0,
                ..Default::default()
            },
        )
        .unwrap();
        assert!(p.estimated_tokens <= 700, "{}", p.estimated_tokens);
        assert_eq!(p.dropped.by_kind[0].0, "Event");
        assert!(p.user.contains(&p.dropped.note()), "{}", p.user);
        assert!(p
            .items
            .iter()
            .all(|i| i.kind == "HTTPRoute" || p.dropped.by_kind.len() == 1));
        assert_eq!(p.items[0].name, "r00");
    }

    #[test]
    fn anonymized_prompts_hide_names() {
        let s = suite(
            json!({"provider": "openai", "model": "m", "prompt": "{{yaml context}} in {{namespace}}", "anonymize": true}),
        );
        let g = Gathered {
            items: vec![item(0, "HTTPRoute", "checkout-route")],
            declared: 0,
            ..Default::default()
        };
        let p = build(&s, &g).unwrap();
        assert!(
            !p.user.contains("checkout-route") && !p.user.contains("shop"),
            "{}",
            p.user
        );
        assert!(p.user.contains("httproute-1") && p.user.contains("ns-1"));
    }

    #[test]
    fn response_schema_compiles_and_accepts_a_scenario() {
        let schema = response_schema();
        let v = jsonschema::validator_for(&schema).unwrap();
        let ok = json!({"scenarios": [{"name": "n", "steps": [{"sleep": "1s"}], "assertions": [{"absent": {"kind": "Pod", "name": "p"}}]}]});
        assert!(v.is_valid(&ok));
        assert!(!v.is_valid(&json!({"scenarios": [{"name": "n", "steps": [{"slep": "1s"}]}]})));
        assert!(!v.is_valid(&json!({"scenario": []})));
        let two = jsonschema::validator_for(&response_schema_for(1)).unwrap();
        assert!(two.is_valid(&ok));
        let mut three = ok.clone();
        three["scenarios"] = json!([ok["scenarios"][0], ok["scenarios"][0]]);
        assert!(
            !two.is_valid(&three),
            "maxItems bounds the answer to `count`"
        );
    }
}
