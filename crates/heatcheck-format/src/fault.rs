//! The engine-neutral `fault` step, rendered to a Chaos Mesh NetworkChaos /
//! PodChaos or a Litmus ChaosEngine, and the check that it is injected.

use serde_json::{json, Map, Value};

use crate::{format_duration, Direction, FaultEngine, FaultStep, FaultType};

/// The chaos object for a fault step. `name` is unique per run and step.
pub fn render(
    step: &FaultStep,
    name: &str,
    namespace: &str,
    run_id: &str,
) -> Result<Value, String> {
    match step.engine {
        FaultEngine::ChaosMesh => chaos_mesh(step, name, namespace, run_id),
        FaultEngine::Litmus => litmus(step, name, namespace, run_id),
    }
}

fn mode(step: &FaultStep) -> (&'static str, Option<String>) {
    if step.percent >= 100 {
        ("all", None)
    } else {
        ("fixed-percent", Some(step.percent.to_string()))
    }
}

/// Label selector text ("app=a,tier in (x,y)") as Chaos Mesh's selector:
/// equality terms go to labelSelectors, the rest to expressionSelectors.
pub(crate) fn chaos_mesh_selector(selector: &str, namespace: &str) -> Result<Value, String> {
    let mut labels = Map::new();
    let mut exprs = Vec::new();
    for term in split_terms(selector) {
        let term = term.trim();
        if term.is_empty() {
            continue;
        }
        if let Some((k, rest)) = term.split_once(" notin ") {
            exprs.push(json!({"key": k.trim(), "operator": "NotIn", "values": set_values(rest)?}));
        } else if let Some((k, rest)) = term.split_once(" in ") {
            exprs.push(json!({"key": k.trim(), "operator": "In", "values": set_values(rest)?}));
        } else if let Some((k, v)) = term.split_once("!=") {
            exprs.push(json!({"key": k.trim(), "operator": "NotIn", "values": [v.trim()]}));
        } else if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
            labels.insert(k.trim().to_string(), json!(v.trim()));
        } else if let Some(k) = term.strip_prefix('!') {
            exprs.push(json!({"key": k.trim(), "operator": "DoesNotExist"}));
        } else {
            exprs.push(json!({"key": term, "operator": "Exists"}));
        }
    }
    if labels.is_empty() && exprs.is_empty() {
        return Err("a fault needs a non-empty pod selector (it would hit every pod)".into());
    }
    let mut sel = json!({"namespaces": [namespace]});
    if !labels.is_empty() {
        sel["labelSelectors"] = Value::Object(labels);
    }
    if !exprs.is_empty() {
        sel["expressionSelectors"] = Value::Array(exprs);
    }
    Ok(sel)
}

/// Splits on commas outside parentheses ("a in (x,y),b=c").
fn split_terms(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth = 0;
    let mut cur = String::new();
    for c in s.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    out.push(cur);
    out
}

fn set_values(s: &str) -> Result<Vec<String>, String> {
    let s = s.trim();
    let inner = s
        .strip_prefix('(')
        .and_then(|s| s.strip_suffix(')'))
        .ok_or_else(|| format!("expected (v1,v2) in selector, got {s:?}"))?;
    Ok(inner
        .split(',')
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect())
}

fn labels(run_id: &str) -> Value {
    json!({"app.kubernetes.io/managed-by": "heatcheck", "heatcheck.dev/run-id": run_id})
}

fn chaos_mesh(step: &FaultStep, name: &str, ns: &str, run_id: &str) -> Result<Value, String> {
    let selector = chaos_mesh_selector(&step.selector, ns)?;
    let (mode, value) = mode(step);
    let mut spec = json!({"mode": mode, "selector": selector});
    if let Some(v) = value {
        spec["value"] = json!(v);
    }
    let kind = match step.fault_type {
        FaultType::PodKill => {
            spec["action"] = json!("pod-kill");
            "PodChaos"
        }
        FaultType::NetworkDelay => {
            let latency = step.latency.ok_or("a networkDelay fault needs `latency`")?;
            spec["action"] = json!("delay");
            spec["delay"] = json!({
                "latency": format_duration(latency.0),
                "jitter": format_duration(step.jitter.map(|j| j.0).unwrap_or_default()),
                "correlation": "0",
            });
            "NetworkChaos"
        }
        FaultType::NetworkLoss => {
            let loss = step
                .loss
                .ok_or("a networkLoss fault needs `loss` (percent)")?;
            spec["action"] = json!("loss");
            spec["loss"] = json!({"loss": loss.to_string(), "correlation": "0"});
            "NetworkChaos"
        }
        FaultType::NetworkPartition => {
            spec["action"] = json!("partition");
            if let Some(t) = &step.target {
                spec["target"] = json!({"mode": "all", "selector": chaos_mesh_selector(t, ns)?});
            }
            "NetworkChaos"
        }
    };
    if kind == "NetworkChaos" {
        spec["direction"] = json!(match step.direction.unwrap_or(Direction::To) {
            Direction::To => "to",
            Direction::From => "from",
            Direction::Both => "both",
        });
        spec["duration"] = json!(format_duration(step.duration.0));
    }
    Ok(json!({
        "apiVersion": "chaos-mesh.org/v1alpha1",
        "kind": kind,
        "metadata": {"name": name, "namespace": ns, "labels": labels(run_id)},
        "spec": spec,
    }))
}

fn litmus(step: &FaultStep, name: &str, ns: &str, run_id: &str) -> Result<Value, String> {
    let secs = step.duration.0.as_secs().max(1).to_string();
    let mut env = vec![
        json!({"name": "TOTAL_CHAOS_DURATION", "value": secs}),
        json!({"name": "PODS_AFFECTED_PERC", "value": step.percent.to_string()}),
    ];
    let experiment = match step.fault_type {
        FaultType::NetworkDelay => {
            let latency = step.latency.ok_or("a networkDelay fault needs `latency`")?;
            env.push(
                json!({"name": "NETWORK_LATENCY", "value": latency.0.as_millis().to_string()}),
            );
            if let Some(j) = step.jitter {
                env.push(json!({"name": "JITTER", "value": j.0.as_millis().to_string()}));
            }
            "pod-network-latency"
        }
        FaultType::NetworkLoss => {
            let loss = step
                .loss
                .ok_or("a networkLoss fault needs `loss` (percent)")?;
            env.push(json!({"name": "NETWORK_PACKET_LOSS_PERCENTAGE", "value": loss.to_string()}));
            "pod-network-loss"
        }
        FaultType::NetworkPartition => "pod-network-partition",
        FaultType::PodKill => "pod-delete",
    };
    if step.selector.trim().is_empty() {
        return Err("a fault needs a non-empty pod selector (it would hit every pod)".into());
    }
    Ok(json!({
        "apiVersion": "litmuschaos.io/v1alpha1",
        "kind": "ChaosEngine",
        "metadata": {"name": name, "namespace": ns, "labels": labels(run_id)},
        "spec": {
            "engineState": "active",
            "appinfo": {"appns": ns, "applabel": step.selector, "appkind": "deployment"},
            "chaosServiceAccount": format!("{experiment}-sa"),
            "experiments": [{"name": experiment, "spec": {"components": {"env": env}}}],
        },
    }))
}

/// Whether the chaos object reports the fault as injected (or, for one-shot
/// faults, done). Err carries a reason when the engine reports a failure.
pub fn injected(obj: &Value) -> Result<bool, String> {
    match obj.get("kind").and_then(Value::as_str) {
        Some("ChaosEngine") => {
            let state = obj
                .pointer("/status/engineStatus")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let exp = obj
                .pointer("/status/experiments/0/status")
                .and_then(Value::as_str)
                .unwrap_or_default();
            Ok(matches!(state, "initialized" | "completed")
                && matches!(exp, "Running" | "Completed"))
        }
        _ => {
            let conds = obj
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let is = |t: &str| {
                conds
                    .iter()
                    .any(|c| c["type"] == t && c["status"] == "True")
            };
            if let Some(msg) = obj
                .pointer("/status/experiment/containerRecords")
                .and_then(Value::as_array)
                .and_then(|recs| {
                    recs.iter().find_map(|r| {
                        r.pointer("/events")
                            .and_then(Value::as_array)
                            .and_then(|evs| {
                                evs.iter()
                                    .find(|e| e["type"] == "Failed")
                                    .map(|e| e["message"].as_str().unwrap_or("failed").to_string())
                            })
                    })
                })
            {
                return Err(msg);
            }
            Ok(is("AllInjected") || is("AllRecovered"))
        }
    }
}

/// The chaos object's status in a few words, for a timeout message:
/// "Selected=False, AllInjected=False" or "engineStatus=initialized".
pub fn describe_status(obj: &Value) -> String {
    if let Some(state) = obj.pointer("/status/engineStatus").and_then(Value::as_str) {
        return format!("engineStatus={state}");
    }
    obj.pointer("/status/conditions")
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .filter(|c| c["type"] == "Selected" || c["type"] == "AllInjected")
                .map(|c| {
                    format!(
                        "{}={}",
                        c["type"].as_str().unwrap_or("?"),
                        c["status"].as_str().unwrap_or("?")
                    )
                })
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Duration;

    fn step(t: FaultType, engine: FaultEngine) -> FaultStep {
        FaultStep {
            fault_type: t,
            engine,
            namespace: None,
            selector: "app=backend,tier in (a,b)".into(),
            percent: 50,
            duration: Duration::from_secs(90),
            latency: Some(Duration::from_millis(1000)),
            jitter: None,
            loss: Some(30),
            direction: None,
            target: None,
        }
    }

    #[test]
    fn renders_chaos_mesh_delay() {
        let o = render(
            &step(FaultType::NetworkDelay, FaultEngine::ChaosMesh),
            "f1",
            "ns",
            "r1",
        )
        .unwrap();
        assert_eq!(o["kind"], "NetworkChaos");
        assert_eq!(o["spec"]["mode"], "fixed-percent");
        assert_eq!(o["spec"]["value"], "50");
        assert_eq!(o["spec"]["delay"]["latency"], "1s");
        assert_eq!(o["spec"]["duration"], "1m30s");
        assert_eq!(o["spec"]["selector"]["labelSelectors"]["app"], "backend");
        assert_eq!(
            o["spec"]["selector"]["expressionSelectors"][0]["values"],
            json!(["a", "b"])
        );
    }

    #[test]
    fn renders_litmus_latency() {
        let o = render(
            &step(FaultType::NetworkDelay, FaultEngine::Litmus),
            "f1",
            "ns",
            "r1",
        )
        .unwrap();
        assert_eq!(o["kind"], "ChaosEngine");
        let env = &o["spec"]["experiments"][0]["spec"]["components"]["env"];
        assert!(env
            .as_array()
            .unwrap()
            .contains(&json!({"name": "NETWORK_LATENCY", "value": "1000"})));
        assert!(env
            .as_array()
            .unwrap()
            .contains(&json!({"name": "TOTAL_CHAOS_DURATION", "value": "90"})));
    }

    #[test]
    fn refuses_an_empty_selector() {
        let mut s = step(FaultType::PodKill, FaultEngine::ChaosMesh);
        s.selector = " ".into();
        assert!(render(&s, "f", "ns", "r")
            .unwrap_err()
            .contains("every pod"));
    }
}
