//! Field validation of the built-in kinds, as far as a client can tell the
//! sandbox from kube-apiserver: the required fields and the common
//! invalid values its `pkg/apis/*/validation` reject, with the same field
//! paths and wording (`spec.schedule: Required value`). Defaulting that
//! changes what validation sees (a Pod template's restartPolicy defaults to
//! Always) is taken into account.

use serde_json::Value;

use super::error::ApiError;
use super::registry::ResourceType;

type Causes = Vec<(String, String)>;

/// Checks an object about to be stored (create or update).
pub(crate) fn validate(rt: &ResourceType, obj: &Value) -> Result<(), ApiError> {
    let mut causes = Causes::new();
    match (rt.group.as_str(), rt.plural.as_str()) {
        ("batch", "jobs") => job_template(obj.get("spec"), "spec", &mut causes),
        ("batch", "cronjobs") => {
            if str_at(obj, "/spec/schedule").is_empty() {
                required(&mut causes, "spec.schedule", None);
            }
            job_template(
                obj.pointer("/spec/jobTemplate/spec"),
                "spec.jobTemplate.spec",
                &mut causes,
            );
        }
        ("policy", "poddisruptionbudgets") => {
            let spec = obj.get("spec");
            let has = |k: &str| spec.and_then(|s| s.get(k)).is_some_and(|v| !v.is_null());
            if has("minAvailable") && has("maxUnavailable") {
                causes.push((
                    "spec".into(),
                    "Invalid value: \"\": minAvailable and maxUnavailable cannot be both set"
                        .into(),
                ));
            }
        }
        ("autoscaling", "horizontalpodautoscalers") => {
            for f in ["kind", "name"] {
                if str_at(obj, &format!("/spec/scaleTargetRef/{f}")).is_empty() {
                    required(&mut causes, &format!("spec.scaleTargetRef.{f}"), None);
                }
            }
            let max = obj.pointer("/spec/maxReplicas").and_then(Value::as_i64);
            let min = obj
                .pointer("/spec/minReplicas")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            match max {
                None | Some(..=0) => causes.push((
                    "spec.maxReplicas".into(),
                    format!(
                        "Invalid value: {}: must be greater than or equal to 1",
                        max.unwrap_or(0)
                    ),
                )),
                Some(m) if m < min => causes.push((
                    "spec.maxReplicas".into(),
                    format!("Invalid value: {m}: must be greater than or equal to `minReplicas`"),
                )),
                _ => {}
            }
        }
        ("networking.k8s.io", "ingresses") => ingress(obj, &mut causes),
        ("networking.k8s.io", "ingressclasses") if str_at(obj, "/spec/controller").is_empty() => {
            required(&mut causes, "spec.controller", None);
        }
        ("", "persistentvolumeclaims") => {
            let modes = obj
                .pointer("/spec/accessModes")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            if modes == 0 {
                required(
                    &mut causes,
                    "spec.accessModes",
                    Some("at least 1 access mode is required"),
                );
            }
            if obj.pointer("/spec/resources/requests/storage").is_none() {
                required(&mut causes, "spec.resources[storage]", None);
            }
        }
        ("", "limitranges") => {
            let limits = obj
                .pointer("/spec/limits")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            for (i, l) in limits.iter().enumerate() {
                let t = str_at(l, "/type");
                if !["Pod", "Container", "PersistentVolumeClaim"].contains(&t.as_str()) {
                    causes.push((
                        format!("spec.limits[{i}].type"),
                        format!("Unsupported value: \"{t}\": supported values: \"Container\", \"PersistentVolumeClaim\", \"Pod\""),
                    ));
                }
            }
        }
        _ => {}
    }
    if causes.is_empty() {
        return Ok(());
    }
    let name = str_at(obj, "/metadata/name");
    Err(ApiError::invalid(&rt.group, &rt.kind, &name, &causes))
}

fn str_at(v: &Value, p: &str) -> String {
    v.pointer(p)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn required(causes: &mut Causes, field: &str, detail: Option<&str>) {
    let msg = match detail {
        Some(d) => format!("Required value: {d}"),
        None => "Required value".into(),
    };
    causes.push((field.into(), msg));
}

/// A Job's pod template (`spec` of a Job or of a CronJob's jobTemplate).
fn job_template(spec: Option<&Value>, at: &str, causes: &mut Causes) {
    let pod = spec.and_then(|s| s.pointer("/template/spec"));
    let containers = pod
        .and_then(|p| p.get("containers"))
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    if containers == 0 {
        required(causes, &format!("{at}.template.spec.containers"), None);
    }
    // A Pod's restartPolicy defaults to Always, which a Job refuses.
    let policy = pod
        .and_then(|p| p.get("restartPolicy"))
        .and_then(Value::as_str)
        .unwrap_or("Always");
    if policy != "OnFailure" && policy != "Never" {
        causes.push((
            format!("{at}.template.spec.restartPolicy"),
            format!("Unsupported value: \"{policy}\": supported values: \"OnFailure\", \"Never\""),
        ));
    }
}

fn ingress(obj: &Value, causes: &mut Causes) {
    let rules = obj.pointer("/spec/rules").and_then(Value::as_array);
    let has_default = obj
        .pointer("/spec/defaultBackend")
        .is_some_and(|v| !v.is_null());
    if rules.is_none_or(|r| r.is_empty()) && !has_default {
        causes.push((
            "spec".into(),
            "Invalid value: []networking.IngressRule(nil): either `defaultBackend` or `rules` must be specified".into(),
        ));
    }
    for (i, rule) in rules.into_iter().flatten().enumerate() {
        let paths = rule
            .pointer("/http/paths")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for (j, p) in paths.iter().enumerate() {
            let at = format!("spec.rules[{i}].http.paths[{j}]");
            match p.get("pathType").and_then(Value::as_str) {
                None => required(
                    causes,
                    &format!("{at}.pathType"),
                    Some("pathType must be specified"),
                ),
                Some("Exact" | "Prefix" | "ImplementationSpecific") => {}
                Some(t) => causes.push((
                    format!("{at}.pathType"),
                    format!("Unsupported value: \"{t}\": supported values: \"Exact\", \"ImplementationSpecific\", \"Prefix\""),
                )),
            }
            if p.get("backend").is_none_or(Value::is_null) {
                required(causes, &format!("{at}.backend"), None);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;
    use serde_json::json;

    fn check(api_version: &str, kind: &str, obj: Value) -> Result<(), String> {
        let r = Registry::default();
        let rt = r.by_kind(api_version, kind).expect("served");
        validate(rt, &obj).map_err(|e| e.message)
    }

    // Messages as kube-apiserver words them (pkg/apis/batch/validation,
    // networking/validation, autoscaling/validation, core/validation).
    #[test]
    fn required_fields_are_refused_with_the_servers_wording() {
        assert_eq!(
            check("batch/v1", "Job", json!({"metadata": {"name": "j"}, "spec": {"template": {"spec": {}}}})).unwrap_err(),
            "Job.batch \"j\" is invalid: [spec.template.spec.containers: Required value, spec.template.spec.restartPolicy: Unsupported value: \"Always\": supported values: \"OnFailure\", \"Never\"]"
        );
        assert!(check("batch/v1", "Job", json!({"metadata": {"name": "j"}, "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "i"}]}}}})).is_ok());
        assert!(check(
            "batch/v1",
            "CronJob",
            json!({"metadata": {"name": "c"}, "spec": {"jobTemplate": {"spec": {"template": {"spec": {"restartPolicy": "OnFailure", "containers": [{"name": "c"}]}}}}}})
        )
        .unwrap_err()
        .ends_with("is invalid: spec.schedule: Required value"));
        assert_eq!(
            check("networking.k8s.io/v1", "Ingress", json!({"metadata": {"name": "i"}, "spec": {}})).unwrap_err(),
            "Ingress.networking.k8s.io \"i\" is invalid: spec: Invalid value: []networking.IngressRule(nil): either `defaultBackend` or `rules` must be specified"
        );
        assert!(check("networking.k8s.io/v1", "Ingress", json!({"metadata": {"name": "i"}, "spec": {"rules": [{"http": {"paths": [{"path": "/", "backend": {"service": {"name": "s", "port": {"number": 80}}}}]}}]}}))
            .unwrap_err()
            .contains("spec.rules[0].http.paths[0].pathType: Required value: pathType must be specified"));
        assert_eq!(
            check("autoscaling/v2", "HorizontalPodAutoscaler", json!({"metadata": {"name": "h"}, "spec": {"scaleTargetRef": {"kind": "Deployment"}, "maxReplicas": 0}})).unwrap_err(),
            "HorizontalPodAutoscaler.autoscaling \"h\" is invalid: [spec.scaleTargetRef.name: Required value, spec.maxReplicas: Invalid value: 0: must be greater than or equal to 1]"
        );
        assert_eq!(
            check("v1", "PersistentVolumeClaim", json!({"metadata": {"name": "p"}, "spec": {}})).unwrap_err(),
            "PersistentVolumeClaim \"p\" is invalid: [spec.accessModes: Required value: at least 1 access mode is required, spec.resources[storage]: Required value]"
        );
        assert!(check(
            "networking.k8s.io/v1",
            "IngressClass",
            json!({"metadata": {"name": "c"}, "spec": {}})
        )
        .unwrap_err()
        .ends_with("spec.controller: Required value"));
        assert!(check(
            "policy/v1",
            "PodDisruptionBudget",
            json!({"metadata": {"name": "p"}, "spec": {"minAvailable": 1}})
        )
        .is_ok());
        assert!(check(
            "coordination.k8s.io/v1",
            "Lease",
            json!({"metadata": {"name": "l"}, "spec": {}})
        )
        .is_ok());
    }
}
