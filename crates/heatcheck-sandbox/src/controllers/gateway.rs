//! Gateway API status: every GatewayClass is accepted (the sandbox
//! implements them all), Gateways and their listeners are accepted and
//! programmed with attached-route counts, and each HTTPRoute gets a
//! `status.parents[]` entry per Gateway parentRef with Accepted and
//! ResolvedRefs as the spec defines their reasons.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use serde_json::{json, Value};
use tokio::time::Instant;

use super::util::{self, key};
use super::{Reconciler, Scope};
use crate::registry::ResKey;
use crate::store::Store;

pub(crate) const GW: &str = "gateway.networking.k8s.io";
pub(crate) const CONTROLLER_NAME: &str = "heatcheck.dev/sandbox-gateway";

#[derive(Default)]
pub(crate) struct GatewayApi {
    /// Called after reading the objects and before writing their status, so
    /// that a route reported Accepted is already routed by the data plane.
    pub(crate) before_status: Option<super::RoutesHook>,
}

/// Accepted routes per (gateway namespace, gateway name, listener name).
type Attached = BTreeMap<(String, String, String), BTreeSet<(String, String)>>;

impl Reconciler for GatewayApi {
    fn watches(&self, key: &ResKey) -> bool {
        key.group == GW
            || (key.group.is_empty()
                && matches!(key.plural.as_str(), "services" | "namespaces" | "secrets"))
    }

    fn global(&self) -> bool {
        true
    }

    fn reconcile(&mut self, store: &Store, _scope: &Scope) -> Option<Instant> {
        let world = World::load(store);
        if let Some(hook) = &self.before_status {
            hook();
        }
        world.sync(store);
        None
    }
}

fn cond(t: &str, ok: bool, reason: &str, message: &str, generation: i64) -> Value {
    json!({"type": t, "status": if ok { "True" } else { "False" }, "observedGeneration": generation,
        "reason": reason, "message": message})
}

/// Merges our conditions into existing ones, leaving other types alone.
fn merge_owned(old: Option<&Value>, wanted: Vec<Value>) -> Value {
    let types: Vec<Value> = wanted
        .iter()
        .filter_map(|c| c.get("type").cloned())
        .collect();
    let mut merged = util::merge_conditions(old, wanted, false);
    let others: Vec<Value> = old
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .filter(|c| !c.get("type").is_some_and(|t| types.contains(t)))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    if let Some(a) = merged.as_array_mut() {
        a.extend(others);
    }
    merged
}

/// Whether a listener hostname and a route hostname can both match some host.
fn hostnames_intersect(a: &str, b: &str) -> bool {
    let wild = |w: &str, h: &str| {
        w.strip_prefix('*')
            .is_some_and(|suffix| h.ends_with(suffix) && h.len() > suffix.len())
    };
    a == b || wild(a, b) || wild(b, a)
}

struct Listener {
    name: String,
    port: Option<i64>,
    hostname: Option<String>,
    protocol_ok: bool,
    supported: Vec<Value>,
    invalid_kinds: bool,
    cert_ok: bool,
    spec: Value,
}

struct World {
    classes: Vec<Value>,
    gateways: Vec<Value>,
    /// Gateways of classes that do not exist: not ours to report on.
    foreign: HashSet<(String, String)>,
    routes: Vec<Value>,
    namespaces: BTreeMap<String, BTreeMap<String, String>>,
    grants: Vec<Value>,
    services: HashSet<(String, String)>,
    secrets: HashSet<(String, String)>,
}

fn id(obj: &Value) -> (String, String) {
    (
        util::namespace(obj).to_string(),
        util::name(obj).to_string(),
    )
}

impl World {
    fn load(store: &Store) -> Self {
        let classes = util::list(store, &key(GW, "gatewayclasses"), None);
        let names: HashSet<&str> = classes
            .iter()
            .filter(|c| !util::is_terminating(c))
            .map(util::name)
            .collect();
        // The sandbox stands in for every gateway implementation: a Gateway of
        // any class is ours, whether or not its GatewayClass object exists.
        let _ = &names;
        let gateways = util::list(store, &key(GW, "gateways"), None);
        let foreign: Vec<Value> = Vec::new();
        World {
            foreign: foreign.iter().map(id).collect(),
            gateways,
            routes: util::list(store, &key(GW, "httproutes"), None),
            namespaces: util::list(store, &key("", "namespaces"), None)
                .iter()
                .map(|n| (util::name(n).to_string(), util::labels(n)))
                .collect(),
            grants: util::list(store, &key(GW, "referencegrants"), None),
            services: util::list(store, &key("", "services"), None)
                .iter()
                .map(id)
                .collect(),
            secrets: util::list(store, &key("", "secrets"), None)
                .iter()
                .map(id)
                .collect(),
            classes,
        }
    }

    /// A ReferenceGrant in `to_ns` lets `from` objects refer to `to` ones.
    fn permitted(&self, from: (&str, &str, &str), to: (&str, &str, &str, &str)) -> bool {
        let (fg, fk, fns) = from;
        let (tg, tk, tns, tname) = to;
        let s = |v: &Value, k: &str| {
            v.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        self.grants
            .iter()
            .filter(|g| util::namespace(g) == tns)
            .any(|g| {
                let froms = g
                    .pointer("/spec/from")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                let tos = g
                    .pointer("/spec/to")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                froms
                    .iter()
                    .any(|f| s(f, "group") == fg && s(f, "kind") == fk && s(f, "namespace") == fns)
                    && tos.iter().any(|t| {
                        s(t, "group") == tg
                            && s(t, "kind") == tk
                            && t.get("name")
                                .and_then(Value::as_str)
                                .is_none_or(|n| n == tname)
                    })
            })
    }

    fn listeners(&self, gw: &Value) -> Vec<Listener> {
        let gns = util::namespace(gw);
        gw.pointer("/spec/listeners")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|l| {
                let protocol = l
                    .get("protocol")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let protocol_ok = matches!(protocol, "HTTP" | "HTTPS");
                let kinds = l
                    .pointer("/allowedRoutes/kinds")
                    .and_then(Value::as_array)
                    .cloned();
                let http_route = json!({"group": GW, "kind": "HTTPRoute"});
                let (supported, invalid_kinds) = match (protocol_ok, kinds) {
                    (false, _) => (vec![], false),
                    (true, None) => (vec![http_route], false),
                    (true, Some(ks)) => {
                        let ok = |k: &Value| {
                            k.get("kind").and_then(Value::as_str) == Some("HTTPRoute")
                                && k.get("group").and_then(Value::as_str).unwrap_or(GW) == GW
                        };
                        let supported = if ks.iter().any(ok) {
                            vec![http_route]
                        } else {
                            vec![]
                        };
                        (supported, !ks.iter().all(ok))
                    }
                };
                let cert_ok = protocol != "HTTPS"
                    || l.pointer("/tls/certificateRefs")
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default()
                        .iter()
                        .all(|c| {
                            let kind = c.get("kind").and_then(Value::as_str).unwrap_or("Secret");
                            let group = c.get("group").and_then(Value::as_str).unwrap_or("");
                            let name = c.get("name").and_then(Value::as_str).unwrap_or_default();
                            let ns = c.get("namespace").and_then(Value::as_str).unwrap_or(gns);
                            kind == "Secret"
                                && group.is_empty()
                                && self.secrets.contains(&(ns.to_string(), name.to_string()))
                                && (ns == gns
                                    || self
                                        .permitted((GW, "Gateway", gns), ("", "Secret", ns, name)))
                        });
                Listener {
                    name: l
                        .get("name")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                    port: l.get("port").and_then(Value::as_i64),
                    hostname: l
                        .get("hostname")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                    protocol_ok,
                    supported,
                    invalid_kinds,
                    cert_ok,
                    spec: l,
                }
            })
            .collect()
    }

    fn namespace_allowed(&self, l: &Listener, gw_ns: &str, route_ns: &str) -> bool {
        match l
            .spec
            .pointer("/allowedRoutes/namespaces/from")
            .and_then(Value::as_str)
            .unwrap_or("Same")
        {
            "All" => true,
            "Same" => gw_ns == route_ns,
            "Selector" => {
                let labels = self.namespaces.get(route_ns).cloned().unwrap_or_default();
                util::label_selector_matches(
                    l.spec.pointer("/allowedRoutes/namespaces/selector"),
                    &labels,
                )
            }
            _ => false,
        }
    }

    /// ResolvedRefs for a route: the first backendRef that fails decides.
    fn resolve_refs(&self, route: &Value) -> (bool, &'static str, String) {
        let rns = util::namespace(route);
        for rule in route
            .pointer("/spec/rules")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
        {
            for br in rule
                .get("backendRefs")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
            {
                let group = br.get("group").and_then(Value::as_str).unwrap_or("");
                let kind = br.get("kind").and_then(Value::as_str).unwrap_or("Service");
                let name = br.get("name").and_then(Value::as_str).unwrap_or_default();
                let ns = br.get("namespace").and_then(Value::as_str).unwrap_or(rns);
                if !group.is_empty() || kind != "Service" {
                    let gk = if group.is_empty() {
                        kind.to_string()
                    } else {
                        format!("{kind}.{group}")
                    };
                    return (
                        false,
                        "InvalidKind",
                        format!("Unsupported backendRef kind {gk}"),
                    );
                }
                if ns != rns && !self.permitted((GW, "HTTPRoute", rns), ("", "Service", ns, name)) {
                    return (
                        false,
                        "RefNotPermitted",
                        format!("Backend ref to Service {ns}/{name} not permitted by any ReferenceGrant"),
                    );
                }
                if !self.services.contains(&(ns.to_string(), name.to_string())) {
                    return (
                        false,
                        "BackendNotFound",
                        format!("Service {ns}/{name} not found"),
                    );
                }
            }
        }
        (
            true,
            "ResolvedRefs",
            "Resolved all the Object references for the Route".into(),
        )
    }

    fn sync(&self, store: &Store) {
        for c in &self.classes {
            if util::is_terminating(c) {
                continue;
            }
            let mut status = c
                .get("status")
                .cloned()
                .filter(Value::is_object)
                .unwrap_or(json!({}));
            let accepted = cond(
                "Accepted",
                true,
                "Accepted",
                "Valid GatewayClass",
                util::generation(c),
            );
            status["conditions"] = merge_owned(c.pointer("/status/conditions"), vec![accepted]);
            util::write_status(store, &key(GW, "gatewayclasses"), c, status);
        }
        let listeners: BTreeMap<(String, String), Vec<Listener>> = self
            .gateways
            .iter()
            .map(|g| (id(g), self.listeners(g)))
            .collect();
        let mut attached: BTreeMap<(String, String, String), BTreeSet<(String, String)>> =
            BTreeMap::new();
        for route in &self.routes {
            self.sync_route(store, route, &listeners, &mut attached);
        }
        for gw in &self.gateways {
            let gid = id(gw);
            let generation = util::generation(gw);
            let ls: Vec<Value> = listeners[&gid]
                .iter()
                .map(|l| {
                    let count = attached.get(&(gid.0.clone(), gid.1.clone(), l.name.clone())).map_or(0, BTreeSet::len);
                    let old = gw
                        .pointer("/status/listeners")
                        .and_then(Value::as_array)
                        .and_then(|ls| ls.iter().find(|o| o.get("name").and_then(Value::as_str) == Some(&l.name)))
                        .and_then(|o| o.get("conditions"));
                    let accepted = if l.protocol_ok {
                        cond("Accepted", true, "Accepted", "Listener accepted", generation)
                    } else {
                        cond("Accepted", false, "UnsupportedProtocol", "Listener protocol is not supported", generation)
                    };
                    let resolved = if l.invalid_kinds {
                        cond("ResolvedRefs", false, "InvalidRouteKinds", "Listener allows unsupported route kinds", generation)
                    } else if !l.cert_ok {
                        cond("ResolvedRefs", false, "InvalidCertificateRef", "Listener certificate reference is invalid", generation)
                    } else {
                        cond("ResolvedRefs", true, "ResolvedRefs", "Listener references resolved", generation)
                    };
                    let programmed = if l.protocol_ok && l.cert_ok {
                        cond("Programmed", true, "Programmed", "Listener programmed", generation)
                    } else {
                        cond("Programmed", false, "Invalid", "Listener is invalid", generation)
                    };
                    let conflicted = cond("Conflicted", false, "NoConflicts", "No conflicts", generation);
                    json!({
                        "name": l.name,
                        "supportedKinds": l.supported,
                        "attachedRoutes": count,
                        "conditions": util::merge_conditions(old, vec![accepted, programmed, resolved, conflicted], false),
                    })
                })
                .collect();
            // Read-modify-write: status.addresses belongs to the data plane.
            let mut status = gw
                .get("status")
                .cloned()
                .filter(Value::is_object)
                .unwrap_or(json!({}));
            status["conditions"] = merge_owned(
                gw.pointer("/status/conditions"),
                vec![
                    cond(
                        "Accepted",
                        true,
                        "Accepted",
                        "Resource accepted",
                        generation,
                    ),
                    cond(
                        "Programmed",
                        true,
                        "Programmed",
                        "Resource programmed",
                        generation,
                    ),
                ],
            );
            status["listeners"] = Value::Array(ls);
            util::write_status(store, &key(GW, "gateways"), gw, status);
        }
    }

    fn sync_route(
        &self,
        store: &Store,
        route: &Value,
        listeners: &BTreeMap<(String, String), Vec<Listener>>,
        attached: &mut Attached,
    ) {
        if util::is_terminating(route) {
            return;
        }
        let rns = util::namespace(route).to_string();
        let rid = id(route);
        let generation = util::generation(route);
        let route_hosts: Vec<String> = route
            .pointer("/spec/hostnames")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        let (ok, reason, message) = self.resolve_refs(route);
        let resolved = cond("ResolvedRefs", ok, reason, &message, generation);
        let old_parents: Vec<Value> = route
            .pointer("/status/parents")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut parents: Vec<Value> = old_parents
            .iter()
            .filter(|p| p.get("controllerName").and_then(Value::as_str) != Some(CONTROLLER_NAME))
            .cloned()
            .collect();
        for pref in route
            .pointer("/spec/parentRefs")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
        {
            let group = pref.get("group").and_then(Value::as_str).unwrap_or(GW);
            let kind = pref
                .get("kind")
                .and_then(Value::as_str)
                .unwrap_or("Gateway");
            if group != GW || kind != "Gateway" {
                continue;
            }
            let gid = (
                pref.get("namespace")
                    .and_then(Value::as_str)
                    .unwrap_or(&rns)
                    .to_string(),
                pref.get("name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
            );
            if self.foreign.contains(&gid) {
                continue;
            }
            let accepted = match listeners.get(&gid) {
                None => cond(
                    "Accepted",
                    false,
                    "NoMatchingParent",
                    &format!("Gateway {}/{} not found", gid.0, gid.1),
                    generation,
                ),
                Some(ls) => {
                    let section = pref.get("sectionName").and_then(Value::as_str);
                    let port = pref.get("port").and_then(Value::as_i64);
                    let matching: Vec<&Listener> = ls
                        .iter()
                        .filter(|l| {
                            section.is_none_or(|s| s == l.name)
                                && port.is_none_or(|p| Some(p) == l.port)
                        })
                        .collect();
                    let allowed: Vec<&Listener> = matching
                        .iter()
                        .copied()
                        .filter(|l| {
                            !l.supported.is_empty() && self.namespace_allowed(l, &gid.0, &rns)
                        })
                        .collect();
                    let hosted: Vec<&Listener> = allowed
                        .iter()
                        .copied()
                        .filter(|l| match &l.hostname {
                            None => true,
                            Some(h) => {
                                route_hosts.is_empty()
                                    || route_hosts.iter().any(|r| hostnames_intersect(h, r))
                            }
                        })
                        .collect();
                    if matching.is_empty() {
                        cond(
                            "Accepted",
                            false,
                            "NoMatchingParent",
                            "No listener matches the parentRef",
                            generation,
                        )
                    } else if allowed.is_empty() {
                        cond(
                            "Accepted",
                            false,
                            "NotAllowedByListeners",
                            &format!("No listener allows HTTPRoutes from namespace {rns}"),
                            generation,
                        )
                    } else if hosted.is_empty() {
                        cond(
                            "Accepted",
                            false,
                            "NoMatchingListenerHostname",
                            "No listener hostname matches the route's hostnames",
                            generation,
                        )
                    } else {
                        for l in hosted {
                            attached
                                .entry((gid.0.clone(), gid.1.clone(), l.name.clone()))
                                .or_default()
                                .insert(rid.clone());
                        }
                        cond(
                            "Accepted",
                            true,
                            "Accepted",
                            "Route is accepted",
                            generation,
                        )
                    }
                }
            };
            let old = old_parents
                .iter()
                .find(|p| {
                    p.get("controllerName").and_then(Value::as_str) == Some(CONTROLLER_NAME)
                        && p.get("parentRef") == Some(&pref)
                })
                .and_then(|p| p.get("conditions"));
            parents.push(json!({
                "parentRef": pref,
                "controllerName": CONTROLLER_NAME,
                "conditions": util::merge_conditions(old, vec![accepted, resolved.clone()], false),
            }));
        }
        let mut status = route
            .get("status")
            .cloned()
            .filter(Value::is_object)
            .unwrap_or(json!({}));
        status["parents"] = Value::Array(parents);
        util::write_status(store, &key(GW, "httproutes"), route, status);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controllers::testutil::*;
    use crate::controllers::{spawn_controllers, ControllerConfig};
    use crate::store::DeleteOptions;

    fn gateway(name: &str, from: &str) -> Value {
        json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"gatewayClassName": "sandbox", "listeners": [
                {"name": "http", "protocol": "HTTP", "port": 80, "allowedRoutes": {"namespaces": {"from": from}}}]}})
    }

    fn route(name: &str, ns: &str, backend: Value) -> Value {
        json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"parentRefs": [{"name": "gw", "namespace": "default"}],
                "rules": [{"backendRefs": [backend]}]}})
    }

    fn parent_cond(store: &Store, ns: &str, name: &str, t: &str) -> Option<(String, String)> {
        let r = store.get(&key(GW, "httproutes"), Some(ns), name).ok()?;
        let c = r
            .pointer("/status/parents/0/conditions")?
            .as_array()?
            .iter()
            .find(|c| c["type"] == t)?
            .clone();
        Some((
            c["status"].as_str()?.to_string(),
            c["reason"].as_str()?.to_string(),
        ))
    }

    fn status_is(store: &Store, ns: &str, name: &str, t: &str, want: (&str, &str)) -> Option<()> {
        parent_cond(store, ns, name, t)
            .filter(|(s, r)| s == want.0 && r == want.1)
            .map(|_| ())
    }

    #[tokio::test]
    async fn gateway_and_route_status() {
        let store = Store::new();
        let _h = spawn_controllers(store.clone(), ControllerConfig::default());
        create(
            &store,
            GW,
            "gatewayclasses",
            json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
            "metadata": {"name": "sandbox"}, "spec": {"controllerName": "example.com/anything"}}),
        );
        let mut gw = gateway("gw", "Same");
        gw["status"] = json!({});
        create(&store, GW, "gateways", gw);
        // The data plane's addresses survive our status writes.
        let g = wait_for("gateway status", || {
            store
                .get(&key(GW, "gateways"), Some("default"), "gw")
                .ok()
                .filter(|g| g.pointer("/status/listeners").is_some())
        })
        .await;
        let mut with_addr = g.clone();
        with_addr["status"]["addresses"] = json!([{"type": "IPAddress", "value": "127.0.0.1"}]);
        store
            .update_status(
                &key(GW, "gateways"),
                Some("default"),
                "gw",
                with_addr,
                &util::W,
            )
            .unwrap();

        create(
            &store,
            GW,
            "httproutes",
            route("missing", "default", json!({"name": "nope", "port": 80})),
        );
        wait_for("BackendNotFound", || {
            status_is(
                &store,
                "default",
                "missing",
                "ResolvedRefs",
                ("False", "BackendNotFound"),
            )
        })
        .await;
        assert_eq!(
            parent_cond(&store, "default", "missing", "Accepted").unwrap(),
            ("True".into(), "Accepted".into())
        );
        let r = store
            .get(&key(GW, "httproutes"), Some("default"), "missing")
            .unwrap();
        assert_eq!(r["status"]["parents"][0]["controllerName"], CONTROLLER_NAME);
        assert_eq!(
            r["status"]["parents"][0]["parentRef"],
            json!({"name": "gw", "namespace": "default"})
        );
        let ltt = r["status"]["parents"][0]["conditions"][0]["lastTransitionTime"].clone();

        // The Service appearing resolves the ref; Accepted keeps its transition time.
        create(
            &store,
            "",
            "services",
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "nope", "namespace": "default"},
            "spec": {"selector": {"app": "x"}, "ports": [{"port": 80}]}}),
        );
        wait_for("resolved", || {
            status_is(
                &store,
                "default",
                "missing",
                "ResolvedRefs",
                ("True", "ResolvedRefs"),
            )
        })
        .await;
        let r = store
            .get(&key(GW, "httproutes"), Some("default"), "missing")
            .unwrap();
        assert_eq!(
            r["status"]["parents"][0]["conditions"][0]["lastTransitionTime"],
            ltt
        );

        create(
            &store,
            GW,
            "httproutes",
            route(
                "kind",
                "default",
                json!({"name": "x", "kind": "Bucket", "group": "example.com"}),
            ),
        );
        wait_for("InvalidKind", || {
            status_is(
                &store,
                "default",
                "kind",
                "ResolvedRefs",
                ("False", "InvalidKind"),
            )
        })
        .await;

        // Another namespace: not allowed by a Same listener.
        create(
            &store,
            "",
            "namespaces",
            json!({"metadata": {"name": "other"}}),
        );
        create(
            &store,
            GW,
            "httproutes",
            route(
                "foreign",
                "other",
                json!({"name": "nope", "namespace": "default", "port": 80}),
            ),
        );
        wait_for("NotAllowedByListeners", || {
            status_is(
                &store,
                "other",
                "foreign",
                "Accepted",
                ("False", "NotAllowedByListeners"),
            )
        })
        .await;
        assert_eq!(
            parent_cond(&store, "other", "foreign", "ResolvedRefs")
                .unwrap()
                .1,
            "RefNotPermitted"
        );
        create(
            &store,
            GW,
            "referencegrants",
            json!({"apiVersion": "gateway.networking.k8s.io/v1beta1", "kind": "ReferenceGrant",
            "metadata": {"name": "allow", "namespace": "default"},
            "spec": {"from": [{"group": GW, "kind": "HTTPRoute", "namespace": "other"}], "to": [{"group": "", "kind": "Service"}]}}),
        );
        wait_for("grant", || {
            status_is(
                &store,
                "other",
                "foreign",
                "ResolvedRefs",
                ("True", "ResolvedRefs"),
            )
        })
        .await;

        // Attached routes count accepted routes only.
        let g = wait_for("attachedRoutes", || {
            store
                .get(&key(GW, "gateways"), Some("default"), "gw")
                .ok()
                .filter(|g| g["status"]["listeners"][0]["attachedRoutes"] == 2)
        })
        .await;
        assert_eq!(g["status"]["addresses"][0]["value"], "127.0.0.1");
        assert_eq!(
            g["status"]["listeners"][0]["supportedKinds"],
            json!([{"group": GW, "kind": "HTTPRoute"}])
        );
        let conds = g["status"]["conditions"].as_array().unwrap();
        assert!(conds
            .iter()
            .any(|c| c["type"] == "Programmed" && c["status"] == "True"));
        let gc = store
            .get(&key(GW, "gatewayclasses"), None, "sandbox")
            .unwrap();
        assert_eq!(gc["status"]["conditions"][0]["type"], "Accepted");
        assert_eq!(gc["status"]["conditions"][0]["status"], "True");

        // Without its Gateway a route has no matching parent.
        store
            .delete(
                &key(GW, "gateways"),
                Some("default"),
                "gw",
                &DeleteOptions::default(),
            )
            .unwrap();
        wait_for("NoMatchingParent", || {
            status_is(
                &store,
                "default",
                "missing",
                "Accepted",
                ("False", "NoMatchingParent"),
            )
        })
        .await;
    }

    #[test]
    fn hostname_intersection() {
        assert!(hostnames_intersect("*.example.com", "a.example.com"));
        assert!(hostnames_intersect("a.example.com", "*.example.com"));
        assert!(!hostnames_intersect("*.example.com", "example.com"));
        assert!(!hostnames_intersect("a.example.com", "b.example.com"));
    }
}
