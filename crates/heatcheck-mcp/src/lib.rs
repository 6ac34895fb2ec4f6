//! `heatcheck mcp`: a Model Context Protocol server (the official Rust SDK,
//! `rmcp`) whose tools are heatcheck's commands. It runs nothing itself:
//! each tool runs the heatcheck binary with `--output json` (`child.rs`), so
//! an assistant gets the CLI's checks, guard, preflight and words; this
//! crate only bounds paths to the root and the target to the server's flags.

#![warn(unreachable_pub)]

mod child;
mod paths;
mod report;
mod resources;
mod server;

use std::net::SocketAddr;
use std::path::PathBuf;

use rmcp::ServiceExt;

pub use paths::Root;
use server::HeatcheckServer;

/// What the server was started with.
#[derive(Clone, Debug)]
pub struct Config {
    /// The heatcheck binary the tools run (the server's own executable).
    pub exe: PathBuf,
    pub root: Root,
    /// Absolute; `target: cluster` is refused without it.
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    /// `run` may change the kubeconfig's cluster.
    pub allow_mutations: bool,
    /// Tools may write files under the root (e.g. `run`'s report_json).
    pub allow_write: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("MCP server: {0}")]
    Io(#[from] std::io::Error),
    #[error("MCP session did not start: {0}")]
    Init(String),
}

/// Serves one client on stdin/stdout until it disconnects.
pub async fn serve_stdio(cfg: Config) -> Result<(), ServeError> {
    let service = HeatcheckServer::new(cfg)
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|e| ServeError::Init(e.to_string()))?;
    service
        .waiting()
        .await
        .map_err(|e| ServeError::Init(e.to_string()))?;
    Ok(())
}

/// Serves the streamable HTTP transport at `http://ADDR/mcp` until Ctrl-C.
/// `on_bound` gets the bound address (port 0 picks one).
pub async fn serve_http(
    cfg: Config,
    addr: SocketAddr,
    on_bound: impl FnOnce(SocketAddr),
) -> Result<(), ServeError> {
    use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
    use rmcp::transport::streamable_http_server::{
        StreamableHttpServerConfig, StreamableHttpService,
    };
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let ct = tokio_util::sync::CancellationToken::new();
    let mut config = StreamableHttpServerConfig::default();
    config.cancellation_token = ct.child_token();
    // Loopback names are allowed by default (DNS rebinding protection);
    // the address the user bound is allowed too.
    config.allowed_hosts.push(bound.ip().to_string());
    config.allowed_hosts.push(bound.to_string());
    let service = StreamableHttpService::new(
        move || Ok(HeatcheckServer::new(cfg.clone())),
        LocalSessionManager::default().into(),
        config,
    );
    let router = axum::Router::new().nest_service("/mcp", service);
    on_bound(bound);
    axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            let _ = tokio::signal::ctrl_c().await;
            ct.cancel();
        })
        .await?;
    Ok(())
}
