//! `heatcheck generate` and `run --locked` end to end: the real binary, the
//! sandbox, and a fake OpenAI-compatible server on 127.0.0.1 speaking the
//! chat-completions wire format. The server records every request body.

mod common;

use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::routing::post;
use axum::Json;
use serde_json::{json, Value};

use common::{args, suite_with, Case, SandboxProcess, BASE};

/// A fake OpenAI-compatible chat-completions server. Answers are served in
/// order (the last one repeats); every request body is kept.
struct FakeLlm {
    url: String,
    bodies: Arc<Mutex<Vec<String>>>,
    rt: Option<tokio::runtime::Runtime>,
    tripwire: Option<std::net::TcpListener>,
}

#[derive(Clone)]
struct FakeState {
    answers: Arc<Mutex<Vec<Value>>>,
    bodies: Arc<Mutex<Vec<String>>>,
}

async fn completions(State(s): State<FakeState>, body: String) -> Json<Value> {
    s.bodies.lock().unwrap().push(body);
    let answer = {
        let mut a = s.answers.lock().unwrap();
        if a.len() > 1 {
            a.remove(0)
        } else {
            a[0].clone()
        }
    };
    Json(json!({
        "id": "chatcmpl-fake", "object": "chat.completion", "model": "fake-model",
        "choices": [{"index": 0, "finish_reason": "stop",
            "message": {"role": "assistant", "content": answer.to_string()}}],
        "usage": {"prompt_tokens": 100, "completion_tokens": 50, "total_tokens": 150}
    }))
}

impl FakeLlm {
    fn start(answers: Vec<Value>) -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let state = FakeState {
            answers: Arc::new(Mutex::new(answers)),
            bodies: bodies.clone(),
        };
        let app = axum::Router::new()
            .route("/v1/chat/completions", post(completions))
            .with_state(state);
        rt.spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeLlm {
            url: format!("http://{addr}/v1"),
            bodies,
            rt: Some(rt),
            tripwire: None,
        }
    }

    fn bodies(&self) -> Vec<String> {
        self.bodies.lock().unwrap().clone()
    }

    fn requests(&self) -> Vec<Value> {
        self.bodies()
            .iter()
            .map(|b| serde_json::from_str(b).unwrap())
            .collect()
    }

    /// Stops serving. The port stays bound by a listener that never
    /// answers, so a connection attempt after the stop is seen
    /// (`connections_after_stop`) instead of being refused unnoticed.
    fn stop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_timeout(std::time::Duration::from_secs(5));
            let addr: std::net::SocketAddr = self
                .url
                .trim_start_matches("http://")
                .trim_end_matches("/v1")
                .parse()
                .unwrap();
            // The old socket is closed by the shutdown; bind retries briefly.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
            let tripwire = loop {
                match std::net::TcpListener::bind(addr) {
                    Ok(l) => break l,
                    Err(e) if std::time::Instant::now() > deadline => {
                        panic!("cannot rebind {addr} after stopping: {e}")
                    }
                    Err(_) => std::thread::sleep(std::time::Duration::from_millis(20)),
                }
            };
            tripwire.set_nonblocking(true).unwrap();
            self.tripwire = Some(tripwire);
        }
    }

    /// Connections made to the address since `stop`.
    fn connections_after_stop(&self) -> usize {
        let l = self.tripwire.as_ref().expect("stopped");
        std::iter::from_fn(|| l.accept().ok()).count()
    }
}

impl Drop for FakeLlm {
    fn drop(&mut self) {
        self.stop();
    }
}

const API: &str = r#"---
apiVersion: apps/v1
kind: Deployment
metadata: {name: api, labels: {app: api}}
spec:
  replicas: 1
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec: {containers: [{name: echo, image: echo}]}
"#;

fn ai_block(url: &str, extra: &str) -> String {
    format!(
        r#"  ai:
    provider: openai
    model: fake-model
    baseUrl: {url}
    apiKeyEnv: FAKE_LLM_KEY
    system: You are a Kubernetes networking expert.
    context: [{{kind: HTTPRoute}}, {{kind: Service}}, {{kind: Deployment}}]
    prompt: |
      My objects: {{{{yaml context}}}}
      Give me {{{{count}}}} scenarios.
{extra}"#
    )
}

fn case(ns: &str, url: &str, extra: &str) -> Case {
    Case::suite(&suite_with(ns, &ai_block(url, extra)))
        .file("base.yaml", &format!("{BASE}{API}"))
        .env("FAKE_LLM_KEY", "sk-fake-test-key")
}

fn good(name: &str) -> Value {
    json!({
        "name": name,
        "description": "one replica of web keeps the route served",
        "steps": [
            {"scale": {"kind": "Deployment", "name": "web", "replicas": 1}},
            {"wait": {"kind": "Deployment", "name": "web", "available": true}}
        ],
        "assertions": [
            {"name": "one ready replica", "resource": {"kind": "Deployment", "name": "web", "expect": {"$.status.readyReplicas": 1}}},
            {"name": "served", "http": {"url": "{{gateway \"gw\"}}/", "headers": {"Host": "shop.example.com"}, "eventually": {"within": "10s", "every": "200ms"}, "expect": {"status": 200}}}
        ],
        "metrics": ["gateway 5xx rate"],
        "remediation": ["keep two replicas"]
    })
}

fn lock(c: &Case) -> String {
    std::fs::read_to_string(c.path("suite.lock.yaml")).expect("lockfile written")
}

fn locked_names(c: &Case) -> Vec<String> {
    let parsed =
        heatcheck::ai::lockfile::parse(&lock(c), std::path::Path::new("suite.lock.yaml")).unwrap();
    parsed.scenarios.into_iter().map(|s| s.name).collect()
}

#[test]
fn a_valid_answer_is_locked_and_runs_locked_without_any_server() {
    let mut llm = FakeLlm::start(vec![json!({"scenarios": [good("scale web down")]})]);
    let c = case("gen-ok", &llm.url, "    count: 1\n");
    let out = c.exec(&args(&["generate", "suite.yaml", "--sandbox"]));
    out.assert_code(0);
    assert!(
        out.stdout.contains("wrote suite.lock.yaml (1 scenario(s))"),
        "{}",
        out.stdout
    );
    let text = lock(&c);
    assert!(text.contains("kind: ScenarioLock"), "{text}");
    assert_eq!(locked_names(&c), ["ai: scale web down"]);
    assert!(text.contains("inputTokens: 100"), "{text}");
    let req = &llm.requests()[0];
    assert_eq!(req["model"], "fake-model");
    assert_eq!(req["messages"][0]["role"], "system");
    assert!(req["messages"][1]["content"]
        .as_str()
        .unwrap()
        .contains("name: web"));
    // CI mode: no server at all, the locked scenario runs and is marked.
    llm.stop();
    let out = c.exec(&args(&[
        "run",
        "suite.yaml",
        "--sandbox",
        "--locked",
        "--report-json",
        "report.json",
    ]));
    assert_eq!(
        llm.connections_after_stop(),
        0,
        "--locked never calls the LLM: {}",
        out.stderr
    );
    assert_eq!(llm.bodies().len(), 1, "only generate reached the server");
    out.assert_code(0);
    let report = out.report();
    let cases = report["suites"][0]["cases"].as_array().unwrap();
    let locked: Vec<&Value> = cases.iter().filter(|c| c["origin"] == "lock").collect();
    assert_eq!(locked.len(), 1, "{cases:#?}");
    assert_eq!(locked[0]["name"], "ai: scale web down");
    assert_eq!(locked[0]["status"], "passed");
}

#[test]
fn a_schema_violation_is_repaired_with_the_errors_and_previous_answer() {
    let bad = json!({"scenarios": [{"name": "typo", "steps": [{"slep": "1s"}], "assertions": []}]});
    let llm = FakeLlm::start(vec![bad.clone(), json!({"scenarios": [good("fixed")]})]);
    let c = case("gen-repair", &llm.url, "    count: 1\n    maxRepairs: 1\n");
    let out = c.exec(&args(&["generate", "suite.yaml", "--sandbox"]));
    out.assert_code(0);
    assert!(
        out.stderr
            .contains("0 valid before repair; 1 accepted after 2 request(s)"),
        "{}",
        out.stderr
    );
    let reqs = llm.requests();
    assert_eq!(reqs.len(), 2);
    let msgs = reqs[1]["messages"].as_array().unwrap();
    // system, first user prompt, the assistant's previous answer, the errors.
    assert_eq!(msgs.len(), 4, "{msgs:#?}");
    assert_eq!(msgs[2]["role"], "assistant");
    assert_eq!(msgs[2]["content"].as_str().unwrap(), bad.to_string());
    let repair = msgs[3]["content"].as_str().unwrap();
    assert!(
        repair.contains("\"typo\"") && repair.contains("schema: at /steps/0"),
        "{repair}"
    );
    assert_eq!(locked_names(&c), ["ai: fixed"]);
}

#[test]
fn policy_violations_are_rejected_and_never_executed() {
    let sandbox = SandboxProcess::start();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let kube_system = json!({"name": "restart coredns", "steps": [{"restart": {"name": "coredns", "namespace": "kube-system"}}],
        "assertions": [{"absent": {"kind": "Pod", "name": "x"}}]});
    let namespace = json!({"name": "delete the namespace", "steps": [{"delete": {"kind": "Namespace", "name": "gen-policy"}}],
        "assertions": [{"absent": {"kind": "Namespace", "name": "gen-policy"}}]});
    let cluster_scoped = json!({"name": "new cluster role", "steps": [{"apply": {"manifest": "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: chaos}\nrules: []\n"}}],
        "assertions": [{"present": {"kind": "ClusterRole", "name": "chaos"}}]});
    let every_pod = json!({"name": "kill every pod", "steps": [{"fault": {"type": "podKill", "selector": "app", "duration": "10s"}}],
        "assertions": [{"absent": {"kind": "Pod", "name": "x"}}]});
    let llm = FakeLlm::start(vec![
        json!({"scenarios": [kube_system, good("the good one"), namespace, cluster_scoped, every_pod]}),
    ]);
    let c = case("gen-policy", &llm.url, "    count: 5\n    maxRepairs: 0\n");
    let before = rt.block_on(common::snapshot(&sandbox.kubeconfig));
    let kubeconfig = sandbox.kubeconfig.display().to_string();
    let out = c.exec(&args(&[
        "generate",
        "suite.yaml",
        "--kubeconfig",
        &kubeconfig,
    ]));
    out.assert_code(0);
    for (name, why) in [
        ("restart coredns", "namespace kube-system is never touched"),
        ("delete the namespace", "Namespace is cluster-scoped"),
        ("new cluster role", "ClusterRole is cluster-scoped"),
        ("kill every pod", "matches every one of the 2 workloads"),
    ] {
        assert!(
            out.stderr.contains(&format!("rejected \"{name}\"")),
            "{name}: {}",
            out.stderr
        );
        assert!(out.stderr.contains(why), "{why}: {}", out.stderr);
    }
    let after = rt.block_on(common::snapshot(&sandbox.kubeconfig));
    assert_eq!(before, after, "generate changed the cluster");
    let text = lock(&c);
    let parsed =
        heatcheck::ai::lockfile::parse(&text, std::path::Path::new("suite.lock.yaml")).unwrap();
    let names: Vec<&str> = parsed.scenarios.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["ai: the good one"]);
    assert_eq!(parsed.rejected.len(), 4);
    // Running the lock runs the accepted scenario only and leaves no trace.
    let out = c.exec(&args(&[
        "run",
        "suite.yaml",
        "--kubeconfig",
        &kubeconfig,
        "--locked",
    ]));
    out.assert_code(0);
    for bad in [
        "coredns",
        "delete the namespace",
        "cluster role",
        "kill every pod",
    ] {
        assert!(!out.stdout.contains(bad), "{bad} ran: {}", out.stdout);
    }
    assert_eq!(rt.block_on(common::snapshot(&sandbox.kubeconfig)), before);
}

#[test]
fn locked_runs_refuse_a_missing_or_stale_lock() {
    let llm = FakeLlm::start(vec![json!({"scenarios": [good("one")]})]);
    let c = case("gen-stale", &llm.url, "    count: 1\n");
    let out = c.exec(&args(&["run", "suite.yaml", "--sandbox", "--locked"]));
    out.assert_code(2);
    assert!(
        out.stderr.contains("has an ai block but no lockfile"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("run `heatcheck generate suite.yaml`"),
        "{}",
        out.stderr
    );
    c.exec(&args(&["generate", "suite.yaml", "--sandbox"]))
        .assert_code(0);
    // Change the ai block: the lock is stale.
    let suite = std::fs::read_to_string(c.path("suite.yaml")).unwrap();
    std::fs::write(c.path("suite.yaml"), suite.replace("count: 1", "count: 2")).unwrap();
    let out = c.exec(&args(&["run", "suite.yaml", "--sandbox", "--locked"]));
    out.assert_code(2);
    assert!(
        out.stderr
            .contains("lock is stale: the ai block changed since 20"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("run `heatcheck generate"),
        "{}",
        out.stderr
    );
    // Without --locked: a warning, and the hand-written part runs.
    let out = c.exec(&args(&["run", "suite.yaml", "--sandbox"]));
    out.assert_code(0);
    assert!(
        out.stderr.contains("warning:") && out.stderr.contains("stale"),
        "{}",
        out.stderr
    );
    assert_eq!(llm.bodies().len(), 1, "run never calls the LLM");
}

#[test]
fn regenerate_writes_the_lock_then_runs_it() {
    let llm = FakeLlm::start(vec![json!({"scenarios": [good("fresh")]})]);
    let c = case("gen-regen", &llm.url, "    count: 1\n").args(["--regenerate"]);
    let out = c.run_sandbox();
    out.assert_code(0);
    assert_eq!(locked_names(&c), ["ai: fresh"]);
    let report = out.report();
    let cases = report["suites"][0]["cases"].as_array().unwrap();
    assert!(
        cases
            .iter()
            .any(|c| c["name"] == "ai: fresh" && c["origin"] == "lock" && c["status"] == "passed"),
        "{cases:#?}"
    );
    assert_eq!(llm.bodies().len(), 1);
}

/// Credentials planted in the cluster never reach the model.
#[test]
fn no_planted_secret_leaves_the_cluster() {
    use base64::Engine;
    let sandbox = SandboxProcess::start();
    let secret_value = "s3cr3t-Planted-Value-7781";
    let env_value = "Env-Planted-Passw0rd-4410";
    let blob = base64::engine::general_purpose::STANDARD
        .encode("blob-planted-0123456789-abcdefghijklmnopqrstuvwxyz");
    let url_pass = "UrlPlantedPass-9921";
    let planted = format!(
        r#"apiVersion: v1
kind: Namespace
metadata: {{name: leak}}
---
apiVersion: v1
kind: Secret
metadata: {{name: db-credentials, namespace: leak}}
stringData: {{password: {secret_value}}}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: shop
  namespace: leak
  annotations: {{example.com/ca-bundle: {blob}}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: shop}}}}
  template:
    metadata: {{labels: {{app: shop}}}}
    spec:
      containers:
        - name: shop
          image: echo
          env:
            - {{name: PASSWORD, value: {env_value}}}
            - {{name: DATABASE_URL, value: "postgres://shop:{url_pass}@db.leak:5432/shop"}}
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: settings, namespace: leak}}
data: {{upstream: "https://admin:{url_pass}@api.example.com/v1", bundle: {blob}}}
"#
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client =
            heatcheck::cluster::ClusterClient::connect(&heatcheck::cluster::ConnectOptions {
                kubeconfig: Some(sandbox.kubeconfig.clone()),
                context: None,
            })
            .await
            .unwrap();
        for obj in heatcheck::suite::manifest::parse_documents(&planted, "planted").unwrap() {
            let kind = obj["kind"].as_str().unwrap();
            let r = client
                .resolve(obj["apiVersion"].as_str(), kind)
                .await
                .unwrap();
            let ns = obj.pointer("/metadata/namespace").and_then(Value::as_str);
            client.apply(&r, ns, &obj).await.unwrap();
        }
    });
    let llm = FakeLlm::start(vec![json!({"scenarios": []})]);
    let suite = format!(
        r#"apiVersion: heatcheck.dev/v1alpha1
kind: Suite
metadata: {{name: leak}}
spec:
  target: {{namespace: leak}}
  ai:
    provider: openai
    model: fake-model
    baseUrl: {url}
    apiKeyEnv: FAKE_LLM_KEY
    context: [{{kind: Secret}}, {{kind: Deployment}}, {{kind: ConfigMap}}]
    includeEvents: true
    prompt: "{{{{yaml context}}}}"
    maxRepairs: 0
"#,
        url = llm.url
    );
    let c = Case::suite(&suite).env("FAKE_LLM_KEY", "sk-fake-test-key");
    let kubeconfig = sandbox.kubeconfig.display().to_string();
    let out = c.exec(&args(&[
        "generate",
        "suite.yaml",
        "--kubeconfig",
        &kubeconfig,
    ]));
    // An empty answer is not a lock, but the request went out.
    out.assert_code(1);
    let bodies = llm.bodies();
    assert_eq!(bodies.len(), 1);
    let body = &bodies[0];
    // The objects were sent (names and keys), their secrets were not.
    for expected in [
        "db-credentials",
        "password",
        "PASSWORD",
        "DATABASE_URL",
        "settings",
        "upstream",
    ] {
        assert!(
            body.contains(expected),
            "{expected} missing from the request"
        );
    }
    let encoded = base64::engine::general_purpose::STANDARD.encode(secret_value);
    for secret in [
        secret_value,
        encoded.as_str(),
        env_value,
        blob.as_str(),
        url_pass,
    ] {
        assert!(!body.contains(secret), "leaked {secret:?} in {body}");
    }
    // `heatcheck prompt` shows the same redacted text.
    let out = c.exec(&args(&[
        "prompt",
        "suite.yaml",
        "--kubeconfig",
        &kubeconfig,
    ]));
    out.assert_code(0);
    for secret in [
        secret_value,
        encoded.as_str(),
        env_value,
        blob.as_str(),
        url_pass,
    ] {
        assert!(!out.stdout.contains(secret), "prompt shows {secret:?}");
    }
}

#[test]
fn an_unreachable_llm_exits_3_and_writes_no_lock() {
    // Port 9 (discard) is closed on loopback: every attempt is refused.
    let c = case("gen-unreach", "http://127.0.0.1:9/v1", "    count: 1\n");
    let out = c.exec(&args(&["generate", "suite.yaml", "--sandbox"]));
    out.assert_code(3);
    assert!(out.stderr.contains("127.0.0.1:9"), "{}", out.stderr);
    assert!(!c.path("suite.lock.yaml").exists(), "no lock on failure");
    assert!(
        !out.stderr.contains("sk-fake-test-key"),
        "the key never appears: {}",
        out.stderr
    );
}

#[test]
fn a_missing_api_key_is_an_invalid_configuration_naming_the_variable() {
    let c = Case::suite(&suite_with(
        "gen-nokey",
        &ai_block("http://127.0.0.1:9/v1", "    count: 1\n"),
    ))
    .file("base.yaml", &format!("{BASE}{API}"));
    let out = c.exec(&args(&["generate", "suite.yaml", "--sandbox"]));
    out.assert_code(2);
    assert!(out.stderr.contains("FAKE_LLM_KEY"), "{}", out.stderr);
    assert!(!c.path("suite.lock.yaml").exists());
}
