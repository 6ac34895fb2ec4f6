//! `heatcheck recover [RUN]`: restores what a crashed, aborted or failed run
//! left, from its journal, on the cluster its run.json names. Idempotent:
//! each object is compared with its prior state before anything is done, and
//! a scope is marked restored only when all of it is back.

use super::runs::{describe_entry, inspect, status_text, RunView, Verdict};
use super::{install_crypto, runtime};
use crate::cli::{ClusterFlags, RecoverArgs};
use crate::cluster::{ClusterClient, ClusterError};
use crate::engine::journal::Journal;
use crate::engine::restore::{restore_scope, RestoreOptions, RestoreOutcome};
use crate::engine::runstate::{list_runs, ClusterRef, Liveness, RunDir, RunStatus};
use crate::error::Error;
use crate::exit::RunOutcome;

pub fn recover(args: RecoverArgs) -> Result<(), Error> {
    install_crypto();
    if args.journal_in_cluster {
        return runtime().block_on(recover_in_cluster(&args));
    }
    let dirs: Vec<RunDir> = match &args.run {
        Some(id) => {
            let d = RunDir::new(&args.state_dir, id);
            if !d.path.is_dir() {
                return Err(Error::invalid(format!(
                    "no run {id} in {} (see `heatcheck runs`)",
                    args.state_dir.display()
                )));
            }
            vec![d]
        }
        None => list_runs(&args.state_dir),
    };
    // Newest run first: its changes sit on top of older ones.
    let views: Vec<RunView> = dirs
        .iter()
        .rev()
        .map(inspect)
        .filter(|v| args.run.is_some() || v.verdict != Verdict::Clean)
        .collect();
    if views.is_empty() {
        println!(
            "Nothing to recover in {}: every run finished and restored.",
            args.state_dir.display()
        );
        return Ok(());
    }
    let rt = runtime();
    let mut left = false;
    for v in &views {
        left |= rt.block_on(recover_one(v, &args));
    }
    // What is left was printed run by run.
    Error::verdict(if left {
        RunOutcome::RestoreFailed
    } else {
        RunOutcome::Passed
    })
}

/// Returns true when something is still left.
async fn recover_one(v: &RunView, args: &RecoverArgs) -> bool {
    let id = v.dir.run_id();
    match v.verdict {
        Verdict::Clean => {
            println!("{id}: nothing to recover ({})", status_text(v));
            return false;
        }
        Verdict::Running if v.liveness != Some(Liveness::OtherHost) || !args.force => {
            println!(
                "{id}: NOT recovered: {}. Stop it with `heatcheck abort {id}` (it restores as it stops){}",
                status_text(v),
                if v.liveness == Some(Liveness::OtherHost) {
                    ", or pass --force if that machine is gone"
                } else {
                    ""
                }
            );
            return true;
        }
        _ => {}
    }
    let cluster = v.state.as_ref().map(|s| s.cluster.clone()).ok();
    if cluster.as_ref().is_some_and(|c| c.embedded_sandbox) {
        println!("{id}: nothing to restore: the run used the embedded sandbox (`run --sandbox`), which ended with it");
        mark(&v.dir, RunStatus::Finished, None);
        return false;
    }
    println!("{id}: recovering ({})", status_text(v));
    let client = match connect(cluster.as_ref(), args).await {
        Ok(c) => c,
        Err(why) => {
            println!("{id}: NOT recovered: {why}");
            list_left(v);
            return true;
        }
    };
    let journal = match Journal::open(&v.dir.journal_path()) {
        Ok(j) => j,
        Err(e) => {
            println!("{id}: NOT recovered: {e}");
            return true;
        }
    };
    let progress = |msg: &str| println!("  {msg}");
    let opts = RestoreOptions {
        deadline: tokio::time::Instant::now() + args.restore_timeout,
        stop_waiting: None,
        progress: &progress,
    };
    let mut total = RestoreOutcome::default();
    for scope in journal.open_scopes() {
        total.merge(restore_scope(&client, &journal, &scope, &opts).await);
    }
    let remaining: Vec<String> = journal
        .open_scopes()
        .iter()
        .flat_map(|s| journal.pending(s))
        .map(|e| describe_entry(&e))
        .collect();
    if total.ok() && remaining.is_empty() {
        println!(
            "{id}: recovered: {} object(s) put back; the cluster is as the run found it",
            total.restored.len()
        );
        mark(&v.dir, RunStatus::Finished, None);
        let _ = std::fs::remove_file(v.dir.abort_path());
        false
    } else {
        println!("{id}: NOT fully recovered; still left:");
        for e in &total.errors {
            println!("  {e}");
        }
        mark(
            &v.dir,
            RunStatus::RestoreFailed,
            Some(format!("left: {}", total.left_behind.join(", "))),
        );
        println!("  Fix the cause and run `heatcheck recover {id}` again.");
        true
    }
}

/// The journal Secrets in the runner's namespace (the ServiceAccount's in a
/// pod, the context's elsewhere), as a CronJob run does before it starts.
async fn recover_in_cluster(args: &RecoverArgs) -> Result<(), Error> {
    let cluster = ClusterFlags {
        sandbox: false,
        kubeconfig: args.kubeconfig.clone(),
        context: args.context.clone(),
    };
    let conn = super::connect::connect(&cluster, None).await?;
    let ns = conn.client.default_namespace().to_string();
    let say = |m: &str| println!("{m}");
    let res = crate::engine::incluster::recover_journals(
        &conn.client,
        &ns,
        &args.state_dir,
        args.restore_timeout,
        args.force,
        &say,
    )
    .await;
    conn.close().await;
    match res {
        Err(e) => Err(Error::reaching(
            e.is_unreachable(),
            format!("cannot read the journals in namespace {ns}: {e}"),
        )),
        Ok(r) if !r.failed.is_empty() => {
            println!("Fix the cause and run `heatcheck recover --journal-in-cluster` again.");
            Err(Error::Verdict(RunOutcome::RestoreFailed))
        }
        Ok(r) if r.recovered.is_empty() && r.left_alone.is_empty() => {
            println!(
                "Nothing to recover in namespace {ns}: no journal Secret of an unfinished run."
            );
            Ok(())
        }
        Ok(_) => Ok(()),
    }
}

fn list_left(v: &RunView) {
    for (scope, entries) in &v.pending {
        for e in entries {
            println!("  left ({scope}): {}", describe_entry(e));
        }
    }
}

fn mark(dir: &RunDir, status: RunStatus, message: Option<String>) {
    if dir.state_path().exists() {
        if let Err(e) = dir.set_status(status, message) {
            stderr_line!("warning: cannot update {}: {e}", dir.state_path().display());
        }
    }
}

/// Connects with run.json's coordinates unless overridden; refuses when the
/// recorded server and the one reached differ (restoring someone else's
/// cluster from this journal would be wrong) unless the user overrode them.
async fn connect(
    cluster: Option<&ClusterRef>,
    args: &RecoverArgs,
) -> Result<ClusterClient, String> {
    let overridden = args.kubeconfig.is_some() || args.context.is_some();
    let context = args
        .context
        .clone()
        .or_else(|| cluster.and_then(|c| c.context.clone()));
    let kubeconfig = args
        .kubeconfig
        .clone()
        .or_else(|| cluster.and_then(|c| c.kubeconfig.clone()));
    let client = match (kubeconfig, cluster.and_then(|c| c.kubeconfig_env.clone())) {
        (Some(path), _) => {
            ClusterClient::connect(&crate::cluster::ConnectOptions {
                kubeconfig: Some(path),
                context,
            })
            .await
        }
        (None, Some(env)) if !overridden => from_kubeconfig_list(&env, context).await,
        (None, _) => {
            ClusterClient::connect(&crate::cluster::ConnectOptions {
                kubeconfig: None,
                context,
            })
            .await
        }
    }
    .map_err(|e| e.to_string())?;
    if let Some(c) = cluster {
        if c.server != client.server() {
            if overridden {
                stderr_line!(
                    "warning: the run used {}; restoring on {} as asked",
                    c.server,
                    client.server()
                );
            } else {
                return Err(format!(
                    "the run's kubeconfig now points at {}, but the run used {}; pass --kubeconfig/--context for the run's cluster",
                    client.server(),
                    c.server
                ));
            }
        }
    }
    client.ping().await.map_err(|e| e.to_string())?;
    Ok(client)
}

/// KUBECONFIG as the run had it: several files merged, like kubectl.
async fn from_kubeconfig_list(
    list: &str,
    context: Option<String>,
) -> Result<ClusterClient, ClusterError> {
    use kube::config::{KubeConfigOptions, Kubeconfig};
    let mut merged: Option<Kubeconfig> = None;
    for p in std::env::split_paths(list) {
        if !p.exists() {
            continue;
        }
        let kc = Kubeconfig::read_from(&p)
            .map_err(|e| ClusterError::Config(format!("{}: {e}", p.display())))?;
        merged = Some(match merged {
            None => kc,
            Some(m) => m
                .merge(kc)
                .map_err(|e| ClusterError::Config(e.to_string()))?,
        });
    }
    let kc = merged.ok_or_else(|| ClusterError::Config(format!("no kubeconfig file in {list}")))?;
    let config = kube::Config::from_custom_kubeconfig(
        kc,
        &KubeConfigOptions {
            context,
            ..Default::default()
        },
    )
    .await
    .map_err(|e| ClusterError::Config(e.to_string()))?;
    ClusterClient::from_config(config)
}
