//! What an NHS does to the packets it relays between NHSs, in simulation: Error
//! Indications about a relayed resolution request routed back to the request's source
//! (RFC 2332 section 5.2.7), and the Cisco NAT address extension of a request filled on the
//! way (FRR nhrpd `nhrp_peer_forward`, ../shared/research/anchors.md section 2.3). The
//! topology is a two-level DMVPN with a NAT between spoke A and its hub: a regional hub
//! whose own NHS is the core hub, spoke A (private NBMA 172.16.0.2, seen as 198.18.0.2)
//! registered with the regional hub, spoke B with the core hub; the core routes spoke A's
//! LAN to the regional hub.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod sim;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use dmvpn_nhrp::{DropReason, ERROR_INDICATIONS_PER_SECOND, EntryType, Event, NhsConfig, Route};
use dmvpn_wire::Seq;
use dmvpn_wire::nhrp::{
    Cie, ErrorCode, Extension, ExtensionBody, ExtensionType, Message, Operation, Packet, Repr,
};
use sim::{Impairments, Sim, check_holdtimes, seed};

const PASSWORD: &[u8] = b"s3cr3t";
const CORE: Ipv4Addr = Ipv4Addr::new(10, 1, 1, 254);
const CORE_NBMA: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 254);
/// Spoke A's own NBMA address, behind the NAT.
const A_PRIVATE: Ipv4Addr = Ipv4Addr::new(172, 16, 0, 2);
const REGIONAL: usize = 0;
const CORE_HUB: usize = 1;
const SPOKE_A: usize = 2;
const SPOKE_B: usize = 3;

fn a(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// The topology of the module documentation, all registered, capturing packets.
fn natted_hierarchy(seed_value: u64) -> Sim {
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
        seed::spoke_config(2, A_PRIVATE, Some(PASSWORD)),
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
        |s| s.nhs_up == 3 && registered(s, CORE_HUB) == 3 && registered(s, REGIONAL) == 2,
        check_holdtimes
    ));
    // The regional hub saw spoke A behind the NAT.
    let (_, e) = sim.nodes[REGIONAL]
        .engine
        .lookup(seed::spoke(2).into())
        .unwrap();
    assert_eq!(
        (e.nbma, e.claimed_nbma),
        (seed::spoke_nbma(2).into(), A_PRIVATE.into())
    );
    sim
}

/// The captured messages of operation `op` from `from` to `to`.
fn captured(sim: &Sim, op: Operation, from: IpAddr, to: IpAddr) -> Vec<Vec<u8>> {
    sim.captured
        .as_ref()
        .unwrap()
        .iter()
        .filter(|(f, t, bytes)| *f == from && *t == to && bytes[17] == u8::from(op))
        .map(|(_, _, bytes)| bytes.clone())
        .collect()
}

fn parse(bytes: &[u8]) -> Repr<'_> {
    Repr::parse(&Packet::new_checked(bytes).unwrap()).unwrap()
}

/// The (NBMA, protocol) addresses of the CIEs of the NAT address extension of `repr`.
fn nat_cies(repr: &Repr<'_>) -> Vec<(IpAddr, IpAddr)> {
    repr.find_extension(ExtensionType::NatAddress)
        .expect("a NAT address extension")
        .cies()
        .unwrap()
        .iter()
        .map(|c| (c.nbma.address.ip().unwrap(), c.proto.ip().unwrap()))
        .collect()
}

/// `bytes` (an NHRP message) re-emitted with `hop_count`, its Forward Transit NHS Record
/// replaced by `forward` when given and its NAT address extension emptied when `empty_nat`.
fn craft(bytes: &[u8], hop_count: u8, forward: Option<&[Cie<'_>]>, empty_nat: bool) -> Vec<u8> {
    let repr = parse(bytes);
    let exts: Vec<Extension<'_>> = repr
        .extensions
        .map(|exts| {
            exts.iter()
                .map(|ext| match (ext.body, forward) {
                    (ExtensionBody::ForwardTransit(_), Some(cies)) => Extension {
                        body: ExtensionBody::ForwardTransit(Seq::Items(cies)),
                        ..ext
                    },
                    (ExtensionBody::NatAddress(_), _) if empty_nat => Extension {
                        body: ExtensionBody::NatAddress(Seq::empty()),
                        ..ext
                    },
                    _ => ext,
                })
                .collect()
        })
        .unwrap_or_default();
    let crafted = Repr {
        hop_count,
        extensions: repr.extensions.map(|_| Seq::Items(&exts[..])),
        ..repr
    };
    let mut out = vec![0u8; crafted.buffer_len()];
    crafted.emit(&mut out).unwrap();
    out
}

/// The Error Indications node `node` received, with their outer source.
fn errors_at(sim: &Sim, node: usize) -> Vec<(IpAddr, ErrorCode)> {
    sim.events
        .iter()
        .filter(|(_, n, _)| *n == node)
        .filter_map(|(_, _, e)| match e {
            Event::ErrorIndicationReceived { from, code } => Some((*from, *code)),
            _ => None,
        })
        .collect()
}

#[test]
fn an_error_about_a_relayed_request_is_routed_back_to_its_source() {
    let mut sim = natted_hierarchy(61);
    let (hub_nbma, core_nbma, a_public) = (
        IpAddr::from(seed::HUB_NBMA),
        IpAddr::from(CORE_NBMA),
        IpAddr::from(seed::spoke_nbma(2)),
    );
    sim.command(SPOKE_A, |s, now| s.resolve(now, a("192.168.3.5")));
    sim.run_for(Duration::from_secs(1), check_holdtimes);
    let relayed = captured(&sim, Operation::ResolutionRequest, hub_nbma, core_nbma)[0].clone();

    // The request comes back to the core with the core already in its Forward Transit NHS
    // Record: a loop the core reports to the request's source, spoke A, through the
    // regional hub it came from.
    let transit = [
        Cie::host(hub_nbma, seed::HUB.into(), 0, 7200),
        Cie::host(core_nbma, CORE.into(), 0, 7200),
    ];
    let looped = craft(&relayed, 62, Some(&transit), false);
    let regional_before = sim.nodes[REGIONAL].engine.counters().clone();
    sim.command(CORE_HUB, |h, now| h.handle_packet(now, hub_nbma, &looped));
    sim.run_for(Duration::from_secs(1), check_holdtimes);

    let first = captured(&sim, Operation::ErrorIndication, core_nbma, hub_nbma);
    assert_eq!(first.len(), 1);
    let r = parse(&first[0]);
    let Message::ErrorIndication(ind) = r.message else {
        panic!("not an error indication: {r:?}");
    };
    assert_eq!(ind.code, ErrorCode::LoopDetected);
    assert_eq!(ind.src_proto.ip(), Some(CORE.into()));
    assert_eq!(ind.dst_proto.ip(), Some(seed::spoke(2).into()));
    assert_eq!(ind.packet, &looped[..]);
    assert_eq!(r.hop_count, 64);
    // The regional hub relays it, hop count decremented, to where it saw spoke A (past
    // the NAT), and does not consume it.
    let second = captured(&sim, Operation::ErrorIndication, hub_nbma, a_public);
    assert_eq!(second.len(), 1);
    let r2 = parse(&second[0]);
    assert_eq!(r2.hop_count, 63);
    assert_eq!(r2.message, r.message);
    assert!(errors_at(&sim, REGIONAL).is_empty());
    assert_eq!(
        errors_at(&sim, SPOKE_A),
        [(hub_nbma, ErrorCode::LoopDetected)]
    );
    let counters = sim.nodes[REGIONAL].engine.counters();
    assert_eq!(
        counters.sent.get(Operation::ErrorIndication),
        regional_before.sent.get(Operation::ErrorIndication) + 1
    );
    assert_eq!(
        counters.received.get(Operation::ErrorIndication),
        regional_before.received.get(Operation::ErrorIndication) + 1
    );

    // An Error Indication whose hop count runs out is dropped, not answered.
    let spent = craft(&first[0], 1, None, false);
    sim.command(REGIONAL, |h, now| h.handle_packet(now, core_nbma, &spent));
    sim.run_for(Duration::from_secs(1), check_holdtimes);
    assert_eq!(
        captured(&sim, Operation::ErrorIndication, hub_nbma, a_public).len(),
        1
    );
    assert!(captured(&sim, Operation::ErrorIndication, hub_nbma, core_nbma).is_empty());
    assert_eq!(
        sim.nodes[REGIONAL]
            .engine
            .counters()
            .dropped(DropReason::HopCountExceeded),
        regional_before.dropped(DropReason::HopCountExceeded) + 1
    );

    // One sent with hop count 0 (nhrpd's, straight to its destination) is consumed where
    // it arrives.
    let direct = craft(&first[0], 0, None, false);
    sim.command(REGIONAL, |h, now| h.handle_packet(now, core_nbma, &direct));
    sim.run_for(Duration::from_secs(1), check_holdtimes);
    assert_eq!(
        errors_at(&sim, REGIONAL),
        [(core_nbma, ErrorCode::LoopDetected)]
    );

    // Relaying shares the rate limit of the Error Indications the hub sends itself.
    let sent = sim.nodes[REGIONAL]
        .engine
        .counters()
        .sent
        .get(Operation::ErrorIndication);
    let suppressed = sim.nodes[REGIONAL]
        .engine
        .counters()
        .error_indications_suppressed;
    let burst = ERROR_INDICATIONS_PER_SECOND as usize + 5;
    sim.command(REGIONAL, |h, now| {
        for _ in 0..burst {
            h.handle_packet(now, core_nbma, &first[0]);
        }
    });
    let counters = sim.nodes[REGIONAL].engine.counters();
    assert_eq!(
        counters.sent.get(Operation::ErrorIndication),
        sent + u64::from(ERROR_INDICATIONS_PER_SECOND)
    );
    assert_eq!(counters.error_indications_suppressed, suppressed + 5);

    let mut packets = sim.captured.take().unwrap();
    for bytes in [looped, spent, direct] {
        packets.push((hub_nbma, core_nbma, bytes));
    }
    common::assert_packets_clean("nhrp-transit-errors", &packets);
}

#[test]
fn an_error_about_a_request_from_its_source_goes_straight_back() {
    let mut sim = natted_hierarchy(62);
    let (hub_nbma, a_public) = (
        IpAddr::from(seed::HUB_NBMA),
        IpAddr::from(seed::spoke_nbma(2)),
    );
    sim.command(SPOKE_A, |s, now| s.resolve(now, a("192.168.3.5")));
    let request = captured(&sim, Operation::ResolutionRequest, a_public, hub_nbma)[0].clone();
    // While the request travels, a copy with hop count 1 reaches the regional hub: it would
    // reach 0 on the way to the core, code 15, to spoke A directly with hop count 0 as
    // nhrpd sends it.
    let last_hop = craft(&request, 1, None, false);
    sim.command(REGIONAL, |h, now| h.handle_packet(now, a_public, &last_hop));
    sim.run_for(Duration::from_secs(1), check_holdtimes);
    let errors = captured(&sim, Operation::ErrorIndication, hub_nbma, a_public);
    assert_eq!(errors.len(), 1);
    let r = parse(&errors[0]);
    assert_eq!(r.hop_count, 0);
    assert_eq!(
        errors_at(&sim, SPOKE_A),
        [(hub_nbma, ErrorCode::HopCountExceeded)]
    );
    // The error ends spoke A's resolution (as nhrpd's request callback does): the answer
    // to the original request finds nothing waiting for it, and no shortcut appears.
    assert!(sim.events.iter().any(|(_, n, e)| *n == SPOKE_A
        && *e
            == Event::ResolutionFailed {
                target: a("192.168.3.5"),
                code: None,
            }));
    let a_engine = &sim.nodes[SPOKE_A].engine;
    assert_eq!(a_engine.counters().dropped(DropReason::UnknownRequestId), 1);
    assert!(
        a_engine
            .lookup(a("192.168.3.5"))
            .is_none_or(|(_, e)| e.kind != EntryType::Shortcut)
    );

    // The same error from anyone but the NHS asked ends nothing.
    sim.command(SPOKE_A, |s, now| s.resolve(now, a("192.168.3.6")));
    let again = captured(&sim, Operation::ResolutionRequest, a_public, hub_nbma);
    let spoofed = craft(&errors[0], 0, None, false);
    let mut spoofed_repr = parse(&spoofed);
    let Message::ErrorIndication(mut ind) = spoofed_repr.message else {
        panic!("not an error indication");
    };
    ind.packet = again.last().unwrap();
    spoofed_repr.message = Message::ErrorIndication(ind);
    let mut spoofed = vec![0u8; spoofed_repr.buffer_len()];
    spoofed_repr.emit(&mut spoofed).unwrap();
    let b_nbma = IpAddr::from(seed::spoke_nbma(3));
    sim.command(SPOKE_A, |s, now| s.handle_packet(now, b_nbma, &spoofed));
    sim.run_for(Duration::from_secs(1), check_holdtimes);
    let (prefix, e) = sim.nodes[SPOKE_A].engine.lookup(a("192.168.3.6")).unwrap();
    assert_eq!((prefix, e.kind), (seed::lan(3), EntryType::Shortcut));

    let mut packets = sim.captured.take().unwrap();
    packets.push((a_public, hub_nbma, last_hop));
    packets.push((b_nbma, a_public, spoofed));
    common::assert_packets_clean("nhrp-transit-direct-error", &packets);
}

#[test]
fn a_transit_nhs_fills_an_empty_nat_extension_with_the_address_it_saw() {
    let mut sim = natted_hierarchy(63);
    let (hub_nbma, core_nbma, a_public, b_nbma) = (
        IpAddr::from(seed::HUB_NBMA),
        IpAddr::from(CORE_NBMA),
        IpAddr::from(seed::spoke_nbma(2)),
        IpAddr::from(seed::spoke_nbma(3)),
    );
    let a_tunnel = IpAddr::from(seed::spoke(2));
    sim.command(SPOKE_A, |s, now| s.resolve(now, a("192.168.3.5")));
    sim.run_for(Duration::from_secs(1), check_holdtimes);
    // Spoke A knows it is behind NAT (from its registration reply) and says so itself; the
    // regional hub passes that on untouched.
    let own = captured(&sim, Operation::ResolutionRequest, a_public, hub_nbma)[0].clone();
    assert_eq!(nat_cies(&parse(&own)), [(a_public, a_tunnel)]);
    let relayed = captured(&sim, Operation::ResolutionRequest, hub_nbma, core_nbma);
    assert_eq!(nat_cies(&parse(&relayed[0])), [(a_public, a_tunnel)]);

    // A requester that does not know (its NAT extension empty, as a spoke sends it before
    // its first registration reply): the regional hub fills in the address it saw.
    let empty = craft(&own, 64, None, true);
    assert!(nat_cies(&parse(&empty)).is_empty());
    sim.command(REGIONAL, |h, now| h.handle_packet(now, a_public, &empty));
    sim.run_for(Duration::from_secs(1), check_holdtimes);
    let relayed = captured(&sim, Operation::ResolutionRequest, hub_nbma, core_nbma);
    assert_eq!(relayed.len(), 2);
    let r = parse(&relayed[1]);
    assert_eq!(nat_cies(&r), [(a_public, a_tunnel)]);
    let nat = r.find_extension(ExtensionType::NatAddress).unwrap();
    let cie = nat.cies().unwrap().first().unwrap();
    assert_eq!((cie.prefix_len, cie.holding_time), (32, 0));

    // A requester not behind NAT keeps an empty extension: spoke B resolving A's LAN
    // through the core and the regional hub.
    sim.command(SPOKE_B, |s, now| s.resolve(now, a("192.168.2.7")));
    sim.run_for(Duration::from_secs(1), check_holdtimes);
    let b_req = captured(&sim, Operation::ResolutionRequest, b_nbma, core_nbma);
    assert!(nat_cies(&parse(&b_req[0])).is_empty());
    let down = captured(&sim, Operation::ResolutionRequest, core_nbma, hub_nbma);
    assert_eq!(down.len(), 1);
    assert!(nat_cies(&parse(&down[0])).is_empty());
    // B's shortcut to A's LAN goes to A's address past the NAT.
    let (prefix, e) = sim.nodes[SPOKE_B].engine.lookup(a("192.168.2.7")).unwrap();
    assert_eq!((prefix, e.kind), (seed::lan(2), EntryType::Shortcut));
    assert_eq!((e.nbma, e.claimed_nbma), (a_public, A_PRIVATE.into()));

    let mut packets = sim.captured.take().unwrap();
    packets.push((a_public, hub_nbma, empty));
    common::assert_packets_clean("nhrp-transit-nat", &packets);
}
