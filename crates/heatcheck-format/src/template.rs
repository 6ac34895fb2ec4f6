//! Handlebars templating of suite strings, in strict mode: an unknown
//! variable is an error naming it, never an empty string.

use std::sync::Arc;

use handlebars::{
    Context, Handlebars, Helper, HelperResult, Output, RenderContext, RenderError,
    RenderErrorReason, Template,
};
use serde_json::{Map, Value};

use super::types::Suite;

/// Names the templater always provides; suite `vars` may not reuse them.
pub const BUILTIN_VARS: &[&str] = &["namespace", "runId", "env", "suite"];

/// Resolves `{{gateway "NAME"}}` to a base URL such as `http://10.0.0.7:80`.
/// The engine implements it with a cluster lookup (called synchronously).
pub trait GatewayResolver: Send + Sync {
    fn gateway_url(&self, namespace: &str, name: &str) -> Result<String, String>;
}

/// A template that could not be checked or rendered.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message} in template {template:?}")]
pub struct TemplateError {
    /// The template text (shortened when long).
    pub(crate) template: String,
    pub(crate) message: String,
    /// For an unknown variable: its name.
    pub variable: Option<String>,
}

impl TemplateError {
    fn new(template: &str, message: String, variable: Option<String>) -> Self {
        TemplateError {
            template: shorten(template),
            message,
            variable,
        }
    }
}

fn shorten(t: &str) -> String {
    if t.chars().count() > 80 {
        let head: String = t.chars().take(77).collect();
        format!("{head}...")
    } else {
        t.to_string()
    }
}

/// Check template syntax only (no data needed). Used at load time.
pub(crate) fn check_syntax(template: &str) -> Result<(), String> {
    if !template.contains("{{") {
        return Ok(());
    }
    Template::compile(template)
        .map(|_| ())
        .map_err(|e| match e.pos() {
            Some((line, col)) => {
                format!(
                    "invalid template syntax ({}, at line {line}, column {col} of the template)",
                    e.reason()
                )
            }
            None => format!("invalid template syntax ({})", e.reason()),
        })
}

/// Renders suite strings against a fixed context.
pub struct Templater {
    registry: Handlebars<'static>,
    context: Value,
}

impl Templater {
    /// `vars` is the whole context: the suite vars plus `namespace`, `runId`,
    /// `env`, `suite` (see [`template_context`]).
    pub fn new(vars: Map<String, Value>, resolver: Arc<dyn GatewayResolver>) -> Self {
        let mut registry = Handlebars::new();
        registry.set_strict_mode(true);
        // Output goes into URLs, YAML and JSON, never HTML.
        registry.register_escape_fn(handlebars::no_escape);
        registry.register_helper(
            "gateway",
            Box::new(
                move |h: &Helper,
                      _: &Handlebars,
                      ctx: &Context,
                      _: &mut RenderContext,
                      out: &mut dyn Output|
                      -> HelperResult {
                    let name = h
                        .param(0)
                        .and_then(|p| p.value().as_str())
                        .ok_or(RenderErrorReason::ParamNotFoundForIndex("gateway", 0))?;
                    let namespace = match h.hash_get("namespace") {
                        Some(ns) => ns.value().as_str().map(str::to_string),
                        None => ctx
                            .data()
                            .get("namespace")
                            .and_then(Value::as_str)
                            .map(str::to_string),
                    }
                    .ok_or_else(|| {
                        RenderErrorReason::Other(
                            "gateway: no namespace given and none in context".into(),
                        )
                    })?;
                    let url = resolver.gateway_url(&namespace, name).map_err(|e| {
                        RenderErrorReason::Other(format!("gateway {namespace}/{name}: {e}"))
                    })?;
                    out.write(&url)?;
                    Ok(())
                },
            ),
        );
        registry.register_helper("yaml", Box::new(dump_helper("yaml")));
        registry.register_helper("json", Box::new(dump_helper("json")));
        Templater {
            registry,
            context: Value::Object(vars),
        }
    }

    /// Render one template string.
    pub fn render(&self, template: &str) -> Result<String, TemplateError> {
        if !template.contains("{{") {
            return Ok(template.to_string());
        }
        self.registry
            .render_template(template, &self.context)
            .map_err(|e| to_template_error(template, &e))
    }

    /// Render every string (and object key) inside `v`.
    pub fn render_value(&self, v: &Value) -> Result<Value, TemplateError> {
        Ok(match v {
            Value::String(s) => Value::String(self.render(s)?),
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|i| self.render_value(i))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(map) => {
                let mut out = Map::with_capacity(map.len());
                for (k, val) in map {
                    out.insert(self.render(k)?, self.render_value(val)?);
                }
                Value::Object(out)
            }
            other => other.clone(),
        })
    }
}

/// `{{yaml x}}` / `{{json x}}`: print a value as YAML or (compact) JSON.
fn dump_helper(
    format: &'static str,
) -> impl Fn(&Helper, &Handlebars, &Context, &mut RenderContext, &mut dyn Output) -> HelperResult
       + Send
       + Sync {
    move |h: &Helper,
          _: &Handlebars,
          _: &Context,
          _: &mut RenderContext,
          out: &mut dyn Output|
          -> HelperResult {
        let name: &'static str = if format == "yaml" { "yaml" } else { "json" };
        let param = h
            .param(0)
            .ok_or(RenderErrorReason::ParamNotFoundForIndex(name, 0))?;
        if param.is_value_missing() {
            let path = param.relative_path().cloned().unwrap_or_default();
            return Err(RenderErrorReason::MissingVariable(Some(path)).into());
        }
        let text = if format == "yaml" {
            serde_saphyr::to_string(param.value())
                .map_err(|e| RenderErrorReason::Other(format!("yaml: {e}")))?
                .trim_end()
                .to_string()
        } else {
            serde_json::to_string(param.value())
                .map_err(|e| RenderErrorReason::Other(format!("json: {e}")))?
        };
        out.write(&text)?;
        Ok(())
    }
}

fn to_template_error(template: &str, e: &RenderError) -> TemplateError {
    match e.reason() {
        RenderErrorReason::MissingVariable(name) => {
            let name = name.clone().unwrap_or_default();
            TemplateError::new(template, format!("unknown variable \"{name}\""), Some(name))
        }
        RenderErrorReason::TemplateError(t) => TemplateError::new(
            template,
            format!("invalid template syntax ({})", t.reason()),
            None,
        ),
        RenderErrorReason::HelperNotFound(h) => TemplateError::new(
            template,
            format!("unknown helper or variable \"{h}\""),
            Some(h.clone()),
        ),
        RenderErrorReason::Other(msg) => TemplateError::new(template, msg.clone(), None),
        other => TemplateError::new(template, other.to_string(), None),
    }
}

/// The standard context for a suite: its `vars`, plus `namespace` (the
/// target namespace), `runId`, `env` (only the allowlisted variables that
/// are set) and `suite` (`{name, labels}`).
pub fn template_context(suite: &Suite, run_id: &str) -> Map<String, Value> {
    let mut ctx: Map<String, Value> = suite
        .spec
        .vars
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let env: Map<String, Value> = suite
        .spec
        .env
        .iter()
        .filter_map(|name| {
            std::env::var(name)
                .ok()
                .map(|v| (name.clone(), Value::String(v)))
        })
        .collect();
    ctx.insert(
        "namespace".into(),
        Value::String(suite.spec.target.namespace.clone()),
    );
    ctx.insert("runId".into(), Value::String(run_id.to_string()));
    ctx.insert("env".into(), Value::Object(env));
    ctx.insert(
        "suite".into(),
        serde_json::json!({"name": suite.metadata.name, "labels": suite.metadata.labels}),
    );
    ctx
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    struct FakeGateways;
    impl GatewayResolver for FakeGateways {
        fn gateway_url(&self, namespace: &str, name: &str) -> Result<String, String> {
            match name {
                "missing" => Err("not found".into()),
                _ => Ok(format!("http://{name}.{namespace}:8080")),
            }
        }
    }

    fn templater(v: Value) -> Templater {
        let Value::Object(map) = v else { panic!() };
        Templater::new(map, Arc::new(FakeGateways))
    }

    #[test]
    fn renders_vars_without_html_escaping() {
        let t = templater(json!({"host": "a&b.example.com", "namespace": "ns", "n": 3}));
        assert_eq!(
            t.render("http://{{host}}/x?{{n}}").unwrap(),
            "http://a&b.example.com/x?3"
        );
        assert_eq!(t.render("no template").unwrap(), "no template");
    }

    #[test]
    fn unknown_variable_is_an_error_naming_it() {
        let t = templater(json!({"namespace": "ns"}));
        let err = t.render("http://{{hots}}/shop").unwrap_err();
        assert_eq!(err.variable.as_deref(), Some("hots"));
        assert_eq!(
            err.to_string(),
            "unknown variable \"hots\" in template \"http://{{hots}}/shop\""
        );
        let err = t.render("{{env.TOKEN}}").unwrap_err();
        assert!(err.message.contains("env.TOKEN"), "{err}");
        let err = t.render("{{yaml nothing}}").unwrap_err();
        assert!(err.message.contains("nothing"), "{err}");
    }

    #[test]
    fn gateway_helper_uses_context_or_explicit_namespace() {
        let t = templater(json!({"namespace": "ns"}));
        assert_eq!(
            t.render("{{gateway \"gw\"}}/shop").unwrap(),
            "http://gw.ns:8080/shop"
        );
        assert_eq!(
            t.render("{{gateway \"gw\" namespace=\"other\"}}").unwrap(),
            "http://gw.other:8080"
        );
        let err = t.render("{{gateway \"missing\"}}").unwrap_err();
        assert!(
            err.message.contains("gateway ns/missing: not found"),
            "{err}"
        );
    }

    #[test]
    fn yaml_and_json_helpers() {
        let t = templater(json!({"obj": {"a": 1, "b": ["x"]}}));
        assert_eq!(t.render("{{json obj}}").unwrap(), r#"{"a":1,"b":["x"]}"#);
        assert_eq!(t.render("{{yaml obj}}").unwrap(), "a: 1\nb:\n- x");
    }

    #[test]
    fn render_value_renders_nested_strings() {
        let t = templater(json!({"name": "web", "namespace": "ns"}));
        let v = json!({"metadata": {"name": "{{name}}-v1", "labels": {"{{name}}": "x"}}, "n": [1, "{{namespace}}"]});
        assert_eq!(
            t.render_value(&v).unwrap(),
            json!({"metadata": {"name": "web-v1", "labels": {"web": "x"}}, "n": [1, "ns"]})
        );
    }

    #[test]
    fn syntax_check() {
        assert!(check_syntax("{{gateway \"x\"}}/a").is_ok());
        assert!(check_syntax("{{unknown_but_fine}}").is_ok());
        assert!(check_syntax("plain { text }").is_ok());
        let err = check_syntax("{{#if x}}open").unwrap_err();
        assert!(err.starts_with("invalid template syntax"), "{err}");
        assert!(check_syntax("{{name").is_err());
    }
}
