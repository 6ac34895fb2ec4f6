//! The Gateway API project's HTTPRoute conformance cases, run against `heatcheck sandbox`.
//!
//! Data-driven: tests/conformance/ holds the upstream manifests verbatim
//! (conformance/base/manifests.yaml and conformance/tests/httproute-*.yaml) and, per test, a
//! `*.cases.yaml` transcribed from the Go expectation tables (`http.ExpectedResponse`, same
//! field names). This runner does what the upstream suite's helpers do: apply the base and
//! the test's manifests, wait until the Gateway and routes are Accepted (and ResolvedRefs
//! where the Go test checks it), check route conditions, then send each request to the
//! gateway address until the answer matches three times in a row, and compare it like
//! `CompareRoundTrip` (status, the request the echo backend saw, response headers,
//! redirects, and for mirrors the echo log line of the mirror pod).
//! Each test gets its own sandbox process, so tests run in parallel and leave nothing behind.

use crate::common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use heatcheck::cluster::{ClusterClient, ConnectOptions, PatchType};
use serde::Deserialize;
use serde_json::{json, Value};

const CLASS: &str = "heatcheck";
/// How long a case may take to become consistently true (upstream: MaxTimeToConsistency 30s).
const CONSISTENCY: Duration = Duration::from_secs(45);
const IN_A_ROW: usize = 3;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Spec {
    name: String,
    /// Where the cases come from (upstream path and commit).
    upstream: String,
    manifests: Vec<String>,
    gateway: GatewayRef,
    /// Routes in the gateway's namespace that must be Accepted ("route@gateway" for another
    /// gateway of that namespace).
    routes: Vec<String>,
    /// HTTPRouteMustHaveResolvedRefsConditionsTrue for every route.
    #[serde(default, rename = "resolvedRefs")]
    resolved_refs: bool,
    #[serde(default)]
    conditions: Vec<ConditionExpect>,
    #[serde(default)]
    setup: Vec<Setup>,
    /// The TLS Secret the upstream suite creates before the run (MustCreateSelfSignedCertSecret).
    #[serde(default, rename = "tlsSecret")]
    tls_secret: Option<TlsSecret>,
    cases: Vec<Expected>,
    /// Objects deleted after `cases`, then `thenCases` checked (as the Go test does).
    #[serde(default, rename = "thenDelete")]
    then_delete: Vec<ObjectRef>,
    #[serde(default, rename = "thenCases")]
    then_cases: Vec<Expected>,
    /// Route conditions after `thenDelete` (beyond upstream where the cases file says so).
    #[serde(default, rename = "thenConditions")]
    then_conditions: Vec<ConditionExpect>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct GatewayRef {
    namespace: String,
    name: String,
    /// Listener whose port the requests go to (defaults to the first HTTP listener).
    #[serde(default)]
    listener: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConditionExpect {
    route: String,
    r#type: String,
    status: String,
    reason: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsSecret {
    namespace: String,
    name: String,
    hosts: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
enum Setup {
    /// httproute-service-types.go `setupEndpointSlices`: point the named EndpointSlices at
    /// the pods of a Deployment.
    EndpointSlicesFromPods {
        namespace: String,
        deployment: String,
        slices: Vec<String>,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ObjectRef {
    #[serde(rename = "apiVersion")]
    api_version: String,
    kind: String,
    namespace: String,
    name: String,
}

#[derive(Debug, Deserialize, Default, Clone)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Request {
    #[serde(default)]
    host: String,
    #[serde(default)]
    method: String,
    #[serde(default)]
    path: String,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    unfollow_redirect: bool,
}

#[derive(Debug, Deserialize, Default, Clone)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ExpectedRequest {
    #[serde(default)]
    host: String,
    #[serde(default)]
    method: String,
    #[serde(default)]
    path: String,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    absent_headers: Vec<String>,
}

#[derive(Debug, Deserialize, Default, Clone)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Response {
    #[serde(default)]
    status_code: u16,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    absent_headers: Vec<String>,
}

#[derive(Debug, Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
struct RedirectRequest {
    #[serde(default)]
    scheme: String,
    #[serde(default)]
    host: String,
    #[serde(default)]
    port: String,
    #[serde(default)]
    path: String,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct Mirror {
    namespace: String,
    name: String,
}

/// `http.ExpectedResponse`, same field names.
#[derive(Debug, Deserialize, Default, Clone)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Expected {
    #[serde(default)]
    request: Request,
    #[serde(default)]
    expected_request: Option<ExpectedRequest>,
    #[serde(default)]
    backend_set_response_headers: BTreeMap<String, String>,
    #[serde(default)]
    response: Response,
    #[serde(default)]
    redirect_request: Option<RedirectRequest>,
    #[serde(default)]
    backend: String,
    #[serde(default)]
    namespace: String,
    /// Mirror pods (by Service name prefix) whose echo log must show the request.
    #[serde(default)]
    mirrored_to: Vec<Mirror>,
    /// Send to this listener's port instead of the spec's (ListenerPortMatching).
    #[serde(default)]
    listener: Option<String>,
    /// Send to another gateway (tests that use several, e.g. RedirectPortAndScheme).
    #[serde(default)]
    gateway: Option<GatewayRef>,
    /// After the case holds, send it this many more times (loops in the Go test).
    #[serde(default)]
    repeat: usize,
    /// The backend must be the one this request header (set by a backendRef filter) names.
    #[serde(default)]
    backend_from_request_header: Option<String>,
}

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance")
}

/// `heatcheck sandbox` with the echo log on stderr (the mirror checks read it).
struct Sandbox {
    child: Child,
    kubeconfig: PathBuf,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Sandbox {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        let log = dir.path().join("sandbox.log");
        let child = Command::new(common::bin())
            .args([
                "sandbox",
                "--log",
                "warn,heatcheck::sandbox::echo=info",
                "--kubeconfig",
            ])
            .arg(&kubeconfig)
            .env("NO_COLOR", "1")
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start heatcheck sandbox");
        let deadline = Instant::now() + Duration::from_secs(60);
        while !std::fs::read_to_string(&kubeconfig)
            .unwrap_or_default()
            .contains("current-context")
        {
            assert!(Instant::now() < deadline, "sandbox did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Sandbox {
            child,
            kubeconfig,
            log,
            _dir: dir,
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Runner {
    client: ClusterClient,
    sandbox: Sandbox,
    http: reqwest::Client,
    ca_pem: Option<String>,
}

fn objects(file: &str) -> Vec<Value> {
    let text =
        std::fs::read_to_string(data_dir().join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
    let text = text.replace("{GATEWAY_CLASS_NAME}", CLASS);
    heatcheck::suite::manifest::parse_documents(&text, file).unwrap()
}

fn route_condition(route: &Value, gateway: &str, t: &str) -> Option<(String, String)> {
    route
        .pointer("/status/parents")?
        .as_array()?
        .iter()
        .filter(|p| p.pointer("/parentRef/name").and_then(Value::as_str) == Some(gateway))
        .flat_map(|p| {
            p.get("conditions")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        })
        .find(|c| c["type"] == t)
        .map(|c| {
            (
                c["status"].as_str().unwrap_or_default().to_string(),
                c["reason"].as_str().unwrap_or_default().to_string(),
            )
        })
}

impl Runner {
    async fn new() -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let sandbox = Sandbox::start();
        let client = ClusterClient::connect(&ConnectOptions {
            kubeconfig: Some(sandbox.kubeconfig.clone()),
            context: None,
        })
        .await
        .expect("connect to the sandbox");
        Runner {
            client,
            sandbox,
            http: reqwest::Client::builder()
                .no_proxy()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap(),
            ca_pem: None,
        }
    }

    async fn apply(&self, obj: &Value) {
        let api_version = obj["apiVersion"].as_str().unwrap();
        let kind = obj["kind"].as_str().unwrap();
        let r = self
            .client
            .resolve(Some(api_version), kind)
            .await
            .unwrap_or_else(|e| panic!("{kind}: {e}"));
        let ns = obj.pointer("/metadata/namespace").and_then(Value::as_str);
        self.client
            .apply(&r, ns, obj)
            .await
            .unwrap_or_else(|e| panic!("apply {kind}: {e}"));
    }

    async fn get(&self, api_version: &str, kind: &str, ns: &str, name: &str) -> Option<Value> {
        let r = self.client.resolve(Some(api_version), kind).await.unwrap();
        let ns = (!ns.is_empty()).then_some(ns);
        self.client.get(&r, ns, name).await.unwrap()
    }

    /// Like the upstream suite's MustCreateSelfSignedCertSecret, but with a CA the client trusts.
    async fn tls_secret(&mut self, s: &TlsSecret) {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let ca = rcgen::Issuer::new(ca_params, ca_key);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(s.hosts.clone())
            .unwrap()
            .signed_by(&key, &ca)
            .unwrap();
        let b64 = |t: String| base64::engine::general_purpose::STANDARD.encode(t);
        self.apply(
            &json!({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
            "metadata": {"name": s.name, "namespace": s.namespace},
            "data": {"tls.crt": b64(cert.pem()), "tls.key": b64(key.serialize_pem())}}),
        )
        .await;
        self.ca_pem = Some(ca_cert.pem());
    }

    async fn setup(&self, s: &Setup) {
        match s {
            Setup::EndpointSlicesFromPods {
                namespace,
                deployment,
                slices,
            } => {
                let dep = self
                    .get("apps/v1", "Deployment", namespace, deployment)
                    .await
                    .unwrap();
                let labels = dep
                    .pointer("/spec/selector/matchLabels")
                    .and_then(Value::as_object)
                    .unwrap();
                let selector: Vec<String> = labels
                    .iter()
                    .map(|(k, v)| format!("{k}={}", v.as_str().unwrap()))
                    .collect();
                let pods_r = self.client.resolve(Some("v1"), "Pod").await.unwrap();
                let pods = self
                    .client
                    .list(&pods_r, Some(namespace), Some(&selector.join(",")))
                    .await
                    .unwrap();
                assert!(!pods.is_empty(), "{deployment} has no pods");
                let slice_r = self
                    .client
                    .resolve(Some("discovery.k8s.io/v1"), "EndpointSlice")
                    .await
                    .unwrap();
                for prefix in slices {
                    for (suffix, v4) in [("ip4", true), ("ip6", false)] {
                        let endpoints: Vec<Value> = pods
                            .iter()
                            .flat_map(|p| {
                                p.pointer("/status/podIPs").and_then(Value::as_array).cloned().unwrap_or_default().into_iter().map(move |ip| (p.clone(), ip))
                            })
                            .filter(|(_, ip)| ip["ip"].as_str().is_some_and(|a| a.contains(':') != v4))
                            .map(|(p, ip)| json!({"addresses": [ip["ip"]],
                                "conditions": {"ready": true, "serving": true, "terminating": false},
                                "nodeName": p.pointer("/spec/nodeName"),
                                "targetRef": {"kind": "Pod", "name": p["metadata"]["name"], "namespace": p["metadata"]["namespace"], "uid": p["metadata"]["uid"]}}))
                            .collect();
                        if endpoints.is_empty() {
                            continue;
                        }
                        let name = format!("{prefix}-{suffix}");
                        self.client
                            .patch(
                                &slice_r,
                                Some(namespace),
                                &name,
                                PatchType::Merge,
                                &json!({"endpoints": endpoints}),
                            )
                            .await
                            .unwrap_or_else(|e| panic!("patch EndpointSlice {name}: {e}"));
                    }
                }
            }
        }
    }

    async fn wait<T, F, Fut>(&self, what: &str, mut f: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, String>>,
    {
        let deadline = Instant::now() + CONSISTENCY;
        loop {
            match f().await {
                Ok(v) => return v,
                Err(e) if Instant::now() > deadline => panic!("{what}: {e}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// What GatewayAndHTTPRoutesMustBeAccepted and NamespacesMustBeReady check of a Gateway:
    /// Accepted and Programmed at its latest generation, an address, and every listener
    /// ResolvedRefs, Accepted and Programmed.
    async fn gateway_ready(&self, gw: &GatewayRef) {
        self.wait(&format!("gateway {} programmed", gw.name), || async {
            let g = self
                .get(
                    "gateway.networking.k8s.io/v1",
                    "Gateway",
                    &gw.namespace,
                    &gw.name,
                )
                .await
                .ok_or("gateway missing")?;
            let generation = g.pointer("/metadata/generation").and_then(Value::as_i64);
            let true_at_generation = |conds: Option<&Value>, t: &str, latest: bool| {
                let c = conds
                    .and_then(Value::as_array)
                    .and_then(|cs| cs.iter().find(|c| c["type"] == t))
                    .ok_or(format!("no {t} condition"))?;
                if c["status"] != "True" {
                    return Err(format!("{t}: {}", c["status"]));
                }
                if latest && c["observedGeneration"].as_i64() != generation {
                    return Err(format!("{t} is for generation {}", c["observedGeneration"]));
                }
                Ok(())
            };
            let conds = g.pointer("/status/conditions");
            true_at_generation(conds, "Accepted", true)?;
            true_at_generation(conds, "Programmed", true)?;
            if g.pointer("/status/addresses/0/value")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                return Err("no address".into());
            }
            let listeners = g
                .pointer("/status/listeners")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let declared = g
                .pointer("/spec/listeners")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            if listeners.len() != declared {
                return Err(format!(
                    "{} listener statuses for {declared} listeners",
                    listeners.len()
                ));
            }
            for l in &listeners {
                for t in ["ResolvedRefs", "Accepted", "Programmed"] {
                    true_at_generation(l.get("conditions"), t, false)
                        .map_err(|e| format!("listener {}: {e}", l["name"]))?;
                }
            }
            Ok(())
        })
        .await;
    }

    /// GatewayAndHTTPRoutesMustBeAccepted + the route condition checks.
    async fn accepted(&self, spec: &Spec) {
        let mut gateways: Vec<&str> = vec![&spec.gateway.name];
        for r in &spec.routes {
            if let Some((_, g)) = r.split_once('@') {
                gateways.push(g);
            }
        }
        gateways.extend(
            spec.cases
                .iter()
                .chain(&spec.then_cases)
                .filter_map(|c| c.gateway.as_ref())
                .map(|g| g.name.as_str()),
        );
        gateways.sort_unstable();
        gateways.dedup();
        for name in gateways {
            self.gateway_ready(&GatewayRef {
                namespace: spec.gateway.namespace.clone(),
                name: name.to_string(),
                listener: None,
            })
            .await;
        }
        for route in &spec.routes {
            let (route, gw_name) = route.split_once('@').unwrap_or((route, &spec.gateway.name));
            let gw = &GatewayRef {
                namespace: spec.gateway.namespace.clone(),
                name: gw_name.to_string(),
                listener: None,
            };
            self.wait(
                &format!("route {route} accepted by {}", gw.name),
                || async {
                    let r = self
                        .get(
                            "gateway.networking.k8s.io/v1",
                            "HTTPRoute",
                            &gw.namespace,
                            route,
                        )
                        .await
                        .ok_or("route missing")?;
                    let want = |t: &str| match route_condition(&r, &gw.name, t) {
                        Some((s, _)) if s == "True" => Ok(()),
                        other => Err(format!("{t}: {other:?}")),
                    };
                    // RouteMustHaveParents: a parent status names its controller (upstream compares
                    // with the GatewayClass's; the sandbox serves every class without one), and
                    // Accepted has reason Accepted.
                    let ours = r
                        .pointer("/status/parents")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .filter(|p| {
                            p.pointer("/parentRef/name").and_then(Value::as_str) == Some(&gw.name)
                        })
                        .all(|p| p["controllerName"].as_str().is_some_and(|c| !c.is_empty()));
                    if !ours {
                        return Err("a parent status has no controllerName".to_string());
                    }
                    match route_condition(&r, &gw.name, "Accepted") {
                        Some((s, reason)) if s == "True" && reason == "Accepted" => {}
                        other => return Err(format!("Accepted: {other:?}")),
                    }
                    if spec.resolved_refs {
                        want("ResolvedRefs")?;
                    }
                    Ok(())
                },
            )
            .await;
        }
        self.conditions(&spec.gateway, &spec.conditions).await;
    }

    /// Route conditions (HTTPRouteMustHaveCondition).
    async fn conditions(&self, gw: &GatewayRef, conditions: &[ConditionExpect]) {
        for c in conditions {
            self.wait(
                &format!("route {} condition {}", c.route, c.r#type),
                || async {
                    let r = self
                        .get(
                            "gateway.networking.k8s.io/v1",
                            "HTTPRoute",
                            &gw.namespace,
                            &c.route,
                        )
                        .await
                        .ok_or("route missing")?;
                    match route_condition(&r, &gw.name, &c.r#type) {
                        Some((s, reason)) if s == c.status && reason == c.reason => Ok(()),
                        other => Err(format!("got {other:?}, want ({}, {})", c.status, c.reason)),
                    }
                },
            )
            .await;
        }
    }

    /// The gateway's address for a listener: (scheme, "ip:port"), as `{{gateway}}` reads it.
    async fn address(&self, gw: &GatewayRef, listener: Option<&str>) -> (String, String) {
        let listener = listener.or(gw.listener.as_deref());
        self.wait(&format!("address of gateway {}", gw.name), || async {
            let g = self
                .get(
                    "gateway.networking.k8s.io/v1",
                    "Gateway",
                    &gw.namespace,
                    &gw.name,
                )
                .await
                .ok_or("gateway missing")?;
            let url = heatcheck::gateway_url::gateway_base_url(&g, listener)?;
            let (scheme, authority) = url.split_once("://").ok_or("no scheme")?;
            let addr = match (authority.contains(':'), scheme) {
                (true, _) => authority.to_string(),
                (false, "https") => format!("{authority}:443"),
                (false, _) => format!("{authority}:80"),
            };
            Ok((scheme.to_string(), addr))
        })
        .await
    }

    async fn run_case(&self, spec: &Spec, i: usize, case: &Expected) -> Result<(), String> {
        let gw = case.gateway.as_ref().unwrap_or(&spec.gateway);
        let (scheme, addr) = self.address(gw, case.listener.as_deref()).await;
        let mut ok = 0;
        let deadline = Instant::now() + CONSISTENCY;
        let mut last = String::new();
        while ok < IN_A_ROW {
            match self.round_trip(&scheme, &addr, case).await {
                Ok(()) => ok += 1,
                Err(e) => {
                    ok = 0;
                    last = e;
                }
            }
            if ok < IN_A_ROW {
                if Instant::now() > deadline {
                    return Err(format!(
                        "case {i} ({} {}): {last}",
                        case.request.host, case.request.path
                    ));
                }
                tokio::time::sleep(Duration::from_millis(if ok > 0 { 20 } else { 200 })).await;
            }
        }
        for n in 0..case.repeat {
            self.round_trip(&scheme, &addr, case)
                .await
                .map_err(|e| format!("case {i}, repetition {n}: {e}"))?;
        }
        for m in &case.mirrored_to {
            let path = &case.request.path;
            self.wait(
                &format!("mirror {}/{} saw {path}", m.namespace, m.name),
                || async {
                    let log = std::fs::read_to_string(&self.sandbox.log).unwrap_or_default();
                    let needle = format!("Echoing back request made to {path} to client");
                    log.lines()
                        .any(|l| {
                            l.contains(&format!("{}/{}-", m.namespace, m.name))
                                && l.contains(&needle)
                        })
                        .then_some(())
                        .ok_or_else(|| "no echo log line".to_string())
                },
            )
            .await;
        }
        Ok(())
    }

    /// One request and `CompareRoundTrip`.
    async fn round_trip(&self, scheme: &str, addr: &str, case: &Expected) -> Result<(), String> {
        let req = &case.request;
        let method = if req.method.is_empty() {
            "GET"
        } else {
            &req.method
        };
        let sock: SocketAddr = addr.parse().map_err(|e| format!("{addr}: {e}"))?;
        let (client, url) = if scheme == "https" {
            // SNI and Host are the request's host; the socket is the gateway's.
            let host = if req.host.is_empty() {
                "example.org"
            } else {
                &req.host
            };
            let ca =
                reqwest::Certificate::from_pem(self.ca_pem.as_deref().ok_or("no CA")?.as_bytes())
                    .unwrap();
            let c = reqwest::Client::builder()
                .no_proxy()
                .redirect(reqwest::redirect::Policy::none())
                .add_root_certificate(ca)
                .resolve(host, sock)
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap();
            (c, format!("https://{host}:{}{}", sock.port(), req.path))
        } else {
            (self.http.clone(), format!("http://{addr}{}", req.path))
        };
        let mut rb = client.request(method.parse().unwrap(), &url);
        if !req.host.is_empty() && scheme == "http" {
            rb = rb.header("host", &req.host);
        }
        for (k, v) in &req.headers {
            rb = rb.header(k.as_str(), v.as_str());
        }
        let set: Vec<String> = case
            .backend_set_response_headers
            .iter()
            .map(|(k, v)| format!("{k}:{v}"))
            .collect();
        rb = rb.header("X-Echo-Set-Header", set.join(","));
        let resp = rb
            .send()
            .await
            .map_err(|e| format!("request failed: {e:?}"))?;
        let status = resp.status().as_u16();
        let want_status = if case.response.status_code == 0 {
            200
        } else {
            case.response.status_code
        };
        if status != want_status {
            return Err(format!("status {status}, want {want_status}"));
        }
        let headers = resp.headers().clone();
        if (300..400).contains(&status) {
            // This client never follows redirects; every upstream redirect case says so.
            if !req.unfollow_redirect {
                return Err(format!(
                    "{status} redirect for a case without unfollowRedirect"
                ));
            }
            let Some(want) = &case.redirect_request else {
                return Ok(());
            };
            let location = headers
                .get("location")
                .and_then(|v| v.to_str().ok())
                .ok_or("no Location")?;
            let u =
                reqwest::Url::parse(location).map_err(|e| format!("Location {location}: {e}"))?;
            let got_host = u.host_str().unwrap_or_default();
            let got_port = u.port().map(|p| p.to_string()).unwrap_or_default();
            let want_host = if want.host.is_empty() {
                got_host
            } else {
                &want.host
            };
            let want_scheme = if want.scheme.is_empty() {
                scheme
            } else {
                &want.scheme
            };
            let req_path = req.path.split('?').next().unwrap_or_default();
            let want_path = if want.path.is_empty() {
                req_path
            } else {
                &want.path
            };
            if got_host != want_host {
                return Err(format!("redirect host {got_host:?}, want {want_host:?}"));
            }
            if want.port.is_empty() {
                let default = match u.scheme() {
                    "http" => "80",
                    "https" => "443",
                    _ => "",
                };
                if !got_port.is_empty() && got_port != default {
                    return Err(format!(
                        "redirect port {got_port:?}, want none or {default}"
                    ));
                }
            } else if got_port != want.port {
                return Err(format!("redirect port {got_port:?}, want {:?}", want.port));
            }
            if u.scheme() != want_scheme {
                return Err(format!(
                    "redirect scheme {}, want {want_scheme}",
                    u.scheme()
                ));
            }
            if u.path() != want_path {
                return Err(format!("redirect path {}, want {want_path}", u.path()));
            }
            return Ok(());
        }
        if status != 200 {
            return Ok(());
        }
        let body: Value = resp.json().await.map_err(|e| format!("echo body: {e}"))?;
        let exp = case
            .expected_request
            .clone()
            .unwrap_or_else(|| ExpectedRequest {
                host: req.host.clone(),
                method: req.method.clone(),
                path: req.path.clone(),
                headers: req.headers.clone(),
                absent_headers: vec![],
            });
        let exp_method = if exp.method.is_empty() {
            "GET"
        } else {
            &exp.method
        };
        let str_of = |k: &str| body[k].as_str().unwrap_or_default().to_string();
        if !exp.host.is_empty() && exp.host != str_of("host") {
            return Err(format!("host {}, want {}", str_of("host"), exp.host));
        }
        if exp.path != str_of("path") {
            return Err(format!("path {}, want {}", str_of("path"), exp.path));
        }
        if exp_method != str_of("method") {
            return Err(format!("method {}, want {exp_method}", str_of("method")));
        }
        if case.namespace != str_of("namespace") {
            return Err(format!(
                "namespace {}, want {}",
                str_of("namespace"),
                case.namespace
            ));
        }
        let echoed: BTreeMap<String, String> = body["headers"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| {
                let vals: Vec<&str> = v
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                (k.to_ascii_lowercase(), vals.join(","))
            })
            .collect();
        for (k, v) in &exp.headers {
            match echoed.get(&k.to_ascii_lowercase()) {
                Some(got) if got == v => {}
                got => return Err(format!("request header {k}: {got:?}, want {v:?}")),
            }
        }
        for k in &exp.absent_headers {
            if let Some(got) = echoed.get(&k.to_ascii_lowercase()) {
                return Err(format!("request header {k} should be absent, got {got:?}"));
            }
        }
        for (k, v) in &case.response.headers {
            let got: Vec<&str> = headers
                .get_all(k.as_str())
                .iter()
                .filter_map(|v| v.to_str().ok())
                .collect();
            if got.is_empty() || got.join(",") != *v {
                return Err(format!("response header {k}: {got:?}, want {v:?}"));
            }
        }
        for k in &case.response.absent_headers {
            if headers.contains_key(k.as_str()) {
                return Err(format!("response header {k} should be absent"));
            }
        }
        if let Some(h) = &case.backend_from_request_header {
            let named = echoed
                .get(&h.to_ascii_lowercase())
                .ok_or(format!("no {h} header"))?;
            if named.contains(',') || !str_of("pod").starts_with(named.as_str()) {
                return Err(format!("pod {} but header {h}: {named}", str_of("pod")));
            }
        }
        if !str_of("pod").starts_with(&case.backend) {
            return Err(format!(
                "pod {}, want a pod of {}",
                str_of("pod"),
                case.backend
            ));
        }
        Ok(())
    }
}

/// Runs one ported conformance test; returns the number of cases checked.
async fn conformance(file: &str) -> usize {
    let text = std::fs::read_to_string(data_dir().join(file)).unwrap();
    let spec: Spec = serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
    assert!(
        spec.upstream.contains("kubernetes-sigs/gateway-api"),
        "{file}: upstream"
    );
    let mut runner = Runner::new().await;
    for obj in objects("base-manifests.yaml") {
        runner.apply(&obj).await;
    }
    if let Some(s) = &spec.tls_secret {
        runner.tls_secret(s).await;
    }
    for m in &spec.manifests {
        for obj in objects(m) {
            runner.apply(&obj).await;
        }
    }
    for s in &spec.setup {
        runner.setup(s).await;
    }
    runner.accepted(&spec).await;
    let mut failures = Vec::new();
    for (i, c) in spec.cases.iter().enumerate() {
        if let Err(e) = runner.run_case(&spec, i, c).await {
            failures.push(e);
        }
    }
    for d in &spec.then_delete {
        let r = runner
            .client
            .resolve(Some(&d.api_version), &d.kind)
            .await
            .unwrap();
        runner
            .client
            .delete(&r, Some(&d.namespace), &d.name)
            .await
            .unwrap();
    }
    runner
        .conditions(&spec.gateway, &spec.then_conditions)
        .await;
    for (i, c) in spec.then_cases.iter().enumerate() {
        if let Err(e) = runner.run_case(&spec, spec.cases.len() + i, c).await {
            failures.push(e);
        }
    }
    let total = spec.cases.len() + spec.then_cases.len();
    eprintln!(
        "{}: {}/{total} cases passed",
        spec.name,
        total - failures.len()
    );
    assert!(
        failures.is_empty(),
        "{}: {} of {total} cases failed:\n{}",
        spec.name,
        failures.len(),
        failures.join("\n")
    );
    total
}

macro_rules! conformance_tests {
    ($($name:ident => $file:literal,)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                assert!(conformance($file).await > 0);
            }
        )*
    };
}

conformance_tests! {
    http_route_reference_grant => "httproute-reference-grant.cases.yaml",
    http_route_invalid_reference_grant => "httproute-invalid-reference-grant.cases.yaml",
    http_route_partially_invalid_via_invalid_reference_grant => "httproute-partially-invalid-via-invalid-reference-grant.cases.yaml",
    http_route_request_header_modifier => "httproute-request-header-modifier.cases.yaml",
    http_route_backend_request_header_modifier => "httproute-request-header-modifier-backend.cases.yaml",
    http_route_redirect_host_and_status => "httproute-redirect-host-and-status.cases.yaml",
    http_route_service_types => "httproute-service-types.cases.yaml",
    http_route_https_listener => "httproute-https-listener.cases.yaml",
    http_route_listener_port_matching => "httproute-listener-port-matching.cases.yaml",
    http_route_request_header_modifier_backend_weights => "httproute-request-header-modifier-backend-weights.cases.yaml",
    http_route_redirect_303 => "httproute-303-redirect.cases.yaml",
    http_route_redirect_307 => "httproute-307-redirect.cases.yaml",
    http_route_redirect_308 => "httproute-308-redirect.cases.yaml",
    http_route_redirect_path => "httproute-redirect-path.cases.yaml",
    http_route_redirect_port => "httproute-redirect-port.cases.yaml",
    http_route_redirect_scheme => "httproute-redirect-scheme.cases.yaml",
    http_route_redirect_port_and_scheme => "httproute-redirect-port-and-scheme.cases.yaml",
    http_route_backend_request_redirect => "httproute-backend-request-redirect.cases.yaml",
    http_route_backend_url_rewrite => "httproute-backend-url-rewrite.cases.yaml",
    http_route_rewrite_path => "httproute-rewrite-path.cases.yaml",
    http_route_rewrite_host => "httproute-rewrite-host.cases.yaml",
    http_route_response_header_modifier => "httproute-response-header-modifier.cases.yaml",
    http_route_request_mirror => "httproute-request-mirror.cases.yaml",
    http_route_request_multiple_mirrors => "httproute-request-multiple-mirrors.cases.yaml",
    http_route_timeout_request => "httproute-timeout-request.cases.yaml",
    http_route_timeout_backend_request => "httproute-timeout-backend-request.cases.yaml",
}
