//! The controller manager's root CA publisher: every namespace has a
//! `kube-root-ca.crt` ConfigMap whose `ca.crt` is the CA that signed the
//! API server's certificate, put back when deleted or changed (what pods
//! mount as their service account's ca.crt).

use serde_json::{json, Value};
use tokio::time::Instant;

use super::util::{self, key, W};
use super::{Reconciler, Scope};
use crate::registry::ResKey;
use crate::store::Store;

pub(crate) const NAME: &str = "kube-root-ca.crt";
const DESCRIPTION: &str = "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters.";

pub(crate) struct RootCaPublisher {
    pub(crate) ca_pem: String,
}

impl Reconciler for RootCaPublisher {
    fn watches(&self, k: &ResKey) -> bool {
        *k == key("", "namespaces") || *k == key("", "configmaps")
    }

    fn reconcile(&mut self, store: &Store, scope: &Scope) -> Option<Instant> {
        let cms = key("", "configmaps");
        let namespaces: Vec<String> = match scope {
            Scope::All => util::list(store, &key("", "namespaces"), None)
                .iter()
                .map(|n| util::name(n).to_string())
                .collect(),
            Scope::Namespaces(set) => set.iter().cloned().collect(),
        };
        for ns in namespaces {
            let Ok(nso) = store.get(&key("", "namespaces"), None, &ns) else {
                continue;
            };
            if util::is_terminating(&nso) {
                continue;
            }
            let want = json!({"ca.crt": self.ca_pem});
            match store.get(&cms, Some(&ns), NAME) {
                Ok(cur) if cur.get("data") == Some(&want) => {}
                Ok(mut cur) => {
                    if util::is_terminating(&cur) {
                        continue;
                    }
                    cur["data"] = want;
                    let _ = store.update(&cms, Some(&ns), NAME, cur, &W);
                }
                Err(_) => {
                    let cm: Value = json!({
                        "apiVersion": "v1", "kind": "ConfigMap",
                        "metadata": {"name": NAME, "namespace": ns,
                            "annotations": {"kubernetes.io/description": DESCRIPTION}},
                        "data": want,
                    });
                    // A namespace being deleted meanwhile refuses it: fine.
                    let _ = store.create(&cms, Some(&ns), cm, &W);
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::controllers::{spawn_controllers, ControllerConfig};

    async fn eventually(what: &str, f: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !f() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_namespace_gets_the_ca_and_keeps_it() {
        let store = Store::new();
        let _c = spawn_controllers(
            store.clone(),
            ControllerConfig {
                root_ca_pem: Some("-----BEGIN CERTIFICATE-----\nx\n".into()),
                ..Default::default()
            },
        );
        let cms = key("", "configmaps");
        let ca = |ns: &str| {
            store
                .get(&cms, Some(ns), NAME)
                .ok()
                .and_then(|c| c.pointer("/data/ca.crt").cloned())
        };
        let want = Some(json!("-----BEGIN CERTIFICATE-----\nx\n"));
        // The namespaces a cluster starts with, and a new one.
        eventually("default and kube-system", || {
            ca("default") == want && ca("kube-system") == want
        })
        .await;
        store
            .create(
                &key("", "namespaces"),
                None,
                json!({"metadata": {"name": "shop"}}),
                &W,
            )
            .unwrap();
        eventually("shop", || ca("shop") == want).await;
        let cm = store.get(&cms, Some("shop"), NAME).unwrap();
        // Like the real one: no generation (a ConfigMap has no spec).
        assert!(cm["metadata"].get("generation").is_none(), "{cm}");
        // Deleted: published again. Changed: put back.
        store
            .delete(&cms, Some("shop"), NAME, &Default::default())
            .unwrap();
        eventually("recreated", || ca("shop") == want).await;
        let mut cm = store.get(&cms, Some("shop"), NAME).unwrap();
        cm["data"]["ca.crt"] = json!("tampered");
        store.update(&cms, Some("shop"), NAME, cm, &W).unwrap();
        eventually("restored", || ca("shop") == want).await;
    }
}
