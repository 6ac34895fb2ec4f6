//! The command line: one `#[derive(Args)]` struct per subcommand, handed
//! as it is to the command that runs it (`Command::Run(RunArgs)` →
//! `commands::run::run`). Shared flag groups live here.

mod ai;
mod explore;
mod mcp;
mod misc;
mod plan;
mod remediate;
mod run;
mod state;

use std::path::PathBuf;

use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};

pub use ai::{GenerateArgs, PromptArgs, VerifyArg};
pub use explore::{ExploreArgs, Strategy};
pub use mcp::McpArgs;
#[cfg(feature = "sandbox")]
pub use misc::SandboxArgs;
pub use misc::{CompletionsArgs, ListArgs, ReportArgs, SchemaArgs, ValidateArgs};
pub use plan::{DeployArgs, PlanArgs, PlaybookArgs, PlaybookFormat};
pub use remediate::{RemediateArgs, Strategy as RemediateStrategy};
pub use run::RunArgs;
pub use state::{AbortArgs, RecoverArgs, RunsArgs};

use crate::commands;
use crate::error::Error;
use crate::exit;

const EXAMPLES: &str = "\
Examples:
  heatcheck run suites/httproute-conflict/suite.yaml --sandbox
  heatcheck run suites/ --kubeconfig ~/.kube/config --context staging --junit report.xml
  heatcheck plan suites/scale-to-zero/suite.yaml --sandbox
  heatcheck run suites/ --sandbox --locked --report-html gameday.html
  heatcheck playbook suites/service-latency/suite.yaml --output playbook.html
  heatcheck report nightly/*.json --html trend.html
  heatcheck prompt suites/httproute-conflict/suite.yaml --sandbox
  heatcheck generate suites/httproute-conflict/suite.yaml --kubeconfig ~/.kube/config
  heatcheck explore suites/httproute-conflict/suite.yaml --sandbox
  heatcheck remediate suites/httproute-conflict/suite.yaml --findings findings.json --sandbox --diff
  heatcheck validate suites/
  heatcheck mcp --root suites/
  heatcheck deploy suites/ --namespace heatcheck --image REGISTRY/heatcheck:TAG --apply
  heatcheck list suites/httproute-conflict/suite.yaml
  heatcheck sandbox --kubeconfig /tmp/sandbox.kubeconfig --manifests suites/httproute-conflict/manifests";

#[derive(Parser)]
#[command(
    name = "heatcheck",
    version,
    about = "Chaos-as-code for Kubernetes networking, with AI-generated scenarios",
    after_help = format!("{EXAMPLES}\n\n{}", exit::TABLE),
)]
pub struct Cli {
    /// Log level filter (also RUST_LOG), e.g. info, heatcheck=debug.
    #[arg(long, global = true, env = "HEATCHECK_LOG", default_value = "warn")]
    pub log: String,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
// Parsed once per process; boxing the big Run variant buys nothing.
#[allow(clippy::large_enum_variant)]
pub enum Command {
    /// Run suites against a cluster (or the embedded sandbox) and report.
    #[command(after_help = format!("{EXAMPLES}\n\n{}", exit::TABLE))]
    Run(RunArgs),
    /// Show what a run would do, changing nothing: steps, the objects each
    /// touches (server-side dry run), the policy verdict and the RBAC it needs.
    Plan(PlanArgs),
    /// Search for weaknesses: run the catalog of survivable networking chaos
    /// on fresh in-process twins of the suite's namespace (the cluster is only
    /// read) and report what broke, minimized, with a resilience score.
    #[cfg(feature = "sandbox")]
    Explore(ExploreArgs),
    /// Fix what explore found: candidate changes to the suite's manifests,
    /// each verified on fresh twins (the finding now holds, nothing that
    /// passed breaks), offered as a diff (--diff) or written (--fix); the
    /// cluster is only read.
    #[cfg(feature = "sandbox")]
    Remediate(RemediateArgs),
    /// Render (or apply) a nightly in-cluster run: ServiceAccount, the Roles
    /// `plan` computes bound to it, a ConfigMap of the suites and a CronJob.
    Deploy(DeployArgs),
    /// Write a printable game-day playbook (Markdown or HTML) from suites and
    /// their lockfiles: prerequisites, steady state, each step with the
    /// equivalent kubectl command, expectations, abort criteria and rollback.
    Playbook(PlaybookArgs),
    /// Render saved JSON reports (`run --report-json`) again: one report as
    /// the HTML run report, several (e.g. nightly/*.json) as a trend page.
    Report(ReportArgs),
    /// Generate AI scenarios for a suite and write its lockfile (<suite>.lock.yaml).
    Generate(GenerateArgs),
    /// Print exactly what `generate` would send to the LLM (calls no LLM).
    Prompt(PromptArgs),
    /// Serve heatcheck's commands to AI assistants over the Model Context
    /// Protocol (stdio, or streamable HTTP with --http): list_suites,
    /// validate, plan, prompt, run, explore, report.
    Mcp(McpArgs),
    /// List unfinished runs (running, crashed, aborted, restore failed) and what each left.
    Runs(RunsArgs),
    /// Restore what a crashed or interrupted run left (all such runs when RUN is omitted).
    Recover(RecoverArgs),
    /// Stop a running run from another terminal; it restores the cluster (all running runs when RUN is omitted).
    Abort(AbortArgs),
    /// Check suites without touching a cluster; reports every problem.
    Validate(ValidateArgs),
    /// List a suite's fixtures, steady-state checks and scenarios.
    List(ListArgs),
    /// Print the JSON Schema of the suite format (or of one scenario).
    Schema(SchemaArgs),
    /// Print shell completions.
    Completions(CompletionsArgs),
    #[cfg(feature = "sandbox")]
    /// Serve the embedded sandbox until Ctrl-C: a Kubernetes API server and gateway data plane on loopback.
    Sandbox(SandboxArgs),
}

impl Command {
    /// Runs the command; what went wrong comes back typed (see [`Error::exit_code`]).
    pub fn dispatch(self) -> Result<(), Error> {
        match self {
            Command::Run(a) => commands::run::run(a),
            Command::Plan(a) => commands::plan::plan(a),
            #[cfg(feature = "sandbox")]
            Command::Explore(a) => commands::explore::explore(a),
            #[cfg(feature = "sandbox")]
            Command::Remediate(a) => commands::remediate::remediate(a),
            Command::Deploy(a) => commands::deploy::deploy_cmd(a),
            Command::Playbook(a) => commands::playbook::playbook(a),
            Command::Report(a) => commands::report::report(&a.reports, &a.html, &a.remediation),
            Command::Generate(a) => commands::generate::generate_cmd(a),
            Command::Prompt(a) => commands::prompt::prompt_cmd(&a.suite, &a.cluster),
            Command::Mcp(a) => commands::mcp::mcp(a),
            Command::Runs(a) => commands::runs::runs(&a.state_dir, a.output.is_json()),
            Command::Recover(a) => commands::recover::recover(a),
            Command::Abort(a) => commands::abort::abort(a.run.as_deref(), &a.state_dir),
            Command::Validate(a) => commands::validate::validate(&a.paths, a.output.is_json()),
            Command::List(a) => commands::list::list(&a.suite),
            Command::Schema(a) => commands::schema::schema(a.scenario),
            Command::Completions(a) => {
                clap_complete::generate(
                    a.shell,
                    &mut Cli::command(),
                    "heatcheck",
                    &mut std::io::stdout(),
                );
                Ok(())
            }
            #[cfg(feature = "sandbox")]
            Command::Sandbox(a) => commands::sandbox::sandbox(a),
        }
    }
}

/// Which cluster a command talks to.
#[derive(Args, Clone, Debug, Default)]
pub struct ClusterFlags {
    /// Use a fresh embedded sandbox (API server and gateway in this process) instead of a cluster.
    #[arg(long, conflicts_with_all = ["kubeconfig", "context"])]
    pub sandbox: bool,
    /// Kubeconfig file (default: KUBECONFIG, then ~/.kube/config, then in-cluster).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context to use.
    #[arg(long)]
    pub context: Option<String>,
}

/// Policy flags: each can only tighten the suite's `policy` (a looser value is
/// ignored with a note).
#[derive(Args, Clone, Debug, Default)]
pub struct PolicyArgs {
    /// Only these namespaces (repeatable); intersected with the suite's.
    #[arg(long = "allow-namespace", value_name = "NS")]
    pub allow_namespaces: Vec<String>,
    /// Refuse steps on this kind (repeatable).
    #[arg(long = "deny-kind", value_name = "KIND")]
    pub deny_kinds: Vec<String>,
    /// Largest percent of a namespace's pods one step may delete or fault (the smaller wins).
    #[arg(long, value_name = "PERCENT", value_parser = clap::value_parser!(u8).range(0..=100))]
    pub max_pods_affected: Option<u8>,
    /// Longest sleep, fault or scenario (sum of its sleeps and faults); the shorter wins.
    #[arg(long, value_name = "DURATION", value_parser = parse_suite_duration)]
    pub max_duration: Option<crate::suite::Duration>,
    /// Refuse steps using this verb or step kind (repeatable), e.g. delete, scale.
    #[arg(long = "forbid-verb", value_name = "VERB")]
    pub forbid_verbs: Vec<String>,
}

impl PolicyArgs {
    pub fn overrides(&self) -> crate::guard::PolicyOverrides {
        crate::guard::PolicyOverrides {
            allow_namespaces: self.allow_namespaces.clone(),
            deny_kinds: self.deny_kinds.clone(),
            max_pods_affected: self.max_pods_affected,
            max_duration: self.max_duration,
            forbid_verbs: self.forbid_verbs.clone(),
        }
    }
}

/// Prometheus in and out: promql checks, run metrics, the sandbox's metrics port.
#[derive(Args, Clone, Debug, Default)]
pub struct MetricsArgs {
    /// Prometheus that promql assertions and stop conditions query (over spec.prometheus.url).
    #[arg(long, env = "HEATCHECK_PROMETHEUS_URL", value_name = "URL")]
    pub prometheus_url: Option<String>,
    /// After the run, write its results as heatcheck_* metrics here (node-exporter textfile format).
    #[arg(long, value_name = "PATH")]
    pub metrics_file: Option<PathBuf>,
    /// After the run, push its heatcheck_* metrics to this Pushgateway (job heatcheck, per suite).
    #[arg(long, value_name = "URL")]
    pub pushgateway: Option<String>,
    /// With --sandbox: serve the data plane's metrics at http://127.0.0.1:PORT/metrics (0: any port).
    #[arg(long, value_name = "PORT", requires = "sandbox")]
    pub sandbox_metrics_port: Option<u16>,
}

/// `--notify`: a summary POSTed to webhooks after the run.
#[derive(Args, Debug, Clone, Default)]
pub struct NotifyArgs {
    /// After the run, POST a summary to this webhook (repeatable); only on
    /// failure unless --notify-always. The URL is a secret: only its host is
    /// ever printed. Several in HEATCHECK_NOTIFY_URL are space-separated.
    #[arg(
        long = "notify",
        value_name = "URL",
        env = "HEATCHECK_NOTIFY_URL",
        hide_env_values = true,
        value_delimiter = ' '
    )]
    pub urls: Vec<String>,
    /// The body: generic (schemas/notification.schema.json) or slack (an
    /// incoming-webhook message, Block Kit).
    #[arg(long, value_enum, value_name = "FORMAT", default_value = "generic")]
    pub notify_format: NotifyFormat,
    /// Notify after a passing run too.
    #[arg(long)]
    pub notify_always: bool,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum NotifyFormat {
    #[default]
    Generic,
    Slack,
}

impl NotifyFormat {
    pub fn name(self) -> &'static str {
        match self {
            NotifyFormat::Generic => "generic",
            NotifyFormat::Slack => "slack",
        }
    }
}

#[derive(Clone, Copy, Debug, Default, ValueEnum)]
pub enum Output {
    #[default]
    Human,
    Json,
}

impl Output {
    pub fn is_json(self) -> bool {
        matches!(self, Output::Json)
    }
}

pub(crate) fn parse_suite_duration(s: &str) -> Result<crate::suite::Duration, String> {
    crate::suite::parse_duration(s).map(crate::suite::Duration)
}

pub(crate) fn parse_var(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.trim().to_string(), v.to_string()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| format!("expected KEY=VALUE, got {s:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn vars_are_key_equals_value() {
        assert_eq!(parse_var("a=b=c"), Ok(("a".into(), "b=c".into())));
        assert!(parse_var("=x").is_err());
        assert!(parse_var("novalue").is_err());
    }
}
