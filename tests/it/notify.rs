//! `--notify`: after a run, the summary reaches a webhook (a local HTTP
//! server that records what it was sent) as the generic JSON or a Slack
//! body; only on failure by default; a webhook that fails is a warning and
//! the exit code stays the run's; the URL, a secret, is never printed.

use crate::common;

use common::fake_provider::{FakeServer, Reply};
use common::{Case, Outcome};
use serde_json::Value;

/// A Slack-like path: the token is the secret part of the URL.
const TOKEN: &str = "T0SECRET/B0SECRET/xoxb-s3cr3t-t0ken";

const PASSES: &str = r#"apiVersion: heatcheck.dev/v1alpha1
kind: Suite
metadata: {name: nightly-shop}
spec:
  target: {namespace: notify-ns, createNamespace: true}
  defaults: {timeout: 2s, interval: 100ms}
  scenarios:
    - name: marker holds
      steps:
        - apply:
            manifest: |
              apiVersion: v1
              kind: ConfigMap
              metadata: {name: marker}
      assertions:
        - present: {kind: ConfigMap, name: marker}
"#;

fn failing() -> String {
    PASSES.replace(
        "present: {kind: ConfigMap, name: marker}",
        "present: {kind: ConfigMap, name: does-not-exist}",
    )
}

/// The webhook server (on a runtime that outlives the run) and its URL.
fn webhook(script: Vec<Reply>) -> (tokio::runtime::Runtime, FakeServer, String) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt.block_on(FakeServer::start(script));
    let url = format!("{}/services/{TOKEN}", server.url);
    (rt, server, url)
}

fn ok() -> Reply {
    Reply::text(200, "ok")
}

/// Neither the output nor any report names the token.
fn assert_secret_kept(out: &Outcome) {
    assert!(
        !out.stdout.contains("s3cr3t") && !out.stderr.contains("s3cr3t"),
        "the webhook token was printed\n--- stdout\n{}\n--- stderr\n{}",
        out.stdout,
        out.stderr
    );
    for entry in walk(&out.dir) {
        let text = std::fs::read(&entry).unwrap_or_default();
        assert!(
            !String::from_utf8_lossy(&text).contains("s3cr3t"),
            "the webhook token is in {}",
            entry.display()
        );
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

fn schema_check(body: &Value) {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/notification.schema.json");
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
    let errors: Vec<String> = validator.iter_errors(body).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:?}\n{body:#}");
}

#[test]
fn a_failed_run_posts_the_generic_summary() {
    let (_rt, server, url) = webhook(vec![ok()]);
    let case = Case::suite(&failing()).args(["--report-html", "report.html", "--notify", &url]);
    let out = case.run_sandbox();
    out.assert_code(1);
    let req = server.only_request();
    assert_eq!(req.method, "POST");
    assert_eq!(req.path, format!("/services/{TOKEN}"));
    assert_eq!(req.header("content-type"), Some("application/json"));
    let b = &req.body;
    schema_check(b);
    assert_eq!(b["command"], "run");
    assert_eq!(b["outcome"], "failed");
    assert_eq!(b["exitCode"], 1);
    assert_eq!(b["runId"], out.report()["runId"]);
    assert_eq!(b["suites"][0]["name"], "nightly-shop");
    assert_eq!(b["totals"]["failed"], 1);
    assert_eq!(b["suites"][0]["failures"][0]["case"], "marker holds");
    assert_eq!(b["suites"][0]["failures"][0]["status"], "failed");
    assert_eq!(b["flaky"], serde_json::json!([]));
    assert_eq!(b["restore"]["clean"], true);
    assert!(b.get("explore").is_none(), "{b:#}");
    let reports: Vec<(&str, &str)> = b["reports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["kind"].as_str().unwrap(), r["path"].as_str().unwrap()))
        .collect();
    assert_eq!(
        reports,
        [
            ("junit", "junit.xml"),
            ("json", "report.json"),
            ("html", "report.html")
        ]
    );
    assert_secret_kept(&out);
}

#[test]
fn slack_gets_block_kit_with_a_text_fallback() {
    let (_rt, server, url) = webhook(vec![ok()]);
    let case = Case::suite(&failing()).args(["--notify", &url, "--notify-format", "slack"]);
    let out = case.run_sandbox();
    out.assert_code(1);
    let mut body = server.only_request().body;
    assert!(body["text"]
        .as_str()
        .unwrap()
        .starts_with("✗ heatcheck run nightly-shop: failed"));
    // What changes from run to run: the run id and the duration.
    let run_id = out.report()["runId"].as_str().unwrap().to_string();
    let text = serde_json::to_string(&body)
        .unwrap()
        .replace(&run_id, "[run-id]");
    let text = regex::Regex::new(r"\*Duration:\* [0-9.]+s")
        .unwrap()
        .replace_all(&text, "*Duration:* [duration]")
        .into_owned();
    body = serde_json::from_str(&text).unwrap();
    insta::assert_json_snapshot!(body);
    assert_secret_kept(&out);
}

#[test]
fn a_passing_run_notifies_only_with_notify_always() {
    let (_rt, server, url) = webhook(vec![ok()]);
    let quiet = Case::suite(PASSES).args(["--notify", &url]).run_sandbox();
    quiet.assert_code(0);
    assert!(
        server.requests().is_empty(),
        "a passing run sent a notification"
    );
    // From the environment (as deploy's CronJob passes it), two webhooks.
    let second = format!("{}/second", server.url);
    let case = Case::suite(PASSES)
        .env("HEATCHECK_NOTIFY_URL", &format!("{url} {second}"))
        .args(["--notify-always"]);
    let always = case.run_sandbox();
    always.assert_code(0);
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2, "one POST per webhook");
    assert_eq!(reqs[1].path, "/second");
    assert_eq!(reqs[0].body["outcome"], "passed");
    assert_eq!(reqs[0].body["totals"]["failed"], 0);
    assert_eq!(reqs[0].body["suites"][0]["failures"], serde_json::json!([]));
    assert_secret_kept(&always);
}

/// An unset CI secret arrives as an empty HEATCHECK_NOTIFY_URL: no webhook,
/// no warning.
#[test]
fn an_empty_notify_url_notifies_nobody() {
    let case = Case::suite(&failing()).env("HEATCHECK_NOTIFY_URL", "");
    let out = case.run_sandbox();
    out.assert_code(1);
    assert!(!out.stderr.contains("notification"), "{}", out.stderr);
}

#[test]
fn a_failing_webhook_is_a_warning_and_the_exit_code_stays_the_runs() {
    // A 5xx is tried once more, then given up.
    let (_rt, server, url) = webhook(vec![
        Reply::text(500, "boom"),
        Reply::text(503, "still down"),
    ]);
    let case = Case::suite(&failing()).args(["--notify", &url]);
    let out = case.run_sandbox();
    out.assert_code(1);
    assert_eq!(server.requests().len(), 2, "one retry on 5xx");
    let host = server.url.trim_start_matches("http://");
    assert!(
        out.stderr.contains(&format!(
            "warning: notification not sent: webhook http://{host}/… answered HTTP 503"
        )),
        "{}",
        out.stderr
    );
    assert_secret_kept(&out);

    // Nobody listens: a passing run still exits 0.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let gone = format!("http://{}/hook/{TOKEN}", closed.local_addr().unwrap());
    drop(closed);
    let case = Case::suite(PASSES).args(["--notify", &gone, "--notify-always"]);
    let out = case.run_sandbox();
    out.assert_code(0);
    assert!(
        out.stderr
            .contains("warning: notification not sent: webhook http://127.0.0.1:"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("cannot be reached"), "{}", out.stderr);
    assert_secret_kept(&out);
}

/// A run that stops before it has results still notifies: here the
/// cluster does not answer (exit 3), and the body says why.
#[test]
fn a_run_that_cannot_start_notifies_why() {
    let (_rt, server, url) = webhook(vec![ok()]);
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let api = format!("https://{}", closed.local_addr().unwrap());
    drop(closed);
    let case = Case::suite(PASSES).file(
        "kubeconfig",
        &format!(
            "apiVersion: v1\nkind: Config\nclusters: [{{name: c, cluster: {{server: '{api}'}}}}]\nusers: [{{name: u, user: {{token: t}}}}]\ncontexts: [{{name: c, context: {{cluster: c, user: u}}}}]\ncurrent-context: c\n"
        ),
    );
    let out = case.exec(&common::args(&[
        "run",
        "suite.yaml",
        "--kubeconfig",
        "kubeconfig",
        "--notify",
        &url,
    ]));
    out.assert_code(3);
    let body = server.only_request().body;
    schema_check(&body);
    assert_eq!(body["outcome"], "unreachable");
    assert_eq!(body["exitCode"], 3);
    assert_eq!(body["suites"][0]["file"], "suite.yaml");
    assert!(
        body["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{body:#}"
    );
    assert_secret_kept(&out);
}
