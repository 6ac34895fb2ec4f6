//! The sandbox API server against the real `kube` client, over real HTTP(S).

use std::collections::BTreeSet;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use heatcheck::sandbox::registry::ResKey;
use heatcheck::sandbox::server::{serve_api, ApiConfig, ApiHandle, FaultSpec};
use heatcheck::sandbox::store::{Store, WriteOptions};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::discovery::Discovery;
use kube::runtime::watcher;
use kube::Client;
use serde_json::json;

async fn start() -> (ApiHandle, Client) {
    let h = serve_api(Store::new(), ApiConfig::default()).await.unwrap();
    let client = client_for(&h.kubeconfig_yaml()).await;
    (h, client)
}

async fn client_for(kubeconfig: &str) -> Client {
    let kc = kube::config::Kubeconfig::from_yaml(kubeconfig).unwrap();
    let cfg = kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
        .await
        .unwrap();
    Client::try_from(cfg).unwrap()
}

fn code(e: kube::Error) -> u16 {
    match e {
        kube::Error::Api(s) => s.code,
        other => panic!("expected an API error, got {other:?}"),
    }
}

fn cm(name: &str, labels: serde_json::Value) -> ConfigMap {
    serde_json::from_value(json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "labels": labels}, "data": {"n": "0"}}))
    .unwrap()
}

fn deployment(name: &str) -> Deployment {
    serde_json::from_value(
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": "nginx:1"}]}}}}),
    )
    .unwrap()
}

#[tokio::test]
async fn typed_crud_and_every_patch_type() {
    let (h, client) = start().await;
    let nss: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": "team"}})).unwrap();
    nss.create(&PostParams::default(), &ns).await.unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "team");
    let created = cms
        .create(&PostParams::default(), &cm("a", json!({})))
        .await
        .unwrap();
    assert!(created.metadata.uid.is_some());
    assert_eq!(cms.get("a").await.unwrap().data.unwrap()["n"], "0");
    assert_eq!(
        cms.list(&ListParams::default()).await.unwrap().items.len(),
        1
    );

    let deps: Api<Deployment> = Api::namespaced(client.clone(), "team");
    deps.create(&PostParams::default(), &deployment("web"))
        .await
        .unwrap();
    let pp = PatchParams::default();
    let d = deps
        .patch(
            "web",
            &pp,
            &Patch::Merge(json!({"metadata": {"labels": {"merged": "yes"}}})),
        )
        .await
        .unwrap();
    assert_eq!(d.metadata.labels.unwrap()["merged"], "yes");
    let d = deps
        .patch("web", &pp, &Patch::Strategic(json!({"spec": {"template": {"spec": {"containers": [{"name": "sidecar", "image": "envoy:1"}]}}}})))
        .await
        .unwrap();
    let names: Vec<String> = d
        .spec
        .template
        .spec
        .unwrap()
        .containers
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(names, ["app", "sidecar"]);
    let jp: json_patch::Patch = serde_json::from_value(json!([
        {"op": "test", "path": "/spec/replicas", "value": 1},
        {"op": "replace", "path": "/spec/replicas", "value": 3}
    ]))
    .unwrap();
    let d = deps
        .patch("web", &pp, &Patch::Json::<()>(jp.clone()))
        .await
        .unwrap();
    assert_eq!(d.spec.replicas, Some(3));
    // The test op now fails: 422, nothing changes.
    assert_eq!(
        code(
            deps.patch("web", &pp, &Patch::Json::<()>(jp))
                .await
                .unwrap_err()
        ),
        422
    );

    // Server-side apply creates, then prunes what the manager stops applying.
    let ssa = PatchParams::apply("heatcheck-test").force();
    let applied = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa"}, "data": {"a": "1", "b": "2"}});
    let o = cms
        .patch("ssa", &ssa, &Patch::Apply(&applied))
        .await
        .unwrap();
    assert_eq!(o.data.unwrap().len(), 2);
    let mf = o.metadata.managed_fields.unwrap();
    assert_eq!(
        (mf[0].manager.as_deref(), mf[0].operation.as_deref()),
        (Some("heatcheck-test"), Some("Apply"))
    );
    let applied = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa"}, "data": {"a": "9"}});
    let o = cms
        .patch("ssa", &ssa, &Patch::Apply(&applied))
        .await
        .unwrap();
    assert_eq!(
        o.data.unwrap().into_iter().collect::<Vec<_>>(),
        [("a".to_string(), "9".to_string())]
    );
    let no_manager = PatchParams::default();
    assert_eq!(
        code(
            cms.patch("ssa", &no_manager, &Patch::Apply(&applied))
                .await
                .unwrap_err()
        ),
        400
    );

    deps.delete("web", &DeleteParams::default()).await.unwrap();
    assert_eq!(code(deps.get("web").await.unwrap_err()), 404);
    h.shutdown().await;
}

#[tokio::test]
async fn discovery_finds_builtin_and_runtime_kinds_and_dynamic_crud() {
    let (h, client) = start().await;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd: CustomResourceDefinition = serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": ["wd"]},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}
    }))
    .unwrap();
    crds.create(&PostParams::default(), &crd).await.unwrap();

    let discovery = Discovery::new(client.clone()).run().await.unwrap();
    let find = |group: &str, plural: &str| {
        discovery
            .groups()
            .flat_map(|g| g.recommended_resources())
            .find(|(ar, _)| ar.group == group && ar.plural == plural)
    };
    let (route_ar, caps) =
        find("gateway.networking.k8s.io", "httproutes").expect("httproutes discovered");
    assert_eq!(caps.scope, kube::discovery::Scope::Namespaced);
    assert_eq!(
        find("example.com", "widgets")
            .expect("runtime CRD discovered")
            .0
            .kind,
        "Widget"
    );
    let aggregated = Discovery::new(client.clone())
        .run_aggregated()
        .await
        .unwrap();
    assert!(aggregated.groups().any(|g| g.name() == "example.com"));

    let routes: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &route_ar);
    let route: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
        "metadata": {"name": "r1"},
        "spec": {"parentRefs": [{"name": "gw"}], "hostnames": ["a.example"]}
    }))
    .unwrap();
    routes.create(&PostParams::default(), &route).await.unwrap();
    let got = routes.get("r1").await.unwrap();
    assert_eq!(got.data["spec"]["hostnames"][0], "a.example");
    let patched = routes
        .patch(
            "r1",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"hostnames": ["b.example"]}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.data["spec"]["hostnames"], json!(["b.example"]));
    assert_eq!(
        routes
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    routes.delete("r1", &DeleteParams::default()).await.unwrap();
    assert_eq!(code(routes.get("r1").await.unwrap_err()), 404);
    h.shutdown().await;
}

#[tokio::test]
async fn runtime_watcher_sees_added_modified_deleted() {
    let (h, client) = start().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let mut events = watcher(cms.clone(), watcher::Config::default()).boxed();
    // Wait for the initial list to finish.
    loop {
        match tokio::time::timeout(Duration::from_secs(10), events.try_next())
            .await
            .unwrap()
            .unwrap()
        {
            Some(watcher::Event::InitDone) => break,
            Some(_) => continue,
            None => panic!("watch ended"),
        }
    }
    cms.create(&PostParams::default(), &cm("w", json!({})))
        .await
        .unwrap();
    cms.patch(
        "w",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"n": "1"}})),
    )
    .await
    .unwrap();
    cms.delete("w", &DeleteParams::default()).await.unwrap();
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let ev = tokio::time::timeout(Duration::from_secs(10), events.try_next())
            .await
            .expect("an event in time")
            .unwrap()
            .unwrap();
        match ev {
            watcher::Event::Apply(o) => seen.push(format!("apply:{}", o.data.unwrap()["n"])),
            watcher::Event::Delete(_) => seen.push("delete".into()),
            _ => {}
        }
    }
    assert_eq!(seen, ["apply:0", "apply:1", "delete"]);
    h.shutdown().await;
}

#[tokio::test]
async fn stale_updates_conflict_and_parallel_writers_lose_nothing() {
    let (h, client) = start().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let first = cms
        .create(&PostParams::default(), &cm("counter", json!({})))
        .await
        .unwrap();
    let mut newer = first.clone();
    newer.data = Some([("n".to_string(), "100".to_string())].into());
    cms.replace("counter", &PostParams::default(), &newer)
        .await
        .unwrap();
    // `first` carries the old resourceVersion.
    assert_eq!(
        code(
            cms.replace("counter", &PostParams::default(), &first)
                .await
                .unwrap_err()
        ),
        409
    );

    let mut tasks = Vec::new();
    for _ in 0..8 {
        let cms = cms.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..25 {
                loop {
                    let mut cur = cms.get("counter").await.unwrap();
                    let n: u64 = cur.data.as_ref().unwrap()["n"].parse().unwrap();
                    cur.data = Some([("n".to_string(), (n + 1).to_string())].into());
                    match cms.replace("counter", &PostParams::default(), &cur).await {
                        Ok(_) => break,
                        Err(kube::Error::Api(s)) if s.code == 409 => continue,
                        Err(_) => unreachable!(),
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(cms.get("counter").await.unwrap().data.unwrap()["n"], "300");

    // Concurrent merge patches are retried server-side: none is lost.
    let mut tasks = Vec::new();
    for i in 0..20 {
        let cms = cms.clone();
        tasks.push(tokio::spawn(async move {
            cms.patch(
                "counter",
                &PatchParams::default(),
                &Patch::Merge(json!({"data": {format!("k{i}"): "x"}})),
            )
            .await
            .unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(cms.get("counter").await.unwrap().data.unwrap().len(), 21);
    h.shutdown().await;
}

#[tokio::test]
async fn ten_thousand_configmaps_page_through_exactly() {
    let (h, client) = start().await;
    let key = ResKey::new("", "configmaps");
    let mut want = BTreeSet::new();
    for i in 0..10_000 {
        let name = format!("cm-{i:05}");
        h.store
            .create(
                &key,
                Some("default"),
                json!({"metadata": {"name": name}}),
                &WriteOptions::default(),
            )
            .unwrap();
        want.insert(name);
    }
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    let mut got = BTreeSet::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut lp = ListParams::default().limit(500);
        if let Some(t) = &token {
            lp = lp.continue_token(t);
        }
        let page = cms.list(&lp).await.unwrap();
        pages += 1;
        assert!(page.items.len() <= 500);
        for o in page.items {
            assert!(got.insert(o.metadata.name.unwrap()), "no duplicates");
        }
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(c) => token = Some(c),
            None => break,
        }
    }
    assert_eq!(pages, 20);
    assert_eq!(got, want);
    h.shutdown().await;
}

#[tokio::test]
async fn auth_size_validation_and_dry_run_errors() {
    let (h, client) = start().await;
    let bad = h.kubeconfig_yaml().replace(&h.token, "wrong-token");
    let intruder: Api<ConfigMap> = Api::namespaced(client_for(&bad).await, "default");
    assert_eq!(
        code(intruder.list(&ListParams::default()).await.unwrap_err()),
        401
    );

    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
    let r = http
        .get(format!("{}/api/v1/namespaces", h.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let s: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        (s["kind"].as_str(), s["reason"].as_str()),
        (Some("Status"), Some("Unauthorized"))
    );
    let r = http
        .get(format!("{}/api/v1/namespaces", h.url))
        .bearer_auth(&h.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "plain HTTP with the token works");

    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let mut huge = cm("huge", json!({}));
    huge.data = Some([("blob".to_string(), "x".repeat(4 * 1024 * 1024))].into());
    assert_eq!(
        code(cms.create(&PostParams::default(), &huge).await.unwrap_err()),
        413
    );
    assert_eq!(
        code(
            cms.create(&PostParams::default(), &cm("Bad_Name", json!({})))
                .await
                .unwrap_err()
        ),
        422
    );

    let dry = PostParams {
        dry_run: true,
        ..Default::default()
    };
    let o = cms.create(&dry, &cm("ghost", json!({}))).await.unwrap();
    assert_eq!(o.metadata.name.as_deref(), Some("ghost"));
    assert_eq!(code(cms.get("ghost").await.unwrap_err()), 404);
    cms.create(&PostParams::default(), &cm("real", json!({})))
        .await
        .unwrap();
    cms.delete("real", &DeleteParams::default().dry_run())
        .await
        .unwrap();
    let mut changed = cms.get("real").await.unwrap();
    changed.data = Some([("n".to_string(), "dry".to_string())].into());
    cms.replace("real", &dry, &changed).await.unwrap();
    let pd = PatchParams {
        dry_run: true,
        ..Default::default()
    };
    cms.patch("real", &pd, &Patch::Merge(json!({"data": {"n": "dry"}})))
        .await
        .unwrap();
    assert_eq!(cms.get("real").await.unwrap().data.unwrap()["n"], "0");

    // Injected faults: every 2nd matching request is a 429 with Retry-After.
    h.inject_faults(FaultSpec {
        status: 429,
        every_nth: 2,
        paths_containing: Some("/configmaps".into()),
    });
    let url = format!("{}/api/v1/namespaces/default/configmaps", h.url);
    let a = http.get(&url).bearer_auth(&h.token).send().await.unwrap();
    let b = http.get(&url).bearer_auth(&h.token).send().await.unwrap();
    assert_eq!((a.status().as_u16(), b.status().as_u16()), (200, 429));
    assert_eq!(b.headers()["retry-after"], "1");
    h.clear_faults();
    assert_eq!(
        http.get(&url)
            .bearer_auth(&h.token)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    h.shutdown().await;
}

#[tokio::test]
async fn finalizers_hold_deletion_until_removed() {
    let (h, client) = start().await;
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    let mut o = cm("held", json!({}));
    o.metadata.finalizers = Some(vec!["heatcheck.io/hold".into()]);
    cms.create(&PostParams::default(), &o).await.unwrap();
    let res = cms.delete("held", &DeleteParams::default()).await.unwrap();
    let pending = res.left().expect("deletion pending: the object comes back");
    assert!(pending.metadata.deletion_timestamp.is_some());
    assert!(cms.get("held").await.is_ok());
    cms.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    assert_eq!(code(cms.get("held").await.unwrap_err()), 404);
    h.shutdown().await;
}

#[tokio::test]
async fn label_and_field_selector_variants() {
    let (h, client) = start().await;
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    for (n, l) in [
        ("a", json!({"tier": "web", "env": "prod"})),
        ("b", json!({"tier": "db", "env": "dev"})),
        ("c", json!({"tier": "cache"})),
    ] {
        cms.create(&PostParams::default(), &cm(n, l)).await.unwrap();
    }
    let names = |sel: &'static str, field: bool| {
        let cms = cms.clone();
        async move {
            let lp = if field {
                ListParams::default().fields(sel)
            } else {
                ListParams::default().labels(sel)
            };
            let mut v: Vec<String> = cms
                .list(&lp)
                .await
                .unwrap()
                .items
                .into_iter()
                .map(|o| o.metadata.name.unwrap())
                .collect();
            v.sort();
            v.join(",")
        }
    };
    assert_eq!(names("tier=web", false).await, "a");
    assert_eq!(names("tier==db", false).await, "b");
    assert_eq!(names("tier!=web", false).await, "b,c");
    assert_eq!(names("tier in (web,db)", false).await, "a,b");
    assert_eq!(names("tier notin (web,db)", false).await, "c");
    assert_eq!(names("env", false).await, "a,b");
    assert_eq!(names("!env", false).await, "c");
    assert_eq!(names("env,tier!=db", false).await, "a");
    assert_eq!(names("metadata.name=b", true).await, "b");
    assert_eq!(
        names("metadata.name!=b,metadata.namespace=default", true).await,
        "a,c"
    );
    let err = cms
        .list(&ListParams::default().fields("data.x=1"))
        .await
        .unwrap_err();
    match err {
        kube::Error::Api(s) => assert_eq!(
            (s.code, s.message.as_str()),
            (400, "field label not supported: data.x")
        ),
        other => panic!("{other:?}"),
    }
    // deletecollection with a selector.
    cms.delete_collection(
        &DeleteParams::default(),
        &ListParams::default().labels("env"),
    )
    .await
    .unwrap();
    assert_eq!(names("", false).await, "c");
    h.shutdown().await;
}
