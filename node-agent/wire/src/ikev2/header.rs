//! The IKEv2 header (RFC 7296 section 3.1) and its packet view.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                       IKE SA Initiator's SPI                  |
//! |                                                               |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                       IKE SA Responder's SPI                  |
//! |                                                               |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |  Next Payload | MjVer | MnVer | Exchange Type |     Flags     |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                          Message ID                           |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                            Length                             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```

use super::PayloadType;
use crate::{Error, Result};

/// The major version of IKEv2 (RFC 7296 section 3.1).
pub const MAJOR_VERSION: u8 = 2;

/// The length of the IKE header (RFC 7296 section 3.1).
pub const HEADER_LEN: usize = 28;

pub(super) mod field {
    use core::ops::Range;
    pub const INITIATOR_SPI: Range<usize> = 0..8;
    pub const RESPONDER_SPI: Range<usize> = 8..16;
    pub const NEXT_PAYLOAD: usize = 16;
    pub const VERSION: usize = 17;
    pub const EXCHANGE_TYPE: usize = 18;
    pub const FLAGS: usize = 19;
    pub const MESSAGE_ID: Range<usize> = 20..24;
    pub const LENGTH: Range<usize> = 24..28;
}

enum_with_unknown! {
    /// IKEv2 exchange type (RFC 7296 section 3.1; IANA "IKEv2 Exchange Types").
    pub enum ExchangeType(u8) {
        /// IKE_SA_INIT (RFC 7296 section 1.2).
        IkeSaInit = 34,
        /// IKE_AUTH (RFC 7296 section 1.2).
        IkeAuth = 35,
        /// CREATE_CHILD_SA (RFC 7296 section 1.3).
        CreateChildSa = 36,
        /// INFORMATIONAL (RFC 7296 section 1.4).
        Informational = 37,
    }
}

/// The flags octet of the IKE header (RFC 7296 section 3.1). Unknown bits are kept as
/// received (the RFC says to ignore them), so a round trip is byte-exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize)]
pub struct Flags(pub u8);

impl Flags {
    /// I (Initiator): set by the original initiator of the IKE SA (RFC 7296 section 3.1).
    pub const INITIATOR: Flags = Flags(0x08);
    /// V (Version): the sender can speak a higher major version (RFC 7296 section 3.1).
    pub const VERSION: Flags = Flags(0x10);
    /// R (Response): the message is a response (RFC 7296 section 3.1).
    pub const RESPONSE: Flags = Flags(0x20);

    /// Whether every bit of `other` is set.
    pub const fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether the I (Initiator) bit is set.
    pub const fn initiator(self) -> bool {
        self.contains(Self::INITIATOR)
    }

    /// Whether the R (Response) bit is set.
    pub const fn response(self) -> bool {
        self.contains(Self::RESPONSE)
    }

    /// Whether the V (higher version) bit is set.
    pub const fn higher_version(self) -> bool {
        self.contains(Self::VERSION)
    }
}

impl core::ops::BitOr for Flags {
    type Output = Flags;
    fn bitor(self, rhs: Flags) -> Flags {
        Flags(self.0 | rhs.0)
    }
}

/// A read view of an IKEv2 message: the header of RFC 7296 section 3.1 and the payload bytes
/// it announces.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking it; accessors may panic on a short buffer.
    pub const fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }

    /// Wraps a buffer and checks the header (RFC 7296 section 3.1): 28 bytes present, major
    /// version 2, and a Length field of at least 28 that the buffer holds. The message is the
    /// first `length` bytes; bytes after it are not part of it.
    ///
    /// # Errors
    /// [`Error::Truncated`] (buffer shorter than the header or than Length),
    /// [`Error::BadVersion`] (major version other than 2), [`Error::BadLength`] (Length < 28).
    pub fn new_checked(buffer: T) -> Result<Self> {
        let packet = Self::new_unchecked(buffer);
        let len = packet.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if packet.major_version() != MAJOR_VERSION {
            return Err(Error::BadVersion);
        }
        let length = packet.length();
        if length < HEADER_LEN as u32 {
            return Err(Error::BadLength);
        }
        if length as usize > len {
            return Err(Error::Truncated);
        }
        Ok(packet)
    }

    /// Consumes the view and returns the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn u32_at(&self, at: usize) -> u32 {
        let b = self.buffer.as_ref();
        u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
    }

    fn u64_at(&self, at: usize) -> u64 {
        (u64::from(self.u32_at(at)) << 32) | u64::from(self.u32_at(at + 4))
    }

    /// The IKE SA initiator's SPI.
    pub fn initiator_spi(&self) -> u64 {
        self.u64_at(field::INITIATOR_SPI.start)
    }

    /// The IKE SA responder's SPI (zero in the first IKE_SA_INIT request).
    pub fn responder_spi(&self) -> u64 {
        self.u64_at(field::RESPONDER_SPI.start)
    }

    /// The type of the first payload.
    pub fn next_payload(&self) -> PayloadType {
        PayloadType::from(self.buffer.as_ref()[field::NEXT_PAYLOAD])
    }

    /// The major version (2 for IKEv2).
    pub fn major_version(&self) -> u8 {
        self.buffer.as_ref()[field::VERSION] >> 4
    }

    /// The minor version (0 for RFC 7296).
    pub fn minor_version(&self) -> u8 {
        self.buffer.as_ref()[field::VERSION] & 0x0f
    }

    /// The exchange type.
    pub fn exchange_type(&self) -> ExchangeType {
        ExchangeType::from(self.buffer.as_ref()[field::EXCHANGE_TYPE])
    }

    /// The flags octet.
    pub fn flags(&self) -> Flags {
        Flags(self.buffer.as_ref()[field::FLAGS])
    }

    /// The message ID.
    pub fn message_id(&self) -> u32 {
        self.u32_at(field::MESSAGE_ID.start)
    }

    /// The Length field: header and payloads, in bytes.
    pub fn length(&self) -> u32 {
        self.u32_at(field::LENGTH.start)
    }

    /// The payload bytes: after the header, up to Length.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.length() as usize]
    }
}
