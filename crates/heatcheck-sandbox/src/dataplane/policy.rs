//! NetworkPolicy ingress for gateway-to-pod traffic.
//!
//! The emulated gateway is not a pod: it is a source in the Gateway's namespace with a
//! loopback address (127.0.0.0/8) and no pod labels. So a `from` peer admits it when its
//! `namespaceSelector` matches the Gateway's namespace (with `podSelector` absent or empty),
//! when it is a bare empty `podSelector: {}` and the Gateway lives in the policy's namespace,
//! or when its `ipBlock` covers 127.0.0.0/8.

use std::net::Ipv4Addr;

use serde_json::{Map, Value};

use super::selector::{labels, selector_matches};

/// The port a backendRef ends up on in the pod: a number, a name, or both when known.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct TargetPort {
    pub number: Option<u16>,
    pub name: Option<String>,
}

/// Does this policy isolate the pod for ingress? Absent `policyTypes` means Ingress
/// (Kubernetes defaults it so).
fn isolates_ingress(policy: &Value, pod_labels: &Map<String, Value>) -> bool {
    let Some(spec) = policy.get("spec") else {
        return false;
    };
    let ingress_type = match spec.get("policyTypes").and_then(Value::as_array) {
        Some(types) => types.iter().any(|t| t.as_str() == Some("Ingress")),
        None => true,
    };
    ingress_type && selector_matches(spec.get("podSelector").unwrap_or(&Value::Null), pod_labels)
}

fn empty_selector(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::Object(m)) => m.values().all(|x| match x {
            Value::Object(o) => o.is_empty(),
            Value::Array(a) => a.is_empty(),
            Value::Null => true,
            _ => false,
        }),
        _ => false,
    }
}

fn peer_admits_gateway(
    peer: &Value,
    policy_ns: &str,
    gw_ns: &str,
    gw_ns_labels: &Map<String, Value>,
) -> bool {
    if let Some(block) = peer.get("ipBlock") {
        return ip_block_covers_loopback(block);
    }
    match (peer.get("namespaceSelector"), peer.get("podSelector")) {
        (Some(ns_sel), pod_sel) => {
            empty_selector(pod_sel) && selector_matches(ns_sel, gw_ns_labels)
        }
        (None, Some(pod_sel)) => policy_ns == gw_ns && empty_selector(Some(pod_sel)),
        (None, None) => false,
    }
}

fn parse_cidr(s: &str) -> Option<(u32, u32)> {
    let (ip, len) = s.split_once('/')?;
    let ip: Ipv4Addr = ip.parse().ok()?;
    let len: u32 = len.parse().ok()?;
    if len > 32 {
        return None;
    }
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    Some((u32::from(ip) & mask, mask))
}

/// True when the block contains all of 127.0.0.0/8 and no `except` entry cuts into it.
fn ip_block_covers_loopback(block: &Value) -> bool {
    const LOOP: u32 = 127 << 24;
    const LOOP_MASK: u32 = 0xff00_0000;
    let Some((net, mask)) = block
        .get("cidr")
        .and_then(Value::as_str)
        .and_then(parse_cidr)
    else {
        return false;
    };
    let covers = mask & LOOP_MASK == mask && LOOP & mask == net;
    let cut = block
        .get("except")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter_map(parse_cidr)
        .any(|(enet, emask)| {
            // Two CIDRs overlap when they agree on the shorter mask.
            let m = emask & LOOP_MASK;
            enet & m == LOOP & m
        });
    covers && !cut
}

fn port_allowed(ports: Option<&Value>, target: &TargetPort) -> bool {
    let Some(ports) = ports.and_then(Value::as_array) else {
        return true;
    };
    if ports.is_empty() || (target.number.is_none() && target.name.is_none()) {
        return true;
    }
    ports.iter().any(|p| {
        if p.get("protocol").and_then(Value::as_str).unwrap_or("TCP") != "TCP" {
            return false;
        }
        match p.get("port") {
            None | Some(Value::Null) => true,
            Some(Value::String(name)) => target.name.as_deref() == Some(name.as_str()),
            Some(v) => match (v.as_u64(), target.number) {
                (Some(start), Some(n)) => {
                    let end = p.get("endPort").and_then(Value::as_u64).unwrap_or(start);
                    (start..=end).contains(&u64::from(n))
                }
                _ => false,
            },
        }
    })
}

/// `Err(policy names)` when the pod is isolated for ingress and no rule of the isolating
/// policies admits the gateway on `target`.
pub(super) fn gateway_may_reach(
    pod: &Value,
    target: &TargetPort,
    policies_in_pod_ns: &[&Value],
    gw_ns: &str,
    gw_ns_labels: &Map<String, Value>,
) -> Result<(), String> {
    let pod_labels = labels(pod);
    let pod_ns = pod
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("default");
    let mut isolating = Vec::new();
    for policy in policies_in_pod_ns {
        if !isolates_ingress(policy, pod_labels) {
            continue;
        }
        let rules = policy.pointer("/spec/ingress").and_then(Value::as_array);
        let admitted = rules.into_iter().flatten().any(|rule| {
            let from_ok = match rule.get("from").and_then(Value::as_array) {
                None => true,
                Some(peers) if peers.is_empty() => true,
                Some(peers) => peers
                    .iter()
                    .any(|p| peer_admits_gateway(p, pod_ns, gw_ns, gw_ns_labels)),
            };
            from_ok && port_allowed(rule.get("ports"), target)
        });
        if admitted {
            return Ok(());
        }
        let name = policy
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("?");
        isolating.push(format!("NetworkPolicy {pod_ns}/{name}"));
    }
    if isolating.is_empty() {
        Ok(())
    } else {
        Err(isolating.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod() -> Value {
        json!({"metadata": {"name": "web-1", "namespace": "shop", "labels": {"app": "web"}}})
    }

    fn gw_labels(ns: &str) -> Map<String, Value> {
        json!({"kubernetes.io/metadata.name": ns, "team": "edge"})
            .as_object()
            .unwrap()
            .clone()
    }

    fn np(spec: Value) -> Value {
        json!({"metadata": {"name": "p", "namespace": "shop"}, "spec": spec})
    }

    fn check(policies: &[Value], gw_ns: &str) -> Result<(), String> {
        let refs: Vec<&Value> = policies.iter().collect();
        gateway_may_reach(
            &pod(),
            &TargetPort {
                number: Some(3000),
                name: Some("http".into()),
            },
            &refs,
            gw_ns,
            &gw_labels(gw_ns),
        )
    }

    #[test]
    fn no_policy_or_non_selecting_policy_allows() {
        assert!(check(&[], "infra").is_ok());
        let other =
            np(json!({"podSelector": {"matchLabels": {"app": "db"}}, "policyTypes": ["Ingress"]}));
        assert!(check(&[other], "infra").is_ok());
        let egress_only = np(json!({"podSelector": {}, "policyTypes": ["Egress"]}));
        assert!(check(&[egress_only], "infra").is_ok());
    }

    #[test]
    fn deny_all_blocks_and_names_the_policy() {
        let deny = np(json!({"podSelector": {}, "policyTypes": ["Ingress"]}));
        assert_eq!(check(&[deny], "infra").unwrap_err(), "NetworkPolicy shop/p");
        // policyTypes absent still means Ingress.
        let deny = np(json!({"podSelector": {}}));
        assert!(check(&[deny], "infra").is_err());
    }

    #[test]
    fn rules_that_admit_the_gateway() {
        let all = np(json!({"podSelector": {}, "ingress": [{}]}));
        assert!(check(&[all], "infra").is_ok());
        let by_ns = np(
            json!({"podSelector": {}, "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "infra"}}}]}]}),
        );
        assert!(check(std::slice::from_ref(&by_ns), "infra").is_ok());
        assert!(check(&[by_ns], "other").is_err());
        let ns_and_pods = np(
            json!({"podSelector": {}, "ingress": [{"from": [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"app": "gw"}}}]}]}),
        );
        assert!(
            check(&[ns_and_pods], "infra").is_err(),
            "the gateway has no pod labels"
        );
        let ip = np(
            json!({"podSelector": {}, "ingress": [{"from": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}]}),
        );
        assert!(check(&[ip], "infra").is_ok());
        let ip_except = np(
            json!({"podSelector": {}, "ingress": [{"from": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["127.0.0.0/16"]}}]}]}),
        );
        assert!(check(&[ip_except], "infra").is_err());
        let ip_other = np(
            json!({"podSelector": {}, "ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/8"}}]}]}),
        );
        assert!(check(&[ip_other], "infra").is_err());
        let same_ns_pods =
            np(json!({"podSelector": {}, "ingress": [{"from": [{"podSelector": {}}]}]}));
        assert!(check(std::slice::from_ref(&same_ns_pods), "shop").is_ok());
        assert!(check(&[same_ns_pods], "infra").is_err());
    }

    #[test]
    fn ports_restrict_rules() {
        let on =
            |port: Value| np(json!({"podSelector": {}, "ingress": [{"ports": [{"port": port}]}]}));
        assert!(check(&[on(json!(3000))], "infra").is_ok());
        assert!(check(&[on(json!("http"))], "infra").is_ok());
        assert!(check(&[on(json!(8080))], "infra").is_err());
        let range = np(
            json!({"podSelector": {}, "ingress": [{"ports": [{"port": 2000, "endPort": 4000}]}]}),
        );
        assert!(check(&[range], "infra").is_ok());
    }

    #[test]
    fn any_admitting_policy_wins() {
        let deny = np(json!({"podSelector": {}, "policyTypes": ["Ingress"]}));
        let allow = np(json!({"podSelector": {"matchLabels": {"app": "web"}}, "ingress": [{}]}));
        assert!(check(&[deny, allow], "infra").is_ok());
    }
}
