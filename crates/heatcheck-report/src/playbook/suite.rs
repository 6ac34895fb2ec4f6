//! The document structure of one suite: purpose, target and policy,
//! prerequisites, steady state, probes, abort criteria, the fixtures, each
//! scenario, tear-down.

use super::prerequisites::prerequisites;
use super::scenario::scenario_section;
use super::steps::{steps_section, undo_commands};
use super::{all_scenarios, fixtures, templater, touches, SuiteInput};
use crate::doc::{Block, Doc};
use crate::kubectl::{assertion_text, probe_command, sh};
use heatcheck_format::{format_duration, Step, StopCondition, Suite, Templater};
use heatcheck_guard::{EffectivePolicy, FIXTURES};

pub(super) fn suite_section(d: &mut Doc, s: &SuiteInput) {
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
    probes_to_watch(d, suite, &t);

    d.h(3, "Abort criteria");
    abort_criteria(d, s, &t);

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
    tear_down(d, suite, &t, &fixture_steps);
}

/// The suite's probes, their thresholds and the command each one runs.
fn probes_to_watch(d: &mut Doc, suite: &Suite, t: &Templater) {
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
            d.code("sh", format!("# {}\n{}", p.name, probe_command(&p.http, t)));
        }
    }
}

/// When to stop: the suite's stop conditions, the policy's durations and
/// the team's call.
fn abort_criteria(d: &mut Doc, s: &SuiteInput, t: &Templater) {
    let suite = &s.suite;
    let ns = suite.spec.target.namespace.as_str();
    let mut stops: Vec<String> = suite
        .spec
        .stop_conditions
        .iter()
        .map(|c| stop_words(c, ns, t))
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
}

/// Removing the fixtures (or the namespace heatcheck created).
fn tear_down(d: &mut Doc, suite: &Suite, t: &Templater, fixture_steps: &[Step]) {
    let ns = suite.spec.target.namespace.as_str();
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
            .flat_map(|(i, st)| undo_commands(&touches(suite, t, st, i).unwrap_or_default()))
            .collect();
        d.code("sh", cmds.join("\n"));
    }
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
                sh(&crate::kubectl::kubectl_path(&r.jsonpath))
            )
        }
    }
}
