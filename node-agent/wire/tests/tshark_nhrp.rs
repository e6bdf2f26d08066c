//! tshark (Wireshark's NHRP dissector) as an independent judge of the NHRP emitter: one
//! message of every type (1-8), every extension kind between them, IPv6 protocol addresses
//! over IPv4 NBMA and an IPv6 NBMA variant, framed in GRE (with and without key) over IPv4 or
//! IPv6. tshark must find no malformed packet or expert error, and the values it decodes
//! must be the ones we emitted.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use dmvpn_wire::Seq;
use dmvpn_wire::gre;
use dmvpn_wire::nhrp::{
    Address, AddressFamily, Cie, CieCode, ErrorCode, ErrorIndication, Extension, ExtensionBody,
    Message, NbmaAddress, PROTOCOL_IPV4, PROTOCOL_IPV6, Purge, PurgeFlags, Registration,
    RegistrationFlags, Repr, Resolution, ResolutionFlags, TrafficCode, TrafficIndication,
};

const HUB_NBMA: Ipv4Addr = Ipv4Addr::new(198, 19, 1, 1);
const A_NBMA: Ipv4Addr = Ipv4Addr::new(198, 19, 1, 2);
const B_NBMA: Ipv4Addr = Ipv4Addr::new(198, 19, 1, 3);
const A_NAT: Ipv4Addr = Ipv4Addr::new(198, 19, 100, 2);
const HUB: Ipv4Addr = Ipv4Addr::new(10, 251, 0, 1);
const A: Ipv4Addr = Ipv4Addr::new(10, 251, 0, 2);
const B: Ipv4Addr = Ipv4Addr::new(10, 251, 0, 3);
const HUB6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0xfb, 0, 0, 0, 0, 0, 1);
const A6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0xfb, 0, 0, 0, 0, 0, 2);
const B6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0xfb, 0, 0, 0, 0, 0, 3);
const HUB_NBMA6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
const A_NBMA6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);
const PASSWORD: &[u8] = b"@lpha";

fn leak<T>(v: Vec<T>) -> &'static [T] {
    Vec::leak(v)
}

fn host(nbma: impl Into<IpAddr>, proto: impl Into<IpAddr>) -> Cie<'static> {
    Cie::host(nbma.into(), proto.into(), 1400, 7200)
}

fn cies(v: Vec<Cie<'static>>) -> Seq<'static, Cie<'static>> {
    Seq::Items(leak(v))
}

fn ext(body: ExtensionBody<'static>) -> Extension<'static> {
    Extension::new(body)
}

fn repr(
    op_protocol: u16,
    hop_count: u8,
    message: Message<'static>,
    exts: Option<Vec<Extension<'static>>>,
) -> Repr<'static> {
    Repr {
        afn: AddressFamily::Ipv4,
        protocol_type: op_protocol,
        protocol_snap: [0; 5],
        hop_count,
        message,
        extensions: exts.map(|e| Seq::Items(leak(e))),
    }
}

fn emit(repr: &Repr<'_>) -> Vec<u8> {
    let mut buf = vec![0u8; repr.buffer_len()];
    repr.emit(&mut buf).unwrap();
    buf
}

fn resolution(
    flags: u16,
    request_id: u32,
    cies: Seq<'static, Cie<'static>>,
) -> Resolution<'static> {
    Resolution {
        flags: ResolutionFlags(flags),
        request_id,
        src_nbma: A_NBMA.into(),
        src_nbma_sub: NbmaAddress::NONE,
        src_proto: A.into(),
        dst_proto: B.into(),
        cies,
    }
}

fn registration(
    flags: RegistrationFlags,
    cies: Seq<'static, Cie<'static>>,
) -> Registration<'static> {
    Registration {
        flags,
        request_id: 0x101,
        src_nbma: A_NBMA.into(),
        src_nbma_sub: NbmaAddress::NONE,
        src_proto: A.into(),
        dst_proto: HUB.into(),
        cies,
    }
}

fn purge(flags: PurgeFlags) -> Purge<'static> {
    Purge {
        flags,
        request_id: 0x303,
        src_nbma: HUB_NBMA.into(),
        src_nbma_sub: NbmaAddress::NONE,
        src_proto: HUB.into(),
        dst_proto: A.into(),
        cies: cies(vec![Cie {
            proto: B.into(),
            ..Cie::request(32, 0, 0)
        }]),
    }
}

/// One test case: the NHRP message, its GRE key, its outer addresses.
struct Case {
    repr: Repr<'static>,
    key: Option<u32>,
    outer: (IpAddr, IpAddr),
}

/// The messages. No NAT address extension is exactly 8 bytes long: Wireshark 4.0 decodes a
/// type-9 extension of that length as RFC 2735 Device Capabilities (see the vectors README).
fn cases() -> Vec<Case> {
    let v4 = |src: Ipv4Addr, dst: Ipv4Addr| (IpAddr::V4(src), IpAddr::V4(dst));
    let request_exts = || {
        vec![
            ext(ExtensionBody::ResponderAddress(Seq::empty())),
            ext(ExtensionBody::ForwardTransit(Seq::empty())),
            ext(ExtensionBody::ReverseTransit(Seq::empty())),
            Extension::cleartext_password(PASSWORD),
            ext(ExtensionBody::NatAddress(cies(vec![host(A_NBMA, A)]))),
        ]
    };
    let registration_request = repr(
        PROTOCOL_IPV4,
        1,
        Message::RegistrationRequest(registration(
            RegistrationFlags::UNIQUE | RegistrationFlags::NAT,
            cies(vec![Cie::request(32, 1400, 7200)]),
        )),
        Some(vec![
            ext(ExtensionBody::ForwardTransit(Seq::empty())),
            ext(ExtensionBody::ReverseTransit(Seq::empty())),
            ext(ExtensionBody::ResponderAddress(Seq::empty())),
            ext(ExtensionBody::NatAddress(cies(vec![host(HUB_NBMA, HUB)]))),
            // RFC 2332 section 5.3.5: OUI 00000c (Cisco) then vendor data.
            ext(ExtensionBody::VendorPrivate {
                data: &[0x00, 0x00, 0x0c, 0xde, 0xad],
            }),
            ext(ExtensionBody::Unknown {
                ty: 0x1234,
                data: &[1, 2, 3],
            }),
            Extension::cleartext_password(PASSWORD),
        ]),
    );
    let errored = leak(emit(&registration_request));
    let icmp = {
        let mut echo = vec![8, 0, 0, 0, 0x12, 0x34, 0, 1];
        echo.extend_from_slice(b"dmvpn-phase3");
        leak(common::ipv4(
            Ipv4Addr::new(10, 251, 1, 10),
            Ipv4Addr::new(10, 251, 3, 10),
            1,
            &echo,
        ))
    };
    vec![
        Case {
            repr: repr(
                PROTOCOL_IPV4,
                64,
                Message::ResolutionRequest(resolution(
                    0xc802,
                    0x202,
                    cies(vec![Cie::request(32, 1400, 7200)]),
                )),
                Some(request_exts()),
            ),
            key: None,
            outer: v4(A_NBMA, HUB_NBMA),
        },
        Case {
            repr: repr(
                PROTOCOL_IPV4,
                64,
                Message::ResolutionReply(resolution(0xe802, 0x202, cies(vec![host(B_NBMA, B)]))),
                Some(vec![
                    ext(ExtensionBody::ResponderAddress(cies(vec![host(B_NBMA, B)]))),
                    ext(ExtensionBody::ForwardTransit(cies(vec![host(
                        HUB_NBMA, HUB,
                    )]))),
                    ext(ExtensionBody::ReverseTransit(cies(vec![
                        host(HUB_NBMA, HUB),
                        host(Ipv4Addr::new(198, 19, 1, 4), Ipv4Addr::new(10, 251, 0, 4)),
                    ]))),
                    Extension::cleartext_password(PASSWORD),
                    ext(ExtensionBody::NatAddress(Seq::empty())),
                ]),
            ),
            key: Some(100),
            outer: v4(B_NBMA, A_NBMA),
        },
        Case {
            repr: registration_request,
            key: Some(100),
            outer: v4(A_NBMA, HUB_NBMA),
        },
        Case {
            repr: repr(
                PROTOCOL_IPV4,
                255,
                Message::RegistrationReply(registration(
                    RegistrationFlags::UNIQUE | RegistrationFlags::NAT,
                    cies(vec![Cie {
                        code: CieCode::UniqueAddressAlreadyRegistered,
                        ..Cie::request(32, 1400, 7200)
                    }]),
                )),
                Some(vec![
                    ext(ExtensionBody::ResponderAddress(cies(vec![host(
                        HUB_NBMA, HUB,
                    )]))),
                    Extension::cleartext_password(PASSWORD),
                    ext(ExtensionBody::NatAddress(cies(vec![
                        host(HUB_NBMA, HUB),
                        Cie {
                            mtu: 0,
                            holding_time: 0,
                            ..host(A_NAT, A)
                        },
                    ]))),
                ]),
            ),
            key: None,
            outer: v4(HUB_NBMA, A_NAT),
        },
        Case {
            repr: repr(
                PROTOCOL_IPV4,
                255,
                Message::PurgeRequest(purge(PurgeFlags::NO_REPLY)),
                Some(vec![Extension::cleartext_password(PASSWORD)]),
            ),
            key: None,
            outer: v4(HUB_NBMA, A_NBMA),
        },
        Case {
            repr: repr(
                PROTOCOL_IPV4,
                255,
                Message::PurgeReply(purge(PurgeFlags(0))),
                None,
            ),
            key: Some(100),
            outer: v4(A_NBMA, HUB_NBMA),
        },
        Case {
            repr: repr(
                PROTOCOL_IPV4,
                0,
                Message::ErrorIndication(ErrorIndication {
                    unused: 0,
                    code: ErrorCode::AuthenticationFailure,
                    offset: 0,
                    src_nbma: HUB_NBMA.into(),
                    src_nbma_sub: NbmaAddress::NONE,
                    src_proto: HUB.into(),
                    dst_proto: A.into(),
                    packet: errored,
                }),
                None,
            ),
            key: None,
            outer: v4(HUB_NBMA, A_NBMA),
        },
        Case {
            repr: repr(
                PROTOCOL_IPV4,
                1,
                Message::TrafficIndication(TrafficIndication {
                    code: TrafficCode::Redirect,
                    src_nbma: HUB_NBMA.into(),
                    src_nbma_sub: NbmaAddress::NONE,
                    src_proto: HUB.into(),
                    dst_proto: Ipv4Addr::new(10, 251, 1, 10).into(),
                    packet: icmp,
                }),
                Some(vec![Extension::cleartext_password(PASSWORD)]),
            ),
            key: Some(100),
            outer: v4(HUB_NBMA, A_NBMA),
        },
        // IPv6 over IPv4 DMVPN: ar$pro.type 0x86dd, 16-byte protocol addresses, IPv4 NBMA.
        Case {
            repr: repr(
                PROTOCOL_IPV6,
                64,
                Message::ResolutionReply(Resolution {
                    src_proto: A6.into(),
                    dst_proto: B6.into(),
                    ..resolution(0xe802, 0x606, cies(vec![host(B_NBMA, B6)]))
                }),
                Some(vec![
                    ext(ExtensionBody::ResponderAddress(cies(vec![host(
                        B_NBMA, B6,
                    )]))),
                    ext(ExtensionBody::ForwardTransit(cies(vec![host(
                        HUB_NBMA, HUB6,
                    )]))),
                    Extension::cleartext_password(PASSWORD),
                    ext(ExtensionBody::NatAddress(cies(vec![host(B_NBMA, B6)]))),
                ]),
            ),
            key: None,
            outer: v4(B_NBMA, A_NBMA),
        },
        // IPv6 NBMA: ar$afn 2, 16-byte NBMA addresses, in an IPv6 outer header.
        Case {
            repr: Repr {
                afn: AddressFamily::Ipv6,
                ..repr(
                    PROTOCOL_IPV6,
                    1,
                    Message::RegistrationRequest(Registration {
                        src_nbma: A_NBMA6.into(),
                        src_proto: A6.into(),
                        dst_proto: HUB6.into(),
                        ..registration(
                            RegistrationFlags::UNIQUE,
                            cies(vec![Cie::request(128, 1400, 7200)]),
                        )
                    }),
                    Some(vec![
                        ext(ExtensionBody::NatAddress(cies(vec![host(HUB_NBMA6, HUB6)]))),
                        Extension::cleartext_password(PASSWORD),
                    ]),
                )
            },
            key: Some(7),
            outer: (IpAddr::V6(A_NBMA6), IpAddr::V6(HUB_NBMA6)),
        },
    ]
}

/// IP | GRE | NHRP.
fn frame(case: &Case) -> Vec<u8> {
    let nhrp = emit(&case.repr);
    let gre = gre::Repr {
        protocol: gre::Protocol::Nhrp,
        checksum: false,
        key: case.key,
        sequence: None,
    };
    let mut payload = vec![0u8; gre.buffer_len()];
    payload.extend_from_slice(&nhrp);
    gre.emit(&mut payload).unwrap();
    match case.outer {
        (IpAddr::V4(s), IpAddr::V4(d)) => common::ipv4(s, d, gre::IP_PROTOCOL, &payload),
        (IpAddr::V6(s), IpAddr::V6(d)) => common::ipv6(s, d, gre::IP_PROTOCOL, &payload),
        _ => unreachable!("mixed outer families"),
    }
}

fn main_fields() -> Vec<&'static str> {
    vec![
        "nhrp.hdr.op.type",
        "nhrp.hdr.hopcnt",
        "nhrp.hdr.chksum.status",
        "nhrp.hdr.pktsz",
        "nhrp.hdr.extoff",
        "nhrp.flags",
        "nhrp.reqid",
        "nhrp.src.nbma.addr",
        "nhrp.src.prot.addr",
        "nhrp.dst.prot.addr",
        "nhrp.client.nbma.addr",
        "nhrp.client.prot.addr",
        "nhrp.err.code",
        "nhrp.ext.type",
        "gre.key",
        "nhrp.src.nbma.addr_bytes",
        "nhrp.src.prot.addr_bytes",
        // Sic: Wireshark 4.0 registers the destination field with this misspelling.
        "nhrp.dst.prot.addr_byets",
        "nhrp.client.nbma.addr_bytes",
        "nhrp.client.prot.addr_bytes",
        "nhrp.code",
        "nhrp.auth_ext.data",
    ]
}

/// What tshark shows of one address: the dotted IPv4 form in the `*.addr` field, or the hex
/// bytes in the `*.addr_bytes` field for IPv6 (Wireshark 4.0 types the address fields FT_IPv4).
fn push_address(address: &Address<'_>, v4: &mut Vec<String>, bytes: &mut Vec<String>) {
    match address {
        Address::Ipv4(a) => v4.push(a.to_string()),
        Address::Ipv6(a) => bytes.push(a.octets().iter().map(|b| format!("{b:02x}")).collect()),
        Address::Empty => {}
        Address::Other(_) => panic!("no Other addresses in this test"),
    }
}

/// The values tshark should show for `repr`, per field of [`main_fields`] (occurrences in
/// order), computed from what we asked the emitter for.
fn expected_values(repr: &Repr<'_>, key: Option<u32>, values: &mut [Vec<String>]) {
    let [
        op,
        hop,
        status,
        pktsz,
        extoff,
        flags,
        reqid,
        src_nbma,
        src_proto,
        dst_proto,
        cli_nbma,
        cli_proto,
        err_code,
        ext_type,
        gre_key,
        src_nbma_b,
        src_proto_b,
        dst_proto_b,
        cli_nbma_b,
        cli_proto_b,
        cie_code,
        auth_data,
    ] = values
    else {
        panic!("field list and expectations disagree");
    };
    op.push(u8::from(repr.operation()).to_string());
    hop.push(repr.hop_count.to_string());
    status.push("1".into()); // PROTO_CHECKSUM_E_GOOD
    pktsz.push(repr.buffer_len().to_string());
    let offset = repr.extensions.map_or(0, |_| 20 + repr.message.wire_len());
    extoff.push(offset.to_string());
    if let Some(key) = key {
        gre_key.push(format!("0x{key:08x}"));
    }
    let mut all_cies: Vec<Cie<'_>> = Vec::new();
    let (nbma, sproto, dproto) = match &repr.message {
        Message::ResolutionRequest(h) | Message::ResolutionReply(h) => {
            flags.push(format!("0x{:04x}", h.flags.0));
            reqid.push(format!("0x{:08x}", h.request_id));
            all_cies.extend(h.cies.iter());
            (h.src_nbma, h.src_proto, h.dst_proto)
        }
        Message::RegistrationRequest(h) | Message::RegistrationReply(h) => {
            flags.push(format!("0x{:04x}", h.flags.0));
            reqid.push(format!("0x{:08x}", h.request_id));
            all_cies.extend(h.cies.iter());
            (h.src_nbma, h.src_proto, h.dst_proto)
        }
        Message::PurgeRequest(h) | Message::PurgeReply(h) => {
            flags.push(format!("0x{:04x}", h.flags.0));
            reqid.push(format!("0x{:08x}", h.request_id));
            all_cies.extend(h.cies.iter());
            (h.src_nbma, h.src_proto, h.dst_proto)
        }
        Message::ErrorIndication(e) => {
            err_code.push(u16::from(e.code).to_string());
            (e.src_nbma, e.src_proto, e.dst_proto)
        }
        Message::TrafficIndication(t) => (t.src_nbma, t.src_proto, t.dst_proto),
        Message::Unknown { .. } => panic!("no unknown types in this test"),
    };
    push_address(&nbma.address, src_nbma, src_nbma_b);
    push_address(&sproto, src_proto, src_proto_b);
    push_address(&dproto, dst_proto, dst_proto_b);
    if let Some(exts) = repr.extensions {
        for e in exts {
            ext_type.push(format!("0x{:04x}", u16::from(e.ty())));
            if let Some(list) = e.cies() {
                all_cies.extend(list.iter());
            }
            if let ExtensionBody::Authentication { data, .. } = e.body {
                auth_data.push(data.expose().iter().map(|b| format!("{b:02x}")).collect());
            }
        }
        ext_type.push("0x0000".into());
    }
    for cie in all_cies {
        cie_code.push(u8::from(cie.code).to_string());
        push_address(&cie.nbma.address, cli_nbma, cli_nbma_b);
        push_address(&cie.proto, cli_proto, cli_proto_b);
    }
}

#[test]
fn tshark_decodes_what_we_emit() {
    if !common::tshark_available() {
        return;
    }
    let cases = cases();
    let packets: Vec<Vec<u8>> = cases.iter().map(frame).collect();
    let pcap = common::write_pcap("tshark-nhrp", &packets);
    common::assert_tshark_clean(&pcap);
    let fields = main_fields();
    let got = common::tshark_fields(&pcap, &fields);
    assert_eq!(got.len(), cases.len(), "one line per packet");
    for (i, (case, row)) in cases.iter().zip(&got).enumerate() {
        let mut want = vec![Vec::new(); fields.len()];
        expected_values(&case.repr, case.key, &mut want);
        // Wireshark dissects the packet in error of an Error Indication as NHRP too: its
        // values follow the outer ones.
        if let Message::ErrorIndication(e) = case.repr.message {
            let inner =
                Repr::parse(&dmvpn_wire::nhrp::Packet::new_checked(e.packet).unwrap()).unwrap();
            expected_values(&inner, None, &mut want);
        }
        for ((name, got), want) in fields.iter().zip(row).zip(&want) {
            assert_eq!(
                got,
                &want.join(","),
                "packet {} ({:?}), field {name}",
                i + 1,
                case.repr.operation()
            );
        }
    }
    // Every type 1-8 and every extension kind is covered.
    let ops: Vec<String> = got.iter().map(|r| r[0].clone()).collect();
    for op in 1..=8 {
        assert!(
            ops.iter()
                .any(|o| o.split(',').next() == Some(&op.to_string())),
            "type {op}"
        );
    }
    let exts = got
        .iter()
        .map(|r| r[13].clone())
        .collect::<Vec<_>>()
        .join(",");
    for ty in [
        "0x0003", "0x0004", "0x0005", "0x0007", "0x0008", "0x0009", "0x1234",
    ] {
        assert!(exts.contains(ty), "extension {ty}");
    }
}
