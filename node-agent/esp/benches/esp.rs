//! Criterion benchmarks of ESP seal and open in place, at 64 and 1400 bytes of payload, with
//! AES-256-GCM and ChaCha20-Poly1305, beside ring's bare AEAD on the same buffers (issue 4's
//! goal: at least 90 % of it).
//!
//! `cargo bench -p dmvpn-esp -- --warm-up-time 1 --measurement-time 3`
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use dmvpn_esp::sa::{NEXT_HEADER_GRE, PAYLOAD_OFFSET, sealed_len};
use dmvpn_esp::{Algorithm, InboundSa, KeyMaterial, OutboundSa, SaConfig, SequenceNumbers};
use ring::aead;

const SIZES: [usize; 2] = [64, 1400];
const ALGORITHMS: [Algorithm; 2] = [Algorithm::AesGcm16_256, Algorithm::ChaCha20Poly1305];
/// Packets sealed ahead of each timed run of opens.
const BATCH: usize = 256;

fn pair(alg: Algorithm, now: Instant) -> (OutboundSa, InboundSa) {
    let key = KeyMaterial::new(alg, &[0x5a; 36][..alg.key_material_len()]).unwrap();
    let config = SaConfig {
        spi: 0xc1a9_656b,
        sequence_numbers: SequenceNumbers::Short,
        lifetime: Default::default(),
    };
    (
        OutboundSa::new(config, &key, now).unwrap(),
        InboundSa::new(config, &key, now).unwrap(),
    )
}

fn nonce(counter: u64) -> aead::Nonce {
    let mut n = [0u8; 12];
    n[4..].copy_from_slice(&counter.to_be_bytes());
    aead::Nonce::assume_unique_for_key(n)
}

fn aad(counter: u64) -> [u8; 8] {
    let mut a = [0u8; 8];
    a[4..].copy_from_slice(&(counter as u32).to_be_bytes());
    a
}

fn bench(c: &mut Criterion) {
    let now = Instant::now();
    for alg in ALGORITHMS {
        let mut group = c.benchmark_group(alg.name());
        for size in SIZES {
            group.throughput(Throughput::Bytes(size as u64));
            let len = sealed_len(size);

            let (mut tx, _) = pair(alg, now);
            let mut buf = vec![0u8; len];
            group.bench_function(BenchmarkId::new("seal", size), |b| {
                b.iter(|| {
                    black_box(tx.seal(now, black_box(&mut buf), size, NEXT_HEADER_GRE)).unwrap()
                })
            });

            // Opening consumes sequence numbers, so each timed run opens a batch sealed
            // outside the timing.
            let (mut tx, mut rx) = pair(alg, now);
            let mut batch = vec![vec![0u8; len]; BATCH];
            group.bench_function(BenchmarkId::new("open", size), |b| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    let mut left = iters;
                    while left > 0 {
                        let n = left.min(BATCH as u64) as usize;
                        for p in &mut batch[..n] {
                            tx.seal(now, p, size, NEXT_HEADER_GRE).unwrap();
                        }
                        let start = Instant::now();
                        for p in &mut batch[..n] {
                            black_box(rx.open(now, black_box(p)).unwrap());
                        }
                        total += start.elapsed();
                        left -= n as u64;
                    }
                    total
                })
            });

            // ring alone on the same plaintext length (payload + trailer), same AAD size.
            let key = aead::LessSafeKey::new(
                aead::UnboundKey::new(
                    match alg {
                        Algorithm::AesGcm16_256 => &aead::AES_256_GCM,
                        _ => &aead::CHACHA20_POLY1305,
                    },
                    &[0x5a; 32],
                )
                .unwrap(),
            );
            let mut plain = vec![0u8; len - PAYLOAD_OFFSET - 16];
            let mut counter = 0u64;
            group.bench_function(BenchmarkId::new("ring_seal", size), |b| {
                b.iter(|| {
                    counter += 1;
                    black_box(
                        key.seal_in_place_separate_tag(
                            nonce(counter),
                            aead::Aad::from(aad(counter)),
                            black_box(&mut plain),
                        )
                        .unwrap(),
                    )
                })
            });

            // ring alone opening the same lengths, sealed in batches outside the timing.
            let mut sealed = vec![vec![0u8; len - PAYLOAD_OFFSET]; BATCH];
            let mut counter = 0u64;
            group.bench_function(BenchmarkId::new("ring_open", size), |b| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    let mut left = iters;
                    while left > 0 {
                        let n = left.min(BATCH as u64) as usize;
                        let first = counter;
                        for p in &mut sealed[..n] {
                            counter += 1;
                            let (plain, icv) = p.split_at_mut(len - PAYLOAD_OFFSET - 16);
                            let tag = key
                                .seal_in_place_separate_tag(
                                    nonce(counter),
                                    aead::Aad::from(aad(counter)),
                                    plain,
                                )
                                .unwrap();
                            icv.copy_from_slice(tag.as_ref());
                        }
                        let start = Instant::now();
                        for (i, p) in sealed[..n].iter_mut().enumerate() {
                            let c = first + i as u64 + 1;
                            black_box(
                                key.open_in_place(nonce(c), aead::Aad::from(aad(c)), black_box(p))
                                    .unwrap(),
                            );
                        }
                        total += start.elapsed();
                        left -= n as u64;
                    }
                    total
                })
            });
        }
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
