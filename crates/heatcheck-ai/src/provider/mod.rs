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
mod decode;
mod error;
mod gemini;
mod ollama;
mod openai;
pub(crate) mod strict;
mod transport;
mod wire;

pub use bedrock::sign as bedrock_sign;
pub use config::{ApiKey, AwsCredentials, ProviderConfig, ProviderKind};
pub use error::AiError;
pub use wire::{ChatRequest, ChatResponse, Message, Role, Usage};

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
