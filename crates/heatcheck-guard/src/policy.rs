//! The effective policy of one suite: its `policy` block, narrowed by the
//! target and by command-line overrides that can only tighten it.

use std::collections::BTreeSet;

use serde::Serialize;

use super::kinds::{self, DEFAULT_DENIED_KINDS, WELL_KNOWN_CLUSTER_SCOPED};
use heatcheck_format::{
    format_duration, is_system_namespace, system_namespace_message, Duration, Suite,
    DEFAULT_MAX_DURATION, DEFAULT_MAX_PODS_AFFECTED, STEP_KINDS,
};

/// Kubernetes verbs accepted in `forbiddenVerbs` beside the step kinds.
pub(crate) const API_VERBS: &[&str] = &[
    "create",
    "update",
    "patch",
    "delete",
    "deletecollection",
    "get",
    "list",
    "watch",
];

/// `heatcheck run` flags. Each can only tighten the suite's policy; a looser
/// value is ignored with a note (see [`EffectivePolicy::build`]).
#[derive(Clone, Debug, Default)]
pub struct PolicyOverrides {
    /// `--allow-namespace` (repeatable): intersected with the suite's.
    pub allow_namespaces: Vec<String>,
    /// `--deny-kind` (repeatable): added.
    pub deny_kinds: Vec<String>,
    /// `--max-pods-affected`: the smaller one wins.
    pub max_pods_affected: Option<u8>,
    /// `--max-duration`: the shorter one wins.
    pub max_duration: Option<Duration>,
    /// `--forbid-verb` (repeatable): added.
    pub forbid_verbs: Vec<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PolicyError {
    #[error("{origin}: unknown verb {verb:?} (known: {known})")]
    UnknownVerb {
        origin: String,
        verb: String,
        known: String,
    },
    #[error("{origin}: maxPodsAffected {value} is above 100 (it is a percent)")]
    Percent { origin: String, value: u8 },
}

/// What the guard enforces for one suite.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EffectivePolicy {
    pub target_namespace: String,
    pub create_namespace: bool,
    /// Mutations happen only here (never empty for a loaded suite).
    pub allow_namespaces: Vec<String>,
    /// Explicitly denied (suite `deniedKinds` and `--deny-kind`); beats `allowedKinds`.
    pub denied_kinds: BTreeSet<String>,
    /// Lifts the default denials (cluster-scoped kinds), never an explicit one.
    pub allowed_kinds: BTreeSet<String>,
    pub max_pods_affected: Option<u8>,
    /// Whether the suite or a flag set maxPodsAffected (not the default):
    /// only then is a fault's `percent` (of its selected pods) compared up front.
    #[serde(skip)]
    pub(crate) max_pods_explicit: bool,
    #[serde(serialize_with = "ser_duration")]
    pub max_duration: Option<Duration>,
    pub forbidden_verbs: BTreeSet<String>,
    /// `policy.allowSystemNamespaces`: kube-system and friends may be changed.
    pub(crate) allow_system_namespaces: bool,
    /// Kinds known to be cluster-scoped (built in, plus discovery).
    #[serde(skip)]
    pub cluster_scoped: BTreeSet<String>,
    /// Kinds known to be namespaced (from discovery).
    #[serde(skip)]
    pub(crate) namespaced: BTreeSet<String>,
}

fn ser_duration<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_some(&format_duration(d.0)),
        None => s.serialize_none(),
    }
}

fn known_verbs() -> String {
    let mut all: Vec<&str> = STEP_KINDS.to_vec();
    all.extend(API_VERBS.iter().filter(|v| !STEP_KINDS.contains(v)));
    all.join(", ")
}

fn check_verbs(verbs: &[String], origin: &str) -> Result<BTreeSet<String>, PolicyError> {
    verbs
        .iter()
        .map(|v| {
            let v = v.trim().to_ascii_lowercase();
            if STEP_KINDS.contains(&v.as_str()) || API_VERBS.contains(&v.as_str()) {
                Ok(v)
            } else {
                Err(PolicyError::UnknownVerb {
                    origin: origin.to_string(),
                    verb: v,
                    known: known_verbs(),
                })
            }
        })
        .collect()
}

impl EffectivePolicy {
    /// The suite's policy narrowed by the target and the overrides. The
    /// notes say which overrides were ignored because they would loosen it.
    pub fn build(
        suite: &Suite,
        overrides: &PolicyOverrides,
    ) -> Result<(EffectivePolicy, Vec<String>), PolicyError> {
        let target = &suite.spec.target;
        let policy = suite.spec.policy.clone().unwrap_or_default();
        let mut notes = Vec::new();

        let mut allow: Vec<String> = if target.allow_namespaces.is_empty() {
            vec![target.namespace.clone()]
        } else {
            target.allow_namespaces.clone()
        };
        if !policy.allow_namespaces.is_empty() {
            allow.retain(|ns| policy.allow_namespaces.contains(ns));
        }
        if !overrides.allow_namespaces.is_empty() {
            for ns in &overrides.allow_namespaces {
                if !allow.contains(ns) {
                    notes.push(format!(
                        "--allow-namespace {ns} ignored: the suite does not allow it (allowed: {})",
                        display_list(&allow)
                    ));
                }
            }
            allow.retain(|ns| overrides.allow_namespaces.contains(ns));
        }

        let mut denied: BTreeSet<String> =
            policy.denied_kinds.iter().map(|k| kinds::key(k)).collect();
        denied.extend(overrides.deny_kinds.iter().map(|k| kinds::key(k)));
        let allowed = policy.allowed_kinds.iter().map(|k| kinds::key(k)).collect();

        if let Some(v) = policy.max_pods_affected.filter(|v| *v > 100) {
            return Err(PolicyError::Percent {
                origin: "spec.policy".into(),
                value: v,
            });
        }
        if let Some(v) = overrides.max_pods_affected.filter(|v| *v > 100) {
            return Err(PolicyError::Percent {
                origin: "--max-pods-affected".into(),
                value: v,
            });
        }
        // Unset limits take the safe defaults; only the suite's policy can loosen them.
        let whose = |set: bool| {
            if set {
                "the suite's policy"
            } else {
                "the default policy"
            }
        };
        let suite_pods = policy
            .max_pods_affected
            .unwrap_or(DEFAULT_MAX_PODS_AFFECTED);
        let max_pods_affected = match overrides.max_pods_affected {
            Some(o) if o > suite_pods => {
                notes.push(format!(
                    "--max-pods-affected {o} ignored: {} allows at most {suite_pods}",
                    whose(policy.max_pods_affected.is_some())
                ));
                Some(suite_pods)
            }
            o => o.or(Some(suite_pods)),
        };
        let suite_duration = policy
            .max_duration
            .unwrap_or(Duration(DEFAULT_MAX_DURATION));
        let max_duration = match overrides.max_duration {
            Some(o) if o > suite_duration => {
                notes.push(format!(
                    "--max-duration {} ignored: {} allows at most {}",
                    format_duration(o.0),
                    whose(policy.max_duration.is_some()),
                    format_duration(suite_duration.0)
                ));
                Some(suite_duration)
            }
            o => o.or(Some(suite_duration)),
        };
        let mut forbidden = check_verbs(&policy.forbidden_verbs, "spec.policy.forbiddenVerbs")?;
        forbidden.extend(check_verbs(&overrides.forbid_verbs, "--forbid-verb")?);

        Ok((
            EffectivePolicy {
                target_namespace: target.namespace.clone(),
                create_namespace: target.create_namespace,
                allow_namespaces: allow,
                denied_kinds: denied,
                allowed_kinds: allowed,
                max_pods_affected,
                max_pods_explicit: policy.max_pods_affected.is_some()
                    || overrides.max_pods_affected.is_some(),
                max_duration,
                forbidden_verbs: forbidden,
                allow_system_namespaces: policy.allow_system_namespaces,
                cluster_scoped: WELL_KNOWN_CLUSTER_SCOPED
                    .iter()
                    .map(|k| kinds::key(k))
                    .collect(),
                namespaced: BTreeSet::new(),
            },
            notes,
        ))
    }

    /// Records a kind's scope as discovery reports it.
    pub(crate) fn learn_scope(&mut self, kind: &str, namespaced: bool) {
        let k = kinds::key(kind);
        if namespaced {
            self.cluster_scoped.remove(&k);
            self.namespaced.insert(k);
        } else {
            self.namespaced.remove(&k);
            self.cluster_scoped.insert(k);
        }
    }

    /// Some(true) when known cluster-scoped, Some(false) when known namespaced.
    pub fn cluster_scoped(&self, kind: &str) -> Option<bool> {
        let k = kinds::key(kind);
        if self.cluster_scoped.contains(&k) {
            Some(true)
        } else if self.namespaced.contains(&k) {
            Some(false)
        } else {
            None
        }
    }

    /// Err says why a mutation in `ns` is refused.
    pub fn check_namespace(&self, ns: &str) -> Result<(), String> {
        if is_system_namespace(ns) && !self.allow_system_namespaces {
            return Err(system_namespace_message(ns));
        }
        if self.allow_namespaces.iter().any(|a| a == ns) {
            return Ok(());
        }
        Err(format!(
            "namespace {ns} is outside target.allowNamespaces ({}); heatcheck never touches it",
            display_list(&self.allow_namespaces)
        ))
    }

    /// Why mutating an object of `kind` is refused, if it is. `cluster_scoped`
    /// is what discovery says (None: ask what the policy already knows).
    pub fn kind_refusal(&self, kind: &str, cluster_scoped: Option<bool>) -> Option<String> {
        let k = kinds::key(kind);
        if self.denied_kinds.contains(&k) {
            return Some(format!("{kind} is in the policy's denied kinds"));
        }
        if kinds::is_namespace(kind) {
            return Some(
                "steps never create, change or delete a Namespace (target.createNamespace creates the suite's own)"
                    .into(),
            );
        }
        if self.allowed_kinds.contains(&k) {
            return None;
        }
        if DEFAULT_DENIED_KINDS.iter().any(|d| kinds::key(d) == k) {
            return Some(format!(
                "{kind} is denied by default; list it in policy.allowedKinds to allow it"
            ));
        }
        if cluster_scoped.or_else(|| self.cluster_scoped(kind)) == Some(true) {
            return Some(format!(
                "{kind} is cluster-scoped, denied by default; list it in policy.allowedKinds to allow it"
            ));
        }
        None
    }

    /// Why a step of this kind, using these API verbs, is refused, if it is.
    pub fn verb_refusal(&self, step_kind: &str, verbs: &[&str]) -> Option<String> {
        if self.forbidden_verbs.contains(step_kind) {
            return Some(format!("{step_kind} is a forbidden verb"));
        }
        verbs
            .iter()
            .find(|v| self.forbidden_verbs.contains(**v))
            .map(|v| format!("it uses the forbidden verb {v}"))
    }

    /// The suite's policy says every pod may be affected (maxPodsAffected
    /// 100): a selector matching the whole namespace is then intended.
    pub fn allows_every_pod(&self) -> bool {
        self.max_pods_explicit && self.max_pods_affected == Some(100)
    }

    /// Why affecting `affected` of the namespace's `total` pods is refused, if it is.
    pub(crate) fn pods_refusal(&self, affected: usize, total: usize) -> Option<String> {
        let max = self.max_pods_affected?;
        if affected * 100 <= usize::from(max) * total {
            return None;
        }
        Some(format!(
            "it affects {affected} of the namespace's {total} pods ({}%), above maxPodsAffected {max}%",
            (affected * 100).div_ceil(total.max(1))
        ))
    }

    /// Why something lasting `d` is refused, if it is.
    pub(crate) fn duration_refusal(&self, d: std::time::Duration, what: &str) -> Option<String> {
        let max = self.max_duration?;
        (d > max.0).then(|| {
            format!(
                "{what} {} is longer than maxDuration {}",
                format_duration(d),
                format_duration(max.0)
            )
        })
    }
}

fn display_list(v: &[String]) -> String {
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use heatcheck_format::Policy;

    fn suite(policy: Option<Policy>, allow: &[&str]) -> Suite {
        let mut s = heatcheck_format::parse_suite(
            "apiVersion: heatcheck.dev/v1alpha1\nkind: Suite\nmetadata: {name: s}\nspec:\n  target: {namespace: shop}\n",
            std::path::Path::new("suite.yaml"),
        )
        .unwrap();
        s.spec.target.allow_namespaces = allow.iter().map(|s| s.to_string()).collect();
        s.spec.policy = policy;
        s
    }

    #[test]
    fn namespaces_are_intersected_and_looser_flags_ignored() {
        let s = suite(
            Some(Policy {
                allow_namespaces: vec!["shop".into(), "cart".into(), "prod".into()],
                ..Default::default()
            }),
            &["shop", "cart"],
        );
        let (p, notes) = EffectivePolicy::build(&s, &PolicyOverrides::default()).unwrap();
        assert_eq!(p.allow_namespaces, ["shop", "cart"]);
        assert!(notes.is_empty());
        let o = PolicyOverrides {
            allow_namespaces: vec!["cart".into(), "prod".into()],
            ..Default::default()
        };
        let (p, notes) = EffectivePolicy::build(&s, &o).unwrap();
        assert_eq!(p.allow_namespaces, ["cart"]);
        assert_eq!(
            notes,
            ["--allow-namespace prod ignored: the suite does not allow it (allowed: shop, cart)"]
        );
        assert!(p.check_namespace("shop").is_err() && p.check_namespace("cart").is_ok());
    }

    #[test]
    fn limits_take_the_tighter_value() {
        let s = suite(
            Some(Policy {
                max_pods_affected: Some(50),
                max_duration: Some(Duration::from_secs(60)),
                ..Default::default()
            }),
            &["shop"],
        );
        let loose = PolicyOverrides {
            max_pods_affected: Some(80),
            max_duration: Some(Duration::from_secs(600)),
            ..Default::default()
        };
        let (p, notes) = EffectivePolicy::build(&s, &loose).unwrap();
        assert_eq!(p.max_pods_affected, Some(50));
        assert_eq!(p.max_duration, Some(Duration::from_secs(60)));
        assert_eq!(notes.len(), 2, "{notes:?}");
        let tight = PolicyOverrides {
            max_pods_affected: Some(10),
            max_duration: Some(Duration::from_secs(5)),
            ..Default::default()
        };
        let (p, notes) = EffectivePolicy::build(&s, &tight).unwrap();
        assert_eq!(p.max_pods_affected, Some(10));
        assert_eq!(p.max_duration, Some(Duration::from_secs(5)));
        assert!(notes.is_empty());
        // With no suite value, the flag sets one.
        let (p, _) = EffectivePolicy::build(&suite(None, &["shop"]), &tight).unwrap();
        assert_eq!(p.max_pods_affected, Some(10));
    }

    #[test]
    fn kinds_default_denied_cluster_scoped_and_allowed() {
        let s = suite(
            Some(Policy {
                allowed_kinds: vec![
                    "GatewayClass".into(),
                    "ClusterRole".into(),
                    "Namespace".into(),
                ],
                denied_kinds: vec!["secret".into()],
                ..Default::default()
            }),
            &["shop"],
        );
        let o = PolicyOverrides {
            deny_kinds: vec!["ConfigMap".into()],
            ..Default::default()
        };
        let (mut p, _) = EffectivePolicy::build(&s, &o).unwrap();
        assert!(p.kind_refusal("Namespace", None).is_some(), "never lifted");
        assert!(p
            .kind_refusal("Secret", None)
            .unwrap()
            .contains("denied kinds"));
        assert!(p.kind_refusal("configmap", None).is_some());
        assert!(p.kind_refusal("ClusterRole", None).is_none());
        assert!(p.kind_refusal("GatewayClass", Some(true)).is_none());
        assert!(p
            .kind_refusal("Node", None)
            .unwrap()
            .contains("allowedKinds"));
        assert!(p
            .kind_refusal("IngressClass", None)
            .unwrap()
            .contains("cluster-scoped"));
        assert!(p.kind_refusal("Widget", None).is_none());
        p.learn_scope("Widget", false);
        assert!(p.kind_refusal("Widget", None).is_some());
        assert!(p.kind_refusal("Deployment", Some(false)).is_none());
    }

    #[test]
    fn verbs_are_checked_and_unknown_ones_rejected() {
        let s = suite(
            Some(Policy {
                forbidden_verbs: vec!["Delete".into()],
                ..Default::default()
            }),
            &["shop"],
        );
        let (p, _) = EffectivePolicy::build(&s, &PolicyOverrides::default()).unwrap();
        assert!(p.verb_refusal("delete", &["delete"]).is_some());
        assert!(p.verb_refusal("fault", &["create", "delete"]).is_some());
        assert!(p.verb_refusal("apply", &["create", "patch"]).is_none());
        let bad = PolicyOverrides {
            forbid_verbs: vec!["nuke".into()],
            ..Default::default()
        };
        let err = EffectivePolicy::build(&s, &bad).unwrap_err().to_string();
        assert!(
            err.starts_with("--forbid-verb: unknown verb \"nuke\""),
            "{err}"
        );
    }

    #[test]
    fn pods_share_is_compared_to_the_percent() {
        let s = suite(
            Some(Policy {
                max_pods_affected: Some(50),
                ..Default::default()
            }),
            &["shop"],
        );
        let (p, _) = EffectivePolicy::build(&s, &PolicyOverrides::default()).unwrap();
        assert!(p.pods_refusal(2, 4).is_none());
        assert_eq!(
            p.pods_refusal(3, 4).unwrap(),
            "it affects 3 of the namespace's 4 pods (75%), above maxPodsAffected 50%"
        );
        assert!(p.pods_refusal(0, 0).is_none());
        // No policy: the defaults (50%, 10m) hold; only the suite loosens them.
        let (default, notes) = EffectivePolicy::build(
            &suite(None, &["shop"]),
            &PolicyOverrides {
                max_pods_affected: Some(80),
                ..Default::default()
            },
        )
        .unwrap();
        assert!(default.pods_refusal(2, 4).is_none());
        assert!(default.pods_refusal(4, 4).is_some());
        assert_eq!(
            notes,
            ["--max-pods-affected 80 ignored: the default policy allows at most 50"]
        );
        assert!(default
            .duration_refusal(std::time::Duration::from_secs(72 * 3600), "sleep")
            .unwrap()
            .contains("longer than maxDuration 10m"));
        let loose = suite(
            Some(Policy {
                max_pods_affected: Some(100),
                ..Default::default()
            }),
            &["shop"],
        );
        let (open, _) = EffectivePolicy::build(&loose, &PolicyOverrides::default()).unwrap();
        assert!(open.pods_refusal(4, 4).is_none());
    }

    #[test]
    fn system_namespaces_are_refused_unless_the_policy_opts_in() {
        let s = suite(None, &["shop", "kube-system"]);
        let (p, _) = EffectivePolicy::build(&s, &PolicyOverrides::default()).unwrap();
        let why = p.check_namespace("kube-system").unwrap_err();
        assert!(why.contains("allowSystemNamespaces: true"), "{why}");
        let s = suite(
            Some(Policy {
                allow_system_namespaces: true,
                ..Default::default()
            }),
            &["shop", "kube-system"],
        );
        let (p, _) = EffectivePolicy::build(&s, &PolicyOverrides::default()).unwrap();
        assert!(p.check_namespace("kube-system").is_ok());
        assert!(
            p.check_namespace("litmus").is_err(),
            "still outside the allowed list"
        );
    }
}
