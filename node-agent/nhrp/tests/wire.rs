//! Every packet the engines emit in the seed scenario round-trips through dmvpn-wire byte
//! for byte, has the shape FRR nhrpd gives it (../shared/research/anchors.md section 2.3),
//! and passes tshark clean. The scenario runs three simulated hours with 10% loss and has
//! authentication, a NATed spoke, a spoke with a wrong password, a hijack attempt,
//! redirects, resolutions and shortcuts, and a spoke moving to a new NBMA address (purge).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod sim;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use dmvpn_wire::nhrp::{
    Address, CieCode, ErrorCode, ExtensionBody, Message, Operation, Packet, Repr,
};
use sim::{Impairments, Sim, check_holdtimes, seed};

const PASSWORD: &[u8] = b"s3cr3t";
const NATED: Ipv4Addr = Ipv4Addr::new(172, 16, 0, 3);
const MOVED: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 102);

fn scenario() -> Vec<(IpAddr, IpAddr, Vec<u8>)> {
    let mut sim = Sim::new(21, Impairments::lossy(10));
    sim.captured = Some(Vec::new());
    sim.add("hub", seed::hub(Some(PASSWORD)), seed::HUB_NBMA.into());
    sim.add(
        "spoke2",
        seed::spoke_config(2, seed::spoke_nbma(2), Some(PASSWORD)),
        seed::spoke_nbma(2).into(),
    );
    sim.add(
        "spoke3",
        seed::spoke_config(3, NATED, Some(PASSWORD)),
        seed::spoke_nbma(3).into(),
    );
    let bad = Ipv4Addr::new(198, 18, 0, 4);
    sim.add(
        "badpw",
        seed::spoke_config(4, bad, Some(b"wrong")),
        bad.into(),
    );
    let thief = Ipv4Addr::new(203, 0, 113, 66);
    sim.add(
        "thief",
        seed::spoke_config(2, thief, Some(PASSWORD)),
        thief.into(),
    );
    sim.run_for(Duration::from_secs(60), check_holdtimes);
    // Phase 3 both ways, and a resolution nobody can answer.
    for _ in 0..5 {
        sim.command(0, |hub, now| {
            hub.traffic_to(
                now,
                "192.168.2.10".parse().unwrap(),
                "192.168.3.5".parse().unwrap(),
            );
            hub.traffic_to(
                now,
                "192.168.3.5".parse().unwrap(),
                "192.168.2.10".parse().unwrap(),
            );
        });
        sim.command(1, |spoke, now| {
            spoke.resolve(now, "10.1.1.99".parse().unwrap())
        });
        sim.run_for(Duration::from_secs(20), check_holdtimes);
    }
    // Spoke 2 moves to a new NBMA address: purge, then registration.
    sim.readdress(1, MOVED.into());
    sim.command(1, |spoke, now| spoke.set_nbma_address(now, MOVED.into()));
    sim.run_for(Duration::from_secs(3 * 3600), check_holdtimes);
    sim.captured.take().unwrap()
}

/// The raw extension types (compulsory bit included) of a message, in order.
fn raw_extension_types(bytes: &[u8]) -> Vec<u16> {
    let p = Packet::new_checked(bytes).unwrap();
    let (mut at, end) = (
        usize::from(p.extension_offset()),
        usize::from(p.packet_size()),
    );
    let mut types = Vec::new();
    if at == 0 {
        return types;
    }
    while at + 4 <= end {
        let ty = u16::from_be_bytes([bytes[at], bytes[at + 1]]);
        let len = u16::from_be_bytes([bytes[at + 2], bytes[at + 3]]);
        types.push(ty);
        at += 4 + usize::from(len);
    }
    types
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn emitted_packets_round_trip_look_like_nhrpd_and_pass_tshark() {
    let captured = scenario();
    let mut per_type: BTreeMap<u8, usize> = BTreeMap::new();
    let mut purges_from_hub = 0;
    for (from, to, bytes) in &captured {
        let repr = Repr::parse(&Packet::new_checked(&bytes[..]).unwrap()).unwrap();
        let mut again = vec![0u8; repr.buffer_len()];
        repr.emit(&mut again).unwrap();
        assert_eq!(&again, bytes, "{from} -> {to} does not round-trip");
        *per_type.entry(u8::from(repr.operation())).or_default() += 1;
        let exts = raw_extension_types(bytes);
        match repr.message {
            Message::RegistrationRequest(reg) => {
                assert_eq!(repr.hop_count, 1);
                assert_eq!(reg.flags.0, 0x8002);
                assert_eq!(exts, [0x8004, 0x8005, 0x8003, 0x0009, 0x8007, 0x8000]);
                let cies: Vec<_> = reg.cies.iter().collect();
                assert_eq!(cies.len(), 2);
                assert_eq!(cies[0].prefix_len, 0xff);
                assert_eq!(cies[0].holding_time, 7200);
                assert_eq!(cies[0].proto, Address::Empty);
                assert!(cies[0].nbma.address.is_empty());
                assert_eq!(cies[1].prefix_len, 24);
                let nat = repr
                    .find_extension(dmvpn_wire::nhrp::ExtensionType::NatAddress)
                    .unwrap()
                    .cies()
                    .unwrap();
                assert_eq!(nat.len(), 1);
                let nhs = nat.first().unwrap();
                assert_eq!(nhs.proto, Address::Ipv4(seed::HUB));
                assert_eq!(nhs.nbma.address, Address::Ipv4(seed::HUB_NBMA));
            }
            Message::RegistrationReply(reg) => {
                assert_eq!(repr.hop_count, 64);
                assert_eq!(reg.flags.0, 0x8002);
                assert_eq!(exts, [0x8004, 0x8005, 0x8003, 0x0009, 0x8007, 0x8000]);
                let responder = repr
                    .find_extension(dmvpn_wire::nhrp::ExtensionType::ResponderAddress)
                    .unwrap()
                    .cies()
                    .unwrap()
                    .first()
                    .unwrap();
                assert_eq!(responder.proto, Address::Ipv4(seed::HUB));
                let nat = repr
                    .find_extension(dmvpn_wire::nhrp::ExtensionType::NatAddress)
                    .unwrap()
                    .cies()
                    .unwrap();
                let natted = reg.src_nbma.address == Address::Ipv4(NATED);
                assert_eq!(nat.len(), if natted { 2 } else { 1 });
                if natted {
                    let seen = nat.iter().nth(1).unwrap();
                    assert_eq!(seen.nbma.address, Address::Ipv4(seed::spoke_nbma(3)));
                    assert_eq!(seen.proto, Address::Ipv4(seed::spoke(3)));
                }
                // Sent to where the request came from, post-NAT.
                if natted {
                    assert_eq!(*to, IpAddr::from(seed::spoke_nbma(3)));
                }
                let codes: Vec<CieCode> = reg.cies.iter().map(|c| c.code).collect();
                if *to == IpAddr::from(Ipv4Addr::new(203, 0, 113, 66)) {
                    assert_eq!(codes, [CieCode::UniqueAddressAlreadyRegistered; 2]);
                } else if *to == IpAddr::from(MOVED) {
                    // Refused until its purge arrives (it may be lost).
                    assert!(
                        codes == [CieCode::Success; 2]
                            || codes == [CieCode::UniqueAddressAlreadyRegistered; 2]
                    );
                } else {
                    assert_eq!(codes, [CieCode::Success; 2]);
                }
            }
            Message::ErrorIndication(ind) => {
                assert_eq!(repr.hop_count, 0);
                assert!(repr.extensions.is_none());
                assert_eq!(ind.code, ErrorCode::AuthenticationFailure);
                assert_eq!(ind.dst_proto, Address::Ipv4(seed::spoke(4)));
                assert_eq!(ind.unused, 0x8002);
                // The whole offending packet (RFC 2332 section 5.2.7), back to its sender.
                assert_eq!(ind.packet.len(), 125);
                assert!(contains(ind.packet, b"wrong"));
                assert_eq!(*to, IpAddr::from(Ipv4Addr::new(198, 18, 0, 4)));
                let off = usize::from(ind.offset);
                assert!(off > 72, "offset {off} names the authentication extension");
            }
            Message::TrafficIndication(ti) => {
                assert_eq!(repr.hop_count, 1);
                assert_eq!(exts, [0x8007, 0x8000]);
                assert_eq!(ti.src_proto, Address::Ipv4(seed::HUB));
                assert_eq!(ti.packet.len(), 20);
            }
            Message::ResolutionRequest(req) => {
                assert_eq!(repr.hop_count, 64);
                assert_eq!(req.flags.0, 0xc802);
                assert_eq!(exts, [0x8004, 0x8005, 0x8003, 0x0009, 0x8007, 0x8000]);
                let cie = req.cies.first().unwrap();
                assert_eq!((cie.prefix_len, cie.proto), (0xff, Address::Empty));
                let nat = repr
                    .find_extension(dmvpn_wire::nhrp::ExtensionType::NatAddress)
                    .unwrap()
                    .cies()
                    .unwrap();
                // Empty unless the requester is NATed, then its post-NAT address.
                if req.src_nbma.address == Address::Ipv4(NATED) {
                    let own = nat.first().unwrap();
                    assert_eq!(own.nbma.address, Address::Ipv4(seed::spoke_nbma(3)));
                } else {
                    assert!(nat.is_empty());
                }
            }
            Message::ResolutionReply(reply) => {
                assert_eq!(repr.hop_count, 64);
                assert_eq!(reply.flags.0, 0xe800);
                assert_eq!(exts, [0x8004, 0x8005, 0x8003, 0x0009, 0x8007, 0x8000]);
                let cie = reply.cies.first().unwrap();
                if reply.dst_proto == Address::Ipv4(Ipv4Addr::new(10, 1, 1, 99)) {
                    assert_eq!(cie.code, CieCode::NoBindingExists);
                } else {
                    assert_eq!(cie.code, CieCode::Success);
                    assert_eq!(cie.prefix_len, 24);
                }
            }
            Message::PurgeRequest(p) | Message::PurgeReply(p)
                if p.src_proto == Address::Ipv4(seed::HUB) =>
            {
                // The hub withdraws the shortcuts it handed out for spoke 2's prefixes.
                assert_eq!(repr.operation(), Operation::PurgeRequest);
                assert_eq!((repr.hop_count, p.flags.0), (64, 0x8000));
                assert_eq!(exts, [0x8007, 0x8000]);
                let cie = p.cies.first().unwrap();
                assert_eq!(cie.nbma.address, Address::Ipv4(seed::spoke_nbma(2)));
                assert_eq!(cie.holding_time, 0);
                purges_from_hub += 1;
            }
            Message::PurgeRequest(p) | Message::PurgeReply(p) => {
                assert_eq!(repr.hop_count, 64);
                assert_eq!(p.flags.0, 0);
                assert_eq!(exts, [0x8007, 0x8000]);
                assert_eq!(p.src_proto, Address::Ipv4(seed::spoke(2)));
                assert_eq!(p.src_nbma.address, Address::Ipv4(MOVED));
                let cies: Vec<_> = p.cies.iter().collect();
                assert_eq!(cies.len(), 2);
                assert_eq!((cies[0].prefix_len, cies[1].prefix_len), (32, 24));
                assert!(
                    cies.iter().all(|c| c.holding_time == 0
                        && c.nbma.address == Address::Ipv4(seed::spoke_nbma(2)))
                );
            }
            ref other => panic!("unexpected {other:?}"),
        }
        if let Some(ExtensionBody::Authentication { data, .. }) = repr
            .find_extension(dmvpn_wire::nhrp::ExtensionType::Authentication)
            .map(|e| e.body)
        {
            assert!(data.expose() == PASSWORD || data.expose() == b"wrong");
        }
    }
    let count = |op: Operation| per_type.get(&u8::from(op)).copied().unwrap_or(0);
    assert!(count(Operation::RegistrationRequest) > 20, "{per_type:?}");
    assert!(count(Operation::RegistrationReply) > 10, "{per_type:?}");
    assert!(count(Operation::ErrorIndication) > 5, "{per_type:?}");
    assert!(count(Operation::TrafficIndication) >= 2, "{per_type:?}");
    assert!(count(Operation::ResolutionRequest) >= 3, "{per_type:?}");
    assert!(count(Operation::ResolutionReply) >= 3, "{per_type:?}");
    assert!(count(Operation::PurgeRequest) >= 2, "{per_type:?}");
    assert!(purges_from_hub >= 1);

    if !common::tshark_available() {
        return;
    }
    let pcap = common::write_pcap("nhrp-engine-seed", &common::gre_frames(&captured));
    common::assert_tshark_clean(&pcap);
    let rows = common::tshark_fields(&pcap, &["nhrp.hdr.op.type", "nhrp.hdr.chksum.status"]);
    assert_eq!(rows.len(), captured.len());
    for (row, (_, _, bytes)) in rows.iter().zip(&captured) {
        // The first occurrence is the outer message (an Error Indication nests its packet).
        assert_eq!(row[0].split(',').next().unwrap(), bytes[17].to_string());
        // Wireshark: 1 = good (an embedded packet in error shows 2, unverified).
        assert!(row[1].starts_with('1'), "checksum status {}", row[1]);
    }
}
