use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::{parse_var, ClusterFlags, Output};

/// Where candidate fixes come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Strategy {
    /// The built-in catalog of fixes per weakness class (no LLM).
    Catalog,
    /// The suite's model (`ai` block), given each finding's evidence, the
    /// namespace's objects and the policy.
    Ai,
    /// The catalog first, then the model for what it did not fix.
    Both,
}

#[derive(Args, Debug)]
pub struct RemediateArgs {
    /// The suite whose fixtures (manifest files) the fixes change.
    pub suite: PathBuf,
    /// The findings to fix, as `heatcheck explore --findings FILE.json` wrote them.
    #[arg(long, value_name = "FILE.json", required_unless_present = "scenarios")]
    pub findings: Option<PathBuf>,
    /// Or failing scenarios of the suite (repeatable), tagged with their
    /// weakness class as `explore --write-suite` writes them.
    #[arg(long = "scenario", value_name = "NAME", conflicts_with = "findings")]
    pub scenarios: Vec<String>,
    /// The cluster whose objects seed the twins (only read; never changed).
    #[command(flatten)]
    pub cluster: ClusterFlags,
    /// Where fixes come from. Default: both when the suite has an `ai`
    /// block and its API key is set, else catalog. Every fix, the model's
    /// too, is verified on fresh twins before it is offered.
    #[arg(long, value_enum)]
    pub strategy: Option<Strategy>,
    /// Print the offered fixes as a unified diff of the suite's manifest files.
    #[arg(long)]
    pub diff: bool,
    /// Write the offered fixes into the manifest files (as `cargo fix`);
    /// refused when those files have uncommitted changes.
    #[arg(long)]
    pub fix: bool,
    /// With --fix: write even when the manifest files have uncommitted changes
    /// (or are not in a git repository).
    #[arg(long, requires = "fix")]
    pub allow_dirty: bool,
    /// Twins (in-process sandboxes) at once.
    #[arg(long, short = 'j', value_name = "N", default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=16))]
    pub jobs: u16,
    /// Start no new verification after this long, e.g. 10m.
    #[arg(long, value_name = "DURATION", value_parser = crate::suite::parse_duration)]
    pub budget: Option<std::time::Duration>,
    /// Lowest probe success rate a survivable change may cause (0-1), as explore's.
    #[arg(long, value_name = "RATE", default_value_t = 0.99)]
    pub min_success_rate: f64,
    /// Set a suite variable (repeatable).
    #[arg(long = "var", value_name = "KEY=VALUE", value_parser = parse_var)]
    pub vars: Vec<(String, String)>,
    /// human: progress, one block per finding; json: the remediation report on stdout.
    #[arg(long, value_enum, default_value = "human")]
    pub output: Output,
}
