//! Routing through the whole table: precedence, hostnames, attachment,
//! backends, weights, network policies and faults. Over real sockets:
//! `sockets.rs`.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use http::HeaderMap;
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde_json::{json, Value};

use super::matcher::RequestParts;
use super::routing::{Decision, NO_HEALTHY_UPSTREAM, UPSTREAM_CONNECT_ERROR};
use super::*;

mod sockets;

const NS: &str = "infra";
const T0: &str = "2026-11-26T08:00:00Z";
const T1: &str = "2026-11-26T08:00:01Z";
const T2: &str = "2026-11-26T08:00:02Z";

fn gateway(ns: &str, name: &str, listeners: Value) -> Value {
    json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
           "metadata": {"name": name, "namespace": ns, "uid": format!("uid-{ns}-{name}")},
           "spec": {"gatewayClassName": "any", "listeners": listeners}})
}

fn http_listener() -> Value {
    json!([{"name": "http", "port": 80, "protocol": "HTTP"}])
}

fn service(ns: &str, name: &str) -> Value {
    json!({"metadata": {"name": name, "namespace": ns},
           "spec": {"selector": {"app": name}, "ports": [{"name": "http", "port": 8080, "targetPort": 3000}]}})
}

fn pod(ns: &str, app: &str, suffix: &str, ready: bool) -> Value {
    json!({"metadata": {"name": format!("{app}-{suffix}"), "namespace": ns, "labels": {"app": app}},
           "spec": {"containers": [{"name": "echo", "ports": [{"name": "http", "containerPort": 3000}]}]},
           "status": {"conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}})
}

fn route(ns: &str, name: &str, created: &str, hostnames: Value, rules: Value) -> Value {
    json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
           "metadata": {"name": name, "namespace": ns, "creationTimestamp": created},
           "spec": {"parentRefs": [{"name": "my-gateway"}], "hostnames": hostnames, "rules": rules}})
}

fn to(svc: &str) -> Value {
    json!([{"name": svc, "port": 8080}])
}

fn prefix(p: &str) -> Value {
    json!({"path": {"type": "PathPrefix", "value": p}})
}

/// A namespace with my-gateway and backends v1..v3, each with two ready pods.
fn base_view() -> ClusterView {
    let mut v = ClusterView {
        gateways: vec![gateway(NS, "my-gateway", http_listener())],
        namespaces: vec![
            json!({"metadata": {"name": NS}}),
            json!({"metadata": {"name": "apps", "labels": {"team": "a"}}}),
        ],
        ..Default::default()
    };
    for app in ["infra-backend-v1", "infra-backend-v2", "infra-backend-v3"] {
        v.services.push(service(NS, app));
        v.pods.push(pod(NS, app, "a", true));
        v.pods.push(pod(NS, app, "b", true));
    }
    v
}

struct Req<'a> {
    method: &'a str,
    host: &'a str,
    path: &'a str,
    query: Option<&'a str>,
    headers: HeaderMap,
}

fn get<'a>(host: &'a str, path: &'a str) -> Req<'a> {
    Req {
        method: "GET",
        host,
        path,
        query: None,
        headers: HeaderMap::new(),
    }
}

/// "service/pod", or the status code of a gateway answer.
fn outcome(table: &RouteTable, req: &Req<'_>, rng: &mut StdRng) -> String {
    let parts = RequestParts {
        method: req.method,
        host: req.host,
        path: req.path,
        query: req.query,
        headers: &req.headers,
    };
    match table.resolve("infra/my-gateway", 80, &parts, rng) {
        Decision::NotFound => "404".into(),
        Decision::Error { status, .. } => status.to_string(),
        Decision::Forward { service, pod, .. } => format!("{service}/{pod}"),
        Decision::Redirect { redirect, .. } => format!("redirect {}", redirect.status),
    }
}

fn service_of(table: &RouteTable, req: &Req<'_>) -> String {
    let o = outcome(table, req, &mut StdRng::seed_from_u64(7));
    o.split('/').next().unwrap_or_default().to_string()
}

fn table(v: &ClusterView) -> RouteTable {
    RouteTable::build(v)
}

#[test]
fn precedence_exact_then_longest_prefix() {
    let mut v = base_view();
    v.httproutes.push(route(
        NS,
        "a",
        T0,
        json!([]),
        json!([
            {"matches": [prefix("/")], "backendRefs": to("infra-backend-v1")},
            {"matches": [prefix("/shop")], "backendRefs": to("infra-backend-v2")},
        ]),
    ));
    // Newer route, but exact beats prefix whatever the age.
    v.httproutes.push(route(NS, "b", T2, json!([]), json!([
        {"matches": [{"path": {"type": "Exact", "value": "/shop/cart"}}], "backendRefs": to("infra-backend-v3")},
    ])));
    let t = table(&v);
    assert_eq!(service_of(&t, &get("x", "/")), "infra-backend-v1");
    assert_eq!(service_of(&t, &get("x", "/shop/item")), "infra-backend-v2");
    assert_eq!(
        service_of(&t, &get("x", "/shopping")),
        "infra-backend-v1",
        "prefix is element-wise"
    );
    assert_eq!(service_of(&t, &get("x", "/shop/cart")), "infra-backend-v3");
    assert_eq!(service_of(&t, &get("x", "/shop/cart/")), "infra-backend-v2");
}

#[test]
fn precedence_method_then_headers_then_query() {
    let mut v = base_view();
    v.httproutes.push(route(NS, "q", T0, json!([]), json!([
        {"matches": [{"path": {"value": "/api"}, "queryParams": [{"name": "v", "value": "2"}]}], "backendRefs": to("infra-backend-v3")},
    ])));
    v.httproutes.push(route(NS, "h", T1, json!([]), json!([
        {"matches": [{"path": {"value": "/api"}, "headers": [{"name": "x-v", "value": "2"}]}], "backendRefs": to("infra-backend-v2")},
    ])));
    v.httproutes.push(route(NS, "m", T2, json!([]), json!([
        {"matches": [{"path": {"value": "/api"}, "method": "POST"}], "backendRefs": to("infra-backend-v1")},
    ])));
    let t = table(&v);
    let mut r = get("x", "/api");
    r.method = "POST";
    r.query = Some("v=2");
    r.headers.insert("x-v", "2".parse().unwrap());
    assert_eq!(
        service_of(&t, &r),
        "infra-backend-v1",
        "method beats headers and query"
    );
    r.method = "GET";
    assert_eq!(service_of(&t, &r), "infra-backend-v2", "headers beat query");
    r.headers.clear();
    assert_eq!(service_of(&t, &r), "infra-backend-v3");
    r.query = None;
    assert_eq!(service_of(&t, &r), "404");
}

#[test]
fn more_header_matches_win() {
    let mut v = base_view();
    v.httproutes.push(route(NS, "r", T0, json!([]), json!([
        {"matches": [{"headers": [{"name": "a", "value": "1"}]}], "backendRefs": to("infra-backend-v1")},
        {"matches": [{"headers": [{"name": "a", "value": "1"}, {"name": "b", "value": "1"}]}], "backendRefs": to("infra-backend-v2")},
    ])));
    let t = table(&v);
    let mut r = get("x", "/");
    r.headers.insert("a", "1".parse().unwrap());
    assert_eq!(service_of(&t, &r), "infra-backend-v1");
    r.headers.insert("B", "1".parse().unwrap());
    assert_eq!(service_of(&t, &r), "infra-backend-v2");
}

#[test]
fn ties_go_to_oldest_then_name_then_rule_order() {
    let same = json!([{"matches": [prefix("/shop")], "backendRefs": to("infra-backend-v1")}]);
    let mut v = base_view();
    v.httproutes
        .push(route(NS, "zzz", T0, json!([]), same.clone()));
    v.httproutes.push(route(
        NS,
        "aaa",
        T1,
        json!([]),
        json!([{"matches": [prefix("/shop")], "backendRefs": to("infra-backend-v2")}]),
    ));
    assert_eq!(
        service_of(&table(&v), &get("x", "/shop")),
        "infra-backend-v1",
        "oldest wins over name"
    );
    v.httproutes[0]["metadata"]["creationTimestamp"] = json!(T1);
    assert_eq!(
        service_of(&table(&v), &get("x", "/shop")),
        "infra-backend-v2",
        "same second: aaa < zzz"
    );
    // Within one route the first matching rule wins.
    let mut v = base_view();
    v.httproutes.push(route(
        NS,
        "one",
        T0,
        json!([]),
        json!([
            {"matches": [prefix("/shop")], "backendRefs": to("infra-backend-v3")},
            {"matches": [prefix("/shop")], "backendRefs": to("infra-backend-v1")},
        ]),
    ));
    assert_eq!(
        service_of(&table(&v), &get("x", "/shop")),
        "infra-backend-v3"
    );
}

#[test]
fn hostnames_exact_wildcard_and_listener() {
    let mut v = base_view();
    v.gateways = vec![gateway(
        NS,
        "my-gateway",
        json!([
            {"name": "wild", "port": 80, "protocol": "HTTP", "hostname": "*.example.com"},
            {"name": "other", "port": 80, "protocol": "HTTP", "hostname": "other.net"},
        ]),
    )];
    v.httproutes.push(route(
        NS,
        "exact",
        T0,
        json!(["lior.example.com"]),
        json!([{"matches": [prefix("/shop")], "backendRefs": to("infra-backend-v1")}]),
    ));
    v.httproutes.push(route(
        NS,
        "wild",
        T0,
        json!(["*.example.com"]),
        json!([{"backendRefs": to("infra-backend-v2")}]),
    ));
    v.httproutes.push(route(
        NS,
        "any",
        T1,
        json!([]),
        json!([{"backendRefs": to("infra-backend-v3")}]),
    ));
    let t = table(&v);
    assert_eq!(
        service_of(&t, &get("lior.example.com", "/shop")),
        "infra-backend-v1"
    );
    assert_eq!(
        service_of(&t, &get("LIOR.example.com", "/shop")),
        "infra-backend-v1",
        "host is case-insensitive"
    );
    // The exact host matched, none of its rules did: no fallback to the wildcard (like Envoy).
    assert_eq!(service_of(&t, &get("lior.example.com", "/")), "404");
    // "wild" and "any" share the *.example.com host and tie on matches: the older one wins.
    assert_eq!(
        service_of(&t, &get("a.b.example.com", "/")),
        "infra-backend-v2"
    );
    // Route "any" has no hostnames: it serves the listener hostname(s).
    assert_eq!(service_of(&t, &get("other.net", "/")), "infra-backend-v3");
    assert_eq!(service_of(&t, &get("example.com", "/")), "404");
    assert_eq!(service_of(&t, &get("nope.org", "/")), "404");
}

#[test]
fn parent_refs_section_name_port_and_allowed_routes() {
    let mut v = base_view();
    v.gateways = vec![gateway(
        NS,
        "my-gateway",
        json!([
            {"name": "same", "port": 80, "protocol": "HTTP", "hostname": "same.test"},
            {"name": "all", "port": 80, "protocol": "HTTP", "hostname": "all.test", "allowedRoutes": {"namespaces": {"from": "All"}}},
            {"name": "sel", "port": 80, "protocol": "HTTP", "hostname": "sel.test", "allowedRoutes": {"namespaces": {"from": "Selector", "selector": {"matchLabels": {"team": "a"}}}}},
            {"name": "grpc-only", "port": 80, "protocol": "HTTP", "hostname": "grpc.test", "allowedRoutes": {"kinds": [{"kind": "GRPCRoute"}]}},
        ]),
    )];
    v.services.push(service("apps", "app"));
    v.pods.push(pod("apps", "app", "x", true));
    let mut r = route(
        "apps",
        "from-apps",
        T0,
        json!([]),
        json!([{"backendRefs": [{"name": "app", "port": 8080}]}]),
    );
    r["spec"]["parentRefs"] = json!([{"name": "my-gateway", "namespace": NS}]);
    v.httproutes.push(r);
    let mut r = route(
        NS,
        "pinned",
        T0,
        json!([]),
        json!([{"backendRefs": to("infra-backend-v1")}]),
    );
    r["spec"]["parentRefs"] = json!([{"name": "my-gateway", "sectionName": "same"}, {"name": "my-gateway", "sectionName": "missing"}, {"name": "my-gateway", "port": 8080}]);
    v.httproutes.push(r);
    let t = table(&v);
    assert_eq!(service_of(&t, &get("all.test", "/")), "app");
    assert_eq!(service_of(&t, &get("sel.test", "/")), "app");
    assert_eq!(service_of(&t, &get("same.test", "/")), "infra-backend-v1");
    assert_eq!(service_of(&t, &get("grpc.test", "/")), "404");
    let gw = t.gateway("infra/my-gateway").unwrap();
    let attached: Vec<u32> = gw.listeners.iter().map(|l| l.attached_routes).collect();
    assert_eq!(attached, vec![1, 1, 1, 0]);
    let reasons: BTreeMap<String, String> = t
        .route_statuses()
        .iter()
        .map(|s| {
            (
                format!("{}:{}", s.route_name, s.parent_ref),
                s.accepted.reason.clone(),
            )
        })
        .collect();
    assert_eq!(
        reasons[r#"pinned:{"name":"my-gateway","sectionName":"same"}"#],
        "Accepted"
    );
    assert_eq!(
        reasons[r#"pinned:{"name":"my-gateway","sectionName":"missing"}"#],
        "NoMatchingParent"
    );
    assert_eq!(
        reasons[r#"pinned:{"name":"my-gateway","port":8080}"#],
        "NoMatchingParent"
    );
    // Selector: a namespace without the label is refused.
    v.namespaces[1]["metadata"]["labels"] = json!({});
    v.gateways[0]["spec"]["listeners"][1]["allowedRoutes"] =
        json!({"namespaces": {"from": "Same"}});
    let t = table(&v);
    assert_eq!(service_of(&t, &get("sel.test", "/")), "404");
    let st = t
        .route_statuses()
        .iter()
        .find(|s| s.route_name == "from-apps")
        .unwrap();
    assert_eq!(st.accepted.reason, "NotAllowedByListeners");
}

#[test]
fn hostname_mismatch_is_not_accepted() {
    let mut v = base_view();
    v.gateways = vec![gateway(
        NS,
        "my-gateway",
        json!([{"name": "h", "port": 80, "protocol": "HTTP", "hostname": "*.example.com"}]),
    )];
    v.httproutes.push(route(
        NS,
        "r",
        T0,
        json!(["example.net"]),
        json!([{"backendRefs": to("infra-backend-v1")}]),
    ));
    let t = table(&v);
    assert_eq!(
        t.route_statuses()[0].accepted.reason,
        "NoMatchingListenerHostname"
    );
    assert_eq!(service_of(&t, &get("example.net", "/")), "404");
}

#[test]
fn invalid_matches_reject_the_route() {
    let mut v = base_view();
    v.httproutes.push(route(NS, "r", T0, json!([]), json!([{"matches": [{"path": {"type": "RegularExpression", "value": "("}}], "backendRefs": to("infra-backend-v1")}])));
    let t = table(&v);
    assert_eq!(t.route_statuses()[0].accepted.reason, "UnsupportedValue");
    assert_eq!(service_of(&t, &get("x", "/")), "404");
}

#[test]
fn backend_errors_500_and_503() {
    let mut v = base_view();
    v.services.push(service(NS, "empty"));
    v.pods.push(pod(NS, "empty", "notready", false));
    let mut terminating = pod(NS, "empty", "terminating", true);
    terminating["metadata"]["deletionTimestamp"] = json!(T1);
    v.pods.push(terminating);
    v.services.push(service("apps", "elsewhere"));
    v.pods.push(pod("apps", "elsewhere", "x", true));
    v.httproutes.push(route(NS, "r", T0, json!([]), json!([
        {"matches": [prefix("/missing")], "backendRefs": to("nope")},
        {"matches": [prefix("/badport")], "backendRefs": [{"name": "infra-backend-v1", "port": 9999}]},
        {"matches": [prefix("/noport")], "backendRefs": [{"name": "infra-backend-v1"}]},
        {"matches": [prefix("/kind")], "backendRefs": [{"name": "x", "kind": "Bucket", "group": "s3.example.com", "port": 1}]},
        {"matches": [prefix("/cross")], "backendRefs": [{"name": "elsewhere", "namespace": "apps", "port": 8080}]},
        {"matches": [prefix("/empty")], "backendRefs": to("empty")},
        {"matches": [prefix("/none")]},
        {"matches": [prefix("/zero")], "backendRefs": [{"name": "infra-backend-v1", "port": 8080, "weight": 0}]},
    ])));
    let t = table(&v);
    for p in [
        "/missing", "/badport", "/noport", "/kind", "/cross", "/none", "/zero",
    ] {
        assert_eq!(service_of(&t, &get("x", p)), "500", "{p}");
    }
    assert_eq!(service_of(&t, &get("x", "/empty")), "503");
    assert_eq!(service_of(&t, &get("x", "/other")), "404");
    let st = &t.route_statuses()[0];
    assert_eq!(
        (
            st.accepted.status,
            st.resolved_refs.status,
            st.resolved_refs.reason.as_str()
        ),
        (true, false, "BackendNotFound")
    );
    let parts = RequestParts {
        method: "GET",
        host: "x",
        path: "/empty",
        query: None,
        headers: &HeaderMap::new(),
    };
    match t.resolve(
        "infra/my-gateway",
        80,
        &parts,
        &mut StdRng::seed_from_u64(1),
    ) {
        Decision::Error {
            message, detail, ..
        } => {
            assert_eq!(message, NO_HEALTHY_UPSTREAM);
            assert!(detail.contains("infra/empty"), "{detail}");
        }
        d => panic!("{d:?}"),
    }
    // A ReferenceGrant makes the cross-namespace ref valid.
    v.reference_grants.push(
        json!({"metadata": {"name": "g", "namespace": "apps"}, "spec": {
        "from": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "namespace": NS}],
        "to": [{"group": "", "kind": "Service"}]}}),
    );
    assert_eq!(service_of(&table(&v), &get("x", "/cross")), "elsewhere");
}

#[test]
fn weights_split_traffic_and_zero_is_never_chosen() {
    let mut v = base_view();
    v.httproutes.push(route(
        NS,
        "split",
        T0,
        json!([]),
        json!([{"backendRefs": [
            {"name": "infra-backend-v1", "port": 8080, "weight": 3},
            {"name": "infra-backend-v2", "port": 8080, "weight": 1},
            {"name": "infra-backend-v3", "port": 8080, "weight": 0},
        ]}]),
    ));
    let t = table(&v);
    let mut rng = StdRng::seed_from_u64(42);
    let mut counts: BTreeMap<String, u32> = BTreeMap::new();
    for _ in 0..4000 {
        let o = outcome(&t, &get("x", "/"), &mut rng);
        *counts
            .entry(o.split('/').next().unwrap().to_string())
            .or_default() += 1;
    }
    assert_eq!(counts.get("infra-backend-v3"), None);
    let v1 = counts["infra-backend-v1"];
    assert!((2800..3200).contains(&v1), "{counts:?}");
    // A weighted invalid ref gets its share of 500s.
    let mut v = base_view();
    v.httproutes.push(route(
        NS,
        "half",
        T0,
        json!([]),
        json!([{"backendRefs": [
        {"name": "infra-backend-v1", "port": 8080}, {"name": "gone", "port": 8080}]}]),
    ));
    let t = table(&v);
    let errors = (0..2000)
        .filter(|_| outcome(&t, &get("x", "/"), &mut rng) == "500")
        .count();
    assert!((850..1150).contains(&errors), "{errors}");
}

#[test]
fn round_robin_over_ready_pods() {
    let mut v = base_view();
    v.pods.push(pod(NS, "infra-backend-v1", "c", false));
    v.httproutes.push(route(
        NS,
        "r",
        T0,
        json!([]),
        json!([{"backendRefs": to("infra-backend-v1")}]),
    ));
    let t = table(&v);
    let mut rng = StdRng::seed_from_u64(1);
    let seen: Vec<String> = (0..4)
        .map(|_| outcome(&t, &get("x", "/"), &mut rng))
        .collect();
    assert_eq!(
        seen,
        [
            "infra-backend-v1/infra-backend-v1-a",
            "infra-backend-v1/infra-backend-v1-b",
            "infra-backend-v1/infra-backend-v1-a",
            "infra-backend-v1/infra-backend-v1-b"
        ]
    );
}

#[test]
fn network_policy_blocks_some_or_all_endpoints() {
    let mut v = base_view();
    v.httproutes.push(route(
        NS,
        "r",
        T0,
        json!([]),
        json!([{"backendRefs": to("infra-backend-v1")}]),
    ));
    let mut rng = StdRng::seed_from_u64(1);
    // Isolate pod -a only: traffic goes to -b.
    let mut a = v.pods[0].clone();
    a["metadata"]["labels"]["locked"] = json!("yes");
    v.pods[0] = a;
    v.network_policies.push(json!({"metadata": {"name": "lock-a", "namespace": NS}, "spec": {"podSelector": {"matchLabels": {"locked": "yes"}}, "policyTypes": ["Ingress"]}}));
    let t = table(&v);
    for _ in 0..4 {
        assert_eq!(
            outcome(&t, &get("x", "/"), &mut rng),
            "infra-backend-v1/infra-backend-v1-b"
        );
    }
    // Deny all: 503 like Envoy's connect failure.
    v.network_policies.push(json!({"metadata": {"name": "deny-all", "namespace": NS}, "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}}));
    let t = table(&v);
    let parts = RequestParts {
        method: "GET",
        host: "x",
        path: "/",
        query: None,
        headers: &HeaderMap::new(),
    };
    match t.resolve("infra/my-gateway", 80, &parts, &mut rng) {
        Decision::Error {
            status: 503,
            message,
            detail,
            ..
        } => {
            assert_eq!(message, UPSTREAM_CONNECT_ERROR);
            assert!(detail.contains("NetworkPolicy infra/deny-all"), "{detail}");
        }
        d => panic!("{d:?}"),
    }
    // Allowing the gateway's namespace opens it again.
    v.network_policies.push(json!({"metadata": {"name": "allow-gw", "namespace": NS}, "spec": {"podSelector": {}, "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": NS}}}]}]}}));
    assert_eq!(
        outcome(&table(&v), &get("x", "/"), &mut rng),
        "infra-backend-v1/infra-backend-v1-a"
    );
}

fn fault(pods: &[&str], action: FaultAction) -> ActiveFault {
    ActiveFault {
        id: "NetworkChaos route-chaos/f".into(),
        namespace: NS.into(),
        pods: pods.iter().map(|p| p.to_string()).collect::<BTreeSet<_>>(),
        action,
        direction: Direction::To,
    }
}

#[test]
fn faults_partition_delay_loss() {
    let mut v = base_view();
    v.httproutes.push(route(
        NS,
        "r",
        T0,
        json!([]),
        json!([{"backendRefs": to("infra-backend-v1")}]),
    ));
    let mut rng = StdRng::seed_from_u64(3);
    let parts = RequestParts {
        method: "GET",
        host: "x",
        path: "/",
        query: None,
        headers: &HeaderMap::new(),
    };

    v.faults = vec![fault(&["infra-backend-v1-a"], FaultAction::Partition)];
    let t = table(&v);
    assert_eq!(
        outcome(&t, &get("x", "/"), &mut rng),
        "infra-backend-v1/infra-backend-v1-b"
    );
    v.faults = vec![fault(
        &["infra-backend-v1-a", "infra-backend-v1-b"],
        FaultAction::Partition,
    )];
    assert_eq!(outcome(&table(&v), &get("x", "/"), &mut rng), "503");

    v.faults = vec![fault(
        &["infra-backend-v1-a", "infra-backend-v1-b"],
        FaultAction::Delay {
            latency: Duration::from_millis(200),
            jitter: Duration::from_millis(50),
        },
    )];
    let t = table(&v);
    for _ in 0..50 {
        match t.resolve("infra/my-gateway", 80, &parts, &mut rng) {
            Decision::Forward { delay, .. } => {
                assert!((150..=250).contains(&delay.as_millis()), "{delay:?}")
            }
            d => panic!("{d:?}"),
        }
    }

    v.faults = vec![fault(
        &["infra-backend-v1-a", "infra-backend-v1-b"],
        FaultAction::Loss { percent: 100.0 },
    )];
    assert_eq!(outcome(&table(&v), &get("x", "/"), &mut rng), "503");
    v.faults = vec![fault(
        &["infra-backend-v1-a", "infra-backend-v1-b"],
        FaultAction::Loss { percent: 30.0 },
    )];
    let t = table(&v);
    let lost = (0..2000)
        .filter(|_| outcome(&t, &get("x", "/"), &mut rng) == "503")
        .count();
    assert!((480..720).contains(&lost), "{lost}");
    // A fault in another namespace with the same pod name changes nothing.
    let mut f = fault(
        &["infra-backend-v1-a", "infra-backend-v1-b"],
        FaultAction::Partition,
    );
    f.namespace = "apps".into();
    v.faults = vec![f];
    assert_ne!(outcome(&table(&v), &get("x", "/"), &mut rng), "503");
}
