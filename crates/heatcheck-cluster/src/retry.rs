//! The one retry policy for talking to the API server: transient failures
//! (429, 5xx, connection errors) are retried with exponential backoff and
//! jitter, honouring `Retry-After`.
//!
//! It is a tower layer inside [`super::ClusterClient`]'s kube client, so it
//! covers every request the client makes: get/list/apply/create/replace/
//! delete/patch/scale, discovery (dozens of requests, each retried on its
//! own), waits and assertions. kube's own default retry is switched off, so
//! there is exactly one policy.
//!
//! Non-idempotent create (POST): a 429 or a refused connection means the
//! server did not act, so retrying is safe. After a 5xx or a connection that
//! broke mid-request the create may have happened; it is retried anyway, and
//! if the retry then answers 409 AlreadyExists, the existing object is read
//! back: when it carries the `heatcheck.dev/run-id` label value the request
//! sent, it is our earlier attempt and the create counts as done (the object
//! is returned as if created). Without that label the 409 stands.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use kube::client::{Body, DynBody};
use serde_json::Value;
use tower::{BoxError, Layer, Service, ServiceExt};

use super::RUN_LABEL;

/// How often and how long to retry.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct RetryPolicy {
    /// Attempts in total (1 = no retry) for 429 and 5xx and broken connections.
    pub(crate) max_attempts: u32,
    /// Attempts when the connection was refused (the server is down, not
    /// busy): fewer, so an unreachable cluster is reported quickly.
    pub(crate) max_connect_attempts: u32,
    /// Backoff before the first retry; doubles each time.
    pub(crate) base_delay: Duration,
    /// Backoff cap.
    pub(crate) max_delay: Duration,
    /// A server's Retry-After is honoured up to this long.
    pub(crate) max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 8,
            max_connect_attempts: 4,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(5),
            max_retry_after: Duration::from_secs(30),
        }
    }
}

/// Why an attempt failed, as far as retrying is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Failure {
    /// 429: the server refused before doing anything.
    Throttled,
    /// 5xx (except 501/505): the request may or may not have been acted on.
    Server(u16),
    /// The connection could not be made: nothing was sent.
    NotSent,
    /// The connection broke after the request went out.
    Interrupted,
}

impl Failure {
    /// True when the server may have acted on the request.
    pub(crate) fn ambiguous(self) -> bool {
        matches!(self, Failure::Server(_) | Failure::Interrupted)
    }
}

impl RetryPolicy {
    /// Backoff before retry number `retry` (0-based): exponential, capped,
    /// with "equal jitter" (half fixed, half random; `jitter` in 0..1) so
    /// clients that failed together do not retry together.
    pub(crate) fn backoff(&self, retry: u32, jitter: f64) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(1u32 << retry.min(16))
            .min(self.max_delay);
        exp / 2 + exp.mul_f64(jitter.clamp(0.0, 1.0) / 2.0)
    }

    /// The wait before the next attempt: the backoff, or the server's
    /// Retry-After when that is longer (capped).
    pub(crate) fn delay(&self, retry: u32, retry_after: Option<Duration>, jitter: f64) -> Duration {
        let b = self.backoff(retry, jitter);
        match retry_after {
            Some(ra) => ra.min(self.max_retry_after).max(b),
            None => b,
        }
    }

    /// Whether attempt number `attempt` (1-based, just failed) may be followed by another.
    pub(crate) fn may_retry(&self, attempt: u32, failure: Failure) -> bool {
        let limit = match failure {
            Failure::NotSent => self.max_connect_attempts,
            _ => self.max_attempts,
        };
        attempt < limit
    }
}

/// 429 and 5xx other than "not implemented" / "version not supported".
pub(crate) fn classify_status(status: StatusCode) -> Option<Failure> {
    match status.as_u16() {
        429 => Some(Failure::Throttled),
        501 | 505 => None,
        c @ 500..=599 => Some(Failure::Server(c)),
        _ => None,
    }
}

/// Transport errors worth another attempt. TLS and DNS failures are not:
/// they do not heal in seconds.
pub(crate) fn classify_error(e: &(dyn std::error::Error + 'static)) -> Option<Failure> {
    use std::io::ErrorKind;
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    let mut connect = false;
    let mut hyper_broken = false;
    while let Some(err) = cur {
        if let Some(le) = err.downcast_ref::<hyper_util::client::legacy::Error>() {
            connect |= le.is_connect();
        }
        if let Some(he) = err.downcast_ref::<hyper::Error>() {
            hyper_broken |= he.is_incomplete_message() || he.is_closed() || he.is_canceled();
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            match io.kind() {
                ErrorKind::ConnectionRefused => return Some(Failure::NotSent),
                ErrorKind::ConnectionReset
                | ErrorKind::ConnectionAborted
                | ErrorKind::BrokenPipe
                | ErrorKind::UnexpectedEof => {
                    return Some(if connect {
                        Failure::NotSent
                    } else {
                        Failure::Interrupted
                    })
                }
                _ => {}
            }
        }
        cur = err.source();
    }
    if hyper_broken && !connect {
        return Some(Failure::Interrupted);
    }
    None
}

/// `Retry-After`: seconds, or an HTTP date.
pub(crate) fn parse_retry_after(value: &str) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let delta = when.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(delta.to_std().unwrap_or(Duration::ZERO))
}

/// The tower layer applying a [`RetryPolicy`].
#[derive(Clone, Debug, Default)]
pub(crate) struct RetryLayer {
    policy: RetryPolicy,
}

impl<S> Layer<S> for RetryLayer {
    type Service = RetryService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RetryService {
            inner: Arc::new(tokio::sync::Mutex::new(inner)),
            policy: Arc::new(self.policy.clone()),
        }
    }
}

/// The inner service is called again for each attempt; it sits behind a
/// mutex held only while a call is dispatched, not while it runs.
pub(crate) struct RetryService<S> {
    inner: Arc<tokio::sync::Mutex<S>>,
    policy: Arc<RetryPolicy>,
}

impl<S> Clone for RetryService<S> {
    fn clone(&self) -> Self {
        RetryService {
            inner: self.inner.clone(),
            policy: self.policy.clone(),
        }
    }
}

type Resp = Response<Box<DynBody>>;

impl<S> Service<Request<Body>> for RetryService<S>
where
    S: Service<Request<Body>, Response = Resp, Error = BoxError> + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Resp;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Resp, BoxError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        // Readiness of the inner service is awaited per attempt.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let inner = self.inner.clone();
        let policy = self.policy.clone();
        Box::pin(async move { send_with_retries(&inner, &policy, req).await })
    }
}

async fn dispatch<S>(inner: &tokio::sync::Mutex<S>, req: Request<Body>) -> Result<Resp, BoxError>
where
    S: Service<Request<Body>, Response = Resp, Error = BoxError>,
{
    let fut = {
        let mut svc = inner.lock().await;
        svc.ready().await?.call(req)
    };
    fut.await
}

async fn send_with_retries<S>(
    inner: &tokio::sync::Mutex<S>,
    policy: &RetryPolicy,
    req: Request<Body>,
) -> Result<Resp, BoxError>
where
    S: Service<Request<Body>, Response = Resp, Error = BoxError>,
{
    // A streaming body cannot be replayed: one attempt only.
    let Some(template) = copy_request(&req) else {
        return dispatch(inner, req).await;
    };
    let is_create = req.method() == Method::POST;
    let mut next = Some(req);
    let mut attempt: u32 = 0;
    let mut ambiguous = false;
    loop {
        attempt += 1;
        let this = match next.take() {
            Some(r) => r,
            None => copy_request(&template).expect("a replayable request copies"),
        };
        let result = dispatch(inner, this).await;
        let (failure, retry_after) = match &result {
            Ok(resp) => match classify_status(resp.status()) {
                Some(f) => (
                    f,
                    resp.headers()
                        .get(header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(parse_retry_after),
                ),
                None => {
                    if is_create && ambiguous && resp.status() == StatusCode::CONFLICT {
                        let (path, headers) = (
                            template.uri().path().to_string(),
                            template.headers().clone(),
                        );
                        let sent = template.body().try_clone();
                        if let Some(ours) =
                            created_by_earlier_attempt(inner, path, headers, sent).await
                        {
                            return Ok(ours);
                        }
                    }
                    return result;
                }
            },
            Err(e) => match classify_error(e.as_ref()) {
                Some(f) => (f, None),
                None => return result,
            },
        };
        if !policy.may_retry(attempt, failure) {
            return result;
        }
        ambiguous |= failure.ambiguous();
        let wait = policy.delay(attempt - 1, retry_after, rand::random::<f64>());
        tracing::debug!(
            method = %template.method(),
            uri = %template.uri(),
            ?failure,
            attempt,
            ?wait,
            "retrying API request"
        );
        tokio::time::sleep(wait).await;
    }
}

fn copy_request(req: &Request<Body>) -> Option<Request<Body>> {
    let body = req.body().try_clone()?;
    let mut out = Request::new(body);
    *out.method_mut() = req.method().clone();
    *out.uri_mut() = req.uri().clone();
    *out.version_mut() = req.version();
    *out.headers_mut() = req.headers().clone();
    *out.extensions_mut() = req.extensions().clone();
    Some(out)
}

/// After an ambiguous failure and a 409: reads the object back and returns
/// it (as 201 Created) when it carries the run label value the create sent.
/// (Owned arguments: a borrowed request body is not Sync, so it cannot be
/// held across an await in a Send future.)
async fn created_by_earlier_attempt<S>(
    inner: &tokio::sync::Mutex<S>,
    create_path: String,
    headers: http::HeaderMap,
    sent: Option<Body>,
) -> Option<Resp>
where
    S: Service<Request<Body>, Response = Resp, Error = BoxError>,
{
    let sent = sent?.collect_bytes().await.ok()?;
    let sent: Value = serde_json::from_slice(&sent).ok()?;
    let name = sent.pointer("/metadata/name")?.as_str()?;
    let label = sent.pointer("/metadata/labels")?.get(RUN_LABEL)?.as_str()?;
    let path = create_path.trim_end_matches('/');
    let uri: http::Uri = format!("{path}/{name}").parse().ok()?;
    let mut get = Request::new(Body::empty());
    *get.uri_mut() = uri;
    for (k, v) in &headers {
        if k != header::CONTENT_TYPE && k != header::CONTENT_LENGTH {
            get.headers_mut().append(k.clone(), v.clone());
        }
    }
    let resp = dispatch(inner, get).await.ok()?;
    if resp.status() != StatusCode::OK {
        return None;
    }
    let (parts, body) = resp.into_parts();
    let bytes = body.collect().await.ok()?.to_bytes();
    let existing: Value = serde_json::from_slice(&bytes).ok()?;
    let theirs = existing
        .pointer("/metadata/labels")
        .and_then(|l| l.get(RUN_LABEL))
        .and_then(Value::as_str)?;
    if theirs != label {
        return None;
    }
    tracing::debug!(name, "create was retried and had already succeeded");
    let mut out = Response::from_parts(parts, full_body(bytes));
    *out.status_mut() = StatusCode::CREATED;
    Some(out)
}

fn full_body(bytes: Bytes) -> Box<DynBody> {
    Box::new(
        http_body_util::Full::new(bytes)
            .map_err(|never: std::convert::Infallible| -> BoxError { match never {} }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Mutex;

    fn fast() -> RetryPolicy {
        RetryPolicy {
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(4),
            ..Default::default()
        }
    }

    #[test]
    fn backoff_doubles_is_capped_and_jittered_within_bounds() {
        let p = RetryPolicy::default();
        assert_eq!(p.backoff(0, 0.0), Duration::from_millis(50));
        assert_eq!(p.backoff(0, 1.0), Duration::from_millis(100));
        assert_eq!(p.backoff(3, 1.0), Duration::from_millis(800));
        assert_eq!(p.backoff(30, 1.0), Duration::from_secs(5));
        assert_eq!(p.backoff(30, 0.0), Duration::from_millis(2500));
        // Retry-After wins when longer, and is capped.
        assert_eq!(
            p.delay(0, Some(Duration::from_secs(2)), 0.5),
            Duration::from_secs(2)
        );
        assert_eq!(
            p.delay(0, Some(Duration::from_secs(3600)), 0.5),
            Duration::from_secs(30)
        );
        assert_eq!(
            p.delay(10, Some(Duration::ZERO), 1.0),
            Duration::from_secs(5)
        );
    }

    #[test]
    fn statuses_and_retry_after_are_classified() {
        assert_eq!(
            classify_status(StatusCode::TOO_MANY_REQUESTS),
            Some(Failure::Throttled)
        );
        assert_eq!(
            classify_status(StatusCode::SERVICE_UNAVAILABLE),
            Some(Failure::Server(503))
        );
        assert_eq!(classify_status(StatusCode::NOT_IMPLEMENTED), None);
        assert_eq!(classify_status(StatusCode::CONFLICT), None);
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(classify_error(&refused), Some(Failure::NotSent));
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        assert_eq!(classify_error(&reset), Some(Failure::Interrupted));
        let other = std::io::Error::other("certificate unknown");
        assert_eq!(classify_error(&other), None);
    }

    type Scripted = RetryService<tower::util::BoxService<Request<Body>, Resp, BoxError>>;

    /// A scripted server: answers from a list, records what it was asked.
    fn scripted(answers: Vec<(u16, &'static str)>) -> (Scripted, Arc<Mutex<Vec<String>>>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let calls = Arc::new(AtomicU32::new(0));
        let log = seen.clone();
        let svc = tower::service_fn(move |req: Request<Body>| {
            let i = calls.fetch_add(1, Ordering::SeqCst) as usize;
            log.lock()
                .unwrap()
                .push(format!("{} {}", req.method(), req.uri()));
            let (code, body) = answers[i.min(answers.len() - 1)];
            async move {
                let mut r = Response::new(full_body(Bytes::from_static(body.as_bytes())));
                *r.status_mut() = StatusCode::from_u16(code).unwrap();
                if code == 429 {
                    r.headers_mut()
                        .insert(header::RETRY_AFTER, "0".parse().unwrap());
                }
                Ok::<_, BoxError>(r)
            }
        });
        let layer = RetryLayer { policy: fast() };
        (layer.layer(tower::util::BoxService::new(svc)), seen)
    }

    fn post(body: &str) -> Request<Body> {
        let mut r = Request::new(Body::from(body.as_bytes().to_vec()));
        *r.method_mut() = Method::POST;
        *r.uri_mut() = "/api/v1/namespaces/ns/configmaps?fieldManager=x"
            .parse()
            .unwrap();
        r
    }

    #[tokio::test]
    async fn transient_statuses_are_retried_until_success() {
        let (mut svc, seen) = scripted(vec![(503, "{}"), (429, "{}"), (500, "{}"), (200, "ok")]);
        let mut req = Request::new(Body::empty());
        *req.uri_mut() = "/api/v1/pods".parse().unwrap();
        let resp = svc.ready().await.unwrap().call(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(seen.lock().unwrap().len(), 4);
    }

    #[tokio::test]
    async fn gives_up_after_max_attempts_with_the_last_answer() {
        let (mut svc, seen) = scripted(vec![(503, "{}")]);
        let resp = svc
            .ready()
            .await
            .unwrap()
            .call(Request::new(Body::empty()))
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(seen.lock().unwrap().len(), 8);
    }

    #[tokio::test]
    async fn a_retried_create_that_already_happened_is_a_success_when_the_run_label_matches() {
        let ours = r#"{"metadata":{"name":"a","labels":{"heatcheck.dev/run-id":"r1"}}}"#;
        let (mut svc, seen) = scripted(vec![(503, "{}"), (409, "{}"), (200, ours)]);
        let resp = svc.ready().await.unwrap().call(post(ours)).await.unwrap();
        assert_eq!(resp.status(), StatusCode::CREATED);
        assert_eq!(
            seen.lock().unwrap().last().unwrap(),
            "GET /api/v1/namespaces/ns/configmaps/a"
        );
    }

    #[tokio::test]
    async fn a_conflict_with_someone_elses_object_stays_a_conflict() {
        let ours = r#"{"metadata":{"name":"a","labels":{"heatcheck.dev/run-id":"r1"}}}"#;
        let theirs = r#"{"metadata":{"name":"a","labels":{"heatcheck.dev/run-id":"r2"}}}"#;
        let (mut svc, _) = scripted(vec![(503, "{}"), (409, "{}"), (200, theirs)]);
        let resp = svc.ready().await.unwrap().call(post(ours)).await.unwrap();
        assert_eq!(resp.status(), StatusCode::CONFLICT);
        // Without an ambiguous failure first, a 409 is never second-guessed.
        let (mut svc, seen) = scripted(vec![(429, "{}"), (409, "{}"), (200, ours)]);
        let resp = svc.ready().await.unwrap().call(post(ours)).await.unwrap();
        assert_eq!(resp.status(), StatusCode::CONFLICT);
        assert_eq!(seen.lock().unwrap().len(), 2);
    }
}
