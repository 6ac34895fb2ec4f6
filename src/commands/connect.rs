//! Reaching the cluster for a command: the embedded sandbox (`--sandbox`) or
//! a kubeconfig, then a first request so an unreachable cluster fails early.

use std::path::PathBuf;

use crate::cluster::{ClusterClient, ConnectOptions};
use crate::exit;

/// Which cluster a command talks to.
#[derive(Clone, Debug, Default)]
pub struct ClusterArgs {
    pub sandbox: bool,
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    /// With `sandbox`: serve the data plane's metrics on this port (0: any).
    pub sandbox_metrics_port: Option<u16>,
}

/// A connected client, plus the sandbox behind it when `--sandbox`.
pub struct Connected {
    pub client: ClusterClient,
    #[cfg(feature = "sandbox")]
    sandbox: Option<crate::sandbox::Sandbox>,
}

impl Connected {
    pub async fn close(self) {
        #[cfg(feature = "sandbox")]
        if let Some(sb) = self.sandbox {
            sb.shutdown().await;
        }
    }
}

/// Connects (and pings); Err is (exit code, message).
pub async fn connect(args: &ClusterArgs) -> Result<Connected, (i32, String)> {
    #[cfg(feature = "sandbox")]
    let mut sandbox = None;
    let client = if args.sandbox {
        #[cfg(feature = "sandbox")]
        {
            let sb = crate::sandbox::Sandbox::start(crate::sandbox::SandboxOptions {
                metrics_port: args.sandbox_metrics_port,
                ..Default::default()
            })
            .await
            .map_err(|e| (exit::UNREACHABLE, format!("cannot start the sandbox: {e}")))?;
            if let Some(url) = sb.metrics_url() {
                eprintln!("sandbox metrics URL {url}");
            }
            let c = ClusterClient::from_kubeconfig_yaml(&sb.kubeconfig_yaml(), None).await;
            sandbox = Some(sb);
            c
        }
        #[cfg(not(feature = "sandbox"))]
        {
            return Err((
                exit::INVALID,
                "this build has no sandbox (built without the `sandbox` feature)".into(),
            ));
        }
    } else {
        ClusterClient::connect(&ConnectOptions {
            kubeconfig: args.kubeconfig.clone(),
            context: args.context.clone(),
        })
        .await
    };
    let client = client.map_err(|e| (exit::UNREACHABLE, e.to_string()))?;
    client
        .ping()
        .await
        .map_err(|e| (exit::UNREACHABLE, e.to_string()))?;
    Ok(Connected {
        client,
        #[cfg(feature = "sandbox")]
        sandbox,
    })
}
