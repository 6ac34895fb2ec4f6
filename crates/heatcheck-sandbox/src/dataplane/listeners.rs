//! Sockets for gateway listeners: one loopback IP per Gateway, one socket per distinct
//! served port (listeners sharing a port share it and are told apart by hostname).
//! The policy is documented on the parent module.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;

use serde::Serialize;
use tokio::task::JoinHandle;

use super::metrics::GatewayMetrics;
use super::routing::RouteTable;
use super::server::{serve, TableCell};
use heatcheck_gateway::gateway_url::HOST_PORT_ADDRESS_TYPE;

/// How many loopback IPs to try for the declared ports before falling back to ephemeral ports.
const IP_ATTEMPTS: usize = 8;

/// An entry for a Gateway's `status.addresses`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct GatewayAddress {
    pub(crate) r#type: String,
    pub(crate) value: String,
}

/// One listener of a Gateway as served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ListenerBinding {
    pub(crate) name: String,
    /// The declared port.
    pub(crate) port: u16,
    /// Where it is really served (port 0 when not served).
    pub(crate) bound: SocketAddr,
    pub(crate) attached_routes: u32,
    pub(crate) protocol: String,
    /// False for listeners the sandbox does not serve (protocols other than HTTP).
    pub(crate) served: bool,
}

/// Per gateway, what to write into its status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayBinding {
    pub namespace: String,
    pub name: String,
    pub(crate) addresses: Vec<GatewayAddress>,
    pub(crate) listeners: Vec<ListenerBinding>,
}

struct PortServing {
    bound: SocketAddr,
    /// Serving TLS (HTTPS listeners); a port that changes protocol is restarted.
    tls: bool,
    task: JoinHandle<()>,
}

struct GatewayServing {
    uid: Option<String>,
    ip: Ipv4Addr,
    /// Some listener could not get its declared port: publish HostPort addresses.
    ephemeral: bool,
    ports: BTreeMap<u16, PortServing>,
}

#[derive(Default)]
pub(super) struct Listeners {
    gateways: HashMap<String, GatewayServing>,
    used_ips: HashSet<Ipv4Addr>,
    metrics: GatewayMetrics,
}

fn random_ip() -> Ipv4Addr {
    use rand::Rng;
    let mut rng = rand::rng();
    Ipv4Addr::new(127, rng.random_range(1..=254), rng.random_range(1..=254), 1)
}

fn bind(addr: SocketAddrV4) -> io::Result<tokio::net::TcpListener> {
    let l = std::net::TcpListener::bind(addr)?;
    l.set_nonblocking(true)?;
    tokio::net::TcpListener::from_std(l)
}

/// Bind every port on `ip`, all or nothing.
fn bind_all(ip: Ipv4Addr, ports: &[u16]) -> io::Result<Vec<(u16, tokio::net::TcpListener)>> {
    ports
        .iter()
        .map(|&p| bind(SocketAddrV4::new(ip, p)).map(|l| (p, l)))
        .collect()
}

/// The sockets of a new gateway: its IP, whether ports are ephemeral, (declared port, socket).
pub(super) struct BoundGateway {
    pub ip: Ipv4Addr,
    pub ephemeral: bool,
    pub sockets: Vec<(u16, tokio::net::TcpListener)>,
}

/// Choose an IP for a new gateway and bind its ports: declared ports on the first candidate
/// that takes them all; after EACCES or `IP_ATTEMPTS` busy IPs, ephemeral ports on a fresh
/// candidate (127.0.0.1 if this system cannot bind other loopback addresses).
pub(super) fn bind_new_gateway(
    ports: &[u16],
    mut candidates: impl Iterator<Item = Ipv4Addr>,
) -> io::Result<BoundGateway> {
    for _ in 0..IP_ATTEMPTS {
        let Some(ip) = candidates.next() else { break };
        match bind_all(ip, ports) {
            Ok(sockets) => {
                return Ok(BoundGateway {
                    ip,
                    ephemeral: false,
                    sockets,
                })
            }
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => break,
            Err(e) if e.kind() == io::ErrorKind::AddrNotAvailable => break,
            Err(_) => continue,
        }
    }
    let ip = candidates.next().unwrap_or(Ipv4Addr::LOCALHOST);
    let zeros = vec![0; ports.len()];
    let bound = match bind_all(ip, &zeros) {
        Ok(b) => (ip, b),
        Err(e) if e.kind() == io::ErrorKind::AddrNotAvailable => {
            (Ipv4Addr::LOCALHOST, bind_all(Ipv4Addr::LOCALHOST, &zeros)?)
        }
        Err(e) => return Err(e),
    };
    let (ip, sockets) = bound;
    let sockets = ports
        .iter()
        .copied()
        .zip(sockets.into_iter().map(|(_, l)| l))
        .collect();
    Ok(BoundGateway {
        ip,
        ephemeral: true,
        sockets,
    })
}

impl Listeners {
    pub(super) fn new(metrics: GatewayMetrics) -> Self {
        Listeners {
            gateways: HashMap::new(),
            used_ips: HashSet::new(),
            metrics,
        }
    }

    fn start(
        table: &Arc<TableCell>,
        metrics: &GatewayMetrics,
        key: &str,
        port: u16,
        tls: bool,
        l: tokio::net::TcpListener,
    ) -> io::Result<PortServing> {
        let bound = l.local_addr()?;
        let task = tokio::spawn(serve(
            l,
            table.clone(),
            metrics.clone(),
            key.to_string(),
            port,
            tls,
        ));
        Ok(PortServing { bound, tls, task })
    }

    async fn stop_gateway(&mut self, key: &str) {
        if let Some(g) = self.gateways.remove(key) {
            self.used_ips.remove(&g.ip);
            for (_, p) in g.ports {
                p.task.abort();
                let _ = p.task.await;
            }
        }
    }

    /// Make the sockets match the table; returns the bindings of every gateway in it.
    pub(super) async fn sync(
        &mut self,
        route_table: &RouteTable,
        table: &Arc<TableCell>,
    ) -> Vec<GatewayBinding> {
        let mut wanted: Vec<&super::routing::GatewayTable> = route_table.gateways().collect();
        wanted.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        let wanted_keys: HashSet<String> = wanted
            .iter()
            .map(|g| format!("{}/{}", g.namespace, g.name))
            .collect();
        let gone: Vec<String> = self
            .gateways
            .keys()
            .filter(|k| !wanted_keys.contains(*k))
            .cloned()
            .collect();
        for k in gone {
            self.stop_gateway(&k).await;
        }

        let mut out = Vec::new();
        for gw in wanted {
            let key = format!("{}/{}", gw.namespace, gw.name);
            if self.gateways.get(&key).is_some_and(|g| g.uid != gw.uid) {
                // Deleted and recreated: a new gateway, a new IP.
                self.stop_gateway(&key).await;
            }
            let ports = gw.served_ports();
            if !self.gateways.contains_key(&key) {
                let used = self.used_ips.clone();
                let candidates =
                    std::iter::repeat_with(random_ip).filter(move |ip| !used.contains(ip));
                match bind_new_gateway(&ports, candidates) {
                    Ok(BoundGateway {
                        ip,
                        ephemeral,
                        sockets,
                    }) => {
                        let mut serving = GatewayServing {
                            uid: gw.uid.clone(),
                            ip,
                            ephemeral,
                            ports: BTreeMap::new(),
                        };
                        for (port, l) in sockets {
                            match Self::start(table, &self.metrics, &key, port, gw.is_tls(port), l)
                            {
                                Ok(p) => {
                                    serving.ports.insert(port, p);
                                }
                                Err(e) => tracing::warn!(
                                    "gateway {key}: listener on port {port} failed: {e}"
                                ),
                            }
                        }
                        self.used_ips.insert(ip);
                        self.gateways.insert(key.clone(), serving);
                    }
                    Err(e) => {
                        tracing::warn!("gateway {key}: no loopback address could be bound: {e}");
                        continue;
                    }
                }
            } else if let Some(serving) = self.gateways.get_mut(&key) {
                let stale: Vec<u16> = serving
                    .ports
                    .keys()
                    .filter(|p| !ports.contains(p))
                    .copied()
                    .collect();
                for p in stale {
                    if let Some(ps) = serving.ports.remove(&p) {
                        ps.task.abort();
                        let _ = ps.task.await;
                    }
                }
                // Same socket, new protocol: keep the address, restart the accept loop.
                let switched: Vec<u16> = serving
                    .ports
                    .iter()
                    .filter(|(p, ps)| ps.tls != gw.is_tls(**p))
                    .map(|(p, _)| *p)
                    .collect();
                for p in switched {
                    if let Some(ps) = serving.ports.remove(&p) {
                        ps.task.abort();
                        let _ = ps.task.await;
                        let tls = gw.is_tls(p);
                        let restarted = bind(match ps.bound {
                            SocketAddr::V4(a) => a,
                            SocketAddr::V6(_) => SocketAddrV4::new(serving.ip, 0),
                        })
                        .and_then(|l| Self::start(table, &self.metrics, &key, p, tls, l));
                        match restarted {
                            Ok(n) => {
                                serving.ports.insert(p, n);
                            }
                            Err(e) => {
                                tracing::warn!("gateway {key}: listener on port {p} failed: {e}")
                            }
                        }
                    }
                }
                let missing: Vec<u16> = ports
                    .iter()
                    .filter(|p| !serving.ports.contains_key(p))
                    .copied()
                    .collect();
                for p in missing {
                    let declared = if serving.ephemeral {
                        Err(io::ErrorKind::AddrInUse.into())
                    } else {
                        bind(SocketAddrV4::new(serving.ip, p))
                    };
                    let l = match declared {
                        Ok(l) => Ok(l),
                        Err(_) => {
                            serving.ephemeral = true;
                            bind(SocketAddrV4::new(serving.ip, 0))
                        }
                    };
                    match l
                        .and_then(|l| Self::start(table, &self.metrics, &key, p, gw.is_tls(p), l))
                    {
                        Ok(ps) => {
                            serving.ports.insert(p, ps);
                        }
                        Err(e) => tracing::warn!("gateway {key}: listener on port {p} failed: {e}"),
                    }
                }
            }
            let Some(serving) = self.gateways.get(&key) else {
                continue;
            };
            let mut addresses = vec![GatewayAddress {
                r#type: "IPAddress".into(),
                value: serving.ip.to_string(),
            }];
            if serving.ephemeral {
                for p in &ports {
                    if let Some(ps) = serving.ports.get(p) {
                        addresses.push(GatewayAddress {
                            r#type: HOST_PORT_ADDRESS_TYPE.into(),
                            value: ps.bound.to_string(),
                        });
                    }
                }
            }
            let listeners = gw
                .listeners
                .iter()
                .map(|l| {
                    let bound = serving
                        .ports
                        .get(&l.port)
                        .filter(|_| l.served)
                        .map(|p| p.bound);
                    ListenerBinding {
                        name: l.name.clone(),
                        port: l.port,
                        bound: bound.unwrap_or(SocketAddr::V4(SocketAddrV4::new(serving.ip, 0))),
                        attached_routes: l.attached_routes,
                        protocol: l.protocol.clone(),
                        served: bound.is_some(),
                    }
                })
                .collect();
            out.push(GatewayBinding {
                namespace: gw.namespace.clone(),
                name: gw.name.clone(),
                addresses,
                listeners,
            });
        }
        out
    }

    pub(super) async fn shutdown(&mut self) {
        let keys: Vec<String> = self.gateways.keys().cloned().collect();
        for k in keys {
            self.stop_gateway(&k).await;
        }
    }
}
