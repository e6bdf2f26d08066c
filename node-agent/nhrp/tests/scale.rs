//! Scale in simulation: 1 hub and 5,000 spokes (each with a tunnel address and a LAN)
//! register under 5% loss (plus 1% duplication and 5% reordering), then 10,000 random
//! spoke-to-spoke flows hairpinned through the hub each converge to a shortcut. Prints the
//! simulated time to converge and the wall time of each phase.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod sim;

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use dmvpn_nhrp::{Config, EntryType, NhsConfig, Prefix, Role, SplitMix64};
use sim::{Impairments, Sim, check_holdtimes};

const SPOKES: u32 = 5_000;
const FLOWS: usize = 10_000;
const HUB: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 1);
const HUB_NBMA: Ipv4Addr = Ipv4Addr::new(100, 64, 0, 1);

fn offset(base: Ipv4Addr, by: u32) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(base) + by)
}

#[test]
fn five_thousand_spokes_register_then_ten_thousand_flows_converge_to_shortcuts() {
    let wall = Instant::now();
    let mut sim = Sim::new(5000, Impairments::lossy(5));
    let mut hub = Config::new(Role::Hub, HUB.into(), 16, HUB_NBMA.into());
    hub.password = Some(dmvpn_nhrp::Password::new(b"scale").unwrap());
    hub.redirect = true;
    sim.add("hub", hub.clone(), HUB_NBMA.into());
    for k in 1..=SPOKES {
        let tunnel = offset(HUB, k);
        let nbma = offset(HUB_NBMA, k);
        let mut c = Config::new(Role::Spoke, tunnel.into(), 16, nbma.into());
        c.password = hub.password.clone();
        c.shortcut = true;
        c.nhs.push(NhsConfig {
            tunnel: HUB.into(),
            nbma: HUB_NBMA.into(),
            priority: 0,
        });
        let lan = offset(Ipv4Addr::new(10, 128, 0, 0), k * 256);
        c.advertised_prefixes
            .push(Prefix::new(lan.into(), 24).unwrap());
        sim.add(&format!("spoke{k}"), c, nbma.into());
    }
    let setup = wall.elapsed();
    let want = 2 * SPOKES as usize;
    let converged = sim.run_until(
        Duration::from_secs(600),
        |s| s.nhs_up == i64::from(SPOKES) && s.nodes[0].engine.cache().dynamic_len() == want,
        |_| {},
    );
    let simulated = sim.elapsed();
    let took = wall.elapsed();
    let hub = &sim.nodes[0].engine;
    let c = hub.counters();
    println!(
        "1 hub + {SPOKES} spokes, 5% loss: converged={converged} in {simulated:?} simulated, \
         {took:?} wall ({setup:?} setup), {} datagrams delivered, {} steps, hub received {} \
         requests and sent {} replies, {} drops",
        sim.delivered,
        sim.steps,
        c.received
            .get(dmvpn_wire::nhrp::Operation::RegistrationRequest),
        c.sent.get(dmvpn_wire::nhrp::Operation::RegistrationReply),
        c.dropped_total(),
    );
    assert!(converged);
    assert_eq!(c.registrations_refused, 0);
    assert_eq!(hub.multicast_peers().len(), SPOKES as usize);
    check_holdtimes(&sim);
    // Every spoke's LAN resolves to its NBMA address at the hub.
    for k in [1, 2_500, SPOKES] {
        let (_, e) = hub
            .lookup(IpAddr::from(offset(Ipv4Addr::new(10, 128, 0, 9), k * 256)))
            .unwrap();
        assert_eq!(e.kind, EntryType::Registered);
        assert_eq!(e.nbma, IpAddr::from(offset(HUB_NBMA, k)));
    }

    // 10,000 random flows between spokes' LANs. The hub's dataplane reports each hairpinned
    // packet with `traffic_to`; a flow keeps sending, so unconverged flows are reported
    // again every 10 s (the redirect rate limit is 8 s per pair).
    let wall = Instant::now();
    let start = sim.now;
    let lan_host = |k: u32, h: u32| IpAddr::from(offset(Ipv4Addr::new(10, 128, 0, 0), k * 256 + h));
    let mut rng = SplitMix64(10_000);
    let flows: Vec<(u32, u32)> = (0..FLOWS)
        .map(|_| {
            let a = 1 + (rng.next_u64() % u64::from(SPOKES)) as u32;
            let b = 1
                + ((u64::from(a) + rng.next_u64() % u64::from(SPOKES - 1)) % u64::from(SPOKES))
                    as u32;
            (a, b)
        })
        .collect();
    assert!(flows.iter().all(|(a, b)| a != b));
    let done = |sim: &Sim, (a, b): (u32, u32)| {
        sim.nodes[a as usize]
            .engine
            .lookup(lan_host(b, 20))
            .is_some_and(|(_, e)| {
                e.kind == EntryType::Shortcut && e.tunnel == IpAddr::from(offset(HUB, b))
            })
    };
    let mut rounds = 0;
    while !flows.iter().all(|f| done(&sim, *f)) && rounds < 30 {
        rounds += 1;
        let pending: Vec<(u32, u32)> = flows.iter().copied().filter(|f| !done(&sim, *f)).collect();
        sim.command(0, |hub, now| {
            for (a, b) in pending {
                hub.traffic_to(now, lan_host(a, 10), lan_host(b, 20));
            }
        });
        let until = sim.now + Duration::from_secs(10);
        sim.run_until(
            Duration::from_secs(10),
            |s| s.now >= until || flows.iter().all(|f| done(s, *f)),
            |_| {},
        );
    }
    let converged = flows.iter().all(|f| done(&sim, *f));
    let hub = sim.nodes[0].engine.counters();
    let shortcuts: usize = sim.nodes[1..]
        .iter()
        .map(|n| {
            n.engine
                .cache()
                .iter()
                .filter(|(_, e)| e.kind == EntryType::Shortcut)
                .count()
        })
        .sum();
    println!(
        "{FLOWS} flows, 5% loss: converged={converged} in {:?} simulated ({rounds} rounds of \
         redirects), {:?} wall; hub sent {} traffic indications ({} suppressed), answered {} \
         resolutions; {shortcuts} shortcuts installed",
        sim.now - start,
        wall.elapsed(),
        hub.sent.get(dmvpn_wire::nhrp::Operation::TrafficIndication),
        hub.redirects_suppressed,
        hub.sent.get(dmvpn_wire::nhrp::Operation::ResolutionReply),
    );
    assert!(converged);
    check_holdtimes(&sim);
}
