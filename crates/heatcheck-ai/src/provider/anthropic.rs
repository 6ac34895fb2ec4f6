//! Anthropic Messages API: POST {base}/v1/messages. The schema is a tool the
//! model is forced to call (`tool_choice: {type: tool}`); its `input` is the answer.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::config::ProviderConfig;
use super::decode::Answer;
use super::error::redact;
use super::error::AiError;
use super::transport::{post, with_retries, BodyReader, ErrorReply, Failure, Sse};
use super::wire::{ChatRequest, ChatResponse, Usage};

pub(crate) const API_VERSION: &str = "2023-06-01";

pub(super) async fn chat(
    client: &reqwest::Client,
    cfg: &ProviderConfig,
    req: &ChatRequest,
) -> Result<ChatResponse, AiError> {
    let url = format!("{}/v1/messages", cfg.base_url);
    let body = request_body(cfg, req);
    let mut headers = vec![("anthropic-version", API_VERSION.to_string())];
    if let Some(key) = &cfg.api_key {
        headers.push(("x-api-key", key.expose().to_string()));
    }
    let (url, headers, body) = (&url, &headers, &body);
    let (answer, attempts) = with_retries(cfg, |_| async move {
        let mut reader = post(client, cfg, url, headers, body, |r| classify(cfg, r)).await?;
        if cfg.stream {
            read_stream(cfg, &mut reader, &req.schema_name).await
        } else {
            let bytes = reader.read_all_for_answer().await?;
            Ok(parse_message(&bytes, &req.schema_name)?)
        }
    })
    .await?;
    Ok(ChatResponse {
        value: answer.value,
        raw: answer.raw,
        usage: answer.usage,
        attempts,
    })
}

pub(crate) fn request_body(cfg: &ProviderConfig, req: &ChatRequest) -> Value {
    let messages: Vec<Value> = req
        .messages
        .iter()
        .map(|m| json!({"role": m.role.as_str(), "content": m.content}))
        .collect();
    let mut body = json!({
        "model": cfg.model,
        "max_tokens": cfg.max_tokens,
        "messages": messages,
        "tools": [{
            "name": req.schema_name,
            "description": format!("Return the answer as the `{}` object. Call this tool exactly once.", req.schema_name),
            "input_schema": req.schema,
        }],
        "tool_choice": {"type": "tool", "name": req.schema_name},
    });
    let obj = body.as_object_mut().expect("object literal");
    if let Some(system) = &req.system {
        obj.insert("system".into(), json!(system));
    }
    if let Some(t) = cfg.temperature {
        obj.insert("temperature".into(), json!(t));
    }
    if let Some(p) = cfg.top_p {
        obj.insert("top_p".into(), json!(p));
    }
    if let Some(k) = cfg.top_k {
        obj.insert("top_k".into(), json!(k));
    }
    if cfg.stream {
        obj.insert("stream".into(), json!(true));
    }
    body
}

/// `{"type":"error","error":{"type":..., "message":...}}` -> (error, retry?).
pub(crate) fn classify(cfg: &ProviderConfig, reply: &ErrorReply<'_>) -> (AiError, bool) {
    let parsed: Option<Value> = serde_json::from_str(reply.body).ok();
    let err = parsed.as_ref().and_then(|v| v.get("error"));
    let kind = err
        .and_then(|e| e.get("type"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let raw_msg = err
        .and_then(|e| e.get("message"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| reply.body.to_string());
    classify_parts(cfg, reply.status, kind, &raw_msg)
}

fn classify_parts(cfg: &ProviderConfig, status: u16, kind: &str, raw_msg: &str) -> (AiError, bool) {
    let message = redact(raw_msg, cfg.api_key.as_ref().map(|k| k.expose()));
    let lower = message.to_lowercase();
    match (status, kind) {
        (401 | 403, _) | (_, "authentication_error" | "permission_error") => (
            AiError::Unauthorized {
                provider: "anthropic".into(),
                status,
                message: format!(
                    "{message}; check {}",
                    cfg.key_var.as_deref().unwrap_or("ANTHROPIC_API_KEY")
                ),
            },
            false,
        ),
        (404, _) | (_, "not_found_error") if lower.contains("model") => (
            AiError::UnknownModel {
                model: cfg.model.clone(),
                message,
            },
            false,
        ),
        (413, _) | (_, "request_too_large") => (AiError::ContextLength { message }, false),
        (_, "invalid_request_error")
            if lower.contains("too long") || lower.contains("context window") =>
        {
            (AiError::ContextLength { message }, false)
        }
        (429, _) | (_, "rate_limit_error") => AiError::throttled(message, true),
        (s, _) if s >= 500 || matches!(kind, "overloaded_error" | "api_error") => {
            AiError::server_side(s, message)
        }
        (404, _) => (
            AiError::Rejected {
                status,
                message: format!("{message} (check ANTHROPIC_BASE_URL / ai.baseUrl)"),
            },
            false,
        ),
        _ => (AiError::Rejected { status, message }, false),
    }
}

/// The status an in-stream `event: error` stands for.
fn status_of(kind: &str) -> u16 {
    match kind {
        "overloaded_error" => 529,
        "api_error" => 500,
        "rate_limit_error" => 429,
        "authentication_error" => 401,
        "permission_error" => 403,
        "not_found_error" => 404,
        "request_too_large" => 413,
        _ => 400,
    }
}

pub(crate) fn parse_message(bytes: &[u8], tool: &str) -> Result<Answer, AiError> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| AiError::Malformed {
        message: format!("the Messages API response is not JSON: {e}"),
    })?;
    let usage = Usage::read(v.get("usage"), "input_tokens", "output_tokens");
    let stop = v.get("stop_reason").and_then(Value::as_str);
    let blocks = v
        .get("content")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let text: String = blocks
        .iter()
        .filter(|b| b["type"] == "text")
        .filter_map(|b| b["text"].as_str())
        .collect::<Vec<_>>()
        .join("");
    let input = blocks
        .iter()
        .find(|b| b["type"] == "tool_use" && b["name"] == tool)
        .or_else(|| blocks.iter().find(|b| b["type"] == "tool_use"))
        .map(|b| b.get("input").cloned().unwrap_or(Value::Null));
    let tool_input = input.map(|i| (i.to_string(), Ok(i)));
    decide(stop, tool_input, &text, usage)
}

/// The final verdict on an assembled message. `tool_input` is (raw, parsed).
fn decide(
    stop: Option<&str>,
    tool_input: Option<(String, Result<Value, String>)>,
    text: &str,
    usage: Usage,
) -> Result<Answer, AiError> {
    match stop {
        Some("refusal") => {
            let message = if text.trim().is_empty() {
                "stop_reason refusal".to_string()
            } else {
                text.trim().to_string()
            };
            return Err(AiError::Refusal { message });
        }
        Some("max_tokens") => {
            return Err(AiError::Truncated {
                reason: "stop_reason max_tokens".into(),
                usage,
            })
        }
        _ => {}
    }
    super::decode::tool_answer(tool_input, text, usage)
}

#[derive(Default)]
struct Block {
    kind: String,
    name: String,
    json: String,
    text: String,
}

/// Assembles `message_start`, `content_block_*`, `message_delta`,
/// `message_stop`; `event: error` and a stream without `message_stop` fail.
async fn read_stream(
    cfg: &ProviderConfig,
    reader: &mut BodyReader,
    tool: &str,
) -> Result<Answer, Failure> {
    let mut sse = Sse::default();
    let mut usage = Usage::default();
    let mut stop: Option<String> = None;
    let mut blocks: BTreeMap<u64, Block> = BTreeMap::new();
    let mut done = false;
    'read: while let Some(chunk) = reader.stream_chunk().await? {
        for ev in sse.push(&chunk) {
            if let Some(n) = &cfg.streamed {
                n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            let data: Value = serde_json::from_str(&ev.data).map_err(|e| AiError::Malformed {
                message: format!("a stream event is not JSON: {e}"),
            })?;
            let kind = ev
                .event
                .clone()
                .or_else(|| data["type"].as_str().map(str::to_string))
                .unwrap_or_default();
            let index = data["index"].as_u64().unwrap_or(0);
            match kind.as_str() {
                "message_start" => {
                    usage = Usage::read(
                        data["message"].get("usage"),
                        "input_tokens",
                        "output_tokens",
                    )
                }
                "content_block_start" => {
                    let b = &data["content_block"];
                    blocks.insert(
                        index,
                        Block {
                            kind: b["type"].as_str().unwrap_or("").to_string(),
                            name: b["name"].as_str().unwrap_or("").to_string(),
                            json: String::new(),
                            text: b["text"].as_str().unwrap_or("").to_string(),
                        },
                    );
                }
                "content_block_delta" => {
                    let d = &data["delta"];
                    let block = blocks.entry(index).or_default();
                    match d["type"].as_str() {
                        Some("input_json_delta") => block
                            .json
                            .push_str(d["partial_json"].as_str().unwrap_or("")),
                        Some("text_delta") => block.text.push_str(d["text"].as_str().unwrap_or("")),
                        _ => {}
                    }
                }
                "message_delta" => {
                    if let Some(s) = data["delta"]["stop_reason"].as_str() {
                        stop = Some(s.to_string());
                    }
                    // Cumulative counts.
                    if let Some(n) = data["usage"]["output_tokens"].as_u64() {
                        usage.output_tokens = n;
                    }
                    if let Some(n) = data["usage"]["input_tokens"].as_u64() {
                        usage.input_tokens = n;
                    }
                }
                "message_stop" => {
                    done = true;
                    break 'read;
                }
                "error" => {
                    let kind = data["error"]["type"].as_str().unwrap_or("api_error");
                    let msg = data["error"]["message"].as_str().unwrap_or("stream error");
                    let (error, retry) = classify_parts(cfg, status_of(kind), kind, msg);
                    return Err(if retry {
                        Failure::Retry { error, after: None }
                    } else {
                        Failure::Fatal(error)
                    });
                }
                _ => {} // ping, content_block_stop
            }
        }
    }
    if !done {
        return Err(Failure::Fatal(AiError::Truncated {
            reason: "the stream ended before message_stop".into(),
            usage,
        }));
    }
    let text: String = blocks
        .values()
        .filter(|b| b.kind == "text")
        .map(|b| b.text.as_str())
        .collect();
    let tool_block = blocks
        .values()
        .find(|b| b.kind == "tool_use" && b.name == tool)
        .or_else(|| blocks.values().find(|b| b.kind == "tool_use"));
    let tool_input = tool_block.map(|b| {
        // A tool call with no delta has the empty input `{}`.
        let raw = if b.json.trim().is_empty() {
            "{}".to_string()
        } else {
            b.json.clone()
        };
        let parsed = serde_json::from_str::<Value>(&raw).map_err(|e| e.to_string());
        (raw, parsed)
    });
    Ok(decide(stop.as_deref(), tool_input, &text, usage)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::{Message, ProviderKind};

    fn cfg() -> ProviderConfig {
        let mut c = ProviderConfig::new(ProviderKind::Anthropic, "http://x", "claude-test");
        c.api_key = Some(crate::provider::ApiKey::new("sk-ant-secret-key"));
        c
    }

    #[test]
    fn body_shape() {
        let mut c = cfg();
        c.temperature = Some(0.5);
        c.top_k = Some(7);
        let req = ChatRequest {
            system: Some("sys".into()),
            messages: vec![Message::user("hi")],
            schema: json!({"type": "object"}),
            schema_name: "scenarios".into(),
        };
        let b = request_body(&c, &req);
        assert_eq!(
            b["tool_choice"],
            json!({"type": "tool", "name": "scenarios"})
        );
        assert_eq!(b["tools"][0]["input_schema"], json!({"type": "object"}));
        assert_eq!(b["system"], "sys");
        assert_eq!(b["temperature"], 0.5);
        assert_eq!(b["top_k"], 7);
        assert!(b.get("top_p").is_none() && b.get("stream").is_none());
    }

    #[test]
    fn classify_errors() {
        let c = cfg();
        let e = |status, body: &str| classify(&c, &ErrorReply { status, body });
        let (err, retry) = e(
            401,
            r#"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}"#,
        );
        assert!(
            !retry
                && matches!(&err, AiError::Unauthorized { message, .. } if message.contains("ANTHROPIC_API_KEY"))
        );
        let (err, _) = e(
            404,
            r#"{"type":"error","error":{"type":"not_found_error","message":"model: claude-nope"}}"#,
        );
        assert!(matches!(err, AiError::UnknownModel { model, .. } if model == "claude-test"));
        let (err, _) = e(
            400,
            r#"{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 208310 tokens > 200000 maximum"}}"#,
        );
        assert!(matches!(err, AiError::ContextLength { .. }));
        let (err, retry) = e(
            529,
            r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
        );
        assert!(retry && matches!(err, AiError::Server { status: 529, .. }));
        let (err, retry) = e(
            429,
            r#"{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}"#,
        );
        assert!(retry && matches!(err, AiError::RateLimited { .. }));
        let (err, retry) = e(
            400,
            r#"{"type":"error","error":{"type":"invalid_request_error","message":"tools.0.input_schema: bad"}}"#,
        );
        assert!(!retry && matches!(err, AiError::Rejected { status: 400, .. }));
        let (err, retry) = e(404, "<html>not here</html>");
        assert!(!retry && matches!(err, AiError::Rejected { status: 404, .. }));
    }

    #[test]
    fn decide_paths() {
        let msg = |v: Value| parse_message(v.to_string().as_bytes(), "scenarios");
        let ok = msg(json!({"content": [{"type": "tool_use", "id": "t", "name": "scenarios", "input": {"a": 1}}], "stop_reason": "tool_use", "usage": {"input_tokens": 3, "output_tokens": 4}})).unwrap();
        assert_eq!(ok.value, json!({"a": 1}));
        assert_eq!(ok.usage.output_tokens, 4);
        assert!(matches!(
            msg(json!({"content": [], "stop_reason": "end_turn"})),
            Err(AiError::Empty)
        ));
        assert!(
            matches!(msg(json!({"content": [{"type":"text","text":"no"}], "stop_reason": "refusal"})), Err(AiError::Refusal { message }) if message == "no")
        );
        assert!(matches!(
            msg(
                json!({"content": [{"type": "tool_use", "name": "scenarios", "input": {}}], "stop_reason": "max_tokens"})
            ),
            Err(AiError::Truncated { .. })
        ));
        assert!(matches!(
            msg(json!({"content": [{"type":"text","text":"hello"}], "stop_reason": "end_turn"})),
            Err(AiError::NotJson { .. })
        ));
        assert!(msg(
            json!({"content": [{"type":"text","text":"{\"a\":2}"}], "stop_reason": "end_turn"})
        )
        .is_ok());
    }
}
