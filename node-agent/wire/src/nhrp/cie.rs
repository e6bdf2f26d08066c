//! The Client Information Entry (CIE) of RFC 2332 section 5.2.0.1: one binding of a client
//! protocol address (or prefix) to an NBMA address, carried after the common header of
//! requests, replies and purges (sections 5.2.1 to 5.2.6) and inside the Responder Address,
//! transit NHS record and Cisco NAT address extensions (sections 5.3.1 to 5.3.3).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |     Code      | Prefix Length |         unused                |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |  Maximum Transmission Unit    |        Holding Time           |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |  Cli Addr T/L | Cli SAddr T/L | Cli Proto Len |  Preference   |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |            Client NBMA Address (variable length)              |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |           Client NBMA Subaddress (variable length)            |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |          Client Protocol Address (variable length)            |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```

use core::net::IpAddr;

use super::address::{Address, NbmaAddress};
use crate::{Element, Error, Result};

enum_with_unknown! {
    /// The code of a CIE in a reply (RFC 2332 sections 5.2.2, 5.2.4 and 5.2.6); 0 in requests.
    pub enum CieCode(u8) {
        /// Success (all replies).
        Success = 0,
        /// Administratively prohibited (resolution and registration replies).
        AdministrativelyProhibited = 4,
        /// Insufficient resources (resolution and registration replies).
        InsufficientResources = 5,
        /// No internetworking layer address to NBMA address binding exists (resolution reply,
        /// RFC 2332 section 5.2.2). FRR nhrpd sends 11 for this, which stays `Unknown(11)`.
        NoBindingExists = 12,
        /// Binding exists but is not unique (resolution reply, RFC 2332 section 5.2.2).
        BindingNotUnique = 13,
        /// Unique internetworking layer address already registered (registration reply,
        /// RFC 2332 section 5.2.4).
        UniqueAddressAlreadyRegistered = 14,
    }
}

mod field {
    pub const CODE: usize = 0;
    pub const PREFIX_LEN: usize = 1;
    pub const MTU: usize = 4;
    pub const HOLDING_TIME: usize = 6;
    pub const NBMA_TL: usize = 8;
    pub const NBMA_SUB_TL: usize = 9;
    pub const PROTO_LEN: usize = 10;
    pub const PREFERENCE: usize = 11;
    pub const ADDRESSES: usize = 12;
}

/// The fixed part of a CIE, before its addresses.
pub const CIE_HEADER_LEN: usize = field::ADDRESSES;

/// A Client Information Entry (RFC 2332 section 5.2.0.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Cie<'a> {
    /// The result of the request for this entry (0 in requests).
    pub code: CieCode,
    /// The prefix length of the client protocol address: the host length (32 or 128) for a
    /// host, 0xff in nhrpd's unique registrations.
    pub prefix_len: u8,
    /// The maximum transmission unit towards the client; 0 = unspecified.
    pub mtu: u16,
    /// How long, in seconds, the binding may be cached.
    pub holding_time: u16,
    /// The client NBMA address.
    pub nbma: NbmaAddress<'a>,
    /// The client NBMA subaddress.
    pub nbma_sub: NbmaAddress<'a>,
    /// The client protocol address.
    pub proto: Address<'a>,
    /// The preference of this entry among entries for the same client (higher wins).
    pub preference: u8,
}

impl<'a> Cie<'a> {
    /// The CIE of a request (RFC 2332 sections 5.2.1 and 5.2.3): code 0 and empty client
    /// addresses, which then default to the source addresses of the common header, as Cisco
    /// and FRR nhrpd send it.
    pub const fn request(prefix_len: u8, mtu: u16, holding_time: u16) -> Self {
        Cie {
            code: CieCode::Success,
            prefix_len,
            mtu,
            holding_time,
            nbma: NbmaAddress::NONE,
            nbma_sub: NbmaAddress::NONE,
            proto: Address::Empty,
            preference: 0,
        }
    }

    /// A successful host binding `proto` is-at `nbma`, with the host prefix length of
    /// `proto` (32 or 128): the CIE of a reply, of the Responder Address and transit record
    /// extensions and of the Cisco NAT address extension.
    pub fn host(nbma: IpAddr, proto: IpAddr, mtu: u16, holding_time: u16) -> Self {
        let prefix_len = if proto.is_ipv4() { 32 } else { 128 };
        Cie {
            code: CieCode::Success,
            prefix_len,
            mtu,
            holding_time,
            nbma: NbmaAddress::from(nbma),
            nbma_sub: NbmaAddress::NONE,
            proto: Address::from(proto),
            preference: 0,
        }
    }

    /// Checks that every address fits its length field, so that [`Element::emit_one`]
    /// writes what [`Element::parse_one`] reads back.
    ///
    /// # Errors
    /// [`Error::Unrepresentable`].
    pub fn check(&self) -> Result<()> {
        self.nbma.type_len()?;
        self.nbma_sub.type_len()?;
        self.proto.len_byte()?;
        Ok(())
    }
}

impl<'a> Element<'a> for Cie<'a> {
    fn parse_one(buf: &'a [u8]) -> Result<(Self, usize)> {
        let head: &[u8; CIE_HEADER_LEN] = buf.first_chunk().ok_or(Error::Truncated)?;
        let mut at = CIE_HEADER_LEN;
        let nbma = NbmaAddress::parse(buf.get(at..).unwrap_or_default(), head[field::NBMA_TL])?;
        at += nbma.address.len();
        let nbma_sub =
            NbmaAddress::parse(buf.get(at..).unwrap_or_default(), head[field::NBMA_SUB_TL])?;
        at += nbma_sub.address.len();
        let proto_len = usize::from(head[field::PROTO_LEN]);
        let proto = Address::parse(buf.get(at..).unwrap_or_default(), proto_len)?;
        at += proto_len;
        let cie = Cie {
            code: CieCode::from(head[field::CODE]),
            prefix_len: head[field::PREFIX_LEN],
            mtu: u16::from_be_bytes([head[field::MTU], head[field::MTU + 1]]),
            holding_time: u16::from_be_bytes([
                head[field::HOLDING_TIME],
                head[field::HOLDING_TIME + 1],
            ]),
            nbma,
            nbma_sub,
            proto,
            preference: head[field::PREFERENCE],
        };
        Ok((cie, at))
    }

    /// Walks the lengths of the CIE in the order [`Element::parse_one`] reads them, so
    /// that it fails with the same error, without building the addresses.
    fn validate(buf: &'a [u8]) -> Result<usize> {
        let head = buf.get(..CIE_HEADER_LEN).ok_or(Error::Truncated)?;
        let (_, nbma) = NbmaAddress::split_type_len(head[field::NBMA_TL])?;
        let mut end = CIE_HEADER_LEN + nbma;
        if end > buf.len() {
            return Err(Error::Truncated);
        }
        let (_, sub) = NbmaAddress::split_type_len(head[field::NBMA_SUB_TL])?;
        end += sub + usize::from(head[field::PROTO_LEN]);
        if end > buf.len() {
            return Err(Error::Truncated);
        }
        Ok(end)
    }

    fn wire_len(&self) -> usize {
        CIE_HEADER_LEN + self.nbma.address.len() + self.nbma_sub.address.len() + self.proto.len()
    }

    /// Writes the CIE; lengths that do not fit (see [`Cie::check`]) are written truncated to
    /// their field, which the message emitters rule out beforehand.
    fn emit_one(&self, buf: &mut [u8]) {
        self.emit_len(buf);
    }

    /// Writes the CIE and returns its length, adding up its addresses as it writes them;
    /// the fixed part goes out as one 12-byte store.
    fn emit_len(&self, buf: &mut [u8]) -> usize {
        let [mtu_hi, mtu_lo] = self.mtu.to_be_bytes();
        let [hold_hi, hold_lo] = self.holding_time.to_be_bytes();
        let head: [u8; CIE_HEADER_LEN] = [
            self.code.into(),
            self.prefix_len,
            0,
            0,
            mtu_hi,
            mtu_lo,
            hold_hi,
            hold_lo,
            self.nbma.type_len().unwrap_or(0),
            self.nbma_sub.type_len().unwrap_or(0),
            self.proto.len_byte().unwrap_or(0),
            self.preference,
        ];
        buf[..CIE_HEADER_LEN].copy_from_slice(&head);
        let mut at = CIE_HEADER_LEN;
        at += self.nbma.address.emit(&mut buf[at..]);
        at += self.nbma_sub.address.emit(&mut buf[at..]);
        at + self.proto.emit(&mut buf[at..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::Ipv4Addr;

    #[test]
    fn host_entry_round_trip() {
        // The responder CIE of vector 04 (../shared/vectors/nhrp/04-resolution-reply.txt,
        // offsets 64-83): 10.251.0.3/32 is-at 198.19.1.3, MTU 1400, hold 7200.
        let bytes = [
            0x00, 0x20, 0x00, 0x00, 0x05, 0x78, 0x1c, 0x20, 0x04, 0x00, 0x04, 0x00, 198, 19, 1, 3,
            10, 251, 0, 3,
        ];
        let (cie, used) = Cie::parse_one(&bytes).unwrap();
        assert_eq!(used, bytes.len());
        let expected = Cie::host(
            Ipv4Addr::new(198, 19, 1, 3).into(),
            Ipv4Addr::new(10, 251, 0, 3).into(),
            1400,
            7200,
        );
        assert_eq!(cie, expected);
        let mut out = [0xffu8; 20];
        expected.emit_one(&mut out);
        assert_eq!(out, bytes);
    }

    proptest::proptest! {
        /// Validating a CIE gives the same length or error as parsing it.
        #[test]
        fn validate_agrees_with_parse(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64)) {
            let parsed = Cie::parse_one(&bytes).map(|(_, used)| used);
            proptest::prop_assert_eq!(Cie::validate(&bytes), parsed);
        }
    }

    #[test]
    fn address_past_the_end() {
        let bytes = [
            0, 32, 0, 0, 0, 0, 0, 0, 0x04, 0x00, 0x04, 0x00, 198, 19, 1, 3, 10, 251,
        ];
        assert_eq!(Cie::parse_one(&bytes).unwrap_err(), Error::Truncated);
        assert_eq!(Cie::parse_one(&bytes[..11]).unwrap_err(), Error::Truncated);
        let reserved = [0, 32, 0, 0, 0, 0, 0, 0, 0x80, 0, 0, 0];
        assert_eq!(Cie::parse_one(&reserved).unwrap_err(), Error::Malformed);
    }
}
