//! Provider configuration from the suite's `ai` block and the environment.

use std::fmt;
use std::time::Duration;

use super::error::AiError;
use heatcheck_format::{AiConfig, AiProvider};

/// Which wire format to speak.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProviderKind {
    /// Anthropic Messages API.
    Anthropic,
    /// OpenAI Chat Completions, or any compatible server (llama.cpp, vLLM, Ollama's /v1).
    OpenAi,
    /// Ollama's native /api/chat.
    Ollama,
    /// Azure OpenAI: Chat Completions on a deployment URL with `api-version`.
    AzureOpenAi,
    /// Google Gemini API `generateContent`.
    Gemini,
    /// Amazon Bedrock Converse API, SigV4-signed.
    Bedrock,
}

/// Azure OpenAI `api-version` when neither the suite nor the environment sets
/// one: the GA version that has structured outputs (`json_schema`) and
/// `stream_options`.
pub(crate) const DEFAULT_AZURE_API_VERSION: &str = "2024-10-21";

impl ProviderKind {
    pub fn name(self) -> &'static str {
        match self {
            ProviderKind::Anthropic => "anthropic",
            ProviderKind::OpenAi => "openai",
            ProviderKind::Ollama => "ollama",
            ProviderKind::AzureOpenAi => "azure-openai",
            ProviderKind::Gemini => "gemini",
            ProviderKind::Bedrock => "bedrock",
        }
    }

    /// The variables a key is read from, first set wins. Bedrock's SigV4
    /// credentials are read separately (see [`AwsCredentials`]).
    fn default_key_vars(self) -> &'static [&'static str] {
        match self {
            ProviderKind::Anthropic => &["ANTHROPIC_API_KEY"],
            ProviderKind::OpenAi => &["OPENAI_API_KEY"],
            ProviderKind::Ollama => &[],
            ProviderKind::AzureOpenAi => &["AZURE_OPENAI_API_KEY"],
            ProviderKind::Gemini => &["GEMINI_API_KEY", "GOOGLE_API_KEY"],
            ProviderKind::Bedrock => &["AWS_BEARER_TOKEN_BEDROCK"],
        }
    }

    fn default_key_var(self) -> Option<&'static str> {
        self.default_key_vars().first().copied()
    }

    fn base_url_vars(self) -> &'static [&'static str] {
        match self {
            ProviderKind::Anthropic => &["ANTHROPIC_BASE_URL"],
            ProviderKind::OpenAi => &["OPENAI_BASE_URL"],
            ProviderKind::Ollama => &["OLLAMA_HOST"],
            ProviderKind::AzureOpenAi => &["AZURE_OPENAI_ENDPOINT"],
            ProviderKind::Gemini => &["GEMINI_BASE_URL"],
            // The AWS SDKs' service-specific, then global, endpoint override.
            ProviderKind::Bedrock => &["AWS_ENDPOINT_URL_BEDROCK_RUNTIME", "AWS_ENDPOINT_URL"],
        }
    }

    /// None where the URL depends on the account (Azure resource) or region.
    fn default_base_url(self) -> Option<&'static str> {
        match self {
            ProviderKind::Anthropic => Some("https://api.anthropic.com"),
            ProviderKind::OpenAi => Some("https://api.openai.com/v1"),
            ProviderKind::Ollama => Some("http://127.0.0.1:11434"),
            ProviderKind::Gemini => Some("https://generativelanguage.googleapis.com"),
            ProviderKind::AzureOpenAi | ProviderKind::Bedrock => None,
        }
    }
}

impl From<AiProvider> for ProviderKind {
    fn from(p: AiProvider) -> Self {
        match p {
            AiProvider::Anthropic => ProviderKind::Anthropic,
            AiProvider::Openai => ProviderKind::OpenAi,
            AiProvider::Ollama => ProviderKind::Ollama,
            AiProvider::AzureOpenai => ProviderKind::AzureOpenAi,
            AiProvider::Gemini => ProviderKind::Gemini,
            AiProvider::Bedrock => ProviderKind::Bedrock,
        }
    }
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An API key. Debug and Display print `***`; only [`ApiKey::expose`] gives
/// the value, for the request header.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn new(key: impl Into<String>) -> Self {
        ApiKey(key.into())
    }

    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// AWS credentials for SigV4 (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY /
/// AWS_SESSION_TOKEN). The secret and the token print as `***`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AwsCredentials {
    pub access_key_id: String,
    pub secret_access_key: ApiKey,
    pub session_token: Option<ApiKey>,
}

pub(crate) const DEFAULT_MAX_TOKENS: u32 = 4096;
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);
pub(crate) const DEFAULT_MAX_RETRIES: u32 = 3;
pub(crate) const DEFAULT_MAX_RESPONSE_BYTES: usize = 2 * 1024 * 1024;
pub(crate) const DEFAULT_RETRY_BASE: Duration = Duration::from_millis(500);
pub(crate) const DEFAULT_RETRY_CAP: Duration = Duration::from_secs(20);

#[derive(Clone, Debug)]
pub struct ProviderConfig {
    pub kind: ProviderKind,
    /// Without a trailing slash. Anthropic: host root; OpenAI: includes `/v1`; Ollama: host root.
    pub base_url: String,
    pub api_key: Option<ApiKey>,
    /// Name of the variable the key came from, for error hints.
    pub key_var: Option<String>,
    pub model: String,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    /// Anthropic and Ollama only; the OpenAI API has no top_k.
    pub top_k: Option<u32>,
    pub max_tokens: u32,
    /// Per attempt, for the whole exchange (streams included).
    pub timeout: Duration,
    pub max_retries: u32,
    /// Whether a timed-out attempt is retried here; generation turns this
    /// off and counts each timed-out attempt against `ai.maxRepairs`.
    pub retry_timeouts: bool,
    /// Counts streamed events (about one token each) for a progress display.
    pub streamed: Option<std::sync::Arc<std::sync::atomic::AtomicU64>>,
    pub max_response_bytes: usize,
    /// Ask for a server-sent stream and assemble it.
    pub stream: bool,
    /// Exponential backoff with full jitter: sleep U(0, min(cap, base * 2^n)).
    pub retry_base: Duration,
    pub retry_cap: Duration,
    /// Azure OpenAI: the `api-version` query parameter.
    pub api_version: String,
    /// Azure OpenAI: a Microsoft Entra ID token, sent as `Authorization:
    /// Bearer` when there is no API key.
    pub bearer_token: Option<ApiKey>,
    /// Amazon Bedrock: the region signed for (and in the default endpoint).
    pub region: Option<String>,
    /// Amazon Bedrock: SigV4 credentials (unused when `api_key` holds a
    /// Bedrock API key, which is sent as a bearer token).
    pub aws: Option<AwsCredentials>,
}

impl ProviderConfig {
    /// A configuration with the defaults, no key.
    pub fn new(kind: ProviderKind, base_url: impl Into<String>, model: impl Into<String>) -> Self {
        ProviderConfig {
            kind,
            base_url: normalize_base_url(kind, &base_url.into()),
            api_key: None,
            key_var: kind.default_key_var().map(str::to_string),
            model: model.into(),
            temperature: None,
            top_p: None,
            top_k: None,
            max_tokens: DEFAULT_MAX_TOKENS,
            timeout: DEFAULT_TIMEOUT,
            max_retries: DEFAULT_MAX_RETRIES,
            retry_timeouts: true,
            streamed: None,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            stream: false,
            retry_base: DEFAULT_RETRY_BASE,
            retry_cap: DEFAULT_RETRY_CAP,
            api_version: DEFAULT_AZURE_API_VERSION.to_string(),
            bearer_token: None,
            region: None,
            aws: None,
        }
    }

    /// Every secret this configuration holds, for scrubbing server messages.
    pub(crate) fn secrets(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        out.extend(self.api_key.as_ref().map(ApiKey::expose));
        out.extend(self.bearer_token.as_ref().map(ApiKey::expose));
        if let Some(aws) = &self.aws {
            out.push(aws.secret_access_key.expose());
            out.extend(aws.session_token.as_ref().map(ApiKey::expose));
        }
        out
    }

    /// From the suite's `ai` block + the environment: ANTHROPIC_API_KEY /
    /// ANTHROPIC_BASE_URL, OPENAI_API_KEY / OPENAI_BASE_URL, OLLAMA_HOST,
    /// AZURE_OPENAI_API_KEY (or AZURE_OPENAI_AD_TOKEN) / AZURE_OPENAI_ENDPOINT /
    /// AZURE_OPENAI_API_VERSION, GEMINI_API_KEY (or GOOGLE_API_KEY) /
    /// GEMINI_BASE_URL, and for Bedrock AWS_REGION (or AWS_DEFAULT_REGION),
    /// AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN (or a
    /// Bedrock API key in AWS_BEARER_TOKEN_BEDROCK) and
    /// AWS_ENDPOINT_URL_BEDROCK_RUNTIME. The suite's `baseUrl` / `apiKeyEnv` /
    /// `apiVersion` / `region` override. A missing (or empty) key is
    /// [`AiError::MissingKey`] naming the variable. Ollama needs no key, but
    /// one is sent (Bearer) when `apiKeyEnv` names a set variable.
    pub(crate) fn from_suite(
        ai: &AiConfig,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, AiError> {
        let kind = ProviderKind::from(ai.provider);
        let set = |k: &str| {
            env(k)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let first_set = |vars: &[&str]| vars.iter().find_map(|v| set(v));
        let region = ai
            .region
            .clone()
            .or_else(|| first_set(&["AWS_REGION", "AWS_DEFAULT_REGION"]));
        let base = ai
            .base_url
            .clone()
            .or_else(|| first_set(kind.base_url_vars()))
            .or_else(|| kind.default_base_url().map(str::to_string));
        let base = match (kind, base) {
            (_, Some(b)) => b,
            (ProviderKind::AzureOpenAi, None) => return Err(AiError::MissingSetting {
                what: "Azure OpenAI endpoint".into(),
                hint:
                    "set ai.baseUrl or AZURE_OPENAI_ENDPOINT to https://RESOURCE.openai.azure.com"
                        .into(),
            }),
            (_, None) => match &region {
                Some(r) => format!("https://bedrock-runtime.{r}.amazonaws.com"),
                None => return Err(missing_region()),
            },
        };
        let mut cfg = ProviderConfig::new(kind, base, ai.model.clone());
        let var = ai.api_key_env.clone().or_else(|| {
            let vars = kind.default_key_vars();
            vars.iter()
                .find(|v| set(v).is_some())
                .or(vars.first())
                .map(|v| v.to_string())
        });
        let key = var.as_deref().and_then(set);
        cfg.key_var = var.clone();
        match kind {
            ProviderKind::AzureOpenAi if key.is_none() => {
                // Microsoft Entra ID instead of a resource key.
                match set("AZURE_OPENAI_AD_TOKEN") {
                    Some(t) => cfg.bearer_token = Some(ApiKey(t)),
                    None => {
                        return Err(AiError::MissingKey {
                            var: format!("{} (or AZURE_OPENAI_AD_TOKEN)", var.unwrap_or_default()),
                        })
                    }
                }
            }
            ProviderKind::Bedrock => {
                cfg.region = Some(region.ok_or_else(missing_region)?);
                // A Bedrock API key takes precedence, as in the AWS SDKs.
                if key.is_none() {
                    let (Some(id), Some(secret)) =
                        (set("AWS_ACCESS_KEY_ID"), set("AWS_SECRET_ACCESS_KEY"))
                    else {
                        return Err(AiError::MissingKey {
                            var: "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_BEARER_TOKEN_BEDROCK)".into(),
                        });
                    };
                    cfg.aws = Some(AwsCredentials {
                        access_key_id: id,
                        secret_access_key: ApiKey(secret),
                        session_token: set("AWS_SESSION_TOKEN").map(ApiKey),
                    });
                    cfg.key_var = Some("AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY".into());
                }
            }
            ProviderKind::Ollama => {}
            _ if key.is_none() => {
                let var = match kind.default_key_vars() {
                    [a, b] if ai.api_key_env.is_none() => format!("{a} (or {b})"),
                    _ => var.unwrap_or_default(),
                };
                return Err(AiError::MissingKey { var });
            }
            _ => {}
        }
        cfg.api_key = key.map(ApiKey);
        if let Some(v) = ai
            .api_version
            .clone()
            .or_else(|| first_set(&["AZURE_OPENAI_API_VERSION", "OPENAI_API_VERSION"]))
        {
            cfg.api_version = v;
        }
        cfg.temperature = ai.temperature;
        cfg.top_p = ai.top_p;
        cfg.top_k = ai.top_k;
        cfg.max_tokens = ai.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS);
        if let Some(t) = ai.timeout {
            cfg.timeout = t.as_std();
        }
        Ok(cfg)
    }
}

fn missing_region() -> AiError {
    AiError::MissingSetting {
        what: "AWS region for Bedrock".into(),
        hint: "set ai.region, AWS_REGION or AWS_DEFAULT_REGION".into(),
    }
}

/// Trims trailing slashes; gives OLLAMA_HOST-style `host:port` an http scheme.
fn normalize_base_url(kind: ProviderKind, raw: &str) -> String {
    let trimmed = raw.trim().trim_end_matches('/');
    if kind == ProviderKind::Ollama && !trimmed.contains("://") {
        let host = trimmed
            .strip_prefix("0.0.0.0")
            .map_or(trimmed.to_string(), |rest| {
                // 0.0.0.0 is a listen address; connect to loopback instead.
                format!("127.0.0.1{rest}")
            });
        return format!("http://{host}");
    }
    trimmed.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::HashMap;

    fn ai(v: serde_json::Value) -> AiConfig {
        let mut base = json!({"model": "m", "prompt": "p"});
        base.as_object_mut()
            .unwrap()
            .extend(v.as_object().unwrap().clone());
        serde_json::from_value(base).unwrap()
    }

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn anthropic_defaults_and_missing_key() {
        let a = ai(json!({"provider": "anthropic"}));
        let err = ProviderConfig::from_suite(&a, &env(&[])).unwrap_err();
        assert!(matches!(&err, AiError::MissingKey { var } if var == "ANTHROPIC_API_KEY"));
        assert!(err.to_string().contains("ANTHROPIC_API_KEY"));
        let err = ProviderConfig::from_suite(&a, &env(&[("ANTHROPIC_API_KEY", "  ")])).unwrap_err();
        assert!(matches!(err, AiError::MissingKey { .. }));
        let c = ProviderConfig::from_suite(&a, &env(&[("ANTHROPIC_API_KEY", "k-1")])).unwrap();
        assert_eq!(c.base_url, "https://api.anthropic.com");
        assert_eq!(c.api_key.as_ref().unwrap().expose(), "k-1");
        assert_eq!(c.max_tokens, DEFAULT_MAX_TOKENS);
        assert!(!c.stream);
        assert_eq!(c.max_retries, 3);
        assert_eq!(c.max_response_bytes, 2 * 1024 * 1024);
    }

    #[test]
    fn overrides_from_env_and_suite() {
        let a = ai(json!({"provider": "openai", "maxTokens": 100, "temperature": 0.2, "topK": 5}));
        let c = ProviderConfig::from_suite(
            &a,
            &env(&[
                ("OPENAI_API_KEY", "sk"),
                ("OPENAI_BASE_URL", "http://h:8080/v1/"),
            ]),
        )
        .unwrap();
        assert_eq!(c.base_url, "http://h:8080/v1");
        assert_eq!(
            (c.max_tokens, c.temperature, c.top_k),
            (100, Some(0.2), Some(5))
        );
        let a = ai(json!({"provider": "openai", "baseUrl": "http://x/v1", "apiKeyEnv": "MY_KEY"}));
        let err = ProviderConfig::from_suite(&a, &env(&[("OPENAI_API_KEY", "sk")])).unwrap_err();
        assert!(matches!(err, AiError::MissingKey { var } if var == "MY_KEY"));
        let c = ProviderConfig::from_suite(
            &a,
            &env(&[("MY_KEY", "v"), ("OPENAI_BASE_URL", "http://y")]),
        )
        .unwrap();
        assert_eq!(c.base_url, "http://x/v1");
        assert_eq!(c.key_var.as_deref(), Some("MY_KEY"));
    }

    #[test]
    fn ollama_needs_no_key_and_accepts_bare_host() {
        let a = ai(json!({"provider": "ollama"}));
        let c = ProviderConfig::from_suite(&a, &env(&[])).unwrap();
        assert_eq!(c.base_url, "http://127.0.0.1:11434");
        assert!(c.api_key.is_none());
        let c = ProviderConfig::from_suite(&a, &env(&[("OLLAMA_HOST", "0.0.0.0:9999")])).unwrap();
        assert_eq!(c.base_url, "http://127.0.0.1:9999");
        let c =
            ProviderConfig::from_suite(&a, &env(&[("OLLAMA_HOST", "https://o.example/")])).unwrap();
        assert_eq!(c.base_url, "https://o.example");
    }

    #[test]
    fn azure_endpoint_key_token_and_api_version() {
        let a = ai(json!({"provider": "azure-openai", "model": "gpt-4o-prod"}));
        let err =
            ProviderConfig::from_suite(&a, &env(&[("AZURE_OPENAI_API_KEY", "k")])).unwrap_err();
        assert!(
            matches!(&err, AiError::MissingSetting { hint, .. } if hint.contains("AZURE_OPENAI_ENDPOINT"))
        );
        let endpoint = ("AZURE_OPENAI_ENDPOINT", "https://res.openai.azure.com/");
        let c = ProviderConfig::from_suite(&a, &env(&[endpoint, ("AZURE_OPENAI_API_KEY", "k")]))
            .unwrap();
        assert_eq!(c.base_url, "https://res.openai.azure.com");
        assert_eq!(c.api_version, DEFAULT_AZURE_API_VERSION);
        assert_eq!(c.api_key.as_ref().unwrap().expose(), "k");
        let c = ProviderConfig::from_suite(
            &a,
            &env(&[
                endpoint,
                ("AZURE_OPENAI_AD_TOKEN", "eyJ"),
                ("AZURE_OPENAI_API_VERSION", "2025-01-01-preview"),
            ]),
        )
        .unwrap();
        assert!(c.api_key.is_none());
        assert_eq!(c.bearer_token.as_ref().unwrap().expose(), "eyJ");
        assert_eq!(c.api_version, "2025-01-01-preview");
        let err = ProviderConfig::from_suite(&a, &env(&[endpoint])).unwrap_err();
        assert!(
            err.to_string()
                .contains("AZURE_OPENAI_API_KEY (or AZURE_OPENAI_AD_TOKEN)"),
            "{err}"
        );
        let a = ai(
            json!({"provider": "azure-openai", "baseUrl": "https://x.openai.azure.com", "apiVersion": "2024-06-01"}),
        );
        let c = ProviderConfig::from_suite(
            &a,
            &env(&[
                endpoint,
                ("AZURE_OPENAI_API_KEY", "k"),
                ("AZURE_OPENAI_API_VERSION", "v"),
            ]),
        )
        .unwrap();
        assert_eq!(
            (c.base_url.as_str(), c.api_version.as_str()),
            ("https://x.openai.azure.com", "2024-06-01")
        );
    }

    #[test]
    fn gemini_key_from_either_variable() {
        let a = ai(json!({"provider": "gemini"}));
        let c = ProviderConfig::from_suite(&a, &env(&[("GOOGLE_API_KEY", "g")])).unwrap();
        assert_eq!(c.base_url, "https://generativelanguage.googleapis.com");
        assert_eq!(
            (c.api_key.as_ref().unwrap().expose(), c.key_var.as_deref()),
            ("g", Some("GOOGLE_API_KEY"))
        );
        let c = ProviderConfig::from_suite(
            &a,
            &env(&[("GOOGLE_API_KEY", "g"), ("GEMINI_API_KEY", "m")]),
        )
        .unwrap();
        assert_eq!(c.api_key.as_ref().unwrap().expose(), "m");
        let err = ProviderConfig::from_suite(&a, &env(&[])).unwrap_err();
        assert!(
            err.to_string()
                .contains("GEMINI_API_KEY (or GOOGLE_API_KEY)"),
            "{err}"
        );
    }

    #[test]
    fn bedrock_region_credentials_and_endpoint() {
        let a = ai(json!({"provider": "bedrock", "model": "amazon.nova-pro-v1:0"}));
        let creds = [
            ("AWS_ACCESS_KEY_ID", "AKID"),
            ("AWS_SECRET_ACCESS_KEY", "s3cr3t-value"),
        ];
        let err = ProviderConfig::from_suite(&a, &env(&creds)).unwrap_err();
        assert!(matches!(err, AiError::MissingSetting { .. }));
        let mut vars = creds.to_vec();
        vars.push(("AWS_DEFAULT_REGION", "eu-central-1"));
        let c = ProviderConfig::from_suite(&a, &env(&vars)).unwrap();
        assert_eq!(
            c.base_url,
            "https://bedrock-runtime.eu-central-1.amazonaws.com"
        );
        assert_eq!(c.region.as_deref(), Some("eu-central-1"));
        let aws = c.aws.as_ref().unwrap();
        assert_eq!(
            (aws.access_key_id.as_str(), aws.secret_access_key.expose()),
            ("AKID", "s3cr3t-value")
        );
        assert!(aws.session_token.is_none() && c.api_key.is_none());
        assert!(!format!("{c:?}").contains("s3cr3t"));
        vars.extend([
            ("AWS_REGION", "us-west-2"),
            ("AWS_SESSION_TOKEN", "tok"),
            ("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", "https://vpce.example"),
        ]);
        let c = ProviderConfig::from_suite(&a, &env(&vars)).unwrap();
        assert_eq!(
            (c.base_url.as_str(), c.region.as_deref()),
            ("https://vpce.example", Some("us-west-2"))
        );
        assert_eq!(
            c.aws
                .as_ref()
                .unwrap()
                .session_token
                .as_ref()
                .unwrap()
                .expose(),
            "tok"
        );
        assert_eq!(c.secrets(), vec!["s3cr3t-value", "tok"]);
        // A Bedrock API key wins over SigV4 credentials, as in the AWS SDKs.
        vars.push(("AWS_BEARER_TOKEN_BEDROCK", "bedrock-api-key"));
        let c = ProviderConfig::from_suite(&a, &env(&vars)).unwrap();
        assert!(c.aws.is_none());
        assert_eq!(c.api_key.as_ref().unwrap().expose(), "bedrock-api-key");
        let err = ProviderConfig::from_suite(&a, &env(&[("AWS_REGION", "us-east-1")])).unwrap_err();
        assert!(
            matches!(err, AiError::MissingKey { var } if var.contains("AWS_SECRET_ACCESS_KEY"))
        );
    }

    #[test]
    fn key_is_never_printed() {
        let mut c = ProviderConfig::new(ProviderKind::OpenAi, "http://x", "m");
        c.api_key = Some(ApiKey::new("sk-very-secret"));
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("very-secret"), "{dbg}");
        assert_eq!(c.api_key.as_ref().unwrap().to_string(), "***");
    }
}
