//! `heatcheck playbook`: a printable game-day document from the suites (and
//! their lockfiles). With a cluster it adds what `plan` learns there: dry-run
//! answers, the exact Role, and gateway URLs that already resolve.

use std::collections::BTreeMap;
use std::path::Path;

use super::{install_crypto, load_suites_checked, runtime};
use crate::ai::lockfile::{self, sha256_hex, LockState};
use crate::cli::{PlaybookArgs, PlaybookFormat};
use crate::cluster::ClusterClient;
use crate::error::Error;
use crate::guard::{self, Checker, PolicyOverrides};
use crate::report::playbook::{self, ClusterAnswers, LockInput, PlaybookInput, SuiteInput};
use crate::suite::Suite;

/// Without a cluster flag the playbook is made from the files alone.
fn connects(args: &PlaybookArgs) -> bool {
    args.cluster.sandbox || args.cluster.kubeconfig.is_some() || args.cluster.context.is_some()
}

pub fn playbook(args: PlaybookArgs) -> Result<(), Error> {
    install_crypto();
    let suites = load_suites_checked(&args.suites)?;
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
    let input = runtime().block_on(gather(&args, suites))?;
    let doc = playbook::build(&input);
    let text = match format {
        PlaybookFormat::Markdown => doc.to_markdown(),
        PlaybookFormat::Html => doc.to_html(),
    };
    match &args.output {
        Some(path) => {
            std::fs::write(path, text)
                .map_err(|e| Error::invalid(format!("cannot write {}: {e}", path.display())))?;
            stderr_line!("playbook written to {}", path.display());
        }
        None => print!("{text}"),
    }
    Ok(())
}

async fn gather(args: &PlaybookArgs, suites: Vec<Suite>) -> Result<PlaybookInput, Error> {
    let conn = if connects(args) {
        Some(super::connect::connect(&args.cluster, None).await?)
    } else {
        None
    };
    let fixes = super::remediate::read_fixes(&args.remediation)?;
    let mut out = Vec::new();
    for suite in suites {
        let (policy, notes) = guard::EffectivePolicy::build(&suite, &PolicyOverrides::default())
            .map_err(|e| Error::invalid(format!("suite {}: {e}", suite.metadata.name)))?;
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
            fixes: fixes
                .iter()
                .filter(|((s, _), _)| s == &suite.metadata.name)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
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
fn lock_input(suite: &Suite) -> Result<Option<LockInput>, Error> {
    // explore's entries are part of every run, fresh or not.
    let explored = lockfile::explored_scenarios(suite).map_err(Error::invalid)?;
    let generated = match lockfile::state(suite).map_err(Error::invalid)? {
        LockState::Fresh { path, lock } => {
            lockfile::validated_scenarios(suite, &path, &lock).map_err(Error::invalid)?
        }
        LockState::Stale { path, .. } => {
            stderr_line!(
                "warning: {}: lock is stale (the ai block changed); its generated scenarios are left out",
                super::relative(&path)
            );
            Vec::new()
        }
        LockState::Missing(_) | LockState::NoAi => Vec::new(),
    };
    if generated.is_empty() && explored.is_empty() {
        return Ok(None);
    }
    let path = lockfile::lock_path(&suite.source.path);
    let lock = lockfile::read(&path).map_err(Error::invalid)?;
    Ok(Some(LockInput {
        file: super::relative(&path),
        sha256: sha256_hex(&std::fs::read(&path).unwrap_or_default()),
        generated_by: lock.map(|l| l.generated_by).unwrap_or_default(),
        scenarios: generated.into_iter().chain(explored).collect(),
    }))
}

/// The same plan `heatcheck plan` makes, plus gateway URLs that resolve now.
async fn add_cluster_answers(
    client: &ClusterClient,
    input: &mut SuiteInput,
    args: &PlaybookArgs,
) -> Result<(), Error> {
    let scope = super::plan::PlanScope {
        vars: &args.vars,
        ..Default::default()
    };
    let plan = super::plan::plan_suite(client, &input.suite, &scope)
        .await
        .map_err(|e| Error::invalid(format!("suite {}: {e}", input.suite.metadata.name)))?;
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
