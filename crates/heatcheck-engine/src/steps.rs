//! Executing one step against the cluster. Every mutation is journaled first.

use std::time::Duration;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::context::{StepError, SuiteContext, RUN_LABEL};
use heatcheck_cluster::{PatchType, Resolved};
use heatcheck_format::fault;
use heatcheck_format::manifest;
use heatcheck_format::{
    DeleteStep, FaultStep, Matcher, PatchStep, Step, StepAction, WaitCondition, WaitStep,
};
use heatcheck_guard::{self as guard, Blast};

/// Runs one step; `scope` names the journal scope its changes belong to.
/// Returns a short note for the step log (what was touched).
pub(crate) async fn run_step(
    ctx: &SuiteContext,
    scope: &str,
    step: &Step,
    index: usize,
) -> Result<String, StepError> {
    let timeout = step.effective_timeout(ctx.suite.spec.defaults.timeout);
    let work = execute(ctx, scope, step, index, timeout);
    // Waits carry their own deadline; everything else gets the step timeout here.
    let limit = match step.action {
        StepAction::Sleep(d) => d.0 + timeout,
        // These poll with their own deadline and explain what they last saw.
        StepAction::Wait(_) | StepAction::Fault(_) => timeout + Duration::from_secs(5),
        _ => timeout,
    };
    let mut cancel = ctx.cancel.clone();
    tokio::select! {
        r = tokio::time::timeout(limit, work) => match r {
            Ok(r) => r,
            Err(_) => Err(StepError::Failed(format!("timed out after {}", heatcheck_format::format_duration(limit)))),
        },
        _ = cancel.wait_for(|c| *c) => Err(StepError::Aborted),
    }
}

async fn execute(
    ctx: &SuiteContext,
    scope: &str,
    step: &Step,
    index: usize,
    timeout: Duration,
) -> Result<String, StepError> {
    match &step.action {
        StepAction::Apply(a) | StepAction::Create(a) => {
            let create = matches!(step.action, StepAction::Create(_));
            let text = a
                .resolve_source(&ctx.suite.source.dir)
                .map_err(|e| StepError::Failed(e.to_string()))?;
            let rendered = ctx
                .templater
                .render(&text)
                .map_err(|e| StepError::Failed(e.to_string()))?;
            let origin = a.file.clone().unwrap_or_else(|| "inline manifest".into());
            let objects = manifest::parse_documents(&rendered, &origin)?;
            let mut touched = Vec::new();
            for obj in objects {
                touched.push(apply_object(ctx, scope, obj, a.namespace.as_deref(), create).await?);
            }
            Ok(touched.join(", "))
        }
        StepAction::Delete(d) => delete(ctx, scope, d, timeout).await,
        StepAction::Patch(p) => patch(ctx, scope, p).await,
        StepAction::Scale(s) => {
            let (r, ns, name) = existing_target(
                ctx,
                scope,
                s.api_version.as_deref(),
                &s.kind,
                s.namespace.as_deref(),
                &s.name,
            )
            .await?;
            // Scaling down takes pods away: the guard counts them before anything changes.
            let current = require(ctx.client.get(&r, Some(&ns), &name).await?, &r, &ns, &name)?;
            let replicas = current
                .pointer("/spec/replicas")
                .and_then(Value::as_u64)
                .unwrap_or(1) as usize;
            if (s.replicas as usize) < replicas {
                let removed = replicas - s.replicas as usize;
                guard::check_blast(&ctx.client, &ctx.policy, &ns, Blast::Count(removed)).await?;
            }
            record_existing(ctx, scope, &r, &ns, &name).await?;
            ctx.client.scale(&r, Some(&ns), &name, s.replicas).await?;
            Ok(format!("{} {ns}/{name} scaled to {}", r.kind(), s.replicas))
        }
        StepAction::Restart(s) => {
            let (r, ns, name) = existing_target(
                ctx,
                scope,
                s.api_version.as_deref(),
                &s.kind,
                s.namespace.as_deref(),
                &s.name,
            )
            .await?;
            record_existing(ctx, scope, &r, &ns, &name).await?;
            let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            let body = json!({"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": now}}}}});
            ctx.client
                .patch(&r, Some(&ns), &name, PatchType::Merge, &body)
                .await?;
            Ok(format!("{} {ns}/{name} restarted", r.kind()))
        }
        StepAction::Wait(w) => wait(ctx, w, timeout).await,
        StepAction::Sleep(d) => {
            ctx.sleep(d.0).await?;
            Ok(String::new())
        }
        StepAction::Fault(f) => inject_fault(ctx, scope, f, index, timeout).await,
    }
}

/// Resolves a named, namespaced object and checks it against the policy.
async fn existing_target(
    ctx: &SuiteContext,
    scope: &str,
    api_version: Option<&str>,
    kind: &str,
    namespace: Option<&str>,
    name: &str,
) -> Result<(Resolved, String, String), StepError> {
    let r = ctx.client.resolve(api_version, kind).await?;
    let ns = ctx.step_namespace(namespace)?;
    let name = ctx
        .templater
        .render(name)
        .map_err(|e| StepError::Failed(e.to_string()))?;
    guard_object(ctx, scope, &r, Some(&ns), &name)?;
    Ok((r, ns, name))
}

/// Journals an object that must exist, before it is mutated.
async fn record_existing(
    ctx: &SuiteContext,
    scope: &str,
    r: &Resolved,
    ns: &str,
    name: &str,
) -> Result<Value, StepError> {
    require(
        ctx.record_prior(scope, r, Some(ns), name).await?,
        r,
        ns,
        name,
    )
}

/// The guard's check of one object right before it is mutated.
fn guard_object(
    ctx: &SuiteContext,
    scope: &str,
    r: &Resolved,
    ns: Option<&str>,
    name: &str,
) -> Result<(), StepError> {
    let in_fixtures = scope.starts_with("fixtures:");
    guard::check_object(&ctx.policy, r, ns, name, in_fixtures).map_err(StepError::from)
}

fn require(current: Option<Value>, r: &Resolved, ns: &str, name: &str) -> Result<Value, StepError> {
    current.ok_or_else(|| StepError::Failed(format!("{} {ns}/{name} not found", r.kind())))
}

/// Applies (server-side) or creates one object, journaling its prior state.
async fn apply_object(
    ctx: &SuiteContext,
    scope: &str,
    mut obj: Value,
    step_ns: Option<&str>,
    create: bool,
) -> Result<String, StepError> {
    let api_version = obj["apiVersion"].as_str().unwrap_or_default().to_string();
    let kind = obj["kind"].as_str().unwrap_or_default().to_string();
    let r = ctx.client.resolve(Some(&api_version), &kind).await?;
    let ns = if r.namespaced {
        let written = obj
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .or(step_ns);
        let ns = ctx.step_namespace(written)?;
        obj["metadata"]["namespace"] = json!(ns);
        Some(ns)
    } else {
        if kind == "Namespace" {
            let name = obj
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            ctx.check_namespace(&name)?;
        }
        None
    };
    let name = match obj.pointer("/metadata/name").and_then(Value::as_str) {
        Some(n) => n.to_string(),
        None if create => {
            // generateName: pick the name here, so the journal knows it before the create.
            let prefix = obj
                .pointer("/metadata/generateName")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let name = format!("{prefix}{}", random_suffix());
            obj["metadata"]["name"] = json!(name);
            name
        }
        None => {
            return Err(StepError::Failed(format!(
                "{kind} without metadata.name cannot be applied (use create for generateName)"
            )))
        }
    };
    guard_object(ctx, scope, &r, ns.as_deref(), &name)?;
    let current = ctx.record_prior(scope, &r, ns.as_deref(), &name).await?;
    if current.is_none() {
        obj = with_run_label(obj, &ctx.run_id);
    }
    if create {
        ctx.client.create(&r, ns.as_deref(), &obj).await?;
    } else {
        ctx.client.apply(&r, ns.as_deref(), &obj).await?;
    }
    Ok(describe(&r, ns.as_deref(), &name))
}

/// Five characters from the alphabet Kubernetes uses for generated names.
fn random_suffix() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    (0..5)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

fn with_run_label(mut obj: Value, run_id: &str) -> Value {
    if !obj["metadata"]["labels"].is_object() {
        obj["metadata"]["labels"] = json!({});
    }
    obj["metadata"]["labels"][RUN_LABEL] = json!(run_id);
    obj
}

fn describe(r: &Resolved, ns: Option<&str>, name: &str) -> String {
    match ns {
        Some(ns) => format!("{} {ns}/{name}", r.kind()),
        None => format!("{} {name}", r.kind()),
    }
}

async fn delete(
    ctx: &SuiteContext,
    scope: &str,
    d: &DeleteStep,
    timeout: Duration,
) -> Result<String, StepError> {
    let mut targets: Vec<(Resolved, Option<String>, String)> = Vec::new();
    if let Some(text) = d
        .resolve_source(&ctx.suite.source.dir)
        .map_err(|e| StepError::Failed(e.to_string()))?
    {
        let rendered = ctx
            .templater
            .render(&text)
            .map_err(|e| StepError::Failed(e.to_string()))?;
        for obj in manifest::parse_documents(&rendered, d.file.as_deref().unwrap_or_default())? {
            let r = ctx
                .client
                .resolve(
                    obj["apiVersion"].as_str(),
                    obj["kind"].as_str().unwrap_or_default(),
                )
                .await?;
            let ns = if r.namespaced {
                Some(
                    ctx.step_namespace(
                        obj.pointer("/metadata/namespace")
                            .and_then(Value::as_str)
                            .or(d.namespace.as_deref()),
                    )?,
                )
            } else {
                None
            };
            let name = obj["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            targets.push((r, ns, name));
        }
    } else {
        let kind = d
            .kind
            .as_deref()
            .ok_or_else(|| StepError::Failed("delete needs kind (or file)".into()))?;
        let r = ctx.client.resolve(d.api_version.as_deref(), kind).await?;
        let ns = if r.namespaced {
            Some(ctx.step_namespace(d.namespace.as_deref())?)
        } else {
            None
        };
        match (&d.name, &d.selector) {
            (Some(name), _) => {
                let name = ctx
                    .templater
                    .render(name)
                    .map_err(|e| StepError::Failed(e.to_string()))?;
                targets.push((r, ns, name));
            }
            (None, Some(sel)) => {
                let sel = ctx
                    .templater
                    .render(sel)
                    .map_err(|e| StepError::Failed(e.to_string()))?;
                if sel.trim().is_empty() {
                    return Err(guard::GuardError::Refused(format!(
                        "an empty selector matches every {kind} in the namespace"
                    ))
                    .into());
                }
                let matched = ctx.client.list(&r, ns.as_deref(), Some(&sel)).await?;
                let all = ctx.client.list(&r, ns.as_deref(), None).await?.len();
                if !ctx.policy.allows_every_pod() {
                    guard::refuse_match_all(r.kind(), &sel, matched.len(), all)?;
                }
                // The blast radius is checked on what the selector matches now.
                if let Some(ns) = ns.as_deref() {
                    let blast = if guard::kinds::is_pod(r.kind()) {
                        Some(Blast::Count(matched.len()))
                    } else if matched
                        .iter()
                        .any(|o| guard::match_labels_selector(o).is_some())
                    {
                        Some(Blast::Workloads(&matched))
                    } else {
                        None
                    };
                    if let Some(b) = blast {
                        guard::check_blast(&ctx.client, &ctx.policy, ns, b).await?;
                    }
                }
                for o in matched {
                    let name = o["metadata"]["name"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string();
                    targets.push((r.clone(), ns.clone(), name));
                }
                if targets.is_empty() {
                    return Ok(format!("no {kind} matched {sel}"));
                }
            }
            (None, None) => {
                return Err(StepError::Failed(
                    "delete needs name, selector or file".into(),
                ))
            }
        }
    }
    for (r, ns, name) in &targets {
        guard_object(ctx, scope, r, ns.as_deref(), name)?;
    }
    let mut done = Vec::new();
    for (r, ns, name) in targets {
        let current = ctx.record_prior(scope, &r, ns.as_deref(), &name).await?;
        let Some(current) = current else {
            return Err(StepError::Failed(format!(
                "{} not found",
                describe(&r, ns.as_deref(), &name)
            )));
        };
        ctx.client.delete(&r, ns.as_deref(), &name).await?;
        if d.wait {
            let uid = current.pointer("/metadata/uid").and_then(Value::as_str);
            ctx.client
                .wait_gone(&r, ns.as_deref(), &name, uid, timeout, ctx.interval())
                .await?;
        }
        done.push(describe(&r, ns.as_deref(), &name));
    }
    Ok(done.join(", "))
}

async fn patch(ctx: &SuiteContext, scope: &str, p: &PatchStep) -> Result<String, StepError> {
    let r = ctx
        .client
        .resolve(p.api_version.as_deref(), &p.kind)
        .await?;
    let ns = if r.namespaced {
        Some(ctx.step_namespace(p.namespace.as_deref())?)
    } else {
        None
    };
    let name = ctx
        .templater
        .render(&p.name)
        .map_err(|e| StepError::Failed(e.to_string()))?;
    let body = ctx
        .templater
        .render_value(&p.patch)
        .map_err(|e| StepError::Failed(e.to_string()))?;
    guard_object(ctx, scope, &r, ns.as_deref(), &name)?;
    require(
        ctx.record_prior(scope, &r, ns.as_deref(), &name).await?,
        &r,
        ns.as_deref().unwrap_or("-"),
        &name,
    )?;
    let kind = match p.patch_type {
        heatcheck_format::PatchType::Merge => PatchType::Merge,
        heatcheck_format::PatchType::Json => PatchType::Json,
        heatcheck_format::PatchType::Strategic => PatchType::Strategic,
    };
    ctx.client
        .patch(&r, ns.as_deref(), &name, kind, &body)
        .await?;
    Ok(describe(&r, ns.as_deref(), &name))
}

/// Polls until the condition holds for the object (or every object the
/// selector matches). The error names the last observation.
async fn wait(ctx: &SuiteContext, w: &WaitStep, timeout: Duration) -> Result<String, StepError> {
    let cond = w.condition().map_err(StepError::Failed)?;
    let r = ctx
        .client
        .resolve(w.api_version.as_deref(), &w.kind)
        .await?;
    let ns = if r.namespaced {
        Some(ctx.step_namespace(w.namespace.as_deref())?)
    } else {
        None
    };
    let name = w
        .name
        .as_deref()
        .map(|n| ctx.templater.render(n))
        .transpose()
        .map_err(|e| StepError::Failed(e.to_string()))?;
    let selector = w
        .selector
        .as_deref()
        .map(|s| ctx.templater.render(s))
        .transpose()
        .map_err(|e| StepError::Failed(e.to_string()))?;
    let what = match (&name, &selector) {
        (Some(n), _) => describe(&r, ns.as_deref(), n),
        (None, Some(s)) => format!("{} matching {s}", r.kind()),
        (None, None) => format!("every {}", r.kind()),
    };
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let objects = match &name {
            Some(n) => ctx
                .client
                .get(&r, ns.as_deref(), n)
                .await?
                .into_iter()
                .collect(),
            None => {
                ctx.client
                    .list(&r, ns.as_deref(), selector.as_deref())
                    .await?
            }
        };
        let verdict = evaluate_wait(&cond, &objects);
        match verdict {
            Ok(()) => return Ok(format!("{what}: condition met")),
            Err(last) => {
                if tokio::time::Instant::now() >= deadline {
                    return Err(StepError::Failed(format!(
                        "timed out after {} waiting for {what}: {last}",
                        heatcheck_format::format_duration(timeout)
                    )));
                }
            }
        }
        ctx.sleep(ctx.interval()).await?;
    }
}

fn evaluate_wait(cond: &WaitCondition, objects: &[Value]) -> Result<(), String> {
    if let WaitCondition::Present(want) = cond {
        return match (want, objects.is_empty()) {
            (true, false) | (false, true) => Ok(()),
            (true, true) => Err("expected it to exist, it does not".into()),
            (false, false) => Err("expected it to be absent, it exists".into()),
        };
    }
    if objects.is_empty() {
        return Err("not found".into());
    }
    for o in objects {
        let name = o
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("?");
        let r = match cond {
            WaitCondition::JsonPath { path, expect } => {
                let v = heatcheck_gateway::jsonpath::first(o, path)?;
                expect.check(v.as_ref())
            }
            WaitCondition::Condition {
                condition_type,
                status,
            } => {
                let got = condition_status(o, condition_type);
                Matcher::Equals(json!(status))
                    .check(got.as_ref())
                    .map_err(|e| format!("condition {condition_type}: {e}"))
            }
            WaitCondition::Available(want) => {
                let ok = available(o);
                if ok == *want {
                    Ok(())
                } else {
                    Err(format!(
                        "expected available={want}, got {} of {} replicas available",
                        o.pointer("/status/availableReplicas")
                            .and_then(Value::as_i64)
                            .unwrap_or(0),
                        o.pointer("/spec/replicas")
                            .and_then(Value::as_i64)
                            .unwrap_or(1)
                    ))
                }
            }
            WaitCondition::Present(_) => Ok(()),
        };
        r.map_err(|e| format!("{name}: {e}"))?;
    }
    Ok(())
}

/// `status` of the condition of that type, in status.conditions or in any
/// status.parents[].conditions (Gateway API routes).
fn condition_status(o: &Value, t: &str) -> Option<Value> {
    let find = |conds: &Value| {
        conds
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["type"] == t))
            .map(|c| c["status"].clone())
    };
    if let Some(s) = o.pointer("/status/conditions").and_then(find) {
        return Some(s);
    }
    o.pointer("/status/parents")
        .and_then(Value::as_array)
        .and_then(|ps| ps.iter().find_map(|p| p.get("conditions").and_then(find)))
}

/// A Deployment (or anything with replicas) is available when every desired
/// replica is updated and available and the controller saw the latest spec.
fn available(o: &Value) -> bool {
    let int = |p: &str| o.pointer(p).and_then(Value::as_i64);
    let desired = int("/spec/replicas").unwrap_or(1);
    let observed = int("/status/observedGeneration").unwrap_or(0);
    let generation = int("/metadata/generation").unwrap_or(0);
    if o.pointer("/spec/replicas").is_none() && o.pointer("/status/conditions").is_some() {
        return condition_status(o, "Available") == Some(json!("True"));
    }
    observed >= generation
        && int("/status/updatedReplicas").unwrap_or(0) >= desired
        && int("/status/availableReplicas").unwrap_or(0) >= desired
        && int("/status/replicas").unwrap_or(0) == desired
}

async fn inject_fault(
    ctx: &SuiteContext,
    scope: &str,
    f: &FaultStep,
    index: usize,
    timeout: Duration,
) -> Result<String, StepError> {
    let ns = ctx.step_namespace(f.namespace.as_deref())?;
    // The run id ends in a random suffix: unique per run, short enough for a name.
    let short_run: String = ctx
        .run_id
        .rsplit('-')
        .next()
        .unwrap_or_default()
        .to_lowercase();
    // Unique per run, scenario and step; short enough for a label value.
    let scope_tag = &format!("{:x}", Sha256::digest(scope.as_bytes()))[..6];
    let name = format!(
        "heatcheck-{}-{short_run}-{scope_tag}-{index}",
        kebab(f.fault_type.as_str())
    );
    let mut step = f.clone();
    step.selector = ctx
        .templater
        .render(&f.selector)
        .map_err(|e| StepError::Failed(e.to_string()))?;
    let obj = fault::render(&step, &name, &ns, &ctx.run_id)?;
    let r = ctx
        .client
        .resolve(
            obj["apiVersion"].as_str(),
            obj["kind"].as_str().unwrap_or_default(),
        )
        .await?;
    guard_object(ctx, scope, &r, Some(&ns), &name)?;
    let blast = Blast::Selector {
        selector: &step.selector,
        percent: step.percent,
    };
    guard::check_blast(&ctx.client, &ctx.policy, &ns, blast).await?;
    ctx.record_prior(scope, &r, Some(&ns), &name).await?;
    ctx.client.create(&r, Some(&ns), &obj).await?;
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let mut seen = String::new();
        if let Some(o) = ctx.client.get(&r, Some(&ns), &name).await? {
            if fault::injected(&o)
                .map_err(|e| StepError::Failed(format!("{} {ns}/{name} failed: {e}", r.kind())))?
            {
                return Ok(format!("{} {ns}/{name} injected", r.kind()));
            }
            seen = fault::describe_status(&o);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(StepError::Failed(format!(
                "{} {ns}/{name} was not injected within {}{}",
                r.kind(),
                heatcheck_format::format_duration(timeout),
                if seen.is_empty() {
                    String::new()
                } else {
                    format!(" ({seen})")
                }
            )));
        }
        ctx.sleep(ctx.interval()).await?;
    }
}

fn kebab(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_uppercase() {
            out.push('-');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deployment_availability() {
        let d = json!({"metadata": {"generation": 2}, "spec": {"replicas": 2}, "status": {"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2}});
        assert!(available(&d));
        let mut stale = d.clone();
        stale["status"]["observedGeneration"] = json!(1);
        assert!(!available(&stale));
        let zero = json!({"metadata": {"generation": 3}, "spec": {"replicas": 0}, "status": {"observedGeneration": 3}});
        assert!(available(&zero));
    }

    #[test]
    fn route_conditions_are_found_in_parents() {
        let r = json!({"status": {"parents": [{"conditions": [{"type": "Accepted", "status": "True"}]}]}});
        assert_eq!(condition_status(&r, "Accepted"), Some(json!("True")));
        assert!(evaluate_wait(
            &WaitCondition::Condition {
                condition_type: "Accepted".into(),
                status: "True".into()
            },
            &[r]
        )
        .is_ok());
        assert!(evaluate_wait(&WaitCondition::Present(false), &[]).is_ok());
        assert_eq!(kebab("networkDelay"), "network-delay");
    }
}
