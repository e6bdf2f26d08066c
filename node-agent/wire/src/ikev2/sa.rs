//! The Security Association payload and its proposals (RFC 7296 sections 3.3 and 3.3.1).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | Last Substruc |   RESERVED    |         Proposal Length       |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | Proposal Num  |  Protocol ID  |    SPI Size   |Num  Transforms|
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ~                        SPI (variable)                         ~
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ~                        <Transforms>                           ~
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```

use super::Transform;
use super::cursor::{Reader, Writer, len16};
use super::payload::Body;
use crate::{Element, Error, Result, Seq};

enum_with_unknown! {
    /// Security protocol identifier (RFC 7296 section 3.3.1; IANA "IKEv2 Security Protocol
    /// Identifiers"), also used by Notify (3.10) and Delete (3.11).
    pub enum ProtocolId(u8) {
        /// No SA: a Notify without SPI carries 0 (RFC 7296 section 3.10).
        None = 0,
        /// IKE SA.
        Ike = 1,
        /// AH (RFC 4302).
        Ah = 2,
        /// ESP (RFC 4303).
        Esp = 3,
    }
}

/// Last Substruc value of a proposal followed by another (RFC 7296 section 3.3.1).
const MORE_PROPOSALS: u8 = 2;
/// Last Substruc value of a transform followed by another (RFC 7296 section 3.3.2).
pub(super) const MORE_TRANSFORMS: u8 = 3;
/// Proposal fields before the SPI (RFC 7296 section 3.3.1).
const PROPOSAL_HEADER_LEN: usize = 8;

/// Checks the Last Substruc octet of the element that took `used` of the `left` bytes of its
/// list: 0 on the last element, `more` on the others (RFC 7296 sections 3.3.1, 3.3.2).
///
/// # Errors
/// [`Error::Malformed`] otherwise.
pub(super) fn check_last_substruc(value: u8, more: u8, used: usize, left: usize) -> Result<()> {
    match value {
        0 if used == left => Ok(()),
        v if v == more && used < left => Ok(()),
        _ => Err(Error::Malformed),
    }
}

/// Writes a list of substructures (proposals or transforms) and sets each Last Substruc
/// octet: `more` on all but the last, 0 on the last. Returns the bytes written.
pub(super) fn emit_substructs<'a, T: Element<'a> + Clone>(
    list: &Seq<'a, T>,
    buf: &mut [u8],
    more: u8,
) -> usize {
    match list {
        Seq::Wire(_) => list.emit(buf),
        Seq::Items(items) => {
            let mut at = 0;
            for (i, item) in items.iter().enumerate() {
                item.emit_one(&mut buf[at..]);
                buf[at] = if i + 1 == items.len() { 0 } else { more };
                at += item.wire_len();
            }
            at
        }
    }
}

/// A proposal of an SA payload (RFC 7296 section 3.3.1): a protocol, the SPI of the SA to
/// create, and the transforms offered for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Proposal<'a> {
    /// The proposal number: 1 for the first, and so on (RFC 7296 section 3.3.1).
    pub number: u8,
    /// The protocol of the SA.
    pub protocol_id: ProtocolId,
    /// The sender's SPI: empty for the initial IKE SA, 8 bytes for an IKE SA rekey, 4 for
    /// ESP and AH.
    #[serde(serialize_with = "crate::hex::serialize")]
    pub spi: &'a [u8],
    /// The transforms; the Num Transforms field is their count.
    pub transforms: Seq<'a, Transform<'a>>,
}

impl Proposal<'_> {
    /// Checks that the proposal fits its fields when emitting.
    fn check(&self) -> Result<()> {
        if !matches!(self.spi.len(), 0 | 4 | 8) || self.transforms.len() > usize::from(u8::MAX) {
            return Err(Error::Unrepresentable);
        }
        len16(self.wire_len())?;
        self.transforms.iter().try_for_each(|t| t.check())
    }
}

impl<'a> Element<'a> for Proposal<'a> {
    /// Parses a proposal; its Last Substruc must be 0 exactly when it ends `buf`.
    fn parse_one(buf: &'a [u8]) -> Result<(Self, usize)> {
        let mut r = Reader::new(buf);
        let last = r.u8()?;
        r.u8()?;
        let len = usize::from(r.u16()?);
        if len < PROPOSAL_HEADER_LEN {
            return Err(Error::BadLength);
        }
        let bytes = buf.get(..len).ok_or(Error::Truncated)?;
        check_last_substruc(last, MORE_PROPOSALS, len, buf.len())?;
        let mut r = Reader::new(bytes.get(4..).ok_or(Error::Truncated)?);
        let number = r.u8()?;
        let protocol_id = ProtocolId::from(r.u8()?);
        let spi_size = usize::from(r.u8()?);
        let count = usize::from(r.u8()?);
        if !matches!(spi_size, 0 | 4 | 8) {
            return Err(Error::Malformed);
        }
        let spi = r.bytes(spi_size).map_err(|_| Error::BadLength)?;
        let transforms = Seq::parse(r.rest())?;
        if transforms.len() != count {
            return Err(Error::BadLength);
        }
        Ok((
            Proposal {
                number,
                protocol_id,
                spi,
                transforms,
            },
            len,
        ))
    }

    fn wire_len(&self) -> usize {
        PROPOSAL_HEADER_LEN + self.spi.len() + self.transforms.wire_len()
    }

    /// Writes the proposal with Last Substruc 0; the SA payload sets it on all but the last.
    /// Lengths and counts are truncated to their fields: callers check them first, as
    /// [`crate::ikev2::Repr::emit`] does.
    fn emit_one(&self, buf: &mut [u8]) {
        let mut w = Writer::new(buf);
        w.u8(0);
        w.u8(0);
        w.u16(self.wire_len() as u16);
        w.u8(self.number);
        w.u8(self.protocol_id.into());
        w.u8(self.spi.len() as u8);
        w.u8(self.transforms.len() as u8);
        w.bytes(self.spi);
        emit_substructs(&self.transforms, w.tail(), MORE_TRANSFORMS);
    }
}

/// The SA payload body (RFC 7296 section 3.3): one or more proposals.
impl<'a> Body<'a> for Seq<'a, Proposal<'a>> {
    fn parse(body: &'a [u8]) -> Result<Self> {
        Seq::parse(body)
    }

    fn body_len(&self) -> usize {
        self.wire_len()
    }

    fn emit(&self, buf: &mut [u8]) -> Result<()> {
        self.iter().try_for_each(|p| p.check())?;
        emit_substructs(self, buf, MORE_PROPOSALS);
        Ok(())
    }
}
