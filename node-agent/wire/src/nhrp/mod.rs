//! NHRP, the Next Hop Resolution Protocol (RFC 2332), with the Cisco DMVPN extensions: the
//! Traffic Indication of phase 3 (`ar$op.type` 8), the NAT address extension (type 9), the
//! Cisco layout of the authentication extension and the NAT flag (0x0002).
//!
//! A message is a fixed header ([`header`], RFC 2332 section 5.2.0), a mandatory part
//! ([`message`]: common header and CIEs of section 5.2.0.1, or the [`error_indication`] or
//! [`traffic_indication`] bodies) and optional extensions ([`extension`], section 5.3)
//! closed by End of Extensions. DMVPN carries it directly in GRE with protocol type 0x2001.
//!
//! [`Packet`] checks the fixed header; [`Repr`] parses the rest without allocating (CIE and
//! extension lists stay [`Seq::Wire`] bytes) and emits it back, computing `ar$pktsz`,
//! `ar$extoff` and `ar$chksum`.

pub mod address;
pub mod cie;
pub mod error_indication;
pub mod extension;
pub mod header;
pub mod message;
pub mod traffic_indication;

pub use address::{Address, NbmaAddress};
pub use cie::{Cie, CieCode};
pub use error_indication::{ErrorCode, ErrorIndication};
pub use extension::{
    AUTH_CLEARTEXT, AuthData, Extension, ExtensionBody, ExtensionIndex, ExtensionType,
};
pub use header::{AddressFamily, HEADER_LEN, Operation, PROTOCOL_IPV4, PROTOCOL_IPV6, Packet};
pub use message::{
    CommonHeader, Message, Purge, PurgeFlags, Registration, RegistrationFlags, Resolution,
    ResolutionFlags,
};
pub use traffic_indication::{TrafficCode, TrafficIndication};

use crate::{Error, Result, Seq, checksum};
use extension::EXTENSION_HEADER_LEN;
use header::field;

/// A whole NHRP message: the fixed header fields (RFC 2332 section 5.2.0), the mandatory part
/// of its type and its extensions (section 5.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Repr<'a> {
    /// `ar$afn`: the family of the NBMA addresses.
    pub afn: AddressFamily,
    /// `ar$pro.type`: the family of the protocol addresses ([`PROTOCOL_IPV4`],
    /// [`PROTOCOL_IPV6`]).
    pub protocol_type: u16,
    /// `ar$pro.snap` (zero for EtherTypes).
    pub protocol_snap: [u8; 5],
    /// `ar$hopcnt`.
    pub hop_count: u8,
    /// `ar$op.type` with the mandatory part.
    pub message: Message<'a>,
    /// The extensions: `None` for `ar$extoff` = 0; `Some(list)` for the list followed by
    /// End of Extensions (an empty list is End alone).
    pub extensions: Option<Seq<'a, Extension<'a>>>,
}

impl<'a> Repr<'a> {
    /// Parses a message whose fixed header [`Packet::new_checked`] accepted, and verifies
    /// `ar$chksum`.
    ///
    /// The mandatory part runs to `ar$extoff` (or `ar$pktsz` without extensions) and must be
    /// exactly the header and whole CIEs for types 1 to 6; the extensions must be whole
    /// extensions closed by End exactly at `ar$pktsz`.
    ///
    /// # Errors
    /// [`Error::BadChecksum`]; [`Error::Truncated`] when an address, CIE or extension runs
    /// past the message or End is missing; [`Error::BadOffset`] when the mandatory part runs
    /// past `ar$extoff`; [`Error::Malformed`] for bytes after End or a reserved type/length
    /// bit; [`Error::UnknownCritical`] for an unknown compulsory extension; and the errors of
    /// [`Packet::new_checked`].
    pub fn parse(packet: &Packet<&'a [u8]>) -> Result<Repr<'a>> {
        Self::parse_indexed(packet).map(|(repr, _)| repr)
    }

    /// Parses a message like [`Repr::parse`] and also returns the first extension of each
    /// known type, noted while the extensions were validated.
    ///
    /// # Errors
    /// Those of [`Repr::parse`].
    pub fn parse_indexed(packet: &Packet<&'a [u8]>) -> Result<(Repr<'a>, ExtensionIndex<'a>)> {
        let packet = Packet::new_checked(*packet.inner())?;
        if !packet.verify_checksum() {
            return Err(Error::BadChecksum);
        }
        let size = usize::from(packet.packet_size());
        let msg = packet.inner().get(..size).ok_or(Error::Truncated)?;
        let extoff = usize::from(packet.extension_offset());
        let end = if extoff == 0 { size } else { extoff };
        let message = Message::parse(packet.operation(), msg, end)?;
        let (extensions, index) = match extoff {
            0 => (None, ExtensionIndex::default()),
            _ => {
                let (list, index) =
                    extension::parse_list(msg.get(extoff..).ok_or(Error::BadOffset)?)?;
                (Some(list), index)
            }
        };
        let repr = Repr {
            afn: packet.address_family(),
            protocol_type: packet.protocol_type(),
            protocol_snap: packet.protocol_snap(),
            hop_count: packet.hop_count(),
            message,
            extensions,
        };
        Ok((repr, index))
    }

    /// The message type.
    pub fn operation(&self) -> Operation {
        self.message.operation()
    }

    /// The first extension of type `ty`, if any.
    pub fn find_extension(&self, ty: ExtensionType) -> Option<Extension<'a>> {
        self.extensions?.iter().find(|ext| ext.ty() == ty)
    }

    /// The length of the message [`Repr::emit`] writes: its `ar$pktsz`.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN
            + self.message.wire_len()
            + self
                .extensions
                .map_or(0, |exts| exts.wire_len() + EXTENSION_HEADER_LEN)
    }

    /// Writes the message at the start of `buf` and returns its length, computing
    /// `ar$pktsz`, `ar$extoff` and `ar$chksum`. Unused fields are written as zero.
    ///
    /// # Errors
    /// [`Error::BufferTooSmall`] when `buf` is shorter than [`Repr::buffer_len`];
    /// [`Error::Unrepresentable`] for a message longer than 65535 bytes, an address longer
    /// than its length field allows, an [`ExtensionBody::Unknown`] with a known type, or a
    /// [`Message::Unknown`] with a known operation.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let len = self.buffer_len();
        u16::try_from(len).map_err(|_| Error::Unrepresentable)?;
        let buf = buf.get_mut(..len).ok_or(Error::BufferTooSmall)?;
        if let Some(Seq::Items(exts)) = self.extensions {
            exts.iter().try_for_each(Extension::check)?;
        }
        self.emit_into(buf, true)
    }

    /// Writes the message into `buf`, which its caller sized to [`Repr::buffer_len`] (so
    /// that the length is computed once), without [`Repr::emit`]'s checks that each
    /// extension and CIE fits its length fields: for a message built from parsed parts and
    /// IP addresses, which always fit. A part that does not fit is written truncated to its
    /// field, as [`Extension::check`] describes; the message length is still checked.
    ///
    /// # Errors
    /// [`Error::Unrepresentable`] for a message longer than 65535 bytes, a common-header
    /// address longer than its length field allows, or a [`Message::Unknown`] with a known
    /// operation.
    ///
    /// # Panics
    /// When `buf` is shorter than [`Repr::buffer_len`].
    pub fn emit_trusted(&self, buf: &mut [u8]) -> Result<usize> {
        self.emit_into(buf, false)
    }

    /// Writes the message into `buf`, exactly [`Repr::buffer_len`] long; `check` checks the
    /// CIEs of the mandatory part.
    fn emit_into(&self, buf: &mut [u8], check: bool) -> Result<usize> {
        let len = buf.len();
        let size = u16::try_from(len).map_err(|_| Error::Unrepresentable)?;
        buf[field::AFN].copy_from_slice(&u16::from(self.afn).to_be_bytes());
        buf[field::PROTOCOL_TYPE].copy_from_slice(&self.protocol_type.to_be_bytes());
        buf[field::PROTOCOL_SNAP].copy_from_slice(&self.protocol_snap);
        buf[field::HOP_COUNT] = self.hop_count;
        buf[field::PACKET_SIZE].copy_from_slice(&size.to_be_bytes());
        buf[field::CHECKSUM].fill(0);
        buf[field::VERSION] = header::VERSION;
        let at = self.message.emit(buf, check)?;
        let extoff = match self.extensions {
            None => 0,
            Some(exts) => {
                let end = at + exts.emit(&mut buf[at..]);
                extension::emit_end(&mut buf[end..]);
                at as u16
            }
        };
        buf[field::EXTENSION_OFFSET].copy_from_slice(&extoff.to_be_bytes());
        let sum = checksum::checksum(buf);
        buf[field::CHECKSUM].copy_from_slice(&sum.to_be_bytes());
        Ok(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::{Ipv4Addr, Ipv6Addr};
    use proptest::prelude::*;
    use std::vec::Vec;

    /// A registration request shaped like ../shared/vectors/nhrp/01-registration-request: one
    /// request CIE, then responder, auth and NAT extensions.
    fn registration() -> (Vec<u8>, Repr<'static>) {
        static CIES: [Cie<'static>; 1] = [Cie::request(32, 1400, 7200)];
        let nat = [Cie::host(
            Ipv4Addr::new(198, 19, 1, 2).into(),
            Ipv4Addr::new(10, 251, 0, 2).into(),
            1400,
            7200,
        )];
        let nat: &'static [Cie<'static>] = Vec::leak(nat.to_vec());
        let exts = std::vec![
            Extension::new(ExtensionBody::ResponderAddress(Seq::empty())),
            Extension::cleartext_password(b"@lpha"),
            Extension::new(ExtensionBody::NatAddress(Seq::Items(nat))),
        ];
        let repr = Repr {
            afn: AddressFamily::Ipv4,
            protocol_type: PROTOCOL_IPV4,
            protocol_snap: [0; 5],
            hop_count: 255,
            message: Message::RegistrationRequest(Registration {
                flags: RegistrationFlags::UNIQUE | RegistrationFlags::NAT,
                request_id: 0x101,
                src_nbma: Ipv4Addr::new(198, 19, 1, 2).into(),
                src_nbma_sub: NbmaAddress::NONE,
                src_proto: Ipv4Addr::new(10, 251, 0, 2).into(),
                dst_proto: Ipv4Addr::new(10, 251, 0, 1).into(),
                cies: Seq::Items(&CIES),
            }),
            extensions: Some(Seq::Items(Vec::leak(exts))),
        };
        let mut buf = std::vec![0u8; repr.buffer_len()];
        assert_eq!(repr.emit(&mut buf).unwrap(), buf.len());
        (buf, repr)
    }

    fn parse(bytes: &[u8]) -> Result<Repr<'_>> {
        Repr::parse(&Packet::new_checked(bytes)?)
    }

    /// Sets a big-endian u16 and recomputes the checksum over the (possibly new) pktsz.
    fn patch_u16(bytes: &mut [u8], at: usize, value: u16) {
        bytes[at..at + 2].copy_from_slice(&value.to_be_bytes());
        Packet::new_unchecked(bytes).fill_checksum();
    }

    #[test]
    fn emitted_registration_parses_back() {
        let (bytes, repr) = registration();
        assert_eq!(parse(&bytes).unwrap(), repr);
        // Layout of vector 01: CIEs from 40, extensions at 52.
        let p = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(p.extension_offset(), 52);
        assert_eq!(usize::from(p.packet_size()), bytes.len());
        let auth = repr.find_extension(ExtensionType::Authentication).unwrap();
        assert_eq!(
            auth.body,
            ExtensionBody::Authentication {
                auth_type: 1,
                data: AuthData::new(b"@lpha")
            }
        );
        assert!(repr.find_extension(ExtensionType::VendorPrivate).is_none());
    }

    #[test]
    fn trailing_bytes_after_pktsz_are_ignored() {
        let (mut bytes, repr) = registration();
        bytes.extend_from_slice(&[0xde, 0xad]);
        assert_eq!(parse(&bytes).unwrap(), repr);
    }

    #[test]
    fn forwarding_rewrites_hop_count_and_checksum() {
        let (mut bytes, repr) = registration();
        let mut p = Packet::new_checked(&mut bytes[..]).unwrap();
        p.set_hop_count(254);
        assert!(!p.verify_checksum());
        p.fill_checksum();
        assert!(p.verify_checksum());
        assert_eq!(
            parse(&bytes).unwrap(),
            Repr {
                hop_count: 254,
                ..repr
            }
        );
    }

    #[test]
    fn rejects_bad_fixed_header() {
        let (bytes, _) = registration();
        let len = bytes.len() as u16;
        let err = |at: usize, value: u16| {
            let mut b = bytes.clone();
            b[at..at + 2].copy_from_slice(&value.to_be_bytes());
            Packet::new_checked(&b[..]).unwrap_err()
        };
        assert_eq!(err(10, len + 1), Error::Truncated);
        assert_eq!(err(10, 19), Error::BadLength);
        assert_eq!(err(10, 0), Error::BadLength);
        assert_eq!(err(14, 19), Error::BadOffset);
        assert_eq!(err(14, 1), Error::BadOffset);
        assert_eq!(err(14, len + 1), Error::BadOffset);
        assert_eq!(err(16, 0x0203), Error::BadVersion);
        assert_eq!(
            Packet::new_checked(&bytes[..19]).unwrap_err(),
            Error::Truncated
        );
    }

    #[test]
    fn rejects_bad_checksum() {
        let (mut bytes, _) = registration();
        bytes[30] ^= 0x01;
        assert_eq!(parse(&bytes).unwrap_err(), Error::BadChecksum);
        bytes[30] ^= 0x01;
        bytes[12] ^= 0x80;
        assert_eq!(parse(&bytes).unwrap_err(), Error::BadChecksum);
    }

    #[test]
    fn rejects_extoff_inside_the_mandatory_part() {
        let (mut bytes, _) = registration();
        // The addresses end at 40; an extoff of 30 cuts them, one of 44 cuts the CIE.
        patch_u16(&mut bytes, 14, 30);
        assert_eq!(parse(&bytes).unwrap_err(), Error::BadOffset);
        patch_u16(&mut bytes, 14, 44);
        assert_eq!(parse(&bytes).unwrap_err(), Error::Truncated);
    }

    #[test]
    fn rejects_cie_address_past_the_end() {
        let (mut bytes, _) = registration();
        // CIE at 40: client protocol address length (offset 50) 4, but extoff is 52.
        bytes[50] = 4;
        Packet::new_unchecked(&mut bytes[..]).fill_checksum();
        assert_eq!(parse(&bytes).unwrap_err(), Error::Truncated);
        // NAT extension at 69, its CIE at 73 (protocol address length at 83): 0x50 runs past
        // the extension.
        let (mut bytes, _) = registration();
        assert_eq!(bytes[83], 4);
        bytes[83] = 0x50;
        Packet::new_unchecked(&mut bytes[..]).fill_checksum();
        assert_eq!(parse(&bytes).unwrap_err(), Error::Truncated);
    }

    #[test]
    fn rejects_extension_past_pktsz() {
        let (mut bytes, _) = registration();
        // Responder Address at 52, length at 54.
        patch_u16(&mut bytes, 54, 200);
        assert_eq!(parse(&bytes).unwrap_err(), Error::Truncated);
    }

    #[test]
    fn rejects_missing_end_and_bytes_after_end() {
        let (bytes, _) = registration();
        let len = bytes.len();
        let mut cut = bytes.clone();
        patch_u16(&mut cut, 10, (len - 4) as u16);
        assert_eq!(parse(&cut).unwrap_err(), Error::Truncated);
        let mut longer = bytes.clone();
        longer.extend_from_slice(&[0, 0]);
        patch_u16(&mut longer, 10, (len + 2) as u16);
        assert_eq!(parse(&longer).unwrap_err(), Error::Malformed);
    }

    #[test]
    fn rejects_unknown_compulsory_extension() {
        let (_, repr) = registration();
        let exts = [Extension {
            compulsory: true,
            body: ExtensionBody::Unknown {
                ty: 0x42,
                data: &[1],
            },
        }];
        let repr = Repr {
            extensions: Some(Seq::Items(&exts)),
            ..repr
        };
        let mut buf = std::vec![0u8; repr.buffer_len()];
        repr.emit(&mut buf).unwrap();
        assert_eq!(parse(&buf).unwrap_err(), Error::UnknownCritical(0x42));
    }

    #[test]
    fn rejects_reserved_nbma_bit() {
        let (mut bytes, _) = registration();
        bytes[18] |= 0x80;
        Packet::new_unchecked(&mut bytes[..]).fill_checksum();
        assert_eq!(parse(&bytes).unwrap_err(), Error::Malformed);
    }

    #[test]
    fn emit_refuses_what_it_cannot_write() {
        let (bytes, repr) = registration();
        let mut short = std::vec![0u8; bytes.len() - 1];
        assert_eq!(repr.emit(&mut short).unwrap_err(), Error::BufferTooSmall);
        let long_nbma = [0u8; 64];
        let Message::RegistrationRequest(hdr) = repr.message else {
            unreachable!()
        };
        let bad = Repr {
            message: Message::RegistrationRequest(Registration {
                src_nbma: Address::Other(&long_nbma).into(),
                ..hdr
            }),
            ..repr
        };
        let mut buf = std::vec![0u8; bad.buffer_len()];
        assert_eq!(bad.emit(&mut buf).unwrap_err(), Error::Unrepresentable);
        let known = Repr {
            message: Message::Unknown {
                operation: 3,
                shtl: 0,
                sstl: 0,
                mandatory: &[],
            },
            ..repr
        };
        let mut buf = std::vec![0u8; known.buffer_len()];
        assert_eq!(known.emit(&mut buf).unwrap_err(), Error::Unrepresentable);
        let huge = [0u8; 65536];
        let too_long = Repr {
            message: Message::Unknown {
                operation: 9,
                shtl: 0,
                sstl: 0,
                mandatory: &huge,
            },
            ..repr
        };
        let mut buf = std::vec![0u8; too_long.buffer_len()];
        assert_eq!(too_long.emit(&mut buf).unwrap_err(), Error::Unrepresentable);
    }

    fn leak<T>(v: Vec<T>) -> &'static [T] {
        Vec::leak(v)
    }

    /// An address of one of the canonical forms, of at most `max` bytes for `Other`.
    fn arb_address(max: usize) -> impl Strategy<Value = Address<'static>> {
        prop_oneof![
            Just(Address::Empty),
            any::<[u8; 4]>().prop_map(|a| Address::Ipv4(Ipv4Addr::from(a))),
            any::<[u8; 16]>().prop_map(|a| Address::Ipv6(Ipv6Addr::from(a))),
            proptest::collection::vec(any::<u8>(), 1..=max)
                .prop_filter("canonical lengths parse as Ipv4/Ipv6", |v| v.len() != 4
                    && v.len() != 16)
                .prop_map(|v| Address::Other(leak(v))),
        ]
    }

    fn arb_nbma() -> impl Strategy<Value = NbmaAddress<'static>> {
        (any::<bool>(), arb_address(63)).prop_map(|(e164, address)| NbmaAddress { e164, address })
    }

    fn arb_cie() -> impl Strategy<Value = Cie<'static>> {
        (
            any::<u8>(),
            any::<u8>(),
            any::<u16>(),
            any::<u16>(),
            arb_nbma(),
            arb_nbma(),
            arb_address(40),
            any::<u8>(),
        )
            .prop_map(
                |(code, prefix_len, mtu, holding_time, nbma, nbma_sub, proto, preference)| Cie {
                    code: CieCode::from(code),
                    prefix_len,
                    mtu,
                    holding_time,
                    nbma,
                    nbma_sub,
                    proto,
                    preference,
                },
            )
    }

    fn arb_cies() -> impl Strategy<Value = Seq<'static, Cie<'static>>> {
        proptest::collection::vec(arb_cie(), 0..4).prop_map(|v| Seq::Items(leak(v)))
    }

    fn arb_bytes(max: usize) -> impl Strategy<Value = &'static [u8]> {
        proptest::collection::vec(any::<u8>(), 0..max).prop_map(leak)
    }

    fn arb_extension() -> impl Strategy<Value = Extension<'static>> {
        let known = prop_oneof![
            arb_cies().prop_map(ExtensionBody::ResponderAddress),
            arb_cies().prop_map(ExtensionBody::ForwardTransit),
            arb_cies().prop_map(ExtensionBody::ReverseTransit),
            arb_cies().prop_map(ExtensionBody::NatAddress),
            (any::<u32>(), arb_bytes(16)).prop_map(|(auth_type, data)| {
                ExtensionBody::Authentication {
                    auth_type,
                    data: AuthData::new(data),
                }
            }),
            arb_bytes(16).prop_map(|data| ExtensionBody::VendorPrivate { data }),
        ];
        prop_oneof![
            (any::<bool>(), known).prop_map(|(compulsory, body)| Extension { compulsory, body }),
            (10u16..0x8000, arb_bytes(16)).prop_map(|(ty, data)| Extension {
                compulsory: false,
                body: ExtensionBody::Unknown { ty, data }
            }),
        ]
    }

    #[allow(clippy::type_complexity)]
    fn arb_common() -> impl Strategy<
        Value = (
            u16,
            u32,
            NbmaAddress<'static>,
            NbmaAddress<'static>,
            Address<'static>,
            Address<'static>,
            Seq<'static, Cie<'static>>,
        ),
    > {
        (
            any::<u16>(),
            any::<u32>(),
            arb_nbma(),
            arb_nbma(),
            arb_address(40),
            arb_address(40),
            arb_cies(),
        )
    }

    fn arb_message() -> impl Strategy<Value = Message<'static>> {
        let common = (1u8..=6, arb_common()).prop_map(
            |(op, (flags, request_id, src_nbma, src_nbma_sub, src_proto, dst_proto, cies))| {
                macro_rules! hdr {
                    ($flags:expr) => {
                        CommonHeader {
                            flags: $flags,
                            request_id,
                            src_nbma,
                            src_nbma_sub,
                            src_proto,
                            dst_proto,
                            cies,
                        }
                    };
                }
                match op {
                    1 => Message::ResolutionRequest(hdr!(ResolutionFlags(flags))),
                    2 => Message::ResolutionReply(hdr!(ResolutionFlags(flags))),
                    3 => Message::RegistrationRequest(hdr!(RegistrationFlags(flags))),
                    4 => Message::RegistrationReply(hdr!(RegistrationFlags(flags))),
                    5 => Message::PurgeRequest(hdr!(PurgeFlags(flags))),
                    _ => Message::PurgeReply(hdr!(PurgeFlags(flags))),
                }
            },
        );
        let error = (arb_common(), any::<u16>(), arb_bytes(80)).prop_map(
            |((code, offset, src_nbma, src_nbma_sub, src_proto, dst_proto, _), unused, packet)| {
                Message::ErrorIndication(ErrorIndication {
                    unused,
                    code: ErrorCode::from(code),
                    offset: offset as u16,
                    src_nbma,
                    src_nbma_sub,
                    src_proto,
                    dst_proto,
                    packet,
                })
            },
        );
        let traffic = (arb_common(), arb_bytes(80)).prop_map(
            |((code, _, src_nbma, src_nbma_sub, src_proto, dst_proto, _), packet)| {
                Message::TrafficIndication(TrafficIndication {
                    code: TrafficCode::from(code),
                    src_nbma,
                    src_nbma_sub,
                    src_proto,
                    dst_proto,
                    packet,
                })
            },
        );
        let unknown = (
            prop_oneof![Just(0u8), 9u8..],
            any::<u8>(),
            any::<u8>(),
            arb_bytes(40),
        )
            .prop_map(|(operation, shtl, sstl, mandatory)| Message::Unknown {
                operation,
                shtl,
                sstl,
                mandatory,
            });
        prop_oneof![4 => common, 1 => error, 1 => traffic, 1 => unknown]
    }

    fn arb_repr() -> impl Strategy<Value = Repr<'static>> {
        (
            any::<u16>(),
            prop_oneof![Just(PROTOCOL_IPV4), Just(PROTOCOL_IPV6), any::<u16>()],
            any::<[u8; 5]>(),
            any::<u8>(),
            arb_message(),
            proptest::option::of(
                proptest::collection::vec(arb_extension(), 0..6).prop_map(|v| Seq::Items(leak(v))),
            ),
        )
            .prop_map(
                |(afn, protocol_type, protocol_snap, hop_count, message, extensions)| Repr {
                    afn: AddressFamily::from(afn),
                    protocol_type,
                    protocol_snap,
                    hop_count,
                    message,
                    extensions,
                },
            )
    }

    proptest! {
        #[test]
        fn repr_round_trip(repr in arb_repr()) {
            let mut buf = std::vec![0xa5u8; repr.buffer_len() + 3];
            let len = repr.emit(&mut buf).unwrap();
            prop_assert_eq!(len, repr.buffer_len());
            let p = Packet::new_checked(&buf[..]).unwrap();
            prop_assert_eq!(Repr::parse(&p).unwrap(), repr);
            prop_assert_eq!(usize::from(p.packet_size()), repr.buffer_len());
            prop_assert_eq!(p.hop_count(), repr.hop_count);
            prop_assert_eq!(p.operation(), repr.operation());
            prop_assert_eq!(p.protocol_type(), repr.protocol_type);
            prop_assert!(p.verify_checksum());
            let extoff = usize::from(p.extension_offset());
            match repr.extensions {
                None => prop_assert_eq!(extoff, 0),
                Some(exts) => {
                    prop_assert_eq!(extoff, HEADER_LEN + repr.message.wire_len());
                    prop_assert_eq!(&buf[len - 4..len], &[0x80, 0, 0, 0]);
                    prop_assert_eq!(exts.len(), Repr::parse(&p).unwrap().extensions.unwrap().len());
                }
            }
            // The index names the first extension of each known type, as a search does.
            let (parsed, index) = Repr::parse_indexed(&p).unwrap();
            for ty in [3u16, 4, 5, 7, 8, 9].map(ExtensionType::from) {
                prop_assert_eq!(index.get(ty), parsed.find_extension(ty));
                prop_assert_eq!(index.get(ty), repr.find_extension(ty));
            }
            // The index gives the list in order exactly when it holds only first extensions
            // of known types.
            let all: Vec<_> = parsed.extensions.iter().flat_map(|l| l.iter()).collect();
            let noted = all.iter().enumerate().all(|(k, e)| {
                !matches!(e.ty(), ExtensionType::End | ExtensionType::Unknown(_))
                    && all[..k].iter().all(|f| f.ty() != e.ty())
            });
            match index.in_order() {
                Some(ordered) => {
                    prop_assert!(noted);
                    prop_assert_eq!(ordered.collect::<Vec<_>>(), all);
                }
                None => prop_assert!(!noted),
            }
            // The trusted emit writes the same bytes.
            let mut trusted = std::vec![0u8; repr.buffer_len()];
            prop_assert_eq!(repr.emit_trusted(&mut trusted), Ok(len));
            prop_assert_eq!(&trusted[..], &buf[..len]);
            // A second emit of the parsed (wire-form) representation gives the same bytes.
            let parsed = Repr::parse(&p).unwrap();
            let mut again = std::vec![0u8; parsed.buffer_len()];
            parsed.emit(&mut again).unwrap();
            prop_assert_eq!(&again[..], &buf[..len]);
        }

        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
            if let Ok(p) = Packet::new_checked(&bytes[..]) {
                let _ = Repr::parse(&p);
            }
        }

        #[test]
        fn never_panics_with_a_valid_header(
            op in any::<u8>(),
            extoff in any::<u16>(),
            mut body in proptest::collection::vec(any::<u8>(), 0..128),
        ) {
            // Random bytes rarely pass the version and checksum checks: fix those up.
            let mut bytes = std::vec![0, 1, 8, 0, 0, 0, 0, 0, 0, 255];
            let size = (20 + body.len()) as u16;
            bytes.extend_from_slice(&size.to_be_bytes());
            bytes.extend_from_slice(&[0, 0]);
            bytes.extend_from_slice(&(extoff % (size + 1)).to_be_bytes());
            bytes.extend_from_slice(&[1, op]);
            bytes.append(&mut body);
            bytes.resize(usize::from(size).max(20), 0);
            Packet::new_unchecked(&mut bytes[..]).fill_checksum();
            if let Ok(p) = Packet::new_checked(&bytes[..])
                && let Ok(repr) = Repr::parse(&p)
            {
                let mut buf = std::vec![0u8; repr.buffer_len()];
                repr.emit(&mut buf).unwrap();
                prop_assert_eq!(Repr::parse(&Packet::new_checked(&buf[..]).unwrap()).unwrap(), repr);
            }
        }
    }
}
