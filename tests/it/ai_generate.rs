//! `heatcheck generate` and `run --locked` end to end: the real binary, the
//! sandbox, and a fake OpenAI-compatible server on 127.0.0.1 speaking the
//! chat-completions wire format. The server records every request body.

use crate::common;

use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::routing::post;
use axum::Json;
use serde_json::{json, Value};

use common::{args, suite_with, tokio_block, Case, SandboxProcess, BASE};

/// A fake OpenAI-compatible chat-completions server. Answers are served in
/// order (the last one repeats); every request body is kept.
pub(crate) struct FakeLlm {
    pub(crate) url: String,
    bodies: Arc<Mutex<Vec<String>>>,
    rt: Option<tokio::runtime::Runtime>,
    tripwire: Option<std::net::TcpListener>,
}

#[derive(Clone)]
struct FakeState {
    answers: Arc<Mutex<Vec<Value>>>,
    bodies: Arc<Mutex<Vec<String>>>,
}

async fn completions(State(s): State<FakeState>, body: String) -> axum::response::Response {
    use axum::response::IntoResponse;
    let streamed = serde_json::from_str::<Value>(&body).is_ok_and(|b| b["stream"] == true);
    s.bodies.lock().unwrap().push(body);
    let answer = {
        let mut a = s.answers.lock().unwrap();
        if a.len() > 1 {
            a.remove(0)
        } else {
            a[0].clone()
        }
    };
    // `{"__raw": text, "__finish": reason, "__delayMs": n}` serves text as
    // is (prose, fences, a cut-off answer), late if asked.
    if let Some(ms) = answer.get("__delayMs").and_then(Value::as_u64) {
        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
    }
    let content = match answer.get("__raw") {
        Some(Value::String(t)) => t.clone(),
        _ => answer.to_string(),
    };
    let finish = answer
        .get("__finish")
        .and_then(Value::as_str)
        .unwrap_or("stop");
    let usage = json!({"prompt_tokens": 100, "completion_tokens": 50, "total_tokens": 150});
    if streamed {
        // As OpenAI streams: content deltas in pieces, the finish reason,
        // the usage chunk (stream_options.include_usage), then [DONE].
        let chunk = |delta: Value, finish: Value| {
            json!({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "model": "fake-model",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
        };
        let mut events = vec![chunk(
            json!({"role": "assistant", "content": ""}),
            Value::Null,
        )];
        let chars: Vec<char> = content.chars().collect();
        for piece in chars.chunks(16) {
            let text: String = piece.iter().collect();
            events.push(chunk(json!({"content": text}), Value::Null));
        }
        events.push(chunk(json!({}), json!(finish)));
        events.push(
            json!({"id": "chatcmpl-fake", "object": "chat.completion.chunk",
            "model": "fake-model", "choices": [], "usage": usage}),
        );
        let mut sse: String = events.iter().map(|e| format!("data: {e}\n\n")).collect();
        sse.push_str("data: [DONE]\n\n");
        return ([("content-type", "text/event-stream")], sse).into_response();
    }
    Json(json!({
        "id": "chatcmpl-fake", "object": "chat.completion", "model": "fake-model",
        "choices": [{"index": 0, "finish_reason": finish,
            "message": {"role": "assistant", "content": content}}],
        "usage": usage
    }))
    .into_response()
}

impl FakeLlm {
    pub(crate) fn start(answers: Vec<Value>) -> Self {
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

    pub(crate) fn requests(&self) -> Vec<Value> {
        self.bodies()
            .iter()
            .map(|b| serde_json::from_str(b).unwrap())
            .collect()
    }

    /// What the user turns of a captured request said, joined.
    pub(crate) fn user_text(request: &Value) -> String {
        request["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["role"] == "user")
            .map(|m| m["content"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
            .join("\n")
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
    // Proven on a sandbox before it was locked, at the first try.
    assert!(text.contains("sandboxVerdict: passed"), "{text}");
    assert!(text.contains("repairs: 0"), "{text}");
    let req = &llm.requests()[0];
    assert_eq!(req["model"], "fake-model");
    // Not a terminal and no `stream:` in the suite: one plain answer.
    assert_eq!(req.get("stream"), None, "{req}");
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

/// `ai.stream: true`: the answer arrives as server-sent events, is put
/// together, checked and locked as a plain one is; a cut-off stream is
/// repaired the same way; tokens are counted from the usage chunk.
#[test]
fn a_streamed_answer_is_assembled_repaired_and_counted() {
    let cut = json!({"__raw": "{\"scenarios\": [{\"name\": \"half", "__finish": "length"});
    let llm = FakeLlm::start(vec![cut, json!({"scenarios": [good("streamed")]})]);
    let c = case(
        "gen-stream",
        &llm.url,
        "    count: 1\n    maxRepairs: 1\n    stream: true\n",
    );
    let out = c.exec(&args(&["generate", "suite.yaml", "--sandbox"]));
    out.assert_code(0);
    let reqs = llm.requests();
    assert_eq!(reqs.len(), 2, "{}", out.stderr);
    for r in &reqs {
        assert_eq!(r["stream"], true, "{r}");
        assert_eq!(r["stream_options"]["include_usage"], true, "{r}");
    }
    assert!(
        out.stderr
            .contains("attempt 1: the answer was cut off (finish_reason length)"),
        "{}",
        out.stderr
    );
    assert_eq!(locked_names(&c), ["ai: streamed"]);
    let l = parsed_lock(&c);
    assert_eq!(
        (
            l.usage.requests,
            l.usage.input_tokens,
            l.usage.output_tokens
        ),
        (2, 200, 100)
    );
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
        repair.contains("\"typo\"")
            && repair.contains("schema: steps[0]: a step needs exactly one of the keys"),
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
        (
            "restart coredns",
            "namespace kube-system is a system namespace",
        ),
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
    fullContext: true
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

/// The adversarial corpus (tests/fixtures/adversarial/*.json): model answers
/// that try to escape the policy. Each goes through generation (the fake
/// LLM proposes them all at once) and, in a hand-made lock, through
/// `run --locked`. None may ever execute; the stage that stops each one is
/// counted and printed.
#[test]
fn the_adversarial_corpus_is_never_executed() {
    let dir =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/adversarial");
    let mut corpus: Vec<(String, Value)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| {
            let v: Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
            (v["name"].as_str().unwrap().to_string(), v)
        })
        .collect();
    corpus.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(corpus.len() >= 20, "{} answers", corpus.len());
    // The server's own record of every write request (Pods included):
    // what proves nothing ran, where a snapshot after a restore could not
    // tell a step that ran and was undone from one that never ran.
    let audit_dir = tempfile::tempdir().unwrap();
    let audit = audit_dir.path().join("audit.log");
    let sandbox = SandboxProcess::start_with(&["--audit-log", audit.to_str().unwrap()]);
    let kubeconfig = sandbox.kubeconfig.display().to_string();
    let mut answer: Vec<Value> = corpus.iter().map(|(_, v)| v.clone()).collect();
    answer.push(good("the good one"));
    let llm = FakeLlm::start(vec![json!({ "scenarios": answer })]);
    let extra = format!("    count: {}\n    maxRepairs: 0\n", corpus.len() + 1);
    let c = case("gen-adv", &llm.url, &extra);
    let before = tokio_block(common::snapshot(&sandbox.kubeconfig));
    let written = || writes(&audit);
    let writes_before = written().len();

    // Stage 1: generation. Every rejection comes with its reasons.
    let out = c.exec(&args(&[
        "generate",
        "suite.yaml",
        "--kubeconfig",
        &kubeconfig,
    ]));
    out.assert_code(0);
    let generated =
        heatcheck::ai::lockfile::parse(&lock(&c), std::path::Path::new("suite.lock.yaml")).unwrap();
    let at_generation: Vec<&str> = generated.rejected.iter().map(|r| r.name.as_str()).collect();
    for r in &generated.rejected {
        assert!(
            !r.reasons.is_empty(),
            "{} rejected without a reason",
            r.name
        );
    }
    let accepted: Vec<&str> = generated
        .scenarios
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    assert!(accepted.contains(&"ai: the good one"), "{accepted:?}");
    assert_eq!(tokio_block(common::snapshot(&sandbox.kubeconfig)), before);
    // Generation verifies on its own in-process sandbox: the cluster it
    // read got no write at all.
    assert_eq!(
        written()[writes_before..],
        [],
        "generation wrote to the cluster"
    );

    // What a run writes with no harmful step: the fixtures and their restore.
    let run_locked = |scenario: heatcheck::suite::Scenario| {
        let mut l = generated.clone();
        l.scenarios = vec![scenario];
        l.rejected.clear();
        heatcheck::ai::lockfile::write(&c.path("suite.lock.yaml"), &l).unwrap();
        let from = written().len();
        let out = c.exec(&args(&[
            "run",
            "suite.yaml",
            "--kubeconfig",
            &kubeconfig,
            "--locked",
            "--junit",
            "junit.xml",
        ]));
        (out, written()[from..].to_vec())
    };
    let control = heatcheck::suite::parse_scenario_json(&json!({
        "name": "ai: control", "steps": [{"sleep": "10ms"}],
        "assertions": [{"resource": {"kind": "Deployment", "name": "web", "expect": {"$.spec.replicas": 2}}}],
    }))
    .unwrap();
    let (out, harmless) = run_locked(control);
    out.assert_code(0);
    assert!(!harmless.is_empty(), "the fixtures write: {harmless:?}");

    // Stages 2-4: each answer alone in a hand-made lock, run with --locked.
    let (mut at_lock, mut at_guard, mut at_run) = (Vec::new(), Vec::new(), Vec::new());
    for (name, v) in &corpus {
        let mut sc = heatcheck::suite::parse_scenario_json(v).expect("schema-valid answer");
        sc.name = format!("ai: {name}");
        let (out, wrote) = run_locked(sc);
        let all = format!("{}\n{}", out.stdout, out.stderr);
        let refused_at_load =
            format!("suite.lock.yaml: locked scenario \"ai: {name}\" is invalid:");
        if out.code == 2 && all.contains(&refused_at_load) {
            assert_eq!(wrote, [], "{name}: refused at lock load, yet written");
            at_lock.push(name.as_str());
        } else if out.code == 2 && all.contains("policy violation(s); nothing was run") {
            assert_eq!(wrote, [], "{name}: refused by the guard, yet written");
            at_guard.push(name.as_str());
        } else {
            // It reached the run: its step must have been refused, not executed.
            assert_eq!(out.code, 1, "{name} was not refused:\n{all}");
            let failures = common::junit_failures(&out.junit());
            assert!(
                failures
                    .iter()
                    .any(|(m, _)| m.contains(&format!("ai: {name}"))
                        || m.contains("refused by policy")),
                "{name}: {failures:#?}"
            );
            assert!(all.contains("refused by policy"), "{name} ran:\n{all}");
            // Only what the harmless run writes too (fixtures, restore).
            let extra: Vec<_> = wrote.iter().filter(|w| !harmless.contains(w)).collect();
            assert_eq!(
                extra,
                Vec::<&(String, String)>::new(),
                "{name} wrote beyond the fixtures"
            );
            at_run.push(name.as_str());
        }
        assert_eq!(
            tokio_block(common::snapshot(&sandbox.kubeconfig)),
            before,
            "{name} changed the cluster"
        );
    }
    println!(
        "adversarial corpus: {} answers; rejected at generation: {} ({} accepted: {:?}); \
         with a hand-made lock: rejected at lock load: {}, by the guard before the run: {}, at run time: {} {:?}; executed: 0",
        corpus.len(),
        at_generation.len(),
        corpus.len() - at_generation.len(),
        accepted.iter().filter(|n| **n != "ai: the good one").collect::<Vec<_>>(),
        at_lock.len(),
        at_guard.len(),
        at_run.len(),
        at_run
    );
}
/// The write requests in a sandbox's audit log (`heatcheck sandbox
/// --audit-log`), as (verb, path without the query), in order. Access
/// reviews are questions, not writes, and are left out.
fn writes(log: &std::path::Path) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("an audit event per line"))
        .filter_map(|e| {
            let uri = e["requestURI"].as_str()?.to_string();
            let path = uri.split('?').next().unwrap_or_default().to_string();
            (!path.ends_with("reviews"))
                .then(|| (e["verb"].as_str().unwrap_or_default().to_string(), path))
        })
        .collect()
}

fn parsed_lock(c: &Case) -> heatcheck::ai::lockfile::ScenarioLock {
    heatcheck::ai::lockfile::parse(&lock(c), std::path::Path::new("suite.lock.yaml")).unwrap()
}

fn user_text(req: &Value) -> String {
    let msgs = req["messages"].as_array().unwrap();
    msgs.last().unwrap()["content"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn prose_is_repaired_and_a_fenced_answer_is_salvaged() {
    let prose = json!({"__raw": "Here are three scenarios:\n1. Delete the route and expect 404.\n2. Scale web to zero.\n3. Add 200ms latency."});
    let fenced = json!({"__raw": format!("Sure! Corrected:\n```json\n{}\n```\nLet me know.", json!({"scenarios": [good("fenced")]}))});
    let llm = FakeLlm::start(vec![prose, fenced]);
    let c = case("gen-prose", &llm.url, "    count: 1\n    maxRepairs: 1\n");
    let out = c.exec(&args(&["generate", "suite.yaml", "--sandbox"]));
    out.assert_code(0);
    assert!(
        out.stderr
            .contains("attempt 2: answer read from a Markdown code fence"),
        "{}",
        out.stderr
    );
    let reqs = llm.requests();
    assert_eq!(reqs.len(), 2);
    let repair = user_text(&reqs[1]);
    assert!(repair.contains("could not be read: not JSON"), "{repair}");
    assert!(
        repair.contains("Answer ONLY with one JSON object"),
        "{repair}"
    );
    // The prose went back as the assistant's turn.
    let msgs = reqs[1]["messages"].as_array().unwrap();
    assert!(msgs[2]["content"]
        .as_str()
        .unwrap()
        .starts_with("Here are three"));
    let l = parsed_lock(&c);
    assert_eq!(l.scenarios.len(), 1);
    assert_eq!(l.usage.requests, 2);
    assert_eq!(l.rejected.len(), 1, "{:?}", l.rejected);
    assert_eq!(l.rejected[0].attempt, 1);
    assert!(
        l.rejected[0].reasons[0].contains("not JSON"),
        "{:?}",
        l.rejected
    );
    assert_eq!(l.checks[0].repairs, 1);
}

#[test]
fn too_few_scenarios_and_cut_off_answers_are_repaired() {
    let cut = json!({"__raw": "{\"scenarios\": [{\"name\": \"half", "__finish": "length"});
    let mut other = good("second");
    other["assertions"][1]["http"]["url"] = json!("{{gateway \"gw\"}}/other");
    let llm = FakeLlm::start(vec![
        json!({"scenarios": []}),
        cut,
        json!({"scenarios": [good("first")]}),
        json!({"scenarios": [other]}),
    ]);
    let c = case("gen-few", &llm.url, "    count: 2\n    maxRepairs: 3\n");
    let out = c.exec(&args(&["generate", "suite.yaml", "--sandbox"]));
    out.assert_code(0);
    let reqs = llm.requests();
    assert_eq!(reqs.len(), 4);
    let schema = &reqs[0]["response_format"]["json_schema"]["schema"]["properties"]["scenarios"];
    assert_eq!(
        (schema["minItems"].as_u64(), schema["maxItems"].as_u64()),
        (Some(2), Some(2))
    );
    assert!(user_text(&reqs[1]).contains("Your answer held no scenarios; 2 are needed."));
    let after_cut = user_text(&reqs[2]);
    assert!(
        after_cut.contains("was cut off (finish_reason length)")
            && after_cut.contains("holding 1 SHORTER"),
        "{after_cut}"
    );
    let schema = &reqs[2]["response_format"]["json_schema"]["schema"]["properties"]["scenarios"];
    assert_eq!(schema["minItems"].as_u64(), Some(1));
    assert!(user_text(&reqs[3]).contains("1 scenario(s) are accepted so far; 1 more are needed."));
    let l = parsed_lock(&c);
    let names: Vec<&str> = l.scenarios.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["ai: first", "ai: second"]);
    assert_eq!(l.usage.requests, 4);
    // The cut-off answer was billed too: its tokens count.
    assert_eq!(
        (l.usage.input_tokens, l.usage.output_tokens),
        (400, 200),
        "{:?}",
        l.usage
    );
    assert!(
        l.rejected
            .iter()
            .any(|r| r.attempt == 2 && r.reasons[0].contains("cut off")),
        "{:?}",
        l.rejected
    );
    assert_eq!(
        l.checks.iter().map(|c| c.repairs).collect::<Vec<_>>(),
        [2, 3]
    );
}

#[test]
fn duplicates_are_dropped_not_renamed() {
    let mut twin = good("same again");
    twin["description"] = json!("worded differently");
    let mut other = good("different");
    other["assertions"][1]["http"]["url"] = json!("{{gateway \"gw\"}}/other");
    let llm = FakeLlm::start(vec![
        json!({"scenarios": [good("original"), twin]}),
        json!({"scenarios": [other]}),
    ]);
    let c = case("gen-dup", &llm.url, "    count: 2\n    maxRepairs: 1\n");
    let out = c.exec(&args(&["generate", "suite.yaml", "--sandbox"]));
    out.assert_code(0);
    assert_eq!(locked_names(&c), ["ai: original", "ai: different"]);
    let repair = user_text(&llm.requests()[1]);
    assert!(repair.contains("duplicate of \"original\""), "{repair}");
    assert!(!lock(&c).contains("(2)"));
}

#[test]
fn a_timed_out_attempt_is_shown_counted_and_recorded() {
    let slow =
        json!({"__raw": json!({"scenarios": [good("late")]}).to_string(), "__delayMs": 4000});
    let llm = FakeLlm::start(vec![slow, json!({"scenarios": [good("on time")]})]);
    let c = case(
        "gen-timeout",
        &llm.url,
        "    count: 1\n    maxRepairs: 1\n    timeout: 1s\n",
    );
    let out = c.exec(&args(&["generate", "suite.yaml", "--sandbox"]));
    out.assert_code(0);
    assert!(
        out.stderr.contains("attempt 1 of 2: no answer within 1s"),
        "{}",
        out.stderr
    );
    let l = parsed_lock(&c);
    assert_eq!(locked_names(&c), ["ai: on time"]);
    assert_eq!(l.usage.requests, 2);
    assert_eq!(l.rejected[0].attempt, 1);
    assert!(
        l.rejected[0].reasons[0].contains("no answer within 1s"),
        "{:?}",
        l.rejected
    );
}

#[test]
fn only_timeouts_exit_3() {
    let slow = json!({"__raw": "{}", "__delayMs": 3000});
    let llm = FakeLlm::start(vec![slow]);
    let c = case(
        "gen-timeout3",
        &llm.url,
        "    count: 1\n    maxRepairs: 0\n    timeout: 500ms\n",
    );
    let out = c.exec(&args(&["generate", "suite.yaml", "--sandbox"]));
    out.assert_code(3);
    assert!(!c.path("suite.lock.yaml").exists());
}

/// A step that errors on the sandbox goes back for repair with the error.
#[test]
fn a_step_that_errors_on_the_sandbox_is_repaired_with_the_error() {
    let mut broken = good("never ready");
    broken["steps"] = json!([
        {"wait": {"kind": "Deployment", "name": "web", "jsonpath": "$.spec.replicas", "equals": 7, "timeout": "1s"}}
    ]);
    let llm = FakeLlm::start(vec![
        json!({"scenarios": [broken]}),
        json!({"scenarios": [good("fixed")]}),
    ]);
    let c = case("gen-verify", &llm.url, "    count: 1\n    maxRepairs: 1\n");
    let out = c.exec(&args(&["generate", "suite.yaml", "--sandbox"]));
    out.assert_code(0);
    let repair = user_text(&llm.requests()[1]);
    assert!(
        repair.contains("\"never ready\"") && repair.contains("- sandbox: step 1"),
        "{repair}"
    );
    let l = parsed_lock(&c);
    assert_eq!(locked_names(&c), ["ai: fixed"]);
    assert_eq!(l.checks[0].sandbox_verdict, "passed");
    assert_eq!(l.checks[0].repairs, 1);
    assert!(
        l.rejected
            .iter()
            .any(|r| r.name == "never ready" && r.reasons[0].starts_with("sandbox: ")),
        "{:?}",
        l.rejected
    );
}

/// An assertion that evaluates and fails on the sandbox may be the weakness
/// the scenario exposes: locked with its verdict, rejected under strict.
#[test]
fn a_failing_assertion_is_locked_for_review_or_rejected_when_strict() {
    let mut weak = good("expects five replicas");
    weak["assertions"] = json!([
        {"name": "five", "resource": {"kind": "Deployment", "name": "web", "expect": {"$.spec.replicas": 5}}}
    ]);
    let llm = FakeLlm::start(vec![json!({"scenarios": [weak]})]);
    let c = case("gen-weak", &llm.url, "    count: 1\n    maxRepairs: 0\n");
    let out = c.exec(&args(&["generate", "suite.yaml", "--sandbox"]));
    out.assert_code(0);
    assert!(
        out.stderr.contains("an assertion fails on the sandbox"),
        "{}",
        out.stderr
    );
    let l = parsed_lock(&c);
    assert!(
        l.checks[0].sandbox_verdict.starts_with("failed: five"),
        "{:?}",
        l.checks
    );
    let out = c.exec(&args(&[
        "generate",
        "suite.yaml",
        "--sandbox",
        "--verify",
        "strict",
    ]));
    out.assert_code(1);
    assert!(
        out.stderr.contains("rejected under --verify=strict"),
        "{}",
        out.stderr
    );
    // --no-verify: no sandbox run, the verdict says so.
    let out = c.exec(&args(&[
        "generate",
        "suite.yaml",
        "--sandbox",
        "--no-verify",
    ]));
    out.assert_code(0);
    assert_eq!(
        parsed_lock(&c).checks[0].sandbox_verdict,
        "not run: --no-verify"
    );
}

/// Realistic model answers (tests/fixtures/ai-corpus/) run through
/// generation: each is the first answer, tests/fixtures/ai-corpus/repair.json
/// the answer to any repair. Prints first-try validity, validity after
/// repair and failing sandbox verdicts; nothing invalid may be locked.
#[test]
fn corpus_of_model_answers() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ai-corpus");
    let repair: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("repair.json")).unwrap()).unwrap();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    files.sort();
    // Valid at the first try (salvage included) — the rest need a repair.
    let first_try_expected = [
        "01-good",
        "02-fenced-json",
        "03-json-then-text",
        "04-yaml-fenced",
        "11-fails-on-sandbox",
    ];
    let (mut first, mut after, mut failing) = (0, 0, 0);
    let mut table = String::new();
    for (i, path) in files.iter().enumerate() {
        let stem = path.file_stem().unwrap().to_str().unwrap().to_string();
        let text = std::fs::read_to_string(path).unwrap();
        let finish = if stem.contains("truncated") {
            "length"
        } else {
            "stop"
        };
        let llm = FakeLlm::start(vec![
            json!({"__raw": text, "__finish": finish}),
            repair.clone(),
        ]);
        let c = case(
            &format!("corpus-{i}"),
            &llm.url,
            "    count: 1\n    maxRepairs: 1\n",
        );
        let out = c.exec(&args(&["generate", "suite.yaml", "--sandbox"]));
        out.assert_code(0);
        let l = parsed_lock(&c);
        let suite = heatcheck::suite::load_suite(&c.path("suite.yaml")).unwrap();
        for (sc, check) in l.scenarios.iter().zip(&l.checks) {
            let problems = heatcheck::ai::generate::static_problems(sc, &suite);
            assert!(
                problems.is_empty(),
                "{stem}: locked an invalid scenario: {problems:?}"
            );
            assert!(!sc.assertions.is_empty(), "{stem}: no assertion");
            assert!(
                check.sandbox_verdict == "passed" || check.sandbox_verdict.starts_with("failed: "),
                "{stem}: {}",
                check.sandbox_verdict
            );
        }
        assert_eq!(l.scenarios.len(), l.checks.len());
        let ok_first = l.checks.iter().filter(|c| c.repairs == 0).count();
        let fails = l
            .checks
            .iter()
            .filter(|c| c.sandbox_verdict.starts_with("failed"))
            .count();
        assert_eq!(
            ok_first == 1,
            first_try_expected.contains(&stem.as_str()),
            "{stem}: {:?}\n{}",
            l.checks,
            out.stderr
        );
        if ok_first == 0 {
            // Whatever was wrong went back to the model, and was recorded.
            assert_eq!(llm.requests().len(), 2, "{stem}");
            assert!(
                l.rejected.iter().any(|r| r.attempt == 1),
                "{stem}: {:?}",
                l.rejected
            );
        }
        first += ok_first;
        after += l.scenarios.len();
        failing += fails;
        let why = l
            .rejected
            .first()
            .map(|r| r.reasons[0].chars().take(70).collect::<String>())
            .unwrap_or_default();
        table.push_str(&format!(
            "{stem:<26} first try {}  locked {}  failing verdicts {}  {why}\n",
            ok_first,
            l.scenarios.len(),
            fails
        ));
    }
    println!(
        "{table}corpus: {} answers; valid at the first try {first}; valid after repair {after}; locked with a failing sandbox verdict {failing}",
        files.len()
    );
    assert_eq!(
        after,
        files.len(),
        "every answer ends in a lock after one repair"
    );
    assert_eq!(failing, 1);
}
