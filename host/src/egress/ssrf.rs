//! The SSRF guard: a destination's name is resolved once, in the host, and
//! refused if any address is private, loopback, link-local, unique-local,
//! multicast or a cloud metadata address (IPv4-mapped and embedded IPv4 forms
//! too). The client connects to exactly the addresses checked here, so DNS
//! rebinding cannot switch them.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

/// Why an address may not be reached, or `None` if it is public.
pub fn forbidden_reason(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_reason(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = embedded_v4(v6) {
                return v4_reason(v4).map(|_| "an IPv4 address in IPv6 form that is not public");
            }
            let seg = v6.segments();
            if v6.is_loopback() {
                Some("a loopback address")
            } else if v6.is_unspecified() {
                Some("the unspecified address")
            } else if v6 == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) {
                Some("a cloud metadata address")
            } else if seg[0] & 0xfe00 == 0xfc00 {
                Some("a unique-local address")
            } else if seg[0] & 0xffc0 == 0xfe80 {
                Some("a link-local address")
            } else if seg[0] & 0xffc0 == 0xfec0 {
                Some("a site-local address")
            } else if seg[0] & 0xff00 == 0xff00 {
                Some("a multicast address")
            } else if seg[0] == 0x2001 && seg[1] == 0x0db8 {
                Some("a documentation address")
            } else {
                None
            }
        }
    }
}

fn v4_reason(v4: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = v4.octets();
    if v4 == Ipv4Addr::new(169, 254, 169, 254)
        || v4 == Ipv4Addr::new(100, 100, 100, 200)
        || v4 == Ipv4Addr::new(168, 63, 129, 16)
    {
        Some("a cloud metadata address")
    } else if v4.is_loopback() {
        Some("a loopback address")
    } else if v4.is_private() {
        Some("a private address")
    } else if v4.is_link_local() {
        Some("a link-local address")
    } else if v4.is_multicast() || v4.is_broadcast() {
        Some("a multicast or broadcast address")
    } else if a == 0 {
        Some("a 'this network' address")
    } else if a == 100 && (64..128).contains(&b) {
        Some("a carrier-grade NAT address")
    } else if a == 198 && (b == 18 || b == 19) {
        Some("a benchmarking address")
    } else if a >= 240 || (a == 192 && b == 0 && v4.octets()[2] == 0) || v4.is_documentation() {
        Some("a reserved address")
    } else {
        None
    }
}

/// The IPv4 address inside IPv4-mapped (`::ffff:a.b.c.d`), IPv4-compatible
/// (`::a.b.c.d`), NAT64 (`64:ff9b::/96`) and 6to4 (`2002::/16`) forms.
fn embedded_v4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    let seg = v6.segments();
    let low = Ipv4Addr::new((seg[6] >> 8) as u8, seg[6] as u8, (seg[7] >> 8) as u8, seg[7] as u8);
    if let Some(mapped) = v6.to_ipv4_mapped() {
        Some(mapped)
    } else if (seg[..6] == [0, 0, 0, 0, 0, 0] && !v6.is_loopback() && !v6.is_unspecified())
        || (seg[0] == 0x64 && seg[1] == 0xff9b && seg[2..6] == [0, 0, 0, 0])
        || (seg[0] == 0x64 && seg[1] == 0xff9b && seg[2] == 1)
        || (seg[..4] == [0, 0, 0, 0] && seg[4] == 0xffff && seg[5] == 0)
    {
        Some(low)
    } else if seg[0] == 0x2002 {
        Some(Ipv4Addr::new((seg[1] >> 8) as u8, seg[1] as u8, (seg[2] >> 8) as u8, seg[2] as u8))
    } else {
        None
    }
}

/// A name that resolved to an address the guard refuses.
#[derive(Debug, thiserror::Error)]
#[error("{name} resolved to {ip}, {reason}")]
pub struct BlockedAddress {
    pub name: String,
    pub ip: IpAddr,
    pub reason: &'static str,
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
                None => tokio::net::lookup_host((name.as_str(), 0)).await?.map(|a| a.ip()).collect(),
            };
            if let Some((ip, reason)) = ips.iter().find_map(|ip| forbidden_reason(*ip).map(|r| (*ip, r))) {
                return Err(
                    Box::new(BlockedAddress { name, ip, reason }) as Box<dyn std::error::Error + Send + Sync>
                );
            }
            let addrs: Vec<SocketAddr> = ips.into_iter().map(|ip| SocketAddr::new(ip, 0)).collect();
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
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
