//! The SSRF guard: refuses webhook targets on loopback, private, link-local,
//! CGNAT, multicast, unspecified, reserved or cloud-metadata addresses, so that
//! user-supplied URLs cannot reach the sender's own network. IP literals are
//! refused by `attach`; host names are checked on every connection, in the DNS
//! resolver, so the address connected to is the address checked (no DNS
//! rebinding window).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use futures_util::future::LocalBoxFuture;
use ipnet::IpNet;

use crate::error::ConfigError;

/// Opt-in protection against server-side request forgery. Build it, allow
/// subnets you trust, and set it on a [`Config`](crate::Config) or on the whole
/// [`WebhooksEmitter`](crate::WebhooksEmitter) through its builder.
///
/// ```
/// use webhooks_emitter::{Config, SsrfGuard};
/// let config = Config::new("https://hooks.customer.example/in")
///     .ssrf_guard(SsrfGuard::new().allow_subnet("10.20.0.0/16"));
/// ```
#[derive(Clone, Debug, Default)]
pub struct SsrfGuard {
    allowed: Vec<String>,
}

impl SsrfGuard {
    /// A guard that refuses every non-public address.
    pub fn new() -> Self {
        SsrfGuard::default()
    }

    /// Lets addresses in `subnet` (CIDR, e.g. `10.20.0.0/16` or `fd00::/8`)
    /// through. Checked by `attach`.
    pub fn allow_subnet(mut self, subnet: impl Into<String>) -> Self {
        self.allowed.push(subnet.into());
        self
    }

    pub(crate) fn validate(&self) -> Result<TargetPolicy, ConfigError> {
        let allowed = self
            .allowed
            .iter()
            .map(|s| {
                s.parse::<IpNet>().map_err(|_| ConfigError::InvalidSubnet {
                    subnet: s.escape_debug().to_string(),
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(TargetPolicy { allowed })
    }
}

/// A validated guard.
#[derive(Debug, Clone)]
pub(crate) struct TargetPolicy {
    allowed: Vec<IpNet>,
}

impl TargetPolicy {
    /// Why `ip` is refused, or `None` if it may be connected to.
    pub(crate) fn refuses(&self, ip: IpAddr) -> Option<&'static str> {
        if self.allowed.iter().any(|net| net.contains(&ip)) {
            return None;
        }
        non_public(ip)
    }
}

/// The category of a non-public address, `None` for a public one.
pub(crate) fn non_public(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => non_public_v4(v4),
        IpAddr::V6(v6) => non_public_v6(v6),
    }
}

fn non_public_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b) {
        (0, _) => "unspecified (0.0.0.0/8)",
        (10, _) => "private (10.0.0.0/8)",
        (100, 64..=127) => "carrier-grade NAT (100.64.0.0/10)",
        (127, _) => "loopback (127.0.0.0/8)",
        (169, 254) => "link-local or cloud metadata (169.254.0.0/16)",
        (172, 16..=31) => "private (172.16.0.0/12)",
        (192, 0) if c == 0 => "IETF protocol assignments (192.0.0.0/24)",
        (192, 168) => "private (192.168.0.0/16)",
        (198, 18..=19) => "benchmarking (198.18.0.0/15)",
        (224..=239, _) => "multicast (224.0.0.0/4)",
        (240..=255, _) => "reserved or broadcast (240.0.0.0/4)",
        _ => return None,
    })
}

fn non_public_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let segments = ip.segments();
    if ip.is_unspecified() {
        return Some("unspecified (::)");
    }
    if ip.is_loopback() {
        return Some("loopback (::1)");
    }
    // Addresses that carry an IPv4 address: judge the IPv4 one.
    let embedded = match segments {
        [0, 0, 0, 0, 0, 0xffff, hi, lo] | [0, 0, 0, 0, 0, 0, hi, lo] => Some((hi, lo)), // mapped, compatible
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => Some((hi, lo)),                           // NAT64
        [0x2002, hi, lo, ..] => Some((hi, lo)),                                         // 6to4
        _ => None,
    };
    if let Some((hi, lo)) = embedded {
        let v4 = Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8);
        return non_public_v4(v4).map(|_| "IPv6 address embedding a non-public IPv4 address");
    }
    match segments[0] {
        0xfc00..=0xfdff => Some("unique local or cloud metadata (fc00::/7)"),
        0xfe80..=0xfebf => Some("link-local (fe80::/10)"),
        0xff00..=0xffff => Some("multicast (ff00::/8)"),
        _ => None,
    }
}

/// A refused target, as the resolver reports it to the connector.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{host} resolves only to refused addresses ({address}: {reason})")]
pub(crate) struct BlockedTarget {
    pub host: String,
    pub address: IpAddr,
    pub reason: &'static str,
}

/// The DNS resolver used when a guard is set: resolves with the system
/// resolver, drops refused addresses, fails if none is left.
pub(crate) struct GuardedResolver(pub TargetPolicy);

impl actix_tls::connect::Resolve for GuardedResolver {
    fn lookup<'a>(
        &'a self,
        host: &'a str,
        port: u16,
    ) -> LocalBoxFuture<'a, Result<Vec<SocketAddr>, Box<dyn std::error::Error>>> {
        Box::pin(async move {
            let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host, port)).await?.collect();
            let mut refused = None;
            let allowed: Vec<SocketAddr> = resolved
                .into_iter()
                .filter(|addr| match self.0.refuses(addr.ip()) {
                    Some(reason) => {
                        refused.get_or_insert((addr.ip(), reason));
                        false
                    }
                    None => true,
                })
                .collect();
            match (allowed.is_empty(), refused) {
                (true, Some((address, reason))) => Err(Box::new(BlockedTarget {
                    host: host.to_owned(),
                    address,
                    reason,
                })
                    as Box<dyn std::error::Error>),
                _ => Ok(allowed),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(ip: &str) -> bool {
        let ip: IpAddr = ip.parse().unwrap_or_else(|e| panic!("{ip}: {e}"));
        non_public(ip).is_some()
    }

    #[test]
    fn classifies_addresses() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.100.100.200",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "192.0.0.192",
            "::1",
            "::",
            "fe80::1",
            "fd00:ec2::254",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
            "2002:a00:1::",
        ] {
            assert!(refused(ip), "{ip} must be refused");
        }
        for ip in [
            "93.184.216.34",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(!refused(ip), "{ip} is public");
        }
    }

    #[test]
    fn the_allow_list_wins() {
        let policy = SsrfGuard::new()
            .allow_subnet("127.0.0.0/8")
            .validate()
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            policy.refuses(
                "127.0.0.1"
                    .parse()
                    .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
            ),
            None
        );
        assert!(policy
            .refuses(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)))
            .is_some());
        assert!(SsrfGuard::new()
            .allow_subnet("10.0.0.0/33")
            .validate()
            .is_err());
    }
}
