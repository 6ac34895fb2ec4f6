//! `heatcheck playbook`: the Markdown of each shipped suite is snapshotted
//! (what a team prints), the HTML is parsed and checked for what makes it
//! printable and self-contained, and `--sandbox` adds the plan's answers.

use crate::common;

use std::path::PathBuf;
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn playbook(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(common::bin())
        .current_dir(repo())
        .arg("playbook")
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("heatcheck runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn snapshot_settings() -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    // Hashes change whenever a suite is edited; the snapshot is about the shape.
    s.add_filter(r"[0-9a-f]{64}", "[sha256]");
    s.add_filter(r"\| date \| [^|]+ \|", "| date | [date] |");
    s
}

#[test]
fn markdown_playbook_of_each_shipped_suite() {
    for suite in [
        "backend-partition",
        "httproute-conflict",
        "scale-to-zero",
        "service-latency",
    ] {
        let path = format!("suites/{suite}/suite.yaml");
        let (code, md, err) = playbook(&[&path]);
        assert_eq!(code, 0, "{err}");
        snapshot_settings().bind(|| insta::assert_snapshot!(format!("markdown_{suite}"), md));
    }
}

#[test]
fn the_date_is_today_unless_given() {
    let (_, md, _) = playbook(&["suites/scale-to-zero/suite.yaml"]);
    let today = chrono_like_today();
    assert!(md.contains(&format!("| date | {today} |")), "{md}");
    let (_, md, _) = playbook(&["suites/scale-to-zero/suite.yaml", "--date", "2026-12-24"]);
    assert!(md.contains("| date | 2026-12-24 |"));
}

/// Today's UTC date from the system clock, without a date crate in the tests.
fn chrono_like_today() -> String {
    let out = Command::new("date")
        .args(["-u", "+%Y-%m-%d"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn html_playbook_is_self_contained_and_prints_on_a4() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("playbook.html");
    let (code, _, err) = playbook(&["suites/", "--output", file.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let html = std::fs::read_to_string(&file).unwrap();
    let dom = tl::parse(&html, tl::ParserOptions::default()).unwrap();
    let parser = dom.parser();
    let count = |sel: &str| dom.query_selector(sel).map(|i| i.count()).unwrap_or(0);
    assert_eq!(count("script"), 0);
    assert_eq!(count("link"), 0, "no external stylesheet");
    assert_eq!(count("img"), 0);
    let css: String = dom
        .query_selector("style")
        .unwrap()
        .filter_map(|h| h.get(parser))
        .map(|n| n.inner_text(parser).into_owned())
        .collect();
    assert!(css.contains("@page { size: A4"), "{css}");
    assert!(css.contains("@media print"));
    assert!(!css.contains("url("), "no fetched fonts or images");
    // One section per suite, every scenario (hand-written and locked) titled.
    let h2: Vec<String> = dom
        .query_selector("h2")
        .unwrap()
        .filter_map(|h| h.get(parser))
        .map(|n| n.inner_text(parser).into_owned())
        .collect();
    for s in [
        "backend-partition",
        "httproute-conflict",
        "scale-to-zero",
        "service-latency",
    ] {
        assert!(h2.contains(&format!("Suite {s}")), "{h2:?}");
    }
    let h3: Vec<String> = dom
        .query_selector("h3")
        .unwrap()
        .filter_map(|h| h.get(parser))
        .map(|n| n.inner_text(parser).into_owned())
        .collect();
    assert!(
        h3.iter()
            .any(|h| h == "Scenario 3: ai: moderate latency on every v1 pod"),
        "{h3:?}"
    );
    // The fault's NetworkChaos is printed for kubectl apply, HTML-escaped.
    assert!(html.contains("kind: NetworkChaos"));
    assert!(html.contains("&lt;&lt;&#39;EOF&#39;"));
}

#[test]
fn with_the_sandbox_it_adds_dry_runs_and_the_exact_role() {
    let (code, md, err) = playbook(&["suites/scale-to-zero/suite.yaml", "--sandbox"]);
    assert_eq!(code, 0, "{err}");
    assert!(md.contains("(embedded sandbox)"), "{md}");
    assert!(md.contains("**Dry run on the cluster**"), "{md}");
    assert!(md.contains("would create"), "{md}");
    assert!(md.contains("kind: Role"), "{md}");
    assert!(
        md.contains("subresources") || md.contains("deployments/scale"),
        "{md}"
    );
}

#[test]
fn a_missing_suite_is_exit_2() {
    let (code, _, err) = playbook(&["suites/nope.yaml"]);
    assert_eq!(code, 2);
    assert!(err.contains("no such file"), "{err}");
}
