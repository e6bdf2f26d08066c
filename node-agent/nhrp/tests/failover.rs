//! Hub restart and NHS failover with two hubs, in simulation.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
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

/// Two hubs of equal priority (Cisco's default): spokes register with both; when the first
/// one dies the spoke marks it down and resolves through the other.
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
            priority: 0,
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
    // Resolution goes to the first hub.
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

/// NHS priority (Cisco backup NHS, ../shared/research/anchors.md sections 1.3 and 2.3): a
/// spoke registers with its primary only; when the primary dies the spoke fails over to
/// the backup after three unanswered requests, probes the primary every holdtime/4 and
/// falls back when it answers, purging its registration at the backup.
#[test]
fn priority_failover_and_fallback() {
    let mut sim = Sim::new(43, Impairments::perfect());
    sim.captured = Some(Vec::new());
    let hub1 = sim.add("hub1", seed::hub(None), seed::HUB_NBMA.into());
    let mut c2 = seed::hub(None);
    c2.tunnel_address = HUB2.into();
    c2.nbma_address = HUB2_NBMA.into();
    let hub2 = sim.add("hub2", c2, HUB2_NBMA.into());
    let mut c = seed::spoke_config(2, seed::spoke_nbma(2), None);
    c.holdtime = 60;
    c.nhs.push(NhsConfig {
        tunnel: HUB2.into(),
        nbma: HUB2_NBMA.into(),
        priority: 1,
    });
    let spoke = sim.add("spoke2", c, seed::spoke_nbma(2).into());
    let up = |sim: &Sim| -> Vec<bool> {
        let nhs = sim.nodes[spoke].engine.show_nhs(sim.now);
        nhs.iter().map(|n| n.up).collect()
    };
    let nhs_event = |sim: &Sim, since, want: &Event| {
        sim.events
            .iter()
            .any(|(at, node, e)| *at >= since && *node == spoke && e == want)
    };
    let hub1_up = Event::NhsUp {
        nhs: seed::HUB.into(),
        nbma: seed::HUB_NBMA.into(),
    };
    let hub1_down = Event::NhsDown {
        nhs: seed::HUB.into(),
        nbma: seed::HUB_NBMA.into(),
    };
    let hub2_up = Event::NhsUp {
        nhs: HUB2.into(),
        nbma: HUB2_NBMA.into(),
    };
    let hub2_down = Event::NhsDown {
        nhs: HUB2.into(),
        nbma: HUB2_NBMA.into(),
    };

    // Only the primary hears from the spoke, through several refreshes.
    assert!(sim.run_until(
        Duration::from_secs(5),
        |s| registered(s, hub1) == 2 && up(s) == [true, false],
        check_holdtimes
    ));
    sim.run_for(Duration::from_secs(50), check_holdtimes);
    assert_eq!(up(&sim), [true, false]);
    let heard = |sim: &Sim, hub: usize| {
        sim.nodes[hub]
            .engine
            .counters()
            .received
            .get(Operation::RegistrationRequest)
    };
    assert_eq!(heard(&sim, hub2), 0);
    assert!(heard(&sim, hub1) >= 3);

    // The primary dies: the next refresh (holdtime/3 = 20 s) and three retransmissions
    // (1-2, 2-4 and 4-8 s apart) go unanswered, then the spoke registers with the backup.
    sim.stop(hub1);
    let died = sim.now;
    assert!(sim.run_until(
        Duration::from_secs(120),
        |s| registered(s, hub2) == 2 && up(s) == [false, true],
        check_holdtimes
    ));
    let took = sim.now - died;
    assert!(took <= Duration::from_secs(20 + 14 + 1), "{took:?}");
    assert!(took >= Duration::from_secs(3), "{took:?}");
    assert_eq!(up(&sim), [false, true]);
    assert!(nhs_event(&sim, died, &hub1_down));
    assert!(nhs_event(&sim, died, &hub2_up));
    // It stays there while the primary is away, refreshed at holdtime/3.
    sim.run_for(Duration::from_secs(100), check_holdtimes);
    assert_eq!(up(&sim), [false, true]);
    assert_eq!(registered(&sim, hub2), 2);

    // The primary returns: the next probe (every holdtime/4 = 15 s) registers there, and
    // the spoke leaves the backup at once.
    sim.restart(hub1, seed::hub(None), seed::HUB_NBMA.into());
    let back = sim.now;
    assert!(sim.run_until(
        Duration::from_secs(60),
        |s| registered(s, hub1) == 2 && registered(s, hub2) == 0 && up(s) == [true, false],
        check_holdtimes
    ));
    let took = sim.now - back;
    assert!(took <= Duration::from_secs(15 + 1), "{took:?}");
    assert_eq!(up(&sim), [true, false]);
    assert!(nhs_event(&sim, back, &hub1_up));
    assert!(nhs_event(&sim, back, &hub2_down));
    let before = heard(&sim, hub2);
    sim.run_for(Duration::from_secs(100), check_holdtimes);
    assert_eq!(heard(&sim, hub2), before, "the backup is left alone");
    assert_eq!(up(&sim), [true, false]);

    // Both die; only the backup comes back: with no NHS reachable the spoke tries all of
    // them with backoff (at most 64 s apart), so it finds the backup.
    sim.stop(hub1);
    sim.stop(hub2);
    sim.run_for(Duration::from_secs(300), check_holdtimes);
    assert_eq!(up(&sim), [false, false]);
    sim.restart(
        hub2,
        {
            let mut c2 = seed::hub(None);
            c2.tunnel_address = HUB2.into();
            c2.nbma_address = HUB2_NBMA.into();
            c2
        },
        HUB2_NBMA.into(),
    );
    let back = sim.now;
    assert!(sim.run_until(
        Duration::from_secs(120),
        |s| registered(s, hub2) == 2 && up(s) == [false, true],
        check_holdtimes
    ));
    assert!(
        sim.now - back <= Duration::from_secs(65),
        "{:?}",
        sim.now - back
    );
    common::assert_packets_clean("nhrp-priority-failover", &sim.captured.take().unwrap());
}
