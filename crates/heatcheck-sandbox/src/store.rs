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
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

#[derive(Clone, Debug)]
pub struct WatchEvent {
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
    pub dry_run: bool,
}

#[derive(Clone, Debug, Default)]
pub struct DeleteOptions {
    pub dry_run: bool,
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
    pub resource_version: u64,
    /// Key of the last returned item when more remain.
    pub next: Option<(String, String)>,
    /// Items left after this page (remainingItemCount).
    pub remaining: usize,
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

pub fn now_rfc3339() -> String {
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

    pub fn resource_version(&self) -> u64 {
        self.read().rv
    }

    pub fn registry(&self) -> Registry {
        self.read().registry.clone()
    }

    pub fn resource_type(&self, key: &ResKey) -> Option<ResourceType> {
        self.read().registry.by_key(key).cloned()
    }

    /// Every event from now on, for in-process controllers.
    pub fn subscribe(&self) -> broadcast::Receiver<WatchEvent> {
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

    /// Creates an object, setting server metadata as the API server does.
    pub fn create(
        &self,
        key: &ResKey,
        ns: Option<&str>,
        obj: Value,
        opts: &WriteOptions,
    ) -> Result<Value, ApiError> {
        let mut st = self.write();
        let rt = st.type_of(key)?.clone();
        let mut obj = obj;
        if !obj.is_object() {
            return Err(ApiError::bad_request(
                "the body of the request must be a JSON object",
            ));
        }
        check_type_meta(&rt, &st.registry, &mut obj)?;
        let ns = effective_namespace(&rt, ns, &obj)?;
        let meta = metadata_mut(&mut obj)?;
        if let Some(ns) = &ns {
            meta.insert("namespace".into(), json!(ns));
        } else {
            meta.remove("namespace");
        }
        // generateName: append 5 random characters, as the server does.
        let has_name = meta
            .get("name")
            .and_then(Value::as_str)
            .is_some_and(|n| !n.is_empty());
        if !has_name {
            if let Some(prefix) = meta.get("generateName").and_then(Value::as_str) {
                let name = format!("{prefix}{}", random_suffix(5));
                meta.insert("name".into(), json!(name));
            }
        }
        let name = meta
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        validate_name(&rt, &name)?;
        super::validate::validate(&rt, &obj)?;
        if let Some(ns) = &ns {
            if !st.exists(&ResKey::new("", "namespaces"), None, ns) {
                return Err(ApiError::namespace_not_found(ns));
            }
            let terminating = st
                .objects
                .get(&ResKey::new("", "namespaces"))
                .and_then(|m| m.get(&(String::new(), ns.clone())))
                .is_some_and(|n| n.pointer("/metadata/deletionTimestamp").is_some());
            if terminating {
                return Err(ApiError {
                    code: 403,
                    reason: "Forbidden",
                    message: format!("{} \"{name}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated", rt.plural),
                    details: None,
                });
            }
        }
        if st.exists(key, ns.as_deref(), &name) {
            return Err(ApiError::already_exists(&rt.group, &rt.plural, &name));
        }
        let meta = metadata_mut(&mut obj)?;
        for server_field in [
            "uid",
            "resourceVersion",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "selfLink",
            "managedFields",
        ] {
            meta.remove(server_field);
        }
        meta.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
        meta.insert("creationTimestamp".into(), json!(now_rfc3339()));
        if rt.tracks_generation() {
            meta.insert("generation".into(), json!(1));
        } else {
            meta.remove("generation");
        }
        if rt.has_status() && rt.plural != "pods" && rt.plural != "namespaces" {
            // Status belongs to controllers; a create cannot set it.
            if let Some(o) = obj.as_object_mut() {
                o.remove("status");
            }
        }
        if rt.group.is_empty() && rt.plural == "persistentvolumeclaims" {
            // No provisioner binds it: it stays Pending, as on a cluster without one.
            obj["status"] = json!({"phase": "Pending"});
        }
        if rt.group.is_empty() && rt.plural == "namespaces" {
            obj["spec"] = json!({"finalizers": ["kubernetes"]});
            obj["status"] = json!({"phase": "Active"});
            let labels = obj["metadata"]
                .as_object_mut()
                .expect("metadata is an object")
                .entry("labels")
                .or_insert_with(|| json!({}));
            if let Some(l) = labels.as_object_mut() {
                l.insert("kubernetes.io/metadata.name".into(), json!(name));
            }
        }
        let crd = if rt.group == "apiextensions.k8s.io" && rt.plural == "customresourcedefinitions"
        {
            let t = crd_type(&obj).map_err(|m| {
                ApiError::invalid(&rt.group, &rt.kind, &name, &[("spec".into(), m)])
            })?;
            if let Some(existing) = st.registry.by_key(&t.key()) {
                if existing.crd.is_none() {
                    return Err(ApiError::invalid(
                        &rt.group,
                        &rt.kind,
                        &name,
                        &[(
                            "spec.names.plural".into(),
                            format!("{} is a built-in resource", t.key()),
                        )],
                    ));
                }
            }
            obj["status"] = json!({
                "conditions": [
                    {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found", "lastTransitionTime": now_rfc3339()},
                    {"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "message": "the initial names have been accepted", "lastTransitionTime": now_rfc3339()}
                ],
                "acceptedNames": obj["spec"]["names"].clone(),
                "storedVersions": [t.version.clone()],
            });
            true
        } else {
            false
        };
        if opts.dry_run {
            return Ok(obj);
        }
        if crd {
            let _ = st.registry.register_crd(&obj);
        }
        let rv = st.bump();
        obj["metadata"]["resourceVersion"] = json!(rv.to_string());
        let obj = Arc::new(obj);
        st.objects
            .entry(key.clone())
            .or_default()
            .insert((ns_key(ns.as_deref()), name.clone()), obj.clone());
        self.emit(
            &mut st,
            EventType::Added,
            key,
            ns.as_deref(),
            &name,
            rv,
            obj.clone(),
        );
        Ok((*obj).clone())
    }

    /// Replaces an object (PUT). A non-empty resourceVersion in `obj` must match
    /// the stored one (optimistic concurrency). For kinds with a status
    /// subresource the status is kept; use `update_status` for it.
    pub fn update(
        &self,
        key: &ResKey,
        ns: Option<&str>,
        name: &str,
        obj: Value,
        opts: &WriteOptions,
    ) -> Result<Value, ApiError> {
        self.replace(key, ns, name, obj, opts, Part::Main)
    }

    /// Replaces only `.status` (PUT .../status).
    pub fn update_status(
        &self,
        key: &ResKey,
        ns: Option<&str>,
        name: &str,
        obj: Value,
        opts: &WriteOptions,
    ) -> Result<Value, ApiError> {
        self.replace(key, ns, name, obj, opts, Part::Status)
    }

    fn replace(
        &self,
        key: &ResKey,
        ns: Option<&str>,
        name: &str,
        obj: Value,
        opts: &WriteOptions,
        part: Part,
    ) -> Result<Value, ApiError> {
        let mut st = self.write();
        let rt = st.type_of(key)?.clone();
        let mut obj = obj;
        if !obj.is_object() {
            return Err(ApiError::bad_request(
                "the body of the request must be a JSON object",
            ));
        }
        check_type_meta(&rt, &st.registry, &mut obj)?;
        let ns = effective_namespace(&rt, ns, &obj)?;
        let body_name = obj
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if body_name != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        let current = st
            .objects
            .get(key)
            .and_then(|m| m.get(&(ns_key(ns.as_deref()), name.to_string())))
            .cloned()
            .ok_or_else(|| ApiError::not_found(&rt.group, &rt.plural, name))?;
        let wanted_rv = obj
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let current_rv = current
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !wanted_rv.is_empty() && wanted_rv != current_rv {
            return Err(ApiError::conflict(&rt.group, &rt.plural, name, "the object has been modified; please apply your changes to the latest version and try again"));
        }
        let mut next = match part {
            Part::Main => {
                let mut next = obj;
                if rt.has_status() {
                    match current.get("status") {
                        Some(s) => next["status"] = s.clone(),
                        None => {
                            if let Some(o) = next.as_object_mut() {
                                o.remove("status");
                            }
                        }
                    }
                }
                next
            }
            Part::Status => {
                if !rt.has_status() {
                    return Err(ApiError::not_found(
                        &rt.group,
                        &format!("{}/status", rt.plural),
                        name,
                    ));
                }
                let mut next = (*current).clone();
                match obj.get("status") {
                    Some(s) => next["status"] = s.clone(),
                    None => {
                        if let Some(o) = next.as_object_mut() {
                            o.remove("status");
                        }
                    }
                }
                next
            }
        };
        // Server-owned metadata always comes from the stored object.
        {
            let cur_meta = current
                .get("metadata")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            let meta = metadata_mut(&mut next)?;
            for f in [
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "generation",
                "namespace",
                "name",
            ] {
                match cur_meta.get(f) {
                    Some(v) => {
                        meta.insert(f.into(), v.clone());
                    }
                    None => {
                        meta.remove(f);
                    }
                }
            }
            meta.insert("resourceVersion".into(), json!(current_rv));
        }
        if rt.plural == "namespaces" && rt.group.is_empty() {
            next["spec"] = current.get("spec").cloned().unwrap_or(json!({}));
        }
        if matches!(part, Part::Main) {
            super::validate::validate(&rt, &next)?;
        }
        if rt.tracks_generation() && spec_changed(&current, &next) {
            let g = current
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            next["metadata"]["generation"] = json!(g + 1);
        }
        if *current == next {
            // A no-op write changes nothing, not even the resourceVersion.
            return Ok(next);
        }
        if opts.dry_run {
            return Ok(next);
        }
        let deleting = next.pointer("/metadata/deletionTimestamp").is_some();
        let no_finalizers = next
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .is_none_or(|f| f.is_empty());
        // A pod still in its grace period waits for its kubelet instead.
        let graceful = next
            .pointer("/metadata/deletionGracePeriodSeconds")
            .and_then(Value::as_i64)
            .is_some_and(|g| g > 0);
        if deleting && no_finalizers && !graceful {
            // The last finalizer is gone: the object goes now.
            let rv = st.bump();
            next["metadata"]["resourceVersion"] = json!(rv.to_string());
            let next = Arc::new(next);
            self.remove_locked(&mut st, key, ns.as_deref(), name, rv, next.clone(), true);
            return Ok((*next).clone());
        }
        let rv = st.bump();
        next["metadata"]["resourceVersion"] = json!(rv.to_string());
        let next = Arc::new(next);
        st.objects
            .entry(key.clone())
            .or_default()
            .insert((ns_key(ns.as_deref()), name.to_string()), next.clone());
        self.emit(
            &mut st,
            EventType::Modified,
            key,
            ns.as_deref(),
            name,
            rv,
            next.clone(),
        );
        Ok((*next).clone())
    }

    /// Deletes an object. With finalizers it only gets a deletionTimestamp;
    /// without, it is removed and its dependents (ownerReferences) follow.
    pub fn delete(
        &self,
        key: &ResKey,
        ns: Option<&str>,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<Value, ApiError> {
        let mut st = self.write();
        let rt = st.type_of(key)?.clone();
        let ns = if rt.namespaced {
            ns.map(str::to_string)
        } else {
            None
        };
        let current = st
            .objects
            .get(key)
            .and_then(|m| m.get(&(ns_key(ns.as_deref()), name.to_string())))
            .cloned()
            .ok_or_else(|| ApiError::not_found(&rt.group, &rt.plural, name))?;
        if let Some(want) = &opts.resource_version {
            if current
                .pointer("/metadata/resourceVersion")
                .and_then(Value::as_str)
                != Some(want.as_str())
            {
                return Err(ApiError::conflict(&rt.group, &rt.plural, name, "the object has been modified; please apply your changes to the latest version and try again"));
            }
        }
        if let Some(want) = &opts.uid {
            if current.pointer("/metadata/uid").and_then(Value::as_str) != Some(want.as_str()) {
                return Err(ApiError::conflict(
                    &rt.group,
                    &rt.plural,
                    name,
                    &format!(
                        "Precondition failed: UID in precondition: {want}, UID in object meta: {}",
                        current
                            .pointer("/metadata/uid")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                    ),
                ));
            }
        }
        if opts.dry_run {
            return Ok((*current).clone());
        }
        let has_finalizers = current
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|f| !f.is_empty());
        let grace = pod_grace_period(key, &current, opts.grace_period_seconds);
        if let Some(grace) = grace {
            // A running pod is only marked: it stays Terminating until its
            // kubelet removes it (with grace 0) once the containers stopped.
            let marked = current
                .pointer("/metadata/deletionGracePeriodSeconds")
                .and_then(Value::as_i64);
            if marked.is_some_and(|g| g <= grace) {
                // A second delete may shorten the grace period, never extend it.
                return Ok((*current).clone());
            }
            let mut next = (*current).clone();
            let at = chrono::Utc::now() + chrono::Duration::seconds(grace);
            next["metadata"]["deletionTimestamp"] =
                json!(at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
            next["metadata"]["deletionGracePeriodSeconds"] = json!(grace);
            let rv = st.bump();
            next["metadata"]["resourceVersion"] = json!(rv.to_string());
            let next = Arc::new(next);
            st.objects
                .entry(key.clone())
                .or_default()
                .insert((ns_key(ns.as_deref()), name.to_string()), next.clone());
            self.emit(
                &mut st,
                EventType::Modified,
                key,
                ns.as_deref(),
                name,
                rv,
                next.clone(),
            );
            return Ok((*next).clone());
        }
        // Namespaces carry spec.finalizers; the sandbox finalizes them at once.
        if has_finalizers {
            if current.pointer("/metadata/deletionTimestamp").is_some() {
                return Ok((*current).clone());
            }
            let mut next = (*current).clone();
            next["metadata"]["deletionTimestamp"] = json!(now_rfc3339());
            next["metadata"]["deletionGracePeriodSeconds"] = json!(0);
            let rv = st.bump();
            next["metadata"]["resourceVersion"] = json!(rv.to_string());
            let next = Arc::new(next);
            st.objects
                .entry(key.clone())
                .or_default()
                .insert((ns_key(ns.as_deref()), name.to_string()), next.clone());
            self.emit(
                &mut st,
                EventType::Modified,
                key,
                ns.as_deref(),
                name,
                rv,
                next.clone(),
            );
            return Ok((*next).clone());
        }
        let rv = st.bump();
        let mut gone = (*current).clone();
        gone["metadata"]["resourceVersion"] = json!(rv.to_string());
        let gone = Arc::new(gone);
        let orphan = opts.propagation_policy.as_deref() == Some("Orphan");
        self.remove_locked(&mut st, key, ns.as_deref(), name, rv, gone.clone(), !orphan);
        Ok((*gone).clone())
    }

    /// Removes an object that is gone for good, then whatever depended on it:
    /// dependents by ownerReference, a namespace's content, a CRD's objects.
    #[allow(clippy::too_many_arguments)]
    fn remove_locked(
        &self,
        st: &mut State,
        key: &ResKey,
        ns: Option<&str>,
        name: &str,
        rv: u64,
        gone: Arc<Value>,
        cascade: bool,
    ) {
        if let Some(m) = st.objects.get_mut(key) {
            m.remove(&(ns_key(ns), name.to_string()));
        }
        self.emit(st, EventType::Deleted, key, ns, name, rv, gone.clone());
        if key.group.is_empty() && key.plural == "namespaces" {
            let keys: Vec<ResKey> = st.objects.keys().cloned().collect();
            for k in keys {
                let victims: Vec<((String, String), Arc<Value>)> = st.objects[&k]
                    .iter()
                    .filter(|((n, _), _)| n == name)
                    .map(|(a, b)| (a.clone(), b.clone()))
                    .collect();
                for ((vns, vname), obj) in victims {
                    let rv = st.bump();
                    let mut o = (*obj).clone();
                    o["metadata"]["resourceVersion"] = json!(rv.to_string());
                    self.remove_locked(st, &k, Some(&vns), &vname, rv, Arc::new(o), false);
                }
            }
        }
        if key.group == "apiextensions.k8s.io" && key.plural == "customresourcedefinitions" {
            if let Some(t) = st.registry.unregister_crd(name) {
                let tk = t.key();
                let victims: Vec<((String, String), Arc<Value>)> = st
                    .objects
                    .get(&tk)
                    .map(|m| m.iter().map(|(a, b)| (a.clone(), b.clone())).collect())
                    .unwrap_or_default();
                for ((vns, vname), obj) in victims {
                    let rv = st.bump();
                    let mut o = (*obj).clone();
                    o["metadata"]["resourceVersion"] = json!(rv.to_string());
                    let vns = if vns.is_empty() {
                        None
                    } else {
                        Some(vns.as_str())
                    };
                    self.remove_locked(st, &tk, vns, &vname, rv, Arc::new(o), false);
                }
                st.objects.remove(&tk);
            }
        }
        if cascade {
            if let Some(uid) = gone.pointer("/metadata/uid").and_then(Value::as_str) {
                let mut dependents = Vec::new();
                for (k, objs) in &st.objects {
                    for ((dns, dname), o) in objs {
                        let owned = o
                            .pointer("/metadata/ownerReferences")
                            .and_then(Value::as_array)
                            .is_some_and(|refs| {
                                refs.iter()
                                    .any(|r| r.get("uid").and_then(Value::as_str) == Some(uid))
                            });
                        if owned {
                            dependents.push((k.clone(), dns.clone(), dname.clone(), o.clone()));
                        }
                    }
                }
                for (k, dns, dname, o) in dependents {
                    let rv = st.bump();
                    let mut o = (*o).clone();
                    o["metadata"]["resourceVersion"] = json!(rv.to_string());
                    let dns = if dns.is_empty() {
                        None
                    } else {
                        Some(dns.as_str())
                    };
                    self.remove_locked(st, &k, dns, &dname, rv, Arc::new(o), true);
                }
            }
        }
    }

    /// Events after `from` (exclusive) for one kind (and namespace), plus a
    /// receiver for what follows, taken atomically. `from = None` starts with a
    /// synthetic ADDED for every current object, as a watch without
    /// resourceVersion does. Too old a version gets 410 Gone.
    pub fn watch(
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

    /// Number of stored objects (all kinds).
    pub fn len(&self) -> usize {
        self.read().objects.values().map(BTreeMap::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
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

fn metadata_mut(obj: &mut Value) -> Result<&mut Map<String, Value>, ApiError> {
    let o = obj
        .as_object_mut()
        .ok_or_else(|| ApiError::bad_request("the body of the request must be a JSON object"))?;
    let meta = o.entry("metadata").or_insert_with(|| json!({}));
    if meta.is_null() {
        *meta = json!({});
    }
    meta.as_object_mut()
        .ok_or_else(|| ApiError::bad_request("metadata must be an object"))
}

/// apiVersion/kind in the body must name the URL's resource; missing ones are filled in.
/// A kind served at several versions (ReferenceGrant v1 and v1beta1, same schema) is stored
/// once; the body may name any of them.
fn check_type_meta(rt: &ResourceType, reg: &Registry, obj: &mut Value) -> Result<(), ApiError> {
    let api_version = rt.api_version();
    let o = obj.as_object_mut().expect("checked by caller");
    match o.get("apiVersion").and_then(Value::as_str) {
        Some(v) if v != api_version && reg.by_kind(v, &rt.kind).is_some_and(|t| t.key() == rt.key()) => {}
        Some(v) if v != api_version => {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({v}) does not match the expected API version ({api_version})"
            )))
        }
        _ => {
            o.insert("apiVersion".into(), json!(api_version));
        }
    }
    match o.get("kind").and_then(Value::as_str) {
        Some(k) if k != rt.kind => {
            return Err(ApiError::bad_request(format!(
                "the kind in the data ({k}) does not match the expected kind ({})",
                rt.kind
            )))
        }
        _ => {
            o.insert("kind".into(), json!(rt.kind));
        }
    }
    Ok(())
}

fn effective_namespace(
    rt: &ResourceType,
    url_ns: Option<&str>,
    obj: &Value,
) -> Result<Option<String>, ApiError> {
    if !rt.namespaced {
        return Ok(None);
    }
    let body_ns = obj
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty());
    match (url_ns, body_ns) {
        (Some(u), Some(b)) if u != b => Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        )),
        (Some(u), _) => Ok(Some(u.to_string())),
        (None, Some(b)) => Ok(Some(b.to_string())),
        (None, None) => Ok(Some("default".to_string())),
    }
}

fn validate_name(rt: &ResourceType, name: &str) -> Result<(), ApiError> {
    let invalid = |msg: String| {
        ApiError::invalid(&rt.group, &rt.kind, name, &[("metadata.name".into(), msg)])
    };
    if name.is_empty() {
        return Err(invalid(
            "Required value: name or generateName is required".into(),
        ));
    }
    // RBAC names are path segments (`system:discovery`), as the real server's.
    if rt.group == "rbac.authorization.k8s.io" {
        let why = match name {
            "." | ".." => Some(format!("may not be '{name}'")),
            _ if name.contains('/') => Some("may not contain '/'".to_string()),
            _ if name.contains('%') => Some("may not contain '%'".to_string()),
            _ => None,
        };
        return match why {
            Some(w) => Err(invalid(format!("Invalid value: \"{name}\": {w}"))),
            None => Ok(()),
        };
    }
    // Namespaces and Services are DNS labels; everything else a DNS subdomain.
    let label = rt.group.is_empty() && (rt.plural == "namespaces" || rt.plural == "services");
    let max = if label { 63 } else { 253 };
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || (!label && c == '.'));
    let ends_ok = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .last()
            .is_some_and(|c| c.is_ascii_alphanumeric());
    if name.len() > max || !ok_chars || !ends_ok {
        let what = if label {
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character"
        } else {
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"
        };
        return Err(invalid(format!("Invalid value: \"{name}\": {what}")));
    }
    Ok(())
}

/// The spec is everything but metadata and status.
/// The grace period a delete gives a pod, as the API server's pod strategy
/// computes it; None when the pod goes at once: not a pod, grace 0, never
/// scheduled (no kubelet would stop it) or already finished.
fn pod_grace_period(key: &ResKey, pod: &Value, requested: Option<i64>) -> Option<i64> {
    if !(key.group.is_empty() && key.plural == "pods") {
        return None;
    }
    let scheduled = pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .is_some_and(|n| !n.is_empty());
    let finished = matches!(
        pod.pointer("/status/phase").and_then(Value::as_str),
        Some("Succeeded" | "Failed")
    );
    if !scheduled || finished {
        return None;
    }
    let grace = requested
        .or_else(|| {
            pod.pointer("/spec/terminationGracePeriodSeconds")
                .and_then(Value::as_i64)
        })
        .unwrap_or(DEFAULT_TERMINATION_GRACE_SECONDS)
        .max(0);
    (grace > 0).then_some(grace)
}

/// `terminationGracePeriodSeconds` when the pod does not say.
pub const DEFAULT_TERMINATION_GRACE_SECONDS: i64 = 30;

fn spec_changed(a: &Value, b: &Value) -> bool {
    let strip = |v: &Value| -> Map<String, Value> {
        let mut m = v.as_object().cloned().unwrap_or_default();
        m.remove("metadata");
        m.remove("status");
        m
    };
    strip(a) != strip(b)
}

pub fn random_suffix(n: usize) -> String {
    use rand::Rng;
    // The alphabet Kubernetes uses for generated names (no vowels, no 0/1/3).
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    (0..n)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cm(name: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"a": "1"}})
    }
    fn cms() -> ResKey {
        ResKey::new("", "configmaps")
    }
    const W: WriteOptions = WriteOptions { dry_run: false };

    #[test]
    fn create_sets_server_metadata() {
        let s = Store::new();
        let o = s.create(&cms(), Some("default"), cm("a"), &W).unwrap();
        assert_eq!(o["metadata"]["namespace"], "default");
        assert!(o["metadata"]["uid"].is_string());
        let ts = o["metadata"]["creationTimestamp"].as_str().unwrap();
        assert_eq!(
            ts.len(),
            "2026-11-26T08:00:00Z".len(),
            "second precision: {ts}"
        );
        let e = s.create(&cms(), Some("default"), cm("a"), &W).unwrap_err();
        assert_eq!(e.reason, "AlreadyExists");
        let e = s.create(&cms(), Some("nope"), cm("b"), &W).unwrap_err();
        assert_eq!(
            (e.code, e.message.as_str()),
            (404, "namespaces \"nope\" not found")
        );
    }

    #[test]
    fn stale_update_is_a_conflict_and_noop_keeps_version() {
        let s = Store::new();
        let o = s.create(&cms(), Some("default"), cm("a"), &W).unwrap();
        let mut changed = o.clone();
        changed["data"]["a"] = json!("2");
        let o2 = s
            .update(&cms(), Some("default"), "a", changed.clone(), &W)
            .unwrap();
        assert_ne!(
            o2["metadata"]["resourceVersion"],
            o["metadata"]["resourceVersion"]
        );
        // Like kube-apiserver: a ConfigMap has no generation at all.
        assert!(o2["metadata"].get("generation").is_none(), "{o2}");
        changed["data"]["a"] = json!("3");
        let e = s
            .update(&cms(), Some("default"), "a", changed, &W)
            .unwrap_err();
        assert_eq!(e.reason, "Conflict");
        let o3 = s
            .update(&cms(), Some("default"), "a", o2.clone(), &W)
            .unwrap();
        assert_eq!(
            o3["metadata"]["resourceVersion"],
            o2["metadata"]["resourceVersion"]
        );
    }

    #[test]
    fn finalizers_delay_deletion_until_removed() {
        let s = Store::new();
        let mut o = cm("f");
        o["metadata"]["finalizers"] = json!(["x/y"]);
        s.create(&cms(), Some("default"), o, &W).unwrap();
        let d = s
            .delete(&cms(), Some("default"), "f", &DeleteOptions::default())
            .unwrap();
        assert!(d["metadata"]["deletionTimestamp"].is_string());
        let mut cur = s.get(&cms(), Some("default"), "f").unwrap();
        cur["metadata"]["finalizers"] = json!([]);
        s.update(&cms(), Some("default"), "f", cur, &W).unwrap();
        assert_eq!(s.get(&cms(), Some("default"), "f").unwrap_err().code, 404);
    }

    #[test]
    fn deleting_an_owner_deletes_dependents_and_namespaces_cascade() {
        let s = Store::new();
        let nsk = ResKey::new("", "namespaces");
        s.create(&nsk, None, json!({"metadata": {"name": "t"}}), &W)
            .unwrap();
        let owner = s.create(&cms(), Some("t"), cm("owner"), &W).unwrap();
        let mut dep = cm("dep");
        dep["metadata"]["ownerReferences"] = json!([{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner["metadata"]["uid"]}]);
        s.create(&cms(), Some("t"), dep, &W).unwrap();
        s.create(&cms(), Some("t"), cm("other"), &W).unwrap();
        s.delete(&cms(), Some("t"), "owner", &DeleteOptions::default())
            .unwrap();
        assert!(s.get(&cms(), Some("t"), "dep").is_err());
        assert!(s.get(&cms(), Some("t"), "other").is_ok());
        s.delete(&nsk, None, "t", &DeleteOptions::default())
            .unwrap();
        assert!(s.get(&cms(), Some("t"), "other").is_err());
    }

    #[test]
    fn list_pages_through_everything() {
        let s = Store::new();
        for i in 0..25 {
            s.create(&cms(), Some("default"), cm(&format!("c{i:02}")), &W)
                .unwrap();
        }
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let page = s
                .list(&cms(), Some("default"), &|_| true, Some(10), after.as_ref())
                .unwrap();
            seen.extend(
                page.items
                    .iter()
                    .map(|o| o["metadata"]["name"].as_str().unwrap().to_string()),
            );
            match page.next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        assert_eq!(seen.len(), 25);
        assert_eq!(seen[24], "c24");
    }

    #[test]
    fn watch_resumes_from_a_version() {
        let s = Store::new();
        let rv = s.resource_version();
        s.create(&cms(), Some("default"), cm("w1"), &W).unwrap();
        s.create(&cms(), Some("default"), cm("w2"), &W).unwrap();
        let (backlog, _rx) = s.watch(&cms(), None, Some(rv)).unwrap();
        assert_eq!(backlog.len(), 2);
        let (all, _rx) = s.watch(&cms(), Some("default"), None).unwrap();
        assert_eq!(all.len(), 2);
    }

    #[test]
    fn dry_run_persists_nothing() {
        let s = Store::new();
        let rv = s.resource_version();
        s.create(
            &cms(),
            Some("default"),
            cm("d"),
            &WriteOptions { dry_run: true },
        )
        .unwrap();
        assert!(s.get(&cms(), Some("default"), "d").is_err());
        assert_eq!(s.resource_version(), rv);
    }

    #[test]
    fn generate_name_and_invalid_names() {
        let s = Store::new();
        let o = s
            .create(
                &cms(),
                Some("default"),
                json!({"metadata": {"generateName": "gen-"}}),
                &W,
            )
            .unwrap();
        assert!(o["metadata"]["name"].as_str().unwrap().starts_with("gen-"));
        assert_eq!(
            s.create(&cms(), Some("default"), cm("Bad_Name"), &W)
                .unwrap_err()
                .code,
            422
        );
    }
}
