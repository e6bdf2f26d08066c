//! SA behaviour through the public API: the ESP construction checked against ring's AEAD used
//! directly (nonce = salt || IV, AAD = SPI || seq or SPI || seq_hi || seq_lo, RFC 4106
//! sections 4 and 5, RFC 7634 section 2), what open refuses and what that leaves behind,
//! lifetimes, and the SA database.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use dmvpn_esp::sa::{NEXT_HEADER_GRE, NEXT_HEADER_IPV4, PAYLOAD_OFFSET, sealed_len};
use dmvpn_esp::{
    Algorithm, Direction, InboundSa, KeyMaterial, LifetimeConfig, LifetimeEvent, Limits, OpenError,
    OutboundSa, ReplayError, SaConfig, Sad, SadError, SadEvent, SealError, SequenceNumbers,
};
use proptest::prelude::*;
use ring::aead;

const SPI: u32 = 0xc1a9_656b;

fn material(alg: Algorithm, seed: u8) -> Vec<u8> {
    (0..alg.key_material_len() as u8)
        .map(|i| i.wrapping_mul(31).wrapping_add(seed))
        .collect()
}

fn config(spi: u32, esn: SequenceNumbers, lifetime: LifetimeConfig) -> SaConfig {
    SaConfig {
        spi,
        sequence_numbers: esn,
        lifetime,
    }
}

fn pair(alg: Algorithm, esn: SequenceNumbers) -> (OutboundSa, InboundSa, Instant) {
    let now = Instant::now();
    let key = KeyMaterial::new(alg, &material(alg, 3)).unwrap();
    let c = config(SPI, esn, LifetimeConfig::default());
    (
        OutboundSa::new(c, &key, now).unwrap(),
        InboundSa::new(c, &key, now).unwrap(),
        now,
    )
}

/// The ESP packet computed here from the RFCs with ring directly, independent of the crate.
fn reference_packet(
    alg: Algorithm,
    key_material: &[u8],
    esn: SequenceNumbers,
    seq: u64,
    payload: &[u8],
    next_header: u8,
) -> Vec<u8> {
    let ring_alg = match alg {
        Algorithm::AesGcm16_128 => &aead::AES_128_GCM,
        Algorithm::AesGcm16_256 => &aead::AES_256_GCM,
        Algorithm::ChaCha20Poly1305 => &aead::CHACHA20_POLY1305,
    };
    let (key, salt) = key_material.split_at(key_material.len() - 4);
    let key = aead::LessSafeKey::new(aead::UnboundKey::new(ring_alg, key).unwrap());
    let iv = seq.to_be_bytes();
    let mut nonce = salt.to_vec();
    nonce.extend_from_slice(&iv);
    let mut aad = SPI.to_be_bytes().to_vec();
    if esn == SequenceNumbers::Extended {
        aad.extend_from_slice(&((seq >> 32) as u32).to_be_bytes());
    }
    aad.extend_from_slice(&(seq as u32).to_be_bytes());
    // RFC 4303 section 2.4: pad with 1, 2, 3, ... so that payload + 2 is a multiple of 4.
    let pad = (4 - (payload.len() + 2) % 4) % 4;
    let mut plain = payload.to_vec();
    plain.extend((1..=pad as u8).collect::<Vec<_>>());
    plain.extend_from_slice(&[pad as u8, next_header]);
    key.seal_in_place_append_tag(
        aead::Nonce::try_assume_unique_for_key(&nonce).unwrap(),
        aead::Aad::from(&aad),
        &mut plain,
    )
    .unwrap();
    let mut packet = SPI.to_be_bytes().to_vec();
    packet.extend_from_slice(&(seq as u32).to_be_bytes());
    packet.extend_from_slice(&iv);
    packet.extend_from_slice(&plain);
    packet
}

#[test]
fn seal_matches_the_rfc_construction() {
    for alg in Algorithm::ALL {
        for esn in [SequenceNumbers::Short, SequenceNumbers::Extended] {
            let (mut tx, mut rx, now) = pair(alg, esn);
            for (i, len) in [0usize, 1, 2, 3, 4, 5, 64, 1400].into_iter().enumerate() {
                let payload: Vec<u8> = (0..len).map(|b| b as u8 ^ 0xa5).collect();
                let mut buf = vec![0u8; 1500];
                let n = tx
                    .seal_from(now, &payload, NEXT_HEADER_GRE, &mut buf)
                    .unwrap();
                let expected = reference_packet(
                    alg,
                    &material(alg, 3),
                    esn,
                    i as u64 + 1,
                    &payload,
                    NEXT_HEADER_GRE,
                );
                assert_eq!(&buf[..n], &expected[..], "{alg} {esn:?} len {len}");
                let opened = rx.open(now, &mut buf[..n]).unwrap();
                assert_eq!(&buf[opened.payload], &payload[..]);
                assert_eq!(opened.next_header, NEXT_HEADER_GRE);
                assert_eq!(opened.sequence, i as u64 + 1);
            }
            let c = tx.counters();
            assert_eq!((c.pkts_encaps, c.pkts_encrypt, c.pkts_digest), (8, 8, 8));
            let c = rx.counters();
            assert_eq!((c.pkts_decaps, c.pkts_decrypt, c.pkts_verify), (8, 8, 8));
            assert_eq!(c.recv_errors, 0);
        }
    }
}

/// Fixed packets computed outside Rust, with Python's `cryptography` 48 (OpenSSL 3.0.19):
/// `AESGCM(key).encrypt(salt + iv, b"GRE!" + bytes([1, 2, 2, 47]), aad)` and the same with
/// `ChaCha20Poly1305`, key material `(i * 31 + 3) & 0xff` for i in 0..len, SPI 0xc1a9656b,
/// sequence number 1, IV = the sequence number as 8 bytes, AAD = SPI || seq (|| with ESN:
/// SPI || 0 || 1).
#[test]
fn fixed_vectors_from_an_independent_implementation() {
    let cases = [
        (
            Algorithm::AesGcm16_256,
            SequenceNumbers::Short,
            "c1a9656b00000001000000000000000119d36a2374a27e6ebb3a4a5bc481f8f3f5866998d5591897",
        ),
        (
            Algorithm::ChaCha20Poly1305,
            SequenceNumbers::Extended,
            "c1a9656b0000000100000000000000010e7e1ec3ac9d27b93d523beffcde416b855b0e0cae5dcdca",
        ),
        (
            Algorithm::AesGcm16_128,
            SequenceNumbers::Extended,
            "c1a9656b0000000100000000000000011055ecad1e7027bf992fbd705e24ccc0110881bf72d5dd66",
        ),
    ];
    for (alg, esn, expected) in cases {
        let (mut tx, _, now) = pair(alg, esn);
        let mut buf = [0u8; 64];
        let n = tx
            .seal_from(now, b"GRE!", NEXT_HEADER_GRE, &mut buf)
            .unwrap();
        let hex: String = buf[..n].iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, expected, "{alg} {esn:?}");
    }
}

#[test]
fn tampering_fails_the_icv_and_leaves_the_window() {
    for alg in Algorithm::ALL {
        for esn in [SequenceNumbers::Short, SequenceNumbers::Extended] {
            let (mut tx, mut rx, now) = pair(alg, esn);
            let mut good = vec![0u8; 256];
            let n = tx
                .seal_from(now, &[9; 100], NEXT_HEADER_IPV4, &mut good)
                .unwrap();
            good.truncate(n);
            // SPI, sequence number, IV, ciphertext (first and last), ICV (first and last).
            for at in [0, 3, 4, 7, 8, 15, 16, n - 17, n - 16, n - 1] {
                let mut bad = good.clone();
                bad[at] ^= 0x40;
                assert_eq!(
                    rx.open(now, &mut bad),
                    Err(OpenError::Icv),
                    "{alg} {esn:?} byte {at}"
                );
                assert_eq!(rx.window().top(), 0, "window moved on a forgery");
            }
            assert_eq!(rx.counters().verify_failed, 10);
            assert_eq!(rx.counters().recv_errors, 10);
            // The genuine packet still opens: no forgery took its sequence number.
            let opened = rx.open(now, &mut good).unwrap();
            assert_eq!(opened.sequence, 1);
            assert_eq!(rx.window().top(), 1);
        }
    }
}

#[test]
fn truncated_and_misaligned() {
    let (mut tx, mut rx, now) = pair(Algorithm::AesGcm16_128, SequenceNumbers::Short);
    let mut good = vec![0u8; 64];
    let n = tx
        .seal_from(now, &[1, 2], NEXT_HEADER_GRE, &mut good)
        .unwrap();
    assert_eq!(n, sealed_len(2));
    for len in 0..n {
        let mut short = good[..len].to_vec();
        let e = rx.open(now, &mut short).unwrap_err();
        // Cut at a 4-byte boundary past the minimum, the ICV is what fails.
        assert!(
            e == OpenError::Truncated || e == OpenError::Icv,
            "len {len}: {e:?}"
        );
        if len < PAYLOAD_OFFSET + 16 + 4 || !(len - PAYLOAD_OFFSET - 16).is_multiple_of(4) {
            assert_eq!(e, OpenError::Truncated, "len {len}");
        }
    }
    assert_eq!(rx.window().top(), 0);
    assert!(rx.counters().invalid_len > 0);
    rx.open(now, &mut good[..n]).unwrap();
}

/// Seals an authentic packet with a hand-made trailer, to reach the checks after the ICV.
fn authentic_with_plaintext(alg: Algorithm, seq: u64, plain: &[u8]) -> Vec<u8> {
    // reference_packet pads; build the plaintext exactly as given instead.
    let ring_alg = match alg {
        Algorithm::AesGcm16_128 => &aead::AES_128_GCM,
        Algorithm::AesGcm16_256 => &aead::AES_256_GCM,
        Algorithm::ChaCha20Poly1305 => &aead::CHACHA20_POLY1305,
    };
    let m = material(alg, 3);
    let (key, salt) = m.split_at(m.len() - 4);
    let key = aead::LessSafeKey::new(aead::UnboundKey::new(ring_alg, key).unwrap());
    let mut nonce = salt.to_vec();
    nonce.extend_from_slice(&seq.to_be_bytes());
    let mut aad = SPI.to_be_bytes().to_vec();
    aad.extend_from_slice(&(seq as u32).to_be_bytes());
    let mut body = plain.to_vec();
    key.seal_in_place_append_tag(
        aead::Nonce::try_assume_unique_for_key(&nonce).unwrap(),
        aead::Aad::from(&aad),
        &mut body,
    )
    .unwrap();
    let mut packet = aad.clone();
    packet.extend_from_slice(&seq.to_be_bytes());
    packet.extend_from_slice(&body);
    packet
}

#[test]
fn bad_padding_is_authentic_but_refused() {
    let alg = Algorithm::ChaCha20Poly1305;
    let (_, mut rx, now) = pair(alg, SequenceNumbers::Short);
    let cases: [&[u8]; 3] = [
        // Padding 1, 3 instead of 1, 2.
        &[0xaa, 0xbb, 0xcc, 0xdd, 1, 3, 2, 47][..],
        // Pad length beyond the plaintext.
        &[0xaa, 0xbb, 200, 47],
        // Padding 1, 2, 4.
        &[0xaa, 0xbb, 0xcc, 1, 2, 4, 3, 47],
    ];
    let mut seq = 1;
    for plain in cases {
        // Keep the ciphertext 4-byte aligned so that only the trailer is wrong.
        assert_eq!(plain.len() % 4, 0);
        let mut p = authentic_with_plaintext(alg, seq, plain);
        assert_eq!(
            rx.open(now, &mut p),
            Err(OpenError::BadTrailer),
            "{plain:?}"
        );
        // The packet was authentic: its number is used up.
        assert_eq!(rx.window().top(), seq);
        seq += 1;
    }
    assert_eq!(rx.counters().invalid_pad, 3);
    assert_eq!(rx.counters().verify_failed, 0);
    // The same construction with good padding opens: only the trailer was at fault.
    let mut p = authentic_with_plaintext(alg, seq, &[0xaa, 0xbb, 0xcc, 1, 2, 3, 3, 47]);
    let opened = rx.open(now, &mut p).unwrap();
    assert_eq!(&p[opened.payload], &[0xaa, 0xbb, 0xcc]);
}

#[test]
fn replays_are_dropped_before_crypto() {
    let (mut tx, mut rx, now) = pair(Algorithm::AesGcm16_256, SequenceNumbers::Short);
    let mut packets = Vec::new();
    for _ in 0..3000 {
        let mut b = vec![0u8; 64];
        let n = tx
            .seal_from(now, &[7; 20], NEXT_HEADER_GRE, &mut b)
            .unwrap();
        b.truncate(n);
        packets.push(b);
    }
    // Out of order inside the window.
    for i in [10usize, 5, 7, 6, 2999, 1500, 1016] {
        let mut p = packets[i].clone();
        assert_eq!(rx.open(now, &mut p).unwrap().sequence, i as u64 + 1);
    }
    // Duplicates, and a packet behind the window (top is 3000, window 1984).
    let mut p = packets[6].clone();
    assert_eq!(
        rx.open(now, &mut p),
        Err(OpenError::Replay(ReplayError::TooOld))
    );
    let mut p = packets[1500].clone();
    assert_eq!(
        rx.open(now, &mut p),
        Err(OpenError::Replay(ReplayError::Duplicate))
    );
    // A replay is found without decrypting: the buffer is untouched.
    assert_eq!(p, packets[1500]);
    assert_eq!(rx.counters().replay_failed, 2);
    assert_eq!(rx.counters().pkts_decaps, 7);
}

#[test]
fn lifetimes_through_the_sa() {
    let now = Instant::now();
    let alg = Algorithm::AesGcm16_128;
    let key = KeyMaterial::new(alg, &material(alg, 1)).unwrap();
    let lifetime = LifetimeConfig {
        soft: Limits {
            packets: Some(3),
            ..Limits::default()
        },
        hard: Limits {
            packets: Some(5),
            time: Some(Duration::from_secs(3600)),
            ..Limits::default()
        },
    };
    let c = config(SPI, SequenceNumbers::Short, lifetime);
    let mut tx = OutboundSa::new(c, &key, now).unwrap();
    let mut rx = InboundSa::new(c, &key, now).unwrap();
    let mut events = Vec::new();
    for i in 0..5 {
        let mut b = [0u8; 64];
        let n = tx.seal(now, &mut b, 8, NEXT_HEADER_GRE).unwrap();
        rx.open(now, &mut b[..n]).unwrap();
        while let Some(e) = tx.poll_event() {
            events.push((i, e));
        }
    }
    assert_eq!(
        events,
        [(2, LifetimeEvent::RekeyNeeded), (4, LifetimeEvent::Expired)]
    );
    let mut b = [0u8; 64];
    assert_eq!(
        tx.seal(now, &mut b, 8, NEXT_HEADER_GRE),
        Err(SealError::Expired)
    );
    assert_eq!(tx.counters().expired, 1);
    assert_eq!(tx.counters().send_errors, 1);
    assert_eq!(rx.poll_event(), Some(LifetimeEvent::RekeyNeeded));
    assert_eq!(rx.poll_event(), Some(LifetimeEvent::Expired));
    assert_eq!(rx.poll_event(), None);
    assert_eq!(rx.open(now, &mut b), Err(OpenError::Expired));
    assert_eq!(rx.counters().expired, 1);

    // Time: the hard deadline alone refuses packets.
    let mut tx = OutboundSa::new(c, &key, now).unwrap();
    assert_eq!(tx.poll_timeout(), Some(now + Duration::from_secs(3600)));
    let later = now + Duration::from_secs(3600);
    assert_eq!(
        tx.seal(later, &mut b, 8, NEXT_HEADER_GRE),
        Err(SealError::Expired)
    );
}

/// Installs an inbound SA with `lifetime` in `sad` and returns the peer's outbound SA for it
/// (unlimited, so that the peer can keep sending past our limits).
fn sad_pair(sad: &mut Sad, spi: u32, now: Instant, lifetime: LifetimeConfig) -> OutboundSa {
    let alg = Algorithm::AesGcm16_256;
    let key = KeyMaterial::new(alg, &material(alg, spi as u8)).unwrap();
    let c = config(spi, SequenceNumbers::Extended, lifetime);
    sad.install_inbound(InboundSa::new(c, &key, now).unwrap())
        .unwrap();
    let peer = config(spi, SequenceNumbers::Extended, LifetimeConfig::default());
    OutboundSa::new(peer, &key, now).unwrap()
}

fn seal(tx: &mut OutboundSa, now: Instant) -> Vec<u8> {
    let mut b = vec![0u8; 64];
    let n = tx.seal_from(now, b"gre", NEXT_HEADER_GRE, &mut b).unwrap();
    b.truncate(n);
    b
}

#[test]
fn sad_make_before_break() {
    let t0 = Instant::now();
    let mut sad = Sad::new();
    let mut old_tx = sad_pair(&mut sad, 0x1000, t0, LifetimeConfig::default());
    let early = seal(&mut old_tx, t0);
    let mut p = seal(&mut old_tx, t0);
    assert_eq!(sad.open(t0, &mut p).unwrap().spi, 0x1000);

    // Rekey: the new inbound SA is installed beside the old, which lives 10 s more.
    let alg = Algorithm::AesGcm16_256;
    let key = KeyMaterial::new(alg, &material(alg, 0x20)).unwrap();
    let c = config(0x2000, SequenceNumbers::Extended, LifetimeConfig::default());
    let mut new_tx = OutboundSa::new(c, &key, t0).unwrap();
    let new_rx = InboundSa::new(c, &key, t0).unwrap();
    assert_eq!(
        sad.rekey_inbound(
            t0,
            0x3000,
            InboundSa::new(c, &key, t0).unwrap(),
            Duration::ZERO
        ),
        Err(SadError::UnknownSpi { spi: 0x3000 })
    );
    sad.rekey_inbound(t0, 0x1000, new_rx, Duration::from_secs(10))
        .unwrap();
    assert_eq!(sad.inbound_len(), 2);
    assert_eq!(sad.poll_timeout(), Some(t0 + Duration::from_secs(10)));

    // Both open: a late packet of the old SA, and the new SA's first.
    let t5 = t0 + Duration::from_secs(5);
    let mut p = early.clone();
    assert_eq!(sad.open(t5, &mut p).unwrap().spi, 0x1000);
    let mut p = seal(&mut new_tx, t5);
    assert_eq!(sad.open(t5, &mut p).unwrap().spi, 0x2000);
    sad.handle_timeout(t5);
    assert_eq!(sad.inbound_len(), 2);

    // After the grace period the old one is gone and its packets are unknown SPIs.
    let t10 = t0 + Duration::from_secs(10);
    sad.handle_timeout(t10);
    assert_eq!(
        sad.poll_event(),
        Some(SadEvent::Removed {
            spi: 0x1000,
            direction: Direction::Inbound
        })
    );
    assert_eq!(sad.poll_event(), None);
    let mut p = seal(&mut old_tx, t10);
    assert_eq!(sad.open(t10, &mut p), Err(OpenError::UnknownSpi));
    assert_eq!(sad.counters().invalid_sa_rcv, 1);
    let mut p = seal(&mut new_tx, t10);
    assert_eq!(sad.open(t10, &mut p).unwrap().sequence, 2);
    assert_eq!(sad.poll_timeout(), None);
    // Shorter than an ESP header, or SPI 0: no SA is even looked up.
    assert_eq!(sad.open(t10, &mut [1, 2, 3]), Err(OpenError::Truncated));
    assert_eq!(sad.open(t10, &mut [0; 40]), Err(OpenError::Truncated));
    assert_eq!(sad.counters().invalid_len_rcv, 2);
    assert_eq!(sad.counters().invalid_sa_rcv, 1);
}

#[test]
fn sad_events_and_hard_expiry() {
    let t0 = Instant::now();
    let mut sad = Sad::new();
    let lifetime = LifetimeConfig {
        soft: Limits {
            packets: Some(2),
            ..Limits::default()
        },
        hard: Limits {
            packets: Some(3),
            ..Limits::default()
        },
    };
    let mut tx = sad_pair(&mut sad, 0x4000, t0, lifetime);
    let spi = tx.spi();
    assert_eq!(sad.install_outbound(tx_clone_for_sad(t0, lifetime)), Ok(()));
    assert_eq!(
        sad.install_outbound(tx_clone_for_sad(t0, lifetime)),
        Err(SadError::DuplicateSpi { spi })
    );
    for _ in 0..3 {
        let mut p = seal(&mut tx, t0);
        sad.open(t0, &mut p).unwrap();
        let mut b = [0u8; 64];
        sad.seal(t0, spi, &mut b, 4, NEXT_HEADER_GRE).unwrap();
    }
    let mut b = [0u8; 64];
    assert_eq!(
        sad.seal(t0, 0x9999, &mut b, 4, NEXT_HEADER_GRE),
        Err(SealError::UnknownSpi)
    );
    assert_eq!(sad.counters().no_sa_send, 1);
    let mut p = seal(&mut tx, t0);
    assert_eq!(sad.open(t0, &mut p), Err(OpenError::Expired));
    let events: Vec<SadEvent> = std::iter::from_fn(|| sad.poll_event()).collect();
    let lifetime_event = |direction, event| SadEvent::Lifetime {
        spi,
        direction,
        event,
    };
    assert_eq!(
        events,
        [
            lifetime_event(Direction::Inbound, LifetimeEvent::RekeyNeeded),
            lifetime_event(Direction::Outbound, LifetimeEvent::RekeyNeeded),
            lifetime_event(Direction::Inbound, LifetimeEvent::Expired),
            lifetime_event(Direction::Outbound, LifetimeEvent::Expired),
        ]
    );
    sad.handle_timeout(t0);
    let mut removed: Vec<SadEvent> = std::iter::from_fn(|| sad.poll_event()).collect();
    removed.sort_by_key(|e| format!("{e:?}"));
    assert_eq!(
        removed,
        [
            SadEvent::Removed {
                spi,
                direction: Direction::Inbound
            },
            SadEvent::Removed {
                spi,
                direction: Direction::Outbound
            },
        ]
    );
    assert_eq!((sad.inbound_len(), sad.outbound_len()), (0, 0));
}

fn tx_clone_for_sad(now: Instant, lifetime: LifetimeConfig) -> OutboundSa {
    // A second outbound SA with the same key and SPI as `sad_pair(.., 0x4000, ..)`: what the
    // SAD seals with (the test's own `tx` plays the peer).
    let alg = Algorithm::AesGcm16_256;
    let key = KeyMaterial::new(alg, &material(alg, 0x00)).unwrap();
    OutboundSa::new(
        config(0x4000, SequenceNumbers::Extended, lifetime),
        &key,
        now,
    )
    .unwrap()
}

proptest! {
    #[test]
    fn open_never_panics_on_random_bytes(
        bytes in proptest::collection::vec(any::<u8>(), 0..256),
        esn in any::<bool>(),
    ) {
        let esn = if esn { SequenceNumbers::Extended } else { SequenceNumbers::Short };
        for alg in Algorithm::ALL {
            let (_, mut rx, now) = pair(alg, esn);
            let mut b = bytes.clone();
            // Random bytes are never authentic.
            prop_assert!(rx.open(now, &mut b).is_err());
            let mut sad = Sad::new();
            let (_, rx, _) = pair(alg, esn);
            sad.install_inbound(rx).unwrap();
            let mut b = bytes.clone();
            prop_assert!(sad.open(now, &mut b).is_err());
        }
    }

    #[test]
    fn any_mutation_of_a_real_packet_is_refused(
        len in 0usize..200,
        flips in proptest::collection::vec((any::<prop::sample::Index>(), 1u8..), 1..4),
        cut in 0usize..8,
    ) {
        let (mut tx, mut rx, now) = pair(Algorithm::AesGcm16_256, SequenceNumbers::Extended);
        let mut b = vec![0u8; 512];
        let n = tx.seal_from(now, &vec![0x33; len], NEXT_HEADER_GRE, &mut b).unwrap();
        b.truncate(n);
        let mut bad = b.clone();
        for (i, x) in &flips {
            let at = i.index(bad.len());
            bad[at] ^= x;
        }
        bad.truncate(bad.len() - cut.min(bad.len()));
        prop_assume!(bad != b);
        prop_assert!(rx.open(now, &mut bad).is_err());
        prop_assert_eq!(rx.window().top(), 0);
        prop_assert!(rx.open(now, &mut b).is_ok());
    }
}
