//! Undoing the journal: created objects deleted, deleted ones recreated
//! without server-set fields, changed ones put back.

use std::time::Duration;

use serde_json::Value;
use tokio::sync::watch;
use tokio::time::Instant;

use super::journal::{Entry, Journal, Prior};
use super::model::{IdentityChange, RoutePrecedenceChange};
use heatcheck_cluster::{ClusterClient, ClusterError};

/// What a restore did, and what it could not do.
#[derive(Debug, Default, Clone)]
pub struct RestoreOutcome {
    pub restored: Vec<String>,
    pub left_behind: Vec<String>,
    pub errors: Vec<String>,
    /// Objects back under a new identity (suite and case are filled by the caller).
    pub(crate) identity_changed: Vec<IdentityChange>,
    pub(crate) precedence_changed: Vec<RoutePrecedenceChange>,
}

impl RestoreOutcome {
    pub fn ok(&self) -> bool {
        self.errors.is_empty() && self.left_behind.is_empty()
    }

    pub fn merge(&mut self, other: RestoreOutcome) {
        self.restored.extend(other.restored);
        self.left_behind.extend(other.left_behind);
        self.errors.extend(other.errors);
        self.identity_changed.extend(other.identity_changed);
        self.precedence_changed.extend(other.precedence_changed);
    }
}

/// Limits and reporting for one restore.
pub struct RestoreOptions<'a> {
    /// Nothing is waited for past this instant; what is not done is left
    /// in the journal (for `heatcheck recover`).
    pub deadline: Instant,
    /// Becomes true on a second Ctrl-C: deletions are still requested, but
    /// not waited for.
    pub stop_waiting: Option<watch::Receiver<bool>>,
    /// Called with each thing done ("deleted ConfigMap ns/a"), as it happens.
    pub progress: &'a (dyn Fn(&str) + Send + Sync),
}

impl RestoreOptions<'_> {
    fn hurried(&self) -> bool {
        self.stop_waiting.as_ref().is_some_and(|r| *r.borrow())
    }
}

/// Why an object was not put back.
#[derive(Debug, thiserror::Error)]
enum EntryError {
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error("restore deadline passed")]
    Deadline,
    #[error("deletion requested, not waited for (second interrupt)")]
    NotWaited,
}

/// Stuck objects whose reason is asked of the server (finalizers, deletion).
const EXPLAINED_STUCK: usize = 3;
/// The longest the after-restore identity checks may take in all.
const IDENTITY_CHECKS: Duration = Duration::from_secs(5);

/// Restores one scope of the journal, newest change first. Each object is
/// attempted even when an earlier one fails; transient API errors are
/// retried by the client (cluster::retry). The scope is marked restored only
/// when every object is back, so `heatcheck recover` can finish the rest.
pub async fn restore_scope(
    client: &ClusterClient,
    journal: &Journal,
    scope: &str,
    opts: &RestoreOptions<'_>,
) -> RestoreOutcome {
    let mut out = RestoreOutcome::default();
    let pending = journal.pending(scope);
    // Why an object is stuck is asked of the server for the first few only:
    // against a server that went away each question is a retry cycle, and a
    // restore past its deadline must end, not explain every object.
    let mut explained = 0;
    for entry in &pending {
        let entry = entry.clone();
        let attempt = restore_with_conflicts(client, &entry, opts);
        let result = match tokio::time::timeout_at(opts.deadline, attempt).await {
            Ok(r) => r,
            Err(_) => Err(EntryError::Deadline),
        };
        match result {
            Ok(Some(done)) => {
                (opts.progress)(&done);
                out.restored.push(done);
            }
            Ok(None) => {}
            Err(e) => {
                // The deadline can end the wait from outside (Deadline) or
                // inside (the wait's own timeout, which shares it): either
                // way the object is stuck, and the reason is worth a look.
                let why = match e {
                    EntryError::Deadline | EntryError::Cluster(ClusterError::Timeout { .. })
                        if explained < EXPLAINED_STUCK =>
                    {
                        explained += 1;
                        format!("{e}{}", explain_stuck(client, &entry).await)
                    }
                    e => e.to_string(),
                };
                (opts.progress)(&format!("NOT restored: {}: {why}", entry.describe()));
                out.errors.push(format!("{}: {why}", entry.describe()));
                out.left_behind.push(entry.describe());
            }
        }
    }
    // Best effort, bounded: a server that went away must not hold the run.
    let identities = async {
        for entry in &pending {
            if let Some(change) = identity_change(client, entry).await {
                if !out
                    .identity_changed
                    .iter()
                    .any(|c| c.object == change.object)
                {
                    out.identity_changed.push(change);
                }
            }
        }
    };
    let _ = tokio::time::timeout(IDENTITY_CHECKS, identities).await;
    if out.errors.is_empty() {
        if let Err(e) = journal.mark_restored(scope).await {
            out.errors.push(e.to_string());
        }
    }
    out
}

/// An object that existed before the scenario and exists after restore,
/// but under another uid: deleted and recreated (by a step or by restore).
/// Best effort: a failed read reports nothing.
async fn identity_change(client: &ClusterClient, entry: &Entry) -> Option<IdentityChange> {
    let Prior::Present { object } = &entry.prior else {
        return None;
    };
    let r = client
        .resolve(Some(&entry.api_version), &entry.kind)
        .await
        .ok()?;
    let cur = client
        .get(&r, entry.namespace.as_deref(), &entry.name)
        .await
        .ok()??;
    let field = |o: &Value, f: &str| {
        o.pointer(&format!("/metadata/{f}"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let (before, after) = (field(object, "uid"), field(&cur, "uid"));
    if before.is_empty() || before == after {
        return None;
    }
    Some(IdentityChange {
        suite: String::new(),
        case: String::new(),
        object: entry.describe(),
        uid_before: before,
        uid_after: after,
        created_before: field(object, "creationTimestamp"),
        created_after: field(&cur, "creationTimestamp"),
    })
}

/// Why an object is not back yet, when the cluster can tell (a deletion
/// held up by finalizers is the usual case). Best effort, briefly.
async fn explain_stuck(client: &ClusterClient, entry: &Entry) -> String {
    let look = async {
        let r = client
            .resolve(Some(&entry.api_version), &entry.kind)
            .await
            .ok()?;
        client
            .get(&r, entry.namespace.as_deref(), &entry.name)
            .await
            .ok()?
    };
    let Ok(Some(cur)) = tokio::time::timeout(Duration::from_secs(5), look).await else {
        return String::new();
    };
    if cur.pointer("/metadata/deletionTimestamp").is_none() {
        return String::new();
    }
    let finalizers: Vec<&str> = cur
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|f| f.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if finalizers.is_empty() {
        "; it is still being deleted".into()
    } else {
        format!(
            "; its deletion is blocked by finalizers: {} (whatever owns them must finish, or remove them by hand)",
            finalizers.join(", ")
        )
    }
}

/// A 409 (someone changed the object between our read and write, or a
/// deletion is still in progress) re-reads and tries again.
async fn restore_with_conflicts(
    client: &ClusterClient,
    entry: &Entry,
    opts: &RestoreOptions<'_>,
) -> Result<Option<String>, EntryError> {
    let mut delay = Duration::from_millis(100);
    loop {
        match restore_entry(client, entry, opts).await {
            Err(EntryError::Cluster(e)) if e.code() == Some(409) => {
                if Instant::now() + delay >= opts.deadline {
                    return Err(EntryError::Cluster(e));
                }
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(2));
            }
            other => return other,
        }
    }
}

/// Returns a description of what was done, or None when nothing was needed.
/// Idempotent: it compares the object with its prior state first, so it is
/// right whether or not the journaled mutation ever happened.
async fn restore_entry(
    client: &ClusterClient,
    entry: &Entry,
    opts: &RestoreOptions<'_>,
) -> Result<Option<String>, EntryError> {
    let r = client
        .resolve(Some(&entry.api_version), &entry.kind)
        .await?;
    let ns = entry.namespace.as_deref();
    let current = client.get(&r, ns, &entry.name).await?;
    match (&entry.prior, current) {
        (Prior::Absent, None) => Ok(None),
        (Prior::Absent, Some(cur)) => {
            let uid = cur
                .pointer("/metadata/uid")
                .and_then(Value::as_str)
                .map(str::to_string);
            if cur.pointer("/metadata/deletionTimestamp").is_none() {
                client.delete(&r, ns, &entry.name).await?;
            }
            if opts.hurried() {
                return Err(EntryError::NotWaited);
            }
            let timeout = opts.deadline.saturating_duration_since(Instant::now());
            let gone = client.wait_gone(
                &r,
                ns,
                &entry.name,
                uid.as_deref(),
                timeout,
                Duration::from_millis(100),
            );
            match &opts.stop_waiting {
                Some(stop) => {
                    let mut stop = stop.clone();
                    // Only a second Ctrl-C hurries: a sender that went away
                    // (its task ended) must not read as one.
                    let hurried = async move {
                        if stop.wait_for(|s| *s).await.is_err() {
                            std::future::pending::<()>().await;
                        }
                    };
                    tokio::select! {
                        r = gone => r?,
                        _ = hurried => return Err(EntryError::NotWaited),
                    }
                }
                None => gone.await?,
            }
            Ok(Some(format!("deleted {}", entry.describe())))
        }
        (Prior::Present { object }, None) => {
            if is_controller_owned(object) {
                // Its controller recreates it; a copy would be a duplicate.
                return Ok(None);
            }
            client.create(&r, ns, &clean_for_create(object)).await?;
            Ok(Some(format!("recreated {}", entry.describe())))
        }
        (Prior::Present { object }, Some(cur)) => {
            if cur.pointer("/metadata/deletionTimestamp").is_some() {
                // Being deleted (finalizers pending): it must go before the
                // original can be recreated; a 409 makes the caller retry.
                return Err(EntryError::Cluster(ClusterError::Api {
                    verb: "restore".into(),
                    kind: entry.kind.clone(),
                    name: entry.name.clone(),
                    code: 409,
                    reason: "Terminating".into(),
                    message: "object is being deleted".into(),
                }));
            }
            if same_content(object, &cur) {
                return Ok(None);
            }
            let mut next = clean_for_create(object);
            next["metadata"]["resourceVersion"] = cur["metadata"]["resourceVersion"].clone();
            client.replace(&r, ns, &next).await?;
            Ok(Some(format!("restored {}", entry.describe())))
        }
    }
}

fn is_controller_owned(obj: &Value) -> bool {
    obj.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .is_some_and(|refs| {
            refs.iter()
                .any(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
        })
}

/// Metadata the server owns; never sent back.
const SERVER_METADATA: &[&str] = &[
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generation",
    "managedFields",
    "selfLink",
];

/// The object as a user would write it: no status, no server metadata.
pub(crate) fn clean_for_create(obj: &Value) -> Value {
    let mut o = obj.clone();
    if let Some(m) = o.as_object_mut() {
        m.remove("status");
    }
    if let Some(meta) = o.get_mut("metadata").and_then(Value::as_object_mut) {
        for f in SERVER_METADATA {
            meta.remove(*f);
        }
    }
    o
}

/// Equal ignoring server-managed fields and status.
pub(crate) fn same_content(a: &Value, b: &Value) -> bool {
    clean_for_create(a) == clean_for_create(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cleaning_drops_server_fields_only() {
        let o = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "uid": "u", "resourceVersion": "3", "labels": {"x": "y"}, "managedFields": []}, "data": {"k": "v"}, "status": {}});
        let c = clean_for_create(&o);
        assert_eq!(
            c,
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "labels": {"x": "y"}}, "data": {"k": "v"}})
        );
        let mut o2 = o.clone();
        o2["metadata"]["resourceVersion"] = json!("9");
        assert!(same_content(&o, &o2));
        o2["data"]["k"] = json!("w");
        assert!(!same_content(&o, &o2));
    }
}
