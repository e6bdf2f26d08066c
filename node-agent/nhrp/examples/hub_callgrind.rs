//! A harness for counting the instructions the hub (NHS) spends per message, for
//! `valgrind --tool=callgrind`: instruction counts stay stable on a shared machine where the
//! criterion bench (`benches/hub.rs`, same spokes and packets) is noisy.
//!
//! ```text
//! cargo build --profile bench -p dmvpn-nhrp --example hub_callgrind
//! valgrind --tool=callgrind --callgrind-out-file=hub.cg --toggle-collect='*hub_callgrind*measure*' \
//!     target/release/examples/hub_callgrind new 5000       # or refresh, resolution
//! ```
//!
//! `measure` feeds each of the N spokes' packets once (Registration Requests of RFC 2332
//! section 5.2.3, or Resolution Requests of section 5.2.1) and drains the hub's queues as a
//! driver does, so the collected count divided by N is the cost of one message.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use dmvpn_nhrp::{Config, Engine, NhsConfig, Password, Prefix, Role, SplitMix64};

const HUB: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 1);
const HUB_NBMA: Ipv4Addr = Ipv4Addr::new(100, 64, 0, 1);

fn offset(base: Ipv4Addr, by: u32) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(base) + by)
}

fn password() -> Option<Password> {
    Some(Password::new(b"bench").unwrap())
}

fn hub(now: Instant) -> Engine {
    let mut c = Config::new(Role::Hub, HUB.into(), 16, HUB_NBMA.into());
    c.password = password();
    c.redirect = true;
    Engine::new(c, Box::new(SplitMix64(1)), now).unwrap()
}

fn spoke(k: u32, now: Instant) -> Engine {
    let mut c = Config::new(
        Role::Spoke,
        offset(HUB, k).into(),
        16,
        offset(HUB_NBMA, k).into(),
    );
    c.password = password();
    c.nhs.push(NhsConfig {
        tunnel: HUB.into(),
        nbma: HUB_NBMA.into(),
        priority: 0,
    });
    let lan = offset(Ipv4Addr::new(10, 128, 0, 0), k * 256);
    c.advertised_prefixes
        .push(Prefix::new(lan.into(), 24).unwrap());
    Engine::new(c, Box::new(SplitMix64(u64::from(k))), now).unwrap()
}

/// (source NBMA, registration request, resolution request) of each of `n` spokes.
fn packets(n: u32, now: Instant) -> Vec<(IpAddr, Vec<u8>, Vec<u8>)> {
    (1..=n)
        .map(|k| {
            let mut s = spoke(k, now);
            s.handle_timeout(now);
            let reg = s.poll_transmit().unwrap().payload;
            let peer = 1 + (k * 7919) % n;
            let target = offset(Ipv4Addr::new(10, 128, 0, 0), peer * 256 + 5);
            s.resolve(now, target.into());
            let res = s.poll_transmit().unwrap().payload;
            (offset(HUB_NBMA, k).into(), reg, res)
        })
        .collect()
}

/// Hands `bytes` to the hub and drains its queues as a driver does.
fn feed(hub: &mut Engine, out: &mut Vec<u8>, now: Instant, from: IpAddr, bytes: &[u8]) {
    hub.handle_packet(now, from, bytes);
    while let Some(dst) = hub.poll_transmit_into(out) {
        black_box((dst, &out[..]));
    }
    while let Some(e) = hub.poll_event() {
        black_box(e);
    }
}

/// Feeds every spoke's registration (`reg`) or resolution request once: the measured part.
#[inline(never)]
fn measure(
    hub: &mut Engine,
    out: &mut Vec<u8>,
    now: Instant,
    packets: &[(IpAddr, Vec<u8>, Vec<u8>)],
    reg: bool,
) {
    for (from, r, q) in packets {
        feed(hub, out, now, *from, if reg { r } else { q });
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let what = args.next().unwrap_or_else(|| "new".into());
    let n: u32 = args.next().map_or(5000, |s| s.parse().unwrap());
    let now = Instant::now();
    let packets = packets(n, now);
    let mut out = Vec::with_capacity(2048);
    let mut h = hub(now);
    if what != "new" {
        for (from, reg, _) in &packets {
            feed(&mut h, &mut out, now, *from, reg);
        }
    }
    let later = now + Duration::from_secs(1);
    match what.as_str() {
        "new" => measure(&mut h, &mut out, now, &packets, true),
        "refresh" => measure(&mut h, &mut out, later, &packets, true),
        _ => measure(&mut h, &mut out, later, &packets, false),
    }
    black_box(h);
}
