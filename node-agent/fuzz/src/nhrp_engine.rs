//! The NHRP engine under hostile input: a hub and two spokes fed an `Arbitrary` sequence of
//! operations (packets they really exchange, delivered or mutated; messages built from
//! templates with fuzzer-chosen fields; raw bytes; time passing; commands) must never
//! panic, and after every step:
//! - every packet an engine sends parses with `dmvpn-wire` and emits back to the same bytes;
//! - every packet an engine receives is either taken in or dropped, and counted;
//! - the registrations and shortcuts a driver would hold from the cache events (the routes
//!   it installs and withdraws) are the engine's, with the same next hop and NBMA address;
//! - after `handle_timeout(now)`, no cache entry has expired and none expires later than
//!   `now` plus its holding time, and `poll_timeout` is after `now`.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use arbitrary::{Arbitrary, Unstructured};
use dmvpn_nhrp::{Config, Engine, EntryType, Event, NhsConfig, Password, Prefix, Role, SplitMix64};
use dmvpn_wire::Seq;
use dmvpn_wire::nhrp::{
    AddressFamily, Cie, CieCode, CommonHeader, ErrorCode, ErrorIndication, Extension,
    ExtensionBody, Message, NbmaAddress, PROTOCOL_IPV4, Packet, PurgeFlags, RegistrationFlags,
    Repr, ResolutionFlags, TrafficCode, TrafficIndication,
};

const PASSWORD: &[u8] = b"fuzz";
/// The most operations run from one input, so that each input runs quickly.
const MAX_OPS: usize = 512;
/// The most packets kept in flight; older ones are lost.
const IN_FLIGHT: usize = 64;
/// The NBMA addresses packets come from or name: the hub, the two spokes, a stranger, a
/// NAT address and one of the wrong family.
const NBMA: [IpAddr; 6] = [
    IpAddr::V4(Ipv4Addr::new(100, 64, 0, 1)),
    IpAddr::V4(Ipv4Addr::new(100, 64, 0, 2)),
    IpAddr::V4(Ipv4Addr::new(100, 64, 0, 3)),
    IpAddr::V4(Ipv4Addr::new(100, 64, 0, 9)),
    IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7)),
    IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
];
/// The protocol addresses messages name: the hub, the spokes, a stranger in the tunnel
/// subnet, a host in each spoke's LAN, one outside everything, 0.0.0.0 and one of the
/// wrong family.
const PROTO: [IpAddr; 9] = [
    IpAddr::V4(Ipv4Addr::new(10, 1, 0, 1)),
    IpAddr::V4(Ipv4Addr::new(10, 1, 0, 2)),
    IpAddr::V4(Ipv4Addr::new(10, 1, 0, 3)),
    IpAddr::V4(Ipv4Addr::new(10, 1, 0, 9)),
    IpAddr::V4(Ipv4Addr::new(10, 128, 2, 5)),
    IpAddr::V4(Ipv4Addr::new(10, 128, 3, 5)),
    IpAddr::V4(Ipv4Addr::new(10, 2, 0, 1)),
    IpAddr::V4(Ipv4Addr::UNSPECIFIED),
    IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1)),
];

/// How the engines are configured.
#[derive(Debug, Arbitrary)]
struct Setup {
    /// `ip nhrp holdtime`, at least 1 s.
    holdtime: u16,
    unique: bool,
    authentication: bool,
    /// Cache limit and per-peer quota, at least 1.
    cache_limit: u8,
    quota: u8,
}

/// One step.
#[derive(Debug, Arbitrary)]
enum Op {
    /// Delivers the packet in flight at this index to its destination, or from another NBMA
    /// address (as a NAT would), possibly mutated.
    Deliver {
        index: u8,
        nat: Option<u8>,
        mutation: Option<Mutation>,
    },
    /// Delivers everything in flight.
    Flush,
    /// A message built from a template.
    Template {
        node: u8,
        from: u8,
        message: Template,
        mutation: Option<Mutation>,
    },
    /// Raw bytes.
    Raw {
        node: u8,
        from: u8,
        bytes: Vec<u8>,
    },
    /// Time passes by this many milliseconds (up to about 18 hours), then every engine
    /// handles its timeouts.
    Wait {
        millis: u16,
        seconds: u16,
    },
    /// The hub forwarded data between two addresses.
    TrafficTo {
        src: u8,
        dst: u8,
    },
    Resolve {
        node: u8,
        addr: u8,
    },
    MarkUsed {
        node: u8,
        addr: u8,
    },
    SetNbmaAddress {
        node: u8,
        nbma: u8,
    },
    Shutdown {
        node: u8,
    },
    /// `clear ip nhrp`.
    ClearDynamic {
        node: u8,
    },
    Restart {
        node: u8,
    },
}

/// Bytes changed at (offset, value), then `ar$chksum` fixed or not.
#[derive(Debug, Arbitrary)]
struct Mutation {
    changes: Vec<(u16, u8)>,
    fix_checksum: bool,
}

/// The fields of a message the fuzzer chooses; addresses are indexes into [`NBMA`] and
/// [`PROTO`] (past the end: empty).
#[derive(Debug, Arbitrary)]
struct Template {
    kind: Kind,
    flags: u16,
    request_id: u32,
    hop_count: u8,
    src_nbma: u8,
    src_proto: u8,
    dst_proto: u8,
    cies: Vec<TemplateCie>,
    nat: Option<Vec<TemplateCie>>,
    auth: Auth,
    packet: [u8; 4],
}

#[derive(Debug, Arbitrary)]
enum Kind {
    ResolutionRequest,
    ResolutionReply,
    RegistrationRequest,
    RegistrationReply,
    PurgeRequest,
    PurgeReply,
    ErrorIndication,
    TrafficIndication,
}

#[derive(Debug, Arbitrary)]
struct TemplateCie {
    code: u8,
    prefix_len: u8,
    holding_time: u16,
    nbma: u8,
    proto: u8,
}

#[derive(Debug, Arbitrary)]
enum Auth {
    Right,
    Wrong,
    Missing,
}

struct Node {
    config: Config,
    engine: Engine,
    seed: u64,
    /// The dynamic entries as the events told them: prefix → (next hop, NBMA address).
    routes: BTreeMap<Prefix, (IpAddr, IpAddr)>,
}

struct Net {
    nodes: Vec<Node>,
    /// (from, to, payload) of the packets sent and not yet delivered.
    in_flight: Vec<(IpAddr, IpAddr, Vec<u8>)>,
    now: Instant,
}

/// The fuzz check: decodes a setup and operations from `data` and runs them.
///
/// # Panics
/// When an engine panics or breaks one of the invariants above: that is the finding.
pub fn check(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(setup) = Setup::arbitrary(&mut u) else {
        return;
    };
    let now = Instant::now();
    let mut net = Net {
        nodes: (0..3u8).map(|k| node(&setup, k, now)).collect(),
        in_flight: Vec::new(),
        now,
    };
    net.drain();
    // Once the input is used up, `arbitrary` would make zeros forever.
    for _ in 0..MAX_OPS {
        if u.is_empty() {
            break;
        }
        let Ok(op) = Op::arbitrary(&mut u) else {
            break;
        };
        net.step(op);
        net.drain();
    }
}

fn node(setup: &Setup, k: u8, now: Instant) -> Node {
    let role = if k == 0 { Role::Hub } else { Role::Spoke };
    let mut config = Config::new(role, PROTO[usize::from(k)], 16, NBMA[usize::from(k)]);
    config.holdtime = setup.holdtime.max(1);
    config.unique = setup.unique;
    if setup.authentication {
        config.password = Password::new(PASSWORD).ok();
    }
    config.cache_limit = usize::from(setup.cache_limit.max(1));
    config.max_registrations_per_peer = usize::from(setup.quota.max(1));
    config.redirect = true;
    config.shortcut = true;
    if k > 0 {
        config.nhs.push(NhsConfig {
            tunnel: PROTO[0],
            nbma: NBMA[0],
            priority: 0,
        });
        let lan = Ipv4Addr::new(10, 128, k + 1, 0);
        config
            .advertised_prefixes
            .extend(Prefix::new(lan.into(), 24).ok());
    }
    let seed = u64::from(k) + 1;
    let engine = Engine::new(config.clone(), Box::new(SplitMix64(seed)), now)
        .expect("the fuzz configuration is valid");
    Node {
        config,
        engine,
        seed,
        routes: BTreeMap::new(),
    }
}

fn pick<T: Copy>(list: &[T], i: u8) -> T {
    list[usize::from(i) % list.len()]
}

impl Net {
    fn step(&mut self, op: Op) {
        let now = self.now;
        match op {
            Op::Deliver {
                index,
                nat,
                mutation,
            } => {
                if self.in_flight.is_empty() {
                    return;
                }
                let i = usize::from(index) % self.in_flight.len();
                let (from, to, mut bytes) = self.in_flight.remove(i);
                let from = nat.map_or(from, |n| pick(&NBMA, n));
                if let Some(m) = mutation {
                    mutate(&mut bytes, &m);
                }
                self.deliver(from, to, &bytes);
            }
            Op::Flush => {
                for (from, to, bytes) in std::mem::take(&mut self.in_flight) {
                    self.deliver(from, to, &bytes);
                }
            }
            Op::Template {
                node,
                from,
                message,
                mutation,
            } => {
                let mut bytes = template(&message);
                if let Some(m) = mutation {
                    mutate(&mut bytes, &m);
                }
                let to = self.index(node);
                self.receive(to, pick(&NBMA, from), &bytes);
            }
            Op::Raw { node, from, bytes } => {
                let to = self.index(node);
                self.receive(to, pick(&NBMA, from), &bytes);
            }
            Op::Wait { millis, seconds } => {
                self.now += Duration::from_millis(u64::from(millis))
                    + Duration::from_secs(u64::from(seconds));
                for n in &mut self.nodes {
                    n.engine.handle_timeout(self.now);
                    check_timers(&n.engine, self.now);
                }
            }
            Op::TrafficTo { src, dst } => {
                self.nodes[0]
                    .engine
                    .traffic_to(now, pick(&PROTO, src), pick(&PROTO, dst));
            }
            Op::Resolve { node, addr } => {
                let i = self.index(node);
                self.nodes[i].engine.resolve(now, pick(&PROTO, addr));
            }
            Op::MarkUsed { node, addr } => {
                let i = self.index(node);
                self.nodes[i].engine.mark_used(pick(&PROTO, addr));
            }
            Op::SetNbmaAddress { node, nbma } => {
                let i = self.index(node);
                let nbma = pick(&NBMA, nbma);
                self.nodes[i].engine.set_nbma_address(now, nbma);
            }
            Op::Shutdown { node } => {
                let i = self.index(node);
                self.nodes[i].engine.shutdown(now);
            }
            Op::ClearDynamic { node } => {
                let i = self.index(node);
                self.nodes[i].engine.clear_dynamic(now);
            }
            Op::Restart { node } => {
                let i = self.index(node);
                let n = &mut self.nodes[i];
                n.seed += 3;
                let mut config = n.config.clone();
                config.nbma_address = n.engine.config().nbma_address;
                n.engine = Engine::new(config, Box::new(SplitMix64(n.seed)), now)
                    .expect("the fuzz configuration is valid");
                n.routes.clear();
            }
        }
    }

    fn index(&self, node: u8) -> usize {
        usize::from(node) % self.nodes.len()
    }

    /// Delivers `bytes` sent to the NBMA address `to` to the engine that has it, if any.
    fn deliver(&mut self, from: IpAddr, to: IpAddr, bytes: &[u8]) {
        if let Some(i) = self
            .nodes
            .iter()
            .position(|n| n.engine.config().nbma_address == to)
        {
            self.receive(i, from, bytes);
        }
    }

    fn receive(&mut self, i: usize, from: IpAddr, bytes: &[u8]) {
        let e = &mut self.nodes[i].engine;
        let seen = |e: &Engine| e.counters().received.total() + e.counters().dropped_total();
        let before = seen(e);
        e.handle_packet(self.now, from, bytes);
        assert!(
            seen(e) > before,
            "a packet was neither taken in nor dropped"
        );
    }

    /// Drains every engine's transmits (checking each) and events.
    fn drain(&mut self) {
        for n in &mut self.nodes {
            let from = n.engine.config().nbma_address;
            while let Some(t) = n.engine.poll_transmit() {
                check_emitted(&t.payload);
                if self.in_flight.len() == IN_FLIGHT {
                    self.in_flight.remove(0);
                }
                self.in_flight.push((from, t.dst, t.payload));
            }
            while let Some(event) = n.engine.poll_event() {
                match event {
                    Event::CacheAdded { prefix, entry } | Event::CacheUpdated { prefix, entry } => {
                        n.routes.insert(prefix, (entry.tunnel, entry.nbma));
                    }
                    Event::CacheRemoved { prefix, .. } => {
                        n.routes.remove(&prefix);
                    }
                    _ => {}
                }
            }
            check_routes(n);
        }
    }
}

/// An emitted packet parses, and emits back to the same bytes.
fn check_emitted(payload: &[u8]) {
    let packet = Packet::new_checked(payload).expect("emitted fixed header checks");
    let repr = Repr::parse(&packet).expect("emitted packet parses");
    assert_eq!(repr.buffer_len(), payload.len(), "emitted ar$pktsz");
    let mut again = vec![0u8; payload.len()];
    repr.emit(&mut again).expect("a parsed packet emits");
    assert_eq!(again, payload, "emitted packet does not round-trip");
}

/// The dynamic entries are those the events announced, and no other.
fn check_routes(n: &Node) {
    let dynamic: BTreeMap<Prefix, (IpAddr, IpAddr)> = n
        .engine
        .cache()
        .iter()
        .filter(|(_, e)| matches!(e.kind, EntryType::Registered | EntryType::Shortcut))
        .map(|(p, e)| (*p, (e.tunnel, e.nbma)))
        .collect();
    assert_eq!(dynamic, n.routes, "the cache events do not tell the cache");
}

/// After `handle_timeout(now)`: no entry is past its expiry or expires later than its
/// holding time from now, and the next timeout is in the future.
fn check_timers(e: &Engine, now: Instant) {
    for (prefix, entry) in e.cache().iter() {
        if let Some(at) = entry.expires {
            assert!(at > now, "{prefix} outlived its expiry");
            assert!(
                at - now <= Duration::from_secs(u64::from(entry.holdtime)),
                "{prefix} expires later than its holdtime"
            );
        }
    }
    if let Some(at) = e.poll_timeout() {
        assert!(at > now, "poll_timeout is not after handle_timeout's now");
    }
}

fn mutate(bytes: &mut [u8], m: &Mutation) {
    if bytes.is_empty() {
        return;
    }
    for &(at, value) in &m.changes {
        let at = usize::from(at) % bytes.len();
        bytes[at] = value;
    }
    if m.fix_checksum
        && let Ok(mut p) = Packet::new_checked(&mut bytes[..])
    {
        p.fill_checksum();
    }
}

fn nbma(i: u8) -> NbmaAddress<'static> {
    NBMA.get(usize::from(i))
        .map_or(NbmaAddress::NONE, |a| NbmaAddress::from(*a))
}

fn proto(i: u8) -> dmvpn_wire::nhrp::Address<'static> {
    PROTO
        .get(usize::from(i))
        .map_or(dmvpn_wire::nhrp::Address::Empty, |a| (*a).into())
}

fn cie(c: &TemplateCie) -> Cie<'static> {
    Cie {
        code: CieCode::from(c.code),
        prefix_len: c.prefix_len,
        mtu: 0,
        holding_time: c.holding_time,
        nbma: nbma(c.nbma),
        nbma_sub: NbmaAddress::NONE,
        proto: proto(c.proto),
        preference: 0,
    }
}

/// The common header `t` describes, with `cies`.
fn common<'a, F>(t: &Template, flags: F, cies: &'a [Cie<'a>]) -> CommonHeader<'a, F> {
    CommonHeader {
        flags,
        request_id: t.request_id,
        src_nbma: nbma(t.src_nbma),
        src_nbma_sub: NbmaAddress::NONE,
        src_proto: proto(t.src_proto),
        dst_proto: proto(t.dst_proto),
        cies: Seq::Items(cies),
    }
}

/// Emits the message `t` describes, with the extensions nhrpd sends.
fn template(t: &Template) -> Vec<u8> {
    let cies: Vec<Cie<'_>> = t.cies.iter().take(4).map(cie).collect();
    let nat: Vec<Cie<'_>> = t.nat.iter().flatten().take(3).map(cie).collect();
    let mut exts = vec![
        Extension::new(ExtensionBody::ForwardTransit(Seq::empty())),
        Extension::new(ExtensionBody::ReverseTransit(Seq::empty())),
        Extension::new(ExtensionBody::ResponderAddress(Seq::empty())),
    ];
    if t.nat.is_some() {
        exts.push(Extension::new(ExtensionBody::NatAddress(Seq::Items(&nat))));
    }
    match t.auth {
        Auth::Right => exts.push(Extension::cleartext_password(PASSWORD)),
        Auth::Wrong => exts.push(Extension::cleartext_password(b"wrong")),
        Auth::Missing => {}
    }
    let ip = [
        0x45,
        0,
        0,
        20,
        0,
        0,
        0,
        0,
        64,
        0xfd,
        0,
        0,
        10,
        128,
        2,
        5,
        t.packet[0],
        t.packet[1],
        t.packet[2],
        t.packet[3],
    ];
    let message = match t.kind {
        Kind::ResolutionRequest => {
            Message::ResolutionRequest(common(t, ResolutionFlags(t.flags), &cies))
        }
        Kind::ResolutionReply => {
            Message::ResolutionReply(common(t, ResolutionFlags(t.flags), &cies))
        }
        Kind::RegistrationRequest => {
            Message::RegistrationRequest(common(t, RegistrationFlags(t.flags), &cies))
        }
        Kind::RegistrationReply => {
            Message::RegistrationReply(common(t, RegistrationFlags(t.flags), &cies))
        }
        Kind::PurgeRequest => Message::PurgeRequest(common(t, PurgeFlags(t.flags), &cies)),
        Kind::PurgeReply => Message::PurgeReply(common(t, PurgeFlags(t.flags), &cies)),
        Kind::ErrorIndication => Message::ErrorIndication(ErrorIndication {
            unused: t.flags,
            code: ErrorCode::from(u16::from(t.packet[0])),
            offset: 0,
            src_nbma: nbma(t.src_nbma),
            src_nbma_sub: NbmaAddress::NONE,
            src_proto: proto(t.src_proto),
            dst_proto: proto(t.dst_proto),
            packet: &ip,
        }),
        Kind::TrafficIndication => Message::TrafficIndication(TrafficIndication {
            code: TrafficCode::from(t.flags),
            src_nbma: nbma(t.src_nbma),
            src_nbma_sub: NbmaAddress::NONE,
            src_proto: proto(t.src_proto),
            dst_proto: proto(t.dst_proto),
            packet: &ip,
        }),
    };
    let repr = Repr {
        afn: AddressFamily::Ipv4,
        protocol_type: PROTOCOL_IPV4,
        protocol_snap: [0; 5],
        hop_count: t.hop_count,
        message,
        extensions: Some(Seq::Items(&exts)),
    };
    let mut buf = vec![0u8; repr.buffer_len()];
    match repr.emit(&mut buf) {
        Ok(_) => buf,
        Err(_) => Vec::new(),
    }
}
