//! What the list and watch verbs share: the label and field selectors of a
//! request, the fields each kind can be selected on, and the
//! PartialObjectMetadata view of an object.

use serde_json::{json, Value};

use super::Req;
use crate::error::ApiError;
use crate::registry::ResourceType;
use crate::selector::{FieldSelector, LabelSelector};

pub(super) fn partial(obj: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata").cloned().unwrap_or(json!({})),
    })
}

/// Kind-specific fields the server can select on, beyond metadata.name/namespace.
pub(super) fn selectable_fields(rt: &ResourceType) -> &'static [&'static str] {
    match (rt.group.as_str(), rt.plural.as_str()) {
        ("", "pods") => &[
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "status.phase",
            "status.podIP",
        ],
        ("", "events") => &[
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "type",
        ],
        ("", "secrets") => &["type"],
        ("", "namespaces") => &["status.phase"],
        _ => &[],
    }
}

/// The label and field selectors of a request.
pub(super) fn selectors(
    rt: &ResourceType,
    r: &Req,
) -> Result<(LabelSelector, FieldSelector), ApiError> {
    let label = LabelSelector::parse(r.query.get("labelSelector").unwrap_or(""))
        .map_err(|e| ApiError::bad_request(e.0))?;
    let field = FieldSelector::parse(
        r.query.get("fieldSelector").unwrap_or(""),
        selectable_fields(rt),
    )
    .map_err(|e| ApiError::bad_request(e.0))?;
    Ok((label, field))
}
