//! The tree stays clean and the boundaries of ../shared/DESIGN.md hold:
//! no run state is tracked, and no part imports a side it must not know.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn no_run_state_is_tracked() {
    let Some(git) = common::external_program("no_run_state_is_tracked", "git", None, &[]) else {
        return;
    };
    let out = Command::new(git)
        .args(["ls-files", "-z"])
        .current_dir(root())
        .output();
    let out = match out {
        Ok(o) if o.status.success() => o,
        other => {
            // A source tarball has no git checkout; CI always runs in a clone.
            assert!(
                !crate::common::under_ci(),
                "git ls-files failed under CI: {other:?}"
            );
            // Straight to stderr: libtest hides the output of passing tests.
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED no_run_state_is_tracked: not a git checkout"
            );
            return;
        }
    };
    let tracked: Vec<&str> = std::str::from_utf8(&out.stdout)
        .expect("utf-8 paths")
        .split('\0')
        .filter(|p| p.split('/').any(|part| part == ".heatcheck"))
        .collect();
    assert!(
        tracked.is_empty(),
        "run state is tracked (git rm -r --cached it): {tracked:?}"
    );
}

/// The workspace crates a crate's `[dependencies]` name (not dev- or
/// build-dependencies: tests may use fixtures of a lower crate).
fn internal_deps(manifest: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(manifest).expect("read Cargo.toml");
    let mut section = String::new();
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            section = line.to_string();
        } else if section == "[dependencies]" && line.starts_with("heatcheck-") {
            let name: String = line
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '-')
                .collect();
            out.push(name);
        }
    }
    out
}

/// The crate graph is the boundary of DESIGN.md: the compiler enforces an
/// edge once it is absent, and this pins which edges may exist, with why.
#[test]
fn crate_edges_are_the_boundaries_of_the_design() {
    // (crate, workspace crates it may depend on, why)
    let rules: &[(&str, &[&str], &str)] = &[
        ("heatcheck-gateway", &[], "pure logic both sides share"),
        ("heatcheck-format", &[], "the format is data"),
        (
            "heatcheck-cluster",
            &[],
            "the client never knows the sandbox or the engine",
        ),
        (
            "heatcheck-sandbox",
            &["heatcheck-gateway"],
            "the sandbox is a server of its own",
        ),
        (
            "heatcheck-guard",
            &["heatcheck-format", "heatcheck-cluster"],
            "the guard checks; it neither runs nor reports",
        ),
        (
            "heatcheck-engine",
            &[
                "heatcheck-gateway",
                "heatcheck-format",
                "heatcheck-cluster",
                "heatcheck-guard",
            ],
            "the engine emits, reporters consume; it never knows the sandbox or the AI",
        ),
        (
            "heatcheck-ai",
            &["heatcheck-format", "heatcheck-cluster", "heatcheck-guard"],
            "AI proposes, never executes (no engine)",
        ),
        (
            "heatcheck-report",
            &[
                "heatcheck-gateway",
                "heatcheck-format",
                "heatcheck-guard",
                "heatcheck-engine",
                "heatcheck-explore",
            ],
            "reporters consume events and results (runs, explore's findings) and never call the cluster",
        ),
        (
            "heatcheck-explore",
            &["heatcheck-gateway", "heatcheck-format", "heatcheck-engine"],
            "explore proposes candidates and judges the engine's results; the binary hands it twins, so it never knows the sandbox nor touches a cluster",
        ),
        (
            "heatcheck-remediate",
            &["heatcheck-format", "heatcheck-explore", "heatcheck-engine"],
            "remediate proposes changes to the user's manifests and judges the engine's results on twins the binary starts; it never knows the sandbox nor touches a cluster",
        ),
        (
            "heatcheck-mcp",
            &["heatcheck-engine"],
            "the MCP server runs the heatcheck binary for every tool; it only reads saved reports (engine::model) and names exit codes",
        ),
    ];
    let crates = root().join("crates");
    let mut found: Vec<String> = std::fs::read_dir(&crates)
        .expect("crates/")
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    found.sort();
    let mut ruled: Vec<String> = rules.iter().map(|r| r.0.to_string()).collect();
    ruled.sort();
    assert_eq!(found, ruled, "every crate under crates/ has a rule here");
    let mut crossed = Vec::new();
    for (name, allowed, why) in rules {
        for dep in internal_deps(&crates.join(name).join("Cargo.toml")) {
            if !allowed.contains(&dep.as_str()) {
                crossed.push(format!("{name} depends on {dep} ({why})"));
            }
        }
    }
    assert!(
        crossed.is_empty(),
        "boundaries crossed:\n{}",
        crossed.join("\n")
    );
}

/// What Cargo cannot say: the format crate stays free of I/O stacks, and
/// reporters never reach the cluster through the engine's types.
#[test]
fn what_the_crate_graph_cannot_say() {
    let manifest = std::fs::read_to_string(root().join("crates/heatcheck-format/Cargo.toml"))
        .expect("format manifest");
    for heavy in ["kube", "tokio", "reqwest", "hyper"] {
        assert!(
            !manifest
                .lines()
                .any(|l| l.trim_start().starts_with(&format!("{heavy}."))
                    || l.trim_start().starts_with(&format!("{heavy} "))),
            "heatcheck-format depends on {heavy}: the format is data"
        );
    }
    let mut mentions = Vec::new();
    let mut stack = vec![root().join("crates/heatcheck-report/src")];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read dir") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).expect("read source");
                for needle in ["ClusterClient", ".client."] {
                    if text.contains(needle) {
                        mentions.push(format!("{} mentions {needle}", path.display()));
                    }
                }
            }
        }
    }
    assert!(
        mentions.is_empty(),
        "reporters never call the cluster:\n{}",
        mentions.join("\n")
    );
}
