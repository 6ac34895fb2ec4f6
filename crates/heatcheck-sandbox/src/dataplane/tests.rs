//! Routing through the whole table, listeners, and the KubeCon scenario over real sockets.

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
