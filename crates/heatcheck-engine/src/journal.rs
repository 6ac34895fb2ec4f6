//! The undo log. Before every mutation the engine records the object's prior
//! state (or its absence) here, flushed to disk, so a restore — at the end of
//! a scenario, on Ctrl-C, or by `heatcheck recover` after a crash — can put
//! the cluster back.
//!
//! A journal may also be kept elsewhere through a [`JournalSink`] (an
//! in-cluster run keeps it in a Secret, so a replacement pod finds it): the
//! sink gets the whole journal after each write and must have it durable
//! before the write returns, like the file.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One object's state before heatcheck first touched it in a scope.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    pub(crate) seq: u64,
    /// "fixtures" or "scenario:<name>": restored as a unit.
    pub(crate) scope: String,
    pub(crate) api_version: String,
    pub(crate) kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) namespace: Option<String>,
    pub(crate) name: String,
    pub prior: Prior,
}

impl Entry {
    pub fn describe(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{} {ns}/{}", self.kind, self.name),
            None => format!("{} {}", self.kind, self.name),
        }
    }

    fn object_key(&self) -> (String, String, Option<String>, String) {
        (
            self.api_version.clone(),
            self.kind.clone(),
            self.namespace.clone(),
            self.name.clone(),
        )
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", tag = "state")]
pub enum Prior {
    /// Did not exist: restoring deletes it.
    Absent,
    /// Existed: restoring puts this content back.
    Present { object: Value },
}

/// A line of the journal file.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "record")]
enum Line {
    Entry(Entry),
    /// Everything recorded under `scope` has been restored.
    Restored {
        scope: String,
    },
}

/// A second home for the journal. `store` gets the whole journal text (the
/// same JSON lines as the file) and returns once it is durable: the engine
/// sends the mutation only afterwards, and an error stops it from doing so.
pub trait JournalSink: Send + Sync {
    fn store<'a>(&'a self, journal: &'a [u8]) -> BoxFuture<'a, Result<(), String>>;
}

/// Shared handle; clones write to the same file (and sink).
#[derive(Clone)]
pub struct Journal {
    inner: Arc<Mutex<Inner>>,
    sink: Option<Arc<dyn JournalSink>>,
    /// Sink writes in journal order (concurrent suites under `--jobs`).
    sink_order: Arc<tokio::sync::Mutex<()>>,
}

struct Inner {
    path: Option<PathBuf>,
    file: Option<File>,
    /// Every line written, as in the file: what a sink stores.
    text: Vec<u8>,
    entries: Vec<Entry>,
    restored_scopes: Vec<String>,
    next_seq: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("journal {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("journal {path} line {line}: {message}")]
    Corrupt {
        path: String,
        line: usize,
        message: String,
    },
    /// The second home refused the write: nothing may be mutated.
    #[error("{0}")]
    Sink(String),
}

impl Journal {
    /// A journal kept only in memory (tests, `--no-journal` style uses).
    pub(crate) fn in_memory() -> Self {
        Journal::new(Inner {
            path: None,
            file: None,
            text: Vec::new(),
            entries: Vec::new(),
            restored_scopes: Vec::new(),
            next_seq: 1,
        })
    }

    fn new(inner: Inner) -> Self {
        Journal {
            inner: Arc::new(Mutex::new(inner)),
            sink: None,
            sink_order: Arc::default(),
        }
    }

    /// Also keeps the journal in `sink` from the next write on.
    pub(crate) fn with_sink(mut self, sink: Arc<dyn JournalSink>) -> Self {
        self.sink = Some(sink);
        self
    }

    async fn store(&self, text: &[u8]) -> Result<(), JournalError> {
        match &self.sink {
            Some(sink) => sink.store(text).await.map_err(JournalError::Sink),
            None => Ok(()),
        }
    }

    /// Creates (or continues) the journal file at `path`.
    pub fn open(path: &Path) -> Result<Self, JournalError> {
        let io = |source| JournalError::Io {
            path: path.display().to_string(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let (entries, restored) = if path.exists() {
            drop_torn_tail(path).map_err(io)?;
            read_lines(path)?
        } else {
            (Vec::new(), Vec::new())
        };
        let mut options = OpenOptions::new();
        options.create(true).append(true);
        // Prior states may include Secrets: only the owner may read them.
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options.open(path).map_err(io)?;
        let text = std::fs::read(path).map_err(io)?;
        let next_seq = entries.iter().map(|e| e.seq).max().unwrap_or(0) + 1;
        Ok(Journal::new(Inner {
            path: Some(path.to_path_buf()),
            file: Some(file),
            text,
            entries,
            restored_scopes: restored,
            next_seq,
        }))
    }

    /// Reads a journal without opening it for writing (and without touching
    /// a torn last line): for inspecting a run that may still be writing.
    pub fn read(path: &Path) -> Result<Self, JournalError> {
        let (entries, restored) = read_lines(path)?;
        let next_seq = entries.iter().map(|e| e.seq).max().unwrap_or(0) + 1;
        Ok(Journal::new(Inner {
            path: Some(path.to_path_buf()),
            file: None,
            text: Vec::new(),
            entries,
            restored_scopes: restored,
            next_seq,
        }))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records the prior state, unless this object was already recorded in
    /// this scope (the first record is the state to restore). Durable before
    /// it returns — in the file and in the sink: the caller mutates only
    /// afterwards, and not at all on an error.
    pub(crate) async fn record(&self, mut entry: Entry) -> Result<bool, JournalError> {
        let _order = self.sink_order.lock().await;
        let text = {
            let mut inner = self.lock();
            let already = inner.entries.iter().any(|e| {
                e.scope == entry.scope
                    && e.object_key() == entry.object_key()
                    && !inner.restored_scopes.contains(&e.scope)
            });
            if already {
                return Ok(false);
            }
            entry.seq = inner.next_seq;
            inner.next_seq += 1;
            inner.write_line(&Line::Entry(entry.clone()))?;
            inner.entries.push(entry);
            self.sink.as_ref().map(|_| inner.text.clone())
        };
        if let Some(text) = text {
            self.store(&text).await?;
        }
        Ok(true)
    }

    /// Entries of a scope still to restore, newest first (the undo order).
    pub fn pending(&self, scope: &str) -> Vec<Entry> {
        let inner = self.lock();
        if inner.restored_scopes.iter().any(|s| s == scope) {
            return Vec::new();
        }
        let mut v: Vec<Entry> = inner
            .entries
            .iter()
            .filter(|e| e.scope == scope)
            .cloned()
            .collect();
        v.sort_by_key(|e| std::cmp::Reverse(e.seq));
        v
    }

    /// Scopes with entries not yet restored, newest scope first.
    pub fn open_scopes(&self) -> Vec<String> {
        let inner = self.lock();
        let mut scopes: Vec<(u64, String)> = Vec::new();
        for e in &inner.entries {
            if inner.restored_scopes.contains(&e.scope) {
                continue;
            }
            match scopes.iter_mut().find(|(_, s)| *s == e.scope) {
                Some(x) => x.0 = x.0.max(e.seq),
                None => scopes.push((e.seq, e.scope.clone())),
            }
        }
        scopes.sort_by_key(|s| std::cmp::Reverse(s.0));
        scopes.into_iter().map(|(_, s)| s).collect()
    }

    pub(crate) async fn mark_restored(&self, scope: &str) -> Result<(), JournalError> {
        let _order = self.sink_order.lock().await;
        let text = {
            let mut inner = self.lock();
            inner.write_line(&Line::Restored {
                scope: scope.to_string(),
            })?;
            inner.restored_scopes.push(scope.to_string());
            self.sink.as_ref().map(|_| inner.text.clone())
        };
        if let Some(text) = text {
            self.store(&text).await?;
        }
        Ok(())
    }

    /// The journal's lines as written (what a sink stores).
    #[cfg(test)]
    fn text(&self) -> Vec<u8> {
        self.lock().text.clone()
    }
}

impl Inner {
    fn write_line(&mut self, line: &Line) -> Result<(), JournalError> {
        let mut text = serde_json::to_string(line).expect("journal lines serialize");
        text.push('\n');
        if let Some(file) = self.file.as_mut() {
            let path = self
                .path
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            file.write_all(text.as_bytes())
                .and_then(|_| file.sync_data())
                .map_err(|source| JournalError::Io { path, source })?;
        }
        self.text.extend_from_slice(text.as_bytes());
        Ok(())
    }
}

/// A crash can cut the last line short. That record was never acknowledged
/// (nothing was mutated after it), so it is cut off before appending: left
/// there, the next line would be glued to it and the file unreadable.
fn drop_torn_tail(path: &Path) -> std::io::Result<()> {
    let bytes = std::fs::read(path)?;
    if bytes.is_empty() || bytes.ends_with(b"\n") {
        return Ok(());
    }
    let keep = bytes
        .iter()
        .rposition(|&b| b == b'\n')
        .map(|i| i + 1)
        .unwrap_or(0);
    let f = OpenOptions::new().write(true).open(path)?;
    f.set_len(keep as u64)?;
    f.sync_all()
}

fn read_lines(path: &Path) -> Result<(Vec<Entry>, Vec<String>), JournalError> {
    let p = path.display().to_string();
    let f = File::open(path).map_err(|source| JournalError::Io {
        path: p.clone(),
        source,
    })?;
    let mut entries = Vec::new();
    let mut restored = Vec::new();
    let lines: Vec<String> = BufReader::new(f)
        .lines()
        .collect::<Result<_, _>>()
        .map_err(|source| JournalError::Io {
            path: p.clone(),
            source,
        })?;
    let n = lines.len();
    for (i, text) in lines.into_iter().enumerate() {
        if text.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Line>(&text) {
            Ok(Line::Entry(e)) => entries.push(e),
            Ok(Line::Restored { scope }) => restored.push(scope),
            // A crash can cut the last line short; nothing after it was mutated.
            Err(_) if i + 1 == n => {}
            Err(e) => {
                return Err(JournalError::Corrupt {
                    path: p,
                    line: i + 1,
                    message: e.to_string(),
                })
            }
        }
    }
    Ok((entries, restored))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(scope: &str, name: &str, prior: Prior) -> Entry {
        Entry {
            seq: 0,
            scope: scope.into(),
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            namespace: Some("ns".into()),
            name: name.into(),
            prior,
        }
    }

    #[tokio::test]
    async fn first_record_wins_and_undo_order_is_reverse() {
        let j = Journal::in_memory();
        assert!(j.record(entry("s", "a", Prior::Absent)).await.unwrap());
        assert!(j
            .record(entry(
                "s",
                "b",
                Prior::Present {
                    object: json!({"x": 1})
                }
            ))
            .await
            .unwrap());
        assert!(!j
            .record(entry("s", "a", Prior::Present { object: json!({}) }))
            .await
            .unwrap());
        let p = j.pending("s");
        assert_eq!(
            p.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(),
            vec!["b", "a"]
        );
        assert_eq!(p[1].prior, Prior::Absent);
    }

    #[tokio::test]
    async fn survives_a_reopen_and_a_torn_last_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("runs/r1/journal.jsonl");
        {
            let j = Journal::open(&path).unwrap();
            j.record(entry("fixtures", "a", Prior::Absent))
                .await
                .unwrap();
            j.record(entry("scenario:x", "b", Prior::Absent))
                .await
                .unwrap();
            j.mark_restored("scenario:x").await.unwrap();
        }
        // Simulate a crash in the middle of writing a line.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"record\":\"entry\",\"seq\":9,\"sco")
            .unwrap();
        let j = Journal::open(&path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "the journal is private to its owner");
        }
        assert_eq!(j.open_scopes(), vec!["fixtures".to_string()]);
        assert_eq!(j.pending("fixtures").len(), 1);
        assert!(j.pending("scenario:x").is_empty());
        // Recovering appends to the journal; it must stay readable afterwards.
        j.mark_restored("fixtures").await.unwrap();
        drop(j);
        let j = Journal::open(&path).unwrap();
        assert!(j.open_scopes().is_empty());
    }

    /// A crash between the journal write and the mutation: the entry is
    /// there, the object unchanged. The entry still names the state to
    /// restore (first record wins), so restore is a no-op comparison, and a
    /// later run of the same scope cannot overwrite it with a mutated state.
    #[tokio::test]
    async fn a_record_survives_a_crash_before_its_mutation_and_is_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.jsonl");
        let before = Prior::Present {
            object: json!({"data": {"k": "before"}}),
        };
        {
            let j = Journal::open(&path).unwrap();
            j.record(entry("scenario:s", "a", before.clone()))
                .await
                .unwrap();
        }
        let j = Journal::open(&path).unwrap();
        let after = Prior::Present {
            object: json!({"data": {"k": "after"}}),
        };
        assert!(!j.record(entry("scenario:s", "a", after)).await.unwrap());
        assert_eq!(j.pending("scenario:s")[0].prior, before);
    }

    /// What the file holds, the sink holds, after each write; a sink that
    /// refuses makes the write fail (the caller then never mutates).
    #[tokio::test]
    async fn a_sink_holds_what_the_file_holds_and_its_refusal_fails_the_write() {
        struct Keep(Mutex<Vec<u8>>, bool);
        impl JournalSink for Keep {
            fn store<'a>(&'a self, journal: &'a [u8]) -> BoxFuture<'a, Result<(), String>> {
                Box::pin(async move {
                    if self.1 {
                        return Err("the Secret is gone".into());
                    }
                    *self.0.lock().unwrap() = journal.to_vec();
                    Ok(())
                })
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.jsonl");
        let keep = Arc::new(Keep(Mutex::default(), false));
        let j = Journal::open(&path).unwrap().with_sink(keep.clone());
        j.record(entry("s", "a", Prior::Absent)).await.unwrap();
        j.mark_restored("s").await.unwrap();
        let file = std::fs::read(&path).unwrap();
        assert_eq!(*keep.0.lock().unwrap(), file);
        assert_eq!(j.text(), file);
        let refusing = Journal::in_memory().with_sink(Arc::new(Keep(Mutex::default(), true)));
        let e = refusing
            .record(entry("s", "a", Prior::Absent))
            .await
            .unwrap_err();
        assert_eq!(e.to_string(), "the Secret is gone");
    }
}
