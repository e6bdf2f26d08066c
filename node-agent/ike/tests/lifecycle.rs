//! After IKE_AUTH: CHILD_SA and IKE SA rekeys without a gap, delete, dead peer detection,
//! lifetimes, and simultaneous initiation resolved to one SA.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use dmvpn_ike::{DownReason, Event};

const SECOND: Duration = Duration::from_secs(1);

fn established(seed: u64) -> Net {
    let mut net = Net::pair(seed);
    net.nodes[1].engine.initiate(net.now, HUB);
    net.run(5 * SECOND);
    net
}

/// The position of the ChildSaUp replacing `old` and of the ChildSaDown of `old`.
fn up_then_down(ev: &[Event], old: u32) -> (usize, usize) {
    let up = ev
        .iter()
        .position(|e| matches!(e, Event::ChildSaUp(c) if c.replaces == Some(old)))
        .expect("new pair up");
    let down = ev
        .iter()
        .position(|e| matches!(e, Event::ChildSaDown { inbound_spi, .. } if *inbound_spi == old))
        .expect("old pair down");
    (up, down)
}

#[test]
fn child_rekey_is_make_before_break() {
    for (seed, pfs) in [(30, false), (31, true)] {
        let mut hub = config(HUB, b"s");
        let mut spoke = config(SPOKE, b"s");
        if pfs {
            hub = hub
                .with_proposals(&["aes256gcm16-prfsha256-x25519"], &["aes256gcm16-ecp256"])
                .unwrap();
            spoke = spoke
                .with_proposals(&["aes256gcm16-prfsha256-x25519"], &["aes256gcm16-ecp256"])
                .unwrap();
        }
        let mut net = Net::pair_with(seed, hub, spoke);
        net.nodes[1].engine.initiate(net.now, HUB);
        net.run(5 * SECOND);
        let (h0, s0) = (net.take_events(0), net.take_events(1));
        let (old_h, old_s) = (child_ups(&h0)[0].inbound.spi, child_ups(&s0)[0].inbound.spi);
        let now = net.now;
        net.nodes[1].engine.rekey_child(now, HUB);
        net.run(SECOND);
        // Both pairs stand during the overlap.
        assert_eq!(net.node(0).engine.ike_sas()[0].children.len(), 2);
        net.run(10 * SECOND);
        let (h, s) = (net.take_events(0), net.take_events(1));
        let (u, d) = up_then_down(&h, old_h);
        assert!(u < d, "{h:?}");
        let (u, d) = up_then_down(&s, old_s);
        assert!(u < d, "{s:?}");
        pair_works(child_ups(&h)[0], child_ups(&s)[0]);
        assert_ne!(
            child_ups(&s)[0].outbound.key.expose(),
            child_ups(&s0)[0].outbound.key.expose()
        );
        for n in 0..2 {
            let sas = net.node(n).engine.ike_sas();
            assert_eq!(sas[0].children.len(), 1);
        }
        let ch = net.node(1).engine.ike_sas()[0].children[0];
        let hh = net.node(0).engine.ike_sas()[0].children[0];
        assert_eq!((ch.0, ch.1), (hh.1, hh.0));
    }
}

#[test]
fn ike_rekey_moves_the_children() {
    let mut net = established(32);
    let (h0, _) = (net.take_events(0), net.take_events(1));
    let child = child_ups(&h0)[0].inbound.spi;
    let old = net.node(0).engine.ike_sas()[0].clone();
    let now = net.now;
    net.nodes[0].engine.rekey_ike(now, SPOKE);
    net.run(5 * SECOND);
    for n in 0..2 {
        let ev = net.take_events(n);
        let up = ev.iter().position(|e| matches!(e, Event::IkeSaUp { replaces: Some(r), .. } if *r == (old.spi_i, old.spi_r))).expect("successor up");
        let down = ev.iter().position(|e| matches!(e, Event::IkeSaDown { reason: DownReason::Rekeyed, spi_i, .. } if *spi_i == old.spi_i)).expect("old down");
        assert!(up < down, "{ev:?}");
        assert!(
            !ev.iter().any(|e| matches!(e, Event::ChildSaDown { .. })),
            "{ev:?}"
        );
        let sas = net.node(n).engine.ike_sas();
        assert_eq!(sas.len(), 1);
        assert_ne!(sas[0].spi_i, old.spi_i);
        assert_eq!(sas[0].children.len(), 1);
    }
    // The hub made the successor: it is its original initiator now.
    assert!(net.node(0).engine.ike_sas()[0].initiator);
    // The new SA works: rekey the CHILD_SA through it, from the spoke.
    let now = net.now;
    net.nodes[1].engine.rekey_child(now, HUB);
    net.run(10 * SECOND);
    let (h, s) = (net.take_events(0), net.take_events(1));
    let (u, d) = up_then_down(&h, child);
    assert!(u < d);
    pair_works(child_ups(&h)[0], child_ups(&s)[0]);
}

#[test]
fn delete_takes_everything_down_on_both_sides() {
    let mut net = established(33);
    net.take_events(0);
    net.take_events(1);
    let now = net.now;
    net.nodes[1].engine.delete(now, HUB);
    net.run(2 * SECOND);
    let (h, s) = (net.take_events(0), net.take_events(1));
    assert!(
        h.iter().any(|e| matches!(
            e,
            Event::ChildSaDown {
                reason: DownReason::DeletedByPeer,
                ..
            }
        )),
        "{h:?}"
    );
    assert!(
        h.iter().any(|e| matches!(
            e,
            Event::IkeSaDown {
                reason: DownReason::DeletedByPeer,
                ..
            }
        )),
        "{h:?}"
    );
    assert!(
        s.iter().any(|e| matches!(
            e,
            Event::ChildSaDown {
                reason: DownReason::Deleted,
                ..
            }
        )),
        "{s:?}"
    );
    assert!(
        s.iter().any(|e| matches!(
            e,
            Event::IkeSaDown {
                reason: DownReason::Deleted,
                ..
            }
        )),
        "{s:?}"
    );
    assert!(net.node(0).engine.ike_sas().is_empty() && net.node(1).engine.ike_sas().is_empty());
    // A new initiation works afterwards.
    let now = net.now;
    net.nodes[1].engine.initiate(now, HUB);
    net.run(5 * SECOND);
    assert_eq!(ike_ups(&net.take_events(0)), 1);
}

#[test]
fn dead_peer_detection() {
    let mut net = established(34);
    net.take_events(1);
    net.nodes[0].dead = true;
    // 30 s idle, then 1 + 2 + 4 + 8 + 16 s of retransmissions.
    net.run(40 * SECOND);
    assert!(
        net.take_events(1)
            .iter()
            .all(|e| !matches!(e, Event::IkeSaDown { .. }))
    );
    net.run(30 * SECOND);
    let s = net.take_events(1);
    assert!(
        s.iter().any(|e| matches!(
            e,
            Event::ChildSaDown {
                reason: DownReason::PeerDead,
                ..
            }
        )),
        "{s:?}"
    );
    assert!(
        s.iter().any(|e| matches!(
            e,
            Event::IkeSaDown {
                reason: DownReason::PeerDead,
                ..
            }
        )),
        "{s:?}"
    );
    assert!(net.node(1).engine.ike_sas().is_empty());
    assert_eq!(net.node(1).engine.counters().retransmissions, 4);
    // A live peer answers the liveness checks and the SA stays.
    let mut net = established(35);
    net.run(200 * SECOND);
    assert_eq!(net.node(1).engine.ike_sas().len(), 1);
    assert!(
        net.node(0)
            .engine
            .counters()
            .received
            .get(dmvpn_wire::ikev2::ExchangeType::Informational)
            >= 1
    );
}

#[test]
fn lifetimes_rekey_by_themselves() {
    let short = |mut c: dmvpn_ike::Config| {
        c.child_lifetime = dmvpn_ike::Lifetimes {
            soft: 60 * SECOND,
            hard: 90 * SECOND,
            jitter: 10 * SECOND,
        };
        c.ike_lifetime = dmvpn_ike::Lifetimes {
            soft: 150 * SECOND,
            hard: 200 * SECOND,
            jitter: 10 * SECOND,
        };
        c
    };
    let mut net = Net::pair_with(36, short(config(HUB, b"s")), short(config(SPOKE, b"s")));
    net.nodes[1].engine.initiate(net.now, HUB);
    net.run(400 * SECOND);
    let (h, s) = (net.take_events(0), net.take_events(1));
    assert!(child_ups(&h).len() >= 5, "{}", child_ups(&h).len());
    assert!(
        h.iter()
            .filter(|e| matches!(
                e,
                Event::IkeSaUp {
                    replaces: Some(_),
                    ..
                }
            ))
            .count()
            >= 2
    );
    assert!(
        !h.iter().chain(&s).any(|e| matches!(
            e,
            Event::IkeSaDown {
                reason: DownReason::PeerDead | DownReason::Expired,
                ..
            }
        )),
        "{h:?}"
    );
    // Every rekeyed pair came up before its predecessor went down.
    for ev in [&h, &s] {
        for c in child_ups(ev).iter().filter_map(|c| c.replaces) {
            let (u, d) = up_then_down(ev, c);
            assert!(u < d);
        }
    }
    let last_h = *child_ups(&h).last().unwrap();
    let last_s = *child_ups(&s).last().unwrap();
    pair_works(last_h, last_s);
    assert_eq!(net.node(0).engine.ike_sas().len(), 1);
    assert_eq!(net.node(0).engine.ike_sas()[0].children.len(), 1);
}

#[test]
fn simultaneous_initiation_keeps_one_sa_the_same_on_both_sides() {
    let mut kept_spoke_initiated = 0;
    let mut kept_hub_initiated = 0;
    for seed in 40..56 {
        let mut net = Net::pair(seed);
        let now = net.now;
        net.nodes[0].engine.initiate(now, SPOKE);
        net.nodes[1].engine.initiate(now, HUB);
        net.run(10 * SECOND);
        let (h, s) = (net.node(0).engine.ike_sas(), net.node(1).engine.ike_sas());
        assert_eq!((h.len(), s.len()), (1, 1), "seed {seed}: {h:?} {s:?}");
        assert_eq!(
            (h[0].spi_i, h[0].spi_r),
            (s[0].spi_i, s[0].spi_r),
            "seed {seed}"
        );
        assert_eq!(h[0].children.len(), 1);
        assert_eq!(s[0].children.len(), 1);
        assert_eq!(
            (h[0].children[0].0, h[0].children[0].1),
            (s[0].children[0].1, s[0].children[0].0)
        );
        if s[0].initiator {
            kept_spoke_initiated += 1;
        } else {
            kept_hub_initiated += 1;
        }
        let (he, se) = (net.take_events(0), net.take_events(1));
        assert!(he.iter().chain(&se).any(|e| matches!(
            e,
            Event::IkeSaDown {
                reason: DownReason::Redundant,
                ..
            }
        )));
        // The surviving pair is the last one reported up and still works.
        let live_h = child_ups(&he)
            .into_iter()
            .find(|c| c.inbound.spi == h[0].children[0].0)
            .unwrap();
        let live_s = child_ups(&se)
            .into_iter()
            .find(|c| c.inbound.spi == s[0].children[0].0)
            .unwrap();
        pair_works(live_h, live_s);
    }
    // The nonce rule picks either side's SA, depending on the nonces.
    assert!(
        kept_spoke_initiated > 0 && kept_hub_initiated > 0,
        "{kept_spoke_initiated} {kept_hub_initiated}"
    );
}

/// Sent INFORMATIONAL requests and responses of node `i`.
fn informational_sent(net: &Net, i: usize) -> u64 {
    net.node(i)
        .engine
        .counters()
        .sent
        .get(dmvpn_wire::ikev2::ExchangeType::Informational)
}

/// Runs `net` for `seconds`, telling the spoke each second that ESP went to the hub then and
/// last came from it at `received`.
fn traffic_for(net: &mut Net, seconds: u32, received: impl Fn(&Net) -> std::time::Instant) {
    for _ in 0..seconds {
        net.run(SECOND);
        let (now, rx) = (net.now, received(net));
        net.nodes[1].engine.traffic(now, HUB, Some(now), Some(rx));
    }
}

#[test]
fn on_demand_dead_peer_detection() {
    // IOS `crypto ikev2 dpd 10 2 on-demand`: no periodic checks, a check after 10 s of
    // traffic going out and nothing coming back (RFC 7296 section 2.4).
    let on_demand = |mut c: dmvpn_ike::Config| {
        c.dpd_interval = None;
        c.dpd_on_demand = Some(10 * SECOND);
        c
    };
    let established = |seed| {
        let mut net = Net::pair_with(
            seed,
            on_demand(config(HUB, b"s")),
            on_demand(config(SPOKE, b"s")),
        );
        net.nodes[1].engine.initiate(net.now, HUB);
        net.run(5 * SECOND);
        assert_eq!(ike_ups(&net.take_events(1)), 1);
        net
    };
    let mut net = established(37);
    let base = informational_sent(&net, 1);
    // Idle: no check, however long.
    net.run(200 * SECOND);
    assert_eq!(informational_sent(&net, 1), base);
    // Traffic both ways: no check either.
    traffic_for(&mut net, 60, |n| n.now);
    assert_eq!(informational_sent(&net, 1), base);
    // Traffic out, nothing back: a check after 10 s, answered; the SA stays.
    let quiet = net.now;
    traffic_for(&mut net, 9, |_| quiet);
    assert_eq!(informational_sent(&net, 1), base);
    traffic_for(&mut net, 2, |_| quiet);
    assert_eq!(informational_sent(&net, 1), base + 1);
    traffic_for(&mut net, 5, |_| quiet);
    assert_eq!(net.node(1).engine.ike_sas().len(), 1);
    assert!(
        net.take_events(1)
            .iter()
            .all(|e| !matches!(e, Event::IkeSaDown { .. }))
    );

    // A dead peer: the check and its retransmissions (1 + 2 + 4 + 8 + 16 s) go unanswered
    // and the SA goes down.
    let mut net = established(38);
    net.nodes[0].dead = true;
    let quiet = net.now;
    traffic_for(&mut net, 35, |_| quiet);
    assert!(
        net.take_events(1)
            .iter()
            .all(|e| !matches!(e, Event::IkeSaDown { .. }))
    );
    traffic_for(&mut net, 10, |_| quiet);
    let s = net.take_events(1);
    assert!(
        s.iter().any(|e| matches!(
            e,
            Event::IkeSaDown {
                reason: DownReason::PeerDead,
                ..
            }
        )),
        "{s:?}"
    );
    assert!(net.node(1).engine.ike_sas().is_empty());
}

#[test]
fn a_deleted_sa_shows_as_deleting_until_its_delete_is_answered() {
    let mut net = established(39);
    net.nodes[0].dead = true;
    let now = net.now;
    net.nodes[1].engine.delete(now, HUB);
    let sas = net.node(1).engine.ike_sas();
    assert_eq!(sas.len(), 1);
    assert!(sas[0].established && sas[0].deleting, "{sas:?}");
    // Unanswered, the DELETE is retransmitted (1 + 2 + 4 + 8 + 16 s), then the SA goes.
    net.run(35 * SECOND);
    assert!(net.node(1).engine.ike_sas().is_empty());
    // A live SA is not deleting.
    let net = established(40);
    let sas = net.node(1).engine.ike_sas();
    assert!(sas[0].established && !sas[0].deleting, "{sas:?}");
}
