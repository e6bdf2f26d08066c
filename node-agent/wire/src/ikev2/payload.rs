//! The generic payload header (RFC 7296 section 3.2) and the payload chain of a message.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | Next Payload  |C|  RESERVED   |         Payload Length        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! Each payload's type is named by the Next Payload field of the header before it (the IKE
//! header for the first one), so the chain is its own list type, [`Payloads`], rather than a
//! [`Seq`]. The Next Payload field of an SK or SKF payload names the first payload *inside*
//! the encrypted data; SK and SKF are therefore always the last payload of a message
//! (RFC 7296 section 3.14, RFC 7383 section 2.5).

use super::cursor::{Reader, Writer, len16};
use super::{
    Authentication, Certificate, Delete, Encrypted, EncryptedFragment, Identification, KeyExchange,
    Nonce, Notification, Proposal, TrafficSelector, VendorId,
};
use crate::{Error, Result, Seq};

enum_with_unknown! {
    /// IKEv2 payload type (RFC 7296 section 3.2; IANA "IKEv2 Payload Types").
    pub enum PayloadType(u8) {
        /// No Next Payload: ends the chain.
        None = 0,
        /// Security Association (RFC 7296 section 3.3).
        Sa = 33,
        /// Key Exchange (RFC 7296 section 3.4).
        Ke = 34,
        /// Identification - Initiator (RFC 7296 section 3.5).
        IdI = 35,
        /// Identification - Responder (RFC 7296 section 3.5).
        IdR = 36,
        /// Certificate (RFC 7296 section 3.6).
        Cert = 37,
        /// Certificate Request (RFC 7296 section 3.7).
        CertReq = 38,
        /// Authentication (RFC 7296 section 3.8).
        Auth = 39,
        /// Nonce (RFC 7296 section 3.9).
        Nonce = 40,
        /// Notify (RFC 7296 section 3.10).
        Notify = 41,
        /// Delete (RFC 7296 section 3.11).
        Delete = 42,
        /// Vendor ID (RFC 7296 section 3.12).
        VendorId = 43,
        /// Traffic Selector - Initiator (RFC 7296 section 3.13).
        TsI = 44,
        /// Traffic Selector - Responder (RFC 7296 section 3.13).
        TsR = 45,
        /// Encrypted and Authenticated (RFC 7296 section 3.14).
        Sk = 46,
        /// Configuration (RFC 7296 section 3.15); kept opaque.
        Cp = 47,
        /// Extensible Authentication (RFC 7296 section 3.16); kept opaque.
        Eap = 48,
        /// Encrypted and Authenticated Fragment (RFC 7383 section 2.5).
        Skf = 53,
    }
}

/// The generic payload header length (RFC 7296 section 3.2).
pub const PAYLOAD_HEADER_LEN: usize = 4;

/// The critical bit of the generic payload header (RFC 7296 section 3.2).
const CRITICAL: u8 = 0x80;

/// The body of one payload kind: parsed from the bytes after the generic header, emitted
/// into a buffer of exactly `body_len` bytes.
pub(super) trait Body<'a>: Sized {
    /// Parses and validates the whole body.
    fn parse(body: &'a [u8]) -> Result<Self>;
    /// The body length on the wire.
    fn body_len(&self) -> usize;
    /// Writes the body into `buf`, exactly [`Body::body_len`] bytes.
    ///
    /// # Errors
    /// [`Error::Unrepresentable`] when a value does not fit its field.
    fn emit(&self, buf: &mut [u8]) -> Result<()>;
}

/// One payload: the critical bit of its generic header (RFC 7296 section 3.2) and its body.
/// Next Payload and Payload Length are computed when emitting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Payload<'a> {
    /// The critical bit: a receiver that does not know the type must reject the message
    /// (RFC 7296 section 2.5). Kept as received for known types, which ignore it.
    pub critical: bool,
    /// The payload's body, typed by kind.
    pub body: PayloadBody<'a>,
}

/// The body of a payload, by payload type (RFC 7296 sections 3.3 to 3.16, RFC 7383 2.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum PayloadBody<'a> {
    /// Security Association: proposals (RFC 7296 section 3.3).
    Sa(Seq<'a, Proposal<'a>>),
    /// Key Exchange (RFC 7296 section 3.4).
    Ke(KeyExchange<'a>),
    /// Identification of the initiator (RFC 7296 section 3.5).
    IdI(Identification<'a>),
    /// Identification of the responder (RFC 7296 section 3.5).
    IdR(Identification<'a>),
    /// Certificate (RFC 7296 section 3.6).
    Cert(Certificate<'a>),
    /// Certificate Request (RFC 7296 section 3.7).
    CertReq(Certificate<'a>),
    /// Authentication (RFC 7296 section 3.8, RFC 7427 section 3).
    Auth(Authentication<'a>),
    /// Nonce (RFC 7296 section 3.9).
    Nonce(Nonce<'a>),
    /// Notify (RFC 7296 section 3.10).
    Notify(Notification<'a>),
    /// Delete (RFC 7296 section 3.11).
    Delete(Delete<'a>),
    /// Vendor ID (RFC 7296 section 3.12).
    VendorId(VendorId<'a>),
    /// Traffic selectors of the initiator (RFC 7296 section 3.13).
    TsI(Seq<'a, TrafficSelector<'a>>),
    /// Traffic selectors of the responder (RFC 7296 section 3.13).
    TsR(Seq<'a, TrafficSelector<'a>>),
    /// Encrypted and Authenticated, SK (RFC 7296 section 3.14); always the last payload.
    Encrypted(Encrypted<'a>),
    /// Encrypted and Authenticated Fragment, SKF (RFC 7383 section 2.5); always the last
    /// payload.
    EncryptedFragment(EncryptedFragment<'a>),
    /// A payload kept as bytes: CP (RFC 7296 section 3.15), EAP (section 3.16) and types
    /// this codec does not know (non-critical ones, RFC 7296 section 2.5).
    Opaque {
        /// The payload type; [`PayloadType::Cp`], [`PayloadType::Eap`] or unknown.
        ty: PayloadType,
        /// The body after the generic header.
        #[serde(serialize_with = "crate::hex::serialize")]
        data: &'a [u8],
    },
}

impl<'a> PayloadBody<'a> {
    /// The payload type that announces this body.
    pub fn ty(&self) -> PayloadType {
        match self {
            PayloadBody::Sa(_) => PayloadType::Sa,
            PayloadBody::Ke(_) => PayloadType::Ke,
            PayloadBody::IdI(_) => PayloadType::IdI,
            PayloadBody::IdR(_) => PayloadType::IdR,
            PayloadBody::Cert(_) => PayloadType::Cert,
            PayloadBody::CertReq(_) => PayloadType::CertReq,
            PayloadBody::Auth(_) => PayloadType::Auth,
            PayloadBody::Nonce(_) => PayloadType::Nonce,
            PayloadBody::Notify(_) => PayloadType::Notify,
            PayloadBody::Delete(_) => PayloadType::Delete,
            PayloadBody::VendorId(_) => PayloadType::VendorId,
            PayloadBody::TsI(_) => PayloadType::TsI,
            PayloadBody::TsR(_) => PayloadType::TsR,
            PayloadBody::Encrypted(_) => PayloadType::Sk,
            PayloadBody::EncryptedFragment(_) => PayloadType::Skf,
            PayloadBody::Opaque { ty, .. } => *ty,
        }
    }

    /// Whether this is SK or SKF, which end the chain.
    pub fn is_encrypted(&self) -> bool {
        matches!(
            self,
            PayloadBody::Encrypted(_) | PayloadBody::EncryptedFragment(_)
        )
    }

    /// Parses the body of a payload of type `ty`; `next` is its Next Payload field, which SK
    /// and SKF keep as the first inner payload type.
    fn parse(ty: PayloadType, next: PayloadType, critical: bool, body: &'a [u8]) -> Result<Self> {
        Ok(match ty {
            PayloadType::Sa => PayloadBody::Sa(Body::parse(body)?),
            PayloadType::Ke => PayloadBody::Ke(Body::parse(body)?),
            PayloadType::IdI => PayloadBody::IdI(Body::parse(body)?),
            PayloadType::IdR => PayloadBody::IdR(Body::parse(body)?),
            PayloadType::Cert => PayloadBody::Cert(Body::parse(body)?),
            PayloadType::CertReq => PayloadBody::CertReq(Body::parse(body)?),
            PayloadType::Auth => PayloadBody::Auth(Body::parse(body)?),
            PayloadType::Nonce => PayloadBody::Nonce(Body::parse(body)?),
            PayloadType::Notify => PayloadBody::Notify(Body::parse(body)?),
            PayloadType::Delete => PayloadBody::Delete(Body::parse(body)?),
            PayloadType::VendorId => PayloadBody::VendorId(Body::parse(body)?),
            PayloadType::TsI => PayloadBody::TsI(Body::parse(body)?),
            PayloadType::TsR => PayloadBody::TsR(Body::parse(body)?),
            PayloadType::Sk => PayloadBody::Encrypted(Encrypted {
                first_inner: next,
                data: body,
            }),
            PayloadType::Skf => {
                PayloadBody::EncryptedFragment(EncryptedFragment::parse(next, body)?)
            }
            PayloadType::Cp | PayloadType::Eap => PayloadBody::Opaque { ty, data: body },
            PayloadType::Unknown(t) if critical => return Err(Error::UnknownCritical(t.into())),
            PayloadType::Unknown(_) => PayloadBody::Opaque { ty, data: body },
            // Type 0 ends the chain; it never names a payload.
            PayloadType::None => return Err(Error::Malformed),
        })
    }

    /// The body length on the wire.
    pub fn body_len(&self) -> usize {
        match self {
            PayloadBody::Sa(b) => b.body_len(),
            PayloadBody::Ke(b) => b.body_len(),
            PayloadBody::IdI(b) | PayloadBody::IdR(b) => b.body_len(),
            PayloadBody::Cert(b) | PayloadBody::CertReq(b) => b.body_len(),
            PayloadBody::Auth(b) => b.body_len(),
            PayloadBody::Nonce(b) => b.body_len(),
            PayloadBody::Notify(b) => b.body_len(),
            PayloadBody::Delete(b) => b.body_len(),
            PayloadBody::VendorId(b) => b.body_len(),
            PayloadBody::TsI(b) | PayloadBody::TsR(b) => b.body_len(),
            PayloadBody::Encrypted(b) => b.data.len(),
            PayloadBody::EncryptedFragment(b) => b.body_len(),
            PayloadBody::Opaque { data, .. } => data.len(),
        }
    }

    fn emit(&self, buf: &mut [u8]) -> Result<()> {
        match self {
            PayloadBody::Sa(b) => Body::emit(b, buf),
            PayloadBody::Ke(b) => b.emit(buf),
            PayloadBody::IdI(b) | PayloadBody::IdR(b) => b.emit(buf),
            PayloadBody::Cert(b) | PayloadBody::CertReq(b) => b.emit(buf),
            PayloadBody::Auth(b) => b.emit(buf),
            PayloadBody::Nonce(b) => b.emit(buf),
            PayloadBody::Notify(b) => b.emit(buf),
            PayloadBody::Delete(b) => b.emit(buf),
            PayloadBody::VendorId(b) => b.emit(buf),
            PayloadBody::TsI(b) | PayloadBody::TsR(b) => Body::emit(b, buf),
            PayloadBody::Encrypted(b) => {
                buf.copy_from_slice(b.data);
                Ok(())
            }
            PayloadBody::EncryptedFragment(b) => b.emit(buf),
            PayloadBody::Opaque { ty, data } => match ty {
                // Any other type would parse back as a different body.
                PayloadType::Cp | PayloadType::Eap | PayloadType::Unknown(_) => {
                    buf.copy_from_slice(data);
                    Ok(())
                }
                _ => Err(Error::Unrepresentable),
            },
        }
    }
}

impl<'a> Payload<'a> {
    /// A non-critical payload.
    pub const fn new(body: PayloadBody<'a>) -> Self {
        Payload {
            critical: false,
            body,
        }
    }

    /// The payload type.
    pub fn ty(&self) -> PayloadType {
        self.body.ty()
    }

    /// The bytes of the payload on the wire, generic header included.
    pub fn wire_len(&self) -> usize {
        PAYLOAD_HEADER_LEN + self.body.body_len()
    }

    /// Parses the payload of type `ty` at the start of `buf`; returns it with its Next
    /// Payload field and the bytes it took.
    fn parse_one(ty: PayloadType, buf: &'a [u8]) -> Result<(Self, PayloadType, usize)> {
        let mut r = Reader::new(buf);
        let next = PayloadType::from(r.u8()?);
        let critical = r.u8()? & CRITICAL != 0;
        let len = usize::from(r.u16()?);
        if len < PAYLOAD_HEADER_LEN {
            return Err(Error::BadLength);
        }
        let body = buf.get(PAYLOAD_HEADER_LEN..len).ok_or(Error::Truncated)?;
        let body = PayloadBody::parse(ty, next, critical, body)?;
        Ok((Payload { critical, body }, next, len))
    }

    /// Writes the payload with `next` in its Next Payload field (SK and SKF write their
    /// first inner payload type instead) into `buf`, exactly [`Payload::wire_len`] bytes.
    fn emit(&self, next: PayloadType, buf: &mut [u8]) -> Result<()> {
        let next = match self.body {
            PayloadBody::Encrypted(sk) => sk.first_inner,
            PayloadBody::EncryptedFragment(skf) => skf.first_inner,
            _ => next,
        };
        let len = len16(self.wire_len())?;
        let mut w = Writer::new(buf);
        w.u8(next.into());
        w.u8(if self.critical { CRITICAL } else { 0 });
        w.u16(len);
        self.body.emit(w.tail())
    }
}

/// The payload chain of a message, or of the plaintext of an SK payload: either bytes that
/// [`Payloads::parse`] validated completely, or payloads built by the caller. Both iterate
/// the same way and compare equal when their payloads do (the idea of [`Seq`], for a list
/// whose element types come from the element before).
#[derive(Debug, Clone, Copy)]
pub enum Payloads<'a> {
    /// Validated wire bytes.
    Wire {
        /// The type of the first payload (the IKE header's Next Payload).
        first: PayloadType,
        /// The payloads, back to back.
        bytes: &'a [u8],
    },
    /// Payloads built by the caller; SK or SKF may only be last.
    Items(&'a [Payload<'a>]),
}

impl<'a> Payloads<'a> {
    /// Validates that `bytes` are exactly a chain of payloads starting with type `first`:
    /// every payload length and body is checked, the last payload has Next Payload 0 and ends
    /// with the bytes, or is SK/SKF (RFC 7296 section 3.14) and ends with the bytes.
    ///
    /// # Errors
    /// A payload's error; [`Error::UnknownCritical`] for an unknown payload with the critical
    /// bit (RFC 7296 section 2.5); [`Error::Malformed`] for bytes after SK or SKF;
    /// [`Error::BadLength`] for bytes after the last payload.
    pub fn parse(first: PayloadType, bytes: &'a [u8]) -> Result<Self> {
        let mut ty = first;
        let mut rest = bytes;
        while ty != PayloadType::None {
            let (payload, next, used) = Payload::parse_one(ty, rest)?;
            rest = rest.get(used..).ok_or(Error::Truncated)?;
            if payload.body.is_encrypted() {
                return if rest.is_empty() {
                    Ok(Payloads::Wire { first, bytes })
                } else {
                    Err(Error::Malformed)
                };
            }
            ty = next;
        }
        if !rest.is_empty() {
            return Err(Error::BadLength);
        }
        Ok(Payloads::Wire { first, bytes })
    }

    /// No payload.
    pub const fn empty() -> Self {
        Payloads::Items(&[])
    }

    /// The type of the first payload, [`PayloadType::None`] when there is none.
    pub fn first_type(&self) -> PayloadType {
        match self {
            Payloads::Wire { first, .. } => *first,
            Payloads::Items(items) => items.first().map_or(PayloadType::None, Payload::ty),
        }
    }

    /// Iterates over the payloads.
    pub fn iter(&self) -> PayloadsIter<'a> {
        match *self {
            Payloads::Wire { first, bytes } => PayloadsIter::Wire { next: first, bytes },
            Payloads::Items(items) => PayloadsIter::Items(items.iter()),
        }
    }

    /// The payload types in order.
    pub fn types(&self) -> impl Iterator<Item = PayloadType> + 'a {
        self.iter().map(|p| p.ty())
    }

    /// The bytes the chain takes on the wire.
    pub fn wire_len(&self) -> usize {
        match self {
            Payloads::Wire { bytes, .. } => bytes.len(),
            Payloads::Items(items) => items.iter().map(Payload::wire_len).sum(),
        }
    }

    /// Writes the chain at the start of `buf`, computing every Next Payload and Payload
    /// Length field, and returns the bytes written.
    ///
    /// # Errors
    /// [`Error::BufferTooSmall`] when `buf` is shorter than [`Payloads::wire_len`];
    /// [`Error::Malformed`] when SK or SKF is not the last payload;
    /// [`Error::Unrepresentable`] when a value does not fit its field.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let len = self.wire_len();
        let buf = buf.get_mut(..len).ok_or(Error::BufferTooSmall)?;
        match self {
            Payloads::Wire { bytes, .. } => buf.copy_from_slice(bytes),
            Payloads::Items(items) => {
                let mut at = 0;
                for (i, item) in items.iter().enumerate() {
                    let next = items.get(i + 1).map_or(PayloadType::None, Payload::ty);
                    if item.body.is_encrypted() && next != PayloadType::None {
                        return Err(Error::Malformed);
                    }
                    let end = at + item.wire_len();
                    item.emit(next, &mut buf[at..end])?;
                    at = end;
                }
            }
        }
        Ok(len)
    }
}

impl Default for Payloads<'_> {
    fn default() -> Self {
        Self::empty()
    }
}

impl PartialEq for Payloads<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for Payloads<'_> {}

impl serde::Serialize for Payloads<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

impl<'a> IntoIterator for Payloads<'a> {
    type Item = Payload<'a>;
    type IntoIter = PayloadsIter<'a>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// Iterator over [`Payloads`].
#[derive(Debug, Clone)]
pub enum PayloadsIter<'a> {
    /// Parsing validated bytes one payload at a time.
    Wire {
        /// The type of the next payload.
        next: PayloadType,
        /// The bytes not parsed yet.
        bytes: &'a [u8],
    },
    /// Copying caller-built payloads.
    Items(core::slice::Iter<'a, Payload<'a>>),
}

impl<'a> Iterator for PayloadsIter<'a> {
    type Item = Payload<'a>;

    fn next(&mut self) -> Option<Payload<'a>> {
        match self {
            PayloadsIter::Wire { next, bytes } => {
                if *next == PayloadType::None {
                    return None;
                }
                // The bytes were validated by `Payloads::parse`; if that ever failed, ending
                // the iteration is the safe answer.
                match Payload::parse_one(*next, bytes) {
                    Ok((payload, after, used)) => {
                        *bytes = bytes.get(used..).unwrap_or_default();
                        *next = if payload.body.is_encrypted() {
                            PayloadType::None
                        } else {
                            after
                        };
                        Some(payload)
                    }
                    Err(_) => {
                        *next = PayloadType::None;
                        None
                    }
                }
            }
            PayloadsIter::Items(items) => items.next().copied(),
        }
    }
}
