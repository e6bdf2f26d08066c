//! The IKEv2 codec against real third-party traffic: the two scapy captures of
//! ../shared/vectors/ike-scapy (provenance in PROVENANCE.md there). Every IKE message must
//! parse completely, down to every transform attribute, and emit back to the same bytes,
//! both from the parsed (wire) form and from a copy rebuilt element by element. The expected
//! values were read with `tshark -r FILE -V` and `tshark -T fields -e isakmp.*`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs::File;

use dmvpn_wire::Seq;
use dmvpn_wire::ikev2::{
    Attribute, DhGroup, EncrId, ExchangeType, Flags, IntegId, NotifyType, Packet, Payload,
    PayloadBody, PayloadType, Payloads, PrfId, Proposal, ProtocolId, Repr, Transform, TransformId,
};
use pcap_file::DataLink;
use pcap_file::pcap::PcapReader;
use pcap_file::pcapng::{Block, PcapNgReader};

/// One UDP datagram of a capture.
struct Datagram {
    frame: usize,
    src_port: u16,
    dst_port: u16,
    payload: Vec<u8>,
}

/// What a datagram on port 500 or 4500 carries (RFC 3948 section 2, RFC 7296 section 2.23).
enum Content {
    Ike(Vec<u8>),
    Esp { spi: u32, sequence: u32 },
    Keepalive,
}

/// Strips Ethernet (14 bytes, EtherType IPv4), the IPv4 header (IHL) and UDP (8 bytes), by
/// hand so that the test does not judge the crate with itself.
fn udp_of(frame: usize, eth: &[u8]) -> Datagram {
    assert_eq!(
        &eth[12..14],
        &[0x08, 0x00],
        "frame {frame}: not IPv4 over Ethernet"
    );
    let ip = &eth[14..];
    assert_eq!(ip[0] >> 4, 4);
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    assert_eq!(ip[9], 17, "frame {frame}: not UDP");
    let udp = &ip[ihl..total];
    let udp_len = usize::from(u16::from_be_bytes([udp[4], udp[5]]));
    Datagram {
        frame,
        src_port: u16::from_be_bytes([udp[0], udp[1]]),
        dst_port: u16::from_be_bytes([udp[2], udp[3]]),
        payload: udp[8..udp_len].to_vec(),
    }
}

fn read_pcapng(name: &str) -> Vec<Datagram> {
    let path = common::vectors_dir().join("ike-scapy").join(name);
    let mut reader = PcapNgReader::new(File::open(&path).unwrap()).unwrap();
    let mut out = Vec::new();
    while let Some(block) = reader.next_block() {
        match block.unwrap() {
            Block::InterfaceDescription(idb) => assert_eq!(idb.linktype, DataLink::ETHERNET),
            Block::EnhancedPacket(epb) => out.push(udp_of(out.len() + 1, &epb.data)),
            _ => {}
        }
    }
    out
}

fn read_pcap(name: &str) -> Vec<Datagram> {
    let path = common::vectors_dir().join("ike-scapy").join(name);
    let mut reader = PcapReader::new(File::open(&path).unwrap()).unwrap();
    assert_eq!(reader.header().datalink, DataLink::ETHERNET);
    let mut out = Vec::new();
    while let Some(packet) = reader.next_packet() {
        out.push(udp_of(out.len() + 1, &packet.unwrap().data));
    }
    out
}

fn content(d: &Datagram) -> Content {
    let p = &d.payload;
    if d.src_port == 500 || d.dst_port == 500 {
        return Content::Ike(p.clone());
    }
    assert!(
        d.src_port == 4500 || d.dst_port == 4500,
        "frame {}: not IKE",
        d.frame
    );
    if p == &[0xff] {
        Content::Keepalive
    } else if p[..4] == [0, 0, 0, 0] {
        Content::Ike(p[4..].to_vec())
    } else {
        Content::Esp {
            spi: u32::from_be_bytes(p[..4].try_into().unwrap()),
            sequence: u32::from_be_bytes(p[4..8].try_into().unwrap()),
        }
    }
}

/// Rebuilds `payloads` with every list in caller-built (`Items`) form, so that emitting it
/// exercises the computed lengths, counts, Next Payload and Last Substruc fields.
fn rebuild<'a>(payloads: Payloads<'a>) -> Payloads<'a> {
    let items: Vec<Payload<'a>> = payloads
        .iter()
        .map(|p| {
            let body = match p.body {
                PayloadBody::Sa(proposals) => {
                    let proposals: Vec<Proposal<'a>> = proposals
                        .iter()
                        .map(|prop| {
                            let transforms: Vec<Transform<'a>> = prop
                                .transforms
                                .iter()
                                .map(|t| {
                                    let attrs: Vec<Attribute<'a>> = t.attributes.iter().collect();
                                    Transform {
                                        id: t.id,
                                        attributes: Seq::Items(attrs.leak()),
                                    }
                                })
                                .collect();
                            Proposal {
                                transforms: Seq::Items(transforms.leak()),
                                ..prop
                            }
                        })
                        .collect();
                    PayloadBody::Sa(Seq::Items(proposals.leak()))
                }
                PayloadBody::TsI(ts) => {
                    PayloadBody::TsI(Seq::Items(ts.iter().collect::<Vec<_>>().leak()))
                }
                PayloadBody::TsR(ts) => {
                    PayloadBody::TsR(Seq::Items(ts.iter().collect::<Vec<_>>().leak()))
                }
                other => other,
            };
            Payload {
                critical: p.critical,
                body,
            }
        })
        .collect();
    Payloads::Items(items.leak())
}

/// Parses one message completely, checks both round trips and returns its representation.
fn check_message<'a>(frame: usize, bytes: &'a [u8]) -> Repr<'a> {
    let packet = Packet::new_checked(bytes).unwrap_or_else(|e| panic!("frame {frame}: {e}"));
    assert_eq!(packet.length() as usize, bytes.len(), "frame {frame}");
    let repr = Repr::parse(&packet).unwrap_or_else(|e| panic!("frame {frame}: {e}"));
    // Walk everything: the chain, every proposal, transform and attribute, every selector.
    let mut elements = 0;
    for p in repr.payloads {
        elements += 1;
        match p.body {
            PayloadBody::Sa(proposals) => {
                for prop in proposals {
                    for t in prop.transforms {
                        elements += 1 + t.attributes.iter().count();
                    }
                }
            }
            PayloadBody::TsI(ts) | PayloadBody::TsR(ts) => elements += ts.iter().count(),
            PayloadBody::Opaque { ty, .. } => panic!("frame {frame}: opaque payload {ty:?}"),
            _ => {}
        }
    }
    assert!(elements > 0);
    assert_eq!(repr.buffer_len(), bytes.len(), "frame {frame}");
    let mut out = vec![0u8; repr.buffer_len()];
    assert_eq!(repr.emit(&mut out).unwrap(), bytes.len());
    assert_eq!(out, bytes, "frame {frame}: wire-form round trip");

    let rebuilt = Repr {
        payloads: rebuild(repr.payloads),
        ..repr
    };
    assert!(matches!(rebuilt.payloads, Payloads::Items(_)));
    assert_eq!(rebuilt, repr, "frame {frame}");
    let mut out = vec![0u8; rebuilt.buffer_len()];
    rebuilt.emit(&mut out).unwrap();
    assert_eq!(out, bytes, "frame {frame}: rebuilt round trip");
    repr
}

fn types(repr: &Repr) -> Vec<u8> {
    repr.payloads.types().map(u8::from).collect()
}

fn notifies(repr: &Repr) -> Vec<(NotifyType, ProtocolId, usize)> {
    repr.payloads
        .iter()
        .filter_map(|p| match p.body {
            PayloadBody::Notify(n) => Some((n.notify_type, n.protocol_id, n.data.len())),
            _ => None,
        })
        .collect()
}

fn find<'a, T>(repr: &Repr<'a>, f: impl Fn(PayloadBody<'a>) -> Option<T>) -> T {
    repr.payloads
        .iter()
        .find_map(|p| f(p.body))
        .expect("payload present")
}

/// Frame, exchange type, flags, message ID, first payload and the SK's first inner payload
/// of every IKE message of ikev2_nat_t.pcapng, from `tshark -T fields`.
type Expected = (usize, u8, u8, u32, u8, Option<u8>);

const NAT_T_IKE: &[Expected] = &[
    (1, 34, 0x08, 0, 33, None),
    (2, 34, 0x20, 0, 33, None),
    (3, 35, 0x08, 1, 46, Some(35)),
    (4, 35, 0x20, 1, 46, Some(36)),
    (13, 37, 0x08, 2, 46, Some(42)),
    (14, 37, 0x20, 2, 46, Some(0)),
    (15, 37, 0x00, 0, 46, Some(42)),
    (16, 37, 0x28, 0, 46, Some(0)),
    (17, 37, 0x08, 3, 46, Some(42)),
    (18, 37, 0x20, 3, 46, Some(0)),
    (19, 34, 0x08, 0, 33, None),
    (20, 34, 0x20, 0, 33, None),
    (21, 35, 0x08, 1, 46, Some(35)),
    (22, 35, 0x20, 1, 46, Some(36)),
    (31, 37, 0x08, 2, 46, Some(42)),
    (32, 37, 0x20, 2, 46, Some(0)),
    (33, 37, 0x00, 0, 46, Some(42)),
    (34, 37, 0x28, 0, 46, Some(0)),
    (35, 37, 0x08, 3, 46, Some(42)),
    (36, 37, 0x20, 3, 46, Some(0)),
    (37, 34, 0x08, 0, 33, None),
    (38, 34, 0x20, 0, 33, None),
    (39, 35, 0x08, 1, 46, Some(35)),
    (40, 35, 0x20, 1, 46, Some(36)),
    (49, 37, 0x08, 2, 46, Some(42)),
    (50, 37, 0x20, 2, 46, Some(0)),
    (51, 37, 0x00, 0, 46, Some(42)),
    (52, 37, 0x28, 0, 46, Some(0)),
    (53, 37, 0x08, 3, 46, Some(42)),
    (54, 37, 0x20, 3, 46, Some(0)),
];

/// The IKE SPIs (initiator, responder) of the three sessions, and their ESP SPIs
/// (initiator to responder, back) from PROVENANCE.md.
const SESSIONS: [(u64, u64, u32, u32); 3] = [
    (
        0x8992_2c91_5f35_570e,
        0x98d5_6d32_e2a0_4742,
        0xac0f_af03,
        0xc1a9_656b,
    ),
    (
        0x99fe_b3ad_ea1e_e8f8,
        0x85a3_428f_bdd9_e1df,
        0x958a_753b,
        0x78bd_5377,
    ),
    (
        0x5a64_e0ed_ca3a_3614,
        0x7c9e_be2a_8e9f_f7b8,
        0xb6b5_f296,
        0xc1d7_17e8,
    ),
];

#[test]
fn nat_t_capture_parses_and_round_trips() {
    let datagrams = read_pcapng("ikev2_nat_t.pcapng");
    assert_eq!(datagrams.len(), 54);
    let mut ike = Vec::new();
    let mut esp = Vec::new();
    for d in &datagrams {
        // The whole capture is on UDP 4500: IKE_SA_INIT too, behind the non-ESP marker.
        assert!(d.src_port == 4500 || d.dst_port == 4500);
        match content(d) {
            Content::Ike(bytes) => ike.push((d.frame, d.src_port == 4500, bytes)),
            Content::Esp { spi, sequence } => {
                esp.push((d.frame, d.src_port == 4500, spi, sequence))
            }
            Content::Keepalive => panic!("frame {}: no keepalive expected", d.frame),
        }
    }
    assert_eq!(ike.len(), NAT_T_IKE.len());
    assert_eq!(esp.len(), 24);

    for ((frame, from_responder, bytes), expected) in ike.iter().zip(NAT_T_IKE) {
        let (e_frame, exchange, flags, mid, first, first_inner) = *expected;
        assert_eq!(*frame, e_frame);
        let repr = check_message(*frame, bytes);
        let session = SESSIONS[(frame - 1) / 18];
        assert_eq!(repr.initiator_spi, session.0, "frame {frame}");
        let expected_rspi = if *frame % 18 == 1 { 0 } else { session.1 };
        assert_eq!(repr.responder_spi, expected_rspi, "frame {frame}");
        assert_eq!(
            repr.exchange_type,
            ExchangeType::from(exchange),
            "frame {frame}"
        );
        assert_eq!(repr.flags, Flags(flags), "frame {frame}");
        assert_eq!(repr.message_id, mid, "frame {frame}");
        assert_eq!(repr.minor_version, 0);
        assert_eq!(
            repr.payloads.first_type(),
            PayloadType::from(first),
            "frame {frame}"
        );
        // The I flag says who sent it: the initiator is 192.168.245.131:10954.
        assert_eq!(repr.flags.initiator(), !from_responder, "frame {frame}");
        if let Some(inner) = first_inner {
            assert_eq!(types(&repr), [46], "frame {frame}");
            let sk = find(&repr, |b| match b {
                PayloadBody::Encrypted(sk) => Some(sk),
                _ => None,
            });
            assert_eq!(sk.first_inner, PayloadType::from(inner), "frame {frame}");
            assert_eq!(sk.data.len(), bytes.len() - 28 - 4);
        }
    }

    // IKE_SA_INIT request of session 1 (frame 1), as tshark -V shows it.
    let first = check_message(1, &ike[0].2);
    assert_eq!(first.exchange_type, ExchangeType::IkeSaInit);
    assert_eq!(types(&first), [33, 34, 40, 43, 43, 43, 43, 41, 41, 41]);
    let sa = find(&first, |b| match b {
        PayloadBody::Sa(sa) => Some(sa),
        _ => None,
    });
    let proposals: Vec<_> = sa.iter().collect();
    assert_eq!(proposals.len(), 1);
    assert_eq!(
        (proposals[0].number, proposals[0].protocol_id),
        (1, ProtocolId::Ike)
    );
    assert!(proposals[0].spi.is_empty());
    let transforms: Vec<_> = proposals[0].transforms.iter().collect();
    assert_eq!(
        transforms.iter().map(|t| t.id).collect::<Vec<_>>(),
        [
            TransformId::Encr(EncrId::AesGcm16),
            TransformId::Prf(PrfId::HmacSha2_256),
            TransformId::Dh(DhGroup::Ecp256)
        ]
    );
    assert_eq!(transforms[0].key_length(), Some(256));
    assert_eq!(transforms[1].key_length(), None);
    let ke = find(&first, |b| match b {
        PayloadBody::Ke(ke) => Some(ke),
        _ => None,
    });
    assert_eq!((ke.group, ke.data.len()), (DhGroup::Ecp256, 64));
    let nonce = find(&first, |b| match b {
        PayloadBody::Nonce(n) => Some(n),
        _ => None,
    });
    assert_eq!(nonce.0.len(), 40);
    assert!(nonce.has_valid_length());
    assert_eq!(
        notifies(&first),
        [
            (NotifyType::Ikev2FragmentationSupported, ProtocolId::None, 0),
            (NotifyType::RedirectSupported, ProtocolId::None, 0),
            (NotifyType::SignatureHashAlgorithms, ProtocolId::None, 8),
        ]
    );
    let sig_hashes = find(&first, |b| match b {
        PayloadBody::Notify(n) if n.notify_type == NotifyType::SignatureHashAlgorithms => {
            Some(n.data)
        }
        _ => None,
    });
    assert_eq!(sig_hashes, [0, 1, 0, 2, 0, 3, 0, 4]);
    let vids: Vec<usize> = first
        .payloads
        .iter()
        .filter_map(|p| match p.body {
            PayloadBody::VendorId(v) => Some(v.0.len()),
            _ => None,
        })
        .collect();
    assert_eq!(vids, [16, 16, 20, 16]);

    // Its response carries a CERTREQ (X.509) and MULTIPLE_AUTH_SUPPORTED.
    let second = check_message(2, &ike[1].2);
    assert_eq!(types(&second), [33, 34, 40, 38, 43, 43, 43, 43, 41, 41, 41]);
    assert_eq!(
        notifies(&second).iter().map(|n| n.0).collect::<Vec<_>>(),
        [
            NotifyType::Ikev2FragmentationSupported,
            NotifyType::SignatureHashAlgorithms,
            NotifyType::MultipleAuthSupported
        ]
    );
    let certreq = find(&second, |b| match b {
        PayloadBody::CertReq(c) => Some(c),
        _ => None,
    });
    assert_eq!(u8::from(certreq.encoding), 4);

    // Sessions 2 and 3 offer ENCR_AES_CTR-256 with HMAC-SHA2-256-128.
    let third = check_message(19, &ike[10].2);
    let t: Vec<_> = find(&third, |b| match b {
        PayloadBody::Sa(sa) => sa.first(),
        _ => None,
    })
    .transforms
    .iter()
    .map(|t| (t.id, t.key_length()))
    .collect();
    assert_eq!(t[0], (TransformId::Encr(EncrId::AesCtr), Some(256)));
    assert_eq!(t[2].0, TransformId::Integ(IntegId::HmacSha2_256_128));

    // ESP-in-UDP: the SPIs of PROVENANCE.md, sequence numbers 1 to 4 in each direction.
    for (i, (frame, from_responder, spi, sequence)) in esp.iter().enumerate() {
        let session = SESSIONS[(frame - 1) / 18];
        let expected = if *from_responder {
            session.3
        } else {
            session.2
        };
        assert_eq!(*spi, expected, "frame {frame}");
        assert_eq!(*sequence, (i as u32 % 8) / 2 + 1, "frame {frame}");
    }
}

#[test]
fn redirect_capture_parses_and_round_trips() {
    let datagrams = read_pcap("ikev2_notify_redirect.pcap");
    assert_eq!(datagrams.len(), 4);
    let messages: Vec<Vec<u8>> = datagrams
        .iter()
        .map(|d| match content(d) {
            Content::Ike(bytes) => bytes,
            _ => panic!("frame {}: IKE on port 500 expected", d.frame),
        })
        .collect();
    let reprs: Vec<Repr> = messages
        .iter()
        .enumerate()
        .map(|(i, m)| check_message(i + 1, m))
        .collect();
    let spis: Vec<(u64, u64)> = reprs
        .iter()
        .map(|r| (r.initiator_spi, r.responder_spi))
        .collect();
    assert_eq!(
        spis,
        [
            (0x8869_4881_4975_28ad, 0),
            (0x8869_4881_4975_28ad, 0),
            (0x1c88_ee0b_7793_d52e, 0),
            (0x1c88_ee0b_7793_d52e, 0x63cc_9c19_19de_33e7)
        ]
    );
    for (r, flags) in reprs.iter().zip([0x08, 0x20, 0x08, 0x20]) {
        assert_eq!(
            (r.exchange_type, r.flags, r.message_id),
            (ExchangeType::IkeSaInit, Flags(flags), 0)
        );
    }

    // The request: NAT detection (with protocol IKE, as this initiator sends it), then
    // fragmentation, redirect and signature hash support.
    assert_eq!(types(&reprs[0]), [33, 34, 40, 41, 41, 41, 41, 41]);
    assert_eq!(
        notifies(&reprs[0]),
        [
            (NotifyType::NatDetectionDestinationIp, ProtocolId::Ike, 20),
            (NotifyType::NatDetectionSourceIp, ProtocolId::Ike, 20),
            (NotifyType::Ikev2FragmentationSupported, ProtocolId::None, 0),
            (NotifyType::RedirectSupported, ProtocolId::None, 0),
            (NotifyType::SignatureHashAlgorithms, ProtocolId::None, 8),
        ]
    );
    let ke = find(&reprs[0], |b| match b {
        PayloadBody::Ke(ke) => Some(ke),
        _ => None,
    });
    assert_eq!((u16::from(ke.group), ke.data.len()), (28, 64));

    // The REDIRECT (RFC 5685): FQDN gateway, and the initiator's nonce echoed.
    assert_eq!(types(&reprs[1]), [41]);
    let redirect = find(&reprs[1], |b| match b {
        PayloadBody::Notify(n) => Some(n),
        _ => None,
    });
    assert_eq!(
        (redirect.notify_type, redirect.protocol_id),
        (NotifyType::Redirect, ProtocolId::Ike)
    );
    let r = redirect.redirect().unwrap();
    assert_eq!(r.gateway_type, 3);
    assert_eq!(r.gateway, b"moneybin.duckburg.disney.com");
    let nonce = find(&reprs[0], |b| match b {
        PayloadBody::Nonce(n) => Some(n),
        _ => None,
    });
    assert_eq!(r.nonce, nonce.0);

    // The new gateway's request says REDIRECTED_FROM; its answer is NO_PROPOSAL_CHOSEN.
    assert_eq!(notifies(&reprs[2])[3].0, NotifyType::RedirectedFrom);
    assert_eq!(
        notifies(&reprs[3]),
        [(NotifyType::NoProposalChosen, ProtocolId::Ike, 0)]
    );
    assert_eq!(messages[3].len(), 36);
}
