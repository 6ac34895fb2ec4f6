//! Turning a Gateway (with status) into a base URL, on the sandbox and on real clusters.

use serde_json::Value;

/// Address type the sandbox publishes when a listener could not get its declared port.
pub const HOST_PORT_ADDRESS_TYPE: &str = "heatcheck.dev/HostPort";

/// The ONE place that turns a Gateway object (with status) into a base URL such as
/// "http://127.4.9.1" or "http://127.4.9.1:8080".
///
/// * If `status.addresses` has `heatcheck.dev/HostPort` entries ("ip:port"), the sandbox
///   publishes one per distinct port of its HTTP and HTTPS listeners, in `spec.listeners`
///   order; the entry of the selected listener's port is used (the first HTTP listener's
///   without a listener).
/// * Otherwise the first `IPAddress` or `Hostname` address (type defaults to IPAddress) is
///   combined with the port of the selected listener, or of the first HTTP listener (the
///   first HTTPS one if there is none) (`:80` is omitted). An HTTPS listener gives an `https://` URL (`:443` omitted).
pub fn gateway_base_url(gateway: &Value, listener: Option<&str>) -> Result<String, String> {
    let id = format!(
        "Gateway {}/{}",
        gateway
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or("default"),
        gateway
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("?")
    );
    let listeners = gateway
        .pointer("/spec/listeners")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let chosen = match listener {
        Some(name) => Some(
            listeners
                .iter()
                .find(|l| l.get("name").and_then(Value::as_str) == Some(name))
                .ok_or_else(|| format!("{id} has no listener named {name:?}"))?,
        ),
        None => listeners
            .iter()
            .find(|l| is_http(l))
            .or_else(|| listeners.iter().find(|l| is_served(l))),
    };
    // An HTTPS listener is reached over TLS.
    let scheme = match chosen {
        Some(l) if l.get("protocol").and_then(Value::as_str) == Some("HTTPS") => "https",
        _ => "http",
    };
    let port_of = |l: &Value| {
        l.get("port")
            .and_then(Value::as_u64)
            .and_then(|p| u16::try_from(p).ok())
    };
    let addresses = gateway
        .pointer("/status/addresses")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let host_ports: Vec<&str> = addresses
        .iter()
        .filter(|a| a.get("type").and_then(Value::as_str) == Some(HOST_PORT_ADDRESS_TYPE))
        .filter_map(|a| a.get("value").and_then(Value::as_str))
        .collect();
    if !host_ports.is_empty() {
        let index = match chosen.and_then(port_of) {
            Some(port) => {
                let mut ports: Vec<u16> = Vec::new();
                for p in listeners
                    .iter()
                    .filter(|l| is_served(l))
                    .filter_map(port_of)
                {
                    if !ports.contains(&p) {
                        ports.push(p);
                    }
                }
                ports.iter().position(|p| *p == port).ok_or_else(|| {
                    format!(
                        "{id}: listener {:?} is not served over HTTP or HTTPS",
                        listener.unwrap_or_default()
                    )
                })?
            }
            _ => 0,
        };
        let hp = host_ports.get(index).ok_or_else(|| {
            format!(
                "{id}: status.addresses has no {HOST_PORT_ADDRESS_TYPE} entry for listener {:?}",
                listener.unwrap_or_default()
            )
        })?;
        return Ok(format!("{scheme}://{hp}"));
    }

    let host = addresses
        .iter()
        .find(|a| {
            matches!(
                a.get("type").and_then(Value::as_str).unwrap_or("IPAddress"),
                "IPAddress" | "Hostname"
            )
        })
        .and_then(|a| a.get("value").and_then(Value::as_str))
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            format!("{id} has no address in status.addresses yet (is it Programmed?)")
        })?;
    let port = chosen
        .and_then(port_of)
        .ok_or_else(|| format!("{id} has no HTTP listener with a port"))?;
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    Ok(
        if (scheme, port) == ("http", 80) || (scheme, port) == ("https", 443) {
            format!("{scheme}://{host}")
        } else {
            format!("{scheme}://{host}:{port}")
        },
    )
}

fn is_http(l: &Value) -> bool {
    l.get("protocol").and_then(Value::as_str).unwrap_or("HTTP") == "HTTP"
}

/// Listeners the sandbox serves (and publishes HostPort addresses for): HTTP and HTTPS.
fn is_served(l: &Value) -> bool {
    matches!(
        l.get("protocol").and_then(Value::as_str).unwrap_or("HTTP"),
        "HTTP" | "HTTPS"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn gw(listeners: Value, addresses: Value) -> Value {
        json!({"metadata": {"name": "g", "namespace": "n"}, "spec": {"listeners": listeners}, "status": {"addresses": addresses}})
    }

    #[test]
    fn ip_and_declared_port() {
        let ls = json!([{"name": "tls", "port": 443, "protocol": "HTTPS"}, {"name": "http", "port": 80, "protocol": "HTTP"}, {"name": "alt", "port": 8080, "protocol": "HTTP"}]);
        let g = gw(ls, json!([{"type": "IPAddress", "value": "127.4.9.1"}]));
        assert_eq!(gateway_base_url(&g, None).unwrap(), "http://127.4.9.1");
        assert_eq!(
            gateway_base_url(&g, Some("alt")).unwrap(),
            "http://127.4.9.1:8080"
        );
        assert!(gateway_base_url(&g, Some("nope"))
            .unwrap_err()
            .contains("no listener named"));
    }

    #[test]
    fn hostname_and_ipv6() {
        let ls = json!([{"name": "http", "port": 8080, "protocol": "HTTP"}]);
        let g = gw(
            ls.clone(),
            json!([{"type": "Hostname", "value": "lb.example.com"}]),
        );
        assert_eq!(
            gateway_base_url(&g, None).unwrap(),
            "http://lb.example.com:8080"
        );
        let g = gw(ls, json!([{"value": "fd00::1"}]));
        assert_eq!(gateway_base_url(&g, None).unwrap(), "http://[fd00::1]:8080");
    }

    #[test]
    fn host_port_entries_are_preferred_and_follow_listener_ports() {
        let ls = json!([{"name": "a", "port": 80}, {"name": "b", "port": 80, "hostname": "x.example.com"}, {"name": "c", "port": 8080}]);
        let g = gw(
            ls,
            json!([
                {"type": "IPAddress", "value": "127.4.9.1"},
                {"type": "heatcheck.dev/HostPort", "value": "127.4.9.1:41000"},
                {"type": "heatcheck.dev/HostPort", "value": "127.4.9.1:41001"}
            ]),
        );
        assert_eq!(
            gateway_base_url(&g, None).unwrap(),
            "http://127.4.9.1:41000"
        );
        assert_eq!(
            gateway_base_url(&g, Some("b")).unwrap(),
            "http://127.4.9.1:41000"
        );
        assert_eq!(
            gateway_base_url(&g, Some("c")).unwrap(),
            "http://127.4.9.1:41001"
        );
    }

    #[test]
    fn no_status_is_an_error() {
        let g = json!({"metadata": {"name": "g", "namespace": "n"}, "spec": {"listeners": [{"name": "h", "port": 80}]}});
        assert!(gateway_base_url(&g, None)
            .unwrap_err()
            .contains("Gateway n/g has no address"));
    }

    #[test]
    fn https_listeners_give_https_urls_and_count_for_host_ports() {
        let listeners = json!([
            {"name": "tls", "protocol": "HTTPS", "port": 443},
            {"name": "web", "protocol": "HTTP", "port": 80}]);
        let g = gw(
            listeners.clone(),
            json!([{"type": "IPAddress", "value": "127.1.2.1"}]),
        );
        assert_eq!(gateway_base_url(&g, None).unwrap(), "http://127.1.2.1");
        assert_eq!(
            gateway_base_url(&g, Some("tls")).unwrap(),
            "https://127.1.2.1"
        );
        let g = gw(
            listeners,
            json!([{"type": "IPAddress", "value": "127.1.2.1"},
            {"type": HOST_PORT_ADDRESS_TYPE, "value": "127.1.2.1:4000"},
            {"type": HOST_PORT_ADDRESS_TYPE, "value": "127.1.2.1:4001"}]),
        );
        assert_eq!(gateway_base_url(&g, None).unwrap(), "http://127.1.2.1:4001");
        assert_eq!(
            gateway_base_url(&g, Some("tls")).unwrap(),
            "https://127.1.2.1:4000"
        );
    }
}
