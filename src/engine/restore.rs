//! Undoing the journal: created objects deleted, deleted ones recreated
//! without server-set fields, changed ones put back.

use std::time::Duration;

use serde_json::Value;

use super::journal::{Entry, Journal, Prior};
use crate::cluster::{ClusterClient, ClusterError};

/// What a restore did, and what it could not do.
#[derive(Debug, Default, Clone)]
pub struct RestoreOutcome {
    pub restored: Vec<String>,
    pub left_behind: Vec<String>,
    pub errors: Vec<String>,
}

impl RestoreOutcome {
    pub fn ok(&self) -> bool {
        self.errors.is_empty() && self.left_behind.is_empty()
    }

    pub fn merge(&mut self, other: RestoreOutcome) {
        self.restored.extend(other.restored);
        self.left_behind.extend(other.left_behind);
        self.errors.extend(other.errors);
    }
}

/// Restores one scope of the journal, newest change first. Each object is
/// attempted even when an earlier one fails; transient API errors are retried.
pub async fn restore_scope(
    client: &ClusterClient,
    journal: &Journal,
    scope: &str,
    timeout: Duration,
) -> RestoreOutcome {
    let mut out = RestoreOutcome::default();
    for entry in journal.pending(scope) {
        match with_retries(|| restore_entry(client, &entry, timeout)).await {
            Ok(Some(done)) => out.restored.push(done),
            Ok(None) => {}
            Err(e) => {
                out.errors.push(format!("{}: {e}", entry.describe()));
                out.left_behind.push(entry.describe());
            }
        }
    }
    if out.errors.is_empty() {
        if let Err(e) = journal.mark_restored(scope) {
            out.errors.push(e.to_string());
        }
    }
    out
}

async fn with_retries<F, Fut, T>(mut f: F) -> Result<T, ClusterError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, ClusterError>>,
{
    let mut delay = Duration::from_millis(100);
    let mut attempt = 0;
    loop {
        match f().await {
            Err(e) if (e.is_transient() || e.code() == Some(409)) && attempt < 6 => {
                attempt += 1;
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(3));
            }
            other => return other,
        }
    }
}

/// Returns a description of what was done, or None when nothing was needed.
async fn restore_entry(
    client: &ClusterClient,
    entry: &Entry,
    timeout: Duration,
) -> Result<Option<String>, ClusterError> {
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
            client.delete(&r, ns, &entry.name).await?;
            client
                .wait_gone(
                    &r,
                    ns,
                    &entry.name,
                    uid.as_deref(),
                    timeout,
                    Duration::from_millis(100),
                )
                .await?;
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
            if same_content(object, &cur) {
                return Ok(None);
            }
            let mut next = clean_for_create(object);
            next["metadata"]["resourceVersion"] = cur["metadata"]["resourceVersion"].clone();
            client.replace(&r, ns, &next).await?;
            if r.has_subresource("scale") {
                // Some servers keep replicas only through the main object; nothing more to do.
            }
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
pub fn clean_for_create(obj: &Value) -> Value {
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
pub fn same_content(a: &Value, b: &Value) -> bool {
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
