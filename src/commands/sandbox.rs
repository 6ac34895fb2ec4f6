//! `heatcheck sandbox`: serve the embedded sandbox until SIGINT/SIGTERM.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::{install_crypto, runtime};
use crate::cli::SandboxArgs;
use crate::cluster::ClusterClient;
use crate::error::Error;
use crate::sandbox::server::FaultSpec;
use crate::sandbox::{Sandbox, SandboxOptions};
use crate::suite::manifest::parse_documents;

pub fn sandbox(args: SandboxArgs) -> Result<(), Error> {
    let SandboxArgs {
        kubeconfig,
        manifests,
        port,
        users,
        metrics_port,
        audit_log,
        inject_api_faults: faults,
    } = args;
    if let Some(bad) = users
        .iter()
        .find(|u| u.is_empty() || *u == "heatcheck-sandbox")
    {
        return Err(Error::invalid(format!("--user {bad:?}: give a name other than \"\" and \"heatcheck-sandbox\" (the admin's context)")));
    }
    install_crypto();
    runtime().block_on(async {
        let sb = Sandbox::start(SandboxOptions {
            port,
            users: users.to_vec(),
            metrics_port: Some(metrics_port),
            audit_log,
            ..Default::default()
        })
        .await
        .map_err(|e| Error::unreachable(format!("cannot start the sandbox: {e}")))?;
        if let Err(e) = sb.write_kubeconfig(&kubeconfig) {
            sb.shutdown().await;
            return Err(Error::invalid(format!(
                "writing kubeconfig {}: {e}",
                kubeconfig.display()
            )));
        }
        println!("api {}", sb.url());
        if let Some(url) = sb.metrics_url() {
            println!("metrics URL {url}");
        }
        println!(
            "kubeconfig {} (context heatcheck-sandbox)",
            kubeconfig.display()
        );
        for u in users {
            println!("user {u} (context {u}: no permissions until RBAC grants some)");
        }
        if let Err(e) = apply_manifests(&sb, &manifests).await {
            sb.shutdown().await;
            return Err(Error::invalid(e));
        }
        // After the manifests: faults are for the clients under test.
        if let Some(spec) = faults {
            println!(
                "injecting API faults: {} on every {} request(s){}",
                spec.status,
                spec.every_nth,
                spec.paths_containing
                    .as_ref()
                    .map(|p| format!(" whose path contains {p:?}"))
                    .unwrap_or_default()
            );
            sb.api.inject_faults(spec);
        }
        let mut bindings = sb.gateway_bindings();
        let store = sb.store.clone();
        let printer = tokio::spawn(async move {
            let mut printed: BTreeMap<String, String> = BTreeMap::new();
            loop {
                let current = bindings.borrow_and_update().clone();
                for b in current {
                    let key = crate::sandbox::registry::ResKey::new(
                        "gateway.networking.k8s.io",
                        "gateways",
                    );
                    let Ok(gw) = store.get(&key, Some(&b.namespace), &b.name) else {
                        continue;
                    };
                    let Ok(url) = crate::gateway_url::gateway_base_url(&gw, None) else {
                        continue;
                    };
                    let id = format!("{}/{}", b.namespace, b.name);
                    if printed.get(&id) != Some(&url) {
                        println!("gateway {id} {url}");
                        printed.insert(id, url);
                    }
                }
                if bindings.changed().await.is_err() {
                    return;
                }
            }
        });
        super::run::wait_for_signal().await;
        printer.abort();
        sb.shutdown().await;
        Ok(())
    })
}

/// Applies manifest files (or every *.yaml in directories) through the API, as a client would.
async fn apply_manifests(sb: &Sandbox, paths: &[PathBuf]) -> Result<(), String> {
    if paths.is_empty() {
        return Ok(());
    }
    let client = ClusterClient::from_kubeconfig_yaml(&sb.kubeconfig_yaml(), None)
        .await
        .map_err(|e| e.to_string())?;
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(p)
                .map_err(|e| format!("{}: {e}", p.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
                .collect();
            entries.sort();
            files.extend(entries);
        } else {
            files.push(p.clone());
        }
    }
    for f in files {
        let text = std::fs::read_to_string(&f).map_err(|e| format!("{}: {e}", f.display()))?;
        for obj in parse_documents(&text, &f.display().to_string())? {
            let kind = obj["kind"].as_str().unwrap_or_default().to_string();
            let r = client
                .resolve(obj["apiVersion"].as_str(), &kind)
                .await
                .map_err(|e| e.to_string())?;
            let ns = r.namespaced.then(|| {
                obj.pointer("/metadata/namespace")
                    .and_then(|v| v.as_str())
                    .unwrap_or("default")
                    .to_string()
            });
            client
                .apply(&r, ns.as_deref(), &obj)
                .await
                .map_err(|e| format!("{}: {e}", f.display()))?;
            let name = obj
                .pointer("/metadata/name")
                .and_then(|v| v.as_str())
                .unwrap_or_default();
            println!(
                "applied {kind} {}{name}",
                ns.map(|n| format!("{n}/")).unwrap_or_default()
            );
        }
    }
    Ok(())
}

/// `STATUS:EVERY_NTH[:PATH_SUBSTRING]`, e.g. `503:3` or `429:4:/namespaces/`.
pub fn parse_fault_spec(s: &str) -> Result<FaultSpec, String> {
    let mut parts = s.splitn(3, ':');
    let status = parts
        .next()
        .and_then(|p| p.parse::<u16>().ok())
        .filter(|c| (400..600).contains(c))
        .ok_or_else(|| {
            format!("expected STATUS:EVERY_NTH[:PATH], STATUS a 4xx/5xx code; got {s:?}")
        })?;
    let every_nth = parts
        .next()
        .and_then(|p| p.parse::<u32>().ok())
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("expected STATUS:EVERY_NTH[:PATH], EVERY_NTH >= 1; got {s:?}"))?;
    let paths_containing = parts.next().filter(|p| !p.is_empty()).map(str::to_string);
    Ok(FaultSpec {
        status,
        every_nth,
        paths_containing,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_specs_parse() {
        assert_eq!(
            parse_fault_spec("503:3").unwrap(),
            FaultSpec {
                status: 503,
                every_nth: 3,
                paths_containing: None
            }
        );
        assert_eq!(
            parse_fault_spec("429:4:/namespaces/x:y")
                .unwrap()
                .paths_containing,
            Some("/namespaces/x:y".into())
        );
        assert!(parse_fault_spec("200:3").is_err());
        assert!(parse_fault_spec("503:0").is_err());
        assert!(parse_fault_spec("503").is_err());
    }
}
