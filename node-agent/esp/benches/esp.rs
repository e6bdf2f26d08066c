//! Criterion benchmarks of ESP seal and open in place, at 64 and 1400 bytes of payload, with
//! AES-256-GCM and ChaCha20-Poly1305, beside ring's bare AEAD on the same buffers (issue 4's
//! goal: at least 90 % of it).
//!
//! Like is compared with like: ring runs on the very buffers the SA uses (same addresses, so
//! the same alignment and cache footprint), on the same bytes (payload and trailer, from
//! [`PAYLOAD_OFFSET`]), with an 8-byte AAD, and writes its tag into the ICV field as the SA
//! does; ring's open verifies `ciphertext || ICV` in place there.
//!
//! `cargo bench -p dmvpn-esp -- --warm-up-time 1 --measurement-time 3`
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use dmvpn_esp::algorithm::ICV_LEN;
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

/// ring seals `buf[PAYLOAD_OFFSET..len - ICV_LEN]` in place and writes the tag after it.
fn ring_seal(key: &aead::LessSafeKey, counter: u64, buf: &mut [u8], len: usize) {
    let (plain, icv) = buf[PAYLOAD_OFFSET..len].split_at_mut(len - PAYLOAD_OFFSET - ICV_LEN);
    let tag = key
        .seal_in_place_separate_tag(nonce(counter), aead::Aad::from(aad(counter)), plain)
        .unwrap();
    icv.copy_from_slice(tag.as_ref());
}

/// Times `open` over batches of packets that `seal` prepares outside the timing.
fn batched(
    iters: u64,
    batch: &mut [Vec<u8>],
    mut seal: impl FnMut(&mut [u8]),
    mut open: impl FnMut(&mut [u8]),
) -> Duration {
    let mut total = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let n = left.min(batch.len() as u64) as usize;
        for p in &mut batch[..n] {
            seal(p);
        }
        let start = Instant::now();
        for p in &mut batch[..n] {
            open(black_box(p));
        }
        total += start.elapsed();
        left -= n as u64;
    }
    total
}

fn bench(c: &mut Criterion) {
    let now = Instant::now();
    for alg in ALGORITHMS {
        let mut group = c.benchmark_group(alg.name());
        for size in SIZES {
            group.throughput(Throughput::Bytes(size as u64));
            let len = sealed_len(size);
            // One set of buffers for both sides.
            let mut batch = vec![vec![0u8; len]; BATCH];
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

            let (mut tx, _) = pair(alg, now);
            group.bench_function(BenchmarkId::new("seal", size), |b| {
                b.iter(|| {
                    black_box(tx.seal(now, black_box(&mut batch[0]), size, NEXT_HEADER_GRE))
                        .unwrap()
                })
            });
            let mut counter = 0u64;
            group.bench_function(BenchmarkId::new("ring_seal", size), |b| {
                b.iter(|| {
                    counter += 1;
                    ring_seal(&key, counter, black_box(&mut batch[0]), len);
                })
            });

            // Opening consumes sequence numbers, so each timed run opens a batch sealed
            // outside the timing.
            let (mut tx, mut rx) = pair(alg, now);
            group.bench_function(BenchmarkId::new("open", size), |b| {
                b.iter_custom(|iters| {
                    batched(
                        iters,
                        &mut batch,
                        |p| {
                            tx.seal(now, p, size, NEXT_HEADER_GRE).unwrap();
                        },
                        |p| {
                            black_box(rx.open(now, p).unwrap());
                        },
                    )
                })
            });
            let (mut sealed, mut opened) = (0u64, 0u64);
            group.bench_function(BenchmarkId::new("ring_open", size), |b| {
                b.iter_custom(|iters| {
                    batched(
                        iters,
                        &mut batch,
                        |p| {
                            sealed += 1;
                            ring_seal(&key, sealed, p, len);
                        },
                        |p| {
                            opened += 1;
                            black_box(
                                key.open_in_place(
                                    nonce(opened),
                                    aead::Aad::from(aad(opened)),
                                    &mut p[PAYLOAD_OFFSET..len],
                                )
                                .unwrap(),
                            );
                        },
                    )
                })
            });
        }
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
