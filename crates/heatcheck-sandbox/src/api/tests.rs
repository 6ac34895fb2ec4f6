//! In-process tests of the request handling, including a no-panic proptest.

use super::*;
use proptest::prelude::*;

fn state() -> ApiState {
    ApiState::new(Store::new())
}

async fn call(
    st: &ApiState,
    method: &str,
    uri: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> (u16, Value) {
    let mut b = Request::builder().method(method).uri(uri);
    if let Some(ct) = content_type {
        b = b.header(header::CONTENT_TYPE, ct);
    }
    let resp = handle(st, b.body(Body::from(body)).unwrap()).await;
    let code = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (code, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

async fn json_call(st: &ApiState, method: &str, uri: &str, ct: &str, v: Value) -> (u16, Value) {
    call(st, method, uri, Some(ct), serde_json::to_vec(&v).unwrap()).await
}

const CMS: &str = "/api/v1/namespaces/default/configmaps";

#[tokio::test]
async fn crud_and_status_codes() {
    let st = state();
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "labels": {"x": "1"}}, "data": {"k": "v"}});
    let (c, o) = json_call(&st, "POST", CMS, "application/json", cm.clone()).await;
    assert_eq!(c, 201, "{o}");
    assert_eq!(
        json_call(&st, "POST", CMS, "application/json", cm).await.0,
        409
    );
    assert_eq!(
        call(&st, "GET", &format!("{CMS}/a"), None, vec![]).await.0,
        200
    );
    assert_eq!(
        call(&st, "GET", &format!("{CMS}/zz"), None, vec![]).await.0,
        404
    );
    assert_eq!(
        call(&st, "POST", &format!("{CMS}/a"), None, vec![]).await.0,
        405
    );
    assert_eq!(
        call(&st, "GET", "/api/v1/nothings", None, vec![]).await.0,
        404
    );
    let (c, s) = call(
        &st,
        "POST",
        CMS,
        Some("application/json"),
        b"{nope".to_vec(),
    )
    .await;
    assert_eq!((c, s["kind"].as_str()), (400, Some("Status")));
    assert_eq!(
        call(&st, "POST", CMS, Some("text/csv"), b"a,b".to_vec())
            .await
            .0,
        415
    );
    let (c, s) = call(
        &st,
        "GET",
        &format!("{CMS}?fieldSelector=spec.x%3D1"),
        None,
        vec![],
    )
    .await;
    assert_eq!(c, 400);
    assert_eq!(s["message"], "field label not supported: spec.x");
    let (c, l) = call(
        &st,
        "GET",
        &format!("{CMS}?labelSelector=x%20in%20(1,2)"),
        None,
        vec![],
    )
    .await;
    assert_eq!(
        (c, l["kind"].as_str(), l["items"].as_array().map(Vec::len)),
        (200, Some("ConfigMapList"), Some(1))
    );
    assert_eq!(
        call(&st, "GET", &format!("{CMS}?dryRun=Some"), None, vec![])
            .await
            .0,
        200
    );
    let (c, _) = json_call(
        &st,
        "POST",
        &format!("{CMS}?dryRun=Some"),
        "application/json",
        json!({"metadata": {"name": "q"}}),
    )
    .await;
    assert_eq!(c, 400);
    let big = vec![b' '; MAX_BODY + 10];
    assert_eq!(
        call(&st, "POST", CMS, Some("application/json"), big)
            .await
            .0,
        413
    );
    let (c, s) = call(&st, "DELETE", &format!("{CMS}/a"), None, vec![]).await;
    assert_eq!((c, s["status"].as_str()), (200, Some("Success")));
}

#[tokio::test]
async fn patch_types_and_scale() {
    let st = state();
    let dep = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "d"}},
            "template": {"metadata": {"labels": {"app": "d"}}, "spec": {"containers": [{"name": "c", "image": "i:1"}]}}}});
    let deps = "/apis/apps/v1/namespaces/default/deployments";
    assert_eq!(
        json_call(&st, "POST", deps, "application/json", dep)
            .await
            .0,
        201
    );
    let d = format!("{deps}/d");
    let (c, o) = json_call(
        &st,
        "PATCH",
        &d,
        "application/strategic-merge-patch+json",
        json!({"spec": {"template": {"spec": {"containers": [{"name": "side", "image": "s:1"}]}}}}),
    )
    .await;
    assert_eq!(c, 200, "{o}");
    assert_eq!(
        o["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let (c, o) = json_call(
        &st,
        "PATCH",
        &d,
        "application/merge-patch+json",
        json!({"metadata": {"labels": {"m": "1"}}}),
    )
    .await;
    assert_eq!((c, &o["metadata"]["labels"]["m"]), (200, &json!("1")));
    let (c, _) = json_call(
        &st,
        "PATCH",
        &d,
        "application/json-patch+json",
        json!([{"op": "test", "path": "/spec/replicas", "value": 9}]),
    )
    .await;
    assert_eq!(c, 422);
    let (c, s) = json_call(
        &st,
        "PATCH",
        &format!("{d}/scale"),
        "application/merge-patch+json",
        json!({"spec": {"replicas": 4}}),
    )
    .await;
    assert_eq!(
        (
            c,
            &s["kind"],
            &s["spec"]["replicas"],
            &s["status"]["selector"]
        ),
        (200, &json!("Scale"), &json!(4), &json!("app=d"))
    );
    let (_, o) = call(&st, "GET", &d, None, vec![]).await;
    assert_eq!(o["spec"]["replicas"], 4);
    let (c, o) = json_call(
        &st,
        "PATCH",
        &format!("{d}/status"),
        "application/merge-patch+json",
        json!({"status": {"readyReplicas": 2}}),
    )
    .await;
    assert_eq!((c, &o["status"]["readyReplicas"]), (200, &json!(2)));
    // Apply needs a field manager.
    let (c, _) = call(
        &st,
        "PATCH",
        &d,
        Some("application/apply-patch+yaml"),
        b"metadata: {name: d}".to_vec(),
    )
    .await;
    assert_eq!(c, 400);
    let yaml = b"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: d\n  labels: {applied: 'yes'}\n".to_vec();
    let (c, o) = call(
        &st,
        "PATCH",
        &format!("{d}?fieldManager=me"),
        Some("application/apply-patch+yaml"),
        yaml,
    )
    .await;
    assert_eq!(
        (c, &o["metadata"]["labels"]["applied"]),
        (200, &json!("yes")),
        "{o}"
    );
    assert_eq!(o["metadata"]["managedFields"][0]["manager"], "me");
    let yaml = b"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: d\n".to_vec();
    let (_, o) = call(
        &st,
        "PATCH",
        &format!("{d}?fieldManager=me"),
        Some("application/apply-patch+yaml"),
        yaml,
    )
    .await;
    assert!(o["metadata"]["labels"].get("applied").is_none(), "{o}");
}

#[tokio::test]
async fn discovery_and_tables() {
    let st = state();
    let (c, v) = call(&st, "GET", "/apis", None, vec![]).await;
    assert_eq!((c, v["kind"].as_str()), (200, Some("APIGroupList")));
    let resp = handle(&st, Request::get("/apis").header(header::ACCEPT, "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json").body(Body::empty()).unwrap()).await;
    assert_eq!(
        resp.headers()[header::CONTENT_TYPE],
        discovery::AGGREGATED_CONTENT_TYPE
    );
    let (c, v) = call(&st, "GET", "/openapi/v3", None, vec![]).await;
    assert_eq!(c, 200);
    assert!(v["paths"]["api/v1"].is_object());
    let resp = handle(
        &st,
        Request::get("/api/v1/namespaces")
            .header(
                header::ACCEPT,
                "application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
            )
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    let t: Value =
        serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(t["kind"], "Table");
    assert_eq!(t["columnDefinitions"][1]["name"], "Status");
    assert_eq!(t["rows"].as_array().unwrap().len(), 4);
}

#[tokio::test]
async fn watch_streams_filtered_events_and_gone() {
    let st = state();
    let rv = st.store.resource_version();
    for (n, l) in [("a", "yes"), ("b", "no")] {
        json_call(
            &st,
            "POST",
            CMS,
            "application/json",
            json!({"metadata": {"name": n, "labels": {"w": l}}}),
        )
        .await;
    }
    // a stops matching: DELETED; timeoutSeconds ends the stream.
    json_call(
        &st,
        "PATCH",
        &format!("{CMS}/a"),
        "application/merge-patch+json",
        json!({"metadata": {"labels": {"w": "no"}}}),
    )
    .await;
    let uri =
        format!("{CMS}?watch=true&resourceVersion={rv}&labelSelector=w%3Dyes&timeoutSeconds=1");
    let resp = handle(&st, Request::get(uri).body(Body::empty()).unwrap()).await;
    let text = String::from_utf8(
        resp.into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap();
    let types: Vec<String> = text
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(types, ["ADDED", "DELETED"], "{text}");
    // A version older than the history: one ERROR event with 410.
    let st2 = state();
    for i in 0..20_010 {
        st2.store
            .create(
                &crate::registry::ResKey::new("", "configmaps"),
                Some("default"),
                json!({"metadata": {"name": format!("c{i}")}}),
                &Default::default(),
            )
            .unwrap();
    }
    let resp = handle(
        &st2,
        Request::get(format!("{CMS}?watch=1&resourceVersion=1001"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let text = String::from_utf8(
        resp.into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap();
    let ev: Value = serde_json::from_str(text.trim()).unwrap();
    assert_eq!(
        (ev["type"].as_str(), &ev["object"]["code"]),
        (Some("ERROR"), &json!(410))
    );
}

fn arb_method() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS",
    ])
}

fn arb_path() -> impl Strategy<Value = String> {
    let seg = prop::sample::select(vec![
        "api",
        "apis",
        "v1",
        "apps",
        "namespaces",
        "default",
        "kube-system",
        "configmaps",
        "deployments",
        "pods",
        "status",
        "scale",
        "x",
        "gateway.networking.k8s.io",
        "httproutes",
        "watch",
        "%00",
        "..",
        "",
        "a",
        "customresourcedefinitions",
        "apiextensions.k8s.io",
        "openapi",
        "v3",
        "version",
    ]);
    let query = prop::sample::select(vec![
        "",
        "?limit=1",
        "?labelSelector=a%3Db",
        "?labelSelector=(((",
        "?fieldSelector=metadata.name%3Da",
        "?continue=zzz",
        "?dryRun=All",
        "?dryRun=x",
        "?fieldManager=m",
        "?limit=-5",
        "?propagationPolicy=Orphan",
        "?includeObject=Object",
        "?fieldValidation=Strict",
    ]);
    (prop::collection::vec(seg, 0..7), query)
        .prop_map(|(segs, q)| format!("/{}{}", segs.join("/"), q))
}

fn arb_body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..64),
        Just(b"{\"metadata\":{\"name\":\"a\"}}".to_vec()),
        Just(b"{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"a\",\"finalizers\":[\"x/y\"]}}".to_vec()),
        Just(b"[{\"op\":\"remove\",\"path\":\"/metadata\"}]".to_vec()),
        Just(b"{\"spec\":{\"replicas\":\"many\"},\"metadata\":null}".to_vec()),
        Just(b"metadata: {name: a}\nspec: [1, 2]".to_vec()),
        Just(b"null".to_vec()),
        Just(b"{\"metadata\":{\"name\":\"a\",\"resourceVersion\":\"1\"}}".to_vec()),
    ]
}

fn arb_ct() -> impl Strategy<Value = Option<&'static str>> {
    prop::option::of(prop::sample::select(vec![
        "application/json",
        "application/yaml",
        "application/merge-patch+json",
        "application/json-patch+json",
        "application/strategic-merge-patch+json",
        "application/apply-patch+yaml",
        "application/vnd.kubernetes.protobuf",
        "text/plain",
        "application/json; charset=utf-8",
    ]))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]
    #[test]
    fn never_panics_and_always_answers_status(reqs in prop::collection::vec((arb_method(), arb_path(), arb_ct(), arb_body()), 1..12)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let st = state();
            for (m, p, ct, body) in reqs {
                // Watches stream until timeout; keep them short.
                let p = if p.contains("watch") { format!("{p}{}timeoutSeconds=0", if p.contains('?') { '&' } else { '?' }) } else { p };
                let Ok(uri) = p.parse::<http::Uri>() else { continue };
                let mut b = Request::builder().method(m).uri(uri);
                if let Some(ct) = ct { b = b.header(header::CONTENT_TYPE, ct); }
                let resp = handle(&st, b.body(Body::from(body)).unwrap()).await;
                let code = resp.status().as_u16();
                let bytes = tokio::time::timeout(std::time::Duration::from_secs(5), resp.into_body().collect()).await
                    .expect("body completes").unwrap().to_bytes();
                if code >= 400 {
                    let s: Value = serde_json::from_slice(&bytes).expect("error bodies are JSON");
                    prop_assert_eq!(&s["kind"], "Status");
                    prop_assert_eq!(s["code"].as_u64(), Some(u64::from(code)));
                }
            }
            // The store stays consistent: every object has server metadata at
            // or below the current version, in an existing namespace.
            let top = st.store.resource_version();
            for t in st.store.registry().types() {
                let page = st.store.list(&t.key(), None, &|_| true, None, None).unwrap();
                for o in page.items {
                    let rv: u64 = o["metadata"]["resourceVersion"].as_str().unwrap().parse().unwrap();
                    prop_assert!(rv <= top);
                    prop_assert!(o["metadata"]["uid"].is_string());
                    if t.namespaced {
                        let ns = o["metadata"]["namespace"].as_str().unwrap();
                        prop_assert!(st.store.get(&crate::registry::ResKey::new("", "namespaces"), None, ns).is_ok());
                    }
                }
            }
            Ok(())
        })?;
    }
}

#[tokio::test]
async fn reference_grant_is_served_at_v1_and_v1beta1() {
    let st = state();
    let grants =
        |v: &str| format!("/apis/gateway.networking.k8s.io/{v}/namespaces/default/referencegrants");
    let grant = |v: &str, name: &str| {
        json!({"apiVersion": format!("gateway.networking.k8s.io/{v}"), "kind": "ReferenceGrant",
            "metadata": {"name": name},
            "spec": {"from": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "namespace": "a"}],
                     "to": [{"group": "", "kind": "Service"}]}})
    };
    let (c, o) = json_call(
        &st,
        "POST",
        &grants("v1"),
        "application/json",
        grant("v1", "new"),
    )
    .await;
    assert_eq!(c, 201, "{o}");
    let (c, o) = json_call(
        &st,
        "POST",
        &grants("v1beta1"),
        "application/json",
        grant("v1beta1", "old"),
    )
    .await;
    assert_eq!(c, 201, "{o}");
    // One object, whichever version the URL names; the answer speaks that version.
    for (v, name) in [("v1beta1", "new"), ("v1", "old")] {
        let (c, o) = call(&st, "GET", &format!("{}/{name}", grants(v)), None, vec![]).await;
        assert_eq!(c, 200, "{o}");
        assert_eq!(o["apiVersion"], format!("gateway.networking.k8s.io/{v}"));
        assert_eq!(o["spec"]["from"][0]["namespace"], "a");
    }
    // A body naming another kind's version is still refused.
    let (c, _) = json_call(&st, "POST", &grants("v1"), "application/json",
        json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": {"name": "x"}})).await;
    assert_eq!(c, 400);
}
