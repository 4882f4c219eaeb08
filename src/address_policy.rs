//! Where objects created through the API may send requests.
//!
//! Whoever holds an API key can create destinations, outbound endpoints and
//! issue notification webhooks; without a policy they could point them at the
//! gateway's own network (cloud metadata, admin ports, private services) and
//! read the answers through `/attempts`. Every such request is checked here on
//! the address it actually connects to, after DNS resolution, so a name that
//! resolves (or re-resolves) to a refused address does not pass. Objects
//! declared in gateway.toml are the operator's and are not checked.

use ipnet::IpNet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use url::{Host, Url};

/// The error code of an attempt refused by the policy.
pub const BLOCKED_ADDRESS: &str = "BLOCKED_ADDRESS";

/// Ranges refused unless `[delivery] allowed_networks` opens them, each with
/// what it is (said in the refusal).
const REFUSED_BY_DEFAULT: &[(&str, &str)] = &[
    (
        "0.0.0.0/8",
        "\"this network\" (0.0.0.0 reaches the gateway's host)",
    ),
    ("10.0.0.0/8", "private"),
    (
        "100.64.0.0/10",
        "shared address space (carrier-grade NAT, some cloud metadata)",
    ),
    ("127.0.0.0/8", "loopback"),
    (
        "169.254.0.0/16",
        "link-local (cloud metadata at 169.254.169.254)",
    ),
    ("172.16.0.0/12", "private"),
    ("192.0.0.0/24", "reserved for protocol assignments"),
    ("192.168.0.0/16", "private"),
    ("198.18.0.0/15", "reserved for benchmarking"),
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved (with the broadcast address)"),
    ("::/128", "unspecified (reaches the gateway's host)"),
    ("::1/128", "loopback"),
    ("100::/64", "discard-only"),
    ("fc00::/7", "unique local (cloud metadata at fd00:ec2::254)"),
    ("fe80::/10", "link-local"),
    ("fec0::/10", "site-local"),
    ("ff00::/8", "multicast"),
];

/// Names answered without asking DNS: what they stand for is fixed (RFC 6761
/// for `localhost`; the metadata names exist only inside their clouds, where
/// they are this address).
fn well_known(host: &str) -> Option<Vec<IpAddr>> {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    if host == "localhost" || host.ends_with(".localhost") {
        return Some(vec![Ipv4Addr::LOCALHOST.into(), Ipv6Addr::LOCALHOST.into()]);
    }
    const METADATA: Ipv4Addr = Ipv4Addr::new(169, 254, 169, 254);
    matches!(host.as_str(), "metadata.google.internal" | "metadata.goog")
        .then(|| vec![METADATA.into()])
}

/// The ranges API-created objects may and may not reach.
#[derive(Debug, Clone)]
pub struct AddressPolicy {
    refused_by_default: Vec<(IpNet, &'static str)>,
    /// `[delivery] allowed_networks`: opened even if refused by default.
    allowed: Vec<IpNet>,
    /// `[delivery] blocked_networks`: refused, whatever `allowed` says.
    blocked: Vec<IpNet>,
}

/// An address the policy refuses, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct BlockedAddress {
    pub host: String,
    pub ip: IpAddr,
    pub why: &'static str,
}

impl std::fmt::Display for BlockedAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ip = self.ip.to_string();
        if self.host.trim_matches(['[', ']']) != ip {
            write!(f, "{} is {ip}, which is ", self.host)?;
        } else {
            write!(f, "{ip} is ")?;
        }
        write!(
            f,
            "{}: objects created through the API may not reach it \
             ([delivery] allowed_networks opens a range)",
            self.why
        )
    }
}

impl std::error::Error for BlockedAddress {}

impl AddressPolicy {
    pub fn new(allowed: Vec<IpNet>, blocked: Vec<IpNet>) -> AddressPolicy {
        let refused_by_default = REFUSED_BY_DEFAULT
            .iter()
            .map(|(net, why)| (net.parse().expect("the default ranges are valid"), *why))
            .collect();
        AddressPolicy {
            refused_by_default,
            allowed,
            blocked,
        }
    }

    /// Why `ip` is refused, or None when it may be reached. An IPv4-mapped
    /// IPv6 address is judged as the IPv4 address it is; an address that
    /// embeds an IPv4 address (NAT64, 6to4, IPv4-compatible) is also refused
    /// when the embedded one is.
    pub fn refusal(&self, ip: IpAddr) -> Option<&'static str> {
        let ip = ip.to_canonical();
        if self.blocked.iter().any(|net| net.contains(&ip)) {
            return Some("in [delivery] blocked_networks");
        }
        if let Some(why) = embedded_ipv4(ip).and_then(|v4| self.refusal(v4.into())) {
            return Some(why);
        }
        if self.allowed.iter().any(|net| net.contains(&ip)) {
            return None;
        }
        self.refused_by_default
            .iter()
            .find(|(net, _)| net.contains(&ip))
            .map(|(_, why)| *why)
    }

    /// The addresses of `found` that may be reached; an error naming the first
    /// refused one when none may.
    pub fn permitted(&self, host: &str, found: Vec<IpAddr>) -> Result<Vec<IpAddr>, BlockedAddress> {
        let mut first_refused = None;
        let mut permitted = Vec::new();
        for ip in found {
            match self.refusal(ip) {
                None => permitted.push(ip),
                Some(why) => {
                    first_refused.get_or_insert(BlockedAddress {
                        host: host.to_string(),
                        ip,
                        why,
                    });
                }
            }
        }
        match first_refused {
            Some(refused) if permitted.is_empty() => Err(refused),
            _ => Ok(permitted),
        }
    }

    /// Checks a URL whose host is an IP address (in any spelling the URL
    /// parser accepts: `2130706433`, `0x7f.1`, `[::ffff:127.0.0.1]` …); a
    /// name is checked when it is resolved. Used when an object is created
    /// or changed, and before a request is sent, since an IP address never
    /// reaches the resolver.
    pub fn check_url(&self, url: &Url) -> Result<(), BlockedAddress> {
        let (host, ip) = match url.host() {
            Some(Host::Ipv4(ip)) => (ip.to_string(), IpAddr::from(ip)),
            Some(Host::Ipv6(ip)) => (format!("[{ip}]"), IpAddr::from(ip)),
            Some(Host::Domain(_)) | None => return Ok(()),
        };
        self.permitted(&host, vec![ip]).map(drop)
    }

    /// Resolves `host` (a domain name) and keeps the addresses that may be reached.
    pub async fn resolve(&self, host: &str) -> Result<Vec<IpAddr>, ResolveError> {
        let found = match well_known(host) {
            Some(found) => found,
            None => tokio::net::lookup_host((host, 0))
                .await
                .map_err(ResolveError::Lookup)?
                .map(|address| address.ip())
                .collect(),
        };
        Ok(self.permitted(host, found)?)
    }
}

/// Why a name did not resolve to an address that may be reached.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("dns error: {0}")]
    Lookup(std::io::Error),
    #[error(transparent)]
    Blocked(#[from] BlockedAddress),
}

/// The IPv4 address inside an IPv6 one that carries it to an IPv4 host:
/// NAT64 (`64:ff9b::/96`), IPv4-compatible (`::/96`) and 6to4 (`2002::/16`).
fn embedded_ipv4(ip: IpAddr) -> Option<Ipv4Addr> {
    let IpAddr::V6(v6) = ip else {
        return None;
    };
    let [o0, o1, o2, o3, o4, o5, .., o12, o13, o14, o15] = v6.octets();
    let prefix = &v6.segments()[..6];
    let nat64 = prefix == [0x64, 0xff9b, 0, 0, 0, 0];
    let compatible = prefix == [0; 6] && !v6.is_loopback() && !v6.is_unspecified();
    if nat64 || compatible {
        return Some(Ipv4Addr::new(o12, o13, o14, o15));
    }
    ([o0, o1] == [0x20, 0x02]).then(|| Ipv4Addr::new(o2, o3, o4, o5))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn default_policy() -> AddressPolicy {
        AddressPolicy::new(Vec::new(), Vec::new())
    }

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|net| net.parse().unwrap()).collect()
    }

    fn url_refused(policy: &AddressPolicy, url: &str) -> bool {
        policy.check_url(&Url::parse(url).unwrap()).is_err()
    }

    #[test]
    fn every_default_range_is_refused_from_its_first_to_its_last_address() {
        let policy = default_policy();
        for (net, why) in &policy.refused_by_default {
            for ip in [net.network(), net.broadcast()] {
                assert_eq!(policy.refusal(ip), Some(*why), "{ip}");
            }
        }
    }

    #[test]
    fn internal_addresses_are_refused_in_every_spelling() {
        let policy = default_policy();
        for url in [
            "http://127.1/",
            "http://0x7f000001/",
            "http://017700000001/",
            "http://0x7f.0.0.1/",
            "http://127.0.0.1./",
            "http://[0:0:0:0:0:ffff:7f00:1]/",
            "http://[::ffff:169.254.169.254]/",
            "http://[64:ff9b::a9fe:a9fe]/",
            "http://[2002:a9fe:a9fe::1]/",
            "http://[::10.0.0.1]/",
            "http://100.100.100.200/",
            "http://[fe80::1]/",
            "http://[ff02::1]/",
        ] {
            assert!(url_refused(&policy, url), "{url} passed");
        }
    }

    #[test]
    fn public_addresses_and_names_pass_before_resolution() {
        let policy = default_policy();
        for url in [
            "https://93.184.215.14/",
            "https://[2606:4700::1111]/",
            "https://hooks.example.com/in",
            "http://localhost/",
            "http://[::ffff:8.8.8.8]/",
        ] {
            assert!(!url_refused(&policy, url), "{url} was refused");
        }
    }

    #[test]
    fn allowed_networks_open_a_range_and_blocked_networks_close_one() {
        let policy = AddressPolicy::new(
            nets(&["127.0.0.0/8", "10.0.0.0/8"]),
            nets(&["10.9.0.0/16", "203.0.113.0/24"]),
        );
        assert_eq!(policy.refusal("127.0.0.1".parse().unwrap()), None);
        assert_eq!(policy.refusal("::ffff:127.0.0.1".parse().unwrap()), None);
        assert_eq!(policy.refusal("10.1.0.1".parse().unwrap()), None);
        assert_eq!(
            policy.refusal("10.9.0.1".parse().unwrap()),
            Some("in [delivery] blocked_networks")
        );
        assert!(policy.refusal("203.0.113.7".parse().unwrap()).is_some());
        assert!(policy.refusal("192.168.0.1".parse().unwrap()).is_some());
        assert!(policy.refusal("::1".parse().unwrap()).is_some());
    }

    #[test]
    fn a_name_passes_when_one_of_its_addresses_may_be_reached() {
        let policy = default_policy();
        let mixed = vec![
            "127.0.0.1".parse().unwrap(),
            "93.184.215.14".parse().unwrap(),
        ];
        assert_eq!(
            policy.permitted("mixed.example", mixed).unwrap(),
            vec!["93.184.215.14".parse::<IpAddr>().unwrap()]
        );
        let refused = policy
            .permitted("internal.example", vec!["10.0.0.5".parse().unwrap()])
            .unwrap_err();
        assert_eq!(
            (refused.ip.to_string(), refused.why),
            ("10.0.0.5".into(), "private")
        );
        assert!(
            refused.to_string().contains("allowed_networks"),
            "{refused}"
        );
    }

    #[tokio::test]
    async fn well_known_names_resolve_without_dns_and_are_refused() {
        for name in [
            "localhost",
            "LOCALHOST.",
            "api.localhost",
            "metadata.google.internal",
        ] {
            let refused = default_policy().resolve(name).await.unwrap_err();
            assert!(
                matches!(refused, ResolveError::Blocked(_)),
                "{name}: {refused}"
            );
        }
        let opened = AddressPolicy::new(nets(&["127.0.0.0/8"]), Vec::new());
        assert_eq!(
            opened.resolve("sink.localhost").await.unwrap(),
            vec![IpAddr::from(Ipv4Addr::LOCALHOST)]
        );
    }
}
