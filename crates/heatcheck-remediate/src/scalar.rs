//! In-place edits of a document: `replicas: 1` becomes `replicas: 2` where
//! it is written (flow style, comments and quoting kept), a new key is a
//! new line beside its siblings, a replaced structure is written in flow
//! style on its key's line. Each edit tries the places it could go and
//! keeps the one after which the document parses to exactly the object
//! wanted; when none does, the caller renders the document again instead.

use serde_json::Value;

use crate::change::ScalarEdit;

fn parse(text: &str) -> Option<Value> {
    serde_saphyr::from_str::<Value>(text).ok()
}

/// How a scalar is written plainly.
fn token(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn boundary_before(c: Option<char>) -> bool {
    c.is_none_or(|c| matches!(c, ' ' | '\t' | '\n' | '[' | '{' | ',' | '"' | '\''))
}

fn boundary_after(c: Option<char>) -> bool {
    c.is_none_or(|c| matches!(c, ' ' | '\t' | '\n' | '\r' | ']' | '}' | ',' | '"' | '\''))
}

/// `body` with every edit made in place; None when some edit cannot be
/// made that way.
pub(crate) fn edit_scalars(body: &str, edits: &[ScalarEdit]) -> Option<String> {
    let mut text = body.to_string();
    let mut current = parse(body)?;
    for e in edits {
        let mut want = current.clone();
        *want.pointer_mut(&e.pointer)? = e.new.clone();
        let (old, new) = (token(&e.old)?, token(&e.new)?);
        let mut done = false;
        for (at, _) in text.match_indices(&old) {
            let before = text[..at].chars().next_back();
            let after = text[at + old.len()..].chars().next();
            if !(boundary_before(before) && boundary_after(after)) {
                continue;
            }
            let candidate = format!("{}{}{}", &text[..at], new, &text[at + old.len()..]);
            if parse(&candidate).as_ref() == Some(&want) {
                text = candidate;
                done = true;
                break;
            }
        }
        if !done {
            return None;
        }
        current = want;
    }
    Some(text)
}

/// One edit of the document: a scalar, a value replaced at its key, or a
/// key added to a mapping.
enum Op {
    Scalar(ScalarEdit),
    Replace {
        pointer: String,
        key: String,
        value: Value,
    },
    Add {
        parent: String,
        key: String,
        value: Value,
    },
}

fn escape(k: &str) -> String {
    k.replace('~', "~0").replace('/', "~1")
}

/// The edits from `a` to `b`; false when one is not supported (a list
/// item that changes shape, a key removed at the top).
fn ops(path: &str, key: Option<&str>, a: &Value, b: &Value, out: &mut Vec<Op>) -> bool {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            if x.keys().any(|k| !y.contains_key(k)) {
                // A key goes: the mapping is written again at its key.
                let Some(k) = key else { return false };
                out.push(Op::Replace {
                    pointer: path.to_string(),
                    key: k.to_string(),
                    value: b.clone(),
                });
                return true;
            }
            y.iter().all(|(k, vb)| {
                let p = format!("{path}/{}", escape(k));
                match x.get(k) {
                    Some(va) => ops(&p, Some(k), va, vb, out),
                    None => {
                        out.push(Op::Add {
                            parent: path.to_string(),
                            key: k.clone(),
                            value: vb.clone(),
                        });
                        true
                    }
                }
            })
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .all(|(i, (va, vb))| ops(&format!("{path}/{i}"), None, va, vb, out)),
        (x, y) if x == y => true,
        (x, y) if !x.is_object() && !x.is_array() && !y.is_object() && !y.is_array() => {
            out.push(Op::Scalar(ScalarEdit {
                pointer: path.to_string(),
                old: x.clone(),
                new: y.clone(),
            }));
            true
        }
        (_, y) => match key {
            Some(k) => {
                out.push(Op::Replace {
                    pointer: path.to_string(),
                    key: k.to_string(),
                    value: y.clone(),
                });
                true
            }
            None => false,
        },
    }
}

/// A value in YAML flow style (plain scalars where they read back the
/// same; the caller checks by parsing).
fn flow(v: &Value) -> String {
    match v {
        Value::Object(m) => format!(
            "{{{}}}",
            m.iter()
                .map(|(k, v)| format!("{}: {}", flow_str(k), flow(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Value::Array(a) => format!("[{}]", a.iter().map(flow).collect::<Vec<_>>().join(", ")),
        Value::String(s) => flow_str(s),
        other => other.to_string(),
    }
}

fn flow_str(s: &str) -> String {
    let plain = !s.is_empty()
        && !s.starts_with(|c: char| c.is_whitespace() || "-?:,[]{}#&*!|>'\"%@`".contains(c))
        && !s.ends_with(char::is_whitespace)
        && !s.contains(": ")
        && !s.contains(" #")
        && !s.contains([',', '[', ']', '{', '}'])
        && serde_saphyr::from_str::<Value>(s).ok() == Some(Value::String(s.to_string()));
    if plain {
        s.to_string()
    } else {
        serde_json::to_string(s).unwrap_or_default()
    }
}

/// A line `<indent>[- ]<key>:<rest>`: (indent of the key, rest).
fn key_line<'a>(line: &'a str, key: &str) -> Option<(usize, &'a str)> {
    let body = line.trim_end_matches(['\n', '\r']);
    let indent = body.len() - body.trim_start().len();
    let mut t = body.trim_start();
    let mut at = indent;
    if let Some(rest) = t.strip_prefix("- ") {
        at += 2;
        t = rest;
    }
    t.strip_prefix(key)?
        .strip_prefix(':')
        .map(|rest| (at, rest))
}

/// The texts `op` could make of `text`, most likely first.
fn tries(text: &str, op: &Op) -> Vec<String> {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let join = |ls: &[&str]| ls.concat();
    let mut out = Vec::new();
    match op {
        Op::Scalar(_) => {}
        Op::Replace { key, value, .. } => {
            for (i, line) in lines.iter().enumerate() {
                let Some((at, rest)) = key_line(line, key) else {
                    continue;
                };
                let body = line.trim_end_matches(['\n', '\r']);
                let prefix = &body[..body.len() - rest.len()];
                let new_line = format!("{prefix} {}\n", flow(value));
                // A block value goes with its deeper lines.
                let mut end = i + 1;
                if rest.trim().is_empty() {
                    while end < lines.len() {
                        let l = lines[end];
                        let ind = l.len() - l.trim_start().len();
                        if l.trim().is_empty() || ind > at {
                            end += 1;
                        } else {
                            break;
                        }
                    }
                }
                let mut ls: Vec<&str> = lines[..i].to_vec();
                ls.push(&new_line);
                ls.extend_from_slice(&lines[end..]);
                out.push(join(&ls));
            }
        }
        Op::Add { key, value, .. } => {
            // Beside any line that starts a key: after it when its value is
            // inline (or it opens a list item), before it otherwise.
            for (i, line) in lines.iter().enumerate() {
                let body = line.trim_end_matches(['\n', '\r']);
                let t = body.trim_start();
                if t.is_empty() || t.starts_with('#') || !t.contains(':') {
                    continue;
                }
                let indent = body.len() - t.len();
                let (at, item) = match t.strip_prefix("- ") {
                    Some(_) => (indent + 2, true),
                    None => (indent, false),
                };
                let new_line = format!("{}{key}: {}\n", " ".repeat(at), flow(value));
                let inline = t.split_once(':').is_some_and(|(_, r)| !r.trim().is_empty());
                if inline || item {
                    let mut ls: Vec<&str> = lines[..=i].to_vec();
                    ls.push(&new_line);
                    ls.extend_from_slice(&lines[i + 1..]);
                    out.push(join(&ls));
                }
                if !item {
                    let mut ls: Vec<&str> = lines[..i].to_vec();
                    ls.push(&new_line);
                    ls.extend_from_slice(&lines[i..]);
                    out.push(join(&ls));
                }
            }
        }
    }
    out
}

/// `body` (whose object is `old`) edited in place into `new`; None when
/// some edit cannot be made that way.
pub(crate) fn edit_in_place(body: &str, old: &Value, new: &Value) -> Option<String> {
    let mut all = Vec::new();
    if !ops("", None, old, new, &mut all) {
        return None;
    }
    let mut text = body.to_string();
    let mut current = parse(body)?;
    for op in &all {
        match op {
            Op::Scalar(e) => {
                text = edit_scalars(&text, std::slice::from_ref(e))?;
                *current.pointer_mut(&e.pointer)? = e.new.clone();
            }
            Op::Replace { pointer, value, .. } => {
                let mut want = current.clone();
                *want.pointer_mut(pointer)? = value.clone();
                text = tries(&text, op)
                    .into_iter()
                    .find(|t| parse(t).as_ref() == Some(&want))?;
                current = want;
            }
            Op::Add { parent, key, value } => {
                let mut want = current.clone();
                want.pointer_mut(parent)?
                    .as_object_mut()?
                    .insert(key.clone(), value.clone());
                let found = tries(&text, op)
                    .into_iter()
                    .find(|t| parse(t).as_ref() == Some(&want));
                text = match found {
                    Some(t) => t,
                    // A flow mapping has no line per key: its key's value
                    // is written again, in flow style.
                    None => {
                        let (_, last) = parent.rsplit_once('/')?;
                        if last.parse::<usize>().is_ok() {
                            return None;
                        }
                        let again = Op::Replace {
                            pointer: parent.clone(),
                            key: last.replace("~1", "/").replace("~0", "~"),
                            value: want.pointer(parent)?.clone(),
                        };
                        tries(&text, &again)
                            .into_iter()
                            .find(|t| parse(t).as_ref() == Some(&want))?
                    }
                };
                current = want;
            }
        }
    }
    (parse(&text).as_ref() == Some(new)).then_some(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn edit(pointer: &str, old: Value, new: Value) -> ScalarEdit {
        ScalarEdit {
            pointer: pointer.into(),
            old,
            new,
        }
    }

    #[test]
    fn the_value_is_edited_where_it_is_written() {
        let body = "# keep me\nspec:\n  replicas: 1 # one\n  other: {replicas: 1}\n  hostnames: [shop.example.com]\n";
        let out = edit_scalars(
            body,
            &[
                edit("/spec/replicas", json!(1), json!(2)),
                edit(
                    "/spec/hostnames/0",
                    json!("shop.example.com"),
                    json!("x.shop.example.com"),
                ),
            ],
        )
        .unwrap();
        assert_eq!(
            out,
            "# keep me\nspec:\n  replicas: 2 # one\n  other: {replicas: 1}\n  hostnames: [x.shop.example.com]\n"
        );
    }

    #[test]
    fn the_second_occurrence_when_the_first_is_another_field() {
        let body = "a: {request: 300ms}\nb:\n  request: \"300ms\"\n";
        let out = edit_scalars(body, &[edit("/b/request", json!("300ms"), json!("1s"))]).unwrap();
        assert_eq!(out, "a: {request: 300ms}\nb:\n  request: \"1s\"\n");
    }

    #[test]
    fn new_keys_and_replaced_structures_go_where_they_belong_in_flow_style() {
        let body = "# web\nspec:\n  replicas: 2\n  strategy: {type: Recreate}\n  template:\n    spec:\n      containers:\n        - name: echo\n          ports:\n            - containerPort: 3000\n";
        let old = parse(body).unwrap();
        let mut new = old.clone();
        new["spec"]["strategy"] =
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}});
        new["spec"]["template"]["spec"]["containers"][0]["readinessProbe"] =
            json!({"tcpSocket": {"port": 3000}, "periodSeconds": 5});
        new["spec"]["minReadySeconds"] = json!(1);
        let out = edit_in_place(body, &old, &new).unwrap();
        assert_eq!(
            out,
            "# web\nspec:\n  replicas: 2\n  minReadySeconds: 1\n  strategy: {type: RollingUpdate, rollingUpdate: {maxUnavailable: 0, maxSurge: 1}}\n  template:\n    spec:\n      containers:\n        - name: echo\n          readinessProbe: {tcpSocket: {port: 3000}, periodSeconds: 5}\n          ports:\n            - containerPort: 3000\n"
        );
        // A block value is replaced with its lines.
        let body = "spec:\n  strategy:\n    type: Recreate\n  replicas: 2\n";
        let old = parse(body).unwrap();
        let mut new = old.clone();
        new["spec"]["strategy"] = json!({"rollingUpdate": {"maxSurge": 1}});
        assert_eq!(
            edit_in_place(body, &old, &new).unwrap(),
            "spec:\n  strategy: {rollingUpdate: {maxSurge: 1}}\n  replicas: 2\n"
        );
    }

    #[test]
    fn none_when_the_new_value_cannot_be_written_plainly() {
        // `yes` would read back as a string here, but `null` would not.
        let body = "a: x\n";
        assert_eq!(
            edit_scalars(body, &[edit("/a", json!("x"), json!("null"))]),
            None
        );
    }
}
