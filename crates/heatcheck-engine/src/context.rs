//! What every step and check of one suite needs: the cluster client, the
//! journal, the templater, the namespaces, and the cancellation signal.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::watch;

use super::journal::{Entry, Journal, Prior};
use heatcheck_cluster::{ClusterClient, ClusterError, Resolved};
use heatcheck_format::{GatewayResolver, Suite, Templater};
use heatcheck_guard::{EffectivePolicy, GuardError};

pub(crate) use heatcheck_cluster::RUN_LABEL;

#[derive(Clone)]
pub(crate) struct SuiteContext {
    pub(crate) client: ClusterClient,
    pub(crate) journal: Journal,
    pub(crate) templater: Arc<Templater>,
    pub(crate) suite: Arc<Suite>,
    pub(crate) run_id: String,
    pub(crate) http: reqwest::Client,
    pub(crate) cancel: watch::Receiver<bool>,
    /// What the guard enforces while steps run.
    pub(crate) policy: Arc<EffectivePolicy>,
    /// When the whole run must end (`policy.maxRunDuration`), if it must.
    pub(crate) run_deadline: Option<std::time::Instant>,
    /// Where `promql` checks query (None: no URL set; they were taken out of the suite).
    pub(crate) prometheus: Option<Arc<crate::probe::promql::Prometheus>>,
}

/// Why a step or check stopped early.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StepError {
    #[error("{0}")]
    Failed(String),
    #[error(transparent)]
    Cluster(Box<ClusterError>),
    #[error("aborted")]
    Aborted,
}

impl From<ClusterError> for StepError {
    fn from(e: ClusterError) -> Self {
        StepError::Cluster(Box::new(e))
    }
}

impl From<GuardError> for StepError {
    fn from(e: GuardError) -> Self {
        match e {
            GuardError::Refused(_) => StepError::Failed(e.to_string()),
            GuardError::Cluster(c) => StepError::Cluster(c),
        }
    }
}

impl From<String> for StepError {
    fn from(s: String) -> Self {
        StepError::Failed(s)
    }
}

impl SuiteContext {
    pub(crate) fn namespace(&self) -> &str {
        &self.suite.spec.target.namespace
    }

    pub(crate) fn interval(&self) -> Duration {
        self.suite.spec.defaults.interval.0
    }

    pub(crate) fn is_cancelled(&self) -> bool {
        *self.cancel.borrow()
    }

    /// Sleeps, returning early with Aborted on cancellation.
    pub(crate) async fn sleep(&self, d: Duration) -> Result<(), StepError> {
        let mut cancel = self.cancel.clone();
        if *cancel.borrow() {
            return Err(StepError::Aborted);
        }
        tokio::select! {
            _ = tokio::time::sleep(d) => Ok(()),
            _ = cancel.wait_for(|c| *c) => Err(StepError::Aborted),
        }
    }

    /// The namespace a step acts in, checked against target.allowNamespaces.
    pub(crate) fn step_namespace(&self, written: Option<&str>) -> Result<String, StepError> {
        let ns = written.unwrap_or(self.namespace()).to_string();
        self.check_namespace(&ns)?;
        Ok(ns)
    }

    /// The guard's namespace rule (target.allowNamespaces narrowed by the policy).
    pub(crate) fn check_namespace(&self, ns: &str) -> Result<(), StepError> {
        self.policy.check_namespace(ns).map_err(StepError::Failed)
    }

    /// Records the object's current state in the journal before a mutation.
    /// Returns the current object (None when absent).
    pub(crate) async fn record_prior(
        &self,
        scope: &str,
        r: &Resolved,
        ns: Option<&str>,
        name: &str,
    ) -> Result<Option<Value>, StepError> {
        let current = self.client.get(r, ns, name).await?;
        let prior = match &current {
            Some(o) => Prior::Present { object: o.clone() },
            None => Prior::Absent,
        };
        self.journal
            .record(Entry {
                seq: 0,
                scope: scope.to_string(),
                api_version: r.ar.api_version.clone(),
                kind: r.ar.kind.clone(),
                namespace: if r.namespaced {
                    ns.map(str::to_string)
                } else {
                    None
                },
                name: name.to_string(),
                prior,
            })
            .await
            .map_err(|e| StepError::Failed(e.to_string()))?;
        Ok(current)
    }
}

/// Resolves `{{gateway "NAME"}}` by reading the Gateway's status from the
/// cluster, waiting (up to the suite's default timeout) for an address.
pub(crate) struct ClusterGatewayResolver {
    pub(crate) client: ClusterClient,
    pub(crate) handle: tokio::runtime::Handle,
    pub(crate) timeout: Duration,
}

impl GatewayResolver for ClusterGatewayResolver {
    fn gateway_url(&self, namespace: &str, name: &str) -> Result<String, String> {
        let client = self.client.clone();
        let timeout = self.timeout;
        let (namespace, name) = (namespace.to_string(), name.to_string());
        let lookup = async move {
            let r = client
                .resolve(Some("gateway.networking.k8s.io/v1"), "Gateway")
                .await
                .map_err(|e| e.to_string())?;
            let deadline = tokio::time::Instant::now() + timeout;
            loop {
                let last = match client
                    .get(&r, Some(&namespace), &name)
                    .await
                    .map_err(|e| e.to_string())?
                {
                    None => format!("gateway {namespace}/{name} not found"),
                    Some(gw) => match heatcheck_gateway::gateway_url::gateway_base_url(&gw, None) {
                        Ok(url) => return Ok(url),
                        Err(e) => e,
                    },
                };
                if tokio::time::Instant::now() >= deadline {
                    return Err(format!("{last} (waited {timeout:?})"));
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        };
        // Templates render synchronously; the lookup is async.
        tokio::task::block_in_place(|| self.handle.block_on(lookup))
    }
}
