//! ServiceAccounts as kube-controller-manager keeps them: a `default`
//! ServiceAccount in every namespace, ServiceAccount token Secrets filled
//! with a token, the CA and the namespace, and aggregated ClusterRoles kept
//! up to date.

use std::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Value};
use tokio::time::Instant;

use super::util::{self, key};
use super::{Reconciler, Scope};
use crate::auth::rbac::{aggregate_cluster_roles, GROUP};
use crate::auth::token::{claims_for, ObjRef, ISSUER};
use crate::auth::Issuer;
use crate::store::{Store, WriteOptions};

const TOKEN_TYPE: &str = "kubernetes.io/service-account-token";
const SA_NAME: &str = "kubernetes.io/service-account.name";
const SA_UID: &str = "kubernetes.io/service-account.uid";

pub(crate) struct ServiceAccounts {
    /// Signs the tokens of token Secrets; None leaves them unfilled.
    pub issuer: Option<Arc<Issuer>>,
}

impl Reconciler for ServiceAccounts {
    fn watches(&self, k: &crate::registry::ResKey) -> bool {
        k.group.is_empty()
            && matches!(
                k.plural.as_str(),
                "namespaces" | "serviceaccounts" | "secrets"
            )
    }

    fn reconcile(&mut self, store: &Store, scope: &Scope) -> Option<Instant> {
        for ns in store
            .list(&key("", "namespaces"), None, &|_| true, None, None)
            .map(|p| p.items)
            .unwrap_or_default()
        {
            let name = util::name(&ns);
            if util::is_terminating(&ns) || !scope.covers(name) {
                continue;
            }
            let sa_key = key("", "serviceaccounts");
            if store.get(&sa_key, Some(name), "default").is_err() {
                let _ = store.create(
                    &sa_key,
                    Some(name),
                    json!({"apiVersion": "v1", "kind": "ServiceAccount",
                        "metadata": {"name": "default", "namespace": name}}),
                    &WriteOptions::default(),
                );
            }
        }
        if let Some(issuer) = &self.issuer {
            for secret in scope.list(store, &key("", "secrets")) {
                if secret.get("type").and_then(Value::as_str) == Some(TOKEN_TYPE) {
                    fill_token(store, issuer, &secret);
                }
            }
        }
        None
    }
}

/// Writes token, ca.crt and namespace into a token Secret whose
/// ServiceAccount exists, unless it already holds a valid token for it.
fn fill_token(store: &Store, issuer: &Issuer, secret: &Value) {
    let ns = util::namespace(secret);
    let annotations = util::string_map(secret.pointer("/metadata/annotations"));
    let Some(sa_name) = annotations.get(SA_NAME) else {
        return;
    };
    let Ok(sa) = store.get(&key("", "serviceaccounts"), Some(ns), sa_name) else {
        return;
    };
    let sa_ref = ObjRef {
        name: sa_name.clone(),
        uid: util::uid(&sa).to_string(),
    };
    let secret_ref = ObjRef {
        name: util::name(secret).to_string(),
        uid: util::uid(secret).to_string(),
    };
    let current = secret
        .pointer("/data/token")
        .and_then(Value::as_str)
        .and_then(|t| STANDARD.decode(t).ok())
        .and_then(|t| String::from_utf8(t).ok())
        .and_then(|t| issuer.verify(&t));
    if current.is_some_and(|c| {
        c.kubernetes.serviceaccount == sa_ref && c.kubernetes.secret.as_ref() == Some(&secret_ref)
    }) {
        return;
    }
    let mut claims = claims_for(ns, sa_ref.clone(), vec![ISSUER.into()], None);
    claims.kubernetes.secret = Some(secret_ref);
    let mut next = secret.clone();
    if !next.get("data").is_some_and(Value::is_object) {
        next["data"] = json!({});
    }
    next["data"]["token"] = json!(STANDARD.encode(issuer.sign(&claims)));
    next["data"]["ca.crt"] = json!(STANDARD.encode(&issuer.ca_pem));
    next["data"]["namespace"] = json!(STANDARD.encode(ns));
    next["metadata"]["annotations"][SA_UID] = json!(sa_ref.uid);
    // A conflict means a newer write; its event brings us back.
    let _ = store.update(
        &key("", "secrets"),
        Some(ns),
        util::name(secret),
        next,
        &WriteOptions::default(),
    );
}

/// Keeps aggregated ClusterRoles (admin, edit, view, ...) up to date.
pub(crate) struct ClusterRoleAggregation;

impl Reconciler for ClusterRoleAggregation {
    fn watches(&self, k: &crate::registry::ResKey) -> bool {
        k.group == GROUP && k.plural == "clusterroles"
    }

    fn global(&self) -> bool {
        true
    }

    fn reconcile(&mut self, store: &Store, _scope: &Scope) -> Option<Instant> {
        aggregate_cluster_roles(store);
        None
    }
}
