//! Collisions after IKE_AUTH: simultaneous CHILD_SA and IKE SA rekeys resolved by the nonce
//! rule (RFC 7296 sections 2.8.1, 2.8.2), a rekey crossing a DELETE (2.25), INVALID_KE_PAYLOAD
//! on a PFS rekey (1.3, 2.7), INITIAL_CONTACT after a restart (3.10.1) and the key log limit.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use dmvpn_ike::{Config, DownReason, Engine, Event, SeededRandom};
use dmvpn_wire::ikev2::{ExchangeType, NotifyType};

const SECOND: Duration = Duration::from_secs(1);

fn quiet(mut c: Config) -> Config {
    c.dpd_interval = None;
    c
}

fn established(seed: u64) -> Net {
    let mut net = Net::pair_with(
        seed,
        quiet(config(HUB, b"secret")),
        quiet(config(SPOKE, b"secret")),
    );
    net.nodes[1].engine.initiate(net.now, HUB);
    net.run(5 * SECOND);
    net
}

fn position(ev: &[Event], f: impl Fn(&Event) -> bool) -> Vec<usize> {
    ev.iter()
        .enumerate()
        .filter(|(_, e)| f(e))
        .map(|(i, _)| i)
        .collect()
}

fn informational_sent(net: &Net) -> u64 {
    (0..2)
        .map(|n| {
            net.node(n)
                .engine
                .counters()
                .sent
                .get(ExchangeType::Informational)
        })
        .sum()
}

#[test]
fn simultaneous_child_rekey_keeps_one_pair_on_both_sides() {
    let mut hub_made_survivor = 0;
    let mut spoke_made_survivor = 0;
    for seed in 100..124 {
        let mut net = established(seed);
        let (h0, s0) = (net.take_events(0), net.take_events(1));
        let (old_h, old_s) = (child_ups(&h0)[0].inbound.spi, child_ups(&s0)[0].inbound.spi);
        let info_before = informational_sent(&net);
        let now = net.now;
        net.nodes[0].engine.rekey_child(now, SPOKE);
        net.nodes[1].engine.rekey_child(now, HUB);
        net.run(15 * SECOND);
        let (h, s) = (net.take_events(0), net.take_events(1));
        let (hs, ss) = (net.node(0).engine.ike_sas(), net.node(1).engine.ike_sas());
        assert_eq!((hs.len(), ss.len()), (1, 1), "seed {seed}");
        assert_eq!(hs[0].children.len(), 1, "seed {seed}: {h:?}");
        assert_eq!(ss[0].children.len(), 1, "seed {seed}: {s:?}");
        let (hc, sc) = (hs[0].children[0], ss[0].children[0]);
        assert_eq!(
            (hc.0, hc.1),
            (sc.1, sc.0),
            "seed {seed}: same pair on both sides"
        );
        // Two successors came up on each side, both replacing the old pair.
        for (ev, old) in [(&h, old_h), (&s, old_s)] {
            let ups = child_ups(ev);
            assert_eq!(ups.len(), 2, "seed {seed}");
            assert!(ups.iter().all(|u| u.replaces == Some(old)), "seed {seed}");
            // The survivor comes up before the old pair goes down: no gap.
            let survivor_up = position(
                ev,
                |e| matches!(e, Event::ChildSaUp(c) if c.inbound.spi == hc.0 || c.inbound.spi == sc.0),
            );
            let old_down = position(
                ev,
                |e| matches!(e, Event::ChildSaDown { inbound_spi, reason: DownReason::Rekeyed, .. } if *inbound_spi == old),
            );
            assert_eq!(old_down.len(), 1, "seed {seed}: {ev:?}");
            assert!(survivor_up[0] < old_down[0], "seed {seed}: {ev:?}");
            let redundant = position(ev, |e| {
                matches!(
                    e,
                    Event::ChildSaDown {
                        reason: DownReason::Redundant,
                        ..
                    }
                )
            });
            assert_eq!(redundant.len(), 1, "seed {seed}: {ev:?}");
            assert!(
                !ev.iter().any(|e| matches!(e, Event::ChildSaFailed { .. })),
                "seed {seed}: {ev:?}"
            );
        }
        // One DELETE for the redundant pair, one for the old pair: two exchanges.
        assert_eq!(informational_sent(&net) - info_before, 4, "seed {seed}");
        let live_h = child_ups(&h)
            .into_iter()
            .find(|c| c.inbound.spi == hc.0)
            .unwrap();
        let live_s = child_ups(&s)
            .into_iter()
            .find(|c| c.inbound.spi == sc.0)
            .unwrap();
        pair_works(live_h, live_s);
        // The hub answers the spoke's request before its own response arrives, so its first
        // new pair is the spoke's.
        if child_ups(&h)[0].inbound.spi == hc.0 {
            spoke_made_survivor += 1;
        } else {
            hub_made_survivor += 1;
        }
    }
    assert!(
        hub_made_survivor > 0 && spoke_made_survivor > 0,
        "{hub_made_survivor} {spoke_made_survivor}"
    );
}

#[test]
fn simultaneous_child_rekey_with_reordering_and_loss_still_agrees() {
    for seed in 200..232 {
        let mut net = established(seed);
        net.take_events(0);
        net.take_events(1);
        net.reorder = 300;
        net.loss = 50;
        net.dup = 50;
        let now = net.now;
        net.nodes[0].engine.rekey_child(now, SPOKE);
        net.nodes[1].engine.rekey_child(now, HUB);
        net.run(60 * SECOND);
        let (h, s) = (net.take_events(0), net.take_events(1));
        let (hs, ss) = (net.node(0).engine.ike_sas(), net.node(1).engine.ike_sas());
        assert_eq!((hs.len(), ss.len()), (1, 1), "seed {seed}");
        assert_eq!(hs[0].children.len(), 1, "seed {seed}: {h:?}");
        assert_eq!(ss[0].children.len(), 1, "seed {seed}: {s:?}");
        let (hc, sc) = (hs[0].children[0], ss[0].children[0]);
        assert_eq!((hc.0, hc.1), (sc.1, sc.0), "seed {seed}");
        let live_h = child_ups(&h).into_iter().find(|c| c.inbound.spi == hc.0);
        let live_s = child_ups(&s).into_iter().find(|c| c.inbound.spi == sc.0);
        pair_works(live_h.unwrap(), live_s.unwrap());
    }
}

#[test]
fn simultaneous_ike_rekey_keeps_one_sa_with_the_children() {
    let mut hub_made_survivor = 0;
    let mut spoke_made_survivor = 0;
    for seed in 300..324 {
        let mut net = established(seed);
        net.take_events(0);
        net.take_events(1);
        let old = net.node(0).engine.ike_sas()[0].clone();
        let now = net.now;
        net.nodes[0].engine.rekey_ike(now, SPOKE);
        net.nodes[1].engine.rekey_ike(now, HUB);
        net.run(5 * SECOND);
        let (hs, ss) = (net.node(0).engine.ike_sas(), net.node(1).engine.ike_sas());
        assert_eq!((hs.len(), ss.len()), (1, 1), "seed {seed}: {hs:?} {ss:?}");
        assert_eq!((hs[0].spi_i, hs[0].spi_r), (ss[0].spi_i, ss[0].spi_r));
        assert_ne!(hs[0].spi_i, old.spi_i);
        assert_eq!(hs[0].initiator, !ss[0].initiator);
        assert_eq!(hs[0].children.len(), 1);
        assert_eq!(hs[0].children, old.children, "seed {seed}: the pair moved");
        for n in 0..2 {
            let ev = net.take_events(n);
            assert_eq!(ike_ups(&ev), 2, "seed {seed}: {ev:?}");
            let downs: Vec<DownReason> = ev
                .iter()
                .filter_map(|e| match e {
                    Event::IkeSaDown { reason, .. } => Some(*reason),
                    _ => None,
                })
                .collect();
            assert_eq!(downs.len(), 2, "seed {seed}: {ev:?}");
            assert!(downs.contains(&DownReason::Redundant) && downs.contains(&DownReason::Rekeyed));
            assert!(
                !ev.iter().any(|e| matches!(e, Event::ChildSaDown { .. })),
                "seed {seed}: {ev:?}"
            );
        }
        if hs[0].initiator {
            hub_made_survivor += 1;
        } else {
            spoke_made_survivor += 1;
        }
        // The survivor works: rekey the pair through it and use the new keys.
        let now = net.now;
        net.nodes[1].engine.rekey_child(now, HUB);
        net.run(10 * SECOND);
        let (h, s) = (net.take_events(0), net.take_events(1));
        pair_works(child_ups(&h)[0], child_ups(&s)[0]);
        assert_eq!(net.node(0).engine.ike_sas()[0].children.len(), 1);
    }
    assert!(
        hub_made_survivor > 0 && spoke_made_survivor > 0,
        "{hub_made_survivor} {spoke_made_survivor}"
    );
}

#[test]
fn rekey_crossing_a_delete_leaves_no_child_and_no_retry() {
    let mut net = established(400);
    let (h0, _) = (net.take_events(0), net.take_events(1));
    let old_h = child_ups(&h0)[0].inbound.spi;
    let now = net.now;
    net.nodes[0].engine.delete_child(now, SPOKE, old_h);
    net.nodes[1].engine.rekey_child(now, HUB);
    net.run(120 * SECOND);
    let (h, s) = (net.take_events(0), net.take_events(1));
    assert!(
        child_ups(&h).is_empty() && child_ups(&s).is_empty(),
        "{h:?} {s:?}"
    );
    assert!(
        s.iter().any(|e| matches!(
            e,
            Event::ChildSaFailed {
                notify: NotifyType::TemporaryFailure,
                ..
            }
        )),
        "{s:?}"
    );
    assert!(h.iter().any(|e| matches!(
        e,
        Event::ChildSaDown {
            reason: DownReason::Deleted,
            ..
        }
    )));
    assert!(s.iter().any(|e| matches!(
        e,
        Event::ChildSaDown {
            reason: DownReason::DeletedByPeer,
            ..
        }
    )));
    for n in 0..2 {
        let sas = net.node(n).engine.ike_sas();
        assert_eq!(sas.len(), 1);
        assert!(sas[0].children.is_empty());
    }
    // One refused rekey, no retry of a pair that is gone.
    assert_eq!(
        net.node(1)
            .engine
            .counters()
            .sent
            .get(ExchangeType::CreateChildSa),
        1
    );
}

#[test]
fn rekey_of_a_pair_the_peer_no_longer_has_is_not_found() {
    let mut net = established(401);
    let (h0, _) = (net.take_events(0), net.take_events(1));
    let old_h = child_ups(&h0)[0].inbound.spi;
    // Lose the spoke's first CREATE_CHILD_SA request: its retransmission reaches the hub
    // after the hub's DELETE completed.
    let mut lost = false;
    net.filter = Some(Box::new(move |w: &Wire| {
        let ike = w.payload.get(4..).unwrap_or_default();
        let create = ike.len() > 19 && ike[18] == 36 && ike[19] & 0x20 == 0;
        if w.src.ip() == SPOKE && create && !lost {
            lost = true;
            return true;
        }
        false
    }));
    let now = net.now;
    net.nodes[0].engine.delete_child(now, SPOKE, old_h);
    net.nodes[1].engine.rekey_child(now, HUB);
    net.run(60 * SECOND);
    let s = net.take_events(1);
    assert!(
        s.iter().any(|e| matches!(
            e,
            Event::ChildSaFailed {
                notify: NotifyType::ChildSaNotFound,
                ..
            }
        )),
        "{s:?}"
    );
    for n in 0..2 {
        assert!(net.node(n).engine.ike_sas()[0].children.is_empty());
    }
}

#[test]
fn invalid_ke_on_a_pfs_rekey_is_retried_with_the_peers_group() {
    let hub = quiet(config(HUB, b"s"))
        .with_proposals(&["aes256gcm16-prfsha256-x25519"], &["aes256gcm16-ecp256"])
        .unwrap();
    let spoke = quiet(config(SPOKE, b"s"))
        .with_proposals(
            &["aes256gcm16-prfsha256-x25519"],
            &["aes256gcm16-x25519-ecp256"],
        )
        .unwrap();
    let mut net = Net::pair_with(500, hub, spoke);
    net.nodes[1].engine.initiate(net.now, HUB);
    net.run(5 * SECOND);
    let (h0, s0) = (net.take_events(0), net.take_events(1));
    let (old_h, old_s) = (child_ups(&h0)[0].inbound.spi, child_ups(&s0)[0].inbound.spi);
    let now = net.now;
    net.nodes[1].engine.rekey_child(now, HUB);
    // Immediately, not after the 30 s back-off of a failed rekey.
    net.run(SECOND);
    let (h, s) = (net.take_events(0), net.take_events(1));
    assert!(
        !s.iter().any(|e| matches!(e, Event::ChildSaFailed { .. })),
        "{s:?}"
    );
    let (up_h, up_s) = (child_ups(&h), child_ups(&s));
    assert_eq!((up_h.len(), up_s.len()), (1, 1), "{s:?}");
    assert_eq!(up_s[0].replaces, Some(old_s));
    assert_eq!(up_h[0].replaces, Some(old_h));
    pair_works(up_h[0], up_s[0]);
    assert_eq!(net.node(0).engine.counters().invalid_ke_sent, 1);
    // The successor remembers the group: its rekey needs one exchange.
    net.run(10 * SECOND);
    let now = net.now;
    net.nodes[1].engine.rekey_child(now, HUB);
    net.run(SECOND);
    let (h, s) = (net.take_events(0), net.take_events(1));
    pair_works(child_ups(&h)[0], child_ups(&s)[0]);
    let hub = net.node(0).engine.counters();
    assert_eq!(hub.invalid_ke_sent, 1);
    assert_eq!(hub.received.get(ExchangeType::CreateChildSa), 3);
}

#[test]
fn initial_contact_from_a_restarted_spoke_clears_its_stale_sas() {
    let mut net = established(600);
    net.take_events(0);
    net.take_events(1);
    let stale = net.node(0).engine.ike_sas()[0].clone();
    // The spoke reboots: a new engine on the same address, no state.
    let cfg = quiet(config(SPOKE, b"secret"));
    net.nodes[1].engine = Engine::new(cfg, Box::new(SeededRandom(6060)), net.now).unwrap();
    let now = net.now;
    net.nodes[1].engine.initiate(now, HUB);
    net.run(5 * SECOND);
    let h = net.take_events(0);
    let (hs, ss) = (net.node(0).engine.ike_sas(), net.node(1).engine.ike_sas());
    assert_eq!((hs.len(), ss.len()), (1, 1), "{hs:?}");
    assert_eq!((hs[0].spi_i, hs[0].spi_r), (ss[0].spi_i, ss[0].spi_r));
    assert!(h.iter().any(|e| matches!(e, Event::IkeSaDown { spi_i, reason: DownReason::DeletedByPeer, .. } if *spi_i == stale.spi_i)), "{h:?}");
    assert!(h.iter().any(|e| matches!(e, Event::ChildSaDown { inbound_spi, .. } if *inbound_spi == stale.children[0].0)), "{h:?}");
    let s = net.take_events(1);
    pair_works(child_ups(&h)[0], child_ups(&s)[0]);
    // Simultaneous fresh initiations both carry INITIAL_CONTACT; neither clears the other,
    // which came up after it began: the nonce rule keeps one.
    let now = net.now;
    net.nodes[0].engine.delete(now, SPOKE);
    net.run(2 * SECOND);
    let now = net.now;
    net.nodes[0].engine.initiate(now, SPOKE);
    net.nodes[1].engine.initiate(now, HUB);
    net.run(10 * SECOND);
    let (hs, ss) = (net.node(0).engine.ike_sas(), net.node(1).engine.ike_sas());
    assert_eq!((hs.len(), ss.len()), (1, 1), "{hs:?} {ss:?}");
    assert_eq!((hs[0].spi_i, hs[0].spi_r), (ss[0].spi_i, ss[0].spi_r));
}

#[test]
fn key_log_keeps_the_last_entries() {
    let mut hub = config(HUB, b"s");
    hub.key_log_ike_sas = 2;
    hub.key_log_esp_sas = 4;
    let mut net = Net::pair_with(700, quiet(hub), quiet(config(SPOKE, b"s")));
    net.nodes[1].engine.initiate(net.now, HUB);
    net.run(5 * SECOND);
    for _ in 0..3 {
        let now = net.now;
        net.nodes[1].engine.rekey_child(now, HUB);
        net.nodes[1].engine.rekey_ike(now, HUB);
        net.run(10 * SECOND);
    }
    let (h, s) = (net.node(0).engine.key_log(), net.node(1).engine.key_log());
    // 4 IKE SAs and 4 CHILD_SAs came up: the spoke (default limits) logged them all.
    assert_eq!((s.ike_sas.len(), s.esp_sas.len()), (4, 8));
    assert_eq!((h.ike_sas.len(), h.esp_sas.len()), (2, 4));
    // The hub kept the newest ones.
    let tail = |v: Vec<u32>| v[v.len() - 4..].to_vec();
    let mut hub_spis: Vec<u32> = h.esp_sas.iter().map(|k| k.spi).collect();
    let mut spoke_last: Vec<u32> = tail(s.esp_sas.iter().map(|k| k.spi).collect());
    hub_spis.sort();
    spoke_last.sort();
    assert_eq!(hub_spis, spoke_last);
    let spoke_ike: Vec<u64> = s.ike_sas.iter().map(|k| k.spi_i).collect();
    let hub_ike: Vec<u64> = h.ike_sas.iter().map(|k| k.spi_i).collect();
    assert_eq!(hub_ike, spoke_ike[2..]);
}
