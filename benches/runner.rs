//! Runner benchmark: a generated 200-step suite run by the real binary
//! (`heatcheck run suite.yaml --kubeconfig K`) against a `heatcheck sandbox`
//! child, versus a generated shell script doing the same 200 operations with
//! one kubectl invocation each, against the same sandbox (the baseline),
//! and the fair peers that pay their start-up once: a single
//! `kubectl apply --server-side -f DIR` of the same 100 ConfigMaps, and one
//! Python process with the official Kubernetes client (PyPI `kubernetes`)
//! doing the same 200 operations (server-side apply, merge patch, delete).
//! The fair peers carry the targets; one kubectl call per step is context.
//!
//! `cargo bench --bench runner`. Loopback only; the step count bounds the
//! work. Targets are printed as PASS/MISS and never fail the bench.

mod common;

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{print_targets, run_ok, SandboxChild, Target};
use serde_json::Value;

/// 100 applies, then 50 merge patches and 50 deletes.
const APPLIES: usize = 100;
const PATCHES: usize = 50;
const STEPS: usize = APPLIES + PATCHES + (APPLIES - PATCHES);
const NS_HEATCHECK: &str = "bench-heatcheck";
const NS_KUBECTL: &str = "bench-kubectl";
const NS_KUBECTL_DIR: &str = "bench-kubectl-dir";
const NS_PYTHON: &str = "bench-python";
/// Runs of the one-process baseline (cheap, so the median counts).
const DIR_RUNS: usize = 3;

const HEATCHECK_RUNS: usize = 3;

/// heatcheck per step against one `kubectl apply -f DIR` per object: a
/// heatcheck step also reads the prior state and journals it (fsync) first.
const DIR_TARGET: f64 = 2.0;
/// heatcheck per step against the Python client per operation (no journal).
const PYTHON_TARGET: f64 = 1.0;
const RSS_TARGET_MB: f64 = 50.0;

fn main() {
    let Some(kubectl_bin) = kubectl_binary() else {
        println!("kubectl not found ($KUBECTL, PATH, /usr/bin, /usr/local/bin): the kubectl baselines cannot run; nothing measured");
        return;
    };
    let started = Instant::now();
    let sandbox = SandboxChild::start();
    let work = tempfile::tempdir().expect("temp dir");
    let dir = work.path();
    write_fixtures(dir, &kubectl_bin);
    // kubectl keeps its discovery cache under $HOME; a private HOME keeps the
    // user's cache out of it, and the untimed calls below warm it like a user's.
    let kubectl = |args: &[&str]| {
        let mut c = Command::new(&kubectl_bin);
        c.args(args)
            .env("KUBECONFIG", &sandbox.kubeconfig)
            .env("HOME", dir)
            .current_dir(dir);
        c
    };
    // Not `kubectl create namespace`: its typed generator sends protobuf, which the sandbox refuses.
    run_ok(&mut kubectl(&["apply", "-f", "namespaces.yaml"]));
    // Warm the page cache for both binaries (untimed).
    run_ok(
        Command::new(common::bin())
            .args(["validate", "suite.yaml"])
            .current_dir(dir),
    );
    run_ok(&mut kubectl(&["get", "configmaps", "-n", NS_KUBECTL]));

    println!("== runner: {STEPS} steps ({APPLIES} apply, {PATCHES} merge patch, {} delete of ConfigMaps) ==", APPLIES - PATCHES);

    // heatcheck: one process for the whole suite, restore included. It is
    // cheap, so it runs HEATCHECK_RUNS times (each restore leaves the
    // namespace empty again) and the median counts.
    let mut runs = Vec::new();
    for _ in 0..HEATCHECK_RUNS {
        let mut hc = Command::new(common::bin());
        hc.args(["run", "suite.yaml", "--kubeconfig"])
            .arg(&sandbox.kubeconfig)
            .args(["--report-json", "report.json"])
            .env("NO_COLOR", "1")
            .env_remove("KUBECONFIG")
            .current_dir(dir);
        let run = timed(&mut hc, dir, "heatcheck");
        assert!(run.ok, "heatcheck run failed:\n{}", run.output);
        check_report(&dir.join("report.json"));
        let left = bench_configmaps(&mut kubectl(&[
            "get",
            "configmaps",
            "-n",
            NS_HEATCHECK,
            "-o",
            "name",
        ]));
        assert_eq!(
            left, 0,
            "heatcheck left bench ConfigMaps behind (restore is expected to remove them)"
        );
        runs.push(run);
    }
    let walls: Vec<f64> = runs.iter().map(|r| r.wall.as_secs_f64()).collect();
    let heat = Timed {
        wall: Duration::from_secs_f64(common::median(walls.clone())),
        ok: true,
        max_rss_kib: runs.iter().map(|r| r.max_rss_kib).max().unwrap_or(0),
        output: String::new(),
    };

    // Baseline: one kubectl invocation per step.
    let mut sh = Command::new("/bin/sh");
    sh.arg("ops.sh")
        .env("KUBECONFIG", &sandbox.kubeconfig)
        .env("HOME", dir)
        .current_dir(dir);
    let kc = timed(&mut sh, dir, "kubectl script");
    assert!(kc.ok, "kubectl script failed:\n{}", kc.output);
    let left = bench_configmaps(&mut kubectl(&[
        "get",
        "configmaps",
        "-n",
        NS_KUBECTL,
        "-o",
        "name",
    ]));
    assert_eq!(
        left,
        APPLIES - (APPLIES - PATCHES),
        "the kubectl script did all its operations"
    );

    // Tougher baseline: one kubectl process applies the whole directory
    // server-side. Each run starts from an empty namespace (deleted between
    // runs, untimed), so every run creates the 100 objects.
    let mut dir_runs = Vec::new();
    for _ in 0..DIR_RUNS {
        let run = timed(
            &mut kubectl(&[
                "apply",
                "--server-side",
                "-n",
                NS_KUBECTL_DIR,
                "-f",
                "manifests",
            ]),
            dir,
            "kubectl apply dir",
        );
        assert!(
            run.ok,
            "kubectl apply --server-side -f DIR failed:\n{}",
            run.output
        );
        let made = bench_configmaps(&mut kubectl(&[
            "get",
            "configmaps",
            "-n",
            NS_KUBECTL_DIR,
            "-o",
            "name",
        ]));
        assert_eq!(made, APPLIES, "one apply created every ConfigMap");
        run_ok(&mut kubectl(&[
            "delete",
            "configmaps",
            "-n",
            NS_KUBECTL_DIR,
            "-l",
            "app=runner-bench",
        ]));
        dir_runs.push(run);
    }
    let dir_walls: Vec<f64> = dir_runs.iter().map(|r| r.wall.as_secs_f64()).collect();
    let kc_dir = Duration::from_secs_f64(common::median(dir_walls.clone()));
    let kc_dir_rss = dir_runs.iter().map(|r| r.max_rss_kib).max().unwrap_or(0);

    // Fair peer 2: the official Python client, one process, the same operations.
    let python = python_with_kubernetes();
    let py = python.as_ref().map(|py| {
        let mut c = Command::new(py);
        c.arg("ops.py")
            .env("KUBECONFIG", &sandbox.kubeconfig)
            .current_dir(dir);
        let run = timed(&mut c, dir, "python client");
        assert!(run.ok, "the Python client script failed:\n{}", run.output);
        let left = bench_configmaps(&mut kubectl(&[
            "get",
            "configmaps",
            "-n",
            NS_PYTHON,
            "-o",
            "name",
        ]));
        assert_eq!(left, PATCHES, "the Python client did all its operations");
        run
    });

    let per_step_hc = heat.wall.as_secs_f64() * 1e3 / STEPS as f64;
    let per_step_kc = kc.wall.as_secs_f64() * 1e3 / STEPS as f64;
    let speedup = per_step_kc / per_step_hc;
    let per_object_dir = kc_dir.as_secs_f64() * 1e3 / APPLIES as f64;
    let speedup_dir = per_object_dir / per_step_hc;
    println!(
        "  heatcheck runs (wall, s)     : {}",
        walls
            .iter()
            .map(|w| format!("{w:.3}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "  heatcheck run (median of {HEATCHECK_RUNS})  : {:>7.2} s total  {:>7.2} ms/step  peak RSS {:>5.1} MB",
        heat.wall.as_secs_f64(),
        per_step_hc,
        common::mib(heat.max_rss_kib)
    );
    println!(
        "  kubectl, one call per step   : {:>7.2} s total  {:>7.2} ms/step  peak RSS {:>5.1} MB (largest kubectl)",
        kc.wall.as_secs_f64(),
        per_step_kc,
        common::mib(kc.max_rss_kib)
    );
    println!(
        "  kubectl apply --server-side -f DIR (median of {DIR_RUNS}): {:>7.2} s total  {:>7.2} ms/object ({APPLIES} objects)  peak RSS {:>5.1} MB  runs {}",
        kc_dir.as_secs_f64(),
        per_object_dir,
        common::mib(kc_dir_rss),
        dir_walls
            .iter()
            .map(|w| format!("{w:.3}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let per_op_py = py
        .as_ref()
        .map(|r| r.wall.as_secs_f64() * 1e3 / STEPS as f64);
    match (&py, per_op_py) {
        (Some(r), Some(ms)) => println!(
            "  Python client, one process   : {:>7.2} s total  {:>7.2} ms/op    peak RSS {:>5.1} MB",
            r.wall.as_secs_f64(),
            ms,
            common::mib(r.max_rss_kib)
        ),
        _ => println!(
            "  Python client                : not measured (python3 cannot import kubernetes: pip install kubernetes)"
        ),
    }
    let speedup_py = per_op_py.map(|ms| ms / per_step_hc);
    println!(
        "  headline, per operation (kubectl apply --server-side -f DIR per object / heatcheck per step): {speedup_dir:.2}x (target >= {DIR_TARGET:.0}x)"
    );
    if let Some(x) = speedup_py {
        println!(
            "  headline, per operation (Python client per op / heatcheck per step): {x:.2}x (target >= {PYTHON_TARGET:.0}x)"
        );
    }
    println!(
        "  context: one kubectl process per step / heatcheck per step: {speedup:.1}x (mostly kubectl's start-up)"
    );
    println!(
        "  note: heatcheck's time is the whole process (start, connect, discovery, the {STEPS} steps, \
         the journal undo that deletes the {PATCHES} ConfigMaps left, reports); the kubectl script does not clean up."
    );
    print_breakdown(&dir.join("report.json"));

    let rss = common::mib(heat.max_rss_kib);
    print_targets(
        "runner",
        &[
            Target::new(
                "per operation vs kubectl apply --server-side -f DIR",
                format!("{speedup_dir:.2}x"),
                &format!(">= {DIR_TARGET:.0}x"),
                speedup_dir >= DIR_TARGET,
            ),
            Target::new(
                "per operation vs the Python client (one process)",
                speedup_py.map_or_else(|| "not measured".into(), |x| format!("{x:.2}x")),
                &format!(">= {PYTHON_TARGET:.0}x"),
                speedup_py.is_some_and(|x| x >= PYTHON_TARGET),
            ),
            Target::new(
                "heatcheck run peak RSS",
                format!("{rss:.1} MB"),
                &format!("< {RSS_TARGET_MB:.0} MB"),
                rss < RSS_TARGET_MB,
            ),
        ],
    );
    drop(sandbox);
    println!("\ntotal bench time {:.1}s", started.elapsed().as_secs_f64());
}

fn cm_name(i: usize) -> String {
    format!("bench-cm-{i:03}")
}

/// manifests/cm-NNN.yaml, suite.yaml and ops.sh: the same operations, in the same order.
fn write_fixtures(dir: &Path, kubectl: &Path) {
    let kubectl = kubectl.display();
    std::fs::create_dir_all(dir.join("manifests")).expect("manifests dir");
    let mut suite = format!(
        "apiVersion: heatcheck.dev/v1alpha1\nkind: Suite\nmetadata:\n  name: runner-bench\n\
         spec:\n  target:\n    namespace: {NS_HEATCHECK}\n  scenarios:\n    - name: {STEPS} steps\n      steps:\n"
    );
    let mut script = String::from("set -e\n");
    for i in 0..APPLIES {
        let name = cm_name(i);
        let file = format!("manifests/{name}.yaml");
        let manifest = format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  labels:\n    app: runner-bench\n\
             data:\n  index: \"{i}\"\n  greeting: hello from step {i}\n"
        );
        std::fs::write(dir.join(&file), manifest).expect("write manifest");
        let _ = writeln!(suite, "        - apply: {{file: {file}}}");
        let _ = writeln!(
            script,
            "{kubectl} apply -n {NS_KUBECTL} -f {file} >/dev/null"
        );
    }
    for i in 0..PATCHES {
        let name = cm_name(i);
        let _ = writeln!(
            suite,
            "        - patch: {{kind: ConfigMap, name: {name}, type: merge, patch: {{data: {{patched: \"true\"}}}}}}"
        );
        let _ = writeln!(
            script,
            "{kubectl} patch -n {NS_KUBECTL} configmap {name} --type merge -p '{{\"data\":{{\"patched\":\"true\"}}}}' >/dev/null"
        );
    }
    for i in PATCHES..APPLIES {
        let name = cm_name(i);
        let _ = writeln!(suite, "        - delete: {{kind: ConfigMap, name: {name}}}");
        let _ = writeln!(
            script,
            "{kubectl} delete -n {NS_KUBECTL} configmap {name} >/dev/null"
        );
    }
    std::fs::write(dir.join("ops.py"), python_ops()).expect("write ops.py");
    let namespaces = [NS_HEATCHECK, NS_KUBECTL, NS_KUBECTL_DIR, NS_PYTHON]
        .map(|ns| format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n"))
        .join("---\n");
    std::fs::write(dir.join("namespaces.yaml"), namespaces).expect("write namespaces");
    std::fs::write(dir.join("suite.yaml"), suite).expect("write suite");
    std::fs::write(dir.join("ops.sh"), script).expect("write script");
}

/// The same operations with the official Python client, in one process:
/// server-side applies of the manifests, merge patches, deletes.
fn python_ops() -> String {
    format!(
        r#"import os, yaml
from kubernetes import client, config
config.load_kube_config(os.environ["KUBECONFIG"])
api = client.CoreV1Api()
ns = "{NS_PYTHON}"
names = ["bench-cm-%03d" % i for i in range({APPLIES})]
for n in names:
    with open("manifests/%s.yaml" % n) as f:
        body = yaml.safe_load(f)
    api.patch_namespaced_config_map(n, ns, body, field_manager="bench", force=True,
                                    _content_type="application/apply-patch+yaml")
for n in names[:{PATCHES}]:
    api.patch_namespaced_config_map(n, ns, {{"data": {{"patched": "true"}}}},
                                    _content_type="application/merge-patch+json")
for n in names[{PATCHES}:]:
    api.delete_namespaced_config_map(n, ns)
"#
    )
}

/// python3 that can import the Kubernetes client, if any.
fn python_with_kubernetes() -> Option<std::path::PathBuf> {
    let py = std::env::var_os("PYTHON").map_or_else(|| "python3".into(), std::path::PathBuf::from);
    Command::new(&py)
        .args(["-c", "import kubernetes, yaml"])
        .output()
        .is_ok_and(|o| o.status.success())
        .then_some(py)
}

/// kubectl: `$KUBECTL`, else on PATH, else the usual places.
fn kubectl_binary() -> Option<std::path::PathBuf> {
    let usual = ["/usr/bin/kubectl", "/usr/local/bin/kubectl"].map(std::path::PathBuf::from);
    std::env::var_os("KUBECTL")
        .map(std::path::PathBuf::from)
        .into_iter()
        .chain(
            std::env::var_os("PATH")
                .into_iter()
                .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
                .map(|d| d.join("kubectl")),
        )
        .chain(usual)
        .find(|p| p.is_file())
}

fn bench_configmaps(cmd: &mut Command) -> usize {
    run_ok(cmd)
        .lines()
        .filter(|l| l.contains("bench-cm-"))
        .count()
}

struct Timed {
    wall: Duration,
    ok: bool,
    /// ru_maxrss of the process, or of its largest descendant it waited for.
    max_rss_kib: u64,
    output: String,
}

/// Runs a command to completion, reaping it with wait4 to read its ru_maxrss.
fn timed(cmd: &mut Command, dir: &Path, label: &str) -> Timed {
    let out_path = dir.join(format!("{}.out", label.replace(' ', "-")));
    let out = std::fs::File::create(&out_path).expect("output file");
    let err = out.try_clone().expect("output file");
    let started = Instant::now();
    let child = cmd
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .expect("spawn");
    let (status, rusage) = wait4(child.id());
    let wall = started.elapsed();
    // `child` is reaped already; dropping a std Child does not wait on it.
    drop(child);
    Timed {
        wall,
        ok: libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        max_rss_kib: u64::try_from(rusage.ru_maxrss).unwrap_or(0),
        output: std::fs::read_to_string(&out_path).unwrap_or_default(),
    }
}

/// Blocks until `pid` exits and returns its wait status and resource usage.
/// On Linux the usage includes the descendants it reaped (ru_maxrss is their maximum).
fn wait4(pid: u32) -> (libc::c_int, libc::rusage) {
    let pid = libc::pid_t::try_from(pid).expect("pid fits pid_t");
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain old data, valid when zeroed.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: both pointers are to live, writable locals of the right types.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if r == pid {
            return (status, usage);
        }
        let e = std::io::Error::last_os_error();
        assert_eq!(
            e.kind(),
            std::io::ErrorKind::Interrupted,
            "wait4 failed: {e}"
        );
    }
}

/// The run really did the work: every step ok, the leftovers restored.
fn check_report(report: &Path) {
    let text = std::fs::read_to_string(report).expect("heatcheck wrote report.json");
    let v: Value = serde_json::from_str(&text).expect("report.json is JSON");
    let ok_steps = v["suites"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|s| s["cases"].as_array().into_iter().flatten())
        .filter(|c| c["kind"] == "scenario")
        .flat_map(|c| c["steps"].as_array().into_iter().flatten())
        .filter(|s| s["outcome"] == "ok")
        .count();
    assert_eq!(ok_steps, STEPS, "every step ran ok:\n{text}");
    let restored = v["restore"]["restored"].as_array().map_or(0, Vec::len);
    assert_eq!(
        restored, PATCHES,
        "restore removed the ConfigMaps left:\n{text}"
    );
}

/// Where heatcheck's time went, from its own JSON report.
fn print_breakdown(report: &Path) {
    let Ok(text) = std::fs::read_to_string(report) else {
        println!("  (no report.json to break the time down)");
        return;
    };
    let Ok(v) = serde_json::from_str::<Value>(&text) else {
        println!("  (report.json is not JSON)");
        return;
    };
    let secs = |v: &Value| {
        v.get("durationSeconds")
            .and_then(Value::as_f64)
            .unwrap_or(0.0)
    };
    println!(
        "  heatcheck breakdown from report.json (run {:.2} s):",
        secs(&v)
    );
    for suite in v["suites"].as_array().into_iter().flatten() {
        for case in suite["cases"].as_array().into_iter().flatten() {
            let steps = case["steps"].as_array().map_or(0, Vec::len);
            let step_secs: f64 = case["steps"]
                .as_array()
                .into_iter()
                .flatten()
                .map(secs)
                .sum();
            println!(
                "    {:<12} {:<28} {:>7.3} s  ({steps} steps, {:.2} ms/step)",
                case["kind"].as_str().unwrap_or("?"),
                case["name"].as_str().unwrap_or("?"),
                secs(case),
                if steps > 0 {
                    step_secs * 1e3 / steps as f64
                } else {
                    0.0
                }
            );
        }
    }
    let restored = v["restore"]["restored"].as_array().map_or(0, Vec::len);
    println!("    restore: {restored} objects restored");
}
