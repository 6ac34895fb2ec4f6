use std::path::PathBuf;

use clap::Args;

use super::{parse_var, ClusterFlags, NotifyArgs, Output};

#[derive(Args, Debug)]
pub struct ExploreArgs {
    /// The suite whose namespace, policy, fixtures and probes define the system.
    #[arg(required_unless_present = "namespace", conflicts_with = "namespace")]
    pub suite: Option<PathBuf>,
    /// No suite: read this namespace of the cluster, derive its steady
    /// state from its routes (keep it with --write-suite), and explore it
    /// under the default policy.
    #[arg(long, value_name = "NS")]
    pub namespace: Option<String>,
    /// The cluster to read (never changed); --sandbox: only the suite's fixtures.
    #[command(flatten)]
    pub cluster: ClusterFlags,
    /// Where candidates come from: the built-in catalog (no LLM), the
    /// suite's model (`ai` block) told what every earlier candidate did, or
    /// the catalog first and then the model. Default: both when the suite
    /// has an `ai` block and its API key is set, else catalog.
    #[arg(long, value_enum, value_name = "STRATEGY")]
    pub strategy: Option<Strategy>,
    /// Rounds of model candidates (ai, both); each round asks for the ai
    /// block's `count`.
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=20))]
    pub rounds: u16,
    /// Try at most N candidates.
    #[arg(long, value_name = "N")]
    pub max_candidates: Option<usize>,
    /// Start no new candidate after this long, e.g. 10m.
    #[arg(long, value_name = "DURATION", value_parser = crate::suite::parse_duration)]
    pub budget: Option<std::time::Duration>,
    /// Twins (in-process sandboxes) running candidates at once.
    #[arg(long, short = 'j', value_name = "N", default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=16))]
    pub jobs: u16,
    /// Write the findings as JSON here (schemas/findings.schema.json).
    #[arg(long, value_name = "FILE")]
    pub findings: Option<PathBuf>,
    /// Write a suite that replays every finding (the suite, the derived
    /// probes, each finding's scenario): `heatcheck run FILE --sandbox` fails
    /// until the weaknesses are fixed.
    #[arg(long, value_name = "FILE")]
    pub write_suite: Option<PathBuf>,
    /// Write each finding to the suite's lockfile (<suite>.lock.yaml) as a
    /// scenario with origin explore, its own probes included: `run --locked`
    /// replays it and it fails until the weakness is fixed. Locking again
    /// replaces the entries of the same finding ids and keeps the rest.
    #[arg(long)]
    pub lock: bool,
    /// Write the resilience score and the counts behind it as heatcheck_*
    /// metrics here (node-exporter textfile format), for a nightly trend.
    #[arg(long, value_name = "PATH")]
    pub metrics_file: Option<PathBuf>,
    /// Write the findings and the score as an HTML page here.
    #[arg(long, value_name = "FILE")]
    pub report_html: Option<PathBuf>,
    /// Lowest probe success rate a survivable change may cause (0-1).
    #[arg(long, value_name = "RATE", default_value_t = 0.99)]
    pub min_success_rate: f64,
    /// Set a suite variable (repeatable).
    #[arg(long = "var", value_name = "KEY=VALUE", value_parser = parse_var)]
    pub vars: Vec<(String, String)>,
    /// human: progress and one block per finding; json: the findings report on stdout.
    #[arg(long, value_enum, default_value = "human")]
    pub output: Output,
    /// Findings count and resilience score to webhooks (a failure: a finding).
    #[command(flatten)]
    pub notify: NotifyArgs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Strategy {
    Catalog,
    Ai,
    Both,
}
