//! The Key Exchange payload (RFC 7296 section 3.4) and the Diffie-Hellman group registry
//! (section 3.3.2, transform type 4).
//!
//! ```text
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |   Diffie-Hellman Group Num    |           RESERVED            |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ~                       Key Exchange Data                       ~
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```

use super::cursor::{Reader, Writer};
use super::payload::Body;
use crate::Result;

enum_with_unknown! {
    /// Diffie-Hellman group number (RFC 7296 section 3.3.2, transform type 4; IANA
    /// "Transform Type 4 - Key Exchange Method Transform IDs").
    pub enum DhGroup(u16) {
        /// NONE.
        None = 0,
        /// 768-bit MODP group (RFC 7296 appendix B.1).
        Modp768 = 1,
        /// 1024-bit MODP group (RFC 7296 appendix B.2).
        Modp1024 = 2,
        /// 1536-bit MODP group (RFC 3526).
        Modp1536 = 5,
        /// 2048-bit MODP group (RFC 3526).
        Modp2048 = 14,
        /// 3072-bit MODP group (RFC 3526).
        Modp3072 = 15,
        /// 4096-bit MODP group (RFC 3526).
        Modp4096 = 16,
        /// 256-bit random ECP group (RFC 5903).
        Ecp256 = 19,
        /// 384-bit random ECP group (RFC 5903).
        Ecp384 = 20,
        /// 521-bit random ECP group (RFC 5903).
        Ecp521 = 21,
        /// Curve25519 (RFC 8031).
        Curve25519 = 31,
        /// Curve448 (RFC 8031).
        Curve448 = 32,
    }
}

/// The Key Exchange payload body (RFC 7296 section 3.4): the sender's Diffie-Hellman public
/// value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct KeyExchange<'a> {
    /// The group of the public value.
    pub group: DhGroup,
    /// The public value (32 bytes for Curve25519, 64 for ECP-256, ...).
    #[serde(serialize_with = "crate::hex::serialize")]
    pub data: &'a [u8],
}

impl<'a> Body<'a> for KeyExchange<'a> {
    fn parse(body: &'a [u8]) -> Result<Self> {
        let mut r = Reader::new(body);
        let group = DhGroup::from(r.u16()?);
        r.u16()?;
        Ok(KeyExchange {
            group,
            data: r.rest(),
        })
    }

    fn body_len(&self) -> usize {
        4 + self.data.len()
    }

    fn emit(&self, buf: &mut [u8]) -> Result<()> {
        let mut w = Writer::new(buf);
        w.u16(self.group.into());
        w.u16(0);
        w.bytes(self.data);
        Ok(())
    }
}
