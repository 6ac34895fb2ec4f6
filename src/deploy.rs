//! What `heatcheck deploy` puts in the cluster, rendered as plain objects: a
//! ServiceAccount, the Roles `plan` computed bound to it, a ConfigMap bundle
//! of the suites and a CronJob (an Indexed Job per run when sharded).
//! Pure: no cluster, no files; the command gathers the inputs.

use serde_json::{json, Value};

/// etcd's default limit on one object (`--max-request-bytes`, 1.5 MiB, is
/// the request; objects above 1 MiB are refused by etcd's own default).
pub const MAX_OBJECT_BYTES: usize = 1024 * 1024;

/// Where the bundle is mounted in the pod; suite paths are relative to it.
pub const BUNDLE_DIR: &str = "/etc/heatcheck/suites";
/// Writable scratch (emptyDir): reports, run state, a writable bundle copy.
pub const WORK_DIR: &str = "/var/run/heatcheck";

/// One file of the bundle, by its path relative to the bundle root.
#[derive(Clone, Debug, PartialEq)]
pub struct BundleFile {
    pub path: String,
    pub content: String,
}

/// Everything the objects are rendered from.
#[derive(Clone, Debug)]
pub struct DeploySpec {
    /// Base name of every object (ServiceAccount, ConfigMap, CronJob, roles).
    pub name: String,
    /// Where the runner lives (ServiceAccount, ConfigMap, CronJob).
    pub namespace: String,
    pub schedule: String,
    pub image: String,
    /// 1: one pod per run; N: an Indexed Job of N pods, one partition each.
    pub shards: u32,
    pub regenerate: bool,
    /// The Role / ClusterRole objects `plan` computes (names are replaced).
    pub rbac: Vec<Value>,
    pub files: Vec<BundleFile>,
    /// Suite files to run, relative to the bundle root.
    pub suites: Vec<String>,
    pub active_deadline_seconds: u64,
    /// Grace after SIGTERM: the run restores before the kubelet kills it.
    pub restore_seconds: u64,
    /// `--notify`: how the runs notify; the URLs live in [`notify_secret`].
    pub notify: Option<NotifySpec>,
}

/// What the CronJob's runs pass as `--notify-format` / `--notify-always`.
#[derive(Clone, Debug)]
pub struct NotifySpec {
    pub format: String,
    pub always: bool,
}

/// The key of [`notify_secret`] that holds the webhook URLs (space-separated,
/// as `run` reads HEATCHECK_NOTIFY_URL).
pub const NOTIFY_SECRET_KEY: &str = "url";

pub fn notify_secret_name(spec: &DeploySpec) -> String {
    format!("{}-notify", spec.name)
}

/// The Secret that holds the webhook URLs: tokens, so they are kept out of
/// the CronJob (its spec is readable by whoever may list jobs) and out of
/// printed output; only `deploy --apply` sends it, to the API server.
pub fn notify_secret(spec: &DeploySpec, urls: &[String]) -> Value {
    use base64::Engine;
    let value = base64::engine::general_purpose::STANDARD.encode(urls.join(" "));
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": notify_secret_name(spec),
            "namespace": spec.namespace,
            "labels": {
                "app.kubernetes.io/name": "heatcheck",
                "app.kubernetes.io/instance": spec.name,
                "app.kubernetes.io/managed-by": "heatcheck",
            },
        },
        "type": "Opaque",
        "data": {NOTIFY_SECRET_KEY: value},
    })
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DeployError {
    #[error("the suite bundle ConfigMap would be {size} bytes ({}), above the {} object limit by {} bytes; deploy fewer suites at a time or shrink their manifests", human_bytes(*size), human_bytes(MAX_OBJECT_BYTES), size - MAX_OBJECT_BYTES)]
    BundleTooLarge { size: usize },
    #[error("--shards must be at least 1")]
    NoShards,
}

fn human_bytes(n: usize) -> String {
    format!("{:.2} MiB", n as f64 / (1024.0 * 1024.0))
}

/// The objects in apply order (the ServiceAccount and roles first).
pub fn render(spec: &DeploySpec) -> Result<Vec<Value>, DeployError> {
    if spec.shards == 0 {
        return Err(DeployError::NoShards);
    }
    let labels = json!({
        "app.kubernetes.io/name": "heatcheck",
        "app.kubernetes.io/instance": spec.name,
        "app.kubernetes.io/managed-by": "heatcheck",
    });
    // Roles need their namespace to exist before the first run, and a suite's
    // `createNamespace` then finds it (its restore keeps what existed before).
    let mut namespaces = std::collections::BTreeSet::from([spec.namespace.as_str()]);
    namespaces.extend(
        spec.rbac
            .iter()
            .filter_map(|r| r["metadata"]["namespace"].as_str()),
    );
    let mut out: Vec<Value> = namespaces
        .into_iter()
        .map(|ns| json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}))
        .collect();
    out.push(json!({
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": spec.name, "namespace": spec.namespace, "labels": labels},
    }));
    out.extend(rbac(spec, &labels));
    let bundle = bundle(spec, &labels);
    let size = serde_json::to_vec(&bundle).map(|b| b.len()).unwrap_or(0);
    if size > MAX_OBJECT_BYTES {
        return Err(DeployError::BundleTooLarge { size });
    }
    out.push(bundle);
    out.push(cron_job(spec, &labels));
    Ok(out)
}

/// The computed roles, renamed for this deployment, each bound to the
/// ServiceAccount. A ClusterRole only exists when `plan` needed one.
fn rbac(spec: &DeploySpec, labels: &Value) -> Vec<Value> {
    // Cluster-scoped names are shared by every deployment: include the namespace.
    let cluster_name = format!("{}-{}", spec.name, spec.namespace);
    let subject =
        json!([{"kind": "ServiceAccount", "name": spec.name, "namespace": spec.namespace}]);
    let mut out = Vec::new();
    for role in &spec.rbac {
        let mut role = role.clone();
        let cluster = role["kind"] == "ClusterRole";
        let name = if cluster {
            cluster_name.clone()
        } else {
            spec.name.clone()
        };
        role["metadata"]["name"] = json!(name);
        role["metadata"]["labels"] = labels.clone();
        let mut binding = json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": if cluster { "ClusterRoleBinding" } else { "RoleBinding" },
            "metadata": {"name": name, "labels": labels},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": if cluster { "ClusterRole" } else { "Role" },
                "name": name,
            },
            "subjects": subject,
        });
        if let Some(ns) = role["metadata"]["namespace"].as_str() {
            binding["metadata"]["namespace"] = json!(ns);
        }
        out.push(role);
        out.push(binding);
    }
    out
}

/// ConfigMap keys cannot hold `/`: files get numbered keys and the volume's
/// `items` put each back at its path.
fn key(i: usize, path: &str) -> String {
    let flat: String = path
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{i:03}-{flat}")
}

fn bundle(spec: &DeploySpec, labels: &Value) -> Value {
    let data: serde_json::Map<String, Value> = spec
        .files
        .iter()
        .enumerate()
        .map(|(i, f)| (key(i, &f.path), json!(f.content)))
        .collect();
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": format!("{}-suites", spec.name), "namespace": spec.namespace, "labels": labels},
        "data": data,
    })
}

/// `heatcheck run` as the pod runs it.
fn run_args(spec: &DeploySpec, suites_dir: &str) -> Vec<String> {
    let mut args = vec!["run".to_string()];
    args.extend(spec.suites.iter().map(|s| format!("{suites_dir}/{s}")));
    args.push(if spec.regenerate {
        "--regenerate".into()
    } else {
        "--locked".into()
    });
    // A pod can be OOM-killed or evicted mid-run: its journal lives in a
    // Secret, and each run first recovers what an earlier one left.
    args.push("--journal-in-cluster".into());
    args.extend([
        "--junit".into(),
        format!("{WORK_DIR}/reports/junit.xml"),
        "--report-json".into(),
        format!("{WORK_DIR}/reports/report.json"),
    ]);
    // The URLs come from HEATCHECK_NOTIFY_URL (the Secret), never the args.
    if let Some(n) = &spec.notify {
        args.extend(["--notify-format".into(), n.format.clone()]);
        if n.always {
            args.push("--notify-always".into());
        }
    }
    args
}

fn shell_quote(s: &str) -> String {
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-:=".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// The container's command. Plain exec when it can be; a shell when the
/// shard number needs arithmetic on JOB_COMPLETION_INDEX (0-based) or
/// `--regenerate` must rewrite lockfiles (the ConfigMap mount is read-only).
fn command(spec: &DeploySpec) -> (Vec<String>, Vec<String>) {
    if spec.shards == 1 && !spec.regenerate {
        return (vec!["heatcheck".into()], run_args(spec, BUNDLE_DIR));
    }
    let mut script = String::from("set -e\n");
    let dir = if spec.regenerate {
        script.push_str(&format!("cp -rL {BUNDLE_DIR}/. {WORK_DIR}/suites/\n"));
        format!("{WORK_DIR}/suites")
    } else {
        BUNDLE_DIR.to_string()
    };
    let mut args: Vec<String> = run_args(spec, &dir)
        .iter()
        .map(|a| shell_quote(a))
        .collect();
    if spec.shards > 1 {
        args.push(format!(
            "--partition count:$((JOB_COMPLETION_INDEX+1))/{}",
            spec.shards
        ));
    }
    script.push_str(&format!("exec heatcheck {}\n", args.join(" ")));
    (vec!["/bin/sh".into(), "-c".into()], vec![script])
}

fn cron_job(spec: &DeploySpec, labels: &Value) -> Value {
    let items: Vec<Value> = spec
        .files
        .iter()
        .enumerate()
        .map(|(i, f)| json!({"key": key(i, &f.path), "path": f.path}))
        .collect();
    let (command, args) = command(spec);
    let mut env = vec![
        json!({"name": "HEATCHECK_STATE_DIR", "value": format!("{WORK_DIR}/state")}),
        json!({"name": "NO_COLOR", "value": "1"}),
    ];
    if spec.notify.is_some() {
        env.push(
            json!({"name": "HEATCHECK_NOTIFY_URL", "valueFrom": {"secretKeyRef": {
            "name": notify_secret_name(spec), "key": NOTIFY_SECRET_KEY}}}),
        );
    }
    let mut container = json!({
        "name": "heatcheck",
        "image": spec.image,
        "command": command,
        "args": args,
        "env": env,
        "resources": {
            "requests": {"cpu": "100m", "memory": "128Mi"},
            "limits": {"cpu": "1", "memory": "512Mi"},
        },
        "securityContext": {
            "runAsNonRoot": true,
            "runAsUser": 65532,
            "runAsGroup": 65532,
            "readOnlyRootFilesystem": true,
            "allowPrivilegeEscalation": false,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumeMounts": [
            {"name": "suites", "mountPath": BUNDLE_DIR, "readOnly": true},
            {"name": "work", "mountPath": WORK_DIR},
        ],
    });
    if spec.regenerate {
        // LLM keys come from a Secret the operator creates; never rendered here.
        container["envFrom"] =
            json!([{"secretRef": {"name": format!("{}-llm", spec.name), "optional": true}}]);
    }
    let mut job_spec = json!({
        "backoffLimit": 0,
        "activeDeadlineSeconds": spec.active_deadline_seconds,
        "template": {
            "metadata": {"labels": labels},
            "spec": {
                "serviceAccountName": spec.name,
                "restartPolicy": "Never",
                "terminationGracePeriodSeconds": spec.restore_seconds,
                "securityContext": {"runAsNonRoot": true, "fsGroup": 65532},
                "containers": [container],
                "volumes": [
                    {"name": "suites", "configMap": {"name": format!("{}-suites", spec.name), "items": items}},
                    {"name": "work", "emptyDir": {}},
                ],
            },
        },
    });
    if spec.shards > 1 {
        job_spec["completionMode"] = json!("Indexed");
        job_spec["completions"] = json!(spec.shards);
        job_spec["parallelism"] = json!(spec.shards);
    }
    json!({
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": spec.name, "namespace": spec.namespace, "labels": labels},
        "spec": {
            "schedule": spec.schedule,
            "concurrencyPolicy": "Forbid",
            "successfulJobsHistoryLimit": 3,
            "failedJobsHistoryLimit": 3,
            "jobTemplate": {"metadata": {"labels": labels}, "spec": job_spec},
        },
    })
}

/// The objects as one multi-document YAML stream (kubectl apply -f - reads it).
pub fn to_yaml(objects: &[Value]) -> String {
    objects
        .iter()
        .map(|o| serde_saphyr::to_string(o).unwrap_or_default())
        .collect::<Vec<_>>()
        .join("---\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> DeploySpec {
        // The runner's own Role: its journal Secrets (as the command adds it).
        let journal = crate::guard::permissions::to_permissions(
            &crate::guard::permissions::journal_needs("heatcheck"),
        )
        .objects("x");
        let mut s = DeploySpec {
            name: "nightly".into(),
            namespace: "heatcheck".into(),
            schedule: "0 3 * * *".into(),
            image: "heatcheck:test".into(),
            shards: 1,
            regenerate: false,
            rbac: vec![
                json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                       "metadata": {"name": "x", "namespace": "shop"},
                       "rules": [{"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "patch"]}]}),
                json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                       "metadata": {"name": "x"},
                       "rules": [{"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "create"]}]}),
            ],
            files: vec![
                BundleFile {
                    path: "shop/suite.yaml".into(),
                    content: "kind: Suite\n".into(),
                },
                BundleFile {
                    path: "shop/manifests/base.yaml".into(),
                    content: "kind: Service\n".into(),
                },
            ],
            suites: vec!["shop/suite.yaml".into()],
            active_deadline_seconds: 720,
            restore_seconds: 120,
            notify: None,
        };
        s.rbac.extend(journal);
        s
    }

    #[test]
    fn one_pod_per_run() {
        insta::assert_snapshot!(to_yaml(&render(&spec()).unwrap()));
    }

    #[test]
    fn sharded_and_regenerating() {
        let mut s = spec();
        s.shards = 4;
        s.regenerate = true;
        let objs = render(&s).unwrap();
        let cron = objs.iter().find(|o| o["kind"] == "CronJob").unwrap();
        insta::assert_snapshot!(serde_saphyr::to_string(cron).unwrap());
    }

    #[test]
    fn notifying_runs_read_the_urls_from_the_secret() {
        let mut s = spec();
        s.notify = Some(NotifySpec {
            format: "slack".into(),
            always: true,
        });
        let objs = render(&s).unwrap();
        let cron = objs.iter().find(|o| o["kind"] == "CronJob").unwrap();
        let container = &cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0];
        let args: Vec<&str> = container["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        assert!(args.ends_with(&["--notify-format", "slack", "--notify-always"]));
        assert!(!args.contains(&"--notify"), "{args:?}");
        insta::assert_snapshot!(serde_saphyr::to_string(&container["env"]).unwrap());
        let secret = notify_secret(&s, &["https://a/x".into(), "https://b/y".into()]);
        assert_eq!(secret["metadata"]["name"], "nightly-notify");
        assert_eq!(secret["data"]["url"], "aHR0cHM6Ly9hL3ggaHR0cHM6Ly9iL3k=");
        // Rendered (printable) objects never hold the URLs.
        assert!(!objs.iter().any(|o| o["kind"] == "Secret"));
    }

    #[test]
    fn a_bundle_above_one_mebibyte_is_refused_saying_how_much() {
        let mut s = spec();
        s.files.push(BundleFile {
            path: "shop/manifests/big.yaml".into(),
            content: "x".repeat(MAX_OBJECT_BYTES),
        });
        let e = render(&s).unwrap_err();
        assert!(matches!(e, DeployError::BundleTooLarge { size } if size > MAX_OBJECT_BYTES));
        insta::assert_snapshot!(e.to_string());
    }
}
