//! The MCP tools. Each one checks its paths against the root and its target
//! against the server's flags, then runs the heatcheck CLI (see `child.rs`)
//! and answers with its JSON; what the CLI printed as an error comes back as
//! a tool error with the same text.

use std::collections::BTreeMap;
use std::path::PathBuf;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::IntoCallToolResult;
use rmcp::handler::server::wrapper::{Json, Parameters};
use rmcp::model::{
    CallToolResponse, CallToolResult, ContentBlock, Implementation, ListResourcesResult,
    PaginatedRequestParams, ProgressNotificationParam, ReadResourceRequestParams,
    ReadResourceResponse, ReadResourceResult, Resource, ResourceContents, ServerCapabilities,
    ServerConfig,
};

use crate::resources;
use rmcp::service::RequestContext;
use rmcp::{tool, tool_handler, tool_router, ErrorData, RoleServer, ServerHandler};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::mpsc;

use crate::child::{run_cli, CliOutput, Events, Invocation};
use crate::report;
use crate::Config;

/// Where a tool runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Target {
    /// A fresh embedded sandbox (API server and gateway in the heatcheck
    /// process), built from the suite's fixtures; nothing real is touched.
    #[default]
    Sandbox,
    /// The cluster of the server's --kubeconfig/--context. Read-only tools
    /// only, unless the server was started with --allow-mutations.
    Cluster,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListSuitesInput {
    /// A folder under the server's root (default: the root itself).
    #[serde(default)]
    pub(crate) folder: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PathsInput {
    /// Suite files or folders, relative to the server's root.
    pub(crate) paths: Vec<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PlanInput {
    /// Suite files or folders, relative to the server's root.
    pub(crate) suites: Vec<String>,
    /// Only these scenarios.
    #[serde(default)]
    pub(crate) scenarios: Vec<String>,
    /// Suite variables (as --var KEY=VALUE).
    #[serde(default)]
    pub(crate) vars: BTreeMap<String, String>,
    /// sandbox (default) or cluster (dry runs only: plan changes nothing).
    #[serde(default)]
    pub(crate) target: Target,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PromptInput {
    /// A suite file with an `ai` block, relative to the server's root.
    pub(crate) suite: String,
    /// Where the context is read: sandbox (default) or cluster (read only).
    #[serde(default)]
    pub(crate) target: Target,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RunInput {
    /// Suite files or folders, relative to the server's root.
    pub(crate) suites: Vec<String>,
    /// Only these scenarios.
    #[serde(default)]
    pub(crate) scenarios: Vec<String>,
    /// Suite variables (as --var KEY=VALUE).
    #[serde(default)]
    pub(crate) vars: BTreeMap<String, String>,
    /// sandbox (default) or cluster (needs a server started with
    /// --kubeconfig and --allow-mutations).
    #[serde(default)]
    pub(crate) target: Target,
    /// Stop at the first failed scenario.
    #[serde(default)]
    pub(crate) fail_fast: bool,
    /// Run a failed scenario again up to N more times (flaky when it then passes).
    #[serde(default)]
    pub(crate) retries: Option<u32>,
    /// Run locked AI scenarios only and never call an LLM (as `run --locked`).
    #[serde(default)]
    pub(crate) locked: bool,
    /// Also write the JSON report to this file under the root (needs a
    /// server started with --allow-write).
    #[serde(default)]
    pub(crate) report_json: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExploreInput {
    /// The suite whose namespace, policy, fixtures and probes define the
    /// system (relative to the root); or give `namespace` with target cluster.
    #[serde(default)]
    pub(crate) suite: Option<String>,
    /// No suite: explore this namespace of the cluster as it is.
    #[serde(default)]
    pub(crate) namespace: Option<String>,
    /// What is read: sandbox (default: the suite's fixtures only) or
    /// cluster (read, never changed: candidates run on in-process twins).
    #[serde(default)]
    pub(crate) target: Target,
    /// Try at most N candidates.
    #[serde(default)]
    pub(crate) max_candidates: Option<usize>,
    /// Start no new candidate after this long, e.g. 2m.
    #[serde(default)]
    pub(crate) budget: Option<String>,
    /// catalog (no LLM), ai or both (default: as the CLI decides).
    #[serde(default)]
    pub(crate) strategy: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RemediateInput {
    /// The suite whose manifest files the fixes change, relative to the root.
    pub(crate) suite: String,
    /// The findings to fix: a file `explore` wrote (`--findings`), relative to the root.
    #[serde(default)]
    pub(crate) findings: Option<String>,
    /// Or failing scenarios of the suite, tagged as `explore --write-suite` tags them.
    #[serde(default)]
    pub(crate) scenarios: Vec<String>,
    /// What seeds the twins: sandbox (default: the suite's fixtures only)
    /// or cluster (read, never changed).
    #[serde(default)]
    pub(crate) target: Target,
    /// catalog (no LLM), ai or both (default: as the CLI decides).
    #[serde(default)]
    pub(crate) strategy: Option<String>,
    /// Start no new verification after this long, e.g. 5m.
    #[serde(default)]
    pub(crate) budget: Option<String>,
    /// Write the verified fixes into the manifest files (`--fix`; needs a
    /// server started with --allow-write, and files without uncommitted
    /// changes). Default: the fixes come back as a diff only.
    #[serde(default)]
    pub(crate) fix: bool,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RunsInput {}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReportInput {
    /// A JSON report written by `run --report-json`, relative to the root.
    pub(crate) path: String,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SuiteEntry {
    /// Relative to the server's root.
    pub(crate) file: String,
    pub(crate) valid: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) suite: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) scenarios: Option<u64>,
    /// Its lockfile (locked AI scenarios), when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) lockfile: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct ListSuitesOutput {
    pub(crate) suites: Vec<SuiteEntry>,
}

/// What a CLI command answered.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CliAnswer {
    /// The CLI's exit code (0 passed, 1 a test failed, 2 invalid, 3
    /// unreachable, 4 aborted and restored, 5 restore failed).
    pub(crate) exit_code: i32,
    /// The exit code in words.
    pub(crate) outcome: String,
    /// What `heatcheck <command> --output json` printed.
    pub(crate) result: Value,
    /// Notes and warnings the CLI printed on stderr.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) messages: Vec<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct PromptOutput {
    /// Exactly what `heatcheck prompt` prints: system and user prompts and
    /// the response schema, Secrets redacted. No request is sent.
    pub(crate) text: String,
}

/// Why a tool did not answer.
pub(crate) enum Failure {
    /// Refused before anything ran (path escape, a mutation the server's
    /// flags do not allow): an MCP error.
    Refused(String),
    /// The CLI failed: a tool error with the text it printed.
    Cli(String),
}

impl IntoCallToolResult for Failure {
    fn into_call_tool_result(self) -> Result<CallToolResponse, ErrorData> {
        match self {
            Failure::Refused(m) => Err(ErrorData::invalid_params(m, None)),
            Failure::Cli(m) => Ok(CallToolResult::error(vec![ContentBlock::text(m)]).into()),
        }
    }
}

#[derive(Clone)]
pub(crate) struct HeatcheckServer {
    cfg: std::sync::Arc<Config>,
    tool_router: ToolRouter<Self>,
}

#[tool_router]
impl HeatcheckServer {
    pub(crate) fn new(cfg: Config) -> Self {
        Self {
            cfg: std::sync::Arc::new(cfg),
            tool_router: Self::tool_router(),
        }
    }

    /// List the suite files under a folder of the server's root, each with
    /// its suite name, scenario count, whether it is valid and its lockfile.
    #[tool(annotations(read_only_hint = true))]
    async fn list_suites(
        &self,
        Parameters(input): Parameters<ListSuitesInput>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<ListSuitesOutput>, Failure> {
        let folder = self.existing(input.folder.as_deref().unwrap_or("."))?;
        let out = self
            .cli(
                vec![
                    "validate".into(),
                    path_arg(&folder),
                    "--output".into(),
                    "json".into(),
                ],
                Events::None,
                &ctx,
            )
            .await?;
        let json = parse_stdout(&out)?;
        let files = json["files"].as_array().cloned().unwrap_or_default();
        let suites = files
            .iter()
            .map(|f| {
                let file = f["file"].as_str().unwrap_or_default().to_string();
                let lock = lock_path(&PathBuf::from(&file));
                SuiteEntry {
                    valid: f["valid"].as_bool().unwrap_or(false),
                    suite: f["suite"].as_str().map(str::to_string),
                    scenarios: f["scenarios"].as_u64(),
                    lockfile: self
                        .cfg
                        .root
                        .path()
                        .join(&lock)
                        .is_file()
                        .then(|| lock.display().to_string()),
                    file,
                }
            })
            .collect();
        Ok(Json(ListSuitesOutput { suites }))
    }

    /// Check suites without touching a cluster, as `heatcheck validate
    /// --output json`: every problem of every file with file:line:column.
    #[tool(annotations(read_only_hint = true))]
    async fn validate(
        &self,
        Parameters(input): Parameters<PathsInput>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<CliAnswer>, Failure> {
        let mut args = vec!["validate".to_string()];
        args.extend(self.existing_args(&input.paths)?);
        args.extend(["--output".into(), "json".into()]);
        let out = self.cli(args, Events::None, &ctx).await?;
        answer(&out, parse_stdout(&out)?)
    }

    /// Show what a run would do, changing nothing, as `heatcheck plan
    /// --output json`: the steps, the objects each touches (server-side dry
    /// run), the policy verdict and the RBAC it needs.
    #[tool(annotations(read_only_hint = true))]
    async fn plan(
        &self,
        Parameters(input): Parameters<PlanInput>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<CliAnswer>, Failure> {
        let mut args = vec!["plan".to_string()];
        args.extend(self.existing_args(&input.suites)?);
        args.extend(self.target(input.target, false)?);
        push_many(&mut args, "--scenario", &input.scenarios);
        push_vars(&mut args, &input.vars);
        args.extend(["--output".into(), "json".into()]);
        let out = self.cli(args, Events::None, &ctx).await?;
        answer(&out, parse_stdout(&out)?)
    }

    /// Print exactly what `heatcheck generate` would send to the LLM for a
    /// suite (system prompt, user prompt with the cluster context, response
    /// schema), Secrets redacted. Sends no request.
    #[tool(annotations(read_only_hint = true))]
    async fn prompt(
        &self,
        Parameters(input): Parameters<PromptInput>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<PromptOutput>, Failure> {
        let mut args = vec![
            "prompt".to_string(),
            path_arg(&self.existing(&input.suite)?),
        ];
        args.extend(self.target(input.target, false)?);
        let out = self.cli(args, Events::None, &ctx).await?;
        if out.code != 0 {
            return Err(cli_failure(&out));
        }
        Ok(Json(PromptOutput { text: out.stdout }))
    }

    /// Run suites, by default on a fresh embedded sandbox, as `heatcheck run
    /// --output json`; answers with the run's report. Against the real
    /// cluster only when the server was started with --kubeconfig and
    /// --allow-mutations, through the same policy guard and permission
    /// preflight as the CLI. Progress notifications follow the run's events;
    /// cancelling the request stops the run and restores, as Ctrl-C does.
    #[tool(annotations(destructive_hint = true))]
    async fn run(
        &self,
        Parameters(input): Parameters<RunInput>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<CliAnswer>, Failure> {
        let mut args = vec!["run".to_string()];
        args.extend(self.existing_args(&input.suites)?);
        args.extend(self.target(input.target, true)?);
        // A sandbox vanishes with its process: its journal has nothing to
        // recover later, so it is kept out of the user's root.
        let state = tempfile::tempdir().map_err(|e| Failure::Cli(e.to_string()))?;
        if input.target == Target::Sandbox {
            args.extend(["--state-dir".into(), path_arg(state.path())]);
        }
        push_many(&mut args, "--scenario", &input.scenarios);
        push_vars(&mut args, &input.vars);
        if input.fail_fast {
            args.push("--fail-fast".into());
        }
        if input.locked {
            args.push("--locked".into());
        }
        if let Some(n) = input.retries {
            args.extend(["--retries".into(), n.to_string()]);
        }
        if let Some(p) = &input.report_json {
            if !self.cfg.allow_write {
                return Err(Failure::Refused(
                    "report_json writes a file: the server was started without --allow-write"
                        .into(),
                ));
            }
            args.extend(["--report-json".into(), path_arg(&self.writable(p)?)]);
        }
        args.extend(["--output".into(), "json".into(), "--no-live".into()]);
        let out = self.cli(args, Events::Stdout, &ctx).await?;
        // The last event carries the report; without one the run never started.
        let report = out
            .stdout
            .lines()
            .rev()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|v| v["event"] == "runFinished")
            .map(|mut v| v["report"].take());
        match report {
            Some(r) => answer(&out, r),
            None => Err(cli_failure(&out)),
        }
    }

    /// Search a suite's namespace for weaknesses, as `heatcheck explore
    /// --output json`: the catalog of survivable networking chaos (and the
    /// suite's model, when it has one) runs on fresh in-process twins; the
    /// cluster is only read. Answers with the findings and resilience score.
    #[tool(annotations(read_only_hint = true))]
    async fn explore(
        &self,
        Parameters(input): Parameters<ExploreInput>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<CliAnswer>, Failure> {
        let mut args = vec!["explore".to_string()];
        if let Some(s) = &input.suite {
            args.push(path_arg(&self.existing(s)?));
        }
        if let Some(ns) = &input.namespace {
            args.extend(["--namespace".into(), ns.clone()]);
        }
        args.extend(self.target(input.target, false)?);
        if let Some(n) = input.max_candidates {
            args.extend(["--max-candidates".into(), n.to_string()]);
        }
        if let Some(b) = &input.budget {
            args.extend(["--budget".into(), b.clone()]);
        }
        if let Some(s) = &input.strategy {
            args.extend(["--strategy".into(), s.clone()]);
        }
        args.extend(["--output".into(), "json".into()]);
        let out = self.cli(args, Events::Stderr, &ctx).await?;
        answer(&out, parse_stdout(&out)?)
    }

    /// Fix what explore found, as `heatcheck remediate --output json`: per
    /// finding, candidate changes to the suite's own manifests (from the
    /// catalog, and the suite's model when it has one), each verified on
    /// fresh in-process twins; answers with the verified fixes as a unified
    /// diff, the rejected ones with why. The cluster is only read. Files
    /// are written only with `fix` on a server started with --allow-write.
    #[tool]
    async fn remediate(
        &self,
        Parameters(input): Parameters<RemediateInput>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<CliAnswer>, Failure> {
        let mut args = vec![
            "remediate".to_string(),
            path_arg(&self.existing(&input.suite)?),
        ];
        match (&input.findings, input.scenarios.is_empty()) {
            (Some(f), true) => args.extend(["--findings".into(), path_arg(&self.existing(f)?)]),
            (None, false) => push_many(&mut args, "--scenario", &input.scenarios),
            _ => {
                return Err(Failure::Cli(
                    "give either findings (a file explore wrote) or scenarios, not both or neither"
                        .into(),
                ))
            }
        }
        args.extend(self.target(input.target, false)?);
        if let Some(s) = &input.strategy {
            args.extend(["--strategy".into(), s.clone()]);
        }
        if let Some(b) = &input.budget {
            args.extend(["--budget".into(), b.clone()]);
        }
        if input.fix {
            if !self.cfg.allow_write {
                return Err(Failure::Refused(
                    "fix writes the suite's manifest files: the server was started without --allow-write (without fix, the fixes come back as a diff)"
                        .into(),
                ));
            }
            args.push("--fix".into());
        }
        args.extend(["--output".into(), "json".into()]);
        let out = self.cli(args, Events::None, &ctx).await?;
        answer(&out, parse_stdout(&out)?)
    }

    /// Runs under the server's root that still need attention (running,
    /// crashed, aborted, restore failed, kept), as `heatcheck runs --output
    /// json`: per run what its journal still holds to undo. Restoring is
    /// `heatcheck recover` at a terminal.
    #[tool(annotations(read_only_hint = true))]
    async fn recover_status(
        &self,
        Parameters(_input): Parameters<RunsInput>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<CliAnswer>, Failure> {
        let args = vec!["runs".to_string(), "--output".into(), "json".into()];
        let out = self.cli(args, Events::None, &ctx).await?;
        answer(&out, parse_stdout(&out)?)
    }

    /// Summarise a saved JSON report (`run --report-json`): the verdict, each
    /// case's status and message, flaky cases and what the restore left.
    #[tool(annotations(read_only_hint = true))]
    async fn report(
        &self,
        Parameters(input): Parameters<ReportInput>,
    ) -> Result<Json<report::ReportSummary>, Failure> {
        let rel = self.existing(&input.path)?;
        let text = std::fs::read_to_string(self.cfg.root.path().join(&rel))
            .map_err(|e| Failure::Cli(format!("cannot read {}: {e}", rel.display())))?;
        let r = report::parse(&rel.display().to_string(), &text).map_err(Failure::Cli)?;
        Ok(Json(report::summarise(&r)))
    }
}

impl HeatcheckServer {
    /// Each path as an argument, every one checked as [`Self::existing`].
    fn existing_args(&self, paths: &[String]) -> Result<Vec<String>, Failure> {
        paths
            .iter()
            .map(|p| self.existing(p).map(|p| path_arg(&p)))
            .collect()
    }

    fn existing(&self, p: &str) -> Result<PathBuf, Failure> {
        self.cfg.root.existing(p).map_err(Failure::Refused)
    }

    fn writable(&self, p: &str) -> Result<PathBuf, Failure> {
        self.cfg.root.writable(p).map_err(Failure::Refused)
    }

    /// The CLI's target flags, or why the server's flags refuse it.
    fn target(&self, target: Target, mutating: bool) -> Result<Vec<String>, Failure> {
        match target {
            Target::Sandbox => Ok(vec!["--sandbox".into()]),
            Target::Cluster => {
                let Some(k) = &self.cfg.kubeconfig else {
                    return Err(Failure::Refused(
                        "target cluster: the server was started without --kubeconfig (only the sandbox is available)".into(),
                    ));
                };
                if mutating && !self.cfg.allow_mutations {
                    return Err(Failure::Refused(
                        "target cluster: this tool changes the cluster and the server was started without --allow-mutations (read-only against real clusters; use target sandbox)".into(),
                    ));
                }
                let mut args = vec!["--kubeconfig".into(), path_arg(k)];
                if let Some(c) = &self.cfg.context {
                    args.extend(["--context".into(), c.clone()]);
                }
                Ok(args)
            }
        }
    }

    /// Runs the CLI for a request: cancelled with it, progress to its token.
    async fn cli(
        &self,
        args: Vec<String>,
        events: Events,
        ctx: &RequestContext<RoleServer>,
    ) -> Result<CliOutput, Failure> {
        let (tx, mut rx) = mpsc::unbounded_channel::<Value>();
        let token = ctx.meta.get_progress_token();
        let peer = ctx.peer.clone();
        let forward = tokio::spawn(async move {
            let mut n = 0u32;
            while let Some(ev) = rx.recv().await {
                let Some(token) = &token else { continue };
                n += 1;
                let _ = peer
                    .notify_progress(
                        ProgressNotificationParam::new(token.clone(), f64::from(n))
                            .with_message(progress_words(&ev)),
                    )
                    .await;
            }
        });
        let inv = Invocation {
            exe: &self.cfg.exe,
            cwd: self.cfg.root.path(),
            args,
            events,
        };
        let out = run_cli(inv, &ctx.ct, Some(tx))
            .await
            .map_err(|e| Failure::Cli(format!("cannot run {}: {e}", self.cfg.exe.display())))?;
        let _ = forward.await;
        Ok(out)
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for HeatcheckServer {
    fn get_info(&self) -> ServerConfig {
        let mode = match (&self.cfg.kubeconfig, self.cfg.allow_mutations) {
            (None, _) => "Only the embedded sandbox is available (target sandbox).".to_string(),
            (Some(_), false) => "target cluster is the server's kubeconfig, read-only: plan, prompt and explore read it; run is refused there.".to_string(),
            (Some(_), true) => "target cluster is the server's kubeconfig and run may change it, through heatcheck's policy guard and permission preflight.".to_string(),
        };
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_resources()
                .build(),
        )
            .with_server_info(Implementation::new("heatcheck", env!("CARGO_PKG_VERSION")))
            .with_instructions(format!(
                "heatcheck: chaos-as-code for Kubernetes networking. Paths are relative to the server's root {}. \
                 Start with list_suites and validate; plan shows what a run would do; run runs on a fresh sandbox by default. \
                 Resources: the suites, lockfiles and newest reports under the root. {mode}",
                self.cfg.root.path().display()
            ))
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let root = self.cfg.root.path().to_path_buf();
        let found = tokio::task::spawn_blocking(move || resources::scan(&root))
            .await
            .unwrap_or_default();
        let root = self.cfg.root.path();
        Ok(ListResourcesResult::with_all_items(
            found
                .iter()
                .map(|f| {
                    Resource::new(resources::uri(root, &f.rel), f.rel.display().to_string())
                        .with_description(f.kind.words())
                        .with_mime_type(f.kind.mime())
                        .with_size(f.size)
                })
                .collect(),
        ))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let path =
            resources::path_of(&request.uri).map_err(|e| ErrorData::resource_not_found(e, None))?;
        // The root decides, symlinks followed, as for every tool path.
        let rel = self
            .cfg
            .root
            .existing(&path.display().to_string())
            .map_err(|e| ErrorData::invalid_params(format!("{e} (refused)"), None))?;
        let abs = self.cfg.root.path().join(&rel);
        let text = std::fs::read_to_string(&abs)
            .map_err(|e| ErrorData::resource_not_found(format!("{}: {e}", rel.display()), None))?;
        let mime = if abs.extension().is_some_and(|e| e == "json") {
            "application/json"
        } else {
            "application/yaml"
        };
        Ok(ReadResourceResult::new(vec![
            ResourceContents::text(text, request.uri).with_mime_type(mime)
        ])
        .into())
    }
}

fn path_arg(p: &std::path::Path) -> String {
    p.display().to_string()
}

fn push_many(args: &mut Vec<String>, flag: &str, values: &[String]) {
    for v in values {
        args.extend([flag.to_string(), v.clone()]);
    }
}

fn push_vars(args: &mut Vec<String>, vars: &BTreeMap<String, String>) {
    for (k, v) in vars {
        args.extend(["--var".to_string(), format!("{k}={v}")]);
    }
}

/// `<suite>.lock.yaml` beside the suite (as `heatcheck_ai::lockfile::lock_path`).
fn lock_path(suite: &std::path::Path) -> PathBuf {
    let stem = suite
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("suite");
    suite.with_file_name(format!("{stem}.lock.yaml"))
}

/// The CLI's JSON on stdout, or its error text when it printed none.
fn parse_stdout(out: &CliOutput) -> Result<Value, Failure> {
    serde_json::from_str(out.stdout.trim()).map_err(|_| cli_failure(out))
}

/// The words the CLI printed for its failure, as a user would read them.
fn cli_failure(out: &CliOutput) -> Failure {
    let text = out.stderr.trim();
    let mut msg = if text.is_empty() {
        format!(
            "heatcheck exited {} ({})",
            out.code,
            report::outcome_name(out.code)
        )
    } else {
        text.to_string()
    };
    if out.cancelled {
        msg = format!("cancelled: {msg}");
    }
    Failure::Cli(msg)
}

fn answer(out: &CliOutput, result: Value) -> Result<Json<CliAnswer>, Failure> {
    Ok(Json(CliAnswer {
        exit_code: out.code,
        outcome: report::outcome_name(out.code).to_string(),
        result,
        messages: out
            .stderr
            .lines()
            .filter(|l| !l.trim().is_empty() && serde_json::from_str::<Value>(l).is_err())
            .map(str::to_string)
            .collect(),
    }))
}

/// One progress line from a CLI event, e.g. "caseStarted steady state: shop".
fn progress_words(ev: &Value) -> String {
    let name = ev["event"].as_str().unwrap_or("progress");
    let detail = ["case", "name", "id", "verdict"]
        .iter()
        .filter_map(|k| ev[*k].as_str())
        .collect::<Vec<_>>()
        .join(" ");
    if detail.is_empty() {
        name.to_string()
    } else {
        format!("{name} {detail}")
    }
}
