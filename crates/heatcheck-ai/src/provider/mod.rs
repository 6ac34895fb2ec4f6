//! LLM providers over their real HTTP wire formats: the Anthropic Messages
//! API, OpenAI Chat Completions (and compatible servers), Ollama's /api/chat,
//! Azure OpenAI (Chat Completions on a deployment URL), Google Gemini
//! `generateContent`, Amazon Bedrock Converse (SigV4-signed).
//!
//! [`chat`] sends one structured-output request and returns the parsed JSON
//! object, retrying transient failures (see `transport`). The answer is
//! constrained by a JSON Schema: Anthropic through a forced tool call,
//! OpenAI and Azure through `response_format` (see [`strict`]), Ollama through
//! `format`, Gemini through `responseSchema` (see `gemini`), Bedrock through a
//! forced tool call like Anthropic.

mod anthropic;
mod azure;
mod bedrock;
mod config;
mod error;
mod gemini;
mod ollama;
mod openai;
pub(crate) mod strict;
mod transport;

use std::ops::{Add, AddAssign};

use serde::{Deserialize, Serialize};

pub use bedrock::sign as bedrock_sign;
pub use config::{ApiKey, AwsCredentials, ProviderConfig, ProviderKind};
pub use error::AiError;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Assistant,
}

impl Role {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    pub role: Role,
    pub content: String,
}

impl Message {
    pub fn user(content: impl Into<String>) -> Self {
        Message {
            role: Role::User,
            content: content.into(),
        }
    }

    pub fn assistant(content: impl Into<String>) -> Self {
        Message {
            role: Role::Assistant,
            content: content.into(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct ChatRequest {
    pub system: Option<String>,
    pub messages: Vec<Message>,
    /// JSON Schema the answer must match (an object schema).
    pub schema: serde_json::Value,
    /// Names the tool / response format, e.g. "scenarios" (`^[a-zA-Z0-9_-]{1,64}$`).
    pub schema_name: String,
}

/// Tokens spent, as the provider reports them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
}

impl Usage {
    /// A provider's usage object, read with its own names for the two
    /// counts; what is missing counts as 0.
    pub(crate) fn read(u: Option<&serde_json::Value>, input: &str, output: &str) -> Usage {
        let n = |k: &str| {
            u.and_then(|u| u.get(k))
                .and_then(serde_json::Value::as_u64)
                .unwrap_or(0)
        };
        Usage {
            input_tokens: n(input),
            output_tokens: n(output),
        }
    }
}

impl Add for Usage {
    type Output = Usage;
    fn add(self, o: Usage) -> Usage {
        Usage {
            input_tokens: self.input_tokens + o.input_tokens,
            output_tokens: self.output_tokens + o.output_tokens,
        }
    }
}

impl AddAssign for Usage {
    fn add_assign(&mut self, o: Usage) {
        *self = *self + o;
    }
}

#[derive(Clone, Debug)]
pub struct ChatResponse {
    /// The parsed JSON answer object.
    pub value: serde_json::Value,
    /// The text (or tool input) as received.
    pub raw: String,
    pub usage: Usage,
    /// HTTP attempts made, retries included.
    pub attempts: u32,
}

/// One structured-output exchange with the configured provider.
pub async fn chat(
    client: &reqwest::Client,
    cfg: &ProviderConfig,
    req: &ChatRequest,
) -> Result<ChatResponse, AiError> {
    match cfg.kind {
        ProviderKind::Anthropic => anthropic::chat(client, cfg, req).await,
        ProviderKind::OpenAi => openai::chat(client, cfg, req).await,
        ProviderKind::Ollama => ollama::chat(client, cfg, req).await,
        ProviderKind::AzureOpenAi => azure::chat(client, cfg, req).await,
        ProviderKind::Gemini => gemini::chat(client, cfg, req).await,
        ProviderKind::Bedrock => bedrock::chat(client, cfg, req).await,
    }
}

/// A client fit for the providers (rustls with ring, no proxy surprises from
/// the test environment aside). Installs the ring provider if none is.
pub(crate) fn default_client() -> Result<reqwest::Client, AiError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .user_agent(concat!("heatcheck/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| AiError::Connect {
            url: String::new(),
            message: format!("cannot build the HTTP client: {e}"),
            attempts: 0,
        })
}

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
        message: format!("{e}; the answer starts with {:?}", error::truncate(t, 120)),
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

    #[test]
    fn usage_adds() {
        let mut u = Usage {
            input_tokens: 1,
            output_tokens: 2,
        };
        u += Usage {
            input_tokens: 10,
            output_tokens: 20,
        };
        assert_eq!(
            u,
            Usage {
                input_tokens: 11,
                output_tokens: 22
            }
        );
        assert_eq!(
            serde_json::to_value(u).unwrap(),
            json!({"inputTokens": 11, "outputTokens": 22})
        );
    }
}
