//! What must be in place before the game day: tools, chaos engines,
//! Gateway API, the gateways and how to reach them, and the access the run
//! needs.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::{fixtures, gateway_var, touches, SuiteInput};
use crate::doc::{Block, Doc};
use crate::kubectl::sh;
use heatcheck_format::{Scenario, Step, Templater};

/// (namespace, name, listeners) of a Gateway the steps create.
type GatewayListeners = (String, String, Vec<String>);

/// What the steps touch, as the prerequisites tell it.
#[derive(Default)]
struct Needs {
    /// Every object any step touches, by (namespace, kind) -> verbs.
    access: BTreeMap<(String, String), BTreeSet<&'static str>>,
    chaos: BTreeSet<String>,
    gateways: Vec<GatewayListeners>,
    route_hosts: BTreeSet<String>,
}

pub(super) fn prerequisites(
    d: &mut Doc,
    s: &SuiteInput,
    t: &Templater,
    scenarios: &[(Scenario, &str)],
) {
    let n = needs(s, t, scenarios);
    let mut items = Vec::new();
    items.push(
        "`kubectl` pointed at the cluster, and `curl`; the commands below are written for bash."
            .to_string(),
    );
    if n.chaos.is_empty() {
        items.push("No chaos engine: no step injects a network or pod fault.".into());
    }
    items.extend(n.chaos);
    let uses_gateway_api = n
        .access
        .keys()
        .any(|(_, k)| k == "Gateway" || k == "HTTPRoute");
    if uses_gateway_api {
        items.push("Gateway API CRDs (`gateways` / `httproutes.gateway.networking.k8s.io`) and a Gateway implementation that programs them.".into());
    }
    d.list(items);

    gateways_part(d, s, &n.gateways, &n.route_hosts);
    d.p("`$RUN_ID` in commands stands for the run's id: heatcheck prints it and labels everything it creates with `heatcheck.dev/run-id`. By hand, pick one: `export RUN_ID=gameday-1`.");

    access_part(d, s, t, scenarios, n.access);
}

/// What every step of the fixtures and the scenarios touches.
fn needs(s: &SuiteInput, t: &Templater, scenarios: &[(Scenario, &str)]) -> Needs {
    let suite = &s.suite;
    let mut n = Needs::default();
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
                n.access
                    .entry((tc.namespace.clone(), tc.kind.clone()))
                    .or_default()
                    .extend(verbs.iter().copied());
                if let Some(o) = &tc.object {
                    match tc.kind.as_str() {
                        "NetworkChaos" | "PodChaos" => {
                            n.chaos.insert(format!(
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
                            n.chaos.insert(format!(
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
                            n.gateways.push((
                                tc.namespace.clone(),
                                tc.name.clone().unwrap_or_default(),
                                listeners,
                            ));
                        }
                        "HTTPRoute" => {
                            if let Some(hs) = o.pointer("/spec/hostnames").and_then(Value::as_array)
                            {
                                n.route_hosts.extend(
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
    n
}

/// Gateways and how to reach them by hand.
fn gateways_part(
    d: &mut Doc,
    s: &SuiteInput,
    gateways: &[GatewayListeners],
    route_hosts: &BTreeSet<String>,
) {
    let ns = s.suite.spec.target.namespace.as_str();
    let mut named: BTreeSet<String> = BTreeSet::new();
    let mut urls = Vec::new();
    for (gns, name, _) in gateways {
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
}

/// The access the run needs: the exact Role when a cluster answered, else
/// what the steps and checks touch.
fn access_part(
    d: &mut Doc,
    s: &SuiteInput,
    t: &Templater,
    scenarios: &[(Scenario, &str)],
    mut access: BTreeMap<(String, String), BTreeSet<&'static str>>,
) {
    let suite = &s.suite;
    let ns = suite.spec.target.namespace.as_str();
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
