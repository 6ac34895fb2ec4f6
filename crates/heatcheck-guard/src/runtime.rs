//! Checks at execution time, once discovery and the live objects are known:
//! each object's kind and namespace right before the API call, and the blast
//! radius of selector-based steps.

use std::collections::BTreeSet;

use serde_json::Value;

use super::kinds;
use super::policy::EffectivePolicy;
use heatcheck_cluster::{ClusterClient, ClusterError, Resolved};

#[derive(Debug, thiserror::Error)]
pub enum GuardError {
    #[error("refused by policy: {0}")]
    Refused(String),
    #[error(transparent)]
    Cluster(Box<ClusterError>),
}

impl From<ClusterError> for GuardError {
    fn from(e: ClusterError) -> Self {
        GuardError::Cluster(Box::new(e))
    }
}

/// Checks one object a step is about to mutate. `in_fixtures`: the suite's
/// own target namespace may be created there when `createNamespace` is set.
pub fn check_object(
    policy: &EffectivePolicy,
    r: &Resolved,
    ns: Option<&str>,
    name: &str,
    in_fixtures: bool,
) -> Result<(), GuardError> {
    let kind = r.kind();
    let own_namespace = kinds::is_namespace(kind)
        && in_fixtures
        && policy.create_namespace
        && name == policy.target_namespace;
    if !own_namespace {
        if let Some(why) = policy.kind_refusal(kind, Some(!r.namespaced)) {
            return Err(GuardError::Refused(format!("{kind} {name}: {why}")));
        }
    }
    if r.namespaced {
        if let Some(ns) = ns {
            policy.check_namespace(ns).map_err(GuardError::Refused)?;
        }
    }
    Ok(())
}

/// How many pods a step would take away.
#[derive(Clone, Debug)]
pub enum Blast<'a> {
    /// Pods matching a selector, `percent` of them (faults; 100 for deletes).
    Selector { selector: &'a str, percent: u8 },
    /// Pods owned by these workload objects (delete of Deployments by selector).
    Workloads(&'a [Value]),
    /// A known number of pods (scaling down).
    Count(usize),
}

/// The namespace's pods and the share a step would affect, against maxPodsAffected.
/// An empty selector is always refused (it matches every pod).
pub async fn check_blast(
    client: &ClusterClient,
    policy: &EffectivePolicy,
    ns: &str,
    blast: Blast<'_>,
) -> Result<(), GuardError> {
    if let Blast::Selector { selector, .. } = &blast {
        if selector.trim().is_empty() {
            return Err(GuardError::Refused(
                "an empty selector matches every pod in the namespace".into(),
            ));
        }
    }
    let pods = client.resolve(Some("v1"), "Pod").await?;
    let total = client.list(&pods, Some(ns), None).await?.len();
    let affected = match blast {
        Blast::Count(n) => n,
        Blast::Selector { selector, percent } => {
            let matched = client.list(&pods, Some(ns), Some(selector)).await?.len();
            // A fault on a share of the pods is bounded by maxPodsAffected;
            // one on all of them must not select the whole namespace.
            if percent >= 100 && !policy.allows_every_pod() {
                refuse_match_all("Pod", selector, matched, total)?;
            }
            (matched * usize::from(percent)).div_ceil(100)
        }
        Blast::Workloads(objects) => {
            let mut names = BTreeSet::new();
            for o in objects {
                if let Some(sel) = match_labels_selector(o) {
                    for p in client.list(&pods, Some(ns), Some(&sel)).await? {
                        names.insert(
                            p["metadata"]["name"]
                                .as_str()
                                .unwrap_or_default()
                                .to_string(),
                        );
                    }
                }
            }
            names.len()
        }
    };
    match policy.pods_refusal(affected, total) {
        Some(why) => Err(GuardError::Refused(why)),
        None => Ok(()),
    }
}

/// A selector that matches every object of its kind in the namespace (two
/// or more) is refused like an empty one, whatever its syntax (`app`,
/// `app in (a,b)` covering all, `!missing`), unless the suite's policy
/// explicitly allows every pod (see [`EffectivePolicy::allows_every_pod`]).
pub fn refuse_match_all(
    kind: &str,
    selector: &str,
    matched: usize,
    total: usize,
) -> Result<(), GuardError> {
    if total >= 2 && matched >= total {
        return Err(GuardError::Refused(format!(
            "the selector {selector:?} matches every one of the {total} {kind} objects in the namespace, like an empty selector"
        )));
    }
    Ok(())
}

/// `spec.selector.matchLabels` as selector text (workloads own the pods it matches).
pub fn match_labels_selector(o: &Value) -> Option<String> {
    let labels = o.pointer("/spec/selector/matchLabels")?.as_object()?;
    let terms: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect();
    (!terms.is_empty()).then(|| terms.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_selector_matching_every_object_is_refused() {
        assert!(refuse_match_all("Pod", "app", 3, 3).is_err());
        assert!(refuse_match_all("Pod", "app=web", 2, 3).is_ok());
        // One object: the blast radius (maxPodsAffected) decides, not this rule.
        assert!(refuse_match_all("Pod", "app=web", 1, 1).is_ok());
        let e = refuse_match_all("ConfigMap", "!missing", 4, 4).unwrap_err();
        assert_eq!(e.to_string(), "refused by policy: the selector \"!missing\" matches every one of the 4 ConfigMap objects in the namespace, like an empty selector");
    }

    #[test]
    fn workload_selectors_come_from_match_labels() {
        let d = json!({"spec": {"selector": {"matchLabels": {"app": "web", "tier": "fe"}}}});
        assert_eq!(
            match_labels_selector(&d).as_deref(),
            Some("app=web,tier=fe")
        );
        assert_eq!(match_labels_selector(&json!({"spec": {}})), None);
    }
}
