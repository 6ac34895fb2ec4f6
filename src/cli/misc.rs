use std::path::PathBuf;

use clap::Args;

use super::Output;

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// JSON reports written by `heatcheck run --report-json`.
    #[arg(required = true)]
    pub reports: Vec<PathBuf>,
    /// Write the HTML here.
    #[arg(long, value_name = "FILE", required = true)]
    pub html: PathBuf,
    /// `heatcheck remediate --output json` reports (repeatable): each
    /// scenario's verified fix is shown beside it.
    #[arg(long, value_name = "FILE.json")]
    pub remediation: Vec<PathBuf>,
}

#[derive(Args, Debug)]
pub struct ValidateArgs {
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    #[arg(long, value_enum, default_value = "human")]
    pub output: Output,
}

#[derive(Args, Debug)]
pub struct ListArgs {
    pub suite: PathBuf,
}

#[derive(Args, Debug)]
pub struct SchemaArgs {
    #[arg(long)]
    pub scenario: bool,
}

#[derive(Args, Debug)]
pub struct CompletionsArgs {
    pub shell: clap_complete::Shell,
}

#[cfg(feature = "sandbox")]
#[derive(Args, Debug)]
pub struct SandboxArgs {
    /// Write a kubeconfig for the sandbox here (context heatcheck-sandbox).
    #[arg(long)]
    pub kubeconfig: PathBuf,
    /// Manifests (files or directories) to apply at start.
    #[arg(long = "manifests", value_name = "PATH")]
    pub manifests: Vec<PathBuf>,
    /// API server port (0: any free port).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Add a kubeconfig context and user NAME whose token has no permissions until RBAC grants some (repeatable).
    #[arg(long = "user", value_name = "NAME")]
    pub users: Vec<String>,
    /// Port of the data plane's Prometheus metrics on 127.0.0.1 (0: any free port).
    #[arg(long, default_value_t = 0)]
    pub metrics_port: u16,
    /// Append an audit event (audit.k8s.io/v1, level Metadata) per write
    /// request to this file, as kube-apiserver's --audit-log-path.
    #[arg(long, value_name = "FILE")]
    pub audit_log: Option<PathBuf>,
    /// For tests: fail every Nth API request with STATUS, e.g. 503:3 or 429:4:/namespaces/.
    #[arg(long, hide = true, value_name = "STATUS:EVERY_NTH[:PATH]", value_parser = crate::commands::sandbox::parse_fault_spec)]
    pub inject_api_faults: Option<crate::sandbox::server::FaultSpec>,
}
