//! The configured provider, as generation (and remediate) ask it.

use crate::provider::{AiError, ChatRequest, ChatResponse};

/// The configured provider over HTTP.
pub struct ProviderBackend {
    pub client: reqwest::Client,
    pub config: crate::provider::ProviderConfig,
}

impl ProviderBackend {
    /// From the suite's `ai` block and the process environment.
    pub fn from_suite(ai: &heatcheck_format::AiConfig) -> Result<Self, AiError> {
        let mut config =
            crate::provider::ProviderConfig::from_suite(ai, &|k| std::env::var(k).ok())?;
        // generate() shows and counts each timed-out attempt itself.
        config.retry_timeouts = false;
        config.streamed = Some(Default::default());
        Ok(ProviderBackend {
            client: crate::provider::default_client()?,
            config,
        })
    }
}

impl ProviderBackend {
    /// One request to the model over the provider's wire format.
    pub(crate) async fn chat(&self, req: &ChatRequest) -> Result<ChatResponse, AiError> {
        crate::provider::chat(&self.client, &self.config, req).await
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error(transparent)]
    Provider(#[from] AiError),
}

impl GenerateError {
    pub fn is_unreachable(&self) -> bool {
        match self {
            GenerateError::Provider(e) => e.is_unreachable(),
        }
    }
}
