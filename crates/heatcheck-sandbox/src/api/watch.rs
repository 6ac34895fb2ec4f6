//! Watch: newline-delimited JSON events streamed with chunked encoding.
//! Selectors filter events the way the server does (an object that stops
//! matching is reported as DELETED, one that starts matching as ADDED); a
//! too-old resourceVersion is an ERROR event carrying a 410 Status.

use std::collections::HashSet;
use std::convert::Infallible;
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use http::{header, Response};
use serde_json::{json, Value};
use tokio::sync::broadcast::error::RecvError;

use super::select::{partial, selectable_fields, selectors};
use super::table::{self, IncludeObject};
use super::{ApiState, Req};
use crate::error::ApiError;
use crate::registry::ResourceType;
use crate::selector::{FieldSelector, LabelSelector};
use crate::store::{EventType, WatchEvent};

/// How often a watch with allowWatchBookmarks gets a BOOKMARK.
const BOOKMARK_EVERY: Duration = Duration::from_secs(10);
/// A watch without timeoutSeconds ends after this, as the server's default.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1800);

enum Repr {
    Full,
    Table { include: IncludeObject, first: bool },
    Partial,
}

struct Render {
    rt: ResourceType,
    label: LabelSelector,
    field: FieldSelector,
    /// Objects reported as matching so far (only tracked with selectors).
    matched: HashSet<(Option<String>, String)>,
    repr: Repr,
}

impl Render {
    fn event(&mut self, ev: &WatchEvent) -> Option<Bytes> {
        let obj = &*ev.object;
        let t = if self.label.is_empty() && self.field.is_empty() {
            ev.event_type
        } else {
            let now = self.label.matches(obj) && self.field.matches(obj);
            let id = (ev.namespace.clone(), ev.name.clone());
            let was = self.matched.contains(&id);
            match (ev.event_type, now, was) {
                (EventType::Added, true, _) | (EventType::Modified, true, false) => {
                    self.matched.insert(id);
                    EventType::Added
                }
                (EventType::Modified, true, true) => EventType::Modified,
                (EventType::Modified, false, true) => {
                    self.matched.remove(&id);
                    EventType::Deleted
                }
                (EventType::Deleted, m, w) if m || w => {
                    self.matched.remove(&id);
                    EventType::Deleted
                }
                _ => return None,
            }
        };
        let object = self.represent(obj);
        Some(line(t.as_str(), object))
    }

    fn represent(&mut self, obj: &Value) -> Value {
        match &mut self.repr {
            Repr::Full => obj.clone(),
            Repr::Partial => partial(obj),
            Repr::Table { include, first } => {
                let rv = obj
                    .pointer("/metadata/resourceVersion")
                    .cloned()
                    .unwrap_or(json!(""));
                let mut t = table::table(
                    &self.rt,
                    std::slice::from_ref(obj),
                    *include,
                    json!({"resourceVersion": rv}),
                );
                // Column definitions go with the first event only, as the server sends them.
                if !*first {
                    t["columnDefinitions"] = json!([]);
                }
                *first = false;
                t
            }
        }
    }

    fn bookmark(&self, rv: u64, initial_end: bool) -> Bytes {
        let mut meta = json!({"resourceVersion": rv.to_string()});
        if initial_end {
            meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        line(
            "BOOKMARK",
            json!({"kind": self.rt.kind, "apiVersion": self.rt.api_version(), "metadata": meta}),
        )
    }
}

fn line(t: &str, object: Value) -> Bytes {
    let mut v = serde_json::to_vec(&json!({"type": t, "object": object})).unwrap_or_default();
    v.push(b'\n');
    Bytes::from(v)
}

fn error_line(e: &ApiError) -> Bytes {
    line("ERROR", e.status())
}

enum Next {
    Event(WatchEvent),
    Bookmark,
    Lagged,
    End,
}

pub(super) fn watch(
    state: &ApiState,
    rt: &ResourceType,
    ns: Option<&str>,
    name: Option<&str>,
    r: &Req,
) -> Result<Response<Body>, ApiError> {
    let (label, mut field) = selectors(rt, r)?;
    if let Some(name) = name {
        // A watch on a named URL is a watch with metadata.name selected.
        let mut f = format!("metadata.name={name}");
        if let Some(extra) = r.query.get("fieldSelector").filter(|s| !s.is_empty()) {
            f = format!("{f},{extra}");
        }
        field = FieldSelector::parse(&f, selectable_fields(rt))
            .map_err(|e| ApiError::bad_request(e.0))?;
    }
    let from = match r.query.get("resourceVersion") {
        None | Some("") => None,
        Some(v) => Some(v.parse::<u64>().map_err(|_| {
            ApiError::bad_request(format!(
                "resourceVersion: Invalid value: {v:?}: must be a number"
            ))
        })?),
    };
    let send_initial = r.query.flag("sendInitialEvents");
    let bookmarks = r.query.flag("allowWatchBookmarks");
    let timeout = match r.query.get("timeoutSeconds") {
        None | Some("") => DEFAULT_TIMEOUT,
        Some(s) => Duration::from_secs(s.parse::<u64>().map_err(|_| {
            ApiError::bad_request(format!(
                "timeoutSeconds: Invalid value: {s:?}: must be a non-negative integer"
            ))
        })?),
    };
    let repr = if r.accepts_as("Table") {
        let include =
            IncludeObject::parse(r.query.get("includeObject")).map_err(ApiError::bad_request)?;
        Repr::Table {
            include,
            first: true,
        }
    } else if r.accepts_as("PartialObjectMetadata") {
        Repr::Partial
    } else {
        Repr::Full
    };
    let mut render = Render {
        rt: rt.clone(),
        label,
        field,
        matched: HashSet::new(),
        repr,
    };
    let key = rt.key();
    let ns = ns.map(str::to_string);
    let store = state.store.clone();
    let mut shutdown = state.shutdown.clone();
    let start_rv = store.resource_version();
    // sendInitialEvents replays the current state whatever the version.
    let from = if send_initial { None } else { from };
    let opened = store.watch(&key, ns.as_deref(), from);

    let stream = async_stream::stream! {
        let (backlog, mut rx) = match opened {
            Ok(x) => x,
            Err(e) => {
                yield Ok::<Bytes, Infallible>(error_line(&e));
                return;
            }
        };
        let mut last_rv = backlog.iter().map(|e| e.rv).max().unwrap_or(0).max(start_rv);
        for ev in &backlog {
            if let Some(l) = render.event(ev) {
                yield Ok(l);
            }
        }
        if send_initial {
            yield Ok(render.bookmark(last_rv, true));
        }
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut ticker = tokio::time::interval(BOOKMARK_EVERY);
        ticker.tick().await;
        loop {
            if *shutdown.borrow() {
                break;
            }
            let next = tokio::select! {
                _ = &mut deadline => Next::End,
                changed = shutdown.changed() => if changed.is_err() { Next::End } else { continue },
                _ = ticker.tick(), if bookmarks => Next::Bookmark,
                ev = rx.recv() => match ev {
                    Ok(ev) => Next::Event(ev),
                    Err(RecvError::Lagged(_)) => Next::Lagged,
                    Err(RecvError::Closed) => Next::End,
                },
            };
            match next {
                Next::End => break,
                Next::Bookmark => yield Ok(render.bookmark(last_rv, false)),
                Next::Lagged => {
                    // Events were dropped: the client must relist.
                    yield Ok(error_line(&ApiError::gone(format!("too old resource version: {last_rv}"))));
                    break;
                }
                Next::Event(ev) => {
                    last_rv = last_rv.max(ev.rv);
                    let ns_ok = ns.is_none() || ev.namespace == ns;
                    if ev.key == key && ns_ok {
                        if let Some(l) = render.event(&ev) {
                            yield Ok(l);
                        }
                    }
                }
            }
        }
    };
    let content_type = render_kind_hint(r).unwrap_or("application/json");
    Ok(Response::builder()
        .status(200)
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CACHE_CONTROL, "no-cache, private")
        .body(Body::from_stream(stream))
        .unwrap_or_default())
}

fn render_kind_hint(r: &Req) -> Option<&'static str> {
    if r.accepts_as("Table") {
        Some("application/json;as=Table;v=v1;g=meta.k8s.io")
    } else {
        None
    }
}
