//! AI context gathering against a plain list: 10,000 objects (ConfigMaps
//! with data, Deployments, Services) in one namespace of the in-process
//! sandbox, then
//!   (a) a paginated `ClusterClient::list` of the same kinds, and
//!   (b) `ai::context::gather` (list + clean + redact + sort) followed by
//!       `ai::prompt::build` (token-budget trimming and rendering),
//! and the ratio b/a. Target: gathering adds less than 2x over the list.
//!
//! `cargo bench --bench context`. Prints figures; never fails on a target.

mod common;

use std::time::Instant;

use common::{median, print_targets, Target};
use heatcheck::ai::context::{gather, Gathered};
use heatcheck::ai::prompt::{build, Prompt};
use heatcheck::cluster::ClusterClient;
use heatcheck::sandbox::registry::ResKey;
use heatcheck::sandbox::store::WriteOptions;
use heatcheck::sandbox::{Sandbox, SandboxOptions};
use heatcheck::suite::Suite;
use serde_json::{json, Value};

const NS: &str = "ctx-bench";
const CONFIG_MAPS: usize = 9_000;
const DEPLOYMENTS: usize = 500;
const SERVICES: usize = 500;
const ROUNDS: usize = 3;
const RATIO_TARGET: f64 = 2.0;

/// (kind, apiVersion) of what the ai block selects, in its order.
const KINDS: &[(&str, &str)] = &[
    ("Deployment", "apps/v1"),
    ("Service", "v1"),
    ("ConfigMap", "v1"),
];

fn config_map(i: usize) -> Value {
    // Some data, with a credential-looking entry so redaction has work to do.
    json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": format!("cm-{i:05}"), "labels": {"app": format!("app-{}", i % 50), "tier": "config"}},
        "data": {
            "settings.yaml": format!("listen: 0.0.0.0:{}\nupstream: http://svc-{:04}:8080\nretries: 3\n", 8000 + i % 1000, i % SERVICES),
            "db_password": "s3cr3t-value",
            "connection": format!("postgres://app:hunter{i}@db:5432/app"),
            "payload": "x".repeat(512),
        }
    })
}

fn deployment(i: usize) -> Value {
    // Zero replicas: the sandbox's controllers create no pods for them.
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": format!("web-{i:04}"), "labels": {"app": format!("web-{i:04}")}},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": format!("web-{i:04}")}},
            "template": {
                "metadata": {"labels": {"app": format!("web-{i:04}")}},
                "spec": {"containers": [{"name": "echo", "image": "echo",
                    "env": [{"name": "API_TOKEN", "value": "tok-123456789"}, {"name": "MODE", "value": "prod"}]}]}
            }
        }
    })
}

fn service(i: usize) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": format!("svc-{i:04}")},
        "spec": {"selector": {"app": format!("web-{i:04}")}, "ports": [{"port": 8080}]}
    })
}

fn fill(store: &heatcheck::sandbox::store::Store) {
    let opts = WriteOptions::default();
    let create = |group: &str, plural: &str, ns: Option<&str>, obj: Value| {
        store
            .create(&ResKey::new(group, plural), ns, obj, &opts)
            .expect("store create");
    };
    create(
        "",
        "namespaces",
        None,
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}),
    );
    for i in 0..CONFIG_MAPS {
        create("", "configmaps", Some(NS), config_map(i));
    }
    for i in 0..DEPLOYMENTS {
        create("apps", "deployments", Some(NS), deployment(i));
    }
    for i in 0..SERVICES {
        create("", "services", Some(NS), service(i));
    }
}

fn suite() -> Suite {
    let context: Vec<Value> = KINDS.iter().map(|(k, _)| json!({"kind": k})).collect();
    let mut s: Suite = serde_json::from_value(json!({
        "apiVersion": "heatcheck.dev/v1alpha1", "kind": "Suite", "metadata": {"name": "bench"},
        "spec": {
            "target": {"namespace": NS},
            "ai": {"provider": "openai", "model": "m", "count": 3,
                "prompt": "Objects:\n{{yaml context}}\nPropose {{count}} scenarios.",
                "context": context}
        }
    }))
    .expect("bench suite");
    s.spec.target.allow_namespaces = vec![NS.to_string()];
    s
}

/// (a): every selected kind, listed page by page. Returns the object count.
async fn plain_list(client: &ClusterClient) -> usize {
    let mut n = 0;
    for (kind, api_version) in KINDS {
        let r = client
            .resolve(Some(api_version), kind)
            .await
            .expect("resolve");
        n += client.list(&r, Some(NS), None).await.expect("list").len();
    }
    n
}

/// (b): gather + prompt, and the seconds the prompt step took.
async fn gather_and_build(client: &ClusterClient, suite: &Suite) -> (Gathered, Prompt, f64) {
    let g = gather(client, suite).await.expect("gather");
    let t = Instant::now();
    let p = build(suite, &g).expect("prompt");
    (g, p, t.elapsed().as_secs_f64())
}

fn main() {
    common::install_crypto();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let total = CONFIG_MAPS + DEPLOYMENTS + SERVICES;
    println!(
        "== AI context: {total} objects ({CONFIG_MAPS} ConfigMaps, {DEPLOYMENTS} Deployments, {SERVICES} Services) in one namespace, median of {ROUNDS} rounds =="
    );
    let started = Instant::now();
    let target = rt.block_on(async {
        let sb = Sandbox::start(SandboxOptions::default())
            .await
            .expect("sandbox starts");
        let t = Instant::now();
        fill(&sb.store);
        println!("  filled the store in {:.2} s", t.elapsed().as_secs_f64());
        let client = ClusterClient::from_kubeconfig_yaml(&sb.kubeconfig_yaml(), None)
            .await
            .expect("client");
        let suite = suite();
        // Warm up: discovery cache, connections, allocator.
        assert_eq!(
            plain_list(&client).await,
            total,
            "the list saw every object"
        );
        let (g, p, _) = gather_and_build(&client, &suite).await;
        assert_eq!(g.items.len(), total, "gather saw every object");
        // The work measured is the real one: credentials are masked.
        let text = serde_json::to_string(&g.items.iter().map(|i| &i.value).collect::<Vec<_>>())
            .expect("json");
        for secret in ["s3cr3t-value", "tok-123456789", "hunter7"] {
            assert!(!text.contains(secret), "gathered context leaks {secret}");
        }
        println!(
            "  prompt: {} of {} objects sent, ~{} tokens (budget {})",
            p.items.len(),
            g.items.len(),
            p.estimated_tokens,
            suite.spec.ai.as_ref().map_or(0, |a| a.token_budget)
        );
        let (mut lists, mut gathers) = (Vec::new(), Vec::new());
        for round in 1..=ROUNDS {
            // Alternate so that drift hits both alike.
            let t = Instant::now();
            plain_list(&client).await;
            let a = t.elapsed().as_secs_f64();
            let t = Instant::now();
            let (_, _, prompt_secs) = gather_and_build(&client, &suite).await;
            let b = t.elapsed().as_secs_f64();
            println!(
                "  round {round}: list {:>7.1} ms   gather+prompt {:>7.1} ms (prompt {:>5.1} ms)   ratio {:.2}",
                a * 1e3,
                b * 1e3,
                prompt_secs * 1e3,
                b / a
            );
            lists.push(a);
            gathers.push(b);
        }
        let (a, b) = (median(lists), median(gathers));
        let ratio = b / a;
        println!(
            "  (a) paginated list (limit 500)            : {:>8.1} ms",
            a * 1e3
        );
        println!(
            "  (b) gather + redact + budget trim + render: {:>8.1} ms",
            b * 1e3
        );
        println!(
            "  ratio b/a: {ratio:.2} (target < {RATIO_TARGET:.1}) {}",
            if ratio < RATIO_TARGET { "PASS" } else { "MISS" }
        );
        sb.shutdown().await;
        Target::new(
            "context gathering / plain list",
            format!("{ratio:.2}x"),
            &format!("< {RATIO_TARGET:.1}x"),
            ratio < RATIO_TARGET,
        )
    });
    print_targets("context", &[target]);
    println!("\ntotal bench time {:.1}s", started.elapsed().as_secs_f64());
}
