use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::{parse_var, ClusterFlags, Output, PolicyArgs};

#[derive(Args, Debug)]
pub struct PlanArgs {
    /// Suite files or directories.
    #[arg(required = true)]
    pub suites: Vec<PathBuf>,
    #[command(flatten)]
    pub cluster: ClusterFlags,
    /// Only these scenarios (repeatable).
    #[arg(long = "scenario", value_name = "NAME")]
    pub scenarios: Vec<String>,
    /// Set a suite variable (repeatable).
    #[arg(long = "var", value_name = "KEY=VALUE", value_parser = parse_var)]
    pub vars: Vec<(String, String)>,
    #[arg(long, value_enum, default_value = "human")]
    pub output: Output,
    #[command(flatten)]
    pub policy: PolicyArgs,
    /// As `run --locked`: a suite with an ai block and no fresh lock is an
    /// error. Locked scenarios are planned either way, as `run` runs them.
    #[arg(long)]
    pub locked: bool,
    /// Plan one shard, as `run --partition` runs it (count:K/N|hash:K/N).
    #[arg(long, value_name = "count:K/N|hash:K/N")]
    pub partition: Option<crate::engine::partition::Partition>,
}

#[derive(Args, Debug)]
pub struct DeployArgs {
    /// Suite files or directories.
    #[arg(required = true)]
    pub suites: Vec<PathBuf>,
    /// Namespace of the runner (ServiceAccount, ConfigMap, CronJob).
    #[arg(long, short = 'n')]
    pub namespace: String,
    /// Base name of the objects.
    #[arg(long, default_value = "heatcheck-nightly")]
    pub name: String,
    /// Cron schedule of the runs.
    #[arg(long, default_value = "0 3 * * *")]
    pub schedule: String,
    /// Container image with the heatcheck binary (see Containerfile).
    #[arg(long, default_value = concat!("ghcr.io/heatcheck/heatcheck:", env!("CARGO_PKG_VERSION")))]
    pub image: String,
    /// Run as an Indexed Job of N pods, each its own partition (count:K/N).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub shards: u32,
    /// Regenerate AI scenarios on each run (calls the LLM) instead of `--locked`.
    #[arg(long)]
    pub regenerate: bool,
    /// Print the objects as YAML (the default).
    #[arg(short = 'o', long = "output", value_parser = ["yaml"], conflicts_with = "apply")]
    pub output: Option<String>,
    /// Apply the objects server-side (field manager heatcheck) and print what changed.
    #[arg(long)]
    pub apply: bool,
    /// Where the Roles are computed (dry runs): a cluster, or --sandbox.
    #[command(flatten)]
    pub cluster: ClusterFlags,
    /// Set a suite variable (repeatable).
    #[arg(long = "var", value_name = "KEY=VALUE", value_parser = parse_var)]
    pub vars: Vec<(String, String)>,
    /// The CronJob's runs notify these webhooks: the URLs go into the Secret
    /// <name>-notify (created by --apply; printed output only names it) and
    /// reach the pod as HEATCHECK_NOTIFY_URL, never in the CronJob.
    #[command(flatten)]
    pub notify: super::NotifyArgs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PlaybookFormat {
    Markdown,
    Html,
}

#[derive(Args, Debug)]
pub struct PlaybookArgs {
    /// Suite files or directories.
    #[arg(required = true)]
    pub suites: Vec<PathBuf>,
    /// markdown or html (default: from --output's extension, else markdown).
    #[arg(long, value_enum)]
    pub format: Option<PlaybookFormat>,
    /// Write here instead of stdout.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// The date printed in the playbook (default: today, UTC).
    #[arg(long, value_name = "DATE")]
    pub date: Option<String>,
    /// Set a suite variable (repeatable).
    #[arg(long = "var", value_name = "KEY=VALUE", value_parser = parse_var)]
    pub vars: Vec<(String, String)>,
    /// With a cluster (or --sandbox): dry-run answers, the exact Role, gateway URLs.
    #[command(flatten)]
    pub cluster: ClusterFlags,
    /// `heatcheck remediate --output json` reports (repeatable): each
    /// scenario's verified fix is printed beside its remediation.
    #[arg(long, value_name = "FILE.json")]
    pub remediation: Vec<PathBuf>,
}
