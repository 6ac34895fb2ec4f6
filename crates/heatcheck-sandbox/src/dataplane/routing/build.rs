//! Building the routing table from a cluster view: routes parsed,
//! attached to listeners (parentRefs, allowedRoutes, hostnames), their
//! rules' targets resolved, ReferenceGrants and listener certificates.

use super::*;

/// One parsed route, before attachment.
pub(super) struct ParsedRoute<'v> {
    pub(super) obj: &'v Value,
    pub(super) namespace: &'v str,
    pub(super) key: String,
    pub(super) created: Option<DateTime<Utc>>,
    pub(super) hostnames: Vec<HostPattern>,
    /// Per rule: its compiled matches.
    pub(super) rules: Vec<Vec<CompiledMatch>>,
    pub(super) invalid: Option<String>,
}

pub(super) struct Builder<'v> {
    pub(super) view: &'v ClusterView,
    pub(super) ns_labels: HashMap<&'v str, Map<String, Value>>,
    pub(super) services: HashMap<(&'v str, &'v str), &'v Value>,
    pub(super) pods_by_ns: HashMap<&'v str, Vec<&'v Value>>,
    pub(super) policies_by_ns: HashMap<&'v str, Vec<&'v Value>>,
    pub(super) faults: HashMap<(&'v str, &'v str), Vec<&'v crate::dataplane::view::ActiveFault>>,
    /// Service backends, shared by every rule that names the same (gateway ns, svc ns, svc, port).
    pub(super) backends: HashMap<(String, String, String, u16), Arc<Backend>>,
}

impl<'v> Builder<'v> {
    pub(super) fn new(view: &'v ClusterView) -> Self {
        let mut ns_labels: HashMap<&str, Map<String, Value>> = HashMap::new();
        for ns in &view.namespaces {
            let mut l = labels(ns).clone();
            // The API server sets this label on every namespace.
            l.insert(
                "kubernetes.io/metadata.name".into(),
                Value::String(name_of(ns).to_string()),
            );
            ns_labels.insert(name_of(ns), l);
        }
        let services = view
            .services
            .iter()
            .map(|s| ((ns_of(s), name_of(s)), s))
            .collect();
        let mut pods_by_ns: HashMap<&str, Vec<&Value>> = HashMap::new();
        for p in &view.pods {
            pods_by_ns.entry(ns_of(p)).or_default().push(p);
        }
        for pods in pods_by_ns.values_mut() {
            pods.sort_by_key(|p| name_of(p));
        }
        let mut policies_by_ns: HashMap<&str, Vec<&Value>> = HashMap::new();
        for p in &view.network_policies {
            policies_by_ns.entry(ns_of(p)).or_default().push(p);
        }
        let mut faults: HashMap<(&str, &str), Vec<_>> = HashMap::new();
        for f in &view.faults {
            for pod in &f.pods {
                faults
                    .entry((f.namespace.as_str(), pod.as_str()))
                    .or_default()
                    .push(f);
            }
        }
        Builder {
            view,
            ns_labels,
            services,
            pods_by_ns,
            policies_by_ns,
            faults,
            backends: HashMap::new(),
        }
    }

    pub(super) fn namespace_labels(&self, ns: &str) -> Map<String, Value> {
        self.ns_labels.get(ns).cloned().unwrap_or_else(|| {
            let mut m = Map::new();
            m.insert(
                "kubernetes.io/metadata.name".into(),
                Value::String(ns.to_string()),
            );
            m
        })
    }

    pub(super) fn parse_route(&self, r: &'v Value) -> ParsedRoute<'v> {
        let namespace = ns_of(r);
        let created = s(r, "/metadata/creationTimestamp")
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc));
        let hostnames = r
            .pointer("/spec/hostnames")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(HostPattern::parse)
            .collect();
        let mut invalid = None;
        let mut rules = Vec::new();
        let default_rules = [serde_json::json!({})];
        let rule_values = match r.pointer("/spec/rules").and_then(Value::as_array) {
            Some(rules) if !rules.is_empty() => rules.as_slice(),
            _ => &default_rules,
        };
        for rule in rule_values {
            let mut compiled = Vec::new();
            if let Err(e) = Filters::parse(rule.get("filters")) {
                invalid = Some(e);
            }
            if let Err(e) = Timeouts::parse(rule.get("timeouts")) {
                invalid = Some(e);
            }
            for b in rule
                .get("backendRefs")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Err(e) = Filters::parse(b.get("filters")) {
                    invalid = Some(e);
                }
            }
            match rule.get("matches").and_then(Value::as_array) {
                Some(ms) if !ms.is_empty() => {
                    for m in ms {
                        match CompiledMatch::compile(m) {
                            Ok(c) => compiled.push(c),
                            Err(e) => invalid = Some(e),
                        }
                    }
                }
                _ => compiled.push(CompiledMatch::catch_all()),
            }
            rules.push(compiled);
        }
        ParsedRoute {
            obj: r,
            namespace,
            key: format!("{namespace}/{}", name_of(r)),
            created,
            hostnames,
            rules,
            invalid,
        }
    }

    pub(super) fn grant_allows(&self, route_ns: &str, svc_ns: &str, svc: &str) -> bool {
        self.grant_allows_kind("HTTPRoute", route_ns, "Service", svc_ns, svc)
    }

    /// A ReferenceGrant in `to_ns` lets `from_kind` objects of `from_ns` refer to `to_kind` `name`.
    pub(super) fn grant_allows_kind(
        &self,
        from_kind: &str,
        route_ns: &str,
        to_kind: &str,
        svc_ns: &str,
        svc: &str,
    ) -> bool {
        self.view
            .reference_grants
            .iter()
            .filter(|g| ns_of(g) == svc_ns)
            .any(|g| {
                let from_ok = g
                    .pointer("/spec/from")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .any(|f| {
                        s(f, "/group") == Some(GATEWAY_GROUP)
                            && s(f, "/kind") == Some(from_kind)
                            && s(f, "/namespace") == Some(route_ns)
                    });
                let to_ok = g
                    .pointer("/spec/to")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .any(|t| {
                        matches!(s(t, "/group"), Some("") | Some("core") | None)
                            && s(t, "/kind") == Some(to_kind)
                            && s(t, "/name").is_none_or(|n| n == svc)
                    });
                from_ok && to_ok
            })
    }

    /// The first certificateRef of an HTTPS listener that loads (same namespace, or one a
    /// ReferenceGrant lets the Gateway read).
    pub(super) fn listener_certificate(
        &self,
        l: &Value,
        gw_ns: &str,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        let refs = l
            .pointer("/tls/certificateRefs")
            .and_then(Value::as_array)?;
        refs.iter().find_map(|r| {
            let kind = s(r, "/kind").unwrap_or("Secret");
            let group = s(r, "/group").unwrap_or("");
            if kind != "Secret" || !(group.is_empty() || group == "core") {
                return None;
            }
            let name = s(r, "/name")?;
            let ns = s(r, "/namespace").unwrap_or(gw_ns);
            if ns != gw_ns && !self.grant_allows_kind("Gateway", gw_ns, "Secret", ns, name) {
                return None;
            }
            let secret = self
                .view
                .tls_secrets
                .iter()
                .find(|sec| ns_of(sec) == ns && name_of(sec) == name)?;
            match crate::dataplane::tls::certified_key(secret) {
                Ok(k) => Some(k),
                Err(e) => {
                    tracing::warn!("Secret {ns}/{name}: {e}");
                    None
                }
            }
        })
    }

    pub(super) fn rule_targets(&mut self, route: &ParsedRoute<'v>, gw_ns: &str) -> RouteTargets {
        let mut resolved = Condition::ok("ResolvedRefs");
        let default_rules = [serde_json::json!({})];
        let rule_values = match route.obj.pointer("/spec/rules").and_then(Value::as_array) {
            Some(rules) if !rules.is_empty() => rules.as_slice(),
            _ => &default_rules,
        };
        let mut out = Vec::new();
        for rule in rule_values {
            let mut backends = Vec::new();
            for r in rule
                .get("backendRefs")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let weight = r
                    .get("weight")
                    .and_then(Value::as_u64)
                    .unwrap_or(1)
                    .min(u64::from(u32::MAX)) as u32;
                let b = self.backend(route.namespace, r, gw_ns);
                if let Backend::Invalid { reason, message } = b.as_ref() {
                    if resolved.status {
                        resolved = Condition::fail(reason, message.clone());
                    }
                }
                // Invalid filters made the route not Accepted already (parse_route).
                let filters = Filters::parse(r.get("filters")).unwrap_or_default();
                backends.push((weight, b, filters));
            }
            let total_weight = backends.iter().map(|(w, _, _)| u64::from(*w)).sum();
            let filters = Filters::parse(rule.get("filters")).unwrap_or_default();
            let mut mirrors = Vec::new();
            for m in &filters.mirrors {
                let b = self.backend(route.namespace, m, gw_ns);
                if let Backend::Invalid { reason, message } = b.as_ref() {
                    if resolved.status {
                        resolved = Condition::fail(reason, message.clone());
                    }
                }
                mirrors.push(b);
            }
            out.push(Arc::new(RuleTarget {
                route: route.key.clone(),
                backends,
                total_weight,
                filters,
                timeouts: Timeouts::parse(rule.get("timeouts")).unwrap_or_default(),
                mirrors,
            }));
        }
        (out, resolved)
    }

    pub(super) fn build(mut self) -> RouteTable {
        let view = self.view;
        let routes: Vec<ParsedRoute> = view
            .httproutes
            .iter()
            .map(|r| self.parse_route(r))
            .collect();
        let mut table = RouteTable::default();
        // Per gateway, per listener index: (route index, hostnames).
        let mut attachments: HashMap<String, ListenerAttachments> = HashMap::new();
        let mut targets: HashMap<(usize, String), RouteTargets> = HashMap::new();

        let gateways: HashMap<(&str, &str), &Value> = view
            .gateways
            .iter()
            .map(|g| ((ns_of(g), name_of(g)), g))
            .collect();

        for (ri, route) in routes.iter().enumerate() {
            for pref in route
                .obj
                .pointer("/spec/parentRefs")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if s(pref, "/group").unwrap_or(GATEWAY_GROUP) != GATEWAY_GROUP
                    || s(pref, "/kind").unwrap_or("Gateway") != "Gateway"
                {
                    continue;
                }
                let gw_ns = s(pref, "/namespace").unwrap_or(route.namespace);
                let Some(gw) = gateways.get(&(gw_ns, s(pref, "/name").unwrap_or_default())) else {
                    continue;
                };
                let gw_key = format!("{gw_ns}/{}", name_of(gw));
                let accepted = match &route.invalid {
                    Some(e) => Condition::fail("UnsupportedValue", e.clone()),
                    None => {
                        self.attach(route, ri, pref, gw, attachments.entry(gw_key).or_default())
                    }
                };
                let (_, resolved) = targets
                    .entry((ri, gw_ns.to_string()))
                    .or_insert_with(|| self.rule_targets(route, gw_ns))
                    .clone();
                table.route_statuses.push(RouteParentStatus {
                    route_namespace: route.namespace.to_string(),
                    route_name: name_of(route.obj).to_string(),
                    parent_ref: pref.clone(),
                    accepted,
                    resolved_refs: resolved,
                });
            }
        }

        for gw in &view.gateways {
            let (gw_ns, gw_name) = (ns_of(gw), name_of(gw));
            let key = format!("{gw_ns}/{gw_name}");
            let attached = attachments.remove(&key).unwrap_or_default();
            let mut listeners = Vec::new();
            let mut ports: HashMap<u16, Vec<ListenerTable>> = HashMap::new();
            for (li, l) in gw
                .pointer("/spec/listeners")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .enumerate()
            {
                let protocol = s(l, "/protocol").unwrap_or("HTTP").to_string();
                let port = l
                    .get("port")
                    .and_then(Value::as_u64)
                    .and_then(|p| u16::try_from(p).ok())
                    .unwrap_or(0);
                let cert = if protocol == "HTTPS" {
                    self.listener_certificate(l, gw_ns)
                } else {
                    None
                };
                let served = (protocol == "HTTP" || cert.is_some()) && port != 0;
                let here = attached.get(&li).map(Vec::as_slice).unwrap_or_default();
                let mut seen_routes: Vec<usize> = here.iter().map(|(ri, _)| *ri).collect();
                seen_routes.dedup();
                listeners.push(ListenerInfo {
                    name: s(l, "/name").unwrap_or_default().to_string(),
                    port,
                    protocol,
                    served,
                    attached_routes: seen_routes.len() as u32,
                });
                if !served {
                    continue;
                }
                let mut by_host: Vec<VHost> = Vec::new();
                let mut entries_meta: Vec<(HostPattern, (usize, usize, usize), Entry)> = Vec::new();
                for (ri, hosts) in here {
                    let route = &routes[*ri];
                    // Built when the route attached through this gateway's namespace.
                    let Some((rule_targets, _)) = targets.get(&(*ri, gw_ns.to_string())) else {
                        continue;
                    };
                    for host in hosts {
                        for (rule_i, (matches, target)) in
                            route.rules.iter().zip(rule_targets).enumerate()
                        {
                            for (mi, m) in matches.iter().enumerate() {
                                entries_meta.push((
                                    host.clone(),
                                    (*ri, rule_i, mi),
                                    Entry {
                                        matcher: m.clone(),
                                        target: target.clone(),
                                    },
                                ));
                            }
                        }
                    }
                }
                entries_meta.sort_by(|(_, (ra, rule_a, ma), ea), (_, (rb, rule_b, mb), eb)| {
                    let (a, b) = (&routes[*ra], &routes[*rb]);
                    ea.matcher
                        .rank()
                        .cmp(&eb.matcher.rank())
                        .then_with(|| {
                            heatcheck_gateway::route_precedence::tie_break(
                                a.created, &a.key, b.created, &b.key,
                            )
                        })
                        .then_with(|| (rule_a, ma).cmp(&(rule_b, mb)))
                });
                for (host, _, entry) in entries_meta {
                    match by_host.iter_mut().find(|v| v.host == host) {
                        Some(v) => v.entries.push(entry),
                        None => by_host.push(VHost {
                            host,
                            entries: vec![entry],
                        }),
                    }
                }
                by_host.sort_by(|a, b| a.host.specificity_cmp(&b.host));
                let hostname = s(l, "/hostname")
                    .map(HostPattern::parse)
                    .unwrap_or(HostPattern::Any);
                ports.entry(port).or_default().push(ListenerTable {
                    name: s(l, "/name").unwrap_or_default().to_string(),
                    hostname,
                    vhosts: by_host,
                    cert,
                });
            }
            for ls in ports.values_mut() {
                ls.sort_by(|a, b| a.hostname.specificity_cmp(&b.hostname));
            }
            table.gateways.insert(
                key,
                GatewayTable {
                    namespace: gw_ns.to_string(),
                    name: gw_name.to_string(),
                    uid: s(gw, "/metadata/uid").map(str::to_string),
                    listeners,
                    ports,
                },
            );
        }
        table
    }

    /// Attach a route through one parentRef; record attachments and return the Accepted condition.
    pub(super) fn attach(
        &self,
        route: &ParsedRoute<'v>,
        ri: usize,
        pref: &Value,
        gw: &Value,
        out: &mut ListenerAttachments,
    ) -> Condition {
        let section = s(pref, "/sectionName");
        let port = pref.get("port").and_then(Value::as_u64);
        let listeners = gw
            .pointer("/spec/listeners")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let candidates: Vec<(usize, &Value)> = listeners
            .iter()
            .enumerate()
            .filter(|(_, l)| section.is_none_or(|sn| s(l, "/name") == Some(sn)))
            .filter(|(_, l)| port.is_none_or(|p| l.get("port").and_then(Value::as_u64) == Some(p)))
            .collect();
        if candidates.is_empty() {
            return Condition::fail(
                "NoMatchingParent",
                "no listener matches the parentRef sectionName/port",
            );
        }
        let gw_ns = ns_of(gw);
        let allowed: Vec<(usize, &Value)> = candidates
            .into_iter()
            .filter(|(_, l)| self.listener_allows(l, gw_ns, route.namespace))
            .collect();
        if allowed.is_empty() {
            return Condition::fail(
                "NotAllowedByListeners",
                format!(
                    "no listener allows HTTPRoutes from namespace {}",
                    route.namespace
                ),
            );
        }
        let mut any = false;
        for (li, l) in allowed {
            let lh = s(l, "/hostname")
                .map(HostPattern::parse)
                .unwrap_or(HostPattern::Any);
            if let Some(hosts) = intersect(&lh, &route.hostnames) {
                any = true;
                let list = out.entry(li).or_default();
                match list.iter_mut().find(|(r, _)| *r == ri) {
                    Some((_, existing)) => {
                        for h in hosts {
                            if !existing.contains(&h) {
                                existing.push(h);
                            }
                        }
                    }
                    None => list.push((ri, hosts)),
                }
            }
        }
        if any {
            Condition::ok("Accepted")
        } else {
            Condition::fail(
                "NoMatchingListenerHostname",
                "no listener hostname intersects the route hostnames",
            )
        }
    }

    pub(super) fn listener_allows(&self, l: &Value, gw_ns: &str, route_ns: &str) -> bool {
        let protocol = s(l, "/protocol").unwrap_or("HTTP");
        let kinds = l.pointer("/allowedRoutes/kinds").and_then(Value::as_array);
        let kind_ok = match kinds {
            Some(k) if !k.is_empty() => k.iter().any(|k| {
                s(k, "/kind") == Some("HTTPRoute")
                    && s(k, "/group").unwrap_or(GATEWAY_GROUP) == GATEWAY_GROUP
            }),
            _ => protocol == "HTTP" || protocol == "HTTPS",
        };
        if !kind_ok {
            return false;
        }
        match s(l, "/allowedRoutes/namespaces/from").unwrap_or("Same") {
            "All" => true,
            "Same" => gw_ns == route_ns,
            "Selector" => {
                let sel = l
                    .pointer("/allowedRoutes/namespaces/selector")
                    .unwrap_or(&Value::Null);
                !sel.is_null() && selector_matches(sel, &self.namespace_labels(route_ns))
            }
            _ => false,
        }
    }
}
