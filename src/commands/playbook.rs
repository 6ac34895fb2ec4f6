//! `heatcheck playbook`: a printable game-day document from the suites (and
//! their lockfiles). With a cluster it adds what `plan` learns there: dry-run
//! answers, the exact Role, and gateway URLs that already resolve.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{install_crypto, load_suites_or_exit, runtime};
use crate::ai::lockfile::{self, sha256_hex, LockState};
use crate::cluster::ClusterClient;
use crate::exit;
use crate::guard::{self, Checker, PolicyOverrides};
use crate::report::playbook::{self, ClusterAnswers, LockInput, PlaybookInput, SuiteInput};
use crate::suite::Suite;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlaybookFormat {
    Markdown,
    Html,
}

pub struct PlaybookArgs {
    pub suites: Vec<PathBuf>,
    /// None: from `--output`'s extension (`.html`), else Markdown.
    pub format: Option<PlaybookFormat>,
    pub output: Option<PathBuf>,
    pub date: Option<String>,
    pub cluster: super::connect::ClusterArgs,
    pub vars: Vec<(String, String)>,
}

impl PlaybookArgs {
    fn connects(&self) -> bool {
        self.cluster.sandbox || self.cluster.kubeconfig.is_some() || self.cluster.context.is_some()
    }
}

pub fn playbook(args: PlaybookArgs) -> i32 {
    install_crypto();
    let suites = match load_suites_or_exit(&args.suites) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let format = args.format.unwrap_or_else(|| {
        match args
            .output
            .as_deref()
            .and_then(Path::extension)
            .and_then(|e| e.to_str())
        {
            Some("html" | "htm") => PlaybookFormat::Html,
            _ => PlaybookFormat::Markdown,
        }
    });
    let input = match runtime().block_on(gather(&args, suites)) {
        Ok(i) => i,
        Err((code, msg)) => {
            eprintln!("error: {msg}");
            return code;
        }
    };
    let doc = playbook::build(&input);
    let text = match format {
        PlaybookFormat::Markdown => doc.to_markdown(),
        PlaybookFormat::Html => doc.to_html(),
    };
    match &args.output {
        Some(path) => {
            if let Err(e) = std::fs::write(path, text) {
                eprintln!("error: cannot write {}: {e}", path.display());
                return exit::INVALID;
            }
            eprintln!("playbook written to {}", path.display());
        }
        None => print!("{text}"),
    }
    exit::SUCCESS
}

async fn gather(args: &PlaybookArgs, suites: Vec<Suite>) -> Result<PlaybookInput, (i32, String)> {
    let conn = if args.connects() {
        Some(super::connect::connect(&args.cluster).await?)
    } else {
        None
    };
    let mut out = Vec::new();
    for suite in suites {
        let (policy, notes) = guard::EffectivePolicy::build(&suite, &PolicyOverrides::default())
            .map_err(|e| (exit::INVALID, format!("suite {}: {e}", suite.metadata.name)))?;
        let lock = lock_input(&suite)?;
        let checker = Checker::new(&policy, &suite, &args.vars);
        let mut violations = checker.fixtures();
        for sc in suite
            .spec
            .scenarios
            .iter()
            .chain(lock.iter().flat_map(|l| l.scenarios.iter()))
        {
            violations.extend(checker.scenario(sc));
        }
        let bytes = std::fs::read(&suite.source.path).unwrap_or_default();
        let mut input = SuiteInput {
            file: super::relative(&suite.source.path),
            sha256: sha256_hex(&bytes),
            lock,
            policy,
            notes,
            violations,
            vars: args.vars.clone(),
            gateways: BTreeMap::new(),
            cluster: None,
            suite,
        };
        if let Some(c) = &conn {
            add_cluster_answers(&c.client, &mut input, args).await?;
        }
        out.push(input);
    }
    let cluster = conn.as_ref().map(|c| match &args.cluster.context {
        Some(ctx) => format!("{} (context {ctx})", c.client.server()),
        None if args.cluster.sandbox => format!("{} (embedded sandbox)", c.client.server()),
        None => c.client.server().to_string(),
    });
    if let Some(c) = conn {
        c.close().await;
    }
    Ok(PlaybookInput {
        version: env!("CARGO_PKG_VERSION").to_string(),
        date: args
            .date
            .clone()
            .unwrap_or_else(|| chrono::Utc::now().format("%Y-%m-%d").to_string()),
        cluster,
        suites: out,
    })
}

/// The lockfile beside the suite, when it is current (a stale or missing one
/// is not part of what `run --locked` would do).
fn lock_input(suite: &Suite) -> Result<Option<LockInput>, (i32, String)> {
    match lockfile::state(suite).map_err(|e| (exit::INVALID, e.to_string()))? {
        LockState::Fresh { path, lock } => {
            let scenarios = lockfile::validated_scenarios(suite, &path, &lock)
                .map_err(|e| (exit::INVALID, e.to_string()))?;
            Ok(Some(LockInput {
                file: super::relative(&path),
                sha256: sha256_hex(&std::fs::read(&path).unwrap_or_default()),
                generated_by: lock.generated_by.clone(),
                scenarios,
            }))
        }
        LockState::Stale { path, .. } => {
            eprintln!(
                "warning: {}: lock is stale (the ai block changed); its scenarios are left out",
                super::relative(&path)
            );
            Ok(None)
        }
        LockState::Missing(_) | LockState::NoAi => Ok(None),
    }
}

/// The same plan `heatcheck plan` makes, plus gateway URLs that resolve now.
async fn add_cluster_answers(
    client: &ClusterClient,
    input: &mut SuiteInput,
    args: &PlaybookArgs,
) -> Result<(), (i32, String)> {
    let plan_args = super::plan::PlanArgs {
        suites: vec![],
        sandbox: args.cluster.sandbox,
        kubeconfig: args.cluster.kubeconfig.clone(),
        context: args.cluster.context.clone(),
        scenarios: vec![],
        vars: args.vars.clone(),
        policy: PolicyOverrides::default(),
        json_output: false,
        locked: false,
        partition: None,
    };
    let plan = super::plan::plan_suite(client, &input.suite, &plan_args)
        .await
        .map_err(|e| {
            (
                exit::INVALID,
                format!("suite {}: {e}", input.suite.metadata.name),
            )
        })?;
    let mut answers = ClusterAnswers {
        rbac_yaml: plan.rbac_yaml,
        ..Default::default()
    };
    for case in plan.cases {
        let key = if case.kind == "fixtures" {
            guard::FIXTURES.to_string()
        } else {
            case.name.clone()
        };
        for st in case.steps {
            answers.steps.insert(
                (key.clone(), st.index),
                st.objects
                    .iter()
                    .map(|o| format!("{} {}: {}", o.verb, o.object, o.result))
                    .collect(),
            );
        }
    }
    input.cluster = Some(answers);
    input.policy = plan.policy;
    let ns = input.suite.spec.target.namespace.clone();
    if let Ok(r) = client
        .resolve(Some("gateway.networking.k8s.io/v1"), "Gateway")
        .await
    {
        if let Ok(list) = client.list(&r, Some(&ns), None).await {
            for gw in list {
                let name = gw["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                if let Ok(url) = crate::gateway_url::gateway_base_url(&gw, None) {
                    input.gateways.insert(format!("{ns}/{name}"), url);
                }
            }
        }
    }
    Ok(())
}
