//! The mandatory part of NHRP messages (RFC 2332 section 5.2.0.1): the common header that
//! every message type shares, the per-type flags of sections 5.2.1 to 5.2.6, and the
//! [`Message`] enum that holds the mandatory part of each type.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | Src Proto Len | Dst Proto Len |           Flags               |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                         Request ID                            |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |            Source NBMA Address (variable length)              |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |          Source NBMA Subaddress (variable length)             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |          Source Protocol Address (variable length)            |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |       Destination  Protocol Address (variable length)         |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! The lengths of the source NBMA address and subaddress are `ar$shtl` and `ar$sstl` of the
//! fixed header. Requests, replies and purges follow this header with CIEs (section 5.2.0.1);
//! the Error Indication (section 5.2.7) and the Cisco Traffic Indication reuse its layout with
//! other meanings for the flags and request ID words.

use super::address::{Address, NbmaAddress};
use super::cie::Cie;
use super::error_indication::ErrorIndication;
use super::header::{Operation, field};
use super::traffic_indication::TrafficIndication;
use crate::{Error, Result, Seq};

macro_rules! nhrp_flags {
    (
        $( #[$attr:meta] )*
        pub struct $name:ident {
            $( $( #[$flag_attr:meta] )* const $flag:ident = $value:expr; )+
        }
    ) => {
        $( #[$attr] )*
        ///
        /// Unknown bits are kept, so a round trip is exact.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize)]
        #[serde(transparent)]
        pub struct $name(pub u16);

        impl $name {
            $( $( #[$flag_attr] )* pub const $flag: Self = Self($value); )+

            /// Whether every bit of `other` is set.
            pub const fn contains(self, other: Self) -> bool {
                self.0 & other.0 == other.0
            }
        }

        impl core::ops::BitOr for $name {
            type Output = Self;
            fn bitor(self, other: Self) -> Self {
                Self(self.0 | other.0)
            }
        }
    };
}

nhrp_flags! {
    /// The flags of Resolution Requests and Replies (RFC 2332 sections 5.2.1 and 5.2.2).
    pub struct ResolutionFlags {
        /// Q: the requester is a router, not a host.
        const ROUTER = 0x8000;
        /// A: the reply is authoritative (request: only an authoritative reply is wanted).
        const AUTHORITATIVE = 0x4000;
        /// D: the association between destination and NBMA address is stable.
        const DESTINATION_STABLE = 0x2000;
        /// U: unique binding.
        const UNIQUE = 0x1000;
        /// S: the association between source and NBMA address is stable.
        const SOURCE_STABLE = 0x0800;
        /// Cisco NAT support (FRR nhrpd `NHRP_FLAG_RESOLUTION_NAT`).
        const NAT = 0x0002;
    }
}

nhrp_flags! {
    /// The flags of Registration Requests and Replies (RFC 2332 sections 5.2.3 and 5.2.4).
    pub struct RegistrationFlags {
        /// U: unique registration.
        const UNIQUE = 0x8000;
        /// Cisco NAT support (FRR nhrpd `NHRP_FLAG_REGISTRATION_NAT`).
        const NAT = 0x0002;
    }
}

nhrp_flags! {
    /// The flags of Purge Requests and Replies (RFC 2332 sections 5.2.5 and 5.2.6).
    pub struct PurgeFlags {
        /// N: the sender of the Purge Request expects no Purge Reply (RFC 2332 section 5.2.5).
        const NO_REPLY = 0x8000;
        /// Cisco NAT support.
        const NAT = 0x0002;
    }
}

/// The mandatory part of Resolution, Registration and Purge Requests and Replies
/// (RFC 2332 section 5.2.0.1): the common header and the CIEs, which run to `ar$extoff` (or to
/// `ar$pktsz` without extensions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct CommonHeader<'a, F> {
    /// The flags of the message type.
    pub flags: F,
    /// Matches a reply with its request.
    pub request_id: u32,
    /// The source NBMA address (type/length in `ar$shtl`).
    pub src_nbma: NbmaAddress<'a>,
    /// The source NBMA subaddress (type/length in `ar$sstl`).
    pub src_nbma_sub: NbmaAddress<'a>,
    /// The source protocol address.
    pub src_proto: Address<'a>,
    /// The destination protocol address.
    pub dst_proto: Address<'a>,
    /// The Client Information Entries.
    pub cies: Seq<'a, Cie<'a>>,
}

/// Resolution Request or Reply (RFC 2332 sections 5.2.1, 5.2.2).
pub type Resolution<'a> = CommonHeader<'a, ResolutionFlags>;
/// Registration Request or Reply (RFC 2332 sections 5.2.3, 5.2.4).
pub type Registration<'a> = CommonHeader<'a, RegistrationFlags>;
/// Purge Request or Reply (RFC 2332 sections 5.2.5, 5.2.6).
pub type Purge<'a> = CommonHeader<'a, PurgeFlags>;

/// The mandatory part of an NHRP message, one variant per `ar$op.type`
/// (RFC 2332 sections 5.2.1 to 5.2.7, and Cisco's Traffic Indication).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Message<'a> {
    /// Type 1 (RFC 2332 section 5.2.1).
    ResolutionRequest(Resolution<'a>),
    /// Type 2 (RFC 2332 section 5.2.2).
    ResolutionReply(Resolution<'a>),
    /// Type 3 (RFC 2332 section 5.2.3).
    RegistrationRequest(Registration<'a>),
    /// Type 4 (RFC 2332 section 5.2.4).
    RegistrationReply(Registration<'a>),
    /// Type 5 (RFC 2332 section 5.2.5).
    PurgeRequest(Purge<'a>),
    /// Type 6 (RFC 2332 section 5.2.6).
    PurgeReply(Purge<'a>),
    /// Type 7 (RFC 2332 section 5.2.7).
    ErrorIndication(ErrorIndication<'a>),
    /// Type 8, Cisco DMVPN phase 3 redirect (draft-detienne-dmvpn; FRR nhrpd
    /// `nhrp_peer_send_indication`).
    TrafficIndication(TrafficIndication<'a>),
    /// A type this codec does not know. Its layout is unknown, so the source NBMA
    /// type/length bytes and the whole mandatory part (from byte 20 to `ar$extoff`, or
    /// `ar$pktsz`) are kept raw; extensions are still parsed. `operation` must not be 1-8.
    Unknown {
        /// `ar$op.type`.
        operation: u8,
        /// `ar$shtl`, raw.
        shtl: u8,
        /// `ar$sstl`, raw.
        sstl: u8,
        /// The mandatory part, raw.
        #[serde(serialize_with = "crate::hex::serialize")]
        mandatory: &'a [u8],
    },
}

/// The common header fields as raw words, shared by every known type.
#[derive(Debug, Clone, Copy)]
pub(super) struct Fields<'a> {
    /// Bytes 22-23: flags, or unused.
    pub flags: u16,
    /// Bytes 24-27: request ID, error code and offset, or traffic code and unused.
    pub word: [u8; 4],
    pub src_nbma: NbmaAddress<'a>,
    pub src_nbma_sub: NbmaAddress<'a>,
    pub src_proto: Address<'a>,
    pub dst_proto: Address<'a>,
}

impl<'a> Fields<'a> {
    /// Reads the common header of the message `msg` (from `ar$afn`, `ar$pktsz` bytes long)
    /// and returns it with the offset of the first byte after its addresses.
    fn parse(msg: &'a [u8]) -> Result<(Self, usize)> {
        let head = msg.get(..field::ADDRESSES).ok_or(Error::Truncated)?;
        let mut at = field::ADDRESSES;
        let src_nbma = NbmaAddress::parse(msg.get(at..).unwrap_or_default(), head[field::SHTL])?;
        at += src_nbma.address.len();
        let src_nbma_sub =
            NbmaAddress::parse(msg.get(at..).unwrap_or_default(), head[field::SSTL])?;
        at += src_nbma_sub.address.len();
        let src_len = usize::from(head[field::SRC_PROTO_LEN]);
        let src_proto = Address::parse(msg.get(at..).unwrap_or_default(), src_len)?;
        at += src_len;
        let dst_len = usize::from(head[field::DST_PROTO_LEN]);
        let dst_proto = Address::parse(msg.get(at..).unwrap_or_default(), dst_len)?;
        at += dst_len;
        let fields = Fields {
            flags: u16::from_be_bytes([head[field::FLAGS.start], head[field::FLAGS.start + 1]]),
            word: [head[24], head[25], head[26], head[27]],
            src_nbma,
            src_nbma_sub,
            src_proto,
            dst_proto,
        };
        Ok((fields, at))
    }

    fn wire_len(&self) -> usize {
        field::ADDRESSES - field::SRC_PROTO_LEN
            + self.src_nbma.address.len()
            + self.src_nbma_sub.address.len()
            + self.src_proto.len()
            + self.dst_proto.len()
    }

    /// Writes `ar$shtl`, `ar$sstl` and the common header into the message buffer `buf` and
    /// returns the offset after the addresses.
    fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        buf[field::SHTL] = self.src_nbma.type_len()?;
        buf[field::SSTL] = self.src_nbma_sub.type_len()?;
        buf[field::SRC_PROTO_LEN] = self.src_proto.len_byte()?;
        buf[field::DST_PROTO_LEN] = self.dst_proto.len_byte()?;
        buf[field::FLAGS].copy_from_slice(&self.flags.to_be_bytes());
        buf[field::REQUEST_ID].copy_from_slice(&self.word);
        let mut at = field::ADDRESSES;
        at += self.src_nbma.address.emit(&mut buf[at..]);
        at += self.src_nbma_sub.address.emit(&mut buf[at..]);
        at += self.src_proto.emit(&mut buf[at..]);
        at += self.dst_proto.emit(&mut buf[at..]);
        Ok(at)
    }
}

impl<'a, F: Copy + Into<u16> + From<u16>> CommonHeader<'a, F> {
    fn parse(fields: Fields<'a>, cies: &'a [u8]) -> Result<Self> {
        Ok(CommonHeader {
            flags: F::from(fields.flags),
            request_id: u32::from_be_bytes(fields.word),
            src_nbma: fields.src_nbma,
            src_nbma_sub: fields.src_nbma_sub,
            src_proto: fields.src_proto,
            dst_proto: fields.dst_proto,
            cies: Seq::parse(cies)?,
        })
    }

    fn fields(&self) -> Fields<'a> {
        Fields {
            flags: self.flags.into(),
            word: self.request_id.to_be_bytes(),
            src_nbma: self.src_nbma,
            src_nbma_sub: self.src_nbma_sub,
            src_proto: self.src_proto,
            dst_proto: self.dst_proto,
        }
    }

    /// Writes the common header and the CIEs, checking the CIEs first when `check` is set.
    fn emit(&self, buf: &mut [u8], check: bool) -> Result<usize> {
        if let Seq::Items(cies) = self.cies
            && check
        {
            cies.iter().try_for_each(Cie::check)?;
        }
        let at = self.fields().emit(buf)?;
        Ok(at + self.cies.emit(&mut buf[at..]))
    }
}

macro_rules! flags_conversions {
    ($($name:ident),+) => {$(
        impl From<u16> for $name {
            fn from(bits: u16) -> Self {
                Self(bits)
            }
        }
        impl From<$name> for u16 {
            fn from(flags: $name) -> u16 {
                flags.0
            }
        }
    )+};
}
flags_conversions!(ResolutionFlags, RegistrationFlags, PurgeFlags);

impl<'a> Message<'a> {
    /// The `ar$op.type` of the message.
    pub fn operation(&self) -> Operation {
        match self {
            Message::ResolutionRequest(_) => Operation::ResolutionRequest,
            Message::ResolutionReply(_) => Operation::ResolutionReply,
            Message::RegistrationRequest(_) => Operation::RegistrationRequest,
            Message::RegistrationReply(_) => Operation::RegistrationReply,
            Message::PurgeRequest(_) => Operation::PurgeRequest,
            Message::PurgeReply(_) => Operation::PurgeReply,
            Message::ErrorIndication(_) => Operation::ErrorIndication,
            Message::TrafficIndication(_) => Operation::TrafficIndication,
            Message::Unknown { operation, .. } => Operation::from(*operation),
        }
    }

    /// Reads the mandatory part of a message of type `operation`. `msg` is the whole message
    /// (`ar$pktsz` bytes from `ar$afn`) and the mandatory part ends at `end` (`ar$extoff`, or
    /// `ar$pktsz` without extensions).
    ///
    /// # Errors
    /// [`Error::Truncated`] when the addresses run past the message, [`Error::BadOffset`]
    /// when they run past `ar$extoff`, [`Error::Malformed`] for a reserved type/length bit,
    /// and the errors of the CIEs.
    pub(super) fn parse(operation: Operation, msg: &'a [u8], end: usize) -> Result<Self> {
        let common = || -> Result<(Fields<'a>, &'a [u8])> {
            let (fields, at) = Fields::parse(msg)?;
            Ok((fields, msg.get(at..end).ok_or(Error::BadOffset)?))
        };
        Ok(match operation {
            Operation::ResolutionRequest => {
                let (fields, cies) = common()?;
                Message::ResolutionRequest(CommonHeader::parse(fields, cies)?)
            }
            Operation::ResolutionReply => {
                let (fields, cies) = common()?;
                Message::ResolutionReply(CommonHeader::parse(fields, cies)?)
            }
            Operation::RegistrationRequest => {
                let (fields, cies) = common()?;
                Message::RegistrationRequest(CommonHeader::parse(fields, cies)?)
            }
            Operation::RegistrationReply => {
                let (fields, cies) = common()?;
                Message::RegistrationReply(CommonHeader::parse(fields, cies)?)
            }
            Operation::PurgeRequest => {
                let (fields, cies) = common()?;
                Message::PurgeRequest(CommonHeader::parse(fields, cies)?)
            }
            Operation::PurgeReply => {
                let (fields, cies) = common()?;
                Message::PurgeReply(CommonHeader::parse(fields, cies)?)
            }
            Operation::ErrorIndication => {
                let (fields, packet) = common()?;
                Message::ErrorIndication(ErrorIndication::from_fields(fields, packet))
            }
            Operation::TrafficIndication => {
                let (fields, packet) = common()?;
                Message::TrafficIndication(TrafficIndication::from_fields(fields, packet))
            }
            Operation::Unknown(operation) => {
                let head = msg.get(..field::SRC_PROTO_LEN).ok_or(Error::Truncated)?;
                Message::Unknown {
                    operation,
                    shtl: head[field::SHTL],
                    sstl: head[field::SSTL],
                    mandatory: msg.get(field::SRC_PROTO_LEN..end).ok_or(Error::BadOffset)?,
                }
            }
        })
    }

    /// The number of bytes of the mandatory part (from byte 20 of the message).
    pub fn wire_len(&self) -> usize {
        match self {
            Message::ResolutionRequest(h) | Message::ResolutionReply(h) => {
                h.fields().wire_len() + h.cies.wire_len()
            }
            Message::RegistrationRequest(h) | Message::RegistrationReply(h) => {
                h.fields().wire_len() + h.cies.wire_len()
            }
            Message::PurgeRequest(h) | Message::PurgeReply(h) => {
                h.fields().wire_len() + h.cies.wire_len()
            }
            Message::ErrorIndication(e) => e.fields().wire_len() + e.packet.len(),
            Message::TrafficIndication(t) => t.fields().wire_len() + t.packet.len(),
            Message::Unknown { mandatory, .. } => mandatory.len(),
        }
    }

    /// Writes `ar$op.type`, `ar$shtl`, `ar$sstl` and the mandatory part into the message
    /// buffer `buf` (from `ar$afn`, at least `20 + wire_len()` long) and returns the offset
    /// after the mandatory part. The CIEs are checked to fit their length fields when
    /// `check` is set, else written truncated.
    ///
    /// # Errors
    /// [`Error::Unrepresentable`] for an address that does not fit its length field, or an
    /// `Unknown` message whose operation is a known type.
    pub(super) fn emit(&self, buf: &mut [u8], check: bool) -> Result<usize> {
        buf[field::OPERATION] = self.operation().into();
        match self {
            Message::ResolutionRequest(h) | Message::ResolutionReply(h) => h.emit(buf, check),
            Message::RegistrationRequest(h) | Message::RegistrationReply(h) => h.emit(buf, check),
            Message::PurgeRequest(h) | Message::PurgeReply(h) => h.emit(buf, check),
            Message::ErrorIndication(e) => {
                let at = e.fields().emit(buf)?;
                buf[at..at + e.packet.len()].copy_from_slice(e.packet);
                Ok(at + e.packet.len())
            }
            Message::TrafficIndication(t) => {
                let at = t.fields().emit(buf)?;
                buf[at..at + t.packet.len()].copy_from_slice(t.packet);
                Ok(at + t.packet.len())
            }
            Message::Unknown {
                operation,
                shtl,
                sstl,
                mandatory,
            } => {
                if !matches!(Operation::from(*operation), Operation::Unknown(_)) {
                    return Err(Error::Unrepresentable);
                }
                buf[field::SHTL] = *shtl;
                buf[field::SSTL] = *sstl;
                let end = field::SRC_PROTO_LEN + mandatory.len();
                buf[field::SRC_PROTO_LEN..end].copy_from_slice(mandatory);
                Ok(end)
            }
        }
    }
}
