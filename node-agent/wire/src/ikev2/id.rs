//! The Identification payloads IDi and IDr (RFC 7296 section 3.5).
//!
//! ```text
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |   ID Type     |                 RESERVED                      |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ~                   Identification Data                         ~
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```

use core::net::{Ipv4Addr, Ipv6Addr};

use super::cursor::{Reader, Writer};
use super::payload::Body;
use crate::Result;

enum_with_unknown! {
    /// Identification type (RFC 7296 section 3.5; IANA "IKEv2 Identification Payload ID
    /// Types").
    pub enum IdType(u8) {
        /// A single four-octet IPv4 address.
        Ipv4Addr = 1,
        /// A fully-qualified domain name, without terminator.
        Fqdn = 2,
        /// An RFC 822 email address, without terminator.
        Rfc822Addr = 3,
        /// A single sixteen-octet IPv6 address.
        Ipv6Addr = 5,
        /// The binary DER encoding of an ASN.1 X.500 Distinguished Name.
        DerAsn1Dn = 9,
        /// The binary DER encoding of an ASN.1 X.509 GeneralName.
        DerAsn1Gn = 10,
        /// An opaque octet stream (a pre-shared key identity).
        KeyId = 11,
    }
}

/// The body of an IDi or IDr payload (RFC 7296 section 3.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Identification<'a> {
    /// How to read `data`.
    pub id_type: IdType,
    /// The identity.
    #[serde(serialize_with = "crate::hex::serialize")]
    pub data: &'a [u8],
}

impl Identification<'_> {
    /// The address of an `ID_IPV4_ADDR` identity of the right length.
    pub fn ipv4(&self) -> Option<Ipv4Addr> {
        let octets: [u8; 4] = self.data.try_into().ok()?;
        (self.id_type == IdType::Ipv4Addr).then(|| Ipv4Addr::from(octets))
    }

    /// The address of an `ID_IPV6_ADDR` identity of the right length.
    pub fn ipv6(&self) -> Option<Ipv6Addr> {
        let octets: [u8; 16] = self.data.try_into().ok()?;
        (self.id_type == IdType::Ipv6Addr).then(|| Ipv6Addr::from(octets))
    }

    /// The text of an `ID_FQDN` or `ID_RFC822_ADDR` identity, if it is UTF-8.
    pub fn text(&self) -> Option<&str> {
        matches!(self.id_type, IdType::Fqdn | IdType::Rfc822Addr)
            .then(|| core::str::from_utf8(self.data).ok())
            .flatten()
    }
}

impl<'a> Body<'a> for Identification<'a> {
    fn parse(body: &'a [u8]) -> Result<Self> {
        let mut r = Reader::new(body);
        let id_type = IdType::from(r.u8()?);
        r.bytes(3)?;
        Ok(Identification {
            id_type,
            data: r.rest(),
        })
    }

    fn body_len(&self) -> usize {
        4 + self.data.len()
    }

    fn emit(&self, buf: &mut [u8]) -> Result<()> {
        let mut w = Writer::new(buf);
        w.u8(self.id_type.into());
        w.bytes(&[0; 3]);
        w.bytes(self.data);
        Ok(())
    }
}
