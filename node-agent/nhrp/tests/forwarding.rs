//! Resolution forwarding between NHSs (RFC 2332 sections 5.2.1, 5.3.2 and 5.3.3) in a
//! two-level DMVPN, in simulation: a regional hub whose own NHS is the core hub, spoke A
//! registered with the regional hub and spoke B with the core hub; the core routes spoke
//! A's LAN to the regional hub.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod sim;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use dmvpn_nhrp::{DropReason, EntryType, Event, NhsConfig, Route};
use dmvpn_wire::Seq;
use dmvpn_wire::nhrp::{
    Cie, CieCode, ErrorCode, Extension, ExtensionBody, ExtensionType, Message, Packet, Repr,
};
use sim::{Impairments, Sim, check_holdtimes, seed};

const PASSWORD: &[u8] = b"s3cr3t";
const CORE: Ipv4Addr = Ipv4Addr::new(10, 1, 1, 254);
const CORE_NBMA: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 254);
const REGIONAL: usize = 0;
const CORE_HUB: usize = 1;
const SPOKE_A: usize = 2;
const SPOKE_B: usize = 3;

fn a(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Regional hub (index 0, the seed hub with the core as its NHS), core hub (1, with a
/// route to 192.168.2.0/24 via the regional hub), spoke A (2, 10.1.1.2 with
/// 192.168.2.0/24, at the regional hub) and spoke B (3, 10.1.1.3 with 192.168.3.0/24, at
/// the core hub), all registered.
fn hierarchy(seed_value: u64) -> Sim {
    let mut sim = Sim::new(seed_value, Impairments::perfect());
    sim.captured = Some(Vec::new());
    let core_nhs = NhsConfig {
        tunnel: CORE.into(),
        nbma: CORE_NBMA.into(),
        priority: 0,
    };
    let mut regional = seed::hub(Some(PASSWORD));
    regional.nhs.push(core_nhs);
    sim.add("regional", regional, seed::HUB_NBMA.into());
    let mut core = seed::hub(Some(PASSWORD));
    core.tunnel_address = CORE.into();
    core.nbma_address = CORE_NBMA.into();
    core.routes.push(Route {
        prefix: seed::lan(2),
        next_hop: seed::HUB.into(),
    });
    sim.add("core", core, CORE_NBMA.into());
    sim.add(
        "spokeA",
        seed::spoke_config(2, seed::spoke_nbma(2), Some(PASSWORD)),
        seed::spoke_nbma(2).into(),
    );
    let mut b = seed::spoke_config(3, seed::spoke_nbma(3), Some(PASSWORD));
    b.nhs = vec![core_nhs];
    sim.add("spokeB", b, seed::spoke_nbma(3).into());
    let registered = |sim: &Sim, hub: usize| {
        sim.nodes[hub]
            .engine
            .cache()
            .iter()
            .filter(|(_, e)| e.kind == EntryType::Registered)
            .count()
    };
    assert!(sim.run_until(
        Duration::from_secs(5),
        // The core holds the regional hub and spoke B (two entries), the regional hub
        // spoke A (two entries).
        |s| s.nhs_up == 3 && registered(s, CORE_HUB) == 3 && registered(s, REGIONAL) == 2,
        check_holdtimes
    ));
    sim
}

/// The tunnel addresses of the CIEs of extension `ty`.
fn transit(repr: &Repr<'_>, ty: ExtensionType) -> Vec<IpAddr> {
    repr.find_extension(ty)
        .and_then(|e| e.cies())
        .map(|cies| cies.iter().filter_map(|c| c.proto.ip()).collect())
        .unwrap_or_default()
}

/// The captured resolution messages from `from` to `to`.
fn resolutions(sim: &Sim, from: IpAddr, to: IpAddr) -> Vec<Vec<u8>> {
    sim.captured
        .as_ref()
        .unwrap()
        .iter()
        .filter(|(f, t, bytes)| *f == from && *t == to && matches!(bytes[17], 1 | 2))
        .map(|(_, _, bytes)| bytes.clone())
        .collect()
}

/// `bytes` (an NHRP message) re-emitted with `hop_count` and, when given, the Forward
/// Transit NHS Record replaced by `forward`.
fn craft(bytes: &[u8], hop_count: u8, forward: Option<&[Cie<'_>]>) -> Vec<u8> {
    let repr = Repr::parse(&Packet::new_checked(bytes).unwrap()).unwrap();
    let exts: Vec<Extension<'_>> = repr
        .extensions
        .unwrap()
        .iter()
        .map(|ext| match (ext.body, forward) {
            (ExtensionBody::ForwardTransit(_), Some(cies)) => Extension {
                body: ExtensionBody::ForwardTransit(Seq::Items(cies)),
                ..ext
            },
            _ => ext,
        })
        .collect();
    let crafted = Repr {
        hop_count,
        extensions: Some(Seq::Items(&exts)),
        ..repr
    };
    let mut out = vec![0u8; crafted.buffer_len()];
    crafted.emit(&mut out).unwrap();
    out
}

/// Whether spoke A received an Error Indication with `code` from the regional hub.
fn error_at_a(sim: &Sim, code: ErrorCode) -> bool {
    sim.events.iter().any(|(_, node, e)| {
        *node == SPOKE_A
            && *e
                == Event::ErrorIndicationReceived {
                    from: seed::HUB_NBMA.into(),
                    code,
                }
    })
}

#[test]
fn resolutions_are_forwarded_up_and_down_the_hierarchy_and_answered_back() {
    let mut sim = hierarchy(51);
    let (hub_nbma, core_nbma, a_nbma) = (
        IpAddr::from(seed::HUB_NBMA),
        IpAddr::from(CORE_NBMA),
        IpAddr::from(seed::spoke_nbma(2)),
    );
    sim.command(SPOKE_A, |s, now| s.resolve(now, a("192.168.3.5")));
    sim.run_for(Duration::from_secs(1), check_holdtimes);

    // Spoke A holds a subnet shortcut straight to spoke B.
    let (prefix, e) = sim.nodes[SPOKE_A].engine.lookup(a("192.168.3.5")).unwrap();
    assert_eq!(prefix, seed::lan(3));
    assert_eq!(e.kind, EntryType::Shortcut);
    assert_eq!(e.tunnel, IpAddr::from(seed::spoke(3)));
    assert_eq!(e.nbma, IpAddr::from(seed::spoke_nbma(3)));

    // A -> regional: no transit yet, hop count 64.
    let hop1 = resolutions(&sim, a_nbma, hub_nbma);
    let r = Repr::parse(&Packet::new_checked(&hop1[0][..]).unwrap()).unwrap();
    assert!(matches!(r.message, Message::ResolutionRequest(_)));
    assert_eq!(r.hop_count, 64);
    assert!(transit(&r, ExtensionType::ForwardTransit).is_empty());
    // Regional -> core: the regional hub in the Forward Transit record, hop count 63.
    let hop2 = resolutions(&sim, hub_nbma, core_nbma);
    assert_eq!(hop2.len(), 1);
    let r = Repr::parse(&Packet::new_checked(&hop2[0][..]).unwrap()).unwrap();
    let Message::ResolutionRequest(req) = r.message else {
        panic!("not a request: {r:?}");
    };
    assert_eq!(req.src_proto.ip(), Some(seed::spoke(2).into()));
    assert_eq!(req.dst_proto.ip(), Some(a("192.168.3.5")));
    assert_eq!(r.hop_count, 63);
    assert_eq!(
        transit(&r, ExtensionType::ForwardTransit),
        [IpAddr::from(seed::HUB)]
    );
    let fwd = r.find_extension(ExtensionType::ForwardTransit).unwrap();
    let hub_cie = fwd.cies().unwrap().first().unwrap();
    assert_eq!(hub_cie.nbma.address.ip(), Some(hub_nbma));
    assert!(transit(&r, ExtensionType::ReverseTransit).is_empty());
    // Core -> regional: the answer, Forward Transit copied, Reverse Transit still empty.
    let hop3 = resolutions(&sim, core_nbma, hub_nbma);
    assert_eq!(hop3.len(), 1);
    let r = Repr::parse(&Packet::new_checked(&hop3[0][..]).unwrap()).unwrap();
    let Message::ResolutionReply(reply) = r.message else {
        panic!("not a reply: {r:?}");
    };
    assert_eq!(reply.cies.first().unwrap().code, CieCode::Success);
    assert_eq!(reply.cies.first().unwrap().prefix_len, 24);
    assert_eq!(r.hop_count, 64);
    assert_eq!(
        transit(&r, ExtensionType::ForwardTransit),
        [IpAddr::from(seed::HUB)]
    );
    assert!(transit(&r, ExtensionType::ReverseTransit).is_empty());
    assert_eq!(
        transit(&r, ExtensionType::ResponderAddress),
        [IpAddr::from(CORE)]
    );
    // Regional -> A: the regional hub in the Reverse Transit record, hop count 63.
    let hop4 = resolutions(&sim, hub_nbma, a_nbma);
    assert_eq!(hop4.len(), 1);
    let r = Repr::parse(&Packet::new_checked(&hop4[0][..]).unwrap()).unwrap();
    assert!(matches!(r.message, Message::ResolutionReply(_)));
    assert_eq!(r.hop_count, 63);
    assert_eq!(
        transit(&r, ExtensionType::ReverseTransit),
        [IpAddr::from(seed::HUB)]
    );
    assert_eq!(
        transit(&r, ExtensionType::ForwardTransit),
        [IpAddr::from(seed::HUB)]
    );

    // Nobody owns 192.168.99.1: the core's negative reply comes back the same way.
    sim.command(SPOKE_A, |s, now| s.resolve(now, a("192.168.99.1")));
    sim.run_for(Duration::from_secs(1), check_holdtimes);
    assert!(sim.events.iter().any(|(_, node, e)| *node == SPOKE_A
        && *e
            == Event::ResolutionFailed {
                target: a("192.168.99.1"),
                code: Some(CieCode::NoBindingExists),
            }));
    assert!(
        sim.nodes[SPOKE_A]
            .engine
            .lookup(a("192.168.99.1"))
            .is_none()
    );
    // The core answers for what is registered with it (the regional hub) itself.
    let forwarded = resolutions(&sim, core_nbma, hub_nbma).len();
    sim.command(SPOKE_B, |s, now| s.resolve(now, a("10.1.1.1")));
    sim.run_for(Duration::from_secs(1), check_holdtimes);
    assert_eq!(resolutions(&sim, core_nbma, hub_nbma).len(), forwarded);

    // The other way, down the core's route: B resolves A's LAN through the core and the
    // regional hub, which answers; the core is in both transit records B receives.
    let b_nbma = IpAddr::from(seed::spoke_nbma(3));
    sim.command(SPOKE_B, |s, now| s.resolve(now, a("192.168.2.7")));
    sim.run_for(Duration::from_secs(1), check_holdtimes);
    let (prefix, e) = sim.nodes[SPOKE_B].engine.lookup(a("192.168.2.7")).unwrap();
    assert_eq!((prefix, e.kind), (seed::lan(2), EntryType::Shortcut));
    assert_eq!(e.nbma, a_nbma);
    let down = resolutions(&sim, core_nbma, hub_nbma);
    let r = Repr::parse(&Packet::new_checked(&down.last().unwrap()[..]).unwrap()).unwrap();
    assert!(matches!(r.message, Message::ResolutionRequest(_)));
    assert_eq!(
        transit(&r, ExtensionType::ForwardTransit),
        [IpAddr::from(CORE)]
    );
    let back = resolutions(&sim, core_nbma, b_nbma);
    let r = Repr::parse(&Packet::new_checked(&back.last().unwrap()[..]).unwrap()).unwrap();
    assert!(matches!(r.message, Message::ResolutionReply(_)));
    assert_eq!(r.hop_count, 63);
    assert_eq!(
        transit(&r, ExtensionType::ReverseTransit),
        [IpAddr::from(CORE)]
    );
    assert_eq!(
        transit(&r, ExtensionType::ResponderAddress),
        [IpAddr::from(seed::HUB)]
    );

    common::assert_packets_clean("nhrp-forwarding", &sim.captured.take().unwrap());
}

#[test]
fn loops_hop_counts_and_unroutable_requests_get_error_indications() {
    let mut sim = hierarchy(52);
    let (hub_nbma, a_nbma) = (
        IpAddr::from(seed::HUB_NBMA),
        IpAddr::from(seed::spoke_nbma(2)),
    );
    sim.command(SPOKE_A, |s, now| s.resolve(now, a("192.168.3.5")));
    sim.run_for(Duration::from_secs(1), check_holdtimes);
    let request = resolutions(&sim, a_nbma, hub_nbma)[0].clone();
    let regional = sim.nodes[REGIONAL].engine.counters().clone();

    // The regional hub finds itself in the Forward Transit record: loop, code 3.
    let me = [Cie::host(hub_nbma, seed::HUB.into(), 0, 7200)];
    let looped = craft(&request, 64, Some(&me));
    sim.command(REGIONAL, |h, now| h.handle_packet(now, a_nbma, &looped));
    sim.run_for(Duration::from_secs(1), check_holdtimes);
    assert!(error_at_a(&sim, ErrorCode::LoopDetected));

    // Hop count 1 would reach 0 on the way to the core: code 15.
    let last_hop = craft(&request, 1, None);
    sim.command(REGIONAL, |h, now| h.handle_packet(now, a_nbma, &last_hop));
    sim.run_for(Duration::from_secs(1), check_holdtimes);
    assert!(error_at_a(&sim, ErrorCode::HopCountExceeded));

    // The core is already in the record: the regional hub has no other next hop, code 6.
    let core = [Cie::host(CORE_NBMA.into(), CORE.into(), 0, 7200)];
    let unroutable = craft(&request, 64, Some(&core));
    sim.command(REGIONAL, |h, now| h.handle_packet(now, a_nbma, &unroutable));
    sim.run_for(Duration::from_secs(1), check_holdtimes);
    assert!(error_at_a(&sim, ErrorCode::ProtocolAddressUnreachable));

    // None of them went further, and each is counted as a drop.
    let counters = sim.nodes[REGIONAL].engine.counters();
    assert_eq!(
        counters
            .sent
            .get(dmvpn_wire::nhrp::Operation::ResolutionRequest),
        regional
            .sent
            .get(dmvpn_wire::nhrp::Operation::ResolutionRequest)
    );
    for reason in [
        DropReason::LoopDetected,
        DropReason::HopCountExceeded,
        DropReason::ProtocolAddressUnreachable,
    ] {
        assert_eq!(
            counters.dropped(reason),
            regional.dropped(reason) + 1,
            "{reason:?}"
        );
    }
    // A reply that finds the regional hub in its Reverse Transit record is a loop too.
    let reply = resolutions(&sim, CORE_NBMA.into(), hub_nbma)[0].clone();
    let repr = Repr::parse(&Packet::new_checked(&reply[..]).unwrap()).unwrap();
    let exts: Vec<Extension<'_>> = repr
        .extensions
        .unwrap()
        .iter()
        .map(|ext| match ext.body {
            ExtensionBody::ReverseTransit(_) => Extension {
                body: ExtensionBody::ReverseTransit(Seq::Items(&me)),
                ..ext
            },
            _ => ext,
        })
        .collect();
    let looped_reply = Repr {
        extensions: Some(Seq::Items(&exts)),
        ..repr
    };
    let mut bytes = vec![0u8; looped_reply.buffer_len()];
    looped_reply.emit(&mut bytes).unwrap();
    sim.command(REGIONAL, |h, now| {
        h.handle_packet(now, CORE_NBMA.into(), &bytes)
    });
    sim.run_for(Duration::from_secs(1), check_holdtimes);
    assert!(sim.events.iter().any(|(_, node, e)| *node == CORE_HUB
        && *e
            == Event::ErrorIndicationReceived {
                from: hub_nbma,
                code: ErrorCode::LoopDetected,
            }));

    let mut captured = sim.captured.take().unwrap();
    // The crafted packets go through the checks with the rest.
    for bytes in [looped, last_hop, unroutable] {
        captured.push((a_nbma, hub_nbma, bytes));
    }
    common::assert_packets_clean("nhrp-forwarding-errors", &captured);
}
