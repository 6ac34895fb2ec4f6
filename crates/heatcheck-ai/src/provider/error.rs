//! Typed provider errors. No variant ever carries the API key: server messages
//! are passed through [`redact`] before they are stored.

use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum AiError {
    #[error("no API key: set the environment variable {var}")]
    MissingKey { var: String },
    /// A provider setting with no default (Azure endpoint, AWS region, AWS credentials).
    #[error("no {what}: {hint}")]
    MissingSetting { what: String, hint: String },
    #[error("{provider} refused the credentials (HTTP {status}): {message}")]
    Unauthorized {
        provider: String,
        status: u16,
        message: String,
    },
    #[error("unknown model `{model}`: {message}")]
    UnknownModel { model: String, message: String },
    #[error("the prompt is longer than the model's context: {message}")]
    ContextLength { message: String },
    #[error("the model refused to answer: {message}")]
    Refusal { message: String },
    #[error("the model returned an empty answer")]
    Empty,
    #[error("the answer was cut off ({reason}); raise ai.maxTokens or ask for fewer scenarios")]
    /// `usage`: what the cut-off answer cost (it is still billed and counted).
    Truncated {
        reason: String,
        usage: super::wire::Usage,
    },
    #[error("the answer is not a JSON object: {message}")]
    Malformed { message: String },
    /// The model answered in text that is not the JSON object asked for;
    /// `raw` is that text, so the caller can salvage or send it back.
    #[error("the answer is not a JSON object: {message}")]
    NotJson {
        message: String,
        raw: String,
        usage: super::wire::Usage,
    },
    #[error("the response is larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("rate limited after {attempts} attempt(s): {message}")]
    RateLimited { attempts: u32, message: String },
    #[error("server error (HTTP {status}) after {attempts} attempt(s): {message}")]
    Server {
        status: u16,
        message: String,
        attempts: u32,
    },
    /// Any other refusal of the request itself (400 with a bad schema, 404 on a
    /// wrong base URL, ...): retrying cannot help and the endpoint was reached.
    #[error("the request was rejected (HTTP {status}): {message}")]
    Rejected { status: u16, message: String },
    #[error("cannot reach {url} after {attempts} attempt(s): {message}")]
    Connect {
        url: String,
        message: String,
        attempts: u32,
    },
    #[error("no answer within {after:?}")]
    Timeout { after: Duration },
}

impl AiError {
    /// A 429 (or the provider's own "slow down") on one attempt, as every
    /// classifier reports it: the transport counts attempts and retries.
    pub(crate) fn throttled(message: String, retry: bool) -> (AiError, bool) {
        (
            AiError::RateLimited {
                attempts: 1,
                message,
            },
            retry,
        )
    }

    /// A server-side failure on one attempt, retried when its status is one
    /// the transport retries.
    pub(crate) fn server_side(status: u16, message: String) -> (AiError, bool) {
        (
            AiError::Server {
                status,
                message,
                attempts: 1,
            },
            retryable_status(status),
        )
    }

    /// The LLM could not be reached or would not serve us now: exit code 3.
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            AiError::Connect { .. }
                | AiError::Timeout { .. }
                | AiError::Server { .. }
                | AiError::RateLimited { .. }
        )
    }

    /// Attaches the tokens a readable-but-wrong answer cost.
    pub(crate) fn with_usage(mut self, u: super::wire::Usage) -> Self {
        if let AiError::NotJson { usage, .. } = &mut self {
            *usage = u;
        }
        self
    }

    /// Records how many attempts were made, for the variants that say so.
    pub(crate) fn with_attempts(mut self, n: u32) -> Self {
        match &mut self {
            AiError::RateLimited { attempts, .. }
            | AiError::Server { attempts, .. }
            | AiError::Connect { attempts, .. } => *attempts = n,
            _ => {}
        }
        self
    }
}

/// Longest server message kept in an error.
/// Statuses worth another attempt (529: Anthropic "overloaded").
pub(crate) fn retryable_status(status: u16) -> bool {
    matches!(status, 429 | 500 | 502 | 503 | 504 | 529)
}

const MAX_MESSAGE: usize = 500;

/// Removes the key (and anything shaped like a provider key) from a server
/// message and bounds its length. OpenAI echoes a masked key in its 401 text.
pub(crate) fn redact(message: &str, key: Option<&str>) -> String {
    let mut out = message.to_string();
    if let Some(key) = key.filter(|k| k.len() >= 4) {
        out = out.replace(key, "***");
    }
    let re = key_pattern();
    let out = re.replace_all(&out, "***").into_owned();
    truncate(out.trim(), MAX_MESSAGE)
}

/// [`redact`] for every secret of a configuration (API key, Entra ID token,
/// AWS secret key and session token).
pub(crate) fn redact_all(message: &str, secrets: &[&str]) -> String {
    let mut out = message.to_string();
    for s in secrets.iter().filter(|s| s.len() >= 4) {
        out = out.replace(*s, "***");
    }
    redact(&out, None)
}

fn key_pattern() -> &'static regex::Regex {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    RE.get_or_init(|| {
        regex::Regex::new(r"\b(sk-[A-Za-z0-9_\-*.]{3,}|sk_[A-Za-z0-9_\-*.]{3,})")
            .expect("valid regex")
    })
}

pub(crate) fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_statuses() {
        for s in [429, 500, 502, 503, 504, 529] {
            assert!(retryable_status(s));
        }
        for s in [400, 401, 403, 404, 413, 422] {
            assert!(!retryable_status(s));
        }
    }

    #[test]
    fn redact_removes_full_and_masked_keys() {
        let msg = "Incorrect API key provided: sk-proj-abc***************xyz. You can find your key at https://platform.openai.com.";
        let r = redact(msg, Some("sk-proj-abcdefxyz"));
        assert!(!r.contains("sk-proj"), "{r}");
        assert!(r.contains("Incorrect API key provided: ***"));
        let r = redact("bad key secret-123456 here", Some("secret-123456"));
        assert_eq!(r, "bad key *** here");
    }

    #[test]
    fn truncate_respects_char_boundaries() {
        let s = "é".repeat(400);
        let t = truncate(&s, 501);
        assert!(t.ends_with('…'));
        assert!(t.len() <= 504);
    }

    #[test]
    fn unreachable_classes() {
        assert!(AiError::Timeout {
            after: Duration::from_secs(1)
        }
        .is_unreachable());
        assert!(AiError::RateLimited {
            attempts: 1,
            message: String::new()
        }
        .is_unreachable());
        assert!(!AiError::Empty.is_unreachable());
        assert!(!AiError::Unauthorized {
            provider: "openai".into(),
            status: 401,
            message: String::new()
        }
        .is_unreachable());
        let e = AiError::Server {
            status: 500,
            message: String::new(),
            attempts: 1,
        }
        .with_attempts(4);
        assert!(matches!(e, AiError::Server { attempts: 4, .. }));
    }
}
