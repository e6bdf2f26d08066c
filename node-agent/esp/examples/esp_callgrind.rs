//! A harness for counting instructions of ESP seal and open beside ring's bare AEAD, on the
//! same buffers, for `valgrind --tool=callgrind`: instruction counts stay stable on a shared
//! machine where the criterion bench (`benches/esp.rs`) is noisy.
//!
//! ```text
//! cargo build --profile bench -p dmvpn-esp --example esp_callgrind
//! valgrind --tool=callgrind --callgrind-out-file=esp.cg \
//!     target/release/examples/esp_callgrind aes 64        # or chacha, 1400
//! callgrind_annotate --inclusive=yes esp.cg | grep esp_callgrind::
//! ```
//!
//! Each of `ours_seal`, `ours_open`, `ring_seal` and `ring_open` runs [`PACKETS`] times, so
//! its inclusive count divided by [`PACKETS`] is the cost of one packet.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::Instant;

use dmvpn_esp::algorithm::ICV_LEN;
use dmvpn_esp::sa::{NEXT_HEADER_GRE, PAYLOAD_OFFSET, sealed_len};
use dmvpn_esp::{Algorithm, InboundSa, KeyMaterial, OutboundSa, SaConfig, SequenceNumbers};
use ring::aead;

/// Packets sealed and opened by each side.
const PACKETS: usize = 2000;

fn nonce(counter: u64) -> aead::Nonce {
    let mut n = [0u8; 12];
    n[4..].copy_from_slice(&counter.to_be_bytes());
    aead::Nonce::assume_unique_for_key(n)
}

fn aad(counter: u64) -> aead::Aad<[u8; 8]> {
    let mut a = [0u8; 8];
    a[4..].copy_from_slice(&(counter as u32).to_be_bytes());
    aead::Aad::from(a)
}

#[inline(never)]
fn ours_seal(tx: &mut OutboundSa, now: Instant, packet: &mut [u8], size: usize) -> usize {
    tx.seal(now, packet, size, NEXT_HEADER_GRE).unwrap()
}

#[inline(never)]
fn ours_open(rx: &mut InboundSa, now: Instant, packet: &mut [u8]) -> usize {
    rx.open(now, packet).unwrap().payload.end
}

/// What the SA does minus ESP: seal the bytes after the IV, write the tag where the ICV goes.
#[inline(never)]
fn ring_seal(key: &aead::LessSafeKey, counter: u64, packet: &mut [u8]) {
    let plain_len = packet.len() - PAYLOAD_OFFSET - ICV_LEN;
    let (plain, icv) = packet[PAYLOAD_OFFSET..].split_at_mut(plain_len);
    let tag = key
        .seal_in_place_separate_tag(nonce(counter), aad(counter), plain)
        .unwrap();
    icv.copy_from_slice(tag.as_ref());
}

#[inline(never)]
fn ring_open(key: &aead::LessSafeKey, counter: u64, packet: &mut [u8]) -> usize {
    key.open_in_place(nonce(counter), aad(counter), &mut packet[PAYLOAD_OFFSET..])
        .unwrap()
        .len()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let alg = match args.next().as_deref() {
        Some("chacha") => Algorithm::ChaCha20Poly1305,
        _ => Algorithm::AesGcm16_256,
    };
    let size: usize = args.next().map_or(64, |s| s.parse().unwrap());
    let now = Instant::now();
    let material = KeyMaterial::new(alg, &[0x5a; 36][..alg.key_material_len()]).unwrap();
    let config = SaConfig {
        spi: 0xc1a9_656b,
        sequence_numbers: SequenceNumbers::Short,
        lifetime: Default::default(),
    };
    let mut tx = OutboundSa::new(config, &material, now).unwrap();
    let mut rx = InboundSa::new(config, &material, now).unwrap();
    let key = aead::LessSafeKey::new(
        aead::UnboundKey::new(
            match alg {
                Algorithm::ChaCha20Poly1305 => &aead::CHACHA20_POLY1305,
                _ => &aead::AES_256_GCM,
            },
            &[0x5a; 32],
        )
        .unwrap(),
    );

    let mut packets = vec![vec![0u8; sealed_len(size)]; PACKETS];
    for p in &mut packets {
        black_box(ours_seal(&mut tx, now, p, size));
    }
    for p in &mut packets {
        black_box(ours_open(&mut rx, now, p));
    }
    for (i, p) in packets.iter_mut().enumerate() {
        ring_seal(&key, i as u64 + 1, p);
    }
    for (i, p) in packets.iter_mut().enumerate() {
        black_box(ring_open(&key, i as u64 + 1, p));
    }
}
