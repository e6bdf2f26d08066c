//! The Encrypted and Authenticated payload SK (RFC 7296 section 3.14) with an AEAD: AES-GCM
//! with a 16-octet ICV (RFC 5282) and ChaCha20-Poly1305 (RFC 7634).
//!
//! ```text
//! SK data = IV (8) | ciphertext of (inner payloads | padding | pad length) | ICV (16)
//! nonce   = salt (last 4 bytes of SK_e) | IV          (RFC 5282 section 4, RFC 7634 section 2)
//! AAD     = IKE header | SK generic payload header     (RFC 5282 section 5)
//! ```
//!
//! The IV is a per-key counter: RFC 5282 section 3.1 only asks that it never repeat under a
//! key, which a counter guarantees where random IVs would only make it likely. No padding is
//! added (pad length 0): an AEAD needs no block alignment (RFC 5282 section 3.2).

use dmvpn_esp::Algorithm;
use dmvpn_wire::ikev2::{
    Encrypted, EncryptedFragment, ExchangeType, Flags, HEADER_LEN, Packet, Payload, PayloadBody,
    PayloadType, Payloads, Repr,
};
use ring::aead;

use super::CryptoError;

/// Bytes of explicit IV (RFC 5282 section 3.1, RFC 7634 section 2).
pub const IV_LEN: usize = 8;
/// Bytes of ICV: every cipher here has a 16-byte tag.
pub const ICV_LEN: usize = 16;
/// Bytes of salt at the end of SK_e (RFC 5282 section 7.1, RFC 7634 section 4).
pub const SALT_LEN: usize = 4;

/// The fields of an IKE header (RFC 7296 section 3.1) apart from Next Payload and Length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// SPIi.
    pub spi_i: u64,
    /// SPIr.
    pub spi_r: u64,
    /// The exchange type.
    pub exchange: ExchangeType,
    /// The flags.
    pub flags: Flags,
    /// The message ID.
    pub message_id: u32,
}

impl Header {
    /// Emits a message with this header and cleartext `payloads`.
    pub fn encode(&self, payloads: &[Payload<'_>]) -> Option<Vec<u8>> {
        let repr = self.repr(Payloads::Items(payloads));
        let mut buf = vec![0; repr.buffer_len()];
        repr.emit(&mut buf).ok()?;
        Some(buf)
    }

    fn repr<'a>(&self, payloads: Payloads<'a>) -> Repr<'a> {
        Repr {
            initiator_spi: self.spi_i,
            responder_spi: self.spi_r,
            minor_version: 0,
            exchange_type: self.exchange,
            flags: self.flags,
            message_id: self.message_id,
            payloads,
        }
    }
}

/// A decrypted SK or SKF payload (see [`SkKey::open_any`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    /// The payload's Next Payload field: the first inner payload (`None` in SKF fragments
    /// after the first).
    pub first_inner: PayloadType,
    /// The fragment number and total of an SKF payload (RFC 7383 section 2.5).
    pub fragment: Option<(u16, u16)>,
    /// The inner payloads, or this fragment's part of them.
    pub plain: Vec<u8>,
}

/// One direction's SK key: the AEAD key, its salt and the IV counter.
pub struct SkKey {
    algorithm: Algorithm,
    key: aead::LessSafeKey,
    salt: [u8; SALT_LEN],
    next_iv: u64,
}

impl core::fmt::Debug for SkKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SkKey")
            .field("algorithm", &self.algorithm)
            .field("key", &format_args!("<redacted>"))
            .finish_non_exhaustive()
    }
}

fn ring_alg(a: Algorithm) -> &'static aead::Algorithm {
    match a {
        Algorithm::AesGcm16_128 => &aead::AES_128_GCM,
        Algorithm::AesGcm16_256 => &aead::AES_256_GCM,
        Algorithm::ChaCha20Poly1305 => &aead::CHACHA20_POLY1305,
    }
}

impl SkKey {
    /// Keys `algorithm` with SK_e (`key || salt`).
    ///
    /// # Errors
    /// [`CryptoError::KeyGeneration`] for key material of the wrong length.
    pub fn new(algorithm: Algorithm, sk_e: &[u8]) -> Result<Self, CryptoError> {
        if sk_e.len() != algorithm.key_material_len() {
            return Err(CryptoError::KeyGeneration);
        }
        let (k, s) = sk_e.split_at(algorithm.key_len());
        let key = aead::UnboundKey::new(ring_alg(algorithm), k)
            .map_err(|_| CryptoError::KeyGeneration)?;
        let mut salt = [0; SALT_LEN];
        salt.copy_from_slice(s);
        Ok(SkKey {
            algorithm,
            key: aead::LessSafeKey::new(key),
            salt,
            next_iv: 1,
        })
    }

    fn nonce(&self, iv: &[u8]) -> aead::Nonce {
        let mut n = [0; aead::NONCE_LEN];
        n[..SALT_LEN].copy_from_slice(&self.salt);
        n[SALT_LEN..].copy_from_slice(iv);
        aead::Nonce::assume_unique_for_key(n)
    }

    /// Emits a message with `header` whose payloads are `inner`, protected in an SK payload.
    /// `None` if the codec cannot represent it (an oversized payload).
    pub fn seal(&mut self, header: &Header, inner: &[Payload<'_>]) -> Option<Vec<u8>> {
        let inner = Payloads::Items(inner);
        let mut plain = vec![0; inner.wire_len()];
        inner.emit(&mut plain).ok()?;
        self.seal_plain(header, inner.first_type(), None, &plain)
    }

    /// Emits one fragment message with `header`: an SKF payload (RFC 7383 section 2.5)
    /// protecting `chunk`, this fragment's part of the inner payloads. Its AAD is the IKE
    /// header and the SKF payload header with the fragment numbers, as for SK (RFC 7383
    /// section 2.5, RFC 5282 section 5). `first_inner` is `PayloadType::None` after fragment 1.
    pub fn seal_fragment(
        &mut self,
        header: &Header,
        first_inner: PayloadType,
        number: u16,
        total: u16,
        chunk: &[u8],
    ) -> Option<Vec<u8>> {
        self.seal_plain(header, first_inner, Some((number, total)), chunk)
    }

    fn seal_plain(
        &mut self,
        header: &Header,
        first_inner: PayloadType,
        fragment: Option<(u16, u16)>,
        plain: &[u8],
    ) -> Option<Vec<u8>> {
        let data_len = IV_LEN + plain.len() + 1 + ICV_LEN;
        let placeholder = vec![0; data_len];
        let body = match fragment {
            None => PayloadBody::Encrypted(Encrypted {
                first_inner,
                data: &placeholder,
            }),
            Some((fragment_number, total_fragments)) => {
                PayloadBody::EncryptedFragment(EncryptedFragment {
                    first_inner,
                    fragment_number,
                    total_fragments,
                    data: &placeholder,
                })
            }
        };
        let mut buf = header.encode(&[Payload::new(body)])?;
        let start = buf.len() - data_len;
        let iv = self.next_iv.to_be_bytes();
        self.next_iv = self.next_iv.checked_add(1)?;
        buf[start..start + IV_LEN].copy_from_slice(&iv);
        let body = start + IV_LEN;
        buf[body..body + plain.len()].copy_from_slice(plain);
        // Pad length 0, no padding.
        buf[body + plain.len()] = 0;
        let (aad, rest) = buf.split_at_mut(start);
        let (in_out, tag_out) = rest[IV_LEN..].split_at_mut(plain.len() + 1);
        let tag = self
            .key
            .seal_in_place_separate_tag(self.nonce(&iv), aead::Aad::from(&*aad), in_out)
            .ok()?;
        tag_out.copy_from_slice(tag.as_ref());
        Some(buf)
    }

    /// Authenticates and decrypts the SK payload of `message` (a whole IKE message that
    /// passed [`Packet::new_checked`]), returning the first inner payload type and the inner
    /// payload bytes.
    ///
    /// # Errors
    /// [`CryptoError::Malformed`] without an SK payload or with a data field too short;
    /// [`CryptoError::Icv`] when the ICV does not verify.
    pub fn open(&self, message: &[u8]) -> Result<(PayloadType, Vec<u8>), CryptoError> {
        match self.open_any(message)? {
            Opened {
                first_inner,
                fragment: None,
                plain,
            } => Ok((first_inner, plain)),
            Opened { .. } => Err(CryptoError::Malformed),
        }
    }

    /// Authenticates and decrypts the last payload of `message`, SK or SKF (RFC 7383 section
    /// 2.5): its Next Payload field, its fragment number and total for SKF, and the
    /// plaintext (inner payloads, or this fragment's part of them).
    ///
    /// # Errors
    /// As [`SkKey::open`].
    pub fn open_any(&self, message: &[u8]) -> Result<Opened, CryptoError> {
        let packet = Packet::new_checked(message).map_err(|_| CryptoError::Malformed)?;
        let len = packet.length() as usize;
        let repr = Repr::parse(&packet).map_err(|_| CryptoError::Malformed)?;
        let (first, numbers, data) = match repr.payloads.iter().last().map(|p| p.body) {
            Some(PayloadBody::Encrypted(sk)) => (sk.first_inner, None, sk.data),
            Some(PayloadBody::EncryptedFragment(skf)) => (
                skf.first_inner,
                Some((skf.fragment_number, skf.total_fragments)),
                skf.data,
            ),
            _ => return Err(CryptoError::Malformed),
        };
        if data.len() < IV_LEN + 1 + ICV_LEN {
            return Err(CryptoError::Malformed);
        }
        let start = len - data.len();
        if start < HEADER_LEN {
            return Err(CryptoError::Malformed);
        }
        let aad = message.get(..start).ok_or(CryptoError::Malformed)?;
        let (iv, sealed) = data.split_at(IV_LEN);
        let mut in_out = sealed.to_vec();
        let plain = self
            .key
            .open_in_place(self.nonce(iv), aead::Aad::from(aad), &mut in_out)
            .map_err(|_| CryptoError::Icv)?;
        let (&pad, rest) = plain.split_last().ok_or(CryptoError::Malformed)?;
        let keep = rest
            .len()
            .checked_sub(usize::from(pad))
            .ok_or(CryptoError::Malformed)?;
        in_out.truncate(keep);
        Ok(Opened {
            first_inner: first,
            fragment: numbers,
            plain: in_out,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dmvpn_wire::ikev2::{Nonce, Notification, NotifyType};

    fn header() -> Header {
        Header {
            spi_i: 1,
            spi_r: 2,
            exchange: ExchangeType::Informational,
            flags: Flags::INITIATOR,
            message_id: 7,
        }
    }

    #[test]
    fn seal_open_round_trip_and_tamper() {
        for alg in Algorithm::ALL {
            let sk_e = vec![0x42; alg.key_material_len()];
            let mut tx = SkKey::new(alg, &sk_e).unwrap();
            let rx = SkKey::new(alg, &sk_e).unwrap();
            let n = [0x11; 32];
            let inner = [
                Payload::new(PayloadBody::Nonce(Nonce(&n))),
                Payload::new(PayloadBody::Notify(Notification::new(
                    NotifyType::UseTransportMode,
                    &[],
                ))),
            ];
            let msg = tx.seal(&header(), &inner).unwrap();
            let again = tx.seal(&header(), &inner).unwrap();
            assert_ne!(msg, again, "the IV must change");
            let (first, plain) = rx.open(&msg).unwrap();
            assert_eq!(first, PayloadType::Nonce);
            let parsed = Payloads::parse(first, &plain).unwrap();
            assert_eq!(parsed, Payloads::Items(&inner));
            // Any flipped bit, header included, fails the ICV.
            for i in [0, 19, 30, msg.len() - 1, msg.len() / 2] {
                let mut bad = msg.clone();
                bad[i] ^= 1;
                assert!(rx.open(&bad).is_err(), "{alg:?} byte {i}");
            }
            let other = SkKey::new(alg, &vec![0x43; alg.key_material_len()]).unwrap();
            assert_eq!(other.open(&msg).unwrap_err(), CryptoError::Icv);
        }
    }

    #[test]
    fn fragment_seal_open_round_trip_and_tamper() {
        let sk_e = vec![0x42; Algorithm::AesGcm16_256.key_material_len()];
        let mut tx = SkKey::new(Algorithm::AesGcm16_256, &sk_e).unwrap();
        let rx = SkKey::new(Algorithm::AesGcm16_256, &sk_e).unwrap();
        let msg = tx
            .seal_fragment(&header(), PayloadType::IdI, 1, 3, b"chunk one")
            .unwrap();
        // RFC 7383 section 2.5: the IKE header names SKF (53).
        assert_eq!(msg[16], 53);
        assert_eq!(
            rx.open_any(&msg).unwrap(),
            Opened {
                first_inner: PayloadType::IdI,
                fragment: Some((1, 3)),
                plain: b"chunk one".to_vec()
            }
        );
        assert_eq!(rx.open(&msg).unwrap_err(), CryptoError::Malformed);
        // The fragment numbers are authenticated (AAD).
        let mut bad = msg.clone();
        bad[HEADER_LEN + 7] ^= 1;
        assert_eq!(rx.open_any(&bad).unwrap_err(), CryptoError::Icv);
        let later = tx
            .seal_fragment(&header(), PayloadType::None, 3, 3, b"")
            .unwrap();
        assert_eq!(
            rx.open_any(&later).unwrap(),
            Opened {
                first_inner: PayloadType::None,
                fragment: Some((3, 3)),
                plain: Vec::new()
            }
        );
    }

    #[test]
    fn refuses_short_and_cleartext() {
        let k = SkKey::new(Algorithm::AesGcm16_128, &[1; 20]).unwrap();
        let clear = header().encode(&[]).unwrap();
        assert_eq!(k.open(&clear).unwrap_err(), CryptoError::Malformed);
        assert!(SkKey::new(Algorithm::AesGcm16_128, &[1; 16]).is_err());
        assert!(format!("{k:?}").contains("<redacted>"));
    }
}
