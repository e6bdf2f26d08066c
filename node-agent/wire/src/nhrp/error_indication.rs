//! The Error Indication (RFC 2332 section 5.2.7): reports why an NHRP packet was dropped and
//! carries that packet back to its source.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | Src Proto Len | Dst Proto Len |            unused             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |           Error Code          |        Error Offset           |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |   Source NBMA Address, Subaddress, Source and Destination     |
//! |   Protocol Addresses (variable length)                        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |       Contents of NHRP Packet in error (variable length)      |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```

use super::address::{Address, NbmaAddress};
use super::message::Fields;

enum_with_unknown! {
    /// The error code of an Error Indication (RFC 2332 section 5.2.7).
    pub enum ErrorCode(u16) {
        /// Unrecognized extension: a compulsory extension the receiver does not know.
        UnrecognizedExtension = 1,
        /// NHRP loop detected.
        LoopDetected = 3,
        /// Protocol address unreachable.
        ProtocolAddressUnreachable = 6,
        /// Protocol error: a generic packet parsing failure.
        ProtocolError = 7,
        /// NHRP SDU size exceeded.
        SduSizeExceeded = 8,
        /// Invalid extension: an extension in a packet type that must not carry it.
        InvalidExtension = 9,
        /// Invalid NHRP Resolution Reply received.
        InvalidResolutionReply = 10,
        /// Authentication failure (Cisco and FRR nhrpd send it for a wrong password).
        AuthenticationFailure = 11,
        /// Hop count exceeded.
        HopCountExceeded = 15,
    }
}

/// The mandatory part of an Error Indication (RFC 2332 section 5.2.7).
///
/// The error offset is not checked against `packet`: FRR nhrpd returns only the fixed header
/// and mandatory part of the packet in error, so an offset that names one of its extensions
/// (an authentication failure) points past the bytes carried.
///
/// `Debug` and `Serialize` show only the length of the packet in error: it may carry an
/// authentication extension, whose password must not reach logs.
#[derive(Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ErrorIndication<'a> {
    /// RFC 2332 marks bytes 22-23 unused; FRR nhrpd copies the flags of the packet in error
    /// there. Kept so that a round trip is exact.
    pub unused: u16,
    /// Why the packet was dropped.
    pub code: ErrorCode,
    /// Where in the packet in error (from its `ar$afn`) the error was found.
    pub offset: u16,
    /// The NBMA address of the station that found the error.
    pub src_nbma: NbmaAddress<'a>,
    /// Its NBMA subaddress.
    pub src_nbma_sub: NbmaAddress<'a>,
    /// Its protocol address.
    pub src_proto: Address<'a>,
    /// The source protocol address of the packet in error.
    pub dst_proto: Address<'a>,
    /// The packet in error, from its fixed header.
    #[serde(serialize_with = "crate::hex::serialize_length")]
    pub packet: &'a [u8],
}

impl core::fmt::Debug for ErrorIndication<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ErrorIndication")
            .field("unused", &self.unused)
            .field("code", &self.code)
            .field("offset", &self.offset)
            .field("src_nbma", &self.src_nbma)
            .field("src_nbma_sub", &self.src_nbma_sub)
            .field("src_proto", &self.src_proto)
            .field("dst_proto", &self.dst_proto)
            .field("packet", &format_args!("<{} bytes>", self.packet.len()))
            .finish()
    }
}

impl<'a> ErrorIndication<'a> {
    pub(super) fn from_fields(fields: Fields<'a>, packet: &'a [u8]) -> Self {
        let [c0, c1, o0, o1] = fields.word;
        ErrorIndication {
            unused: fields.flags,
            code: ErrorCode::from(u16::from_be_bytes([c0, c1])),
            offset: u16::from_be_bytes([o0, o1]),
            src_nbma: fields.src_nbma,
            src_nbma_sub: fields.src_nbma_sub,
            src_proto: fields.src_proto,
            dst_proto: fields.dst_proto,
            packet,
        }
    }

    pub(super) fn fields(&self) -> Fields<'a> {
        let [c0, c1] = u16::from(self.code).to_be_bytes();
        let [o0, o1] = self.offset.to_be_bytes();
        Fields {
            flags: self.unused,
            word: [c0, c1, o0, o1],
            src_nbma: self.src_nbma,
            src_nbma_sub: self.src_nbma_sub,
            src_proto: self.src_proto,
            dst_proto: self.dst_proto,
        }
    }
}
