//! The NHRP fixed header (RFC 2332 section 5.2.0) and the [`Packet`] view of a whole NHRP
//! message.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |            ar$afn             |          ar$pro.type          |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                          ar$pro.snap                          |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |  ar$pro.snap  |   ar$hopcnt   |            ar$pktsz           |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |           ar$chksum           |            ar$extoff          |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | ar$op.version | ar$op.type    |    ar$shtl    |    ar$sstl    |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```

use crate::{Error, Result, checksum};

enum_with_unknown! {
    /// `ar$op.type`: the NHRP message type (RFC 2332 section 5.2.0; type 8 from Cisco DMVPN
    /// phase 3, draft-detienne-dmvpn).
    pub enum Operation(u8) {
        /// NHRP Resolution Request (RFC 2332 section 5.2.1).
        ResolutionRequest = 1,
        /// NHRP Resolution Reply (RFC 2332 section 5.2.2).
        ResolutionReply = 2,
        /// NHRP Registration Request (RFC 2332 section 5.2.3).
        RegistrationRequest = 3,
        /// NHRP Registration Reply (RFC 2332 section 5.2.4).
        RegistrationReply = 4,
        /// NHRP Purge Request (RFC 2332 section 5.2.5).
        PurgeRequest = 5,
        /// NHRP Purge Reply (RFC 2332 section 5.2.6).
        PurgeReply = 6,
        /// NHRP Error Indication (RFC 2332 section 5.2.7).
        ErrorIndication = 7,
        /// NHRP Traffic Indication, Cisco DMVPN phase 3 redirect (draft-detienne-dmvpn; FRR
        /// nhrpd `nhrp_peer_send_indication`).
        TrafficIndication = 8,
    }
}

enum_with_unknown! {
    /// `ar$afn`: the address family of the NBMA addresses (RFC 2332 section 5.2.0, IANA
    /// Address Family Numbers).
    pub enum AddressFamily(u16) {
        /// IPv4 NBMA addresses.
        Ipv4 = 1,
        /// IPv6 NBMA addresses.
        Ipv6 = 2,
    }
}

/// `ar$pro.type` of IPv4 protocol (tunnel) addresses: an EtherType (RFC 2332 section 5.2.0).
pub const PROTOCOL_IPV4: u16 = 0x0800;
/// `ar$pro.type` of IPv6 protocol (tunnel) addresses.
pub const PROTOCOL_IPV6: u16 = 0x86dd;
/// `ar$op.version` of RFC 2332 NHRP.
pub const VERSION: u8 = 1;

/// Byte offsets of the fixed header and of the common header of the mandatory part.
pub(super) mod field {
    use core::ops::Range;
    pub const AFN: Range<usize> = 0..2;
    pub const PROTOCOL_TYPE: Range<usize> = 2..4;
    pub const PROTOCOL_SNAP: Range<usize> = 4..9;
    pub const HOP_COUNT: usize = 9;
    pub const PACKET_SIZE: Range<usize> = 10..12;
    pub const CHECKSUM: Range<usize> = 12..14;
    pub const EXTENSION_OFFSET: Range<usize> = 14..16;
    pub const VERSION: usize = 16;
    pub const OPERATION: usize = 17;
    pub const SHTL: usize = 18;
    pub const SSTL: usize = 19;
    /// The first byte of the mandatory part.
    pub const SRC_PROTO_LEN: usize = 20;
    pub const DST_PROTO_LEN: usize = 21;
    pub const FLAGS: Range<usize> = 22..24;
    pub const REQUEST_ID: Range<usize> = 24..28;
    pub const ADDRESSES: usize = 28;
}

/// The length of the fixed header (RFC 2332 section 5.2.0).
pub const HEADER_LEN: usize = field::SRC_PROTO_LEN;

/// A read/write view of an NHRP message: fixed header, mandatory part and extensions
/// (RFC 2332 section 5.2). The message is the first `ar$pktsz` bytes of the buffer; bytes
/// after it are ignored.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking it; accessors may panic on a short buffer.
    pub const fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }

    /// Wraps a buffer and checks the fixed header: present, version 1, `ar$pktsz` at least
    /// the fixed header and at most the buffer, and `ar$extoff` either 0 or between the start
    /// of the mandatory part and `ar$pktsz`.
    ///
    /// # Errors
    /// [`Error::Truncated`] (buffer shorter than the header or than `ar$pktsz`),
    /// [`Error::BadVersion`], [`Error::BadLength`] (`ar$pktsz` below 20) or
    /// [`Error::BadOffset`] (`ar$extoff`).
    pub fn new_checked(buffer: T) -> Result<Self> {
        let packet = Self::new_unchecked(buffer);
        packet.check()?;
        Ok(packet)
    }

    fn check(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if self.version() != VERSION {
            return Err(Error::BadVersion);
        }
        let size = usize::from(self.packet_size());
        if size < HEADER_LEN {
            return Err(Error::BadLength);
        }
        if size > len {
            return Err(Error::Truncated);
        }
        let extoff = usize::from(self.extension_offset());
        if extoff != 0 && !(HEADER_LEN..=size).contains(&extoff) {
            return Err(Error::BadOffset);
        }
        Ok(())
    }

    /// The wrapped buffer.
    pub const fn inner(&self) -> &T {
        &self.buffer
    }

    /// Consumes the view and returns the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn u16_at(&self, at: usize) -> u16 {
        let b = self.buffer.as_ref();
        u16::from_be_bytes([b[at], b[at + 1]])
    }

    /// `ar$afn`: the address family of the NBMA addresses.
    pub fn address_family(&self) -> AddressFamily {
        AddressFamily::from(self.u16_at(field::AFN.start))
    }

    /// `ar$pro.type`: the protocol type of the protocol addresses ([`PROTOCOL_IPV4`],
    /// [`PROTOCOL_IPV6`]).
    pub fn protocol_type(&self) -> u16 {
        self.u16_at(field::PROTOCOL_TYPE.start)
    }

    /// `ar$pro.snap`: the SNAP extension of the protocol type (zero for EtherTypes).
    pub fn protocol_snap(&self) -> [u8; 5] {
        let mut snap = [0u8; 5];
        snap.copy_from_slice(&self.buffer.as_ref()[field::PROTOCOL_SNAP]);
        snap
    }

    /// `ar$hopcnt`: how many more NHSs may forward the message.
    pub fn hop_count(&self) -> u8 {
        self.buffer.as_ref()[field::HOP_COUNT]
    }

    /// `ar$pktsz`: the length of the message, extensions included.
    pub fn packet_size(&self) -> u16 {
        self.u16_at(field::PACKET_SIZE.start)
    }

    /// `ar$chksum`.
    pub fn checksum(&self) -> u16 {
        self.u16_at(field::CHECKSUM.start)
    }

    /// `ar$extoff`: the offset of the first extension from `ar$afn`, 0 without extensions.
    pub fn extension_offset(&self) -> u16 {
        self.u16_at(field::EXTENSION_OFFSET.start)
    }

    /// `ar$op.version`.
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VERSION]
    }

    /// `ar$op.type`.
    pub fn operation(&self) -> Operation {
        Operation::from(self.buffer.as_ref()[field::OPERATION])
    }

    /// `ar$shtl`: type and length of the source NBMA address.
    pub fn shtl(&self) -> u8 {
        self.buffer.as_ref()[field::SHTL]
    }

    /// `ar$sstl`: type and length of the source NBMA subaddress.
    pub fn sstl(&self) -> u8 {
        self.buffer.as_ref()[field::SSTL]
    }

    /// The message: the first `ar$pktsz` bytes of the buffer.
    pub fn message(&self) -> &[u8] {
        &self.buffer.as_ref()[..usize::from(self.packet_size())]
    }

    /// Whether `ar$chksum` verifies: the Internet checksum of the `ar$pktsz` bytes of the
    /// message is zero (RFC 2332 section 5.2.0).
    pub fn verify_checksum(&self) -> bool {
        checksum::checksum(self.message()) == 0
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets `ar$hopcnt`, as an NHS does before forwarding; call [`Packet::fill_checksum`]
    /// afterwards.
    pub fn set_hop_count(&mut self, hop_count: u8) {
        self.buffer.as_mut()[field::HOP_COUNT] = hop_count;
    }

    /// Computes `ar$chksum` over the `ar$pktsz` bytes of the message (RFC 2332 section 5.2.0).
    pub fn fill_checksum(&mut self) {
        let size = usize::from(self.packet_size());
        let buf = self.buffer.as_mut();
        buf[field::CHECKSUM].fill(0);
        let sum = checksum::checksum(&buf[..size]);
        buf[field::CHECKSUM].copy_from_slice(&sum.to_be_bytes());
    }
}
