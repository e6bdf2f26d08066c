//! ESP SAs under hostile bytes: an inbound SA's open must never panic, never accept bytes that
//! are not an authentic packet, and never let a refused packet move the replay window.
//!
//! The first byte picks the transform, 32-bit or extended sequence numbers, and the mode:
//! either the rest is opened as it is, or it is sealed as a payload by the matching outbound
//! SA, then mutated as the input's last bytes say, then opened.

use std::time::Instant;

use dmvpn_esp::sa::PAYLOAD_OFFSET;
use dmvpn_esp::{Algorithm, InboundSa, KeyMaterial, OutboundSa, SaConfig, SequenceNumbers};

const SPI: u32 = 0xc1a9_656b;

fn sas(selector: u8, now: Instant) -> (OutboundSa, InboundSa) {
    let alg = Algorithm::ALL[usize::from(selector) % Algorithm::ALL.len()];
    let esn = if selector & 0x10 != 0 {
        SequenceNumbers::Extended
    } else {
        SequenceNumbers::Short
    };
    let key = KeyMaterial::new(alg, &[0x42; 36][..alg.key_material_len()]).unwrap();
    let config = SaConfig {
        spi: SPI,
        sequence_numbers: esn,
        lifetime: Default::default(),
    };
    (
        OutboundSa::new(config, &key, now).unwrap(),
        InboundSa::new(config, &key, now).unwrap(),
    )
}

/// The fuzz check.
pub fn check(data: &[u8]) {
    let [selector, rest @ ..] = data else {
        return;
    };
    let now = Instant::now();
    let (mut tx, mut rx) = sas(*selector, now);
    if selector & 0x20 == 0 {
        let mut packet = rest.to_vec();
        // No key, no forgery: random bytes never open.
        assert!(rx.open(now, &mut packet).is_err());
        assert_eq!(rx.window().top(), 0);
        return;
    }
    // Seal the input (minus up to four mutation bytes) as a payload, mutate, open.
    let split = rest.len().saturating_sub(4);
    let (payload, mutation) = rest.split_at(split);
    let mut buf = vec![0u8; dmvpn_esp::sa::sealed_len(payload.len())];
    let next_header = selector.wrapping_mul(3);
    let len = tx.seal_from(now, payload, next_header, &mut buf).unwrap();
    assert_eq!(len, buf.len());
    let original = buf.clone();
    if let [at_hi, at_lo, xor, cut] = *mutation {
        let at = usize::from(u16::from_be_bytes([at_hi, at_lo])) % buf.len();
        buf[at] ^= xor;
        buf.truncate(buf.len() - usize::from(cut % 8).min(buf.len()));
    }
    match rx.open(now, &mut buf) {
        Ok(opened) => {
            assert_eq!(buf.len(), original.len(), "a shortened packet opened");
            assert_eq!(&buf[opened.payload.clone()], payload);
            assert_eq!(opened.payload.start, PAYLOAD_OFFSET);
            assert_eq!(opened.next_header, next_header);
            assert_eq!(opened.sequence, 1);
        }
        Err(_) => {
            assert_eq!(rx.window().top(), 0, "a refused packet moved the window");
            // The genuine packet still opens.
            let mut genuine = original;
            assert!(rx.open(now, &mut genuine).is_ok());
        }
    }
}
