//! The sandbox's object store: every object of every served kind, one
//! cluster-wide resourceVersion counter, and the event history that watches
//! resume from. All server-side metadata rules live here, so the HTTP layer
//! and the in-process controllers get identical behaviour.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, RwLock};

use serde_json::{json, Map, Value};
use tokio::sync::broadcast;

use super::error::ApiError;
use super::registry::{crd_type, Registry, ResKey, ResourceType};

/// How many past events a watch can resume from.
const HISTORY: usize = 20_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct WatchEvent {
    pub event_type: EventType,
    pub key: ResKey,
    pub namespace: Option<String>,
    pub name: String,
    pub rv: u64,
    pub object: Arc<Value>,
}

/// Options common to writes.
#[derive(Clone, Debug, Default)]
pub struct WriteOptions {
    /// dryRun=All: validate and compute, persist nothing.
    pub(crate) dry_run: bool,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct DeleteOptions {
    pub(crate) dry_run: bool,
    /// "Orphan" keeps dependents; anything else deletes them (background GC).
    pub propagation_policy: Option<String>,
    /// Precondition: the object's resourceVersion must still be this.
    pub resource_version: Option<String>,
    pub uid: Option<String>,
    /// gracePeriodSeconds: how long a pod may take to stop (None: its
    /// spec's terminationGracePeriodSeconds; 0: remove it at once).
    pub grace_period_seconds: Option<i64>,
}

/// One page of a list.
#[derive(Debug)]
pub struct ListPage {
    pub items: Vec<Value>,
    pub(crate) resource_version: u64,
    /// Key of the last returned item when more remain.
    pub next: Option<(String, String)>,
    /// Items left after this page (remainingItemCount).
    pub(crate) remaining: usize,
}

type ObjKey = (String, String);
type Objects = BTreeMap<ObjKey, Arc<Value>>;
type ObjIter<'a> = Box<dyn Iterator<Item = (&'a ObjKey, &'a Arc<Value>)> + 'a>;

struct State {
    rv: u64,
    registry: Registry,
    objects: HashMap<ResKey, Objects>,
    history: VecDeque<WatchEvent>,
}

/// Cheap to clone; all clones share one store.
#[derive(Clone)]
pub struct Store {
    state: Arc<RwLock<State>>,
    events: broadcast::Sender<WatchEvent>,
}

impl Default for Store {
    fn default() -> Self {
        Self::new()
    }
}

pub(crate) fn now_rfc3339() -> String {
    // Second precision, as the API server stores metav1.Time.
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn ns_key(ns: Option<&str>) -> String {
    ns.unwrap_or_default().to_string()
}

impl Store {
    pub fn new() -> Self {
        let (events, _) = broadcast::channel(65_536);
        let store = Store {
            state: Arc::new(RwLock::new(State {
                rv: 1000,
                registry: Registry::default(),
                objects: HashMap::new(),
                history: VecDeque::new(),
            })),
            events,
        };
        let nsk = ResKey::new("", "namespaces");
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            store
                .create(
                    &nsk,
                    None,
                    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
                    &WriteOptions::default(),
                )
                .expect("initial namespaces");
        }
        store
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn resource_version(&self) -> u64 {
        self.read().rv
    }

    pub(crate) fn registry(&self) -> Registry {
        self.read().registry.clone()
    }

    /// Every event from now on, for in-process controllers.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<WatchEvent> {
        self.events.subscribe()
    }

    pub fn get(&self, key: &ResKey, ns: Option<&str>, name: &str) -> Result<Value, ApiError> {
        let st = self.read();
        let rt = st.type_of(key)?;
        st.objects
            .get(key)
            .and_then(|m| m.get(&(ns_key(ns), name.to_string())))
            .map(|v| (**v).clone())
            .ok_or_else(|| ApiError::not_found(&rt.group, &rt.plural, name))
    }

    /// Objects of a kind, in (namespace, name) order. `ns = None` lists across
    /// namespaces. `filter` selects (label/field selectors); `limit` counts
    /// selected items; `after` continues behind a previous page's last key.
    pub fn list(
        &self,
        key: &ResKey,
        ns: Option<&str>,
        filter: &dyn Fn(&Value) -> bool,
        limit: Option<usize>,
        after: Option<&(String, String)>,
    ) -> Result<ListPage, ApiError> {
        let st = self.read();
        st.type_of(key)?;
        let mut items = Vec::new();
        let mut next = None;
        let mut remaining = 0;
        if let Some(objs) = st.objects.get(key) {
            let range: ObjIter<'_> = match after {
                Some(a) => Box::new(objs.range::<(String, String), _>((
                    std::ops::Bound::Excluded(a.clone()),
                    std::ops::Bound::Unbounded,
                ))),
                None => Box::new(objs.iter()),
            };
            for (k, v) in range {
                if let Some(ns) = ns {
                    if k.0 != ns {
                        continue;
                    }
                }
                if !filter(v) {
                    continue;
                }
                if limit.is_some_and(|l| items.len() >= l) {
                    remaining += 1;
                    continue;
                }
                if limit.is_some_and(|l| items.len() + 1 == l) {
                    next = Some(k.clone());
                }
                items.push((**v).clone());
            }
        }
        if remaining == 0 {
            next = None;
        }
        Ok(ListPage {
            items,
            resource_version: st.rv,
            next,
            remaining,
        })
    }

    /// Events after `from` (exclusive) for one kind (and namespace), plus a
    /// receiver for what follows, taken atomically. `from = None` starts with a
    /// synthetic ADDED for every current object, as a watch without
    /// resourceVersion does. Too old a version gets 410 Gone.
    pub(crate) fn watch(
        &self,
        key: &ResKey,
        ns: Option<&str>,
        from: Option<u64>,
    ) -> Result<(Vec<WatchEvent>, broadcast::Receiver<WatchEvent>), ApiError> {
        let st = self.write();
        st.type_of(key)?;
        let rx = self.events.subscribe();
        let matches =
            |e: &WatchEvent| &e.key == key && (ns.is_none() || e.namespace.as_deref() == ns);
        let backlog = match from {
            None | Some(0) => st
                .objects
                .get(key)
                .map(|m| {
                    m.iter()
                        .filter(|((n, _), _)| ns.is_none_or(|ns| n == ns))
                        .map(|((n, name), o)| WatchEvent {
                            event_type: EventType::Added,
                            key: key.clone(),
                            namespace: if n.is_empty() { None } else { Some(n.clone()) },
                            name: name.clone(),
                            rv: o
                                .pointer("/metadata/resourceVersion")
                                .and_then(Value::as_str)
                                .and_then(|s| s.parse().ok())
                                .unwrap_or(0),
                            object: o.clone(),
                        })
                        .collect()
                })
                .unwrap_or_default(),
            Some(rv) => {
                let oldest = st.history.front().map(|e| e.rv).unwrap_or(st.rv + 1);
                if rv + 1 < oldest && rv < st.rv {
                    return Err(ApiError::gone(format!(
                        "too old resource version: {rv} ({})",
                        oldest - 1
                    )));
                }
                st.history
                    .iter()
                    .filter(|e| e.rv > rv && matches(e))
                    .cloned()
                    .collect()
            }
        };
        Ok((backlog, rx))
    }

    #[allow(clippy::too_many_arguments)]
    fn emit(
        &self,
        st: &mut State,
        t: EventType,
        key: &ResKey,
        ns: Option<&str>,
        name: &str,
        rv: u64,
        obj: Arc<Value>,
    ) {
        let ev = WatchEvent {
            event_type: t,
            key: key.clone(),
            namespace: ns.map(str::to_string),
            name: name.to_string(),
            rv,
            object: obj,
        };
        if st.history.len() >= HISTORY {
            st.history.pop_front();
        }
        st.history.push_back(ev.clone());
        // No receiver is fine: nobody is watching.
        let _ = self.events.send(ev);
    }
}

#[derive(Clone, Copy)]
enum Part {
    Main,
    Status,
}

impl State {
    fn bump(&mut self) -> u64 {
        self.rv += 1;
        self.rv
    }

    fn type_of(&self, key: &ResKey) -> Result<&ResourceType, ApiError> {
        self.registry.by_key(key).ok_or_else(|| ApiError {
            code: 404,
            reason: "NotFound",
            message: format!("the server could not find the requested resource ({key})"),
            details: None,
        })
    }

    fn exists(&self, key: &ResKey, ns: Option<&str>, name: &str) -> bool {
        self.objects
            .get(key)
            .is_some_and(|m| m.contains_key(&(ns_key(ns), name.to_string())))
    }
}

mod delete;
mod meta;
#[cfg(test)]
mod tests;
mod write;

pub(crate) use meta::random_suffix;
use meta::*;
