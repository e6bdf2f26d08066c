//! Bad-input tests and property tests of the IKEv2 codec.

use core::net::{Ipv4Addr, Ipv6Addr};
use std::vec;
use std::vec::Vec;

use proptest::prelude::*;

use super::*;
use crate::Seq;

/// The IKE_SA_INIT response of frame 2 of ../shared/vectors/ike-scapy/ikev2_nat_t.pcapng
/// (after the 4-byte non-ESP marker): SA, KE, Nonce, CERTREQ, 4 Vendor IDs, 3 Notifies.
const REAL: &str = "89922c915f35570e98d56d32e2a0474221202220000000000000013122000028\
    00000024010100030300000c01000014800e0100030000080200000500000008\
    0400001328000048001300001d9cd5974c950c95e0544483fb1f7a9132f5fe89\
    59c09ab3a54c779ff2bcf4522a030dc33b9d5ddfeb99e028c0e8ba7d80dfdcf1\
    2b1516dbe180e6aec664428b2600002c1d107dc5a7463da7d761014139fb381a\
    f9cd3b8c0181e6cd36a8ae105e55aa7fe71f5db1d36c29152b000005042b0000\
    184048b7d56ebce88525e7de7f00d6c2d3c00000002b0000144048b7d56ebce8\
    8525e7de7f00d6c2d32b000014c6f57ac398f493208145b7581e878983290000\
    1485817703c6e320d2ae5a4dd02056c6d7290000080000402e29000010000040\
    2f00010002000300040000000800004014";

fn real() -> Vec<u8> {
    let digits: Vec<u8> = REAL.bytes().filter(u8::is_ascii_hexdigit).collect();
    digits
        .chunks(2)
        .map(|c| u8::from_str_radix(core::str::from_utf8(c).unwrap(), 16).unwrap())
        .collect()
}

fn parse(bytes: &[u8]) -> Result<Repr<'_>> {
    Repr::parse(&Packet::new_checked(bytes)?)
}

fn header(payloads: Payloads<'_>) -> Repr<'_> {
    Repr {
        initiator_spi: 0x0102_0304_0506_0708,
        responder_spi: 0,
        minor_version: 0,
        exchange_type: ExchangeType::IkeSaInit,
        flags: Flags::INITIATOR,
        message_id: 0,
        payloads,
    }
}

fn emit(repr: &Repr<'_>) -> Vec<u8> {
    let mut buf = vec![0u8; repr.buffer_len()];
    assert_eq!(repr.emit(&mut buf), Ok(buf.len()));
    buf
}

/// A message with one payload of type `ty` (as the IKE header's Next Payload) whose
/// generic header and body are `payload`.
fn raw_message(ty: u8, payload: &[u8]) -> Vec<u8> {
    let mut m = emit(&header(Payloads::empty()));
    m[16] = ty;
    m.extend_from_slice(payload);
    let len = (m.len() as u32).to_be_bytes();
    m[24..28].copy_from_slice(&len);
    m
}

/// A generic payload header (Next Payload 0) around `body`.
fn payload(critical: bool, body: &[u8]) -> Vec<u8> {
    let len = (4 + body.len()) as u16;
    let mut p = vec![0, if critical { 0x80 } else { 0 }];
    p.extend_from_slice(&len.to_be_bytes());
    p.extend_from_slice(body);
    p
}

#[test]
fn real_message_round_trips() {
    let bytes = real();
    let repr = parse(&bytes).unwrap();
    assert_eq!(repr.payloads.types().count(), 11);
    assert_eq!(emit(&repr), bytes);
}

#[test]
fn every_truncation_is_an_error() {
    let bytes = real();
    for n in 0..bytes.len() {
        // As received: the Length field announces more than the buffer holds.
        assert_eq!(
            Packet::new_checked(&bytes[..n]).unwrap_err(),
            Error::Truncated
        );
        // With a Length field that agrees, the payload chain itself is cut.
        if n >= HEADER_LEN {
            let mut cut = bytes[..n].to_vec();
            cut[24..28].copy_from_slice(&(n as u32).to_be_bytes());
            assert!(parse(&cut).is_err(), "cut at {n} parsed");
        }
    }
}

#[test]
fn length_field_checks() {
    let mut bytes = real();
    let len = bytes.len() as u32;
    bytes[24..28].copy_from_slice(&(len + 1).to_be_bytes());
    assert_eq!(parse(&bytes).unwrap_err(), Error::Truncated);
    bytes[24..28].copy_from_slice(&27u32.to_be_bytes());
    assert_eq!(parse(&bytes).unwrap_err(), Error::BadLength);
    // Bytes after Length are not part of the message.
    let mut longer = real();
    longer.extend_from_slice(&[0xde, 0xad]);
    let packet = Packet::new_checked(&longer[..]).unwrap();
    assert_eq!(packet.payload().len(), real().len() - HEADER_LEN);
    assert_eq!(emit(&Repr::parse(&packet).unwrap()), real());
    // Bytes after the last payload (Next Payload 0) but within Length are refused.
    let mut trailing = raw_message(41, &payload(false, &[0, 0, 0x40, 0x2e]));
    trailing.push(0);
    let len = trailing.len() as u32;
    trailing[24..28].copy_from_slice(&len.to_be_bytes());
    assert_eq!(parse(&trailing).unwrap_err(), Error::BadLength);
}

#[test]
fn version_must_be_2() {
    let mut bytes = real();
    bytes[17] = 0x10;
    assert_eq!(parse(&bytes).unwrap_err(), Error::BadVersion);
    bytes[17] = 0x21;
    assert_eq!(parse(&bytes).unwrap().minor_version, 1);
}

#[test]
fn payload_length_checks() {
    let mut short = raw_message(41, &payload(false, &[0, 0, 0x40, 0x2e]));
    short[30..32].copy_from_slice(&3u16.to_be_bytes());
    assert_eq!(parse(&short).unwrap_err(), Error::BadLength);
    let mut long = raw_message(41, &payload(false, &[0, 0, 0x40, 0x2e]));
    long[30..32].copy_from_slice(&9u16.to_be_bytes());
    assert_eq!(parse(&long).unwrap_err(), Error::Truncated);
}

#[test]
fn sa_structure_checks() {
    // Proposal 1, IKE, no SPI, one transform ENCR 20 with key length 256.
    let good = [
        0, 0, 0, 20, 1, 1, 0, 1, 0, 0, 0, 12, 1, 0, 0, 20, 0x80, 14, 1, 0,
    ];
    assert!(parse(&raw_message(33, &payload(false, &good))).is_ok());
    let mut count = good;
    count[7] = 2;
    assert_eq!(
        parse(&raw_message(33, &payload(false, &count))).unwrap_err(),
        Error::BadLength
    );
    let mut last = good;
    last[0] = 2;
    assert_eq!(
        parse(&raw_message(33, &payload(false, &last))).unwrap_err(),
        Error::Malformed
    );
    let mut transform_last = good;
    transform_last[8] = 3;
    assert_eq!(
        parse(&raw_message(33, &payload(false, &transform_last))).unwrap_err(),
        Error::Malformed
    );
    let mut spi = good;
    spi[6] = 3;
    assert_eq!(
        parse(&raw_message(33, &payload(false, &spi))).unwrap_err(),
        Error::Malformed
    );
    let mut proposal_len = good;
    proposal_len[3] = 21;
    assert_eq!(
        parse(&raw_message(33, &payload(false, &proposal_len))).unwrap_err(),
        Error::Truncated
    );
    let mut transform_len = good;
    transform_len[11] = 7;
    assert_eq!(
        parse(&raw_message(33, &payload(false, &transform_len))).unwrap_err(),
        Error::BadLength
    );
    // A TLV attribute announcing more than the transform holds.
    let mut attribute = good;
    attribute[16] = 0;
    assert_eq!(
        parse(&raw_message(33, &payload(false, &attribute))).unwrap_err(),
        Error::Truncated
    );
}

#[test]
fn ts_structure_checks() {
    let v4 = [7, 47, 0, 16, 0, 0, 0xff, 0xff, 10, 0, 0, 1, 10, 0, 0, 1];
    let mut body = vec![1, 0, 0, 0];
    body.extend_from_slice(&v4);
    assert!(parse(&raw_message(44, &payload(false, &body))).is_ok());
    let mut count = body.clone();
    count[0] = 2;
    assert_eq!(
        parse(&raw_message(44, &payload(false, &count))).unwrap_err(),
        Error::BadLength
    );
    // An IPv6 range announced with IPv4-sized addresses.
    let mut v6 = body.clone();
    v6[4] = 8;
    assert_eq!(
        parse(&raw_message(44, &payload(false, &v6))).unwrap_err(),
        Error::BadLength
    );
    let mut selector_len = body;
    selector_len[7] = 7;
    assert_eq!(
        parse(&raw_message(44, &payload(false, &selector_len))).unwrap_err(),
        Error::BadLength
    );
}

#[test]
fn other_body_checks() {
    // Delete: 2 ESP SPIs announced, one present.
    let delete = [3, 4, 0, 2, 1, 2, 3, 4];
    assert_eq!(
        parse(&raw_message(42, &payload(false, &delete))).unwrap_err(),
        Error::BadLength
    );
    // Delete of the IKE SA with a non-zero count.
    let delete_ike = [1, 0, 0, 1];
    assert_eq!(
        parse(&raw_message(42, &payload(false, &delete_ike))).unwrap_err(),
        Error::BadLength
    );
    // Notify whose SPI size runs past the payload.
    let notify = [3, 4, 0x40, 0x01, 1, 2];
    assert_eq!(
        parse(&raw_message(41, &payload(false, &notify))).unwrap_err(),
        Error::BadLength
    );
    // SKF with fragment number 0, and above the total.
    let skf0 = [0, 0, 0, 1];
    assert_eq!(
        parse(&raw_message(53, &payload(false, &skf0))).unwrap_err(),
        Error::Malformed
    );
    let skf3 = [0, 3, 0, 2];
    assert_eq!(
        parse(&raw_message(53, &payload(false, &skf3))).unwrap_err(),
        Error::Malformed
    );
    // Bodies shorter than their fixed fields.
    for ty in [34, 35, 36, 37, 39, 41, 42, 44, 53] {
        assert_eq!(
            parse(&raw_message(ty, &payload(false, &[]))).unwrap_err(),
            Error::Truncated
        );
    }
}

#[test]
fn unknown_payloads() {
    // Type 200, non-critical: kept as bytes and emitted back.
    let m = raw_message(200, &payload(false, &[1, 2, 3]));
    let repr = parse(&m).unwrap();
    let p = repr.payloads.iter().next().unwrap();
    assert_eq!(
        p.body,
        PayloadBody::Opaque {
            ty: PayloadType::Unknown(200),
            data: &[1, 2, 3]
        }
    );
    assert_eq!(emit(&repr), m);
    // Critical: the message is refused with the type (RFC 7296 section 2.5).
    let m = raw_message(200, &payload(true, &[1, 2, 3]));
    assert_eq!(parse(&m).unwrap_err(), Error::UnknownCritical(200));
    // A known payload with the critical bit is fine.
    let m = raw_message(43, &payload(true, &[1, 2, 3]));
    assert!(parse(&m).unwrap().payloads.iter().next().unwrap().critical);
}

#[test]
fn sk_must_be_last() {
    // SK (first inner IDi) followed by a Vendor ID payload.
    let mut p = payload(false, &[9; 8]);
    p[0] = 35;
    p.extend_from_slice(&payload(false, &[1]));
    assert_eq!(parse(&raw_message(46, &p)).unwrap_err(), Error::Malformed);
    let sk = Payload::new(PayloadBody::Encrypted(Encrypted {
        first_inner: PayloadType::IdI,
        data: &[9; 8],
    }));
    let vid = Payload::new(PayloadBody::VendorId(VendorId(&[1])));
    let wrong = [sk, vid];
    let repr = header(Payloads::Items(&wrong));
    let mut buf = vec![0u8; repr.buffer_len()];
    assert_eq!(repr.emit(&mut buf), Err(Error::Malformed));
    // Last is fine, and its Next Payload is the first inner type.
    let right = [vid, sk];
    let repr = header(Payloads::Items(&right));
    let bytes = emit(&repr);
    // Vendor ID (5 bytes) says SK follows; SK's Next Payload is IDi.
    assert_eq!(bytes[HEADER_LEN], 46);
    assert_eq!(bytes[HEADER_LEN + 5], 35);
    assert_eq!(parse(&bytes).unwrap(), repr);
}

#[test]
fn emit_refuses_what_does_not_fit() {
    let repr = header(Payloads::empty());
    assert_eq!(repr.emit(&mut [0u8; 27]), Err(Error::BufferTooSmall));
    let bad = Repr {
        minor_version: 16,
        ..repr
    };
    assert_eq!(bad.emit(&mut [0u8; 28]), Err(Error::Unrepresentable));
    let cases = [
        PayloadBody::Opaque {
            ty: PayloadType::Sa,
            data: &[],
        },
        PayloadBody::Delete(Delete {
            protocol_id: ProtocolId::Esp,
            spi_size: 4,
            spis: &[1, 2],
        }),
        PayloadBody::Delete(Delete {
            protocol_id: ProtocolId::Ike,
            spi_size: 0,
            spis: &[1],
        }),
        PayloadBody::Sa(Seq::Items(&[Proposal {
            number: 1,
            protocol_id: ProtocolId::Esp,
            spi: &[1, 2, 3],
            transforms: Seq::Items(&[]),
        }])),
        PayloadBody::EncryptedFragment(EncryptedFragment {
            first_inner: PayloadType::None,
            fragment_number: 0,
            total_fragments: 1,
            data: &[],
        }),
        // RFC 7383 section 2.5: a fragment after the first must not name an inner payload.
        PayloadBody::EncryptedFragment(EncryptedFragment {
            first_inner: PayloadType::IdI,
            fragment_number: 2,
            total_fragments: 2,
            data: &[],
        }),
        PayloadBody::VendorId(VendorId(&[0; 65532])),
    ];
    for body in cases {
        let items = [Payload::new(body)];
        let repr = header(Payloads::Items(&items));
        let mut buf = vec![0u8; repr.buffer_len()];
        assert_eq!(repr.emit(&mut buf), Err(Error::Unrepresentable), "{body:?}");
    }
}

#[test]
fn digital_signature_split() {
    let data = [3, 0x30, 0x01, 0x00, 0xaa, 0xbb];
    let auth = Authentication {
        method: AuthMethod::DigitalSignature,
        data: &data,
    };
    let sig = auth.digital_signature().unwrap();
    assert_eq!((sig.algorithm, sig.signature), (&data[1..4], &data[4..]));
    let short = Authentication {
        method: AuthMethod::DigitalSignature,
        data: &data[..3],
    };
    assert_eq!(short.digital_signature(), Err(Error::Truncated));
    let psk = Authentication {
        method: AuthMethod::SharedKeyMic,
        data: &data,
    };
    assert_eq!(psk.digital_signature(), Err(Error::Malformed));
}

#[test]
fn notify_and_delete_accessors() {
    assert!(NotifyType::NoProposalChosen.is_error());
    assert!(NotifyType::Unknown(16383).is_error());
    assert!(!NotifyType::Cookie.is_error());
    let esp = Delete {
        protocol_id: ProtocolId::Esp,
        spi_size: 4,
        spis: &[1, 2, 3, 4, 5, 6, 7, 8],
    };
    assert_eq!(
        esp.spis().collect::<Vec<_>>(),
        [&[1, 2, 3, 4][..], &[5, 6, 7, 8][..]]
    );
    let ike = Delete {
        protocol_id: ProtocolId::Ike,
        spi_size: 0,
        spis: &[],
    };
    assert_eq!(ike.spis().count(), 0);
}

#[test]
fn identification_accessors() {
    let v4 = Identification {
        id_type: IdType::Ipv4Addr,
        data: &[192, 0, 2, 1],
    };
    assert_eq!(v4.ipv4(), Some(Ipv4Addr::new(192, 0, 2, 1)));
    assert_eq!(v4.ipv6(), None);
    let fqdn = Identification {
        id_type: IdType::Fqdn,
        data: b"hub.example",
    };
    assert_eq!(fqdn.text(), Some("hub.example"));
    assert_eq!(
        Identification {
            id_type: IdType::KeyId,
            ..fqdn
        }
        .text(),
        None
    );
}

// ---- property tests ----

fn leak<T>(v: Vec<T>) -> &'static [T] {
    v.leak()
}

fn bytes(max: usize) -> impl Strategy<Value = &'static [u8]> {
    proptest::collection::vec(any::<u8>(), 0..max).prop_map(leak)
}

fn attribute() -> impl Strategy<Value = Attribute<'static>> {
    prop_oneof![
        any::<u16>().prop_map(Attribute::KeyLength),
        (0..0x8000u16, any::<u16>())
            .prop_filter("14 is KeyLength", |(t, _)| *t != 14)
            .prop_map(|(attr_type, value)| Attribute::Tv { attr_type, value }),
        (0..0x8000u16, bytes(12))
            .prop_map(|(attr_type, value)| Attribute::Tlv { attr_type, value }),
    ]
}

fn transform() -> impl Strategy<Value = Transform<'static>> {
    (
        any::<u8>(),
        any::<u16>(),
        proptest::collection::vec(attribute(), 0..3),
    )
        .prop_map(|(ty, id, attrs)| Transform {
            id: TransformId::new(ty.into(), id),
            attributes: Seq::Items(leak(attrs)),
        })
}

fn proposal() -> impl Strategy<Value = Proposal<'static>> {
    let spi = prop_oneof![Just(0usize), Just(4), Just(8)]
        .prop_flat_map(|n| proptest::collection::vec(any::<u8>(), n).prop_map(leak));
    (
        any::<u8>(),
        any::<u8>(),
        spi,
        proptest::collection::vec(transform(), 0..5),
    )
        .prop_map(|(number, protocol, spi, transforms)| Proposal {
            number,
            protocol_id: protocol.into(),
            spi,
            transforms: Seq::Items(leak(transforms)),
        })
}

fn selector() -> impl Strategy<Value = TrafficSelector<'static>> {
    let addresses = prop_oneof![
        (any::<u32>(), any::<u32>()).prop_map(|(s, e)| TsAddresses::Ipv4 {
            start: Ipv4Addr::from(s),
            end: Ipv4Addr::from(e)
        }),
        (any::<u128>(), any::<u128>()).prop_map(|(s, e)| TsAddresses::Ipv6 {
            start: Ipv6Addr::from(s),
            end: Ipv6Addr::from(e)
        }),
        (
            any::<u8>().prop_filter("known", |t| !matches!(t, 7 | 8)),
            bytes(20)
        )
            .prop_map(|(t, data)| TsAddresses::Other {
                ts_type: t.into(),
                data
            }),
    ];
    (any::<u8>(), any::<u16>(), any::<u16>(), addresses).prop_map(
        |(ip_protocol, start_port, end_port, addresses)| TrafficSelector {
            ip_protocol,
            start_port,
            end_port,
            addresses,
        },
    )
}

fn body() -> impl Strategy<Value = PayloadBody<'static>> {
    let delete = (
        any::<u8>(),
        prop_oneof![Just(0u8), Just(4), Just(8)],
        0..4usize,
    )
        .prop_flat_map(|(proto, size, count)| {
            let n = if size == 0 {
                0
            } else {
                usize::from(size) * count
            };
            proptest::collection::vec(any::<u8>(), n).prop_map(move |spis| {
                PayloadBody::Delete(Delete {
                    protocol_id: proto.into(),
                    spi_size: size,
                    spis: leak(spis),
                })
            })
        });
    let opaque_type = prop_oneof![Just(47u8), Just(48), 1..=32u8, 49..=52u8, 54..=255u8];
    prop_oneof![
        proptest::collection::vec(proposal(), 0..3)
            .prop_map(|p| PayloadBody::Sa(Seq::Items(leak(p)))),
        (any::<u16>(), bytes(70)).prop_map(|(g, data)| PayloadBody::Ke(KeyExchange {
            group: g.into(),
            data
        })),
        (any::<u8>(), bytes(20)).prop_map(|(t, data)| PayloadBody::IdI(Identification {
            id_type: t.into(),
            data
        })),
        (any::<u8>(), bytes(20)).prop_map(|(t, data)| PayloadBody::IdR(Identification {
            id_type: t.into(),
            data
        })),
        (any::<u8>(), bytes(40)).prop_map(|(e, data)| PayloadBody::Cert(Certificate {
            encoding: e.into(),
            data
        })),
        (any::<u8>(), bytes(40)).prop_map(|(e, data)| PayloadBody::CertReq(Certificate {
            encoding: e.into(),
            data
        })),
        (any::<u8>(), bytes(40)).prop_map(|(m, data)| PayloadBody::Auth(Authentication {
            method: m.into(),
            data
        })),
        bytes(64).prop_map(|n| PayloadBody::Nonce(Nonce(n))),
        (any::<u8>(), bytes(9), any::<u16>(), bytes(24)).prop_map(|(p, spi, t, data)| {
            PayloadBody::Notify(Notification {
                protocol_id: p.into(),
                spi,
                notify_type: t.into(),
                data,
            })
        }),
        delete,
        bytes(24).prop_map(|v| PayloadBody::VendorId(VendorId(v))),
        proptest::collection::vec(selector(), 0..4)
            .prop_map(|s| PayloadBody::TsI(Seq::Items(leak(s)))),
        proptest::collection::vec(selector(), 0..4)
            .prop_map(|s| PayloadBody::TsR(Seq::Items(leak(s)))),
        (opaque_type, bytes(24)).prop_map(|(t, data)| PayloadBody::Opaque { ty: t.into(), data }),
    ]
}

fn plain_payload() -> impl Strategy<Value = Payload<'static>> {
    (any::<bool>(), body()).prop_map(|(critical, body)| {
        // An unknown type with the critical bit set is refused by design.
        let critical = critical && !matches!(body.ty(), PayloadType::Unknown(_));
        Payload { critical, body }
    })
}

fn encrypted_payload() -> impl Strategy<Value = Payload<'static>> {
    let sk = (any::<u8>(), bytes(48)).prop_map(|(t, data)| {
        PayloadBody::Encrypted(Encrypted {
            first_inner: t.into(),
            data,
        })
    });
    let skf = (any::<u8>(), 1..=u16::MAX, bytes(48)).prop_flat_map(|(t, total, data)| {
        (1..=total).prop_map(move |n| {
            PayloadBody::EncryptedFragment(EncryptedFragment {
                // RFC 7383 section 2.5: only the first fragment names the inner payload.
                first_inner: if n == 1 { t.into() } else { PayloadType::None },
                fragment_number: n,
                total_fragments: total,
                data,
            })
        })
    });
    (any::<bool>(), prop_oneof![sk, skf]).prop_map(|(critical, body)| Payload { critical, body })
}

fn repr() -> impl Strategy<Value = Repr<'static>> {
    (
        (
            any::<u64>(),
            any::<u64>(),
            0..16u8,
            any::<u8>(),
            any::<u8>(),
            any::<u32>(),
        ),
        proptest::collection::vec(plain_payload(), 0..6),
        proptest::option::of(encrypted_payload()),
    )
        .prop_map(
            |((ispi, rspi, minor, exchange, flags, mid), mut payloads, last)| {
                payloads.extend(last);
                Repr {
                    initiator_spi: ispi,
                    responder_spi: rspi,
                    minor_version: minor,
                    exchange_type: exchange.into(),
                    flags: Flags(flags),
                    message_id: mid,
                    payloads: Payloads::Items(leak(payloads)),
                }
            },
        )
}

/// What the fuzz target checks: whatever parses emits, parses to the same representation,
/// and emits the same bytes again; iteration reaches every element.
fn check_hostile(bytes: &[u8]) {
    let Ok(packet) = Packet::new_checked(bytes) else {
        return;
    };
    let Ok(repr) = Repr::parse(&packet) else {
        return;
    };
    for p in repr.payloads {
        if let PayloadBody::Sa(sa) = p.body {
            for proposal in sa {
                for t in proposal.transforms {
                    let _ = t.attributes.iter().count();
                }
            }
        }
    }
    let first = emit(&repr);
    let again = parse(&first).unwrap();
    assert_eq!(again, repr);
    assert_eq!(emit(&again), first);
}

proptest! {
    #[test]
    fn repr_round_trip(repr in repr()) {
        let bytes = emit(&repr);
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        prop_assert_eq!(packet.initiator_spi(), repr.initiator_spi);
        prop_assert_eq!(packet.responder_spi(), repr.responder_spi);
        prop_assert_eq!(packet.major_version(), MAJOR_VERSION);
        prop_assert_eq!(packet.minor_version(), repr.minor_version);
        prop_assert_eq!(packet.exchange_type(), repr.exchange_type);
        prop_assert_eq!(packet.flags(), repr.flags);
        prop_assert_eq!(packet.message_id(), repr.message_id);
        prop_assert_eq!(packet.length() as usize, bytes.len());
        prop_assert_eq!(packet.next_payload(), repr.payloads.first_type());
        let parsed = Repr::parse(&packet).unwrap();
        prop_assert_eq!(parsed, repr);
        prop_assert_eq!(parsed.payloads.types().collect::<Vec<_>>(), repr.payloads.types().collect::<Vec<_>>());
        prop_assert_eq!(emit(&parsed), bytes);
    }

    #[test]
    fn never_panics_on_random_bytes(mut bytes in proptest::collection::vec(any::<u8>(), 28..200), fix in any::<bool>()) {
        if fix {
            // Give the header a chance: version 2 and a Length that matches.
            bytes[17] = 0x20;
            let len = bytes.len() as u32;
            bytes[24..28].copy_from_slice(&len.to_be_bytes());
        }
        check_hostile(&bytes);
    }

    #[test]
    fn never_panics_on_mutations(edits in proptest::collection::vec((any::<proptest::sample::Index>(), any::<u8>()), 1..6)) {
        let mut bytes = real();
        for (at, value) in edits {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        check_hostile(&bytes);
    }
}
