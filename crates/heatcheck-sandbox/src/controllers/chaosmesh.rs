//! Chaos Mesh: PodChaos pod-kill deletes its targets once; NetworkChaos
//! chooses its targets once and wants the fault applied (`desiredPhase:
//! Run`) for `spec.duration` (or until deleted or paused), then `Stop`.
//! Status follows Chaos Mesh 2.x: `status.experiment.{desiredPhase,
//! containerRecords[]}` and the AllInjected/AllRecovered/Paused/Selected
//! conditions.
//!
//! As in Chaos Mesh, this controller-manager part only selects and decides:
//! NetworkChaos records start `Not Injected`, and it is the chaos daemon
//! ([`super::daemon`]) that flips records and AllInjected/AllRecovered once
//! the data plane has applied (or removed) the fault; see
//! [`confirm_network_chaos`]. This controller keeps what it finds there.

use std::collections::HashMap;

use serde_json::{json, Value};
use tokio::time::Instant;

use super::duration::parse_duration;
use super::select::{apply_mode, chaos_mesh_pods};
use super::util::{self, key};
use super::{Reconciler, Scope};
use crate::registry::ResKey;
use crate::store::{now_rfc3339, DeleteOptions, Store};

pub(crate) const GROUP: &str = "chaos-mesh.org";
const PAUSE: &str = "experiment.chaos-mesh.org/pause";
pub(crate) const INJECTED: &str = "Injected";
pub(crate) const NOT_INJECTED: &str = "Not Injected";

#[derive(Default)]
pub(crate) struct ChaosMesh {
    /// When each experiment (by uid) was injected, for `spec.duration`.
    injected_at: HashMap<String, Instant>,
}

impl Reconciler for ChaosMesh {
    fn watches(&self, key: &ResKey) -> bool {
        key.group == GROUP || (key.group.is_empty() && key.plural == "pods")
    }

    fn global(&self) -> bool {
        // Selectors reach into other namespaces.
        true
    }

    fn reconcile(&mut self, store: &Store, scope: &Scope) -> Option<Instant> {
        for pc in scope.list(store, &key(GROUP, "podchaos")) {
            reconcile_pod_chaos(store, &pc);
        }
        let mut wake: Option<Instant> = None;
        let nc = scope.list(store, &key(GROUP, "networkchaos"));
        let live: Vec<&str> = nc.iter().map(util::uid).collect();
        self.injected_at.retain(|u, _| live.contains(&u.as_str()));
        for n in &nc {
            if let Some(at) = self.reconcile_network_chaos(store, n) {
                wake = Some(wake.map_or(at, |w| w.min(at)));
            }
        }
        wake
    }
}

fn conditions(selected: bool, injected: bool, recovered: bool, paused: bool) -> Value {
    let c = |t: &str, s: bool| json!({"type": t, "status": if s { "True" } else { "False" }, "reason": ""});
    json!([
        c("AllInjected", injected),
        c("AllRecovered", recovered),
        c("Paused", paused),
        c("Selected", selected),
    ])
}

/// Whether a condition of the current status is True.
fn condition(obj: &Value, kind: &str) -> bool {
    obj.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == kind && c["status"] == "True")
        })
}

fn event(operation: &str) -> Value {
    json!({"type": "Succeeded", "operation": operation, "timestamp": now_rfc3339()})
}

/// A container record; `applied` when the fault already took effect
/// (pod-kill, done by the controller itself).
fn record(pod: &Value, selector_key: &str, applied: bool) -> Value {
    let id = format!("{}/{}", util::namespace(pod), util::name(pod));
    if applied {
        json!({"id": id, "selectorKey": selector_key, "phase": INJECTED,
            "injectedCount": 1, "recoveredCount": 0, "events": [event("Apply")]})
    } else {
        json!({"id": id, "selectorKey": selector_key, "phase": NOT_INJECTED,
            "injectedCount": 0, "recoveredCount": 0, "events": []})
    }
}

/// Targets for the main selector and the optional `.Target` one.
fn select_targets(store: &Store, obj: &Value, applied: bool) -> Result<Vec<Value>, String> {
    let ns = util::namespace(obj);
    let spec = obj.get("spec").cloned().unwrap_or(json!({}));
    let mode = spec.get("mode").and_then(Value::as_str).unwrap_or("one");
    let main = apply_mode(
        chaos_mesh_pods(store, spec.get("selector"), ns),
        mode,
        spec.get("value"),
    )?;
    if main.is_empty() {
        return Err("no pod is selected".into());
    }
    let mut records: Vec<Value> = main.iter().map(|p| record(p, ".", applied)).collect();
    if let Some(target) = spec.get("target").filter(|t| t.is_object()) {
        let tmode = target.get("mode").and_then(Value::as_str).unwrap_or("all");
        let tpods = apply_mode(
            chaos_mesh_pods(store, target.get("selector"), ns),
            tmode,
            target.get("value"),
        )?;
        records.extend(tpods.iter().map(|p| record(p, ".Target", applied)));
    }
    Ok(records)
}

fn not_selected(store: &Store, k: &ResKey, obj: &Value, why: &str) {
    tracing::debug!(name = util::name(obj), why, "chaos selected nothing");
    let status = json!({
        "conditions": conditions(false, false, false, false),
        "experiment": {"desiredPhase": "Run"},
    });
    util::write_status(store, k, obj, status);
}

fn reconcile_pod_chaos(store: &Store, pc: &Value) {
    let k = key(GROUP, "podchaos");
    if util::is_terminating(pc) {
        return;
    }
    let action = pc
        .pointer("/spec/action")
        .and_then(Value::as_str)
        .unwrap_or("pod-kill");
    if action != "pod-kill" {
        tracing::debug!(
            name = util::name(pc),
            action,
            "PodChaos action not emulated"
        );
        return;
    }
    let done = pc
        .pointer("/status/experiment/containerRecords")
        .and_then(Value::as_array)
        .is_some_and(|r| !r.is_empty());
    if done {
        // pod-kill is one-shot: the ReplicaSet brings the pods back.
        return;
    }
    let records = match select_targets(store, pc, true) {
        Ok(r) => r,
        Err(why) => return not_selected(store, &k, pc, &why),
    };
    // As upstream: a plain delete with spec.gracePeriod (default 0, so the
    // pod goes at once) and no eviction, so PodDisruptionBudgets do not apply.
    let grace = pc
        .pointer("/spec/gracePeriod")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    for r in &records {
        let id = r["id"].as_str().unwrap_or_default();
        if let Some((ns, name)) = id.split_once('/') {
            let _ = store.delete(
                &key("", "pods"),
                Some(ns),
                name,
                &DeleteOptions {
                    grace_period_seconds: Some(grace),
                    ..Default::default()
                },
            );
        }
    }
    let status = json!({
        "conditions": conditions(true, true, false, false),
        "experiment": {"desiredPhase": "Run", "containerRecords": records},
    });
    util::write_status(store, &k, pc, status);
}

impl ChaosMesh {
    /// Decides `desiredPhase` and the Selected/Paused conditions; records and
    /// AllInjected/AllRecovered are the daemon's and are kept as found.
    fn reconcile_network_chaos(&mut self, store: &Store, nc: &Value) -> Option<Instant> {
        let k = key(GROUP, "networkchaos");
        if util::is_terminating(nc) {
            return None;
        }
        let uid = util::uid(nc).to_string();
        let paused = nc
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(PAUSE))
            .and_then(Value::as_str)
            == Some("true");
        let records: Vec<Value> = nc
            .pointer("/status/experiment/containerRecords")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let duration = nc
            .pointer("/spec/duration")
            .and_then(Value::as_str)
            .and_then(parse_duration);
        let all_injected = condition(nc, "AllInjected");
        let all_recovered = condition(nc, "AllRecovered");
        if records.is_empty() {
            if paused {
                let status = json!({"conditions": conditions(false, all_injected, all_recovered, true),
                    "experiment": {"desiredPhase": "Stop"}});
                util::write_status(store, &k, nc, status);
                return None;
            }
            let records = match select_targets(store, nc, false) {
                Ok(r) => r,
                Err(why) => {
                    not_selected(store, &k, nc, &why);
                    return None;
                }
            };
            self.injected_at.insert(uid, Instant::now());
            let status = json!({
                "conditions": conditions(true, all_injected, all_recovered, false),
                "experiment": {"desiredPhase": "Run", "containerRecords": records},
            });
            util::write_status(store, &k, nc, status);
            return duration.map(|d| Instant::now() + d);
        }
        let started = *self.injected_at.entry(uid).or_insert_with(|| {
            // After a restart: age by the first Apply event's timestamp.
            let age = records[0]
                .pointer("/events/0/timestamp")
                .and_then(Value::as_str)
                .and_then(util::parse_time)
                .and_then(|t| (chrono::Utc::now() - t).to_std().ok())
                .unwrap_or_default();
            Instant::now().checked_sub(age).unwrap_or_else(Instant::now)
        });
        let ends = duration.map(|d| started + d);
        // A Stop not caused by a pause is the end of the experiment.
        let finished = nc
            .pointer("/status/experiment/desiredPhase")
            .and_then(Value::as_str)
            == Some("Stop")
            && !condition(nc, "Paused");
        let expired = finished || ends.is_some_and(|e| Instant::now() >= e);
        let run = !expired && !paused;
        let status = json!({
            "conditions": conditions(true, all_injected, all_recovered, paused),
            "experiment": {"desiredPhase": if run { "Run" } else { "Stop" }, "containerRecords": records},
        });
        util::write_status(store, &k, nc, status);
        // Paused or finished: only an event (unpause) brings it back.
        ends.filter(|_| run)
    }
}

/// The chaos daemon's side: the status once the data plane has applied
/// (`applied`) the faults that `desiredPhase` asks for, or `None` when it
/// already says so. Records follow `desiredPhase` (Run: Injected with an
/// Apply event; Stop: Not Injected with a Recover event), then
/// AllInjected/AllRecovered follow the records.
pub(crate) fn confirm_network_chaos(nc: &Value, applied: bool) -> Option<Value> {
    let status = nc.get("status")?;
    let run = match status
        .pointer("/experiment/desiredPhase")
        .and_then(Value::as_str)
    {
        Some("Run") if applied => true,
        Some("Stop") => false,
        _ => return None,
    };
    let records = status
        .pointer("/experiment/containerRecords")
        .and_then(Value::as_array)
        .filter(|r| !r.is_empty())?;
    let want_phase = if run { INJECTED } else { NOT_INJECTED };
    let records: Vec<Value> = records
        .iter()
        .cloned()
        .map(|mut r| {
            if r.get("phase").and_then(Value::as_str) != Some(want_phase) {
                let (counter, op) = if run {
                    ("injectedCount", "Apply")
                } else {
                    ("recoveredCount", "Recover")
                };
                r["phase"] = json!(want_phase);
                r[counter] = json!(r.get(counter).and_then(Value::as_i64).unwrap_or(0) + 1);
                match r.get_mut("events").and_then(Value::as_array_mut) {
                    Some(ev) => ev.push(event(op)),
                    None => r["events"] = json!([event(op)]),
                }
            }
            r
        })
        .collect();
    let mut next = status.clone();
    next["experiment"]["containerRecords"] = Value::Array(records);
    next["conditions"] = conditions(
        condition(nc, "Selected"),
        run,
        !run,
        condition(nc, "Paused"),
    );
    (next != *status).then_some(next)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::controllers::testutil::*;
    use crate::controllers::{active_faults, spawn_controllers, ControllerConfig, ResolvedAction};

    async fn ready_app(store: &Store, name: &str, n: i64) {
        create(store, "apps", "deployments", deployment(name, n));
        wait_for("pods ready", || {
            (ready_pods(store, "default", &format!("{name}-")).len() == n as usize).then_some(())
        })
        .await;
    }

    #[tokio::test]
    async fn pod_kill_deletes_selected_pods_once() {
        let store = Store::new();
        let _h = spawn_controllers(store.clone(), ControllerConfig::default());
        ready_app(&store, "victim", 3).await;
        let before: Vec<String> = ready_pods(&store, "default", "victim-")
            .iter()
            .map(|p| util::name(p).to_string())
            .collect();
        create(
            &store,
            GROUP,
            "podchaos",
            json!({
            "apiVersion": "chaos-mesh.org/v1alpha1", "kind": "PodChaos",
            "metadata": {"name": "kill", "namespace": "default"},
            "spec": {"action": "pod-kill", "mode": "fixed", "value": "2",
                "selector": {"namespaces": ["default"], "labelSelectors": {"app": "victim"}}}}),
        );
        let pc = wait_for("pod-kill status", || {
            store
                .get(&key(GROUP, "podchaos"), Some("default"), "kill")
                .ok()
                .filter(|pc| pc.pointer("/status/experiment/containerRecords").is_some())
        })
        .await;
        let recs = pc["status"]["experiment"]["containerRecords"]
            .as_array()
            .unwrap();
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0]["phase"], INJECTED);
        assert_eq!(recs[0]["selectorKey"], ".");
        let killed: Vec<String> = recs
            .iter()
            .map(|r| {
                r["id"]
                    .as_str()
                    .unwrap()
                    .trim_start_matches("default/")
                    .to_string()
            })
            .collect();
        assert!(killed.iter().all(|k| before.contains(k)));
        let conds = pc["status"]["conditions"].as_array().unwrap();
        assert!(conds
            .iter()
            .any(|c| c["type"] == "AllInjected" && c["status"] == "True"));
        let after = wait_for("replacements", || {
            let ps = ready_pods(&store, "default", "victim-");
            (ps.len() == 3).then_some(ps)
        })
        .await;
        let after: Vec<&str> = after.iter().map(util::name).collect();
        assert!(killed.iter().all(|k| !after.contains(&k.as_str())));
        assert_eq!(
            after
                .iter()
                .filter(|p| before.iter().any(|b| b == *p))
                .count(),
            1,
            "only two were killed"
        );
    }

    fn network_chaos(name: &str, duration: Option<&str>) -> Value {
        let mut nc = json!({
            "apiVersion": "chaos-mesh.org/v1alpha1", "kind": "NetworkChaos",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"action": "delay", "mode": "all", "selector": {"labelSelectors": {"app": "slow"}},
                "delay": {"latency": "100ms", "jitter": "10ms"}, "direction": "to"}});
        if let Some(d) = duration {
            nc["spec"]["duration"] = json!(d);
        }
        nc
    }

    fn get_nc(store: &Store, name: &str) -> Value {
        store
            .get(&key(GROUP, "networkchaos"), Some("default"), name)
            .unwrap()
    }

    async fn wait_condition(store: &Store, name: &str, kind: &str) -> Value {
        wait_for(kind, || {
            Some(get_nc(store, name)).filter(|nc| condition_true(&nc["status"], kind))
        })
        .await
    }

    #[tokio::test]
    async fn network_delay_is_active_then_recovers() {
        let store = Store::new();
        let _h = spawn_controllers(store.clone(), ControllerConfig::default());
        ready_app(&store, "slow", 2).await;
        create(
            &store,
            GROUP,
            "networkchaos",
            network_chaos("lag", Some("1s")),
        );
        let nc = wait_condition(&store, "lag", "AllInjected").await;
        assert!(!condition_true(&nc["status"], "AllRecovered"));
        for r in nc["status"]["experiment"]["containerRecords"]
            .as_array()
            .unwrap()
        {
            assert_eq!(r["phase"], INJECTED);
            assert_eq!(r["injectedCount"], 1);
            assert_eq!(r["events"][0]["operation"], "Apply");
        }
        let faults = active_faults(&store);
        assert_eq!(faults.len(), 1);
        let f = &faults[0];
        assert_eq!(f.id, "networkchaos/default/lag");
        assert_eq!(f.namespace, "default");
        assert_eq!(f.pods.len(), 2);
        assert_eq!(f.direction, "to");
        assert_eq!(
            f.action,
            ResolvedAction::Delay {
                latency: Duration::from_millis(100),
                jitter: Duration::from_millis(10)
            }
        );
        let nc = wait_condition(&store, "lag", "AllRecovered").await;
        assert_eq!(nc["status"]["experiment"]["desiredPhase"], "Stop");
        assert!(active_faults(&store).is_empty());
        assert!(!condition_true(&nc["status"], "AllInjected"));
        let r = &nc["status"]["experiment"]["containerRecords"][0];
        assert_eq!(r["phase"], NOT_INJECTED);
        assert_eq!(r["recoveredCount"], 1);
        assert_eq!(r["events"][1]["operation"], "Recover");
    }

    /// The data plane hook has applied the fault before AllInjected turns
    /// True, and removed it before AllRecovered does.
    #[tokio::test]
    async fn status_follows_the_data_plane() {
        let store = Store::new();
        let (hook, calls) = recording_hook(&store, GROUP, "networkchaos", "lag");
        let _h = spawn_controllers(
            store.clone(),
            ControllerConfig {
                apply_faults: Some(hook),
                ..Default::default()
            },
        );
        ready_app(&store, "slow", 2).await;
        create(
            &store,
            GROUP,
            "networkchaos",
            network_chaos("lag", Some("1s")),
        );
        let id = "networkchaos/default/lag";
        wait_condition(&store, "lag", "AllInjected").await;
        {
            let calls = calls.lock().unwrap();
            let last = calls.last().expect("the hook was called");
            assert!(last.ids.iter().any(|i| i == id), "fault applied now");
            let first = calls
                .iter()
                .find(|c| c.ids.iter().any(|i| i == id))
                .unwrap();
            assert!(
                !condition_true(&first.status, "AllInjected"),
                "applied before it was reported: {:?}",
                first.status
            );
        }
        wait_condition(&store, "lag", "AllRecovered").await;
        let calls = calls.lock().unwrap();
        assert!(calls.last().unwrap().ids.is_empty(), "fault removed now");
        let removal = calls
            .iter()
            .rposition(|c| c.ids.iter().any(|i| i == id))
            .map(|i| &calls[i + 1])
            .unwrap();
        assert!(removal.ids.is_empty());
        assert!(
            !condition_true(&removal.status, "AllRecovered"),
            "removed before it was reported: {:?}",
            removal.status
        );
    }

    #[test]
    fn confirm_waits_for_the_daemon() {
        let nc = json!({"status": {
            "conditions": conditions(true, false, false, false),
            "experiment": {"desiredPhase": "Run", "containerRecords": [
                {"id": "default/a", "selectorKey": ".", "phase": NOT_INJECTED,
                 "injectedCount": 0, "recoveredCount": 0, "events": []},
                {"id": "default/b", "selectorKey": ".Target", "phase": NOT_INJECTED,
                 "injectedCount": 0, "recoveredCount": 0, "events": []}]}}});
        assert_eq!(confirm_network_chaos(&nc, false), None, "not applied yet");
        let status = confirm_network_chaos(&nc, true).unwrap();
        assert!(condition_true(&status, "AllInjected"));
        assert!(condition_true(&status, "Selected"));
        assert!(!condition_true(&status, "AllRecovered"));
        for r in status["experiment"]["containerRecords"].as_array().unwrap() {
            assert_eq!(r["phase"], INJECTED);
            assert_eq!(r["injectedCount"], 1);
        }
        let mut nc = json!({ "status": status });
        assert_eq!(confirm_network_chaos(&nc, true), None, "a fixpoint");
        nc["status"]["experiment"]["desiredPhase"] = json!("Stop");
        let status = confirm_network_chaos(&nc, false).unwrap();
        assert!(condition_true(&status, "AllRecovered"));
        assert!(!condition_true(&status, "AllInjected"));
        let r = &status["experiment"]["containerRecords"][0];
        assert_eq!(r["phase"], NOT_INJECTED);
        assert_eq!(r["recoveredCount"], 1);
        assert_eq!(r["events"][1]["operation"], "Recover");
    }

    /// An action the data plane does not model is reported injected: there
    /// is nothing to apply.
    #[tokio::test]
    async fn unmodelled_action_is_still_reported() {
        let store = Store::new();
        let _h = spawn_controllers(store.clone(), ControllerConfig::default());
        ready_app(&store, "slow", 1).await;
        let mut nc = network_chaos("bw", None);
        nc["spec"]["action"] = json!("bandwidth");
        create(&store, GROUP, "networkchaos", nc);
        wait_condition(&store, "bw", "AllInjected").await;
        assert!(active_faults(&store).is_empty());
    }

    #[tokio::test]
    async fn network_fault_ends_on_deletion_and_pause() {
        let store = Store::new();
        let _h = spawn_controllers(store.clone(), ControllerConfig::default());
        ready_app(&store, "slow", 1).await;
        create(
            &store,
            GROUP,
            "networkchaos",
            network_chaos("forever", None),
        );
        wait_for("fault active", || {
            (active_faults(&store).len() == 1).then_some(())
        })
        .await;
        // Pause recovers, unpause re-injects.
        let mut nc = store
            .get(&key(GROUP, "networkchaos"), Some("default"), "forever")
            .unwrap();
        nc["metadata"]["annotations"] = json!({PAUSE: "true"});
        store
            .update(
                &key(GROUP, "networkchaos"),
                Some("default"),
                "forever",
                nc,
                &util::W,
            )
            .unwrap();
        wait_for("paused", || active_faults(&store).is_empty().then_some(())).await;
        let nc = wait_condition(&store, "forever", "AllRecovered").await;
        assert!(condition_true(&nc["status"], "Paused"));
        let mut nc = store
            .get(&key(GROUP, "networkchaos"), Some("default"), "forever")
            .unwrap();
        nc["metadata"]["annotations"] = json!({});
        store
            .update(
                &key(GROUP, "networkchaos"),
                Some("default"),
                "forever",
                nc,
                &util::W,
            )
            .unwrap();
        wait_for("resumed", || {
            (active_faults(&store).len() == 1).then_some(())
        })
        .await;
        let nc = wait_condition(&store, "forever", "AllInjected").await;
        assert!(!condition_true(&nc["status"], "Paused"));
        let r = &nc["status"]["experiment"]["containerRecords"][0];
        assert_eq!(
            (&r["injectedCount"], &r["recoveredCount"]),
            (&json!(2), &json!(1))
        );
        store
            .delete(
                &key(GROUP, "networkchaos"),
                Some("default"),
                "forever",
                &DeleteOptions::default(),
            )
            .unwrap();
        assert!(active_faults(&store).is_empty());
    }

    #[tokio::test]
    async fn nothing_selected_is_reported() {
        let store = Store::new();
        let _h = spawn_controllers(store.clone(), ControllerConfig::default());
        create(
            &store,
            GROUP,
            "networkchaos",
            network_chaos("none", Some("1s")),
        );
        let nc = wait_for("status", || {
            store
                .get(&key(GROUP, "networkchaos"), Some("default"), "none")
                .ok()
                .filter(|n| n.get("status").is_some())
        })
        .await;
        assert!(nc["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["type"] == "Selected" && c["status"] == "False"));
        assert!(active_faults(&store).is_empty());
    }
}
