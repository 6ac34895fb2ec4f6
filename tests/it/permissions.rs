//! The permission preflight against the sandbox's RBAC: an identity that
//! may create but not delete never starts a run it could not undo (exit 2,
//! the cluster unchanged); granted the Role `heatcheck plan` prints, the
//! same run passes.

use crate::common;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::{json, Value};

use common::{args, tokio_block, Case, SandboxProcess};

const NS: &str = "perm-ns";

const SUITE: &str = r#"apiVersion: heatcheck.dev/v1alpha1
kind: Suite
metadata: {name: perms}
spec:
  target: {namespace: perm-ns}
  fixtures:
    - apply:
        manifest: |
          apiVersion: v1
          kind: ConfigMap
          metadata: {name: settings}
          data: {mode: calm}
  scenarios:
    - name: change and add config
      steps:
        - patch: {kind: ConfigMap, name: settings, patch: {data: {mode: chaos}}}
        - create:
            manifest: |
              apiVersion: v1
              kind: ConfigMap
              metadata: {name: extra}
      assertions:
        - resource: {kind: ConfigMap, name: settings, expect: {$.data.mode: chaos}}
"#;

async fn admin(kubeconfig: &std::path::Path) -> Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let kc = kube::config::Kubeconfig::read_from(kubeconfig).unwrap();
    let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .unwrap();
    Client::try_from(cfg).unwrap()
}

/// Applies the plan's Role (verbs filtered by `keep`) bound to user alice.
async fn grant(kubeconfig: &std::path::Path, role: &Value, keep: &dyn Fn(&str) -> bool) {
    let client = admin(kubeconfig).await;
    let mut role = role.clone();
    for rule in role["rules"].as_array_mut().unwrap() {
        let verbs: Vec<Value> = rule["verbs"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|v| keep(v.as_str().unwrap()))
            .cloned()
            .collect();
        rule["verbs"] = Value::Array(verbs);
    }
    let role: Role = serde_json::from_value(role).unwrap();
    let ssa = PatchParams::apply("perm-test").force();
    Api::<Role>::namespaced(client.clone(), NS)
        .patch("heatcheck-runner", &ssa, &Patch::Apply(&role))
        .await
        .unwrap();
    let binding: RoleBinding = serde_json::from_value(json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "heatcheck-runner", "namespace": NS},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "heatcheck-runner"},
        "subjects": [{"kind": "User", "name": "alice", "apiGroup": "rbac.authorization.k8s.io"}]
    }))
    .unwrap();
    Api::<RoleBinding>::namespaced(client, NS)
        .patch("heatcheck-runner", &ssa, &Patch::Apply(&binding))
        .await
        .unwrap();
}

#[test]
fn a_run_that_could_not_undo_itself_never_starts() {
    let sandbox = SandboxProcess::start_with(&["--user", "alice"]);
    let kc = sandbox.kubeconfig.to_str().unwrap().to_string();
    tokio_block(async {
        let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": NS}})).unwrap();
        Api::<Namespace>::all(admin(&sandbox.kubeconfig).await)
            .create(&PostParams::default(), &ns)
            .await
            .unwrap();
    });
    let case = Case::suite(SUITE);
    // The Role the plan prints (computed as admin).
    let plan = case.exec(&args(&[
        "plan",
        "suite.yaml",
        "--kubeconfig",
        &kc,
        "--output",
        "json",
    ]));
    plan.assert_code(0);
    let plan: Value = serde_json::from_str(&plan.stdout).unwrap();
    let role = plan["suites"][0]["rbac"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["kind"] == "Role")
        .unwrap()
        .clone();

    // Everything but delete: the run could change things it cannot undo.
    tokio_block(grant(&sandbox.kubeconfig, &role, &|v| v != "delete"));
    let before = tokio_block(common::snapshot(&sandbox.kubeconfig));
    let as_alice = args(&[
        "run",
        "suite.yaml",
        "--kubeconfig",
        &kc,
        "--context",
        "alice",
    ]);
    let out = case.exec(&as_alice);
    out.assert_code(2);
    for expected in [
        "error: these credentials cannot run the suite (or undo it); nothing was changed. Missing 1 permission(s):",
        "  delete configmaps in perm-ns: to undo the create of fixture step 1",
        "hint: bind the Role that `heatcheck plan suite.yaml` prints to this identity",
    ] {
        assert!(out.stderr.contains(expected), "missing {expected:?}:\n{}", out.stderr);
    }
    assert_eq!(
        tokio_block(common::snapshot(&sandbox.kubeconfig)),
        before,
        "a refused run changed the cluster"
    );
    // plan, as alice, says the same.
    let plan = case.exec(&args(&[
        "plan",
        "suite.yaml",
        "--kubeconfig",
        &kc,
        "--context",
        "alice",
    ]));
    assert!(
        plan.stdout.contains(
            "denied   delete configmaps in perm-ns: to undo the create of fixture step 1"
        ),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout
            .contains("verdict: cannot run with these credentials"),
        "{}",
        plan.stdout
    );
    plan.assert_code(2);

    // Granted the whole Role, the same run passes and leaves no trace.
    tokio_block(grant(&sandbox.kubeconfig, &role, &|_| true));
    let before = tokio_block(common::snapshot(&sandbox.kubeconfig));
    let out = case.exec(&as_alice);
    out.assert_code(0);
    assert!(
        !out.stderr.contains("could not be checked"),
        "{}",
        out.stderr
    );
    assert_eq!(tokio_block(common::snapshot(&sandbox.kubeconfig)), before);
}

#[test]
fn skipping_the_check_is_warned() {
    let sandbox = SandboxProcess::start();
    let kc = sandbox.kubeconfig.to_str().unwrap().to_string();
    let case = Case::suite(&SUITE.replace(
        "target: {namespace: perm-ns}",
        "target: {namespace: perm-skip, createNamespace: true}",
    ));
    let out = case.exec(&args(&[
        "run",
        "suite.yaml",
        "--kubeconfig",
        &kc,
        "--skip-permission-check",
    ]));
    out.assert_code(0);
    assert!(
        out.stderr
            .contains("warning: --skip-permission-check: permissions were not checked"),
        "{}",
        out.stderr
    );
}

/// An API server that lists SelfSubjectAccessReview but answers 404 to it
/// (an aggregated API gone, a proxy in the way): every permission is
/// "unknown", never "denied". A tiny real HTTP server on 127.0.0.1.
#[test]
fn a_404_from_the_review_api_is_unknown_not_denied() {
    use axum::routing::{get, post};
    use axum::Json;
    use heatcheck::guard::permissions::{review, Access, Need};

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let reviews = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = reviews.clone();
    let app = axum::Router::new()
        .route("/api", get(|| async { Json(json!({"kind": "APIVersions", "versions": ["v1"]})) }))
        .route("/api/v1", get(|| async {
            Json(json!({"kind": "APIResourceList", "groupVersion": "v1", "resources": []}))
        }))
        .route("/apis", get(|| async {
            Json(json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": [{
                "name": "authorization.k8s.io",
                "versions": [{"groupVersion": "authorization.k8s.io/v1", "version": "v1"}],
                "preferredVersion": {"groupVersion": "authorization.k8s.io/v1", "version": "v1"}}]}))
        }))
        .route("/apis/authorization.k8s.io/v1", get(|| async {
            Json(json!({"kind": "APIResourceList", "groupVersion": "authorization.k8s.io/v1", "resources": [
                {"name": "selfsubjectaccessreviews", "singularName": "selfsubjectaccessreview", "namespaced": false,
                 "kind": "SelfSubjectAccessReview", "verbs": ["create"]}]}))
        }))
        .route(
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            post(move || {
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                async {
                    (
                        axum::http::StatusCode::NOT_FOUND,
                        Json(json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                            "message": "the server could not find the requested resource", "reason": "NotFound", "code": 404})),
                    )
                }
            }),
        );
    rt.spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    std::fs::write(
        &kc,
        format!(
            "apiVersion: v1\nkind: Config\nclusters: [{{name: c, cluster: {{server: 'http://{addr}'}}}}]\nusers: [{{name: u, user: {{}}}}]\ncontexts: [{{name: x, context: {{cluster: c, user: u}}}}]\ncurrent-context: x\n"
        ),
    )
    .unwrap();
    let need = |verb: &str| Need {
        verb: verb.into(),
        group: String::new(),
        resource: "configmaps".into(),
        namespace: Some("shop".into()),
        why: "test".into(),
    };
    let answers = rt.block_on(async {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client =
            heatcheck::cluster::ClusterClient::connect(&heatcheck::cluster::ConnectOptions {
                kubeconfig: Some(kc.clone()),
                context: None,
            })
            .await
            .unwrap();
        // The same permission twice is asked once.
        review(&client, &[need("delete"), need("create"), need("delete")]).await
    });
    assert_eq!(answers, [Access::Unknown; 3]);
    assert_eq!(
        reviews.load(std::sync::atomic::Ordering::SeqCst),
        2,
        "each distinct permission is reviewed once"
    );
}
