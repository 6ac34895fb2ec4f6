//! `heatcheck mcp` driven by a real client, the official MCP Python SDK
//! (tests/fixtures/mcp/client.py), over stdio: the tool list, validate,
//! plan and run on the sandbox, and the refusals (a path outside the root,
//! a run against a kubeconfig without --allow-mutations).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::common;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

#[test]
fn a_real_mcp_client_validates_plans_and_runs_on_the_sandbox() {
    let test = "a_real_mcp_client_validates_plans_and_runs_on_the_sandbox";
    let Some(python) = common::python_with(test, "mcp") else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    copy_dir(
        &manifest.join("suites/httproute-conflict"),
        &root.path().join("httproute-conflict"),
    );
    // Never read: the run is refused before anything connects.
    let kubeconfig = root.path().join("kubeconfig");
    std::fs::write(&kubeconfig, "apiVersion: v1\nkind: Config\n").unwrap();
    let out = Command::new(python)
        .arg(manifest.join("tests/fixtures/mcp/client.py"))
        .arg(common::bin())
        .arg(root.path())
        .arg("httproute-conflict/suite.yaml")
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .output()
        .expect("run the MCP client");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "client failed: {stderr}");
    let r: Value = serde_json::from_slice(&out.stdout).expect("client prints JSON");

    insta::assert_json_snapshot!("mcp_tools", r["tools"]);

    let suites = &r["list_suites"]["structured"]["suites"];
    assert_eq!(suites[0]["suite"], "httproute-conflict", "{r}");
    assert_eq!(suites[0]["valid"], true);
    assert!(suites[0]["lockfile"].is_string(), "{suites}");

    let v = &r["validate"]["structured"];
    assert_eq!(v["exitCode"], 0, "{r}");
    assert_eq!(v["result"]["invalid"], 0);

    let plan = &r["plan"]["structured"];
    assert_eq!(r["plan"]["isError"], false, "{r}");
    assert!(plan["result"]["suites"].is_array(), "{plan}");

    let run = &r["run"]["structured"];
    assert_eq!(r["run"]["isError"], false, "{r}");
    assert_eq!(run["result"]["suites"][0]["name"], "httproute-conflict");
    assert_eq!(
        run["exitCode"], run["result"]["exitCode"],
        "the answer's code is the run's"
    );
    assert_eq!(
        run["result"]["restore"]["leftBehind"],
        serde_json::json!([])
    );

    let escape = r["escape"]["mcpError"].as_str().unwrap_or_default();
    assert!(escape.contains("outside the server's root"), "{r}");
    let refused = r["run_cluster"]["mcpError"].as_str().unwrap_or_default();
    assert!(refused.contains("--allow-mutations"), "{r}");
}
