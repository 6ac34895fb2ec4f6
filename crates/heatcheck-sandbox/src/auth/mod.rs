//! Authentication and authorization of the sandbox API server, as
//! kube-apiserver does them: bearer tokens (the admin, `--user` identities,
//! ServiceAccount tokens) and the RBAC authorizer over the stored Roles,
//! ClusterRoles and bindings. Also the APIs built on them: access reviews,
//! SelfSubjectReview and TokenRequest.

pub(crate) mod admission;
pub(crate) mod bootstrap;
pub(crate) mod rbac;
pub(crate) mod request;
pub(crate) mod review;
pub(crate) mod token;

use std::collections::BTreeMap;

use http::{header, HeaderMap};
use serde_json::{json, Map, Value};

use crate::error::ApiError;
use crate::store::Store;

pub(crate) use request::Attributes;
pub(crate) use token::Issuer;

pub(crate) const AUTHENTICATED: &str = "system:authenticated";
/// The name of the kubeconfig's admin user.
pub(crate) const ADMIN: &str = "kubernetes-admin";

/// user.Info: who a request is from.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct UserInfo {
    pub name: String,
    pub uid: String,
    pub groups: Vec<String>,
    pub extra: BTreeMap<String, Vec<String>>,
}

impl UserInfo {
    /// The admin: member of system:masters, allowed everything.
    pub(crate) fn admin() -> Self {
        UserInfo {
            name: ADMIN.into(),
            groups: vec![rbac::MASTERS.into(), AUTHENTICATED.into()],
            ..Default::default()
        }
    }

    /// A user with no permissions until RBAC grants some.
    pub(crate) fn user(name: &str) -> Self {
        UserInfo {
            name: name.into(),
            groups: vec![AUTHENTICATED.into()],
            ..Default::default()
        }
    }

    pub(crate) fn service_account(ns: &str, name: &str) -> Self {
        UserInfo {
            name: format!("system:serviceaccount:{ns}:{name}"),
            groups: vec![
                "system:serviceaccounts".into(),
                format!("system:serviceaccounts:{ns}"),
                AUTHENTICATED.into(),
            ],
            ..Default::default()
        }
    }

    /// authentication.k8s.io/v1 UserInfo.
    pub(crate) fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("username".into(), json!(self.name));
        if !self.uid.is_empty() {
            m.insert("uid".into(), json!(self.uid));
        }
        m.insert("groups".into(), json!(self.groups));
        if !self.extra.is_empty() {
            m.insert("extra".into(), json!(self.extra));
        }
        Value::Object(m)
    }
}

/// The bearer tokens this server accepts.
pub(crate) struct Authenticator {
    admin_token: String,
    /// `--user` identities: (name, token).
    users: Vec<(String, String)>,
    pub issuer: std::sync::Arc<Issuer>,
}

pub(crate) fn random_token() -> String {
    use rand::Rng;
    let bytes: [u8; 24] = rand::rng().random();
    hex::encode(bytes)
}

/// Compares without an early exit.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

impl Authenticator {
    /// `users` get fresh random tokens.
    pub(crate) fn new(admin_token: String, users: &[String], ca_pem: String) -> Self {
        Authenticator {
            admin_token,
            users: users.iter().map(|u| (u.clone(), random_token())).collect(),
            issuer: std::sync::Arc::new(Issuer::new(ca_pem)),
        }
    }

    /// The `--user` identities and their tokens.
    pub(crate) fn users(&self) -> &[(String, String)] {
        &self.users
    }

    /// Who a bearer token belongs to; 401 for none or an unknown one
    /// (anonymous requests are refused, as with --anonymous-auth=false).
    pub(crate) fn authenticate_token(&self, store: &Store, token: &str) -> Option<UserInfo> {
        if same(token, &self.admin_token) {
            return Some(UserInfo::admin());
        }
        if let Some((name, _)) = self.users.iter().find(|(_, t)| same(token, t)) {
            return Some(UserInfo::user(name));
        }
        self.issuer.authenticate(store, token)
    }

    pub(crate) fn authenticate(
        &self,
        store: &Store,
        headers: &HeaderMap,
    ) -> Result<UserInfo, ApiError> {
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .and_then(|t| self.authenticate_token(store, t))
            .ok_or_else(ApiError::unauthorized)
    }
}

/// `forbiddenMessage` + `NewForbidden`: the 403 kube-apiserver answers.
pub(crate) fn forbidden(a: &Attributes, reason: &str) -> ApiError {
    let user = &a.user.name;
    let msg = if !a.resource_request {
        format!("User {user:?} cannot {} path {:?}", a.verb, a.path)
    } else {
        let resource = if a.subresource.is_empty() {
            a.resource.clone()
        } else {
            format!("{}/{}", a.resource, a.subresource)
        };
        if a.namespace.is_empty() {
            format!(
                "User {user:?} cannot {} resource {resource:?} in API group {:?} at the cluster scope",
                a.verb, a.api_group
            )
        } else {
            format!(
                "User {user:?} cannot {} resource {resource:?} in API group {:?} in the namespace {:?}",
                a.verb, a.api_group, a.namespace
            )
        }
    };
    let msg = if reason.is_empty() {
        msg
    } else {
        format!("{msg}: {reason}")
    };
    let (group, resource, name) = if a.resource_request {
        (a.api_group.as_str(), a.resource.as_str(), a.name.as_str())
    } else {
        ("", "", "")
    };
    forbidden_error(group, resource, name, &msg)
}

/// `apierrors.NewForbidden(groupResource, name, err)`.
pub(crate) fn forbidden_error(group: &str, resource: &str, name: &str, err: &str) -> ApiError {
    let qualified = if group.is_empty() {
        resource.to_string()
    } else {
        format!("{resource}.{group}")
    };
    let message = if qualified.is_empty() {
        format!("forbidden: {err}")
    } else if name.is_empty() {
        format!("{qualified} is forbidden: {err}")
    } else {
        format!("{qualified} {name:?} is forbidden: {err}")
    };
    let mut details = Map::new();
    for (k, v) in [("name", name), ("group", group), ("kind", resource)] {
        if !v.is_empty() {
            details.insert(k.into(), json!(v));
        }
    }
    ApiError {
        code: 403,
        reason: "Forbidden",
        message,
        details: Some(Value::Object(details)),
    }
}

#[cfg(test)]
mod tests;
