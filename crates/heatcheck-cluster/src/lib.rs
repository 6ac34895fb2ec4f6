//! The kube client side: connecting like kubectl does, resolving kinds through
//! discovery, and dynamic operations on any kind (CRDs included). It never
//! knows whether it talks to the sandbox or a real API server.

#![warn(unreachable_pub)]

mod error;
pub mod journal_secret;
mod retry;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::{ApiResource, GroupVersionKind};
use kube::discovery::{ApiCapabilities, Discovery, Scope};
use serde_json::{json, Value};
use tokio::sync::Mutex;

pub use error::ClusterError;

/// The field manager for server-side apply.
pub(crate) const FIELD_MANAGER: &str = "heatcheck";

/// Label put on every object heatcheck creates, naming the run (the retry
/// layer reads it to recognise its own earlier create).
pub const RUN_LABEL: &str = "heatcheck.dev/run-id";

/// Where to find the cluster: like kubectl, KUBECONFIG (several files
/// merged), `--kubeconfig`, `--context`, else in-cluster config.
#[derive(Clone, Debug, Default)]
pub struct ConnectOptions {
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
}

/// A kind resolved through discovery.
#[derive(Clone, Debug)]
pub struct Resolved {
    pub ar: ApiResource,
    pub namespaced: bool,
    pub subresources: Vec<String>,
}

impl Resolved {
    pub fn kind(&self) -> &str {
        &self.ar.kind
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchType {
    Merge,
    Json,
    Strategic,
}

#[derive(Clone)]
pub struct ClusterClient {
    client: kube::Client,
    server: String,
    default_namespace: String,
    kinds: Arc<Mutex<HashMap<(String, String), Resolved>>>,
    discovery: Arc<Mutex<Option<Arc<Discovery>>>>,
}

impl ClusterClient {
    pub async fn connect(opts: &ConnectOptions) -> Result<Self, ClusterError> {
        let kopts = KubeConfigOptions {
            context: opts.context.clone(),
            ..Default::default()
        };
        let config = match &opts.kubeconfig {
            Some(path) => {
                let kc = Kubeconfig::read_from(path)
                    .map_err(|e| ClusterError::Config(format!("{}: {e}", path.display())))?;
                kube::Config::from_custom_kubeconfig(kc, &kopts)
                    .await
                    .map_err(|e| ClusterError::Config(format!("{}: {e}", path.display())))?
            }
            None => match kube::Config::from_kubeconfig(&kopts).await {
                Ok(c) => c,
                Err(kerr) => {
                    if opts.context.is_some() {
                        return Err(ClusterError::Config(kerr.to_string()));
                    }
                    kube::Config::incluster().map_err(|ierr| {
                        ClusterError::Config(format!(
                            "no kubeconfig ({kerr}) and not running in a cluster ({ierr}); pass --kubeconfig, set KUBECONFIG, or use --sandbox"
                        ))
                    })?
                }
            },
        };
        Self::from_config(config)
    }

    pub fn from_config(mut config: kube::Config) -> Result<Self, ClusterError> {
        let server = config
            .cluster_url
            .to_string()
            .trim_end_matches('/')
            .to_string();
        let default_namespace = config.default_namespace.clone();
        // One retry policy (retry.rs) for every request, not kube's as well.
        config.default_retry = false;
        let client = kube::client::ClientBuilder::try_from(config)
            .map_err(|e| ClusterError::Config(e.to_string()))?
            .with_layer(&retry::RetryLayer::default())
            .build();
        Ok(ClusterClient {
            client,
            server,
            default_namespace,
            kinds: Arc::default(),
            discovery: Arc::default(),
        })
    }

    pub fn server(&self) -> &str {
        &self.server
    }

    pub fn default_namespace(&self) -> &str {
        &self.default_namespace
    }

    pub fn kube(&self) -> &kube::Client {
        &self.client
    }

    /// Checks the server answers at all (GET /version), for a clear early error.
    pub async fn ping(&self) -> Result<String, ClusterError> {
        let v = self
            .client
            .apiserver_version()
            .await
            .map_err(|e| self.map_err(e, "get", "version", ""))?;
        Ok(v.git_version)
    }

    /// Finds the resource for a kind, with an optional apiVersion ("apps/v1").
    /// Discovery is re-run once on a miss: fixtures may just have installed a CRD.
    pub async fn resolve(
        &self,
        api_version: Option<&str>,
        kind: &str,
    ) -> Result<Resolved, ClusterError> {
        let cache_key = (
            api_version.unwrap_or_default().to_string(),
            kind.to_string(),
        );
        if let Some(r) = self.kinds.lock().await.get(&cache_key) {
            return Ok(r.clone());
        }
        for refresh in [false, true] {
            let disc = self.discovery(refresh).await?;
            if let Some((ar, caps)) = find_kind(&disc, api_version, kind) {
                let r = Resolved {
                    namespaced: caps.scope == Scope::Namespaced,
                    subresources: caps
                        .subresources
                        .iter()
                        .map(|(s, _)| s.plural.rsplit('/').next().unwrap_or_default().to_string())
                        .collect(),
                    ar,
                };
                self.kinds.lock().await.insert(cache_key, r.clone());
                return Ok(r);
            }
        }
        Err(ClusterError::NotServed {
            kind: match api_version {
                Some(v) => format!("{kind} ({v})"),
                None => kind.to_string(),
            },
        })
    }

    /// Every kind the cluster serves: (apiVersion, kind, namespaced),
    /// subresources left out.
    pub async fn served_kinds(&self) -> Result<Vec<(String, String, bool)>, ClusterError> {
        let disc = self.discovery(false).await?;
        let mut out = Vec::new();
        for g in disc.groups() {
            for v in g.versions() {
                for (ar, caps) in g.versioned_resources(v) {
                    if ar.plural.contains('/') {
                        continue;
                    }
                    out.push((
                        ar.api_version.clone(),
                        ar.kind.clone(),
                        caps.scope == Scope::Namespaced,
                    ));
                }
            }
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    async fn discovery(&self, refresh: bool) -> Result<Arc<Discovery>, ClusterError> {
        let mut slot = self.discovery.lock().await;
        if let (Some(d), false) = (slot.as_ref(), refresh) {
            return Ok(d.clone());
        }
        let d = Discovery::new(self.client.clone())
            .run()
            .await
            .map_err(|e| self.map_err(e, "discover", "api resources", ""))?;
        let d = Arc::new(d);
        *slot = Some(d.clone());
        Ok(d)
    }

    fn api(&self, r: &Resolved, ns: Option<&str>) -> Api<DynamicObject> {
        match (r.namespaced, ns) {
            (true, Some(ns)) => Api::namespaced_with(self.client.clone(), ns, &r.ar),
            (true, None) => {
                Api::namespaced_with(self.client.clone(), &self.default_namespace, &r.ar)
            }
            (false, _) => Api::all_with(self.client.clone(), &r.ar),
        }
    }

    /// Lists across all namespaces when `ns` is None (namespaced kinds).
    fn list_api(&self, r: &Resolved, ns: Option<&str>) -> Api<DynamicObject> {
        match (r.namespaced, ns) {
            (true, Some(ns)) => Api::namespaced_with(self.client.clone(), ns, &r.ar),
            _ => Api::all_with(self.client.clone(), &r.ar),
        }
    }

    pub async fn get(
        &self,
        r: &Resolved,
        ns: Option<&str>,
        name: &str,
    ) -> Result<Option<Value>, ClusterError> {
        match self.api(r, ns).get_opt(name).await {
            Ok(o) => Ok(o.map(to_value)),
            Err(e) => Err(self.map_err(e, "get", r.kind(), name)),
        }
    }

    /// Every object (pages of 500), optionally filtered by a label selector.
    pub async fn list(
        &self,
        r: &Resolved,
        ns: Option<&str>,
        selector: Option<&str>,
    ) -> Result<Vec<Value>, ClusterError> {
        let api = self.list_api(r, ns);
        let mut out = Vec::new();
        let mut lp = ListParams::default().limit(500);
        if let Some(s) = selector {
            lp = lp.labels(s);
        }
        loop {
            let page = api
                .list(&lp)
                .await
                .map_err(|e| self.map_err(e, "list", r.kind(), ""))?;
            out.extend(page.items.into_iter().map(to_value));
            match page.metadata.continue_ {
                Some(c) if !c.is_empty() => lp = lp.continue_token(&c),
                _ => break,
            }
        }
        Ok(out)
    }

    /// Server-side apply with the `heatcheck` field manager (forcing conflicts,
    /// as a test tool that owns its fixtures must).
    pub async fn apply(
        &self,
        r: &Resolved,
        ns: Option<&str>,
        obj: &Value,
    ) -> Result<Value, ClusterError> {
        self.apply_with(r, ns, obj, false).await
    }

    async fn apply_with(
        &self,
        r: &Resolved,
        ns: Option<&str>,
        obj: &Value,
        dry_run: bool,
    ) -> Result<Value, ClusterError> {
        let name = object_name(obj)?;
        let mut pp = PatchParams::apply(FIELD_MANAGER).force();
        pp.dry_run = dry_run;
        self.api(r, ns)
            .patch(&name, &pp, &Patch::Apply(obj))
            .await
            .map(to_value)
            .map_err(|e| self.map_err(e, "apply", r.kind(), &name))
    }

    pub async fn create(
        &self,
        r: &Resolved,
        ns: Option<&str>,
        obj: &Value,
    ) -> Result<Value, ClusterError> {
        self.create_with(r, ns, obj, false).await
    }

    async fn create_with(
        &self,
        r: &Resolved,
        ns: Option<&str>,
        obj: &Value,
        dry_run: bool,
    ) -> Result<Value, ClusterError> {
        let name = object_name(obj).unwrap_or_default();
        let dobj = to_dynamic(r, obj, &name)?;
        let pp = PostParams {
            dry_run,
            ..Default::default()
        };
        self.api(r, ns)
            .create(&pp, &dobj)
            .await
            .map(to_value)
            .map_err(|e| self.map_err(e, "create", r.kind(), &name))
    }

    pub async fn replace(
        &self,
        r: &Resolved,
        ns: Option<&str>,
        obj: &Value,
    ) -> Result<Value, ClusterError> {
        let name = object_name(obj)?;
        let dobj = to_dynamic(r, obj, &name)?;
        self.api(r, ns)
            .replace(&name, &PostParams::default(), &dobj)
            .await
            .map(to_value)
            .map_err(|e| self.map_err(e, "update", r.kind(), &name))
    }

    /// Deletes one object; `Ok(false)` when it was already gone.
    pub async fn delete(
        &self,
        r: &Resolved,
        ns: Option<&str>,
        name: &str,
    ) -> Result<bool, ClusterError> {
        self.delete_with(r, ns, name, false).await
    }

    async fn delete_with(
        &self,
        r: &Resolved,
        ns: Option<&str>,
        name: &str,
        dry_run: bool,
    ) -> Result<bool, ClusterError> {
        let mut dp = DeleteParams::background();
        dp.dry_run = dry_run;
        match self.api(r, ns).delete(name, &dp).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(false),
            Err(e) => Err(self.map_err(e, "delete", r.kind(), name)),
        }
    }

    /// Polls until the object is gone (or replaced by one with another uid).
    pub async fn wait_gone(
        &self,
        r: &Resolved,
        ns: Option<&str>,
        name: &str,
        uid: Option<&str>,
        timeout: Duration,
        every: Duration,
    ) -> Result<(), ClusterError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match self.get(r, ns, name).await? {
                None => return Ok(()),
                Some(o) => {
                    let cur = o.pointer("/metadata/uid").and_then(Value::as_str);
                    if uid.is_some() && cur != uid {
                        return Ok(());
                    }
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ClusterError::Timeout {
                    what: format!("{} {name} to be deleted", r.kind()),
                    after: timeout,
                });
            }
            tokio::time::sleep(every).await;
        }
    }

    pub async fn patch(
        &self,
        r: &Resolved,
        ns: Option<&str>,
        name: &str,
        kind: PatchType,
        body: &Value,
    ) -> Result<Value, ClusterError> {
        self.patch_with(r, ns, name, kind, body, false).await
    }

    async fn patch_with(
        &self,
        r: &Resolved,
        ns: Option<&str>,
        name: &str,
        kind: PatchType,
        body: &Value,
        dry_run: bool,
    ) -> Result<Value, ClusterError> {
        let pp = PatchParams {
            dry_run,
            ..Default::default()
        };
        let api = self.api(r, ns);
        let res = match kind {
            PatchType::Merge => api.patch(name, &pp, &Patch::Merge(body)).await,
            PatchType::Strategic => api.patch(name, &pp, &Patch::Strategic(body)).await,
            PatchType::Json => {
                let p: json_patch::Patch = serde_json::from_value(body.clone()).map_err(|e| {
                    ClusterError::Invalid(format!("JSON patch for {} {name}: {e}", r.kind()))
                })?;
                api.patch(name, &pp, &Patch::<Value>::Json(p)).await
            }
        };
        res.map(to_value)
            .map_err(|e| self.map_err(e, "patch", r.kind(), name))
    }

    /// Sets replicas through the scale subresource (as `kubectl scale` does).
    pub async fn scale(
        &self,
        r: &Resolved,
        ns: Option<&str>,
        name: &str,
        replicas: u32,
    ) -> Result<(), ClusterError> {
        self.scale_with(r, ns, name, replicas, false).await
    }

    async fn scale_with(
        &self,
        r: &Resolved,
        ns: Option<&str>,
        name: &str,
        replicas: u32,
        dry_run: bool,
    ) -> Result<(), ClusterError> {
        let api = self.api(r, ns);
        let body = json!({"spec": {"replicas": replicas}});
        let pp = PatchParams {
            dry_run,
            ..Default::default()
        };
        api.patch_scale(name, &pp, &Patch::Merge(&body))
            .await
            .map(|_| ())
            .map_err(|e| self.map_err(e, "scale", r.kind(), name))
    }

    // Server-side dry runs (`dryRun=All`): the server validates and admits
    // the request and answers as if it wrote, and persists nothing.

    pub async fn apply_dry_run(
        &self,
        r: &Resolved,
        ns: Option<&str>,
        obj: &Value,
    ) -> Result<Value, ClusterError> {
        self.apply_with(r, ns, obj, true).await
    }

    pub async fn create_dry_run(
        &self,
        r: &Resolved,
        ns: Option<&str>,
        obj: &Value,
    ) -> Result<Value, ClusterError> {
        self.create_with(r, ns, obj, true).await
    }

    /// `Ok(false)` when the object does not exist.
    pub async fn delete_dry_run(
        &self,
        r: &Resolved,
        ns: Option<&str>,
        name: &str,
    ) -> Result<bool, ClusterError> {
        self.delete_with(r, ns, name, true).await
    }

    pub async fn patch_dry_run(
        &self,
        r: &Resolved,
        ns: Option<&str>,
        name: &str,
        kind: PatchType,
        body: &Value,
    ) -> Result<Value, ClusterError> {
        self.patch_with(r, ns, name, kind, body, true).await
    }

    pub async fn scale_dry_run(
        &self,
        r: &Resolved,
        ns: Option<&str>,
        name: &str,
        replicas: u32,
    ) -> Result<(), ClusterError> {
        self.scale_with(r, ns, name, replicas, true).await
    }

    /// Maps a kube error to what an SRE needs to read.
    pub(crate) fn map_err(
        &self,
        e: kube::Error,
        verb: &str,
        kind: &str,
        name: &str,
    ) -> ClusterError {
        match e {
            kube::Error::Api(s) => match s.code {
                403 => ClusterError::Forbidden {
                    verb: verb.to_string(),
                    resource: kind.to_string(),
                    namespace: None,
                    message: s.message.clone(),
                },
                404 if !name.is_empty()
                    && (verb == "get" || s.message.contains(&format!("\"{name}\""))) =>
                {
                    ClusterError::NotFound {
                        kind: kind.to_string(),
                        name: name.to_string(),
                        namespace: None,
                    }
                }
                _ => ClusterError::Api {
                    verb: verb.to_string(),
                    kind: kind.to_string(),
                    name: name.to_string(),
                    code: s.code,
                    reason: s.reason.clone(),
                    message: s.message.clone(),
                },
            },
            kube::Error::HyperError(_) | kube::Error::Service(_) => ClusterError::Unreachable {
                server: self.server.clone(),
                reason: root_cause(&e),
            },
            other => ClusterError::Api {
                verb: verb.to_string(),
                kind: kind.to_string(),
                name: name.to_string(),
                code: 0,
                reason: "ClientError".into(),
                message: root_cause(&other),
            },
        }
    }
}

fn root_cause(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let m = s.to_string();
        if !msg.contains(&m) {
            msg = format!("{msg}: {m}");
        }
        cur = s.source();
    }
    msg
}

fn find_kind(
    disc: &Discovery,
    api_version: Option<&str>,
    kind: &str,
) -> Option<(ApiResource, ApiCapabilities)> {
    if let Some(av) = api_version {
        let (group, version) = av.split_once('/').unwrap_or(("", av));
        return disc.resolve_gvk(&GroupVersionKind::gvk(group, version, kind));
    }
    // Without apiVersion: the preferred version of the first group serving the kind
    // (core first, like kubectl's preference order).
    let mut groups = disc.groups().collect::<Vec<_>>();
    groups.sort_by_key(|g| !g.name().is_empty());
    for g in groups {
        if let Some(found) = g.recommended_kind(kind) {
            return Some(found);
        }
    }
    None
}

fn to_dynamic(r: &Resolved, obj: &Value, name: &str) -> Result<DynamicObject, ClusterError> {
    serde_json::from_value(obj.clone())
        .map_err(|e| ClusterError::Invalid(format!("{} {name}: {e}", r.kind())))
}

pub(crate) fn to_value(o: DynamicObject) -> Value {
    serde_json::to_value(o).unwrap_or(Value::Null)
}

fn object_name(obj: &Value) -> Result<String, ClusterError> {
    obj.pointer("/metadata/name")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .ok_or_else(|| ClusterError::Invalid("object has no metadata.name".into()))
}

impl ClusterClient {
    /// A client from kubeconfig text (the sandbox writes one).
    pub async fn from_kubeconfig_yaml(
        text: &str,
        context: Option<String>,
    ) -> Result<Self, ClusterError> {
        let kc = Kubeconfig::from_yaml(text).map_err(|e| ClusterError::Config(e.to_string()))?;
        let opts = KubeConfigOptions {
            context,
            ..Default::default()
        };
        let config = kube::Config::from_custom_kubeconfig(kc, &opts)
            .await
            .map_err(|e| ClusterError::Config(e.to_string()))?;
        Self::from_config(config)
    }
}
