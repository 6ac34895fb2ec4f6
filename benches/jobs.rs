//! `--jobs` benchmark: 8 independent suites (each in its own namespace, each
//! scenario mostly waiting: a Deployment rolled out and a short sleep, as
//! real chaos scenarios do) run by the real binary against a `heatcheck
//! sandbox` child, with `--jobs 1` (the baseline, measured in the same run)
//! and `--jobs 4`. Prints the median wall time of each and the ratio.
//!
//! `cargo bench --bench jobs`. Loopback only; the suite count bounds the work.

mod common;

use std::process::Command;
use std::time::Instant;

use common::{median, print_targets, SandboxChild, Target};

const SUITES: usize = 8;
const RUNS: usize = 3;
const SPEEDUP_TARGET: f64 = 2.0;

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

fn main() {
    let sandbox = SandboxChild::start();
    let work = tempfile::tempdir().expect("temp dir");
    let dir = work.path();
    for i in 0..SUITES {
        std::fs::write(dir.join(format!("suite-{i}.yaml")), suite(i)).expect("write suite");
    }
    println!("== jobs: {SUITES} independent suites, --jobs 1 vs --jobs 4, median of {RUNS} ==");
    let time = |jobs: &str| -> f64 {
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
    let serial = time("1");
    let parallel = time("4");
    let ratio = serial / parallel;
    println!("--jobs 1: {serial:.2}s  --jobs 4: {parallel:.2}s  speedup {ratio:.2}x");
    print_targets(
        "jobs",
        &[Target::new(
            "--jobs 4 vs --jobs 1 on 8 independent suites",
            format!("{ratio:.2}x faster"),
            &format!(">= {SPEEDUP_TARGET}x"),
            ratio >= SPEEDUP_TARGET,
        )],
    );
}
