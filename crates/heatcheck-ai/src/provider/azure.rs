//! Azure OpenAI: the OpenAI Chat Completions wire format on a deployment URL,
//! `POST {endpoint}/openai/deployments/{deployment}/chat/completions?api-version=V`,
//! with an `api-key` header (or a Microsoft Entra ID bearer token). The
//! deployment is `ai.model`; the body carries no `model`, the URL names it.
//! Azure's error body is `{"error":{"code","message"}}` with codes such as
//! `DeploymentNotFound` and `content_filter`.

use serde_json::Value;

use super::config::ProviderConfig;
use super::error::redact_all;
use super::error::AiError;
use super::openai;
use super::wire::{ChatRequest, ChatResponse};

pub(super) async fn chat(
    client: &reqwest::Client,
    cfg: &ProviderConfig,
    req: &ChatRequest,
) -> Result<ChatResponse, AiError> {
    let url = deployment_url(cfg)?;
    let (mut body, strict) = openai::request_body(cfg, req);
    if let Some(obj) = body.as_object_mut() {
        obj.remove("model");
    }
    let mut headers = Vec::new();
    if let Some(key) = &cfg.api_key {
        headers.push(("api-key", key.expose().to_string()));
    } else if let Some(token) = &cfg.bearer_token {
        headers.push(("authorization", format!("Bearer {}", token.expose())));
    }
    openai::chat_at(
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

/// `{endpoint}/openai/deployments/{deployment}/chat/completions?api-version=V`.
/// An endpoint given with its `/openai` suffix is accepted as well.
pub(crate) fn deployment_url(cfg: &ProviderConfig) -> Result<String, AiError> {
    let base = cfg.base_url.trim_end_matches("/openai");
    let mut url = reqwest::Url::parse(base).map_err(|e| AiError::MissingSetting {
        what: "valid Azure OpenAI endpoint".into(),
        hint: format!("`{base}` is not a URL ({e}); expected https://RESOURCE.openai.azure.com"),
    })?;
    url.path_segments_mut()
        .map_err(|()| AiError::MissingSetting {
            what: "valid Azure OpenAI endpoint".into(),
            hint: format!("`{base}` cannot have a path"),
        })?
        .pop_if_empty()
        .extend([
            "openai",
            "deployments",
            cfg.model.as_str(),
            "chat",
            "completions",
        ]);
    url.query_pairs_mut()
        .append_pair("api-version", &cfg.api_version);
    Ok(url.to_string())
}

/// Azure's `{"error":{"code","message","innererror"}}` -> (error, retry?).
pub(crate) fn classify_value(
    cfg: &ProviderConfig,
    status: u16,
    parsed: Option<&Value>,
    body: &str,
) -> (AiError, bool) {
    let err = parsed
        .and_then(|v| v.get("error"))
        .filter(|e| e.is_object());
    let text = |v: Option<&Value>| match v {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    let code = text(err.and_then(|e| e.get("code"))).unwrap_or_default();
    let inner = text(err.and_then(|e| e.pointer("/innererror/code"))).unwrap_or_default();
    let raw_msg = text(err.and_then(|e| e.get("message"))).unwrap_or_else(|| body.to_string());
    let message = redact_all(&raw_msg, &cfg.secrets());
    let lower = message.to_lowercase();
    if matches!(status, 401 | 403) {
        let how = if cfg.api_key.is_some() {
            cfg.key_var.as_deref().unwrap_or("AZURE_OPENAI_API_KEY")
        } else {
            "AZURE_OPENAI_AD_TOKEN"
        };
        return (
            AiError::Unauthorized {
                provider: "azure-openai".into(),
                status,
                message: format!("{message}; check {how} and the endpoint {}", cfg.base_url),
            },
            false,
        );
    }
    if code == "content_filter" || inner == "ResponsibleAIPolicyViolation" {
        return (
            AiError::Refusal {
                message: format!("Azure OpenAI content filter: {message}"),
            },
            false,
        );
    }
    if code == "DeploymentNotFound" {
        return (
            AiError::UnknownModel {
                model: cfg.model.clone(),
                message: format!("{message} (ai.model is the Azure deployment name)"),
            },
            false,
        );
    }
    if code == "context_length_exceeded" || lower.contains("maximum context length") {
        return (AiError::ContextLength { message }, false);
    }
    if status == 429 {
        // An exhausted quota does not come back by waiting.
        let retry = code != "insufficient_quota";
        return AiError::throttled(message, retry);
    }
    if status >= 500 {
        return AiError::server_side(status, message);
    }
    let message = if status == 404 {
        format!(
            "{message} (check the endpoint {}, the deployment `{}` in ai.model and api-version {} in ai.apiVersion)",
            cfg.base_url, cfg.model, cfg.api_version
        )
    } else {
        message
    };
    (AiError::Rejected { status, message }, false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::{ApiKey, ProviderKind};
    use serde_json::json;

    fn cfg(base: &str) -> ProviderConfig {
        let mut c = ProviderConfig::new(ProviderKind::AzureOpenAi, base, "gpt-4o-prod");
        c.api_key = Some(ApiKey::new("azure-secret-key-123"));
        c
    }

    #[test]
    fn deployment_urls() {
        let u = deployment_url(&cfg("https://res.openai.azure.com/")).unwrap();
        assert_eq!(
            u,
            "https://res.openai.azure.com/openai/deployments/gpt-4o-prod/chat/completions?api-version=2024-10-21"
        );
        let mut c = cfg("https://res.openai.azure.com/openai");
        c.api_version = "2025-01-01-preview".into();
        c.model = "my deployment".into();
        assert_eq!(
            deployment_url(&c).unwrap(),
            "https://res.openai.azure.com/openai/deployments/my%20deployment/chat/completions?api-version=2025-01-01-preview"
        );
        assert!(matches!(
            deployment_url(&cfg("res.openai.azure.com")),
            Err(AiError::MissingSetting { .. })
        ));
    }

    #[test]
    fn classify_azure_errors() {
        let c = cfg("https://res.openai.azure.com");
        let e = |status, v: Value| classify_value(&c, status, Some(&v), &v.to_string());
        let (err, retry) = e(
            401,
            json!({"error": {"code": "401", "message": "Access denied due to invalid subscription key or wrong API endpoint. azure-secret-key-123"}}),
        );
        assert!(
            !retry
                && matches!(&err, AiError::Unauthorized { message, .. } if message.contains("AZURE_OPENAI_API_KEY"))
        );
        assert!(!err.to_string().contains("azure-secret-key-123"));
        let (err, _) = e(
            404,
            json!({"error": {"code": "DeploymentNotFound", "message": "The API deployment for this resource does not exist."}}),
        );
        assert!(matches!(err, AiError::UnknownModel { .. }));
        let (err, _) = e(
            400,
            json!({"error": {"code": "content_filter", "message": "The response was filtered", "innererror": {"code": "ResponsibleAIPolicyViolation"}}}),
        );
        assert!(matches!(err, AiError::Refusal { .. }));
        let (err, retry) = e(
            429,
            json!({"error": {"code": "429", "message": "Requests have exceeded token rate limit"}}),
        );
        assert!(retry && matches!(err, AiError::RateLimited { .. }));
        let (err, _) = e(
            404,
            json!({"error": {"code": "404", "message": "Resource not found"}}),
        );
        assert!(
            matches!(&err, AiError::Rejected { message, .. } if message.contains("2024-10-21"))
        );
    }
}
