//! Traffic selectors (RFC 7296 section 2.9): the DMVPN shape is GRE between the two underlay
//! hosts (`A/32[gre] === B/32[gre]`); the responder narrows what it is offered to what its
//! policy allows, and answers TS_UNACCEPTABLE when nothing is left.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use dmvpn_wire::ikev2::{TrafficSelector, TsAddresses};

/// IP protocol number of GRE (IANA).
pub const PROTOCOL_GRE: u8 = 47;

/// One traffic selector: a protocol (0 = any), a port range and an address range of one
/// family (RFC 7296 section 3.13.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Selector {
    /// IP protocol, 0 for any.
    pub protocol: u8,
    /// First port.
    pub start_port: u16,
    /// Last port.
    pub end_port: u16,
    /// First address.
    pub start: IpAddr,
    /// Last address; same family as `start`.
    pub end: IpAddr,
}

impl Selector {
    /// One host, one protocol, every port.
    pub const fn host(addr: IpAddr, protocol: u8) -> Self {
        Selector {
            protocol,
            start_port: 0,
            end_port: u16::MAX,
            start: addr,
            end: addr,
        }
    }

    /// Every address of IPv4 or IPv6, one protocol.
    pub const fn any(ipv6: bool, protocol: u8) -> Self {
        let (start, end) = if ipv6 {
            (
                IpAddr::V6(Ipv6Addr::UNSPECIFIED),
                IpAddr::V6(Ipv6Addr::new(
                    0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff,
                )),
            )
        } else {
            (
                IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                IpAddr::V4(Ipv4Addr::BROADCAST),
            )
        };
        Selector {
            protocol,
            start_port: 0,
            end_port: u16::MAX,
            start,
            end,
        }
    }

    /// The intersection, if not empty (section 2.9's narrowing).
    pub fn intersect(&self, other: &Selector) -> Option<Selector> {
        let protocol = match (self.protocol, other.protocol) {
            (0, p) | (p, 0) => p,
            (a, b) if a == b => a,
            _ => return None,
        };
        let start_port = self.start_port.max(other.start_port);
        let end_port = self.end_port.min(other.end_port);
        if self.start.is_ipv4() != other.start.is_ipv4() || start_port > end_port {
            return None;
        }
        let start = self.start.max(other.start);
        let end = self.end.min(other.end);
        (start <= end).then_some(Selector {
            protocol,
            start_port,
            end_port,
            start,
            end,
        })
    }

    /// Whether `self` lies within `other`.
    pub fn within(&self, other: &Selector) -> bool {
        self.intersect(other) == Some(*self)
    }

    /// The selector of a wire TS, if its type is known and its range is well formed.
    pub fn from_wire(ts: &TrafficSelector<'_>) -> Option<Self> {
        let (start, end) = match ts.addresses {
            TsAddresses::Ipv4 { start, end } => (IpAddr::V4(start), IpAddr::V4(end)),
            TsAddresses::Ipv6 { start, end } => (IpAddr::V6(start), IpAddr::V6(end)),
            TsAddresses::Other { .. } => return None,
        };
        (start <= end && ts.start_port <= ts.end_port).then_some(Selector {
            protocol: ts.ip_protocol,
            start_port: ts.start_port,
            end_port: ts.end_port,
            start,
            end,
        })
    }

    /// The wire TS.
    pub fn wire(&self) -> TrafficSelector<'static> {
        let addresses = match (self.start, self.end) {
            (IpAddr::V4(start), IpAddr::V4(end)) => TsAddresses::Ipv4 { start, end },
            (IpAddr::V6(start), IpAddr::V6(end)) => TsAddresses::Ipv6 { start, end },
            // Constructors keep one family; a mixed pair falls back to the start host.
            (IpAddr::V4(start), _) => TsAddresses::Ipv4 { start, end: start },
            (IpAddr::V6(start), _) => TsAddresses::Ipv6 { start, end: start },
        };
        TrafficSelector {
            ip_protocol: self.protocol,
            start_port: self.start_port,
            end_port: self.end_port,
            addresses,
        }
    }
}

/// Narrows `proposed` to `allowed` (RFC 7296 section 2.9): every non-empty intersection,
/// without duplicates. Empty means TS_UNACCEPTABLE.
pub fn narrow(proposed: &[Selector], allowed: &[Selector]) -> Vec<Selector> {
    let mut out = Vec::new();
    for p in proposed {
        for a in allowed {
            if let Some(s) = p.intersect(a)
                && !out.contains(&s)
            {
                out.push(s);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn narrowing() {
        let a: IpAddr = "198.18.0.1".parse().unwrap();
        let b: IpAddr = "198.18.0.2".parse().unwrap();
        let gre_a = Selector::host(a, PROTOCOL_GRE);
        assert_eq!(
            narrow(&[gre_a], &[Selector::any(false, PROTOCOL_GRE)]),
            [gre_a]
        );
        assert_eq!(narrow(&[Selector::any(false, 0)], &[gre_a]), [gre_a]);
        assert!(narrow(&[gre_a], &[Selector::host(b, PROTOCOL_GRE)]).is_empty());
        assert!(
            narrow(
                &[Selector::host(a, 6)],
                &[Selector::any(false, PROTOCOL_GRE)]
            )
            .is_empty()
        );
        assert!(narrow(&[gre_a], &[Selector::any(true, 0)]).is_empty());
        assert!(gre_a.within(&Selector::any(false, 0)));
        assert!(!Selector::any(false, 0).within(&gre_a));
        let w = gre_a.wire();
        assert_eq!(Selector::from_wire(&w), Some(gre_a));
        assert_eq!(
            w,
            TrafficSelector::ipv4_host("198.18.0.1".parse().unwrap(), 47)
        );
    }
}
