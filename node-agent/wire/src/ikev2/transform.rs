//! Transforms of a proposal (RFC 7296 section 3.3.2), their identifiers (section 3.3.2 and
//! the IANA "IKEv2 Transform Type N" registries) and attributes (section 3.3.5).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | Last Substruc |   RESERVED    |        Transform Length       |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |Transform Type |   RESERVED    |          Transform ID         |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ~                      Transform Attributes                     ~
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!
//! Attribute: |A|       Attribute Type        |    AF=0  Attribute Length     |
//!                                            |    AF=1  Attribute Value      |
//!            ~             AF=0  Attribute Value (variable)                  ~
//! ```

use super::DhGroup;
use super::cursor::{Reader, Writer, len16};
use super::sa::{MORE_TRANSFORMS, check_last_substruc};
use crate::{Element, Error, Result, Seq};

enum_with_unknown! {
    /// Transform type (RFC 7296 section 3.3.2; IANA "Transform Type Values").
    pub enum TransformType(u8) {
        /// Encryption algorithm (ENCR).
        Encr = 1,
        /// Pseudorandom function (PRF).
        Prf = 2,
        /// Integrity algorithm (INTEG).
        Integ = 3,
        /// Diffie-Hellman group (D-H).
        Dh = 4,
        /// Extended sequence numbers (ESN).
        Esn = 5,
    }
}

enum_with_unknown! {
    /// Transform IDs of type 1, encryption (RFC 7296 section 3.3.2; IANA "Transform Type 1").
    pub enum EncrId(u16) {
        /// ENCR_3DES (RFC 2451).
        TripleDes = 3,
        /// ENCR_NULL (RFC 2410), ESP only.
        Null = 11,
        /// ENCR_AES_CBC (RFC 3602), with a Key Length attribute.
        AesCbc = 12,
        /// ENCR_AES_CTR (RFC 3686).
        AesCtr = 13,
        /// ENCR_AES_GCM_8: AES-GCM with an 8-octet ICV (RFC 4106).
        AesGcm8 = 18,
        /// ENCR_AES_GCM_12: AES-GCM with a 12-octet ICV (RFC 4106).
        AesGcm12 = 19,
        /// ENCR_AES_GCM_16: AES-GCM with a 16-octet ICV (RFC 4106).
        AesGcm16 = 20,
        /// ENCR_CHACHA20_POLY1305 (RFC 7634).
        Chacha20Poly1305 = 28,
    }
}

enum_with_unknown! {
    /// Transform IDs of type 2, pseudorandom functions (RFC 7296 section 3.3.2, RFC 4868).
    pub enum PrfId(u16) {
        /// PRF_HMAC_MD5.
        HmacMd5 = 1,
        /// PRF_HMAC_SHA1.
        HmacSha1 = 2,
        /// PRF_AES128_XCBC (RFC 4434).
        Aes128Xcbc = 4,
        /// PRF_HMAC_SHA2_256.
        HmacSha2_256 = 5,
        /// PRF_HMAC_SHA2_384.
        HmacSha2_384 = 6,
        /// PRF_HMAC_SHA2_512.
        HmacSha2_512 = 7,
    }
}

enum_with_unknown! {
    /// Transform IDs of type 3, integrity algorithms (RFC 7296 section 3.3.2, RFC 4868).
    pub enum IntegId(u16) {
        /// NONE, with combined-mode ciphers.
        None = 0,
        /// AUTH_HMAC_MD5_96.
        HmacMd5_96 = 1,
        /// AUTH_HMAC_SHA1_96.
        HmacSha1_96 = 2,
        /// AUTH_AES_XCBC_96.
        AesXcbc96 = 5,
        /// AUTH_HMAC_SHA2_256_128.
        HmacSha2_256_128 = 12,
        /// AUTH_HMAC_SHA2_384_192.
        HmacSha2_384_192 = 13,
        /// AUTH_HMAC_SHA2_512_256.
        HmacSha2_512_256 = 14,
    }
}

enum_with_unknown! {
    /// Transform IDs of type 5, extended sequence numbers (RFC 7296 section 3.3.2).
    pub enum EsnId(u16) {
        /// No extended sequence numbers.
        No = 0,
        /// Extended sequence numbers.
        Yes = 1,
    }
}

/// A transform ID typed by its transform type (RFC 7296 section 3.3.2): each type has its
/// own registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum TransformId {
    /// Encryption algorithm (type 1).
    Encr(EncrId),
    /// Pseudorandom function (type 2).
    Prf(PrfId),
    /// Integrity algorithm (type 3).
    Integ(IntegId),
    /// Diffie-Hellman group (type 4).
    Dh(DhGroup),
    /// Extended sequence numbers (type 5).
    Esn(EsnId),
    /// A transform type this codec does not know; build it with [`TransformId::new`].
    Other {
        /// The transform type.
        transform_type: TransformType,
        /// The transform ID.
        id: u16,
    },
}

impl TransformId {
    /// The typed ID of transform type `transform_type`, ID `id`.
    pub fn new(transform_type: TransformType, id: u16) -> Self {
        match transform_type {
            TransformType::Encr => TransformId::Encr(id.into()),
            TransformType::Prf => TransformId::Prf(id.into()),
            TransformType::Integ => TransformId::Integ(id.into()),
            TransformType::Dh => TransformId::Dh(id.into()),
            TransformType::Esn => TransformId::Esn(id.into()),
            TransformType::Unknown(_) => TransformId::Other { transform_type, id },
        }
    }

    /// The transform type.
    pub fn transform_type(self) -> TransformType {
        match self {
            TransformId::Encr(_) => TransformType::Encr,
            TransformId::Prf(_) => TransformType::Prf,
            TransformId::Integ(_) => TransformType::Integ,
            TransformId::Dh(_) => TransformType::Dh,
            TransformId::Esn(_) => TransformType::Esn,
            TransformId::Other { transform_type, .. } => transform_type,
        }
    }

    /// The transform ID number.
    pub fn id(self) -> u16 {
        match self {
            TransformId::Encr(id) => id.into(),
            TransformId::Prf(id) => id.into(),
            TransformId::Integ(id) => id.into(),
            TransformId::Dh(id) => id.into(),
            TransformId::Esn(id) => id.into(),
            TransformId::Other { id, .. } => id,
        }
    }
}

/// Attribute type of the Key Length attribute, the only one RFC 7296 defines (section
/// 3.3.5).
const KEY_LENGTH: u16 = 14;
/// The Attribute Format bit: set for TV, clear for TLV (RFC 7296 section 3.3.5).
const AF_TV: u16 = 0x8000;
/// Transform fields before the attributes (RFC 7296 section 3.3.2).
const TRANSFORM_HEADER_LEN: usize = 8;

/// A transform attribute (RFC 7296 section 3.3.5). Unknown ones are kept so that they
/// survive a round trip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Attribute<'a> {
    /// Key Length in bits (type 14, TV format), for ciphers with a variable key length.
    KeyLength(u16),
    /// Another attribute in TV format (AF = 1): a 2-byte value.
    Tv {
        /// Attribute type (15 bits).
        attr_type: u16,
        /// The value.
        value: u16,
    },
    /// An attribute in TLV format (AF = 0).
    Tlv {
        /// Attribute type (15 bits).
        attr_type: u16,
        /// The value.
        #[serde(serialize_with = "crate::hex::serialize")]
        value: &'a [u8],
    },
}

impl Attribute<'_> {
    fn check(&self) -> Result<()> {
        let ok = match *self {
            Attribute::KeyLength(_) => true,
            // Type 14 in TV format parses back as KeyLength.
            Attribute::Tv { attr_type, .. } => attr_type < AF_TV && attr_type != KEY_LENGTH,
            Attribute::Tlv { attr_type, value } => {
                attr_type < AF_TV && u16::try_from(value.len()).is_ok()
            }
        };
        if ok {
            Ok(())
        } else {
            Err(Error::Unrepresentable)
        }
    }
}

impl<'a> Element<'a> for Attribute<'a> {
    fn parse_one(buf: &'a [u8]) -> Result<(Self, usize)> {
        let mut r = Reader::new(buf);
        let word = r.u16()?;
        let attr_type = word & !AF_TV;
        let value = r.u16()?;
        if word & AF_TV != 0 {
            let attr = if attr_type == KEY_LENGTH {
                Attribute::KeyLength(value)
            } else {
                Attribute::Tv { attr_type, value }
            };
            return Ok((attr, 4));
        }
        let value = r.bytes(usize::from(value))?;
        Ok((Attribute::Tlv { attr_type, value }, 4 + value.len()))
    }

    fn wire_len(&self) -> usize {
        match self {
            Attribute::KeyLength(_) | Attribute::Tv { .. } => 4,
            Attribute::Tlv { value, .. } => 4 + value.len(),
        }
    }

    fn emit_one(&self, buf: &mut [u8]) {
        let mut w = Writer::new(buf);
        match *self {
            Attribute::KeyLength(bits) => {
                w.u16(AF_TV | KEY_LENGTH);
                w.u16(bits);
            }
            Attribute::Tv { attr_type, value } => {
                w.u16(AF_TV | attr_type);
                w.u16(value);
            }
            Attribute::Tlv { attr_type, value } => {
                w.u16(attr_type);
                w.u16(value.len() as u16);
                w.bytes(value);
            }
        }
    }
}

/// A transform of a proposal (RFC 7296 section 3.3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Transform<'a> {
    /// Transform type and ID.
    pub id: TransformId,
    /// Attributes, usually none or a Key Length.
    pub attributes: Seq<'a, Attribute<'a>>,
}

impl<'a> Transform<'a> {
    /// A transform without attributes.
    pub const fn new(id: TransformId) -> Self {
        Transform {
            id,
            attributes: Seq::Items(&[]),
        }
    }

    /// A transform with a Key Length attribute (RFC 7296 section 3.3.5), the form of
    /// `ENCR_AES_CBC` and `ENCR_AES_GCM_*`. The attribute lives with the caller, as in every
    /// caller-built list: `Transform::with_key_length(id, &[Attribute::KeyLength(256)])`
    /// (with a constant length the slice is `'static`).
    pub const fn with_key_length(id: TransformId, key_length: &'a [Attribute<'a>; 1]) -> Self {
        Transform {
            id,
            attributes: Seq::Items(key_length),
        }
    }

    /// The transform type.
    pub fn transform_type(&self) -> TransformType {
        self.id.transform_type()
    }

    /// The Key Length attribute in bits, if present.
    pub fn key_length(&self) -> Option<u16> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::KeyLength(bits) => Some(bits),
            _ => None,
        })
    }

    pub(super) fn check(&self) -> Result<()> {
        len16(self.wire_len())?;
        self.attributes.iter().try_for_each(|a| a.check())
    }
}

impl<'a> Element<'a> for Transform<'a> {
    /// Parses a transform; its Last Substruc must be 0 exactly when it ends `buf`.
    fn parse_one(buf: &'a [u8]) -> Result<(Self, usize)> {
        let mut r = Reader::new(buf);
        let last = r.u8()?;
        r.u8()?;
        let len = usize::from(r.u16()?);
        if len < TRANSFORM_HEADER_LEN {
            return Err(Error::BadLength);
        }
        let bytes = buf.get(..len).ok_or(Error::Truncated)?;
        check_last_substruc(last, MORE_TRANSFORMS, len, buf.len())?;
        let mut r = Reader::new(bytes.get(4..).ok_or(Error::Truncated)?);
        let transform_type = TransformType::from(r.u8()?);
        r.u8()?;
        let id = TransformId::new(transform_type, r.u16()?);
        let attributes = Seq::parse(r.rest())?;
        Ok((Transform { id, attributes }, len))
    }

    fn wire_len(&self) -> usize {
        TRANSFORM_HEADER_LEN + self.attributes.wire_len()
    }

    /// Writes the transform with Last Substruc 0; the proposal sets it on all but the last.
    fn emit_one(&self, buf: &mut [u8]) {
        let mut w = Writer::new(buf);
        w.u8(0);
        w.u8(0);
        w.u16(self.wire_len() as u16);
        w.u8(self.id.transform_type().into());
        w.u8(0);
        w.u16(self.id.id());
        let n = self.attributes.emit(w.tail());
        w.advance(n);
    }
}
