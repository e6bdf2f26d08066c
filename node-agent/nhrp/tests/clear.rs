//! Operator settings and commands in simulation on the seed topology: `clear ip nhrp` at the
//! hub (registrations dropped, back at the spokes' next refresh) and at a spoke (shortcut
//! dropped, registration sent at once), `ip nhrp registration timeout`, and `ip nhrp map
//! multicast dynamic` off.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod sim;

use std::net::IpAddr;
use std::time::Duration;

use dmvpn_nhrp::{ConfigError, EntryType, Event, RemoveReason};
use dmvpn_wire::nhrp::Operation;
use sim::{Impairments, Sim, check_holdtimes, seed};

const HUB: usize = 0;
const SPOKE2: usize = 1;

fn count(sim: &Sim, node: usize, kind: EntryType) -> usize {
    sim.nodes[node]
        .engine
        .cache()
        .iter()
        .filter(|(_, e)| e.kind == kind)
        .count()
}

fn converged(sim: &Sim) -> bool {
    sim.nhs_up == 2 && count(sim, HUB, EntryType::Registered) == 4
}

fn a(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// The seed topology with spokes refreshing every `timeout` seconds.
fn topology(seed: u64, timeout: Option<u16>) -> Sim {
    let mut sim = Sim::new(seed, Impairments::perfect());
    sim.add("hub", seed::hub(None), seed::HUB_NBMA.into());
    for n in [2, 3] {
        let mut c = seed::spoke_config(n, seed::spoke_nbma(n), None);
        c.registration_timeout = timeout;
        sim.add(&format!("spoke{n}"), c, seed::spoke_nbma(n).into());
    }
    sim
}

fn cleared(sim: &Sim, node: usize) -> Vec<EntryType> {
    sim.events
        .iter()
        .filter_map(|(_, n, e)| match e {
            Event::CacheRemoved {
                entry,
                reason: RemoveReason::Cleared,
                ..
            } if *n == node => Some(entry.kind),
            _ => None,
        })
        .collect()
}

#[test]
fn clear_at_the_hub_drops_registrations_until_the_next_refresh() {
    let mut sim = topology(41, Some(10));
    assert!(sim.run_until(Duration::from_secs(5), converged, check_holdtimes));
    let before = sim.now;
    sim.command(HUB, |hub, now| hub.clear_dynamic(now));
    assert_eq!(count(&sim, HUB, EntryType::Registered), 0);
    assert_eq!(cleared(&sim, HUB), [EntryType::Registered; 4]);
    // Its own entries stay, and the multicast set is empty until the spokes come back.
    assert_eq!(count(&sim, HUB, EntryType::Local), 1);
    assert!(sim.nodes[HUB].engine.multicast_peers().is_empty());
    // The spokes' refreshes, 10 s after their registrations, bring everything back.
    assert!(sim.run_until(Duration::from_secs(11), converged, check_holdtimes));
    assert!(
        sim.now - before > Duration::from_secs(9),
        "{:?}",
        sim.now - before
    );
}

#[test]
fn clear_at_a_spoke_drops_its_shortcut_and_registers_at_once() {
    let mut sim = seed::topology(42, Impairments::perfect(), None);
    assert!(sim.run_until(Duration::from_secs(5), converged, check_holdtimes));
    sim.command(HUB, |hub, now| {
        hub.traffic_to(now, a("192.168.2.10"), a("192.168.3.5"));
    });
    let has_shortcut = |s: &Sim| count(s, SPOKE2, EntryType::Shortcut) == 1;
    assert!(sim.run_until(Duration::from_secs(1), has_shortcut, check_holdtimes));
    let sent = |s: &Sim| {
        s.nodes[SPOKE2]
            .engine
            .counters()
            .sent
            .get(Operation::RegistrationRequest)
    };
    let registrations = sent(&sim);
    sim.command(SPOKE2, |spoke, now| spoke.clear_dynamic(now));
    assert_eq!(count(&sim, SPOKE2, EntryType::Shortcut), 0);
    assert_eq!(cleared(&sim, SPOKE2), [EntryType::Shortcut]);
    // The configured NHS and the own prefixes stay.
    assert_eq!(count(&sim, SPOKE2, EntryType::Static), 1);
    assert_eq!(count(&sim, SPOKE2, EntryType::Local), 2);
    assert!(sim.run_until(
        Duration::from_millis(20),
        |s| sent(s) > registrations,
        check_holdtimes
    ));
    assert!(
        sim.nodes[SPOKE2].engine.lookup(a("192.168.3.5")).is_none(),
        "192.168.3.5 follows the static route to the hub again"
    );
    // A new redirect makes a new shortcut.
    sim.command(HUB, |hub, now| {
        hub.traffic_to(now, a("192.168.2.10"), a("192.168.3.6"));
    });
    assert!(sim.run_until(Duration::from_secs(1), has_shortcut, check_holdtimes));
}

#[test]
fn the_registration_timeout_sets_the_refresh() {
    let mut sim = topology(43, Some(20));
    assert!(sim.run_until(Duration::from_secs(5), converged, check_holdtimes));
    let spoke = &sim.nodes[SPOKE2].engine;
    assert_eq!(
        spoke.config().registration_interval(),
        Duration::from_secs(20)
    );
    assert_eq!(
        spoke.poll_timeout(),
        Some(sim.now + Duration::from_secs(20))
    );

    let mut c = seed::spoke_config(2, seed::spoke_nbma(2), None);
    assert_eq!(c.registration_interval(), Duration::from_secs(2400));
    c.registration_timeout = Some(0);
    assert_eq!(c.validate(), Err(ConfigError::RegistrationTimeout(0)));
    c.registration_timeout = Some(c.holdtime + 1);
    assert_eq!(c.validate(), Err(ConfigError::RegistrationTimeout(7201)));
}

#[test]
fn without_map_multicast_dynamic_the_hub_replicates_to_nobody() {
    let mut sim = Sim::new(44, Impairments::perfect());
    let mut hub = seed::hub(None);
    hub.multicast_dynamic = false;
    sim.add("hub", hub, seed::HUB_NBMA.into());
    for n in [2, 3] {
        let c = seed::spoke_config(n, seed::spoke_nbma(n), None);
        sim.add(&format!("spoke{n}"), c, seed::spoke_nbma(n).into());
    }
    assert!(sim.run_until(Duration::from_secs(5), converged, check_holdtimes));
    assert!(sim.nodes[HUB].engine.multicast_peers().is_empty());
    // A spoke still sends to its NHS (its static `ip nhrp map multicast`).
    assert_eq!(
        sim.nodes[SPOKE2].engine.multicast_peers(),
        [IpAddr::from(seed::HUB_NBMA)]
    );
}
