//! ServiceAccount tokens: JWTs (HS256 with a key only this server holds)
//! carrying the claims kube-apiserver puts in its own. A token is accepted
//! only while the ServiceAccount (and the Secret or Pod it is bound to)
//! still exists with the same uid.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::hmac;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::UserInfo;
use crate::registry::ResKey;
use crate::store::Store;

/// The issuer and default audience, as a kubeadm cluster's.
pub(crate) const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct ObjRef {
    pub name: String,
    pub uid: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct KubeClaims {
    pub namespace: String,
    pub serviceaccount: ObjRef,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<ObjRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<ObjRef>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Claims {
    pub iss: String,
    pub sub: String,
    #[serde(default)]
    pub aud: Vec<String>,
    /// Absent on legacy Secret tokens: they never expire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    pub iat: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    #[serde(default)]
    pub jti: String,
    #[serde(rename = "kubernetes.io")]
    pub kubernetes: KubeClaims,
}

/// Signs and verifies ServiceAccount tokens.
pub(crate) struct Issuer {
    key: hmac::Key,
    /// PEM of the API server's CA (the `ca.crt` of token Secrets).
    pub ca_pem: String,
}

impl std::fmt::Debug for Issuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Issuer")
    }
}

impl Issuer {
    pub(crate) fn new(ca_pem: String) -> Self {
        use rand::Rng;
        let secret: [u8; 32] = rand::rng().random();
        Issuer {
            key: hmac::Key::new(hmac::HMAC_SHA256, &secret),
            ca_pem,
        }
    }

    pub(crate) fn sign(&self, claims: &Claims) -> String {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap_or_default());
        let signing_input = format!("{header}.{payload}");
        let tag = hmac::sign(&self.key, signing_input.as_bytes());
        format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
    }

    /// The claims of a token this issuer signed that has not expired.
    pub(crate) fn verify(&self, token: &str) -> Option<Claims> {
        let (signing_input, sig) = token.rsplit_once('.')?;
        let (_, payload) = signing_input.split_once('.')?;
        let sig = URL_SAFE_NO_PAD.decode(sig).ok()?;
        hmac::verify(&self.key, signing_input.as_bytes(), &sig).ok()?;
        let claims: Claims = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
        let now = chrono::Utc::now().timestamp();
        if claims.exp.is_some_and(|e| e <= now) || claims.iss != ISSUER {
            return None;
        }
        Some(claims)
    }

    /// The ServiceAccount a token authenticates as, if it is valid now.
    pub(crate) fn authenticate(&self, store: &Store, token: &str) -> Option<UserInfo> {
        let c = self.verify(token)?;
        if !c.aud.iter().any(|a| a == ISSUER) {
            return None;
        }
        let k = &c.kubernetes;
        let uid_of = |plural: &str, name: &str| -> Option<String> {
            let o = store
                .get(&ResKey::new("", plural), Some(&k.namespace), name)
                .ok()?;
            if o.pointer("/metadata/deletionTimestamp").is_some() {
                return None;
            }
            o.pointer("/metadata/uid")
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        if uid_of("serviceaccounts", &k.serviceaccount.name)? != k.serviceaccount.uid {
            return None;
        }
        if let Some(s) = &k.secret {
            if uid_of("secrets", &s.name)? != s.uid {
                return None;
            }
        }
        if let Some(p) = &k.pod {
            if uid_of("pods", &p.name)? != p.uid {
                return None;
            }
        }
        let mut user = UserInfo::service_account(&k.namespace, &k.serviceaccount.name);
        user.uid = k.serviceaccount.uid.clone();
        if let Some(p) = &k.pod {
            user.extra.insert(
                "authentication.kubernetes.io/pod-name".into(),
                vec![p.name.clone()],
            );
            user.extra.insert(
                "authentication.kubernetes.io/pod-uid".into(),
                vec![p.uid.clone()],
            );
        }
        if !c.jti.is_empty() {
            user.extra.insert(
                "authentication.kubernetes.io/credential-id".into(),
                vec![format!("JTI={}", c.jti)],
            );
        }
        Some(user)
    }
}

/// Claims for a ServiceAccount token.
pub(crate) fn claims_for(
    namespace: &str,
    sa: ObjRef,
    audiences: Vec<String>,
    expires: Option<i64>,
) -> Claims {
    let now = chrono::Utc::now().timestamp();
    Claims {
        iss: ISSUER.into(),
        sub: format!("system:serviceaccount:{namespace}:{}", sa.name),
        aud: audiences,
        exp: expires,
        iat: now,
        nbf: expires.map(|_| now),
        jti: uuid::Uuid::new_v4().to_string(),
        kubernetes: KubeClaims {
            namespace: namespace.into(),
            serviceaccount: sa,
            secret: None,
            pod: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa() -> ObjRef {
        ObjRef {
            name: "app".into(),
            uid: "u1".into(),
        }
    }

    #[test]
    fn tokens_verify_only_with_their_issuer_and_before_expiry() {
        let a = Issuer::new(String::new());
        let b = Issuer::new(String::new());
        let now = chrono::Utc::now().timestamp();
        let t = a.sign(&claims_for(
            "ns",
            sa(),
            vec![ISSUER.into()],
            Some(now + 600),
        ));
        assert_eq!(t.split('.').count(), 3, "JWT-shaped");
        assert_eq!(a.verify(&t).unwrap().sub, "system:serviceaccount:ns:app");
        assert!(b.verify(&t).is_none(), "another server's key");
        let mut forged = t.clone();
        forged.replace_range(t.len() - 4.., "AAAA");
        assert!(a.verify(&forged).is_none());
        let expired = a.sign(&claims_for("ns", sa(), vec![ISSUER.into()], Some(now - 1)));
        assert!(a.verify(&expired).is_none());
    }
}
