//! Sandbox benchmarks: the Gateway data plane against a plain hyper echo
//! server, API creates/lists through kube against the in-process Store, and
//! the peak RSS of a `heatcheck sandbox` process holding 10,000 objects.
//!
//! `cargo bench --bench sandbox [-- dataplane|api|rss ...]`. Every loop is
//! bounded by a request count; everything runs on loopback. Figures are
//! printed with ratios against baselines measured in the same run; targets are
//! printed as PASS/MISS and never fail the bench.

mod common;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{config_map, kube_client, median, mib, print_targets, proc_status_kib, Target};
use futures::StreamExt;
use heatcheck::gateway_url::gateway_base_url;
use heatcheck::sandbox::dataplane::echo::{echo_body, EchoContext, EchoRequest};
use heatcheck::sandbox::registry::ResKey;
use heatcheck::sandbox::store::{Store, WriteOptions};
use heatcheck::sandbox::{Sandbox, SandboxOptions};
use http_body_util::{BodyExt, Empty, Full};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, ListParams, PostParams};
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};

const DP_REQUESTS: usize = 20_000;
const DP_CLIENTS: usize = 4;
const DP_WARMUP: usize = 1_000;
const DP_ROUNDS: usize = 3;
const DP_HOST: &str = "bench.example.com";
const DP_PATH: &str = "/shop";

const API_CREATES: usize = 2_000;
const API_CONCURRENCY: usize = 8;
const LIST_OBJECTS: usize = 10_000;
const LIST_PAGE: u32 = 500;
const LIST_ROUNDS: usize = 3;
const PAYLOAD_BYTES: usize = 1024;

const RSS_OBJECTS: usize = 10_000;

const TIME_RATIO_TARGET: f64 = 2.0;
const RSS_TARGET_MB: f64 = 100.0;

fn main() {
    common::install_crypto();
    // Sections to run: all by default, or those named on the command line
    // (cargo passes `--bench`, which is ignored).
    let wanted: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let run = |name: &str| wanted.is_empty() || wanted.iter().any(|w| w == name);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let started = Instant::now();
    let mut targets = Vec::new();
    rt.block_on(async {
        if run("dataplane") {
            targets.push(dataplane().await);
        }
        if run("api") {
            api().await;
        }
        if run("rss") {
            targets.push(rss().await);
        }
    });
    print_targets("sandbox", &targets);
    println!("\ntotal bench time {:.1}s", started.elapsed().as_secs_f64());
}

// ---------------------------------------------------------------- data plane

async fn dataplane() -> Target {
    println!("== data plane: {DP_REQUESTS} HTTP/1.1 keep-alive GETs, {DP_CLIENTS} clients, median of {DP_ROUNDS} rounds ==");
    let sb = Sandbox::start(SandboxOptions::default())
        .await
        .expect("sandbox starts");
    let ns = "dp-bench";
    create_gateway_objects(&sb.store, ns);
    let gateway = wait_gateway_addr(&sb.store, ns, "bench-gw").await;
    wait_route_serves(gateway).await;
    let (echo, echo_task) = start_echo_server().await;

    let warm_b = load(echo, DP_WARMUP, DP_CLIENTS).await;
    let warm_g = load(gateway, DP_WARMUP, DP_CLIENTS).await;
    println!(
        "  body size: baseline {} B, gateway {} B",
        warm_b.last_body_len, warm_g.last_body_len
    );
    let (mut base, mut gw) = (Vec::new(), Vec::new());
    for round in 1..=DP_ROUNDS {
        // Alternate so that drift (other processes, thermal) hits both alike.
        let b = load(echo, DP_REQUESTS, DP_CLIENTS).await;
        let g = load(gateway, DP_REQUESTS, DP_CLIENTS).await;
        println!(
            "  round {round}: baseline {:>9.0} req/s ({} errors)   gateway {:>9.0} req/s ({} errors)",
            rate(DP_REQUESTS, b.elapsed),
            b.errors,
            rate(DP_REQUESTS, g.elapsed),
            g.errors
        );
        assert_eq!(g.errors, 0, "the gateway answered non-200s");
        base.push(b.elapsed.as_secs_f64());
        gw.push(g.elapsed.as_secs_f64());
    }
    let (b, g) = (median(base), median(gw));
    let ratio = g / b;
    println!(
        "  baseline hyper echo (127.0.0.1): {:>9.0} req/s  {:>7.1} us/req",
        DP_REQUESTS as f64 / b,
        b * 1e6 / DP_REQUESTS as f64
    );
    println!(
        "  gateway data plane (2 pods, 5 filters, timeout): {:>9.0} req/s  {:>7.1} us/req",
        DP_REQUESTS as f64 / g,
        g * 1e6 / DP_REQUESTS as f64
    );
    println!("  time ratio gateway/baseline    : {ratio:.2} (target <= {TIME_RATIO_TARGET:.1})");
    echo_task.abort();
    sb.shutdown().await;
    Target::new(
        "data plane time ratio (gateway / hyper echo)",
        format!("{ratio:.2}x"),
        &format!("<= {TIME_RATIO_TARGET:.1}x"),
        ratio <= TIME_RATIO_TARGET,
    )
}

fn rate(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

fn create_gateway_objects(store: &Store, ns: &str) {
    let opts = WriteOptions::default();
    let create = |group: &str, plural: &str, namespaced: bool, obj: Value| {
        store
            .create(
                &ResKey::new(group, plural),
                namespaced.then_some(ns),
                obj,
                &opts,
            )
            .unwrap_or_else(|e| panic!("create {plural}: {e:?}"));
    };
    create(
        "",
        "namespaces",
        false,
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
    );
    create(
        "gateway.networking.k8s.io",
        "gateways",
        true,
        json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
            "metadata": {"name": "bench-gw"},
            "spec": {"gatewayClassName": "bench", "listeners": [{"name": "http", "protocol": "HTTP", "port": 80,
                "allowedRoutes": {"namespaces": {"from": "Same"}}}]}}),
    );
    create(
        "apps",
        "deployments",
        true,
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "echo"},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "echo"}},
                "template": {"metadata": {"labels": {"app": "echo"}},
                    "spec": {"containers": [{"name": "echo", "image": "echo-basic", "ports": [{"containerPort": 3000}]}]}}}}),
    );
    create(
        "",
        "services",
        true,
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "echo"},
            "spec": {"selector": {"app": "echo"}, "ports": [{"protocol": "TCP", "port": 8080, "targetPort": 3000}]}}),
    );
    create(
        "gateway.networking.k8s.io",
        "httproutes",
        true,
        json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": {"name": "bench-route"},
            "spec": {"parentRefs": [{"name": "bench-gw"}], "hostnames": [DP_HOST],
                // Filters and a timeout in the path, as routes in the wild have them.
                "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": DP_PATH}}],
                    "filters": [
                        {"type": "RequestHeaderModifier", "requestHeaderModifier": {
                            "set": [{"name": "x-env", "value": "bench"}],
                            "add": [{"name": "x-trace", "value": "on"}],
                            "remove": ["x-debug"]}},
                        {"type": "URLRewrite", "urlRewrite": {"path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": DP_PATH}}},
                        {"type": "ResponseHeaderModifier", "responseHeaderModifier": {
                            "set": [{"name": "x-served-by", "value": "bench-route"}]}}],
                    "timeouts": {"request": "10s"},
                    "backendRefs": [{"name": "echo", "port": 8080, "filters": [
                        {"type": "RequestHeaderModifier", "requestHeaderModifier": {
                            "set": [{"name": "x-backend", "value": "echo"}]}}]}]}]}}),
    );
}

/// The Gateway's socket address from its status, as `{{gateway}}` resolves it.
async fn wait_gateway_addr(store: &Store, ns: &str, name: &str) -> SocketAddr {
    let key = ResKey::new("gateway.networking.k8s.io", "gateways");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(url) = store
            .get(&key, Some(ns), name)
            .map_err(|e| format!("{e:?}"))
            .and_then(|gw| gateway_base_url(&gw, None))
        {
            let host_port = url.trim_start_matches("http://");
            let with_port = if host_port.contains(':') {
                host_port.to_string()
            } else {
                format!("{host_port}:80")
            };
            return with_port.parse().expect("gateway address is ip:port");
        }
        assert!(
            Instant::now() < deadline,
            "the Gateway got no address in 30s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn wait_route_serves(addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if load(addr, 1, 1).await.errors == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the route did not answer 200 in 30s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The baseline: a plain hyper HTTP/1.1 server answering the same echo JSON.
async fn start_echo_server() -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind echo");
    let addr = listener.local_addr().expect("echo addr");
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, peer)) = listener.accept().await else {
                return;
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                    let host = req
                        .headers()
                        .get(http::header::HOST)
                        .and_then(|h| h.to_str().ok())
                        .unwrap_or_default();
                    let body = echo_body(
                        &EchoRequest {
                            method: req.method().as_str(),
                            path_and_query: req.uri().path_and_query().map_or("/", |p| p.as_str()),
                            host,
                            headers: req.headers(),
                            client: Some(peer.ip()),
                        },
                        &EchoContext {
                            namespace: "dp-bench",
                            service: "echo",
                            pod: "echo-7d4b9c8f6d-abcde",
                        },
                    );
                    let resp = Response::builder()
                        .header(http::header::CONTENT_TYPE, "application/json")
                        .body(Full::new(Bytes::from(body)))
                        .expect("response");
                    async move { Ok::<_, Infallible>(resp) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    (addr, task)
}

struct LoadResult {
    elapsed: Duration,
    errors: usize,
    last_body_len: usize,
}

/// `total` GETs split over `clients` keep-alive connections, each sequential.
async fn load(addr: SocketAddr, total: usize, clients: usize) -> LoadResult {
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let n = total / clients + usize::from(c < total % clients);
            tokio::spawn(client_loop(addr, n))
        })
        .collect();
    let mut errors = 0;
    let mut last_body_len = 0;
    for t in tasks {
        let (e, len) = t.await.expect("client task");
        errors += e;
        last_body_len = last_body_len.max(len);
    }
    LoadResult {
        elapsed: started.elapsed(),
        errors,
        last_body_len,
    }
}

async fn client_loop(addr: SocketAddr, n: usize) -> (usize, usize) {
    if n == 0 {
        return (0, 0);
    }
    let Ok(stream) = TcpStream::connect(addr).await else {
        return (n, 0);
    };
    let _ = stream.set_nodelay(true);
    let Ok((mut sender, conn)) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await
    else {
        return (n, 0);
    };
    let conn = tokio::spawn(conn);
    let (mut errors, mut len) = (0, 0);
    for i in 0..n {
        let req = Request::get(DP_PATH)
            .header(http::header::HOST, DP_HOST)
            .body(Empty::<Bytes>::new())
            .expect("request");
        if sender.ready().await.is_err() {
            errors += n - i;
            break;
        }
        match sender.send_request(req).await {
            Ok(resp) => {
                let ok = resp.status() == http::StatusCode::OK;
                match resp.into_body().collect().await {
                    Ok(body) if ok => len = body.to_bytes().len(),
                    _ => errors += 1,
                }
            }
            Err(_) => {
                errors += n - i;
                break;
            }
        }
    }
    drop(sender);
    let _ = conn.await;
    (errors, len)
}

// ----------------------------------------------------------------------- API

async fn api() {
    println!("\n== API: {API_CREATES} ConfigMap creates ({API_CONCURRENCY} concurrent) and a paginated list (limit {LIST_PAGE}) of {LIST_OBJECTS} ==");
    let sb = Sandbox::start(SandboxOptions::default())
        .await
        .expect("sandbox starts");
    let ns = "api-bench";
    let cm_key = ResKey::new("", "configmaps");
    let client = kube_client(&sb.kubeconfig_yaml()).await;
    let nss: Api<Namespace> = Api::all(client.clone());
    for n in [ns, "api-warmup"] {
        let obj = serde_json::from_value(json!({"metadata": {"name": n}})).expect("namespace");
        nss.create(&PostParams::default(), &obj)
            .await
            .expect("create namespace");
    }
    // Warm the connection pool and the server's code paths.
    kube_creates(&Api::namespaced(client.clone(), "api-warmup"), 0..100).await;

    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let t = Instant::now();
    kube_creates(&cms, 0..API_CREATES).await;
    let http = t.elapsed().as_secs_f64();

    // Baseline: the same creates straight on a fresh in-process Store.
    let store = Store::new();
    store
        .create(
            &ResKey::new("", "namespaces"),
            None,
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
            &WriteOptions::default(),
        )
        .expect("store namespace");
    let t = Instant::now();
    for i in 0..API_CREATES {
        store
            .create(
                &cm_key,
                Some(ns),
                config_map(&format!("cm-{i:05}"), PAYLOAD_BYTES),
                &WriteOptions::default(),
            )
            .expect("store create");
    }
    let direct = t.elapsed().as_secs_f64();
    println!(
        "  creates via kube over HTTPS   : {:>8.0} /s  {:>7.1} us each",
        API_CREATES as f64 / http,
        http * 1e6 / API_CREATES as f64
    );
    println!(
        "  creates on the Store directly : {:>8.0} /s  {:>7.1} us each",
        API_CREATES as f64 / direct,
        direct * 1e6 / API_CREATES as f64
    );
    println!(
        "  ratio (HTTPS+serde+client overhead): {:.1}x slower",
        http / direct
    );

    // Fill up to LIST_OBJECTS directly: only the list is measured here.
    for i in API_CREATES..LIST_OBJECTS {
        sb.store
            .create(
                &cm_key,
                Some(ns),
                config_map(&format!("cm-{i:05}"), PAYLOAD_BYTES),
                &WriteOptions::default(),
            )
            .expect("store create");
    }
    let (mut via_kube, mut via_store) = (Vec::new(), Vec::new());
    for _ in 0..LIST_ROUNDS {
        let t = Instant::now();
        let n = kube_list_all(&cms).await;
        via_kube.push(t.elapsed().as_secs_f64());
        assert_eq!(n, LIST_OBJECTS, "kube list saw every ConfigMap");
        let t = Instant::now();
        let n = store_list_all(&sb.store, &cm_key, ns);
        via_store.push(t.elapsed().as_secs_f64());
        assert_eq!(n, LIST_OBJECTS, "store list saw every ConfigMap");
    }
    let (k, s) = (median(via_kube), median(via_store));
    println!(
        "  list {LIST_OBJECTS} via kube (pages of {LIST_PAGE}): {:>7.1} ms  {:>8.0} objects/s",
        k * 1e3,
        LIST_OBJECTS as f64 / k
    );
    println!(
        "  list {LIST_OBJECTS} on the Store directly   : {:>7.1} ms  {:>8.0} objects/s",
        s * 1e3,
        LIST_OBJECTS as f64 / s
    );
    println!(
        "  ratio (HTTPS+serde+client overhead): {:.1}x slower (no target; for tracking)",
        k / s
    );
    sb.shutdown().await;
}

/// Creates `cm-NNNNN` ConfigMaps for each index, `API_CONCURRENCY` at a time.
async fn kube_creates(api: &Api<ConfigMap>, range: std::ops::Range<usize>) {
    let failures = futures::stream::iter(range)
        .map(|i| {
            let api = api.clone();
            async move {
                let cm: ConfigMap =
                    serde_json::from_value(config_map(&format!("cm-{i:05}"), PAYLOAD_BYTES))
                        .expect("ConfigMap");
                api.create(&PostParams::default(), &cm).await.err()
            }
        })
        .buffer_unordered(API_CONCURRENCY)
        .filter_map(|e| async move { e })
        .collect::<Vec<_>>()
        .await;
    assert!(
        failures.is_empty(),
        "{} creates failed, first: {:?}",
        failures.len(),
        failures.first()
    );
}

async fn kube_list_all(api: &Api<ConfigMap>) -> usize {
    let mut n = 0;
    let mut token: Option<String> = None;
    // Bounded: at most one page per object plus one.
    for _ in 0..=LIST_OBJECTS {
        let mut lp = ListParams::default().limit(LIST_PAGE);
        if let Some(t) = &token {
            lp = lp.continue_token(t);
        }
        let page = api.list(&lp).await.expect("list page");
        n += page.items.len();
        token = page.metadata.continue_.filter(|t| !t.is_empty());
        if token.is_none() {
            break;
        }
    }
    n
}

fn store_list_all(store: &Store, key: &ResKey, ns: &str) -> usize {
    let mut n = 0;
    let mut after = None;
    for _ in 0..=LIST_OBJECTS {
        let page = store
            .list(
                key,
                Some(ns),
                &|_| true,
                Some(LIST_PAGE as usize),
                after.as_ref(),
            )
            .expect("store list");
        n += page.items.len();
        after = page.next;
        if after.is_none() {
            break;
        }
    }
    n
}

// ----------------------------------------------------------------------- RSS

async fn rss() -> Target {
    println!("\n== peak RSS of a `heatcheck sandbox` process with {RSS_OBJECTS} ConfigMaps (~{PAYLOAD_BYTES} B data each) ==");
    let child = common::SandboxChild::start();
    let pid = child.pid().to_string();
    let hwm = |pid: &str| proc_status_kib(pid, "VmHWM").expect("VmHWM readable");
    let rss_now = |pid: &str| proc_status_kib(pid, "VmRSS").expect("VmRSS readable");
    let client = kube_client(&child.kubeconfig_yaml()).await;
    let ns = "rss-bench";
    let nss: Api<Namespace> = Api::all(client.clone());
    let obj = serde_json::from_value(json!({"metadata": {"name": ns}})).expect("namespace");
    nss.create(&PostParams::default(), &obj)
        .await
        .expect("create namespace");
    let idle = (hwm(&pid), rss_now(&pid));

    let cms: Api<ConfigMap> = Api::namespaced(client, ns);
    let t = Instant::now();
    kube_creates(&cms, 0..RSS_OBJECTS).await;
    let load_s = t.elapsed().as_secs_f64();
    let loaded = (hwm(&pid), rss_now(&pid));
    let t = Instant::now();
    assert_eq!(kube_list_all(&cms).await, RSS_OBJECTS);
    let list_ms = t.elapsed().as_secs_f64() * 1e3;
    let listed = (hwm(&pid), rss_now(&pid));

    println!(
        "  idle sandbox         : VmHWM {:>6.1} MB  VmRSS {:>6.1} MB",
        mib(idle.0),
        mib(idle.1)
    );
    println!(
        "  after {RSS_OBJECTS} creates : VmHWM {:>6.1} MB  VmRSS {:>6.1} MB  (loaded over HTTPS in {load_s:.1}s, {:.0} creates/s)",
        mib(loaded.0),
        mib(loaded.1),
        RSS_OBJECTS as f64 / load_s
    );
    println!(
        "  after a full list    : VmHWM {:>6.1} MB  VmRSS {:>6.1} MB  (list took {list_ms:.0} ms)",
        mib(listed.0),
        mib(listed.1)
    );
    let per_object = (listed.1.saturating_sub(idle.1)) as f64 * 1024.0 / RSS_OBJECTS as f64;
    println!("  resident growth per object: {per_object:.0} B (payload {PAYLOAD_BYTES} B)");
    let peak = mib(listed.0);
    Target::new(
        "sandbox peak RSS with 10,000 ConfigMaps",
        format!("{peak:.1} MB"),
        &format!("< {RSS_TARGET_MB:.0} MB"),
        peak < RSS_TARGET_MB,
    )
}
