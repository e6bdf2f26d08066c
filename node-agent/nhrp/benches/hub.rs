//! Hub (NHS) throughput on one core and memory per registered spoke, the quantities of the
//! NHRP engine's performance goal (at least 500,000 messages/s, under 1 KiB per spoke).
//!
//! Method: 20,000 spoke engines (tunnel 10.1.0.k/16, one /24 site prefix each, cleartext
//! authentication) build their real Registration Request (RFC 2332 section 5.2.3: host CIE,
//! site prefix CIE, nhrpd's five extensions) and a Resolution Request (section 5.2.1) for
//! another spoke's LAN. Each benchmark iteration feeds all 20,000 packets of one kind to the
//! hub, single-threaded; a packet's cost is its parse, checksum and authentication check, the
//! cache work, the reply's emission and draining the engine's queues as a driver does (each
//! reply copied into one reused send buffer by `poll_transmit_into`, events popped).
//! Criterion reports elements/s = messages/s:
//! - `registration_new`: registrations into an empty hub (40,000 new cache entries);
//! - `registration_refresh`: every spoke refreshes its registration on a loaded hub, each
//!   round a second after the previous, so every entry gets a new expiry;
//! - `resolution`: resolution requests answered from the cache of the loaded hub (20,000
//!   spokes, 40,001 entries).
//!
//! Memory per spoke is the growth of the resident set (`/proc/self/statm`) while the 20,000
//! spokes register, divided by 20,000, printed once before the benchmarks.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use dmvpn_nhrp::{Config, Engine, NhsConfig, Password, Prefix, Role, SplitMix64};

const SPOKES: u32 = 20_000;
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

/// (source NBMA, registration request, resolution request) of each spoke.
fn packets(now: Instant) -> Vec<(IpAddr, Vec<u8>, Vec<u8>)> {
    (1..=SPOKES)
        .map(|k| {
            let mut s = spoke(k, now);
            s.handle_timeout(now);
            let reg = s.poll_transmit().unwrap().payload;
            let peer = 1 + (k * 7919) % SPOKES;
            let target = offset(Ipv4Addr::new(10, 128, 0, 0), peer * 256 + 5);
            s.resolve(now, target.into());
            let res = s.poll_transmit().unwrap().payload;
            (offset(HUB_NBMA, k).into(), reg, res)
        })
        .collect()
}

/// Hands `bytes` to the hub and drains its queues as a driver does, sending each packet
/// from the one reused buffer `out`.
fn feed(hub: &mut Engine, out: &mut Vec<u8>, now: Instant, from: IpAddr, bytes: &[u8]) {
    hub.handle_packet(now, from, bytes);
    while let Some(dst) = hub.poll_transmit_into(out) {
        black_box((dst, &out[..]));
    }
    while let Some(e) = hub.poll_event() {
        black_box(e);
    }
}

fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

fn bench(c: &mut Criterion) {
    let now = Instant::now();
    let packets = packets(now);
    let mut out = Vec::with_capacity(2048);

    // Memory per registered spoke (two cache entries each: tunnel address and LAN).
    let before = rss_bytes();
    let mut loaded = hub(now);
    for (from, reg, _) in &packets {
        feed(&mut loaded, &mut out, now, *from, reg);
    }
    if let (Some(b), Some(a)) = (before, rss_bytes()) {
        println!(
            "hub memory: {} registered spokes ({} cache entries), RSS +{} KiB = {} bytes per spoke",
            SPOKES,
            loaded.cache().len(),
            a.saturating_sub(b) / 1024,
            a.saturating_sub(b) / u64::from(SPOKES)
        );
    }

    let mut g = c.benchmark_group("hub");
    g.throughput(Throughput::Elements(u64::from(SPOKES)));
    g.sample_size(10);
    g.bench_function("registration_new", |b| {
        b.iter_batched(
            || hub(now),
            |mut h| {
                for (from, reg, _) in &packets {
                    feed(&mut h, &mut out, now, *from, reg);
                }
                h
            },
            BatchSize::LargeInput,
        );
    });
    // Each round of refreshes comes a second after the previous one, as refreshes do: every
    // entry then gets a new expiry, which the cache must reorder.
    let mut refreshed = now;
    g.bench_function("registration_refresh", |b| {
        b.iter(|| {
            refreshed += Duration::from_secs(1);
            for (from, reg, _) in &packets {
                feed(&mut loaded, &mut out, refreshed, *from, reg);
            }
        });
    });
    g.bench_function("resolution", |b| {
        b.iter(|| {
            for (from, _, res) in &packets {
                feed(&mut loaded, &mut out, refreshed, *from, res);
            }
        });
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
