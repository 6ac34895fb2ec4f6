//! A run's journal kept in the cluster (`--journal-in-cluster`): one Secret
//! per run in the runner's namespace — a Secret because prior states may
//! hold Secret data. A pod that is OOM-killed or evicted loses its disk; the
//! next run finds the Secret by label and restores what it holds.
//!
//! Who may write it is guarded twice: every write is an update carrying the
//! last resourceVersion this runner saw (a runner that took the journal over
//! makes the old holder's next write fail with a conflict, so the old holder
//! stops before mutating), and the holder renews `heatcheck.dev/renewed`
//! while it runs, so another runner leaves a live run's journal alone.
//!
//! The journal is opaque bytes here (the engine's JSON lines), kept
//! gzip-compressed; the run's state (run.json) likewise.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::time::Duration;

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::ByteString;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use tokio::sync::Mutex;

use super::{ClusterClient, ClusterError};

/// The Secret `type` of journals.
pub(crate) const SECRET_TYPE: &str = "heatcheck.dev/journal";
pub(crate) const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// Label with the run id: journals are found by it.
pub(crate) const RUN_LABEL: &str = "heatcheck.dev/run";
const HOLDER: &str = "heatcheck.dev/holder";
const RENEWED: &str = "heatcheck.dev/renewed";
const STATUS: &str = "heatcheck.dev/status";
const MESSAGE: &str = "heatcheck.dev/message";
const JOURNAL_KEY: &str = "journal.jsonl.gz";
const STATE_KEY: &str = "run.json";

/// A holder that has not renewed for this long is presumed gone.
pub const LEASE: Duration = Duration::from_secs(30);
/// How often a holder renews (a third of the lease: two renewals may fail).
pub const RENEW_EVERY: Duration = Duration::from_secs(10);
/// The API server's limit on a Secret's data (all keys together).
pub(crate) const MAX_SECRET_DATA: usize = 1024 * 1024;

/// The Secret's name for a run.
pub(crate) fn secret_name(run_id: &str) -> String {
    format!("heatcheck-journal-{run_id}")
}

/// A journal Secret as found by [`list`].
#[derive(Clone, Debug)]
pub struct FoundJournal {
    pub name: String,
    pub run_id: String,
    /// running, recovering, restore-failed, aborted.
    pub status: String,
    pub message: Option<String>,
    /// `host/pid` of the runner holding it; None once released.
    pub(crate) holder: Option<String>,
    pub(crate) renewed: Option<DateTime<Utc>>,
    resource_version: String,
}

impl FoundJournal {
    /// The holder's host and pid, when held.
    pub fn holder_parts(&self) -> Option<(&str, u32)> {
        let (host, pid) = self.holder.as_deref()?.rsplit_once('/')?;
        Some((host, pid.parse().ok()?))
    }

    /// How long ago the holder last renewed (None: never / not held).
    pub fn since_renewed(&self) -> Option<Duration> {
        self.renewed
            .map(|t| (Utc::now() - t).to_std().unwrap_or_default())
    }
}

/// Every journal Secret in `namespace`, oldest run first (run ids start
/// with their UTC start time).
pub async fn list(
    client: &ClusterClient,
    namespace: &str,
) -> Result<Vec<FoundJournal>, ClusterError> {
    let api: Api<Secret> = Api::namespaced(client.kube().clone(), namespace);
    let lp = ListParams::default().labels(&format!("{MANAGED_BY}=heatcheck,{RUN_LABEL}"));
    let list = api
        .list(&lp)
        .await
        .map_err(|e| in_ns(client.map_err(e, "list", "secrets", ""), namespace))?;
    let mut out: Vec<FoundJournal> = list
        .items
        .into_iter()
        .filter(|s| s.type_.as_deref() == Some(SECRET_TYPE))
        .map(|s| {
            let meta = s.metadata;
            let ann = meta.annotations.unwrap_or_default();
            let get = |k: &str| ann.get(k).cloned();
            FoundJournal {
                name: meta.name.unwrap_or_default(),
                run_id: meta
                    .labels
                    .and_then(|l| l.get(RUN_LABEL).cloned())
                    .unwrap_or_default(),
                status: get(STATUS).unwrap_or_else(|| "running".into()),
                message: get(MESSAGE),
                holder: get(HOLDER).filter(|h| !h.is_empty()),
                renewed: get(RENEWED)
                    .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
                    .map(|t| t.with_timezone(&Utc)),
                resource_version: meta.resource_version.unwrap_or_default(),
            }
        })
        .collect();
    out.sort_by(|a, b| a.run_id.cmp(&b.run_id));
    Ok(out)
}

fn in_ns(e: ClusterError, namespace: &str) -> ClusterError {
    match e {
        ClusterError::Forbidden {
            verb,
            resource,
            message,
            ..
        } => ClusterError::Forbidden {
            verb,
            resource,
            namespace: Some(namespace.to_string()),
            message,
        },
        e => e,
    }
}

/// A journal Secret this process holds (it created or claimed it).
pub struct JournalSecret {
    api: Api<Secret>,
    client: ClusterClient,
    namespace: String,
    name: String,
    run_id: String,
    holder: String,
    held: Mutex<Held>,
}

struct Held {
    resource_version: String,
    journal_gz: Vec<u8>,
    run_state: Vec<u8>,
    status: String,
    message: Option<String>,
    /// Set once another runner took the journal over (or deleted it).
    lost: Option<String>,
}

/// What [`JournalSecret::claim`] found.
pub enum Claim {
    /// Now held by this process: the journal and run state it held.
    Taken {
        secret: Box<JournalSecret>,
        journal: Vec<u8>,
        run_state: Vec<u8>,
    },
    /// Someone changed it since it was listed (another runner claimed or
    /// renewed it, or it was finished and deleted).
    Lost(String),
}

impl JournalSecret {
    /// Creates the Secret of a new run, held by `holder` (`host/pid`). An
    /// error means the journal cannot be kept: the run must not start.
    pub async fn create(
        client: &ClusterClient,
        namespace: &str,
        run_id: &str,
        holder: &str,
        run_state: &[u8],
    ) -> Result<Self, ClusterError> {
        let api: Api<Secret> = Api::namespaced(client.kube().clone(), namespace);
        let name = secret_name(run_id);
        let held = Held {
            resource_version: String::new(),
            journal_gz: gzip(b""),
            run_state: run_state.to_vec(),
            status: "running".into(),
            message: None,
            lost: None,
        };
        let me = JournalSecret {
            api,
            client: client.clone(),
            namespace: namespace.to_string(),
            name,
            run_id: run_id.to_string(),
            holder: holder.to_string(),
            held: Mutex::new(held),
        };
        let body = me.body(&*me.held.lock().await, true)?;
        let created = me.api.create(&PostParams::default(), &body).await;
        let created = match created {
            Ok(s) => s,
            // The retry layer may have re-sent a create that had worked.
            Err(kube::Error::Api(s)) if s.code == 409 => {
                me.api.get(&me.name).await.map_err(|e| me.err(e, "get"))?
            }
            Err(e) => return Err(me.err(e, "create")),
        };
        me.held.lock().await.resource_version =
            created.metadata.resource_version.unwrap_or_default();
        Ok(me)
    }

    /// Takes over a journal left by another runner, guarded by the
    /// resourceVersion it was listed with: of two runners claiming the same
    /// journal, one wins and the other gets [`Claim::Lost`].
    pub async fn claim(
        client: &ClusterClient,
        namespace: &str,
        found: &FoundJournal,
        holder: &str,
    ) -> Result<Claim, ClusterError> {
        let api: Api<Secret> = Api::namespaced(client.kube().clone(), namespace);
        let current = match api.get_opt(&found.name).await {
            Ok(Some(s)) => s,
            Ok(None) => return Ok(Claim::Lost("it was finished by another runner".into())),
            Err(e) => {
                return Err(in_ns(
                    client.map_err(e, "get", "secrets", &found.name),
                    namespace,
                ))
            }
        };
        if current.metadata.resource_version.as_deref() != Some(&found.resource_version) {
            return Ok(Claim::Lost(
                "it changed since it was listed (another runner holds it)".into(),
            ));
        }
        let data = current.data.clone().unwrap_or_default();
        let journal_gz = data
            .get(JOURNAL_KEY)
            .map(|b| b.0.clone())
            .unwrap_or_default();
        let journal = gunzip(&journal_gz).map_err(|e| {
            ClusterError::Invalid(format!(
                "journal Secret {namespace}/{}: {JOURNAL_KEY} is not gzip: {e}",
                found.name
            ))
        })?;
        let run_state = data.get(STATE_KEY).map(|b| b.0.clone()).unwrap_or_default();
        let me = JournalSecret {
            api,
            client: client.clone(),
            namespace: namespace.to_string(),
            name: found.name.clone(),
            run_id: found.run_id.clone(),
            holder: holder.to_string(),
            held: Mutex::new(Held {
                resource_version: found.resource_version.clone(),
                journal_gz,
                run_state: run_state.clone(),
                status: "recovering".into(),
                message: found.message.clone(),
                lost: None,
            }),
        };
        let mut held = me.held.lock().await;
        let body = me.body(&held, true)?;
        match me
            .api
            .replace(&me.name, &PostParams::default(), &body)
            .await
        {
            Ok(s) => held.resource_version = s.metadata.resource_version.unwrap_or_default(),
            Err(kube::Error::Api(s)) if s.code == 409 => {
                return Ok(Claim::Lost("another runner claimed it first".into()))
            }
            Err(kube::Error::Api(s)) if s.code == 404 => {
                return Ok(Claim::Lost("it was finished by another runner".into()))
            }
            Err(e) => return Err(me.err(e, "update")),
        }
        drop(held);
        Ok(Claim::Taken {
            secret: Box::new(me),
            journal,
            run_state,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// Stores the whole journal; done when the API server has it.
    pub async fn store(&self, journal: &[u8]) -> Result<(), ClusterError> {
        let mut held = self.held.lock().await;
        held.journal_gz = gzip(journal);
        self.write(&mut held, true).await
    }

    /// Renews the holder's lease (a no-op write of the renewal time).
    pub async fn renew(&self) -> Result<(), ClusterError> {
        let mut held = self.held.lock().await;
        self.write(&mut held, true).await
    }

    /// Everything was restored: the journal is done with, the Secret deleted.
    pub async fn finish(&self) -> Result<(), ClusterError> {
        let held = self.held.lock().await;
        if let Some(why) = &held.lost {
            return Err(ClusterError::Invalid(why.clone()));
        }
        match self.api.delete(&self.name, &DeleteParams::default()).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
            Err(e) => Err(self.err(e, "delete")),
        }
    }

    /// Something is left: the Secret stays for the next run (or
    /// `heatcheck recover`), released at once so it need not wait for the
    /// lease to run out.
    pub async fn release(&self, status: &str, message: Option<String>) -> Result<(), ClusterError> {
        let mut held = self.held.lock().await;
        held.status = status.to_string();
        held.message = message;
        self.write(&mut held, false).await
    }

    async fn write(&self, held: &mut Held, hold: bool) -> Result<(), ClusterError> {
        if let Some(why) = &held.lost {
            return Err(ClusterError::Invalid(why.clone()));
        }
        let body = self.body(held, hold)?;
        match self
            .api
            .replace(&self.name, &PostParams::default(), &body)
            .await
        {
            Ok(s) => {
                held.resource_version = s.metadata.resource_version.unwrap_or_default();
                Ok(())
            }
            Err(kube::Error::Api(s)) if s.code == 409 || s.code == 404 => {
                // A retried update that had landed is ours; anything else
                // means another runner took the journal over (or finished it).
                if let Ok(Some(cur)) = self.api.get_opt(&self.name).await {
                    let ours = annotation(&cur, HOLDER) == Some(&self.holder)
                        && cur
                            .data
                            .as_ref()
                            .and_then(|d| d.get(JOURNAL_KEY))
                            .map(|b| &b.0)
                            == Some(&held.journal_gz);
                    if ours {
                        held.resource_version = cur.metadata.resource_version.unwrap_or_default();
                        return Ok(());
                    }
                    let by = annotation(&cur, HOLDER)
                        .cloned()
                        .unwrap_or_else(|| "nobody".into());
                    held.lost = Some(format!(
                        "journal Secret {}/{} was taken over (now held by {by}); stopping before any further change",
                        self.namespace, self.name
                    ));
                } else {
                    held.lost = Some(format!(
                        "journal Secret {}/{} was deleted by someone else; stopping before any further change",
                        self.namespace, self.name
                    ));
                }
                Err(ClusterError::Invalid(held.lost.clone().unwrap_or_default()))
            }
            Err(e) => Err(self.err(e, "update")),
        }
    }

    fn body(&self, held: &Held, hold: bool) -> Result<Secret, ClusterError> {
        if let Some(e) = too_big(&self.run_id, held.journal_gz.len() + held.run_state.len()) {
            return Err(e);
        }
        let mut annotations = BTreeMap::from([
            (STATUS.to_string(), held.status.clone()),
            (RENEWED.to_string(), Utc::now().to_rfc3339()),
        ]);
        if hold {
            annotations.insert(HOLDER.to_string(), self.holder.clone());
        }
        if let Some(m) = &held.message {
            annotations.insert(MESSAGE.to_string(), m.clone());
        }
        Ok(Secret {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                namespace: Some(self.namespace.clone()),
                labels: Some(BTreeMap::from([
                    (MANAGED_BY.to_string(), "heatcheck".to_string()),
                    (RUN_LABEL.to_string(), self.run_id.clone()),
                ])),
                annotations: Some(annotations),
                resource_version: (!held.resource_version.is_empty())
                    .then(|| held.resource_version.clone()),
                ..Default::default()
            },
            type_: Some(SECRET_TYPE.to_string()),
            data: Some(BTreeMap::from([
                (JOURNAL_KEY.to_string(), ByteString(held.journal_gz.clone())),
                (STATE_KEY.to_string(), ByteString(held.run_state.clone())),
            ])),
            ..Default::default()
        })
    }

    fn err(&self, e: kube::Error, verb: &str) -> ClusterError {
        in_ns(
            self.client.map_err(e, verb, "secrets", &self.name),
            &self.namespace,
        )
    }
}

/// The refusal for a journal (plus run state) of `size` bytes, when it
/// does not fit in one Secret.
fn too_big(run_id: &str, size: usize) -> Option<ClusterError> {
    (size > MAX_SECRET_DATA).then(|| {
        ClusterError::Invalid(format!(
            "the journal of run {run_id} is {size} bytes compressed, above the {MAX_SECRET_DATA}-byte limit of a Secret, so it cannot be kept in the cluster; the change is not made. Run fewer suites or scenarios per run (e.g. deploy --shards) so each journal stays smaller"
        ))
    })
}

fn annotation<'a>(s: &'a Secret, key: &str) -> Option<&'a String> {
    s.metadata.annotations.as_ref()?.get(key)
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).expect("gzip into memory");
    enc.finish().expect("gzip into memory")
}

fn gunzip(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes).read_to_end(&mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_round_trips_and_shrinks_json_lines() {
        let line = br#"{"record":"entry","seq":1,"scope":"scenario:x","apiVersion":"apps/v1","kind":"Deployment","namespace":"shop","name":"web","prior":{"state":"absent"}}"#;
        let text: Vec<u8> = line
            .iter()
            .chain(b"\n")
            .copied()
            .cycle()
            .take(line.len() * 200)
            .collect();
        let gz = gzip(&text);
        assert!(gz.len() * 10 < text.len(), "{} vs {}", gz.len(), text.len());
        assert_eq!(gunzip(&gz).unwrap(), text);
        assert!(gunzip(b"").unwrap().is_empty());
    }

    #[test]
    fn a_journal_above_the_secret_limit_is_refused_saying_how_much() {
        assert!(too_big("r1", MAX_SECRET_DATA).is_none());
        let e = too_big("r1", MAX_SECRET_DATA + 1).unwrap();
        insta::assert_snapshot!(e.to_string());
    }

    #[test]
    fn holder_parts_split_host_and_pid() {
        let f = FoundJournal {
            name: secret_name("r1"),
            run_id: "r1".into(),
            status: "running".into(),
            message: None,
            holder: Some("nightly-29-abcde/7".into()),
            renewed: Some(Utc::now()),
            resource_version: "1".into(),
        };
        assert_eq!(f.holder_parts(), Some(("nightly-29-abcde", 7)));
        assert_eq!(f.name, "heatcheck-journal-r1");
        assert!(f.since_renewed().unwrap() < LEASE);
    }
}
