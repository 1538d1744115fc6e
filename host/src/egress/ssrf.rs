//! The SSRF guard: a destination's name is resolved once, in the host, and
//! refused if any address is private, loopback, link-local, unique-local,
//! multicast or a cloud metadata address (IPv4-mapped and embedded IPv4 forms
//! too). The client connects to exactly the addresses checked here, so DNS
//! rebinding cannot switch them.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use crate::policy::forbidden_reason;

/// A name that resolved to an address the guard refuses.
#[derive(Debug, thiserror::Error)]
#[error("{name} resolved to {ip}, {reason}")]
pub struct BlockedAddress {
    pub name: String,
    pub ip: IpAddr,
    pub reason: &'static str,
}

/// A name that did not resolve: kept apart from a refused connection, so
/// a step (and its run's record) says "DNS" when the name was the problem.
#[derive(Debug, thiserror::Error)]
#[error("DNS lookup of {name} failed: {reason}")]
pub struct NameNotResolved {
    pub name: String,
    pub reason: String,
}

/// The resolver the shared client uses for every name: a fixed hosts table
/// first (answers checked like DNS answers), then the system resolver; any
/// refused address refuses the name.
pub(crate) struct GuardedResolver {
    hosts: Arc<HashMap<String, Vec<IpAddr>>>,
}

impl GuardedResolver {
    pub(crate) fn new(hosts: &[(String, IpAddr)]) -> Self {
        let mut table: HashMap<String, Vec<IpAddr>> = HashMap::new();
        for (name, ip) in hosts {
            table.entry(name.to_ascii_lowercase()).or_default().push(*ip);
        }
        Self { hosts: Arc::new(table) }
    }
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let hosts = self.hosts.clone();
        let name = name.as_str().to_ascii_lowercase();
        Box::pin(async move {
            let ips: Vec<IpAddr> = match hosts.get(&name) {
                Some(ips) => ips.clone(),
                None => match tokio::net::lookup_host((name.as_str(), 0)).await {
                    Ok(found) => found.map(|a| a.ip()).collect(),
                    Err(e) => return Err(not_resolved(&name, &e.to_string())),
                },
            };
            if let Some((ip, reason)) = ips.iter().find_map(|ip| forbidden_reason(*ip).map(|r| (*ip, r))) {
                return Err(
                    Box::new(BlockedAddress { name, ip, reason }) as Box<dyn std::error::Error + Send + Sync>
                );
            }
            if ips.is_empty() {
                return Err(not_resolved(&name, "no addresses"));
            }
            let addrs: Vec<SocketAddr> = ips.into_iter().map(|ip| SocketAddr::new(ip, 0)).collect();
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

fn not_resolved(name: &str, reason: &str) -> Box<dyn std::error::Error + Send + Sync> {
    // The system's text ("failed to lookup address information: Name or
    // service not known") without its generic preamble.
    let reason = reason.trim_start_matches("failed to lookup address information: ").to_string();
    Box::new(NameNotResolved { name: name.to_string(), reason })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(text: &str) -> Option<&'static str> {
        forbidden_reason(text.parse().unwrap())
    }

    #[test]
    fn internal_and_metadata_addresses_are_refused_in_every_form() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "224.0.0.1",
            "::1",
            "::",
            "fd00:ec2::254",
            "fc00::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::",
            "168.63.129.16",
            "198.18.0.1",
            "fec0::1",
            "64:ff9b:1::a9fe:a9fe",
            "::ffff:0:127.0.0.1",
        ] {
            assert!(reason(ip).is_some(), "{ip} must be refused");
        }
    }

    #[test]
    fn public_addresses_pass() {
        for ip in ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"] {
            assert_eq!(reason(ip), None, "{ip}");
        }
    }
}
