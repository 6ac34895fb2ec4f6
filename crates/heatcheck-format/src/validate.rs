//! Semantic validation: everything the types cannot say, collected (all
//! problems, not the first) with positions.

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

use super::assertion::{Assertion, AssertionKind};
use super::error::Diagnostic;
use super::locate::{child_index, child_key, Locator};
use super::matcher::Matcher;
use super::step::{resolve_manifest_path, FaultType, PatchType, Step, StepAction};
use super::template::{check_syntax, BUILTIN_VARS};
use super::types::{
    is_system_namespace, system_namespace_message, Probe, Scenario, StopCondition, Suite,
};

/// All semantic problems of a parsed suite, in document order.
pub(crate) fn validate_suite(suite: &Suite, text: &str, origin: &Path) -> Vec<Diagnostic> {
    let mut c = Checker::new(suite, origin, Some((text, Locator::new(text))));
    c.suite(suite);
    c.finish()
}

/// Check one scenario (e.g. AI-generated) against a loaded suite: the same
/// rules as for the suite's own scenarios. Paths are relative to the
/// scenario (`steps[1].wait`); there are no line numbers.
pub fn validate_scenario(scenario: &Scenario, suite: &Suite) -> Vec<Diagnostic> {
    let mut c = Checker::new(suite, &suite.source.path, None);
    c.scenario(scenario, "");
    c.finish()
}

struct Checker<'a> {
    file: PathBuf,
    source: Option<(&'a str, Locator)>,
    suite_dir: PathBuf,
    allow_namespaces: Vec<String>,
    /// A scenario's own probes may not take these names.
    suite_probes: Vec<String>,
    out: Vec<Diagnostic>,
}

fn templated(s: &str) -> bool {
    s.contains("{{")
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

impl<'a> Checker<'a> {
    fn new(suite: &Suite, file: &Path, source: Option<(&'a str, Locator)>) -> Self {
        let target = &suite.spec.target;
        let allow_namespaces = if target.allow_namespaces.is_empty() {
            vec![target.namespace.clone()]
        } else {
            target.allow_namespaces.clone()
        };
        Checker {
            file: file.to_path_buf(),
            source,
            suite_dir: suite.source.dir.clone(),
            allow_namespaces,
            suite_probes: suite.spec.probes.iter().map(|p| p.name.clone()).collect(),
            out: Vec::new(),
        }
    }

    fn finish(mut self) -> Vec<Diagnostic> {
        // Document order; unlocated ones last, in the order found.
        self.out
            .sort_by_key(|d| (d.line.is_none(), d.line, d.column));
        self.out
    }

    /// Report at the key of `path` (or the node / nearest ancestor).
    fn at(&mut self, path: &str, message: impl Into<String>) {
        self.push(path, message.into(), false);
    }

    /// Report at the value of `path`.
    fn at_value(&mut self, path: &str, message: impl Into<String>) {
        self.push(path, message.into(), true);
    }

    fn push(&mut self, path: &str, message: String, value: bool) {
        let located = self.source.as_ref().and_then(|(text, loc)| {
            let pos = if value {
                loc.locate_value(path)
            } else {
                loc.locate(path)
            }?;
            Some(Diagnostic::at(
                &self.file,
                text,
                pos.line,
                pos.column,
                message.clone(),
            ))
        });
        let d = located.unwrap_or_else(|| Diagnostic::unlocated(&self.file, message));
        self.out.push(d.with_yaml_path(path));
    }

    // ---- suite ----

    fn suite(&mut self, suite: &Suite) {
        let spec = &suite.spec;
        if suite.metadata.name.trim().is_empty() {
            self.at_value("metadata.name", "metadata.name must not be empty");
        }
        let ns = &spec.target.namespace;
        if !templated(ns) && !is_dns_label(ns) {
            self.at_value(
                "spec.target.namespace",
                format!("invalid namespace \"{ns}\": expected a DNS label (lowercase letters, digits, '-')"),
            );
        }
        let system_ok = spec
            .policy
            .as_ref()
            .is_some_and(|p| p.allow_system_namespaces);
        if !system_ok {
            if is_system_namespace(ns) {
                self.at_value("spec.target.namespace", system_namespace_message(ns));
            }
            for (i, a) in spec.target.allow_namespaces.iter().enumerate() {
                if is_system_namespace(a) && a != ns {
                    self.at_value(
                        &child_index("spec.target.allowNamespaces", i),
                        system_namespace_message(a),
                    );
                }
            }
        }
        if !spec.target.allow_namespaces.is_empty() && !spec.target.allow_namespaces.contains(ns) {
            self.at(
                "spec.target.allowNamespaces",
                format!("target.allowNamespaces must include the target namespace \"{ns}\""),
            );
        }
        for name in spec.vars.keys() {
            if BUILTIN_VARS.contains(&name.as_str()) {
                self.at(
                    &child_key("spec.vars", name),
                    format!(
                        "variable \"{name}\" is built in; choose another name (built-ins: {})",
                        BUILTIN_VARS.join(", ")
                    ),
                );
            }
        }
        for (i, name) in spec.env.iter().enumerate() {
            let ok = name
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !ok {
                self.at_value(
                    &child_index("spec.env", i),
                    format!("invalid environment variable name \"{name}\""),
                );
            }
        }
        if spec.defaults.interval.0.is_zero() {
            self.at_value(
                "spec.defaults.interval",
                "the poll interval must be greater than 0s",
            );
        }
        if spec.defaults.timeout.0.is_zero() {
            self.at_value(
                "spec.defaults.timeout",
                "the default timeout must be greater than 0s",
            );
        }
        for (i, step) in spec.fixtures.iter().enumerate() {
            self.step(step, &child_index("spec.fixtures", i));
        }
        for (i, a) in spec.steady_state.iter().enumerate() {
            self.assertion(a, &child_index("spec.steadyState", i));
        }
        let mut probe_names = HashSet::new();
        for (i, probe) in spec.probes.iter().enumerate() {
            let p = child_index("spec.probes", i);
            self.probe(probe, &p, &mut probe_names);
        }
        if let Some(prom) = &spec.prometheus {
            for (name, v) in &prom.headers {
                self.template_str(v, &child_key("spec.prometheus.headers", name));
            }
        }
        for (i, stop) in spec.stop_conditions.iter().enumerate() {
            let p = child_index("spec.stopConditions", i);
            match stop {
                StopCondition::Probe {
                    probe,
                    success_rate,
                } => {
                    if !probe_names.contains(probe.as_str()) {
                        let known: Vec<&str> =
                            spec.probes.iter().map(|p| p.name.as_str()).collect();
                        self.at_value(
                            &child_key(&p, "probe"),
                            format!("unknown probe \"{probe}\"; probes: [{}]", known.join(", ")),
                        );
                    }
                    if !(0.0..=1.0).contains(&success_rate.below) {
                        self.at_value(
                            &format!("{p}.successRate.below"),
                            "successRate.below must be within 0..1",
                        );
                    }
                }
                StopCondition::Resource(r) => {
                    self.jsonpath(&r.jsonpath, &format!("{p}.resource.jsonpath"))
                }
                StopCondition::Promql(q) => {
                    let k = child_key(&p, "promql");
                    self.promql(&q.query, &child_key(&k, "query"));
                    self.template_str(&q.query, &child_key(&k, "query"));
                }
                StopCondition::MaxDuration(d) => {
                    if d.0.is_zero() {
                        self.at_value(
                            &child_key(&p, "maxDuration"),
                            "maxDuration must be greater than 0s",
                        );
                    }
                }
            }
        }
        if let Some(policy) = &spec.policy {
            if policy.max_pods_affected.is_some_and(|v| v > 100) {
                self.at_value(
                    "spec.policy.maxPodsAffected",
                    "maxPodsAffected is a percentage: 0..=100",
                );
            }
        }
        let mut names = HashSet::new();
        for (i, scenario) in spec.scenarios.iter().enumerate() {
            let p = child_index("spec.scenarios", i);
            if !scenario.name.trim().is_empty() && !names.insert(scenario.name.as_str()) {
                self.at_value(
                    &child_key(&p, "name"),
                    format!("scenario name \"{}\" is used twice", scenario.name),
                );
            }
            self.scenario(scenario, &p);
        }
        if let Some(ai) = &spec.ai {
            if let Some(t) = ai.temperature {
                if !(0.0..=2.0).contains(&t) {
                    self.at_value("spec.ai.temperature", "temperature must be within 0..2");
                }
            }
            if let Some(t) = ai.top_p {
                if !(0.0..=1.0).contains(&t) {
                    self.at_value("spec.ai.topP", "topP must be within 0..1");
                }
            }
            if ai.count == 0 {
                self.at_value("spec.ai.count", "count must be at least 1");
            }
            if ai.prompt.trim().is_empty() {
                self.at_value("spec.ai.prompt", "the prompt must not be empty");
            }
            self.template_str(&ai.prompt, "spec.ai.prompt");
            if let Some(s) = &ai.system {
                self.template_str(s, "spec.ai.system");
            }
        }
    }

    fn scenario(&mut self, scenario: &Scenario, p: &str) {
        if scenario.name.trim().is_empty() {
            self.at_value(&child_key(p, "name"), "a scenario name must not be empty");
        }
        if scenario.steps.is_empty() && scenario.assertions.is_empty() {
            self.at(
                p,
                format!(
                    "scenario \"{}\" has no steps and no assertions",
                    scenario.name
                ),
            );
        }
        let steps = child_key(p, "steps");
        for (i, step) in scenario.steps.iter().enumerate() {
            self.step(step, &child_index(&steps, i));
        }
        let assertions = child_key(p, "assertions");
        for (i, a) in scenario.assertions.iter().enumerate() {
            self.assertion(a, &child_index(&assertions, i));
        }
        // The suite's probes run with the scenario's: one name, one probe.
        let mut names: HashSet<&str> = HashSet::new();
        let probes = child_key(p, "probes");
        for (i, probe) in scenario.probes.iter().enumerate() {
            let pp = child_index(&probes, i);
            if self.suite_probes.contains(&probe.name) {
                self.at_value(
                    &child_key(&pp, "name"),
                    format!(
                        "probe name \"{}\" is a probe of the suite (spec.probes) already",
                        probe.name
                    ),
                );
            }
            self.probe(probe, &pp, &mut names);
        }
    }

    fn probe<'p>(&mut self, probe: &'p Probe, p: &str, names: &mut HashSet<&'p str>) {
        if probe.name.trim().is_empty() {
            self.at_value(&child_key(p, "name"), "a probe name must not be empty");
        } else if !names.insert(probe.name.as_str()) {
            self.at_value(
                &child_key(p, "name"),
                format!("probe name \"{}\" is used twice", probe.name),
            );
        }
        if probe.every.0.is_zero() {
            self.at_value(
                &child_key(p, "every"),
                "a probe interval must be greater than 0s",
            );
        }
        let e = child_key(p, "expect");
        if let Some(r) = &probe.expect.success_rate {
            if let Err(e2) = super::threshold::parse_rate(r) {
                self.at_value(&child_key(&e, "successRate"), e2.to_string());
            }
        }
        if let Some(l) = &probe.expect.p99 {
            if let Err(e2) = super::threshold::parse_latency(l) {
                self.at_value(&child_key(&e, "p99"), e2.to_string());
            }
        }
        self.templates(probe, p);
    }

    // ---- steps ----

    fn step(&mut self, step: &Step, p: &str) {
        self.templates(step, p);
        if step.timeout.is_some_and(|t| t.0.is_zero()) {
            self.at_value(
                &child_key(p, "timeout"),
                "a timeout must be greater than 0s",
            );
        }
        let a = child_key(p, step.action.kind());
        if let Some(ns) = step.action.namespace() {
            self.namespace(ns, &child_key(&a, "namespace"));
        }
        match &step.action {
            StepAction::Apply(s) | StepAction::Create(s) => match (&s.file, &s.manifest) {
                (Some(_), Some(_)) => self.at(&a, "give either file or manifest, not both"),
                (None, None) => self.at(&a, "give one of file (a path) or manifest (inline YAML)"),
                (Some(f), None) => self.manifest_file(f, &child_key(&a, "file")),
                (None, Some(m)) => {
                    if m.trim().is_empty() {
                        self.at_value(&child_key(&a, "manifest"), "the manifest is empty");
                    }
                }
            },
            StepAction::Delete(d) => {
                if let Some(f) = &d.file {
                    if d.kind.is_some() || d.name.is_some() || d.selector.is_some() {
                        self.at(&a, "delete by file takes no kind, name or selector");
                    }
                    self.manifest_file(f, &child_key(&a, "file"));
                } else {
                    if d.kind.is_none() {
                        self.at(&a, "delete needs a kind (or a file)");
                    }
                    match (&d.name, &d.selector) {
                        (None, None) => {
                            self.at(&a, "delete needs a name or a selector (or a file)")
                        }
                        (Some(_), Some(_)) => self.at(&a, "give either name or selector, not both"),
                        _ => {}
                    }
                }
            }
            StepAction::Patch(s) => {
                let ok = match s.patch_type {
                    PatchType::Json => s.patch.is_array(),
                    PatchType::Merge | PatchType::Strategic => s.patch.is_object(),
                };
                if !ok {
                    let want = if s.patch_type == PatchType::Json {
                        "a list of JSON patch operations"
                    } else {
                        "a mapping"
                    };
                    self.at_value(
                        &child_key(&a, "patch"),
                        format!("for type {:?} the patch must be {want}", s.patch_type)
                            .to_lowercase(),
                    );
                }
            }
            StepAction::Scale(_) | StepAction::Restart(_) | StepAction::Sleep(_) => {}
            StepAction::Wait(w) => {
                match w.condition() {
                    Err(msg) => self.at(&a, msg),
                    Ok(super::step::WaitCondition::JsonPath { path, expect }) => {
                        self.jsonpath(&path, &child_key(&a, "jsonpath"));
                        self.matcher(&expect, &child_key(&a, "matches"));
                    }
                    Ok(_) => {}
                }
                if w.name.is_some() && w.selector.is_some() {
                    self.at(&a, "give either name or selector, not both");
                }
                if w.timeout.is_some() && step.timeout.is_some() {
                    self.at(
                        &child_key(&a, "timeout"),
                        "timeout is given twice (on the step and in wait)",
                    );
                }
            }
            StepAction::Fault(f) => {
                if !(1..=100).contains(&f.percent) {
                    self.at_value(&child_key(&a, "percent"), "percent must be within 1..=100");
                }
                if f.loss.is_some_and(|l| l > 100) {
                    self.at_value(&child_key(&a, "loss"), "loss is a percentage: 0..=100");
                }
                if f.duration.0.is_zero() {
                    self.at_value(
                        &child_key(&a, "duration"),
                        "a fault duration must be greater than 0s",
                    );
                }
                if f.selector.trim().is_empty() {
                    self.at_value(&child_key(&a, "selector"), "the selector must not be empty");
                }
                let t = f.fault_type;
                let need = |field: &str, present: bool, wanted: bool| -> Option<String> {
                    match (present, wanted) {
                        (false, true) => Some(format!("a {} fault needs `{field}`", t.as_str())),
                        (true, false) => Some(format!(
                            "`{field}` does not apply to a {} fault",
                            t.as_str()
                        )),
                        _ => None,
                    }
                };
                let rules = [
                    ("latency", f.latency.is_some(), t == FaultType::NetworkDelay),
                    ("loss", f.loss.is_some(), t == FaultType::NetworkLoss),
                    // A partition without `target` cuts the pods off from everything,
                    // the gateway included.
                    (
                        "target",
                        f.target.is_some(),
                        f.target.is_some() && t == FaultType::NetworkPartition,
                    ),
                ];
                for (field, present, wanted) in rules {
                    if let Some(msg) = need(field, present, wanted) {
                        self.at(&child_key(&a, field), msg);
                    }
                }
                if f.jitter.is_some() && t != FaultType::NetworkDelay {
                    self.at(
                        &child_key(&a, "jitter"),
                        format!("`jitter` does not apply to a {} fault", t.as_str()),
                    );
                }
                if f.direction.is_some() && t == FaultType::PodKill {
                    self.at(
                        &child_key(&a, "direction"),
                        "`direction` does not apply to a podKill fault",
                    );
                }
            }
        }
    }

    fn namespace(&mut self, ns: &str, path: &str) {
        if templated(ns) {
            return; // known only after rendering; the guard checks it then
        }
        if !self.allow_namespaces.iter().any(|a| a == ns) {
            let allowed = self.allow_namespaces.join(", ");
            self.at_value(
                path,
                format!("namespace \"{ns}\" is outside target.allowNamespaces [{allowed}]"),
            );
        }
    }

    fn manifest_file(&mut self, written: &str, path: &str) {
        if templated(written) {
            return;
        }
        let resolved = resolve_manifest_path(&self.suite_dir, written);
        match std::fs::read_to_string(&resolved) {
            Ok(content) => {
                if let Err(msg) = check_syntax(&content) {
                    self.at_value(path, format!("manifest file \"{written}\": {msg}"));
                }
            }
            Err(e) => self.at_value(
                path,
                format!(
                    "manifest file \"{written}\" not readable (resolved to {}): {e}",
                    resolved.display()
                ),
            ),
        }
    }

    // ---- assertions ----

    fn assertion(&mut self, a: &Assertion, p: &str) {
        self.templates(a, p);
        let k = child_key(p, a.kind.key());
        match &a.kind {
            AssertionKind::Http(h) => {
                if h.url.trim().is_empty() {
                    self.at_value(&child_key(&k, "url"), "the url must not be empty");
                }
                if h.method.is_empty() || !h.method.bytes().all(|b| b.is_ascii_uppercase()) {
                    self.at_value(
                        &child_key(&k, "method"),
                        format!(
                            "invalid HTTP method \"{}\": expected e.g. GET, POST",
                            h.method
                        ),
                    );
                }
                if let Some(ev) = &h.eventually {
                    if ev.within.0.is_zero() || ev.every.0.is_zero() {
                        self.at(
                            &child_key(&k, "eventually"),
                            "eventually.within and eventually.every must be greater than 0s",
                        );
                    }
                }
                let e = child_key(&k, "expect");
                if let Some(re) = &h.expect.body_matches {
                    self.regex(re, &child_key(&e, "bodyMatches"));
                }
                let headers = child_key(&e, "headers");
                for (name, m) in &h.expect.headers {
                    self.matcher(m, &child_key(&headers, name));
                }
                let json = child_key(&e, "json");
                for (path, m) in &h.expect.json {
                    let jp = child_key(&json, path);
                    self.jsonpath_key(path, &jp);
                    self.matcher(m, &jp);
                }
            }
            AssertionKind::Resource(r) => {
                if r.name.is_some() && r.selector.is_some() {
                    self.at(&k, "give either name or selector, not both");
                }
                let e = child_key(&k, "expect");
                for (path, m) in &r.expect {
                    let jp = child_key(&e, path);
                    self.jsonpath_key(path, &jp);
                    self.matcher(m, &jp);
                }
            }
            AssertionKind::Order(o) => {
                self.jsonpath(&o.by, &child_key(&k, "by"));
                if o.expect.len() < 2 {
                    self.at(
                        &child_key(&k, "expect"),
                        "an order assertion needs at least two names",
                    );
                }
                let mut seen = BTreeSet::new();
                for n in &o.expect {
                    if !seen.insert(n) {
                        self.at(&child_key(&k, "expect"), format!("\"{n}\" is listed twice"));
                    }
                }
            }
            AssertionKind::Absent(_) | AssertionKind::Present(_) => {}
            AssertionKind::Promql(q) => {
                self.promql(&q.query, &child_key(&k, "query"));
                match (&q.expect, q.empty) {
                    (Some(_), Some(_)) | (None, None) => self.at(
                        &k,
                        "a promql assertion needs exactly one of `expect` (e.g. \"< 0.01\") or `empty: true|false`",
                    ),
                    (Some(e), None) => {
                        if let Err(err) = super::threshold::parse_number(e) {
                            self.at_value(&child_key(&k, "expect"), err.to_string());
                        }
                    }
                    (None, Some(_)) => {}
                }
                if let Some(ev) = &q.eventually {
                    if ev.within.0.is_zero() || ev.every.0.is_zero() {
                        self.at(
                            &child_key(&k, "eventually"),
                            "eventually.within and eventually.every must be greater than 0s",
                        );
                    }
                }
            }
        }
    }

    /// PromQL syntax is left to the server (see README): a typo fails its check with
    /// Prometheus's own message. Only an empty query is caught here.
    fn promql(&mut self, query: &str, path: &str) {
        if query.trim().is_empty() {
            self.at_value(path, "the query must not be empty");
        }
    }

    fn matcher(&mut self, m: &Matcher, path: &str) {
        if let Some(re) = m.regex() {
            let p = if path.ends_with(".matches") {
                path.to_string()
            } else {
                child_key(path, "matches")
            };
            self.regex(re, &p);
        }
    }

    fn regex(&mut self, re: &str, path: &str) {
        if templated(re) {
            return;
        }
        if let Err(e) = regex::Regex::new(re) {
            // The regex crate's message is multi-line; keep its last line.
            let text = e.to_string();
            let why = text
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("invalid")
                .trim();
            let why = why.strip_prefix("error: ").unwrap_or(why);
            self.at_value(path, format!("invalid regex \"{re}\": {why}"));
        }
    }

    /// A JSON path held in a value (`by: $.x`).
    fn jsonpath(&mut self, jp: &str, path: &str) {
        self.jsonpath_checked(jp, path, true);
    }

    /// A JSON path used as a mapping key (`expect: {"$.x": 1}`).
    fn jsonpath_key(&mut self, jp: &str, path: &str) {
        self.jsonpath_checked(jp, path, false);
    }

    fn jsonpath_checked(&mut self, jp: &str, path: &str, value: bool) {
        if templated(jp) {
            return;
        }
        if let Err(e) = jsonpath_rust::parser::parse_json_path(jp) {
            let message = format!(
                "invalid JSON path \"{jp}\": {}",
                jsonpath_reason(&e.to_string())
            );
            self.push(path, message, value);
        }
    }

    // ---- templates ----

    /// Check the template syntax of every string inside `item` (serialized
    /// the way it is written, so paths match the document).
    fn templates<T: Serialize>(&mut self, item: &T, path: &str) {
        if let Ok(v) = serde_json::to_value(item) {
            self.template_walk(&v, path);
        }
    }

    fn template_walk(&mut self, v: &Value, path: &str) {
        match v {
            Value::String(s) => self.template_str(s, path),
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.template_walk(item, &child_index(path, i));
                }
            }
            Value::Object(map) => {
                for (k, item) in map {
                    self.template_walk(item, &child_key(path, k));
                }
            }
            _ => {}
        }
    }

    fn template_str(&mut self, s: &str, path: &str) {
        if let Err(msg) = check_syntax(s) {
            self.at_value(path, msg);
        }
    }
}

/// One line out of the parser's multi-line report: what was expected, where.
fn jsonpath_reason(report: &str) -> String {
    let column = report
        .split("-->")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|lc| lc.split(':').nth(1))
        .map(str::to_string);
    let expected = report
        .lines()
        .find_map(|l| l.trim().strip_prefix("= expected "))
        .map(str::trim);
    match (expected, column) {
        (Some("jp_query"), _) => "a JSON path starts with \"$\", e.g. $.status.phase".to_string(),
        (Some(what), Some(col)) => {
            format!("expected {} at character {col}", what.replace('_', " "))
        }
        _ => report
            .lines()
            .next()
            .unwrap_or("does not parse")
            .trim()
            .to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsonpath_reasons_are_one_line() {
        let reason = |p: &str| {
            jsonpath_reason(
                &jsonpath_rust::parser::parse_json_path(p)
                    .unwrap_err()
                    .to_string(),
            )
        };
        assert_eq!(reason("$.status["), "expected selector at character 10");
        assert_eq!(
            reason("status.x"),
            "a JSON path starts with \"$\", e.g. $.status.phase"
        );
    }

    fn suite_with(scenarios: serde_json::Value) -> Suite {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "heatcheck.dev/v1alpha1", "kind": "Suite", "metadata": {"name": "s"},
            "spec": {"target": {"namespace": "shop"}, "scenarios": scenarios}
        }))
        .unwrap()
    }

    #[test]
    fn validate_scenario_collects_every_problem_with_paths() {
        let suite = suite_with(serde_json::json!([]));
        let scenario: Scenario = serde_json::from_value(serde_json::json!({
            "name": "ai one",
            "steps": [
                {"wait": {"kind": "Pod", "present": true, "available": true}},
                {"fault": {"type": "networkDelay", "selector": "app=a", "duration": "10s", "percent": 0}},
                {"delete": {"kind": "Pod", "name": "p", "namespace": "prod"}},
                {"apply": {"manifest": "kind: {{#if x}}"}}
            ],
            "assertions": [{"order": {"kind": "Pod", "by": "metadata.name", "expect": ["a"]}}]
        }))
        .unwrap();
        let problems = validate_scenario(&scenario, &suite);
        let got: Vec<(String, String)> = problems
            .iter()
            .map(|d| (d.yaml_path.clone().unwrap_or_default(), d.message.clone()))
            .collect();
        let paths: Vec<&str> = got.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            paths,
            [
                "steps[0].wait",
                "steps[1].fault.percent",
                "steps[1].fault.latency",
                "steps[2].delete.namespace",
                "steps[3].apply.manifest",
                "assertions[0].order.by",
                "assertions[0].order.expect",
            ],
            "{got:#?}"
        );
        assert!(problems.iter().all(|d| d.line.is_none()));
        assert!(got[3]
            .1
            .contains("namespace \"prod\" is outside target.allowNamespaces [shop]"));
    }

    #[test]
    fn thresholds() {
        assert!(crate::threshold::parse_rate(">= 0.99").is_ok());
        assert!(crate::threshold::parse_rate("<0.5").is_ok());
        assert!(crate::threshold::parse_rate(">= 99").is_err());
        assert!(crate::threshold::parse_rate("0.99").is_err());
        assert!(crate::threshold::parse_latency("< 500ms").is_ok());
        assert!(crate::threshold::parse_latency("< 500").is_err());
    }

    #[test]
    fn dns_labels() {
        assert!(is_dns_label("route-chaos"));
        assert!(!is_dns_label("Route"));
        assert!(!is_dns_label("-a"));
        assert!(!is_dns_label(""));
    }
}
