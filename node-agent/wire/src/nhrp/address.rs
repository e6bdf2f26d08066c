//! NBMA and protocol addresses of NHRP (RFC 2332 section 5.2.0 for `ar$shtl`/`ar$sstl`,
//! section 5.2.0.1 for the protocol address lengths and the CIE address fields).
//!
//! An address is a length and that many bytes. NBMA addresses and subaddresses announce their
//! length in a type/length byte:
//!
//! ```text
//!  7 6 5 4 3 2 1 0
//! +-+-+-+-+-+-+-+-+
//! |0|x|  length   |   x: 0 = NSAP format, 1 = E.164 format (RFC 2332 section 5.2.0)
//! +-+-+-+-+-+-+-+-+
//! ```
//!
//! Protocol addresses announce theirs in a plain length byte.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::{Error, Result};

/// The type bit of an NBMA type/length byte: set for E.164, clear for NSAP
/// (RFC 2332 section 5.2.0, `ar$shtl`).
const TYPE_E164: u8 = 0x40;
/// The reserved bit of an NBMA type/length byte, which RFC 2332 section 5.2.0 says SHALL be 0.
const RESERVED: u8 = 0x80;
/// The length bits of an NBMA type/length byte.
const LEN_MASK: u8 = 0x3f;

/// An NBMA or protocol address (RFC 2332 section 5.2.0.1): empty, IPv4, IPv6, or any other
/// length kept as raw bytes so that a round trip is exact.
///
/// The variant follows from the length alone (0, 4 or 16 bytes), whatever `ar$afn` or
/// `ar$pro.type` say: an `Other` of length 0, 4 or 16 therefore parses back as `Empty`, `Ipv4`
/// or `Ipv6`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub enum Address<'a> {
    /// No address (length 0): in a CIE of a request, "the source address of the header".
    #[default]
    Empty,
    /// A 4-byte (IPv4) address.
    Ipv4(Ipv4Addr),
    /// A 16-byte (IPv6) address.
    Ipv6(Ipv6Addr),
    /// An address of any other length (an NSAP, an E.164 number, ...).
    Other(#[serde(serialize_with = "crate::hex::serialize")] &'a [u8]),
}

impl<'a> Address<'a> {
    /// Reads `len` bytes at the start of `buf` as an address.
    ///
    /// # Errors
    /// [`Error::Truncated`] when `buf` is shorter than `len`.
    pub(crate) fn parse(buf: &'a [u8], len: usize) -> Result<Self> {
        let bytes = buf.get(..len).ok_or(Error::Truncated)?;
        Ok(match len {
            0 => Address::Empty,
            4 => {
                let mut octets = [0u8; 4];
                octets.copy_from_slice(bytes);
                Address::Ipv4(Ipv4Addr::from(octets))
            }
            16 => {
                let mut octets = [0u8; 16];
                octets.copy_from_slice(bytes);
                Address::Ipv6(Ipv6Addr::from(octets))
            }
            _ => Address::Other(bytes),
        })
    }

    /// The number of bytes of the address on the wire.
    pub const fn len(&self) -> usize {
        match self {
            Address::Empty => 0,
            Address::Ipv4(_) => 4,
            Address::Ipv6(_) => 16,
            Address::Other(bytes) => bytes.len(),
        }
    }

    /// Whether the address is empty (length 0).
    pub const fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The address as an IP address, when it is one.
    pub const fn ip(&self) -> Option<IpAddr> {
        match *self {
            Address::Ipv4(a) => Some(IpAddr::V4(a)),
            Address::Ipv6(a) => Some(IpAddr::V6(a)),
            Address::Empty | Address::Other(_) => None,
        }
    }

    /// The length byte of a protocol address field.
    ///
    /// # Errors
    /// [`Error::Unrepresentable`] for an address longer than 255 bytes.
    pub(crate) fn len_byte(&self) -> Result<u8> {
        u8::try_from(self.len()).map_err(|_| Error::Unrepresentable)
    }

    /// Writes the address at the start of `buf` (at least [`Address::len`] long) and returns
    /// its length.
    pub(crate) fn emit(&self, buf: &mut [u8]) -> usize {
        match self {
            Address::Empty => {}
            Address::Ipv4(a) => buf[..4].copy_from_slice(&a.octets()),
            Address::Ipv6(a) => buf[..16].copy_from_slice(&a.octets()),
            Address::Other(bytes) => buf[..bytes.len()].copy_from_slice(bytes),
        }
        self.len()
    }
}

impl From<Ipv4Addr> for Address<'_> {
    fn from(a: Ipv4Addr) -> Self {
        Address::Ipv4(a)
    }
}

impl From<Ipv6Addr> for Address<'_> {
    fn from(a: Ipv6Addr) -> Self {
        Address::Ipv6(a)
    }
}

impl From<IpAddr> for Address<'_> {
    fn from(a: IpAddr) -> Self {
        match a {
            IpAddr::V4(a) => Address::Ipv4(a),
            IpAddr::V6(a) => Address::Ipv6(a),
        }
    }
}

/// An NBMA address or subaddress with the type bit of its type/length byte
/// (RFC 2332 section 5.2.0: `ar$shtl`, `ar$sstl`, and the CIE client NBMA fields of
/// section 5.2.0.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct NbmaAddress<'a> {
    /// The type bit (0x40): E.164 format when set, NSAP format when clear. Cisco and FRR
    /// leave it clear for IPv4 and IPv6 NBMA addresses.
    pub e164: bool,
    /// The address bytes (at most 63).
    pub address: Address<'a>,
}

impl<'a> NbmaAddress<'a> {
    /// No address: type/length byte 0.
    pub const NONE: NbmaAddress<'static> = NbmaAddress {
        e164: false,
        address: Address::Empty,
    };

    /// Splits a type/length byte into the type bit and the length.
    ///
    /// # Errors
    /// [`Error::Malformed`] when the reserved bit 7 is set.
    pub(crate) fn split_type_len(type_len: u8) -> Result<(bool, usize)> {
        if type_len & RESERVED != 0 {
            return Err(Error::Malformed);
        }
        Ok((type_len & TYPE_E164 != 0, usize::from(type_len & LEN_MASK)))
    }

    /// Reads the address that the type/length byte `type_len` announces at the start of `buf`.
    ///
    /// # Errors
    /// [`Error::Malformed`] for the reserved bit, [`Error::Truncated`] when `buf` is short.
    pub(crate) fn parse(buf: &'a [u8], type_len: u8) -> Result<Self> {
        let (e164, len) = Self::split_type_len(type_len)?;
        Ok(NbmaAddress {
            e164,
            address: Address::parse(buf, len)?,
        })
    }

    /// The type/length byte of the address.
    ///
    /// # Errors
    /// [`Error::Unrepresentable`] for an address longer than 63 bytes.
    pub(crate) fn type_len(&self) -> Result<u8> {
        let len = self.address.len();
        if len > usize::from(LEN_MASK) {
            return Err(Error::Unrepresentable);
        }
        Ok(len as u8 | if self.e164 { TYPE_E164 } else { 0 })
    }
}

impl<'a> From<Address<'a>> for NbmaAddress<'a> {
    /// An NSAP-format (type bit clear) NBMA address, as Cisco and FRR send IP addresses.
    fn from(address: Address<'a>) -> Self {
        NbmaAddress {
            e164: false,
            address,
        }
    }
}

impl From<IpAddr> for NbmaAddress<'_> {
    /// An NSAP-format (type bit clear) NBMA address, as Cisco and FRR send IP addresses.
    fn from(address: IpAddr) -> Self {
        NbmaAddress::from(Address::from(address))
    }
}

impl From<Ipv4Addr> for NbmaAddress<'_> {
    /// An NSAP-format (type bit clear) NBMA address, as Cisco and FRR send IP addresses.
    fn from(address: Ipv4Addr) -> Self {
        NbmaAddress::from(Address::from(address))
    }
}

impl From<Ipv6Addr> for NbmaAddress<'_> {
    /// An NSAP-format (type bit clear) NBMA address, as Cisco and FRR send IP addresses.
    fn from(address: Ipv6Addr) -> Self {
        NbmaAddress::from(Address::from(address))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variant_follows_length() {
        assert_eq!(Address::parse(&[], 0).unwrap(), Address::Empty);
        assert_eq!(
            Address::parse(&[10, 251, 0, 1, 9], 4).unwrap(),
            Address::Ipv4(Ipv4Addr::new(10, 251, 0, 1))
        );
        assert_eq!(
            Address::parse(&[0u8; 16], 16).unwrap(),
            Address::Ipv6(Ipv6Addr::UNSPECIFIED)
        );
        assert_eq!(
            Address::parse(&[1, 2, 3], 3).unwrap(),
            Address::Other(&[1, 2, 3])
        );
        assert_eq!(Address::parse(&[1, 2, 3], 4).unwrap_err(), Error::Truncated);
    }

    #[test]
    fn nbma_type_len_byte() {
        let e164 = NbmaAddress::parse(&[1, 2, 3, 4, 5], 0x45).unwrap();
        assert!(e164.e164);
        assert_eq!(e164.address, Address::Other(&[1, 2, 3, 4, 5]));
        assert_eq!(e164.type_len().unwrap(), 0x45);
        assert_eq!(NbmaAddress::parse(&[], 0x80).unwrap_err(), Error::Malformed);
        let long = NbmaAddress::from(Address::Other(&[0u8; 64]));
        assert_eq!(long.type_len().unwrap_err(), Error::Unrepresentable);
        assert_eq!(NbmaAddress::NONE.type_len().unwrap(), 0);
    }
}
