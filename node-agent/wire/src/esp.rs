//! ESP framing (RFC 4303): the cleartext header (SPI, sequence number), the opaque
//! IV | ciphertext | ICV that follows, and the trailer inside the plaintext (padding, pad
//! length, next header). Encryption and integrity belong to the ESP engine.
//!
//! ```text
//! +---------------------------------------------------------------+
//! |               Security Parameters Index (SPI)                 |
//! +---------------------------------------------------------------+
//! |                      Sequence Number                          |
//! +---------------------------------------------------------------+---
//! |                    IV (per algorithm)                         | ^
//! +---------------------------------------------------------------+ |
//! ~                    Payload Data*                              ~ | encrypted
//! +               +-----------------------------------------------+ |
//! |               |     Padding (0-255 bytes)                     | |
//! +---------------+---------------+-------------+-----------------+ |
//! |                               |  Pad Length | Next Header     | v
//! +---------------------------------------------------------------+---
//! |         Integrity Check Value (ICV, per algorithm)            |
//! +---------------------------------------------------------------+
//! ```

use crate::{Error, Result};

/// IP protocol number of ESP.
pub const IP_PROTOCOL: u8 = 50;

/// Length of the cleartext header (SPI and sequence number).
pub const HEADER_LEN: usize = 8;

/// Length of the trailer's fixed part (pad length and next header).
pub const TRAILER_LEN: usize = 2;

enum_with_unknown! {
    /// ESP transforms whose framing this crate knows: IANA "Transform Type 1 - Encryption
    /// Algorithm Transform IDs", the values IKEv2 negotiates.
    pub enum Algorithm(u16) {
        /// AES-GCM with a 16-byte ICV (RFC 4106), 128 or 256-bit key.
        AesGcm16 = 20,
        /// AES-GCM with a 12-byte ICV (RFC 4106).
        AesGcm12 = 19,
        /// AES-GCM with an 8-byte ICV (RFC 4106).
        AesGcm8 = 18,
        /// ChaCha20-Poly1305 (RFC 7634).
        ChaCha20Poly1305 = 28,
    }
}

/// Where the IV and the ICV sit for one algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Layout {
    /// Bytes of explicit IV after the sequence number.
    pub iv_len: usize,
    /// Bytes of ICV at the end of the packet.
    pub icv_len: usize,
    /// The plaintext (payload, padding, trailer) must be a multiple of this; 4 for the
    /// stream-like AEADs (RFC 4303 section 2.4 requires 4-byte alignment of the ICV).
    pub alignment: usize,
}

impl Algorithm {
    /// The packet layout of the algorithm, or `None` for one this crate does not know.
    pub const fn layout(self) -> Option<Layout> {
        let icv_len = match self {
            Algorithm::AesGcm16 | Algorithm::ChaCha20Poly1305 => 16,
            Algorithm::AesGcm12 => 12,
            Algorithm::AesGcm8 => 8,
            Algorithm::Unknown(_) => return None,
        };
        // RFC 4106 section 3.1 and RFC 7634 section 2: an 8-byte explicit IV.
        Some(Layout {
            iv_len: 8,
            icv_len,
            alignment: 4,
        })
    }
}

mod field {
    use core::ops::Range;
    pub const SPI: Range<usize> = 0..4;
    pub const SEQUENCE: Range<usize> = 4..8;
}

/// A read/write view of an ESP packet.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking it; accessors may panic on a short buffer.
    pub const fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }

    /// Wraps a buffer and checks that the header is present and the SPI is not zero (RFC 4303
    /// section 2.1 reserves 0 for local use; on UDP port 4500 it is the non-ESP marker).
    ///
    /// # Errors
    /// [`Error::Truncated`] or [`Error::Malformed`].
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Self::new_unchecked(buffer);
        if p.buffer.as_ref().len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if p.spi() == 0 {
            return Err(Error::Malformed);
        }
        Ok(p)
    }

    #[inline]
    fn u32_at(&self, at: usize) -> u32 {
        let b = self.buffer.as_ref();
        u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
    }

    /// The Security Parameters Index.
    #[inline]
    pub fn spi(&self) -> u32 {
        self.u32_at(field::SPI.start)
    }

    /// The sequence number (the low 32 bits when extended sequence numbers are in use).
    #[inline]
    pub fn sequence(&self) -> u32 {
        self.u32_at(field::SEQUENCE.start)
    }

    /// Everything after the header: IV, ciphertext and ICV.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }

    /// Splits the payload into IV, ciphertext and ICV for `layout`.
    ///
    /// # Errors
    /// [`Error::Truncated`] when the payload cannot hold the IV, the ICV and a trailer, and
    /// [`Error::BadLength`] when the ciphertext is not aligned as the layout requires.
    #[inline]
    pub fn split(&self, layout: Layout) -> Result<(&[u8], &[u8], &[u8])> {
        let payload = self.payload();
        if payload.len() < layout.iv_len + TRAILER_LEN + layout.icv_len {
            return Err(Error::Truncated);
        }
        let (iv, rest) = payload.split_at(layout.iv_len);
        let (ciphertext, icv) = rest.split_at(rest.len() - layout.icv_len);
        if !ciphertext.len().is_multiple_of(layout.alignment) {
            return Err(Error::BadLength);
        }
        Ok((iv, ciphertext, icv))
    }
}

/// The cleartext fields of an ESP packet; the rest stays opaque.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Repr<'a> {
    /// Security Parameters Index.
    pub spi: u32,
    /// Sequence number (low 32 bits).
    pub sequence: u32,
    /// IV, ciphertext and ICV.
    #[serde(serialize_with = "crate::hex::serialize")]
    pub payload: &'a [u8],
}

impl<'a> Repr<'a> {
    /// Reads a checked packet.
    ///
    /// # Errors
    /// None today; the signature matches the other codecs.
    pub fn parse(packet: &Packet<&'a [u8]>) -> Result<Self> {
        let b: &'a [u8] = packet.buffer;
        Ok(Repr {
            spi: packet.spi(),
            sequence: packet.sequence(),
            payload: &b[HEADER_LEN..],
        })
    }

    /// The length this representation emits.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN + self.payload.len()
    }

    /// Writes header and payload at the start of `buf`.
    ///
    /// # Errors
    /// [`Error::BufferTooSmall`], or [`Error::Unrepresentable`] for SPI 0.
    pub fn emit(&self, buf: &mut [u8]) -> Result<()> {
        if self.spi == 0 {
            return Err(Error::Unrepresentable);
        }
        if buf.len() < self.buffer_len() {
            return Err(Error::BufferTooSmall);
        }
        Header {
            spi: self.spi,
            sequence: self.sequence,
        }
        .emit(buf)?;
        buf[HEADER_LEN..self.buffer_len()].copy_from_slice(self.payload);
        Ok(())
    }
}

/// The cleartext header alone, for sealing in place: the engine writes it, then the IV and
/// ciphertext after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Security Parameters Index.
    pub spi: u32,
    /// Sequence number (low 32 bits).
    pub sequence: u32,
}

impl Header {
    /// Writes the SPI and sequence number at the start of `buf`.
    ///
    /// # Errors
    /// [`Error::BufferTooSmall`].
    #[inline]
    pub fn emit(&self, buf: &mut [u8]) -> Result<()> {
        if buf.len() < HEADER_LEN {
            return Err(Error::BufferTooSmall);
        }
        buf[field::SPI].copy_from_slice(&self.spi.to_be_bytes());
        buf[field::SEQUENCE].copy_from_slice(&self.sequence.to_be_bytes());
        Ok(())
    }
}

/// The trailer at the end of the plaintext (RFC 4303 sections 2.4 to 2.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Trailer {
    /// Number of padding bytes before the pad length byte.
    pub pad_len: u8,
    /// Protocol of the payload: 4 IPv4 (tunnel mode), 41 IPv6, 47 GRE (transport mode),
    /// 59 dummy.
    pub next_header: u8,
}

impl Trailer {
    /// The trailer for a payload of `payload_len` bytes padded to `alignment` with the
    /// default padding. `alignment` is taken between 1 and 256, the padding field's range.
    #[inline]
    pub const fn for_payload(payload_len: usize, next_header: u8, alignment: usize) -> Self {
        let alignment = if alignment == 0 {
            1
        } else if alignment > 256 {
            256
        } else {
            alignment
        };
        let unaligned = (payload_len + TRAILER_LEN) % alignment;
        let pad_len = if unaligned == 0 {
            0
        } else {
            alignment - unaligned
        };
        Trailer {
            pad_len: pad_len as u8,
            next_header,
        }
    }

    /// The bytes the trailer takes: padding, pad length and next header.
    #[inline]
    pub const fn buffer_len(&self) -> usize {
        self.pad_len as usize + TRAILER_LEN
    }

    /// Splits decrypted plaintext into the payload and the trailer, checking that the padding
    /// is the default sequence 1, 2, 3, ... (RFC 4303 section 2.4).
    ///
    /// # Errors
    /// [`Error::Truncated`] when the pad length exceeds the plaintext, [`Error::Malformed`]
    /// for padding that is not the default sequence.
    #[inline]
    pub fn parse(plaintext: &[u8]) -> Result<(&[u8], Trailer)> {
        let [.., pad_len, next_header] = *plaintext else {
            return Err(Error::Truncated);
        };
        let body = &plaintext[..plaintext.len() - TRAILER_LEN];
        let pad = usize::from(pad_len);
        if body.len() < pad {
            return Err(Error::Truncated);
        }
        let (payload, padding) = body.split_at(body.len() - pad);
        // At most 255 bytes, so `i + 1` fits the u8 it is compared with.
        if padding
            .iter()
            .enumerate()
            .any(|(i, &b)| usize::from(b) != i + 1)
        {
            return Err(Error::Malformed);
        }
        Ok((
            payload,
            Trailer {
                pad_len,
                next_header,
            },
        ))
    }

    /// Writes padding, pad length and next header at the start of `buf` (right after the
    /// payload).
    ///
    /// # Errors
    /// [`Error::BufferTooSmall`].
    #[inline]
    pub fn emit(&self, buf: &mut [u8]) -> Result<()> {
        let len = self.buffer_len();
        if buf.len() < len {
            return Err(Error::BufferTooSmall);
        }
        // At most 255 bytes: `i + 1` fits a u8.
        for (i, b) in buf[..usize::from(self.pad_len)].iter_mut().enumerate() {
            *b = (i + 1) as u8;
        }
        buf[len - 2] = self.pad_len;
        buf[len - 1] = self.next_header;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rejects_bad_input() {
        assert_eq!(
            Packet::new_checked(&[1u8; 7][..]).unwrap_err(),
            Error::Truncated
        );
        assert_eq!(
            Packet::new_checked(&[0u8; 8][..]).unwrap_err(),
            Error::Malformed
        );
        let layout = Algorithm::AesGcm16.layout().unwrap();
        let short = [0, 0, 0, 1, 0, 0, 0, 1, 0, 0];
        let p = Packet::new_checked(&short[..]).unwrap();
        assert_eq!(p.split(layout).unwrap_err(), Error::Truncated);
        assert_eq!(Trailer::parse(&[1]).unwrap_err(), Error::Truncated);
        assert_eq!(Trailer::parse(&[9, 47]).unwrap_err(), Error::Truncated);
        assert_eq!(
            Trailer::parse(&[0xaa, 1, 3, 2, 47]).unwrap_err(),
            Error::Malformed
        );
    }

    #[test]
    fn longest_padding_round_trips() {
        // Found in review: numbering 255 padding bytes used to overflow a u8 counter.
        let t = Trailer {
            pad_len: 255,
            next_header: 4,
        };
        let mut buf = [0u8; 257];
        t.emit(&mut buf).unwrap();
        assert_eq!((buf[254], buf[255], buf[256]), (255, 255, 4));
        assert_eq!(Trailer::parse(&buf).unwrap(), (&[][..], t));
    }

    #[test]
    fn trailer_pads_to_four() {
        for len in 0..16 {
            let t = Trailer::for_payload(len, 47, 4);
            assert_eq!((len + t.buffer_len()) % 4, 0);
            assert!(t.pad_len < 4);
        }
    }

    #[test]
    fn layouts() {
        assert_eq!(Algorithm::from(20).layout().unwrap().icv_len, 16);
        assert_eq!(Algorithm::from(28).layout().unwrap().iv_len, 8);
        assert_eq!(Algorithm::from(12).layout(), None);
    }

    proptest! {
        #[test]
        fn repr_round_trip(
            spi in 1u32..,
            sequence in any::<u32>(),
            payload in proptest::collection::vec(any::<u8>(), 0..128),
        ) {
            let repr = Repr { spi, sequence, payload: &payload };
            let mut buf = std::vec![0u8; repr.buffer_len()];
            repr.emit(&mut buf).unwrap();
            let p = Packet::new_checked(&buf[..]).unwrap();
            prop_assert_eq!(Repr::parse(&p).unwrap(), repr);
            prop_assert_eq!(p.spi(), spi);
            prop_assert_eq!(p.sequence(), sequence);
        }

        #[test]
        fn trailer_round_trip(
            payload in proptest::collection::vec(any::<u8>(), 0..64),
            next_header in any::<u8>(),
            alignment in prop_oneof![Just(4usize), Just(16usize), Just(256usize)],
        ) {
            let t = Trailer::for_payload(payload.len(), next_header, alignment);
            let mut plain = payload.clone();
            plain.resize(payload.len() + t.buffer_len(), 0);
            t.emit(&mut plain[payload.len()..]).unwrap();
            prop_assert_eq!(plain.len() % alignment, 0);
            let (body, parsed) = Trailer::parse(&plain).unwrap();
            prop_assert_eq!(body, &payload[..]);
            prop_assert_eq!(parsed, t);
        }

        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(p) = Packet::new_checked(&bytes[..]) {
                let _ = Repr::parse(&p);
                let _ = p.split(Algorithm::AesGcm8.layout().unwrap());
            }
            let _ = Trailer::parse(&bytes);
        }
    }
}
