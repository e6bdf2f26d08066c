//! tshark as the judge of the IKEv2 emitter: messages of every exchange and every payload
//! kind, built with `ikev2::Repr::emit`, sent over UDP 500, UDP 4500 (behind the non-ESP
//! marker of RFC 3948 section 2.2) and IPv6, must dissect without a malformed packet or an
//! expert error, and with the field values we emitted.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::{Ipv4Addr, Ipv6Addr};

use dmvpn_wire::ikev2::{
    AuthMethod, Authentication, CertEncoding, Certificate, Delete, DhGroup, EncrId, Encrypted,
    EncryptedFragment, ExchangeType, Flags, IdType, Identification, KeyExchange, Nonce,
    Notification, NotifyType, Payload, PayloadBody, PayloadType, Payloads, PrfId, Proposal,
    ProtocolId, Repr, TrafficSelector, Transform, TransformId, VendorId,
};
use dmvpn_wire::{Element, Seq};

const ISPI: u64 = 0x1122_3344_5566_7788;
const RSPI: u64 = 0x99aa_bbcc_ddee_ff00;
const INITIATOR: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
const RESPONDER: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 2);
const GRE: u8 = 47;

/// `aes256gcm16-prfsha384-x25519`: ENCR_AES_GCM_16 with a 256-bit key, PRF_HMAC_SHA2_384,
/// Curve25519.
const TRANSFORMS: &[Transform<'static>] = &[
    Transform::with_key_length(
        TransformId::Encr(EncrId::AesGcm16),
        &[dmvpn_wire::ikev2::Attribute::KeyLength(256)],
    ),
    Transform::new(TransformId::Prf(PrfId::HmacSha2_384)),
    Transform::new(TransformId::Dh(DhGroup::Curve25519)),
];
const PROPOSALS: &[Proposal<'static>] = &[Proposal {
    number: 1,
    protocol_id: ProtocolId::Ike,
    spi: &[],
    transforms: Seq::Items(TRANSFORMS),
}];

/// SIGNATURE_HASH_ALGORITHMS data: SHA2-256, SHA2-384, SHA2-512 (RFC 7427 section 4).
const HASHES: &[u8] = &[0, 2, 0, 3, 0, 4];

/// DER of the distinguished name `CN=hub1`.
const DN: &[u8] = &[
    0x30, 0x0f, 0x31, 0x0d, 0x30, 0x0b, 0x06, 0x03, 0x55, 0x04, 0x03, 0x0c, 0x04, b'h', b'u', b'b',
    b'1',
];

/// RFC 7427 authentication data: the length and DER of the AlgorithmIdentifier
/// sha256WithRSAEncryption (RFC 7427 appendix A.1.2), then a (fake) signature.
const SIG_AUTH: &[u8] = &[
    0x0f, 0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b, 0x05, 0x00,
    0xde, 0xad, 0xbe, 0xef,
];

fn notify(t: NotifyType, data: &'static [u8]) -> Payload<'static> {
    Payload::new(PayloadBody::Notify(Notification::new(t, data)))
}

fn sa_init(response: bool) -> Vec<Payload<'static>> {
    vec![
        Payload::new(PayloadBody::Sa(Seq::Items(PROPOSALS))),
        Payload::new(PayloadBody::Ke(KeyExchange {
            group: DhGroup::Curve25519,
            data: &[0x25; 32],
        })),
        Payload::new(PayloadBody::Nonce(Nonce(if response {
            &[0x4e; 32]
        } else {
            &[0x6e; 32]
        }))),
        notify(NotifyType::NatDetectionSourceIp, &[0x51; 20]),
        notify(NotifyType::NatDetectionDestinationIp, &[0xd1; 20]),
        notify(NotifyType::Ikev2FragmentationSupported, &[]),
        notify(NotifyType::SignatureHashAlgorithms, HASHES),
    ]
}

fn sk(first_inner: PayloadType, len: usize) -> Vec<Payload<'static>> {
    // IV (8), ciphertext, ICV (16): opaque to the codec and to tshark without keys.
    let data: &'static [u8] = vec![0xc5; len].leak();
    vec![Payload::new(PayloadBody::Encrypted(Encrypted {
        first_inner,
        data,
    }))]
}

fn every_kind() -> Vec<Payload<'static>> {
    let ts_i: &'static [TrafficSelector<'static>] = vec![
        TrafficSelector::ipv4_host(INITIATOR, GRE),
        TrafficSelector::ipv6_host("2001:db8::1".parse().unwrap(), GRE),
    ]
    .leak();
    let ts_r: &'static [TrafficSelector<'static>] = vec![
        TrafficSelector::ipv4_host(RESPONDER, GRE),
        TrafficSelector::ipv6_host("2001:db8::2".parse().unwrap(), GRE),
    ]
    .leak();
    vec![
        Payload::new(PayloadBody::IdI(Identification { id_type: IdType::Ipv4Addr, data: &[198, 51, 100, 1] })),
        Payload::new(PayloadBody::IdR(Identification { id_type: IdType::Fqdn, data: b"hub.example.net" })),
        // Hash and URL of an X.509 certificate (RFC 7296 section 3.6): SHA-1 hash, then URL.
        Payload::new(PayloadBody::Cert(Certificate {
            encoding: CertEncoding::HashUrlX509Cert,
            data: b"\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10\x11\x12\x13\x14http://ca.example/c.der",
        })),
        Payload::new(PayloadBody::CertReq(Certificate { encoding: CertEncoding::X509Signature, data: &[0xca; 20] })),
        Payload::new(PayloadBody::Auth(Authentication { method: AuthMethod::SharedKeyMic, data: &[0xa5; 48] })),
        Payload::new(PayloadBody::Auth(Authentication { method: AuthMethod::DigitalSignature, data: SIG_AUTH })),
        notify(NotifyType::UseTransportMode, &[]),
        notify(NotifyType::Cookie, &[0xc0; 16]),
        Payload::new(PayloadBody::Notify(Notification {
            protocol_id: ProtocolId::Esp,
            spi: &[0xc1, 0xa9, 0x65, 0x6b],
            notify_type: NotifyType::RekeySa,
            data: &[],
        })),
        Payload::new(PayloadBody::Delete(Delete {
            protocol_id: ProtocolId::Esp,
            spi_size: 4,
            spis: &[0xac, 0x0f, 0xaf, 0x03, 0xc1, 0xa9, 0x65, 0x6b],
        })),
        Payload::new(PayloadBody::Delete(Delete { protocol_id: ProtocolId::Ike, spi_size: 0, spis: &[] })),
        Payload::new(PayloadBody::VendorId(VendorId(b"kube-dmvpn-test!"))),
        Payload::new(PayloadBody::TsI(Seq::Items(ts_i))),
        Payload::new(PayloadBody::TsR(Seq::Items(ts_r))),
        // CP: CFG_REQUEST asking for INTERNAL_IP4_ADDRESS (RFC 7296 section 3.15).
        Payload::new(PayloadBody::Opaque { ty: PayloadType::Cp, data: &[1, 0, 0, 0, 0, 1, 0, 0] }),
        // EAP: Request/Identity (RFC 3748).
        Payload::new(PayloadBody::Opaque { ty: PayloadType::Eap, data: &[1, 7, 0, 5, 1] }),
    ]
}

fn other_ids() -> Vec<Payload<'static>> {
    let v6: Ipv6Addr = "2001:db8::1".parse().unwrap();
    let v6: &'static [u8] = v6.octets().to_vec().leak();
    vec![
        Payload::new(PayloadBody::IdI(Identification {
            id_type: IdType::Rfc822Addr,
            data: b"spoke1@example.net",
        })),
        Payload::new(PayloadBody::IdR(Identification {
            id_type: IdType::KeyId,
            data: b"dmvpn-key-1",
        })),
        Payload::new(PayloadBody::IdI(Identification {
            id_type: IdType::Ipv6Addr,
            data: v6,
        })),
        Payload::new(PayloadBody::IdR(Identification {
            id_type: IdType::DerAsn1Dn,
            data: DN,
        })),
    ]
}

/// One test message: the representation, and how it travels.
struct Message {
    repr: Repr<'static>,
    transport: Transport,
}

enum Transport {
    Udp500,
    Udp4500,
    Udp6,
}

fn message(
    exchange: ExchangeType,
    flags: Flags,
    mid: u32,
    payloads: Vec<Payload<'static>>,
    transport: Transport,
) -> Message {
    let rspi = if exchange == ExchangeType::IkeSaInit && !flags.response() {
        0
    } else {
        RSPI
    };
    Message {
        repr: Repr {
            initiator_spi: ISPI,
            responder_spi: rspi,
            minor_version: 0,
            exchange_type: exchange,
            flags,
            message_id: mid,
            payloads: Payloads::Items(payloads.leak()),
        },
        transport,
    }
}

fn messages() -> Vec<Message> {
    let i = Flags::INITIATOR;
    let r = Flags::RESPONSE;
    let skf = |n: u16, first_inner: PayloadType| {
        let data: &'static [u8] = vec![0xf0 | n as u8; 40].leak();
        vec![Payload::new(PayloadBody::EncryptedFragment(
            EncryptedFragment {
                first_inner,
                fragment_number: n,
                total_fragments: 2,
                data,
            },
        ))]
    };
    vec![
        message(
            ExchangeType::IkeSaInit,
            i,
            0,
            sa_init(false),
            Transport::Udp500,
        ),
        message(
            ExchangeType::IkeSaInit,
            r,
            0,
            sa_init(true),
            Transport::Udp500,
        ),
        message(
            ExchangeType::IkeAuth,
            i,
            1,
            sk(PayloadType::IdI, 120),
            Transport::Udp4500,
        ),
        message(
            ExchangeType::IkeAuth,
            i,
            2,
            skf(1, PayloadType::IdI),
            Transport::Udp4500,
        ),
        message(
            ExchangeType::IkeAuth,
            i,
            2,
            skf(2, PayloadType::None),
            Transport::Udp4500,
        ),
        message(
            ExchangeType::CreateChildSa,
            i,
            3,
            sk(PayloadType::Sa, 96),
            Transport::Udp4500,
        ),
        message(
            ExchangeType::Informational,
            r | i,
            4,
            sk(PayloadType::None, 24),
            Transport::Udp4500,
        ),
        message(ExchangeType::IkeAuth, i, 1, every_kind(), Transport::Udp500),
        message(ExchangeType::IkeAuth, i, 1, other_ids(), Transport::Udp4500),
        message(
            ExchangeType::IkeSaInit,
            i,
            0,
            sa_init(false),
            Transport::Udp6,
        ),
    ]
}

fn frame(m: &Message) -> Vec<u8> {
    let mut ike = vec![0u8; m.repr.buffer_len()];
    assert_eq!(m.repr.emit(&mut ike).unwrap(), ike.len());
    match m.transport {
        Transport::Udp500 => common::ipv4(INITIATOR, RESPONDER, 17, &common::udp(500, 500, &ike)),
        Transport::Udp4500 => {
            let mut marked = vec![0u8; 4];
            marked.extend_from_slice(&ike);
            common::ipv4(INITIATOR, RESPONDER, 17, &common::udp(4500, 4500, &marked))
        }
        Transport::Udp6 => common::udp6(
            "2001:db8::1".parse().unwrap(),
            "2001:db8::2".parse().unwrap(),
            500,
            500,
            &ike,
        ),
    }
}

/// The payload types and lengths in tshark's order: each payload, then the proposals (2)
/// and transforms (3) of an SA.
fn expected_types_and_lengths(repr: &Repr) -> (Vec<String>, Vec<String>) {
    let mut types = Vec::new();
    let mut lengths = Vec::new();
    for p in repr.payloads {
        types.push(u8::from(p.ty()).to_string());
        lengths.push(p.wire_len().to_string());
        if let PayloadBody::Sa(sa) = p.body {
            for prop in sa {
                types.push("2".into());
                lengths.push(prop.wire_len().to_string());
                for t in prop.transforms {
                    types.push("3".into());
                    lengths.push(t.wire_len().to_string());
                }
            }
        }
    }
    (types, lengths)
}

fn collect<T: ToString>(repr: &Repr, f: impl Fn(&PayloadBody) -> Vec<T>) -> String {
    repr.payloads
        .iter()
        .flat_map(|p| f(&p.body))
        .map(|v| v.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

const FIELDS: &[&str] = &[
    "isakmp.ispi",
    "isakmp.rspi",
    "isakmp.exchangetype",
    "isakmp.flags",
    "isakmp.messageid",
    "isakmp.length",
    "isakmp.typepayload",
    "isakmp.payloadlength",
    "isakmp.notify.msgtype",
    "isakmp.tf.type",
    "isakmp.tf.id.encr",
    "isakmp.tf.id.prf",
    "isakmp.tf.id.dh",
    "isakmp.ike2.attr.key_length",
    "isakmp.key_exchange.dh_group",
    "isakmp.id.type",
    "isakmp.ts.protoid",
    "isakmp.ts.start_ipv4",
    "isakmp.ts.end_ipv6",
    "isakmp.frag.number",
    "isakmp.frag.total",
    "isakmp.id.data.fqdn",
    "isakmp.auth.method",
    "isakmp.delete.spi",
    "isakmp.id.data.user_fqdn",
    "isakmp.id.data.ipv6_addr",
];

#[test]
fn tshark_accepts_every_emitted_message() {
    if !common::tshark_available() {
        return;
    }
    let messages = messages();
    let frames: Vec<Vec<u8>> = messages.iter().map(frame).collect();
    let pcap = common::write_pcap("ikev2", &frames);
    common::assert_tshark_clean(&pcap);
    let rows = common::tshark_fields(&pcap, FIELDS);
    assert_eq!(rows.len(), messages.len());

    for (n, (m, row)) in messages.iter().zip(&rows).enumerate() {
        let repr = &m.repr;
        let field = |name: &str| row[FIELDS.iter().position(|f| *f == name).unwrap()].as_str();
        let ctx = format!("message {n}: {row:?}");
        assert_eq!(
            field("isakmp.ispi"),
            format!("{:016x}", repr.initiator_spi),
            "{ctx}"
        );
        assert_eq!(
            field("isakmp.rspi"),
            format!("{:016x}", repr.responder_spi),
            "{ctx}"
        );
        assert_eq!(
            field("isakmp.exchangetype"),
            u8::from(repr.exchange_type).to_string(),
            "{ctx}"
        );
        assert_eq!(
            field("isakmp.flags"),
            format!("0x{:02x}", repr.flags.0),
            "{ctx}"
        );
        assert_eq!(
            field("isakmp.messageid"),
            format!("0x{:08x}", repr.message_id),
            "{ctx}"
        );
        assert_eq!(
            field("isakmp.length"),
            repr.buffer_len().to_string(),
            "{ctx}"
        );
        let (types, lengths) = expected_types_and_lengths(repr);
        assert_eq!(field("isakmp.typepayload"), types.join(","), "{ctx}");
        assert_eq!(field("isakmp.payloadlength"), lengths.join(","), "{ctx}");
        let notify_types = collect(repr, |b| match b {
            PayloadBody::Notify(n) => vec![u16::from(n.notify_type)],
            _ => vec![],
        });
        assert_eq!(field("isakmp.notify.msgtype"), notify_types, "{ctx}");
        let id_types = collect(repr, |b| match b {
            PayloadBody::IdI(id) | PayloadBody::IdR(id) => vec![u8::from(id.id_type)],
            _ => vec![],
        });
        assert_eq!(field("isakmp.id.type"), id_types, "{ctx}");
        let auth = collect(repr, |b| match b {
            PayloadBody::Auth(a) => vec![u8::from(a.method)],
            _ => vec![],
        });
        assert_eq!(field("isakmp.auth.method"), auth, "{ctx}");
        let ts_protocols = collect(repr, |b| match b {
            PayloadBody::TsI(ts) | PayloadBody::TsR(ts) => {
                ts.iter().map(|t| t.ip_protocol).collect()
            }
            _ => vec![],
        });
        assert_eq!(field("isakmp.ts.protoid"), ts_protocols, "{ctx}");
        let frags = collect(repr, |b| match b {
            PayloadBody::EncryptedFragment(f) => vec![f.fragment_number],
            _ => vec![],
        });
        assert_eq!(field("isakmp.frag.number"), frags, "{ctx}");
    }

    // Values written by hand, to catch an error shared by the walk above and the codec.
    let init = &rows[0];
    let get = |row: &Vec<String>, name: &str| {
        row[FIELDS.iter().position(|f| *f == name).unwrap()].clone()
    };
    assert_eq!(
        get(init, "isakmp.typepayload"),
        "33,2,3,3,3,34,40,41,41,41,41"
    );
    assert_eq!(get(init, "isakmp.tf.type"), "1,2,4");
    assert_eq!(get(init, "isakmp.tf.id.encr"), "20");
    assert_eq!(get(init, "isakmp.tf.id.prf"), "6");
    assert_eq!(get(init, "isakmp.tf.id.dh"), "31");
    assert_eq!(get(init, "isakmp.ike2.attr.key_length"), "256");
    assert_eq!(get(init, "isakmp.key_exchange.dh_group"), "31");
    assert_eq!(
        get(init, "isakmp.notify.msgtype"),
        "16388,16389,16430,16431"
    );
    assert_eq!(get(&rows[3], "isakmp.frag.total"), "2");
    let every = &rows[7];
    assert_eq!(get(every, "isakmp.id.data.fqdn"), "hub.example.net");
    assert_eq!(
        get(every, "isakmp.ts.start_ipv4"),
        "198.51.100.1,203.0.113.2"
    );
    assert_eq!(get(every, "isakmp.ts.end_ipv6"), "2001:db8::1,2001:db8::2");
    assert_eq!(get(every, "isakmp.ts.protoid"), "47,47,47,47");
    assert_eq!(get(every, "isakmp.delete.spi"), "ac0faf03,c1a9656b");
    assert_eq!(get(every, "isakmp.auth.method"), "2,14");
    let ids = &rows[8];
    assert_eq!(get(ids, "isakmp.id.data.user_fqdn"), "spoke1@example.net");
    assert_eq!(get(ids, "isakmp.id.data.ipv6_addr"), "2001:db8::1");
    assert_eq!(get(&rows[9], "isakmp.ispi"), format!("{ISPI:016x}"));
}
