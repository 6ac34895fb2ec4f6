use std::path::PathBuf;

use clap::Args;

#[derive(Args, Debug)]
pub struct RunsArgs {
    #[arg(long, env = "HEATCHECK_STATE_DIR", default_value = ".heatcheck")]
    pub state_dir: PathBuf,
    /// human, or json: `{"stateDir", "runs": [{"id", "status", ...}]}` on stdout.
    #[arg(long, value_enum, default_value = "human")]
    pub output: super::Output,
}

#[derive(Args, Debug)]
pub struct RecoverArgs {
    /// Run id (see `heatcheck runs`).
    pub run: Option<String>,
    #[arg(long, env = "HEATCHECK_STATE_DIR", default_value = ".heatcheck")]
    pub state_dir: PathBuf,
    /// Kubeconfig to use instead of the one the run recorded.
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Context to use instead of the one the run recorded.
    #[arg(long)]
    pub context: Option<String>,
    /// Give up waiting after this (what is left is reported, exit 5).
    #[arg(long, value_name = "DURATION", default_value = "2m", value_parser = crate::suite::parse_duration)]
    pub restore_timeout: std::time::Duration,
    /// Recover a run recorded as running on another machine (or, with
    /// --journal-in-cluster, one whose runner has not let its lease run out).
    #[arg(long)]
    pub force: bool,
    /// Recover the journals kept in the cluster (Secrets in the runner's
    /// namespace: the ServiceAccount's in a pod, else the context's).
    #[arg(long, conflicts_with = "run")]
    pub journal_in_cluster: bool,
}

#[derive(Args, Debug)]
pub struct AbortArgs {
    pub run: Option<String>,
    #[arg(long, env = "HEATCHECK_STATE_DIR", default_value = ".heatcheck")]
    pub state_dir: PathBuf,
}
