//! Writes: create, update, update_status and the replace they share,
//! with the API server's metadata rules.

use super::*;

impl Store {
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
        crate::validate::validate(&rt, &obj)?;
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
    pub(crate) fn update(
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
    pub(crate) fn update_status(
        &self,
        key: &ResKey,
        ns: Option<&str>,
        name: &str,
        obj: Value,
        opts: &WriteOptions,
    ) -> Result<Value, ApiError> {
        self.replace(key, ns, name, obj, opts, Part::Status)
    }

    pub(super) fn replace(
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
            crate::validate::validate(&rt, &next)?;
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
}
