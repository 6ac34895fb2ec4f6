//! The game-day playbook: one document per `heatcheck playbook` run, built
//! from the suites, their lockfiles and the guard's plan, rendered as
//! Markdown or HTML (src/report/doc.rs). It never calls the cluster: the
//! command passes in what a cluster answered (dry runs, the exact Role,
//! gateway URLs) when one was given.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_json::Value;

use super::doc::{Block, Doc};
use super::kubectl::{assertion_text, probe_command, sh, step_command};
use heatcheck_format::{
    format_duration, template_context, GatewayResolver, Scenario, Step, StepAction, StopCondition,
    Suite, Templater,
};
use heatcheck_guard::{EffectivePolicy, Touch, Violation, FIXTURES};

/// Everything one playbook says.
pub struct PlaybookInput {
    pub version: String,
    /// As printed; the command decides (today, or `--date`).
    pub date: String,
    /// `server (context)` when a cluster was asked; None: from the suites alone.
    pub cluster: Option<String>,
    pub suites: Vec<SuiteInput>,
}

pub struct SuiteInput {
    pub suite: Suite,
    /// The suite file as the user named it.
    pub file: String,
    pub sha256: String,
    pub lock: Option<LockInput>,
    pub policy: EffectivePolicy,
    pub notes: Vec<String>,
    pub violations: Vec<Violation>,
    pub vars: Vec<(String, String)>,
    /// Gateway `namespace/name` -> base URL, as the cluster publishes it.
    pub gateways: BTreeMap<String, String>,
    pub cluster: Option<ClusterAnswers>,
    /// Scenario name -> its verified fix (`heatcheck remediate`), shown beside it.
    pub fixes: super::fixes::Fixes,
}

pub struct LockInput {
    pub file: String,
    pub sha256: String,
    pub generated_by: String,
    pub scenarios: Vec<Scenario>,
}

/// What `plan` learned from the cluster.
#[derive(Default)]
pub struct ClusterAnswers {
    /// The least-privilege Role(s) as YAML.
    pub rbac_yaml: String,
    /// (case name, step index) -> "verb object: answer" lines.
    pub steps: BTreeMap<(String, usize), Vec<String>>,
}

/// The shell variable standing for a gateway's base URL: `GATEWAY_MY_GATEWAY`.
pub fn gateway_var(name: &str) -> String {
    let up: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("GATEWAY_{up}")
}

/// `{{gateway "x"}}` becomes the resolved URL, else `$GATEWAY_X` (set in the prerequisites).
struct PlaybookGateways(BTreeMap<String, String>);

impl GatewayResolver for PlaybookGateways {
    fn gateway_url(&self, namespace: &str, name: &str) -> Result<String, String> {
        Ok(self
            .0
            .get(&format!("{namespace}/{name}"))
            .cloned()
            .unwrap_or_else(|| format!("${}", gateway_var(name))))
    }
}

/// What a step touches, with faults labelled for `$RUN_ID` as a run labels them.
fn touches(suite: &Suite, t: &Templater, step: &Step, i: usize) -> Result<Vec<Touch>, String> {
    let mut list = heatcheck_guard::touches(suite, t, step, i)?;
    if matches!(step.action, StepAction::Fault(_)) {
        for tc in &mut list {
            if let Some(l) = tc
                .object
                .as_mut()
                .and_then(|o| o.pointer_mut("/metadata/labels/heatcheck.dev~1run-id"))
            {
                *l = Value::String("$RUN_ID".into());
            }
        }
    }
    Ok(list)
}

fn templater(s: &SuiteInput) -> Templater {
    let mut ctx = template_context(&s.suite, "$RUN_ID");
    for (k, v) in &s.vars {
        ctx.insert(k.clone(), Value::String(v.clone()));
    }
    Templater::new(ctx, Arc::new(PlaybookGateways(s.gateways.clone())))
}

/// The playbook as a document (render with `to_markdown` / `to_html`).
pub fn build(input: &PlaybookInput) -> Doc {
    let names: Vec<&str> = input
        .suites
        .iter()
        .map(|s| s.suite.metadata.name.as_str())
        .collect();
    let mut d = Doc::new(format!("Game-day playbook: {}", names.join(", ")));
    d.push(Block::Table(
        vec!["".into(), "".into()],
        vec![
            vec!["heatcheck".into(), format!("`{}`", input.version)],
            vec!["date".into(), input.date.clone()],
            vec![
                "cluster".into(),
                input
                    .cluster
                    .clone()
                    .unwrap_or_else(|| "none: written from the suites alone (no dry run)".into()),
            ],
        ],
    ));
    let mut rows = Vec::new();
    for s in &input.suites {
        rows.push(vec![
            format!("`{}`", s.file),
            format!("`{}`", s.sha256),
            "suite".into(),
        ]);
        if let Some(l) = &s.lock {
            rows.push(vec![
                format!("`{}`", l.file),
                format!("`{}`", l.sha256),
                format!("lockfile ({})", l.generated_by),
            ]);
        }
    }
    d.h(2, "Sources");
    d.push(Block::Table(
        vec!["file".into(), "sha256".into(), "what".into()],
        rows,
    ));
    d.p("Run it as rehearsed: `heatcheck run SUITE --locked` does every step below, checks every expectation and restores the cluster. The commands beside each step are the hand-run equivalent, for reading along or for doing it without heatcheck.");
    for s in &input.suites {
        d.push(Block::Break);
        suite_section(&mut d, s);
    }
    d
}

fn suite_section(d: &mut Doc, s: &SuiteInput) {
    let suite = &s.suite;
    let t = templater(s);
    let ns = suite.spec.target.namespace.as_str();
    d.h(2, format!("Suite {}", suite.metadata.name));
    d.labeled(
        "Purpose",
        suite
            .metadata
            .description
            .as_deref()
            .map(|x| x.split_whitespace().collect::<Vec<_>>().join(" "))
            .unwrap_or_else(|| "(the suite has no description)".into()),
    );

    d.h(3, "Target and policy");
    d.list(policy_words(&s.policy));
    for n in &s.notes {
        d.labeled("Note", n.clone());
    }
    if s.violations.is_empty() {
        d.p("Guard verdict: every step below is allowed by this policy.");
    } else {
        d.p("Guard verdict: REFUSED. heatcheck will not run this suite until these are fixed:");
        d.list(s.violations.iter().map(|v| v.to_string()).collect());
    }

    let scenarios = all_scenarios(s);
    d.h(3, "Prerequisites");
    prerequisites(d, s, &t, &scenarios);

    d.h(3, "Steady-state hypothesis");
    if suite.spec.steady_state.is_empty() {
        d.p("The suite states no steady state.");
    } else {
        d.p("Before the first scenario and after each one, all of this holds:");
        for a in &suite.spec.steady_state {
            let (words, cmd) = assertion_text(a, ns, &t);
            d.labeled(a.display_name(), words);
            d.code("sh", cmd);
        }
    }

    d.h(3, "Probes to watch");
    if suite.spec.probes.is_empty() {
        d.p("The suite defines no probes: watch the gateway's request rate, error rate and latency on your dashboards.");
    } else {
        let rows = suite
            .spec
            .probes
            .iter()
            .map(|p| {
                let mut th = Vec::new();
                if let Some(r) = &p.expect.success_rate {
                    th.push(format!("success rate {r}"));
                }
                if let Some(r) = &p.expect.p99 {
                    th.push(format!("p99 {r}"));
                }
                if let Some(m) = &p.expect.max_outage {
                    th.push(format!("longest outage <= {}", format_duration(m.0)));
                }
                vec![
                    p.name.clone(),
                    format!("{:?}", p.mode).to_ascii_lowercase(),
                    format_duration(p.every.0),
                    if th.is_empty() {
                        "measured only".into()
                    } else {
                        th.join(", ")
                    },
                ]
            })
            .collect();
        d.push(Block::Table(
            vec![
                "probe".into(),
                "mode".into(),
                "every".into(),
                "thresholds".into(),
            ],
            rows,
        ));
        for p in &suite.spec.probes {
            d.code(
                "sh",
                format!("# {}\n{}", p.name, probe_command(&p.http, &t)),
            );
        }
    }

    d.h(3, "Abort criteria");
    let mut stops: Vec<String> = suite
        .spec
        .stop_conditions
        .iter()
        .map(|c| stop_words(c, ns, &t))
        .collect();
    if let Some(m) = &s.policy.max_duration {
        stops.push(format!(
            "a scenario runs longer than {} (policy maxDuration)",
            format_duration(m.0)
        ));
    }
    if let Some(m) = suite.spec.policy.as_ref().and_then(|p| p.max_run_duration) {
        stops.push(format!(
            "the whole run takes longer than {}",
            format_duration(m.0)
        ));
    }
    stops.push("the team calls it: press Ctrl-C in the heatcheck terminal, or run `heatcheck abort` from another one".into());
    d.p("Stop, restore and debrief when any of these happens (heatcheck stops by itself on all but the last, restores, and exits 4):");
    d.list(stops);

    let fixture_steps = fixtures(suite);
    if !fixture_steps.is_empty() {
        d.h(3, "Set-up (fixtures)");
        d.p("Applied once before the scenarios and removed after the last one.");
        steps_section(d, s, &t, FIXTURES, &fixture_steps);
    }

    for (i, (sc, origin)) in scenarios.iter().enumerate() {
        scenario_section(d, s, &t, i + 1, sc, origin);
    }

    d.h(3, "Tear-down");
    let mut td = vec![
        "heatcheck removes the fixtures after the last scenario, in reverse order, from its journal.".to_string(),
    ];
    if suite.spec.target.create_namespace {
        td.push(format!(
            "The namespace `{ns}` was created by heatcheck and is deleted last."
        ));
    }
    d.list(td);
    if suite.spec.target.create_namespace {
        d.code(
            "sh",
            format!("kubectl delete namespace {} --wait=true", sh(ns)),
        );
    } else {
        let cmds: Vec<String> = fixture_steps
            .iter()
            .enumerate()
            .rev()
            .flat_map(|(i, st)| undo_commands(&touches(suite, &t, st, i).unwrap_or_default()))
            .collect();
        d.code("sh", cmds.join("\n"));
    }
}

fn fixtures(suite: &Suite) -> Vec<Step> {
    let mut out = Vec::new();
    if suite.spec.target.create_namespace {
        let ns = &suite.spec.target.namespace;
        let mut step = Step::new(StepAction::Apply(heatcheck_format::ApplyStep {
            file: None,
            manifest: Some(format!(
                "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n"
            )),
            namespace: None,
        }));
        step.name = Some(format!("create namespace {ns}"));
        out.push(step);
    }
    out.extend(suite.spec.fixtures.iter().cloned());
    out
}

fn all_scenarios(s: &SuiteInput) -> Vec<(Scenario, &'static str)> {
    let mut out: Vec<(Scenario, &'static str)> = s
        .suite
        .spec
        .scenarios
        .iter()
        .map(|sc| (sc.clone(), "suite"))
        .collect();
    if let Some(l) = &s.lock {
        out.extend(l.scenarios.iter().map(|sc| (sc.clone(), "lock")));
    }
    out
}

fn policy_words(p: &EffectivePolicy) -> Vec<String> {
    let mut out = vec![format!(
        "Target namespace `{}`{}.",
        p.target_namespace,
        if p.create_namespace {
            " (created first, deleted last)"
        } else {
            " (must exist)"
        }
    )];
    out.push(format!(
        "Changes only in: {}.",
        p.allow_namespaces
            .iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    let denied = if p.denied_kinds.is_empty() {
        String::new()
    } else {
        format!(
            ", and {}",
            p.denied_kinds
                .iter()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    out.push(format!(
        "Never touched: Namespaces (except its own), CRDs, Nodes, ClusterRoles and every other cluster-scoped kind{}{denied}.",
        if p.allowed_kinds.is_empty() {
            String::new()
        } else {
            format!(
                " except {}",
                p.allowed_kinds.iter().cloned().collect::<Vec<_>>().join(", ")
            )
        }
    ));
    out.push(match p.max_pods_affected {
        Some(m) => format!("One step may delete or fault at most {m}% of a namespace's pods."),
        None => "No cap on the share of pods one step may affect.".into(),
    });
    out.push(match &p.max_duration {
        Some(m) => format!(
            "Longest sleep, fault and scenario: {}.",
            format_duration(m.0)
        ),
        None => "No cap on how long a fault or scenario lasts.".into(),
    });
    if !p.forbidden_verbs.is_empty() {
        out.push(format!(
            "Forbidden: {}.",
            p.forbidden_verbs
                .iter()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    out
}

fn stop_words(c: &StopCondition, ns: &str, t: &Templater) -> String {
    match c {
        StopCondition::Promql(q) => {
            let query = t.render(&q.query).unwrap_or_else(|_| q.query.clone());
            let bound = match (q.above, q.below) {
                (Some(a), _) => format!("above {a}"),
                (None, Some(b)) => format!("below {b}"),
                _ => "out of bounds".to_string(),
            };
            format!(
                "PromQL `{query}` stays {bound} for {}",
                format_duration(q.for_duration.0)
            )
        }
        StopCondition::MaxDuration(d) => {
            format!("a scenario runs longer than {}", format_duration(d.0))
        }
        StopCondition::Probe {
            probe,
            success_rate,
        } => format!(
            "probe {probe}'s success rate stays below {} for {}",
            success_rate.below,
            format_duration(success_rate.for_duration.0)
        ),
        StopCondition::Resource(r) => {
            let rns = r
                .namespace
                .as_deref()
                .map(|n| t.render(n).unwrap_or_else(|_| n.to_string()))
                .unwrap_or_else(|| ns.to_string());
            format!(
                "{} `{rns}/{}` has `{}` equal to {} (`kubectl get {} {} -n {rns} -o jsonpath={}`)",
                r.kind,
                r.name,
                r.jsonpath,
                r.equals,
                r.kind.to_ascii_lowercase(),
                r.name,
                sh(&super::kubectl::kubectl_path(&r.jsonpath))
            )
        }
    }
}

fn prerequisites(d: &mut Doc, s: &SuiteInput, t: &Templater, scenarios: &[(Scenario, &str)]) {
    let suite = &s.suite;
    let ns = suite.spec.target.namespace.as_str();
    // Every object any step touches, by (namespace, kind) -> verbs.
    let mut access: BTreeMap<(String, String), BTreeSet<&'static str>> = BTreeMap::new();
    let mut chaos: BTreeSet<String> = BTreeSet::new();
    let mut gateways: Vec<(String, String, Vec<String>)> = Vec::new();
    let mut route_hosts: BTreeSet<String> = BTreeSet::new();
    let mut groups: Vec<Vec<Step>> = vec![fixtures(suite)];
    groups.extend(scenarios.iter().map(|(sc, _)| sc.steps.clone()));
    for steps in &groups {
        for (i, st) in steps.iter().enumerate() {
            for tc in touches(suite, t, st, i).unwrap_or_default() {
                let verbs =
                    heatcheck_guard::rbac_verbs(if tc.action == "fault" && tc.kind == "Pod" {
                        "read"
                    } else {
                        tc.action
                    });
                access
                    .entry((tc.namespace.clone(), tc.kind.clone()))
                    .or_default()
                    .extend(verbs.iter().copied());
                if let Some(o) = &tc.object {
                    match tc.kind.as_str() {
                        "NetworkChaos" | "PodChaos" => {
                            chaos.insert(format!(
                                "Chaos Mesh: the `{}` CRD (`{}.chaos-mesh.org`) and its controller and chaos daemon",
                                tc.kind,
                                tc.kind.to_ascii_lowercase()
                            ));
                        }
                        "ChaosEngine" => {
                            let exp = o
                                .pointer("/spec/experiments/0/name")
                                .and_then(Value::as_str)
                                .unwrap_or("?");
                            chaos.insert(format!(
                                "Litmus: the `ChaosEngine` CRD (`chaosengines.litmuschaos.io`), the `{exp}` ChaosExperiment and the `{exp}-sa` ServiceAccount in `{}`",
                                tc.namespace
                            ));
                        }
                        "Gateway" => {
                            let listeners = o
                                .pointer("/spec/listeners")
                                .and_then(Value::as_array)
                                .map(|ls| {
                                    ls.iter()
                                        .map(|l| {
                                            format!(
                                                "{} {}:{}",
                                                l["protocol"].as_str().unwrap_or("HTTP"),
                                                l["hostname"].as_str().unwrap_or("*"),
                                                l["port"]
                                            )
                                        })
                                        .collect()
                                })
                                .unwrap_or_default();
                            gateways.push((
                                tc.namespace.clone(),
                                tc.name.clone().unwrap_or_default(),
                                listeners,
                            ));
                        }
                        "HTTPRoute" => {
                            if let Some(hs) = o.pointer("/spec/hostnames").and_then(Value::as_array)
                            {
                                route_hosts.extend(
                                    hs.iter().filter_map(Value::as_str).map(str::to_string),
                                );
                            }
                        }
                        _ => {}
                    }
                }
            }
        }
    }
    let mut items = Vec::new();
    items.push(
        "`kubectl` pointed at the cluster, and `curl`; the commands below are written for bash."
            .to_string(),
    );
    if chaos.is_empty() {
        items.push("No chaos engine: no step injects a network or pod fault.".into());
    }
    items.extend(chaos);
    let uses_gateway_api = access
        .keys()
        .any(|(_, k)| k == "Gateway" || k == "HTTPRoute");
    if uses_gateway_api {
        items.push("Gateway API CRDs (`gateways` / `httproutes.gateway.networking.k8s.io`) and a Gateway implementation that programs them.".into());
    }
    d.list(items);

    // Gateways and how to reach them by hand.
    let mut named: BTreeSet<String> = BTreeSet::new();
    let mut urls = Vec::new();
    for (gns, name, _) in &gateways {
        named.insert(format!("{gns}/{name}"));
    }
    for (key, url) in &s.gateways {
        named.insert(key.clone());
        let _ = url;
    }
    if !gateways.is_empty() {
        let rows = gateways
            .iter()
            .map(|(gns, name, ls)| {
                vec![
                    format!("`{gns}/{name}`"),
                    if ls.is_empty() {
                        "-".into()
                    } else {
                        ls.join(", ")
                    },
                    s.gateways
                        .get(&format!("{gns}/{name}"))
                        .cloned()
                        .unwrap_or_else(|| format!("`${}`", gateway_var(name))),
                ]
            })
            .collect();
        d.labeled(
            "Gateways",
            "created by the fixtures; traffic goes through them",
        );
        d.push(Block::Table(
            vec!["gateway".into(), "listeners".into(), "base URL".into()],
            rows,
        ));
        if !route_hosts.is_empty() {
            d.labeled(
                "Route hostnames",
                route_hosts
                    .iter()
                    .map(|h| format!("`{h}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
            );
        }
    }
    for key in &named {
        if s.gateways.contains_key(key) {
            continue;
        }
        let (gns, name) = key.split_once('/').unwrap_or((ns, key));
        urls.push(format!(
            "export {}=http://$(kubectl get gateway {} -n {} -o jsonpath='{{.status.addresses[0].value}}')",
            gateway_var(name),
            sh(name),
            sh(gns)
        ));
    }
    if !urls.is_empty() {
        d.p("Once the fixtures are in place, set the gateway URLs the commands use (add `:PORT` if the listener is not on 80):");
        d.code("sh", urls.join("\n"));
    }
    d.p("`$RUN_ID` in commands stands for the run's id: heatcheck prints it and labels everything it creates with `heatcheck.dev/run-id`. By hand, pick one: `export RUN_ID=gameday-1`.");

    d.labeled(
        "Access",
        match &s.cluster {
            Some(_) => "the least-privilege Role the run needs, computed by `heatcheck plan` against the cluster (bind it to whoever runs the game day):",
            None => "what the steps and checks touch (for the exact Role with API groups and subresources, run `heatcheck plan SUITE --kubeconfig K`):",
        },
    );
    match &s.cluster {
        Some(c) => d.code("yaml", c.rbac_yaml.clone()),
        None => {
            for a in suite
                .spec
                .steady_state
                .iter()
                .chain(scenarios.iter().flat_map(|(sc, _)| sc.assertions.iter()))
            {
                for (_, kind, ans) in heatcheck_guard::assertion_reads(a, t, ns) {
                    access
                        .entry((ans, kind))
                        .or_default()
                        .extend(heatcheck_guard::rbac_verbs("read").iter().copied());
                }
            }
            let rows = access
                .into_iter()
                .map(|((n, k), v)| {
                    vec![
                        format!("`{n}`"),
                        k,
                        v.into_iter().collect::<Vec<_>>().join(", "),
                    ]
                })
                .collect();
            d.push(Block::Table(
                vec!["namespace".into(), "kind".into(), "verbs".into()],
                rows,
            ));
        }
    }
}

fn steps_section(d: &mut Doc, s: &SuiteInput, t: &Templater, case: &str, steps: &[Step]) {
    let suite = &s.suite;
    for (i, st) in steps.iter().enumerate() {
        let list = touches(suite, t, st, i).unwrap_or_default();
        let ns = st
            .action
            .namespace()
            .map(|n| t.render(n).unwrap_or_else(|_| n.to_string()))
            .unwrap_or_else(|| suite.spec.target.namespace.clone());
        d.h(4, format!("Step {}: {}", i + 1, st.display_name()));
        let mut about = Vec::new();
        if let Some(w) = step_words(st, &list) {
            about.push(w);
        }
        if !matches!(st.action, StepAction::Sleep(_)) {
            about.push(format!(
                "timeout {}",
                format_duration(st.effective_timeout(suite.spec.defaults.timeout))
            ));
        }
        if st.continue_on_error {
            about.push("a failure here does not fail the scenario".into());
        }
        if !about.is_empty() {
            d.p(about.join("; ") + ".");
        }
        let file = manifest_file(s, st, t);
        d.code("sh", step_command(st, &list, &ns, file.as_deref(), t));
        if let Some(c) = &s.cluster {
            if let Some(lines) = c.steps.get(&(case.to_string(), i)) {
                d.labeled("Dry run on the cluster", "");
                d.list(lines.clone());
            }
        }
    }
}

/// The manifest file to pass to kubectl, when the file needs no rendering.
fn manifest_file(s: &SuiteInput, st: &Step, t: &Templater) -> Option<String> {
    let written = match &st.action {
        StepAction::Apply(a) | StepAction::Create(a) => a.file.as_deref()?,
        StepAction::Delete(dl) => dl.file.as_deref()?,
        _ => return None,
    };
    let path = heatcheck_format::resolve_manifest_path(&s.suite.source.dir, written);
    let text = std::fs::read_to_string(&path).ok()?;
    if t.render(&text).ok()? != text {
        return None;
    }
    let base = std::path::Path::new(&s.file)
        .parent()
        .unwrap_or(std::path::Path::new(""));
    Some(base.join(written).display().to_string())
}

fn step_words(st: &Step, list: &[Touch]) -> Option<String> {
    let objs: Vec<String> = list
        .iter()
        .filter(|tc| !(tc.action == "fault" && tc.kind == "Pod"))
        .map(|tc| tc.describe(tc.kind == "Namespace"))
        .collect();
    Some(match &st.action {
        StepAction::Apply(_) => format!("Server-side apply of {}", objs.join(", ")),
        StepAction::Create(_) => format!("Creates {}", objs.join(", ")),
        StepAction::Delete(dl) => format!(
            "Deletes {}{}",
            objs.join(", "),
            if dl.wait { " and waits until gone" } else { "" }
        ),
        StepAction::Patch(_) => format!("Patches {}", objs.join(", ")),
        StepAction::Scale(sc) => format!("Scales {} to {} replicas", objs.join(", "), sc.replicas),
        StepAction::Restart(_) => format!("Rollout restart of {}", objs.join(", ")),
        StepAction::Wait(_) => format!("Waits for {}", objs.join(", ")),
        StepAction::Sleep(d) => format!("Waits {}", format_duration(d.0)),
        StepAction::Fault(f) => format!(
            "{} on {}% of the pods matching `{}` for {}{}; heatcheck waits until the chaos is injected and removes it when the scenario ends",
            f.fault_type.as_str(),
            f.percent,
            f.selector,
            format_duration(f.duration.0),
            f.latency
                .map(|l| format!(", adding {} of latency", format_duration(l.0)))
                .unwrap_or_default()
        ),
    })
}

/// Commands that undo what the touches change, for a by-hand rollback.
fn undo_commands(list: &[Touch]) -> Vec<String> {
    list.iter()
        .filter(|tc| tc.mutates() && tc.kind != "Pod")
        .map(|tc| {
            let kind = tc.kind.to_ascii_lowercase();
            let name = tc.name.clone().unwrap_or_default();
            let nsf = if tc.kind == "Namespace" {
                String::new()
            } else {
                format!(" -n {}", sh(&tc.namespace))
            };
            match tc.action {
                "apply" | "create" | "fault" => format!(
                    "kubectl delete {kind} {}{nsf} --ignore-not-found   # if it did not exist before; else re-apply the saved copy",
                    sh(&name)
                ),
                "delete" => match &tc.name {
                    Some(n) => format!("kubectl apply --server-side -f saved/{kind}-{n}.yaml   # recreate from the copy saved before the step"),
                    None => format!("kubectl apply --server-side -f saved/{kind}-selected.yaml   # recreate what the selector deleted"),
                },
                _ => format!(
                    "kubectl apply --server-side --force-conflicts -f saved/{kind}-{name}.yaml   # put back the copy saved before the step"
                ),
            }
        })
        .collect()
}

fn save_commands(list: &[Touch]) -> Vec<String> {
    list.iter()
        .filter(|tc| tc.mutates() && tc.kind != "Pod" && !matches!(tc.action, "fault" | "create"))
        .map(|tc| {
            let kind = tc.kind.to_ascii_lowercase();
            let nsf = format!(" -n {}", sh(&tc.namespace));
            match (&tc.name, &tc.selector) {
                (Some(n), _) => format!(
                    "kubectl get {kind} {}{nsf} -o yaml > saved/{kind}-{n}.yaml 2>/dev/null || echo absent",
                    sh(n)
                ),
                (None, Some(sel)) => format!(
                    "kubectl get {kind} -l {}{nsf} -o yaml > saved/{kind}-selected.yaml",
                    sh(sel)
                ),
                _ => String::new(),
            }
        })
        .filter(|c| !c.is_empty())
        .collect()
}

fn scenario_section(
    d: &mut Doc,
    s: &SuiteInput,
    t: &Templater,
    n: usize,
    sc: &Scenario,
    origin: &str,
) {
    let suite = &s.suite;
    let ns = suite.spec.target.namespace.as_str();
    d.h(3, format!("Scenario {n}: {}", sc.name));
    d.labeled(
        "Origin",
        if origin == "lock" {
            "AI-generated, reviewed and locked in the lockfile (runs with `--locked`)"
        } else {
            "hand-written in the suite"
        },
    );
    let hypothesis = sc
        .description
        .as_deref()
        .map(|x| x.split_whitespace().collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| {
            "the expected observations below hold while the steps run, and the steady state holds again after the restore".into()
        });
    d.labeled("Hypothesis", hypothesis);
    if let Some(v) = s.violations.iter().find(|v| v.scenario == sc.name) {
        d.labeled("Guard", format!("REFUSED: {v}"));
    }

    // Blast radius: what changes and how many pods at most.
    let mut touched = Vec::new();
    let mut pods = Vec::new();
    let mut all: Vec<Vec<Touch>> = Vec::new();
    for (i, st) in sc.steps.iter().enumerate() {
        let list = touches(suite, t, st, i).unwrap_or_default();
        for tc in list.iter().filter(|tc| tc.mutates()) {
            if tc.kind == "Pod" && tc.object.is_none() {
                continue;
            }
            touched.push(format!(
                "{} `{}`",
                tc.action,
                tc.describe(tc.kind == "Namespace")
            ));
        }
        match &st.action {
            StepAction::Fault(f) => pods.push(format!(
                "{}% of the pods matching `{}` in `{}` ({} for {})",
                f.percent,
                t.render(&f.selector).unwrap_or_else(|_| f.selector.clone()),
                ns,
                f.fault_type.as_str(),
                format_duration(f.duration.0)
            )),
            StepAction::Scale(x) => pods.push(format!(
                "the pods of {} `{}` above {} replicas",
                x.kind, x.name, x.replicas
            )),
            StepAction::Restart(x) => pods.push(format!(
                "every pod of {} `{}`, one rollout at a time",
                x.kind, x.name
            )),
            StepAction::Delete(x)
                if x.kind
                    .as_deref()
                    .is_some_and(heatcheck_guard::kinds::is_pod) =>
            {
                pods.push(format!(
                    "the pods deleted: {}",
                    x.name.clone().or(x.selector.clone()).unwrap_or_default()
                ))
            }
            _ => {}
        }
        all.push(list);
    }
    let mut blast = Vec::new();
    blast.push(if touched.is_empty() {
        "Changes nothing in the cluster.".into()
    } else {
        format!("Changes: {}.", touched.join(", "))
    });
    blast.push(if pods.is_empty() {
        "Pods affected directly: none (no fault, scale, restart or pod deletion).".into()
    } else {
        format!("Pods affected at most: {}.", pods.join("; "))
    });
    if let Some(m) = s.policy.max_pods_affected {
        blast.push(format!(
            "The guard refuses any step that would take away more than {m}% of a namespace's pods."
        ));
    }
    d.labeled("Blast radius", "");
    d.list(blast);

    let saves: Vec<String> = all.iter().flat_map(|l| save_commands(l)).collect();
    if !saves.is_empty() {
        d.p("By hand, save what the steps change first (heatcheck journals the same before each change):");
        d.code("sh", format!("mkdir -p saved\n{}", saves.join("\n")));
    }
    d.labeled("Steps", "");
    steps_section(d, s, t, &sc.name, &sc.steps);

    d.labeled("Expected observations", "");
    if sc.assertions.is_empty() {
        d.p("none (the scenario states no assertion)");
    }
    for a in &sc.assertions {
        let (words, cmd) = assertion_text(a, ns, t);
        d.labeled(a.display_name(), words);
        d.code("sh", cmd);
    }
    for p in &suite.spec.probes {
        if let Some(th) = p.expect.success_rate.as_ref().or(p.expect.p99.as_ref()) {
            let _ = th;
            d.p(format!(
                "Probe `{}` must meet its thresholds during the scenario (see Probes to watch).",
                p.name
            ));
        }
    }
    // The scenario's own probes run only here, so they are told here.
    for p in &sc.probes {
        let mut th = Vec::new();
        if let Some(r) = &p.expect.success_rate {
            th.push(format!("success rate {r}"));
        }
        if let Some(r) = &p.expect.p99 {
            th.push(format!("p99 {r}"));
        }
        if let Some(m) = &p.expect.max_outage {
            th.push(format!("longest outage <= {}", format_duration(m.0)));
        }
        d.p(format!(
            "Probe `{}` (this scenario's, every {}): {}.",
            p.name,
            format_duration(p.every.0),
            if th.is_empty() {
                "measured only".to_string()
            } else {
                th.join(", ")
            }
        ));
        d.code("sh", format!("# {}\n{}", p.name, probe_command(&p.http, t)));
    }
    d.p("Afterwards the steady-state hypothesis must hold again.");

    let mut watch: Vec<String> = sc.metrics.clone();
    watch.extend(
        suite
            .spec
            .probes
            .iter()
            .map(|p| format!("probe {} (success rate, p50/p99, outages)", p.name)),
    );
    d.labeled("Metrics to watch", "");
    if watch.is_empty() {
        d.list(vec![
            "the gateway's request rate, error rate and latency".into()
        ]);
    } else {
        d.list(watch);
    }
    d.labeled("Remediation", "");
    if sc.remediation.is_empty() {
        d.list(vec!["(none written)".into()]);
    } else {
        d.list(sc.remediation.clone());
    }
    if let Some(f) = s.fixes.get(&(suite.metadata.name.clone(), sc.name.clone())) {
        d.labeled("Verified fix", f.summary());
        if !f.diff.is_empty() {
            d.code("diff", f.diff.clone());
        }
        for y in &f.server_side_apply {
            d.code("sh", y.clone());
        }
    }

    d.labeled("Rollback", "when the scenario ends (passed, failed or aborted) heatcheck undoes its journal in reverse: objects it created are deleted, deleted ones recreated without server-set fields, changed ones put back; faults are removed. If heatcheck was killed, `heatcheck runs` lists the unfinished run and `heatcheck recover` restores it. By hand:");
    let mut undo: Vec<String> = all.iter().rev().flat_map(|l| undo_commands(l)).collect();
    undo.push(
        "heatcheck runs && heatcheck recover   # after a crash: restores from the journal".into(),
    );
    d.code("sh", undo.join("\n"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateway_variables_are_shell_names() {
        assert_eq!(gateway_var("my-gateway"), "GATEWAY_MY_GATEWAY");
        let r = PlaybookGateways(BTreeMap::from([(
            "ns/a".to_string(),
            "http://127.0.0.9".to_string(),
        )]));
        assert_eq!(r.gateway_url("ns", "a").unwrap(), "http://127.0.0.9");
        assert_eq!(r.gateway_url("ns", "b").unwrap(), "$GATEWAY_B");
    }
}
