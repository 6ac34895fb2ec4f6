//! `--journal-in-cluster`: the run's journal also lives in a Secret in the
//! runner's namespace (src/cluster/journal_secret.rs), so the next pod of a
//! nightly CronJob can undo what an OOM-killed or evicted one left. Every
//! such run first recovers the journals of earlier runs; `heatcheck recover
//! --journal-in-cluster` does the same by hand.
//!
//! [`JournalStore`] is the one value that says where a run's journal lives;
//! everything the in-cluster choice changes (recovering earlier runs, the
//! permissions it needs, the Secret kept in step) asks it.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;

use crate::journal::{Journal, JournalSink};
use crate::restore::{restore_scope, RestoreOptions, RestoreOutcome};
use crate::runstate::{process_alive, this_host, RunDir, RunState, RunStatus};
use heatcheck_cluster::journal_secret::{self, Claim, FoundJournal, JournalSecret};
use heatcheck_cluster::{ClusterClient, ClusterError};

/// Where a run keeps its journal: always in the local state dir; with
/// `InCluster` also in a Secret in the runner's namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JournalStore {
    Local,
    InCluster { namespace: String },
}

/// Why an in-cluster run must not start.
#[derive(Debug, thiserror::Error)]
pub enum JournalStoreError {
    #[error("{} earlier run(s) could not be recovered ({}); this run does not start on a cluster that is not as it should be. Fix the cause, then run again or `heatcheck recover --journal-in-cluster`", .0.len(), .0.join(", "))]
    EarlierRunsNotRecovered(Vec<String>),
    #[error("cannot look for journals of earlier runs in namespace {namespace}: {source}; nothing was changed")]
    CannotList {
        namespace: String,
        source: ClusterError,
    },
    #[error("cannot keep the journal in the cluster: {0}; nothing was changed (a run that could not undo itself does not start)")]
    CannotKeep(ClusterError),
}

impl JournalStoreError {
    /// The cluster did not answer (rather than refused or failed a restore).
    pub fn is_unreachable(&self) -> bool {
        match self {
            JournalStoreError::EarlierRunsNotRecovered(_) => false,
            JournalStoreError::CannotList { source, .. }
            | JournalStoreError::CannotKeep(source) => source.is_unreachable(),
        }
    }

    /// Earlier runs' changes are still in the cluster.
    pub fn is_restore_failure(&self) -> bool {
        matches!(self, JournalStoreError::EarlierRunsNotRecovered(_))
    }
}

/// A run's journal Secret, kept renewed while the run lasts.
pub struct KeptJournal {
    secret: Arc<JournalSecret>,
    renewing: tokio::task::JoinHandle<()>,
}

impl JournalStore {
    /// `--journal-in-cluster` resolved against the connected client: the
    /// runner's namespace is the client's default one (the ServiceAccount's in a pod).
    pub fn new(in_cluster: bool, client: &ClusterClient) -> Self {
        if in_cluster {
            JournalStore::InCluster {
                namespace: client.default_namespace().to_string(),
            }
        } else {
            JournalStore::Local
        }
    }

    /// The permissions keeping the journal needs (none locally).
    pub fn needs(&self) -> Vec<heatcheck_guard::permissions::Need> {
        match self {
            JournalStore::Local => Vec::new(),
            JournalStore::InCluster { namespace } => {
                heatcheck_guard::permissions::journal_needs(namespace)
            }
        }
    }

    /// Before a run: undoes what earlier in-cluster runs left. Err when one
    /// could not be restored or the journals cannot be read: the run must not start.
    pub async fn recover_earlier(
        &self,
        client: &ClusterClient,
        state_dir: &Path,
        restore_timeout: Duration,
        say: &(dyn Fn(&str) + Sync),
    ) -> Result<(), JournalStoreError> {
        let JournalStore::InCluster { namespace } = self else {
            return Ok(());
        };
        match recover_journals(client, namespace, state_dir, restore_timeout, false, say).await {
            Ok(r) if r.failed.is_empty() => Ok(()),
            Ok(r) => Err(JournalStoreError::EarlierRunsNotRecovered(r.failed)),
            Err(source) => Err(JournalStoreError::CannotList {
                namespace: namespace.clone(),
                source,
            }),
        }
    }

    /// Before the run's first change: the Secret that keeps its journal
    /// (None locally), renewed until [`KeptJournal::close`].
    pub async fn keep(
        &self,
        client: &ClusterClient,
        run_id: &str,
        run_state: &RunState,
    ) -> Result<Option<KeptJournal>, JournalStoreError> {
        let JournalStore::InCluster { namespace } = self else {
            return Ok(None);
        };
        let state = serde_json::to_vec(run_state).expect("run state serializes");
        let secret = JournalSecret::create(client, namespace, run_id, &holder(), &state)
            .await
            .map_err(JournalStoreError::CannotKeep)?;
        let secret = Arc::new(secret);
        Ok(Some(KeptJournal {
            renewing: keep_renewed(secret.clone()),
            secret,
        }))
    }
}

impl KeptJournal {
    /// Where the engine sends each journal write.
    pub fn sink(&self) -> Arc<dyn JournalSink> {
        Arc::new(SecretSink(self.secret.clone()))
    }

    /// `namespace/name` of the Secret.
    pub fn describe(&self) -> String {
        format!("{}/{}", self.secret.namespace(), self.secret.name())
    }

    /// After the run: a finished run's Secret is deleted; otherwise it stays,
    /// released, for the next run to recover at once.
    pub async fn close(
        self,
        status: RunStatus,
        message: Option<String>,
    ) -> Result<(), ClusterError> {
        self.renewing.abort();
        if status == RunStatus::Finished {
            self.secret.finish().await
        } else {
            self.secret.release(status.as_str(), message).await
        }
    }
}

/// The engine's journal writes, also sent to the run's Secret.
pub(crate) struct SecretSink(pub(crate) Arc<JournalSecret>);

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
pub(crate) fn holder() -> String {
    format!("{}/{}", this_host(), std::process::id())
}

/// Renews the Secret's lease until the task is aborted.
pub(crate) fn keep_renewed(secret: Arc<JournalSecret>) -> tokio::task::JoinHandle<()> {
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
