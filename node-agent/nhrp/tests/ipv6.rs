//! IPv6: an IPv6 overlay over an IPv4 underlay (what Cisco and nhrpd fail to interoperate
//! on, ../shared/research/anchors.md section 2.5) and over an IPv6 underlay: registration,
//! redirect, resolution and a /64 shortcut, every packet round-tripping through dmvpn-wire
//! and dissected clean by tshark.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod sim;

use std::net::IpAddr;
use std::time::Duration;

use dmvpn_nhrp::{Config, EntryType, NhsConfig, Prefix, Role};
use sim::{Impairments, Sim, check_holdtimes};

fn a(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn run(nbma: [&str; 3]) {
    let mut sim = Sim::new(71, Impairments::lossy(5));
    sim.captured = Some(Vec::new());
    let mut hub = Config::new(Role::Hub, a("fd00::1"), 64, a(nbma[0]));
    hub.redirect = true;
    sim.add("hub", hub, a(nbma[0]));
    for (n, nbma) in [(2u16, nbma[1]), (3, nbma[2])] {
        let mut c = Config::new(Role::Spoke, a(&format!("fd00::{n}")), 64, a(nbma));
        c.nhs.push(NhsConfig {
            tunnel: a("fd00::1"),
            nbma: a(nbma_of_hub(nbma)),
            priority: 0,
        });
        c.advertised_prefixes
            .push(Prefix::new(a(&format!("fd00:{n}::")), 64).unwrap());
        c.shortcut = true;
        sim.add(&format!("spoke{n}"), c, a(nbma));
    }
    assert!(sim.run_until(
        Duration::from_secs(60),
        |s| s.nhs_up == 2 && s.nodes[0].engine.cache().dynamic_len() == 4,
        check_holdtimes
    ));
    let (p, e) = sim.nodes[0].engine.lookup(a("fd00:3::99")).unwrap();
    assert_eq!(p, Prefix::new(a("fd00:3::"), 64).unwrap());
    assert_eq!((e.kind, e.tunnel), (EntryType::Registered, a("fd00::3")));
    let shortcut = |s: &Sim| {
        s.nodes[1]
            .engine
            .lookup(a("fd00:3::99"))
            .filter(|(_, e)| e.kind == EntryType::Shortcut)
            .map(|(p, e)| (p, e.nbma))
    };
    for _ in 0..5 {
        if shortcut(&sim).is_some() {
            break;
        }
        sim.command(0, |h, now| {
            h.traffic_to(now, a("fd00:2::1"), a("fd00:3::99"))
        });
        sim.run_for(Duration::from_secs(10), check_holdtimes);
    }
    assert_eq!(
        shortcut(&sim),
        Some((Prefix::new(a("fd00:3::"), 64).unwrap(), a(nbma[2])))
    );
    let underlay = if nbma[0].contains(':') { "v6" } else { "v4" };
    common::assert_packets_clean(
        &format!("nhrp-ipv6-over-{underlay}"),
        &sim.captured.take().unwrap(),
    );
}

fn nbma_of_hub(spoke_nbma: &str) -> &'static str {
    if spoke_nbma.contains(':') {
        "2001:db8::1"
    } else {
        "198.18.0.1"
    }
}

#[test]
fn ipv6_overlay_on_ipv4_underlay() {
    run(["198.18.0.1", "198.18.0.2", "198.18.0.3"]);
}

#[test]
fn ipv6_overlay_on_ipv6_underlay() {
    run(["2001:db8::1", "2001:db8::2", "2001:db8::3"]);
}
