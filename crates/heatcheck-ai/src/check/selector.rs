//! Kubernetes label selectors, parsed to tell when one selects everything.

use std::collections::BTreeMap;

/// Some(reason) when a label selector selects everything: empty, no
/// positive requirement, or (given the label sets of two or more objects)
/// matching all of them.
pub(super) fn match_all(
    selector: &str,
    sets: Option<&Vec<BTreeMap<String, String>>>,
) -> Option<String> {
    let reqs = match parse_selector(selector) {
        Ok(r) => r,
        Err(e) => return Some(format!("does not parse: {e}")),
    };
    if reqs.is_empty() {
        return Some("is empty and would match everything".into());
    }
    if !reqs.iter().any(Requirement::is_positive) {
        return Some("has no positive requirement (key=value, key in (...), or key) and would match nearly everything".into());
    }
    if let Some(sets) = sets {
        if sets.len() >= 2 && sets.iter().all(|l| reqs.iter().all(|r| r.matches(l))) {
            return Some(format!(
                "matches every one of the {} workloads in the namespace",
                sets.len()
            ));
        }
    }
    None
}

#[derive(Debug, PartialEq)]
enum Requirement {
    Eq(String, String),
    NotEq(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

impl Requirement {
    fn is_positive(&self) -> bool {
        matches!(
            self,
            Requirement::Eq(..) | Requirement::In(..) | Requirement::Exists(_)
        )
    }

    fn matches(&self, l: &BTreeMap<String, String>) -> bool {
        match self {
            Requirement::Eq(k, v) => l.get(k) == Some(v),
            Requirement::NotEq(k, v) => l.get(k) != Some(v),
            Requirement::In(k, vs) => l.get(k).is_some_and(|x| vs.contains(x)),
            Requirement::NotIn(k, vs) => !l.get(k).is_some_and(|x| vs.contains(x)),
            Requirement::Exists(k) => l.contains_key(k),
            Requirement::NotExists(k) => !l.contains_key(k),
        }
    }
}

/// Kubernetes label selector syntax: `a=b`, `a==b`, `a!=b`, `a in (x,y)`,
/// `a notin (x)`, `a`, `!a`, joined by commas.
fn parse_selector(s: &str) -> Result<Vec<Requirement>, String> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0i32, 0usize);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    let mut out = Vec::new();
    for p in parts.into_iter().map(str::trim).filter(|p| !p.is_empty()) {
        let set = |rest: &str| -> Result<Vec<String>, String> {
            let inner = rest
                .trim()
                .strip_prefix('(')
                .and_then(|r| r.strip_suffix(')'))
                .ok_or_else(|| format!("expected (values) in \"{p}\""))?;
            Ok(inner.split(',').map(|v| v.trim().to_string()).collect())
        };
        let r = if let Some((k, v)) = p.split_once("!=") {
            Requirement::NotEq(k.trim().into(), v.trim().into())
        } else if let Some((k, v)) = p.split_once("==").or_else(|| p.split_once('=')) {
            Requirement::Eq(k.trim().into(), v.trim().into())
        } else if let Some((k, rest)) = p.split_once(" notin ") {
            Requirement::NotIn(k.trim().into(), set(rest)?)
        } else if let Some((k, rest)) = p.split_once(" in ") {
            Requirement::In(k.trim().into(), set(rest)?)
        } else if let Some(k) = p.strip_prefix('!') {
            Requirement::NotExists(k.trim().into())
        } else if p.contains(char::is_whitespace) {
            return Err(format!("unexpected \"{p}\""));
        } else {
            Requirement::Exists(p.into())
        };
        out.push(r);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_parse() {
        let r = parse_selector("app=web, tier in (a, b),!canary,env notin (prod),x").unwrap();
        assert_eq!(r.len(), 5);
        let l: BTreeMap<String, String> = [("app", "web"), ("tier", "a"), ("x", "1")]
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        assert!(r.iter().all(|r| r.matches(&l)));
        assert!(parse_selector("app in web").is_err());
    }
}
