//! NHRP extensions (RFC 2332 section 5.3) and the Cisco NAT address extension.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |C|u|        Type               |        Length                 |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                         Value...                              |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! The list starts at `ar$extoff` and ends with End of Extensions (type 0, length 0), which
//! is not an [`Extension`] element: [`super::Repr`] writes and checks it. Values are not
//! padded (Cisco's authentication extension has length 4 + password length).

use super::cie::Cie;
use crate::{Element, Error, Result, Seq};

enum_with_unknown! {
    /// The type of an extension (RFC 2332 section 5.3), without the compulsory bit.
    pub enum ExtensionType(u16) {
        /// End of Extensions (RFC 2332 section 5.3.0): ends the list.
        End = 0,
        /// Responder Address (RFC 2332 section 5.3.1).
        ResponderAddress = 3,
        /// Forward Transit NHS Record (RFC 2332 section 5.3.2).
        ForwardTransit = 4,
        /// Reverse Transit NHS Record (RFC 2332 section 5.3.3).
        ReverseTransit = 5,
        /// Authentication (RFC 2332 section 5.3.4), in Cisco's layout.
        Authentication = 7,
        /// Vendor-Private (RFC 2332 section 5.3.5).
        VendorPrivate = 8,
        /// Cisco NAT address (not in RFC 2332; FRR nhrpd `NHRP_EXTENSION_NAT_ADDRESS`).
        NatAddress = 9,
    }
}

/// The compulsory bit of the type field (RFC 2332 section 5.3): a receiver that does not
/// know a compulsory extension must reject the packet.
pub const COMPULSORY: u16 = 0x8000;
/// The bits of the type field that [`ExtensionType`] holds: the 14-bit type and the unused
/// bit 14, kept so that a type with it set survives a round trip as an unknown type.
const TYPE_MASK: u16 = 0x7fff;
/// The type and length fields before the value.
pub const EXTENSION_HEADER_LEN: usize = 4;
/// The authentication type of Cisco's cleartext password (RFC 2332 section 5.3.4 reads the
/// same 4 bytes as Reserved = 0, SPI = 1).
pub const AUTH_CLEARTEXT: u32 = 1;
/// The length of the authentication type field before the authentication data.
const AUTH_TYPE_LEN: usize = 4;

/// One extension of an NHRP message (RFC 2332 section 5.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Extension<'a> {
    /// The compulsory bit (0x8000 of the type field). Parsing an unknown type with this bit
    /// set fails with [`Error::UnknownCritical`].
    pub compulsory: bool,
    /// The type and value.
    pub body: ExtensionBody<'a>,
}

/// The type and value of an [`Extension`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum ExtensionBody<'a> {
    /// Responder Address (RFC 2332 section 5.3.1): empty in requests, one CIE naming the
    /// responder in replies.
    ResponderAddress(Seq<'a, Cie<'a>>),
    /// Forward Transit NHS Record (RFC 2332 section 5.3.2): one CIE per NHS that forwarded
    /// the request.
    ForwardTransit(Seq<'a, Cie<'a>>),
    /// Reverse Transit NHS Record (RFC 2332 section 5.3.3): one CIE per NHS that forwarded
    /// the reply.
    ReverseTransit(Seq<'a, Cie<'a>>),
    /// Authentication (RFC 2332 section 5.3.4) as Cisco and FRR nhrpd send it: a 4-byte
    /// authentication type, then the authentication data (the cleartext password), with no
    /// source address and no padding.
    Authentication {
        /// The authentication type ([`AUTH_CLEARTEXT`]); RFC 2332 reads it as Reserved and
        /// SPI.
        auth_type: u32,
        /// The authentication data: the password for [`AUTH_CLEARTEXT`], redacted in
        /// `Debug` and serialized output.
        data: AuthData<'a>,
    },
    /// Vendor-Private (RFC 2332 section 5.3.5): a 3-byte IEEE OUI then vendor data, kept raw.
    VendorPrivate {
        /// The whole value, OUI included.
        #[serde(serialize_with = "crate::hex::serialize")]
        data: &'a [u8],
    },
    /// Cisco NAT address (type 9, sent non-compulsory): the NBMA addresses a sender claims and,
    /// in a Registration Reply, the post-NAT NBMA address the NHS saw (FRR nhrpd
    /// `nhrp_nhs.c`, `nhrp_peer.c`).
    NatAddress(Seq<'a, Cie<'a>>),
    /// An extension type this codec does not know, kept raw. `ty` must not be a known
    /// [`ExtensionType`] nor End, and has at most 15 bits (no compulsory bit).
    Unknown {
        /// The type, without the compulsory bit.
        ty: u16,
        /// The value.
        #[serde(serialize_with = "crate::hex::serialize")]
        data: &'a [u8],
    },
}

/// The data of an authentication extension: for Cisco's cleartext type, the `ip nhrp
/// authentication` password. `Debug` and `Serialize` show only its length, so a logged or
/// printed message never reveals it; [`AuthData::expose`] gives the bytes to the code that
/// checks or emits them.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct AuthData<'a>(&'a [u8]);

impl<'a> AuthData<'a> {
    /// Wraps authentication data.
    pub const fn new(data: &'a [u8]) -> Self {
        AuthData(data)
    }

    /// The secret bytes.
    pub const fn expose(&self) -> &'a [u8] {
        self.0
    }

    /// The length in bytes.
    pub const fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the data is empty.
    pub const fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl core::fmt::Debug for AuthData<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "<{} bytes redacted>", self.0.len())
    }
}

impl serde::Serialize for AuthData<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        s.collect_str(&format_args!("<{} bytes redacted>", self.0.len()))
    }
}

impl<'a> Extension<'a> {
    /// An extension with the compulsory bit of Cisco and FRR nhrpd: set for every type but the
    /// Cisco NAT address (type 9) and unknown types.
    pub const fn new(body: ExtensionBody<'a>) -> Self {
        let compulsory = !matches!(
            body,
            ExtensionBody::NatAddress(_) | ExtensionBody::Unknown { .. }
        );
        Extension { compulsory, body }
    }

    /// Cisco's cleartext-password authentication extension (RFC 2332 section 5.3.4, Cisco
    /// layout), compulsory.
    pub const fn cleartext_password(password: &'a [u8]) -> Self {
        Self::new(ExtensionBody::Authentication {
            auth_type: AUTH_CLEARTEXT,
            data: AuthData(password),
        })
    }

    /// The type of the extension.
    pub fn ty(&self) -> ExtensionType {
        match self.body {
            ExtensionBody::ResponderAddress(_) => ExtensionType::ResponderAddress,
            ExtensionBody::ForwardTransit(_) => ExtensionType::ForwardTransit,
            ExtensionBody::ReverseTransit(_) => ExtensionType::ReverseTransit,
            ExtensionBody::Authentication { .. } => ExtensionType::Authentication,
            ExtensionBody::VendorPrivate { .. } => ExtensionType::VendorPrivate,
            ExtensionBody::NatAddress(_) => ExtensionType::NatAddress,
            ExtensionBody::Unknown { ty, .. } => ExtensionType::Unknown(ty),
        }
    }

    /// The CIEs of a CIE-list extension (Responder Address, transit records, NAT address).
    pub fn cies(&self) -> Option<Seq<'a, Cie<'a>>> {
        match self.body {
            ExtensionBody::ResponderAddress(cies)
            | ExtensionBody::ForwardTransit(cies)
            | ExtensionBody::ReverseTransit(cies)
            | ExtensionBody::NatAddress(cies) => Some(cies),
            _ => None,
        }
    }

    fn value_len(&self) -> usize {
        match self.body {
            ExtensionBody::ResponderAddress(cies)
            | ExtensionBody::ForwardTransit(cies)
            | ExtensionBody::ReverseTransit(cies)
            | ExtensionBody::NatAddress(cies) => cies.wire_len(),
            ExtensionBody::Authentication { data, .. } => AUTH_TYPE_LEN + data.len(),
            ExtensionBody::VendorPrivate { data } | ExtensionBody::Unknown { data, .. } => {
                data.len()
            }
        }
    }

    /// Checks that the extension can be emitted and parsed back to itself: an unknown type
    /// that is neither known nor End and fits 15 bits, a value that fits the length field, and
    /// CIEs whose addresses fit theirs.
    ///
    /// # Errors
    /// [`Error::Unrepresentable`].
    pub fn check(&self) -> Result<()> {
        if let ExtensionBody::Unknown { ty, .. } = self.body
            && (ty & !TYPE_MASK != 0
                || !matches!(ExtensionType::from(ty), ExtensionType::Unknown(_)))
        {
            return Err(Error::Unrepresentable);
        }
        if self.value_len() > usize::from(u16::MAX) {
            return Err(Error::Unrepresentable);
        }
        if let Some(Seq::Items(cies)) = self.cies() {
            cies.iter().try_for_each(Cie::check)?;
        }
        Ok(())
    }
}

impl<'a> Extension<'a> {
    /// Parses one extension; the CIEs of a CIE-list extension are validated when `validate`
    /// is set, and otherwise kept as the bytes of a list that [`Seq::parse`] validated before.
    fn parse_body(buf: &'a [u8], validate: bool) -> Result<(Self, usize)> {
        let head = buf.get(..EXTENSION_HEADER_LEN).ok_or(Error::Truncated)?;
        let raw_type = u16::from_be_bytes([head[0], head[1]]);
        let len = usize::from(u16::from_be_bytes([head[2], head[3]]));
        let end = EXTENSION_HEADER_LEN + len;
        let value = buf.get(EXTENSION_HEADER_LEN..end).ok_or(Error::Truncated)?;
        let compulsory = raw_type & COMPULSORY != 0;
        let cies = |value: &'a [u8]| {
            if validate {
                Seq::parse(value)
            } else {
                Ok(Seq::Wire(value))
            }
        };
        let body = match ExtensionType::from(raw_type & TYPE_MASK) {
            ExtensionType::End => return Err(Error::Malformed),
            ExtensionType::ResponderAddress => ExtensionBody::ResponderAddress(cies(value)?),
            ExtensionType::ForwardTransit => ExtensionBody::ForwardTransit(cies(value)?),
            ExtensionType::ReverseTransit => ExtensionBody::ReverseTransit(cies(value)?),
            ExtensionType::Authentication => {
                let ty = value.get(..AUTH_TYPE_LEN).ok_or(Error::BadLength)?;
                ExtensionBody::Authentication {
                    auth_type: u32::from_be_bytes([ty[0], ty[1], ty[2], ty[3]]),
                    data: AuthData(&value[AUTH_TYPE_LEN..]),
                }
            }
            ExtensionType::VendorPrivate => ExtensionBody::VendorPrivate { data: value },
            ExtensionType::NatAddress => ExtensionBody::NatAddress(cies(value)?),
            ExtensionType::Unknown(ty) => {
                if compulsory {
                    return Err(Error::UnknownCritical(ty));
                }
                ExtensionBody::Unknown { ty, data: value }
            }
        };
        Ok((Extension { compulsory, body }, end))
    }
}

impl<'a> Element<'a> for Extension<'a> {
    /// Parses one extension other than End (which [`super::Repr::parse`] handles).
    ///
    /// # Errors
    /// [`Error::Truncated`] when the value runs past `buf`, [`Error::Malformed`] for End,
    /// [`Error::UnknownCritical`] for an unknown compulsory type, and the errors of the CIEs
    /// of a CIE-list extension (whose value must be exactly whole CIEs).
    fn parse_one(buf: &'a [u8]) -> Result<(Self, usize)> {
        Self::parse_body(buf, true)
    }

    /// Parses one extension of a validated list without validating its CIEs again.
    fn parse_validated(buf: &'a [u8]) -> Result<(Self, usize)> {
        Self::parse_body(buf, false)
    }

    fn wire_len(&self) -> usize {
        EXTENSION_HEADER_LEN + self.value_len()
    }

    /// Writes the extension; what [`Extension::check`] rejects is written truncated to its
    /// field, which [`super::Repr::emit`] rules out beforehand.
    fn emit_one(&self, buf: &mut [u8]) {
        self.emit_len(buf);
    }

    /// Writes the extension and returns its length, measuring the value as it writes it.
    fn emit_len(&self, buf: &mut [u8]) -> usize {
        let ty = u16::from(self.ty()) & TYPE_MASK | if self.compulsory { COMPULSORY } else { 0 };
        buf[0..2].copy_from_slice(&ty.to_be_bytes());
        let value = &mut buf[EXTENSION_HEADER_LEN..];
        let len = match self.body {
            ExtensionBody::ResponderAddress(cies)
            | ExtensionBody::ForwardTransit(cies)
            | ExtensionBody::ReverseTransit(cies)
            | ExtensionBody::NatAddress(cies) => cies.emit(value),
            ExtensionBody::Authentication { auth_type, data } => {
                value[..AUTH_TYPE_LEN].copy_from_slice(&auth_type.to_be_bytes());
                value[AUTH_TYPE_LEN..AUTH_TYPE_LEN + data.len()].copy_from_slice(data.expose());
                AUTH_TYPE_LEN + data.len()
            }
            ExtensionBody::VendorPrivate { data } | ExtensionBody::Unknown { data, .. } => {
                value[..data.len()].copy_from_slice(data);
                data.len()
            }
        };
        buf[2..4].copy_from_slice(&(len as u16).to_be_bytes());
        EXTENSION_HEADER_LEN + len
    }
}

/// Writes End of Extensions (RFC 2332 section 5.3.0: compulsory type 0, length 0) at the
/// start of `buf`, at least [`EXTENSION_HEADER_LEN`] long.
pub(crate) fn emit_end(buf: &mut [u8]) {
    buf[..EXTENSION_HEADER_LEN].copy_from_slice(&[0x80, 0, 0, 0]);
}

/// The first extension of each known type in a message (RFC 2332 section 5.3), noted in the
/// walk that validates the list, so that the NHRP procedures look an extension up without
/// parsing the list again, and, when the list holds only these, their order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExtensionIndex<'a> {
    /// By [`ExtensionIndex::slot`].
    first: [Option<Extension<'a>>; 6],
    /// The slots of the noted extensions in wire order, three bits each (at most six).
    order: u32,
    /// The number of slots in `order`.
    len: u8,
    /// The list holds an extension that is not noted: of an unknown type, or not the first
    /// of its type.
    partial: bool,
}

impl<'a> ExtensionIndex<'a> {
    /// The slot of a known type other than End.
    fn slot(ty: ExtensionType) -> Option<usize> {
        match ty {
            ExtensionType::ResponderAddress => Some(0),
            ExtensionType::ForwardTransit => Some(1),
            ExtensionType::ReverseTransit => Some(2),
            ExtensionType::Authentication => Some(3),
            ExtensionType::VendorPrivate => Some(4),
            ExtensionType::NatAddress => Some(5),
            ExtensionType::End | ExtensionType::Unknown(_) => None,
        }
    }

    /// Notes `ext` unless an extension of its type came before.
    fn note(&mut self, ext: Extension<'a>) {
        if let Some(i) = Self::slot(ext.ty())
            && let Some(slot) = self.first.get_mut(i)
            && slot.is_none()
        {
            *slot = Some(ext);
            // Each slot is filled once: at most six, 18 bits.
            self.order |= (i as u32) << (3 * u32::from(self.len));
            self.len += 1;
        } else {
            self.partial = true;
        }
    }

    /// The whole extension list in wire order, End excluded, when every extension in it is
    /// noted (of a known type and the first of its type), so that a reply can copy the
    /// request's extensions without parsing them again; `None` otherwise.
    pub fn in_order(&self) -> Option<impl Iterator<Item = Extension<'a>> + '_> {
        (!self.partial).then(|| {
            (0..u32::from(self.len)).filter_map(move |k| {
                let i = (self.order >> (3 * k)) & 0b111;
                self.first.get(i as usize).copied().flatten()
            })
        })
    }

    /// The first extension of type `ty`, as [`super::Repr::find_extension`] finds it; always
    /// `None` for End and unknown types, which are not indexed.
    pub fn get(&self, ty: ExtensionType) -> Option<Extension<'a>> {
        Self::slot(ty).and_then(|i| self.first.get(i).copied().flatten())
    }
}

/// Reads the extension list that starts at `buf[0]` and must end with End of Extensions
/// exactly at the end of `buf` (RFC 2332 section 5.3), and notes the first extension of each
/// known type. End may come with or without the compulsory bit.
///
/// # Errors
/// [`Error::Truncated`] when End is missing or an extension runs past `buf`,
/// [`Error::Malformed`] for an End with a value or bytes after End, and the errors of
/// [`Extension`]s.
pub(crate) fn parse_list(buf: &[u8]) -> Result<(Seq<'_, Extension<'_>>, ExtensionIndex<'_>)> {
    let mut index = ExtensionIndex::default();
    let mut at = 0;
    loop {
        let rest = buf.get(at..).unwrap_or_default();
        let head = rest.get(..EXTENSION_HEADER_LEN).ok_or(Error::Truncated)?;
        let raw_type = u16::from_be_bytes([head[0], head[1]]);
        if raw_type & TYPE_MASK == u16::from(ExtensionType::End) {
            if head[2..4] != [0, 0] || rest.len() != EXTENSION_HEADER_LEN {
                return Err(Error::Malformed);
            }
            return Ok((Seq::Wire(&buf[..at]), index));
        }
        let (ext, used) = Extension::parse_one(rest)?;
        index.note(ext);
        at += used;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_is_redacted_in_debug_output() {
        let ext = Extension::cleartext_password(b"@lpha");
        let shown = std::format!("{ext:?}");
        assert!(
            !shown.contains("lpha") && !shown.contains("108, 112"),
            "{shown}"
        );
        assert!(shown.contains("<5 bytes redacted>"), "{shown}");
    }

    #[test]
    fn cisco_authentication() {
        // Offsets 64-76 of ../shared/vectors/nhrp/01-registration-request.txt.
        let bytes = [
            0x80, 0x07, 0x00, 0x09, 0, 0, 0, 1, b'@', b'l', b'p', b'h', b'a',
        ];
        let (ext, used) = Extension::parse_one(&bytes).unwrap();
        assert_eq!(used, bytes.len());
        assert_eq!(ext, Extension::cleartext_password(b"@lpha"));
        let mut out = [0u8; 13];
        ext.emit_one(&mut out);
        assert_eq!(out, bytes);
        assert_eq!(
            Extension::parse_one(&[0x80, 0x07, 0, 3, 0, 0, 1]).unwrap_err(),
            Error::BadLength
        );
    }

    #[test]
    fn unknown_types() {
        let critical = [0x80, 0x42, 0, 1, 0xaa];
        assert_eq!(
            Extension::parse_one(&critical).unwrap_err(),
            Error::UnknownCritical(0x42)
        );
        let optional = [0x00, 0x42, 0, 1, 0xaa];
        let (ext, _) = Extension::parse_one(&optional).unwrap();
        assert_eq!(
            ext.body,
            ExtensionBody::Unknown {
                ty: 0x42,
                data: &[0xaa]
            }
        );
        assert!(!ext.compulsory);
        let known = Extension::new(ExtensionBody::Unknown { ty: 7, data: &[] });
        assert_eq!(known.check().unwrap_err(), Error::Unrepresentable);
        let too_wide = Extension::new(ExtensionBody::Unknown {
            ty: 0x8042,
            data: &[],
        });
        assert_eq!(too_wide.check().unwrap_err(), Error::Unrepresentable);
    }

    #[test]
    fn list_needs_a_single_final_end() {
        assert!(parse_list(&[0x80, 0, 0, 0]).unwrap().0.is_empty());
        assert!(parse_list(&[0x00, 0, 0, 0]).unwrap().0.is_empty());
        assert_eq!(
            parse_list(&[0x80, 0x03, 0, 0]).unwrap_err(),
            Error::Truncated
        );
        assert_eq!(
            parse_list(&[0x80, 0, 0, 0, 0]).unwrap_err(),
            Error::Malformed
        );
        assert_eq!(
            parse_list(&[0x80, 0, 0, 1, 0]).unwrap_err(),
            Error::Malformed
        );
        assert_eq!(
            parse_list(&[0x80, 0x03, 0, 8, 0x80, 0, 0, 0]).unwrap_err(),
            Error::Truncated
        );
        let (list, index) = parse_list(&[
            0x80, 0x03, 0, 0, 0x80, 0x04, 0, 0, 0x80, 0x03, 0, 0, 0x80, 0, 0, 0,
        ])
        .unwrap();
        assert_eq!(list.len(), 3);
        assert_eq!(index.get(ExtensionType::ForwardTransit), list.iter().nth(1));
        assert_eq!(
            index.get(ExtensionType::ResponderAddress),
            list.iter().next()
        );
        assert_eq!(index.get(ExtensionType::NatAddress), None);
    }
}
