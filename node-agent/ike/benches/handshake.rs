//! Criterion benchmark of full handshakes (IKE_SA_INIT + IKE_AUTH with PSK, X25519,
//! AES-256-GCM, and the first CHILD_SA) between two in-memory engines on one core: issue 4's
//! goal is at least 5,000 per second. Diffie-Hellman keys come from the seeded RNG through
//! ring's fixed-slice RNG (feature `deterministic`), the same X25519 arithmetic as production.
//!
//! `cargo bench -p dmvpn-ike -- --warm-up-time 1 --measurement-time 5`
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Instant;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use dmvpn_ike::crypto::dh::{Group, KeyPair};
use dmvpn_ike::{Config, Engine, Event, PskAuthenticator, SeededRandom};

const HUB: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1));
const SPOKE: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 2));

fn engine(addr: IpAddr, seed: u64, now: Instant) -> Engine {
    let c = Config::new(addr, Arc::new(PskAuthenticator::new(b"bench")));
    Engine::new(c, Box::new(SeededRandom(seed)), now).unwrap()
}

/// One handshake: the spoke initiates, datagrams go back and forth until both have the
/// CHILD_SA.
fn handshake(hub: &mut Engine, spoke: &mut Engine, now: Instant) {
    spoke.initiate(now, HUB);
    let mut children = 0;
    while children < 2 {
        let mut moved = false;
        while let Some(t) = spoke.poll_transmit() {
            hub.handle_datagram(now, t.remote, t.local, &t.payload);
            moved = true;
        }
        while let Some(t) = hub.poll_transmit() {
            spoke.handle_datagram(now, t.remote, t.local, &t.payload);
            moved = true;
        }
        for e in
            std::iter::from_fn(|| hub.poll_event()).chain(std::iter::from_fn(|| spoke.poll_event()))
        {
            children += usize::from(matches!(e, Event::ChildSaUp(_)));
            black_box(e);
        }
        assert!(moved || children >= 2, "the handshake stalled");
    }
}

fn bench(c: &mut Criterion) {
    let now = Instant::now();
    let mut seed = 0;
    let mut g = c.benchmark_group("ike");
    g.throughput(Throughput::Elements(1));
    // A fresh pair of engines per handshake (built outside the timing), so every handshake
    // is a first one.
    g.bench_function("handshake_psk_x25519_aes256gcm", |b| {
        b.iter_batched(
            || {
                seed += 2;
                (engine(HUB, seed, now), engine(SPOKE, seed + 1, now))
            },
            |(mut hub, mut spoke)| {
                handshake(&mut hub, &mut spoke, now);
                (hub, spoke)
            },
            BatchSize::SmallInput,
        )
    });
    // The floor under a handshake: each side generates one X25519 key and agrees once.
    let mut rng = SeededRandom(9);
    let peer = KeyPair::generate(Group::X25519, &mut rng)
        .unwrap()
        .public()
        .to_vec();
    g.bench_function("x25519_generate_and_agree", |b| {
        b.iter(|| {
            KeyPair::generate(Group::X25519, &mut rng)
                .unwrap()
                .agree(black_box(&peer))
                .unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
