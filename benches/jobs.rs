//! `--jobs` benchmark: 8 independent suites run by the real binary against a
//! `heatcheck sandbox` child, with `--jobs 1` (the baseline, measured in the
//! same run) and `--jobs 4`, in two sets: suites that mostly wait (a
//! Deployment rolled out and a short sleep, as real chaos scenarios do) and
//! suites that are API- and CPU-bound (60 changes each, no waits: the
//! journal, the client and the API server are the work). Prints the median
//! wall time of each and the ratios.
//!
//! `cargo bench --bench jobs`. Loopback only; the suite count bounds the work.

mod common;

use std::process::Command;
use std::time::Instant;

use common::{median, print_targets, SandboxChild, Target};

const SUITES: usize = 8;
const RUNS: usize = 3;
const SPEEDUP_TARGET: f64 = 2.0;
/// CPU- and API-bound suites share the machine's cores with the API server:
/// --jobs must not make them slower.
const BUSY_TARGET: f64 = 1.0;
const BUSY_OBJECTS: usize = 30;

fn suite(i: usize) -> String {
    format!(
        r#"apiVersion: heatcheck.dev/v1alpha1
kind: Suite
metadata: {{name: bench-{i}}}
spec:
  target: {{namespace: bench-jobs-{i}, createNamespace: true}}
  defaults: {{timeout: 60s, interval: 100ms}}
  fixtures:
    - apply:
        manifest: |
          apiVersion: apps/v1
          kind: Deployment
          metadata: {{name: web, labels: {{app: web}}}}
          spec:
            replicas: 2
            selector: {{matchLabels: {{app: web}}}}
            template:
              metadata: {{labels: {{app: web}}}}
              spec: {{containers: [{{name: echo, image: echo}}]}}
    - wait: {{kind: Deployment, name: web, available: true}}
  scenarios:
    - name: scale out and back
      steps:
        - scale: {{name: web, replicas: 4}}
        - wait: {{kind: Deployment, name: web, available: true}}
        - sleep: 500ms
      assertions:
        - resource: {{kind: Deployment, name: web, expect: {{$.spec.replicas: 4}}}}
"#
    )
}

/// A suite with no waits: applies, patches and deletes of ConfigMaps, then
/// the journal undoes them all.
fn busy_suite(i: usize) -> String {
    let mut steps = String::new();
    for k in 0..BUSY_OBJECTS {
        steps.push_str(&format!(
            "        - apply:\n            manifest: |\n              apiVersion: v1\n              kind: ConfigMap\n              metadata: {{name: cm-{k}}}\n              data: {{k: \"{k}\"}}\n"
        ));
    }
    for k in 0..BUSY_OBJECTS / 2 {
        steps.push_str(&format!(
            "        - patch: {{kind: ConfigMap, name: cm-{k}, type: merge, patch: {{data: {{patched: \"true\"}}}}}}\n"
        ));
    }
    for k in BUSY_OBJECTS / 2..BUSY_OBJECTS {
        steps.push_str(&format!(
            "        - delete: {{kind: ConfigMap, name: cm-{k}}}\n"
        ));
    }
    format!(
        r#"apiVersion: heatcheck.dev/v1alpha1
kind: Suite
metadata: {{name: busy-{i}}}
spec:
  target: {{namespace: bench-busy-{i}, createNamespace: true}}
  scenarios:
    - name: many changes
      steps:
{steps}      assertions:
        - resource: {{kind: ConfigMap, name: cm-0, expect: {{$.data.patched: "true"}}}}
"#
    )
}

fn main() {
    let sandbox = SandboxChild::start();
    let work = tempfile::tempdir().expect("temp dir");
    let (waiting, busy) = (work.path().join("waiting"), work.path().join("busy"));
    for (d, make) in [
        (&waiting, suite as fn(usize) -> String),
        (&busy, busy_suite),
    ] {
        std::fs::create_dir_all(d).expect("suite dir");
        for i in 0..SUITES {
            std::fs::write(d.join(format!("suite-{i}.yaml")), make(i)).expect("write suite");
        }
    }
    println!("== jobs: {SUITES} independent suites, --jobs 1 vs --jobs 4, median of {RUNS} ==");
    let time = |dir: &std::path::Path, jobs: &str| -> f64 {
        let mut secs = Vec::new();
        for _ in 0..RUNS {
            let started = Instant::now();
            let out = Command::new(common::bin())
                .args(["run", ".", "--kubeconfig"])
                .arg(&sandbox.kubeconfig)
                .args(["--jobs", jobs, "--state-dir", ".heatcheck"])
                .env("NO_COLOR", "1")
                .env_remove("KUBECONFIG")
                .current_dir(dir)
                .output()
                .expect("run heatcheck");
            secs.push(started.elapsed().as_secs_f64());
            assert!(
                out.status.success(),
                "heatcheck --jobs {jobs} failed:\n{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        median(secs)
    };
    let serial = time(&waiting, "1");
    let parallel = time(&waiting, "4");
    let ratio = serial / parallel;
    println!(
        "waiting suites: --jobs 1: {serial:.2}s  --jobs 4: {parallel:.2}s  speedup {ratio:.2}x"
    );
    let busy_serial = time(&busy, "1");
    let busy_parallel = time(&busy, "4");
    let busy_ratio = busy_serial / busy_parallel;
    println!(
        "API/CPU-bound suites ({} changes each, no waits): --jobs 1: {busy_serial:.2}s  --jobs 4: {busy_parallel:.2}s  speedup {busy_ratio:.2}x on {} core(s)",
        BUSY_OBJECTS * 2,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    print_targets(
        "jobs",
        &[
            Target::new(
                "--jobs 4 vs --jobs 1 on 8 independent waiting suites",
                format!("{ratio:.2}x faster"),
                &format!(">= {SPEEDUP_TARGET}x"),
                ratio >= SPEEDUP_TARGET,
            ),
            Target::new(
                "--jobs 4 vs --jobs 1 on 8 API/CPU-bound suites",
                format!("{busy_ratio:.2}x faster"),
                &format!(">= {BUSY_TARGET}x"),
                busy_ratio >= BUSY_TARGET,
            ),
        ],
    );
}
