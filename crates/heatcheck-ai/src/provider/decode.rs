//! Decoding a model's answer into a JSON object: plain text (a Markdown
//! fence tolerated) or a forced tool call's input.

use super::error::{truncate, AiError};
use super::wire::Usage;

/// What an answer decoded to, before it is checked.
pub(crate) struct Answer {
    pub value: serde_json::Value,
    pub raw: String,
    pub usage: Usage,
}

/// Parses model text as a JSON object. Tolerates a Markdown code fence around
/// it, which some models add in plain JSON mode.
pub(crate) fn parse_object(text: &str) -> Result<serde_json::Value, AiError> {
    let t = text.trim();
    if t.is_empty() {
        return Err(AiError::Empty);
    }
    let t = strip_fence(t);
    let value: serde_json::Value = serde_json::from_str(t).map_err(|e| AiError::NotJson {
        message: format!("{e}; the answer starts with {:?}", truncate(t, 120)),
        raw: text.to_string(),
        usage: Usage::default(),
    })?;
    if value.is_object() {
        Ok(value)
    } else {
        Err(AiError::NotJson {
            message: format!("expected a JSON object, got {}", json_kind(&value)),
            raw: text.to_string(),
            usage: Usage::default(),
        })
    }
}

fn strip_fence(t: &str) -> &str {
    let Some(rest) = t.strip_prefix("```") else {
        return t;
    };
    let rest = rest.strip_prefix("json").unwrap_or(rest);
    rest.strip_suffix("```").unwrap_or(rest).trim()
}

/// The answer of a tool-use API (Anthropic, Bedrock): the forced tool's
/// input, `(raw, parsed)`; without a tool call, the text if it is a JSON
/// object (some models and compatible servers answer in text anyway).
pub(crate) fn tool_answer(
    tool_input: Option<(String, Result<serde_json::Value, String>)>,
    text: &str,
    usage: Usage,
) -> Result<Answer, AiError> {
    match tool_input {
        Some((raw, Ok(value))) if value.is_object() => Ok(Answer { value, raw, usage }),
        Some((_, Ok(value))) => Err(AiError::Malformed {
            message: format!("the tool input is {}, not an object", json_kind(&value)),
        }),
        Some((_, Err(e))) => Err(AiError::Malformed {
            message: format!("the tool input is not JSON: {e}"),
        }),
        None if text.trim().is_empty() => Err(AiError::Empty),
        None => parse_object(text)
            .map(|value| Answer {
                value,
                raw: text.to_string(),
                usage,
            })
            .map_err(|e| match e {
                AiError::NotJson { message, raw, .. } => AiError::NotJson {
                    message: format!("no tool call and the text is not a JSON object ({message})"),
                    raw,
                    usage,
                },
                e => e,
            }),
    }
}

pub(crate) fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parse_object_cases() {
        assert_eq!(parse_object(" {\"a\":1} ").unwrap(), json!({"a": 1}));
        assert_eq!(
            parse_object("```json\n{\"a\":1}\n```").unwrap(),
            json!({"a": 1})
        );
        assert!(matches!(parse_object("  "), Err(AiError::Empty)));
        assert!(
            matches!(parse_object("[1]"), Err(AiError::NotJson { message, .. }) if message.contains("an array"))
        );
        assert!(matches!(
            parse_object("{\"a\":"),
            Err(AiError::NotJson { raw, .. }) if raw == "{\"a\":"
        ));
    }
}
