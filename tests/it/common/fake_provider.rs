//! A scripted LLM-provider HTTP server on 127.0.0.1:0 for the provider tests.
//! Every request is recorded (query, headers, raw and parsed body, arrival
//! time) and first goes through an optional `check`, which answers as the
//! real service does when authentication or parameters are wrong; a request
//! that passes gets the next scripted reply.
#![allow(dead_code)] // each test file uses part of it

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use serde_json::Value;

#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: HeaderMap,
    pub raw: Bytes,
    pub body: Value,
    pub at: Instant,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            (k == name).then(|| v.to_string())
        })
    }
}

#[derive(Clone)]
pub struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    parts: Vec<Vec<u8>>,
    /// Sent as separate chunks (a stream) rather than one body.
    chunked: bool,
    /// Breaks the connection after the chunks.
    abort: bool,
    delay: Duration,
}

impl Reply {
    fn new(status: u16, content_type: &str, parts: Vec<Vec<u8>>, chunked: bool) -> Self {
        Reply {
            status,
            headers: vec![("content-type".into(), content_type.into())],
            parts,
            chunked,
            abort: false,
            delay: Duration::ZERO,
        }
    }

    pub fn json(status: u16, v: Value) -> Self {
        Self::new(
            status,
            "application/json",
            vec![v.to_string().into_bytes()],
            false,
        )
    }

    pub fn text(status: u16, body: impl Into<String>) -> Self {
        Self::new(status, "text/plain", vec![body.into().into_bytes()], false)
    }

    /// Server-sent events, one chunk per event.
    pub fn sse(events: &[String]) -> Self {
        let parts = events.iter().map(|e| e.clone().into_bytes()).collect();
        Self::new(200, "text/event-stream", parts, true)
    }

    /// Newline-delimited JSON, one chunk per line.
    pub fn ndjson(lines: &[Value]) -> Self {
        let parts = lines
            .iter()
            .map(|l| format!("{l}\n").into_bytes())
            .collect();
        Self::new(200, "application/x-ndjson", parts, true)
    }

    /// Binary frames (AWS event stream), one chunk per frame.
    pub fn frames(frames: Vec<Vec<u8>>) -> Self {
        Self::new(200, "application/vnd.amazon.eventstream", frames, true)
    }

    pub fn header(mut self, k: &str, v: &str) -> Self {
        self.headers.push((k.into(), v.into()));
        self
    }

    /// Breaks the connection after the chunks.
    pub fn aborted(mut self) -> Self {
        self.abort = true;
        self
    }

    pub fn delayed(mut self, d: Duration) -> Self {
        self.delay = d;
        self
    }
}

/// What the real service verifies; `Some(reply)` refuses the request.
pub type Check = Arc<dyn Fn(&Recorded) -> Option<Reply> + Send + Sync>;

struct Shared {
    script: Mutex<VecDeque<Reply>>,
    seen: Mutex<Vec<Recorded>>,
    check: Option<Check>,
}

pub struct FakeServer {
    pub url: String,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeServer {
    /// Answers every request with the next scripted reply.
    pub async fn start(script: Vec<Reply>) -> Self {
        Self::serve(None, script).await
    }

    /// Runs `check` on every request first, as the real service would.
    pub async fn start_checked(check: Check, script: Vec<Reply>) -> Self {
        Self::serve(Some(check), script).await
    }

    async fn serve(check: Option<Check>, script: Vec<Reply>) -> Self {
        let shared = Arc::new(Shared {
            script: Mutex::new(script.into()),
            seen: Mutex::new(Vec::new()),
            check,
        });
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        FakeServer { url, shared, task }
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.seen.lock().unwrap().clone()
    }

    pub fn only_request(&self) -> Recorded {
        let r = self.requests();
        assert_eq!(r.len(), 1, "expected exactly one request");
        r.into_iter().next().unwrap()
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let rec = Recorded {
        method: method.to_string(),
        path: uri.path().to_string(),
        query: uri.query().unwrap_or("").to_string(),
        headers,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        raw: body,
        at: Instant::now(),
    };
    shared.seen.lock().unwrap().push(rec.clone());
    let refusal = shared.check.as_ref().and_then(|check| check(&rec));
    let reply = match refusal {
        Some(refusal) => refusal,
        None => match shared.script.lock().unwrap().pop_front() {
            Some(r) => r,
            None => {
                return Response::builder()
                    .status(StatusCode::IM_A_TEAPOT)
                    .body(Body::from("script exhausted"))
                    .unwrap()
            }
        },
    };
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let mut b = Response::builder().status(reply.status);
    for (k, v) in &reply.headers {
        b = b.header(k, v);
    }
    let body = if reply.chunked {
        let (parts, abort) = (reply.parts, reply.abort);
        Body::from_stream(async_stream::stream! {
            for p in parts {
                yield Ok::<Bytes, std::io::Error>(Bytes::from(p));
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            if abort {
                yield Err(std::io::Error::other("cut"));
            }
        })
    } else {
        Body::from(reply.parts.concat())
    };
    b.body(body).unwrap()
}
