//! The sandbox as a twin that models time (issue 21, §3): an outage a real
//! cluster would show is visible. A pod killed with nothing to take over
//! gives seconds of 503s while its replacement waits for its readiness
//! probe; an eviction of one of three pods under a PodDisruptionBudget
//! gives none, and the budget refuses the eviction that would break it.

use crate::common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{suite_with, tokio_block, Case, SandboxProcess};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, DynamicObject, EvictParams, ListParams};
use kube::discovery::ApiResource;
use kube::Client;
use serde_json::Value;

/// One backend with a single replica and the readinessProbe of the issue
/// (initialDelaySeconds 2, the default periodSeconds 10).
const SOLO: &str = r#"apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  gatewayClassName: any
  listeners: [{name: http, protocol: HTTP, port: 80}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, labels: {app: web}}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: echo
          image: echo
          readinessProbe: {httpGet: {path: /, port: 8080}, initialDelaySeconds: 2}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec: {selector: {app: web}, ports: [{port: 8080}]}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web}
spec:
  parentRefs: [{name: gw}]
  hostnames: [shop.example.com]
  rules: [{backendRefs: [{name: web, port: 8080}]}]
"#;

/// The measured fact of the issue, through `heatcheck run --sandbox`: it
/// showed 0 failed probe requests out of 61; a real cluster shows seconds
/// of 503s, and so does the twin now.
#[test]
fn a_pod_kill_of_the_only_replica_shows_an_outage_until_the_replacement_is_ready() {
    let body = r#"  policy: {maxPodsAffected: 100}  # the only pod, on purpose
  probes:
    - name: shop
      http: {url: '{{gateway "gw"}}/shop', headers: {Host: shop.example.com}}
      every: 100ms
  scenarios:
    - name: kill the only pod
      steps:
        - fault: {type: podKill, selector: app=web, duration: 1s}
        - wait: {kind: Deployment, name: web, available: true, timeout: 40s}
      assertions:
        - name: served again
          http:
            url: '{{gateway "gw"}}/shop'
            headers: {Host: shop.example.com}
            # (the wait may pass on the status from before the kill)
            eventually: {within: 30s, every: 100ms}
            expect: {status: 200}
"#;
    let case = Case::suite(&suite_with("twin-kill", body)).file("base.yaml", SOLO);
    let out = case.run_sandbox();
    out.assert_code(0);
    let report = out.report();
    let probe = &report["suites"][0]["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "kill the only pod")
        .unwrap_or_else(|| panic!("no case in {report}"))["probes"][0];
    let failures = probe["failures"].as_u64().unwrap();
    let longest = probe["outages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|o| o["durationSeconds"].as_f64())
        .fold(0.0, f64::max);
    // Replacement started ~1s after the kill, probes skipped until ~3s, the
    // first one that counts on the probe worker's tick at ~10s: several
    // seconds of errors, whatever the machine's load.
    assert!(failures >= 30, "{probe}");
    assert!(longest >= 3.0, "an outage of seconds: {probe}");
}

fn three_with_budget() -> String {
    let backend = |name: &str, replicas: u32| {
        format!(
            r#"---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      containers:
        - name: echo
          image: echo
          readinessProbe: {{httpGet: {{path: /, port: 8080}}, initialDelaySeconds: 2}}
---
apiVersion: v1
kind: Service
metadata: {{name: {name}}}
spec: {{selector: {{app: {name}}}, ports: [{{port: 8080}}]}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: {name}}}
spec:
  parentRefs: [{{name: gw}}]
  hostnames: [{name}.example.com]
  rules: [{{backendRefs: [{{name: {name}, port: 8080}}]}}]
"#
        )
    };
    format!(
        r#"apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: gw}}
spec:
  gatewayClassName: any
  listeners: [{{name: http, protocol: HTTP, port: 80}}]
{}{}---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {{name: ha}}
spec:
  minAvailable: 2
  selector: {{matchLabels: {{app: ha}}}}
"#,
        backend("ha", 3),
        backend("solo", 1)
    )
}

async fn client(kubeconfig: &std::path::Path) -> Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let kc = kube::config::Kubeconfig::read_from(kubeconfig).unwrap();
    let mut cfg =
        kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
            .await
            .unwrap();
    // kube-client retries 429/503/504 by default (up to 15 times, backing
    // off): a refused eviction would be retried until the budget allows it
    // and come back as 201. These tests look at the API's answers as given.
    cfg.default_retry = false;
    Client::try_from(cfg).unwrap()
}

async fn until<T, F: std::future::Future<Output = Option<T>>>(
    what: &str,
    within: Duration,
    mut f: impl FnMut() -> F,
) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Status codes a client sees for `host` every 20 ms until `stop`, with
/// when each came (connection errors as 0).
async fn probe_until(
    http: reqwest::Client,
    url: String,
    host: &'static str,
    stop: Arc<AtomicBool>,
) -> Vec<(Instant, u16)> {
    let mut seen = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        let code = match http
            .get(format!("{url}/"))
            .header("Host", host)
            .timeout(Duration::from_secs(2))
            .send()
            .await
        {
            Ok(r) => r.status().as_u16(),
            Err(_) => 0,
        };
        seen.push((Instant::now(), code));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    seen
}

/// The longest run of non-200 answers, from its first to its last.
fn longest_error_run(seen: &[(Instant, u16)]) -> Duration {
    let mut longest = Duration::ZERO;
    let mut start: Option<Instant> = None;
    for (at, code) in seen {
        match (code, start) {
            (200, _) => start = None,
            (_, None) => start = Some(*at),
            (_, Some(s)) => longest = longest.max(*at - s),
        }
    }
    longest
}

async fn ready_pods(pods: &Api<Pod>, app: &str) -> Vec<String> {
    pods.list(&ListParams::default().labels(&format!("app={app}")))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| {
            p.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        })
        .filter_map(|p| p.metadata.name)
        .collect()
}

/// Real clients (kube-rs, an HTTP client through the gateway) against
/// `heatcheck sandbox`: evicting one of three pods under `minAvailable: 2`
/// costs no request; a second eviction meanwhile is refused with the
/// API server's 429; evicting the only pod of a one-replica backend (no
/// budget protects it) shows seconds of 503s.
#[test]
fn an_eviction_under_a_disruption_budget_costs_no_request() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("app.yaml");
    std::fs::write(&manifest, three_with_budget()).unwrap();
    let sb = SandboxProcess::start_with(&["--manifests", manifest.to_str().unwrap()]);
    tokio_block(async move {
        let c = client(&sb.kubeconfig).await;
        let pods: Api<Pod> = Api::namespaced(c.clone(), "default");
        let pdbs: Api<PodDisruptionBudget> = Api::namespaced(c.clone(), "default");
        let gw_api: Api<DynamicObject> = Api::namespaced_with(
            c.clone(),
            "default",
            &ApiResource {
                group: "gateway.networking.k8s.io".into(),
                version: "v1".into(),
                api_version: "gateway.networking.k8s.io/v1".into(),
                kind: "Gateway".into(),
                plural: "gateways".into(),
            },
        );
        let url = until("the gateway's address", Duration::from_secs(30), || {
            let gw_api = gw_api.clone();
            async move {
                let gw = gw_api.get("gw").await.ok()?;
                let v = serde_json::to_value(&gw).ok()?;
                heatcheck::gateway_url::gateway_base_url(&v, None).ok()
            }
        })
        .await;
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        let healthy = |n: i32| {
            let pdbs = pdbs.clone();
            async move {
                let s = pdbs.get("ha").await.ok()?.status?;
                (s.current_healthy == Some(n) && s.disruptions_allowed == Some(n - 2)).then_some(s)
            }
        };
        until(
            "3 healthy pods under the budget",
            Duration::from_secs(40),
            || healthy(3),
        )
        .await;
        for host in ["ha.example.com", "solo.example.com"] {
            let (http, url) = (http.clone(), url.clone());
            until(host, Duration::from_secs(20), || {
                let (http, url) = (http.clone(), url.clone());
                async move {
                    let r = http
                        .get(format!("{url}/"))
                        .header("Host", host)
                        .send()
                        .await;
                    r.ok().filter(|r| r.status() == 200).map(|_| ())
                }
            })
            .await;
        }

        // One of three, under minAvailable 2.
        let stop = Arc::new(AtomicBool::new(false));
        let probe = tokio::spawn(probe_until(
            http.clone(),
            url.clone(),
            "ha.example.com",
            stop.clone(),
        ));
        let before = ready_pods(&pods, "ha").await;
        pods.evict(&before[0], &EvictParams::default())
            .await
            .expect("the budget allows one");
        let after_first = pdbs.get("ha").await.unwrap().status;
        let second = pods.evict(&before[1], &EvictParams::default()).await;
        let refused = second.expect_err(&format!(
            "a second eviction would leave 1 of the 2 the budget needs: {after_first:?} {before:?}"
        ));
        match refused {
            kube::Error::Api(s) => {
                assert_eq!(s.code, 429, "{s:?}");
                assert_eq!(s.reason, "TooManyRequests");
                assert_eq!(
                    s.message,
                    "Cannot evict pod as it would violate the pod's disruption budget."
                );
            }
            other => panic!("expected the API's 429, got {other:?}"),
        }
        // The replacement joins once Ready (its probe's first tick ~10 s in).
        until("the replacement Ready", Duration::from_secs(40), || {
            healthy(3)
        })
        .await;
        stop.store(true, Ordering::SeqCst);
        let seen = probe.await.unwrap();
        let errors: BTreeMap<u16, usize> =
            seen.iter()
                .filter(|(_, c)| *c != 200)
                .fold(BTreeMap::new(), |mut m, (_, c)| {
                    *m.entry(*c).or_default() += 1;
                    m
                });
        assert!(seen.len() > 50, "probed throughout: {}", seen.len());
        assert!(errors.is_empty(), "no failed request: {errors:?}");
        let after = ready_pods(&pods, "ha").await;
        assert!(!after.contains(&before[0]), "{before:?} -> {after:?}");

        // Control: the only pod of a backend no budget protects.
        let stop = Arc::new(AtomicBool::new(false));
        let probe = tokio::spawn(probe_until(
            http.clone(),
            url.clone(),
            "solo.example.com",
            stop.clone(),
        ));
        tokio::time::sleep(Duration::from_millis(300)).await;
        let solo = ready_pods(&pods, "solo").await;
        pods.evict(&solo[0], &EvictParams::default())
            .await
            .expect("no budget: the eviction is a delete");
        until("solo Ready again", Duration::from_secs(40), || {
            let pods = pods.clone();
            async move { (ready_pods(&pods, "solo").await.len() == 1).then_some(()) }
        })
        .await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        stop.store(true, Ordering::SeqCst);
        let seen = probe.await.unwrap();
        let unavailable = seen.iter().filter(|(_, c)| *c == 503).count();
        assert!(unavailable > 0, "503s: {seen:?}");
        assert!(
            seen.iter().all(|(_, c)| matches!(c, 200 | 503)),
            "only 503s (no healthy upstream), no other error"
        );
        assert!(
            longest_error_run(&seen) >= Duration::from_secs(3),
            "seconds of 503s: {:?}",
            longest_error_run(&seen)
        );
        let body: Value = http
            .get(format!("{url}/"))
            .header("Host", "solo.example.com")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(body["pod"].as_str().unwrap().starts_with("solo-"), "{body}");
        drop(sb);
    });
}
