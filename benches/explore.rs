//! `heatcheck explore` benchmark: the catalog on the planted namespace
//! (tests/fixtures/explore/planted: a duplicate route, a one-replica
//! backend, a route that needs a ReferenceGrant), each candidate on its own
//! in-process twin, with `--jobs 1` (the baseline, measured in the same run)
//! and `--jobs 4`. Prints candidates per minute, the time to the first
//! finding (the first `failed` progress event) and the total, and the ratios.
//!
//! `cargo bench --bench explore`. One run per setting: each is a minute or
//! more of twins waiting on their clocks (pods starting, probes ticking).

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use common::{print_targets, Target};

const SPEEDUP_TARGET: f64 = 1.8;

struct Measured {
    total: f64,
    first_finding: Option<f64>,
    candidates: u64,
    findings: usize,
}

fn explore(jobs: &str) -> Measured {
    let suite =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/explore/planted/suite.yaml");
    let started = Instant::now();
    let mut child = Command::new(common::bin())
        .arg("explore")
        .arg(&suite)
        .args(["--sandbox", "--jobs", jobs, "--output", "json"])
        .env("NO_COLOR", "1")
        .env_remove("KUBECONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run heatcheck");
    let stderr = child.stderr.take().unwrap();
    // The progress events arrive as they happen: time the first failure.
    let reader = std::thread::spawn(move || {
        let mut first = None;
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            if first.is_none() && v["event"] == "tried" && v["verdict"] == "failed" {
                first = Some(started.elapsed().as_secs_f64());
            }
        }
        first
    });
    let out = child.wait_with_output().expect("wait heatcheck");
    let total = started.elapsed().as_secs_f64();
    let first_finding = reader.join().unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "the planted namespace has findings"
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    Measured {
        total,
        first_finding,
        candidates: report["candidates"].as_u64().unwrap_or(0),
        findings: report["findings"].as_array().map_or(0, Vec::len),
    }
}

fn main() {
    println!("== explore: the catalog on the planted namespace, --jobs 1 vs --jobs 4 ==");
    let one = explore("1");
    let four = explore("4");
    let per_minute = |m: &Measured| m.candidates as f64 * 60.0 / m.total;
    for (jobs, m) in [("1", &one), ("4", &four)] {
        println!(
            "--jobs {jobs}: {} candidates, {} findings in {:.1}s: {:.1} candidates/min, first finding after {}",
            m.candidates,
            m.findings,
            m.total,
            per_minute(m),
            m.first_finding
                .map(|s| format!("{s:.1}s"))
                .unwrap_or_else(|| "none".into())
        );
    }
    let speedup = per_minute(&four) / per_minute(&one);
    let first = match (one.first_finding, four.first_finding) {
        (Some(a), Some(b)) => a / b,
        _ => 0.0,
    };
    println!("candidates/min ratio {speedup:.2}x, time-to-first-finding ratio {first:.2}x");
    print_targets(
        "explore",
        &[
            Target::new(
                "candidates/min, --jobs 4 vs --jobs 1",
                format!("{speedup:.2}x"),
                &format!(">= {SPEEDUP_TARGET}x"),
                speedup >= SPEEDUP_TARGET,
            ),
            Target::new(
                "same findings at --jobs 4 as at --jobs 1",
                format!("{} vs {}", four.findings, one.findings),
                "equal",
                four.findings == one.findings,
            ),
        ],
    );
}
