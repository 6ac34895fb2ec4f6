//! Reaching the cluster for a command: the embedded sandbox (`--sandbox`) or
//! a kubeconfig, then a first request so an unreachable cluster fails early.

use crate::cli::ClusterFlags;
use crate::cluster::{ClusterClient, ConnectOptions};
use crate::error::Error;

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

/// Connects (and pings). With `--sandbox`, `sandbox_metrics_port` serves
/// the data plane's metrics on that port (0: any).
pub async fn connect(
    args: &ClusterFlags,
    sandbox_metrics_port: Option<u16>,
) -> Result<Connected, Error> {
    #[cfg(feature = "sandbox")]
    let mut sandbox = None;
    let client = if args.sandbox {
        #[cfg(feature = "sandbox")]
        {
            let sb = crate::sandbox::Sandbox::start(crate::sandbox::SandboxOptions {
                metrics_port: sandbox_metrics_port,
                ..Default::default()
            })
            .await
            .map_err(|e| Error::unreachable(format!("cannot start the sandbox: {e}")))?;
            if let Some(url) = sb.metrics_url() {
                stderr_line!("sandbox metrics URL {url}");
            }
            let c = ClusterClient::from_kubeconfig_yaml(&sb.kubeconfig_yaml(), None).await;
            sandbox = Some(sb);
            c
        }
        #[cfg(not(feature = "sandbox"))]
        {
            let _ = sandbox_metrics_port;
            return Err(Error::invalid(
                "this build has no sandbox (built without the `sandbox` feature)",
            ));
        }
    } else {
        ClusterClient::connect(&ConnectOptions {
            kubeconfig: args.kubeconfig.clone(),
            context: args.context.clone(),
        })
        .await
    };
    // Whatever stops a first request is "could not reach the cluster".
    let client = client.map_err(Error::unreachable)?;
    client.ping().await.map_err(Error::unreachable)?;
    Ok(Connected {
        client,
        #[cfg(feature = "sandbox")]
        sandbox,
    })
}
