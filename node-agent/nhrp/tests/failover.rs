//! Hub restart and NHS failover with two hubs, in simulation.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod sim;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use dmvpn_nhrp::{EntryType, Event, NhsConfig};
use dmvpn_wire::nhrp::Operation;
use sim::{Impairments, Sim, check_holdtimes, seed};

const HUB2: Ipv4Addr = Ipv4Addr::new(10, 1, 1, 254);
const HUB2_NBMA: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 254);

fn registered(sim: &Sim, hub: usize) -> usize {
    sim.nodes[hub]
        .engine
        .cache()
        .iter()
        .filter(|(_, e)| e.kind == EntryType::Registered)
        .count()
}

/// A restarted hub has an empty cache; the spokes' next refresh (holdtime/3) fills it.
#[test]
fn hub_restart_is_repaired_by_the_next_refresh() {
    let mut sim = seed::topology(41, Impairments::lossy(5), None);
    for n in [2u8, 3] {
        let mut c = seed::spoke_config(n, seed::spoke_nbma(n), None);
        c.holdtime = 90;
        sim.restart(usize::from(n) - 1, c, seed::spoke_nbma(n).into());
    }
    assert!(sim.run_until(
        Duration::from_secs(30),
        |s| registered(s, 0) == 4,
        check_holdtimes
    ));
    sim.run_for(Duration::from_secs(7), check_holdtimes);
    sim.restart(0, seed::hub(None), seed::HUB_NBMA.into());
    assert_eq!(registered(&sim, 0), 0);
    let restarted = sim.now;
    assert!(sim.run_until(
        Duration::from_secs(60),
        |s| registered(s, 0) == 4,
        check_holdtimes
    ));
    // Within a refresh interval (30 s) plus retransmissions under loss.
    assert!(
        sim.now - restarted <= Duration::from_secs(45),
        "{:?}",
        sim.now - restarted
    );
}

/// Two hubs: spokes register with both; when the preferred one dies the spoke marks it
/// down and resolves through the other.
#[test]
fn failover_to_the_second_hub() {
    let mut sim = Sim::new(42, Impairments::perfect());
    let hub1 = sim.add("hub1", seed::hub(None), seed::HUB_NBMA.into());
    let mut c2 = seed::hub(None);
    c2.tunnel_address = HUB2.into();
    c2.nbma_address = HUB2_NBMA.into();
    let hub2 = sim.add("hub2", c2, HUB2_NBMA.into());
    let mut spokes = Vec::new();
    for n in [2u8, 3] {
        let mut c = seed::spoke_config(n, seed::spoke_nbma(n), None);
        c.nhs.push(NhsConfig {
            tunnel: HUB2.into(),
            nbma: HUB2_NBMA.into(),
            priority: 1,
        });
        spokes.push(sim.add(&format!("spoke{n}"), c, seed::spoke_nbma(n).into()));
    }
    assert!(sim.run_until(
        Duration::from_secs(5),
        |s| s.nhs_up == 4 && registered(s, hub1) == 4 && registered(s, hub2) == 4,
        check_holdtimes
    ));
    // Both hubs replicate multicast to both spokes.
    for hub in [hub1, hub2] {
        assert_eq!(sim.nodes[hub].engine.multicast_peers().len(), 2);
    }
    // Resolution goes to the preferred hub.
    sim.command(spokes[0], |s, now| {
        s.resolve(now, "192.168.3.5".parse().unwrap())
    });
    sim.run_for(Duration::from_secs(1), check_holdtimes);
    let answered = |sim: &Sim, hub: usize| {
        sim.nodes[hub]
            .engine
            .counters()
            .sent
            .get(Operation::ResolutionReply)
    };
    assert_eq!((answered(&sim, hub1), answered(&sim, hub2)), (1, 0));

    // Hub 1 dies. Its refresh goes unanswered; after 3 retransmissions it is down.
    sim.stop(hub1);
    let mut c = seed::spoke_config(2, seed::spoke_nbma(2), None);
    c.nhs.push(NhsConfig {
        tunnel: HUB2.into(),
        nbma: HUB2_NBMA.into(),
        priority: 1,
    });
    assert!(sim.run_until(
        Duration::from_secs(3000),
        |s| s.nhs_up == 2,
        check_holdtimes
    ));
    assert!(sim.events.iter().any(|(_, node, e)| *node == spokes[0]
        && *e
            == Event::NhsDown {
                nhs: seed::HUB.into(),
                nbma: seed::HUB_NBMA.into(),
            }));
    let nhs = sim.nodes[spokes[0]].engine.show_nhs(sim.now);
    assert!(!nhs[0].up && nhs[1].up);
    // A new resolution (a redirect from hub 2, towards spoke 3's tunnel address, which the
    // LAN shortcut does not cover) goes to hub 2 and installs a host shortcut.
    sim.command(hub2, |h, now| {
        h.traffic_to(now, "192.168.2.9".parse().unwrap(), seed::spoke(3).into());
    });
    sim.run_for(Duration::from_secs(1), check_holdtimes);
    assert_eq!(answered(&sim, hub2), 1);
    let (prefix, e) = sim.nodes[spokes[0]]
        .engine
        .lookup(seed::spoke(3).into())
        .unwrap();
    assert_eq!(e.kind, EntryType::Shortcut);
    assert!(prefix.is_host());
    assert_eq!(e.nbma, IpAddr::from(seed::spoke_nbma(3)));
}
