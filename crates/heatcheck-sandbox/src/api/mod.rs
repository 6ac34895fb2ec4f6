//! The Kubernetes REST protocol on top of the [`Store`]: routing, content
//! negotiation, request decoding and the verbs. Authentication, fault
//! injection and the socket live in `sandbox::server`.

pub(crate) mod apply;
pub(crate) mod audit;
pub(crate) mod discovery;
mod eviction;
pub(crate) mod openapi;
pub(crate) mod path;
mod resource;
mod select;
pub(crate) mod table;
pub(crate) mod tls;
mod watch;

use axum::body::Body;
use bytes::Bytes;
use http::{header, HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};

use crate::auth::{Authenticator, UserInfo};
use crate::error::ApiError;
use crate::protobuf::{self, ProtoError};
use crate::store::{DeleteOptions, Store};

use path::Route;

/// Largest request body accepted, as the real server's limit.
pub(crate) const MAX_BODY: usize = 3 * 1024 * 1024;

/// What request handling needs. Cheap to clone.
#[derive(Clone)]
pub(crate) struct ApiState {
    pub store: Store,
    /// Flips to true on shutdown; open watches end then.
    pub shutdown: tokio::sync::watch::Receiver<bool>,
    /// `host:port` reported in `/api` discovery.
    pub server_address: String,
    /// Tokens and the ServiceAccount token issuer.
    pub auth: std::sync::Arc<Authenticator>,
    /// Every request that may write, as kube-apiserver's audit log.
    pub audit: Option<std::sync::Arc<audit::AuditLog>>,
}

#[cfg(test)]
impl ApiState {
    /// State for in-process use (tests): never shut down.
    pub(crate) fn new(store: Store) -> Self {
        let (tx, rx) = tokio::sync::watch::channel(false);
        // Keep the sender alive so receivers never see a closed channel.
        std::mem::forget(tx);
        ApiState {
            store,
            shutdown: rx,
            server_address: "127.0.0.1:0".into(),
            auth: std::sync::Arc::new(Authenticator::new(String::new(), &[], String::new())),
            audit: None,
        }
    }
}

/// Decoded query string; later duplicates win, as Go's url.Values.Get does
/// for the first value (the API server only reads the first one).
#[derive(Debug, Default, Clone)]
pub(crate) struct Query(Vec<(String, String)>);

impl Query {
    pub(crate) fn parse(uri: &http::Uri) -> Result<Self, ApiError> {
        match axum::extract::Query::<Vec<(String, String)>>::try_from_uri(uri) {
            Ok(q) => Ok(Query(q.0)),
            Err(e) => Err(ApiError::bad_request(format!("invalid query string: {e}"))),
        }
    }

    pub(crate) fn get(&self, k: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn flag(&self, k: &str) -> bool {
        matches!(self.get(k), Some("true" | "1"))
    }
}

/// A request with its body read.
pub(crate) struct Req {
    pub method: Method,
    pub headers: HeaderMap,
    pub query: Query,
    pub body: Bytes,
    /// Who sent it (authenticated by the server; the admin in-process).
    pub(crate) user: UserInfo,
}

impl Req {
    fn content_type(&self) -> String {
        self.headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    }

    /// The media type (without parameters), lower-cased.
    pub(crate) fn media_type(&self) -> String {
        self.content_type()
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase()
    }

    /// Whether any Accept entry has parameter `as={what}` (Table, ...).
    pub(crate) fn accepts_as(&self, what: &str) -> bool {
        accept_entries(&self.headers)
            .iter()
            .any(|params| params.iter().any(|(k, v)| k == "as" && v == what))
    }

    /// Decodes a JSON or YAML object body (create, update).
    pub(crate) fn object_body(&self) -> Result<Value, ApiError> {
        let mt = self.media_type();
        let v = match mt.as_str() {
            "" | "application/json" | "*/*" => decode_json(&self.body)?,
            "application/yaml" | "application/x-yaml" | "text/yaml" => decode_yaml(&self.body)?,
            protobuf::MEDIA_TYPE => decode_protobuf(&self.body, &self.content_type())?,
            _ => return Err(ApiError::unsupported_media_type(&self.content_type())),
        };
        if !v.is_object() {
            return Err(ApiError::bad_request(
                "the body of the request must be a JSON object",
            ));
        }
        Ok(v)
    }
}

/// Accept header entries, each as its `key=value` parameters (the media
/// type itself under the key "").
fn accept_entries(headers: &HeaderMap) -> Vec<Vec<(String, String)>> {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|entry| {
            let mut parts = entry.split(';');
            let mut out = vec![(String::new(), parts.next().unwrap_or("").trim().to_string())];
            for p in parts {
                if let Some((k, v)) = p.split_once('=') {
                    out.push((k.trim().to_string(), v.trim().to_string()));
                }
            }
            out
        })
        .collect()
}

/// A protobuf body (kubectl's generators, client-go's typed clients) as the
/// JSON the store keeps. Kinds without a protobuf form (CRDs) are 415, as on
/// a real server.
pub(crate) fn decode_protobuf(body: &[u8], content_type: &str) -> Result<Value, ApiError> {
    protobuf::decode_object(body).map_err(|e| match e {
        ProtoError::UnknownKind { .. } => ApiError::unsupported_media_type(content_type),
        other => ApiError::bad_request(format!(
            "the body of the request could not be decoded as protobuf: {other}"
        )),
    })
}

/// Whether the client reads only protobuf: every Accept entry is
/// `application/vnd.kubernetes.protobuf` (no JSON, no wildcard).
fn accepts_only_protobuf(headers: &HeaderMap) -> bool {
    let entries = accept_entries(headers);
    !entries.is_empty()
        && entries.iter().all(|params| {
            params
                .first()
                .is_some_and(|(_, mt)| mt.eq_ignore_ascii_case(protobuf::MEDIA_TYPE))
        })
}

/// A JSON answer re-encoded for a client that reads only protobuf; 406 when
/// the object has no protobuf form (a CRD kind), as on a real server.
async fn protobuf_answer(resp: Response<Body>) -> Response<Body> {
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct == "application/json");
    if !is_json {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let bytes = match body.collect().await {
        Ok(c) => c.to_bytes(),
        Err(e) => return error_response(&ApiError::internal(format!("reading the answer: {e}"))),
    };
    let encoded = serde_json::from_slice::<Value>(&bytes)
        .map_err(|e| e.to_string())
        .and_then(|v| protobuf::encode_object(&v).map_err(|e| e.to_string()));
    match encoded {
        Ok(pb) => {
            parts
                .headers
                .insert(header::CONTENT_TYPE, http::HeaderValue::from_static(protobuf::MEDIA_TYPE));
            parts.headers.remove(header::CONTENT_LENGTH);
            Response::from_parts(parts, Body::from(pb))
        }
        Err(why) => error_response(&ApiError {
            code: 406,
            reason: "NotAcceptable",
            message: format!("only the following media types are accepted: application/json, application/yaml ({why})"),
            details: None,
        }),
    }
}

pub(crate) fn decode_json(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!(
            "the body of the request could not be decoded as JSON: {e}"
        ))
    })
}

pub(crate) fn decode_yaml(body: &[u8]) -> Result<Value, ApiError> {
    serde_saphyr::from_slice::<Value>(body).map_err(|e| {
        ApiError::bad_request(format!(
            "the body of the request could not be decoded as YAML: {e}"
        ))
    })
}

pub(crate) fn json_response(code: u16, v: &Value) -> Response<Body> {
    json_response_as(code, v, "application/json")
}

pub(crate) fn json_response_as(code: u16, v: &Value, content_type: &str) -> Response<Body> {
    let body = serde_json::to_vec(v).unwrap_or_else(|_| b"{}".to_vec());
    Response::builder()
        .status(StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::from(body))
        .unwrap_or_else(|_| Response::new(Body::empty()))
}

pub(crate) fn error_response(e: &ApiError) -> Response<Body> {
    json_response(e.code, &e.status())
}

/// Reads at most [`MAX_BODY`] bytes; more is 413.
pub(crate) async fn read_body(body: Body) -> Result<Bytes, ApiError> {
    let limited = http_body_util::Limited::new(body, MAX_BODY);
    match limited.collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(ApiError::too_large()),
        Err(e) => Err(ApiError::bad_request(format!(
            "failed to read the request body: {e}"
        ))),
    }
}

/// Handles one (already authenticated) request. Never panics on input;
/// every failure is a metav1.Status.
pub(crate) async fn handle(state: &ApiState, req: Request<Body>) -> Response<Body> {
    let only_protobuf = accepts_only_protobuf(req.headers());
    if only_protobuf {
        let watching = matches!(path::parse(req.uri().path()), Route::Resource(ref p) if p.watch_prefix)
            || Query::parse(req.uri()).is_ok_and(|q| q.flag("watch"));
        if watching {
            // Watch streams are served as JSON only.
            return error_response(&ApiError {
                code: 406,
                reason: "NotAcceptable",
                message: "only the following media types are accepted for watch: application/json"
                    .into(),
                details: None,
            });
        }
    }
    let audited = state
        .audit
        .as_ref()
        .filter(|_| audit::AuditLog::records(req.method()))
        .map(|log| {
            let user = req
                .extensions()
                .get::<UserInfo>()
                .cloned()
                .unwrap_or_else(UserInfo::admin);
            (
                log.clone(),
                req.method().clone(),
                req.uri().to_string(),
                user,
            )
        });
    let resp = match handle_inner(state, req).await {
        Ok(r) => r,
        Err(e) => error_response(&e),
    };
    if let Some((log, method, uri, user)) = audited {
        log.record(&method, &uri, &user, resp.status().as_u16());
    }
    if only_protobuf {
        return protobuf_answer(resp).await;
    }
    resp
}

async fn handle_inner(state: &ApiState, req: Request<Body>) -> Result<Response<Body>, ApiError> {
    let (parts, body) = req.into_parts();
    let query = Query::parse(&parts.uri)?;
    let route = path::parse(parts.uri.path());
    let body = read_body(body).await?;
    let user = parts
        .extensions
        .get::<UserInfo>()
        .cloned()
        .unwrap_or_else(UserInfo::admin);
    let r = Req {
        method: parts.method,
        headers: parts.headers,
        query,
        body,
        user,
    };
    let reg = state.store.registry();
    let read_only = |r: &Req| {
        if r.method == Method::GET || r.method == Method::HEAD {
            Ok(())
        } else {
            Err(ApiError::method_not_allowed(
                "the server does not allow this method on the requested resource",
            ))
        }
    };
    let not_found = || ApiError {
        code: 404,
        reason: "NotFound",
        message: "the server could not find the requested resource".into(),
        details: None,
    };
    match route {
        Route::Version => {
            read_only(&r)?;
            Ok(json_response(200, &discovery::version()))
        }
        Route::Health => {
            read_only(&r)?;
            Ok(Response::builder()
                .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
                .body(Body::from("ok"))
                .unwrap_or_default())
        }
        Route::CoreVersions => {
            read_only(&r)?;
            if wants_aggregated(&r.headers) {
                Ok(json_response_as(
                    200,
                    &discovery::aggregated(&reg, true),
                    discovery::AGGREGATED_CONTENT_TYPE,
                ))
            } else {
                Ok(json_response(
                    200,
                    &discovery::core_versions(&state.server_address),
                ))
            }
        }
        Route::Groups => {
            read_only(&r)?;
            if wants_aggregated(&r.headers) {
                Ok(json_response_as(
                    200,
                    &discovery::aggregated(&reg, false),
                    discovery::AGGREGATED_CONTENT_TYPE,
                ))
            } else {
                Ok(json_response(200, &discovery::group_list(&reg)))
            }
        }
        Route::Group(g) => {
            read_only(&r)?;
            discovery::group(&reg, &g)
                .map(|v| json_response(200, &v))
                .ok_or_else(not_found)
        }
        Route::ResourceList { group, version } => {
            read_only(&r)?;
            discovery::resource_list(&reg, &group, &version)
                .map(|v| json_response(200, &v))
                .ok_or_else(not_found)
        }
        Route::OpenApiV3(None) => {
            read_only(&r)?;
            Ok(json_response(200, &openapi::root(&reg)))
        }
        Route::OpenApiV3(Some(gv)) => {
            read_only(&r)?;
            openapi::group_version_doc(&reg, &gv)
                .map(|v| json_response(200, &v))
                .ok_or_else(not_found)
        }
        // Only v3 is served; clients fall back to it or skip schema use.
        Route::OpenApiV2 => Err(not_found()),
        Route::Unknown => Err(not_found()),
        Route::Resource(p) => resource::dispatch(state, &reg, p, r).await,
    }
}

/// Whether the client asks for aggregated discovery (apidiscovery.k8s.io/v2).
fn wants_aggregated(headers: &HeaderMap) -> bool {
    accept_entries(headers).iter().any(|params| {
        let has = |k: &str, v: &str| params.iter().any(|(pk, pv)| pk == k && pv == v);
        has("g", "apidiscovery.k8s.io") && has("v", "v2") && has("as", "APIGroupDiscoveryList")
    })
}

/// The `dryRun` query parameter: only "All" is valid.
pub(crate) fn dry_run(q: &Query) -> Result<bool, ApiError> {
    match q.get("dryRun") {
        None | Some("") => Ok(false),
        Some("All") => Ok(true),
        Some(other) => Err(ApiError::bad_request(format!(
            "dryRun: Unsupported value: \"{other}\": supported values: \"All\""
        ))),
    }
}

/// DeleteOptions from a decoded body (a DeleteOptions object, or an
/// Eviction's `deleteOptions`) and the query.
fn parse_delete_options(body: &Value, query: &Query) -> Result<DeleteOptions, ApiError> {
    let mut dry = dry_run(query)?;
    if let Some(d) = body.get("dryRun").and_then(Value::as_array) {
        for v in d {
            match v.as_str() {
                Some("All") => dry = true,
                other => {
                    return Err(ApiError::bad_request(format!(
                        "dryRun: Unsupported value: {}: supported values: \"All\"",
                        other
                            .map(|s| format!("{s:?}"))
                            .unwrap_or_else(|| v.to_string())
                    )))
                }
            }
        }
    }
    let mut propagation = body
        .get("propagationPolicy")
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| query.get("propagationPolicy").map(str::to_string));
    if body.get("orphanDependents") == Some(&json!(true)) || query.flag("orphanDependents") {
        propagation = Some("Orphan".into());
    }
    if let Some(p) = &propagation {
        if !matches!(p.as_str(), "Orphan" | "Background" | "Foreground") {
            return Err(ApiError::bad_request(format!(
                "propagationPolicy: Unsupported value: \"{p}\": supported values: \"Foreground\", \"Background\", \"Orphan\""
            )));
        }
    }
    let pre = |k: &str| {
        body.pointer(&format!("/preconditions/{k}"))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let grace_period_seconds = match body.get("gracePeriodSeconds") {
        Some(Value::Null) | None => match query.get("gracePeriodSeconds") {
            None | Some("") => None,
            Some(g) => Some(g.parse::<i64>().map_err(|_| {
                ApiError::bad_request(format!(
                    "gracePeriodSeconds: Invalid value: {g:?}: must be an integer"
                ))
            })?),
        },
        Some(g) => Some(g.as_i64().ok_or_else(|| {
            ApiError::bad_request(format!(
                "gracePeriodSeconds: Invalid value: {g}: must be an integer"
            ))
        })?),
    };
    Ok(DeleteOptions {
        dry_run: dry,
        propagation_policy: propagation,
        resource_version: pre("resourceVersion"),
        uid: pre("uid"),
        grace_period_seconds,
    })
}

/// Rejects an unknown `fieldValidation` value, as the server does.
pub(crate) fn check_field_validation(q: &Query) -> Result<(), ApiError> {
    match q.get("fieldValidation") {
        None | Some("" | "Ignore" | "Warn" | "Strict") => Ok(()),
        Some(other) => Err(ApiError::bad_request(format!(
            "fieldValidation: Unsupported value: \"{other}\": supported values: \"Ignore\", \"Strict\", \"Warn\""
        ))),
    }
}

/// A Status for a successful delete of a collection or an immediate delete.
pub(crate) fn success_status(details: Value) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details})
}

#[cfg(test)]
mod tests;
