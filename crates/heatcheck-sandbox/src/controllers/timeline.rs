//! When a pod's containers start and become Ready, as offsets from the
//! moment the kubelet took the pod. Pure arithmetic, so the model can be
//! read (and tested) apart from the controller that applies it.
//!
//! What the real kubelet does, and so the twin:
//! - Containers start `container_start_delay` after the pod is taken (image
//!   pull, sandbox, runtime); the pod is Pending until then.
//! - Each probe has a worker that starts when the pod is taken and probes
//!   on a ticker every `periodSeconds` (default 10) from then. A probe is
//!   skipped until `initialDelaySeconds` (default 0) after the container
//!   started, so the first one that counts is the first tick at or after
//!   that moment, not the moment itself.
//! - When a container has started, the kubelet triggers one readiness probe
//!   at once (it counts when the initial delay is already over, e.g. 0).
//! - A container is Ready after `successThreshold` (default 1) passing
//!   probes; a startupProbe must pass first, and readiness probes wait for it.
//! - Every probe passes: the twin models when traffic may flow, not why an
//!   application would fail its checks. No probe: Ready once started.

use std::time::Duration;

use serde_json::Value;

/// A probe's timing fields, defaulted as the API server defaults them.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Probe {
    initial_delay: Duration,
    period: Duration,
    success_threshold: u32,
}

impl Probe {
    fn of(p: &Value) -> Probe {
        let secs = |field: &str, default: i64, min: i64| {
            p.get(field)
                .and_then(Value::as_i64)
                .unwrap_or(default)
                .max(min)
        };
        Probe {
            initial_delay: Duration::from_secs(secs("initialDelaySeconds", 0, 0) as u64),
            period: Duration::from_secs(secs("periodSeconds", 10, 1) as u64),
            success_threshold: secs("successThreshold", 1, 1) as u32,
        }
    }

    /// When the `successThreshold`-th passing probe runs. The container
    /// started at `started`; `triggered` is an extra probe run off the
    /// ticker (readiness, right when the container counts as started).
    fn passes_at(&self, started: Duration, triggered: Option<Duration>) -> Duration {
        let eligible = started + self.initial_delay;
        let mut runs: Vec<Duration> = Vec::new();
        if let Some(t) = triggered.filter(|t| *t >= eligible) {
            runs.push(t);
        }
        let from = eligible.max(triggered.unwrap_or_default());
        let period = self.period.as_nanos();
        let mut tick = from.as_nanos().div_ceil(period) * period;
        while runs.len() < self.success_threshold as usize {
            let at = Duration::from_nanos(tick as u64);
            if runs.last() != Some(&at) {
                runs.push(at);
            }
            tick += period;
        }
        runs[self.success_threshold as usize - 1]
    }
}

/// One pod's timeline, offsets from when the kubelet took it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Timeline {
    /// When its containers are running.
    pub started: Duration,
    /// When each container (in spec order) is Ready.
    pub ready: Vec<Duration>,
}

impl Timeline {
    pub(crate) fn of(pod: &Value, start_delay: Duration) -> Timeline {
        let containers = pod
            .pointer("/spec/containers")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let ready = containers
            .iter()
            .map(|c| container_ready(c, start_delay))
            .collect();
        Timeline {
            started: start_delay,
            ready,
        }
    }

    /// When the pod is Ready: its last container.
    #[cfg(test)]
    fn pod_ready(&self) -> Duration {
        self.ready.iter().copied().max().unwrap_or(self.started)
    }
}

fn container_ready(c: &Value, started: Duration) -> Duration {
    let running = match c.get("startupProbe") {
        Some(p) => Probe::of(p).passes_at(started, None),
        None => started,
    };
    match c.get("readinessProbe") {
        Some(p) => Probe::of(p).passes_at(started, Some(running)),
        None => running,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn s(x: f64) -> Duration {
        Duration::from_secs_f64(x)
    }

    fn pod(containers: Value) -> Value {
        json!({"spec": {"containers": containers}})
    }

    #[test]
    fn no_probe_is_ready_when_started() {
        let t = Timeline::of(&pod(json!([{"name": "a"}])), s(1.0));
        assert_eq!(t.started, s(1.0));
        assert_eq!(t.pod_ready(), s(1.0));
    }

    #[test]
    fn the_first_probe_that_counts_is_on_a_tick_after_the_initial_delay() {
        // Started at 1s; probes skipped until 3s; ticks every 10s from 0:
        // Ready at 10s, as a real kubelet does (not at 1 + 2 = 3s).
        let c = json!([{"readinessProbe": {"initialDelaySeconds": 2}}]);
        assert_eq!(Timeline::of(&pod(c), s(1.0)).pod_ready(), s(10.0));
        let c = json!([{"readinessProbe": {"initialDelaySeconds": 2, "periodSeconds": 1}}]);
        assert_eq!(Timeline::of(&pod(c), s(1.0)).pod_ready(), s(3.0));
        // A tick exactly at the end of the delay counts.
        let c = json!([{"readinessProbe": {"initialDelaySeconds": 4, "periodSeconds": 5}}]);
        assert_eq!(Timeline::of(&pod(c), s(1.0)).pod_ready(), s(5.0));
    }

    #[test]
    fn without_initial_delay_the_probe_triggered_at_start_counts() {
        let c = json!([{"readinessProbe": {"periodSeconds": 10}}]);
        assert_eq!(Timeline::of(&pod(c), s(1.0)).pod_ready(), s(1.0));
        // successThreshold 3: the triggered probe, then the ticks at 10 and 20.
        let c = json!([{"readinessProbe": {"successThreshold": 3}}]);
        assert_eq!(Timeline::of(&pod(c), s(1.0)).pod_ready(), s(20.0));
        // No start delay: the trigger and the tick at 0 are one probe.
        let c = json!([{"readinessProbe": {"successThreshold": 2, "periodSeconds": 3}}]);
        assert_eq!(Timeline::of(&pod(c), s(0.0)).pod_ready(), s(3.0));
    }

    #[test]
    fn a_startup_probe_comes_first_then_readiness_is_triggered() {
        let c = json!([{"startupProbe": {"periodSeconds": 2, "initialDelaySeconds": 1},
            "readinessProbe": {"periodSeconds": 10}}]);
        // Startup passes on the tick at 2s (>= 1 + 1); readiness at once then.
        assert_eq!(Timeline::of(&pod(c), s(1.0)).pod_ready(), s(2.0));
    }

    #[test]
    fn the_pod_waits_for_its_slowest_container_and_defaults_are_sane() {
        let c = json!([{}, {"readinessProbe": {"initialDelaySeconds": 5, "periodSeconds": 2}}]);
        let t = Timeline::of(&pod(c), s(1.0));
        assert_eq!(t.ready, vec![s(1.0), s(6.0)]);
        assert_eq!(t.pod_ready(), s(6.0));
        // Nonsense values are clamped as validation would have refused them.
        let c = json!([{"readinessProbe": {"periodSeconds": 0, "successThreshold": 0, "initialDelaySeconds": -3}}]);
        assert_eq!(Timeline::of(&pod(c), s(0.5)).pod_ready(), s(0.5));
    }
}
