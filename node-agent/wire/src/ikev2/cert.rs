//! The Certificate (RFC 7296 section 3.6) and Certificate Request (section 3.7) payloads,
//! which share one layout.
//!
//! ```text
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | Cert Encoding |                                               |
//! +-+-+-+-+-+-+-+-+                                               |
//! ~         Certificate Data / Certification Authority            ~
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```

use super::cursor::{Reader, Writer};
use super::payload::Body;
use crate::Result;

enum_with_unknown! {
    /// Certificate encoding (RFC 7296 section 3.6; IANA "IKEv2 Certificate Encodings").
    pub enum CertEncoding(u8) {
        /// PKCS #7 wrapped X.509 certificate.
        Pkcs7 = 1,
        /// PGP certificate.
        Pgp = 2,
        /// DNS signed key.
        DnsSignedKey = 3,
        /// X.509 certificate - signature (DER).
        X509Signature = 4,
        /// Kerberos token.
        Kerberos = 6,
        /// Certificate revocation list (CRL).
        Crl = 7,
        /// Authority revocation list (ARL).
        Arl = 8,
        /// SPKI certificate.
        Spki = 9,
        /// X.509 certificate - attribute.
        X509Attribute = 10,
        /// Raw RSA key (deprecated).
        RawRsaKey = 11,
        /// Hash and URL of X.509 certificate.
        HashUrlX509Cert = 12,
        /// Hash and URL of X.509 bundle.
        HashUrlX509Bundle = 13,
        /// Raw public key (RFC 7670).
        RawPublicKey = 15,
    }
}

/// The body of a CERT payload (RFC 7296 section 3.6), or of a CERTREQ payload (section 3.7),
/// whose data is then the concatenated SHA-1 hashes of trusted CA public keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Certificate<'a> {
    /// How the data is encoded.
    pub encoding: CertEncoding,
    /// Certificate data, or certification authority hashes for CERTREQ.
    #[serde(serialize_with = "crate::hex::serialize")]
    pub data: &'a [u8],
}

impl<'a> Body<'a> for Certificate<'a> {
    fn parse(body: &'a [u8]) -> Result<Self> {
        let mut r = Reader::new(body);
        let encoding = CertEncoding::from(r.u8()?);
        Ok(Certificate {
            encoding,
            data: r.rest(),
        })
    }

    fn body_len(&self) -> usize {
        1 + self.data.len()
    }

    fn emit(&self, buf: &mut [u8]) -> Result<()> {
        let mut w = Writer::new(buf);
        w.u8(self.encoding.into());
        w.bytes(self.data);
        Ok(())
    }
}
