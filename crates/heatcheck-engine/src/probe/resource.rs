//! Cluster checks: JSON path expectations on objects, creation order,
//! presence and absence.

use serde_json::Value;

use super::CheckFailure;
use crate::context::SuiteContext;
use heatcheck_format::{ObjectRef, OrderAssertion, ResourceAssertion};

fn render(ctx: &SuiteContext, s: &str) -> Result<String, CheckFailure> {
    ctx.templater
        .render(s)
        .map_err(|e| CheckFailure::new(e.to_string()))
}

fn ns_for(ctx: &SuiteContext, namespaced: bool, written: Option<&str>) -> Option<String> {
    namespaced.then(|| written.unwrap_or(ctx.namespace()).to_string())
}

fn name_of(o: &Value) -> &str {
    o.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("?")
}

pub(crate) async fn check_resource(
    ctx: &SuiteContext,
    a: &ResourceAssertion,
) -> Result<String, CheckFailure> {
    let r = ctx
        .client
        .resolve(a.api_version.as_deref(), &a.kind)
        .await?;
    let ns = ns_for(ctx, r.namespaced, a.namespace.as_deref());
    let objects = match (&a.name, &a.selector) {
        (Some(n), _) => {
            let n = render(ctx, n)?;
            match ctx.client.get(&r, ns.as_deref(), &n).await? {
                Some(o) => vec![o],
                None if a.count == Some(0) => vec![],
                None => {
                    return Err(CheckFailure::new(format!(
                        "expected {} {n} to exist, it does not",
                        r.kind()
                    )))
                }
            }
        }
        (None, sel) => {
            let sel = sel.as_deref().map(|s| render(ctx, s)).transpose()?;
            ctx.client.list(&r, ns.as_deref(), sel.as_deref()).await?
        }
    };
    if let Some(want) = a.count {
        if objects.len() != want as usize {
            let names: Vec<&str> = objects.iter().map(name_of).collect();
            return Err(CheckFailure::with_detail(
                format!("expected {want} {}, got {}", r.kind(), objects.len()),
                format!(
                    "expected {want} {}, got {}: {}",
                    r.kind(),
                    objects.len(),
                    names.join(", ")
                ),
            ));
        }
    }
    let secret = r.kind() == "Secret";
    for o in &objects {
        for (path, m) in &a.expect {
            let got = heatcheck_gateway::jsonpath::first(o, path).map_err(CheckFailure::new)?;
            m.check(got.as_ref()).map_err(|e| {
                // Secret values never reach a report: say that it failed, not what it holds.
                let e = if secret {
                    "the value does not match (Secret values are not shown)".to_string()
                } else {
                    e
                };
                let shown = if secret { mask_secret(o) } else { o.clone() };
                CheckFailure::with_detail(
                    format!("{} {}: {path}: {e}", r.kind(), name_of(o)),
                    serde_json::to_string_pretty(&shown).unwrap_or_default(),
                )
            })?;
        }
    }
    Ok(format!("{} {} checked", objects.len(), r.kind()))
}

/// A Secret with its keys kept and every value replaced by "***".
pub(crate) fn mask_secret(o: &Value) -> Value {
    let mut o = o.clone();
    for field in ["data", "stringData"] {
        if let Some(map) = o.get_mut(field).and_then(Value::as_object_mut) {
            for v in map.values_mut() {
                *v = Value::String("***".into());
            }
        }
    }
    if let Some(a) = o
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
    {
        a.remove("kubectl.kubernetes.io/last-applied-configuration");
    }
    o
}

/// Sort key: the value at `by` as text (RFC 3339 timestamps sort as text),
/// then "namespace/name" as the Gateway API breaks ties.
pub(crate) fn order_names(objects: &[Value], by: &str) -> Result<Vec<String>, String> {
    let mut keyed = Vec::new();
    for o in objects {
        let v = heatcheck_gateway::jsonpath::first(o, by)?;
        let key = match v {
            Some(Value::String(s)) => s,
            Some(other) => other.to_string(),
            None => String::new(),
        };
        let ns = o
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or_default();
        keyed.push((key, format!("{ns}/{}", name_of(o)), name_of(o).to_string()));
    }
    keyed.sort();
    Ok(keyed.into_iter().map(|(_, _, n)| n).collect())
}

pub(crate) async fn check_order(
    ctx: &SuiteContext,
    a: &OrderAssertion,
) -> Result<String, CheckFailure> {
    let r = ctx
        .client
        .resolve(a.api_version.as_deref(), &a.kind)
        .await?;
    let ns = ns_for(ctx, r.namespaced, a.namespace.as_deref());
    let sel = a.selector.as_deref().map(|s| render(ctx, s)).transpose()?;
    let expect: Vec<String> = a
        .expect
        .iter()
        .map(|n| render(ctx, n))
        .collect::<Result<_, _>>()?;
    let all = ctx.client.list(&r, ns.as_deref(), sel.as_deref()).await?;
    let relevant: Vec<Value> = all
        .into_iter()
        .filter(|o| expect.iter().any(|e| e == name_of(o)))
        .collect();
    let missing: Vec<&String> = expect
        .iter()
        .filter(|e| !relevant.iter().any(|o| name_of(o) == e.as_str()))
        .collect();
    if !missing.is_empty() {
        return Err(CheckFailure::new(format!(
            "expected {} in order [{}], but {} missing",
            r.kind(),
            expect.join(", "),
            missing
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let got = order_names(&relevant, &a.by).map_err(CheckFailure::new)?;
    if got != expect {
        let detail: Vec<String> = relevant
            .iter()
            .map(|o| {
                format!(
                    "{} {}={}",
                    name_of(o),
                    a.by,
                    heatcheck_gateway::jsonpath::first(o, &a.by)
                        .ok()
                        .flatten()
                        .unwrap_or(Value::Null)
                )
            })
            .collect();
        return Err(CheckFailure::with_detail(
            format!(
                "expected order [{}] by {}, got [{}]",
                expect.join(", "),
                a.by,
                got.join(", ")
            ),
            detail.join("\n"),
        ));
    }
    Ok(format!("order [{}]", got.join(", ")))
}

pub(crate) async fn check_presence(
    ctx: &SuiteContext,
    a: &ObjectRef,
    want: bool,
) -> Result<String, CheckFailure> {
    let r = ctx
        .client
        .resolve(a.api_version.as_deref(), &a.kind)
        .await?;
    let ns = ns_for(ctx, r.namespaced, a.namespace.as_deref());
    let name = render(ctx, &a.name)?;
    let exists = ctx.client.get(&r, ns.as_deref(), &name).await?.is_some();
    let what = match &ns {
        Some(ns) => format!("{} {ns}/{name}", r.kind()),
        None => format!("{} {name}", r.kind()),
    };
    match (want, exists) {
        (true, true) => Ok(format!("{what} exists")),
        (false, false) => Ok(format!("{what} is absent")),
        (true, false) => Err(CheckFailure::new(format!(
            "expected {what} to exist, it does not"
        ))),
        (false, true) => Err(CheckFailure::new(format!(
            "expected {what} to be absent, it exists"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secret_values_are_masked_keys_kept() {
        let s = json!({"kind": "Secret", "data": {"password": "aHVudGVyMg=="}, "stringData": {"token": "t0k"}});
        let m = mask_secret(&s);
        assert_eq!(m["data"]["password"], "***");
        assert_eq!(m["stringData"]["token"], "***");
        assert!(!m.to_string().contains("aHVudGVyMg"));
    }

    #[test]
    fn order_breaks_ties_by_namespace_and_name() {
        let o = |name: &str, ts: &str| json!({"metadata": {"name": name, "namespace": "ns", "creationTimestamp": ts}});
        let objs = vec![
            o("my-route-v3", "2026-11-26T08:00:01Z"),
            o("my-route", "2026-11-26T08:00:02Z"),
            o("a-route", "2026-11-26T08:00:01Z"),
        ];
        assert_eq!(
            order_names(&objs, "$.metadata.creationTimestamp").unwrap(),
            vec!["a-route", "my-route-v3", "my-route"]
        );
    }
}
