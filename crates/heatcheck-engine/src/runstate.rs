//! `run.json` beside a run's journal: who runs it (pid, host), since when,
//! which suites, how to reach its cluster again, and how it ended. It is what
//! `heatcheck runs`, `recover` and `abort` read. Written atomically (temp
//! file + rename) so a crash never leaves half a file.
//!
//! Layout: `<state-dir>/runs/<run-id>/{run.json, journal.jsonl, abort}`.

use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunStatus {
    Running,
    Finished,
    /// Stopped before the restore was complete (a second Ctrl-C).
    Aborted,
    RestoreFailed,
}

impl RunStatus {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Finished => "finished",
            RunStatus::Aborted => "aborted",
            RunStatus::RestoreFailed => "restore-failed",
        }
    }
}

/// How to reach the run's cluster again. Never credentials: only where the
/// kubeconfig is, which context, and the server it resolved to.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterRef {
    /// `--kubeconfig`, made absolute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubeconfig: Option<PathBuf>,
    /// KUBECONFIG as it was (when no --kubeconfig), its paths made absolute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubeconfig_env: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// The API server URL the client connected to.
    pub server: String,
    /// The embedded sandbox of `run --sandbox`: it ended with the process.
    #[serde(default)]
    pub embedded_sandbox: bool,
}

impl ClusterRef {
    /// Coordinates as given on the command line, made independent of the cwd.
    pub fn from_args(
        kubeconfig: Option<&Path>,
        context: Option<&str>,
        server: &str,
        embedded_sandbox: bool,
    ) -> Self {
        let kubeconfig_env = match (kubeconfig, std::env::var_os("KUBECONFIG")) {
            (None, Some(v)) if !v.is_empty() => Some(
                std::env::split_paths(&v)
                    .map(|p| absolute(&p))
                    .collect::<Vec<_>>(),
            )
            .and_then(|ps| std::env::join_paths(ps).ok())
            .map(|s| s.to_string_lossy().into_owned()),
            _ => None,
        };
        ClusterRef {
            kubeconfig: kubeconfig.map(absolute),
            kubeconfig_env,
            context: context.map(str::to_string),
            server: server.to_string(),
            embedded_sandbox,
        }
    }
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunState {
    pub(crate) run_id: String,
    pub pid: u32,
    pub host: String,
    pub started: DateTime<Utc>,
    pub(crate) updated: DateTime<Utc>,
    pub suites: Vec<String>,
    pub cluster: ClusterRef,
    pub status: RunStatus,
    /// Why it ended as it did (what is left, the error).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl RunState {
    /// A run starting now in this process.
    pub fn starting(run_id: &str, suites: Vec<String>, cluster: ClusterRef) -> Self {
        let now = Utc::now();
        RunState {
            run_id: run_id.to_string(),
            pid: std::process::id(),
            host: this_host(),
            started: now,
            updated: now,
            suites,
            cluster,
            status: RunStatus::Running,
            message: None,
        }
    }

    /// Whether the process that wrote this is still alive.
    pub fn liveness(&self) -> Liveness {
        if self.host != this_host() {
            return Liveness::OtherHost;
        }
        if process_alive(self.pid) {
            Liveness::Alive
        } else {
            Liveness::Dead
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Liveness {
    Alive,
    Dead,
    /// Written on another machine sharing the state dir: cannot tell.
    OtherHost,
}

#[derive(Debug, thiserror::Error)]
pub enum RunStateError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a run state file: {message}")]
    Corrupt { path: String, message: String },
}

/// One run's directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunDir {
    pub path: PathBuf,
}

impl RunDir {
    pub fn new(state_dir: &Path, run_id: &str) -> Self {
        RunDir {
            path: state_dir.join("runs").join(run_id),
        }
    }

    pub fn run_id(&self) -> String {
        self.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    pub fn journal_path(&self) -> PathBuf {
        self.path.join("journal.jsonl")
    }

    pub fn state_path(&self) -> PathBuf {
        self.path.join("run.json")
    }

    pub fn abort_path(&self) -> PathBuf {
        self.path.join("abort")
    }

    pub fn read_state(&self) -> Result<RunState, RunStateError> {
        let path = self.state_path();
        let text = std::fs::read_to_string(&path).map_err(|source| RunStateError::Io {
            path: path.display().to_string(),
            source,
        })?;
        serde_json::from_str(&text).map_err(|e| RunStateError::Corrupt {
            path: path.display().to_string(),
            message: e.to_string(),
        })
    }

    /// Writes run.json atomically: a temp file, flushed, renamed over.
    pub fn write_state(&self, state: &RunState) -> Result<(), RunStateError> {
        let path = self.state_path();
        let io = |source| RunStateError::Io {
            path: path.display().to_string(),
            source,
        };
        std::fs::create_dir_all(&self.path).map_err(io)?;
        let tmp = self
            .path
            .join(format!(".run.json.{}.tmp", std::process::id()));
        let mut text = serde_json::to_string_pretty(state).expect("run state serializes");
        text.push('\n');
        {
            let mut f = std::fs::File::create(&tmp).map_err(io)?;
            f.write_all(text.as_bytes()).map_err(io)?;
            f.sync_all().map_err(io)?;
        }
        std::fs::rename(&tmp, &path).map_err(io)?;
        // The rename itself is durable once the directory is synced.
        if let Ok(d) = std::fs::File::open(&self.path) {
            let _ = d.sync_all();
        }
        Ok(())
    }

    /// Re-reads run.json and sets the status (and message).
    pub fn set_status(
        &self,
        status: RunStatus,
        message: Option<String>,
    ) -> Result<(), RunStateError> {
        let mut state = self.read_state()?;
        state.status = status;
        state.message = message;
        state.updated = Utc::now();
        self.write_state(&state)
    }

    /// Asks the run to stop (read by [`RunDir::abort_requested`]).
    pub fn request_abort(&self, reason: &str) -> Result<(), RunStateError> {
        let path = self.abort_path();
        std::fs::write(&path, format!("{reason}\n")).map_err(|source| RunStateError::Io {
            path: path.display().to_string(),
            source,
        })
    }

    pub(crate) fn abort_requested(&self) -> bool {
        self.abort_path().exists()
    }
}

/// Every run directory under `<state_dir>/runs`, oldest first (run ids start
/// with their UTC start time).
pub fn list_runs(state_dir: &Path) -> Vec<RunDir> {
    let Ok(entries) = std::fs::read_dir(state_dir.join("runs")) else {
        return Vec::new();
    };
    let mut dirs: Vec<RunDir> = entries
        .filter_map(Result::ok)
        .filter(|e| e.path().is_dir())
        .map(|e| RunDir { path: e.path() })
        .collect();
    dirs.sort_by_key(|d| d.run_id());
    dirs
}

/// Polls for an abort file until one appears (for `heatcheck abort` from
/// another terminal or machine sharing the state dir).
pub async fn wait_for_abort_file(dir: RunDir, every: std::time::Duration) {
    loop {
        if dir.abort_requested() {
            return;
        }
        tokio::time::sleep(every).await;
    }
}

pub(crate) fn this_host() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates
    // when the name fits.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "unknown".into();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// True when a process with this pid exists and is not a zombie.
pub(crate) fn process_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: signal 0 only checks that the process exists.
    let rc = unsafe { libc::kill(pid, 0) };
    let exists = rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
    if !exists {
        return false;
    }
    // A killed but unreaped process still answers signal 0.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_none_or(|state| state != "Z" && state != "X"),
        Err(_) => true,
    }
}

/// Sends SIGINT (the same as Ctrl-C in the run's terminal).
pub fn interrupt(pid: u32) -> std::io::Result<()> {
    let pid = libc::pid_t::try_from(pid).map_err(|_| std::io::Error::other("bad pid"))?;
    // SAFETY: plain kill(2) on a pid read from run.json.
    if unsafe { libc::kill(pid, libc::SIGINT) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_atomically_and_status_updates() {
        let dir = tempfile::tempdir().unwrap();
        let rd = RunDir::new(dir.path(), "20260101-000000-abcdef");
        let cluster = ClusterRef::from_args(
            Some(Path::new("kc")),
            Some("ctx"),
            "https://127.0.0.1:6443",
            false,
        );
        assert!(cluster.kubeconfig.as_ref().unwrap().is_absolute());
        let st = RunState::starting(&rd.run_id(), vec!["s.yaml".into()], cluster);
        rd.write_state(&st).unwrap();
        assert_eq!(rd.read_state().unwrap(), st);
        assert_eq!(st.liveness(), Liveness::Alive);
        rd.set_status(RunStatus::RestoreFailed, Some("ConfigMap ns/a".into()))
            .unwrap();
        let back = rd.read_state().unwrap();
        assert_eq!(back.status, RunStatus::RestoreFailed);
        assert_eq!(back.message.as_deref(), Some("ConfigMap ns/a"));
        let text = std::fs::read_to_string(rd.state_path()).unwrap();
        assert!(text.contains("\"status\": \"restore-failed\""), "{text}");
        // No temp file is left behind.
        let names: Vec<_> = std::fs::read_dir(&rd.path)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
        assert_eq!(list_runs(dir.path()), vec![rd.clone()]);
        assert!(!rd.abort_requested());
        rd.request_abort("test").unwrap();
        assert!(rd.abort_requested());
    }

    #[test]
    fn a_dead_child_is_not_alive() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(!process_alive(pid));
        assert!(process_alive(std::process::id()));
        assert!(!process_alive(0));
    }
}
