//! `heatcheck generate SUITE`: gather context, ask the model, validate and
//! repair, write `<suite>.lock.yaml`. Also the shared pieces `prompt` and
//! `run --regenerate` use.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::verify::{SandboxVerifier, VerifyMode};
use super::{install_crypto, relative, runtime};
use crate::ai::budget::count_by_kind;
use crate::ai::context::{gather, Gathered};
use crate::ai::generate::{
    generate, GenerateOptions, Generation, Known, ProviderBackend, Verifier,
};
use crate::ai::lockfile::{self, ai_block_hash, LockParameters, ScenarioLock, LOCK_KIND};
use crate::ai::prompt::{build, Prompt};
use crate::cli::GenerateArgs;
use crate::cluster::ClusterClient;
use crate::error::Error;
use crate::suite::{load_suite, Suite, API_VERSION};

pub use super::connect::{connect, Connected};

/// Gathers and renders the prompt.
pub async fn prepare(client: &ClusterClient, suite: &Suite) -> Result<(Gathered, Prompt), Error> {
    if suite.spec.ai.is_none() {
        return Err(Error::invalid(format!(
            "{}: the suite has no `ai` block",
            suite.source.path.display()
        )));
    }
    let gathered = gather(client, suite)
        .await
        .map_err(|e| Error::reaching(e.is_unreachable(), e))?;
    let prompt = build(suite, &gathered).map_err(Error::invalid)?;
    Ok((gathered, prompt))
}

/// One line about what was gathered and what was dropped.
pub fn context_summary(gathered: &Gathered, prompt: &Prompt) -> String {
    let kinds: Vec<String> = count_by_kind(&prompt.items)
        .into_iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    let mut s = format!(
        "context: {} objects sent ({}) of {} gathered ({} declared by fixtures); ~{} tokens (chars/4) of {} budget",
        prompt.items.len(),
        if kinds.is_empty() { "none".into() } else { kinds.join(", ") },
        gathered.items.len(),
        gathered.declared,
        prompt.estimated_tokens,
        prompt.token_budget_hint(),
    );
    if !prompt.dropped.is_empty() {
        s.push_str(&format!("\n{}", prompt.dropped.note()));
    }
    s
}

/// The provider client for the suite's `ai` block.
pub fn provider_backend(suite: &Suite) -> Result<ProviderBackend, Error> {
    let ai = suite
        .spec
        .ai
        .as_ref()
        .ok_or_else(|| Error::invalid("the suite has no `ai` block"))?;
    let mut backend =
        ProviderBackend::from_suite(ai).map_err(|e| Error::reaching(e.is_unreachable(), e))?;
    // Streaming is only worth it where someone watches the token count.
    use std::io::IsTerminal;
    backend.config.stream = ai.stream.unwrap_or_else(|| std::io::stderr().is_terminal());
    Ok(backend)
}

/// Gathers, generates and builds the lock (not written).
pub async fn generate_lock(
    client: &ClusterClient,
    suite: &Suite,
    backend: &ProviderBackend,
    mode: VerifyMode,
    log: &mut dyn FnMut(String),
) -> Result<(ScenarioLock, Generation), Error> {
    let (gathered, prompt) = prepare(client, suite).await?;
    log(context_summary(&gathered, &prompt));
    let ai = suite
        .spec
        .ai
        .as_ref()
        .expect("prepare checked the ai block");
    let known = Known::from_context(&gathered, suite);
    let verifier = SandboxVerifier::new(suite, &gathered);
    let spinner = Spinner::start(&ai.model, backend.config.streamed.clone());
    let mut log_line = |l: String| spinner.suspend(|| log(l));
    let permissions = IdentityPermissions { client, suite };
    let opts = GenerateOptions {
        permissions: Some(&permissions),
        verifier: (mode != VerifyMode::Off).then_some(&verifier as &dyn Verifier),
        strict: mode == VerifyMode::Strict,
        log: &mut log_line,
    };
    let generation = generate(backend, suite, &prompt, &known, opts).await;
    spinner.finish();
    let generation = generation.map_err(|e| {
        Error::reaching(
            e.is_unreachable(),
            format!("{}/{}: {e}", provider_name(ai.provider), ai.model),
        )
    })?;
    let mut lock = ScenarioLock {
        api_version: API_VERSION.into(),
        kind: LOCK_KIND.into(),
        generated_by: format!("heatcheck {}", env!("CARGO_PKG_VERSION")),
        provider: Some(ai.provider),
        model: ai.model.clone(),
        parameters: LockParameters::from_ai(ai),
        ai_block_hash: ai_block_hash(ai),
        prompt_hash: prompt.prompt_hash(),
        context_hash: prompt.context_hash(),
        generated_at: chrono::Utc::now(),
        usage: generation.usage.clone(),
        rejected: generation.rejected.clone(),
        checks: generation.checks.clone(),
        scenarios: generation.scenarios.clone(),
        explored: Vec::new(),
    };
    // What explore locked is not the model's to replace.
    lockfile::carry_explored(&lockfile::lock_path(&suite.source.path), &mut lock)
        .map_err(Error::invalid)?;
    Ok((lock, generation))
}

/// On a terminal only: a spinner with the time spent and, when the
/// provider streams, the tokens received so far.
struct Spinner {
    bar: Option<indicatif::ProgressBar>,
    ticker: Option<tokio::task::JoinHandle<()>>,
}

impl Spinner {
    fn start(model: &str, streamed: Option<Arc<AtomicU64>>) -> Self {
        use std::io::IsTerminal;
        if !std::io::stderr().is_terminal() {
            return Spinner {
                bar: None,
                ticker: None,
            };
        }
        let bar = indicatif::ProgressBar::new_spinner();
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        let (b, model) = (bar.clone(), model.to_string());
        let started = std::time::Instant::now();
        let ticker = tokio::spawn(async move {
            loop {
                let tokens = streamed
                    .as_ref()
                    .map(|n| n.load(Ordering::Relaxed))
                    .filter(|n| *n > 0)
                    .map(|n| format!(", {n} tokens received"))
                    .unwrap_or_default();
                b.set_message(format!(
                    "generating with {model}: {}s{tokens}",
                    started.elapsed().as_secs()
                ));
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
        });
        Spinner {
            bar: Some(bar),
            ticker: Some(ticker),
        }
    }

    fn suspend(&self, f: impl FnOnce()) {
        match &self.bar {
            Some(b) => b.suspend(f),
            None => f(),
        }
    }

    fn finish(self) {
        if let Some(t) = self.ticker {
            t.abort();
        }
        if let Some(b) = self.bar {
            b.finish_and_clear();
        }
    }
}

pub fn provider_name(p: crate::suite::AiProvider) -> &'static str {
    crate::ai::provider::ProviderKind::from(p).name()
}

/// Prints what generation did: proposals, repairs, rejections.
pub fn print_generation(g: &Generation) {
    stderr_line!(
        "model proposed {} scenario(s), {} valid before repair; {} accepted after {} request(s); tokens in {} / out {}",
        g.proposed_first,
        g.valid_first,
        g.scenarios.len(),
        g.usage.requests,
        g.usage.input_tokens,
        g.usage.output_tokens
    );
    for c in g
        .checks
        .iter()
        .filter(|c| c.sandbox_verdict.starts_with("failed"))
    {
        stderr_line!(
            "review \"{}\": sandboxVerdict {} (locked; --verify=strict rejects it)",
            c.name,
            c.sandbox_verdict
        );
    }
    for r in &g.rejected {
        stderr_line!("rejected \"{}\" (attempt {}):", r.name, r.attempt);
        for reason in &r.reasons {
            stderr_line!("  - {reason}");
        }
    }
}

pub fn generate_cmd(args: GenerateArgs) -> Result<(), Error> {
    install_crypto();
    let mode = args.verify_mode();
    let suite_path: &Path = &args.suite;
    let suite = load_suite(suite_path).map_err(Error::invalid)?;
    if suite.spec.ai.is_none() {
        return Err(Error::invalid(format!(
            "{}: the suite has no `ai` block",
            suite_path.display()
        )));
    }
    let backend = provider_backend(&suite)?;
    runtime().block_on(async move {
        let conn = connect(&args.cluster, None).await?;
        let res = generate_lock(&conn.client, &suite, &backend, mode, &mut |l| {
            stderr_line!("{l}")
        })
        .await;
        conn.close().await;
        let (lock, generation) = res?;
        print_generation(&generation);
        if lock.scenarios.is_empty() {
            return Err(Error::Failed(
                "no valid scenario; the lockfile was not written".into(),
            ));
        }
        let path = lockfile::lock_path(&suite.source.path);
        lockfile::write(&path, &lock).map_err(Error::invalid)?;
        println!(
            "wrote {} ({} scenario(s){})",
            relative(&path),
            lock.scenarios.len(),
            if lock.rejected.is_empty() {
                String::new()
            } else {
                format!(", {} rejected", lock.rejected.len())
            }
        );
        for sc in &lock.scenarios {
            println!("  - {}", sc.name);
        }
        Ok(())
    })
}

/// The permission preflight of `run`, asked per candidate before it is
/// accepted: what the candidate needs beyond the fixtures and steady state
/// (which every run needs anyway) and this identity is denied.
struct IdentityPermissions<'a> {
    client: &'a ClusterClient,
    suite: &'a Suite,
}

impl crate::ai::generate::PermissionCheck for IdentityPermissions<'_> {
    fn denied<'a>(
        &'a self,
        candidates: &'a [crate::suite::Scenario],
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Vec<Vec<String>>> + 'a>> {
        Box::pin(async move {
            use crate::guard::permissions::{required, review, Access};
            let Ok((policy, _)) =
                crate::guard::EffectivePolicy::build(self.suite, &Default::default())
            else {
                // The policy check itself reports a broken policy.
                return vec![Vec::new(); candidates.len()];
            };
            let mut base = self.suite.clone();
            base.spec.scenarios.clear();
            let baseline: std::collections::BTreeSet<String> =
                required(self.client, &base, &policy, &[], &[])
                    .await
                    .iter()
                    .map(|n| n.describe())
                    .collect();
            let mut out = Vec::new();
            for sc in candidates {
                let mut one = base.clone();
                one.spec.scenarios = vec![sc.clone()];
                let needs: Vec<_> = required(self.client, &one, &policy, &[], &[])
                    .await
                    .into_iter()
                    .filter(|n| !baseline.contains(&n.describe()))
                    .collect();
                let answers = review(self.client, &needs).await;
                // One reason per resource: "get, create, delete configmaps in ns".
                let mut denied: Vec<(String, Option<String>, Vec<String>)> = Vec::new();
                for (n, _) in needs
                    .iter()
                    .zip(answers)
                    .filter(|(_, a)| *a == Access::Denied)
                {
                    let resource = if n.group.is_empty() {
                        n.resource.clone()
                    } else {
                        format!("{}.{}", n.resource, n.group)
                    };
                    match denied
                        .iter_mut()
                        .find(|(r, ns, _)| r == &resource && ns == &n.namespace)
                    {
                        Some((_, _, verbs)) => verbs.push(n.verb.clone()),
                        None => denied.push((resource, n.namespace.clone(), vec![n.verb.clone()])),
                    }
                }
                out.push(
                    denied
                        .into_iter()
                        .map(|(resource, ns, verbs)| {
                            let place = match ns {
                                Some(ns) => format!("in {ns}"),
                                None => "(cluster-wide)".into(),
                            };
                            format!(
                                "the running identity cannot {} {resource} {place}: the run's permission preflight (SelfSubjectAccessReview) would refuse it; use only what this identity may do",
                                verbs.join(", ")
                            )
                        })
                        .collect(),
                );
            }
            out
        })
    }
}
