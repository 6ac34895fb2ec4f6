//! One POST with retries: backoff with full jitter, `retry-after` /
//! `retry-after-ms`, a bounded body, and typed failures. Providers supply the
//! request body, the error classifier and the answer parser.

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use rand::Rng;
use reqwest::header::HeaderMap;

use super::config::ProviderConfig;
use super::error::AiError;

/// A retry-after longer than this is ignored in favour of our own backoff
/// (the official SDKs do the same with 60 s).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// Why one attempt failed, and whether another may help.
#[derive(Debug)]
pub(crate) enum Failure {
    Retry {
        error: AiError,
        after: Option<Duration>,
    },
    Fatal(AiError),
}

impl From<AiError> for Failure {
    fn from(e: AiError) -> Self {
        Failure::Fatal(e)
    }
}

/// Runs `attempt` until it succeeds, fails fatally, or `max_retries` retries
/// are spent. Returns the value and the number of attempts made.
pub(crate) async fn with_retries<T, F, Fut>(
    cfg: &ProviderConfig,
    mut attempt: F,
) -> Result<(T, u32), AiError>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T, Failure>>,
{
    let mut n = 0;
    loop {
        n += 1;
        match attempt(n).await {
            Ok(v) => return Ok((v, n)),
            Err(Failure::Fatal(e)) => return Err(e.with_attempts(n)),
            Err(Failure::Retry { error, after }) => {
                // The caller counts (and shows) timed-out attempts itself.
                let timeout_is_final =
                    !cfg.retry_timeouts && matches!(error, AiError::Timeout { .. });
                if n > cfg.max_retries || timeout_is_final {
                    return Err(error.with_attempts(n));
                }
                let wait = after
                    .filter(|d| *d <= MAX_RETRY_AFTER)
                    .unwrap_or_else(|| backoff(cfg.retry_base, cfg.retry_cap, n));
                tracing::debug!(provider = %cfg.kind, attempt = n, wait_ms = wait.as_millis() as u64, error = %error, "llm request failed, retrying");
                tokio::time::sleep(wait).await;
            }
        }
    }
}

/// Full jitter: uniform in [0, min(cap, base * 2^(attempt-1))].
pub(crate) fn backoff(base: Duration, cap: Duration, attempt: u32) -> Duration {
    let exp = base.saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1).min(30)));
    let ceiling = exp.min(cap);
    if ceiling.is_zero() {
        return ceiling;
    }
    let nanos = rand::rng().random_range(0..=ceiling.as_nanos().min(u64::MAX as u128) as u64);
    Duration::from_nanos(nanos)
}

/// `retry-after-ms` (milliseconds), else `retry-after` (seconds or an HTTP date).
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(ms) = get("retry-after-ms").and_then(|v| v.parse::<f64>().ok()) {
        if ms.is_finite() && ms >= 0.0 {
            return Some(Duration::from_secs_f64(ms / 1000.0));
        }
    }
    let v = get("retry-after")?;
    if let Ok(secs) = v.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs));
    }
    // HTTP-date (IMF-fixdate) is RFC 2822 with the "GMT" zone.
    let when = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let delta = when.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(delta.to_std().unwrap_or(Duration::ZERO))
}

/// The URL without credentials or query, for error messages.
pub(crate) fn display_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.set_query(None);
            u.to_string()
        }
        Err(_) => url.to_string(),
    }
}

fn describe(e: &reqwest::Error) -> String {
    use std::error::Error;
    let mut msg = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    msg
}

/// A failed send or body read as a retryable failure.
pub(crate) fn transport_failure(cfg: &ProviderConfig, url: &str, e: &reqwest::Error) -> Failure {
    let error = if e.is_timeout() {
        AiError::Timeout { after: cfg.timeout }
    } else {
        AiError::Connect {
            url: display_url(url),
            message: super::error::redact(&describe(e), cfg.api_key.as_ref().map(|k| k.expose())),
            attempts: 1,
        }
    };
    Failure::Retry { error, after: None }
}

/// Maps a non-2xx answer to an error. `classify` gives the provider-specific
/// error and whether another attempt may help.
pub(crate) struct ErrorReply<'a> {
    pub status: u16,
    pub body: &'a str,
}

/// POSTs `body` (JSON) to `url` with the given headers. On a non-2xx status
/// the (bounded) error body goes through `classify`.
pub(crate) async fn post(
    client: &reqwest::Client,
    cfg: &ProviderConfig,
    url: &str,
    headers: &[(&str, String)],
    body: &serde_json::Value,
    classify: impl Fn(&ErrorReply<'_>) -> (AiError, bool),
) -> Result<BodyReader, Failure> {
    let bytes = serde_json::to_vec(body).expect("a JSON value serializes");
    post_bytes(client, cfg, url, headers, bytes, |r, _| classify(r)).await
}

/// [`post`] with the body already serialized (a signed request must send
/// exactly the bytes it signed) and a classifier that sees the response
/// headers (Bedrock names its error type in `x-amzn-ErrorType`).
pub(crate) async fn post_bytes(
    client: &reqwest::Client,
    cfg: &ProviderConfig,
    url: &str,
    headers: &[(&str, String)],
    body: Vec<u8>,
    classify: impl Fn(&ErrorReply<'_>, &HeaderMap) -> (AiError, bool),
) -> Result<BodyReader, Failure> {
    let mut req = client
        .post(url)
        .timeout(cfg.timeout)
        .header("content-type", "application/json")
        .body(body);
    for (name, value) in headers {
        req = req.header(*name, value);
    }
    // Headers are never logged: they carry the key.
    tracing::debug!(provider = %cfg.kind, url = %display_url(url), model = %cfg.model, stream = cfg.stream, "llm request");
    let resp = req
        .send()
        .await
        .map_err(|e| transport_failure(cfg, url, &e))?;
    let status = resp.status().as_u16();
    let resp_headers = resp.headers().clone();
    let mut reader = BodyReader::new(resp, cfg, url);
    if (200..300).contains(&status) {
        return Ok(reader);
    }
    let bytes = match reader.read_all().await {
        Ok(b) => b,
        Err(AiError::TooLarge { .. }) => Vec::new(),
        Err(e) => {
            return Err(Failure::Retry {
                error: e,
                after: None,
            })
        }
    };
    let text = String::from_utf8_lossy(&bytes);
    let reply = ErrorReply {
        status,
        body: &text,
    };
    let (error, retry) = classify(&reply, &resp_headers);
    tracing::debug!(provider = %cfg.kind, status, error = %error, "llm error reply");
    if retry {
        Err(Failure::Retry {
            error,
            after: retry_after(&resp_headers),
        })
    } else {
        Err(Failure::Fatal(error))
    }
}

/// Reads a response body chunk by chunk, stopping with `TooLarge` past the limit.
pub(crate) struct BodyReader {
    resp: reqwest::Response,
    read: usize,
    limit: usize,
    timeout: Duration,
    url: String,
}

impl BodyReader {
    fn new(resp: reqwest::Response, cfg: &ProviderConfig, url: &str) -> Self {
        BodyReader {
            resp,
            read: 0,
            limit: cfg.max_response_bytes,
            timeout: cfg.timeout,
            url: display_url(url),
        }
    }

    /// The next chunk; `Connect` or `Timeout` when the body breaks off.
    pub(crate) async fn chunk(&mut self) -> Result<Option<Bytes>, AiError> {
        if let Some(len) = self.resp.content_length() {
            if len as usize > self.limit {
                return Err(AiError::TooLarge { limit: self.limit });
            }
        }
        match self.resp.chunk().await {
            Ok(Some(c)) => {
                self.read += c.len();
                if self.read > self.limit {
                    return Err(AiError::TooLarge { limit: self.limit });
                }
                Ok(Some(c))
            }
            Ok(None) => Ok(None),
            Err(e) if e.is_timeout() => Err(AiError::Timeout {
                after: self.timeout,
            }),
            Err(e) => Err(AiError::Connect {
                url: self.url.clone(),
                message: describe(&e),
                attempts: 1,
            }),
        }
    }

    pub(crate) async fn read_all(&mut self) -> Result<Vec<u8>, AiError> {
        let mut out = Vec::new();
        while let Some(c) = self.chunk().await? {
            out.extend_from_slice(&c);
        }
        Ok(out)
    }

    /// The whole body; a broken body is retryable, an oversized one is not.
    pub(crate) async fn read_all_for_answer(&mut self) -> Result<Vec<u8>, Failure> {
        self.read_all().await.map_err(|e| match e {
            AiError::TooLarge { .. } => Failure::Fatal(e),
            e => Failure::Retry {
                error: e,
                after: None,
            },
        })
    }

    /// A chunk of a stream: an oversized stream is fatal, a timeout retryable,
    /// a stream that breaks off is a truncated answer.
    pub(crate) async fn stream_chunk(&mut self) -> Result<Option<Bytes>, Failure> {
        self.chunk().await.map_err(|e| match e {
            AiError::Timeout { .. } => Failure::Retry {
                error: e,
                after: None,
            },
            AiError::Connect { message, .. } => Failure::Fatal(AiError::Truncated {
                reason: format!("the stream broke off: {message}"),
                usage: super::wire::Usage::default(),
            }),
            e => Failure::Fatal(e),
        })
    }
}

/// Splits a byte stream into lines (`\n` or `\r\n`), across chunk borders.
#[derive(Default)]
pub(crate) struct Lines {
    buf: Vec<u8>,
}

impl Lines {
    pub(crate) fn push(&mut self, chunk: &[u8]) -> Vec<String> {
        self.buf.extend_from_slice(chunk);
        let mut out = Vec::new();
        while let Some(pos) = self.buf.iter().position(|b| *b == b'\n') {
            let mut line: Vec<u8> = self.buf.drain(..=pos).collect();
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            out.push(String::from_utf8_lossy(&line).into_owned());
        }
        out
    }

    /// What is left after the last newline.
    pub(crate) fn rest(&mut self) -> Option<String> {
        let rest = std::mem::take(&mut self.buf);
        let s = String::from_utf8_lossy(&rest).trim().to_string();
        (!s.is_empty()).then_some(s)
    }
}

/// One server-sent event.
#[derive(Debug, PartialEq)]
pub(crate) struct SseEvent {
    pub event: Option<String>,
    pub data: String,
}

/// Server-sent events parser (the subset LLM APIs use: `event:` and `data:`).
#[derive(Default)]
pub(crate) struct Sse {
    lines: Lines,
    event: Option<String>,
    data: Vec<String>,
}

impl Sse {
    pub(crate) fn push(&mut self, chunk: &[u8]) -> Vec<SseEvent> {
        let mut out = Vec::new();
        for line in self.lines.push(chunk) {
            if line.is_empty() {
                if !self.data.is_empty() {
                    out.push(SseEvent {
                        event: self.event.take(),
                        data: std::mem::take(&mut self.data).join("\n"),
                    });
                }
                self.event = None;
                continue;
            }
            if line.starts_with(':') {
                continue;
            }
            let (field, value) = match line.split_once(':') {
                Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
                None => (line.as_str(), ""),
            };
            match field {
                "event" => self.event = Some(value.to_string()),
                "data" => self.data.push(value.to_string()),
                _ => {}
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn backoff_is_bounded_and_grows() {
        let base = Duration::from_millis(500);
        let cap = Duration::from_secs(20);
        for attempt in 1..40 {
            let d = backoff(base, cap, attempt);
            let ceiling = (base * 2u32.pow((attempt - 1).min(10))).min(cap);
            assert!(d <= ceiling, "attempt {attempt}: {d:?} > {ceiling:?}");
        }
        // Full jitter: over many draws at attempt 6 (ceiling 16 s) some exceed 2 s.
        assert!((0..200).any(|_| backoff(base, cap, 6) > Duration::from_secs(2)));
        assert_eq!(backoff(Duration::ZERO, cap, 3), Duration::ZERO);
    }

    #[test]
    fn retry_after_forms() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert("retry-after", HeaderValue::from_static("3"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(3)));
        h.insert("retry-after-ms", HeaderValue::from_static("250"));
        assert_eq!(retry_after(&h), Some(Duration::from_millis(250)));
        let mut h = HeaderMap::new();
        let when = chrono::Utc::now() + chrono::Duration::seconds(30);
        let date = when.format("%a, %d %b %Y %H:%M:%S GMT").to_string();
        h.insert("retry-after", HeaderValue::from_str(&date).unwrap());
        let d = retry_after(&h).unwrap();
        assert!(
            d > Duration::from_secs(25) && d <= Duration::from_secs(30),
            "{d:?}"
        );
        h.insert(
            "retry-after",
            HeaderValue::from_static("Sun, 06 Nov 1994 08:49:37 GMT"),
        );
        assert_eq!(retry_after(&h), Some(Duration::ZERO));
        h.insert("retry-after", HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn sse_across_chunks_and_crlf() {
        let mut sse = Sse::default();
        let mut got = sse.push(b"event: message_start\r\ndata: {\"a\":");
        assert!(got.is_empty());
        got.extend(sse.push(b"1}\r\n\r\n: ping comment\n\ndata: [DONE]\n"));
        got.extend(sse.push(b"\n"));
        assert_eq!(
            got,
            vec![
                SseEvent {
                    event: Some("message_start".into()),
                    data: "{\"a\":1}".into()
                },
                SseEvent {
                    event: None,
                    data: "[DONE]".into()
                }
            ]
        );
        // An event without its blank line is not dispatched (cut stream).
        assert!(sse.push(b"data: {\"partial\":true}\n").is_empty());
    }

    #[test]
    fn lines_keep_utf8_split_across_chunks() {
        let mut l = Lines::default();
        let text = "{\"m\":\"é\"}\n".as_bytes();
        let (a, b) = text.split_at(7);
        assert!(l.push(a).is_empty());
        assert_eq!(l.push(b), vec!["{\"m\":\"é\"}".to_string()]);
        assert_eq!(l.rest(), None);
    }

    #[test]
    fn display_url_drops_credentials() {
        assert_eq!(display_url("http://u:p@h:1/v1?key=x"), "http://h:1/v1");
    }
}
