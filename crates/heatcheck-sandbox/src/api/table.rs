//! meta.k8s.io/v1 Table responses (`Accept: application/json;as=Table`), the
//! form `kubectl get` prints. Columns follow the real server's printers for
//! the common kinds; other kinds get NAME and AGE.

use serde_json::{json, Value};

use crate::registry::ResourceType;

/// `includeObject` on a Table request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum IncludeObject {
    None,
    Metadata,
    Object,
}

impl IncludeObject {
    pub(crate) fn parse(s: Option<&str>) -> Result<Self, String> {
        match s {
            None | Some("") | Some("Metadata") => Ok(IncludeObject::Metadata),
            Some("None") => Ok(IncludeObject::None),
            Some("Object") => Ok(IncludeObject::Object),
            Some(other) => Err(format!(
                "includeObject: Unsupported value: \"{other}\": supported values: \"Metadata\", \"None\", \"Object\""
            )),
        }
    }
}

type Cell = fn(&Value) -> Value;

struct Column {
    name: &'static str,
    kind: &'static str,
    format: &'static str,
    priority: u8,
    cell: Cell,
}

const fn col(name: &'static str, cell: Cell) -> Column {
    Column {
        name,
        kind: "string",
        format: "",
        priority: 0,
        cell,
    }
}

const fn wide(name: &'static str, cell: Cell) -> Column {
    Column {
        name,
        kind: "string",
        format: "",
        priority: 1,
        cell,
    }
}

const fn int(name: &'static str, cell: Cell) -> Column {
    Column {
        name,
        kind: "integer",
        format: "",
        priority: 0,
        cell,
    }
}

fn s(o: &Value, p: &str) -> String {
    match o.pointer(p) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(v) => v.to_string(),
    }
}

fn n(o: &Value, p: &str) -> i64 {
    o.pointer(p).and_then(Value::as_i64).unwrap_or(0)
}

fn or_none(v: String) -> Value {
    if v.is_empty() {
        json!("<none>")
    } else {
        json!(v)
    }
}

fn name_cell(o: &Value) -> Value {
    json!(s(o, "/metadata/name"))
}

fn age_cell(o: &Value) -> Value {
    let ts = s(o, "/metadata/creationTimestamp");
    match chrono::DateTime::parse_from_rfc3339(&ts) {
        Ok(t) => json!(human_duration(
            (chrono::Utc::now() - t.with_timezone(&chrono::Utc)).num_seconds()
        )),
        Err(_) => json!("<unknown>"),
    }
}

fn count(o: &Value, p: &str) -> Value {
    let c = match o.pointer(p) {
        Some(Value::Object(m)) => m.len(),
        Some(Value::Array(a)) => a.len(),
        _ => 0,
    };
    json!(c)
}

fn containers_field(o: &Value, field: &str) -> Value {
    let v: Vec<String> = o
        .pointer("/spec/template/spec/containers")
        .and_then(Value::as_array)
        .map(|cs| cs.iter().map(|c| s(c, &format!("/{field}"))).collect())
        .unwrap_or_default();
    json!(v.join(","))
}

fn match_labels(o: &Value) -> Value {
    let v: Vec<String> = o
        .pointer("/spec/selector/matchLabels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default();
    or_none(v.join(","))
}

fn columns(rt: &ResourceType) -> Vec<Column> {
    let name = Column {
        name: "Name",
        kind: "string",
        format: "name",
        priority: 0,
        cell: name_cell,
    };
    let age = col("Age", age_cell);
    let mut cols = vec![name];
    match (rt.group.as_str(), rt.plural.as_str()) {
        ("", "configmaps") => cols.push(int("Data", |o| count(o, "/data"))),
        ("", "secrets") => {
            cols.push(col("Type", |o| json!(s(o, "/type"))));
            cols.push(int("Data", |o| count(o, "/data")));
        }
        ("", "namespaces") => cols.push(col("Status", |o| json!(s(o, "/status/phase")))),
        ("", "pods") => {
            cols.push(col("Ready", |o| {
                let total = count(o, "/spec/containers").as_u64().unwrap_or(0);
                let ready = o
                    .pointer("/status/containerStatuses")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter(|c| c["ready"] == true).count())
                    .unwrap_or(0);
                json!(format!("{ready}/{total}"))
            }));
            cols.push(col("Status", |o| {
                let p = s(o, "/status/phase");
                json!(if p.is_empty() { "Pending".into() } else { p })
            }));
            cols.push(int("Restarts", |o| {
                let r: i64 = o
                    .pointer("/status/containerStatuses")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().map(|c| n(c, "/restartCount")).sum())
                    .unwrap_or(0);
                json!(r)
            }));
            cols.push(age);
            cols.push(wide("IP", |o| or_none(s(o, "/status/podIP"))));
            cols.push(wide("Node", |o| or_none(s(o, "/spec/nodeName"))));
            return cols;
        }
        ("", "services") => {
            cols.push(col("Type", |o| {
                let t = s(o, "/spec/type");
                json!(if t.is_empty() { "ClusterIP".into() } else { t })
            }));
            cols.push(col("Cluster-IP", |o| or_none(s(o, "/spec/clusterIP"))));
            cols.push(col("External-IP", |o| {
                let ips: Vec<String> = o
                    .pointer("/status/loadBalancer/ingress")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().map(|i| s(i, "/ip")).collect())
                    .unwrap_or_default();
                or_none(ips.join(","))
            }));
            cols.push(col("Port(s)", |o| {
                let ps: Vec<String> = o
                    .pointer("/spec/ports")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .map(|p| {
                                let proto = s(p, "/protocol");
                                let proto = if proto.is_empty() {
                                    "TCP".into()
                                } else {
                                    proto
                                };
                                format!("{}/{proto}", n(p, "/port"))
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                or_none(ps.join(","))
            }));
            cols.push(age);
            cols.push(wide("Selector", |o| {
                let v: Vec<String> = o
                    .pointer("/spec/selector")
                    .and_then(Value::as_object)
                    .map(|m| {
                        m.iter()
                            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                            .collect()
                    })
                    .unwrap_or_default();
                or_none(v.join(","))
            }));
            return cols;
        }
        ("apps", "deployments") => {
            cols.push(col("Ready", |o| {
                json!(format!(
                    "{}/{}",
                    n(o, "/status/readyReplicas"),
                    o.pointer("/spec/replicas")
                        .and_then(Value::as_i64)
                        .unwrap_or(1)
                ))
            }));
            cols.push(int("Up-to-date", |o| {
                json!(n(o, "/status/updatedReplicas"))
            }));
            cols.push(int("Available", |o| {
                json!(n(o, "/status/availableReplicas"))
            }));
            cols.push(age);
            cols.push(wide("Containers", |o| containers_field(o, "name")));
            cols.push(wide("Images", |o| containers_field(o, "image")));
            cols.push(wide("Selector", match_labels));
            return cols;
        }
        ("apps", "replicasets" | "statefulsets") => {
            cols.push(int("Desired", |o| {
                json!(o
                    .pointer("/spec/replicas")
                    .and_then(Value::as_i64)
                    .unwrap_or(1))
            }));
            cols.push(int("Current", |o| json!(n(o, "/status/replicas"))));
            cols.push(int("Ready", |o| json!(n(o, "/status/readyReplicas"))));
        }
        ("gateway.networking.k8s.io", "gateways") => {
            cols.push(col("Class", |o| json!(s(o, "/spec/gatewayClassName"))));
            cols.push(col("Address", |o| json!(s(o, "/status/addresses/0/value"))));
            cols.push(col("Programmed", |o| json!(condition(o, "Programmed"))));
        }
        ("gateway.networking.k8s.io", "gatewayclasses") => {
            cols.push(col("Controller", |o| json!(s(o, "/spec/controllerName"))));
            cols.push(col("Accepted", |o| json!(condition(o, "Accepted"))));
        }
        ("gateway.networking.k8s.io", "httproutes") => {
            cols.push(col("Hostnames", |o| {
                let h: Vec<String> = o
                    .pointer("/spec/hostnames")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|x| x.as_str().map(String::from))
                            .collect()
                    })
                    .unwrap_or_default();
                json!(format!("[{}]", h.join(" ")))
            }));
        }
        ("rbac.authorization.k8s.io", "roles" | "clusterroles") => {
            cols.push(col("Created At", |o| {
                json!(s(o, "/metadata/creationTimestamp"))
            }));
            return cols;
        }
        ("rbac.authorization.k8s.io", "rolebindings" | "clusterrolebindings") => {
            cols.push(col("Role", |o| {
                json!(format!(
                    "{}/{}",
                    s(o, "/roleRef/kind"),
                    s(o, "/roleRef/name")
                ))
            }));
            cols.push(age);
            cols.push(wide("Users", |o| subjects_of(o, "User")));
            cols.push(wide("Groups", |o| subjects_of(o, "Group")));
            cols.push(wide("ServiceAccounts", |o| {
                subjects_of(o, "ServiceAccount")
            }));
            return cols;
        }
        // The printers of pkg/printers/internalversion for the kinds below.
        ("batch", "jobs") => {
            cols.push(col("Status", |o| json!(job_status(o))));
            cols.push(col("Completions", |o| {
                let done = n(o, "/status/succeeded");
                json!(
                    match o.pointer("/spec/completions").and_then(Value::as_i64) {
                        Some(c) => format!("{done}/{c}"),
                        None => match n(o, "/spec/parallelism") {
                            p if p > 1 => format!("{done}/1 of {p}"),
                            _ => format!("{done}/1"),
                        },
                    }
                )
            }));
            cols.push(col("Duration", |o| {
                let start = s(o, "/status/startTime");
                let Ok(start) = chrono::DateTime::parse_from_rfc3339(&start) else {
                    return json!("");
                };
                let end = chrono::DateTime::parse_from_rfc3339(&s(o, "/status/completionTime"))
                    .map(|t| t.with_timezone(&chrono::Utc))
                    .unwrap_or_else(|_| chrono::Utc::now());
                json!(human_duration(
                    (end - start.with_timezone(&chrono::Utc)).num_seconds()
                ))
            }));
            cols.push(age);
            cols.push(wide("Containers", |o| {
                job_containers(o, "/spec/template", "name")
            }));
            cols.push(wide("Images", |o| {
                job_containers(o, "/spec/template", "image")
            }));
            cols.push(wide("Selector", match_labels));
            return cols;
        }
        ("batch", "cronjobs") => {
            cols.push(col("Schedule", |o| json!(s(o, "/spec/schedule"))));
            cols.push(col("Timezone", |o| or_none(s(o, "/spec/timeZone"))));
            cols.push(col("Suspend", |o| {
                json!(if o.pointer("/spec/suspend") == Some(&json!(true)) {
                    "True"
                } else {
                    "False"
                })
            }));
            cols.push(int("Active", |o| count(o, "/status/active")));
            cols.push(col("Last Schedule", |o| {
                let t = s(o, "/status/lastScheduleTime");
                match chrono::DateTime::parse_from_rfc3339(&t) {
                    Ok(t) => json!(human_duration(
                        (chrono::Utc::now() - t.with_timezone(&chrono::Utc)).num_seconds()
                    )),
                    Err(_) => json!("<none>"),
                }
            }));
            cols.push(age);
            cols.push(wide("Containers", |o| {
                job_containers(o, "/spec/jobTemplate/spec/template", "name")
            }));
            cols.push(wide("Images", |o| {
                job_containers(o, "/spec/jobTemplate/spec/template", "image")
            }));
            cols.push(wide("Selector", |o| {
                or_none(labels_at(o, "/spec/jobTemplate/spec/selector/matchLabels"))
            }));
            return cols;
        }
        ("policy", "poddisruptionbudgets") => {
            cols.push(col("Min Available", |o| {
                json!(int_or_string(o, "/spec/minAvailable"))
            }));
            cols.push(col("Max Unavailable", |o| {
                json!(int_or_string(o, "/spec/maxUnavailable"))
            }));
            cols.push(int("Allowed Disruptions", |o| {
                json!(n(o, "/status/disruptionsAllowed"))
            }));
        }
        ("autoscaling", "horizontalpodautoscalers") => {
            cols.push(col("Reference", |o| {
                json!(format!(
                    "{}/{}",
                    s(o, "/spec/scaleTargetRef/kind"),
                    s(o, "/spec/scaleTargetRef/name")
                ))
            }));
            cols.push(col("Targets", |o| json!(hpa_targets(o))));
            cols.push(int("MinPods", |o| {
                json!(o
                    .pointer("/spec/minReplicas")
                    .and_then(Value::as_i64)
                    .unwrap_or(1))
            }));
            cols.push(int("MaxPods", |o| json!(n(o, "/spec/maxReplicas"))));
            cols.push(int("Replicas", |o| json!(n(o, "/status/currentReplicas"))));
        }
        ("networking.k8s.io", "ingresses") => {
            cols.push(col("Class", |o| or_none(s(o, "/spec/ingressClassName"))));
            cols.push(col("Hosts", |o| {
                let hosts: Vec<String> = o
                    .pointer("/spec/rules")
                    .and_then(Value::as_array)
                    .map(|rs| {
                        rs.iter()
                            .map(|r| s(r, "/host"))
                            .filter(|h| !h.is_empty())
                            .collect()
                    })
                    .unwrap_or_default();
                json!(match hosts.len() {
                    0 => "*".to_string(),
                    1..=3 => hosts.join(","),
                    k => format!("{} + {} more...", hosts[..3].join(","), k - 3),
                })
            }));
            cols.push(col("Address", |o| {
                let a: Vec<String> = o
                    .pointer("/status/loadBalancer/ingress")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .map(|i| {
                                let ip = s(i, "/ip");
                                if ip.is_empty() {
                                    s(i, "/hostname")
                                } else {
                                    ip
                                }
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                json!(a.join(","))
            }));
            cols.push(col("Ports", |o| {
                let tls = o
                    .pointer("/spec/tls")
                    .and_then(Value::as_array)
                    .is_some_and(|t| !t.is_empty());
                json!(if tls { "80, 443" } else { "80" })
            }));
        }
        ("networking.k8s.io", "ingressclasses") => {
            cols.push(col("Controller", |o| json!(s(o, "/spec/controller"))));
            cols.push(col("Parameters", |o| {
                let kind = s(o, "/spec/parameters/kind");
                if kind.is_empty() {
                    return json!("<none>");
                }
                let group = s(o, "/spec/parameters/apiGroup");
                let name = s(o, "/spec/parameters/name");
                json!(if group.is_empty() {
                    format!("{kind}/{name}")
                } else {
                    format!("{kind}.{group}/{name}")
                })
            }));
        }
        ("coordination.k8s.io", "leases") => {
            cols.push(col("Holder", |o| json!(s(o, "/spec/holderIdentity"))));
        }
        ("", "persistentvolumeclaims") => {
            cols.push(col("Status", |o| json!(s(o, "/status/phase"))));
            cols.push(col("Volume", |o| json!(s(o, "/spec/volumeName"))));
            cols.push(col("Capacity", |o| json!(s(o, "/status/capacity/storage"))));
            cols.push(col("Access Modes", |o| {
                let modes: Vec<&str> = o
                    .pointer("/status/accessModes")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(Value::as_str)
                            .map(|m| match m {
                                "ReadWriteOnce" => "RWO",
                                "ReadOnlyMany" => "ROX",
                                "ReadWriteMany" => "RWX",
                                "ReadWriteOncePod" => "RWOP",
                                other => other,
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                json!(modes.join(","))
            }));
            cols.push(col("StorageClass", |o| {
                or_none(s(o, "/spec/storageClassName"))
            }));
            cols.push(col("VolumeAttributesClass", |o| {
                or_none(s(o, "/spec/volumeAttributesClassName"))
            }));
            cols.push(age);
            cols.push(wide("VolumeMode", |o| {
                let m = s(o, "/spec/volumeMode");
                json!(if m.is_empty() { "Filesystem".into() } else { m })
            }));
            return cols;
        }
        ("", "resourcequotas") => {
            cols.push(age);
            cols.push(col("Request", |o| json!(quota(o, false))));
            cols.push(col("Limit", |o| json!(quota(o, true))));
            return cols;
        }
        ("", "limitranges") => {
            cols.push(col("Created At", |o| {
                json!(s(o, "/metadata/creationTimestamp"))
            }));
            return cols;
        }
        ("gateway.networking.k8s.io", "grpcroutes") => {
            cols.push(col("Hostnames", |o| {
                let h: Vec<String> = o
                    .pointer("/spec/hostnames")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|x| x.as_str().map(String::from))
                            .collect()
                    })
                    .unwrap_or_default();
                json!(format!("[{}]", h.join(" ")))
            }));
        }
        ("gateway.networking.k8s.io", "listenersets") => {
            cols.push(col("Accepted", |o| json!(condition(o, "Accepted"))));
            cols.push(col("Programmed", |o| json!(condition(o, "Programmed"))));
        }
        ("apiextensions.k8s.io", "customresourcedefinitions") => {
            cols.push(col("Created At", |o| {
                json!(s(o, "/metadata/creationTimestamp"))
            }));
            return cols;
        }
        _ => {}
    }
    cols.push(age);
    cols
}

/// A binding's subjects of one kind, comma-separated (`ns/name` for ServiceAccounts).
fn subjects_of(o: &Value, kind: &str) -> Value {
    let v: Vec<String> = o
        .pointer("/subjects")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter(|x| x["kind"] == kind)
                .map(|x| {
                    let ns = s(x, "/namespace");
                    if kind == "ServiceAccount" {
                        format!("{ns}/{}", s(x, "/name"))
                    } else {
                        s(x, "/name")
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    json!(v.join(", "))
}

/// A Job's state as `kubectl get jobs` shows it.
fn job_status(o: &Value) -> &'static str {
    let cond = |t: &str| condition(o, t) == "True";
    if cond("Failed") {
        "Failed"
    } else if cond("Complete") {
        "Complete"
    } else if cond("Suspended") {
        "Suspended"
    } else if cond("FailureTarget") {
        "FailureTarget"
    } else if cond("SuccessCriteriaMet") {
        "SuccessCriteriaMet"
    } else {
        "Running"
    }
}

fn job_containers(o: &Value, template: &str, field: &str) -> Value {
    let v: Vec<String> = o
        .pointer(&format!("{template}/spec/containers"))
        .and_then(Value::as_array)
        .map(|cs| cs.iter().map(|c| s(c, &format!("/{field}"))).collect())
        .unwrap_or_default();
    json!(v.join(","))
}

fn labels_at(o: &Value, p: &str) -> String {
    o.pointer(p)
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

/// An IntOrString field, or N/A when unset (the PDB printer).
fn int_or_string(o: &Value, p: &str) -> String {
    match o.pointer(p) {
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::String(s)) => s.clone(),
        _ => "N/A".into(),
    }
}

/// HPA targets as the printer writes them for resource metrics:
/// `cpu: <unknown>/80%` until a current value is known.
fn hpa_targets(o: &Value) -> String {
    let metrics = o
        .pointer("/spec/metrics")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if metrics.is_empty() {
        return "<none>".into();
    }
    let current = o
        .pointer("/status/currentMetrics")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let parts: Vec<String> = metrics
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let t = s(m, "/type");
            if t != "Resource" {
                return "<unknown>".into();
            }
            let name = s(m, "/resource/name");
            let target = &m["resource"]["target"];
            let cur = current.get(i).map(|c| &c["resource"]["current"]);
            match s(target, "/type").as_str() {
                "Utilization" => {
                    let now = cur
                        .and_then(|c| c.get("averageUtilization"))
                        .and_then(Value::as_i64)
                        .map_or("<unknown>".to_string(), |v| format!("{v}%"));
                    format!("{name}: {now}/{}%", n(target, "/averageUtilization"))
                }
                _ => {
                    let now = cur.map(|c| s(c, "/averageValue")).filter(|v| !v.is_empty());
                    format!(
                        "{name}: {}/{}",
                        now.unwrap_or_else(|| "<unknown>".into()),
                        s(target, "/averageValue")
                    )
                }
            }
        })
        .collect();
    parts.join(", ")
}

/// `requests.cpu: 0/1, pods: 0/10` (or the `limits.` entries), used/hard.
fn quota(o: &Value, limits: bool) -> String {
    let hard = o
        .pointer("/spec/hard")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let mut keys: Vec<&String> = hard
        .keys()
        .filter(|k| k.starts_with("limits.") == limits)
        .collect();
    keys.sort();
    keys.iter()
        .map(|k| {
            let used = o
                .pointer(&format!("/status/used/{k}"))
                .map(|v| v.as_str().map_or(v.to_string(), String::from))
                .unwrap_or_else(|| "0".into());
            let h = &hard[k.as_str()];
            format!(
                "{k}: {used}/{}",
                h.as_str().map_or(h.to_string(), String::from)
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The status of a condition in `.status.conditions`.
fn condition(o: &Value, t: &str) -> String {
    o.pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|cs| cs.iter().find(|c| c["type"] == t))
        .map(|c| s(c, "/status"))
        .unwrap_or_default()
}

fn column_definitions(cols: &[Column]) -> Vec<Value> {
    cols.iter()
        .map(|c| {
            json!({
                "name": c.name,
                "type": c.kind,
                "format": c.format,
                "description": format!("{} of the object", c.name),
                "priority": c.priority,
            })
        })
        .collect()
}

fn row(cols: &[Column], obj: &Value, include: IncludeObject) -> Value {
    let cells: Vec<Value> = cols.iter().map(|c| (c.cell)(obj)).collect();
    let mut r = json!({"cells": cells});
    match include {
        IncludeObject::None => {}
        IncludeObject::Metadata => {
            r["object"] = json!({
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": obj.get("metadata").cloned().unwrap_or(json!({})),
            });
        }
        IncludeObject::Object => r["object"] = obj.clone(),
    }
    r
}

/// A Table of `items`. `list_meta` becomes the Table's metadata.
pub(crate) fn table(
    rt: &ResourceType,
    items: &[Value],
    include: IncludeObject,
    list_meta: Value,
) -> Value {
    let cols = columns(rt);
    let rows: Vec<Value> = items.iter().map(|o| row(&cols, o, include)).collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta,
        "columnDefinitions": column_definitions(&cols),
        "rows": rows,
    })
}

/// Human-readable age, as apimachinery's `duration.HumanDuration` writes it.
pub(crate) fn human_duration(seconds: i64) -> String {
    if seconds < -1 {
        return "<invalid>".into();
    }
    if seconds < 0 {
        return "0s".into();
    }
    if seconds < 120 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 180 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        return if dy == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{dy}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;

    #[test]
    fn human_durations_match_kubectl() {
        assert_eq!(human_duration(5), "5s");
        assert_eq!(human_duration(119), "119s");
        assert_eq!(human_duration(125), "2m5s");
        assert_eq!(human_duration(600), "10m");
        assert_eq!(human_duration(3 * 3600 + 60), "3h1m");
        assert_eq!(human_duration(30 * 3600), "30h");
        assert_eq!(human_duration(3 * 86400 + 3600), "3d1h");
        assert_eq!(human_duration(30 * 86400), "30d");
    }

    #[test]
    fn deployment_rows_have_the_real_columns() {
        let reg = Registry::default();
        let rt = reg.by_path("apps", "v1", "deployments").unwrap();
        let d = json!({"metadata": {"name": "web", "creationTimestamp": crate::store::now_rfc3339()},
            "spec": {"replicas": 3, "template": {"spec": {"containers": [{"name": "c", "image": "nginx"}]}}},
            "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}});
        let t = table(
            rt,
            &[d],
            IncludeObject::Metadata,
            json!({"resourceVersion": "1"}),
        );
        let names: Vec<&str> = t["columnDefinitions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            &names[..5],
            ["Name", "Ready", "Up-to-date", "Available", "Age"]
        );
        let cells = &t["rows"][0]["cells"];
        assert_eq!(cells[0], "web");
        assert_eq!(cells[1], "2/3");
        assert_eq!(cells[5], "c");
        assert_eq!(t["rows"][0]["object"]["kind"], "PartialObjectMetadata");
        assert!(IncludeObject::parse(Some("Bogus")).is_err());
    }
}
