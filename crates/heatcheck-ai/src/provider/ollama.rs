//! Ollama's native API: POST {OLLAMA_HOST}/api/chat with `format: <schema>`
//! (structured outputs) and sampling in `options`. Streams are NDJSON.

use serde_json::{json, Value};

use super::config::ProviderConfig;
use super::decode::{parse_object, Answer};
use super::error::redact;
use super::error::AiError;
use super::transport::{post, with_retries, BodyReader, ErrorReply, Failure, Lines};
use super::wire::{ChatRequest, ChatResponse, Usage};

pub(super) async fn chat(
    client: &reqwest::Client,
    cfg: &ProviderConfig,
    req: &ChatRequest,
) -> Result<ChatResponse, AiError> {
    let url = format!("{}/api/chat", cfg.base_url);
    let body = request_body(cfg, req);
    let mut headers = Vec::new();
    if let Some(key) = &cfg.api_key {
        headers.push(("authorization", format!("Bearer {}", key.expose())));
    }
    let (url, headers, body) = (&url, &headers, &body);
    let (answer, attempts) = with_retries(cfg, |_| async move {
        let mut reader = post(client, cfg, url, headers, body, |r| classify(cfg, r)).await?;
        if cfg.stream {
            read_stream(cfg, &mut reader).await
        } else {
            let bytes = reader.read_all_for_answer().await?;
            let v: Value = serde_json::from_slice(&bytes).map_err(|e| AiError::Malformed {
                message: format!("the /api/chat response is not JSON: {e}"),
            })?;
            Ok(decide(
                v["message"]["content"].as_str().unwrap_or(""),
                v["done_reason"].as_str(),
                usage_of(&v),
            )?)
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
    let mut messages = Vec::new();
    if let Some(system) = &req.system {
        messages.push(json!({"role": "system", "content": system}));
    }
    messages.extend(
        req.messages
            .iter()
            .map(|m| json!({"role": m.role.as_str(), "content": m.content})),
    );
    let mut options = json!({"num_predict": cfg.max_tokens});
    let o = options.as_object_mut().expect("object literal");
    if let Some(t) = cfg.temperature {
        o.insert("temperature".into(), json!(t));
    }
    if let Some(p) = cfg.top_p {
        o.insert("top_p".into(), json!(p));
    }
    if let Some(k) = cfg.top_k {
        o.insert("top_k".into(), json!(k));
    }
    json!({
        "model": cfg.model,
        "messages": messages,
        "stream": cfg.stream,
        "format": req.schema,
        "options": options,
    })
}

/// `{"error": "model 'x' not found"}`.
pub(crate) fn classify(cfg: &ProviderConfig, reply: &ErrorReply<'_>) -> (AiError, bool) {
    let parsed: Option<Value> = serde_json::from_str(reply.body).ok();
    let raw = parsed
        .as_ref()
        .and_then(|v| v.get("error"))
        .and_then(Value::as_str)
        .unwrap_or(reply.body);
    classify_message(cfg, reply.status, raw)
}

fn classify_message(cfg: &ProviderConfig, status: u16, raw: &str) -> (AiError, bool) {
    let message = redact(raw, cfg.api_key.as_ref().map(|k| k.expose()));
    let lower = message.to_lowercase();
    match status {
        401 | 403 => (
            AiError::Unauthorized {
                provider: "ollama".into(),
                status,
                message: format!(
                    "{message}; check {}",
                    cfg.key_var
                        .as_deref()
                        .unwrap_or("ai.apiKeyEnv (Ollama behind an authenticating proxy)")
                ),
            },
            false,
        ),
        404 if lower.contains("model") => (
            AiError::UnknownModel {
                model: cfg.model.clone(),
                message: format!("{message} (run `ollama pull {}`)", cfg.model),
            },
            false,
        ),
        _ if lower.contains("context length") || lower.contains("context window") => {
            (AiError::ContextLength { message }, false)
        }
        429 => AiError::throttled(message, true),
        s if s >= 500 => AiError::server_side(s, message),
        _ => (AiError::Rejected { status, message }, false),
    }
}

fn usage_of(v: &Value) -> Usage {
    Usage {
        input_tokens: v["prompt_eval_count"].as_u64().unwrap_or(0),
        output_tokens: v["eval_count"].as_u64().unwrap_or(0),
    }
}

fn decide(content: &str, done_reason: Option<&str>, usage: Usage) -> Result<Answer, AiError> {
    if done_reason == Some("length") {
        return Err(AiError::Truncated {
            reason: "done_reason length".into(),
            usage,
        });
    }
    let value = parse_object(content).map_err(|e| e.with_usage(usage))?;
    Ok(Answer {
        value,
        raw: content.to_string(),
        usage,
    })
}

/// One JSON object a line; the last one has `done: true`.
async fn read_stream(cfg: &ProviderConfig, reader: &mut BodyReader) -> Result<Answer, Failure> {
    let mut lines = Lines::default();
    let mut content = String::new();
    let mut last: Option<Value> = None;
    let handle = |line: &str, content: &mut String| -> Result<Option<Value>, Failure> {
        if line.trim().is_empty() {
            return Ok(None);
        }
        let v: Value = serde_json::from_str(line).map_err(|e| AiError::Malformed {
            message: format!("a stream line is not JSON: {e}"),
        })?;
        if let Some(err) = v.get("error").and_then(Value::as_str) {
            let (error, retry) = classify_message(cfg, 500, err);
            return Err(if retry {
                Failure::Retry { error, after: None }
            } else {
                Failure::Fatal(error)
            });
        }
        if let Some(s) = v["message"]["content"].as_str() {
            content.push_str(s);
        }
        Ok((v["done"] == true).then_some(v))
    };
    'read: while let Some(chunk) = reader.stream_chunk().await? {
        for line in lines.push(&chunk) {
            if let Some(n) = &cfg.streamed {
                n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            if let Some(done) = handle(&line, &mut content)? {
                last = Some(done);
                break 'read;
            }
        }
    }
    if last.is_none() {
        if let Some(rest) = lines.rest() {
            last = handle(&rest, &mut content)?;
        }
    }
    let Some(done) = last else {
        return Err(Failure::Fatal(AiError::Truncated {
            reason: "the stream ended before done: true".into(),
            usage: Usage::default(),
        }));
    };
    Ok(decide(
        &content,
        done["done_reason"].as_str(),
        usage_of(&done),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::{Message, ProviderKind};

    #[test]
    fn body_shape() {
        let mut c = ProviderConfig::new(ProviderKind::Ollama, "http://o", "llama3.2");
        c.temperature = Some(0.1);
        c.top_k = Some(20);
        c.max_tokens = 300;
        let req = ChatRequest {
            system: None,
            messages: vec![Message::user("hi")],
            schema: json!({"type": "object"}),
            schema_name: "scenarios".into(),
        };
        let b = request_body(&c, &req);
        assert_eq!(b["format"], json!({"type": "object"}));
        assert_eq!(b["stream"], false);
        assert_eq!(
            b["options"],
            json!({"num_predict": 300, "temperature": 0.1, "top_k": 20})
        );
        assert_eq!(b["messages"], json!([{"role": "user", "content": "hi"}]));
    }

    #[test]
    fn classify_errors() {
        let c = ProviderConfig::new(ProviderKind::Ollama, "http://o", "nope");
        let (err, retry) = classify(
            &c,
            &ErrorReply {
                status: 404,
                body: r#"{"error":"model 'nope' not found"}"#,
            },
        );
        assert!(!retry && matches!(err, AiError::UnknownModel { .. }));
        let (_, retry) = classify(
            &c,
            &ErrorReply {
                status: 500,
                body: r#"{"error":"llama runner process has terminated"}"#,
            },
        );
        assert!(retry);
    }

    #[test]
    fn decide_paths() {
        assert!(matches!(
            decide("{\"a\"", Some("length"), Usage::default()),
            Err(AiError::Truncated { .. })
        ));
        assert!(matches!(
            decide("", Some("stop"), Usage::default()),
            Err(AiError::Empty)
        ));
        assert!(decide("{\"a\":1}", Some("stop"), Usage::default()).is_ok());
    }
}
