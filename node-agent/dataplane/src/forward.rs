//! The forwarding core: a sans-IO router between the TUN device and the underlay. It owns
//! the NHRP engine and the routes; the driver hands it batches of packets read from the TUN
//! device and datagrams read from the underlay, with the time, and sends what it puts in an
//! [`Output`].
//!
//! # Driving a forwarder
//! 1. Feed input: [`Forwarder::outbound`] with packets read from the TUN device,
//!    [`Forwarder::inbound`] with datagrams received on the protection's UDP port (each
//!    buffer's `addr` set to the source), [`Forwarder::handle_timeout`] at the deadline of
//!    [`Forwarder::poll_timeout`]. Each fills the [`Output`]: datagrams to send (`addr` is
//!    the destination) and packets to write to the TUN device.
//! 2. Send and write the output, then clear it.
//! 3. Drain [`Forwarder::poll_event`]: SAs to negotiate, IKE datagrams, NHRP cache changes
//!    (routes to apply, [`Forwarder::desired_routes`]).
//!
//! Outbound: IP packet → route ([`crate::route`]) → MTU check (ICMP back to the source) →
//! MSS clamp → GRE → protection → datagram; no SA yet: a bounded per-peer queue. Inbound:
//! datagram → protection → GRE → NHRP to the engine, IP to the TUN device, or (at a hub) on
//! to another peer with a Traffic Indication from the engine (DMVPN phase 3).

use core::net::IpAddr;
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::time::{Duration, Instant};

use dmvpn_esp::{InboundSa, OutboundSa, SadError};
use dmvpn_nhrp::{Engine, EntryType, Prefix};
use dmvpn_wire::gre::Protocol;
use dmvpn_wire::{ipv4, ipv6};

use crate::batch::{PacketBatch, PacketBuf};
use crate::config::{ConfigError, ForwarderConfig, StaticRoute};
use crate::counters::{Counters, DropReason, PeerTable};
use crate::encap::{decapsulate, encapsulate};
use crate::event::Event;
use crate::icmp;
use crate::mss;
use crate::protection::{EspInUdp, Opened, Protection, SealFailure};
use crate::route::{Next, Routes};

/// What one step of the forwarder produced.
#[derive(Debug, Clone)]
pub struct Output {
    /// Datagrams to send; each buffer's `addr` is the destination.
    pub udp: PacketBatch,
    /// IP packets to write to the TUN device.
    pub tun: PacketBatch,
}

impl Output {
    /// Output batches of `max` buffers each for packets of `packet_capacity` bytes.
    pub fn new(max: usize, packet_capacity: usize) -> Self {
        Output {
            udp: PacketBatch::new(max, packet_capacity),
            tun: PacketBatch::new(max, packet_capacity),
        }
    }

    /// Whether neither batch holds a packet.
    pub fn is_empty_both(&self) -> bool {
        self.udp.is_empty() && self.tun.is_empty()
    }

    /// Empties both batches (after they were sent and written).
    pub fn clear(&mut self) {
        self.udp.clear();
        self.tun.clear();
    }
}

/// The addresses and sizes of an IP packet that routing needs.
#[derive(Debug, Clone, Copy)]
struct IpInfo {
    src: IpAddr,
    dst: IpAddr,
    len: usize,
    /// IPv4 Don't Fragment; always true for IPv6, which routers never fragment.
    df: bool,
}

fn ip_info(packet: &[u8]) -> Option<IpInfo> {
    match packet.first()? >> 4 {
        4 => {
            let p = ipv4::Packet::new_checked(packet).ok()?;
            Some(IpInfo {
                src: p.src_addr().into(),
                dst: p.dst_addr().into(),
                len: usize::from(p.total_len()),
                df: p.dont_frag(),
            })
        }
        6 => {
            let p = ipv6::Packet::new_checked(packet).ok()?;
            Some(IpInfo {
                src: p.src_addr().into(),
                dst: p.dst_addr().into(),
                len: ipv6::HEADER_LEN + usize::from(p.payload_len()),
                df: true,
            })
        }
        _ => None,
    }
}

/// Decrements the TTL or hop limit of a forwarded packet; false when it ran out.
fn decrement_ttl(packet: &mut [u8]) -> bool {
    match packet.first().map(|b| b >> 4) {
        Some(4) => {
            let mut p = ipv4::Packet::new_unchecked(packet);
            let ttl = p.ttl();
            if ttl <= 1 {
                return false;
            }
            p.set_ttl(ttl - 1);
            true
        }
        Some(6) => {
            let mut p = ipv6::Packet::new_unchecked(packet);
            let hops = p.hop_limit();
            if hops <= 1 {
                return false;
            }
            p.set_hop_limit(hops - 1);
            true
        }
        _ => false,
    }
}

/// At most `per_second` events in each one-second window.
#[derive(Debug, Clone)]
struct RateLimit {
    per_second: u32,
    window: Option<(Instant, u32)>,
}

impl RateLimit {
    fn allow(&mut self, now: Instant) -> bool {
        let used = match self.window {
            Some((start, used))
                if now.saturating_duration_since(start) < Duration::from_secs(1) =>
            {
                used
            }
            _ => {
                self.window = Some((now, 0));
                0
            }
        };
        if used >= self.per_second {
            return false;
        }
        self.window = self.window.map(|(start, n)| (start, n + 1));
        true
    }
}

/// The forwarding core of one tunnel interface.
#[derive(Debug)]
pub struct Forwarder<P: Protection> {
    config: ForwarderConfig,
    engine: Engine,
    routes: Routes,
    protection: P,
    /// Packets (GRE framed) waiting for an SA, per peer NBMA address.
    pending: HashMap<IpAddr, VecDeque<PacketBuf>>,
    counters: Counters,
    peers: PeerTable,
    events: VecDeque<Event>,
    icmp: RateLimit,
    /// A spare buffer for packets the forwarder makes (NHRP, multicast copies).
    scratch: PacketBuf,
}

impl<P: Protection> Forwarder<P> {
    /// A forwarder around a started NHRP engine, its tunnel subnet taken from the engine's
    /// configuration.
    ///
    /// # Errors
    /// [`ConfigError`] from [`ForwarderConfig::validate`].
    pub fn new(
        config: ForwarderConfig,
        engine: Engine,
        protection: P,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        let routes = Routes::new(engine.config().tunnel_subnet(), &config.static_routes);
        let icmp = RateLimit {
            per_second: config.icmp_per_second,
            window: None,
        };
        let scratch = PacketBuf::new(config.packet_capacity);
        Ok(Forwarder {
            config,
            engine,
            routes,
            protection,
            pending: HashMap::new(),
            counters: Counters::default(),
            peers: PeerTable::default(),
            events: VecDeque::new(),
            icmp,
            scratch,
        })
    }

    /// The settings.
    pub fn config(&self) -> &ForwarderConfig {
        &self.config
    }

    /// The NHRP engine (show commands).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Replaces the static routes (a live configuration change): the packet path and
    /// [`Forwarder::desired_routes`] follow them from now on.
    pub fn set_static_routes(&mut self, statics: &[StaticRoute]) {
        self.routes = Routes::new(self.routes.subnet(), statics);
        self.config.static_routes = statics.to_vec();
    }

    /// The NHRP engine, for commands (`resolve`, `update_config`, `shutdown`); call
    /// [`Forwarder::flush_engine`] afterwards to send what they queued.
    pub fn engine_mut(&mut self) -> &mut Engine {
        &mut self.engine
    }

    /// The protection layer.
    pub fn protection(&self) -> &P {
        &self.protection
    }

    /// The counters.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Per-peer packets and bytes.
    pub fn peer_counters(&self) -> &PeerTable {
        &self.peers
    }

    /// The number of packets waiting for an SA with `peer`.
    pub fn pending_len(&self, peer: IpAddr) -> usize {
        self.pending.get(&peer).map_or(0, VecDeque::len)
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Forwarder::handle_timeout`] must next run.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.engine.poll_timeout(), self.protection.poll_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Runs the NHRP timers and SA lifetimes due at `now`.
    pub fn handle_timeout(&mut self, now: Instant, out: &mut Output) {
        if self.engine.poll_timeout().is_some_and(|t| t <= now) {
            self.engine.handle_timeout(now);
        }
        self.protection.handle_timeout(now);
        self.flush_engine(now, out);
    }

    /// The prefixes the OS should route into the tunnel device: static routes, prefixes
    /// registered by peers and shortcuts, except what the tunnel subnet (the device's own
    /// connected route) covers.
    pub fn desired_routes(&self) -> BTreeSet<Prefix> {
        let subnet = self.routes.subnet();
        let inside =
            |p: &Prefix| subnet.contains(p.addr()) && p.prefix_len() >= subnet.prefix_len();
        let learned = self
            .engine
            .cache()
            .iter()
            .filter(|(_, e)| matches!(e.kind, EntryType::Registered | EntryType::Shortcut))
            .map(|(p, _)| *p);
        self.routes
            .static_prefixes()
            .chain(learned)
            .filter(|p| !inside(p))
            .collect()
    }

    /// Processes the packets read from the TUN device and empties the batch.
    pub fn outbound(&mut self, now: Instant, batch: &mut PacketBatch, out: &mut Output) {
        for buf in batch.bufs_mut() {
            self.outbound_packet(now, buf, out);
        }
        batch.clear();
        self.flush_engine(now, out);
    }

    /// Processes one packet read from the TUN device; its buffer may be swapped for an
    /// empty one.
    pub fn outbound_packet(&mut self, now: Instant, buf: &mut PacketBuf, out: &mut Output) {
        self.counters.tun_rx += 1;
        let Some(info) = ip_info(buf.packet()) else {
            return self.counters.drop(DropReason::Malformed);
        };
        buf.truncate(info.len);
        match self.routes.lookup(&self.engine, info.dst) {
            Next::Tunnel {
                nbma,
                unmarked_shortcut,
                ..
            } => {
                if unmarked_shortcut {
                    self.engine.mark_used(info.dst);
                }
                if !self.fits(now, buf, &info, out) {
                    return;
                }
                self.clamp(buf);
                self.send_ip(now, nbma, buf, out);
            }
            Next::Multicast => {
                if self.fits(now, buf, &info, out) {
                    self.replicate(now, buf, out);
                }
            }
            Next::Local => self.counters.drop(DropReason::NoRoute),
            Next::Unreachable(reason) => self.counters.drop(reason),
        }
    }

    /// Processes the datagrams received from the underlay (each buffer's `addr` its source)
    /// and empties the batch.
    pub fn inbound(&mut self, now: Instant, batch: &mut PacketBatch, out: &mut Output) {
        for buf in batch.bufs_mut() {
            self.inbound_datagram(now, buf, out);
        }
        batch.clear();
        self.flush_engine(now, out);
    }

    /// Processes one datagram received from the underlay, whose source is `buf.addr`; its
    /// buffer may be swapped for an empty one. NHRP output is sent by the next
    /// [`Forwarder::flush_engine`] (which the batch methods call).
    pub fn inbound_datagram(&mut self, now: Instant, buf: &mut PacketBuf, out: &mut Output) {
        self.counters.udp_rx += 1;
        let Some(from) = buf.addr else {
            return self.counters.drop(DropReason::Malformed);
        };
        let size = buf.len();
        let peer = match self.protection.open(now, from, buf) {
            Ok(Opened::Gre { peer }) => peer,
            Ok(Opened::Control) => {
                self.counters.ike_rx += 1;
                self.events.push_back(Event::IkeDatagram {
                    from,
                    datagram: buf.packet().to_vec(),
                });
                return;
            }
            Err(reason) => return self.counters.drop(reason),
        };
        self.peers.received(peer, size);
        match decapsulate(buf, self.config.gre_key) {
            Ok(Protocol::Nhrp) => {
                self.counters.nhrp_rx += 1;
                self.engine.handle_packet(now, peer, buf.packet());
            }
            Ok(Protocol::Ipv4 | Protocol::Ipv6) => self.receive_ip(now, peer, buf, out),
            Ok(Protocol::Unknown(_)) => self.counters.drop(DropReason::UnknownProtocol),
            Err(reason) => self.counters.drop(reason),
        }
    }

    /// An IP packet from `peer`: to the TUN device, or on to another peer (hairpin).
    fn receive_ip(&mut self, now: Instant, peer: IpAddr, buf: &mut PacketBuf, out: &mut Output) {
        let Some(info) = ip_info(buf.packet()) else {
            return self.counters.drop(DropReason::Malformed);
        };
        buf.truncate(info.len);
        if let Next::Tunnel {
            nbma,
            unmarked_shortcut,
            ..
        } = self.routes.lookup(&self.engine, info.dst)
        {
            if nbma == peer {
                return self.counters.drop(DropReason::Loop);
            }
            if !decrement_ttl(buf.packet_mut()) {
                return self.counters.drop(DropReason::Ttl);
            }
            if unmarked_shortcut {
                self.engine.mark_used(info.dst);
            }
            // Phase 3: tell the source spoke there is a better way (rate limited there).
            self.engine.traffic_to(now, info.src, info.dst);
            self.counters.forwarded += 1;
            return self.send_ip(now, nbma, buf, out);
        }
        self.clamp(buf);
        self.counters.tun_tx += 1;
        out.tun.push_swap(buf);
    }

    /// Whether the packet fits the tunnel MTU. One that does not and may not be fragmented
    /// is dropped and answered with an ICMP error to the TUN device; an IPv4 packet without
    /// DF goes on (the underlay fragments the datagram).
    fn fits(&mut self, now: Instant, buf: &PacketBuf, info: &IpInfo, out: &mut Output) -> bool {
        let mtu = self.config.mtu;
        if info.len <= usize::from(mtu) || !info.df {
            return true;
        }
        self.counters.drop(DropReason::TooBig);
        if !self.icmp.allow(now) {
            self.counters.icmp_suppressed += 1;
            return false;
        }
        let tunnel = self.engine.config().tunnel_address;
        let reply = out.tun.push_empty();
        let area = reply.read_area();
        let written = match (info.src, info.dst) {
            (IpAddr::V4(_), IpAddr::V4(dst)) => {
                let src = match tunnel {
                    IpAddr::V4(a) => a,
                    IpAddr::V6(_) => dst,
                };
                icmp::frag_needed(src, buf.packet(), mtu, area)
            }
            (IpAddr::V6(_), IpAddr::V6(dst)) => {
                let src = match tunnel {
                    IpAddr::V6(a) => a,
                    IpAddr::V4(_) => dst,
                };
                icmp::packet_too_big(src, buf.packet(), u32::from(mtu), area)
            }
            _ => None,
        };
        match written {
            Some(len) => {
                reply.set_read(len);
                self.counters.icmp_sent += 1;
                self.counters.tun_tx += 1;
            }
            None => {
                out.tun.pop();
                self.counters.icmp_suppressed += 1;
            }
        }
        false
    }

    fn clamp(&mut self, buf: &mut PacketBuf) {
        if !self.config.clamp_mss {
            return;
        }
        let packet = buf.packet_mut();
        let limit = if packet.first().is_some_and(|b| b >> 4 == 6) {
            self.config.mss_v6()
        } else {
            self.config.mss_v4()
        };
        if mss::clamp(packet, limit) {
            self.counters.mss_clamped += 1;
        }
    }

    /// Frames an IP packet in GRE and sends it to `peer`.
    fn send_ip(&mut self, now: Instant, peer: IpAddr, buf: &mut PacketBuf, out: &mut Output) {
        let protocol = if buf.packet().first().is_some_and(|b| b >> 4 == 6) {
            Protocol::Ipv6
        } else {
            Protocol::Ipv4
        };
        if !encapsulate(buf, protocol, self.config.gre_key) {
            return self.counters.drop(DropReason::SealFailed);
        }
        self.transmit(now, peer, buf, out);
    }

    /// Seals the GRE packet in `buf` for `peer` and moves it to the output, or queues it
    /// until the peer's SA is installed.
    fn transmit(&mut self, now: Instant, peer: IpAddr, buf: &mut PacketBuf, out: &mut Output) {
        match self.protection.seal(now, peer, buf) {
            Ok(dst) => {
                buf.addr = Some(dst);
                self.peers.sent(peer, buf.len());
                self.counters.udp_tx += 1;
                out.udp.push_swap(buf);
            }
            Err(SealFailure::NoSa) => {
                let limit = self.config.queue_limit;
                let queue = self.pending.entry(peer).or_insert_with(|| {
                    self.events.push_back(Event::NeedSa { peer });
                    VecDeque::new()
                });
                if queue.len() >= limit {
                    return self.counters.drop(DropReason::QueueFull);
                }
                queue.push_back(core::mem::take(buf));
                self.counters.queued += 1;
            }
            Err(SealFailure::Failed) => self.counters.drop(DropReason::SealFailed),
        }
    }

    /// Sends a copy of the packet to every peer of the multicast replication set.
    fn replicate(&mut self, now: Instant, buf: &PacketBuf, out: &mut Output) {
        let mut scratch = core::mem::take(&mut self.scratch);
        for peer in self.engine.multicast_peers() {
            scratch.reserve(self.config.packet_capacity);
            if !scratch.load(buf.packet()) {
                self.counters.drop(DropReason::SealFailed);
                continue;
            }
            self.counters.multicast_copies += 1;
            self.send_ip(now, peer, &mut scratch, out);
        }
        self.scratch = scratch;
    }

    /// Sends what the NHRP engine queued (in GRE, protocol 0x2001) and collects its events
    /// and the protection's. The batch methods call it; call it after commands given
    /// through [`Forwarder::engine_mut`].
    pub fn flush_engine(&mut self, now: Instant, out: &mut Output) {
        let mut scratch = core::mem::take(&mut self.scratch);
        while let Some(t) = self.engine.poll_transmit() {
            scratch.reserve(self.config.packet_capacity);
            if !scratch.load(&t.payload)
                || !encapsulate(&mut scratch, Protocol::Nhrp, self.config.gre_key)
            {
                self.counters.drop(DropReason::SealFailed);
                continue;
            }
            self.counters.nhrp_tx += 1;
            self.transmit(now, t.dst, &mut scratch, out);
        }
        self.scratch = scratch;
        while let Some(e) = self.engine.poll_event() {
            self.events.push_back(Event::Nhrp(e));
        }
        while let Some(e) = self.protection.poll_event() {
            self.events.push_back(Event::Sa(e));
        }
    }

    /// Sends the packets queued for `peer` if its SA is there now.
    pub fn flush_pending(&mut self, now: Instant, peer: IpAddr, out: &mut Output) {
        if !self.protection.ready(peer) {
            return;
        }
        let Some(queue) = self.pending.remove(&peer) else {
            return;
        };
        for mut buf in queue {
            self.transmit(now, peer, &mut buf, out);
        }
    }

    /// Drops the packets queued for `peer` (IKE gave up), counted as [`DropReason::NoSa`];
    /// the next packet asks for an SA again.
    pub fn drop_pending(&mut self, peer: IpAddr) {
        if let Some(queue) = self.pending.remove(&peer) {
            for _ in queue {
                self.counters.drop(DropReason::NoSa);
            }
        }
    }
}

impl Forwarder<EspInUdp> {
    /// Installs the SA pair of `peer` (see [`EspInUdp::install_sa`]) and sends the packets
    /// that waited for it.
    ///
    /// # Errors
    /// [`SadError::DuplicateSpi`]; nothing changes then.
    pub fn install_sa(
        &mut self,
        now: Instant,
        peer: IpAddr,
        endpoint: core::net::SocketAddr,
        outbound: OutboundSa,
        inbound: InboundSa,
        out: &mut Output,
    ) -> Result<(), SadError> {
        self.protection
            .install_sa(now, peer, endpoint, outbound, inbound)?;
        self.flush_pending(now, peer, out);
        Ok(())
    }

    /// Removes every SA of `peer`.
    pub fn remove_sa(&mut self, peer: IpAddr) -> bool {
        self.protection.remove_sa(peer)
    }
}
