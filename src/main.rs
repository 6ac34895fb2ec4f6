//! The heatcheck command line: argument parsing and wiring only.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};

use heatcheck::commands;
use heatcheck::exit;

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
  heatcheck validate suites/
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
struct Cli {
    /// Log level filter (also RUST_LOG), e.g. info, heatcheck=debug.
    #[arg(long, global = true, env = "HEATCHECK_LOG", default_value = "warn")]
    log: String,
    #[command(subcommand)]
    command: Command,
}

/// Policy flags: each can only tighten the suite's `policy` (a looser value is
/// ignored with a note).
#[derive(Args, Clone, Default)]
struct PolicyArgs {
    /// Only these namespaces (repeatable); intersected with the suite's.
    #[arg(long = "allow-namespace", value_name = "NS")]
    allow_namespaces: Vec<String>,
    /// Refuse steps on this kind (repeatable).
    #[arg(long = "deny-kind", value_name = "KIND")]
    deny_kinds: Vec<String>,
    /// Largest percent of a namespace's pods one step may delete or fault (the smaller wins).
    #[arg(long, value_name = "PERCENT", value_parser = clap::value_parser!(u8).range(0..=100))]
    max_pods_affected: Option<u8>,
    /// Longest sleep, fault or scenario (sum of its sleeps and faults); the shorter wins.
    #[arg(long, value_name = "DURATION", value_parser = parse_suite_duration)]
    max_duration: Option<heatcheck::suite::Duration>,
    /// Refuse steps using this verb or step kind (repeatable), e.g. delete, scale.
    #[arg(long = "forbid-verb", value_name = "VERB")]
    forbid_verbs: Vec<String>,
}

impl PolicyArgs {
    fn overrides(self) -> heatcheck::guard::PolicyOverrides {
        heatcheck::guard::PolicyOverrides {
            allow_namespaces: self.allow_namespaces,
            deny_kinds: self.deny_kinds,
            max_pods_affected: self.max_pods_affected,
            max_duration: self.max_duration,
            forbid_verbs: self.forbid_verbs,
        }
    }
}

/// Prometheus in and out: promql checks, run metrics, the sandbox's metrics port.
#[derive(Args, Clone, Default)]
struct MetricsArgs {
    /// Prometheus that promql assertions and stop conditions query (over spec.prometheus.url).
    #[arg(long, env = "HEATCHECK_PROMETHEUS_URL", value_name = "URL")]
    prometheus_url: Option<String>,
    /// After the run, write its results as heatcheck_* metrics here (node-exporter textfile format).
    #[arg(long, value_name = "PATH")]
    metrics_file: Option<PathBuf>,
    /// After the run, push its heatcheck_* metrics to this Pushgateway (job heatcheck, per suite).
    #[arg(long, value_name = "URL")]
    pushgateway: Option<String>,
    /// With --sandbox: serve the data plane's metrics at http://127.0.0.1:PORT/metrics (0: any port).
    #[arg(long, value_name = "PORT", requires = "sandbox")]
    sandbox_metrics_port: Option<u16>,
}

impl MetricsArgs {
    fn options(self) -> commands::run::MetricsOptions {
        commands::run::MetricsOptions {
            prometheus_url: self.prometheus_url,
            metrics_file: self.metrics_file,
            pushgateway: self.pushgateway,
            sandbox_metrics_port: self.sandbox_metrics_port,
        }
    }
}

fn parse_suite_duration(s: &str) -> Result<heatcheck::suite::Duration, String> {
    heatcheck::suite::parse_duration(s).map(heatcheck::suite::Duration)
}

#[derive(Clone, Copy, ValueEnum)]
enum VerifyArg {
    /// Run candidates on a sandbox; lock failing ones with their verdict (default).
    On,
    /// Run candidates on a sandbox; reject those whose assertions fail there.
    Strict,
}

#[derive(Clone, Copy, ValueEnum)]
enum PlaybookFormat {
    Markdown,
    Html,
}

#[derive(Clone, Copy, ValueEnum)]
enum Output {
    Human,
    Json,
}

#[derive(Subcommand)]
// Parsed once per process; boxing the big Run variant buys nothing.
#[allow(clippy::large_enum_variant)]
enum Command {
    /// Run suites against a cluster (or the embedded sandbox) and report.
    #[command(after_help = format!("{EXAMPLES}\n\n{}", exit::TABLE))]
    Run {
        /// Suite files or directories.
        #[arg(required = true)]
        suites: Vec<PathBuf>,
        /// Start the embedded sandbox API server and gateway for this run.
        #[arg(long, conflicts_with_all = ["kubeconfig", "context"])]
        sandbox: bool,
        /// Kubeconfig file (default: KUBECONFIG, then ~/.kube/config, then in-cluster).
        #[arg(long)]
        kubeconfig: Option<PathBuf>,
        /// Kubeconfig context to use.
        #[arg(long)]
        context: Option<String>,
        /// Run only these scenarios (repeatable).
        #[arg(long = "scenario", value_name = "NAME")]
        scenarios: Vec<String>,
        /// Write a JUnit XML report here.
        #[arg(long, value_name = "PATH")]
        junit: Option<PathBuf>,
        /// Write a JSON report here.
        #[arg(long, value_name = "PATH")]
        report_json: Option<PathBuf>,
        /// Write a self-contained HTML report with a timeline per scenario here.
        #[arg(long, value_name = "PATH")]
        report_html: Option<PathBuf>,
        /// human: progress and a summary; json: one event per line on stdout.
        #[arg(long, value_enum, default_value = "human")]
        output: Output,
        /// Stop at the first failed scenario.
        #[arg(long)]
        fail_fast: bool,
        /// Keep the cluster as the scenarios left it (prints what is left).
        #[arg(long)]
        no_restore: bool,
        /// Do not check permissions (SelfSubjectAccessReview) before the run:
        /// a run that cannot undo its changes may then leave the cluster dirty.
        #[arg(long)]
        skip_permission_check: bool,
        /// Set a suite variable (repeatable), e.g. --var host=shop.example.com.
        #[arg(long = "var", value_name = "KEY=VALUE", value_parser = parse_var)]
        vars: Vec<(String, String)>,
        /// Where run state (journals) is kept.
        #[arg(long, env = "HEATCHECK_STATE_DIR", default_value = ".heatcheck")]
        state_dir: PathBuf,
        /// Also keep the journal in the cluster (one Secret per run in the
        /// runner's namespace) and first recover what earlier runs left there;
        /// what `heatcheck deploy`'s CronJob runs.
        #[arg(long, env = "HEATCHECK_JOURNAL_IN_CLUSTER", conflicts_with = "sandbox")]
        journal_in_cluster: bool,
        #[command(flatten)]
        policy: PolicyArgs,
        /// CI mode: run locked AI scenarios only, never call an LLM; exit 2 when a
        /// suite with an ai block has no lockfile or a stale one.
        #[arg(long, conflicts_with = "regenerate")]
        locked: bool,
        /// Generate fresh AI scenarios first (calls the LLM) and rewrite the lockfile.
        #[arg(long)]
        regenerate: bool,
        /// Each restore must finish within this; what is not done stays in the journal (exit 5).
        #[arg(long, value_name = "DURATION", default_value = "2m", value_parser = heatcheck::suite::parse_duration)]
        restore_timeout: std::time::Duration,
        /// Run one shard of the scenarios: count:K/N deals them round-robin,
        /// hash:K/N by a stable hash of suite/scenario (as cargo-nextest).
        #[arg(long, value_name = "count:K/N|hash:K/N")]
        partition: Option<heatcheck::engine::partition::Partition>,
        /// Run a failed scenario again (restored first) up to N more times;
        /// passed after a failure is "flaky" (default: the suite's defaults.retries).
        #[arg(long, value_name = "N")]
        retries: Option<u32>,
        /// Exit 1 when a scenario was flaky (by default flaky passes).
        #[arg(long)]
        flaky_fails: bool,
        /// Run up to N suites at once; suites that may touch the same
        /// namespace still run one after another.
        #[arg(long, short = 'j', value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
        jobs: u16,
        #[command(flatten)]
        metrics: MetricsArgs,
        /// Game day: before each scenario step, wait for the operator
        /// (Enter run, s skip, p pause, n note, a abort). Needs a terminal.
        #[arg(long)]
        interactive: bool,
        /// On the first failed check, stop before restoring so the team can
        /// inspect the cluster; Enter continues with the restore. Needs a terminal.
        #[arg(long)]
        pause_on_failure: bool,
        /// Do not draw the live panel (elapsed time, current step, probes,
        /// stop conditions) that a run on a terminal shows; spinners instead.
        #[arg(long)]
        no_live: bool,
    },
    /// Show what a run would do, changing nothing: steps, the objects each
    /// touches (server-side dry run), the policy verdict and the RBAC it needs.
    Plan {
        /// Suite files or directories.
        #[arg(required = true)]
        suites: Vec<PathBuf>,
        /// Plan against a fresh embedded sandbox.
        #[arg(long, conflicts_with_all = ["kubeconfig", "context"])]
        sandbox: bool,
        /// Kubeconfig file (default: KUBECONFIG, then ~/.kube/config, then in-cluster).
        #[arg(long)]
        kubeconfig: Option<PathBuf>,
        /// Kubeconfig context to use.
        #[arg(long)]
        context: Option<String>,
        /// Only these scenarios (repeatable).
        #[arg(long = "scenario", value_name = "NAME")]
        scenarios: Vec<String>,
        /// Set a suite variable (repeatable).
        #[arg(long = "var", value_name = "KEY=VALUE", value_parser = parse_var)]
        vars: Vec<(String, String)>,
        #[arg(long, value_enum, default_value = "human")]
        output: Output,
        #[command(flatten)]
        policy: PolicyArgs,
        /// As `run --locked`: a suite with an ai block and no fresh lock is an
        /// error. Locked scenarios are planned either way, as `run` runs them.
        #[arg(long)]
        locked: bool,
        /// Plan one shard, as `run --partition` runs it (count:K/N|hash:K/N).
        #[arg(long, value_name = "count:K/N|hash:K/N")]
        partition: Option<heatcheck::engine::partition::Partition>,
    },
    /// Render (or apply) a nightly in-cluster run: ServiceAccount, the Roles
    /// `plan` computes bound to it, a ConfigMap of the suites and a CronJob.
    Deploy {
        /// Suite files or directories.
        #[arg(required = true)]
        suites: Vec<PathBuf>,
        /// Namespace of the runner (ServiceAccount, ConfigMap, CronJob).
        #[arg(long, short = 'n')]
        namespace: String,
        /// Base name of the objects.
        #[arg(long, default_value = "heatcheck-nightly")]
        name: String,
        /// Cron schedule of the runs.
        #[arg(long, default_value = "0 3 * * *")]
        schedule: String,
        /// Container image with the heatcheck binary (see Containerfile).
        #[arg(long, default_value = concat!("ghcr.io/heatcheck/heatcheck:", env!("CARGO_PKG_VERSION")))]
        image: String,
        /// Run as an Indexed Job of N pods, each its own partition (count:K/N).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100))]
        shards: u32,
        /// Regenerate AI scenarios on each run (calls the LLM) instead of `--locked`.
        #[arg(long)]
        regenerate: bool,
        /// Print the objects as YAML (the default).
        #[arg(short = 'o', long = "output", value_parser = ["yaml"], conflicts_with = "apply")]
        output: Option<String>,
        /// Apply the objects server-side (field manager heatcheck) and print what changed.
        #[arg(long)]
        apply: bool,
        /// Compute the Roles against a fresh embedded sandbox.
        #[arg(long, conflicts_with_all = ["kubeconfig", "context"])]
        sandbox: bool,
        /// Kubeconfig file (default: KUBECONFIG, then ~/.kube/config, then in-cluster).
        #[arg(long)]
        kubeconfig: Option<PathBuf>,
        /// Kubeconfig context to use.
        #[arg(long)]
        context: Option<String>,
        /// Set a suite variable (repeatable).
        #[arg(long = "var", value_name = "KEY=VALUE", value_parser = parse_var)]
        vars: Vec<(String, String)>,
    },
    /// Write a printable game-day playbook (Markdown or HTML) from suites and
    /// their lockfiles: prerequisites, steady state, each step with the
    /// equivalent kubectl command, expectations, abort criteria and rollback.
    Playbook {
        /// Suite files or directories.
        #[arg(required = true)]
        suites: Vec<PathBuf>,
        /// markdown or html (default: from --output's extension, else markdown).
        #[arg(long, value_enum)]
        format: Option<PlaybookFormat>,
        /// Write here instead of stdout.
        #[arg(long, short = 'o', value_name = "FILE")]
        output: Option<PathBuf>,
        /// The date printed in the playbook (default: today, UTC).
        #[arg(long, value_name = "DATE")]
        date: Option<String>,
        /// Set a suite variable (repeatable).
        #[arg(long = "var", value_name = "KEY=VALUE", value_parser = parse_var)]
        vars: Vec<(String, String)>,
        /// With a cluster (or --sandbox): dry-run answers, the exact Role, gateway URLs.
        #[command(flatten)]
        cluster: ClusterFlags,
    },
    /// Render saved JSON reports (`run --report-json`) again: one report as
    /// the HTML run report, several (e.g. nightly/*.json) as a trend page.
    Report {
        /// JSON reports written by `heatcheck run --report-json`.
        #[arg(required = true)]
        reports: Vec<PathBuf>,
        /// Write the HTML here.
        #[arg(long, value_name = "FILE", required = true)]
        html: PathBuf,
    },
    /// Generate AI scenarios for a suite and write its lockfile (<suite>.lock.yaml).
    Generate {
        suite: PathBuf,
        #[command(flatten)]
        cluster: ClusterFlags,
        /// Skip the execution check (candidates are not run on a sandbox).
        #[arg(long, conflicts_with = "verify")]
        no_verify: bool,
        /// `strict`: also reject scenarios whose assertion fails on the sandbox
        /// (by default they are locked with `sandboxVerdict: failed: ...`).
        #[arg(long, value_enum, value_name = "MODE")]
        verify: Option<VerifyArg>,
    },
    /// Print exactly what `generate` would send to the LLM (calls no LLM).
    Prompt {
        suite: PathBuf,
        #[command(flatten)]
        cluster: ClusterFlags,
    },
    /// List unfinished runs (running, crashed, aborted, restore failed) and what each left.
    Runs {
        #[arg(long, env = "HEATCHECK_STATE_DIR", default_value = ".heatcheck")]
        state_dir: PathBuf,
    },
    /// Restore what a crashed or interrupted run left (all such runs when RUN is omitted).
    Recover {
        /// Run id (see `heatcheck runs`).
        run: Option<String>,
        #[arg(long, env = "HEATCHECK_STATE_DIR", default_value = ".heatcheck")]
        state_dir: PathBuf,
        /// Kubeconfig to use instead of the one the run recorded.
        #[arg(long)]
        kubeconfig: Option<PathBuf>,
        /// Context to use instead of the one the run recorded.
        #[arg(long)]
        context: Option<String>,
        /// Give up waiting after this (what is left is reported, exit 5).
        #[arg(long, value_name = "DURATION", default_value = "2m", value_parser = heatcheck::suite::parse_duration)]
        restore_timeout: std::time::Duration,
        /// Recover a run recorded as running on another machine (or, with
        /// --journal-in-cluster, one whose runner has not let its lease run out).
        #[arg(long)]
        force: bool,
        /// Recover the journals kept in the cluster (Secrets in the runner's
        /// namespace: the ServiceAccount's in a pod, else the context's).
        #[arg(long, conflicts_with = "run")]
        journal_in_cluster: bool,
    },
    /// Stop a running run from another terminal; it restores the cluster (all running runs when RUN is omitted).
    Abort {
        run: Option<String>,
        #[arg(long, env = "HEATCHECK_STATE_DIR", default_value = ".heatcheck")]
        state_dir: PathBuf,
    },
    /// Check suites without touching a cluster; reports every problem.
    Validate {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        #[arg(long, value_enum, default_value = "human")]
        output: Output,
    },
    /// List a suite's fixtures, steady-state checks and scenarios.
    List { suite: PathBuf },
    /// Print the JSON Schema of the suite format (or of one scenario).
    Schema {
        #[arg(long)]
        scenario: bool,
    },
    /// Print shell completions.
    Completions { shell: clap_complete::Shell },
    #[cfg(feature = "sandbox")]
    /// Serve the embedded sandbox until Ctrl-C: a Kubernetes API server and gateway data plane on loopback.
    Sandbox {
        /// Write a kubeconfig for the sandbox here (context heatcheck-sandbox).
        #[arg(long)]
        kubeconfig: PathBuf,
        /// Manifests (files or directories) to apply at start.
        #[arg(long = "manifests", value_name = "PATH")]
        manifests: Vec<PathBuf>,
        /// API server port (0: any free port).
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// Add a kubeconfig context and user NAME whose token has no permissions until RBAC grants some (repeatable).
        #[arg(long = "user", value_name = "NAME")]
        users: Vec<String>,
        /// Port of the data plane's Prometheus metrics on 127.0.0.1 (0: any free port).
        #[arg(long, default_value_t = 0)]
        metrics_port: u16,
        /// For tests: fail every Nth API request with STATUS, e.g. 503:3 or 429:4:/namespaces/.
        #[arg(long, hide = true, value_name = "STATUS:EVERY_NTH[:PATH]", value_parser = commands::sandbox::parse_fault_spec)]
        inject_api_faults: Option<heatcheck::sandbox::server::FaultSpec>,
    },
}

/// Where to read the AI context from.
#[derive(clap::Args)]
struct ClusterFlags {
    /// Start the embedded sandbox (context comes from the suite's fixtures).
    #[arg(long, conflicts_with_all = ["kubeconfig", "context"])]
    sandbox: bool,
    /// Kubeconfig file (default: KUBECONFIG, then ~/.kube/config, then in-cluster).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Kubeconfig context to use.
    #[arg(long)]
    context: Option<String>,
}

impl From<ClusterFlags> for commands::connect::ClusterArgs {
    fn from(f: ClusterFlags) -> Self {
        commands::connect::ClusterArgs {
            sandbox: f.sandbox,
            kubeconfig: f.kubeconfig,
            context: f.context,
            ..Default::default()
        }
    }
}

fn parse_var(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.trim().to_string(), v.to_string()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| format!("expected KEY=VALUE, got {s:?}"))
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() {
                exit::INVALID
            } else {
                exit::SUCCESS
            };
            let _ = e.print();
            return ExitCode::from(code as u8);
        }
    };
    commands::init_logging(&cli.log);
    let code = match cli.command {
        Command::Run {
            suites,
            sandbox,
            kubeconfig,
            context,
            scenarios,
            junit,
            report_json,
            report_html,
            output,
            fail_fast,
            no_restore,
            skip_permission_check,
            vars,
            state_dir,
            journal_in_cluster,
            policy,
            locked,
            regenerate,
            restore_timeout,
            partition,
            retries,
            flaky_fails,
            jobs,
            metrics,
            interactive,
            pause_on_failure,
            no_live,
        } => commands::run::run(commands::run::RunArgs {
            suites,
            sandbox,
            kubeconfig,
            context,
            scenarios,
            junit,
            report_json,
            report_html,
            json_output: matches!(output, Output::Json),
            fail_fast,
            no_restore,
            skip_permission_check,
            vars,
            state_dir,
            journal_in_cluster,
            policy: policy.overrides(),
            locked,
            regenerate,
            restore_timeout,
            partition,
            retries,
            flaky_fails,
            jobs: jobs.into(),
            metrics: metrics.options(),
            interactive,
            pause_on_failure,
            no_live,
        }),
        Command::Plan {
            suites,
            sandbox,
            kubeconfig,
            context,
            scenarios,
            vars,
            output,
            policy,
            locked,
            partition,
        } => commands::plan::plan(commands::plan::PlanArgs {
            suites,
            sandbox,
            kubeconfig,
            context,
            scenarios,
            vars,
            policy: policy.overrides(),
            json_output: matches!(output, Output::Json),
            locked,
            partition,
        }),
        Command::Deploy {
            suites,
            namespace,
            name,
            schedule,
            image,
            shards,
            regenerate,
            output: _,
            apply,
            sandbox,
            kubeconfig,
            context,
            vars,
        } => commands::deploy::deploy_cmd(commands::deploy::DeployArgs {
            suites,
            namespace,
            name,
            schedule,
            image,
            shards,
            regenerate,
            apply,
            sandbox,
            kubeconfig,
            context,
            vars,
        }),
        Command::Playbook {
            suites,
            format,
            output,
            date,
            vars,
            cluster,
        } => commands::playbook::playbook(commands::playbook::PlaybookArgs {
            suites,
            format: format.map(|f| match f {
                PlaybookFormat::Markdown => commands::playbook::PlaybookFormat::Markdown,
                PlaybookFormat::Html => commands::playbook::PlaybookFormat::Html,
            }),
            output,
            date,
            cluster: cluster.into(),
            vars,
        }),
        Command::Report { reports, html } => commands::report::report(&reports, &html),
        Command::Generate {
            suite,
            cluster,
            no_verify,
            verify,
        } => {
            use commands::verify::VerifyMode;
            let mode = match (no_verify, verify) {
                (true, _) => VerifyMode::Off,
                (false, Some(VerifyArg::Strict)) => VerifyMode::Strict,
                _ => VerifyMode::On,
            };
            commands::generate::generate_cmd(&suite, cluster.into(), mode)
        }
        Command::Prompt { suite, cluster } => commands::prompt::prompt_cmd(&suite, cluster.into()),
        Command::Runs { state_dir } => commands::runs::runs(&state_dir),
        Command::Recover {
            run,
            state_dir,
            kubeconfig,
            context,
            restore_timeout,
            force,
            journal_in_cluster,
        } => commands::recover::recover(commands::recover::RecoverArgs {
            run,
            state_dir,
            kubeconfig,
            context,
            restore_timeout,
            force,
            journal_in_cluster,
        }),
        Command::Abort { run, state_dir } => commands::abort::abort(run.as_deref(), &state_dir),
        Command::Validate { paths, output } => {
            commands::validate::validate(&paths, matches!(output, Output::Json))
        }
        Command::List { suite } => commands::list::list(&suite),
        Command::Schema { scenario } => commands::schema::schema(scenario),
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "heatcheck",
                &mut std::io::stdout(),
            );
            exit::SUCCESS
        }
        #[cfg(feature = "sandbox")]
        Command::Sandbox {
            kubeconfig,
            manifests,
            port,
            users,
            metrics_port,
            inject_api_faults,
        } => commands::sandbox::sandbox(
            &kubeconfig,
            &manifests,
            port,
            &users,
            metrics_port,
            inject_api_faults,
        ),
    };
    ExitCode::from(code as u8)
}
