//! Turning a Gateway's status into a URL a client can reach. The one place
//! that does this, for `{{gateway "NAME"}}`; identical on a real cluster and
//! on the sandbox.

use serde_json::Value;

/// The address type the sandbox publishes when it could not bind the
/// listener's declared port: its value is "ip:port".
pub const HOST_PORT_ADDRESS: &str = "heatcheck.dev/HostPort";

/// Base URL ("http://10.0.0.7", "http://127.4.9.1:8080") of a Gateway, from
/// `status.addresses` and the listener's port. `listener` picks a listener by
/// name; otherwise the first HTTP (then HTTPS) listener is used.
pub fn gateway_base_url(gateway: &Value, listener: Option<&str>) -> Result<String, String> {
    let name = gateway.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("?");
    let listeners = gateway
        .pointer("/spec/listeners")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let chosen = match listener {
        Some(l) => listeners
            .iter()
            .find(|x| x.get("name").and_then(Value::as_str) == Some(l))
            .ok_or_else(|| format!("gateway {name} has no listener named {l:?}"))?,
        None => listeners
            .iter()
            .find(|x| x.get("protocol").and_then(Value::as_str) == Some("HTTP"))
            .or_else(|| listeners.iter().find(|x| x.get("protocol").and_then(Value::as_str) == Some("HTTPS")))
            .ok_or_else(|| format!("gateway {name} has no HTTP or HTTPS listener"))?,
    };
    let scheme = if chosen.get("protocol").and_then(Value::as_str) == Some("HTTPS") { "https" } else { "http" };
    let port = chosen.get("port").and_then(Value::as_u64).unwrap_or(80);
    let addresses = gateway
        .pointer("/status/addresses")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if addresses.is_empty() {
        return Err(format!("gateway {name} has no status.addresses yet (is it programmed?)"));
    }
    let of_type = |t: &str| {
        addresses
            .iter()
            .find(|a| a.get("type").and_then(Value::as_str).unwrap_or("IPAddress") == t)
            .and_then(|a| a.get("value").and_then(Value::as_str))
    };
    // The sandbox publishes one HostPort per listener when it had to fall back
    // to an ephemeral port; "ip:port" values are matched to the listener's order.
    let host_ports: Vec<&str> = addresses
        .iter()
        .filter(|a| a.get("type").and_then(Value::as_str) == Some(HOST_PORT_ADDRESS))
        .filter_map(|a| a.get("value").and_then(Value::as_str))
        .collect();
    if !host_ports.is_empty() {
        let idx = listeners.iter().position(|l| l == chosen).unwrap_or(0);
        let hp = host_ports.get(idx).or(host_ports.first()).copied().unwrap_or_default();
        return Ok(format!("{scheme}://{hp}"));
    }
    let host = of_type("IPAddress")
        .or_else(|| of_type("Hostname"))
        .ok_or_else(|| format!("gateway {name} has no IPAddress or Hostname address"))?;
    let host = if host.contains(':') && !host.starts_with('[') { format!("[{host}]") } else { host.to_string() };
    let default_port = if scheme == "https" { 443 } else { 80 };
    if port == default_port {
        Ok(format!("{scheme}://{host}"))
    } else {
        Ok(format!("{scheme}://{host}:{port}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn gw(addresses: Value, port: u16) -> Value {
        json!({"metadata": {"name": "g"}, "spec": {"listeners": [{"name": "http", "protocol": "HTTP", "port": port}]}, "status": {"addresses": addresses}})
    }

    #[test]
    fn uses_address_and_listener_port() {
        assert_eq!(gateway_base_url(&gw(json!([{"type": "IPAddress", "value": "10.0.0.7"}]), 80), None).unwrap(), "http://10.0.0.7");
        assert_eq!(gateway_base_url(&gw(json!([{"type": "Hostname", "value": "lb.example"}]), 8080), None).unwrap(), "http://lb.example:8080");
        assert_eq!(gateway_base_url(&gw(json!([{"value": "::1"}]), 8080), None).unwrap(), "http://[::1]:8080");
    }

    #[test]
    fn prefers_the_sandbox_host_port() {
        let a = json!([{"type": "IPAddress", "value": "127.4.9.1"}, {"type": HOST_PORT_ADDRESS, "value": "127.4.9.1:40123"}]);
        assert_eq!(gateway_base_url(&gw(a, 80), None).unwrap(), "http://127.4.9.1:40123");
    }

    #[test]
    fn explains_a_gateway_without_addresses() {
        let e = gateway_base_url(&gw(json!([]), 80), None).unwrap_err();
        assert!(e.contains("no status.addresses"), "{e}");
        assert!(gateway_base_url(&gw(json!([{"value": "1.2.3.4"}]), 80), Some("nope")).is_err());
    }
}
