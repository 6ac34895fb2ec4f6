//! Serving one gateway port: hyper HTTP/1.1 with keep-alive, routing each request with the
//! current table and answering as the chosen backend pod (or as the gateway on errors).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use std::time::Duration;

use http::{header, HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use super::echo::{echo_body, EchoContext, EchoRequest};
use super::filters::RedirectInput;
use super::hostname::request_host;
use super::matcher::RequestParts;
use super::metrics::GatewayMetrics;
use super::routing::{Decision, RouteTable};
use crate::controllers::duration::parse_duration;

/// Request bodies above this size get 413 (bodies are read so connections stay reusable).
pub(crate) const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// The table every request reads; `update` swaps the Arc, in-flight requests keep theirs.
pub(super) type TableCell = RwLock<Arc<RouteTable>>;

struct PortCtx {
    table: Arc<TableCell>,
    metrics: GatewayMetrics,
    gateway: String,
    port: u16,
    /// Served over TLS (an HTTPS listener).
    tls: bool,
}

impl PortCtx {
    fn scheme(&self) -> &'static str {
        if self.tls {
            "https"
        } else {
            "http"
        }
    }
}

/// Accept connections until the task is aborted (dropping the task closes its connections).
/// With `tls`, every connection is a TLS handshake first; the certificate is picked per SNI
/// from the current table (see [`SniResolver`]).
pub(super) async fn serve(
    listener: TcpListener,
    table: Arc<TableCell>,
    metrics: GatewayMetrics,
    gateway: String,
    port: u16,
    tls: bool,
) {
    let acceptor = tls.then(|| tls_acceptor(table.clone(), gateway.clone(), port));
    let ctx = Arc::new(PortCtx {
        table,
        metrics,
        gateway,
        port,
        tls,
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
                let acceptor = acceptor.clone();
                conns.spawn(async move {
                    let svc = service_fn(move |req| handle(req, ctx.clone(), peer));
                    let mut http = http1::Builder::new();
                    match acceptor {
                        None => {
                            let _ = http.keep_alive(true).serve_connection(TokioIo::new(stream), svc).await;
                        }
                        Some(acceptor) => {
                            // A failed handshake (unknown SNI, no certificate) just closes.
                            if let Ok(tls) = acceptor.accept(stream).await {
                                let _ = http.keep_alive(true).serve_connection(TokioIo::new(tls), svc).await;
                            }
                        }
                    }
                });
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

/// Picks the serving certificate of an HTTPS listener by SNI, from the table current at
/// handshake time (certificates follow their Secrets without restarting the socket).
#[derive(Debug)]
struct SniResolver {
    table: Arc<TableCell>,
    gateway: String,
    port: u16,
}

impl rustls::server::ResolvesServerCert for SniResolver {
    fn resolve(
        &self,
        hello: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        let table = self.table.read().unwrap_or_else(|e| e.into_inner()).clone();
        table
            .gateway(&self.gateway)?
            .certificate(self.port, hello.server_name())
    }
}

fn tls_acceptor(table: Arc<TableCell>, gateway: String, port: u16) -> tokio_rustls::TlsAcceptor {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(SniResolver {
            table,
            gateway,
            port,
        }));
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
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

/// One request end to end: route it, then answer as the gateway (404, errors, redirects) or
/// as the chosen backend pod with the rule's filters applied.
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
        Decision::Redirect {
            route,
            redirect,
            matched_prefix,
            filters,
        } => {
            let input = RedirectInput {
                scheme: ctx.scheme(),
                host: req_parts.host,
                path: req_parts.path,
                query: req_parts.query,
                listener_port: ctx.port,
            };
            let mut resp = plain(redirect.status, "");
            let h = resp.headers_mut();
            h.insert(
                header::LOCATION,
                header_safe(&redirect.location(&input, matched_prefix)),
            );
            h.insert("x-heatcheck-route", header_safe(route));
            for m in &filters.response_headers {
                m.apply(h);
            }
            resp
        }
        Decision::Forward {
            route,
            namespace,
            service,
            pod,
            delay,
            filters,
            backend_filters,
            timeouts,
            matched_prefix,
            mirrors,
        } => {
            // What the backend receives: the request after the rule's and the backendRef's
            // filters, as Envoy would forward it.
            let mut headers = parts.headers.clone();
            let mut host = raw_host.to_string();
            let mut path = parts.uri.path().to_string();
            for f in [filters, backend_filters] {
                for m in &f.request_headers {
                    m.apply(&mut headers);
                }
                if let Some(rw) = &f.rewrite {
                    if let Some(h) = &rw.hostname {
                        host = h.clone();
                        headers.insert(header::HOST, header_safe(h));
                    }
                    if let Some(p) = &rw.path {
                        path = p.apply(&path, matched_prefix);
                    }
                }
            }
            if ctx.tls {
                headers
                    .entry("x-forwarded-proto")
                    .or_insert(HeaderValue::from_static("https"));
            }
            let path_and_query = match req_parts.query {
                Some(q) => format!("{path}?{q}"),
                None => path,
            };
            let echo = EchoRequest {
                method: parts.method.as_str(),
                path_and_query: &path_and_query,
                host: &host,
                headers: &headers,
                client: Some(peer.ip()),
            };
            // Mirrors get a copy; their answers are discarded and never delay the client.
            for m in &mirrors {
                let _ = echo_body(
                    &echo,
                    &EchoContext {
                        namespace: m.namespace,
                        service: m.service,
                        pod: m.pod,
                    },
                );
                log_echo(&path_and_query, m.namespace, m.pod, peer);
            }
            // The conformance echo server waits `?delay=` itself: it is backend time.
            let delay = delay + echo_delay(req_parts.query);
            if let Some(limit) = timeouts.limit().filter(|l| delay > *l) {
                tokio::time::sleep(limit).await;
                let mut resp = plain(504, "upstream request timeout");
                resp.headers_mut()
                    .insert("x-heatcheck-route", header_safe(route));
                resp.headers_mut().insert(
                    "x-heatcheck-detail",
                    header_safe(&format!(
                        "backend {namespace}/{service}/{pod} slower than the route timeout of {limit:?}"
                    )),
                );
                ctx.metrics.observe(labels, 504, started.elapsed());
                return Ok(resp);
            }
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            let body = echo_body(
                &echo,
                &EchoContext {
                    namespace,
                    service,
                    pod,
                },
            );
            log_echo(&path_and_query, namespace, pod, peer);
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
            echo_set_headers(&headers, h);
            h.insert("x-heatcheck-route", header_safe(route));
            h.insert(
                "x-heatcheck-backend",
                header_safe(&format!("{namespace}/{service}/{pod}")),
            );
            for f in [backend_filters, filters] {
                for m in &f.response_headers {
                    m.apply(h);
                }
            }
            resp
        }
    };
    ctx.metrics
        .observe(labels, resp.status().as_u16(), started.elapsed());
    Ok(resp)
}

/// The echo server's log line (echo-basic logs it for every request; the conformance suite
/// reads it from mirror pods).
fn log_echo(path: &str, namespace: &str, pod: &str, peer: SocketAddr) {
    tracing::info!(
        target: "heatcheck::sandbox::echo",
        "{namespace}/{pod}: Echoing back request made to {path} to client ({peer})"
    );
}

/// echo-basic's `delay` query parameter (a Go duration): how long the backend waits.
fn echo_delay(query: Option<&str>) -> Duration {
    query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .find_map(|kv| kv.strip_prefix("delay="))
        .and_then(parse_duration)
        .unwrap_or_default()
}

/// echo-basic's `X-Echo-Set-Header: name:value,name2:value2`: headers the backend sets on
/// its answer.
fn echo_set_headers(request: &HeaderMap, response: &mut HeaderMap) {
    for v in request.get_all("x-echo-set-header") {
        let Ok(v) = v.to_str() else { continue };
        for pair in v.split(',') {
            let Some((name, value)) = pair.split_once(':') else {
                continue;
            };
            if let (Ok(n), Ok(v)) = (
                HeaderName::try_from(name.trim()),
                HeaderValue::try_from(value.trim()),
            ) {
                response.insert(n, v);
            }
        }
    }
}
