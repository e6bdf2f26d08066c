//! GRE (RFC 2784) with the key and sequence number extensions (RFC 2890), and the UDP port of
//! GRE-in-UDP (RFC 8086), which carries the same header when the kernel has no GRE.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |C| |K|S| Reserved0       | Ver |         Protocol Type         |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |      Checksum (optional)      |       Reserved1 (Optional)    |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                         Key (optional)                        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                 Sequence Number (Optional)                    |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```

use crate::{Error, Result, checksum};

/// UDP destination port of GRE-in-UDP (RFC 8086 section 3.1).
pub const GRE_IN_UDP_PORT: u16 = 4754;

/// IP protocol number of GRE.
pub const IP_PROTOCOL: u8 = 47;

enum_with_unknown! {
    /// GRE protocol type: an EtherType (RFC 2784 section 2.4).
    pub enum Protocol(u16) {
        /// IPv4 payload.
        Ipv4 = 0x0800,
        /// IPv6 payload.
        Ipv6 = 0x86dd,
        /// NHRP, carried directly in GRE by Cisco DMVPN and FRR nhrpd (RFC 2332 has it over
        /// LLC/SNAP; DMVPN uses this EtherType).
        Nhrp = 0x2001,
    }
}

mod field {
    use core::ops::Range;
    pub const FLAGS: Range<usize> = 0..2;
    pub const PROTOCOL: Range<usize> = 2..4;
    pub const BASE_LEN: usize = 4;
}

/// Checksum present (RFC 2784 section 2.2).
const FLAG_C: u16 = 0x8000;
/// Key present (RFC 2890 section 2).
const FLAG_K: u16 = 0x2000;
/// Sequence number present (RFC 2890 section 2).
const FLAG_S: u16 = 0x1000;
/// Bits 1, 4 and 5 of Reserved0 (RFC 1701's routing, strict source route and the top
/// recursion bit): RFC 2784 section 2.3 makes a receiver discard the packet when one is set.
/// Bits 2 and 3 are RFC 2890's K and S; bits 6-12 are ignored.
const DISCARD_MASK: u16 = 0x4c00;
/// The version bits; only version 0 is GRE (version 1 is PPTP's enhanced GRE).
const VERSION_MASK: u16 = 0x0007;

/// A read/write view of a GRE packet (header and payload).
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking it; accessors may panic on a short buffer.
    pub const fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }

    /// Wraps a buffer and checks that the header it announces is present, that the version is
    /// 0 and that none of the RFC 1701 bits that RFC 2784 section 2.3 makes a receiver discard
    /// (routing, strict source route, recursion) is set. The other reserved bits and
    /// Reserved1 are ignored on receipt and sent as zero, as that section prescribes.
    ///
    /// # Errors
    /// [`Error::Truncated`], [`Error::BadVersion`] or [`Error::Malformed`].
    pub fn new_checked(buffer: T) -> Result<Self> {
        let packet = Self::new_unchecked(buffer);
        packet.check()?;
        Ok(packet)
    }

    fn check(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < field::BASE_LEN {
            return Err(Error::Truncated);
        }
        if self.flags() & VERSION_MASK != 0 {
            return Err(Error::BadVersion);
        }
        if self.flags() & DISCARD_MASK != 0 {
            return Err(Error::Malformed);
        }
        if len < self.header_len() {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// Consumes the view and returns the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn flags(&self) -> u16 {
        let b = self.buffer.as_ref();
        u16::from_be_bytes([b[field::FLAGS.start], b[field::FLAGS.start + 1]])
    }

    /// Whether the checksum field is present (C bit).
    pub fn has_checksum(&self) -> bool {
        self.flags() & FLAG_C != 0
    }

    /// Whether the key field is present (K bit).
    pub fn has_key(&self) -> bool {
        self.flags() & FLAG_K != 0
    }

    /// Whether the sequence number field is present (S bit).
    pub fn has_sequence(&self) -> bool {
        self.flags() & FLAG_S != 0
    }

    /// The protocol type of the payload.
    pub fn protocol(&self) -> Protocol {
        let b = self.buffer.as_ref();
        Protocol::from(u16::from_be_bytes([
            b[field::PROTOCOL.start],
            b[field::PROTOCOL.start + 1],
        ]))
    }

    fn key_offset(&self) -> usize {
        field::BASE_LEN + if self.has_checksum() { 4 } else { 0 }
    }

    fn sequence_offset(&self) -> usize {
        self.key_offset() + if self.has_key() { 4 } else { 0 }
    }

    /// The header length: 4 bytes plus 4 for each optional field present.
    pub fn header_len(&self) -> usize {
        self.sequence_offset() + if self.has_sequence() { 4 } else { 0 }
    }

    fn u32_at(&self, at: usize) -> u32 {
        let b = self.buffer.as_ref();
        u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
    }

    /// The checksum field, if present.
    pub fn checksum(&self) -> Option<u16> {
        self.has_checksum()
            .then(|| (self.u32_at(field::BASE_LEN) >> 16) as u16)
    }

    /// The key (RFC 2890 section 2.1), if present: Cisco's `tunnel key`.
    pub fn key(&self) -> Option<u32> {
        self.has_key().then(|| self.u32_at(self.key_offset()))
    }

    /// The sequence number (RFC 2890 section 2.2), if present.
    pub fn sequence(&self) -> Option<u32> {
        self.has_sequence()
            .then(|| self.u32_at(self.sequence_offset()))
    }

    /// Whether the checksum, if present, verifies over the header and payload
    /// (RFC 2784 section 2.5). A packet without a checksum verifies.
    pub fn verify_checksum(&self) -> bool {
        !self.has_checksum() || checksum::checksum(self.buffer.as_ref()) == 0
    }

    /// The payload after the header.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }
}

/// The fields of a GRE header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Repr {
    /// The payload's protocol type.
    pub protocol: Protocol,
    /// Whether a checksum is carried; its value is computed by [`Repr::emit`].
    pub checksum: bool,
    /// The key (`tunnel key`), if carried.
    pub key: Option<u32>,
    /// The sequence number, if carried.
    pub sequence: Option<u32>,
}

impl Repr {
    /// Reads the header of a checked packet and verifies its checksum.
    ///
    /// # Errors
    /// [`Error::BadChecksum`] when the checksum does not verify.
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Self> {
        if !packet.verify_checksum() {
            return Err(Error::BadChecksum);
        }
        Ok(Repr {
            protocol: packet.protocol(),
            checksum: packet.has_checksum(),
            key: packet.key(),
            sequence: packet.sequence(),
        })
    }

    /// The header length this representation emits.
    pub const fn buffer_len(&self) -> usize {
        field::BASE_LEN
            + if self.checksum { 4 } else { 0 }
            + if self.key.is_some() { 4 } else { 0 }
            + if self.sequence.is_some() { 4 } else { 0 }
    }

    /// Writes the header at the start of `buf`, whose bytes after [`Repr::buffer_len`] are
    /// the payload, already in place; with a checksum, computes it over header and payload.
    ///
    /// # Errors
    /// [`Error::BufferTooSmall`] when `buf` is shorter than the header.
    pub fn emit(&self, buf: &mut [u8]) -> Result<()> {
        if buf.len() < self.buffer_len() {
            return Err(Error::BufferTooSmall);
        }
        let mut flags = 0u16;
        if self.checksum {
            flags |= FLAG_C;
        }
        if self.key.is_some() {
            flags |= FLAG_K;
        }
        if self.sequence.is_some() {
            flags |= FLAG_S;
        }
        buf[field::FLAGS].copy_from_slice(&flags.to_be_bytes());
        buf[field::PROTOCOL].copy_from_slice(&u16::from(self.protocol).to_be_bytes());
        let mut at = field::BASE_LEN;
        if self.checksum {
            buf[at..at + 4].fill(0);
            at += 4;
        }
        if let Some(key) = self.key {
            buf[at..at + 4].copy_from_slice(&key.to_be_bytes());
            at += 4;
        }
        if let Some(seq) = self.sequence {
            buf[at..at + 4].copy_from_slice(&seq.to_be_bytes());
        }
        if self.checksum {
            let sum = checksum::checksum(buf);
            buf[field::BASE_LEN..field::BASE_LEN + 2].copy_from_slice(&sum.to_be_bytes());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn cisco_tunnel_key_header() {
        // Vector 09 of ../shared/vectors/nhrp: GRE flags 0x2000, protocol 0x2001, key 100.
        let bytes = [0x20, 0x00, 0x20, 0x01, 0x00, 0x00, 0x00, 0x64, 0xaa];
        let p = Packet::new_checked(&bytes[..]).unwrap();
        let repr = Repr::parse(&p).unwrap();
        assert_eq!(
            repr,
            Repr {
                protocol: Protocol::Nhrp,
                checksum: false,
                key: Some(100),
                sequence: None
            }
        );
        assert_eq!(p.payload(), &[0xaa]);
    }

    #[test]
    fn ignores_reserved_bits_and_sends_them_as_zero() {
        // RFC 2784 section 2.3: bits 6-12 and Reserved1 are ignored on receipt. Found by the
        // gre fuzz target: such a packet parses, and emits with those bits cleared.
        let mut bytes = [0x83, 0xf8, 0x08, 0x00, 0, 0, 0x12, 0x34, 0xaa, 0xbb];
        let sum = checksum::checksum(&bytes);
        bytes[4..6].copy_from_slice(&sum.to_be_bytes());
        let p = Packet::new_checked(&bytes[..]).unwrap();
        let repr = Repr::parse(&p).unwrap();
        assert_eq!(
            repr,
            Repr {
                protocol: Protocol::Ipv4,
                checksum: true,
                key: None,
                sequence: None
            }
        );
        let mut out = bytes;
        repr.emit(&mut out).unwrap();
        assert_eq!((out[0], out[1], out[6], out[7]), (0x80, 0x00, 0, 0));
        assert_eq!(&out[8..], &[0xaa, 0xbb]);
        assert!(Packet::new_checked(&out[..]).unwrap().verify_checksum());
    }

    #[test]
    fn rejects_bad_input() {
        assert_eq!(
            Packet::new_checked(&[0u8; 3][..]).unwrap_err(),
            Error::Truncated
        );
        assert_eq!(
            Packet::new_checked(&[0x20, 0, 8, 0, 0][..]).unwrap_err(),
            Error::Truncated
        );
        assert_eq!(
            Packet::new_checked(&[0, 1, 8, 0][..]).unwrap_err(),
            Error::BadVersion
        );
        assert_eq!(
            Packet::new_checked(&[0x40, 0, 8, 0][..]).unwrap_err(),
            Error::Malformed
        );
        let bad_sum = [0x80, 0, 8, 0, 0x12, 0x34, 0, 0];
        let p = Packet::new_checked(&bad_sum[..]).unwrap();
        assert_eq!(Repr::parse(&p).unwrap_err(), Error::BadChecksum);
    }

    fn arb_repr() -> impl Strategy<Value = Repr> {
        (
            any::<u16>(),
            any::<bool>(),
            any::<Option<u32>>(),
            any::<Option<u32>>(),
        )
            .prop_map(|(protocol, checksum, key, sequence)| Repr {
                protocol: Protocol::from(protocol),
                checksum,
                key,
                sequence,
            })
    }

    proptest! {
        #[test]
        fn repr_round_trip(repr in arb_repr(), payload in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut buf = std::vec![0u8; repr.buffer_len() + payload.len()];
            buf[repr.buffer_len()..].copy_from_slice(&payload);
            repr.emit(&mut buf).unwrap();
            let p = Packet::new_checked(&buf[..]).unwrap();
            prop_assert_eq!(Repr::parse(&p).unwrap(), repr);
            prop_assert_eq!(p.header_len(), repr.buffer_len());
            prop_assert_eq!(p.key(), repr.key);
            prop_assert_eq!(p.sequence(), repr.sequence);
            prop_assert_eq!(p.payload(), &payload[..]);
        }

        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..32)) {
            if let Ok(p) = Packet::new_checked(&bytes[..]) {
                let _ = Repr::parse(&p);
                let _ = p.payload();
            }
        }
    }
}
