//! The client's address behind reverse proxies (`[proxy]`).
//!
//! Per-address limits (sign-ins waiting, wrong codes, e-mails sent, enrolments) count the
//! address a request comes from. Behind a reverse proxy every request comes from the
//! proxy, so one abuser would use up everyone's budget: the operator names the proxies
//! (`[proxy] trusted`), and for a request from one of them the client is read from
//! `X-Forwarded-For` (the de-facto header every proxy sets; each hop appends the address
//! it received the request from). The list is read from the right: addresses appended by
//! trusted proxies are skipped, and the first other one is the client. What a client
//! writes at the left of the header itself is never believed, and a request from an
//! address that is not a trusted proxy is counted under that address whatever headers it
//! sends. A header that cannot be read counts the request under the last trusted hop (the
//! proxy), which is as strict as having no proxy support.

use std::net::IpAddr;

use actix_web::HttpRequest;

use crate::config::{invalid, ConfigError};

/// The keys of `[proxy]`.
pub const PROXY_KEYS: &[&str] = &["trusted"];

/// The most proxies a configuration may name.
const MAX_TRUSTED: usize = 64;

/// The reverse proxies whose `X-Forwarded-For` is believed; none by default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpAddr>);

impl TrustedProxies {
    /// Checks `[proxy] trusted`: at most 64 IP addresses.
    pub fn parse(addresses: &[String]) -> Result<Self, ConfigError> {
        let key = "proxy.trusted";
        if addresses.len() > MAX_TRUSTED {
            return Err(invalid(key, format!("at most {MAX_TRUSTED} addresses")));
        }
        addresses
            .iter()
            .map(|text| {
                text.parse::<IpAddr>()
                    .map(|address| address.to_canonical())
                    .map_err(|_| invalid(key, format!("{text:?} is not an IP address")))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }

    /// Whether no proxy is trusted.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn trusts(&self, address: IpAddr) -> bool {
        self.0.contains(&address)
    }

    /// The client of a request from `peer` that carried the `X-Forwarded-For` values
    /// `forwarded` (every such header, in order); an IPv4 address written as IPv6 is
    /// given as IPv4.
    pub fn client(&self, peer: IpAddr, forwarded: &[&str]) -> IpAddr {
        let mut client = peer.to_canonical();
        if !self.trusts(client) {
            return client;
        }
        let hops = forwarded
            .iter()
            .flat_map(|value| value.split(','))
            .map(str::trim)
            .collect::<Vec<_>>();
        for hop in hops.iter().rev() {
            match hop.parse::<IpAddr>() {
                Ok(address) => client = address.to_canonical(),
                // Unreadable: count it under the last trusted hop.
                Err(_) => return client,
            }
            if !self.trusts(client) {
                return client;
            }
        }
        client
    }
}

/// The client address of `req` (the peer, or behind a trusted proxy the address it
/// forwarded; IPv4 written as IPv6 given as IPv4, so both spellings share one budget);
/// `None` when the connection has no peer address (not over TCP).
pub fn client_ip(req: &HttpRequest, trusted: &TrustedProxies) -> Option<IpAddr> {
    let peer = req.peer_addr()?.ip();
    if trusted.is_empty() {
        return Some(peer.to_canonical());
    }
    let forwarded: Vec<&str> = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|value| value.to_str().ok())
        .collect();
    Some(trusted.client(peer, &forwarded))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn only_a_trusted_proxy_is_believed_and_only_for_what_trusted_hops_appended() {
        let none = TrustedProxies::default();
        assert_eq!(
            none.client(ip("10.0.0.1"), &["203.0.113.9"]),
            ip("10.0.0.1")
        );
        let proxies = TrustedProxies::parse(&["10.0.0.1".into(), "10.0.0.2".into()]).unwrap();
        // A client that is not a proxy: its own header is ignored.
        assert_eq!(
            proxies.client(ip("198.51.100.7"), &["203.0.113.9"]),
            ip("198.51.100.7")
        );
        // Through one proxy.
        assert_eq!(
            proxies.client(ip("10.0.0.1"), &["203.0.113.9"]),
            ip("203.0.113.9")
        );
        // A forged left part: the proxy appended the real address at the right.
        assert_eq!(
            proxies.client(ip("10.0.0.1"), &["1.2.3.4, 203.0.113.9"]),
            ip("203.0.113.9")
        );
        // Through two trusted proxies, over two header lines.
        assert_eq!(
            proxies.client(ip("10.0.0.1"), &["1.2.3.4, 203.0.113.9", "10.0.0.2"]),
            ip("203.0.113.9")
        );
        // No header, or an unreadable hop: the last trusted hop.
        assert_eq!(proxies.client(ip("10.0.0.1"), &[]), ip("10.0.0.1"));
        assert_eq!(
            proxies.client(ip("10.0.0.1"), &["1.2.3.4, unknown", "10.0.0.2"]),
            ip("10.0.0.2")
        );
        // IPv4 written as IPv6 is the same address.
        assert_eq!(
            proxies.client(ip("::ffff:10.0.0.1"), &["2001:db8::1"]),
            ip("2001:db8::1")
        );
    }

    #[test]
    fn the_list_is_checked() {
        assert!(TrustedProxies::parse(&["not an address".into()]).is_err());
        let many: Vec<String> = (0..65).map(|n| format!("10.0.0.{n}")).collect();
        assert!(TrustedProxies::parse(&many).is_err());
        assert!(TrustedProxies::parse(&[]).unwrap().is_empty());
    }
}
