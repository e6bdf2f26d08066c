//! The forwarding decision: longest-prefix match over static routes (prefix via a tunnel
//! next hop) and the NHRP cache (peers' registered prefixes at a hub, shortcuts at a spoke,
//! DMVPN phase 3), then next-hop tunnel address → NHRP cache → NBMA address (RFC 2332
//! section 4.2).
//!
//! Ties between a static route and a cache entry of the same length go to the cache: a
//! shortcut for a prefix is more precise than a summary route to the hub. A destination in
//! the tunnel subnet with no cache entry goes, on a spoke, through its NHS (phase 3: the
//! hub forwards it and redirects), and is unreachable on a hub.

use core::net::{IpAddr, Ipv4Addr};

use dmvpn_nhrp::{Engine, EntryType, Prefix, PrefixTable, Role};

use crate::config::StaticRoute;
use crate::counters::DropReason;

/// Where a packet goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Over the tunnel to the peer at `nbma`.
    Tunnel {
        /// The peer's NBMA address.
        nbma: IpAddr,
        /// The tunnel address of the next hop.
        next_hop: IpAddr,
        /// Through an NHRP shortcut that the engine has not yet been told is in use.
        unmarked_shortcut: bool,
    },
    /// To every peer of the multicast replication set (multicast, tunnel broadcast).
    Multicast,
    /// Not over the tunnel: ours (our tunnel address, our own prefixes).
    Local,
    /// Nowhere.
    Unreachable(DropReason),
}

/// Static routes and the tunnel subnet.
#[derive(Debug, Clone)]
pub struct Routes {
    fib: PrefixTable<IpAddr>,
    subnet: Prefix,
    broadcast: Option<IpAddr>,
}

impl Routes {
    /// The routes of a tunnel on `subnet` with `statics`.
    pub fn new(subnet: Prefix, statics: &[StaticRoute]) -> Self {
        let mut fib = PrefixTable::new();
        for r in statics {
            fib.insert(r.prefix, r.via);
        }
        let broadcast = match subnet.addr() {
            IpAddr::V4(a) if subnet.prefix_len() < 31 => {
                let host = u32::MAX >> subnet.prefix_len();
                Some(IpAddr::V4(Ipv4Addr::from(a.to_bits() | host)))
            }
            _ => None,
        };
        Routes {
            fib,
            subnet,
            broadcast,
        }
    }

    /// The tunnel subnet.
    pub fn subnet(&self) -> Prefix {
        self.subnet
    }

    /// The static routes' prefixes.
    pub fn static_prefixes(&self) -> impl Iterator<Item = Prefix> + '_ {
        self.fib.iter().map(|(p, _)| *p)
    }

    /// Where a packet for `dst` goes.
    pub fn lookup(&self, engine: &Engine, dst: IpAddr) -> Next {
        if is_multicast(dst) || Some(dst) == self.broadcast {
            return Next::Multicast;
        }
        let cached = engine.lookup(dst);
        let stat = self.fib.longest_match(dst);
        match (cached, stat) {
            (Some((p, e)), s) if s.is_none_or(|(sp, _)| p.prefix_len() >= sp.prefix_len()) => {
                entry_next(e)
            }
            (_, Some((_, via))) => self.via(engine, *via),
            (None, None) if self.subnet.contains(dst) => self.via_nhs(engine),
            (_, None) => Next::Unreachable(DropReason::NoRoute),
        }
    }

    /// The NBMA address of the tunnel next hop `via`.
    fn via(&self, engine: &Engine, via: IpAddr) -> Next {
        match engine.lookup(via) {
            Some((_, e)) => entry_next(e),
            None if self.subnet.contains(via) => self.via_nhs(engine),
            None => Next::Unreachable(DropReason::NoNbma),
        }
    }

    /// A spoke's fallback for tunnel addresses it has no entry for: its first NHS.
    fn via_nhs(&self, engine: &Engine) -> Next {
        let config = engine.config();
        match config.nhs.first() {
            Some(nhs) if config.role == Role::Spoke => Next::Tunnel {
                nbma: nhs.nbma,
                next_hop: nhs.tunnel,
                unmarked_shortcut: false,
            },
            _ => Next::Unreachable(DropReason::NoNbma),
        }
    }
}

fn entry_next(e: &dmvpn_nhrp::Entry) -> Next {
    match e.kind {
        EntryType::Local => Next::Local,
        EntryType::Incomplete => Next::Unreachable(DropReason::NoNbma),
        EntryType::Static | EntryType::Registered | EntryType::Shortcut => Next::Tunnel {
            nbma: e.nbma,
            next_hop: e.tunnel,
            unmarked_shortcut: e.kind == EntryType::Shortcut && !e.used,
        },
    }
}

/// Whether `addr` is multicast (224.0.0.0/4, ff00::/8) or the limited broadcast.
pub fn is_multicast(addr: IpAddr) -> bool {
    match addr {
        IpAddr::V4(a) => a.is_multicast() || a.is_broadcast(),
        IpAddr::V6(a) => a.is_multicast(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dmvpn_nhrp::{Config, NhsConfig, SplitMix64};
    use std::time::Instant;

    fn a(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn p(s: &str, len: u8) -> Prefix {
        Prefix::new(a(s), len).unwrap()
    }

    fn spoke() -> Engine {
        let mut c = Config::new(Role::Spoke, a("10.1.1.2"), 24, a("198.18.0.2"));
        c.nhs.push(NhsConfig {
            tunnel: a("10.1.1.1"),
            nbma: a("198.18.0.1"),
            priority: 0,
        });
        c.advertised_prefixes.push(p("192.168.2.0", 24));
        Engine::new(c, Box::new(SplitMix64(1)), Instant::now()).unwrap()
    }

    #[test]
    fn longest_prefix_over_statics_and_cache() {
        let e = spoke();
        let statics = [
            StaticRoute {
                prefix: p("192.168.0.0", 16),
                via: a("10.1.1.1"),
            },
            StaticRoute {
                prefix: p("172.16.0.0", 12),
                via: a("10.9.9.9"),
            },
            StaticRoute {
                prefix: p("172.20.0.0", 16),
                via: a("10.1.1.7"),
            },
        ];
        let r = Routes::new(p("10.1.1.0", 24), &statics);
        let hub = Next::Tunnel {
            nbma: a("198.18.0.1"),
            next_hop: a("10.1.1.1"),
            unmarked_shortcut: false,
        };
        // Via the static summary to the hub's NBMA address.
        assert_eq!(r.lookup(&e, a("192.168.3.5")), hub);
        // Our own /24 is longer than the /16: local.
        assert_eq!(r.lookup(&e, a("192.168.2.5")), Next::Local);
        assert_eq!(r.lookup(&e, a("10.1.1.2")), Next::Local);
        // The NHS's static entry.
        assert_eq!(r.lookup(&e, a("10.1.1.1")), hub);
        // Another spoke's tunnel address: through the NHS (phase 3).
        assert_eq!(r.lookup(&e, a("10.1.1.3")), hub);
        // A next hop off the tunnel subnet with no cache entry.
        assert_eq!(
            r.lookup(&e, a("172.16.1.1")),
            Next::Unreachable(DropReason::NoNbma)
        );
        // A next hop in the subnet without an entry goes via the NHS too.
        assert_eq!(r.lookup(&e, a("172.20.1.1")), hub);
        assert_eq!(
            r.lookup(&e, a("8.8.8.8")),
            Next::Unreachable(DropReason::NoRoute)
        );
        assert_eq!(r.lookup(&e, a("224.0.0.10")), Next::Multicast);
        assert_eq!(r.lookup(&e, a("10.1.1.255")), Next::Multicast);
        assert_eq!(r.lookup(&e, a("ff02::5")), Next::Multicast);
        assert_eq!(r.static_prefixes().count(), 3);
    }

    #[test]
    fn hub_has_no_fallback() {
        let c = Config::new(Role::Hub, a("10.1.1.1"), 24, a("198.18.0.1"));
        let e = Engine::new(c, Box::new(SplitMix64(1)), Instant::now()).unwrap();
        let r = Routes::new(p("10.1.1.0", 24), &[]);
        assert_eq!(
            r.lookup(&e, a("10.1.1.3")),
            Next::Unreachable(DropReason::NoNbma)
        );
    }
}
