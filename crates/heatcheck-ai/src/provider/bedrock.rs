//! Amazon Bedrock Converse API: `POST {endpoint}/model/{modelId}/converse`,
//! signed with SigV4 (service `bedrock`) from the standard AWS environment
//! variables, or sent with a Bedrock API key as a bearer token. Like
//! Anthropic, the schema is a tool the model is forced to call
//! (`toolChoice: {tool: {name}}`); its `input` is the answer. Errors carry
//! their type in the `x-amzn-ErrorType` header and `{"message"}` in the body.
//!
//! Streaming uses ConverseStream (`/converse-stream`), whose answer is AWS's
//! binary event-stream framing (decoded with `aws-smithy-eventstream`).

use std::time::SystemTime;

use reqwest::header::HeaderMap;
use serde_json::{json, Value};

use super::config::ProviderConfig;
use super::decode::Answer;
use super::error::redact_all;
use super::error::AiError;
use super::transport::{post_bytes, with_retries, BodyReader, ErrorReply, Failure};
use super::wire::{ChatRequest, ChatResponse, Usage};

/// The SigV4 signing name of bedrock-runtime.
const SIGNING_NAME: &str = "bedrock";

pub(super) async fn chat(
    client: &reqwest::Client,
    cfg: &ProviderConfig,
    req: &ChatRequest,
) -> Result<ChatResponse, AiError> {
    let action = if cfg.stream {
        "converse-stream"
    } else {
        "converse"
    };
    let url = format!(
        "{}/model/{}/{action}",
        cfg.base_url,
        encode_segment(&cfg.model)
    );
    let body = serde_json::to_vec(&request_body(cfg, req)).expect("a JSON value serializes");
    let (url, body) = (&url, &body);
    let (answer, attempts) = with_retries(cfg, |_| async move {
        // Signed per attempt: the signature covers the time (x-amz-date).
        let headers = auth_headers(cfg, url, body, SystemTime::now())?;
        let mut reader = post_bytes(client, cfg, url, &headers, body.clone(), |r, h| {
            classify(cfg, r, h)
        })
        .await?;
        if cfg.stream {
            return read_stream(cfg, &mut reader, &req.schema_name).await;
        }
        let bytes = reader.read_all_for_answer().await?;
        Ok(parse_output(&bytes, &req.schema_name)?)
    })
    .await?;
    Ok(ChatResponse {
        value: answer.value,
        raw: answer.raw,
        usage: answer.usage,
        attempts,
    })
}

/// Percent-encodes a path segment as the AWS SDKs do (everything but the
/// unreserved characters), so `:` in model IDs and `/` in ARNs survive.
pub(crate) fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub(crate) fn request_body(cfg: &ProviderConfig, req: &ChatRequest) -> Value {
    let messages: Vec<Value> = req
        .messages
        .iter()
        .map(|m| json!({"role": m.role.as_str(), "content": [{"text": m.content}]}))
        .collect();
    let mut inference = json!({"maxTokens": cfg.max_tokens});
    let inf = inference.as_object_mut().expect("object literal");
    if let Some(t) = cfg.temperature {
        inf.insert("temperature".into(), json!(t));
    }
    if let Some(p) = cfg.top_p {
        inf.insert("topP".into(), json!(p));
    }
    let mut body = json!({
        "messages": messages,
        "inferenceConfig": inference,
        "toolConfig": {
            "tools": [{"toolSpec": {
                "name": req.schema_name,
                "description": format!("Return the answer as the `{}` object. Call this tool exactly once.", req.schema_name),
                "inputSchema": {"json": req.schema},
            }}],
            "toolChoice": {"tool": {"name": req.schema_name}},
        },
    });
    if let Some(system) = &req.system {
        body.as_object_mut()
            .expect("object literal")
            .insert("system".into(), json!([{"text": system}]));
    }
    body
}

/// `Authorization` (and `x-amz-date`, `x-amz-security-token`) for one
/// attempt: a Bedrock API key as a bearer token, else a SigV4 signature.
pub(crate) fn auth_headers(
    cfg: &ProviderConfig,
    url: &str,
    body: &[u8],
    time: SystemTime,
) -> Result<Vec<(&'static str, String)>, AiError> {
    if let Some(key) = &cfg.api_key {
        return Ok(vec![("authorization", format!("Bearer {}", key.expose()))]);
    }
    let Some(aws) = &cfg.aws else {
        return Err(AiError::MissingKey {
            var: "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY".into(),
        });
    };
    let region = cfg.region.as_deref().unwrap_or("us-east-1");
    sign(
        &aws.access_key_id,
        aws.secret_access_key.expose(),
        aws.session_token.as_ref().map(|t| t.expose().to_string()),
        region,
        url,
        body,
        time,
    )
}

/// SigV4 headers for a JSON POST to `url` (the `host` is taken from it).
pub fn sign(
    access_key_id: &str,
    secret: &str,
    session_token: Option<String>,
    region: &str,
    url: &str,
    body: &[u8],
    time: SystemTime,
) -> Result<Vec<(&'static str, String)>, AiError> {
    use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
    use aws_sigv4::sign::v4;
    let failed = |e: &dyn std::fmt::Display| AiError::Rejected {
        status: 0,
        message: format!("cannot sign the request: {e}"),
    };
    let identity = aws_credential_types::Credentials::new(
        access_key_id,
        secret,
        session_token,
        None,
        "environment",
    )
    .into();
    let params: aws_sigv4::http_request::SigningParams<'_> = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(SIGNING_NAME)
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| failed(&e))?
        .into();
    let headers = [("content-type", "application/json")];
    let signable =
        SignableRequest::new("POST", url, headers.into_iter(), SignableBody::Bytes(body))
            .map_err(|e| failed(&e))?;
    let (instructions, _signature) = sign(signable, &params)
        .map_err(|e| failed(&e))?
        .into_parts();
    let (headers, _) = instructions.into_parts();
    Ok(headers
        .iter()
        .map(|h| (h.name(), h.value().to_string()))
        .collect())
}

/// The error type: `x-amzn-ErrorType` (`Type:namespace`), else the body's
/// `__type` (`namespace#Type`).
fn error_type(body: Option<&Value>, headers: &HeaderMap) -> String {
    let from_header = headers
        .get("x-amzn-errortype")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(':').next().unwrap_or(v).to_string());
    from_header
        .or_else(|| {
            body.and_then(|b| b.get("__type"))
                .and_then(Value::as_str)
                .map(|t| t.rsplit('#').next().unwrap_or(t).to_string())
        })
        .unwrap_or_default()
}

pub(crate) fn classify(
    cfg: &ProviderConfig,
    reply: &ErrorReply<'_>,
    headers: &HeaderMap,
) -> (AiError, bool) {
    let parsed: Option<Value> = serde_json::from_str(reply.body).ok();
    let kind = error_type(parsed.as_ref(), headers);
    let raw_msg = parsed
        .as_ref()
        .and_then(|v| v.get("message").or_else(|| v.get("Message")))
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| reply.body.to_string());
    classify_parts(cfg, reply.status, &kind, &raw_msg)
}

fn classify_parts(cfg: &ProviderConfig, status: u16, kind: &str, raw_msg: &str) -> (AiError, bool) {
    let message = redact_all(raw_msg, &cfg.secrets());
    let message = if kind.is_empty() {
        message
    } else {
        format!("{kind}: {message}")
    };
    let lower = message.to_lowercase();
    let region = cfg.region.as_deref().unwrap_or("?");
    let creds = if cfg.api_key.is_some() {
        cfg.key_var
            .as_deref()
            .unwrap_or("AWS_BEARER_TOKEN_BEDROCK")
            .to_string()
    } else {
        "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN".to_string()
    };
    match kind {
        "UnrecognizedClientException"
        | "InvalidSignatureException"
        | "IncompleteSignatureException"
        | "SignatureDoesNotMatch"
        | "ExpiredTokenException"
        | "MissingAuthenticationTokenException" => {
            return (
                AiError::Unauthorized {
                    provider: "bedrock".into(),
                    status,
                    message: format!("{message}; check {creds}"),
                },
                false,
            )
        }
        "AccessDeniedException" => {
            return (
                AiError::Unauthorized {
                    provider: "bedrock".into(),
                    status,
                    message: format!(
                        "{message}; check that the credentials may call bedrock:InvokeModel and that the model is enabled in {region}"
                    ),
                },
                false,
            )
        }
        "ResourceNotFoundException" => {
            return (
                AiError::UnknownModel {
                    model: cfg.model.clone(),
                    message: format!("{message} (region {region})"),
                },
                false,
            )
        }
        "ValidationException" if lower.contains("model identifier") => {
            return (
                AiError::UnknownModel {
                    model: cfg.model.clone(),
                    message,
                },
                false,
            )
        }
        "ValidationException" if lower.contains("too long") || lower.contains("context") => {
            return (AiError::ContextLength { message }, false)
        }
        "ThrottlingException" | "ModelNotReadyException" | "TooManyRequestsException" => {
            return AiError::throttled(message, true)
        }
        "ServiceQuotaExceededException" => {
            return AiError::throttled(message, false)
        }
        "ModelTimeoutException" | "ServiceUnavailableException" | "InternalServerException" => {
            let status = if status >= 500 { status } else { 503 };
            return (
                AiError::Server {
                    status,
                    message,
                    attempts: 1,
                },
                true,
            );
        }
        _ => {}
    }
    match status {
        401 | 403 => (
            AiError::Unauthorized {
                provider: "bedrock".into(),
                status,
                message: format!("{message}; check {creds}"),
            },
            false,
        ),
        429 => AiError::throttled(message, true),
        s if s >= 500 => AiError::server_side(s, message),
        404 => (
            AiError::Rejected {
                status,
                message: format!("{message} (check AWS_ENDPOINT_URL_BEDROCK_RUNTIME / ai.baseUrl)"),
            },
            false,
        ),
        _ => (AiError::Rejected { status, message }, false),
    }
}

pub(crate) fn parse_output(bytes: &[u8], tool: &str) -> Result<Answer, AiError> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| AiError::Malformed {
        message: format!("the Converse response is not JSON: {e}"),
    })?;
    let usage = Usage::read(v.get("usage"), "inputTokens", "outputTokens");
    let blocks = v
        .pointer("/output/message/content")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let text: String = blocks.iter().filter_map(|b| b["text"].as_str()).collect();
    let tool_use = blocks
        .iter()
        .filter_map(|b| b.get("toolUse"))
        .find(|t| t["name"] == tool)
        .or_else(|| blocks.iter().find_map(|b| b.get("toolUse")));
    let input = tool_use.map(|t| {
        let i = t.get("input").cloned().unwrap_or(Value::Null);
        (i.to_string(), Ok(i))
    });
    decide(
        v.get("stopReason").and_then(Value::as_str),
        input,
        &text,
        usage,
    )
}

/// The verdict on an assembled answer; `tool_input` is (raw, parsed).
fn decide(
    stop: Option<&str>,
    tool_input: Option<(String, Result<Value, String>)>,
    text: &str,
    usage: Usage,
) -> Result<Answer, AiError> {
    match stop {
        Some("max_tokens") => {
            return Err(AiError::Truncated {
                reason: "stopReason max_tokens".into(),
                usage,
            })
        }
        Some(r @ ("guardrail_intervened" | "content_filtered")) => {
            let said = if text.trim().is_empty() {
                String::new()
            } else {
                format!(": {}", text.trim())
            };
            return Err(AiError::Refusal {
                message: format!("Bedrock stopped the answer (stopReason {r}){said}"),
            });
        }
        _ => {}
    }
    super::decode::tool_answer(tool_input, text, usage)
}

#[derive(Default)]
struct Block {
    tool: Option<String>,
    input: String,
    text: String,
}

/// ConverseStream: binary event-stream messages (`:message-type` event,
/// exception or error). Events: messageStart, contentBlockStart (a toolUse
/// with its name), contentBlockDelta (`toolUse.input` JSON pieces or
/// `text`), contentBlockStop, messageStop (stopReason), metadata (usage).
async fn read_stream(
    cfg: &ProviderConfig,
    reader: &mut BodyReader,
    tool: &str,
) -> Result<Answer, Failure> {
    use aws_smithy_eventstream::frame::{DecodedFrame, MessageFrameDecoder};
    let mut decoder = MessageFrameDecoder::new();
    let mut buf = bytes::BytesMut::new();
    let mut blocks: std::collections::BTreeMap<u64, Block> = Default::default();
    let mut stop: Option<String> = None;
    let mut usage = Usage::default();
    'read: while let Some(chunk) = reader.stream_chunk().await? {
        buf.extend_from_slice(&chunk);
        loop {
            let frame = decoder
                .decode_frame(&mut buf)
                .map_err(|e| AiError::Malformed {
                    message: format!("a ConverseStream frame is invalid: {e}"),
                })?;
            let DecodedFrame::Complete(msg) = frame else {
                break;
            };
            if let Some(n) = &cfg.streamed {
                n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            let header = |name: &str| {
                msg.headers()
                    .iter()
                    .find(|h| h.name().as_str() == name)
                    .and_then(|h| h.value().as_string().ok())
                    .map(|s| s.as_str().to_string())
            };
            let payload: Value = serde_json::from_slice(msg.payload()).unwrap_or(Value::Null);
            match header(":message-type").as_deref() {
                Some("event") => {}
                other => {
                    let kind = header(":exception-type")
                        .or_else(|| header(":error-code"))
                        .unwrap_or_else(|| other.unwrap_or("unknown").to_string());
                    let message = payload["message"]
                        .as_str()
                        .map(str::to_string)
                        .or_else(|| header(":error-message"))
                        .unwrap_or_default();
                    // Stream exceptions are named in camelCase (throttlingException).
                    let mut kind_chars = kind.chars();
                    let kind: String = kind_chars
                        .next()
                        .map(|c| c.to_ascii_uppercase())
                        .into_iter()
                        .chain(kind_chars)
                        .collect();
                    let status = match kind.as_str() {
                        "ThrottlingException" => 429,
                        "ValidationException" => 400,
                        _ => 500,
                    };
                    let (error, retry) = classify_parts(cfg, status, &kind, &message);
                    return Err(if retry {
                        Failure::Retry { error, after: None }
                    } else {
                        Failure::Fatal(error)
                    });
                }
            }
            let index = payload["contentBlockIndex"].as_u64().unwrap_or(0);
            match header(":event-type").as_deref() {
                Some("contentBlockStart") => {
                    let block = blocks.entry(index).or_default();
                    if let Some(name) = payload
                        .pointer("/start/toolUse/name")
                        .and_then(Value::as_str)
                    {
                        block.tool = Some(name.to_string());
                    }
                }
                Some("contentBlockDelta") => {
                    let block = blocks.entry(index).or_default();
                    let d = &payload["delta"];
                    if let Some(piece) = d.pointer("/toolUse/input").and_then(Value::as_str) {
                        block.input.push_str(piece);
                    }
                    if let Some(t) = d["text"].as_str() {
                        block.text.push_str(t);
                    }
                }
                Some("messageStop") => {
                    stop = payload["stopReason"].as_str().map(str::to_string);
                }
                Some("metadata") => {
                    usage = Usage::read(payload.get("usage"), "inputTokens", "outputTokens");
                    // The last event of a stream.
                    break 'read;
                }
                _ => {} // messageStart, contentBlockStop
            }
        }
    }
    if stop.is_none() {
        return Err(Failure::Fatal(AiError::Truncated {
            reason: "the stream ended before messageStop".into(),
            usage,
        }));
    }
    let text: String = blocks.values().map(|b| b.text.as_str()).collect();
    let tool_block = blocks
        .values()
        .find(|b| b.tool.as_deref() == Some(tool))
        .or_else(|| blocks.values().find(|b| b.tool.is_some()));
    let tool_input = tool_block.map(|b| {
        let raw = if b.input.trim().is_empty() {
            "{}".to_string()
        } else {
            b.input.clone()
        };
        let parsed = serde_json::from_str::<Value>(&raw).map_err(|e| e.to_string());
        (raw, parsed)
    });
    Ok(decide(stop.as_deref(), tool_input, &text, usage)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::{ApiKey, AwsCredentials, Message, ProviderKind};

    fn cfg() -> ProviderConfig {
        let mut c = ProviderConfig::new(
            ProviderKind::Bedrock,
            "https://bedrock-runtime.eu-west-1.amazonaws.com",
            "anthropic.claude-3-5-sonnet-20240620-v1:0",
        );
        c.region = Some("eu-west-1".into());
        c.aws = Some(AwsCredentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: ApiKey::new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
            session_token: Some(ApiKey::new("session-token-value")),
        });
        c
    }

    #[test]
    fn body_shape_and_url_encoding() {
        let mut c = cfg();
        c.temperature = Some(0.2);
        c.top_k = Some(5);
        let req = ChatRequest {
            system: Some("sys".into()),
            messages: vec![Message::user("hi")],
            schema: json!({"type": "object"}),
            schema_name: "scenarios".into(),
        };
        let b = request_body(&c, &req);
        assert_eq!(b["system"], json!([{"text": "sys"}]));
        assert_eq!(
            b["messages"][0],
            json!({"role": "user", "content": [{"text": "hi"}]})
        );
        assert_eq!(
            b["inferenceConfig"],
            json!({"maxTokens": 4096, "temperature": 0.2})
        );
        assert_eq!(
            b["toolConfig"]["toolChoice"],
            json!({"tool": {"name": "scenarios"}})
        );
        assert_eq!(
            b["toolConfig"]["tools"][0]["toolSpec"]["inputSchema"],
            json!({"json": {"type": "object"}})
        );
        assert_eq!(
            encode_segment("arn:aws:bedrock:us-east-1:1:inference-profile/us.x-v1:0"),
            "arn%3Aaws%3Abedrock%3Aus-east-1%3A1%3Ainference-profile%2Fus.x-v1%3A0"
        );
    }

    #[test]
    fn signs_with_sigv4() {
        let c = cfg();
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        let h = auth_headers(
            &c,
            "https://bedrock-runtime.eu-west-1.amazonaws.com/model/m/converse",
            b"{}",
            t,
        )
        .unwrap();
        let get = |n: &str| h.iter().find(|(k, _)| *k == n).map(|(_, v)| v.as_str());
        let auth = get("authorization").unwrap();
        assert!(auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20231114/eu-west-1/bedrock/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-security-token, Signature="), "{auth}");
        assert_eq!(get("x-amz-date"), Some("20231114T221320Z"));
        assert_eq!(get("x-amz-security-token"), Some("session-token-value"));
        assert!(!auth.contains("EXAMPLEKEY"));
        // A different secret gives a different signature.
        let mut other = cfg();
        other.aws.as_mut().unwrap().secret_access_key = ApiKey::new("another-secret");
        let h2 = auth_headers(
            &other,
            "https://bedrock-runtime.eu-west-1.amazonaws.com/model/m/converse",
            b"{}",
            t,
        )
        .unwrap();
        assert_ne!(
            h2.iter().find(|(k, _)| *k == "authorization").unwrap().1,
            auth
        );
    }

    #[test]
    fn classify_errors() {
        let c = cfg();
        let e = |status, kind: &str, msg: &str| classify_parts(&c, status, kind, msg);
        let (err, retry) = e(
            403,
            "InvalidSignatureException",
            "The request signature we calculated does not match the signature you provided.",
        );
        assert!(
            !retry
                && matches!(&err, AiError::Unauthorized { message, .. } if message.contains("AWS_SECRET_ACCESS_KEY"))
        );
        let (err, retry) = e(
            429,
            "ThrottlingException",
            "Too many requests, please wait before trying again.",
        );
        assert!(retry && matches!(err, AiError::RateLimited { .. }));
        let (err, _) = e(
            400,
            "ValidationException",
            "The provided model identifier is invalid.",
        );
        assert!(matches!(err, AiError::UnknownModel { .. }));
        let (err, _) = e(
            400,
            "ValidationException",
            "Input is too long for requested model.",
        );
        assert!(matches!(err, AiError::ContextLength { .. }));
        let (err, retry) = e(
            503,
            "ServiceUnavailableException",
            "Bedrock is unable to process your request.",
        );
        assert!(retry && matches!(err, AiError::Server { status: 503, .. }));
        let (err, _) = e(
            403,
            "AccessDeniedException",
            "You don't have access to the model with the specified model ID.",
        );
        assert!(
            matches!(&err, AiError::Unauthorized { message, .. } if message.contains("eu-west-1"))
        );
        let (err, _) = e(
            400,
            "ValidationException",
            "leaked wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY here",
        );
        assert!(!err.to_string().contains("EXAMPLEKEY"), "{err}");
    }

    #[test]
    fn output_paths() {
        let p = |v: Value| parse_output(v.to_string().as_bytes(), "scenarios");
        let ok = p(json!({"output": {"message": {"role": "assistant", "content": [{"toolUse": {"toolUseId": "t1", "name": "scenarios", "input": {"a": 1}}}]}}, "stopReason": "tool_use", "usage": {"inputTokens": 9, "outputTokens": 4, "totalTokens": 13}})).unwrap();
        assert_eq!(
            (ok.value, ok.usage.input_tokens, ok.usage.output_tokens),
            (json!({"a": 1}), 9, 4)
        );
        assert!(matches!(
            p(
                json!({"output": {"message": {"content": [{"toolUse": {"name": "scenarios", "input": {}}}]}}, "stopReason": "max_tokens"})
            ),
            Err(AiError::Truncated { .. })
        ));
        assert!(matches!(
            p(
                json!({"output": {"message": {"content": [{"text": "blocked"}]}}, "stopReason": "guardrail_intervened"})
            ),
            Err(AiError::Refusal { .. })
        ));
        assert!(matches!(
            p(
                json!({"output": {"message": {"content": [{"text": "no"}]}}, "stopReason": "end_turn"})
            ),
            Err(AiError::NotJson { .. })
        ));
        assert!(matches!(
            p(json!({"output": {"message": {"content": []}}, "stopReason": "end_turn"})),
            Err(AiError::Empty)
        ));
    }
}
