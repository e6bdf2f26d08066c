//! Configuration updates of running engines (`Engine::update_config`), in simulation:
//! advertised prefixes, holdtime, password and the NHS list change without a restart.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod sim;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use dmvpn_nhrp::{
    Config, ConfigError, DropReason, EntryType, Event, NhsConfig, Password, Prefix, RemoveReason,
};
use sim::{Impairments, Sim, check_holdtimes, seed};

const HUB: usize = 0;
const SPOKE2: usize = 1;
const HUB2: Ipv4Addr = Ipv4Addr::new(10, 1, 1, 254);
const HUB2_NBMA: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 254);

fn registered(sim: &Sim, hub: usize, owner: Ipv4Addr) -> Vec<(Prefix, u16)> {
    sim.nodes[hub]
        .engine
        .cache()
        .iter()
        .filter(|(_, e)| e.kind == EntryType::Registered && e.tunnel == IpAddr::from(owner))
        .map(|(p, e)| (*p, e.holdtime))
        .collect()
}

fn lan20() -> Prefix {
    Prefix::new("192.168.20.0".parse().unwrap(), 24).unwrap()
}

fn config(sim: &Sim, node: usize) -> Config {
    sim.nodes[node].engine.config().clone()
}

#[test]
fn prefixes_holdtime_password_and_nhs_change_without_restart() {
    let mut sim = seed::topology(61, Impairments::perfect(), Some(b"old"));
    sim.captured = Some(Vec::new());
    let mut c2 = seed::hub(Some(b"old"));
    c2.tunnel_address = HUB2.into();
    c2.nbma_address = HUB2_NBMA.into();
    let hub2 = sim.add("hub2", c2, HUB2_NBMA.into());
    assert!(sim.run_until(
        Duration::from_secs(5),
        |s| s.nhs_up == 2 && registered(s, HUB, seed::spoke(2)).len() == 2,
        check_holdtimes
    ));

    // Spoke 2 advertises 192.168.20.0/24 instead of its LAN, with holdtime 90: the new
    // prefix is registered, the withdrawn one purged, at once.
    let mut c = config(&sim, SPOKE2);
    c.advertised_prefixes = vec![lan20()];
    c.holdtime = 90;
    let updated = sim.now;
    sim.command(SPOKE2, |s, now| s.update_config(now, c).unwrap());
    sim.run_for(Duration::from_secs(1), check_holdtimes);
    let mut at_hub = registered(&sim, HUB, seed::spoke(2));
    at_hub.sort();
    assert_eq!(
        at_hub,
        [(Prefix::host(seed::spoke(2).into()), 90), (lan20(), 90)]
    );
    assert!(sim.events.iter().any(|(at, node, e)| *at >= updated
        && *node == HUB
        && matches!(e, Event::CacheRemoved { prefix, reason: RemoveReason::Purged, .. }
            if *prefix == seed::lan(2))));
    let spoke = &sim.nodes[SPOKE2].engine;
    assert_eq!(spoke.config().holdtime, 90);
    assert_eq!(
        spoke
            .lookup("192.168.20.1".parse().unwrap())
            .unwrap()
            .1
            .kind,
        EntryType::Local
    );
    assert!(spoke.lookup("192.168.2.1".parse().unwrap()).is_none());
    // The refresh follows the new holdtime (every 30 s): nothing expires at the hub.
    sim.run_for(Duration::from_secs(200), check_holdtimes);
    assert_eq!(registered(&sim, HUB, seed::spoke(2)).len(), 2);

    // A new password everywhere at the same moment: the spokes re-register at once and
    // nothing is refused.
    let refused = sim.nodes[HUB]
        .engine
        .counters()
        .dropped(DropReason::AuthenticationMismatch);
    for node in [HUB, SPOKE2, 2, hub2] {
        let mut c = config(&sim, node);
        c.password = Some(Password::new(b"n3w").unwrap());
        sim.command(node, |s, now| s.update_config(now, c).unwrap());
    }
    let changed = sim.now;
    sim.run_for(Duration::from_secs(1), check_holdtimes);
    assert_eq!(
        sim.nodes[HUB]
            .engine
            .counters()
            .dropped(DropReason::AuthenticationMismatch),
        refused
    );
    let fresh = |sim: &Sim, owner: Ipv4Addr| {
        sim.nodes[HUB].engine.cache().iter().any(|(_, e)| {
            e.tunnel == IpAddr::from(owner)
                && e.kind == EntryType::Registered
                && e.expires.unwrap() >= changed + Duration::from_secs(80)
        })
    };
    assert!(fresh(&sim, seed::spoke(2)) && fresh(&sim, seed::spoke(3)));

    // Spoke 2 adds hub 2 (same priority: registered with at once), then drops hub 1
    // (its registration there is purged, hub 1 is down and forgotten).
    let mut c = config(&sim, SPOKE2);
    c.nhs.push(NhsConfig {
        tunnel: HUB2.into(),
        nbma: HUB2_NBMA.into(),
        priority: 0,
    });
    sim.command(SPOKE2, |s, now| s.update_config(now, c).unwrap());
    sim.run_for(Duration::from_secs(1), check_holdtimes);
    assert_eq!(registered(&sim, hub2, seed::spoke(2)).len(), 2);
    let nhs = sim.nodes[SPOKE2].engine.show_nhs(sim.now);
    assert_eq!(nhs.len(), 2);
    assert!(nhs.iter().all(|n| n.up));

    let mut c = config(&sim, SPOKE2);
    c.nhs.remove(0);
    let dropped = sim.now;
    sim.command(SPOKE2, |s, now| s.update_config(now, c).unwrap());
    sim.run_for(Duration::from_secs(1), check_holdtimes);
    assert!(registered(&sim, HUB, seed::spoke(2)).is_empty());
    assert_eq!(registered(&sim, hub2, seed::spoke(2)).len(), 2);
    assert!(sim.events.iter().any(|(at, node, e)| *at >= dropped
        && *node == SPOKE2
        && *e
            == Event::NhsDown {
                nhs: seed::HUB.into(),
                nbma: seed::HUB_NBMA.into(),
            }));
    let spoke = &sim.nodes[SPOKE2].engine;
    let nhs = spoke.show_nhs(sim.now);
    assert_eq!((nhs.len(), nhs[0].tunnel), (1, IpAddr::from(HUB2)));
    assert!(spoke.cache().get(&Prefix::host(seed::HUB.into())).is_none());
    // It keeps refreshing with hub 2 alone.
    sim.run_for(Duration::from_secs(200), check_holdtimes);
    assert_eq!(registered(&sim, hub2, seed::spoke(2)).len(), 2);
    assert!(sim.nodes[SPOKE2].engine.show_nhs(sim.now)[0].up);

    // What only a restart can change is refused, and the engine is left as it was.
    let mut c = config(&sim, SPOKE2);
    c.tunnel_address = seed::spoke(9).into();
    let before = format!("{:?}", sim.nodes[SPOKE2].engine.config());
    let err = sim.nodes[SPOKE2]
        .engine
        .update_config(sim.now, c)
        .unwrap_err();
    assert_eq!(err, ConfigError::RestartRequired("tunnel_address"));
    assert_eq!(format!("{:?}", sim.nodes[SPOKE2].engine.config()), before);
    let mut c = config(&sim, SPOKE2);
    c.holdtime = 0;
    assert_eq!(
        sim.nodes[SPOKE2].engine.update_config(sim.now, c),
        Err(ConfigError::ZeroHoldtime)
    );

    common::assert_packets_clean("nhrp-update-config", &sim.captured.take().unwrap());
}
