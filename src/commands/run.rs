//! `heatcheck run`: load, connect, run, report, map to an exit code.

use std::path::PathBuf;

use tokio::sync::watch;

use super::{install_crypto, load_suites, print_suite_errors, runtime};
use crate::cluster::{ClusterClient, ConnectOptions};
use crate::engine::{new_run_id, Emitter, Engine, RunOptions};
use crate::exit;
use crate::report::event::Reporter;
use crate::report::human::{HumanOptions, HumanReporter};
use crate::report::json::{to_json, JsonEventReporter};
use crate::report::junit::to_junit_xml;

pub struct RunArgs {
    pub suites: Vec<PathBuf>,
    pub sandbox: bool,
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    pub scenarios: Vec<String>,
    pub junit: Option<PathBuf>,
    pub report_json: Option<PathBuf>,
    pub json_output: bool,
    pub fail_fast: bool,
    pub no_restore: bool,
    pub vars: Vec<(String, String)>,
    pub state_dir: PathBuf,
    /// Policy flags (they only tighten the suites' policies).
    pub policy: crate::guard::PolicyOverrides,
}

pub fn run(args: RunArgs) -> i32 {
    install_crypto();
    let suites = match load_suites(&args.suites) {
        Ok(s) => s,
        Err(errors) => {
            print_suite_errors(&errors);
            return exit::INVALID;
        }
    };
    if !args.scenarios.is_empty() {
        let known: Vec<&str> = suites
            .iter()
            .flat_map(|s| s.spec.scenarios.iter().map(|sc| sc.name.as_str()))
            .collect();
        let unknown: Vec<&String> = args
            .scenarios
            .iter()
            .filter(|n| !known.contains(&n.as_str()))
            .collect();
        if !unknown.is_empty() {
            eprintln!(
                "error: no scenario named {} (known: {})",
                unknown
                    .iter()
                    .map(|s| format!("{s:?}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                known.join(", ")
            );
            return exit::INVALID;
        }
    }
    runtime().block_on(run_async(args, suites))
}

async fn run_async(args: RunArgs, suites: Vec<crate::suite::Suite>) -> i32 {
    #[cfg(feature = "sandbox")]
    let mut sandbox = None;
    let client = if args.sandbox {
        #[cfg(feature = "sandbox")]
        {
            match crate::sandbox::Sandbox::start(crate::sandbox::SandboxOptions::default()).await {
                Ok(sb) => {
                    let c = ClusterClient::from_kubeconfig_yaml(&sb.kubeconfig_yaml(), None).await;
                    sandbox = Some(sb);
                    c
                }
                Err(e) => {
                    eprintln!("error: cannot start the sandbox: {e}");
                    return exit::UNREACHABLE;
                }
            }
        }
        #[cfg(not(feature = "sandbox"))]
        {
            eprintln!("error: this build has no sandbox (built without the `sandbox` feature)");
            return exit::INVALID;
        }
    } else {
        ClusterClient::connect(&ConnectOptions {
            kubeconfig: args.kubeconfig.clone(),
            context: args.context.clone(),
        })
        .await
    };
    let client = match client {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::UNREACHABLE;
        }
    };
    if let Err(e) = client.ping().await {
        eprintln!("error: {e}");
        return exit::UNREACHABLE;
    }

    let reporter: Box<dyn Reporter> = if args.json_output {
        Box::new(JsonEventReporter::new(std::io::stdout()))
    } else {
        Box::new(HumanReporter::new(
            Box::new(std::io::stdout()),
            HumanOptions::detect(),
        ))
    };
    let (cancel_tx, cancel_rx) = watch::channel(false);
    let signals = tokio::spawn(async move {
        wait_for_signal().await;
        eprintln!("\nheatcheck: interrupted; stopping and restoring the cluster (Ctrl-C again to stop waiting for slow deletions)");
        let _ = cancel_tx.send(true);
        wait_for_signal().await;
        eprintln!(
            "heatcheck: second interrupt; the journal keeps what is left: run `heatcheck recover`"
        );
        std::process::exit(exit::ABORTED);
    });
    let engine = Engine {
        client,
        options: RunOptions {
            scenarios: args.scenarios.clone(),
            fail_fast: args.fail_fast,
            no_restore: args.no_restore,
            vars: args.vars.clone(),
            state_dir: Some(args.state_dir.clone()),
            policy: args.policy.clone(),
        },
        emitter: Emitter::new(vec![reporter]),
        run_id: new_run_id(),
        cancel: cancel_rx,
    };
    // The guard first: any violation and nothing runs (no fixture, no journal).
    let checks = match engine.preflight(&suites).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::INVALID;
        }
    };
    for note in checks.iter().flat_map(|c| &c.notes) {
        eprintln!("note: {note}");
    }
    let violations: Vec<_> = checks.iter().flat_map(|c| &c.violations).collect();
    if !violations.is_empty() {
        for v in &violations {
            eprintln!("error: refused by policy: {v}");
        }
        eprintln!(
            "error: {} policy violation(s); nothing was run (see `heatcheck plan`)",
            violations.len()
        );
        return exit::INVALID;
    }
    let policies = checks.into_iter().map(|c| c.policy).collect();
    let report = engine.run_checked(suites, policies).await;
    signals.abort();
    let mut code = report.exit_code;
    if let Some(path) = &args.junit {
        if let Err(e) = write_file(path, &to_junit_xml(&report)) {
            eprintln!("error: writing JUnit report {}: {e}", path.display());
            code = code.max(exit::TEST_FAILED);
        }
    }
    if let Some(path) = &args.report_json {
        if let Err(e) = write_file(path, &to_json(&report)) {
            eprintln!("error: writing JSON report {}: {e}", path.display());
            code = code.max(exit::TEST_FAILED);
        }
    }
    #[cfg(feature = "sandbox")]
    if let Some(sb) = sandbox {
        sb.shutdown().await;
    }
    code
}

fn write_file(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, text)
}

/// SIGINT or SIGTERM.
pub async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
