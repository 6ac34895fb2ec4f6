//! The shipped example suites run green against a sandbox in another
//! process, and the cluster is the same before and after each of them.

use crate::common;

use std::path::PathBuf;

use common::{junit_counts, Case, SandboxProcess};

#[test]
fn every_example_suite_passes_and_leaves_the_cluster_as_it_found_it() {
    let sandbox = SandboxProcess::start();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let suites_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("suites");
    let mut suites: Vec<PathBuf> = std::fs::read_dir(&suites_dir)
        .unwrap()
        .map(|e| e.unwrap().path().join("suite.yaml"))
        .filter(|p| p.exists())
        .collect();
    suites.sort();
    assert_eq!(suites.len(), 4, "the four KubeCon scenarios");
    let scratch = Case::suite("");
    for suite in suites {
        let before = rt.block_on(common::snapshot(&sandbox.kubeconfig));
        let out = scratch.exec(&[
            "run".into(),
            suite.display().to_string(),
            "--kubeconfig".into(),
            sandbox.kubeconfig.display().to_string(),
            "--junit".into(),
            "junit.xml".into(),
            "--report-json".into(),
            "report.json".into(),
            "--locked".into(),
        ]);
        out.assert_code(0);
        let (cases, failures, errors, _) = junit_counts(&out.junit());
        assert!(cases >= 3, "{}: {cases} cases", suite.display());
        assert_eq!((failures, errors), (0, 0), "{}", suite.display());
        // The committed lockfile's scenarios ran too, marked as such.
        let report = out.report();
        let locked = report["suites"][0]["cases"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["origin"] == "lock")
            .count();
        assert!(locked >= 1, "{}: no locked scenario ran", suite.display());
        if suite.ends_with("httproute-conflict/suite.yaml") {
            // Recreating my-route is the point of the scenario: restore puts
            // its content back, and says it is not the same object.
            let changed = &report["restore"]["identityChanged"];
            assert_eq!(
                changed[0]["object"], "HTTPRoute route-chaos/my-route",
                "{report:#}"
            );
            assert_eq!(changed[0]["case"], "recreate route under a duplicate");
            assert!(
                out.stdout.contains(
                    "⚠ new identity: HTTPRoute route-chaos/my-route was recreated (recreate route under a duplicate): uid "
                ),
                "{}",
                out.stdout
            );
            assert!(
                out.junit()
                    .contains("WARNING new identity: HTTPRoute route-chaos/my-route"),
                "{}",
                out.junit()
            );
        }
        let after = rt.block_on(common::snapshot(&sandbox.kubeconfig));
        assert_eq!(
            before,
            after,
            "{} left the cluster changed",
            suite.display()
        );
    }
}
