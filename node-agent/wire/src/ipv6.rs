//! A minimal IPv6 header view (RFC 8200 section 3) for the dataplane: addresses, next header,
//! payload length, hop limit, traffic class and flow label. Extension headers are payload.

use core::net::Ipv6Addr;

use crate::{Error, Result};

mod field {
    use core::ops::Range;
    pub const VER_TC_FLOW: Range<usize> = 0..4;
    pub const LENGTH: Range<usize> = 4..6;
    pub const NXT_HDR: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC: Range<usize> = 8..24;
    pub const DST: Range<usize> = 24..40;
}

/// Length of the fixed header.
pub const HEADER_LEN: usize = 40;

/// A read/write view of an IPv6 packet.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking it; accessors may panic on a short buffer.
    pub const fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }

    /// Wraps a buffer and checks version 6 and that the payload length fits in the buffer.
    ///
    /// # Errors
    /// [`Error::Truncated`] or [`Error::BadVersion`].
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Self::new_unchecked(buffer);
        let len = p.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if p.version() != 6 {
            return Err(Error::BadVersion);
        }
        if len < HEADER_LEN + usize::from(p.payload_len()) {
            return Err(Error::Truncated);
        }
        Ok(p)
    }

    fn b(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    fn first_word(&self) -> u32 {
        let b = self.b();
        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
    }

    /// The version field (6).
    pub fn version(&self) -> u8 {
        self.b()[0] >> 4
    }

    /// The traffic class (DSCP and ECN).
    pub fn traffic_class(&self) -> u8 {
        (self.first_word() >> 20) as u8
    }

    /// The 20-bit flow label.
    pub fn flow_label(&self) -> u32 {
        self.first_word() & 0x000f_ffff
    }

    /// The payload length field.
    pub fn payload_len(&self) -> u16 {
        u16::from_be_bytes([
            self.b()[field::LENGTH.start],
            self.b()[field::LENGTH.start + 1],
        ])
    }

    /// The next header (protocol of the payload or first extension header).
    pub fn next_header(&self) -> u8 {
        self.b()[field::NXT_HDR]
    }

    /// The hop limit.
    pub fn hop_limit(&self) -> u8 {
        self.b()[field::HOP_LIMIT]
    }

    /// The source address.
    pub fn src_addr(&self) -> Ipv6Addr {
        let mut a = [0u8; 16];
        a.copy_from_slice(&self.b()[field::SRC]);
        a.into()
    }

    /// The destination address.
    pub fn dst_addr(&self) -> Ipv6Addr {
        let mut a = [0u8; 16];
        a.copy_from_slice(&self.b()[field::DST]);
        a.into()
    }

    /// The payload after the fixed header, as long as the payload length says.
    pub fn payload(&self) -> &[u8] {
        &self.b()[HEADER_LEN..HEADER_LEN + usize::from(self.payload_len())]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the hop limit.
    pub fn set_hop_limit(&mut self, hop_limit: u8) {
        self.buffer.as_mut()[field::HOP_LIMIT] = hop_limit;
    }
}

/// The fields of an IPv6 fixed header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Repr {
    /// Source address.
    pub src: Ipv6Addr,
    /// Destination address.
    pub dst: Ipv6Addr,
    /// Next header.
    pub next_header: u8,
    /// Hop limit.
    pub hop_limit: u8,
    /// Traffic class.
    pub traffic_class: u8,
    /// Flow label (20 bits).
    pub flow_label: u32,
    /// Length of the payload after the fixed header.
    pub payload_len: usize,
}

impl Repr {
    /// Reads the header of a checked packet.
    ///
    /// # Errors
    /// None today; the signature matches the other codecs.
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Self> {
        Ok(Repr {
            src: packet.src_addr(),
            dst: packet.dst_addr(),
            next_header: packet.next_header(),
            hop_limit: packet.hop_limit(),
            traffic_class: packet.traffic_class(),
            flow_label: packet.flow_label(),
            payload_len: usize::from(packet.payload_len()),
        })
    }

    /// The header length this representation emits.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the fixed header at the start of `buf`.
    ///
    /// # Errors
    /// [`Error::BufferTooSmall`]; [`Error::Unrepresentable`] for a payload over 65535 bytes
    /// (jumbograms are not supported) or a flow label over 20 bits.
    pub fn emit(&self, buf: &mut [u8]) -> Result<()> {
        if self.payload_len > 0xffff || self.flow_label > 0x000f_ffff {
            return Err(Error::Unrepresentable);
        }
        if buf.len() < HEADER_LEN {
            return Err(Error::BufferTooSmall);
        }
        let word = (6u32 << 28) | (u32::from(self.traffic_class) << 20) | self.flow_label;
        buf[field::VER_TC_FLOW].copy_from_slice(&word.to_be_bytes());
        buf[field::LENGTH].copy_from_slice(&(self.payload_len as u16).to_be_bytes());
        buf[field::NXT_HDR] = self.next_header;
        buf[field::HOP_LIMIT] = self.hop_limit;
        buf[field::SRC].copy_from_slice(&self.src.octets());
        buf[field::DST].copy_from_slice(&self.dst.octets());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rejects_bad_input() {
        let mut buf = [0u8; 40];
        assert_eq!(
            Packet::new_checked(&buf[..39]).unwrap_err(),
            Error::Truncated
        );
        assert_eq!(
            Packet::new_checked(&buf[..]).unwrap_err(),
            Error::BadVersion
        );
        buf[0] = 0x60;
        buf[5] = 1;
        assert_eq!(Packet::new_checked(&buf[..]).unwrap_err(), Error::Truncated);
    }

    proptest! {
        #[test]
        fn repr_round_trip(
            src in any::<[u8; 16]>(),
            dst in any::<[u8; 16]>(),
            (next_header, hop_limit, traffic_class) in any::<(u8, u8, u8)>(),
            flow_label in 0u32..0x10_0000,
            payload_len in 0usize..1400,
        ) {
            let repr = Repr {
                src: src.into(),
                dst: dst.into(),
                next_header,
                hop_limit,
                traffic_class,
                flow_label,
                payload_len,
            };
            let mut buf = std::vec![0u8; HEADER_LEN + payload_len];
            repr.emit(&mut buf).unwrap();
            let p = Packet::new_checked(&buf[..]).unwrap();
            prop_assert_eq!(Repr::parse(&p).unwrap(), repr);
            prop_assert_eq!(p.src_addr(), repr.src);
            prop_assert_eq!(p.hop_limit(), repr.hop_limit);
            prop_assert_eq!(p.payload().len(), payload_len);
        }

        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(p) = Packet::new_checked(&bytes[..]) {
                let _ = Repr::parse(&p);
                let _ = p.payload();
            }
        }
    }
}
