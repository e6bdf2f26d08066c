//! The engine: input dispatch, output queues, timers and the error indication.

use core::fmt;
use core::net::IpAddr;
use core::time::Duration;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Instant;

use dmvpn_wire::nhrp::{
    Address, AddressFamily, CieCode, ErrorCode, ErrorIndication, ExtensionType, Message,
    NbmaAddress, Operation, PROTOCOL_IPV4, PROTOCOL_IPV6, Packet, Repr,
};

use crate::auth;
use crate::cache::{Cache, Entry, EntryType};
use crate::config::{Config, ConfigError, Role};
use crate::counters::Counters;
use crate::error::DropReason;
use crate::prefix::{Keyed, Prefix, PrefixMap};
use crate::purge::Holders;
use crate::registration::NhsState;
use crate::resolution::PendingResolution;
use crate::timer::{Timer, TimerTable};

/// `ar$hopcnt` of an Error Indication, as FRR nhrpd sends it.
pub(crate) const HOP_COUNT_ERROR: u8 = 0;
/// `ar$hopcnt` of replies: FRR nhrpd's default.
pub(crate) const HOP_COUNT_DEFAULT: u8 = 64;
/// The most Error Indications sent per second (a tuning constant, in the manner of Cisco's
/// `ip nhrp max-send`): a flood of unauthenticated packets must not become a flood of
/// replies.
pub const ERROR_INDICATIONS_PER_SECOND: u32 = 10;

/// A packet to send: the NHRP message `payload`, to be carried in GRE (protocol type 0x2001)
/// to the NBMA address `dst`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// The NBMA (underlay) destination.
    pub dst: IpAddr,
    /// The NHRP message, from its fixed header.
    pub payload: Vec<u8>,
}

/// Why a cache entry went away.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum RemoveReason {
    /// Its holding time ran out.
    Expired,
    /// A purge request withdrew it (RFC 2332 section 5.2.5).
    Purged,
    /// The operator cleared the dynamic entries ([`Engine::clear_dynamic`], IOS `clear ip
    /// nhrp`).
    Cleared,
}

/// Something the driver or an operator should know: cache and route changes, peer state,
/// refusals and drops (for metrics). Never carries a password.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub enum Event {
    /// A registration with this NHS succeeded after it was down (or at start).
    NhsUp {
        /// The NHS's tunnel address.
        nhs: IpAddr,
        /// Its NBMA address.
        nbma: IpAddr,
    },
    /// This NHS stopped answering ([`crate::registration::UNREACHABLE_COUNT`] requests in a
    /// row) or refused our address.
    NhsDown {
        /// The NHS's tunnel address.
        nhs: IpAddr,
        /// Its NBMA address.
        nbma: IpAddr,
    },
    /// An NHS refused to register one of our prefixes (RFC 2332 section 5.2.4 CIE code).
    RegistrationRefused {
        /// The NHS's tunnel address.
        nhs: IpAddr,
        /// Our prefix it refused (our tunnel address as a host prefix, or a site prefix).
        prefix: Prefix,
        /// Its code, e.g. 14 "unique address already registered".
        code: CieCode,
    },
    /// An NHS saw our packets come from another NBMA address than ours: we are behind NAT
    /// (Cisco NAT extension, second CIE of the registration reply).
    NatDetected {
        /// The NHS's tunnel address.
        nhs: IpAddr,
        /// Our NBMA address as the NHS sees it.
        nat_nbma: IpAddr,
    },
    /// A cache entry appeared.
    CacheAdded {
        /// Its prefix.
        prefix: Prefix,
        /// The entry.
        entry: Entry,
    },
    /// A cache entry changed next hop or NBMA address.
    CacheUpdated {
        /// Its prefix.
        prefix: Prefix,
        /// The new entry.
        entry: Entry,
    },
    /// A cache entry went away.
    CacheRemoved {
        /// Its prefix.
        prefix: Prefix,
        /// The entry as it was.
        entry: Entry,
        /// Why.
        reason: RemoveReason,
    },
    /// The cache refused a dynamic entry: it holds `cache_limit` of them.
    CacheFull {
        /// The refused prefix.
        prefix: Prefix,
    },
    /// A received packet was dropped.
    PacketDropped {
        /// Its outer source address.
        from: IpAddr,
        /// Why.
        reason: DropReason,
    },
    /// A resolution ended without a shortcut (RFC 2332 section 5.2.2).
    ResolutionFailed {
        /// The address that was being resolved.
        target: IpAddr,
        /// The code of the reply, or `None` when no reply came (or an Error Indication
        /// did instead).
        code: Option<CieCode>,
    },
    /// An Error Indication arrived (RFC 2332 section 5.2.7).
    ErrorIndicationReceived {
        /// Its outer source address.
        from: IpAddr,
        /// Its code.
        code: ErrorCode,
    },
}

/// A source of randomness, injected so that a seeded one makes tests reproducible. The
/// engine draws its request IDs, retransmission jitter and the key of its cache's hashes
/// from it, so a deployment gives it an unpredictable source.
pub trait Random {
    /// The next 32 random bits.
    fn next_u32(&mut self) -> u32;
}

/// SplitMix64: a small seeded generator for tests and simulations (not cryptographic, and
/// predictable from its seed: not for a deployed engine, whose hash key must be secret).
#[derive(Debug, Clone)]
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

impl Random for SplitMix64 {
    fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }
}

/// The packets waiting for [`Engine::poll_transmit`]: their bytes back to back in one buffer,
/// which is reused once the queue has been drained, so that sending allocates nothing in the
/// steady state.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    /// The emitted messages.
    bytes: Vec<u8>,
    /// Each queued message: its destination, and where its bytes start and end in `bytes`.
    queue: VecDeque<(IpAddr, usize, usize)>,
}

impl Outbox {
    /// Emits `repr` at the end of the buffer and queues it for `dst`; false, with nothing
    /// queued, when the codec refuses it (a message over 65535 bytes). The engine builds
    /// replies from parsed parts, IP addresses and a validated password, which always fit
    /// their length fields, so it emits them without the codec's checks of those.
    fn push(&mut self, dst: IpAddr, repr: &Repr<'_>) -> bool {
        if self.queue.is_empty() {
            self.bytes.clear();
        }
        let start = self.bytes.len();
        let end = start + repr.buffer_len();
        self.bytes.resize(end, 0);
        match self
            .bytes
            .get_mut(start..end)
            .map(|buf| repr.emit_trusted(buf))
        {
            Some(Ok(_)) => {
                self.queue.push_back((dst, start, end));
                true
            }
            _ => {
                self.bytes.truncate(start);
                false
            }
        }
    }

    /// The next message and its destination.
    fn pop(&mut self) -> Option<(IpAddr, &[u8])> {
        let (dst, start, end) = self.queue.pop_front()?;
        Some((dst, self.bytes.get(start..end).unwrap_or_default()))
    }
}

/// Emits `repr` for `dst` into `outbox` and counts it as sent. It takes the two fields
/// rather than the engine, so that `repr` may borrow the rest of the engine (the password
/// of its configuration).
pub(crate) fn send(outbox: &mut Outbox, counters: &mut Counters, dst: IpAddr, repr: &Repr<'_>) {
    if outbox.push(dst, repr) {
        counters.sent.bump(repr.operation());
    }
}

/// The NHRP engine of one interface (one network id): hub or spoke, as configured.
pub struct Engine {
    pub(crate) config: Config,
    pub(crate) cache: Cache,
    pub(crate) timers: TimerTable,
    pub(crate) nhs: Vec<NhsState>,
    pub(crate) counters: Counters,
    pub(crate) outbox: Outbox,
    events: VecDeque<Event>,
    pub(crate) rng: Box<dyn Random + Send>,
    pub(crate) next_request_id: u32,
    /// Resolutions in flight, by request ID.
    pub(crate) resolutions: BTreeMap<u32, PendingResolution>,
    /// When the last Traffic Indication went out per (source, destination) pair.
    pub(crate) redirects: BTreeMap<(IpAddr, IpAddr), Instant>,
    /// When to check each shortcut for a refresh, in time order.
    pub(crate) shortcut_refresh: BTreeSet<(Instant, Prefix)>,
    /// The NHS's record of who holds a shortcut for each registered prefix (hashed: it is
    /// written on every resolution request; each prefix's holders stay sorted, so purges go
    /// out in address order).
    pub(crate) shortcut_holders: PrefixMap<Holders>,
    /// The number of (prefix, holder) pairs in `shortcut_holders`.
    pub(crate) shortcut_holders_len: usize,
    /// The start of the current one-second window of Error Indications and how many went
    /// out in it.
    error_window: Option<(Instant, u32)>,
}

impl fmt::Debug for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine")
            .field("config", &self.config)
            .field("cache", &self.cache.len())
            .field("nhs", &self.nhs)
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// An engine started at `now`: its own addresses and prefixes become local cache
    /// entries, its NHSs static ones, and a spoke registers at once.
    ///
    /// # Errors
    /// The [`ConfigError`] of [`Config::validate`].
    pub fn new(
        config: Config,
        mut rng: Box<dyn Random + Send>,
        now: Instant,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        let next_request_id = rng.next_u32();
        // The key of the cache's hashes: secret, so that peers cannot aim at one bucket.
        let hash_seed = (u64::from(rng.next_u32()) << 32) | u64::from(rng.next_u32());
        let mut cache = Cache::with_seed(config.cache_limit, hash_seed);
        let local = |prefix_owner: IpAddr| Entry {
            kind: EntryType::Local,
            tunnel: prefix_owner,
            nbma: config.nbma_address,
            claimed_nbma: config.nbma_address,
            created: now,
            expires: None,
            holdtime: config.holdtime,
            unique: config.unique,
            request_id: 0,
            used: false,
        };
        let me = config.tunnel_address;
        let mut inserts = vec![(Prefix::host(me), local(me))];
        inserts.extend(config.advertised_prefixes.iter().map(|p| (*p, local(me))));
        inserts.extend(config.nhs.iter().map(|n| {
            (
                Prefix::host(n.tunnel),
                Entry {
                    kind: EntryType::Static,
                    tunnel: n.tunnel,
                    nbma: n.nbma,
                    claimed_nbma: n.nbma,
                    created: now,
                    expires: None,
                    holdtime: 0,
                    unique: false,
                    request_id: 0,
                    used: false,
                },
            )
        }));
        for (prefix, entry) in inserts {
            // Local and static entries are not dynamic: the limit does not apply.
            let _ = cache.insert(prefix, entry);
        }
        let mut timers = TimerTable::new(config.nhs.len());
        let nhs = config
            .nhs
            .iter()
            .enumerate()
            .map(|(i, n)| {
                timers.set(Timer::Registration(i), Some(now));
                NhsState::new(*n, now)
            })
            .collect();
        let mut engine = Engine {
            config,
            cache,
            timers,
            nhs,
            counters: Counters::default(),
            outbox: Outbox::default(),
            events: VecDeque::new(),
            rng,
            next_request_id,
            resolutions: BTreeMap::new(),
            redirects: BTreeMap::new(),
            error_window: None,
            shortcut_refresh: BTreeSet::new(),
            shortcut_holders: PrefixMap::with_hasher(Keyed::with_seed(hash_seed)),
            shortcut_holders_len: 0,
        };
        engine.reselect_nhs(now);
        Ok(engine)
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The counters (`show ip nhrp traffic`, drops, refusals).
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The cache.
    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    /// The longest-prefix match for `addr`: the entry whose NBMA address the dataplane
    /// sends a packet for `addr` to.
    pub fn lookup(&self, addr: IpAddr) -> Option<(Prefix, &Entry)> {
        self.cache.lookup(addr)
    }

    /// The multicast replication set: the NBMA addresses of the NHSs (`ip nhrp map
    /// multicast` of a spoke) and, with [`Config::multicast_dynamic`] (`ip nhrp map
    /// multicast dynamic` on a hub), of the peers registered here; sorted.
    pub fn multicast_peers(&self) -> Vec<IpAddr> {
        let dynamic = self.config.multicast_dynamic;
        let set: BTreeSet<IpAddr> = self
            .cache
            .iter()
            .filter(|(p, e)| {
                e.kind == EntryType::Static
                    || (dynamic && e.kind == EntryType::Registered && p.is_host())
            })
            .map(|(_, e)| e.nbma)
            .collect();
        set.into_iter().collect()
    }

    /// The next packet to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.outbox.pop().map(|(dst, payload)| Transmit {
            dst,
            payload: payload.to_vec(),
        })
    }

    /// The next packet to send, written into `buf` (cleared first) instead of a fresh
    /// buffer: the same queue as [`Engine::poll_transmit`], for a driver that reuses its
    /// send buffer. Returns the NBMA destination, or `None` (and `buf` untouched) when
    /// nothing waits.
    pub fn poll_transmit_into(&mut self, buf: &mut Vec<u8>) -> Option<IpAddr> {
        let (dst, payload) = self.outbox.pop()?;
        buf.clear();
        buf.extend_from_slice(payload);
        Some(dst)
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Engine::handle_timeout`] must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }

    /// Runs the timers that are due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        for timer in self.timers.take_expired(now) {
            match timer {
                Timer::Registration(i) => self.registration_timer(now, i),
                Timer::Resolution => self.resolution_timer(now),
                Timer::ShortcutRefresh => self.shortcut_refresh_timer(now),
                Timer::CacheExpiry => {
                    for (prefix, entry) in self.cache.expire(now) {
                        // The shortcuts handed out for it expire no later than it did.
                        if let Some(holders) = self.shortcut_holders.remove(&prefix) {
                            self.shortcut_holders_len -= holders.len();
                        }
                        self.event(Event::CacheRemoved {
                            prefix,
                            entry,
                            reason: RemoveReason::Expired,
                        });
                    }
                }
            }
        }
        self.sync_cache_timer();
    }

    /// Processes an NHRP packet (from its fixed header) that arrived in GRE from the NBMA
    /// address `from_nbma`. A bad packet is dropped and counted (and answered with an Error
    /// Indication where Cisco sends one); it never panics.
    pub fn handle_packet(&mut self, now: Instant, from_nbma: IpAddr, bytes: &[u8]) {
        if let Err(reason) = self.dispatch(now, from_nbma, bytes) {
            self.drop_packet(from_nbma, reason);
        }
        self.sync_cache_timer();
    }

    fn dispatch(&mut self, now: Instant, from: IpAddr, bytes: &[u8]) -> Result<(), DropReason> {
        let packet = Packet::new_checked(bytes).map_err(|_| DropReason::Malformed)?;
        // Destructured in place: a `map_err` moved the whole parsed message and index.
        let Ok((repr, exts)) = Repr::parse_indexed(&packet) else {
            return Err(DropReason::Malformed);
        };
        self.check_families(&repr)?;
        if let Message::ErrorIndication(ind) = repr.message {
            // Acted on only as an event and a counter, or relayed under the rate limit, so
            // accepted without authentication: nhrpd and Cisco send it without extensions.
            self.counters.received.bump(Operation::ErrorIndication);
            if let Some(dst) = self.relayed_error_destination(&repr, &ind) {
                return self.relay_error_indication(now, from, dst, &repr, &ind);
            }
            self.event(Event::ErrorIndicationReceived {
                from,
                code: ind.code,
            });
            self.resolution_error(from, &ind);
            return Ok(());
        }
        if let Err(reason) = auth::check(
            self.config.password.as_ref(),
            exts.get(ExtensionType::Authentication),
        ) {
            // FRR nhrpd answers an authentication failure with Error Indication code 11;
            // never in answer to an Error Indication (handled above).
            // A hop-by-hop matter (RFC 2332 section 5.3.4): for the previous hop only.
            self.send_error_indication(
                now,
                from,
                ErrorCode::AuthenticationFailure,
                bytes,
                &repr,
                HOP_COUNT_ERROR,
            );
            return Err(reason);
        }
        self.counters.received.bump(repr.operation());
        let handled = match repr.message {
            Message::RegistrationRequest(reg) if self.config.role == Role::Hub => {
                self.serve_registration(now, from, &repr, &exts, &reg)
            }
            Message::RegistrationReply(reg) => self.registration_reply(now, from, &exts, &reg),
            Message::ResolutionRequest(req) => self.serve_resolution(now, from, &repr, &exts, &req),
            Message::ResolutionReply(reply) => {
                self.resolution_reply(now, from, &repr, &exts, &reply)
            }
            Message::TrafficIndication(ind) => self.traffic_indication(now, from, &ind),
            Message::PurgeRequest(purge) => self.serve_purge(from, &repr, &purge),
            // Nothing waits for it: a purge is done when sent.
            Message::PurgeReply(_) => Ok(()),
            _ => Err(DropReason::UnexpectedMessage),
        };
        // The forwarding errors of RFC 2332 section 5.2.7 go to the source of the packet in
        // error through the previous hop: straight back (hop count 0, as nhrpd) when the
        // source sent it to us, else routed there hop by hop like the request came.
        let code = match handled {
            Err(DropReason::LoopDetected) => Some(ErrorCode::LoopDetected),
            Err(DropReason::HopCountExceeded) => Some(ErrorCode::HopCountExceeded),
            Err(DropReason::ProtocolAddressUnreachable) => {
                Some(ErrorCode::ProtocolAddressUnreachable)
            }
            _ => None,
        };
        if let Some(code) = code {
            let relayed = matches!(repr.message, Message::ResolutionRequest(_))
                && exts
                    .get(ExtensionType::ForwardTransit)
                    .and_then(|e| e.cies())
                    .is_some_and(|cies| !cies.is_empty());
            let hop_count = if relayed {
                HOP_COUNT_DEFAULT
            } else {
                HOP_COUNT_ERROR
            };
            self.send_error_indication(now, from, code, bytes, &repr, hop_count);
        }
        handled
    }

    /// Where an NHS relays an Error Indication (RFC 2332 section 5.2.7: it goes to the
    /// source of the packet in error, its destination protocol address): `None` when it is
    /// ours to consume, being addressed to us, sent with hop count 0 (straight to its
    /// destination, as nhrpd does) or received by a spoke.
    fn relayed_error_destination(
        &self,
        repr: &Repr<'_>,
        ind: &ErrorIndication<'_>,
    ) -> Option<IpAddr> {
        if self.config.role != Role::Hub || repr.hop_count == 0 {
            return None;
        }
        self.tunnel_ip(ind.dst_proto)
            .filter(|dst| *dst != self.config.tunnel_address)
    }

    /// Relays an Error Indication toward `dst` (RFC 2332 section 5.2.7): to the NBMA address
    /// `dst` registered here, else to the next hop of our route for it, else to our most
    /// preferred NHS that is up; never back to the sender, with the hop count decremented
    /// and under the rate limit of the Error Indications we send. Never answered with an
    /// Error Indication.
    ///
    /// # Errors
    /// [`DropReason::HopCountExceeded`] when the hop count would reach 0,
    /// [`DropReason::ProtocolAddressUnreachable`] when no next hop qualifies.
    fn relay_error_indication(
        &mut self,
        now: Instant,
        from: IpAddr,
        dst: IpAddr,
        repr: &Repr<'_>,
        ind: &ErrorIndication<'_>,
    ) -> Result<(), DropReason> {
        let next = self
            .registered_nbma(dst)
            .or_else(|| self.route(dst).and_then(|hop| self.next_hop_nbma(hop)))
            .filter(|nbma| *nbma != from)
            .or_else(|| {
                self.nhs
                    .iter()
                    .filter(|s| s.up && s.config.nbma != from)
                    .min_by_key(|s| s.config.priority)
                    .map(|s| s.config.nbma)
            })
            .ok_or(DropReason::ProtocolAddressUnreachable)?;
        if repr.hop_count <= 1 {
            return Err(DropReason::HopCountExceeded);
        }
        if !self.error_allowed(now) {
            return Ok(());
        }
        let relayed = Repr {
            hop_count: repr.hop_count - 1,
            message: Message::ErrorIndication(*ind),
            // As it is sent: without extensions (RFC 2332 section 5.2.7 and nhrpd).
            extensions: None,
            ..*repr
        };
        send(&mut self.outbox, &mut self.counters, next, &relayed);
        Ok(())
    }

    /// Whether one more Error Indication may go out in the current one-second window of
    /// [`ERROR_INDICATIONS_PER_SECOND`]; counts it, or the suppression.
    fn error_allowed(&mut self, now: Instant) -> bool {
        let sent = match self.error_window {
            Some((start, sent))
                if now.saturating_duration_since(start) < Duration::from_secs(1) =>
            {
                sent
            }
            _ => {
                self.error_window = Some((now, 0));
                0
            }
        };
        if sent >= ERROR_INDICATIONS_PER_SECOND {
            self.counters.error_indications_suppressed += 1;
            return false;
        }
        self.error_window = self.error_window.map(|(start, n)| (start, n + 1));
        true
    }

    /// Checks `ar$afn` and `ar$pro.type` against the interface's families.
    fn check_families(&self, repr: &Repr<'_>) -> Result<(), DropReason> {
        let afn = if self.config.nbma_address.is_ipv4() {
            AddressFamily::Ipv4
        } else {
            AddressFamily::Ipv6
        };
        let protocol = if self.config.tunnel_address.is_ipv4() {
            PROTOCOL_IPV4
        } else {
            PROTOCOL_IPV6
        };
        if repr.afn != afn || repr.protocol_type != protocol {
            return Err(DropReason::WrongAddressFamily);
        }
        Ok(())
    }

    /// The IP address in `addr` if it is of the tunnel family.
    pub(crate) fn tunnel_ip(&self, addr: Address<'_>) -> Option<IpAddr> {
        addr.ip()
            .filter(|ip| ip.is_ipv4() == self.config.tunnel_address.is_ipv4())
    }

    /// The IP address in `addr` if it is of the NBMA family.
    pub(crate) fn nbma_ip(&self, addr: NbmaAddress<'_>) -> Option<IpAddr> {
        addr.address
            .ip()
            .filter(|ip| ip.is_ipv4() == self.config.nbma_address.is_ipv4())
    }

    /// Sends an Error Indication (RFC 2332 section 5.2.7) about the packet `bytes` back to
    /// `to`: hop count 0 and the flags of the packet in error in the unused word as FRR
    /// nhrpd sends it, no extensions, and the whole packet in error as the contents, as the
    /// RFC says and as ../shared/vectors/nhrp/07 has it. (nhrpd carries only the fixed header
    /// and addresses, whose `ar$pktsz` then runs past the contents: Wireshark calls that
    /// malformed.) The contents go back only toward their own sender: its source protocol
    /// address is the destination, and `hop_count` above 0 lets the NHSs on the way relay it
    /// there ([`Engine::relay_error_indication`]).
    fn send_error_indication(
        &mut self,
        now: Instant,
        to: IpAddr,
        code: ErrorCode,
        bytes: &[u8],
        repr: &Repr<'_>,
        hop_count: u8,
    ) {
        if !self.error_allowed(now) {
            return;
        }
        let packet = Packet::new_unchecked(bytes);
        let size = usize::from(packet.packet_size());
        let extoff = usize::from(packet.extension_offset());
        let contents = bytes.get(..size).unwrap_or(bytes);
        let flags = bytes
            .get(22..24)
            .map_or(0, |f| u16::from_be_bytes([f[0], f[1]]));
        let offset = auth_extension_offset(bytes, extoff, size).unwrap_or(0);
        let source = message_source(&repr.message);
        let ind = Repr {
            afn: repr.afn,
            protocol_type: repr.protocol_type,
            protocol_snap: [0; 5],
            hop_count,
            message: Message::ErrorIndication(ErrorIndication {
                unused: flags,
                code,
                offset,
                src_nbma: NbmaAddress::from(Address::from(self.config.nbma_address)),
                src_nbma_sub: NbmaAddress::NONE,
                src_proto: Address::from(self.config.tunnel_address),
                dst_proto: source,
                packet: contents,
            }),
            extensions: None,
        };
        send(&mut self.outbox, &mut self.counters, to, &ind);
    }

    /// Queues an event.
    pub(crate) fn event(&mut self, event: Event) {
        self.events.push_back(event);
    }

    /// Counts a dropped packet and reports it.
    fn drop_packet(&mut self, from: IpAddr, reason: DropReason) {
        self.counters.drop(reason);
        self.event(Event::PacketDropped { from, reason });
    }

    /// Draws a fresh request ID (RFC 2332 section 5.2.0.1: unique per source); the first is
    /// random so that a restarted router does not reuse the IDs of its previous life.
    pub(crate) fn request_id(&mut self) -> u32 {
        let id = self.next_request_id;
        self.next_request_id = id.wrapping_add(1);
        id
    }

    pub(crate) fn sync_cache_timer(&mut self) {
        self.timers
            .set(Timer::CacheExpiry, self.cache.next_expiry());
    }
}

/// The source protocol address of a message, for the destination of an Error Indication.
fn message_source<'a>(message: &Message<'a>) -> Address<'a> {
    match message {
        Message::ResolutionRequest(h) | Message::ResolutionReply(h) => h.src_proto,
        Message::RegistrationRequest(h) | Message::RegistrationReply(h) => h.src_proto,
        Message::PurgeRequest(h) | Message::PurgeReply(h) => h.src_proto,
        Message::ErrorIndication(e) => e.src_proto,
        Message::TrafficIndication(t) => t.src_proto,
        Message::Unknown { .. } => Address::Empty,
    }
}

/// The offset (from `ar$afn`) of the authentication extension of a parsed message whose
/// extensions start at `extoff` and end at `size`, for the error offset of code 11.
fn auth_extension_offset(bytes: &[u8], extoff: usize, size: usize) -> Option<u16> {
    if extoff == 0 {
        return None;
    }
    let mut at = extoff;
    while at + 4 <= size {
        let head = bytes.get(at..at + 4)?;
        let ty = u16::from_be_bytes([head[0], head[1]]) & 0x3fff;
        if ExtensionType::from(ty) == ExtensionType::Authentication {
            return u16::try_from(at).ok();
        }
        if ExtensionType::from(ty) == ExtensionType::End {
            return None;
        }
        at += 4 + usize::from(u16::from_be_bytes([head[2], head[3]]));
    }
    None
}
