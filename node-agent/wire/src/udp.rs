//! A minimal UDP header view (RFC 768) for the underlay: IKE on port 500, IKE and ESP on port
//! 4500 (RFC 3948), GRE-in-UDP on port 4754 (RFC 8086).

use core::net::IpAddr;

use crate::{Error, Result, checksum};

mod field {
    use core::ops::Range;
    pub const SRC_PORT: Range<usize> = 0..2;
    pub const DST_PORT: Range<usize> = 2..4;
    pub const LENGTH: Range<usize> = 4..6;
    pub const CHECKSUM: Range<usize> = 6..8;
}

/// Length of the UDP header.
pub const HEADER_LEN: usize = 8;

/// IP protocol number of UDP.
pub const IP_PROTOCOL: u8 = 17;

/// A read/write view of a UDP datagram.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking it; accessors may panic on a short buffer.
    pub const fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }

    /// Wraps a buffer and checks that the length field is at least 8 and fits in the buffer.
    ///
    /// # Errors
    /// [`Error::Truncated`] or [`Error::BadLength`].
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Self::new_unchecked(buffer);
        let len = p.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let field_len = usize::from(p.len());
        if field_len < HEADER_LEN {
            return Err(Error::BadLength);
        }
        if len < field_len {
            return Err(Error::Truncated);
        }
        Ok(p)
    }

    fn u16_at(&self, at: usize) -> u16 {
        let b = self.buffer.as_ref();
        u16::from_be_bytes([b[at], b[at + 1]])
    }

    /// The source port.
    pub fn src_port(&self) -> u16 {
        self.u16_at(field::SRC_PORT.start)
    }

    /// The destination port.
    pub fn dst_port(&self) -> u16 {
        self.u16_at(field::DST_PORT.start)
    }

    /// The length field: header plus payload.
    pub fn len(&self) -> u16 {
        self.u16_at(field::LENGTH.start)
    }

    /// Whether the datagram carries no payload.
    pub fn is_empty(&self) -> bool {
        usize::from(self.len()) == HEADER_LEN
    }

    /// The checksum field (0: not computed, allowed over IPv4 only).
    pub fn checksum(&self) -> u16 {
        self.u16_at(field::CHECKSUM.start)
    }

    /// Whether the checksum verifies with the pseudo-header of `src` and `dst` (RFC 768,
    /// RFC 8200 section 8.1). A zero checksum over IPv4 means "none" and verifies.
    pub fn verify_checksum(&self, src: IpAddr, dst: IpAddr) -> bool {
        if self.checksum() == 0 {
            return src.is_ipv4();
        }
        let datagram = &self.buffer.as_ref()[..usize::from(self.len())];
        checksum::finish(checksum::accumulate(
            pseudo_header_sum(src, dst, self.len()),
            datagram,
        )) == 0
    }

    /// The payload, as long as the length field says.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..usize::from(self.len())]
    }
}

/// The one's-complement sum of the pseudo-header of a UDP datagram of `udp_len` bytes.
fn pseudo_header_sum(src: IpAddr, dst: IpAddr, udp_len: u16) -> u32 {
    let mut sum = match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            checksum::accumulate(checksum::accumulate(0, &s.octets()), &d.octets())
        }
        (s, d) => {
            let s6 = match s {
                IpAddr::V4(a) => a.to_ipv6_mapped(),
                IpAddr::V6(a) => a,
            };
            let d6 = match d {
                IpAddr::V4(a) => a.to_ipv6_mapped(),
                IpAddr::V6(a) => a,
            };
            checksum::accumulate(checksum::accumulate(0, &s6.octets()), &d6.octets())
        }
    };
    sum = checksum::accumulate(sum, &[0, IP_PROTOCOL]);
    checksum::accumulate(sum, &udp_len.to_be_bytes())
}

/// The fields of a UDP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Repr {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
}

impl Repr {
    /// Reads the ports of a checked datagram.
    ///
    /// # Errors
    /// None today; the signature matches the other codecs.
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Self> {
        Ok(Repr {
            src_port: packet.src_port(),
            dst_port: packet.dst_port(),
        })
    }

    /// The header length this representation emits.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the header at the start of `buf`, whose bytes after the header are the payload,
    /// already in place. With `addrs`, computes the checksum over the pseudo-header; without,
    /// writes 0, which RFC 3948 section 2.1 recommends for UDP-encapsulated ESP over IPv4
    /// (IPv6 always needs the checksum).
    ///
    /// # Errors
    /// [`Error::BufferTooSmall`], or [`Error::Unrepresentable`] for a datagram over 65535
    /// bytes.
    pub fn emit(&self, buf: &mut [u8], addrs: Option<(IpAddr, IpAddr)>) -> Result<()> {
        if buf.len() < HEADER_LEN {
            return Err(Error::BufferTooSmall);
        }
        let len = u16::try_from(buf.len()).map_err(|_| Error::Unrepresentable)?;
        buf[field::SRC_PORT].copy_from_slice(&self.src_port.to_be_bytes());
        buf[field::DST_PORT].copy_from_slice(&self.dst_port.to_be_bytes());
        buf[field::LENGTH].copy_from_slice(&len.to_be_bytes());
        buf[field::CHECKSUM].fill(0);
        if let Some((src, dst)) = addrs {
            let sum = checksum::finish(checksum::accumulate(pseudo_header_sum(src, dst, len), buf));
            // A computed zero is sent as all ones (RFC 768).
            let sum = if sum == 0 { 0xffff } else { sum };
            buf[field::CHECKSUM].copy_from_slice(&sum.to_be_bytes());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::{Ipv4Addr, Ipv6Addr};
    use proptest::prelude::*;

    #[test]
    fn rejects_bad_input() {
        assert_eq!(
            Packet::new_checked(&[0u8; 7][..]).unwrap_err(),
            Error::Truncated
        );
        assert_eq!(
            Packet::new_checked(&[0, 1, 0, 2, 0, 7, 0, 0][..]).unwrap_err(),
            Error::BadLength
        );
        assert_eq!(
            Packet::new_checked(&[0, 1, 0, 2, 0, 9, 0, 0][..]).unwrap_err(),
            Error::Truncated
        );
    }

    proptest! {
        #[test]
        fn repr_round_trip(
            src_port in any::<u16>(),
            dst_port in any::<u16>(),
            payload in proptest::collection::vec(any::<u8>(), 0..64),
            v6 in any::<bool>(),
            with_checksum in any::<bool>(),
        ) {
            let (src, dst): (IpAddr, IpAddr) = if v6 {
                (Ipv6Addr::LOCALHOST.into(), "2001:db8::1".parse::<Ipv6Addr>().unwrap().into())
            } else {
                (Ipv4Addr::new(198, 18, 0, 1).into(), Ipv4Addr::new(198, 18, 0, 2).into())
            };
            let repr = Repr { src_port, dst_port };
            let mut buf = std::vec![0u8; HEADER_LEN + payload.len()];
            buf[HEADER_LEN..].copy_from_slice(&payload);
            let addrs = (with_checksum || v6).then_some((src, dst));
            repr.emit(&mut buf, addrs).unwrap();
            let p = Packet::new_checked(&buf[..]).unwrap();
            prop_assert_eq!(Repr::parse(&p).unwrap(), repr);
            prop_assert!(p.verify_checksum(src, dst));
            prop_assert_eq!(p.payload(), &payload[..]);
            prop_assert_eq!(p.src_port(), src_port);
        }
    }
}
