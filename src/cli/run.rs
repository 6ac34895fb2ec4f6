use std::path::PathBuf;

use clap::Args;

use super::{parse_var, ClusterFlags, MetricsArgs, NotifyArgs, Output, PolicyArgs};

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Suite files or directories.
    #[arg(required = true)]
    pub suites: Vec<PathBuf>,
    #[command(flatten)]
    pub cluster: ClusterFlags,
    /// Run only these scenarios (repeatable).
    #[arg(long = "scenario", value_name = "NAME")]
    pub scenarios: Vec<String>,
    /// Write a JUnit XML report here.
    #[arg(long, value_name = "PATH")]
    pub junit: Option<PathBuf>,
    /// Write a JSON report here.
    #[arg(long, value_name = "PATH")]
    pub report_json: Option<PathBuf>,
    /// Write a self-contained HTML report with a timeline per scenario here.
    #[arg(long, value_name = "PATH")]
    pub report_html: Option<PathBuf>,
    /// human: progress and a summary; json: one event per line on stdout.
    #[arg(long, value_enum, default_value = "human")]
    pub output: Output,
    /// Stop at the first failed scenario.
    #[arg(long)]
    pub fail_fast: bool,
    /// Keep the cluster as the scenarios left it (prints what is left).
    #[arg(long)]
    pub no_restore: bool,
    /// Do not check permissions (SelfSubjectAccessReview) before the run:
    /// a run that cannot undo its changes may then leave the cluster dirty.
    #[arg(long)]
    pub skip_permission_check: bool,
    /// Set a suite variable (repeatable), e.g. --var host=shop.example.com.
    #[arg(long = "var", value_name = "KEY=VALUE", value_parser = parse_var)]
    pub vars: Vec<(String, String)>,
    /// Where run state (journals) is kept.
    #[arg(long, env = "HEATCHECK_STATE_DIR", default_value = ".heatcheck")]
    pub state_dir: PathBuf,
    /// Also keep the journal in the cluster (one Secret per run in the
    /// runner's namespace) and first recover what earlier runs left there;
    /// what `heatcheck deploy`'s CronJob runs.
    #[arg(long, env = "HEATCHECK_JOURNAL_IN_CLUSTER", conflicts_with = "sandbox")]
    pub journal_in_cluster: bool,
    #[command(flatten)]
    pub policy: PolicyArgs,
    /// CI mode: run locked AI scenarios only, never call an LLM; exit 2 when a
    /// suite with an ai block has no lockfile or a stale one.
    #[arg(long, conflicts_with = "regenerate")]
    pub locked: bool,
    /// Generate fresh AI scenarios first (calls the LLM) and rewrite the lockfile.
    #[arg(long)]
    pub regenerate: bool,
    /// Each restore must finish within this; what is not done stays in the journal (exit 5).
    #[arg(long, value_name = "DURATION", default_value = "2m", value_parser = crate::suite::parse_duration)]
    pub restore_timeout: std::time::Duration,
    /// Run one shard of the scenarios: count:K/N deals them round-robin,
    /// hash:K/N by a stable hash of suite/scenario (as cargo-nextest).
    #[arg(long, value_name = "count:K/N|hash:K/N")]
    pub partition: Option<crate::engine::partition::Partition>,
    /// Run a failed scenario again (restored first) up to N more times;
    /// passed after a failure is "flaky" (default: the suite's defaults.retries).
    #[arg(long, value_name = "N")]
    pub retries: Option<u32>,
    /// Exit 1 when a scenario was flaky (by default flaky passes).
    #[arg(long)]
    pub flaky_fails: bool,
    /// Run up to N suites at once; suites that may touch the same
    /// namespace still run one after another.
    #[arg(long, short = 'j', value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    pub jobs: u16,
    #[command(flatten)]
    pub metrics: MetricsArgs,
    #[command(flatten)]
    pub notify: NotifyArgs,
    /// Game day: before each scenario step, wait for the operator
    /// (Enter run, s skip, p pause, n note, a abort). Needs a terminal.
    #[arg(long)]
    pub interactive: bool,
    /// On the first failed check, stop before restoring so the team can
    /// inspect the cluster; Enter continues with the restore. Needs a terminal.
    #[arg(long)]
    pub pause_on_failure: bool,
    /// Do not draw the live panel (elapsed time, current step, probes,
    /// stop conditions) that a run on a terminal shows; spinners instead.
    #[arg(long)]
    pub no_live: bool,
}
