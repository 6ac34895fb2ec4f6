//! The network faults that should be in effect, read from chaos objects'
//! status, for the chaos daemon to hand to the gateway data plane.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::chaosmesh::GROUP;
use super::duration::parse_duration;
use super::litmus;
use super::resolved::{litmus_id, ResolvedAction};
use super::util::{self, key};
use crate::store::Store;

/// A fault resolved to the pods it affects, all in `namespace`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ResolvedFault {
    /// `<kind>/<namespace>/<name>` of the chaos object (Litmus adds `/<experiment>`).
    pub id: String,
    /// Namespace of the affected pods.
    pub namespace: String,
    /// Names of the affected pods.
    pub pods: BTreeSet<String>,
    pub action: ResolvedAction,
    /// Chaos Mesh `spec.direction` ("to", "from", "both"); "to" when unset.
    pub direction: String,
}

/// Network faults that should be in effect: Chaos Mesh NetworkChaos whose
/// `desiredPhase` is Run (every main-selector record, whatever its phase:
/// the phase is what the chaos daemon reports after applying) and Litmus
/// experiments selected but not yet decided. Not deleted, not terminating.
/// A chaos object whose targets span namespaces yields one entry per namespace.
pub(crate) fn active_faults(store: &Store) -> Vec<ResolvedFault> {
    let ncs = util::list(store, &key(GROUP, "networkchaos"), None);
    let engines = util::list(store, &key(litmus::GROUP, "chaosengines"), None);
    faults_of(&ncs, &engines)
}

/// [`active_faults`] over given snapshots, so a caller can act on exactly
/// the objects it computed the faults from.
pub(crate) fn faults_of(network_chaos: &[Value], engines: &[Value]) -> Vec<ResolvedFault> {
    let mut out = Vec::new();
    for nc in network_chaos {
        if !wants_run(nc) {
            continue;
        }
        let Some(action) = chaos_mesh_action(nc) else {
            continue;
        };
        let ids = nc
            .pointer("/status/experiment/containerRecords")
            .and_then(Value::as_array)
            .map(|rs| {
                rs.iter()
                    .filter(|r| r.get("selectorKey").and_then(Value::as_str) == Some("."))
                    .filter_map(|r| r.get("id").and_then(Value::as_str))
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        let direction = nc
            .pointer("/spec/direction")
            .and_then(Value::as_str)
            .unwrap_or("to");
        push_by_namespace(&mut out, &network_chaos_id(nc), ids, &action, direction);
    }
    for engine in engines {
        if util::is_terminating(engine) || !litmus::is_running(engine) {
            continue;
        }
        for exp in litmus::running_experiments(engine) {
            let Some(action) = litmus::network_action(&exp.spec) else {
                continue;
            };
            push_by_namespace(
                &mut out,
                &litmus_id(engine, &exp.name),
                exp.targets,
                &action,
                "to",
            );
        }
    }
    out
}

/// A live NetworkChaos whose controller wants the fault applied.
pub(crate) fn wants_run(nc: &Value) -> bool {
    !util::is_terminating(nc)
        && nc
            .pointer("/status/experiment/desiredPhase")
            .and_then(Value::as_str)
            == Some("Run")
}

pub(crate) fn network_chaos_id(nc: &Value) -> String {
    format!("networkchaos/{}/{}", util::namespace(nc), util::name(nc))
}

fn push_by_namespace(
    out: &mut Vec<ResolvedFault>,
    id: &str,
    ids: Vec<String>,
    action: &ResolvedAction,
    direction: &str,
) {
    let mut by_ns: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for pod_id in ids {
        if let Some((ns, name)) = pod_id.split_once('/') {
            by_ns
                .entry(ns.to_string())
                .or_default()
                .insert(name.to_string());
        }
    }
    for (namespace, pods) in by_ns {
        out.push(ResolvedFault {
            id: id.to_string(),
            namespace,
            pods,
            action: action.clone(),
            direction: direction.to_string(),
        });
    }
}

pub(crate) fn chaos_mesh_action(nc: &Value) -> Option<ResolvedAction> {
    let spec = nc.get("spec")?;
    let dur = |ptr: &str| {
        spec.pointer(ptr)
            .and_then(Value::as_str)
            .and_then(parse_duration)
            .unwrap_or_default()
    };
    match spec.get("action").and_then(Value::as_str)? {
        "delay" => Some(ResolvedAction::Delay {
            latency: dur("/delay/latency"),
            jitter: dur("/delay/jitter"),
        }),
        "loss" => {
            let p = spec.pointer("/loss/loss")?;
            let percent = match p {
                Value::String(s) => s.trim().trim_end_matches('%').parse().ok()?,
                Value::Number(n) => n.as_f64()?,
                _ => return None,
            };
            Some(ResolvedAction::Loss { percent })
        }
        "partition" => Some(ResolvedAction::Partition),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn loss_and_partition_actions() {
        let nc = json!({"spec": {"action": "loss", "loss": {"loss": "50"}}});
        assert_eq!(
            chaos_mesh_action(&nc),
            Some(ResolvedAction::Loss { percent: 50.0 })
        );
        let nc = json!({"spec": {"action": "partition"}});
        assert_eq!(chaos_mesh_action(&nc), Some(ResolvedAction::Partition));
        let nc = json!({"spec": {"action": "bandwidth"}});
        assert_eq!(chaos_mesh_action(&nc), None);
    }

    #[test]
    fn targets_split_by_namespace() {
        let mut out = Vec::new();
        push_by_namespace(
            &mut out,
            "x",
            vec!["a/p1".into(), "b/p2".into(), "a/p3".into()],
            &ResolvedAction::Partition,
            "both",
        );
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].namespace, "a");
        assert_eq!(out[0].pods.len(), 2);
    }
}
