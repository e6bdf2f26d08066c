//! The two ways to drain the transmit queue: `poll_transmit` (a fresh buffer per packet) and
//! `poll_transmit_into` (the driver's reused buffer) give the same packets in the same order,
//! also when packets are queued while others still wait.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod sim;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use dmvpn_nhrp::{Engine, NhsConfig, SplitMix64};
use sim::seed;

/// Spoke 2 of the seed topology with a second NHS, so that it starts with two registrations.
fn spoke(now: Instant) -> Engine {
    let mut c = seed::spoke_config(2, seed::spoke_nbma(2), Some(b"secret"));
    c.nhs.push(NhsConfig {
        tunnel: Ipv4Addr::new(10, 1, 1, 254).into(),
        nbma: Ipv4Addr::new(198, 18, 0, 254).into(),
        priority: 0,
    });
    Engine::new(c, Box::new(SplitMix64(7)), now).unwrap()
}

#[test]
fn into_a_reused_buffer_gives_the_same_packets() {
    let now = Instant::now();
    let (mut fresh, mut reused) = (spoke(now), spoke(now));
    fresh.handle_timeout(now);
    reused.handle_timeout(now);
    let mut sent: Vec<(IpAddr, Vec<u8>)> = Vec::new();
    let mut got: Vec<(IpAddr, Vec<u8>)> = Vec::new();
    let mut buf = vec![0xa5; 3];
    // One of the two registrations, then a resolution queued behind the other.
    let t = fresh.poll_transmit().unwrap();
    sent.push((t.dst, t.payload));
    let dst = reused.poll_transmit_into(&mut buf).unwrap();
    got.push((dst, buf.clone()));
    let target = Ipv4Addr::new(192, 168, 3, 1).into();
    fresh.resolve(now, target);
    reused.resolve(now, target);
    while let Some(t) = fresh.poll_transmit() {
        sent.push((t.dst, t.payload));
    }
    while let Some(dst) = reused.poll_transmit_into(&mut buf) {
        got.push((dst, buf.clone()));
    }
    assert_eq!(sent.len(), 3);
    assert_eq!(got, sent);
    // The packets are whole NHRP messages: registration, registration, resolution.
    let ops: Vec<u8> = got.iter().map(|(_, p)| p[17]).collect();
    assert_eq!(ops, [3, 3, 1]);
    // Nothing waits: the buffer is left as it was.
    let before = buf.clone();
    assert_eq!(reused.poll_transmit_into(&mut buf), None);
    assert_eq!(buf, before);
}
