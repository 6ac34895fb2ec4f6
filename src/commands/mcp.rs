//! `heatcheck mcp`: the flags checked (root, kubeconfig), then the MCP
//! server of `heatcheck-mcp` on stdio or streamable HTTP.

use heatcheck_mcp::{Config, Root};

use super::runtime;
use crate::cli::McpArgs;
use crate::error::Error;

pub fn mcp(args: McpArgs) -> Result<(), Error> {
    let root = Root::new(&args.root).map_err(Error::invalid)?;
    // The tools run in the root: a relative kubeconfig is taken from here.
    let kubeconfig = args
        .kubeconfig
        .as_ref()
        .map(|k| {
            k.canonicalize()
                .map_err(|e| Error::invalid(format!("--kubeconfig {}: {e}", k.display())))
        })
        .transpose()?;
    let exe = std::env::current_exe()
        .map_err(|e| Error::invalid(format!("cannot find the heatcheck binary: {e}")))?;
    let cfg = Config {
        exe,
        root,
        kubeconfig,
        context: args.context,
        allow_mutations: args.allow_mutations,
        allow_write: args.allow_write,
    };
    runtime().block_on(async move {
        match args.http {
            Some(addr) => {
                heatcheck_mcp::serve_http(cfg, addr, |bound| {
                    stderr_line!("heatcheck mcp: serving http://{bound}/mcp (Ctrl-C stops)")
                })
                .await
            }
            None => heatcheck_mcp::serve_stdio(cfg).await,
        }
        .map_err(Error::invalid)
    })
}
