//! The static check: every step of a scenario (or of the fixtures) against
//! the effective policy, before anything runs.

use std::time::Duration;

use super::policy::EffectivePolicy;
use super::touch::{static_templater, touches, Touch};
use super::verbs::step_verbs;
use super::violation::{Rule, Violation};
use serde_json::Value;

use heatcheck_format::{
    format_duration, template_context, GatewayResolver, Scenario, Step, StepAction, Suite,
    Templater,
};

/// Name under which fixture violations are reported.
pub const FIXTURES: &str = "fixtures";

/// Checks the steps of one suite; holds the templater used to render them.
pub struct Checker<'a> {
    policy: &'a EffectivePolicy,
    suite: &'a Suite,
    templater: Templater,
    /// Every variable the suite defines, each allowlisted `env` name set
    /// (unset ones too): a render error here is a variable nobody defines.
    names: Templater,
}

/// Gateway URLs are placeholders for the variable check.
struct AnyGateway;

impl GatewayResolver for AnyGateway {
    fn gateway_url(&self, _: &str, name: &str) -> Result<String, String> {
        Ok(format!("http://{name}.gateway.invalid"))
    }
}

fn names_templater(suite: &Suite, vars: &[(String, String)]) -> Templater {
    let mut ctx = template_context(suite, "check");
    let env: serde_json::Map<String, Value> = suite
        .spec
        .env
        .iter()
        .map(|n| (n.clone(), Value::String("x".into())))
        .collect();
    ctx.insert("env".into(), Value::Object(env));
    for (k, v) in vars {
        ctx.insert(k.clone(), Value::String(v.clone()));
    }
    Templater::new(ctx, std::sync::Arc::new(AnyGateway))
}

/// Every string (and manifest file text) of a step or assertion, to render.
fn strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) if s.contains("{{") => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
        Value::Object(m) => m.values().for_each(|x| strings(x, out)),
        _ => {}
    }
}

/// Checks one scenario with the suite's own vars (see [`Checker`] for `--var`).
pub fn check_scenario(sc: &Scenario, policy: &EffectivePolicy, suite: &Suite) -> Vec<Violation> {
    Checker::new(policy, suite, &[]).scenario(sc)
}

impl<'a> Checker<'a> {
    /// `vars`: the `--var` overrides, so namespaces render as they will at run time.
    pub fn new(policy: &'a EffectivePolicy, suite: &'a Suite, vars: &[(String, String)]) -> Self {
        Checker {
            policy,
            suite,
            templater: static_templater(suite, "plan", vars),
            names: names_templater(suite, vars),
        }
    }

    pub fn scenario(&self, sc: &Scenario) -> Vec<Violation> {
        let mut out = self.steps(&sc.name, &sc.steps, false);
        for a in &sc.assertions {
            for var in self.undefined_variables(&serde_json::to_value(a).unwrap_or_default()) {
                out.push(Violation {
                    scenario: sc.name.clone(),
                    step: None,
                    step_name: None,
                    rule: Rule::Template,
                    what: format!("assertion {:?}", a.name),
                    why: self.undefined_why(&var),
                });
            }
        }
        out
    }

    /// Variables the templates inside `v` read that the suite does not define.
    fn undefined_variables(&self, v: &Value) -> Vec<String> {
        let mut texts = Vec::new();
        strings(v, &mut texts);
        let mut vars: Vec<String> = texts
            .iter()
            .filter_map(|t| self.names.render(t).err()?.variable)
            .collect();
        vars.dedup();
        vars
    }

    fn undefined_why(&self, var: &str) -> String {
        let spec = &self.suite.spec;
        match var.strip_prefix("env.") {
            Some(name) => format!(
                "the template reads env.{name}, which spec.env does not expose (exposed: {})",
                if spec.env.is_empty() {
                    "none".to_string()
                } else {
                    spec.env.join(", ")
                }
            ),
            None => format!(
                "the template reads {var}, which the suite does not define (vars: {}; built in: {})",
                if spec.vars.is_empty() {
                    "none".to_string()
                } else {
                    spec.vars.keys().cloned().collect::<Vec<_>>().join(", ")
                },
                heatcheck_format::template::BUILTIN_VARS.join(", ")
            ),
        }
    }

    /// The suite's fixtures (the engine's own createNamespace step is not one
    /// of them). forbiddenVerbs and maxDuration apply to scenarios only.
    pub fn fixtures(&self) -> Vec<Violation> {
        self.steps(FIXTURES, &self.suite.spec.fixtures, true)
    }

    fn steps(&self, case: &str, steps: &[Step], fixtures: bool) -> Vec<Violation> {
        let mut out = Vec::new();
        let mut timed = Duration::ZERO;
        for (i, step) in steps.iter().enumerate() {
            let refuse = |rule: Rule, what: String, why: String| Violation {
                scenario: case.to_string(),
                step: Some(i),
                step_name: Some(step.display_name()),
                rule,
                what,
                why,
            };
            let kind = step.action.kind();
            let mut texts = serde_json::to_value(step).unwrap_or_default();
            if let StepAction::Apply(a) | StepAction::Create(a) = &step.action {
                if let Ok(src) = a.resolve_source(&self.suite.source.dir) {
                    texts = Value::Array(vec![texts, Value::String(src)]);
                }
            }
            for var in self.undefined_variables(&texts) {
                out.push(refuse(
                    Rule::Template,
                    kind.to_string(),
                    self.undefined_why(&var),
                ));
            }
            if !fixtures {
                if let Some(why) = self.policy.verb_refusal(kind, step_verbs(&step.action)) {
                    out.push(refuse(Rule::Verb, kind.to_string(), why));
                }
            }
            match &step.action {
                StepAction::Sleep(d) => {
                    timed += d.0;
                    if let Some(why) = self
                        .policy
                        .duration_refusal(d.0, "sleep")
                        .filter(|_| !fixtures)
                    {
                        out.push(refuse(
                            Rule::Duration,
                            format!("sleep {}", format_duration(d.0)),
                            why,
                        ));
                    }
                }
                StepAction::Fault(f) => {
                    timed += f.duration.0;
                    let what = format!("{} fault", f.fault_type.as_str());
                    if let Some(why) = self
                        .policy
                        .duration_refusal(f.duration.0, "fault duration")
                        .filter(|_| !fixtures)
                    {
                        out.push(refuse(Rule::Duration, what.clone(), why));
                    }
                    // The default limit is measured on the namespace when the fault runs.
                    if let Some(max) = self
                        .policy
                        .max_pods_affected
                        .filter(|m| f.percent > *m && self.policy.max_pods_explicit)
                    {
                        out.push(refuse(
                            Rule::BlastRadius,
                            what.clone(),
                            format!(
                                "it hits {}% of the selected pods, above maxPodsAffected {max}%",
                                f.percent
                            ),
                        ));
                    }
                }
                StepAction::Wait(_) => {
                    let limit = step.timeout.unwrap_or(self.suite.spec.defaults.timeout).0;
                    if let Some(why) = self
                        .policy
                        .duration_refusal(limit, "wait timeout")
                        .filter(|_| !fixtures)
                    {
                        out.push(refuse(
                            Rule::Duration,
                            format!("wait up to {}", format_duration(limit)),
                            why,
                        ));
                    }
                }
                _ => {}
            }
            let touched = match touches(self.suite, &self.templater, step, i) {
                Ok(t) => t,
                // Not renderable without the cluster: the engine checks it when it runs.
                Err(_) => continue,
            };
            for t in touched.iter().filter(|t| t.mutates()) {
                if let Some((rule, why)) = self.touch_refusal(t) {
                    let scoped = self.policy.cluster_scoped(&t.kind) == Some(true);
                    out.push(refuse(
                        rule,
                        format!("{} {}", t.action, t.describe(scoped)),
                        why,
                    ));
                }
            }
        }
        if !fixtures {
            let individually = out.iter().any(|v| v.rule == Rule::Duration);
            if let Some(why) = self
                .policy
                .duration_refusal(timed, "its sleeps and faults alone take")
                .filter(|_| !individually)
            {
                out.push(Violation {
                    scenario: case.to_string(),
                    step: None,
                    step_name: None,
                    rule: Rule::Duration,
                    what: "scenario".into(),
                    why,
                });
            }
        }
        out
    }

    fn touch_refusal(&self, t: &Touch) -> Option<(Rule, String)> {
        if t.selector.as_deref().is_some_and(|s| s.trim().is_empty()) {
            let what = if t.action == "fault" || t.kind == "Pod" {
                "pod".to_string()
            } else {
                t.kind.clone()
            };
            return Some((
                Rule::Selector,
                format!("an empty selector matches every {what} in the namespace"),
            ));
        }
        if let Some(why) = self.policy.kind_refusal(&t.kind, None) {
            return Some((Rule::Kind, why));
        }
        if self.policy.cluster_scoped(&t.kind) != Some(true) {
            if let Err(why) = self.policy.check_namespace(&t.namespace) {
                return Some((Rule::Namespace, why));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PolicyOverrides;

    fn suite(body: &str) -> Suite {
        let text = format!(
            "apiVersion: heatcheck.dev/v1alpha1\nkind: Suite\nmetadata: {{name: s}}\nspec:\n  target: {{namespace: shop}}\n  vars: {{victim: kube-system}}\n{body}"
        );
        heatcheck_format::parse_suite(&text, std::path::Path::new("suite.yaml")).unwrap()
    }

    fn violations(body: &str) -> Vec<Violation> {
        let s = suite(body);
        let (p, _) = EffectivePolicy::build(&s, &PolicyOverrides::default()).unwrap();
        let c = Checker::new(&p, &s, &[]);
        let mut out = c.fixtures();
        for sc in &s.spec.scenarios {
            out.extend(c.scenario(sc));
        }
        out
    }

    #[test]
    fn an_allowed_scenario_has_no_violations() {
        let v = violations(
            "  policy: {maxPodsAffected: 50, maxDuration: 1m}\n  scenarios:\n    - name: ok\n      steps:\n        - delete: {kind: HTTPRoute, name: r}\n        - scale: {name: web, replicas: 0}\n        - fault: {type: podKill, selector: app=web, percent: 50, duration: 10s}\n        - apply: {manifest: 'apiVersion: v1\n\n            kind: ConfigMap\n\n            metadata: {name: c}'}\n        - wait: {kind: Namespace, name: kube-system, present: true}\n",
        );
        assert!(v.is_empty(), "{v:#?}");
    }

    #[test]
    fn each_rule_is_reported_with_scenario_step_what_and_why() {
        let v = violations(
            r#"  policy: {maxPodsAffected: 50, maxDuration: 30s, forbiddenVerbs: [restart]}
  scenarios:
    - name: bad
      steps:
        - apply: {manifest: "{apiVersion: v1, kind: ConfigMap, metadata: {name: c, namespace: '{{victim}}'}}"}
        - delete: {kind: Namespace, name: shop}
        - apply: {manifest: "{apiVersion: rbac.authorization.k8s.io/v1, kind: ClusterRoleBinding, metadata: {name: x}}"}
        - delete: {kind: Pod, selector: ""}
        - fault: {type: networkLoss, loss: 10, selector: app=web, percent: 80, duration: 10s}
        - sleep: 1m
        - restart: {name: web}
"#,
        );
        let rules: Vec<(Option<usize>, Rule)> = v.iter().map(|v| (v.step, v.rule)).collect();
        assert_eq!(
            rules,
            [
                (Some(0), Rule::Namespace),
                (Some(1), Rule::Kind),
                (Some(2), Rule::Kind),
                (Some(3), Rule::Selector),
                (Some(4), Rule::BlastRadius),
                (Some(5), Rule::Duration),
                (Some(6), Rule::Verb),
            ],
            "{v:#?}"
        );
        assert_eq!(
            v[0].to_string(),
            "\"bad\" step 1 (apply inline manifest): apply ConfigMap kube-system/c: namespace kube-system is a system namespace: heatcheck never changes it unless the suite's policy sets allowSystemNamespaces: true"
        );
        assert!(v[2].why.contains("denied by default"), "{}", v[2]);
        assert!(v[3].why.contains("every pod"), "{}", v[3]);
    }

    #[test]
    fn undefined_variables_and_long_waits_are_refused_by_default() {
        let v = violations(
            r#"  env: [REGION]
  scenarios:
    - name: sneaky
      steps:
        - apply: {manifest: "{apiVersion: v1, kind: ConfigMap, metadata: {name: c}, data: {k: '{{env.HOME}}', r: '{{env.REGION}}'}}"}
        - delete: {kind: ConfigMap, name: "{{target}}"}
        - sleep: 72h
        - wait: {kind: Deployment, name: web, available: true}
          timeout: 1h
      assertions:
        - name: a
          absent: {kind: ConfigMap, name: "{{secretName}}"}
"#,
        );
        let rules: Vec<(Option<usize>, Rule)> = v.iter().map(|v| (v.step, v.rule)).collect();
        assert_eq!(
            rules,
            [
                (Some(0), Rule::Template),
                (Some(1), Rule::Template),
                (Some(2), Rule::Duration),
                (Some(3), Rule::Duration),
                (None, Rule::Template),
            ],
            "{v:#?}"
        );
        assert_eq!(
            v[0].why,
            "the template reads env.HOME, which spec.env does not expose (exposed: REGION)"
        );
        assert!(
            v[1].why
                .contains("reads target, which the suite does not define (vars: victim;"),
            "{}",
            v[1]
        );
        assert!(
            v[2].why.contains("72h is longer than maxDuration 10m"),
            "{}",
            v[2]
        );
        assert!(v[3].why.contains("wait timeout 1h"), "{}", v[3]);
    }

    #[test]
    fn durations_add_up_per_scenario_and_fixtures_are_checked_too() {
        let v = violations(
            "  policy: {maxDuration: 30s}\n  fixtures:\n    - delete: {kind: Node, name: n1}\n    - sleep: 1m\n  scenarios:\n    - name: slow\n      steps:\n        - sleep: 20s\n        - sleep: 20s\n",
        );
        assert_eq!(v.len(), 2, "{v:#?}");
        assert_eq!((v[0].scenario.as_str(), v[0].rule), (FIXTURES, Rule::Kind));
        assert_eq!((v[1].step, v[1].rule), (None, Rule::Duration));
        assert!(
            v[1].why.contains("40s is longer than maxDuration 30s"),
            "{}",
            v[1]
        );
    }
}
