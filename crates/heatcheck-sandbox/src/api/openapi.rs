//! Minimal OpenAPI v3 documents. kubectl's default `--validate=strict` asks
//! /openapi/v3 whether a kind's PATCH operation takes the `fieldValidation`
//! query parameter (then it leaves validation to the server). The documents
//! carry operations and group-version-kinds only, no schemas, so `kubectl
//! explain` has nothing to show.

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::registry::{Registry, ResourceType};

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

fn param(name: &str) -> Value {
    json!({"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": true}})
}

fn operation(t: &ResourceType, action: &str, query: &[&str]) -> Value {
    let mut params: Vec<Value> = query.iter().map(|q| param(q)).collect();
    params.push(
        json!({"name": "pretty", "in": "query", "schema": {"type": "string", "uniqueItems": true}}),
    );
    json!({
        "operationId": format!("{action}{}", t.kind),
        "parameters": params,
        "responses": {"200": {"description": "OK"}},
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": {"group": t.group, "version": t.version, "kind": t.kind},
    })
}

/// The document of one group-version (`api/v1`, `apis/apps/v1`).
pub(crate) fn group_version_doc(reg: &Registry, gv: &str) -> Option<Value> {
    let types: Vec<&ResourceType> = reg
        .types()
        .iter()
        .filter(|t| gv_path(&t.group, &t.version) == gv)
        .collect();
    if types.is_empty() {
        return None;
    }
    let write = ["dryRun", "fieldManager", "fieldValidation"];
    let mut paths = Map::new();
    for t in types {
        let base = if t.namespaced {
            format!("/{gv}/namespaces/{{namespace}}/{}", t.plural)
        } else {
            format!("/{gv}/{}", t.plural)
        };
        paths.insert(
            base.clone(),
            json!({
                "get": operation(t, "list", &["labelSelector", "fieldSelector", "limit", "continue", "watch"]),
                "post": operation(t, "post", &write),
                "delete": operation(t, "deletecollection", &["labelSelector", "fieldSelector", "dryRun"]),
            }),
        );
        paths.insert(
            format!("{base}/{{name}}"),
            json!({
                "get": operation(t, "get", &[]),
                "put": operation(t, "put", &write),
                "patch": operation(t, "patch", &["dryRun", "fieldManager", "fieldValidation", "force"]),
                "delete": operation(t, "delete", &["dryRun", "propagationPolicy"]),
            }),
        );
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.36.0-heatcheck"},
        "paths": paths,
        "components": {"schemas": {}},
    }))
}

/// `/openapi/v3`: where each group-version's document is.
pub(crate) fn root(reg: &Registry) -> Value {
    let mut paths = Map::new();
    for (g, v) in reg.group_versions() {
        let gv = gv_path(&g, &v);
        let doc = group_version_doc(reg, &gv).unwrap_or_default();
        let hash = hex::encode(Sha256::digest(doc.to_string().as_bytes()));
        paths.insert(
            gv.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{gv}?hash={}", &hash[..32])}),
        );
    }
    json!({"paths": paths})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_operations_declare_field_validation() {
        let reg = Registry::default();
        let r = root(&reg);
        assert!(r["paths"]["apis/apps/v1"]["serverRelativeURL"]
            .as_str()
            .unwrap()
            .starts_with("/openapi/v3/apis/apps/v1?hash="));
        let d = group_version_doc(&reg, "apis/apps/v1").unwrap();
        let patch = &d["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
        assert_eq!(
            patch["x-kubernetes-group-version-kind"]["kind"],
            "Deployment"
        );
        assert!(patch["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "fieldValidation"));
        assert!(group_version_doc(&reg, "apis/nope/v1").is_none());
        assert!(d["paths"]
            .get("/apis/apps/v1/namespaces/{namespace}/deployments")
            .is_some());
        let core = group_version_doc(&reg, "api/v1").unwrap();
        assert!(core["paths"].get("/api/v1/namespaces/{name}").is_some());
    }
}
