//! Litmus ChaosEngine: while `engineState: active` and within
//! TOTAL_CHAOS_DURATION, each experiment runs against pods chosen once from
//! `appinfo` (pod-network-latency/-loss/-partition become active faults,
//! pod-delete deletes pods every CHAOS_INTERVAL). `engineState: stop` ends
//! it at once. Status follows the chaos-operator: `engineStatus`
//! initialized/completed/stopped, `experiments[]` with status and verdict.
//!
//! The split with the chaos daemon ([`super::daemon`], standing in for the
//! experiment job that really injects): this controller selects targets and
//! writes experiments as `Waiting for Job Creation` (verdict `N/A`, as the
//! operator does before the job starts); when the duration is over it only
//! decides the verdict (`Pass`), and on `engineState: stop` it waits. The
//! daemon, after the data plane applied or removed the fault, moves an
//! experiment to `Running` (verdict `Awaited`), to `Completed` (verdict
//! decided) or to `Forcefully Aborted` (engine stopping); see
//! [`confirm_engine`]. Only then does this controller write `completed` or
//! `stopped` for the engine.

use std::collections::HashMap;
use std::time::Duration;

use rand::seq::SliceRandom;
use serde_json::{json, Value};
use tokio::time::Instant;

use super::duration::parse_duration;
use super::resolved::{litmus_id, ResolvedAction};
use super::util::{self, key};
use super::{Reconciler, Scope};
use crate::registry::ResKey;
use crate::store::{now_rfc3339, random_suffix, DeleteOptions, Store};

pub(crate) const GROUP: &str = "litmuschaos.io";
const WAITING: &str = "Waiting for Job Creation";
const RUNNING: &str = "Running";
const COMPLETED: &str = "Completed";
const ABORTED: &str = "Forcefully Aborted";

#[derive(Default)]
pub(crate) struct Litmus {
    /// When each experiment (`uid/name`) started.
    started: HashMap<String, Instant>,
    /// When pod-delete last deleted pods (`uid/name`).
    last_kill: HashMap<String, Instant>,
}

/// A running experiment as `active_faults` needs it.
pub(crate) struct RunningExperiment {
    pub name: String,
    pub spec: Value,
    /// `namespace/name` of the target pods.
    pub targets: Vec<String>,
}

pub(crate) fn is_running(engine: &Value) -> bool {
    engine
        .pointer("/status/engineStatus")
        .and_then(Value::as_str)
        == Some("initialized")
        && engine
            .pointer("/spec/engineState")
            .and_then(Value::as_str)
            .unwrap_or("active")
            == "active"
}

pub(crate) fn running_experiments(engine: &Value) -> Vec<RunningExperiment> {
    let specs = engine
        .pointer("/spec/experiments")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    engine
        .pointer("/status/experiments")
        .and_then(Value::as_array)
        .map(|exps| {
            exps.iter()
                .filter(|e| in_flight(e) && undecided(e))
                .filter_map(|e| {
                    let name = e.get("name").and_then(Value::as_str)?.to_string();
                    let spec = specs
                        .iter()
                        .find(|s| s.get("name").and_then(Value::as_str) == Some(&name))?
                        .clone();
                    let targets = e
                        .get("targets")
                        .and_then(Value::as_array)
                        .map(|ts| {
                            ts.iter()
                                .filter_map(|t| {
                                    Some(format!(
                                        "{}/{}",
                                        t.get("namespace")?.as_str()?,
                                        t.get("name")?.as_str()?
                                    ))
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    Some(RunningExperiment {
                        name,
                        spec,
                        targets,
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Started (or about to) and not yet ended.
fn in_flight(exp_status: &Value) -> bool {
    matches!(
        exp_status.get("status").and_then(Value::as_str),
        Some(WAITING | RUNNING)
    )
}

/// No verdict yet: the fault should still be in effect.
fn undecided(exp_status: &Value) -> bool {
    matches!(
        exp_status.get("verdict").and_then(Value::as_str),
        None | Some("N/A" | "Awaited")
    )
}

/// The chaos daemon's side: the engine status once the data plane applies
/// exactly the faults with ids in `applied`, or `None` when it already says
/// so. Experiments the emulator has no network fault for need nothing applied.
pub(crate) fn confirm_engine(engine: &Value, applied: &[String]) -> Option<Value> {
    if util::is_terminating(engine)
        || engine
            .pointer("/status/engineStatus")
            .and_then(Value::as_str)
            != Some("initialized")
    {
        return None;
    }
    let active = engine
        .pointer("/spec/engineState")
        .and_then(Value::as_str)
        .unwrap_or("active")
        == "active";
    let specs = engine
        .pointer("/spec/experiments")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let status = engine.get("status")?;
    let mut next = status.clone();
    for e in next
        .get_mut("experiments")
        .and_then(Value::as_array_mut)?
        .iter_mut()
        .filter(|e| in_flight(e))
    {
        let name = e
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let fault = specs
            .iter()
            .find(|s| exp_name(s) == name)
            .and_then(network_action)
            .is_some();
        let is_applied = applied.contains(&litmus_id(engine, &name));
        if !active {
            if !is_applied {
                e["status"] = json!(ABORTED);
                e["verdict"] = json!("Stopped");
                e["lastUpdateTime"] = json!(now_rfc3339());
            }
        } else if !undecided(e) {
            if !is_applied {
                e["status"] = json!(COMPLETED);
                e["lastUpdateTime"] = json!(now_rfc3339());
            }
        } else if e.get("status").and_then(Value::as_str) == Some(WAITING) && (is_applied || !fault)
        {
            e["status"] = json!(RUNNING);
            e["verdict"] = json!("Awaited");
            e["experimentPod"] = json!(format!("{name}-{}", random_suffix(6)));
            e["lastUpdateTime"] = json!(now_rfc3339());
        }
    }
    (next != *status).then_some(next)
}

/// An experiment's env override (`spec.components.env`).
fn env(exp_spec: &Value, name: &str) -> Option<String> {
    exp_spec
        .pointer("/spec/components/env")
        .and_then(Value::as_array)?
        .iter()
        .find(|e| e.get("name").and_then(Value::as_str) == Some(name))?
        .get("value")
        .and_then(|v| match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
}

fn exp_name(exp_spec: &Value) -> &str {
    exp_spec
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// The network fault an experiment injects, with Litmus's defaults.
pub(crate) fn network_action(exp_spec: &Value) -> Option<ResolvedAction> {
    let ms = |n: &str, default: u64| {
        env(exp_spec, n)
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_millis)
            .unwrap_or(Duration::from_millis(default))
    };
    match exp_name(exp_spec) {
        "pod-network-latency" => Some(ResolvedAction::Delay {
            latency: ms("NETWORK_LATENCY", 2000),
            jitter: ms("JITTER", 0),
        }),
        "pod-network-loss" => Some(ResolvedAction::Loss {
            percent: env(exp_spec, "NETWORK_PACKET_LOSS_PERCENTAGE")
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(100.0),
        }),
        "pod-network-partition" => Some(ResolvedAction::Partition),
        _ => None,
    }
}

fn total_duration(exp_spec: &Value) -> Duration {
    let default = if exp_name(exp_spec) == "pod-delete" {
        "15"
    } else {
        "60"
    };
    env(exp_spec, "TOTAL_CHAOS_DURATION")
        .and_then(|v| parse_duration(&v))
        .unwrap_or_else(|| parse_duration(default).unwrap_or_default())
}

/// Pods an experiment may target: TARGET_PODS, `spec.selectors`, or appinfo.
fn candidates(store: &Store, engine: &Value, exp_spec: &Value) -> Vec<Value> {
    let own_ns = util::namespace(engine);
    let appns = engine
        .pointer("/spec/appinfo/appns")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .unwrap_or(own_ns);
    let live = |ns: &str| -> Vec<Value> {
        util::list(store, &key("", "pods"), Some(ns))
            .into_iter()
            .filter(|p| !util::is_terminating(p))
            .filter(|p| p.pointer("/status/phase").and_then(Value::as_str) == Some("Running"))
            .collect()
    };
    let names = |s: &str| -> Vec<String> {
        s.split(',')
            .map(|n| n.trim().to_string())
            .filter(|n| !n.is_empty())
            .collect()
    };
    if let Some(t) = env(exp_spec, "TARGET_PODS").filter(|t| !t.trim().is_empty()) {
        let wanted = names(&t);
        return live(appns)
            .into_iter()
            .filter(|p| wanted.iter().any(|w| w == util::name(p)))
            .collect();
    }
    if let Some(sel) = engine.pointer("/spec/selectors") {
        let mut out = Vec::new();
        for p in sel
            .get("pods")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
        {
            let ns = p.get("namespace").and_then(Value::as_str).unwrap_or(appns);
            let wanted = names(p.get("names").and_then(Value::as_str).unwrap_or_default());
            out.extend(
                live(ns)
                    .into_iter()
                    .filter(|p| wanted.iter().any(|w| w == util::name(p))),
            );
        }
        for w in sel
            .get("workloads")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
        {
            let ns = w.get("namespace").and_then(Value::as_str).unwrap_or(appns);
            if let Some(l) = w.get("labels").and_then(Value::as_str) {
                out.extend(
                    live(ns)
                        .into_iter()
                        .filter(|p| util::string_selector_matches(l, &util::labels(p))),
                );
            } else if let Some(n) = w.get("names").and_then(Value::as_str) {
                // Pods of the named workloads: their names start with it.
                let wanted = names(n);
                out.extend(live(ns).into_iter().filter(|p| {
                    wanted
                        .iter()
                        .any(|w| util::name(p).starts_with(&format!("{w}-")))
                }));
            }
        }
        return out;
    }
    let label = engine
        .pointer("/spec/appinfo/applabel")
        .and_then(Value::as_str)
        .unwrap_or_default();
    live(appns)
        .into_iter()
        .filter(|p| util::string_selector_matches(label, &util::labels(p)))
        .collect()
}

/// PODS_AFFECTED_PERC of the candidates, at least one.
fn choose(mut pods: Vec<Value>, exp_spec: &Value) -> Vec<Value> {
    let perc: f64 = env(exp_spec, "PODS_AFFECTED_PERC")
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0);
    let n = ((pods.len() as f64 * perc.min(100.0) / 100.0).floor() as usize)
        .max(1)
        .min(pods.len());
    pods.shuffle(&mut rand::rng());
    pods.truncate(n);
    pods.sort_by(|a, b| util::name(a).cmp(util::name(b)));
    pods
}

fn targets_json(pods: &[Value]) -> Value {
    Value::Array(
        pods.iter()
            .map(|p| json!({"name": util::name(p), "namespace": util::namespace(p), "kind": "Pod"}))
            .collect(),
    )
}

fn delete_pods(store: &Store, pods: &[Value]) {
    // pod-delete's FORCE defaults to true upstream: grace period 0.
    for p in pods {
        let _ = store.delete(
            &key("", "pods"),
            Some(util::namespace(p)),
            util::name(p),
            &DeleteOptions {
                grace_period_seconds: Some(0),
                ..Default::default()
            },
        );
    }
}

impl Reconciler for Litmus {
    fn watches(&self, key: &ResKey) -> bool {
        key.group == GROUP && key.plural == "chaosengines"
    }

    fn global(&self) -> bool {
        true
    }

    fn reconcile(&mut self, store: &Store, scope: &Scope) -> Option<Instant> {
        let engines = scope.list(store, &key(GROUP, "chaosengines"));
        let live: Vec<&str> = engines.iter().map(util::uid).collect();
        let alive = |k: &String| live.iter().any(|u| k.starts_with(&format!("{u}/")));
        self.started.retain(|k, _| alive(k));
        self.last_kill.retain(|k, _| alive(k));
        let mut wake: Option<Instant> = None;
        for e in &engines {
            if let Some(at) = self.reconcile_engine(store, e) {
                wake = Some(wake.map_or(at, |w| w.min(at)));
            }
        }
        wake
    }
}

impl Litmus {
    fn reconcile_engine(&mut self, store: &Store, engine: &Value) -> Option<Instant> {
        let k = key(GROUP, "chaosengines");
        if util::is_terminating(engine) {
            return None;
        }
        let uid = util::uid(engine).to_string();
        let state = engine
            .pointer("/spec/engineState")
            .and_then(Value::as_str)
            .unwrap_or("active");
        let status = engine
            .pointer("/status/engineStatus")
            .and_then(Value::as_str)
            .unwrap_or("");
        let exps: Vec<Value> = engine
            .pointer("/status/experiments")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        match (state, status) {
            ("stop", "initialized") => {
                // The daemon aborts running experiments once their faults are gone.
                if exps.iter().any(in_flight) {
                    return None;
                }
                util::write_status(
                    store,
                    &k,
                    engine,
                    json!({"engineStatus": "stopped", "experiments": exps}),
                );
                None
            }
            ("stop", "") => {
                util::write_status(
                    store,
                    &k,
                    engine,
                    json!({"engineStatus": "stopped", "experiments": []}),
                );
                None
            }
            ("active", "completed") => {
                // The operator flips a completed engine to stop.
                stop_engine(store, engine);
                None
            }
            ("active", "" | "stopped") => {
                self.initialize(store, engine, &uid);
                // Its status write wakes us; this only covers a failed write.
                Some(Instant::now() + Duration::from_millis(100))
            }
            ("active", "initialized") => self.progress(store, engine, &uid, exps),
            _ => None,
        }
    }

    fn initialize(&mut self, store: &Store, engine: &Value, uid: &str) {
        let specs = engine
            .pointer("/spec/experiments")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let now = now_rfc3339();
        let mut exps = Vec::new();
        for spec in &specs {
            let name = exp_name(spec).to_string();
            let targets = choose(candidates(store, engine, spec), spec);
            let mut entry = json!({
                "name": name,
                "runner": format!("{}-runner", util::name(engine)),
                "experimentPod": "Yet to be launched",
                "status": WAITING,
                "verdict": "N/A",
                "lastUpdateTime": now,
            });
            if targets.is_empty() {
                entry["status"] = json!(COMPLETED);
                entry["verdict"] = json!("Fail");
            } else {
                let id = format!("{uid}/{name}");
                self.started.insert(id.clone(), Instant::now());
                if name == "pod-delete" {
                    delete_pods(store, &targets);
                    self.last_kill.insert(id, Instant::now());
                }
                entry["targets"] = targets_json(&targets);
            }
            exps.push(entry);
        }
        util::write_status(
            store,
            &key(GROUP, "chaosengines"),
            engine,
            json!({"engineStatus": "initialized", "experiments": exps}),
        );
    }

    fn progress(
        &mut self,
        store: &Store,
        engine: &Value,
        uid: &str,
        exps: Vec<Value>,
    ) -> Option<Instant> {
        let specs = engine
            .pointer("/spec/experiments")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let now = Instant::now();
        let mut wake: Option<Instant> = None;
        let mut soon = |at: Instant| wake = Some(wake.map_or(at, |w: Instant| w.min(at)));
        let mut next_exps = Vec::new();
        for mut e in exps {
            let name = e
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let spec = specs
                .iter()
                .find(|s| exp_name(s) == name)
                .cloned()
                .unwrap_or(json!({"name": name}));
            if !in_flight(&e) || !undecided(&e) {
                next_exps.push(e);
                continue;
            }
            let id = format!("{uid}/{name}");
            let started = *self.started.entry(id.clone()).or_insert_with(|| {
                let age = e
                    .get("lastUpdateTime")
                    .and_then(Value::as_str)
                    .and_then(util::parse_time)
                    .and_then(|t| (chrono::Utc::now() - t).to_std().ok())
                    .unwrap_or_default();
                now.checked_sub(age).unwrap_or(now)
            });
            let ends = started + total_duration(&spec);
            if now >= ends {
                // The daemon marks it Completed once the fault is gone.
                e["verdict"] = json!("Pass");
            } else {
                soon(ends);
                if name == "pod-delete" {
                    let interval = env(&spec, "CHAOS_INTERVAL")
                        .and_then(|v| parse_duration(&v))
                        .unwrap_or(Duration::from_secs(5));
                    let last = *self.last_kill.entry(id.clone()).or_insert(started);
                    if now >= last + interval {
                        let targets = choose(candidates(store, engine, &spec), &spec);
                        delete_pods(store, &targets);
                        self.last_kill.insert(id, now);
                        if !targets.is_empty() {
                            e["targets"] = targets_json(&targets);
                        }
                        soon(now + interval);
                    } else {
                        soon(last + interval);
                    }
                }
            }
            next_exps.push(e);
        }
        let all_done = !next_exps.iter().any(in_flight);
        if all_done {
            let status = json!({"engineStatus": "completed", "experiments": next_exps});
            if util::write_status(store, &key(GROUP, "chaosengines"), engine, status) {
                if let Ok(updated) = store.get(
                    &key(GROUP, "chaosengines"),
                    Some(util::namespace(engine)),
                    util::name(engine),
                ) {
                    stop_engine(store, &updated);
                }
            }
            return None;
        }
        util::write_status(
            store,
            &key(GROUP, "chaosengines"),
            engine,
            json!({"engineStatus": "initialized", "experiments": next_exps}),
        );
        wake
    }
}

fn stop_engine(store: &Store, engine: &Value) {
    let mut next = engine.clone();
    next["spec"]["engineState"] = json!("stop");
    util::write_object(store, &key(GROUP, "chaosengines"), engine, next);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controllers::testutil::*;
    use crate::controllers::{active_faults, spawn_controllers, ControllerConfig};

    fn engine(name: &str, experiment: &str, duration_s: &str) -> Value {
        json!({
            "apiVersion": "litmuschaos.io/v1alpha1", "kind": "ChaosEngine",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {
                "engineState": "active",
                "appinfo": {"appns": "default", "applabel": "app=target", "appkind": "deployment"},
                "chaosServiceAccount": "litmus-admin",
                "experiments": [{"name": experiment, "spec": {"components": {"env": [
                    {"name": "NETWORK_LATENCY", "value": "300"},
                    {"name": "TOTAL_CHAOS_DURATION", "value": duration_s},
                    {"name": "PODS_AFFECTED_PERC", "value": "50"}
                ]}}}]
            }
        })
    }

    fn get(store: &Store, name: &str) -> Value {
        store
            .get(&key(GROUP, "chaosengines"), Some("default"), name)
            .unwrap()
    }

    async fn app(store: &Store) {
        create(store, "apps", "deployments", deployment("target", 4));
        wait_for("pods", || {
            (ready_pods(store, "default", "target-").len() == 4).then_some(())
        })
        .await;
    }

    #[tokio::test]
    async fn latency_engine_runs_until_stopped() {
        let store = Store::new();
        let _h = spawn_controllers(store.clone(), ControllerConfig::default());
        app(&store).await;
        create(
            &store,
            GROUP,
            "chaosengines",
            engine("lat", "pod-network-latency", "600"),
        );
        let e = wait_for("running", || {
            Some(get(&store, "lat")).filter(|e| e["status"]["experiments"][0]["status"] == RUNNING)
        })
        .await;
        assert_ne!(
            e["status"]["experiments"][0]["experimentPod"],
            "Yet to be launched"
        );
        let faults = active_faults(&store);
        assert_eq!(faults.len(), 1);
        assert_eq!(faults[0].id, "chaosengine/default/lat/pod-network-latency");
        assert_eq!(faults[0].pods.len(), 2, "50% of 4 pods");
        assert_eq!(
            faults[0].action,
            ResolvedAction::Delay {
                latency: Duration::from_millis(300),
                jitter: Duration::ZERO
            }
        );
        let e = get(&store, "lat");
        assert_eq!(e["status"]["engineStatus"], "initialized");
        assert_eq!(e["status"]["experiments"][0]["status"], RUNNING);
        assert_eq!(e["status"]["experiments"][0]["verdict"], "Awaited");
        assert_eq!(e["status"]["experiments"][0]["runner"], "lat-runner");
        let mut e = get(&store, "lat");
        e["spec"]["engineState"] = json!("stop");
        store
            .update(
                &key(GROUP, "chaosengines"),
                Some("default"),
                "lat",
                e,
                &util::W,
            )
            .unwrap();
        let e = wait_for("stopped", || {
            Some(get(&store, "lat")).filter(|e| e["status"]["engineStatus"] == "stopped")
        })
        .await;
        assert!(active_faults(&store).is_empty());
        assert_eq!(e["status"]["experiments"][0]["status"], ABORTED);
        assert_eq!(e["status"]["experiments"][0]["verdict"], "Stopped");
    }

    #[tokio::test]
    async fn engine_completes_after_its_duration() {
        let store = Store::new();
        let _h = spawn_controllers(store.clone(), ControllerConfig::default());
        app(&store).await;
        create(
            &store,
            GROUP,
            "chaosengines",
            engine("short", "pod-network-loss", "1"),
        );
        wait_for("active", || {
            (!active_faults(&store).is_empty()).then_some(())
        })
        .await;
        let e = wait_for("completed", || {
            Some(get(&store, "short")).filter(|e| e["status"]["engineStatus"] == "completed")
        })
        .await;
        assert!(e["status"]["experiments"][0]["experimentPod"]
            .as_str()
            .unwrap()
            .starts_with("pod-network-loss-"));
        assert_eq!(e["status"]["experiments"][0]["status"], COMPLETED);
        assert_eq!(e["status"]["experiments"][0]["verdict"], "Pass");
        assert!(active_faults(&store).is_empty());
        wait_for("engineState stop", || {
            (get(&store, "short")["spec"]["engineState"] == "stop").then_some(())
        })
        .await;
    }

    #[tokio::test]
    async fn pod_delete_kills_targets() {
        let store = Store::new();
        let _h = spawn_controllers(store.clone(), ControllerConfig::default());
        app(&store).await;
        let before: Vec<String> = ready_pods(&store, "default", "target-")
            .iter()
            .map(|p| util::name(p).to_string())
            .collect();
        create(
            &store,
            GROUP,
            "chaosengines",
            engine("del", "pod-delete", "30"),
        );
        let e = wait_for("running", || {
            Some(get(&store, "del")).filter(|e| e["status"]["engineStatus"] == "initialized")
        })
        .await;
        let victims: Vec<String> = e["status"]["experiments"][0]["targets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(victims.len(), 2);
        assert!(victims.iter().all(|v| before.contains(v)));
        wait_for("victims gone and replaced", || {
            let now = ready_pods(&store, "default", "target-");
            (now.len() == 4
                && now
                    .iter()
                    .all(|p| !victims.iter().any(|v| v == util::name(p))))
            .then_some(())
        })
        .await;
        assert!(
            active_faults(&store).is_empty(),
            "pod-delete is not a network fault"
        );
    }

    /// The data plane hook has applied the fault before the experiment is
    /// `Running`, and removed it before the engine reports `stopped`.
    #[tokio::test]
    async fn status_follows_the_data_plane() {
        let store = Store::new();
        let (hook, calls) = recording_hook(&store, GROUP, "chaosengines", "lat");
        let _h = spawn_controllers(
            store.clone(),
            ControllerConfig {
                apply_faults: Some(hook),
                ..Default::default()
            },
        );
        app(&store).await;
        create(
            &store,
            GROUP,
            "chaosengines",
            engine("lat", "pod-network-latency", "600"),
        );
        let id = "chaosengine/default/lat/pod-network-latency";
        let exp_status = |s: &Value| s["experiments"][0]["status"].clone();
        wait_for("running", || {
            (exp_status(&get(&store, "lat")["status"]) == RUNNING).then_some(())
        })
        .await;
        {
            let calls = calls.lock().unwrap();
            assert!(calls.last().unwrap().ids.iter().any(|i| i == id));
            let first = calls
                .iter()
                .find(|c| c.ids.iter().any(|i| i == id))
                .unwrap();
            assert_eq!(exp_status(&first.status), WAITING);
        }
        let mut e = get(&store, "lat");
        e["spec"]["engineState"] = json!("stop");
        store
            .update(
                &key(GROUP, "chaosengines"),
                Some("default"),
                "lat",
                e,
                &util::W,
            )
            .unwrap();
        wait_for("stopped", || {
            (get(&store, "lat")["status"]["engineStatus"] == "stopped").then_some(())
        })
        .await;
        let calls = calls.lock().unwrap();
        assert!(calls.last().unwrap().ids.is_empty());
        let i = calls
            .iter()
            .rposition(|c| c.ids.iter().any(|i| i == id))
            .unwrap();
        assert_eq!(
            exp_status(&calls[i + 1].status),
            RUNNING,
            "removed before aborted"
        );
    }

    #[test]
    fn confirm_moves_experiments_after_the_data_plane() {
        let mut e = engine("x", "pod-network-latency", "60");
        e["metadata"]["uid"] = json!("u");
        e["status"] = json!({"engineStatus": "initialized", "experiments": [
            {"name": "pod-network-latency", "status": WAITING, "verdict": "N/A",
             "experimentPod": "Yet to be launched"}]});
        let id = "chaosengine/default/x/pod-network-latency".to_string();
        assert_eq!(confirm_engine(&e, &[]), None, "not applied yet");
        let status = confirm_engine(&e, std::slice::from_ref(&id)).unwrap();
        assert_eq!(status["experiments"][0]["status"], RUNNING);
        assert_eq!(status["experiments"][0]["verdict"], "Awaited");
        e["status"] = status;
        assert_eq!(
            confirm_engine(&e, std::slice::from_ref(&id)),
            None,
            "a fixpoint"
        );
        // Duration over: the controller decided; still applied means still Running.
        e["status"]["experiments"][0]["verdict"] = json!("Pass");
        assert_eq!(confirm_engine(&e, std::slice::from_ref(&id)), None);
        let status = confirm_engine(&e, &[]).unwrap();
        assert_eq!(status["experiments"][0]["status"], COMPLETED);
        assert_eq!(status["experiments"][0]["verdict"], "Pass");
        // Stopping aborts once removed.
        e["status"]["experiments"][0]["verdict"] = json!("Awaited");
        e["spec"]["engineState"] = json!("stop");
        let status = confirm_engine(&e, &[]).unwrap();
        assert_eq!(status["experiments"][0]["status"], ABORTED);
        assert_eq!(status["experiments"][0]["verdict"], "Stopped");
        // A pod-delete has nothing to apply.
        let mut d = engine("d", "pod-delete", "60");
        d["status"] = json!({"engineStatus": "initialized", "experiments": [
            {"name": "pod-delete", "status": WAITING, "verdict": "N/A"}]});
        assert_eq!(
            confirm_engine(&d, &[]).unwrap()["experiments"][0]["status"],
            RUNNING
        );
    }
}
