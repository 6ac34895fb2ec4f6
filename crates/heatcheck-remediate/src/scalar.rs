//! In-place scalar edits: `replicas: 1` becomes `replicas: 2` where it is
//! written, flow style, comments and quoting kept. Each edit tries the
//! places the old value is written as a token and keeps the one after
//! which the document parses to exactly the object wanted; when none does,
//! the caller renders the document again instead.

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
pub fn edit_scalars(body: &str, edits: &[ScalarEdit]) -> Option<String> {
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
    fn none_when_the_new_value_cannot_be_written_plainly() {
        // `yes` would read back as a string here, but `null` would not.
        let body = "a: x\n";
        assert_eq!(
            edit_scalars(body, &[edit("/a", json!("x"), json!("null"))]),
            None
        );
    }
}
