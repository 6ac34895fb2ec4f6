//! Pure Gateway API logic both sides need: the runner (probes, assertions)
//! and the sandbox's data plane. No I/O, no cluster, no async.

#![warn(unreachable_pub)]

pub mod gateway_url;
pub mod jsonpath;
pub mod route_precedence;
pub mod units;
