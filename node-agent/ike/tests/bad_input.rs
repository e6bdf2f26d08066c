//! Hostile input: malformed, unauthenticated, replayed and out-of-window messages are
//! dropped and counted by reason and change nothing; a flood of spoofed IKE_SA_INIT requests
//! is met with cookies, not memory.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use common::*;
use dmvpn_ike::{DropReason, Event};

const SECOND: Duration = Duration::from_secs(1);

fn hub_4500() -> SocketAddr {
    SocketAddr::new(HUB, 4500)
}

#[test]
fn tampered_replayed_and_out_of_window_messages_change_nothing() {
    let mut net = Net::pair(60);
    net.nodes[1].engine.initiate(net.now, HUB);
    net.run(5 * SECOND);
    net.take_events(0);
    // The spoke's IKE_AUTH request as it reached the hub.
    let auth = net
        .trace
        .iter()
        .find(|w| w.dst == hub_4500())
        .unwrap()
        .clone();
    let before = net.node(0).engine.ike_sas();
    let now = net.now;
    let hub = &mut net.nodes[0].engine;
    // Replayed: answered from the cache, not processed.
    hub.handle_datagram(now, hub_4500(), auth.src, &auth.payload);
    assert_eq!(hub.counters().responses_replayed, 1);
    // Tampered ciphertext: ICV failure.
    let mut bad = auth.payload.clone();
    let n = bad.len();
    bad[n - 20] ^= 0x80;
    hub.handle_datagram(now, hub_4500(), auth.src, &bad);
    assert_eq!(hub.counters().dropped(DropReason::IntegrityCheckFailed), 1);
    // A message ID from the future.
    let mut future = auth.payload.clone();
    future[4 + 20..4 + 24].copy_from_slice(&9u32.to_be_bytes());
    hub.handle_datagram(now, hub_4500(), auth.src, &future);
    assert_eq!(hub.counters().dropped(DropReason::InvalidMessageId), 1);
    // Unknown SPI, garbage, truncation, wrong version, no marker on 4500.
    let mut unknown = auth.payload.clone();
    unknown[4] ^= 1;
    hub.handle_datagram(now, hub_4500(), auth.src, &unknown);
    hub.handle_datagram(now, hub_4500(), auth.src, &[0, 0, 0, 0, 1, 2, 3]);
    hub.handle_datagram(now, hub_4500(), auth.src, &auth.payload[..40]);
    let mut v3 = auth.payload.clone();
    v3[4 + 17] = 0x30;
    hub.handle_datagram(now, hub_4500(), auth.src, &v3);
    hub.handle_datagram(now, hub_4500(), auth.src, &auth.payload[4..]);
    let c = hub.counters();
    assert_eq!(c.dropped(DropReason::UnknownSpi), 1);
    assert_eq!(c.dropped(DropReason::Malformed), 2);
    assert_eq!(c.dropped(DropReason::UnsupportedVersion), 1);
    assert_eq!(c.dropped(DropReason::NotIke), 1);
    assert_eq!(hub.ike_sas(), before);
    let mut drops = 0;
    while let Some(e) = net.nodes[0].engine.poll_event() {
        drops += usize::from(matches!(e, Event::Dropped { .. }));
    }
    assert_eq!(drops as u64, net.node(0).engine.counters().dropped_total());
    for r in DropReason::ALL {
        assert!(
            !r.as_str().is_empty()
                && r.as_str()
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c == '_')
        );
    }
    // The SA still works: a CHILD_SA rekey goes through.
    let now = net.now;
    net.nodes[1].engine.rekey_child(now, HUB);
    net.run(10 * SECOND);
    assert_eq!(child_ups(&net.take_events(0)).len(), 1);
}

#[test]
fn spoofed_init_flood_keeps_half_open_bounded() {
    let mut net = Net::pair(61);
    // One genuine IKE_SA_INIT request as a template.
    net.nodes[1].engine.initiate(net.now, HUB);
    let template = net.nodes[1].engine.poll_transmit().unwrap().payload;
    let now = net.now;
    let hub = &mut net.nodes[0].engine;
    let threshold = hub.config().cookie_threshold as u64;
    for i in 0..100_000u32 {
        let mut m = template.clone();
        m[..4].copy_from_slice(&i.to_be_bytes());
        let src = SocketAddr::new(IpAddr::V4(Ipv4Addr::from(0xc612_0000 + i)), 500);
        hub.handle_datagram(now, SocketAddr::new(HUB, 500), src, &m);
        while hub.poll_transmit().is_some() {}
        while hub.poll_event().is_some() {}
    }
    let c = hub.counters();
    assert_eq!(c.half_open, threshold);
    assert_eq!(c.ike_sas, threshold);
    assert_eq!(c.cookies_sent, 100_000 - threshold);
    // The half-open SAs time out.
    hub.handle_timeout(now + 31 * SECOND);
    assert_eq!(hub.counters().half_open, 0);
    assert!(hub.ike_sas().is_empty());
}

#[test]
fn stale_cookie_is_answered_with_a_fresh_one() {
    let mut hub = config(HUB, b"s");
    hub.cookie_threshold = 0;
    hub.cookie_secret_lifetime = SECOND;
    let mut net = Net::pair_with(62, hub, config(SPOKE, b"s"));
    net.nodes[1].engine.initiate(net.now, HUB);
    let init = net.nodes[1].engine.poll_transmit().unwrap();
    let now = net.now;
    let h = &mut net.nodes[0].engine;
    h.handle_datagram(now, init.remote, init.local, &init.payload);
    let cookie_answer = h.poll_transmit().unwrap();
    // The spoke sends the cookie back; a forged copy and a stale one are refused.
    let spoke = &mut net.nodes[1].engine;
    spoke.handle_datagram(now, init.local, init.remote, &cookie_answer.payload);
    let with_cookie = spoke.poll_transmit().unwrap();
    let mut bad = with_cookie.payload.clone();
    bad[28 + 8 + 5] ^= 0xff; // inside the cookie data (after the Notify header)
    let h = &mut net.nodes[0].engine;
    h.handle_datagram(now, init.remote, init.local, &bad);
    assert_eq!(h.counters().dropped(DropReason::InvalidCookie), 1);
    assert_eq!(h.counters().half_open, 0);
    assert_eq!(h.counters().cookies_sent, 2, "answered with a fresh cookie");
    h.handle_timeout(now + 3 * SECOND);
    h.handle_timeout(now + 6 * SECOND);
    h.handle_datagram(
        now + 6 * SECOND,
        init.remote,
        init.local,
        &with_cookie.payload,
    );
    assert_eq!(
        h.counters().half_open,
        0,
        "two rotations later the cookie is stale"
    );
    assert_eq!(h.counters().dropped(DropReason::InvalidCookie), 2);
}
