//! Every tool runs the heatcheck binary itself (`current_exe`) as a child
//! with `--output json`: the tool answers with exactly what the CLI prints,
//! through the same config step, policy guard and permission preflight, and
//! a panic or a stuck run cannot take the server down. A cancelled request
//! interrupts the child as Ctrl-C does (SIGINT, then wait), so a run restores
//! what it changed before the tool returns.

use std::path::Path;
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// What the CLI did.
#[derive(Debug)]
pub(crate) struct CliOutput {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
    /// The request was cancelled and the child interrupted.
    pub(crate) cancelled: bool,
}

/// Which of the child's streams carries its JSON progress events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Events {
    None,
    Stdout,
    Stderr,
}

pub(crate) struct Invocation<'a> {
    pub(crate) exe: &'a Path,
    pub(crate) cwd: &'a Path,
    pub(crate) args: Vec<String>,
    pub(crate) events: Events,
}

/// Runs the CLI to its end (or until `ct` is cancelled, then SIGINT and
/// wait). Each JSON event line of `events` is sent to `progress`.
pub(crate) async fn run_cli(
    inv: Invocation<'_>,
    ct: &CancellationToken,
    progress: Option<mpsc::UnboundedSender<serde_json::Value>>,
) -> std::io::Result<CliOutput> {
    tracing::debug!(args = ?inv.args, "running the heatcheck CLI");
    let mut cmd = Command::new(inv.exe);
    cmd.args(&inv.args)
        .current_dir(inv.cwd)
        // stdin is the MCP channel in stdio mode: the child must not read it.
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Never colours or a live panel in what goes back to the client.
        .env("NO_COLOR", "1")
        // Manifests the suites name are bounded by the root too.
        .env("HEATCHECK_FILES_ROOT", inv.cwd);
    let mut child = Guard {
        child: Some(cmd.spawn()?),
        interrupted: false,
    };
    let c = child.child.as_mut().expect("spawned");
    let out = c.stdout.take().expect("piped");
    let err = c.stderr.take().expect("piped");
    let out_task = tokio::spawn(collect(
        out,
        (inv.events == Events::Stdout)
            .then(|| progress.clone())
            .flatten(),
    ));
    let err_task = tokio::spawn(collect(
        err,
        (inv.events == Events::Stderr).then_some(progress).flatten(),
    ));
    let (status, cancelled) = tokio::select! {
        s = child.wait() => (s?, false),
        _ = ct.cancelled() => {
            child.interrupt();
            (child.wait().await?, true)
        }
    };
    child.child = None;
    let stdout = out_task.await.unwrap_or_default();
    let stderr = err_task.await.unwrap_or_default();
    Ok(CliOutput {
        // Killed by a signal: no code; report it as the CLI's "aborted".
        code: status.code().unwrap_or(4),
        stdout,
        stderr,
        cancelled,
    })
}

async fn collect(
    stream: impl AsyncRead + Unpin,
    progress: Option<mpsc::UnboundedSender<serde_json::Value>>,
) -> String {
    let mut lines = BufReader::new(stream).lines();
    let mut all = String::new();
    while let Ok(Some(line)) = lines.next_line().await {
        if let Some(tx) = &progress {
            if let Ok(v @ serde_json::Value::Object(_)) = serde_json::from_str(&line) {
                let _ = tx.send(v);
            }
        }
        all.push_str(&line);
        all.push('\n');
    }
    all
}

/// The child, interrupted (never killed) if the tool's future is dropped
/// before it finished: a run then restores the cluster on its own.
struct Guard {
    child: Option<Child>,
    /// SIGINT was sent once. Never twice: a second Ctrl-C tells heatcheck
    /// to stop waiting for slow deletions, which a client that cancelled
    /// and then went away (its request dropped) must not decide.
    interrupted: bool,
}

impl Guard {
    async fn wait(&mut self) -> std::io::Result<std::process::ExitStatus> {
        self.child.as_mut().expect("running").wait().await
    }

    fn interrupt(&mut self) {
        if let Some(c) = &self.child {
            if !self.interrupted {
                sigint(c);
                self.interrupted = true;
            }
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.interrupt();
        if let Some(mut child) = self.child.take() {
            // Reap it in the background so it is no zombie.
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                handle.spawn(async move {
                    let _ = child.wait().await;
                });
            }
        }
    }
}

/// Ctrl-C for the child: heatcheck restores and exits 4.
fn sigint(child: &Child) {
    if let Some(pid) = child.id() {
        // SAFETY: kill(2) on a pid we spawned and have not reaped yet
        // (`id()` is None once it was waited for).
        unsafe {
            libc::kill(pid as libc::pid_t, libc::SIGINT);
        }
    }
}
