//! DMVPN phase 3 in simulation on the seed topology: the hub's Traffic Indication (rate
//! limited per pair), the spoke's resolution, the hub's authoritative answer from its
//! registrations, the subnet shortcut, its expiry and the withdrawal of its route, NAT, and
//! failed resolutions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod sim;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use dmvpn_nhrp::{EntryType, Event, Prefix, RemoveReason};
use dmvpn_wire::nhrp::{Address, CieCode, Message, Operation, Packet, Repr};
use sim::{Impairments, Sim, check_holdtimes, seed};

const HUB: usize = 0;
const SPOKE2: usize = 1;
const SPOKE3: usize = 2;

fn converged(sim: &Sim) -> bool {
    sim.nhs_up == 2
        && sim.nodes[HUB]
            .engine
            .cache()
            .iter()
            .filter(|(_, e)| e.kind == EntryType::Registered)
            .count()
            == 4
}

fn a(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Spoke 2 sends to 192.168.3.5 through the hub.
fn hairpin(sim: &mut Sim) {
    sim.command(HUB, |hub, now| {
        hub.traffic_to(now, a("192.168.2.10"), a("192.168.3.5"));
    });
}

fn shortcut(sim: &Sim, node: usize, addr: &str) -> Option<(Prefix, dmvpn_nhrp::Entry)> {
    sim.nodes[node]
        .engine
        .lookup(a(addr))
        .filter(|(_, e)| e.kind == EntryType::Shortcut)
        .map(|(p, e)| (p, *e))
}

#[test]
fn redirect_resolves_to_a_subnet_shortcut() {
    let mut sim = seed::topology(31, Impairments::perfect(), Some(b"s3cr3t"));
    assert!(sim.run_until(Duration::from_secs(5), converged, check_holdtimes));
    hairpin(&mut sim);
    assert!(sim.run_until(
        Duration::from_secs(1),
        |s| shortcut(s, SPOKE2, "192.168.3.77").is_some(),
        check_holdtimes
    ));
    // TI 5 ms, request 5 ms, reply 5 ms.
    assert_eq!(sim.elapsed(), Duration::from_millis(25));
    let (prefix, e) = shortcut(&sim, SPOKE2, "192.168.3.77").unwrap();
    assert_eq!(prefix, seed::lan(3));
    assert_eq!(e.tunnel, IpAddr::from(seed::spoke(3)));
    assert_eq!(e.nbma, IpAddr::from(seed::spoke_nbma(3)));
    assert!(e.expires.unwrap() - sim.now <= Duration::from_secs(7200));
    assert!(sim.events.iter().any(|(_, node, ev)| *node == SPOKE2
        && matches!(ev, Event::CacheAdded { prefix, entry }
            if *prefix == seed::lan(3) && entry.kind == EntryType::Shortcut)));
    let hub = sim.nodes[HUB].engine.counters();
    assert_eq!(hub.sent.get(Operation::TrafficIndication), 1);
    assert_eq!(hub.received.get(Operation::ResolutionRequest), 1);
    assert_eq!(hub.sent.get(Operation::ResolutionReply), 1);
    let spoke = sim.nodes[SPOKE2].engine.counters();
    assert_eq!(spoke.received.get(Operation::TrafficIndication), 1);
    assert_eq!(spoke.received.get(Operation::ResolutionReply), 1);
    assert_eq!(spoke.dropped_total(), 0);
    // Spoke 3 learned nothing: its return traffic is redirected on its own.
    assert!(shortcut(&sim, SPOKE3, "192.168.2.1").is_none());

    // The hub sends at most one indication per pair per 8 s.
    for _ in 0..50 {
        hairpin(&mut sim);
    }
    assert_eq!(
        sim.nodes[HUB]
            .engine
            .counters()
            .sent
            .get(Operation::TrafficIndication),
        1
    );
    assert_eq!(sim.nodes[HUB].engine.counters().redirects_suppressed, 50);
    sim.run_for(Duration::from_secs(8), check_holdtimes);
    hairpin(&mut sim);
    sim.run_for(Duration::from_secs(1), check_holdtimes);
    assert_eq!(
        sim.nodes[HUB]
            .engine
            .counters()
            .sent
            .get(Operation::TrafficIndication),
        2
    );
    // The spoke holds a shortcut already: no new resolution.
    assert_eq!(
        sim.nodes[HUB]
            .engine
            .counters()
            .received
            .get(Operation::ResolutionRequest),
        1
    );
    // No indication between a spoke and itself, nor for unregistered addresses.
    sim.command(HUB, |hub, now| {
        hub.traffic_to(now, a("192.168.2.10"), a("10.1.1.2"));
        hub.traffic_to(now, a("192.168.9.9"), a("192.168.3.5"));
    });
    assert_eq!(
        sim.nodes[HUB]
            .engine
            .counters()
            .sent
            .get(Operation::TrafficIndication),
        2
    );
}

#[test]
fn shortcuts_expire_and_every_installed_route_is_withdrawn() {
    let mut sim = seed::topology(32, Impairments::lossy(10), None);
    for n in [2u8, 3] {
        let mut c = seed::spoke_config(n, seed::spoke_nbma(n), None);
        c.holdtime = 60;
        sim.restart(usize::from(n) - 1, c, seed::spoke_nbma(n).into());
    }
    assert!(sim.run_until(Duration::from_secs(60), converged, check_holdtimes));
    let mut installed = 0;
    for round in 0..20u64 {
        hairpin(&mut sim);
        sim.command(HUB, |hub, now| {
            hub.traffic_to(now, a("192.168.3.10"), a("192.168.2.5"));
        });
        sim.run_for(Duration::from_secs(30 + round), check_holdtimes);
        installed += 1;
    }
    sim.run_for(Duration::from_secs(120), check_holdtimes);
    let mut live: Vec<(usize, Prefix)> = Vec::new();
    let mut added = 0;
    for (_, node, e) in &sim.events {
        match e {
            Event::CacheAdded { prefix, entry } if entry.kind == EntryType::Shortcut => {
                assert!(!live.contains(&(*node, *prefix)));
                live.push((*node, *prefix));
                added += 1;
            }
            Event::CacheRemoved {
                prefix,
                entry,
                reason: RemoveReason::Expired,
            } if entry.kind == EntryType::Shortcut => {
                let at = live.iter().position(|l| *l == (*node, *prefix)).unwrap();
                live.remove(at);
            }
            _ => {}
        }
    }
    assert!(
        added >= installed / 2,
        "{added} shortcuts for {installed} rounds"
    );
    assert!(live.is_empty(), "never withdrawn: {live:?}");
    assert!(shortcut(&sim, SPOKE2, "192.168.3.1").is_none());
}

#[test]
fn shortcut_to_a_natted_spoke_uses_its_post_nat_address() {
    let mut sim = Sim::new(33, Impairments::perfect());
    sim.add("hub", seed::hub(None), seed::HUB_NBMA.into());
    let private = Ipv4Addr::new(172, 16, 0, 3);
    sim.add(
        "spoke2",
        seed::spoke_config(2, seed::spoke_nbma(2), None),
        seed::spoke_nbma(2).into(),
    );
    sim.add(
        "spoke3",
        seed::spoke_config(3, private, None),
        seed::spoke_nbma(3).into(),
    );
    assert!(sim.run_until(Duration::from_secs(5), converged, check_holdtimes));
    sim.command(SPOKE2, |spoke, now| spoke.resolve(now, a("192.168.3.5")));
    sim.run_for(Duration::from_secs(1), check_holdtimes);
    let (_, e) = shortcut(&sim, SPOKE2, "192.168.3.5").unwrap();
    assert_eq!(e.nbma, IpAddr::from(seed::spoke_nbma(3)));
    assert_eq!(e.claimed_nbma, IpAddr::from(private));
    assert!(e.nat());
}

#[test]
fn failed_resolutions_are_reported() {
    let mut sim = seed::topology(34, Impairments::perfect(), None);
    assert!(sim.run_until(Duration::from_secs(5), converged, check_holdtimes));
    // Nobody registered 10.1.1.77: code 12.
    sim.command(SPOKE2, |spoke, now| spoke.resolve(now, a("10.1.1.77")));
    sim.run_for(Duration::from_secs(1), check_holdtimes);
    assert!(sim.events.iter().any(|(_, node, e)| *node == SPOKE2
        && *e
            == Event::ResolutionFailed {
                target: a("10.1.1.77"),
                code: Some(CieCode::NoBindingExists),
            }));
    // The hub is gone: the resolution shows as incomplete, is retried, then given up.
    sim.stop(HUB);
    sim.command(SPOKE2, |spoke, now| spoke.resolve(now, a("192.168.3.5")));
    let rows = sim.nodes[SPOKE2].engine.show_nhrp(sim.now);
    assert!(
        rows.iter()
            .any(|r| r.kind == EntryType::Incomplete && r.prefix == Prefix::host(a("192.168.3.5")))
    );
    // A second resolve of the same address while one is in flight sends nothing.
    let before = sim.nodes[SPOKE2]
        .engine
        .counters()
        .sent
        .get(Operation::ResolutionRequest);
    sim.command(SPOKE2, |spoke, now| spoke.resolve(now, a("192.168.3.5")));
    assert_eq!(
        sim.nodes[SPOKE2]
            .engine
            .counters()
            .sent
            .get(Operation::ResolutionRequest),
        before
    );
    sim.run_for(Duration::from_secs(20), |_| {});
    assert_eq!(
        sim.nodes[SPOKE2]
            .engine
            .counters()
            .sent
            .get(Operation::ResolutionRequest),
        before + 3
    );
    assert!(sim.events.iter().any(|(_, node, e)| *node == SPOKE2
        && *e
            == Event::ResolutionFailed {
                target: a("192.168.3.5"),
                code: None,
            }));
    assert!(
        !sim.nodes[SPOKE2]
            .engine
            .show_nhrp(sim.now)
            .iter()
            .any(|r| r.kind == EntryType::Incomplete)
    );
}

#[test]
fn a_spoke_answers_for_its_own_site_prefix() {
    let mut sim = seed::topology(35, Impairments::perfect(), None);
    sim.captured = Some(Vec::new());
    assert!(sim.run_until(Duration::from_secs(5), converged, check_holdtimes));
    sim.command(SPOKE2, |spoke, now| spoke.resolve(now, a("192.168.3.5")));
    let request = sim
        .captured
        .as_ref()
        .unwrap()
        .iter()
        .rev()
        .find(|(_, _, b)| b[17] == 1)
        .unwrap()
        .2
        .clone();
    // Delivered straight to spoke 3 (as a hub forwarding it would).
    let spoke3 = &mut sim.nodes[SPOKE3].engine;
    spoke3.handle_packet(sim.now, seed::spoke_nbma(2).into(), &request);
    let t = spoke3.poll_transmit().unwrap();
    assert_eq!(t.dst, IpAddr::from(seed::spoke_nbma(2)));
    let repr = Repr::parse(&Packet::new_checked(&t.payload[..]).unwrap()).unwrap();
    let Message::ResolutionReply(reply) = repr.message else {
        panic!("{repr:?}")
    };
    let cie = reply.cies.first().unwrap();
    assert_eq!(cie.code, CieCode::Success);
    assert_eq!(cie.prefix_len, 24);
    assert_eq!(cie.proto, Address::Ipv4(seed::spoke(3)));
    assert_eq!(cie.nbma.address, Address::Ipv4(seed::spoke_nbma(3)));
    assert_eq!(cie.holding_time, 7200);
}

#[test]
fn used_shortcuts_are_refreshed_and_idle_ones_expire() {
    let mut sim = seed::topology(36, Impairments::lossy(5), None);
    for n in [2u8, 3] {
        let mut c = seed::spoke_config(n, seed::spoke_nbma(n), None);
        c.holdtime = 60;
        sim.restart(usize::from(n) - 1, c, seed::spoke_nbma(n).into());
    }
    assert!(sim.run_until(Duration::from_secs(60), converged, check_holdtimes));
    sim.command(SPOKE2, |s, now| {
        s.resolve(now, a("192.168.3.5"));
        s.resolve(now, a("10.1.1.3"));
    });
    assert!(sim.run_until(
        Duration::from_secs(30),
        |s| shortcut(s, SPOKE2, "192.168.3.5").is_some()
            && shortcut(s, SPOKE2, "10.1.1.3").is_some(),
        check_holdtimes
    ));
    let installed = sim.now;
    // The LAN shortcut carries traffic (the dataplane reports it every 5 s); the host one
    // does not.
    for _ in 0..60 {
        sim.command(SPOKE2, |s, _| s.mark_used(a("192.168.3.77")));
        sim.run_for(Duration::from_secs(5), |sim| {
            check_holdtimes(sim);
            assert!(
                shortcut(sim, SPOKE2, "192.168.3.5").is_some(),
                "used shortcut lost"
            );
        });
    }
    let host = Prefix::host(a("10.1.1.3"));
    let removed: Vec<_> = sim
        .events
        .iter()
        .filter_map(|(at, node, e)| match e {
            Event::CacheRemoved { prefix, reason, .. } if *node == SPOKE2 => {
                Some((*at, *prefix, *reason))
            }
            _ => None,
        })
        .collect();
    assert_eq!(removed.len(), 1, "{removed:?}");
    assert_eq!((removed[0].1, removed[0].2), (host, RemoveReason::Expired));
    assert!(removed[0].0 <= installed + Duration::from_secs(60));
    assert!(shortcut(&sim, SPOKE2, "10.1.1.3").is_none());
    // Refreshed roughly every 2/3 of 40-60 s over 300 s.
    let requests = sim.nodes[SPOKE2]
        .engine
        .counters()
        .sent
        .get(Operation::ResolutionRequest);
    assert!(
        (6..=20).contains(&requests),
        "{requests} resolution requests"
    );
}
