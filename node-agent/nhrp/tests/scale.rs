//! Scale in simulation: 1 hub and 5,000 spokes (each with a tunnel address and a LAN)
//! register under 5% loss (plus 1% duplication and 5% reordering). Prints the simulated
//! time to converge and the wall time.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod sim;

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use dmvpn_nhrp::{Config, EntryType, NhsConfig, Prefix, Role};
use sim::{Impairments, Sim, check_holdtimes};

const SPOKES: u32 = 5_000;
const HUB: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 1);
const HUB_NBMA: Ipv4Addr = Ipv4Addr::new(100, 64, 0, 1);

fn offset(base: Ipv4Addr, by: u32) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(base) + by)
}

#[test]
fn five_thousand_spokes_register_under_5_percent_loss() {
    let wall = Instant::now();
    let mut sim = Sim::new(5000, Impairments::lossy(5));
    let mut hub = Config::new(Role::Hub, HUB.into(), 16, HUB_NBMA.into());
    hub.password = Some(dmvpn_nhrp::Password::new(b"scale").unwrap());
    sim.add("hub", hub.clone(), HUB_NBMA.into());
    for k in 1..=SPOKES {
        let tunnel = offset(HUB, k);
        let nbma = offset(HUB_NBMA, k);
        let mut c = Config::new(Role::Spoke, tunnel.into(), 16, nbma.into());
        c.password = hub.password.clone();
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
}
