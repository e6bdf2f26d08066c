//! The IKEv2 engine under hostile input: a hub and a spoke (fresh, or already established;
//! with PSK or with certificates, RFC 7427; optionally in 576-byte datagrams, so that
//! IKE_AUTH with certificates and larger messages go as RFC 7383 fragments) fed an `Arbitrary` sequence of operations (datagrams they really exchange, delivered,
//! duplicated or mutated; raw bytes on port 500 or 4500; time passing; commands) must never
//! panic, and after every step:
//! - every datagram an engine sends is a NAT keepalive or an IKE message that `dmvpn-wire`
//!   parses, whose Length is the datagram's;
//! - every counted drop was reported as an event;
//! - `poll_timeout` is after `now` once `handle_timeout(now)` ran;
//! - an engine never has more half-open SAs than its limit.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use arbitrary::{Arbitrary, Unstructured};
use dmvpn_ike::testing::{HUB, SPOKE, certificate_config, config, establish, pair_with};
use dmvpn_ike::{Config, Engine, Event, Transmit, WallClock};
use dmvpn_wire::ikev2::{Packet, Repr};
use dmvpn_wire::udp_encap::Datagram;

/// The most operations run from one input.
const MAX_OPS: usize = 256;
/// The most datagrams kept in flight.
const IN_FLIGHT: usize = 32;

#[derive(Debug, Arbitrary)]
struct Setup {
    seed: u64,
    /// Bit 0: established first; bit 1: certificates instead of PSK; bit 2: 576-byte maximum
    /// datagrams (fragmentation).
    start: u8,
}

/// The fixed test CA and end entities of dmvpn-ike (node-agent/ike/tests/data/README.md,
/// made by openssl): spoke1-p256 names 198.18.0.1 (our hub), spoke2-ed25519 198.18.0.2.
const CA: &[u8] = include_bytes!("../../ike/tests/data/ca.pem");
const HUB_CERT: &[u8] = include_bytes!("../../ike/tests/data/spoke1-p256.pem");
const HUB_KEY: &[u8] = include_bytes!("../../ike/tests/data/spoke1-p256.key");
const SPOKE_CERT: &[u8] = include_bytes!("../../ike/tests/data/spoke2-ed25519.pem");
const SPOKE_KEY: &[u8] = include_bytes!("../../ike/tests/data/spoke2-ed25519.key");

/// 2030-01-01T00:00:00Z, inside the validity of the fixed certificates (2026 to 2046).
const WALL_CLOCK_SECS: u64 = 1_893_456_000;

fn configs(start: u8, now: Instant) -> (Config, Config) {
    let (mut hub, mut spoke) = if start & 2 != 0 {
        let clock = WallClock {
            instant: now,
            system: std::time::UNIX_EPOCH + Duration::from_secs(WALL_CLOCK_SECS),
        };
        (
            certificate_config(HUB, HUB_CERT, HUB_KEY, CA, clock).expect("fixed hub credentials"),
            certificate_config(SPOKE, SPOKE_CERT, SPOKE_KEY, CA, clock)
                .expect("fixed spoke credentials"),
        )
    } else {
        (config(HUB, b"fuzz"), config(SPOKE, b"fuzz"))
    };
    if start & 4 != 0 {
        hub.max_datagram = Some(576);
        spoke.max_datagram = Some(576);
    }
    (hub, spoke)
}

#[derive(Debug, Arbitrary)]
enum Op {
    /// Delivers the datagram in flight at this index, possibly mutated, possibly twice.
    Deliver {
        index: u8,
        mutation: Option<Vec<(u16, u8)>>,
        twice: bool,
    },
    /// Delivers everything in flight.
    Flush,
    /// Raw bytes to a node, on port 500 or 4500, from the peer or a stranger.
    Raw {
        to_hub: bool,
        nat_t: bool,
        stranger: bool,
        bytes: Vec<u8>,
    },
    /// Time passes, then both engines handle their timeouts.
    Wait {
        millis: u16,
        seconds: u8,
    },
    Initiate {
        hub: bool,
    },
    Delete {
        hub: bool,
    },
    RekeyChild {
        hub: bool,
    },
    RekeyIke {
        hub: bool,
    },
}

struct Net {
    hub: Engine,
    spoke: Engine,
    /// (to the hub?, datagram) not delivered yet.
    in_flight: Vec<(bool, Transmit)>,
    now: Instant,
}

fn check_transmit(t: &Transmit) {
    let msg = if t.local.port() == 4500 {
        match Datagram::parse(&t.payload) {
            Ok(Datagram::Keepalive) => return,
            Ok(Datagram::Ike(m)) => m,
            other => panic!("the engine sent a non-IKE datagram on 4500: {other:?}"),
        }
    } else {
        &t.payload[..]
    };
    let p = Packet::new_checked(msg).expect("emitted IKE header parses");
    Repr::parse(&p).expect("emitted IKE payloads parse");
    assert_eq!(p.length() as usize, msg.len());
}

impl Net {
    fn engine(&mut self, hub: bool) -> &mut Engine {
        if hub { &mut self.hub } else { &mut self.spoke }
    }

    fn drain(&mut self) {
        for hub in [true, false] {
            while let Some(t) = self.engine(hub).poll_transmit() {
                check_transmit(&t);
                if self.in_flight.len() < IN_FLIGHT {
                    self.in_flight.push((!hub, t));
                }
            }
            let c = self.engine(hub).counters();
            assert!(c.half_open as usize <= self.engine(hub).config().half_open_limit);
        }
    }

    fn deliver(&mut self, to_hub: bool, t: &Transmit, payload: &[u8]) {
        let now = self.now;
        self.engine(to_hub)
            .handle_datagram(now, t.remote, t.local, payload);
    }
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
    let (hub, spoke) = configs(setup.start, now);
    let engines = pair_with(setup.seed, now, hub, spoke);
    let (hub, spoke) = if setup.start & 1 != 0 {
        establish(engines, now)
    } else {
        engines
    };
    let mut net = Net {
        hub,
        spoke,
        in_flight: Vec::new(),
        now,
    };
    let mut dropped = [0u64; 2];
    let mut reported = [0u64; 2];
    for _ in 0..MAX_OPS {
        let Ok(op) = Op::arbitrary(&mut u) else { break };
        match op {
            Op::Deliver {
                index,
                mutation,
                twice,
            } => {
                if net.in_flight.is_empty() {
                    continue;
                }
                let (to_hub, t) = net
                    .in_flight
                    .remove(usize::from(index) % net.in_flight.len());
                let mut payload = t.payload.clone();
                for (at, v) in mutation.unwrap_or_default() {
                    if let Some(b) = payload.get_mut(usize::from(at)) {
                        *b = v;
                    }
                }
                net.deliver(to_hub, &t, &payload);
                if twice {
                    net.deliver(to_hub, &t, &payload);
                }
            }
            Op::Flush => {
                for (to_hub, t) in std::mem::take(&mut net.in_flight) {
                    net.deliver(to_hub, &t, &t.payload);
                }
            }
            Op::Raw {
                to_hub,
                nat_t,
                stranger,
                bytes,
            } => {
                let port = if nat_t { 4500 } else { 500 };
                let (me, peer) = if to_hub { (HUB, SPOKE) } else { (SPOKE, HUB) };
                let from = if stranger {
                    IpAddr::V4(Ipv4Addr::new(198, 18, 9, 9))
                } else {
                    peer
                };
                let now = net.now;
                net.engine(to_hub).handle_datagram(
                    now,
                    SocketAddr::new(me, port),
                    SocketAddr::new(from, port),
                    &bytes,
                );
            }
            Op::Wait { millis, seconds } => {
                net.now += Duration::from_millis(u64::from(millis))
                    + Duration::from_secs(u64::from(seconds));
                let now = net.now;
                for hub in [true, false] {
                    let e = net.engine(hub);
                    e.handle_timeout(now);
                    assert!(
                        e.poll_timeout().is_none_or(|t| t > now),
                        "a timer stayed due"
                    );
                }
            }
            Op::Initiate { hub } => {
                let (now, peer) = (net.now, if hub { SPOKE } else { HUB });
                net.engine(hub).initiate(now, peer);
            }
            Op::Delete { hub } => {
                let (now, peer) = (net.now, if hub { SPOKE } else { HUB });
                net.engine(hub).delete(now, peer);
            }
            Op::RekeyChild { hub } => {
                let (now, peer) = (net.now, if hub { SPOKE } else { HUB });
                net.engine(hub).rekey_child(now, peer);
            }
            Op::RekeyIke { hub } => {
                let (now, peer) = (net.now, if hub { SPOKE } else { HUB });
                net.engine(hub).rekey_ike(now, peer);
            }
        }
        for (i, hub) in [true, false].into_iter().enumerate() {
            dropped[i] = net.engine(hub).counters().dropped_total();
            while let Some(e) = net.engine(hub).poll_event() {
                reported[i] += u64::from(matches!(e, Event::Dropped { .. }));
            }
            assert_eq!(
                dropped[i], reported[i],
                "a drop was counted but not reported, or the reverse"
            );
        }
        net.drain();
    }
}
