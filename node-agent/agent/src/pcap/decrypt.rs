//! Decryption with a key log: ESP packets through `dmvpn-esp`'s inbound SA (RFC 4303 section
//! 3.4, RFC 4106, RFC 7634) and the SK payload of IKEv2 messages (RFC 7296 section 3.14 with
//! the AEAD rules of RFC 5282 section 5 and RFC 7634 section 3).

use std::time::Instant;

use dmvpn_esp::algorithm::{ICV_LEN, IV_LEN, SALT_LEN};
use dmvpn_esp::{
    Algorithm, InboundSa, KeyMaterial, LifetimeConfig, Opened, SaConfig, SequenceNumbers,
};
use dmvpn_wire::ikev2::{PayloadBody, Payloads, Repr};
use ring::aead;

use super::debug_ikev2::payload_tag;
use super::decode::{Layer, failed, layer, verdict};
use super::keylog::EspKeys;

/// Opens a copy of the ESP packet `bytes` (SPI to ICV) with `keys`: 32-bit sequence numbers
/// first, then extended ones (the key log does not say which the SA uses; a wrong guess only
/// fails the ICV). Returns the opened packet's layout and the buffer it lies in.
///
/// # Errors
/// What went wrong, without any key.
pub(super) fn esp(bytes: &[u8], keys: &EspKeys) -> Result<(Opened, Vec<u8>), String> {
    let now = Instant::now();
    let mut last = String::new();
    for sequence_numbers in [SequenceNumbers::Short, SequenceNumbers::Extended] {
        let config = SaConfig {
            spi: keys.spi,
            sequence_numbers,
            lifetime: LifetimeConfig::default(),
        };
        let mut sa = InboundSa::new(config, &keys.key, now).map_err(|e| e.to_string())?;
        let mut buf = bytes.to_vec();
        match sa.open(now, &mut buf) {
            Ok(o) => return Ok((o, buf)),
            Err(e) => last = format!("{e} (wrong key?)"),
        }
    }
    Err(last)
}

fn ring_algorithm(a: Algorithm) -> &'static aead::Algorithm {
    match a {
        Algorithm::AesGcm16_128 => &aead::AES_128_GCM,
        Algorithm::AesGcm16_256 => &aead::AES_256_GCM,
        Algorithm::ChaCha20Poly1305 => &aead::CHACHA20_POLY1305,
    }
}

/// Decrypts the SK body `data` (IV, ciphertext, ICV) of a message whose bytes before the IV
/// are `aad` (RFC 5282 section 5.1: the IKE header through the SK payload header), and strips
/// the padding: the inner payloads.
fn open_sk(key: &KeyMaterial, aad: &[u8], data: &[u8]) -> Result<Vec<u8>, &'static str> {
    let material = key.expose();
    let (k, salt) = material.split_at(material.len() - SALT_LEN);
    if data.len() < IV_LEN + ICV_LEN + 1 {
        return Err("SK payload too short for IV, pad length and ICV");
    }
    let (iv, sealed) = data.split_at(IV_LEN);
    let mut nonce = [0u8; SALT_LEN + IV_LEN];
    nonce[..SALT_LEN].copy_from_slice(salt);
    nonce[SALT_LEN..].copy_from_slice(iv);
    let unbound = aead::UnboundKey::new(ring_algorithm(key.algorithm()), k)
        .map_err(|_| "the key does not fit the algorithm")?;
    let mut buf = sealed.to_vec();
    let plain = aead::LessSafeKey::new(unbound)
        .open_in_place(
            aead::Nonce::assume_unique_for_key(nonce),
            aead::Aad::from(aad),
            &mut buf,
        )
        .map_err(|_| "ICV verification failed (wrong key?)")?;
    // RFC 7296 section 3.14: payloads, padding, then the pad length.
    let (&pad, rest) = plain.split_last().ok_or("empty plaintext")?;
    let len = rest
        .len()
        .checked_sub(usize::from(pad))
        .ok_or("pad length longer than the plaintext")?;
    let mut inner = rest.to_vec();
    inner.truncate(len);
    Ok(inner)
}

/// The decrypted content of the SK payload of `repr`, parsed from `message` (its bytes) with
/// the key of its sender: a layer `ikev2-sk` listing the inner payloads as strongSwan logs
/// them, with a round-trip verdict. `None` when the message has no SK payload.
pub(super) fn ikev2_sk(repr: &Repr<'_>, message: &[u8], key: &KeyMaterial) -> Option<Layer> {
    let mut sk = None;
    for p in repr.payloads.iter() {
        match p.body {
            PayloadBody::Encrypted(e) => sk = Some((e.first_inner, e.data)),
            PayloadBody::EncryptedFragment(f) => {
                return Some(failed(
                    PROTOCOL,
                    format!(
                        "fragment {}/{} (RFC 7383): fragments are not reassembled",
                        f.fragment_number, f.total_fragments
                    ),
                ));
            }
            _ => {}
        }
    }
    let (first_inner, data) = sk?;
    // SK is the last payload and ends the message: the AAD is every byte before its IV.
    let aad = message.get(..message.len().checked_sub(data.len())?)?;
    let inner = match open_sk(key, aad, data) {
        Ok(inner) => inner,
        Err(e) => return Some(failed(PROTOCOL, e)),
    };
    let payloads = match Payloads::parse(first_inner, &inner) {
        Ok(p) => p,
        Err(e) => {
            return Some(failed(
                PROTOCOL,
                format!("decrypted, but the inner payloads do not parse: {e}"),
            ));
        }
    };
    let mut buf = vec![0u8; payloads.wire_len()];
    let ok = matches!(payloads.emit(&mut buf), Ok(n) if buf[..n] == inner[..]);
    let tags: Vec<String> = payloads.iter().map(|p| payload_tag(&p.body)).collect();
    let algorithm = key.algorithm().name();
    let fields = serde_json::json!({ "algorithm": algorithm, "payloads": payloads });
    let text = format!(
        "decrypted with {algorithm}, ICV good: [ {} ]",
        tags.join(" ")
    );
    Some(layer(PROTOCOL, fields, verdict(ok)).with_text(text))
}

/// The protocol name of a decrypted SK payload's layer.
const PROTOCOL: &str = "ikev2-sk";

#[cfg(test)]
mod tests {
    use super::*;

    /// Seals `plain` as an SK body (IV, ciphertext, ICV) under `aad` with AES-256-GCM.
    fn seal(key: &KeyMaterial, aad: &[u8], plain: &[u8]) -> Vec<u8> {
        let m = key.expose();
        let iv = [9u8; IV_LEN];
        let mut nonce = [0u8; 12];
        nonce[..SALT_LEN].copy_from_slice(&m[32..]);
        nonce[SALT_LEN..].copy_from_slice(&iv);
        let k =
            aead::LessSafeKey::new(aead::UnboundKey::new(&aead::AES_256_GCM, &m[..32]).unwrap());
        let mut buf = plain.to_vec();
        k.seal_in_place_append_tag(
            aead::Nonce::assume_unique_for_key(nonce),
            aead::Aad::from(aad),
            &mut buf,
        )
        .unwrap();
        [&iv[..], &buf].concat()
    }

    fn key() -> KeyMaterial {
        KeyMaterial::new(Algorithm::AesGcm16_256, &[0x42; 36]).unwrap()
    }

    #[test]
    fn padding_is_stripped() {
        let body = seal(&key(), b"hdr", &[1, 2, 3, 0, 0, 2]);
        assert_eq!(open_sk(&key(), b"hdr", &body).unwrap(), [1, 2, 3]);
    }

    #[test]
    fn hostile_bodies_are_refused_without_panic() {
        // Shorter than IV, pad length and ICV.
        assert!(open_sk(&key(), b"hdr", &[0; IV_LEN + ICV_LEN]).is_err());
        // Authentic, but the pad length claims more bytes than there are.
        let body = seal(&key(), b"hdr", &[1, 2, 3, 200]);
        assert_eq!(
            open_sk(&key(), b"hdr", &body).unwrap_err(),
            "pad length longer than the plaintext"
        );
        // The AAD is authenticated: another header fails the ICV.
        let body = seal(&key(), b"hdr", &[1, 0]);
        assert!(open_sk(&key(), b"HDR", &body).unwrap_err().contains("ICV"));
    }
}
