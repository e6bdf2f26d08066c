//! A minimal IPv4 header view (RFC 791) for the dataplane: addresses, protocol, lengths, TTL,
//! fragmentation flags and the header checksum.

use core::net::Ipv4Addr;

use crate::{Error, Result, checksum};

mod field {
    use core::ops::Range;
    pub const VER_IHL: usize = 0;
    pub const TOS: usize = 1;
    pub const LENGTH: Range<usize> = 2..4;
    pub const IDENT: Range<usize> = 4..6;
    pub const FLG_OFF: Range<usize> = 6..8;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: Range<usize> = 10..12;
    pub const SRC: Range<usize> = 12..16;
    pub const DST: Range<usize> = 16..20;
}

/// Length of a header without options.
pub const HEADER_LEN: usize = 20;

/// Don't Fragment flag (RFC 791 section 3.1).
const FLAG_DF: u16 = 0x4000;
/// More Fragments flag.
const FLAG_MF: u16 = 0x2000;
/// The reserved flag, which must be zero.
const FLAG_RESERVED: u16 = 0x8000;

/// A read/write view of an IPv4 packet.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking it; accessors may panic on a short buffer.
    pub const fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }

    /// Wraps a buffer and checks version 4, IHL >= 5, and that the header and the total length
    /// fit in the buffer (bytes after the total length, such as Ethernet padding, are ignored).
    ///
    /// # Errors
    /// [`Error::Truncated`], [`Error::BadVersion`] or [`Error::BadLength`].
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Self::new_unchecked(buffer);
        let len = p.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if p.version() != 4 {
            return Err(Error::BadVersion);
        }
        let header_len = p.header_len();
        let total = usize::from(p.total_len());
        if header_len < HEADER_LEN || total < header_len {
            return Err(Error::BadLength);
        }
        if len < total {
            return Err(Error::Truncated);
        }
        Ok(p)
    }

    fn b(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    fn u16_at(&self, at: usize) -> u16 {
        u16::from_be_bytes([self.b()[at], self.b()[at + 1]])
    }

    /// The version field (4).
    pub fn version(&self) -> u8 {
        self.b()[field::VER_IHL] >> 4
    }

    /// The header length in bytes (IHL * 4).
    pub fn header_len(&self) -> usize {
        usize::from(self.b()[field::VER_IHL] & 0x0f) * 4
    }

    /// The type-of-service byte (DSCP and ECN).
    pub fn tos(&self) -> u8 {
        self.b()[field::TOS]
    }

    /// The total length of header and payload.
    pub fn total_len(&self) -> u16 {
        self.u16_at(field::LENGTH.start)
    }

    /// The identification field.
    pub fn ident(&self) -> u16 {
        self.u16_at(field::IDENT.start)
    }

    /// The Don't Fragment flag.
    pub fn dont_frag(&self) -> bool {
        self.u16_at(field::FLG_OFF.start) & FLAG_DF != 0
    }

    /// The More Fragments flag.
    pub fn more_frags(&self) -> bool {
        self.u16_at(field::FLG_OFF.start) & FLAG_MF != 0
    }

    /// The fragment offset in bytes.
    pub fn frag_offset(&self) -> u16 {
        (self.u16_at(field::FLG_OFF.start) & 0x1fff) * 8
    }

    /// The time to live.
    pub fn ttl(&self) -> u8 {
        self.b()[field::TTL]
    }

    /// The payload's protocol number (47 GRE, 50 ESP, 17 UDP...).
    pub fn protocol(&self) -> u8 {
        self.b()[field::PROTOCOL]
    }

    /// The header checksum field.
    pub fn checksum(&self) -> u16 {
        self.u16_at(field::CHECKSUM.start)
    }

    /// The source address.
    pub fn src_addr(&self) -> Ipv4Addr {
        let b = self.b();
        Ipv4Addr::new(b[12], b[13], b[14], b[15])
    }

    /// The destination address.
    pub fn dst_addr(&self) -> Ipv4Addr {
        let b = self.b();
        Ipv4Addr::new(b[16], b[17], b[18], b[19])
    }

    /// The options between the fixed header and the payload.
    pub fn options(&self) -> &[u8] {
        &self.b()[HEADER_LEN..self.header_len()]
    }

    /// Whether the header checksum verifies (RFC 791 section 3.1).
    pub fn verify_checksum(&self) -> bool {
        checksum::checksum(&self.b()[..self.header_len()]) == 0
    }

    /// The payload: the bytes after the header up to the total length.
    pub fn payload(&self) -> &[u8] {
        &self.b()[self.header_len()..usize::from(self.total_len())]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the TTL and updates the checksum incrementally (RFC 1624).
    pub fn set_ttl(&mut self, ttl: u8) {
        let old = u16::from_be_bytes([self.ttl(), self.protocol()]);
        let new = u16::from_be_bytes([ttl, self.protocol()]);
        let sum = !self.checksum();
        // RFC 1624 equation 3: HC' = ~(~HC + ~m + m').
        let folded = checksum::finish(u32::from(sum) + u32::from(!old) + u32::from(new));
        let b = self.buffer.as_mut();
        b[field::TTL] = ttl;
        b[field::CHECKSUM].copy_from_slice(&folded.to_be_bytes());
    }
}

/// The fields of an IPv4 header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Repr<'a> {
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// Payload protocol number.
    pub protocol: u8,
    /// Type of service (DSCP and ECN).
    pub tos: u8,
    /// Identification.
    pub ident: u16,
    /// Don't Fragment.
    pub dont_frag: bool,
    /// More Fragments.
    pub more_frags: bool,
    /// Fragment offset in bytes (a multiple of 8).
    pub frag_offset: u16,
    /// Time to live.
    pub ttl: u8,
    /// Options, kept as bytes (a multiple of 4 long, at most 40).
    #[serde(serialize_with = "crate::hex::serialize")]
    pub options: &'a [u8],
    /// Length of the payload after the header.
    pub payload_len: usize,
}

impl<'a> Repr<'a> {
    /// Reads the header of a checked packet and verifies its checksum.
    ///
    /// # Errors
    /// [`Error::BadChecksum`], or [`Error::Malformed`] when the reserved flag is set.
    pub fn parse(packet: &Packet<&'a [u8]>) -> Result<Self> {
        if !packet.verify_checksum() {
            return Err(Error::BadChecksum);
        }
        if packet.u16_at(field::FLG_OFF.start) & FLAG_RESERVED != 0 {
            return Err(Error::Malformed);
        }
        let b: &'a [u8] = packet.buffer;
        Ok(Repr {
            src: packet.src_addr(),
            dst: packet.dst_addr(),
            protocol: packet.protocol(),
            tos: packet.tos(),
            ident: packet.ident(),
            dont_frag: packet.dont_frag(),
            more_frags: packet.more_frags(),
            frag_offset: packet.frag_offset(),
            ttl: packet.ttl(),
            options: &b[HEADER_LEN..packet.header_len()],
            payload_len: packet.payload().len(),
        })
    }

    /// The header length this representation emits.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN + self.options.len()
    }

    /// Writes the header, with its checksum, at the start of `buf`.
    ///
    /// # Errors
    /// [`Error::BufferTooSmall`]; [`Error::Unrepresentable`] when the options are not a
    /// multiple of 4 bytes up to 40, the total length exceeds 65535 or the fragment offset is
    /// not a multiple of 8.
    pub fn emit(&self, buf: &mut [u8]) -> Result<()> {
        let header_len = self.buffer_len();
        let total = header_len + self.payload_len;
        if !self.options.len().is_multiple_of(4) || self.options.len() > 40 || total > 0xffff {
            return Err(Error::Unrepresentable);
        }
        if !self.frag_offset.is_multiple_of(8) {
            return Err(Error::Unrepresentable);
        }
        if buf.len() < header_len {
            return Err(Error::BufferTooSmall);
        }
        buf[field::VER_IHL] = 0x40 | (header_len / 4) as u8;
        buf[field::TOS] = self.tos;
        buf[field::LENGTH].copy_from_slice(&(total as u16).to_be_bytes());
        buf[field::IDENT].copy_from_slice(&self.ident.to_be_bytes());
        let mut flg_off = self.frag_offset / 8;
        if self.dont_frag {
            flg_off |= FLAG_DF;
        }
        if self.more_frags {
            flg_off |= FLAG_MF;
        }
        buf[field::FLG_OFF].copy_from_slice(&flg_off.to_be_bytes());
        buf[field::TTL] = self.ttl;
        buf[field::PROTOCOL] = self.protocol;
        buf[field::CHECKSUM].fill(0);
        buf[field::SRC].copy_from_slice(&self.src.octets());
        buf[field::DST].copy_from_slice(&self.dst.octets());
        buf[HEADER_LEN..header_len].copy_from_slice(self.options);
        let sum = checksum::checksum(&buf[..header_len]);
        buf[field::CHECKSUM].copy_from_slice(&sum.to_be_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The outer header of ../shared/vectors/nhrp/01-registration-request.pcap.
    const VECTOR_01: [u8; 20] = [
        0x45, 0x00, 0x00, 0x81, 0x10, 0x00, 0x40, 0x00, 0xff, 0x2f, 0xdd, 0x23, 0xc6, 0x13, 0x01,
        0x02, 0xc6, 0x13, 0x01, 0x01,
    ];

    #[test]
    fn emits_and_parses() {
        let repr = Repr {
            src: Ipv4Addr::new(198, 19, 1, 2),
            dst: Ipv4Addr::new(198, 19, 1, 1),
            protocol: 47,
            tos: 0,
            ident: 0x1000,
            dont_frag: true,
            more_frags: false,
            frag_offset: 0,
            ttl: 255,
            options: &[],
            payload_len: 109,
        };
        let mut buf = std::vec![0u8; 129];
        repr.emit(&mut buf).unwrap();
        assert_eq!(&buf[..20], &VECTOR_01);
        let p = Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(Repr::parse(&p).unwrap(), repr);
    }

    #[test]
    fn rejects_bad_input() {
        let mut buf = [0u8; 20];
        assert_eq!(
            Packet::new_checked(&buf[..19]).unwrap_err(),
            Error::Truncated
        );
        assert_eq!(
            Packet::new_checked(&buf[..]).unwrap_err(),
            Error::BadVersion
        );
        buf[0] = 0x44;
        assert_eq!(Packet::new_checked(&buf[..]).unwrap_err(), Error::BadLength);
        buf[0] = 0x45;
        buf[3] = 21;
        assert_eq!(Packet::new_checked(&buf[..]).unwrap_err(), Error::Truncated);
        buf[3] = 20;
        let p = Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(Repr::parse(&p).unwrap_err(), Error::BadChecksum);
    }

    #[test]
    fn ttl_update_keeps_checksum_valid() {
        let mut buf = VECTOR_01;
        let mut p = Packet::new_unchecked(&mut buf[..]);
        p.set_ttl(254);
        assert_eq!(p.ttl(), 254);
        assert!(p.verify_checksum());
    }

    proptest! {
        #[test]
        fn repr_round_trip(
            src in any::<[u8; 4]>(),
            dst in any::<[u8; 4]>(),
            (protocol, tos, ident, dont_frag, more_frags) in any::<(u8, u8, u16, bool, bool)>(),
            frag_blocks in 0u16..8192,
            ttl in any::<u8>(),
            options in proptest::collection::vec(any::<u8>(), 0..=10).prop_map(|w| w.repeat(4)),
            payload_len in 0usize..1400,
        ) {
            let repr = Repr {
                src: src.into(),
                dst: dst.into(),
                protocol,
                tos,
                ident,
                dont_frag,
                more_frags,
                frag_offset: frag_blocks * 8,
                ttl,
                options: &options,
                payload_len,
            };
            let mut buf = std::vec![0u8; repr.buffer_len() + repr.payload_len];
            repr.emit(&mut buf).unwrap();
            let p = Packet::new_checked(&buf[..]).unwrap();
            prop_assert_eq!(Repr::parse(&p).unwrap(), repr);
            prop_assert_eq!(p.src_addr(), repr.src);
            prop_assert_eq!(p.dst_addr(), repr.dst);
            prop_assert_eq!(p.ttl(), repr.ttl);
            prop_assert_eq!(p.protocol(), repr.protocol);
            prop_assert_eq!(p.dont_frag(), repr.dont_frag);
            prop_assert_eq!(p.frag_offset(), repr.frag_offset);
            prop_assert_eq!(p.payload().len(), repr.payload_len);
        }

        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            if let Ok(p) = Packet::new_checked(&bytes[..]) {
                let _ = Repr::parse(&p);
                let _ = (p.payload(), p.options());
            }
        }
    }
}
