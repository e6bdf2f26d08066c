//! The seed's three routers in simulation (hub, spoke 1, spoke 2; fakes for TUN and UDP):
//! the spokes register over the fake underlay, spoke 1's LAN sends to spoke 2's LAN, the
//! traffic first crosses the hub, the hub's NHRP redirects, spoke 1 resolves and installs a
//! shortcut, and from then on the traffic goes direct: the hub's forwarded counter stops
//! growing. Over plaintext GRE-in-UDP and over ESP-in-UDP with fixed keys.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::IpAddr;
use std::time::Duration;

use common::{HUB, SPOKE1, SPOKE2, Sim, nbma, udp_packet};
use dmvpn_dataplane::{DropReason, Event, Protection};
use dmvpn_nhrp::{EntryType, Event as NhrpEvent};

fn registered<P: Protection>(sim: &Sim<P>) -> bool {
    let hub = sim.routers[HUB].fwd.engine();
    hub.cache()
        .iter()
        .filter(|(_, e)| e.kind == EntryType::Registered)
        .count()
        == 4
}

fn shortcut<P: Protection>(sim: &Sim<P>) -> bool {
    sim.routers[SPOKE1]
        .fwd
        .engine()
        .lookup("192.168.3.5".parse().unwrap())
        .is_some_and(|(_, e)| e.kind == EntryType::Shortcut)
}

/// Runs the scenario with `step` and returns (hub forwarded before the shortcut, after 200
/// more packets, packets spoke 2 delivered).
fn scenario<P: Protection>(sim: &mut Sim<P>, step: impl Fn(&mut Sim<P>)) {
    for _ in 0..200 {
        if registered(sim) {
            break;
        }
        step(sim);
    }
    assert!(registered(sim), "both spokes register within 200 ms");
    assert_eq!(sim.routers[HUB].fwd.desired_routes().len(), 2);

    // LAN to LAN, one packet a millisecond, until the shortcut is there.
    let packet = udp_packet([192, 168, 2, 10], [192, 168, 3, 5], 100);
    let mut sent = 0;
    while !shortcut(sim) {
        assert!(sent < 200, "no shortcut after {sent} packets");
        sim.routers[SPOKE1].tun.inject(&packet);
        sent += 1;
        step(sim);
    }
    let hub = sim.routers[HUB].fwd.counters().clone();
    assert!(hub.forwarded >= 1, "the first packets cross the hub");
    assert!(
        sim.routers[SPOKE1].events.iter().any(|e| matches!(e,
            Event::Nhrp(NhrpEvent::CacheAdded { entry, .. }) if entry.kind == EntryType::Shortcut)),
        "the shortcut is announced for the route table"
    );
    assert!(
        sim.routers[SPOKE1]
            .fwd
            .desired_routes()
            .contains(&common::lan(SPOKE2))
    );

    // Let what is in flight land, then 200 more packets.
    for _ in 0..5 {
        step(sim);
    }
    let forwarded = sim.routers[HUB].fwd.counters().forwarded;
    let direct_before = sim.routers[SPOKE1].fwd.peer_counters().get(nbma(SPOKE2));
    for _ in 0..200 {
        sim.routers[SPOKE1].tun.inject(&packet);
        sent += 1;
        step(sim);
    }
    for _ in 0..5 {
        step(sim);
    }
    assert_eq!(
        sim.routers[HUB].fwd.counters().forwarded,
        forwarded,
        "the hub forwards nothing once the shortcut is up"
    );
    let direct = sim.routers[SPOKE1].fwd.peer_counters().get(nbma(SPOKE2));
    assert_eq!(direct.tx_packets - direct_before.tx_packets, 200);
    let rx = sim.routers[SPOKE2].fwd.peer_counters().get(nbma(SPOKE1));
    assert!(rx.rx_packets >= 200);

    // Every packet arrived at spoke 2's TUN device, unchanged but for the TTL the hub took
    // from the ones it forwarded.
    let delivered: Vec<Vec<u8>> = sim.routers[SPOKE2]
        .tun
        .take_written()
        .into_iter()
        .filter(|p| p[16..20] == [192, 168, 3, 5])
        .collect();
    assert_eq!(delivered.len(), sent);
    let via_hub = delivered.iter().filter(|p| p[8] == 63).count() as u64;
    assert_eq!(via_hub, forwarded);
    for p in &delivered {
        assert_eq!(p[20..], packet[20..]);
        assert_eq!(dmvpn_testkit::inet_checksum(&p[..20]), 0);
    }
    for r in &sim.routers {
        assert_eq!(
            r.fwd.counters().dropped_total(),
            0,
            "{:?}",
            r.fwd.counters()
        );
        assert_eq!(r.fwd.engine().counters().dropped_total(), 0);
    }
}

#[test]
fn shortcut_takes_over_from_the_hub_over_gre_in_udp() {
    let mut sim = Sim::plain();
    scenario(&mut sim, |s| s.step());
    // The whole exchange fits in a few steps of 1 ms: NHRP does not wait for timers.
    assert!(sim.elapsed() < Duration::from_secs(1));
}

#[test]
fn shortcut_takes_over_from_the_hub_over_esp() {
    let mut sim = Sim::esp();
    scenario(&mut sim, |s| s.step());
    // Every router asked for SAs: the spokes for the hub and each other.
    let asked: Vec<IpAddr> = sim.routers[SPOKE1]
        .events
        .iter()
        .filter_map(|e| match e {
            Event::NeedSa { peer } => Some(*peer),
            _ => None,
        })
        .collect();
    assert_eq!(asked, [nbma(HUB), nbma(SPOKE2)]);
    let esp = sim.routers[SPOKE1].fwd.protection();
    let (_, out_spi, _) = esp.peer_sas(nbma(SPOKE2)).unwrap();
    let sa = esp.sad().outbound(out_spi).unwrap();
    assert!(sa.counters().pkts_encaps >= 200);
    // The registration and the first packet for spoke 2 waited for their SAs.
    let c = sim.routers[SPOKE1].fwd.counters();
    assert!(c.queued >= 2, "{c:?}");
    assert_eq!(c.dropped(DropReason::QueueFull), 0);
}

#[test]
fn esp_datagrams_are_esp_on_the_wire() {
    let mut sim = Sim::esp();
    sim.net.start_capture();
    for _ in 0..50 {
        sim.step();
    }
    let captured = sim.net.captured();
    assert!(captured.len() >= 4, "registrations and replies");
    for d in &captured {
        assert_eq!(d.to.port(), 4500);
        // A non-zero SPI of ours, and no NHRP bytes in the clear.
        let spi = u32::from_be_bytes(d.payload[..4].try_into().unwrap());
        assert!((0x1000..0x1100).contains(&spi), "{spi:#x}");
        assert!(!d.payload.windows(5).any(|w| w == b"@lpha"));
    }
}
