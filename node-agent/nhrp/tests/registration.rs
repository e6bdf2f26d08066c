//! Registration in simulation on the seed topology (hub 10.1.1.1 at 198.18.0.1, spokes
//! 10.1.1.2 and 10.1.1.3 with LANs 192.168.2.0/24 and 192.168.3.0/24): convergence with and
//! without loss, determinism, refresh and expiry, restart behind a new NBMA address, a
//! hijack attempt, authentication failures, NAT and the cache limit.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod sim;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use dmvpn_nhrp::show::PeerState;
use dmvpn_nhrp::{DropReason, EntryType, Event, Prefix, RemoveReason};
use dmvpn_wire::nhrp::{CieCode, ErrorCode, Operation};
use sim::{Impairments, Sim, check_holdtimes, seed};

const HUB: usize = 0;
const SPOKE2: usize = 1;
const SPOKE3: usize = 2;

fn ip(a: Ipv4Addr) -> IpAddr {
    a.into()
}

/// Registered entries (host + LAN per spoke) at the hub.
fn hub_registered(sim: &Sim) -> usize {
    sim.nodes[HUB]
        .engine
        .cache()
        .iter()
        .filter(|(_, e)| e.kind == EntryType::Registered)
        .count()
}

fn converged(sim: &Sim) -> bool {
    sim.nhs_up == 2 && hub_registered(sim) == 4
}

fn nbma_of(sim: &Sim, addr: Ipv4Addr) -> Option<IpAddr> {
    sim.nodes[HUB]
        .engine
        .lookup(addr.into())
        .filter(|(_, e)| e.kind == EntryType::Registered)
        .map(|(_, e)| e.nbma)
}

#[test]
fn seed_topology_registers() {
    let mut sim = seed::topology(1, Impairments::perfect(), None);
    assert!(sim.run_until(Duration::from_secs(5), converged, check_holdtimes));
    // One request and one reply per spoke: 5 ms each way.
    assert_eq!(sim.elapsed(), Duration::from_millis(10));
    let hub = &sim.nodes[HUB].engine;
    let (prefix, entry) = hub.lookup("192.168.2.77".parse().unwrap()).unwrap();
    assert_eq!(prefix, seed::lan(2));
    assert_eq!(entry.tunnel, ip(seed::spoke(2)));
    assert_eq!(entry.nbma, ip(seed::spoke_nbma(2)));
    assert!(entry.unique && !entry.nat());
    assert_eq!(nbma_of(&sim, seed::spoke(3)), Some(ip(seed::spoke_nbma(3))));
    assert_eq!(
        hub.multicast_peers(),
        vec![ip(seed::spoke_nbma(2)), ip(seed::spoke_nbma(3))]
    );
    let c = hub.counters();
    assert_eq!(c.received.get(Operation::RegistrationRequest), 2);
    assert_eq!(c.sent.get(Operation::RegistrationReply), 2);
    assert_eq!(c.dropped_total(), 0);
    assert_eq!(c.registrations_refused, 0);

    let dmvpn = hub.show_dmvpn(sim.now);
    assert_eq!(dmvpn.peers.len(), 2);
    assert!(
        dmvpn
            .peers
            .iter()
            .all(|p| p.state == PeerState::Up && p.entries == 2 && p.kind == EntryType::Registered)
    );
    let nhrp = hub.show_nhrp(sim.now);
    let lan2 = nhrp.iter().find(|e| e.prefix == seed::lan(2)).unwrap();
    assert_eq!(
        lan2.expires_in,
        Some(Duration::from_secs(7200) - Duration::from_millis(5))
    );
    assert_eq!(lan2.via, ip(seed::spoke(2)));

    let spoke = &sim.nodes[SPOKE2].engine;
    let nhs = spoke.show_nhs(sim.now);
    assert!(nhs[0].up && nhs[0].codes == vec![0, 0] && nhs[0].nat_nbma.is_none());
    assert_eq!(spoke.show_dmvpn(sim.now).peers[0].state, PeerState::Up);
    // The spoke reaches the hub through its static entry, the rest of the overlay not yet.
    let (_, via_hub) = spoke.lookup(seed::HUB.into()).unwrap();
    assert_eq!(
        (via_hub.kind, via_hub.nbma),
        (EntryType::Static, ip(seed::HUB_NBMA))
    );
    assert_eq!(spoke.multicast_peers(), vec![ip(seed::HUB_NBMA)]);
    // Next: the refresh at holdtime/3.
    assert_eq!(
        spoke.poll_timeout(),
        Some(sim.now + Duration::from_secs(2400))
    );
}

#[test]
fn seed_topology_registers_under_10_percent_loss() {
    for seed in 1..=20 {
        let mut sim = seed::topology(seed, Impairments::lossy(10), Some(b"s3cr3t"));
        assert!(
            sim.run_until(Duration::from_secs(120), converged, check_holdtimes),
            "seed {seed} did not converge"
        );
        let hub = &sim.nodes[HUB].engine;
        assert_eq!(hub.counters().dropped_total(), 0, "seed {seed}");
    }
}

fn traced_run(seed: u64) -> (u64, Vec<String>) {
    let mut sim = seed::topology(seed, Impairments::lossy(10), Some(b"s3cr3t"));
    sim.trace = Some(Vec::new());
    sim.run_for(Duration::from_secs(3 * 3600), check_holdtimes);
    (sim.trace_hash, sim.trace.take().unwrap())
}

#[test]
fn same_seed_gives_the_same_trace() {
    let (h1, t1) = traced_run(7);
    let (h2, t2) = traced_run(7);
    assert_eq!(t1, t2);
    assert_eq!(h1, h2);
    assert!(t1.len() > 20, "{t1:#?}");
    let (h3, _) = traced_run(8);
    assert_ne!(h1, h3);
}

#[test]
fn refresh_keeps_entries_and_a_stopped_spoke_expires() {
    let mut sim = seed::topology(3, Impairments::lossy(10), None);
    let holdtime = 60;
    for n in [2u8, 3] {
        let mut c = seed::spoke_config(n, seed::spoke_nbma(n), None);
        c.holdtime = holdtime;
        sim.restart(usize::from(n) - 1, c, seed::spoke_nbma(n).into());
    }
    assert!(sim.run_until(Duration::from_secs(60), converged, check_holdtimes));
    // 20 minutes of refreshes at holdtime/3 under 10% loss: never a gap.
    sim.run_for(Duration::from_secs(1200), |sim| {
        check_holdtimes(sim);
        assert_eq!(hub_registered(sim), 4, "at {:?}", sim.elapsed());
    });
    let refreshes = sim.nodes[SPOKE2]
        .engine
        .counters()
        .sent
        .get(Operation::RegistrationRequest);
    assert!(refreshes >= 60, "{refreshes} requests in 20 minutes");
    assert!(
        sim.events
            .iter()
            .all(|(_, _, e)| !matches!(e, Event::CacheRemoved { .. })),
        "an entry expired while refreshed"
    );

    // Spoke 3 stops: both of its entries go at most one holdtime later, spoke 2's stay.
    let stopped_at = sim.now;
    sim.stop(SPOKE3);
    sim.run_for(
        Duration::from_secs(u64::from(holdtime) + 1),
        check_holdtimes,
    );
    assert_eq!(hub_registered(&sim), 2);
    assert_eq!(nbma_of(&sim, seed::spoke(3)), None);
    assert_eq!(nbma_of(&sim, seed::spoke(2)), Some(ip(seed::spoke_nbma(2))));
    let removed: Vec<_> = sim
        .events
        .iter()
        .filter_map(|(at, node, e)| match e {
            Event::CacheRemoved {
                prefix,
                entry,
                reason: RemoveReason::Expired,
            } if *node == HUB => Some((*at, *prefix, entry.tunnel)),
            _ => None,
        })
        .collect();
    assert_eq!(removed.len(), 2, "{removed:?}");
    for (at, _, tunnel) in &removed {
        assert_eq!(*tunnel, ip(seed::spoke(3)));
        assert!(*at <= stopped_at + Duration::from_secs(u64::from(holdtime)));
    }
    assert_eq!(
        sim.nodes[HUB].engine.multicast_peers(),
        vec![ip(seed::spoke_nbma(2))]
    );
}

/// Cisco's behaviour, which we keep: a unique registration from a new NBMA address is
/// refused with code 14 while the old entry lives; the restarted spoke retries with backoff
/// and registers once the old entry has expired.
#[test]
fn restart_behind_a_new_nbma_is_refused_until_the_old_entry_expires() {
    let holdtime = 120u16;
    let mut sim = seed::topology(4, Impairments::perfect(), None);
    let mut c = seed::spoke_config(2, seed::spoke_nbma(2), None);
    c.holdtime = holdtime;
    sim.restart(SPOKE2, c.clone(), seed::spoke_nbma(2).into());
    assert!(sim.run_until(Duration::from_secs(5), converged, check_holdtimes));
    let registered_at = sim.now;
    let new_nbma = Ipv4Addr::new(198, 18, 0, 102);
    c.nbma_address = new_nbma.into();
    sim.run_for(Duration::from_secs(1), check_holdtimes);
    sim.restart(SPOKE2, c, new_nbma.into());
    sim.run_for(Duration::from_secs(10), check_holdtimes);
    // Refused, and the hub's entry is untouched.
    assert_eq!(nbma_of(&sim, seed::spoke(2)), Some(ip(seed::spoke_nbma(2))));
    assert!(sim.events.iter().any(|(_, node, e)| *node == SPOKE2
        && *e
            == Event::RegistrationRefused {
                nhs: seed::HUB.into(),
                prefix: Prefix::host(seed::spoke(2).into()),
                code: CieCode::UniqueAddressAlreadyRegistered,
            }));
    assert!(!sim.nodes[SPOKE2].engine.show_nhs(sim.now)[0].up);
    // After the old entry expires, the next retry (backoff at most 64 s) registers.
    let expiry = registered_at + Duration::from_secs(u64::from(holdtime));
    assert!(sim.run_until(
        Duration::from_secs(u64::from(holdtime) + 70),
        |s| nbma_of(s, seed::spoke(2)) == Some(ip(new_nbma)),
        check_holdtimes
    ));
    assert!(sim.now >= expiry && sim.now <= expiry + Duration::from_secs(65));
    sim.run_for(Duration::from_secs(1), check_holdtimes);
    assert!(sim.nodes[SPOKE2].engine.show_nhs(sim.now)[0].up);
    assert_eq!(
        sim.nodes[HUB]
            .engine
            .lookup("192.168.2.1".parse().unwrap())
            .unwrap()
            .1
            .nbma,
        ip(new_nbma)
    );
}

/// With `ip nhrp registration no-unique` the hub replaces the entry at once.
#[test]
fn restart_behind_a_new_nbma_without_unique_updates_at_once() {
    let mut sim = seed::topology(5, Impairments::perfect(), None);
    let mut c = seed::spoke_config(2, seed::spoke_nbma(2), None);
    c.unique = false;
    sim.restart(SPOKE2, c.clone(), seed::spoke_nbma(2).into());
    assert!(sim.run_until(Duration::from_secs(5), converged, check_holdtimes));
    assert!(
        !sim.nodes[HUB]
            .engine
            .lookup(seed::spoke(2).into())
            .unwrap()
            .1
            .unique
    );
    let new_nbma = Ipv4Addr::new(198, 18, 0, 102);
    c.nbma_address = new_nbma.into();
    sim.restart(SPOKE2, c, new_nbma.into());
    assert!(sim.run_until(
        Duration::from_secs(1),
        |s| nbma_of(s, seed::spoke(2)) == Some(ip(new_nbma)),
        check_holdtimes
    ));
    assert!(sim.events.iter().any(|(_, node, e)| *node == HUB
        && matches!(e, Event::CacheUpdated { prefix, entry }
            if *prefix == seed::lan(2) && entry.nbma == ip(new_nbma))));
    assert_eq!(sim.nodes[HUB].engine.counters().registrations_refused, 0);
}

#[test]
fn hijack_attempt_is_refused() {
    let mut sim = seed::topology(6, Impairments::perfect(), None);
    assert!(sim.run_until(Duration::from_secs(5), converged, check_holdtimes));
    let before = sim.nodes[HUB].engine.show_nhrp(sim.now);
    let thief = Ipv4Addr::new(203, 0, 113, 66);
    let mut unique_thief = seed::spoke_config(2, thief, None);
    unique_thief.advertised_prefixes.push(seed::lan(3));
    let i = sim.add("thief", unique_thief, thief.into());
    let thief2 = Ipv4Addr::new(203, 0, 113, 67);
    let mut quiet_thief = seed::spoke_config(2, thief2, None);
    quiet_thief.unique = false;
    let j = sim.add("thief2", quiet_thief, thief2.into());
    sim.run_for(Duration::from_secs(300), check_holdtimes);
    let hub = &sim.nodes[HUB].engine;
    // Nothing moved but the expiry of the refreshed entries (none in 300 s of 7200).
    let after = hub.show_nhrp(sim.now);
    assert_eq!(before.len(), after.len());
    for (b, a) in before.iter().zip(&after) {
        assert_eq!((b.prefix, b.nbma, b.via), (a.prefix, a.nbma, a.via));
    }
    for thief in [i, j] {
        let nhs = &sim.nodes[thief].engine.show_nhs(sim.now)[0];
        assert!(!nhs.up);
        assert!(nhs.codes.iter().all(|c| *c == 14), "{:?}", nhs.codes);
    }
    assert!(hub.counters().registrations_refused >= 5);
    assert!(!hub.multicast_peers().contains(&ip(thief)));
}

#[test]
fn authentication_mismatch_is_dropped_counted_and_indicated() {
    let mut sim = Sim::new(9, Impairments::perfect());
    sim.add("hub", seed::hub(Some(b"s3cr3t")), seed::HUB_NBMA.into());
    for (n, pw) in [(2u8, Some(&b"wrong"[..])), (3, None)] {
        let c = seed::spoke_config(n, seed::spoke_nbma(n), pw);
        sim.add(&format!("spoke{n}"), c, seed::spoke_nbma(n).into());
    }
    sim.run_for(Duration::from_secs(30), check_holdtimes);
    let hub = &sim.nodes[HUB].engine;
    assert_eq!(hub_registered(&sim), 0);
    let c = hub.counters();
    assert!(c.dropped(DropReason::AuthenticationMismatch) >= 3);
    assert!(c.dropped(DropReason::AuthenticationMissing) >= 3);
    assert_eq!(c.received.get(Operation::RegistrationRequest), 0);
    assert_eq!(
        c.sent.get(Operation::ErrorIndication),
        c.dropped(DropReason::AuthenticationMismatch)
            + c.dropped(DropReason::AuthenticationMissing)
    );
    for spoke in [SPOKE2, SPOKE3] {
        let e = &sim.nodes[spoke].engine;
        assert!(e.counters().received.get(Operation::ErrorIndication) >= 3);
        // Never an Error Indication in answer to one.
        assert_eq!(e.counters().sent.get(Operation::ErrorIndication), 0);
        assert!(!e.show_nhs(sim.now)[0].up);
        assert!(sim.events.iter().any(|(_, node, ev)| *node == spoke
            && *ev
                == Event::ErrorIndicationReceived {
                    from: seed::HUB_NBMA.into(),
                    code: ErrorCode::AuthenticationFailure,
                }));
    }
    // The password is in no event.
    let text = format!("{:?}", sim.events);
    assert!(!text.contains("s3cr3t") && !text.contains("wrong"));
    assert!(!format!("{:?}", sim.nodes[HUB].engine).contains("s3cr3t"));
}

#[test]
fn nat_is_recorded_both_ways() {
    let mut sim = Sim::new(10, Impairments::perfect());
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
    let hub = &sim.nodes[HUB].engine;
    let (_, e) = hub.lookup(seed::spoke(3).into()).unwrap();
    assert_eq!(
        (e.nbma, e.claimed_nbma),
        (ip(seed::spoke_nbma(3)), ip(private))
    );
    assert!(e.nat());
    assert!(
        hub.show_nhrp(sim.now)
            .iter()
            .any(|r| r.nat && r.prefix == seed::lan(3))
    );
    assert!(
        hub.show_dmvpn(sim.now)
            .peers
            .iter()
            .any(|p| p.nat && p.nbma == ip(seed::spoke_nbma(3)))
    );
    assert!(sim.events.iter().any(|(_, node, ev)| *node == SPOKE3
        && *ev
            == Event::NatDetected {
                nhs: seed::HUB.into(),
                nat_nbma: seed::spoke_nbma(3).into(),
            }));
    assert_eq!(
        sim.nodes[SPOKE3].engine.show_nhs(sim.now)[0].nat_nbma,
        Some(ip(seed::spoke_nbma(3)))
    );
    assert_eq!(sim.nodes[SPOKE2].engine.show_nhs(sim.now)[0].nat_nbma, None);
}

#[test]
fn full_cache_refuses_with_insufficient_resources() {
    let mut sim = Sim::new(11, Impairments::perfect());
    let mut hub = seed::hub(None);
    hub.cache_limit = 3;
    sim.add("hub", hub, seed::HUB_NBMA.into());
    for n in [2u8, 3] {
        sim.add(
            &format!("spoke{n}"),
            seed::spoke_config(n, seed::spoke_nbma(n), None),
            seed::spoke_nbma(n).into(),
        );
    }
    sim.run_for(Duration::from_secs(5), check_holdtimes);
    assert_eq!(hub_registered(&sim), 3);
    let c = sim.nodes[HUB].engine.counters();
    assert_eq!(c.cache_full, 1);
    assert_eq!(c.registrations_refused, 1);
    assert!(sim.events.iter().any(|(_, node, e)| *node == HUB
        && *e
            == Event::CacheFull {
                prefix: seed::lan(3)
            }));
    // Spoke 3's address is registered, its LAN refused with code 5; both NHSs are up.
    assert_eq!(sim.nhs_up, 2);
    assert_eq!(
        sim.nodes[SPOKE3].engine.show_nhs(sim.now)[0].codes,
        vec![0, 5]
    );
}

#[test]
fn hostile_input_never_panics() {
    let mut sim = seed::topology(12, Impairments::perfect(), Some(b"s3cr3t"));
    sim.captured = Some(Vec::new());
    assert!(sim.run_until(Duration::from_secs(5), converged, check_holdtimes));
    let samples: Vec<Vec<u8>> = sim
        .captured
        .take()
        .unwrap()
        .into_iter()
        .map(|c| c.2)
        .collect();
    let mut rng = dmvpn_nhrp::SplitMix64(99);
    let from: IpAddr = Ipv4Addr::new(203, 0, 113, 9).into();
    let mut fed = 0u64;
    for round in 0..4000 {
        let mut bytes = samples[round % samples.len()].clone();
        match rng.next_u64() % 4 {
            0 => {
                let n = (rng.next_u64() % 96) as usize;
                bytes = (0..n).map(|_| rng.next_u64() as u8).collect();
            }
            1 => bytes.truncate((rng.next_u64() as usize) % (bytes.len() + 1)),
            _ => {
                for _ in 0..=(rng.next_u64() % 4) {
                    let at = (rng.next_u64() as usize) % bytes.len();
                    bytes[at] = rng.next_u64() as u8;
                }
                // Fix the checksum half of the time so the mutation reaches the engine.
                if rng.next_u64().is_multiple_of(2)
                    && let Ok(mut p) = dmvpn_wire::nhrp::Packet::new_checked(&mut bytes[..])
                {
                    p.fill_checksum();
                }
            }
        }
        for node in [HUB, SPOKE2] {
            let e = &mut sim.nodes[node].engine;
            e.handle_packet(sim.now, from, &bytes);
            while e.poll_transmit().is_some() {}
            while e.poll_event().is_some() {}
            fed += 1;
        }
    }
    let dropped: u64 = [HUB, SPOKE2]
        .iter()
        .map(|n| sim.nodes[*n].engine.counters().dropped_total())
        .sum();
    assert!(dropped > fed / 2, "{dropped} of {fed}");
}

#[test]
fn one_peer_cannot_register_more_than_its_quota() {
    let mut sim = Sim::new(13, Impairments::perfect());
    let mut hub = seed::hub(None);
    hub.max_registrations_per_peer = 2;
    sim.add("hub", hub, seed::HUB_NBMA.into());
    let mut greedy = seed::spoke_config(2, seed::spoke_nbma(2), None);
    for n in [20u8, 21] {
        greedy.advertised_prefixes.push(seed::lan(n));
    }
    sim.add("spoke2", greedy, seed::spoke_nbma(2).into());
    sim.add(
        "spoke3",
        seed::spoke_config(3, seed::spoke_nbma(3), None),
        seed::spoke_nbma(3).into(),
    );
    sim.run_for(Duration::from_secs(5), check_holdtimes);
    assert_eq!(
        sim.nodes[SPOKE2].engine.show_nhs(sim.now)[0].codes,
        vec![0, 0, 5, 5]
    );
    assert_eq!(
        sim.nodes[SPOKE3].engine.show_nhs(sim.now)[0].codes,
        vec![0, 0]
    );
    let hub = &sim.nodes[HUB].engine;
    assert_eq!(hub.cache().registered_by(seed::spoke(2).into()), 2);
    assert_eq!(hub.counters().peer_quota_exceeded, 2);
    // Refreshing what it holds is not growth.
    sim.run_for(Duration::from_secs(2400), check_holdtimes);
    let hub = &sim.nodes[HUB].engine;
    assert_eq!(hub.counters().peer_quota_exceeded, 4);
    assert_eq!(hub_registered(&sim), 4);
}

#[test]
fn a_registration_timeout_sets_the_refresh_interval() {
    // IOS `ip nhrp registration timeout 5` on spoke2: its refresh comes 5 s after the
    // reply, not at holdtime/3 (2400 s).
    let mut sim = Sim::new(1, Impairments::perfect());
    sim.add("hub", seed::hub(None), seed::HUB_NBMA.into());
    let mut c = seed::spoke_config(2, seed::spoke_nbma(2), None);
    c.registration_timeout = Some(5);
    sim.add("spoke2", c, seed::spoke_nbma(2).into());
    assert!(sim.run_until(Duration::from_secs(5), |s| s.nhs_up == 1, check_holdtimes));
    let spoke = &sim.nodes[SPOKE2].engine;
    assert_eq!(spoke.poll_timeout(), Some(sim.now + Duration::from_secs(5)));
    // The refreshes keep coming every 5 s after each reply (10 ms round trip): 11 more
    // requests in a minute.
    sim.run_for(Duration::from_secs(60), check_holdtimes);
    let requests = sim.nodes[SPOKE2]
        .engine
        .counters()
        .sent
        .get(Operation::RegistrationRequest);
    assert_eq!(requests, 12);
}
