//! `heatcheck runs`: the runs in the state dir that still need attention —
//! running, crashed (status running, process gone), aborted, restore failed,
//! or kept by --no-restore — with what each left per journal scope.

use std::path::Path;

use crate::engine::journal::{Entry, Journal, Prior};
use crate::engine::runstate::{list_runs, Liveness, RunDir, RunState, RunStatus};
use crate::error::Error;

/// What a run directory says about its run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Its process is alive (or on another host and not known to be dead).
    Running,
    /// Status running, process gone: killed, OOM, lost machine.
    Crashed,
    Aborted,
    RestoreFailed,
    /// Finished with --no-restore: changes kept on purpose.
    Kept,
    /// Nothing left to do.
    Clean,
}

pub struct RunView {
    pub dir: RunDir,
    pub state: Result<RunState, String>,
    pub liveness: Option<Liveness>,
    /// Open journal scopes, newest first, with their entries (undo order).
    pub pending: Vec<(String, Vec<Entry>)>,
    pub journal_error: Option<String>,
    pub verdict: Verdict,
}

impl RunView {
    pub fn left_count(&self) -> usize {
        self.pending.iter().map(|(_, e)| e.len()).sum()
    }
}

/// Reads a run's state and journal, without changing either.
pub fn inspect(dir: &RunDir) -> RunView {
    let state = dir.read_state().map_err(|e| e.to_string());
    let (pending, journal_error) = if dir.journal_path().exists() {
        match Journal::read(&dir.journal_path()) {
            Ok(j) => (
                j.open_scopes()
                    .into_iter()
                    .map(|s| {
                        let p = j.pending(&s);
                        (s, p)
                    })
                    .collect(),
                None,
            ),
            Err(e) => (Vec::new(), Some(e.to_string())),
        }
    } else {
        (Vec::new(), None)
    };
    let liveness = state.as_ref().ok().map(RunState::liveness);
    let left = !pending.is_empty() || journal_error.is_some();
    let verdict = match &state {
        Ok(st) => match st.status {
            RunStatus::Running if liveness == Some(Liveness::Dead) => Verdict::Crashed,
            RunStatus::Running => Verdict::Running,
            RunStatus::Aborted if left => Verdict::Aborted,
            RunStatus::RestoreFailed if left => Verdict::RestoreFailed,
            RunStatus::Finished if left => Verdict::Kept,
            _ => Verdict::Clean,
        },
        // No readable run.json: judge by the journal alone.
        Err(_) if left => Verdict::Crashed,
        Err(_) => Verdict::Clean,
    };
    RunView {
        dir: dir.clone(),
        state,
        liveness,
        pending,
        journal_error,
        verdict,
    }
}

/// "created ConfigMap ns/a" etc.: what the run did, as far as the journal knows.
pub fn describe_entry(e: &Entry) -> String {
    match &e.prior {
        Prior::Absent => format!("{} (created by the run)", e.describe()),
        Prior::Present { .. } => format!("{} (changed or deleted by the run)", e.describe()),
    }
}

pub fn status_text(v: &RunView) -> String {
    let pid = v.state.as_ref().map(|s| s.pid).unwrap_or_default();
    match v.verdict {
        Verdict::Running => match v.liveness {
            Some(Liveness::OtherHost) => format!(
                "running on {} (pid {pid}; cannot check from here)",
                v.state.as_ref().map(|s| s.host.as_str()).unwrap_or("?")
            ),
            _ => format!("running (pid {pid})"),
        },
        Verdict::Crashed => match &v.state {
            Ok(_) => format!("crashed (pid {pid} is gone)"),
            Err(e) => format!("unknown: {e}"),
        },
        Verdict::Aborted => "aborted before the restore finished".into(),
        Verdict::RestoreFailed => "restore failed".into(),
        Verdict::Kept => "finished with --no-restore".into(),
        Verdict::Clean => "finished".into(),
    }
}

pub fn runs(state_dir: &Path, json: bool) -> Result<(), Error> {
    let views: Vec<RunView> = list_runs(state_dir)
        .iter()
        .map(inspect)
        .filter(|v| v.verdict != Verdict::Clean)
        .collect();
    if json {
        let runs: Vec<serde_json::Value> = views.iter().map(view_json).collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "stateDir": state_dir.display().to_string(),
                "runs": runs,
            }))
            .expect("serializes")
        );
        return Ok(());
    }
    if views.is_empty() {
        println!(
            "No unfinished runs in {} (every run finished and restored).",
            state_dir.display()
        );
        return Ok(());
    }
    for v in &views {
        print_view(v);
    }
    let recoverable = views.iter().any(|v| v.verdict != Verdict::Running);
    if recoverable {
        println!("Restore with `heatcheck recover RUN` (or `heatcheck recover` for all of them).");
    }
    Ok(())
}

/// A run for `runs --output json`: what `print_view` says, as fields.
fn view_json(v: &RunView) -> serde_json::Value {
    let word = match v.verdict {
        Verdict::Running => "running",
        Verdict::Crashed => "crashed",
        Verdict::Aborted => "aborted",
        Verdict::RestoreFailed => "restore-failed",
        Verdict::Kept => "kept",
        Verdict::Clean => "finished",
    };
    let st = v.state.as_ref().ok();
    serde_json::json!({
        "id": v.dir.run_id(),
        "status": word,
        "description": status_text(v),
        "recoverable": v.verdict != Verdict::Running,
        "started": st.map(|s| s.started.to_rfc3339()),
        "suites": st.map(|s| s.suites.clone()).unwrap_or_default(),
        "cluster": st.map(|s| s.cluster.server.clone()),
        "context": st.and_then(|s| s.cluster.context.clone()),
        "note": st.and_then(|s| s.message.clone()),
        "journalError": v.journal_error,
        "left": v.pending.iter().map(|(scope, entries)| serde_json::json!({
            "scope": scope,
            "entries": entries.iter().map(describe_entry).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}

pub fn print_view(v: &RunView) {
    let started = v
        .state
        .as_ref()
        .map(|s| s.started.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_default();
    println!("{}  {}  {started}", v.dir.run_id(), status_text(v));
    if let Ok(st) = &v.state {
        println!("  suites: {}", st.suites.join(", "));
        println!(
            "  cluster: {}{}",
            st.cluster.server,
            st.cluster
                .context
                .as_ref()
                .map(|c| format!(" (context {c})"))
                .unwrap_or_default()
        );
        if let Some(m) = &st.message {
            println!("  note: {m}");
        }
    }
    if let Some(e) = &v.journal_error {
        println!("  journal unreadable: {e}");
    }
    if v.pending.is_empty() && v.journal_error.is_none() {
        println!("  nothing left in the journal");
    }
    for (scope, entries) in &v.pending {
        println!("  {scope}: {} left", entries.len());
        for e in entries {
            println!("    {}", describe_entry(e));
        }
    }
}
