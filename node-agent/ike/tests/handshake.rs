//! IKE_SA_INIT + IKE_AUTH between two engines on the simulated network: every proposal,
//! transport mode and the tunnel fallback, INVALID_KE retry, cookies, refusals, NAT,
//! retransmission and response replay, determinism, and 1000 peers on one responder.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use dmvpn_ike::{DropReason, Event, FailReason, Identity, Mode};
use dmvpn_wire::ikev2::{ExchangeType, NotifyType};

const SECOND: Duration = Duration::from_secs(1);

fn up(net: &mut Net) -> (dmvpn_ike::ChildSaUp, dmvpn_ike::ChildSaUp) {
    net.nodes[1].engine.initiate(net.now, HUB);
    net.run(5 * SECOND);
    let hub = net.take_events(0);
    let spoke = net.take_events(1);
    assert_eq!(ike_ups(&hub), 1, "{hub:?}");
    assert_eq!(ike_ups(&spoke), 1, "{spoke:?}");
    let (h, s) = (child_ups(&hub), child_ups(&spoke));
    assert_eq!((h.len(), s.len()), (1, 1), "{hub:?} {spoke:?}");
    pair_works(h[0], s[0]);
    (h[0].clone(), s[0].clone())
}

#[test]
fn every_proposal_and_esp_algorithm() {
    let ike = [
        "aes256gcm16-prfsha384-x25519",
        "aes128gcm16-prfsha256-ecp256",
        "chacha20poly1305-prfsha512-ecp384",
    ];
    let esp = ["aes256gcm16", "aes128gcm16", "chacha20poly1305-esn"];
    for (i, p) in ike.iter().enumerate() {
        for (j, e) in esp.iter().enumerate() {
            let hub = config(HUB, b"secret").with_proposals(&[p], &[e]).unwrap();
            let spoke = config(SPOKE, b"secret").with_proposals(&[p], &[e]).unwrap();
            let mut net = Net::pair_with((i * 3 + j) as u64, hub, spoke);
            let (h, s) = up(&mut net);
            assert_eq!(s.mode, Mode::Transport);
            assert!(s.udp_encap && h.udp_encap);
            assert_eq!(s.remote.port(), 4500);
            assert_eq!(
                s.inbound.algorithm,
                net.node(1).engine.config().esp_proposals[0].encryption[0]
            );
            let sas = net.node(0).engine.ike_sas();
            assert_eq!(sas.len(), 1);
            assert!(sas[0].established && sas[0].udp_encap);
        }
    }
}

#[test]
fn identities_are_the_underlay_addresses_or_configured() {
    let mut net = Net::pair(1);
    net.nodes[1].engine.initiate(net.now, HUB);
    net.run(5 * SECOND);
    let ev = net.take_events(0);
    let id = ev
        .iter()
        .find_map(|e| {
            if let Event::IkeSaUp { identity, .. } = e {
                Some(identity.clone())
            } else {
                None
            }
        })
        .unwrap();
    assert_eq!(id, Identity::address(SPOKE));

    let mut spoke = config(SPOKE, b"x");
    spoke.identity = Some(Identity::fqdn("spoke1.example"));
    let mut hub_auth = dmvpn_ike::PskAuthenticator::default();
    hub_auth
        .by_identity
        .insert(Identity::fqdn("spoke1.example"), dmvpn_ike::Psk::new(b"x"));
    let mut hub = config(HUB, b"unused");
    hub.authenticator = std::sync::Arc::new(hub_auth);
    let mut net = Net::pair_with(2, hub, spoke);
    // The hub signs with the key of the spoke's identity; the spoke checks with its default.
    net.nodes[1].engine.initiate(net.now, HUB);
    net.run(5 * SECOND);
    let ev = net.take_events(0);
    let id = ev
        .iter()
        .find_map(|e| {
            if let Event::IkeSaUp { identity, .. } = e {
                Some(identity.clone())
            } else {
                None
            }
        })
        .unwrap();
    assert_eq!(id.to_string(), "spoke1.example");
}

#[test]
fn tunnel_mode_when_the_responder_does_not_confirm_transport() {
    let mut hub = config(HUB, b"secret");
    hub.allow_transport = false;
    let mut net = Net::pair_with(3, hub, config(SPOKE, b"secret"));
    let (h, s) = up(&mut net);
    assert_eq!((h.mode, s.mode), (Mode::Tunnel, Mode::Tunnel));
    // And tunnel requested, tunnel answered.
    let mut spoke = config(SPOKE, b"secret");
    spoke.mode = Mode::Tunnel;
    let mut net = Net::pair_with(4, config(HUB, b"secret"), spoke);
    let (h, s) = up(&mut net);
    assert_eq!((h.mode, s.mode), (Mode::Tunnel, Mode::Tunnel));
}

#[test]
fn gre_host_to_host_selectors() {
    let mut net = Net::pair(5);
    let (h, s) = up(&mut net);
    let gre = |a| dmvpn_ike::ts::Selector::host(a, 47);
    assert_eq!(s.ts_local, [gre(SPOKE)]);
    assert_eq!(s.ts_remote, [gre(HUB)]);
    assert_eq!(h.ts_local, [gre(HUB)]);
    assert_eq!(h.ts_remote, [gre(SPOKE)]);
}

#[test]
fn invalid_ke_payload_retry_with_the_responders_group() {
    let hub = config(HUB, b"secret")
        .with_proposals(&["aes256gcm16-prfsha256-ecp256"], &["aes256gcm16"])
        .unwrap();
    let spoke = config(SPOKE, b"secret")
        .with_proposals(&["aes256gcm16-prfsha256-x25519-ecp256"], &["aes256gcm16"])
        .unwrap();
    let mut net = Net::pair_with(6, hub, spoke);
    up(&mut net);
    assert_eq!(net.node(0).engine.counters().invalid_ke_sent, 1);
    // No group in common: NO_PROPOSAL_CHOSEN rather than INVALID_KE_PAYLOAD.
    let hub = config(HUB, b"secret")
        .with_proposals(&["aes256gcm16-prfsha256-x25519-ecp384"], &["aes256gcm16"])
        .unwrap();
    let spoke = config(SPOKE, b"secret")
        .with_proposals(&["aes256gcm16-prfsha256-ecp256"], &["aes256gcm16"])
        .unwrap();
    let mut net = Net::pair_with(7, hub, spoke);
    net.nodes[1].engine.initiate(net.now, HUB);
    net.run(5 * SECOND);
    let ev = net.take_events(1);
    assert!(
        ev.iter().any(|e| matches!(
            e,
            Event::IkeSaFailed {
                reason: FailReason::PeerRefused(NotifyType::NoProposalChosen),
                ..
            }
        )),
        "{ev:?}"
    );
}

#[test]
fn cookie_challenge() {
    let mut hub = config(HUB, b"secret");
    hub.cookie_threshold = 0;
    let mut net = Net::pair_with(8, hub, config(SPOKE, b"secret"));
    up(&mut net);
    let c = net.node(0).engine.counters();
    assert_eq!(c.cookies_sent, 1);
    assert_eq!(c.half_open, 0);
    // The second IKE_SA_INIT carried the cookie first (RFC 7296 section 2.6).
    let inits: Vec<_> = net
        .trace
        .iter()
        .filter(|w| w.dst.ip() == HUB && w.dst.port() == 500)
        .collect();
    assert_eq!(inits.len(), 2);
    let p = dmvpn_wire::ikev2::Packet::new_checked(&inits[1].payload[..]).unwrap();
    assert_eq!(p.next_payload(), dmvpn_wire::ikev2::PayloadType::Notify);
}

#[test]
fn wrong_psk_fails_on_both_sides_without_sa() {
    let mut net = Net::pair_with(9, config(HUB, b"secret"), config(SPOKE, b"wrong"));
    net.nodes[1].engine.initiate(net.now, HUB);
    net.run(5 * SECOND);
    let (h, s) = (net.take_events(0), net.take_events(1));
    assert!(
        h.iter().any(|e| matches!(
            e,
            Event::IkeSaFailed {
                reason: FailReason::AuthenticationFailed,
                ..
            }
        )),
        "{h:?}"
    );
    assert!(
        s.iter().any(|e| matches!(
            e,
            Event::IkeSaFailed {
                reason: FailReason::PeerRefused(NotifyType::AuthenticationFailed),
                ..
            }
        )),
        "{s:?}"
    );
    assert_eq!(ike_ups(&h) + ike_ups(&s), 0);
    assert!(child_ups(&h).is_empty() && child_ups(&s).is_empty());
    assert!(net.node(0).engine.ike_sas().is_empty() && net.node(1).engine.ike_sas().is_empty());
    assert_eq!(
        net.node(0)
            .engine
            .counters()
            .dropped(DropReason::AuthenticationFailed),
        1
    );
    assert_eq!(net.node(0).engine.counters().half_open, 0);
}

#[test]
fn no_proposal_chosen_for_ike_and_for_esp() {
    let hub = config(HUB, b"s")
        .with_proposals(&["aes128gcm16-prfsha256-x25519"], &["aes256gcm16"])
        .unwrap();
    let spoke = config(SPOKE, b"s")
        .with_proposals(&["aes256gcm16-prfsha256-x25519"], &["aes256gcm16"])
        .unwrap();
    let mut net = Net::pair_with(10, hub, spoke);
    net.nodes[1].engine.initiate(net.now, HUB);
    net.run(5 * SECOND);
    let s = net.take_events(1);
    assert!(
        s.iter().any(|e| matches!(
            e,
            Event::IkeSaFailed {
                reason: FailReason::PeerRefused(NotifyType::NoProposalChosen),
                ..
            }
        )),
        "{s:?}"
    );
    assert!(
        net.node(0).engine.ike_sas().is_empty(),
        "the refusal is stateless"
    );

    let hub = config(HUB, b"s")
        .with_proposals(&["aes256gcm16-prfsha256-x25519"], &["chacha20poly1305"])
        .unwrap();
    let mut net = Net::pair_with(11, hub, config(SPOKE, b"s"));
    net.nodes[1].engine.initiate(net.now, HUB);
    net.run(5 * SECOND);
    let (h, s) = (net.take_events(0), net.take_events(1));
    assert_eq!(
        (ike_ups(&h), ike_ups(&s)),
        (1, 1),
        "the IKE SA stays up (RFC 7296 section 2.21.2)"
    );
    for ev in [&h, &s] {
        assert!(
            ev.iter().any(|e| matches!(
                e,
                Event::ChildSaFailed {
                    notify: NotifyType::NoProposalChosen,
                    ..
                }
            )),
            "{ev:?}"
        );
        assert!(child_ups(ev).is_empty());
    }
}

#[test]
fn ts_unacceptable() {
    let mut hub = config(HUB, b"s");
    hub.ts_remote_allowed = vec![dmvpn_ike::ts::Selector::host(
        "198.18.99.99".parse().unwrap(),
        47,
    )];
    let mut net = Net::pair_with(12, hub, config(SPOKE, b"s"));
    net.nodes[1].engine.initiate(net.now, HUB);
    net.run(5 * SECOND);
    let (h, s) = (net.take_events(0), net.take_events(1));
    assert_eq!((ike_ups(&h), ike_ups(&s)), (1, 1));
    for ev in [&h, &s] {
        assert!(
            ev.iter().any(|e| matches!(
                e,
                Event::ChildSaFailed {
                    notify: NotifyType::TsUnacceptable,
                    ..
                }
            )),
            "{ev:?}"
        );
    }
}

#[test]
fn lost_response_is_retransmitted_and_replayed() {
    let mut net = Net::pair(13);
    let mut dropped = false;
    // Lose the first IKE_AUTH response.
    net.filter = Some(Box::new(move |w| {
        if !dropped
            && w.src.ip() == HUB
            && w.src.port() == 4500
            && w.payload.len() > 4 + 28
            && w.payload[4 + 18] == 35
        {
            dropped = true;
            return true;
        }
        false
    }));
    up(&mut net);
    assert_eq!(net.node(1).engine.counters().retransmissions, 1);
    assert_eq!(net.node(0).engine.counters().responses_replayed, 1);
    assert_eq!(
        net.node(0)
            .engine
            .counters()
            .received
            .get(ExchangeType::IkeAuth),
        1,
        "the retransmission is not processed again"
    );
}

#[test]
fn lossy_network_converges_and_is_deterministic() {
    let run = |seed| {
        let mut net = Net::pair(seed);
        net.loss = 200;
        net.dup = 200;
        net.reorder = 300;
        net.nodes[1].engine.initiate(net.now, HUB);
        net.run(60 * SECOND);
        let (h, s) = (net.take_events(0), net.take_events(1));
        (
            ike_ups(&h),
            ike_ups(&s),
            child_ups(&h).len(),
            hash_trace(&net.trace),
        )
    };
    for seed in 20..30 {
        let a = run(seed);
        assert_eq!((a.0, a.1, a.2), (1, 1, 1), "seed {seed}");
        assert_eq!(a, run(seed), "same seed, same bytes on the wire");
    }
    assert_ne!(run(20).3, run(21).3);
}

#[test]
fn nat_is_detected_and_the_spoke_keeps_it_open() {
    let mut hub = config(HUB, b"s");
    hub.udp_encap = dmvpn_ike::UdpEncap::Auto;
    let mut spoke = config(SPOKE, b"s");
    spoke.udp_encap = dmvpn_ike::UdpEncap::Auto;
    let mut net = Net::pair_with(14, hub, spoke);
    net.natted = Some(1);
    let (h, s) = up(&mut net);
    assert_eq!(
        h.remote,
        "198.19.7.7:24500".parse().unwrap(),
        "the hub answers the NAT's mapping"
    );
    assert!(h.udp_encap && s.udp_encap);
    net.run(65 * SECOND);
    assert!(net.node(1).engine.counters().keepalives_sent >= 3);
    assert_eq!(
        net.node(0).engine.counters().keepalives_sent,
        0,
        "the hub is not behind a NAT"
    );
    assert!(net.node(0).engine.counters().keepalives_received >= 3);
    // Without a NAT and without forced encapsulation, everything stays on port 500.
    let mut hub = config(HUB, b"s");
    hub.udp_encap = dmvpn_ike::UdpEncap::Auto;
    let mut spoke = config(SPOKE, b"s");
    spoke.udp_encap = dmvpn_ike::UdpEncap::Auto;
    let mut net = Net::pair_with(15, hub, spoke);
    let (h, s) = up(&mut net);
    assert!(!h.udp_encap && !s.udp_encap);
    let mut net = Net::pair(16);
    net.natted = Some(1);
    let (h, _) = up(&mut net);
    let nat = net.take_events(0);
    assert!(h.udp_encap && nat.is_empty());
}

#[test]
fn a_thousand_spokes_on_one_hub() {
    let mut net = Net::new(17);
    net.add(config(HUB, b"s"), 99);
    for i in 0..1000 {
        net.add(config(spoke_addr(i), b"s"), 1000 + u64::from(i));
    }
    for i in 1..=1000 {
        let now = net.now;
        net.nodes[i].engine.initiate(now, HUB);
    }
    net.run(30 * SECOND);
    let hub = net.take_events(0);
    assert_eq!(ike_ups(&hub), 1000);
    assert_eq!(child_ups(&hub).len(), 1000);
    let c = net.node(0).engine.counters();
    assert_eq!(c.half_open, 0);
    assert!(
        c.cookies_sent > 0,
        "more than 64 half-open at once: cookies"
    );
    for i in 1..=1000 {
        let ev = net.take_events(i);
        assert_eq!(child_ups(&ev).len(), 1, "spoke {i}");
    }
}

#[test]
fn event_debug_never_shows_keys() {
    let mut net = Net::pair(18);
    let (h, _) = up(&mut net);
    let key_hex: String = h
        .inbound
        .key
        .expose()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let dbg = format!("{h:?}");
    assert!(dbg.contains("redacted"));
    assert!(!dbg.contains(&key_hex[..16]));
    assert!(!dbg.contains(&format!("{:?}", &h.inbound.key.expose()[..4])));
    let log = format!("{:?}", net.node(0).engine.key_log());
    assert!(!log.contains(&key_hex[..16]));
}
