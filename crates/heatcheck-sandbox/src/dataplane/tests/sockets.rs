//! The data plane over real sockets: listener binding, the KubeCon route
//! conflict, keep-alive and concurrency, throughput, listeners following
//! the Gateway spec, route timeouts.

use heatcheck_gateway::gateway_url::gateway_base_url;

use super::*;

#[test]
fn bind_falls_back_to_ephemeral_ports_when_declared_ones_are_taken() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let ips = [
            Ipv4Addr::new(127, 201, 7, 1),
            Ipv4Addr::new(127, 201, 8, 1),
            Ipv4Addr::new(127, 201, 9, 1),
        ];
        // Occupy a port on the first two candidates.
        let blocker = std::net::TcpListener::bind(SocketAddrV4::new(ips[0], 0)).unwrap();
        let port = blocker.local_addr().unwrap().port();
        let _blocker2 = std::net::TcpListener::bind(SocketAddrV4::new(ips[1], port)).unwrap();
        let busy = ips[..2].iter().copied().cycle().take(8);
        let b = listeners::bind_new_gateway(&[port], busy.chain([ips[2]])).unwrap();
        assert_eq!((b.ip, b.ephemeral), (ips[2], true));
        assert_eq!(b.sockets[0].0, port);
        assert_ne!(b.sockets[0].1.local_addr().unwrap().port(), port);
        // A free candidate takes the declared port.
        drop(b);
        let b = listeners::bind_new_gateway(&[port], [ips[2]].into_iter()).unwrap();
        assert_eq!(
            (
                b.ip,
                b.ephemeral,
                b.sockets[0].1.local_addr().unwrap().port()
            ),
            (ips[2], false, port)
        );
    });
}

async fn http_get(base: &str, host: &str, path: &str) -> (u16, Value, HeaderMap) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let resp = client
        .get(format!("{base}{path}"))
        .header("host", host)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.bytes().await.unwrap();
    (
        status,
        serde_json::from_slice(&body).unwrap_or(Value::Null),
        headers,
    )
}

fn with_status(gw: &Value, binding: &GatewayBinding) -> Value {
    let mut gw = gw.clone();
    gw["status"] = json!({"addresses": binding.addresses});
    gw
}

/// The KubeCon scenario: a route conflict decided by creationTimestamp, then by name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubecon_route_conflict_over_real_sockets() {
    let dp = DataPlane::new();
    let gw = gateway(NS, "my-gateway", http_listener());
    let mut v = ClusterView {
        gateways: vec![gw.clone()],
        namespaces: vec![json!({"metadata": {"name": NS}})],
        ..Default::default()
    };
    v.services.push(service(NS, "infra-backend-v1"));
    v.pods
        .push(pod(NS, "infra-backend-v1", "7d9f8b6c5-x2x1z", true));
    let rules =
        json!([{"matches": [prefix("/"), prefix("/shop")], "backendRefs": to("infra-backend-v1")}]);
    v.httproutes.push(route(
        NS,
        "my-route",
        T0,
        json!(["lior.example.com"]),
        rules,
    ));
    dp.update(v.clone());
    let bindings = dp.sync_listeners().await;
    assert_eq!(bindings.len(), 1);
    let b = &bindings[0];
    assert_eq!(
        (
            b.namespace.as_str(),
            b.name.as_str(),
            b.listeners[0].attached_routes
        ),
        (NS, "my-gateway", 1)
    );
    let ip = &b.addresses[0];
    assert_eq!(ip.r#type, "IPAddress");
    assert!(
        ip.value.starts_with("127.") && ip.value != "127.0.0.1",
        "{ip:?}"
    );
    let base = gateway_base_url(&with_status(&gw, b), None).unwrap();

    let (status, body, headers) = http_get(&base, "lior.example.com", "/shop?x=1").await;
    assert_eq!(status, 200);
    assert_eq!(body["pod"], "infra-backend-v1-7d9f8b6c5-x2x1z");
    assert_eq!(body["service"], "infra-backend-v1");
    assert_eq!(body["namespace"], NS);
    assert_eq!(body["path"], "/shop?x=1");
    assert_eq!(body["host"], "lior.example.com");
    assert_eq!(headers["x-heatcheck-route"], "infra/my-route");
    assert_eq!(headers["content-type"], "application/json");
    // Port in the Host header is ignored for matching; other hosts get 404.
    assert_eq!(http_get(&base, "lior.example.com:80", "/shop").await.0, 200);
    assert_eq!(http_get(&base, "other.example.com", "/shop").await.0, 404);

    // A second route with identical matches, one second younger: v1 still answers.
    v.services.push(service(NS, "infra-backend-v3"));
    v.pods
        .push(pod(NS, "infra-backend-v3", "5c4b3a2d1-q9w8e", true));
    let rules_v3 =
        json!([{"matches": [prefix("/"), prefix("/shop")], "backendRefs": to("infra-backend-v3")}]);
    v.httproutes.push(route(
        NS,
        "my-route-v3",
        T1,
        json!(["lior.example.com"]),
        rules_v3,
    ));
    dp.update(v.clone());
    let again = dp.sync_listeners().await;
    assert_eq!(
        again[0].addresses, b.addresses,
        "a gateway keeps its address"
    );
    assert_eq!(again[0].listeners[0].attached_routes, 2);
    assert_eq!(
        http_get(&base, "lior.example.com", "/shop").await.1["service"],
        "infra-backend-v1"
    );

    // my-route deleted and recreated: now younger than my-route-v3, so v3 answers.
    v.httproutes[0]["metadata"]["creationTimestamp"] = json!(T2);
    dp.update(v.clone());
    assert_eq!(
        http_get(&base, "lior.example.com", "/shop").await.1["service"],
        "infra-backend-v3"
    );

    // Same second: alphabetical "infra/my-route" < "infra/my-route-v3".
    v.httproutes[1]["metadata"]["creationTimestamp"] = json!(T2);
    dp.update(v.clone());
    let (_, body, headers) = http_get(&base, "lior.example.com", "/shop").await;
    assert_eq!(body["service"], "infra-backend-v1");
    assert_eq!(headers["x-heatcheck-route"], "infra/my-route");

    // Scale to zero: 503 from the gateway.
    for p in v.pods.iter_mut() {
        p["status"]["conditions"][0]["status"] = json!("False");
    }
    dp.update(v.clone());
    let (status, _, _) = http_get(&base, "lior.example.com", "/shop").await;
    assert_eq!(status, 503);

    // Gateway recreated (new uid) gets a new address; deleted gateway stops listening.
    v.gateways[0]["metadata"]["uid"] = json!("uid-2");
    dp.update(v.clone());
    let recreated = dp.sync_listeners().await;
    assert_ne!(recreated[0].addresses, b.addresses);
    v.gateways.clear();
    dp.update(v);
    assert!(dp.sync_listeners().await.is_empty());
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let new_base = gateway_base_url(&with_status(&gw, &recreated[0]), None).unwrap();
    assert!(
        client.get(format!("{new_base}/shop")).send().await.is_err(),
        "listener must be closed"
    );
    dp.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_and_concurrent_clients() {
    let dp = DataPlane::new();
    let gw = gateway(
        NS,
        "my-gateway",
        json!([{"name": "http", "port": 8080, "protocol": "HTTP"}]),
    );
    let mut v = base_view();
    v.gateways = vec![gw.clone()];
    v.httproutes.push(route(
        NS,
        "r",
        T0,
        json!([]),
        json!([{"backendRefs": to("infra-backend-v2")}]),
    ));
    dp.update(v);
    let b = dp.sync_listeners().await;
    let base = gateway_base_url(&with_status(&gw, &b[0]), Some("http")).unwrap();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let mut tasks = Vec::new();
    for i in 0..16 {
        let client = client.clone();
        let base = base.clone();
        tasks.push(tokio::spawn(async move {
            for j in 0..20 {
                let body = vec![b'x'; (i * 100 + j) as usize];
                let r = client
                    .post(format!("{base}/upload"))
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
                let v: Value = r.json().await.unwrap();
                assert_eq!(v["method"], "POST");
                assert_eq!(v["service"], "infra-backend-v2");
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    // Garbage on the socket does not hurt the server.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = b[0].listeners[0].bound;
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(b"\x00\x01 NOT HTTP\r\n\r\n").await.unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(2), s.read_to_end(&mut buf)).await;
    assert_eq!(http_get(&base, "x", "/").await.0, 200);
    dp.shutdown().await;
}

/// Rough throughput comparison with a plain hyper echo server (run with `--ignored`; numbers
/// only mean something in release builds).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn throughput_against_plain_echo() {
    use http_body_util::{BodyExt, Full};
    let plain = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let plain_addr = plain.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (s, _) = plain.accept().await.unwrap();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(
                    |req: http::Request<hyper::body::Incoming>| async move {
                        let (parts, body) = req.into_parts();
                        let _ = body.collect().await;
                        let headers: BTreeMap<String, Vec<String>> = parts
                            .headers
                            .iter()
                            .map(|(k, v)| {
                                (k.to_string(), vec![v.to_str().unwrap_or("").to_string()])
                            })
                            .collect();
                        let body = serde_json::to_vec(
                            &json!({"path": parts.uri.to_string(), "headers": headers, "pod": "p"}),
                        )
                        .unwrap();
                        Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(
                            bytes::Bytes::from(body),
                        )))
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(s), svc)
                    .await;
            });
        }
    });
    let dp = DataPlane::new();
    let gw = gateway(
        NS,
        "my-gateway",
        json!([{"name": "http", "port": 8080, "protocol": "HTTP"}]),
    );
    let mut v = base_view();
    v.gateways = vec![gw.clone()];
    for i in 0..20 {
        v.httproutes.push(route(
            NS,
            &format!("r{i}"),
            T0,
            json!([format!("h{i}.example.com")]),
            json!([{"matches": [prefix("/shop")], "backendRefs": to("infra-backend-v2")}]),
        ));
    }
    v.httproutes.push(route(
        NS,
        "main",
        T0,
        json!(["lior.example.com"]),
        json!([{"matches": [prefix("/shop")], "backendRefs": to("infra-backend-v1")}]),
    ));
    dp.update(v);
    let b = dp.sync_listeners().await;
    let base = gateway_base_url(&with_status(&gw, &b[0]), None).unwrap();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    async fn run(client: &reqwest::Client, url: String) -> f64 {
        let start = std::time::Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (c, u) = (client.clone(), url.clone());
            tasks.push(tokio::spawn(async move {
                for _ in 0..1000 {
                    let r = c
                        .get(&u)
                        .header("host", "lior.example.com")
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(r.status(), 200);
                    r.bytes().await.unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        8000.0 / start.elapsed().as_secs_f64()
    }
    let plain_rps = run(&client, format!("http://{plain_addr}/shop/x")).await;
    let dp_rps = run(&client, format!("{base}/shop/x")).await;
    println!(
        "plain {plain_rps:.0} req/s, dataplane {dp_rps:.0} req/s, ratio {:.2}",
        plain_rps / dp_rps
    );
    dp.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listeners_follow_the_gateway_spec() {
    let dp = DataPlane::new();
    let mut v = base_view();
    v.gateways = vec![gateway(
        NS,
        "my-gateway",
        json!([
            {"name": "http", "port": 8080, "protocol": "HTTP"},
            {"name": "tls", "port": 8443, "protocol": "HTTPS"},
        ]),
    )];
    v.httproutes.push(route(
        NS,
        "r",
        T0,
        json!([]),
        json!([{"backendRefs": to("infra-backend-v1")}]),
    ));
    dp.update(v.clone());
    let b = dp.sync_listeners().await.remove(0);
    let (http, tls) = (&b.listeners[0], &b.listeners[1]);
    assert!(http.served && http.bound.port() != 0);
    assert_eq!(
        (tls.served, tls.bound.port(), tls.attached_routes),
        (false, 0, 1)
    );
    // A listener added later is served on the same IP; a removed one stops.
    v.gateways[0]["spec"]["listeners"] = json!([
        {"name": "http", "port": 8080, "protocol": "HTTP"},
        {"name": "extra", "port": 9090, "protocol": "HTTP"},
    ]);
    dp.update(v.clone());
    let b2 = dp.sync_listeners().await.remove(0);
    assert_eq!(b2.addresses[0], b.addresses[0]);
    assert_eq!(b2.listeners[0].bound, http.bound);
    let extra = b2.listeners[1].bound;
    assert!(b2.listeners[1].served && extra.ip() == http.bound.ip());
    assert!(tokio::net::TcpStream::connect(extra).await.is_ok());
    v.gateways[0]["spec"]["listeners"] =
        json!([{"name": "http", "port": 8080, "protocol": "HTTP"}]);
    dp.update(v);
    assert_eq!(dp.sync_listeners().await[0].listeners.len(), 1);
    assert!(
        tokio::net::TcpStream::connect(extra).await.is_err(),
        "removed listener must stop"
    );
    dp.shutdown().await;
    assert!(
        tokio::net::TcpStream::connect(http.bound).await.is_err(),
        "shutdown closes listeners"
    );
}

/// Latency chaos against a route with a timeout: the gateway gives up with 504 after the
/// timeout instead of waiting for the slow pod; without the fault the route answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_timeout_turns_injected_latency_into_504() {
    let dp = DataPlane::new();
    let gw = gateway(NS, "my-gateway", http_listener());
    let mut v = base_view();
    v.gateways = vec![gw.clone()];
    v.httproutes.push(route(
        NS,
        "timed",
        T0,
        json!([]),
        json!([{"backendRefs": to("infra-backend-v1"), "timeouts": {"request": "200ms"}}]),
    ));
    dp.update(v.clone());
    let b = dp.sync_listeners().await;
    let base = gateway_base_url(&with_status(&gw, &b[0]), None).unwrap();
    assert_eq!(http_get(&base, "any.example.com", "/").await.0, 200);

    v.faults = vec![fault(
        &["infra-backend-v1-a", "infra-backend-v1-b"],
        FaultAction::Delay {
            latency: Duration::from_secs(5),
            jitter: Duration::ZERO,
        },
    )];
    dp.update(v);
    let started = std::time::Instant::now();
    let (status, _, headers) = http_get(&base, "any.example.com", "/").await;
    assert_eq!(status, 504);
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "the gateway waited for the pod instead of the timeout"
    );
    assert!(headers["x-heatcheck-detail"]
        .to_str()
        .unwrap()
        .contains("slower than the route timeout"));
    dp.shutdown().await;
}
