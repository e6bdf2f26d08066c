//! A deterministic in-memory network for IKE engines: a virtual clock, seeded loss,
//! duplication and reordering, an optional NAT in front of a node, and a check that every
//! IKE message emitted parses with `dmvpn-wire`'s codec.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dmvpn_esp::sa::{NEXT_HEADER_GRE, PAYLOAD_OFFSET};
use dmvpn_esp::{InboundSa, OutboundSa, SaConfig};
use dmvpn_ike::{ChildSaUp, Config, Engine, Event, PskAuthenticator, SeededRandom};
use dmvpn_wire::ikev2::{Packet, Repr};
use dmvpn_wire::udp_encap::Datagram;

pub const HUB: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1));
pub const SPOKE: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 2));
pub const NAT_PUBLIC: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 19, 7, 7));

pub fn spoke_addr(i: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(u32::from(Ipv4Addr::new(198, 18, 16, 0)) + i))
}

pub fn config(local: IpAddr, psk: &[u8]) -> Config {
    let mut c = Config::new(local, Arc::new(PskAuthenticator::new(psk)));
    c.key_log = true;
    c
}

/// Decides to lose a datagram.
pub type Filter = Box<dyn FnMut(&Wire) -> bool>;

/// A datagram as it crossed the wire.
#[derive(Debug, Clone)]
pub struct Wire {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub payload: Vec<u8>,
}

pub struct Node {
    pub engine: Engine,
    pub addr: IpAddr,
    pub events: Vec<Event>,
    /// Drop everything to and from this node.
    pub dead: bool,
}

struct InFlight {
    at: Instant,
    seq: u64,
    wire: Wire,
}

/// The network.
pub struct Net {
    pub nodes: Vec<Node>,
    pub t0: Instant,
    pub now: Instant,
    flights: Vec<InFlight>,
    seq: u64,
    rng: SeededRandom,
    pub latency: Duration,
    /// Probability (per mille) of loss, duplication, and extra delay up to 3x latency.
    pub loss: u64,
    pub dup: u64,
    pub reorder: u64,
    /// Node index behind a NAT with public address NAT_PUBLIC.
    pub natted: Option<usize>,
    /// Every datagram delivered (after NAT), in order.
    pub trace: Vec<Wire>,
    /// Drop the datagram if this returns true (for targeted loss).
    pub filter: Option<Filter>,
}

impl Net {
    pub fn new(seed: u64) -> Self {
        let t0 = Instant::now();
        Net {
            nodes: Vec::new(),
            t0,
            now: t0,
            flights: Vec::new(),
            seq: 0,
            rng: SeededRandom(seed),
            latency: Duration::from_millis(10),
            loss: 0,
            dup: 0,
            reorder: 0,
            natted: None,
            trace: Vec::new(),
            filter: None,
        }
    }

    pub fn add(&mut self, config: Config, seed: u64) -> usize {
        let addr = config.local_addr;
        let engine = Engine::new(config, Box::new(SeededRandom(seed)), self.now).unwrap();
        self.nodes.push(Node {
            engine,
            addr,
            events: Vec::new(),
            dead: false,
        });
        self.nodes.len() - 1
    }

    /// A hub and a spoke with default configurations and PSK "secret".
    pub fn pair(seed: u64) -> Self {
        Self::pair_with(seed, config(HUB, b"secret"), config(SPOKE, b"secret"))
    }

    pub fn pair_with(seed: u64, hub: Config, spoke: Config) -> Self {
        let mut n = Net::new(seed);
        n.add(hub, seed.wrapping_mul(3) + 1);
        n.add(spoke, seed.wrapping_mul(7) + 2);
        n
    }

    fn chance(&mut self, per_mille: u64) -> bool {
        per_mille > 0 && self.rng.next_u64() % 1000 < per_mille
    }

    /// Checks that an emitted datagram is well formed: a keepalive, or an IKE message the
    /// codec parses (after the non-ESP marker on port 4500).
    fn check(t: &dmvpn_ike::Transmit) {
        let msg = if t.local.port() == 4500 {
            match Datagram::parse(&t.payload).expect("4500 datagram") {
                Datagram::Keepalive => return,
                Datagram::Ike(m) => m,
                Datagram::Esp(_) => panic!("the engine sent ESP"),
            }
        } else {
            &t.payload[..]
        };
        let p = Packet::new_checked(msg).expect("IKE header");
        Repr::parse(&p).expect("IKE payloads");
        assert_eq!(p.length() as usize, msg.len());
    }

    fn collect(&mut self) {
        for i in 0..self.nodes.len() {
            while let Some(t) = self.nodes[i].engine.poll_transmit() {
                Self::check(&t);
                let mut src = t.local;
                if Some(i) == self.natted {
                    src = SocketAddr::new(NAT_PUBLIC, t.local.port() + 20000);
                }
                let wire = Wire {
                    src,
                    dst: t.remote,
                    payload: t.payload,
                };
                if self.nodes[i].dead || self.filter.as_mut().is_some_and(|f| f(&wire)) {
                    continue;
                }
                if self.chance(self.loss) {
                    continue;
                }
                let copies = if self.chance(self.dup) { 2 } else { 1 };
                for _ in 0..copies {
                    let mut delay = self.latency;
                    if self.chance(self.reorder) {
                        delay += Duration::from_micros(
                            self.rng.next_u64() % (3 * self.latency.as_micros() as u64),
                        );
                    }
                    self.seq += 1;
                    self.flights.push(InFlight {
                        at: self.now + delay,
                        seq: self.seq,
                        wire: wire.clone(),
                    });
                }
            }
            while let Some(e) = self.nodes[i].engine.poll_event() {
                self.nodes[i].events.push(e);
            }
        }
    }

    fn deliver(&mut self, w: Wire) {
        let (to, dst) = if w.dst.ip() == NAT_PUBLIC {
            let Some(i) = self.natted else { return };
            (i, SocketAddr::new(self.nodes[i].addr, w.dst.port() - 20000))
        } else {
            let Some(i) = self.nodes.iter().position(|n| n.addr == w.dst.ip()) else {
                return;
            };
            (i, w.dst)
        };
        if self.nodes[to].dead {
            return;
        }
        self.trace.push(w.clone());
        let now = self.now;
        self.nodes[to]
            .engine
            .handle_datagram(now, dst, w.src, &w.payload);
    }

    /// Runs the network for `d` of virtual time.
    pub fn run(&mut self, d: Duration) {
        let end = self.now + d;
        loop {
            self.collect();
            let next_flight = self.flights.iter().map(|f| f.at).min();
            let next_timer = self
                .nodes
                .iter()
                .filter_map(|n| n.engine.poll_timeout())
                .min();
            let Some(next) = [next_flight, next_timer].into_iter().flatten().min() else {
                break;
            };
            if next > end {
                break;
            }
            self.now = self.now.max(next);
            let mut due: Vec<InFlight> = Vec::new();
            let mut keep = Vec::new();
            for f in self.flights.drain(..) {
                if f.at <= self.now {
                    due.push(f)
                } else {
                    keep.push(f)
                }
            }
            self.flights = keep;
            due.sort_by_key(|f| (f.at, f.seq));
            for f in due {
                self.deliver(f.wire);
            }
            let now = self.now;
            for n in &mut self.nodes {
                if n.engine.poll_timeout().is_some_and(|t| t <= now) {
                    n.engine.handle_timeout(now);
                }
            }
        }
        self.now = end;
        self.collect();
    }

    pub fn node(&self, i: usize) -> &Node {
        &self.nodes[i]
    }

    pub fn take_events(&mut self, i: usize) -> Vec<Event> {
        std::mem::take(&mut self.nodes[i].events)
    }
}

/// The ChildSaUp events of a list.
pub fn child_ups(events: &[Event]) -> Vec<&ChildSaUp> {
    events
        .iter()
        .filter_map(|e| {
            if let Event::ChildSaUp(c) = e {
                Some(&**c)
            } else {
                None
            }
        })
        .collect()
}

pub fn ike_ups(events: &[Event]) -> usize {
    events
        .iter()
        .filter(|e| matches!(e, Event::IkeSaUp { .. }))
        .count()
}

/// Seals a GRE packet with `tx`'s outbound keys and opens it with `rx`'s inbound keys:
/// proves both sides derived the same ESP keys for that direction.
pub fn esp_works(tx: &ChildSaUp, rx: &ChildSaUp) {
    assert_eq!(tx.outbound.spi, rx.inbound.spi);
    assert_eq!(tx.outbound.algorithm, rx.inbound.algorithm);
    let now = Instant::now();
    let cfg = |spi, sn| SaConfig {
        spi,
        sequence_numbers: sn,
        lifetime: Default::default(),
    };
    let mut out = OutboundSa::new(
        cfg(tx.outbound.spi, tx.outbound.sequence_numbers),
        &tx.outbound.key,
        now,
    )
    .unwrap();
    let mut inb = InboundSa::new(
        cfg(rx.inbound.spi, rx.inbound.sequence_numbers),
        &rx.inbound.key,
        now,
    )
    .unwrap();
    let gre = [0x20, 0x00, 0x08, 0x00, 0, 0, 0, 7, 0x45, 0];
    let mut buf = [0u8; 128];
    buf[PAYLOAD_OFFSET..][..gre.len()].copy_from_slice(&gre);
    let len = out.seal(now, &mut buf, gre.len(), NEXT_HEADER_GRE).unwrap();
    let opened = inb
        .open(now, &mut buf[..len])
        .expect("the peer opens what we sealed");
    assert_eq!(&buf[opened.payload], &gre);
}

/// Both directions of a CHILD_SA pair work.
pub fn pair_works(a: &ChildSaUp, b: &ChildSaUp) {
    esp_works(a, b);
    esp_works(b, a);
}

pub fn hash_trace(trace: &[Wire]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for w in trace {
        w.src.hash(&mut h);
        w.dst.hash(&mut h);
        w.payload.hash(&mut h);
    }
    h.finish()
}
