use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

/// What `heatcheck mcp --help` lists: the tools as an assistant sees them.
pub const TOOLS: &str = "\
Tools (each runs `heatcheck <command> --output json` and answers with its JSON):
  list_suites  the suite files under a folder of the root (name, scenarios, valid, lockfile)
  validate     every problem of every suite file, with file:line:column
  plan         what a run would do (steps, touched objects, policy verdict, RBAC); changes nothing
  prompt       what `generate` would send to the LLM, Secrets redacted; sends nothing
  run          run suites on a fresh sandbox (default), or the cluster with --allow-mutations;
               progress notifications; a cancelled request stops and restores as Ctrl-C
  explore      search for weaknesses on in-process twins (the cluster is only read): findings JSON
  remediate    fixes for explore's findings, each verified on twins: a diff (`fix` writes the
               manifests only with --allow-write)
  recover_status  runs under the root that still need attention and what their journals hold
  report       a saved JSON report (run --report-json) summarised

Resources: the suites under --root, their lockfiles and the newest reports (file:// URLs).

Paths are relative to --root and refused when they resolve (symlinks followed) outside it.
Without --kubeconfig only the sandbox is reachable; with it, the cluster is read-only
unless --allow-mutations is given.

Client configuration (Claude Code / Claude Desktop `mcpServers`):
  {\"mcpServers\": {\"heatcheck\": {\"command\": \"heatcheck\", \"args\": [\"mcp\", \"--root\", \"/path/to/suites\"]}}}";

#[derive(Args, Debug)]
#[command(after_help = TOOLS)]
pub struct McpArgs {
    /// The folder whose suites and reports the tools may read (and, with
    /// --allow-write, write); every path must resolve inside it.
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub root: PathBuf,
    /// Serve the streamable HTTP transport at http://ADDR/mcp instead of
    /// stdio, e.g. 127.0.0.1:8931 (port 0: any free port, printed on stderr).
    #[arg(long, value_name = "ADDR")]
    pub http: Option<SocketAddr>,
    /// The real cluster of `target: cluster` (read-only unless --allow-mutations).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context of `target: cluster`.
    #[arg(long, requires = "kubeconfig")]
    pub context: Option<String>,
    /// Let `run` change the --kubeconfig cluster (through the policy guard
    /// and permission preflight, as the CLI).
    #[arg(long, requires = "kubeconfig")]
    pub allow_mutations: bool,
    /// Let tools write files under --root (e.g. run's report_json).
    #[arg(long)]
    pub allow_write: bool,
}
