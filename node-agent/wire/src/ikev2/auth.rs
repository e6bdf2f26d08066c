//! The Authentication payload (RFC 7296 section 3.8) and the Digital Signature method of
//! RFC 7427 section 3.
//!
//! ```text
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | Auth Method   |                RESERVED                       |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ~                      Authentication Data                      ~
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!
//! Method 14 (RFC 7427 section 3), Authentication Data:
//! | ASN.1 Length  | AlgorithmIdentifier ASN.1 object ~ | Signature Value ~ |
//! ```

use super::cursor::{Reader, Writer};
use super::payload::Body;
use crate::{Error, Result};

enum_with_unknown! {
    /// Authentication method (RFC 7296 section 3.8; IANA "IKEv2 Authentication Method").
    pub enum AuthMethod(u8) {
        /// RSA digital signature with SHA-1 (PKCS #1 v1.5).
        RsaSig = 1,
        /// Shared key message integrity code (PSK).
        SharedKeyMic = 2,
        /// DSS digital signature.
        DssSig = 3,
        /// ECDSA with SHA-256 on the P-256 curve (RFC 4754).
        Ecdsa256 = 9,
        /// ECDSA with SHA-384 on the P-384 curve (RFC 4754).
        Ecdsa384 = 10,
        /// ECDSA with SHA-512 on the P-521 curve (RFC 4754).
        Ecdsa521 = 11,
        /// Digital signature with the algorithm named in the data (RFC 7427 section 3).
        DigitalSignature = 14,
    }
}

/// The body of an AUTH payload (RFC 7296 section 3.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Authentication<'a> {
    /// The authentication method.
    pub method: AuthMethod,
    /// The authentication data (the MIC, or the signature).
    #[serde(serialize_with = "crate::hex::serialize")]
    pub data: &'a [u8],
}

/// The parts of RFC 7427 Digital Signature authentication data (section 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct DigitalSignature<'a> {
    /// The DER-encoded ASN.1 `AlgorithmIdentifier` of the signature, not parsed here.
    #[serde(serialize_with = "crate::hex::serialize")]
    pub algorithm: &'a [u8],
    /// The signature value.
    #[serde(serialize_with = "crate::hex::serialize")]
    pub signature: &'a [u8],
}

impl<'a> Authentication<'a> {
    /// Splits the data of method 14 into the AlgorithmIdentifier (after its one-octet
    /// length) and the signature (RFC 7427 section 3).
    ///
    /// # Errors
    /// [`Error::Malformed`] for another method; [`Error::Truncated`] when the data is shorter
    /// than the ASN.1 length announces.
    pub fn digital_signature(&self) -> Result<DigitalSignature<'a>> {
        if self.method != AuthMethod::DigitalSignature {
            return Err(Error::Malformed);
        }
        let mut r = Reader::new(self.data);
        let len = usize::from(r.u8()?);
        let algorithm = r.bytes(len)?;
        Ok(DigitalSignature {
            algorithm,
            signature: r.rest(),
        })
    }
}

impl<'a> Body<'a> for Authentication<'a> {
    fn parse(body: &'a [u8]) -> Result<Self> {
        let mut r = Reader::new(body);
        let method = AuthMethod::from(r.u8()?);
        r.bytes(3)?;
        Ok(Authentication {
            method,
            data: r.rest(),
        })
    }

    fn body_len(&self) -> usize {
        4 + self.data.len()
    }

    fn emit(&self, buf: &mut [u8]) -> Result<()> {
        let mut w = Writer::new(buf);
        w.u8(self.method.into());
        w.bytes(&[0; 3]);
        w.bytes(self.data);
        Ok(())
    }
}
