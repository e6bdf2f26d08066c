//! Purge: a spoke whose NBMA address changes purges its registrations (Cisco's request-ID
//! rule) and registers again at once; purges that do not name the registration, or come
//! from another owner, change nothing; shortcuts are purged only by an NHS or their owner.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod sim;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use dmvpn_nhrp::{EntryType, Event, RemoveReason};
use dmvpn_wire::Seq;
use dmvpn_wire::nhrp::{
    Address, AddressFamily, Cie, Message, NbmaAddress, Operation, PROTOCOL_IPV4, Purge, PurgeFlags,
    Repr,
};
use sim::{Impairments, Sim, check_holdtimes, seed};

const HUB: usize = 0;
const SPOKE2: usize = 1;
const NEW_NBMA: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 102);

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

fn nbma_at_hub(sim: &Sim, addr: &str) -> Option<IpAddr> {
    sim.nodes[HUB]
        .engine
        .lookup(addr.parse().unwrap())
        .filter(|(_, e)| e.kind == EntryType::Registered)
        .map(|(_, e)| e.nbma)
}

fn moved(sim: &Sim) -> bool {
    nbma_at_hub(sim, "10.1.1.2") == Some(NEW_NBMA.into())
        && nbma_at_hub(sim, "192.168.2.1") == Some(NEW_NBMA.into())
}

fn change_address(sim: &mut Sim) {
    sim.readdress(SPOKE2, NEW_NBMA.into());
    sim.command(SPOKE2, |e, now| e.set_nbma_address(now, NEW_NBMA.into()));
}

#[test]
fn a_new_nbma_address_is_registered_at_once_after_a_purge() {
    let mut sim = seed::topology(51, Impairments::perfect(), Some(b"s3cr3t"));
    assert!(sim.run_until(Duration::from_secs(5), converged, check_holdtimes));
    sim.run_for(Duration::from_secs(100), check_holdtimes);
    let t0 = sim.now;
    change_address(&mut sim);
    assert!(sim.run_until(Duration::from_secs(1), moved, check_holdtimes));
    assert_eq!(sim.now - t0, Duration::from_millis(5));
    let hub = &sim.nodes[HUB].engine;
    assert_eq!(hub.counters().registrations_refused, 0);
    assert_eq!(hub.counters().received.get(Operation::PurgeRequest), 1);
    let purged = sim
        .events
        .iter()
        .filter(|(_, node, e)| {
            *node == HUB
                && matches!(e, Event::CacheRemoved { reason: RemoveReason::Purged, entry, .. }
                    if entry.nbma == IpAddr::from(seed::spoke_nbma(2)))
        })
        .count();
    assert_eq!(purged, 2);
    assert!(hub.multicast_peers().contains(&NEW_NBMA.into()));
    assert!(!hub.multicast_peers().contains(&seed::spoke_nbma(2).into()));
    // The spoke's own entries moved too.
    let spoke = &sim.nodes[SPOKE2].engine;
    assert_eq!(
        spoke.lookup(seed::spoke(2).into()).unwrap().1.nbma,
        IpAddr::from(NEW_NBMA)
    );
    sim.run_for(Duration::from_secs(1), check_holdtimes);
    assert!(sim.nodes[SPOKE2].engine.show_nhs(sim.now)[0].up);
}

#[test]
fn a_new_nbma_address_is_registered_under_loss() {
    for seed in 1..=10 {
        let mut sim = seed::topology(seed, Impairments::lossy(10), None);
        assert!(sim.run_until(Duration::from_secs(60), converged, check_holdtimes));
        change_address(&mut sim);
        assert!(
            sim.run_until(Duration::from_secs(120), moved, check_holdtimes),
            "seed {seed}"
        );
    }
}

fn purge(src: Ipv4Addr, request_id: u32, prefix_len: u8, proto: Ipv4Addr) -> Vec<u8> {
    let cies = [Cie {
        prefix_len,
        proto: Address::Ipv4(proto),
        ..Cie::request(prefix_len, 0, 0)
    }];
    let repr = Repr {
        afn: AddressFamily::Ipv4,
        protocol_type: PROTOCOL_IPV4,
        protocol_snap: [0; 5],
        hop_count: 64,
        message: Message::PurgeRequest(Purge {
            flags: PurgeFlags(0),
            request_id,
            src_nbma: NbmaAddress::from(Address::Ipv4(Ipv4Addr::new(203, 0, 113, 66))),
            src_nbma_sub: NbmaAddress::NONE,
            src_proto: Address::Ipv4(src),
            dst_proto: Address::Ipv4(seed::HUB),
            cies: Seq::Items(&cies),
        }),
        extensions: Some(Seq::empty()),
    };
    let mut b = vec![0; repr.buffer_len()];
    repr.emit(&mut b).unwrap();
    b
}

#[test]
fn purges_that_do_not_prove_ownership_change_nothing() {
    let mut sim = seed::topology(52, Impairments::perfect(), None);
    assert!(sim.run_until(Duration::from_secs(5), converged, check_holdtimes));
    let id = sim.nodes[SPOKE2].engine.show_nhs(sim.now)[0].request_id;
    let thief: IpAddr = Ipv4Addr::new(203, 0, 113, 66).into();
    let now = sim.now;
    let hub = &mut sim.nodes[HUB].engine;
    for bytes in [
        // Wrong request ID.
        purge(seed::spoke(2), id.wrapping_add(1), 32, seed::spoke(2)),
        // Right ID, but another owner.
        purge(seed::spoke(3), id, 32, seed::spoke(2)),
        purge(seed::spoke(3), id, 24, Ipv4Addr::new(192, 168, 2, 0)),
    ] {
        hub.handle_packet(now, thief, &bytes);
        // Answered (RFC 2332 section 5.2.6), but nothing withdrawn.
        let t = hub.poll_transmit().unwrap();
        assert_eq!(t.payload[17], 6);
    }
    while hub.poll_event().is_some() {}
    assert_eq!(hub.counters().dropped_total(), 0);
    assert!(converged(&sim));
    // With the registration's request ID, its owner's purge works.
    let hub = &mut sim.nodes[HUB].engine;
    hub.handle_packet(now, thief, &purge(seed::spoke(2), id, 32, seed::spoke(2)));
    assert!(
        hub.lookup(seed::spoke(2).into())
            .is_none_or(|(_, e)| e.kind != EntryType::Registered)
    );
}

#[test]
fn shortcuts_are_purged_only_by_an_nhs_or_their_owner() {
    let mut sim = seed::topology(53, Impairments::perfect(), None);
    assert!(sim.run_until(Duration::from_secs(5), converged, check_holdtimes));
    sim.command(SPOKE2, |e, now| {
        e.resolve(now, "192.168.3.9".parse().unwrap())
    });
    sim.run_for(Duration::from_secs(1), check_holdtimes);
    let has_shortcut = |sim: &Sim| {
        sim.nodes[SPOKE2]
            .engine
            .lookup("192.168.3.9".parse().unwrap())
            .is_some_and(|(_, e)| e.kind == EntryType::Shortcut)
    };
    assert!(has_shortcut(&sim));
    let bytes = purge(seed::spoke(3), 0, 24, Ipv4Addr::new(192, 168, 3, 0));
    let now = sim.now;
    let spoke = &mut sim.nodes[SPOKE2].engine;
    spoke.handle_packet(now, Ipv4Addr::new(203, 0, 113, 66).into(), &bytes);
    assert!(has_shortcut(&sim));
    let spoke = &mut sim.nodes[SPOKE2].engine;
    spoke.handle_packet(now, seed::HUB_NBMA.into(), &bytes);
    assert!(!has_shortcut(&sim));
    let spoke = &mut sim.nodes[SPOKE2].engine;
    let mut removed = false;
    while let Some(e) = spoke.poll_event() {
        removed |= matches!(e, Event::CacheRemoved { reason: RemoveReason::Purged, entry, .. }
            if entry.kind == EntryType::Shortcut);
    }
    assert!(removed);
}

#[test]
fn the_hub_purges_shortcuts_to_a_spoke_that_moved() {
    let mut sim = seed::topology(54, Impairments::perfect(), Some(b"s3cr3t"));
    assert!(sim.run_until(Duration::from_secs(5), converged, check_holdtimes));
    let shortcut_nbma = |sim: &Sim| {
        sim.nodes[SPOKE2]
            .engine
            .lookup("192.168.3.9".parse().unwrap())
            .filter(|(_, e)| e.kind == EntryType::Shortcut)
            .map(|(_, e)| e.nbma)
    };
    sim.command(HUB, |h, now| {
        h.traffic_to(
            now,
            "192.168.2.1".parse().unwrap(),
            "192.168.3.9".parse().unwrap(),
        );
    });
    sim.run_for(Duration::from_secs(1), check_holdtimes);
    assert_eq!(shortcut_nbma(&sim), Some(seed::spoke_nbma(3).into()));
    // Spoke 3 moves: its purge at the hub makes the hub purge spoke 2's shortcut.
    let moved: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 103);
    sim.readdress(2, moved.into());
    sim.command(2, |e, now| e.set_nbma_address(now, moved.into()));
    sim.run_for(Duration::from_millis(20), check_holdtimes);
    assert_eq!(shortcut_nbma(&sim), None);
    assert!(sim.events.iter().any(|(_, node, e)| *node == SPOKE2
        && matches!(e, Event::CacheRemoved { reason: RemoveReason::Purged, prefix, .. }
            if *prefix == seed::lan(3))));
    // The next redirect leads to the new address.
    sim.run_for(Duration::from_secs(9), check_holdtimes);
    sim.command(HUB, |h, now| {
        h.traffic_to(
            now,
            "192.168.2.1".parse().unwrap(),
            "192.168.3.9".parse().unwrap(),
        );
    });
    sim.run_for(Duration::from_secs(1), check_holdtimes);
    assert_eq!(shortcut_nbma(&sim), Some(moved.into()));
}

#[test]
fn a_spoke_that_shuts_down_is_withdrawn_at_once() {
    let mut sim = seed::topology(55, Impairments::perfect(), Some(b"s3cr3t"));
    assert!(sim.run_until(Duration::from_secs(5), converged, check_holdtimes));
    sim.command(2, |e, now| e.shutdown(now));
    sim.run_for(Duration::from_millis(10), check_holdtimes);
    sim.stop(2);
    let hub = &sim.nodes[HUB].engine;
    assert_eq!(nbma_at_hub(&sim, "10.1.1.3"), None);
    assert_eq!(nbma_at_hub(&sim, "192.168.3.1"), None);
    assert_eq!(
        hub.multicast_peers(),
        vec![IpAddr::from(seed::spoke_nbma(2))]
    );
    assert!(
        sim.events
            .iter()
            .any(|(_, node, e)| *node == 2 && matches!(e, Event::NhsDown { .. }))
    );
    assert_eq!(sim.nodes[2].engine.poll_timeout(), None);
}
