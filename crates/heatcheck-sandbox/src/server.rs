//! The sandbox API server on 127.0.0.1: plain HTTP, bearer-token auth,
//! optional fault injection, and a kubeconfig for kube and kubectl.

use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::body::Body;
type Request = http::Request<Body>;
use http::{header, Response};

use super::api::{self, error_response, ApiState};
use super::auth::{self, Authenticator};
use super::error::ApiError;
use super::store::Store;

/// How to start the server.
#[derive(Clone, Debug, Default)]
pub struct ApiConfig {
    /// 0 picks a free port.
    pub(crate) port: u16,
    /// The admin's bearer token; a random one when None.
    pub(crate) token: Option<String>,
    /// `--user` identities: each gets a token and no permissions until RBAC grants some.
    pub(crate) users: Vec<String>,
    /// Append an audit event per write request here.
    pub(crate) audit_log: Option<std::path::PathBuf>,
}

/// Makes every `every_nth` matching request fail with `status`.
#[derive(Clone, Debug, PartialEq)]
pub struct FaultSpec {
    /// 429, 500 or 503 (any 4xx/5xx is accepted).
    pub status: u16,
    /// 1 fails every request, 3 every third.
    pub every_nth: u32,
    /// Only requests whose path contains this count.
    pub paths_containing: Option<String>,
}

#[derive(Default)]
struct Faults {
    spec: Option<FaultSpec>,
    seen: u64,
}

impl Faults {
    /// The fault to answer this request with, if any.
    fn check(&mut self, path: &str) -> Option<ApiError> {
        let spec = self.spec.as_ref()?;
        if spec
            .paths_containing
            .as_deref()
            .is_some_and(|p| !path.contains(p))
        {
            return None;
        }
        self.seen += 1;
        if spec.every_nth == 0 || !self.seen.is_multiple_of(u64::from(spec.every_nth)) {
            return None;
        }
        let msg = format!("injected fault ({})", spec.status);
        Some(match spec.status {
            429 => ApiError::too_many_requests(msg),
            503 => ApiError::service_unavailable(msg),
            500 => ApiError::internal(msg),
            code => ApiError {
                code: if (400..600).contains(&code) {
                    code
                } else {
                    500
                },
                reason: "InternalError",
                message: msg,
                details: None,
            },
        })
    }
}

/// A running server. Dropping it does not stop the server; call `shutdown`.
pub struct ApiHandle {
    /// `http://127.0.0.1:PORT`
    pub url: String,
    /// `https://127.0.0.1:PORT`, same port; its certificate is signed by `ca_pem`.
    pub(crate) https_url: String,
    /// PEM of the CA that signed the serving certificate.
    pub ca_pem: String,
    pub token: String,
    pub store: Store,
    /// The tokens this server accepts and the ServiceAccount token issuer.
    pub(crate) auth: Arc<Authenticator>,
    faults: Arc<Mutex<Faults>>,
    shutdown_tx: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl ApiHandle {
    /// A kubeconfig with cluster, user and context `heatcheck-sandbox` (the
    /// admin), plus a context and user per `--user` identity. It uses the
    /// HTTPS endpoint: client-go sends tokens only over TLS.
    pub fn kubeconfig_yaml(&self) -> String {
        use base64::Engine;
        let ca = base64::engine::general_purpose::STANDARD.encode(&self.ca_pem);
        let mut contexts = String::from("- name: heatcheck-sandbox\n  context:\n    cluster: heatcheck-sandbox\n    user: heatcheck-sandbox\n    namespace: default\n");
        let mut users = format!(
            "- name: heatcheck-sandbox\n  user:\n    token: {}\n",
            self.token
        );
        for (name, token) in self.auth.users() {
            let name = serde_json::to_string(name).unwrap_or_default();
            contexts.push_str(&format!("- name: {name}\n  context:\n    cluster: heatcheck-sandbox\n    user: {name}\n    namespace: default\n"));
            users.push_str(&format!("- name: {name}\n  user:\n    token: {token}\n"));
        }
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: heatcheck-sandbox\n  cluster:\n    server: {url}\n    certificate-authority-data: {ca}\ncontexts:\n{contexts}current-context: heatcheck-sandbox\nusers:\n{users}preferences: {{}}\n",
            url = self.https_url,
        )
    }

    pub fn write_kubeconfig(&self, path: &Path) -> std::io::Result<()> {
        std::fs::write(path, self.kubeconfig_yaml())
    }

    pub fn inject_faults(&self, spec: FaultSpec) {
        let mut f = self.faults.lock().unwrap_or_else(|e| e.into_inner());
        f.spec = Some(spec);
        f.seen = 0;
    }

    pub fn clear_faults(&self) {
        let mut f = self.faults.lock().unwrap_or_else(|e| e.into_inner());
        f.spec = None;
        f.seen = 0;
    }

    /// Stops accepting, ends open watches, and waits for the server task.
    pub async fn shutdown(self) {
        let _ = self.shutdown_tx.send(true);
        let _ = self.task.await;
    }
}

async fn serve_one(
    state: ApiState,
    faults: Arc<Mutex<Faults>>,
    mut req: Request,
) -> Response<Body> {
    let user = match state.auth.authenticate(&state.store, req.headers()) {
        Ok(u) => u,
        Err(e) => return error_response(&e),
    };
    let fault = faults
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .check(req.uri().path());
    if let Some(e) = fault {
        let mut resp = error_response(&e);
        if e.code == 429 {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, http::HeaderValue::from_static("1"));
        }
        return resp;
    }
    let attrs = auth::request::attributes(
        &user,
        req.method().as_str(),
        req.uri().path(),
        req.uri().query(),
    );
    let decision = auth::rbac::authorize(&state.store, &attrs);
    if !decision.allowed {
        tracing::debug!(user = %user.name, verb = %attrs.verb, resource = %attrs.resource, "sandbox API: forbidden");
        return error_response(&auth::forbidden(&attrs, &decision.reason));
    }
    req.extensions_mut().insert(user);
    api::handle(&state, req).await
}

/// Binds 127.0.0.1:`config.port` and serves the Kubernetes API for `store`,
/// over HTTPS and plain HTTP on the same port (told apart by the first byte).
pub async fn serve_api(store: Store, config: ApiConfig) -> Result<ApiHandle, std::io::Error> {
    let tls = api::tls::generate()?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", config.port)).await?;
    let addr = listener.local_addr()?;
    let token = config.token.unwrap_or_else(auth::random_token);
    let authn = Arc::new(Authenticator::new(
        token.clone(),
        &config.users,
        tls.ca_pem.clone(),
    ));
    // The default roles and bindings, as kube-apiserver's post-start hook.
    auth::bootstrap::ensure(&store);
    let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
    let state = ApiState {
        store: store.clone(),
        shutdown: shutdown_rx.clone(),
        server_address: addr.to_string(),
        auth: authn.clone(),
        audit: match &config.audit_log {
            Some(p) => Some(Arc::new(api::audit::AuditLog::open(p)?)),
            None => None,
        },
    };
    let faults = Arc::new(Mutex::new(Faults::default()));
    let conn = Conn {
        state,
        faults: faults.clone(),
        acceptor: tls.acceptor.clone(),
    };
    let mut stop = shutdown_rx;
    let task = tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                _ = stop.changed() => break,
            };
            match accepted {
                Ok((stream, _)) => {
                    let conn = conn.clone();
                    tokio::spawn(async move { conn.serve(stream).await });
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off, keep serving.
                    tracing::warn!("sandbox API accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        }
    });
    Ok(ApiHandle {
        url: format!("http://{addr}"),
        https_url: format!("https://{addr}"),
        ca_pem: tls.ca_pem,
        token,
        store,
        auth: authn,
        faults,
        shutdown_tx,
        task,
    })
}

/// What each connection needs.
#[derive(Clone)]
struct Conn {
    state: ApiState,
    faults: Arc<Mutex<Faults>>,
    acceptor: tokio_rustls::TlsAcceptor,
}

impl Conn {
    async fn serve(self, stream: tokio::net::TcpStream) {
        let mut first = [0u8; 1];
        // A TLS connection starts with a handshake record (0x16).
        let is_tls = matches!(stream.peek(&mut first).await, Ok(1) if first[0] == 0x16);
        if is_tls {
            match self.acceptor.clone().accept(stream).await {
                Ok(s) => self.http(s).await,
                Err(e) => tracing::debug!("sandbox TLS handshake failed: {e}"),
            }
        } else {
            self.http(stream).await;
        }
    }

    async fn http<IO>(self, io: IO)
    where
        IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let mut stop = self.state.shutdown.clone();
        let svc = hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
            let c = self.clone();
            async move {
                Ok::<_, std::convert::Infallible>(
                    serve_one(c.state, c.faults, req.map(Body::new)).await,
                )
            }
        });
        let conn = hyper::server::conn::http1::Builder::new()
            .serve_connection(hyper_util::rt::TokioIo::new(io), svc);
        tokio::pin!(conn);
        let stopping = async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        tokio::select! {
            _ = conn.as_mut() => {}
            _ = stopping => {
                conn.as_mut().graceful_shutdown();
                let _ = conn.await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_fire_every_nth_matching_request() {
        let mut f = Faults {
            spec: Some(FaultSpec {
                status: 429,
                every_nth: 2,
                paths_containing: Some("configmaps".into()),
            }),
            seen: 0,
        };
        assert!(f.check("/api/v1/pods").is_none());
        assert!(f.check("/api/v1/configmaps").is_none());
        assert_eq!(f.check("/api/v1/configmaps").unwrap().code, 429);
        assert!(f.check("/api/v1/configmaps").is_none());
    }

    #[tokio::test]
    async fn kubeconfig_names_the_server_and_token() {
        let h = serve_api(Store::new(), ApiConfig::default()).await.unwrap();
        let k = h.kubeconfig_yaml();
        assert!(k.contains(&format!("server: {}", h.https_url)));
        assert!(k.contains(&format!("token: {}", h.token)));
        assert!(k.contains("current-context: heatcheck-sandbox"));
        h.shutdown().await;
    }
}
