//! The address rules: which IPs provider traffic must not reach, and how a URI host that is
//! an IP literal (in any spelling resolvers accept) is read.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// AWS's IPv6 instance metadata address (Nitro instances).
const AWS_METADATA_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254);
/// Alibaba Cloud's instance metadata address (outside link-local, so named explicitly).
const ALIBABA_METADATA_V4: Ipv4Addr = Ipv4Addr::new(100, 100, 100, 200);

/// True for addresses provider traffic must not reach unless the operator allows it: IPv4
/// link-local (169.254.0.0/16, home of most cloud metadata services), Alibaba's
/// 100.100.100.200, IPv6 link-local (fe80::/10), AWS's fd00:ec2::254, and any of those
/// IPv4 addresses written as IPv4-mapped/compatible IPv6 or through NAT64 (64:ff9b::/96).
///
/// Loopback and private ranges are allowed: on-prem providers live there.
pub fn is_forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_forbidden_v4(v4),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            let embedded_v4 = match s {
                [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => {
                    Some(Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo)))
                }
                _ => v6.to_ipv4(),
            };
            embedded_v4.is_some_and(is_forbidden_v4)
                || (s[0] & 0xffc0) == 0xfe80
                || v6 == AWS_METADATA_V6
        }
    }
}

/// Whether `host` (as a URI spells it) is this machine's loopback: `localhost`, or a
/// loopback IP literal in any spelling [`host_literal`] reads.
pub fn is_loopback_host(host: &str) -> bool {
    host.strip_suffix('.')
        .unwrap_or(host)
        .eq_ignore_ascii_case("localhost")
        || host_literal(host).is_some_and(|ip| ip.is_loopback())
}

/// The addresses of the AWS container credentials agents (ECS 169.254.170.2, EKS Pod
/// Identity 169.254.170.23 and fd00:ec2::23): on this node, whatever the proxy.
pub fn is_aws_credentials_agent(ip: IpAddr) -> bool {
    ip == IpAddr::from([169, 254, 170, 2])
        || ip == IpAddr::from([169, 254, 170, 23])
        || ip == IpAddr::from([0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x23])
}

/// Host names of cloud metadata services (GCP's, and AWS's in a VPC), refused by name: through
/// an egress proxy the gateway does not resolve names itself, so the address check cannot
/// see them.
pub fn is_metadata_name(host: &str) -> bool {
    const NAMES: [&str; 4] = [
        "metadata.google.internal",
        "metadata.goog",
        "instance-data",
        "instance-data.ec2.internal",
    ];
    let host = host.strip_suffix('.').unwrap_or(host);
    NAMES.iter().any(|n| n.eq_ignore_ascii_case(host))
}

fn is_forbidden_v4(ip: Ipv4Addr) -> bool {
    ip.is_link_local() || ip == ALIBABA_METADATA_V4
}

/// The address a URI host denotes when it is an IP literal, including the legacy IPv4
/// spellings (`2852039166`, `0xa9.0xfe.0xa9.0xfe`, `169.254.43518`) that resolvers accept.
pub fn host_literal(host: &str) -> Option<IpAddr> {
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        // Drop an IPv6 zone id (`%25eth0`): the address decides.
        let addr = inner.split('%').next().unwrap_or(inner);
        return addr.parse::<Ipv6Addr>().ok().map(IpAddr::V6);
    }
    parse_ipv4_loose(host.strip_suffix('.').unwrap_or(host)).map(IpAddr::V4)
}

/// `inet_aton` syntax: 1 to 4 parts, each decimal, octal (`0` prefix) or hex (`0x`); the last
/// part fills the remaining bytes.
fn parse_ipv4_loose(s: &str) -> Option<Ipv4Addr> {
    let parts: Vec<&str> = s.split('.').collect();
    if parts.is_empty() || parts.len() > 4 {
        return None;
    }
    let mut values = Vec::with_capacity(parts.len());
    for part in &parts {
        let (digits, radix) = if let Some(h) = part.strip_prefix("0x").or(part.strip_prefix("0X")) {
            (h, 16)
        } else if part.len() > 1 && part.starts_with('0') {
            (&part[1..], 8)
        } else {
            (*part, 10)
        };
        if digits.is_empty() && radix != 16 {
            return None;
        }
        let value = if digits.is_empty() {
            0
        } else {
            if !digits.chars().all(|c| c.is_digit(radix)) {
                return None;
            }
            u32::from_str_radix(digits, radix).ok()?
        };
        values.push(value);
    }
    let (last, leading) = values.split_last()?;
    if leading.iter().any(|v| *v > 255) {
        return None;
    }
    let last_bits = 8 * (4 - leading.len() as u32);
    if last_bits < 32 && *last >= 1u32 << last_bits {
        return None;
    }
    let mut addr = 0u32;
    for (i, v) in leading.iter().enumerate() {
        addr |= v << (24 - 8 * i as u32);
    }
    Some(Ipv4Addr::from(addr | last))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forbidden_addresses() {
        let check = |ip: &str, forbidden: bool| {
            let addr: IpAddr = ip.parse().unwrap();
            assert_eq!(is_forbidden(addr), forbidden, "{ip}");
        };
        check("169.254.169.254", true);
        check("169.254.0.0", true);
        check("169.254.255.255", true);
        check("100.100.100.200", true);
        check("fe80::1", true);
        check("fd00:ec2::254", true);
        check("::ffff:169.254.169.254", true);
        check("64:ff9b::169.254.169.254", true);
        check("127.0.0.1", false);
        check("10.1.2.3", false);
        check("192.168.1.1", false);
        check("172.16.0.1", false);
        check("100.100.100.100", false);
        check("::1", false);
        check("fd00:ec2::253", false);
        check("fc00::1", false);
        check("8.8.8.8", false);
        check("2606:4700::1111", false);
    }

    #[test]
    fn loose_ipv4() {
        let check = |s: &str, expected: Option<&str>| {
            assert_eq!(
                parse_ipv4_loose(s),
                expected.map(|e| e.parse().unwrap()),
                "{s}"
            );
        };
        check("1.2.3.4", Some("1.2.3.4"));
        check("2852039166", Some("169.254.169.254"));
        check("0xA9FEA9FE", Some("169.254.169.254"));
        check("0251.0376.0251.0376", Some("169.254.169.254"));
        check("169.254.43518", Some("169.254.169.254"));
        check("169.16689662", Some("169.254.169.254"));
        check("0", Some("0.0.0.0"));
        check("256.1.1.1", None);
        check("1.2.3.256", None);
        check("1.2.3.4.5", None);
        check("4294967296", None);
        check("1..2", None);
        check("08", None);
        check("api.openai.com", None);
        check("", None);
    }
}
