//! Stop conditions, watched while a scenario runs: the suite's
//! `stopConditions` (maxDuration, a probe's success rate over a window, a
//! resource's JSON path) and `policy.maxDuration`. When one trips, the
//! scenario's own cancellation fires, so no further step runs; the engine
//! then restores and marks the scenario errored with the reason.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::context::SuiteContext;
use crate::probe::continuous::LiveProbes;
use crate::probe::stats::fmt_rate;
use heatcheck_format::{format_duration, Matcher, PromqlStop, ResourceStop, StopCondition};

/// A condition as watched: what trips it and how the reason reads.
#[derive(Clone, Debug, PartialEq)]
enum Watched {
    MaxDuration {
        limit: Duration,
        source: &'static str,
    },
    Probe {
        name: String,
        below: f64,
        window: Duration,
    },
    Resource(ResourceStop),
    Promql(PromqlStop),
}

impl Watched {
    /// The condition in words, as the live panel lists what is armed.
    fn describe(&self) -> String {
        match self {
            Watched::MaxDuration { limit, source } => {
                format!("{source} {}", format_duration(*limit))
            }
            Watched::Probe {
                name,
                below,
                window,
            } => format!(
                "probe {name} success rate < {} over {}",
                fmt_rate(*below),
                format_duration(*window)
            ),
            Watched::Resource(r) => format!(
                "{} {} {} is {}",
                r.kind,
                r.name,
                r.jsonpath,
                serde_json::to_string(&r.equals).unwrap_or_default()
            ),
            Watched::Promql(q) => {
                let bound = match (q.above, q.below) {
                    (Some(a), _) => format!("> {a}"),
                    (None, Some(b)) => format!("< {b}"),
                    (None, None) => String::new(),
                };
                format!(
                    "promql {} {bound} for {}",
                    q.query.trim(),
                    format_duration(q.for_duration.0)
                )
            }
        }
    }
}

/// Every condition watched over a scenario of this suite, in words.
pub(crate) fn armed(ctx: &SuiteContext) -> Vec<String> {
    let mut out: Vec<String> = watched(ctx).iter().map(Watched::describe).collect();
    if ctx.run_deadline.is_some() {
        if let Some(d) = ctx
            .suite
            .spec
            .policy
            .as_ref()
            .and_then(|p| p.max_run_duration)
        {
            out.push(format!(
                "policy maxRunDuration {} (whole run)",
                format_duration(d.0)
            ));
        }
    }
    out
}

fn watched(ctx: &SuiteContext) -> Vec<Watched> {
    let spec = &ctx.suite.spec;
    let mut out: Vec<Watched> = spec
        .stop_conditions
        .iter()
        .map(|c| match c {
            StopCondition::MaxDuration(d) => Watched::MaxDuration {
                limit: d.0,
                source: "maxDuration",
            },
            StopCondition::Probe {
                probe,
                success_rate,
            } => Watched::Probe {
                name: probe.clone(),
                below: success_rate.below,
                window: success_rate.for_duration.0,
            },
            StopCondition::Resource(r) => Watched::Resource(r.clone()),
            StopCondition::Promql(q) => Watched::Promql(q.clone()),
        })
        .collect();
    if let Some(d) = spec.policy.as_ref().and_then(|p| p.max_duration) {
        out.push(Watched::MaxDuration {
            limit: d.0,
            source: "policy maxDuration",
        });
    }
    out
}

/// A probe's trailing success rate against its stop threshold.
fn probe_reason(name: &str, below: f64, window: Duration, live: &LiveProbes) -> Option<String> {
    let (rate, _) = live.get(name)?.window_rate(window)?;
    (rate < below).then(|| {
        format!(
            "probe {name} success rate {} < {} over {}",
            fmt_rate(rate),
            fmt_rate(below),
            format_duration(window)
        )
    })
}

/// A resource's value at the condition's path, when it equals the stop value.
fn resource_reason(r: &ResourceStop, ns: Option<&str>, object: &Value) -> Option<String> {
    let got = heatcheck_gateway::jsonpath::first(object, &r.jsonpath).ok()??;
    Matcher::Equals(r.equals.clone()).check(Some(&got)).ok()?;
    let at = match ns {
        Some(ns) => format!("{ns}/{}", r.name),
        None => r.name.clone(),
    };
    Some(format!(
        "{} {at} {} is {}",
        r.kind,
        r.jsonpath,
        serde_json::to_string(&got).unwrap_or_default()
    ))
}

/// Reads the resource; transient errors and absent objects do not trip.
async fn check_resource(ctx: &SuiteContext, r: &ResourceStop) -> Option<String> {
    let res = ctx
        .client
        .resolve(r.api_version.as_deref(), &r.kind)
        .await
        .ok()?;
    let name = ctx.templater.render(&r.name).ok()?;
    let ns = res.namespaced.then(|| {
        r.namespace
            .clone()
            .unwrap_or_else(|| ctx.namespace().into())
    });
    let obj = ctx.client.get(&res, ns.as_deref(), &name).await.ok()??;
    let named = ResourceStop { name, ..r.clone() };
    resource_reason(&named, ns.as_deref(), &obj)
}

/// How often a promql stop condition queries (at most): Prometheus scrapes every few
/// seconds, so querying faster only repeats the same answer.
const PROMQL_EVERY: Duration = Duration::from_secs(1);

/// A promql condition's state between evaluations: since when it holds, when it last ran.
#[derive(Default)]
struct PromqlState {
    holds_since: Option<Instant>,
    last: Option<Instant>,
}

/// Evaluates a promql stop condition; Some(reason) once it has held for the whole window.
/// A query that fails does not trip (and resets the window): the run goes on.
async fn check_promql(
    ctx: &SuiteContext,
    q: &PromqlStop,
    state: &mut PromqlState,
) -> Option<String> {
    let now = Instant::now();
    if state
        .last
        .is_some_and(|t| now.duration_since(t) < PROMQL_EVERY)
    {
        return None;
    }
    state.last = Some(now);
    let prom = ctx.prometheus.as_ref()?;
    let query = ctx.templater.render(&q.query).ok()?;
    let samples = match prom.query(&query).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!("promql stop condition: {e}");
            state.holds_since = None;
            return None;
        }
    };
    let Some(hit) = crate::probe::promql::crossing(&samples, q.above, q.below) else {
        state.holds_since = None;
        return None;
    };
    let since = *state.holds_since.get_or_insert(now);
    if now.duration_since(since) < q.for_duration.0 {
        return None;
    }
    let (word, limit) = match (q.above, q.below) {
        (Some(a), _) => ("above", a),
        (None, b) => ("below", b.unwrap_or_default()),
    };
    Some(format!(
        "promql {query}: {} = {} {word} {limit} for {}",
        hit.series(),
        hit.value,
        format_duration(q.for_duration.0)
    ))
}

/// Watches one scenario. `context()` is the scenario's context: its
/// cancellation follows the run's and also fires when a condition trips.
pub(crate) struct StopWatch {
    ctx: SuiteContext,
    reason: Arc<Mutex<Option<String>>>,
    tasks: Vec<JoinHandle<()>>,
}

impl StopWatch {
    /// `on_trip` hears the reason the moment a condition trips.
    pub(crate) fn start(
        ctx: &SuiteContext,
        live: LiveProbes,
        started: Instant,
        on_trip: impl Fn(&str) + Send + 'static,
    ) -> StopWatch {
        let (tx, rx) = watch::channel(*ctx.cancel.borrow());
        let tx = Arc::new(tx);
        let mut scoped = ctx.clone();
        scoped.cancel = rx;
        let mut tasks = Vec::new();
        // Follow the run's cancellation (Ctrl-C).
        let mut parent = ctx.cancel.clone();
        let follow = tx.clone();
        tasks.push(tokio::spawn(async move {
            if parent.wait_for(|c| *c).await.is_ok() {
                let _ = follow.send(true);
            }
        }));
        let reason = Arc::new(Mutex::new(None));
        let conditions = watched(ctx);
        if !conditions.is_empty() || ctx.run_deadline.is_some() {
            let (ctx, reason) = (ctx.clone(), reason.clone());
            tasks.push(tokio::spawn(async move {
                let why = watch_loop(&ctx, &conditions, &live, started).await;
                *reason.lock().unwrap_or_else(|p| p.into_inner()) =
                    Some(format!("stop condition tripped: {why}"));
                on_trip(&why);
                let _ = tx.send(true);
            }));
        }
        StopWatch {
            ctx: scoped,
            reason,
            tasks,
        }
    }

    /// The context steps and assertions of the scenario run with.
    pub(crate) fn context(&self) -> &SuiteContext {
        &self.ctx
    }

    /// Why the scenario was stopped, if it was.
    pub(crate) fn tripped(&self) -> Option<String> {
        self.reason
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Stops watching; returns the reason if a condition tripped.
    pub(crate) fn finish(self) -> Option<String> {
        for t in &self.tasks {
            t.abort();
        }
        self.tripped()
    }
}

impl Drop for StopWatch {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Returns the first reason to stop. maxDuration fires on time; probe
/// windows and resources are evaluated every suite interval.
async fn watch_loop(
    ctx: &SuiteContext,
    conditions: &[Watched],
    live: &LiveProbes,
    started: Instant,
) -> String {
    let deadline = conditions
        .iter()
        .filter_map(|c| match c {
            Watched::MaxDuration { limit, source } => Some((started + *limit, *limit, *source)),
            _ => None,
        })
        // The run's own deadline (policy maxRunDuration) bounds every scenario too.
        .chain(ctx.run_deadline.map(|at| {
            let limit = ctx
                .suite
                .spec
                .policy
                .as_ref()
                .and_then(|p| p.max_run_duration)
                .map(|d| d.0)
                .unwrap_or_default();
            (at, limit, "policy maxRunDuration")
        }))
        .min_by_key(|(at, _, _)| *at);
    let mut promql: Vec<PromqlState> = conditions.iter().map(|_| PromqlState::default()).collect();
    let mut tick = tokio::time::interval(ctx.interval().max(Duration::from_millis(10)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = async {
                match deadline {
                    Some((at, _, _)) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            } => {
                let (_, limit, source) = deadline.expect("a deadline fired");
                if source == "policy maxRunDuration" {
                    return format!("the run went past {source} {}", format_duration(limit));
                }
                return format!("scenario ran longer than {source} {}", format_duration(limit));
            }
            _ = tick.tick() => {
                for (c, state) in conditions.iter().zip(promql.iter_mut()) {
                    let why = match c {
                        Watched::Probe { name, below, window } => {
                            probe_reason(name, *below, *window, live)
                        }
                        Watched::Resource(r) => check_resource(ctx, r).await,
                        Watched::Promql(q) => check_promql(ctx, q, state).await,
                        Watched::MaxDuration { .. } => None,
                    };
                    if let Some(why) = why {
                        return why;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn stop(jsonpath: &str, equals: Value) -> ResourceStop {
        ResourceStop {
            api_version: None,
            kind: "Deployment".into(),
            name: "web".into(),
            namespace: None,
            jsonpath: jsonpath.into(),
            equals,
        }
    }

    #[test]
    fn resource_conditions_trip_on_equal_values_only() {
        let obj = json!({"status": {"readyReplicas": 0, "conditions": [{"type": "Available", "status": "False"}]}});
        assert_eq!(
            resource_reason(
                &stop("$.status.readyReplicas", json!(0)),
                Some("shop"),
                &obj
            )
            .as_deref(),
            Some("Deployment shop/web $.status.readyReplicas is 0")
        );
        // Loose equality, as in assertions: "False" the string equals false.
        let path = "$.status.conditions[?(@.type=='Available')].status";
        assert!(resource_reason(&stop(path, json!(false)), None, &obj).is_some());
        assert!(resource_reason(&stop("$.status.readyReplicas", json!(2)), None, &obj).is_none());
        assert!(resource_reason(&stop("$.status.missing", json!(0)), None, &obj).is_none());
    }

    #[test]
    fn conditions_read_as_words_for_the_live_panel() {
        let described: Vec<String> = [
            Watched::MaxDuration {
                limit: Duration::from_secs(120),
                source: "maxDuration",
            },
            Watched::Probe {
                name: "shop".into(),
                below: 0.5,
                window: Duration::from_secs(5),
            },
            Watched::Resource(stop("$.status.readyReplicas", json!(0))),
            Watched::Promql(PromqlStop {
                query: "sum(rate(errors[1m]))\n".into(),
                above: Some(0.2),
                below: None,
                for_duration: heatcheck_format::Duration(Duration::from_secs(30)),
            }),
        ]
        .iter()
        .map(Watched::describe)
        .collect();
        assert_eq!(
            described,
            [
                "maxDuration 2m",
                "probe shop success rate < 0.50 over 5s",
                "Deployment web $.status.readyReplicas is 0",
                "promql sum(rate(errors[1m])) > 0.2 for 30s",
            ]
        );
    }

    #[test]
    fn unknown_or_young_probes_do_not_trip() {
        let live = LiveProbes::default();
        assert!(probe_reason("shop", 0.5, Duration::from_secs(1), &live).is_none());
    }
}
