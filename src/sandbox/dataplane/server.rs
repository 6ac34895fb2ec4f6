//! Serving one gateway port: hyper HTTP/1.1 with keep-alive, routing each request with the
//! current table and answering as the chosen backend pod (or as the gateway on errors).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use http::{header, HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use super::echo::{echo_body, EchoContext, EchoRequest};
use super::hostname::request_host;
use super::matcher::RequestParts;
use super::metrics::GatewayMetrics;
use super::routing::{Decision, RouteTable};

/// Request bodies above this size get 413 (bodies are read so connections stay reusable).
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// The table every request reads; `update` swaps the Arc, in-flight requests keep theirs.
pub type TableCell = RwLock<Arc<RouteTable>>;

struct PortCtx {
    table: Arc<TableCell>,
    metrics: GatewayMetrics,
    gateway: String,
    port: u16,
}

/// Accept connections until the task is aborted (dropping the task closes its connections).
pub async fn serve(
    listener: TcpListener,
    table: Arc<TableCell>,
    metrics: GatewayMetrics,
    gateway: String,
    port: u16,
) {
    let ctx = Arc::new(PortCtx {
        table,
        metrics,
        gateway,
        port,
    });
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, peer)) = accepted else {
                    // EMFILE and friends: back off briefly instead of spinning.
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let ctx = ctx.clone();
                conns.spawn(async move {
                    let svc = service_fn(move |req| handle(req, ctx.clone(), peer));
                    let _ = http1::Builder::new().keep_alive(true).serve_connection(TokioIo::new(stream), svc).await;
                });
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

fn header_safe(s: &str) -> HeaderValue {
    let clean: String = s
        .chars()
        .map(|c| if (' '..='~').contains(&c) { c } else { '?' })
        .collect();
    HeaderValue::from_str(&clean).unwrap_or_else(|_| HeaderValue::from_static("?"))
}

fn plain(status: u16, body: &'static str) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if !body.is_empty() {
        resp.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    }
    resp
}

async fn handle(
    req: Request<Incoming>,
    ctx: Arc<PortCtx>,
    peer: SocketAddr,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let started = std::time::Instant::now();
    let (parts, body) = req.into_parts();
    // Read the body first: the backend would, and it keeps the connection reusable.
    if Limited::new(body, MAX_BODY_BYTES).collect().await.is_err() {
        return Ok(plain(413, "request body too large"));
    }
    let raw_host = parts
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| parts.uri.authority().map(|a| a.as_str()))
        .unwrap_or("");
    let req_parts = RequestParts {
        method: parts.method.as_str(),
        host: request_host(raw_host),
        path: parts.uri.path(),
        query: parts.uri.query(),
        headers: &parts.headers,
    };
    let table = ctx.table.read().unwrap_or_else(|e| e.into_inner()).clone();
    let decision = table.resolve(&ctx.gateway, ctx.port, &req_parts, &mut rand::rng());
    let labels = ctx
        .metrics
        .labels(&table, &ctx.gateway, ctx.port, req_parts.host, &decision);
    let resp = match decision {
        Decision::NotFound => {
            let mut resp = plain(404, "");
            let detail = format!(
                "no route for host {:?} path {:?}",
                req_parts.host, req_parts.path
            );
            resp.headers_mut()
                .insert("x-heatcheck-detail", header_safe(&detail));
            resp
        }
        Decision::Error {
            status,
            message,
            detail,
            route,
            delay,
        } => {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            let mut resp = plain(status, message);
            resp.headers_mut()
                .insert("x-heatcheck-route", header_safe(route));
            resp.headers_mut()
                .insert("x-heatcheck-detail", header_safe(&detail));
            resp
        }
        Decision::Forward {
            route,
            namespace,
            service,
            pod,
            delay,
        } => {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            let path_and_query = parts
                .uri
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/");
            let echo = EchoRequest {
                method: parts.method.as_str(),
                path_and_query,
                host: raw_host,
                headers: &parts.headers,
                client: Some(peer.ip()),
            };
            let body = echo_body(
                &echo,
                &EchoContext {
                    namespace,
                    service,
                    pod,
                },
            );
            let mut resp = Response::new(Full::new(Bytes::from(body)));
            let h = resp.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            h.insert(
                "x-content-type-options",
                HeaderValue::from_static("nosniff"),
            );
            h.insert("x-heatcheck-route", header_safe(route));
            h.insert(
                "x-heatcheck-backend",
                header_safe(&format!("{namespace}/{service}/{pod}")),
            );
            resp
        }
    };
    ctx.metrics
        .observe(labels, resp.status().as_u16(), started.elapsed());
    Ok(resp)
}
