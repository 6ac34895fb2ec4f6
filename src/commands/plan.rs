//! `heatcheck plan`: what a run would do, without doing it. For each
//! scenario: its steps, the objects each touches (server-side dry run,
//! `dryRun=All`), the policy verdict; then the least-privilege Role /
//! ClusterRole the run needs. Nothing in the cluster changes.

use serde::Serialize;
use serde_json::{json, Value};

use super::{install_crypto, load_suites_checked, runtime};
use crate::cli::PlanArgs;
use crate::cluster::{ClusterClient, PatchType, Resolved};
use crate::error::Error;
use crate::guard::permissions::{required, review, to_permissions, Access, Need};
use crate::guard::{
    self, static_templater, touches, EffectivePolicy, PolicyOverrides, Touch, Violation, FIXTURES,
};
use crate::suite::{Step, StepAction, Suite, Templater};

/// What a suite is planned with: the policy flags, `--var`s and the
/// `--scenario` selection (shared with `deploy` and `playbook`).
#[derive(Default)]
pub(crate) struct PlanScope<'a> {
    pub(crate) policy: PolicyOverrides,
    pub(crate) vars: &'a [(String, String)],
    pub(crate) scenarios: &'a [String],
}

/// Name of the generated Role / ClusterRole.
pub const ROLE_NAME: &str = "heatcheck-runner";

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PlannedObject {
    pub(crate) verb: String,
    pub(crate) object: String,
    /// What the server answered to the dry run (or what was read).
    pub(crate) result: String,
    pub(crate) ok: bool,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PlannedStep {
    pub(crate) index: usize,
    pub(crate) name: String,
    pub(crate) objects: Vec<PlannedObject>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PlannedCase {
    pub(crate) name: String,
    pub(crate) kind: &'static str,
    pub(crate) allowed: bool,
    pub(crate) steps: Vec<PlannedStep>,
    pub(crate) violations: Vec<Violation>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SuitePlan {
    pub(crate) name: String,
    pub(crate) file: String,
    pub(crate) policy: EffectivePolicy,
    pub(crate) notes: Vec<String>,
    pub(crate) cases: Vec<PlannedCase>,
    pub(crate) rbac: Vec<Value>,
    pub(crate) rbac_yaml: String,
    /// Every permission the run needs, why, and whether this identity has it.
    pub(crate) permissions: Vec<PlannedPermission>,
    /// False when a permission is denied: "cannot run with these credentials".
    pub(crate) can_run: bool,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PlannedPermission {
    #[serde(flatten)]
    need: Need,
    access: Access,
}

pub fn plan(args: PlanArgs) -> Result<(), Error> {
    install_crypto();
    let suites = load_suites_checked(&args.suites)?;
    let suites = run_set(suites, args.locked, &args.scenarios, args.partition)?;
    runtime().block_on(plan_async(args, suites))
}

/// Exactly the scenarios `run` with the same flags would run: hand-written
/// plus locked, narrowed by `--scenario` and `--partition`, each suite with
/// its locked scenarios appended (as the run's guard sees them).
pub(crate) fn run_set(
    suites: Vec<Suite>,
    locked: bool,
    scenarios: &[String],
    partition: Option<crate::engine::partition::Partition>,
) -> Result<Vec<Suite>, Error> {
    use super::scenarios::{apply_partition, check_known, combined, with_locked};
    let mut sets = with_locked(suites, locked)?;
    let view: Vec<(&Suite, &[crate::suite::Scenario])> =
        sets.iter().map(|(s, l)| (s, l.as_slice())).collect();
    check_known(&view, scenarios)?;
    if let Some(p) = partition {
        sets = apply_partition(p, scenarios, sets);
    }
    Ok(combined(&sets))
}

async fn plan_async(args: PlanArgs, suites: Vec<Suite>) -> Result<(), Error> {
    let conn = super::connect::connect(&args.cluster, None).await?;
    let client = conn.client.clone();
    let scope = PlanScope {
        policy: args.policy.overrides(),
        vars: &args.vars,
        scenarios: &args.scenarios,
    };
    let mut plans = Vec::new();
    // A refused step, a denied permission or a suite that cannot be
    // planned: the plan is printed in full, then the command fails.
    let mut refused = false;
    for suite in &suites {
        match plan_suite(&client, suite, &scope).await {
            Ok(p) => {
                refused |= p.cases.iter().any(|c| !c.allowed) || !p.can_run;
                plans.push(p);
            }
            Err(e) => {
                stderr_line!("error: suite {}: {e}", suite.metadata.name);
                refused = true;
            }
        }
    }
    if args.output.is_json() {
        let refused = plans
            .iter()
            .flat_map(|p| &p.cases)
            .filter(|c| !c.allowed)
            .count();
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({"suites": plans, "refused": refused}))
                .expect("serializes")
        );
    } else {
        for p in &plans {
            print!("{}", human(p));
        }
    }
    conn.close().await;
    if refused {
        return Err(Error::Verdict(crate::exit::RunOutcome::Invalid));
    }
    Ok(())
}

/// The plan of one suite (shared with `heatcheck playbook`).
pub(crate) async fn plan_suite(
    client: &ClusterClient,
    suite: &Suite,
    args: &PlanScope<'_>,
) -> Result<SuitePlan, String> {
    let pre = guard::preflight(Some(client), suite, &args.policy, args.vars, args.scenarios)
        .await
        .map_err(|e| e.to_string())?;
    let t = static_templater(suite, "plan", args.vars);
    let mut cases = Vec::new();

    let mut fixture_steps = Vec::new();
    if suite.spec.target.create_namespace {
        fixture_steps.push(crate::guard::permissions::namespace_step(
            &suite.spec.target.namespace,
        ));
    }
    fixture_steps.extend(suite.spec.fixtures.iter().cloned());
    let mut groups: Vec<(String, &'static str, Vec<Step>)> = Vec::new();
    if !fixture_steps.is_empty() {
        groups.push((FIXTURES.to_string(), "fixtures", fixture_steps));
    }
    for sc in guard::selected(suite, args.scenarios) {
        groups.push((sc.name.clone(), "scenario", sc.steps.clone()));
    }
    for (name, kind, steps) in groups {
        let mut planned = Vec::new();
        for (i, step) in steps.iter().enumerate() {
            let objects = plan_step(client, suite, &t, step, i, &pre.policy).await;
            planned.push(PlannedStep {
                index: i,
                name: step.display_name(),
                objects,
            });
        }
        let violations: Vec<Violation> = pre
            .violations
            .iter()
            .filter(|v| v.scenario == name)
            .cloned()
            .collect();
        cases.push(PlannedCase {
            name,
            kind,
            allowed: violations.is_empty(),
            steps: planned,
            violations,
        });
    }

    // The permissions: the same set `heatcheck run` checks before it starts.
    let needs = required(client, suite, &pre.policy, args.vars, args.scenarios).await;
    let answers = review(client, &needs).await;
    let perms = to_permissions(&needs);
    let permissions: Vec<PlannedPermission> = needs
        .into_iter()
        .zip(answers)
        .map(|(need, access)| PlannedPermission { need, access })
        .collect();
    Ok(SuitePlan {
        name: suite.metadata.name.clone(),
        file: super::relative(&suite.source.path),
        policy: pre.policy,
        notes: pre.notes,
        cases,
        can_run: !permissions.iter().any(|p| p.access == Access::Denied),
        permissions,
        rbac: perms.objects(ROLE_NAME),
        rbac_yaml: perms.to_yaml(ROLE_NAME),
    })
}

fn planned(verb: &str, object: String, result: Result<String, String>) -> PlannedObject {
    let ok = result.is_ok();
    PlannedObject {
        verb: verb.to_string(),
        object,
        result: result.unwrap_or_else(|e| {
            // Dry runs do not chain: what an earlier step creates is not there yet.
            let hint = if e.contains("not found") {
                " (expected if an earlier step or fixture creates it)"
            } else {
                ""
            };
            format!("dry run failed: {e}{hint}")
        }),
        ok,
    }
}

/// Dry-runs one step's calls and records the permissions they need.
async fn plan_step(
    client: &ClusterClient,
    suite: &Suite,
    t: &Templater,
    step: &Step,
    index: usize,
    policy: &EffectivePolicy,
) -> Vec<PlannedObject> {
    let list = match touches(suite, t, step, index) {
        Ok(l) => l,
        Err(e) => {
            return vec![PlannedObject {
                verb: step.action.kind().into(),
                object: "-".into(),
                result: format!("cannot be rendered before the run: {e}"),
                ok: false,
            }]
        }
    };
    let mut out = Vec::new();
    for tc in list {
        let r = match client.resolve(tc.api_version.as_deref(), &tc.kind).await {
            Ok(r) => r,
            Err(e) => {
                let scoped = policy.cluster_scoped(&tc.kind) == Some(true);
                out.push(planned(tc.action, tc.describe(scoped), Err(e.to_string())));
                continue;
            }
        };
        let ns = r.namespaced.then_some(tc.namespace.as_str());
        let described = describe(&tc, &r);
        // Pods a fault selects are only counted (blast radius), never written.
        let pods_of_fault = tc.action == "fault" && tc.object.is_none();
        if pods_of_fault {
            let n = client.list(&r, ns, tc.selector.as_deref()).await;
            out.push(planned(
                "list",
                described,
                n.map(|l| format!("selects {} pods now", l.len()))
                    .map_err(|e| e.to_string()),
            ));
            continue;
        }
        let result = dry_run(client, &r, ns, &tc, step, t).await;
        out.push(planned(tc.action, described, result));
    }
    out
}

fn describe(tc: &Touch, r: &Resolved) -> String {
    let name = match (&tc.name, &tc.object) {
        (Some(n), _) => n.clone(),
        (None, Some(o)) => format!(
            "{}*",
            o.pointer("/metadata/generateName")
                .and_then(Value::as_str)
                .unwrap_or_default()
        ),
        (None, None) => match &tc.selector {
            Some(s) => format!("(selector {s:?})"),
            None => "(every object)".into(),
        },
    };
    if r.namespaced {
        format!("{} {}/{name}", r.kind(), tc.namespace)
    } else {
        format!("{} {name}", r.kind())
    }
}

async fn dry_run(
    client: &ClusterClient,
    r: &Resolved,
    ns: Option<&str>,
    tc: &Touch,
    step: &Step,
    t: &Templater,
) -> Result<String, String> {
    let e = |e: crate::cluster::ClusterError| e.to_string();
    let exists = |name: Option<String>| async move {
        match name {
            Some(n) => client.get(r, ns, &n).await.map(|o| o.is_some()).map_err(e),
            None => Ok(false),
        }
    };
    match tc.action {
        "apply" | "create" | "fault" => {
            let mut obj = tc.object.clone().unwrap_or_default();
            if let Some(ns) = ns {
                obj["metadata"]["namespace"] = json!(ns);
            }
            let existed = exists(tc.name.clone()).await?;
            if tc.action == "apply" {
                client.apply_dry_run(r, ns, &obj).await.map_err(e)?;
            } else {
                client.create_dry_run(r, ns, &obj).await.map_err(e)?;
            }
            Ok(if existed {
                "would update"
            } else {
                "would create"
            }
            .into())
        }
        "delete" => {
            let names = match (&tc.name, &tc.selector) {
                (Some(n), _) => vec![n.clone()],
                (None, sel) => client
                    .list(r, ns, sel.as_deref())
                    .await
                    .map_err(e)?
                    .iter()
                    .filter_map(|o| o["metadata"]["name"].as_str().map(str::to_string))
                    .collect(),
            };
            if names.is_empty() {
                return Ok("matches nothing now".into());
            }
            let mut gone = Vec::new();
            let mut missing = Vec::new();
            for n in &names {
                if client.delete_dry_run(r, ns, n).await.map_err(e)? {
                    gone.push(n.clone());
                } else {
                    missing.push(n.clone());
                }
            }
            Ok(match (tc.name.is_some(), missing.is_empty()) {
                (true, true) => "would delete".into(),
                (true, false) => "not found now (nothing to delete)".into(),
                (false, _) => format!("would delete {}", gone.join(", ")),
            })
        }
        "patch" | "restart" => {
            let name = tc.name.clone().unwrap_or_default();
            let (kind, body) = match &step.action {
                StepAction::Patch(p) => (
                    match p.patch_type {
                        crate::suite::PatchType::Merge => PatchType::Merge,
                        crate::suite::PatchType::Json => PatchType::Json,
                        crate::suite::PatchType::Strategic => PatchType::Strategic,
                    },
                    t.render_value(&p.patch).map_err(|e| e.to_string())?,
                ),
                _ => (
                    PatchType::Merge,
                    json!({"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "plan"}}}}}),
                ),
            };
            client
                .patch_dry_run(r, ns, &name, kind, &body)
                .await
                .map_err(e)?;
            Ok("would patch".into())
        }
        "scale" => {
            let name = tc.name.clone().unwrap_or_default();
            let replicas = tc.replicas.unwrap_or_default();
            client
                .scale_dry_run(r, ns, &name, replicas)
                .await
                .map_err(e)?;
            Ok(format!("would scale to {replicas}"))
        }
        _ => Ok("reads".into()),
    }
}

fn human(p: &SuitePlan) -> String {
    let mut s = format!("suite {} ({})\n", p.name, p.file);
    let pol = &p.policy;
    let or_none = |v: Vec<String>| {
        if v.is_empty() {
            "none".to_string()
        } else {
            v.join(", ")
        }
    };
    s.push_str(&format!(
        "  policy: namespaces {}; maxPodsAffected {}; maxDuration {}; forbidden verbs {}; denied kinds: built-in{}; allowed kinds {}\n",
        or_none(pol.allow_namespaces.clone()),
        pol.max_pods_affected.map(|m| format!("{m}%")).unwrap_or_else(|| "none".into()),
        pol.max_duration.map(|d| crate::suite::format_duration(d.0)).unwrap_or_else(|| "none".into()),
        or_none(pol.forbidden_verbs.iter().cloned().collect()),
        if pol.denied_kinds.is_empty() {
            String::new()
        } else {
            format!(" + {}", pol.denied_kinds.iter().cloned().collect::<Vec<_>>().join(", "))
        },
        or_none(pol.allowed_kinds.iter().cloned().collect()),
    ));
    for n in &p.notes {
        s.push_str(&format!("  note: {n}\n"));
    }
    for c in &p.cases {
        let verdict = if c.allowed { "allowed" } else { "REFUSED" };
        let title = if c.kind == "fixtures" {
            "fixtures".to_string()
        } else {
            format!("scenario {:?}", c.name)
        };
        s.push_str(&format!("\n  {title}: {verdict}\n"));
        for st in &c.steps {
            s.push_str(&format!("    {}. {}\n", st.index + 1, st.name));
            for o in &st.objects {
                s.push_str(&format!("       {} {}: {}\n", o.verb, o.object, o.result));
            }
        }
        for v in &c.violations {
            s.push_str(&format!("    refused: {v}\n"));
        }
    }
    s.push_str("\n  permissions of the current identity (SelfSubjectAccessReview):\n");
    for p in &p.permissions {
        s.push_str(&format!(
            "    {:<8} {}: {}\n",
            p.access.as_str(),
            p.need.describe(),
            p.need.why
        ));
    }
    let unknown = p
        .permissions
        .iter()
        .filter(|p| p.access == Access::Unknown)
        .count();
    if !p.can_run {
        s.push_str("  verdict: cannot run with these credentials (bind the Role below)\n");
    } else if unknown > 0 {
        s.push_str(&format!(
            "  verdict: {unknown} permission(s) unknown (the server did not answer the review); the run will try\n"
        ));
    } else {
        s.push_str("  verdict: these credentials can run the suite and undo it\n");
    }
    s.push_str(
        "\n  least-privilege RBAC for this suite (bind it to the identity that runs heatcheck):\n",
    );
    for line in p.rbac_yaml.lines() {
        s.push_str(&format!("    {line}\n"));
    }
    s
}
