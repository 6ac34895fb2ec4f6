//! `heatcheck deploy`: a nightly CronJob that runs suites inside the cluster
//! with least privilege. The Roles are the ones `plan` computes (dry runs
//! against the cluster); rendering is src/deploy.rs; this wires it.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

use super::{install_crypto, load_suites_checked, runtime};
use crate::cli::DeployArgs;
use crate::cluster::ClusterClient;
use crate::deploy::{self, BundleFile, DeploySpec, NotifySpec};
use crate::error::Error;
use crate::guard::permissions::{journal_needs, regenerate_needs, required, to_permissions, Need};
use crate::guard::{self, PolicyOverrides};
use crate::suite::{StepAction, Suite};

/// Without `policy.maxRunDuration` a suite is given this long.
const DEFAULT_RUN_SECONDS: u64 = 3600;
/// `run --restore-timeout`'s default: time to restore after SIGTERM.
const RESTORE_SECONDS: u64 = 120;

pub fn deploy_cmd(args: DeployArgs) -> Result<(), Error> {
    install_crypto();
    let suites = load_suites_checked(&args.suites)?;
    // The Role grants what the CronJob's run does: `run --locked` runs the
    // hand-written and the locked scenarios (a missing or stale lock would
    // fail every night, so it fails here); `--regenerate` replaces the
    // locked ones with what `ai.allowedSteps` allows.
    let suites = if args.regenerate {
        suites
    } else {
        super::scenarios::combined(&super::scenarios::with_locked(suites, true)?)
    };
    runtime().block_on(deploy_async(args, suites))
}

async fn deploy_async(args: DeployArgs, suites: Vec<Suite>) -> Result<(), Error> {
    let (files, suite_paths) = bundle_files(&suites).map_err(Error::invalid)?;
    let conn = super::connect::connect(&args.cluster, None).await?;
    let result = deploy_with(&conn.client, &args, &suites, files, suite_paths).await;
    conn.close().await;
    result
}

async fn deploy_with(
    client: &ClusterClient,
    args: &DeployArgs,
    suites: &[Suite],
    files: Vec<BundleFile>,
    suite_paths: Vec<String>,
) -> Result<(), Error> {
    // The same permissions `plan` shows and `run` checks before it starts.
    let mut needs: Vec<Need> = Vec::new();
    let mut comments: Vec<String> = Vec::new();
    for suite in suites {
        let pre = guard::preflight(
            Some(client),
            suite,
            &PolicyOverrides::default(),
            &args.vars,
            &[],
        )
        .await
        .map_err(|e| Error::invalid(format!("suite {}: {e}", suite.metadata.name)))?;
        needs.extend(required(client, suite, &pre.policy, &args.vars, &[]).await);
        if args.regenerate {
            let (n, comment) = generated_grant(client, suite, &pre.policy)
                .await
                .map_err(Error::invalid)?;
            needs.extend(n);
            comments.extend(comment);
        }
    }
    // The CronJob runs with --journal-in-cluster: its journal Secrets.
    needs.extend(journal_needs(&args.namespace));
    let perms = to_permissions(&needs);
    let spec = DeploySpec {
        name: args.name.clone(),
        namespace: args.namespace.clone(),
        schedule: args.schedule.clone(),
        image: args.image.clone(),
        shards: args.shards,
        regenerate: args.regenerate,
        rbac: perms.objects(&args.name),
        files,
        suites: suite_paths,
        active_deadline_seconds: active_deadline(suites),
        restore_seconds: RESTORE_SECONDS,
        notify: args
            .notify
            .urls
            .iter()
            .any(|u| !u.trim().is_empty())
            .then(|| NotifySpec {
                format: args.notify.notify_format.name().into(),
                always: args.notify.notify_always,
            }),
    };
    let objects = deploy::render(&spec).map_err(Error::invalid)?;
    if !args.apply {
        for c in &comments {
            println!("# {c}");
        }
        if spec.notify.is_some() {
            // The URLs are secrets: the printed stream names the Secret only.
            println!(
                "# --notify: the webhook URLs are not printed; the CronJob reads them from Secret {ns}/{name} (key {key}, URLs separated by spaces): kubectl create secret generic {name} -n {ns} --from-literal={key}='URL' (or deploy --apply creates it)",
                ns = spec.namespace,
                name = deploy::notify_secret_name(&spec),
                key = deploy::NOTIFY_SECRET_KEY,
            );
        }
        print!("{}", deploy::to_yaml(&objects));
        return Ok(());
    }
    for c in &comments {
        stderr_line!("note: {c}");
    }
    for obj in &objects {
        if obj["kind"] == "CronJob" && spec.notify.is_some() {
            // Before the CronJob, so that no run starts without its URLs.
            let urls: Vec<String> = args
                .notify
                .urls
                .iter()
                .filter(|u| !u.trim().is_empty())
                .cloned()
                .collect();
            let secret = deploy::notify_secret(&spec, &urls);
            let line = apply_one(client, &secret)
                .await
                .map_err(Error::unreachable)?;
            println!("{line}");
        }
        let line = apply_one(client, obj).await.map_err(Error::unreachable)?;
        println!("{line}");
    }
    Ok(())
}

/// `--regenerate`: the Role cannot know tomorrow's AI scenarios, so it grants
/// what the suite allows generated scenarios to do (`ai.allowedSteps`, also
/// enforced on every candidate) and refuses a suite that does not say. The
/// comment lines name the grant in the output.
async fn generated_grant(
    client: &ClusterClient,
    suite: &Suite,
    policy: &guard::EffectivePolicy,
) -> Result<(Vec<Need>, Vec<String>), String> {
    let Some(ai) = &suite.spec.ai else {
        return Ok((Vec::new(), Vec::new()));
    };
    if ai.allowed_steps.is_empty() {
        return Err(format!(
            "{}: deploy --regenerate: the Role cannot know the AI scenarios of future runs, and the suite's ai block has no allowedSteps to say what they may do; list them (e.g. `allowedSteps: [{{kind: Deployment, steps: [scale]}}]`) or deploy without --regenerate to run the locked scenarios",
            super::relative(&suite.source.path)
        ));
    }
    let context = crate::ai::context::effective_selectors(ai);
    let needs = regenerate_needs(client, suite, policy, &context).await?;
    let allowed: Vec<String> = ai
        .allowed_steps
        .iter()
        .map(|a| {
            let steps: Vec<&str> = a.steps.iter().map(|s| s.as_str()).collect();
            format!("{} {}", steps.join("/"), a.kind)
        })
        .collect();
    let comment = vec![format!(
        "--regenerate: suite {} may generate scenarios that {} in {} (ai.allowedSteps); the Role grants that, and a generated scenario needing more is rejected before it is locked",
        suite.metadata.name,
        allowed.join(", "),
        policy.allow_namespaces.join(", ")
    )];
    Ok((needs, comment))
}

/// Server-side apply (field manager heatcheck); says created or configured, as kubectl does.
async fn apply_one(client: &ClusterClient, obj: &Value) -> Result<String, String> {
    let api_version = obj["apiVersion"].as_str().unwrap_or_default();
    let kind = obj["kind"].as_str().unwrap_or_default();
    let name = obj["metadata"]["name"].as_str().unwrap_or_default();
    let ns = obj["metadata"]["namespace"].as_str();
    let r = client
        .resolve(Some(api_version), kind)
        .await
        .map_err(|e| e.to_string())?;
    let existed = client
        .get(&r, ns, name)
        .await
        .map_err(|e| e.to_string())?
        .is_some();
    client.apply(&r, ns, obj).await.map_err(|e| e.to_string())?;
    let what = match ns {
        Some(ns) => format!("{kind} {ns}/{name}"),
        None => format!("{kind} {name}"),
    };
    Ok(format!(
        "{what} {}",
        if existed { "configured" } else { "created" }
    ))
}

/// The sum of the suites' maxRunDuration (they run one after another), plus
/// the restore each may need; an hour for a suite without one.
fn active_deadline(suites: &[Suite]) -> u64 {
    suites
        .iter()
        .map(|s| {
            s.spec
                .policy
                .as_ref()
                .and_then(|p| p.max_run_duration)
                .map(|d| d.0.as_secs().max(1))
                .unwrap_or(DEFAULT_RUN_SECONDS)
                + RESTORE_SECONDS
        })
        .sum()
}

/// Each suite's file, its lockfile and the manifests its steps name, under
/// `<suite name>/` in the bundle. Returns the files and the suite paths.
fn bundle_files(suites: &[Suite]) -> Result<(Vec<BundleFile>, Vec<String>), String> {
    let mut files = Vec::new();
    let mut suite_paths = Vec::new();
    let mut prefixes = BTreeSet::new();
    for suite in suites {
        let prefix = suite.metadata.name.clone();
        if !prefixes.insert(prefix.clone()) {
            return Err(format!(
                "two suites are named {prefix:?}; deploy needs distinct suite names"
            ));
        }
        let dir = &suite.source.dir;
        let suite_file = suite
            .source
            .path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_else(|| "suite.yaml".into());
        let mut names = BTreeSet::from([suite_file.clone()]);
        let lock = crate::ai::lockfile::lock_path(&suite.source.path);
        if lock.exists() {
            names.insert(lock.file_name().unwrap().to_string_lossy().into_owned());
        }
        let steps = suite.spec.all_steps();
        for step in steps {
            let file = match &step.action {
                StepAction::Apply(s) | StepAction::Create(s) => s.file.as_deref(),
                StepAction::Delete(s) => s.file.as_deref(),
                _ => None,
            };
            if let Some(f) = file {
                names.insert(inside(f, &suite.source.path)?);
            }
        }
        for n in names {
            let path = dir.join(&n);
            let content =
                std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            files.push(BundleFile {
                path: format!("{prefix}/{n}"),
                content,
            });
        }
        suite_paths.push(format!("{prefix}/{suite_file}"));
    }
    Ok((files, suite_paths))
}

/// A manifest path relative to the suite's directory, refused when it
/// leaves it (the bundle mirrors that directory only).
fn inside(file: &str, suite: &Path) -> Result<String, String> {
    let p = Path::new(file);
    let clean = p
        .components()
        .all(|c| matches!(c, std::path::Component::Normal(_)));
    if !clean {
        return Err(format!(
            "{}: manifest {file:?} is outside the suite's directory; deploy bundles that directory only",
            suite.display()
        ));
    }
    Ok(p.to_string_lossy().replace('\\', "/"))
}
