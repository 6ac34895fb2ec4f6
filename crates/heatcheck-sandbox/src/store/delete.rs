//! Deletes: finalizers, grace periods, dependents (ownerReferences)
//! and namespaces cascading.

use super::*;

impl Store {
    /// Deletes an object. With finalizers it only gets a deletionTimestamp;
    /// without, it is removed and its dependents (ownerReferences) follow.
    pub(crate) fn delete(
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
    pub(super) fn remove_locked(
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
}
