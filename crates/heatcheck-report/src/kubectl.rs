//! The hand-run equivalent of each step and check: the kubectl / curl
//! command a person could type instead of heatcheck, and the check in words.
//! Pure text from the suite and the guard's touch analysis; nothing is run.

use std::time::Duration;

use serde_json::Value;

use heatcheck_format::{
    format_duration, AssertionKind, HttpAssertion, HttpRequestSpec, Matcher, PatchType, Step,
    StepAction, Templater, WaitCondition,
};
use heatcheck_guard::Touch;

/// Quotes one shell word: bare when safe, double quotes when it only needs
/// `$VAR` expansion, else single quotes.
pub(crate) fn sh(word: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "-_./:=,@%+".contains(c);
    if !word.is_empty() && word.chars().all(safe) {
        return word.to_string();
    }
    if word.contains('$') && !word.contains(['"', '\\', '`', '!']) {
        return format!("\"{word}\"");
    }
    format!("'{}'", word.replace('\'', "'\\''"))
}

/// A suite JSON path (`$.a.b`, `.a.b`, `{.a.b}`) as kubectl's `{.a.b}`.
pub(crate) fn kubectl_path(p: &str) -> String {
    let inner = p.trim();
    let inner = inner
        .strip_prefix('{')
        .and_then(|s| s.strip_suffix('}'))
        .unwrap_or(inner);
    let inner = inner.strip_prefix('$').unwrap_or(inner);
    let inner = if inner.starts_with('.') || inner.starts_with('[') {
        inner.to_string()
    } else {
        format!(".{inner}")
    };
    format!("{{{}}}", inner.replace('\'', "\""))
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `-n NS` unless the kind is cluster-scoped (a Namespace).
fn ns_flag(kind: &str, ns: &str) -> String {
    if kind.eq_ignore_ascii_case("namespace") {
        String::new()
    } else {
        format!(" -n {}", sh(ns))
    }
}

fn kind_arg(kind: &str) -> String {
    kind.to_ascii_lowercase()
}

/// Objects as YAML documents (`---` between them).
pub(crate) fn yaml_docs(objects: &[&Value]) -> String {
    objects
        .iter()
        .map(|o| serde_saphyr::to_string(o).unwrap_or_default())
        .collect::<Vec<_>>()
        .join("---\n")
}

/// A heredoc feeding `text` to `cmd` on stdin.
fn heredoc(cmd: &str, text: &str) -> String {
    format!("{cmd} -f - <<'EOF'\n{}\nEOF", text.trim_end())
}

/// What the command line of one step is. `file` is the manifest's path as a
/// user would type it (None: inline or templated, so it is printed).
pub(crate) fn step_command(
    step: &Step,
    touches: &[Touch],
    ns: &str,
    file: Option<&str>,
    t: &Templater,
) -> String {
    let render = |s: &str| t.render(s).unwrap_or_else(|_| s.to_string());
    let objects: Vec<&Value> = touches.iter().filter_map(|tc| tc.object.as_ref()).collect();
    match &step.action {
        StepAction::Apply(_) | StepAction::Create(_) => {
            let verb = if matches!(step.action, StepAction::Apply(_)) {
                "kubectl apply --server-side --field-manager=heatcheck"
            } else {
                "kubectl create"
            };
            let cmd = format!("{verb}{}", ns_flag("", ns));
            match file {
                Some(f) => format!("{cmd} -f {}", sh(f)),
                None => heredoc(&cmd, &yaml_docs(&objects)),
            }
        }
        StepAction::Delete(d) => {
            let wait = if d.wait { "" } else { " --wait=false" };
            if d.file.is_some() {
                return match file {
                    Some(f) => format!("kubectl delete{} -f {}{wait}", ns_flag("", ns), sh(f)),
                    None => heredoc(
                        &format!("kubectl delete{}{wait}", ns_flag("", ns)),
                        &yaml_docs(&objects),
                    ),
                };
            }
            let kind = d.kind.as_deref().unwrap_or("?");
            let what = match (&d.name, &d.selector) {
                (Some(n), _) => format!("{} {}", kind_arg(kind), sh(&render(n))),
                (None, Some(s)) => format!("{} -l {}", kind_arg(kind), sh(&render(s))),
                _ => kind_arg(kind),
            };
            format!("kubectl delete {what}{}{wait}", ns_flag(kind, ns))
        }
        StepAction::Patch(p) => {
            let ty = match p.patch_type {
                PatchType::Merge => "merge",
                PatchType::Json => "json",
                PatchType::Strategic => "strategic",
            };
            let body = t.render_value(&p.patch).unwrap_or_else(|_| p.patch.clone());
            format!(
                "kubectl patch {} {}{} --type {ty} -p {}",
                kind_arg(&p.kind),
                sh(&render(&p.name)),
                ns_flag(&p.kind, ns),
                sh(&body.to_string())
            )
        }
        StepAction::Scale(s) => format!(
            "kubectl scale {}/{} --replicas={}{}",
            kind_arg(&s.kind),
            render(&s.name),
            s.replicas,
            ns_flag(&s.kind, ns)
        ),
        StepAction::Restart(r) => format!(
            "kubectl rollout restart {}/{}{}",
            kind_arg(&r.kind),
            render(&r.name),
            ns_flag(&r.kind, ns)
        ),
        StepAction::Wait(w) => {
            let timeout = format!(
                " --timeout={}",
                step.effective_timeout(heatcheck_format::Duration(Duration::from_secs(30)))
                    .as_secs()
                    .max(1)
            );
            let target = match (&w.name, &w.selector) {
                (Some(n), _) => format!("{}/{}", kind_arg(&w.kind), render(n)),
                (None, Some(s)) => format!("{} -l {}", kind_arg(&w.kind), sh(&render(s))),
                _ => format!("{} --all", kind_arg(&w.kind)),
            };
            let nsf = ns_flag(&w.kind, ns);
            match w.condition() {
                Ok(WaitCondition::JsonPath {
                    path,
                    expect: Matcher::Equals(v),
                }) => format!(
                    "kubectl wait {target}{nsf} --for=jsonpath={}={}{timeout}s",
                    sh(&kubectl_path(&path)),
                    sh(&scalar(&v))
                ),
                Ok(WaitCondition::JsonPath { path, expect }) => {
                    let re = match &expect {
                        Matcher::Matches(r) => r.clone(),
                        _ => ".".into(),
                    };
                    format!(
                        "until kubectl get {}{nsf} -o jsonpath={} | grep -Eq {}; do sleep 1; done",
                        target.replacen('/', " ", 1),
                        sh(&kubectl_path(&path)),
                        sh(&re)
                    )
                }
                Ok(WaitCondition::Condition {
                    condition_type,
                    status,
                }) => format!(
                    "kubectl wait {target}{nsf} --for=condition={condition_type}={status}{timeout}s"
                ),
                Ok(WaitCondition::Present(true)) => {
                    format!("kubectl wait {target}{nsf} --for=create{timeout}s")
                }
                Ok(WaitCondition::Present(false)) => {
                    format!("kubectl wait {target}{nsf} --for=delete{timeout}s")
                }
                Ok(WaitCondition::Available(_)) => {
                    format!("kubectl wait {target}{nsf} --for=condition=Available{timeout}s")
                }
                Err(e) => format!("# cannot be written as a command: {e}"),
            }
        }
        StepAction::Sleep(d) => format!("sleep {}", secs(d.0)),
        StepAction::Fault(_) => {
            let chaos: Vec<&Value> = touches
                .iter()
                .filter(|tc| tc.kind != "Pod")
                .filter_map(|tc| tc.object.as_ref())
                .collect();
            if chaos.is_empty() {
                "# the fault cannot be rendered from the suite alone".into()
            } else {
                heredoc(
                    &format!("kubectl apply{}", ns_flag("", ns)),
                    &yaml_docs(&chaos),
                )
            }
        }
    }
}

/// Seconds as `sleep` takes them: `2`, `1.1`.
fn secs(d: Duration) -> String {
    let s = format!("{:.3}", d.as_secs_f64());
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn curl(
    method: &str,
    url: &str,
    headers: &[(String, String)],
    body: Option<&str>,
    timeout: Option<Duration>,
) -> String {
    let mut c = String::from("curl -sS -i");
    if !method.eq_ignore_ascii_case("GET") {
        c.push_str(&format!(" -X {}", method.to_ascii_uppercase()));
    }
    for (k, v) in headers {
        c.push_str(&format!(" -H {}", sh(&format!("{k}: {v}"))));
    }
    if let Some(b) = body {
        c.push_str(&format!(" --data {}", sh(b)));
    }
    if let Some(t) = timeout {
        c.push_str(&format!(" --max-time {}", secs(t)));
    }
    c.push_str(&format!(" {}", sh(url)));
    c
}

fn rendered_headers(
    h: &std::collections::BTreeMap<String, String>,
    t: &Templater,
) -> Vec<(String, String)> {
    h.iter()
        .map(|(k, v)| (k.clone(), t.render(v).unwrap_or_else(|_| v.clone())))
        .collect()
}

/// The curl command of a probe's request.
pub(crate) fn probe_command(spec: &HttpRequestSpec, t: &Templater) -> String {
    let url = t.render(&spec.url).unwrap_or_else(|_| spec.url.clone());
    curl(
        &spec.method,
        &url,
        &rendered_headers(&spec.headers, t),
        spec.body.as_deref(),
        spec.timeout.map(|d| d.0),
    )
}

fn http_words(h: &HttpAssertion, t: &Templater) -> String {
    let url = t.render(&h.url).unwrap_or_else(|_| h.url.clone());
    let mut s = format!("{} `{url}`", h.method.to_ascii_uppercase());
    for (k, v) in rendered_headers(&h.headers, t) {
        s.push_str(&format!(" with `{k}: {v}`"));
    }
    let mut expect = Vec::new();
    if let Some(st) = &h.expect.status {
        let codes: Vec<String> = st.codes().iter().map(u16::to_string).collect();
        expect.push(format!("status {}", codes.join(" or ")));
    }
    for (k, m) in &h.expect.headers {
        expect.push(format!("header {k} {m}"));
    }
    if let Some(b) = &h.expect.body_contains {
        expect.push(format!("a body containing {b:?}"));
    }
    if let Some(b) = &h.expect.body_matches {
        expect.push(format!("a body matching /{b}/"));
    }
    for (k, m) in &h.expect.json {
        expect.push(format!("JSON `{k}` {m}"));
    }
    if expect.is_empty() {
        expect.push("any answer".into());
    }
    s.push_str(&format!(" answers {}", expect.join(", ")));
    if let Some(to) = h.timeout {
        s.push_str(&format!(" within {}", format_duration(to.0)));
    }
    if let Some(ev) = &h.eventually {
        s.push_str(&format!(
            " (retried every {} for up to {})",
            format_duration(ev.every.0),
            format_duration(ev.within.0)
        ));
    }
    s
}

/// A check in words and as a command a person can run.
pub(crate) fn assertion_text(
    a: &heatcheck_format::Assertion,
    ns: &str,
    t: &Templater,
) -> (String, String) {
    let render = |s: &str| t.render(s).unwrap_or_else(|_| s.to_string());
    let ns_of = |n: &Option<String>| n.as_deref().map(render).unwrap_or_else(|| ns.to_string());
    match &a.kind {
        AssertionKind::Promql(q) => {
            let query = render(&q.query);
            let expect = match (&q.expect, q.empty) {
                (Some(e), _) => format!("every series {e}"),
                (None, Some(true)) => "no series".to_string(),
                _ => "at least one series".to_string(),
            };
            (
                format!("PromQL `{query}` gives {expect}"),
                format!(
                    "curl -s \"$PROMETHEUS_URL/api/v1/query\" --data-urlencode {}",
                    sh(&format!("query={query}"))
                ),
            )
        }
        AssertionKind::Http(h) => {
            let url = render(&h.url);
            let cmd = curl(
                &h.method,
                &url,
                &rendered_headers(&h.headers, t),
                h.body.as_deref().map(render).as_deref(),
                h.timeout.map(|d| d.0),
            );
            (http_words(h, t), cmd)
        }
        AssertionKind::Resource(r) => {
            let ns = ns_of(&r.namespace);
            let target = match (&r.name, &r.selector) {
                (Some(n), _) => format!("{} {}", kind_arg(&r.kind), sh(&render(n))),
                (None, Some(s)) => format!("{} -l {}", kind_arg(&r.kind), sh(&render(s))),
                _ => kind_arg(&r.kind),
            };
            let mut words = vec![];
            let mut cmds = vec![];
            if let Some(c) = r.count {
                words.push(format!("exactly {c} match"));
                cmds.push(format!(
                    "kubectl get {target}{} --no-headers | wc -l   # expect {c}",
                    ns_flag(&r.kind, &ns)
                ));
            }
            for (path, m) in &r.expect {
                words.push(format!("`{path}` {m}"));
                let jp = if r.name.is_some() {
                    kubectl_path(path)
                } else {
                    format!(
                        "{{range .items[*]}}{}{{\"\\n\"}}{{end}}",
                        kubectl_path(path)
                    )
                };
                cmds.push(format!(
                    "kubectl get {target}{} -o jsonpath={}   # expect: {m}",
                    ns_flag(&r.kind, &ns),
                    sh(&jp)
                ));
            }
            let what = match (&r.name, &r.selector) {
                (Some(n), _) => format!("{} `{ns}/{}`", r.kind, render(n)),
                (None, Some(s)) => format!("{} objects in `{ns}` matching `{}`", r.kind, render(s)),
                _ => format!("{} objects in `{ns}`", r.kind),
            };
            (format!("{what}: {}", words.join("; ")), cmds.join("\n"))
        }
        AssertionKind::Order(o) => {
            let ns = ns_of(&o.namespace);
            let by = kubectl_path(&o.by);
            let by = by.trim_start_matches('{').trim_end_matches('}');
            let sel = o
                .selector
                .as_deref()
                .map(|s| format!(" -l {}", sh(&render(s))))
                .unwrap_or_default();
            (
                format!(
                    "{} objects in `{ns}` sorted by `{}` (ties by namespace/name) are {}",
                    o.kind,
                    o.by,
                    o.expect.join(", ")
                ),
                format!(
                    "kubectl get {}{sel}{} --sort-by={by} -o custom-columns=NAME:.metadata.name,CREATED:.metadata.creationTimestamp --no-headers   # expect: {}",
                    kind_arg(&o.kind),
                    ns_flag(&o.kind, &ns),
                    o.expect.join(", ")
                ),
            )
        }
        AssertionKind::Absent(o) | AssertionKind::Present(o) => {
            let ns = ns_of(&o.namespace);
            let present = matches!(a.kind, AssertionKind::Present(_));
            let name = render(&o.name);
            (
                format!(
                    "{} `{ns}/{name}` {}",
                    o.kind,
                    if present { "exists" } else { "does not exist" }
                ),
                format!(
                    "kubectl get {} {}{}   # expect: {}",
                    kind_arg(&o.kind),
                    sh(&name),
                    ns_flag(&o.kind, &ns),
                    if present { "found" } else { "NotFound" }
                ),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(sh("app=v1"), "app=v1");
        assert_eq!(sh("$GATEWAY_X/shop"), "\"$GATEWAY_X/shop\"");
        assert_eq!(sh("Host: a"), "'Host: a'");
        assert_eq!(sh("it's"), "'it'\\''s'");
    }

    #[test]
    fn paths_become_kubectl_jsonpath() {
        assert_eq!(
            kubectl_path("$.status.readyReplicas"),
            "{.status.readyReplicas}"
        );
        assert_eq!(kubectl_path(".a.b"), "{.a.b}");
        assert_eq!(kubectl_path("{.a}"), "{.a}");
        assert_eq!(
            kubectl_path("$.status.conditions[?(@.type=='Accepted')].status"),
            "{.status.conditions[?(@.type==\"Accepted\")].status}"
        );
    }
}
