//! `--journal-in-cluster`: the run's journal also lives in a Secret in the
//! runner's namespace (src/cluster/journal_secret.rs), so the next pod of a
//! nightly CronJob can undo what an OOM-killed or evicted one left. Every
//! such run first recovers the journals of earlier runs; `heatcheck recover
//! --journal-in-cluster` does the same by hand.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;

use crate::cluster::journal_secret::{self, Claim, FoundJournal, JournalSecret};
use crate::cluster::{ClusterClient, ClusterError};
use crate::engine::journal::{Journal, JournalSink};
use crate::engine::restore::{restore_scope, RestoreOptions, RestoreOutcome};
use crate::engine::runstate::{process_alive, this_host, RunDir, RunState, RunStatus};

/// The engine's journal writes, also sent to the run's Secret.
pub struct SecretSink(pub Arc<JournalSecret>);

impl JournalSink for SecretSink {
    fn store<'a>(&'a self, journal: &'a [u8]) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            self.0.store(journal).await.map_err(|e| {
                format!(
                    "cannot keep the journal in Secret {}/{}, so the change is not made: {e}",
                    self.0.namespace(),
                    self.0.name()
                )
            })
        })
    }
}

/// This process as a journal holder: `host/pid` (in a pod, the host is the
/// pod's name).
pub fn holder() -> String {
    format!("{}/{}", this_host(), std::process::id())
}

/// Renews the Secret's lease until the task is aborted.
pub fn keep_renewed(secret: Arc<JournalSecret>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(journal_secret::RENEW_EVERY).await;
            if let Err(e) = secret.renew().await {
                tracing::warn!("cannot renew journal Secret {}: {e}", secret.name());
            }
        }
    })
}

/// Why a journal must be left alone: its runner is alive as far as can be
/// told (same host and its process exists, or it renewed within the lease).
fn held_by_live_runner(found: &FoundJournal) -> Option<String> {
    let (host, pid) = found.holder_parts()?;
    let ago = found.since_renewed().unwrap_or(Duration::MAX);
    if host == this_host() {
        // Same machine (or pod): the process table is the truth.
        return process_alive(pid).then(|| format!("its runner {host}/{pid} is still running"));
    }
    (ago < journal_secret::LEASE).then(|| {
        format!(
            "held by {host}/{pid}, renewed {}s ago (its lease runs out after {}s without renewal)",
            ago.as_secs(),
            journal_secret::LEASE.as_secs()
        )
    })
}

/// What [`recover_journals`] did.
#[derive(Debug, Default)]
pub struct Recovered {
    /// Runs whose journal was restored and deleted.
    pub recovered: Vec<String>,
    /// Runs left alone (still running, or another runner has them).
    pub left_alone: Vec<String>,
    /// Runs whose restore did not complete: what is left.
    pub failed: Vec<String>,
}

/// Recovers every unfinished journal Secret in `namespace`, newest run
/// first (its changes sit on top of older ones). `force` also takes
/// journals whose runner seems alive. Err: the journals could not be listed.
pub async fn recover_journals(
    client: &ClusterClient,
    namespace: &str,
    state_dir: &Path,
    restore_timeout: Duration,
    force: bool,
    say: &(dyn Fn(&str) + Sync),
) -> Result<Recovered, ClusterError> {
    let mut found = journal_secret::list(client, namespace).await?;
    found.reverse();
    let me = holder();
    let mut out = Recovered::default();
    for f in &found {
        let id = &f.run_id;
        if let Some(why) = held_by_live_runner(f).filter(|_| !force) {
            say(&format!(
                "journal of run {id} (Secret {namespace}/{}): left alone: {why}",
                f.name
            ));
            out.left_alone.push(id.clone());
            continue;
        }
        let (secret, journal, run_state) =
            match JournalSecret::claim(client, namespace, f, &me).await? {
                Claim::Taken {
                    secret,
                    journal,
                    run_state,
                } => (Arc::<JournalSecret>::from(secret), journal, run_state),
                Claim::Lost(why) => {
                    say(&format!("journal of run {id}: left alone: {why}"));
                    out.left_alone.push(id.clone());
                    continue;
                }
            };
        say(&format!(
            "recovering run {id} from its journal in Secret {namespace}/{} ({}{})",
            f.name,
            f.status,
            f.message
                .as_deref()
                .map(|m| format!(": {m}"))
                .unwrap_or_default()
        ));
        let renewing = keep_renewed(secret.clone());
        let result = recover_one(
            client,
            &secret,
            &journal,
            &run_state,
            state_dir,
            restore_timeout,
            say,
        )
        .await;
        renewing.abort();
        match result {
            Ok(n) => {
                // Every scope is marked restored in the Secret already: a
                // Secret that could not be deleted is found again, with nothing to do.
                let gone = match secret.finish().await {
                    Ok(()) => "journal Secret deleted".to_string(),
                    Err(e) => format!("warning: journal Secret not deleted: {e}"),
                };
                say(&format!(
                    "recovered run {id}: {n} object(s) put back; the cluster is as that run found it; {gone}"
                ));
                out.recovered.push(id.clone());
            }
            Err(left) => {
                let message = format!("left: {left}");
                if let Err(e) = secret
                    .release(RunStatus::RestoreFailed.as_str(), Some(message.clone()))
                    .await
                {
                    say(&format!(
                        "warning: cannot update journal Secret {}: {e}",
                        secret.name()
                    ));
                }
                say(&format!("run {id} NOT recovered; {message}"));
                out.failed.push(id.clone());
            }
        }
    }
    Ok(out)
}

/// Restores one claimed journal through a local copy (the state dir), which
/// stays in step with the Secret. Ok(objects put back) or Err(what is left).
async fn recover_one(
    client: &ClusterClient,
    secret: &Arc<JournalSecret>,
    journal_text: &[u8],
    run_state: &[u8],
    state_dir: &Path,
    restore_timeout: Duration,
    say: &(dyn Fn(&str) + Sync),
) -> Result<usize, String> {
    let dir = RunDir::new(state_dir, secret.run_id());
    let local = |e: &dyn std::fmt::Display| {
        format!("cannot copy the journal to {}: {e}", dir.path.display())
    };
    std::fs::create_dir_all(&dir.path).map_err(|e| local(&e))?;
    std::fs::write(dir.journal_path(), journal_text).map_err(|e| local(&e))?;
    if let Ok(state) = serde_json::from_slice::<RunState>(run_state) {
        // For `heatcheck runs` on this machine; the Secret stays the truth.
        let _ = dir.write_state(&state);
    }
    let journal = Journal::open(&dir.journal_path())
        .map_err(|e| e.to_string())?
        .with_sink(Arc::new(SecretSink(secret.clone())));
    let progress = |msg: &str| say(&format!("  {msg}"));
    let opts = RestoreOptions {
        deadline: tokio::time::Instant::now() + restore_timeout,
        stop_waiting: None,
        progress: &progress,
    };
    let mut total = RestoreOutcome::default();
    for scope in journal.open_scopes() {
        total.merge(restore_scope(client, &journal, &scope, &opts).await);
    }
    let remaining: Vec<String> = journal
        .open_scopes()
        .iter()
        .flat_map(|s| journal.pending(s))
        .map(|e| e.describe())
        .collect();
    let mark = |status, message| {
        if dir.state_path().exists() {
            let _ = dir.set_status(status, message);
        }
    };
    if total.ok() && remaining.is_empty() {
        mark(RunStatus::Finished, None);
        Ok(total.restored.len())
    } else {
        // Each object's error was printed as it happened; name what is left.
        let text = if remaining.is_empty() {
            total.errors.join("; ")
        } else {
            remaining.join(", ")
        };
        mark(RunStatus::RestoreFailed, Some(format!("left: {text}")));
        Err(text)
    }
}
