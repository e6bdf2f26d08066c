//! The forwarding core as a hub or a spoke of the seed (GRE key 100, NHRP authentication
//! `@lpha`, GRE-in-UDP so that hostile bytes reach GRE, NHRP and IP without a key), fed a
//! sequence of underlay datagrams, TUN packets and clock steps. Whatever the forwarder
//! writes to the TUN device then goes through the device's write coalescing (tun-rs GRO),
//! as in the agent.
//!
//! Input: the first byte picks the router (even: the hub, odd: the first spoke), which starts
//! registered; then records of an operation byte and a 16-bit big-endian length. Operation
//! (bits 0-1) 0 and 1 are a datagram of `length` bytes from the one or the other of the
//! other two routers' NBMA addresses, 2 a packet of `length` bytes read from the TUN device,
//! 3 a clock step of `length` milliseconds. With bit 2 set, the output waits for the next
//! record's (so that a batch of packets for the TUN device is coalesced together).
//!
//! Invariants: no panic; every datagram and packet is accounted for, taken (NHRP, IKE,
//! written to the TUN device, sent on, queued) or counted as dropped, except a multicast
//! packet when no peer is in the replication set; every datagram to send has a destination;
//! coalescing never fails.

use core::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use dmvpn_dataplane::StaticRoute;
use dmvpn_dataplane::os::linux::TunWrites;
use dmvpn_dataplane::{Counters, Forwarder, ForwarderConfig, GreInUdp, Output, PacketBatch};
use dmvpn_nhrp::{Config, Engine, NhsConfig, Password, Prefix, Role, SplitMix64};

const KEY: u32 = 100;
const CAPACITY: usize = 2048;

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

/// Router `i` of the seed: 0 the hub, 1 and 2 the spokes.
fn forwarder(i: u8, now: Instant) -> Forwarder<GreInUdp> {
    let hub = i == 0;
    let role = if hub { Role::Hub } else { Role::Spoke };
    let mut c = Config::new(role, v4(10, 1, 1, 1 + i), 24, v4(198, 18, 0, 1 + i));
    c.password = Password::new(b"@lpha").ok();
    if let Ok(lan) = Prefix::new(v4(192, 168, 1 + i, 0), 24) {
        c.advertised_prefixes.push(lan);
    }
    let mut fc = ForwarderConfig {
        gre_key: Some(KEY),
        packet_capacity: CAPACITY,
        ..ForwarderConfig::default()
    };
    if hub {
        c.redirect = true;
    } else {
        c.shortcut = true;
        c.nhs.push(NhsConfig {
            tunnel: v4(10, 1, 1, 1),
            nbma: v4(198, 18, 0, 1),
            priority: 0,
        });
        if let Ok(prefix) = Prefix::new(v4(192, 168, 0, 0), 16) {
            fc.static_routes.push(StaticRoute {
                prefix,
                via: v4(10, 1, 1, 1),
            });
        }
    }
    let engine = Engine::new(c, Box::new(SplitMix64(7)), now).expect("the seed's configuration");
    Forwarder::new(fc, engine, GreInUdp::default()).expect("the seed's forwarder")
}

/// The NBMA address of router `i`, and its GRE-in-UDP endpoint.
fn endpoint(i: u8) -> SocketAddr {
    SocketAddr::new(v4(198, 18, 0, 1 + i), 4754)
}

/// Router `me` of the seed, registered: the spokes' first registration requests went to
/// the hub and the hub's replies back, so a hub under test holds both spokes (it forwards
/// between them and sends redirects) and a spoke under test is up with its NHS.
fn registered(me: u8, now: Instant) -> Forwarder<GreInUdp> {
    let mut routers: Vec<_> = (0..3).map(|i| forwarder(i, now)).collect();
    let mut outs: Vec<_> = (0..3).map(|_| Output::new(16, CAPACITY)).collect();
    let mut batch = PacketBatch::new(1, CAPACITY);
    for _ in 0..3 {
        let mut wire = Vec::new();
        for (i, (r, out)) in (0u8..).zip(routers.iter_mut().zip(outs.iter_mut())) {
            if r.poll_timeout().is_some_and(|t| t <= now) {
                r.handle_timeout(now, out);
            }
            r.flush_engine(now, out);
            for b in out.udp.bufs() {
                if let Some(to) = (0..3).find(|&j| b.addr == Some(endpoint(j))) {
                    wire.push((i, usize::from(to), b.packet().to_vec()));
                }
            }
            out.clear();
        }
        for (from, to, datagram) in wire {
            let slot = batch.push_empty();
            slot.load(&datagram);
            slot.addr = Some(endpoint(from));
            routers[to].inbound(now, &mut batch, &mut outs[to]);
        }
    }
    routers.swap_remove(usize::from(me))
}

/// What accounts for a datagram or packet: taken one way or another, or dropped.
fn accounted(c: &Counters) -> u64 {
    c.dropped_total() + c.ike_rx + c.nhrp_rx + c.tun_tx + c.forwarded + c.udp_tx + c.queued
}

/// The most records one input runs, so that each input runs quickly.
const MAX_RECORDS: usize = 256;

/// Runs one input.
pub fn check(data: &[u8]) {
    let Some((&role, mut rest)) = data.split_first() else {
        return;
    };
    let mut now = Instant::now();
    let me = role % 2;
    let peers: Vec<u8> = (0..3).filter(|&i| i != me).collect();
    let mut fwd = registered(me, now);
    let mut out = Output::new(16, CAPACITY);
    let mut batch = PacketBatch::new(1, CAPACITY);
    let mut writes = TunWrites::new();
    for _ in 0..MAX_RECORDS {
        let [op, hi, lo, tail @ ..] = rest else {
            break;
        };
        let (op, hold) = (op % 4, op & 4 != 0);
        let len = usize::from(u16::from_be_bytes([*hi, *lo]));
        rest = tail;
        if op == 3 {
            now += Duration::from_millis(len as u64);
            if fwd.poll_timeout().is_some_and(|t| t <= now) {
                fwd.handle_timeout(now, &mut out);
            }
        } else {
            let (bytes, tail) = rest.split_at(len.min(rest.len()));
            rest = tail;
            let buf = batch.push_empty();
            if !buf.load(bytes) {
                batch.clear();
                continue;
            }
            let before = accounted(fwd.counters());
            if op == 2 {
                fwd.outbound(now, &mut batch, &mut out);
            } else {
                buf.addr = Some(endpoint(peers[usize::from(op)]));
                fwd.inbound(now, &mut batch, &mut out);
            }
            let taken = accounted(fwd.counters()) > before;
            assert!(
                taken || op == 2 && fwd.engine().multicast_peers().is_empty(),
                "neither taken nor counted as dropped: operation {op}, {bytes:02x?}"
            );
        }
        if hold {
            continue;
        }
        assert!(out.udp.bufs().iter().all(|b| b.addr.is_some()));
        writes
            .coalesce(&out.tun)
            .expect("coalescing the packets for the TUN device");
        out.clear();
        // Without a key exchange (GRE-in-UDP needs none), events only pile up.
        while fwd.poll_event().is_some() {}
    }
}
