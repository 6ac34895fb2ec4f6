//! The probe engine at 2,000 requests/s for 5s against the sandbox gateway
//! (in-process), against a plain loopback loop doing the same number of
//! requests with the same client. Prints figures; asserts nothing timed.
//!
//! `cargo bench --bench probe`

use std::sync::Arc;
use std::time::{Duration, Instant};

use heatcheck::probe::continuous::{start, ProbeRequest, Recorder, Schedule};
use heatcheck::probe::stats::{percentile, summarize};
use heatcheck::sandbox::registry::ResKey;
use heatcheck::sandbox::store::WriteOptions;
use heatcheck::sandbox::{Sandbox, SandboxOptions};
use reqwest::header::{HeaderValue, HOST};
use serde_json::{json, Value};

const RATE: u32 = 2_000;
const SECONDS: u32 = 5;

/// User + system CPU time of this process so far.
fn cpu_time() -> Duration {
    let mut u = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the struct; RUSAGE_SELF is always valid.
    let u = unsafe {
        libc::getrusage(libc::RUSAGE_SELF, u.as_mut_ptr());
        u.assume_init()
    };
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    tv(u.ru_utime) + tv(u.ru_stime)
}

fn objects(ns: &str) -> Vec<(ResKey, Option<String>, Value)> {
    let n = Some(ns.to_string());
    vec![
        (
            ResKey::new("", "namespaces"),
            None,
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
        ),
        (
            ResKey::new("gateway.networking.k8s.io", "gateways"),
            n.clone(),
            json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway", "metadata": {"name": "gw"},
                   "spec": {"gatewayClassName": "any", "listeners": [{"name": "http", "protocol": "HTTP", "port": 80}]}}),
        ),
        (
            ResKey::new("apps", "deployments"),
            n.clone(),
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "labels": {"app": "web"}},
                   "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "echo", "image": "echo"}]}}}}),
        ),
        (
            ResKey::new("", "services"),
            n.clone(),
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
                   "spec": {"selector": {"app": "web"}, "ports": [{"port": 8080}]}}),
        ),
        (
            ResKey::new("gateway.networking.k8s.io", "httproutes"),
            n,
            json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": {"name": "web"},
                   "spec": {"parentRefs": [{"name": "gw"}], "hostnames": ["shop.example.com"],
                            "rules": [{"backendRefs": [{"name": "web", "port": 8080}]}]}}),
        ),
    ]
}

/// Creates the gateway, backend and route; returns the gateway's base URL
/// once it serves the route.
async fn setup(sandbox: &Sandbox, client: &reqwest::Client) -> String {
    let ns = "bench";
    for (key, ns, obj) in objects(ns) {
        sandbox
            .store
            .create(&key, ns.as_deref(), obj, &WriteOptions::default())
            .expect("create");
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let gw_key = ResKey::new("gateway.networking.k8s.io", "gateways");
    loop {
        assert!(Instant::now() < deadline, "the gateway never served");
        let gw = sandbox.store.get(&gw_key, Some(ns), "gw").expect("gateway");
        if let Ok(url) = heatcheck::gateway_url::gateway_base_url(&gw, None) {
            let ok = client
                .get(format!("{url}/shop"))
                .header(HOST, "shop.example.com")
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ok {
                return url;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let sandbox = Sandbox::start(SandboxOptions::default())
            .await
            .expect("sandbox");
        let client = heatcheck::probe::http::client();
        let base = setup(&sandbox, &client).await;
        let mut request = ProbeRequest::get(&format!("{base}/shop")).expect("url");
        request
            .headers
            .insert(HOST, HeaderValue::from_static("shop.example.com"));
        let request = Arc::new(request);
        let total = u64::from(RATE * SECONDS);
        let every = Duration::from_secs(1) / RATE;

        // Warm the connection pool and the allocator once for both runs.
        for _ in 0..200 {
            let _ = client
                .get(format!("{base}/shop"))
                .header(HOST, "shop.example.com")
                .send()
                .await
                .map(|r| r.bytes());
        }

        // The probe engine.
        let cpu0 = cpu_time();
        let t0 = Instant::now();
        let run = start(
            client.clone(),
            request.clone(),
            Schedule::every(every),
            Recorder::default(),
            Some(t0 + every * (RATE * SECONDS)),
        );
        let samples = run.finish().await;
        let wall = t0.elapsed();
        let cpu = cpu_time() - cpu0;
        let s = summarize(&samples, every);
        let ok = s.count - s.failures;
        let achieved = ok as f64 / wall.as_secs_f64();
        let mut lateness: Vec<Duration> = samples.iter().filter_map(|s| s.lateness).collect();
        lateness.sort_unstable();

        // Baseline: the same number of requests, one after another.
        let cpu1 = cpu_time();
        let t1 = Instant::now();
        let mut base_ok = 0u64;
        for _ in 0..total {
            let r = client
                .request(request.method.clone(), request.url.clone())
                .headers(request.headers.clone())
                .send()
                .await;
            if let Ok(r) = r {
                let good = r.status().is_success();
                if r.bytes().await.is_ok() && good {
                    base_ok += 1;
                }
            }
        }
        let base_wall = t1.elapsed();
        let base_cpu = cpu_time() - cpu1;

        let per = |cpu: Duration, n: u64| cpu.as_secs_f64() * 1e6 / n.max(1) as f64;
        println!("probe engine: target {RATE} req/s for {SECONDS}s against the sandbox gateway (in-process)");
        println!(
            "  sent {} (ok {ok}, failed {}) in {:.3}s; achieved {achieved:.0} ok req/s = {:.4} of target",
            s.count,
            s.failures,
            wall.as_secs_f64(),
            achieved / f64::from(RATE)
        );
        println!(
            "  send lateness p50 {:?} p99 {:?} max {:?}",
            percentile(&lateness, 0.5),
            s.send_lateness_p99,
            lateness.last().copied().unwrap_or_default()
        );
        println!(
            "  latency from intended send: p50 {:?} p95 {:?} p99 {:?} max {:?}; outages {}",
            s.p50,
            s.p95,
            s.p99,
            s.max,
            s.outages.len()
        );
        println!(
            "  CPU {:.3}s = {:.1} µs/request (client + in-process gateway)",
            cpu.as_secs_f64(),
            per(cpu, s.count)
        );
        println!(
            "baseline loop: {total} sequential requests, same client: ok {base_ok} in {:.3}s ({:.0} req/s)",
            base_wall.as_secs_f64(),
            base_ok as f64 / base_wall.as_secs_f64()
        );
        println!(
            "  CPU {:.3}s = {:.1} µs/request; probe engine / baseline CPU per request = {:.2}",
            base_cpu.as_secs_f64(),
            per(base_cpu, total),
            per(cpu, s.count) / per(base_cpu, total)
        );
        sandbox.shutdown().await;
    });
}
