//! ESP security associations (RFC 4303): an outbound SA seals packets in place, an inbound SA
//! opens them in place, both in the caller's buffer and without allocating.
//!
//! Transport and tunnel mode are the same ESP operation (RFC 4303 section 3.1); they differ in
//! what the payload is, which the Next Header field says: [`NEXT_HEADER_GRE`] for the DMVPN
//! transport-mode shape, [`NEXT_HEADER_IPV4`] or [`NEXT_HEADER_IPV6`] in tunnel mode.
//!
//! The buffer of a sealed or opened packet:
//!
//! ```text
//! 0        8        16                   16+payload_len                        len
//! | SPI,seq |   IV   |      payload       | padding | pad len | next hdr |  ICV  |
//!                    ^ PAYLOAD_OFFSET     '------------ encrypted -------'
//! ```

use core::ops::Range;
use std::time::Instant;

use dmvpn_wire::esp::{self, Trailer};

use crate::algorithm::{
    Aad, Algorithm, Cipher, ConfigError, ICV_LEN, IV_LEN, KeyMaterial, SequenceNumbers,
};
use crate::counters::{InboundCounters, OutboundCounters};
use crate::lifetime::{Lifetime, LifetimeConfig, LifetimeEvent};
use crate::replay::{ReplayError, ReplayWindow};

/// Next Header of a GRE payload: transport mode, the DMVPN shape (IANA protocol 47).
pub const NEXT_HEADER_GRE: u8 = 47;
/// Next Header of an IPv4 packet: tunnel mode (IANA protocol 4).
pub const NEXT_HEADER_IPV4: u8 = 4;
/// Next Header of an IPv6 packet: tunnel mode (IANA protocol 41).
pub const NEXT_HEADER_IPV6: u8 = 41;
/// Next Header of a dummy packet, which the receiver must drop (RFC 4303 section 2.6).
pub const NEXT_HEADER_DUMMY: u8 = 59;

/// Where the payload starts in a sealed or opened packet: after the ESP header and the IV.
pub const PAYLOAD_OFFSET: usize = esp::HEADER_LEN + IV_LEN;

/// Bytes the plaintext is padded to (RFC 4303 section 2.4: the ICV must be 4-byte aligned;
/// the AEADs here are stream-like and need no block alignment).
const ALIGNMENT: usize = 4;

/// Sequence numbers left when the sender asks for a rekey of its own accord, so that the
/// rekey completes long before the counter must stop (RFC 4303 section 3.3.3).
pub const SEQUENCE_SOFT_MARGIN: u64 = 1 << 24;

/// Bytes of a sealed packet with `payload_len` bytes of payload: header, IV, payload padded
/// with the trailer to 4 bytes, ICV.
pub const fn sealed_len(payload_len: usize) -> usize {
    let t = Trailer::for_payload(payload_len, 0, ALIGNMENT);
    PAYLOAD_OFFSET + payload_len + t.buffer_len() + ICV_LEN
}

/// The parameters both directions of an SA share, apart from the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SaConfig {
    /// The SPI in the packets: chosen by the receiver (RFC 4303 section 2.1).
    pub spi: u32,
    /// 32-bit or extended sequence numbers.
    pub sequence_numbers: SequenceNumbers,
    /// Soft and hard limits.
    pub lifetime: LifetimeConfig,
}

impl SaConfig {
    fn check(&self) -> Result<(), ConfigError> {
        // RFC 4303 section 2.1: 1 to 255 are reserved by IANA, 0 for local use (and on UDP
        // 4500 it is the non-ESP marker).
        if self.spi < 256 {
            return Err(ConfigError::ReservedSpi { spi: self.spi });
        }
        Ok(())
    }
}

/// Why a packet could not be sealed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum SealError {
    /// A hard lifetime was reached (RFC 4301 section 4.4.2.1).
    #[error("the SA reached a hard lifetime")]
    Expired,
    /// The last sequence number was used; the SA must be rekeyed (RFC 4303 section 3.3.3).
    #[error("sequence numbers exhausted: the SA must be rekeyed")]
    SequenceExhausted,
    /// The buffer cannot hold the sealed packet.
    #[error("buffer too small: the sealed packet needs {needed} bytes")]
    BufferTooSmall {
        /// Bytes the packet needs ([`sealed_len`]).
        needed: usize,
    },
    /// The AEAD refused the input (a payload beyond its length limit).
    #[error("the AEAD refused the payload")]
    Crypto,
    /// No outbound SA has this SPI (from the SA database).
    #[error("no outbound SA with this SPI")]
    UnknownSpi,
}

impl SealError {
    /// A short stable name for metrics.
    pub const fn metric_label(&self) -> &'static str {
        match self {
            SealError::Expired => "expired",
            SealError::SequenceExhausted => "sequence_exhausted",
            SealError::BufferTooSmall { .. } => "buffer_too_small",
            SealError::Crypto => "crypto",
            SealError::UnknownSpi => "unknown_spi",
        }
    }
}

/// Why an inbound packet was dropped: one variant per reason, each counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum OpenError {
    /// No inbound SA has the packet's SPI (RFC 4303 section 3.4.2).
    #[error("no inbound SA with this SPI")]
    UnknownSpi,
    /// Too short for header, IV, trailer and ICV, or not 4-byte aligned (RFC 4303 section 2.4).
    #[error("packet too short or misaligned for the transform")]
    Truncated,
    /// A replayed or too old sequence number (RFC 4303 section 3.4.3).
    #[error("anti-replay: {0}")]
    Replay(#[from] ReplayError),
    /// The ICV did not verify (RFC 4303 section 3.4.4).
    #[error("ICV verification failed")]
    Icv,
    /// The packet is authentic but its padding or pad length is wrong (RFC 4303 section 2.4).
    #[error("bad padding or pad length in the ESP trailer")]
    BadTrailer,
    /// A hard lifetime was reached (RFC 4301 section 4.4.2.1).
    #[error("the SA reached a hard lifetime")]
    Expired,
}

impl OpenError {
    /// A short stable name for metrics.
    pub const fn metric_label(&self) -> &'static str {
        match self {
            OpenError::UnknownSpi => "unknown_spi",
            OpenError::Truncated => "truncated",
            OpenError::Replay(ReplayError::Duplicate) => "replay_duplicate",
            OpenError::Replay(ReplayError::TooOld) => "replay_too_old",
            OpenError::Icv => "icv",
            OpenError::BadTrailer => "bad_trailer",
            OpenError::Expired => "expired",
        }
    }
}

/// What [`InboundSa::open`] found in a packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    /// The SPI of the SA that opened it.
    pub spi: u32,
    /// Where the decrypted payload lies in the buffer (starting at [`PAYLOAD_OFFSET`]).
    pub payload: Range<usize>,
    /// The protocol of the payload: [`NEXT_HEADER_GRE`], [`NEXT_HEADER_IPV4`], ... A
    /// [`NEXT_HEADER_DUMMY`] packet must be dropped by the caller (RFC 4303 section 2.6).
    pub next_header: u8,
    /// The full sequence number (with ESN, the inferred 64-bit value).
    pub sequence: u64,
}

/// The sending side of an SA (RFC 4303 section 3.1 to 3.3).
#[derive(Debug)]
pub struct OutboundSa {
    spi: u32,
    cipher: Cipher,
    sequence_numbers: SequenceNumbers,
    /// The sequence number of the next packet; `None` once the last one was used.
    next: Option<u64>,
    /// The last sequence number the SA may send (RFC 4303 section 3.3.3).
    last: u64,
    /// Also the count of packets and payload bytes sealed.
    lifetime: Lifetime,
    /// The error counters; the packet and byte counts stay zero here.
    errors: OutboundCounters,
}

impl OutboundSa {
    /// Installs an outbound SA at `now`; its first packet carries sequence number 1 (RFC 4303
    /// section 3.3.3).
    ///
    /// # Errors
    /// [`ConfigError::ReservedSpi`] for an SPI below 256.
    pub fn new(config: SaConfig, key: &KeyMaterial, now: Instant) -> Result<Self, ConfigError> {
        config.check()?;
        Ok(OutboundSa {
            spi: config.spi,
            cipher: Cipher::new(key)?,
            sequence_numbers: config.sequence_numbers,
            next: Some(1),
            last: match config.sequence_numbers {
                SequenceNumbers::Short => u32::MAX as u64,
                SequenceNumbers::Extended => u64::MAX,
            },
            lifetime: Lifetime::new(config.lifetime, now),
            errors: OutboundCounters::default(),
        })
    }

    /// The SPI.
    pub const fn spi(&self) -> u32 {
        self.spi
    }

    /// The transform.
    pub const fn algorithm(&self) -> Algorithm {
        self.cipher.algorithm()
    }

    /// 32-bit or extended sequence numbers.
    pub const fn sequence_numbers(&self) -> SequenceNumbers {
        self.sequence_numbers
    }

    /// The sequence number the next packet will carry, `None` when exhausted.
    pub const fn next_sequence(&self) -> Option<u64> {
        self.next
    }

    /// The counters (the packet and byte counts are the lifetime's).
    pub const fn counters(&self) -> OutboundCounters {
        self.errors
            .with_sealed(self.lifetime.packets(), self.lifetime.bytes())
    }

    /// The lifetime.
    pub const fn lifetime(&self) -> &Lifetime {
        &self.lifetime
    }

    /// Seals in place the `payload_len` bytes of payload the caller put at
    /// `buf[PAYLOAD_OFFSET..]`: writes the ESP header and IV before them, the trailer after
    /// them, encrypts payload and trailer, appends the ICV, and returns the packet's length
    /// ([`sealed_len`]). The IV is the 64-bit sequence number, unique per key as RFC 4106
    /// section 3.1 requires.
    ///
    /// # Errors
    /// [`SealError::Expired`], [`SealError::SequenceExhausted`] (the counter never wraps:
    /// RFC 4303 section 3.3.3), [`SealError::BufferTooSmall`]; each is counted, and the
    /// buffer is then untouched.
    pub fn seal(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        payload_len: usize,
        next_header: u8,
    ) -> Result<usize, SealError> {
        match self.seal_inner(now, buf, payload_len, next_header) {
            Ok(len) => Ok(len),
            Err(e) => {
                self.errors.failed(&e);
                Err(e)
            }
        }
    }

    /// Copies `payload` to `out[PAYLOAD_OFFSET..]` and seals it there; for callers whose
    /// payload is not already in place.
    ///
    /// # Errors
    /// As [`OutboundSa::seal`].
    pub fn seal_from(
        &mut self,
        now: Instant,
        payload: &[u8],
        next_header: u8,
        out: &mut [u8],
    ) -> Result<usize, SealError> {
        let needed = sealed_len(payload.len());
        let Some(dst) = out.get_mut(PAYLOAD_OFFSET..PAYLOAD_OFFSET + payload.len()) else {
            let e = SealError::BufferTooSmall { needed };
            self.errors.failed(&e);
            return Err(e);
        };
        dst.copy_from_slice(payload);
        self.seal(now, out, payload.len(), next_header)
    }

    fn seal_inner(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        payload_len: usize,
        next_header: u8,
    ) -> Result<usize, SealError> {
        if self.lifetime.is_expired(now) {
            return Err(SealError::Expired);
        }
        let seq = self.next.ok_or(SealError::SequenceExhausted)?;
        // RFC 4303 section 2.4: payload, padding and the two trailer bytes fill whole words.
        let trailer = Trailer::for_payload(payload_len, next_header, ALIGNMENT);
        let plain_len = payload_len + trailer.buffer_len();
        let len = PAYLOAD_OFFSET + plain_len + ICV_LEN;
        let Some(packet) = buf.get_mut(..len) else {
            return Err(SealError::BufferTooSmall { needed: len });
        };
        let (head, rest) = packet.split_at_mut(PAYLOAD_OFFSET);
        let (plain, icv) = rest.split_at_mut(plain_len);
        // SPI and the low half of the sequence number, then the IV (RFC 4106 section 3.1).
        let iv = seq.to_be_bytes();
        let written = esp::Header {
            spi: self.spi,
            sequence: seq as u32,
        }
        .emit(head)
        .and_then(|()| trailer.emit(&mut plain[payload_len..]));
        // The slices were cut to exactly the header and trailer lengths above.
        written.map_err(|_| SealError::BufferTooSmall { needed: len })?;
        head[esp::HEADER_LEN..].copy_from_slice(&iv);
        let aad = Aad::new(self.spi, seq, self.sequence_numbers);
        let tag = self
            .cipher
            .seal(iv, &aad, plain)
            .map_err(|_| SealError::Crypto)?;
        icv.copy_from_slice(tag.as_ref());

        self.next = if seq == self.last {
            None
        } else {
            Some(seq + 1)
        };
        if self.last - seq <= SEQUENCE_SOFT_MARGIN {
            self.lifetime.reach_soft();
        }
        self.lifetime.record(now, payload_len);
        Ok(len)
    }

    /// Checks the time limits at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.lifetime.handle_timeout(now);
    }

    /// When [`OutboundSa::handle_timeout`] should next run.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.lifetime.poll_timeout()
    }

    /// The next lifetime event (rekey needed, expired), each reported once.
    pub fn poll_event(&mut self) -> Option<LifetimeEvent> {
        self.lifetime.poll_event()
    }
}

/// The receiving side of an SA (RFC 4303 section 3.4).
#[derive(Debug)]
pub struct InboundSa {
    spi: u32,
    cipher: Cipher,
    sequence_numbers: SequenceNumbers,
    pub(crate) window: ReplayWindow,
    /// Also the count of packets and payload bytes opened.
    lifetime: Lifetime,
    /// The error counters; the packet and byte counts stay zero here.
    errors: InboundCounters,
}

impl InboundSa {
    /// Installs an inbound SA at `now` with an empty replay window.
    ///
    /// # Errors
    /// [`ConfigError::ReservedSpi`] for an SPI below 256.
    pub fn new(config: SaConfig, key: &KeyMaterial, now: Instant) -> Result<Self, ConfigError> {
        config.check()?;
        Ok(InboundSa {
            spi: config.spi,
            cipher: Cipher::new(key)?,
            sequence_numbers: config.sequence_numbers,
            window: ReplayWindow::new(),
            lifetime: Lifetime::new(config.lifetime, now),
            errors: InboundCounters::default(),
        })
    }

    /// The SPI.
    pub const fn spi(&self) -> u32 {
        self.spi
    }

    /// The transform.
    pub const fn algorithm(&self) -> Algorithm {
        self.cipher.algorithm()
    }

    /// 32-bit or extended sequence numbers.
    pub const fn sequence_numbers(&self) -> SequenceNumbers {
        self.sequence_numbers
    }

    /// The anti-replay window.
    pub const fn window(&self) -> &ReplayWindow {
        &self.window
    }

    /// The counters (the packet and byte counts are the lifetime's).
    pub const fn counters(&self) -> InboundCounters {
        self.errors
            .with_opened(self.lifetime.packets(), self.lifetime.bytes())
    }

    /// The lifetime.
    pub const fn lifetime(&self) -> &Lifetime {
        &self.lifetime
    }

    /// Opens in place the ESP packet that fills `packet` (from the SPI to the ICV), in the
    /// order of RFC 4303 section 3.4: the cheap anti-replay check first, then ICV verification
    /// and decryption, then the window update, which only an authentic packet makes, then the
    /// trailer. The packet's own SPI is authenticated (it is in the AAD); choosing the SA by
    /// SPI is the SA database's work.
    ///
    /// # Errors
    /// One [`OpenError`] per reason, each counted. After [`OpenError::Icv`] the bytes after
    /// the IV are unspecified (ring clears them); the replay window is unchanged on every
    /// error but [`OpenError::BadTrailer`], whose packet was authentic.
    pub fn open(&mut self, now: Instant, packet: &mut [u8]) -> Result<Opened, OpenError> {
        match self.open_inner(now, packet) {
            Ok(o) => Ok(o),
            Err(e) => {
                self.errors.failed(&e);
                Err(e)
            }
        }
    }

    fn open_inner(&mut self, now: Instant, packet: &mut [u8]) -> Result<Opened, OpenError> {
        if self.lifetime.is_expired(now) {
            return Err(OpenError::Expired);
        }
        let (spi, seq_lo, iv) = {
            let p = esp::Packet::new_checked(&*packet).map_err(|_| OpenError::Truncated)?;
            let (iv, _, _) = p
                .split(self.cipher.algorithm().layout())
                .map_err(|_| OpenError::Truncated)?;
            let mut iv_bytes = [0; IV_LEN];
            iv_bytes.copy_from_slice(iv);
            (p.spi(), p.sequence(), iv_bytes)
        };
        let seq = match self.sequence_numbers {
            SequenceNumbers::Short => u64::from(seq_lo),
            SequenceNumbers::Extended => self.window.infer_esn(seq_lo),
        };
        self.window.check(seq)?;
        let aad = Aad::new(spi, seq, self.sequence_numbers);
        let encrypted = packet
            .get_mut(PAYLOAD_OFFSET..)
            .ok_or(OpenError::Truncated)?;
        let plain = self
            .cipher
            .open(iv, &aad, encrypted)
            .ok_or(OpenError::Icv)?;
        // Checked above, and `&mut self` kept the window as it was.
        self.window.accept(seq);
        let (payload, trailer) = Trailer::parse(plain).map_err(|_| OpenError::BadTrailer)?;
        let payload_len = payload.len();
        self.lifetime.record(now, payload_len);
        Ok(Opened {
            spi,
            payload: PAYLOAD_OFFSET..PAYLOAD_OFFSET + payload_len,
            next_header: trailer.next_header,
            sequence: seq,
        })
    }

    /// Checks the time limits at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.lifetime.handle_timeout(now);
    }

    /// When [`InboundSa::handle_timeout`] should next run.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.lifetime.poll_timeout()
    }

    /// The next lifetime event (rekey needed, expired), each reported once.
    pub fn poll_event(&mut self) -> Option<LifetimeEvent> {
        self.lifetime.poll_event()
    }

    /// Whether a hard limit is reached at `now`.
    pub fn is_expired(&mut self, now: Instant) -> bool {
        self.lifetime.is_expired(now)
    }
}

impl OutboundSa {
    /// Whether a hard limit is reached at `now`.
    pub fn is_expired(&mut self, now: Instant) -> bool {
        self.lifetime.is_expired(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(esn: SequenceNumbers, alg: Algorithm) -> (OutboundSa, InboundSa, Instant) {
        let now = Instant::now();
        let key = KeyMaterial::new(alg, &[7; 36][..alg.key_material_len()]).unwrap();
        let config = SaConfig {
            spi: 0xc0ff_ee01,
            sequence_numbers: esn,
            lifetime: LifetimeConfig::default(),
        };
        (
            OutboundSa::new(config, &key, now).unwrap(),
            InboundSa::new(config, &key, now).unwrap(),
            now,
        )
    }

    #[test]
    fn sequence_numbers_stop_at_the_last() {
        for (esn, last) in [
            (SequenceNumbers::Short, u64::from(u32::MAX)),
            (SequenceNumbers::Extended, u64::MAX),
        ] {
            let (mut out, mut inb, now) = pair(esn, Algorithm::AesGcm16_128);
            out.next = Some(last - 1);
            inb.window.commit(last - 2);
            let mut buf = [0u8; 64];
            for seq in [last - 1, last] {
                let len = out.seal(now, &mut buf, 4, 47).unwrap();
                assert_eq!(inb.open(now, &mut buf[..len]).unwrap().sequence, seq);
            }
            assert_eq!(out.next_sequence(), None);
            assert_eq!(
                out.seal(now, &mut buf, 4, 47),
                Err(SealError::SequenceExhausted)
            );
            assert_eq!(out.counters().replay_rollover, 1);
            // Nearing the end asked for a rekey.
            assert_eq!(out.poll_event(), Some(LifetimeEvent::RekeyNeeded));
        }
    }

    #[test]
    fn esn_crosses_2_pow_32() {
        let (mut out, mut inb, now) = pair(SequenceNumbers::Extended, Algorithm::ChaCha20Poly1305);
        let start = (1u64 << 32) - 3;
        out.next = Some(start);
        inb.window.commit(start - 1);
        let packets: Vec<Vec<u8>> = (0..6)
            .map(|_| {
                let mut b = std::vec![0u8; 64];
                let n = out.seal(now, &mut b, 4, NEXT_HEADER_GRE).unwrap();
                b.truncate(n);
                b
            })
            .collect();
        // Only the low half travels: 0xfffffffd, 0xfffffffe, 0xffffffff, 0, 1, 2.
        assert_eq!(packets[3][4..8], [0, 0, 0, 0]);
        // Delivered out of order across the boundary, each gets its full number back.
        for i in [0usize, 3, 1, 2, 5, 4] {
            let mut p = packets[i].clone();
            let opened = inb.open(now, &mut p).unwrap();
            assert_eq!(opened.sequence, start + i as u64, "packet {i}");
        }
        for i in [1usize, 4] {
            let mut p = packets[i].clone();
            assert_eq!(
                inb.open(now, &mut p),
                Err(OpenError::Replay(ReplayError::Duplicate))
            );
        }
        assert_eq!(inb.window().top(), start + 5);
    }

    #[test]
    fn debug_hides_keys() {
        let now = Instant::now();
        let key = KeyMaterial::new(Algorithm::AesGcm16_256, &[0xa7; 36]).unwrap();
        let config = SaConfig {
            spi: 0x1234,
            sequence_numbers: SequenceNumbers::Short,
            lifetime: LifetimeConfig::default(),
        };
        let out = std::format!("{:?}", OutboundSa::new(config, &key, now).unwrap());
        let inb = std::format!("{:?}", InboundSa::new(config, &key, now).unwrap());
        for dbg in [out, inb] {
            assert!(dbg.contains("<redacted>"), "{dbg}");
            assert!(!dbg.contains("a7") && !dbg.contains("167"), "{dbg}");
        }
    }

    #[test]
    fn reserved_spi_refused() {
        let key = KeyMaterial::new(Algorithm::AesGcm16_128, &[1; 20]).unwrap();
        let config = SaConfig {
            spi: 255,
            sequence_numbers: SequenceNumbers::Short,
            lifetime: LifetimeConfig::default(),
        };
        assert_eq!(
            OutboundSa::new(config, &key, Instant::now()).unwrap_err(),
            ConfigError::ReservedSpi { spi: 255 }
        );
    }

    #[test]
    fn sealed_len_matches() {
        let (mut out, _, now) = pair(SequenceNumbers::Short, Algorithm::ChaCha20Poly1305);
        let mut buf = [0u8; 200];
        for n in 0..100 {
            let len = out.seal(now, &mut buf, n, 4).unwrap();
            assert_eq!(len, sealed_len(n));
            assert_eq!((len - PAYLOAD_OFFSET - ICV_LEN) % 4, 0);
        }
        assert_eq!(
            out.seal(now, &mut buf, 200, 4),
            Err(SealError::BufferTooSmall {
                needed: sealed_len(200)
            })
        );
    }
}
