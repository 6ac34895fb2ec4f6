//! OpenAI Chat Completions: POST {base}/chat/completions with
//! `response_format: {type: json_schema}`. Speaks to OpenAI and compatible
//! servers (llama.cpp, vLLM, Ollama's /v1), so the token limit goes in
//! `max_tokens`: every one of them accepts it, while `max_completion_tokens`
//! is newer and not understood by all (OpenAI's reasoning models want it,
//! which is the one case this choice does not cover). `top_k` is not part of
//! this API and is not sent.

use serde_json::{json, Value};

use super::config::ProviderConfig;
use super::decode::{parse_object, Answer};
use super::error::redact;
use super::error::AiError;
use super::strict::{strict_schema, strip_optional_nulls};
use super::transport::{post, with_retries, BodyReader, ErrorReply, Failure, Sse};
use super::wire::{ChatRequest, ChatResponse, Usage};

pub(super) async fn chat(
    client: &reqwest::Client,
    cfg: &ProviderConfig,
    req: &ChatRequest,
) -> Result<ChatResponse, AiError> {
    let url = format!("{}/chat/completions", cfg.base_url);
    let (body, strict) = request_body(cfg, req);
    let mut headers = Vec::new();
    if let Some(key) = &cfg.api_key {
        headers.push(("authorization", format!("Bearer {}", key.expose())));
    }
    chat_at(
        client,
        cfg,
        req,
        &url,
        &headers,
        (body, strict),
        classify_value,
    )
    .await
}

/// How a server's error (status, parsed body, raw body) maps to an error and
/// whether to retry; Azure OpenAI brings its own.
pub(super) type ClassifyFn = fn(&ProviderConfig, u16, Option<&Value>, &str) -> (AiError, bool);

/// One Chat Completions exchange at `url`: the wire format OpenAI and Azure
/// OpenAI share (request body, answer, SSE stream).
pub(super) async fn chat_at(
    client: &reqwest::Client,
    cfg: &ProviderConfig,
    req: &ChatRequest,
    url: &str,
    headers: &[(&str, String)],
    (body, strict): (Value, bool),
    classify_fn: ClassifyFn,
) -> Result<ChatResponse, AiError> {
    let body = &body;
    let classify = |r: &ErrorReply<'_>| {
        let parsed: Option<Value> = serde_json::from_str(r.body).ok();
        classify_fn(cfg, r.status, parsed.as_ref(), r.body)
    };
    let classify = &classify;
    let (mut answer, attempts) = with_retries(cfg, |_| async move {
        let mut reader = post(client, cfg, url, headers, body, classify).await?;
        if cfg.stream {
            read_stream(cfg, &mut reader, classify_fn).await
        } else {
            let bytes = reader.read_all_for_answer().await?;
            Ok(parse_completion(&bytes)?)
        }
    })
    .await?;
    if strict {
        strip_optional_nulls(&mut answer.value, &req.schema);
    }
    Ok(ChatResponse {
        value: answer.value,
        raw: answer.raw,
        usage: answer.usage,
        attempts,
    })
}

/// The request body, and whether the schema was sent in strict mode.
pub(crate) fn request_body(cfg: &ProviderConfig, req: &ChatRequest) -> (Value, bool) {
    let mut messages = Vec::new();
    if let Some(system) = &req.system {
        messages.push(json!({"role": "system", "content": system}));
    }
    messages.extend(
        req.messages
            .iter()
            .map(|m| json!({"role": m.role.as_str(), "content": m.content})),
    );
    let (schema, strict) = match strict_schema(&req.schema) {
        Ok(s) => (s, true),
        Err(why) => {
            tracing::debug!(reason = %why, "schema not strict-compatible; sending it with strict: false");
            (req.schema.clone(), false)
        }
    };
    let mut body = json!({
        "model": cfg.model,
        "messages": messages,
        "max_tokens": cfg.max_tokens,
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": req.schema_name, "strict": strict, "schema": schema},
        },
    });
    let obj = body.as_object_mut().expect("object literal");
    if let Some(t) = cfg.temperature {
        obj.insert("temperature".into(), json!(t));
    }
    if let Some(p) = cfg.top_p {
        obj.insert("top_p".into(), json!(p));
    }
    if cfg.stream {
        obj.insert("stream".into(), json!(true));
        obj.insert("stream_options".into(), json!({"include_usage": true}));
    }
    (body, strict)
}

/// `{"error":{"message","type","code"}}` (and vLLM's flat `{"object":"error",...}`).
#[cfg(test)]
pub(crate) fn classify(cfg: &ProviderConfig, reply: &ErrorReply<'_>) -> (AiError, bool) {
    let parsed: Option<Value> = serde_json::from_str(reply.body).ok();
    classify_value(cfg, reply.status, parsed.as_ref(), reply.body)
}

pub(super) fn classify_value(
    cfg: &ProviderConfig,
    status: u16,
    parsed: Option<&Value>,
    body: &str,
) -> (AiError, bool) {
    let err = parsed.map(|v| match v.get("error") {
        Some(e @ Value::Object(_)) => e,
        _ => v,
    });
    let field = |k: &str| {
        err.and_then(|e| e.get(k)).and_then(|x| match x {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
    };
    let raw_msg = field("message")
        .or_else(|| {
            parsed
                .and_then(|v| v.get("error"))
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or_else(|| body.to_string());
    let code = field("code").unwrap_or_default();
    let kind = field("type").unwrap_or_default();
    let message = redact(&raw_msg, cfg.api_key.as_ref().map(|k| k.expose()));
    let lower = message.to_lowercase();
    let is = |s: &str| code == s || kind == s;
    if matches!(status, 401 | 403) || is("invalid_api_key") {
        let var = cfg.key_var.as_deref().unwrap_or("OPENAI_API_KEY");
        let provider = "openai".to_string();
        return (
            AiError::Unauthorized {
                provider,
                status,
                message: format!("{message}; check {var}"),
            },
            false,
        );
    }
    if is("context_length_exceeded")
        || is("exceed_context_size_error")
        || lower.contains("maximum context length")
        || lower.contains("context size")
        || lower.contains("context length")
    {
        return (AiError::ContextLength { message }, false);
    }
    if is("model_not_found") || (status == 404 && parsed.is_some()) {
        return (
            AiError::UnknownModel {
                model: cfg.model.clone(),
                message,
            },
            false,
        );
    }
    if status == 429 {
        // An exhausted quota does not come back by waiting.
        let retry = !is("insufficient_quota");
        return AiError::throttled(message, retry);
    }
    if status >= 500 {
        return AiError::server_side(status, message);
    }
    let message = if status == 404 {
        format!("{message} (check OPENAI_BASE_URL / ai.baseUrl; it usually ends in /v1)")
    } else {
        message
    };
    (AiError::Rejected { status, message }, false)
}

pub(crate) fn parse_completion(bytes: &[u8]) -> Result<Answer, AiError> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| AiError::Malformed {
        message: format!("the chat completion is not JSON: {e}"),
    })?;
    let choice = &v["choices"][0];
    let msg = &choice["message"];
    decide(
        msg["content"].as_str(),
        msg["refusal"].as_str(),
        choice["finish_reason"].as_str(),
        Usage::read(v.get("usage"), "prompt_tokens", "completion_tokens"),
    )
}

fn decide(
    content: Option<&str>,
    refusal: Option<&str>,
    finish: Option<&str>,
    usage: Usage,
) -> Result<Answer, AiError> {
    if let Some(r) = refusal.filter(|r| !r.trim().is_empty()) {
        return Err(AiError::Refusal {
            message: r.trim().into(),
        });
    }
    match finish {
        Some("content_filter") => {
            return Err(AiError::Refusal {
                message: "finish_reason content_filter".into(),
            })
        }
        Some("length") => {
            return Err(AiError::Truncated {
                reason: "finish_reason length".into(),
                usage,
            })
        }
        _ => {}
    }
    let text = content.unwrap_or("");
    let value = parse_object(text).map_err(|e| e.with_usage(usage))?;
    Ok(Answer {
        value,
        raw: text.to_string(),
        usage,
    })
}

/// `data: {chunk}` lines with `choices[0].delta.content`, then `data: [DONE]`.
async fn read_stream(
    cfg: &ProviderConfig,
    reader: &mut BodyReader,
    classify_value: ClassifyFn,
) -> Result<Answer, Failure> {
    let mut sse = Sse::default();
    let mut content = String::new();
    let mut refusal = String::new();
    let mut finish: Option<String> = None;
    let mut usage = Usage::default();
    let mut done = false;
    'read: while let Some(chunk) = reader.stream_chunk().await? {
        for ev in sse.push(&chunk) {
            if let Some(n) = &cfg.streamed {
                n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            if ev.data.trim() == "[DONE]" {
                done = true;
                break 'read;
            }
            let data: Value = serde_json::from_str(&ev.data).map_err(|e| AiError::Malformed {
                message: format!("a stream chunk is not JSON: {e}"),
            })?;
            if data.get("error").is_some() {
                let status = data["error"]["code"].as_u64().map_or(500, |c| c as u16);
                let (error, retry) = classify_value(cfg, status, Some(&data), &ev.data);
                return Err(if retry {
                    Failure::Retry { error, after: None }
                } else {
                    Failure::Fatal(error)
                });
            }
            if let Some(u) = data.get("usage").filter(|u| u.is_object()) {
                usage = Usage::read(Some(u), "prompt_tokens", "completion_tokens");
            }
            let choice = &data["choices"][0];
            if let Some(s) = choice["delta"]["content"].as_str() {
                content.push_str(s);
            }
            if let Some(s) = choice["delta"]["refusal"].as_str() {
                refusal.push_str(s);
            }
            if let Some(f) = choice["finish_reason"].as_str() {
                finish = Some(f.to_string());
            }
        }
    }
    // [DONE] ends a stream; a finish_reason without it only loses the usage chunk.
    if !done && finish.is_none() {
        return Err(Failure::Fatal(AiError::Truncated {
            reason: "the stream ended before [DONE]".into(),
            usage,
        }));
    }
    Ok(decide(
        Some(&content),
        Some(&refusal),
        finish.as_deref(),
        usage,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::{ApiKey, Message, ProviderKind};

    fn cfg() -> ProviderConfig {
        let mut c = ProviderConfig::new(ProviderKind::OpenAi, "http://x/v1", "gpt-test");
        c.api_key = Some(ApiKey::new("sk-test-1234567890"));
        c
    }

    #[test]
    fn body_shape_strict_and_fallback() {
        let mut c = cfg();
        c.top_k = Some(3);
        let mut req = ChatRequest {
            system: Some("sys".into()),
            messages: vec![Message::user("hi")],
            schema: json!({"type": "object", "properties": {"a": {"type": "string"}}}),
            schema_name: "scenarios".into(),
        };
        let (b, strict) = request_body(&c, &req);
        assert!(strict);
        assert_eq!(
            b["messages"][0],
            json!({"role": "system", "content": "sys"})
        );
        assert_eq!(b["max_tokens"], 4096);
        assert!(b.get("top_k").is_none());
        assert_eq!(b["response_format"]["json_schema"]["strict"], true);
        assert_eq!(
            b["response_format"]["json_schema"]["schema"]["required"],
            json!(["a"])
        );
        req.schema = json!({"type": "object", "properties": {"h": {"type": "object", "additionalProperties": {"type": "string"}}}});
        let (b, strict) = request_body(&c, &req);
        assert!(!strict);
        assert_eq!(b["response_format"]["json_schema"]["strict"], false);
        assert_eq!(b["response_format"]["json_schema"]["schema"], req.schema);
    }

    #[test]
    fn classify_errors() {
        let c = cfg();
        let e = |status, body: &str| classify(&c, &ErrorReply { status, body });
        let (err, retry) = e(
            429,
            r#"{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#,
        );
        assert!(!retry && matches!(err, AiError::RateLimited { .. }));
        let (_, retry) = e(
            429,
            r#"{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}"#,
        );
        assert!(retry);
        let (err, _) = e(
            400,
            r#"{"error":{"message":"This model's maximum context length is 8192 tokens. However, your messages resulted in 8227 tokens.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}"#,
        );
        assert!(matches!(err, AiError::ContextLength { .. }));
        let (err, _) = e(
            404,
            r#"{"object":"error","message":"The model `x` does not exist.","type":"NotFoundError","param":null,"code":404}"#,
        );
        assert!(matches!(err, AiError::UnknownModel { .. }));
        let (err, _) = e(404, "404 page not found");
        assert!(
            matches!(err, AiError::Rejected { status: 404, message } if message.contains("/v1"))
        );
        let (err, _) = e(
            401,
            r#"{"error":{"message":"Incorrect API key provided: sk-test-1234567890.","type":"invalid_request_error","code":"invalid_api_key"}}"#,
        );
        assert!(!err.to_string().contains("1234567890"), "{err}");
        let (err, retry) = e(
            503,
            r#"{"error":{"code":503,"message":"Loading model","type":"unavailable_error"}}"#,
        );
        assert!(retry && matches!(err, AiError::Server { status: 503, .. }));
    }

    #[test]
    fn decide_paths() {
        let p = |v: Value| parse_completion(v.to_string().as_bytes());
        let ok = p(json!({"choices": [{"message": {"role": "assistant", "content": "{\"a\":1}"}, "finish_reason": "stop"}], "usage": {"prompt_tokens": 5, "completion_tokens": 6}})).unwrap();
        assert_eq!((ok.value, ok.usage.input_tokens), (json!({"a": 1}), 5));
        assert!(matches!(
            p(
                json!({"choices": [{"message": {"content": null, "refusal": "I can't"}, "finish_reason": "stop"}]})
            ),
            Err(AiError::Refusal { .. })
        ));
        assert!(matches!(
            p(json!({"choices": [{"message": {"content": "{\"a\""}, "finish_reason": "length"}]})),
            Err(AiError::Truncated { .. })
        ));
        assert!(matches!(
            p(
                json!({"choices": [{"message": {"content": ""}, "finish_reason": "content_filter"}]})
            ),
            Err(AiError::Refusal { .. })
        ));
        assert!(matches!(
            p(json!({"choices": [{"message": {"content": ""}, "finish_reason": "stop"}]})),
            Err(AiError::Empty)
        ));
        assert!(matches!(
            p(json!({"choices": [{"message": {"content": "sure!"}, "finish_reason": "stop"}]})),
            Err(AiError::NotJson { .. })
        ));
    }
}
