//! An audit log of the requests that may change something (POST, PUT,
//! PATCH, DELETE), one JSON line each in the shape of kube-apiserver's
//! `--audit-log-path` events (audit.k8s.io/v1 Event, level Metadata), so a
//! test can prove from the server's own record that nothing was written.

use std::io::Write;
use std::sync::Mutex;

use http::Method;
use serde_json::json;

use crate::auth::UserInfo;

pub(crate) struct AuditLog {
    file: Mutex<std::fs::File>,
}

impl AuditLog {
    /// Appends to `path` (created when missing).
    pub(crate) fn open(path: &std::path::Path) -> std::io::Result<Self> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(AuditLog {
            file: Mutex::new(file),
        })
    }

    /// Whether `method` is one an audit of writes records.
    pub(crate) fn records(method: &Method) -> bool {
        matches!(
            *method,
            Method::POST | Method::PUT | Method::PATCH | Method::DELETE
        )
    }

    pub(crate) fn record(&self, method: &Method, uri: &str, user: &UserInfo, code: u16) {
        let verb = match *method {
            Method::POST => "create",
            Method::PUT => "update",
            Method::PATCH => "patch",
            Method::DELETE => "delete",
            _ => "other",
        };
        let line = json!({
            "kind": "Event",
            "apiVersion": "audit.k8s.io/v1",
            "level": "Metadata",
            "stage": "ResponseComplete",
            "verb": verb,
            "requestURI": uri,
            "user": {"username": user.name, "groups": user.groups},
            "responseStatus": {"code": code},
            "requestReceivedTimestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        });
        let mut f = self.file.lock().unwrap_or_else(|e| e.into_inner());
        // One write per line: a reader never sees half an event.
        let _ = f.write_all(format!("{line}\n").as_bytes());
    }
}
