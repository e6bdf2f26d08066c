//! Registration (RFC 2332 sections 5.2.3 and 5.2.4): the client registers its tunnel address
//! and site prefixes with each NHS and refreshes them; the server records them in its cache.
//!
//! Client packets are FRR nhrpd's (`nhrp_nhs.c`): hop count 1, flags U|NAT (0x8002), one CIE
//! with prefix length 0xFF and no addresses for the tunnel address, then extensions Forward
//! Transit, Reverse Transit, Responder Address (all empty), the Cisco NAT extension naming the
//! NHS, the authentication extension, End. Site prefixes follow the first CIE as one CIE each
//! (client NBMA = ours, client protocol address = the network, its prefix length): RFC 2332
//! section 5.2.3 allows a CIE to cover a prefix. nhrpd and Cisco hubs answer such CIEs with a
//! non-zero code and keep the host registration; without site prefixes the request is
//! nhrpd's byte for byte.
//!
//! # Uniqueness and a restarted spoke
//! A unique registration (U flag) that names a prefix held by a live entry from another NBMA
//! address, or a registration of a prefix held by a live unique entry, is refused with CIE
//! code 14 "unique address already registered" and the entry is left as it was: nothing in
//! NHRP proves that the new NBMA address belongs to the same spoke, so accepting it would
//! let anyone hijack a tunnel address. This is Cisco IOS's behaviour. A spoke that restarts
//! behind a new NBMA address with unique registrations is therefore refused until its old
//! entry's holding time runs out, retrying with backoff meanwhile; with `unique = false`
//! (Cisco `ip nhrp registration no-unique`) the NHS replaces the entry at once. A spoke
//! that keeps running while its address changes ([`Engine::set_nbma_address`]) knows the
//! request ID of its registration and purges it first ([`crate::purge`]), so the NHS
//! accepts the new address at once.

use core::net::IpAddr;
use core::time::Duration;
use std::time::Instant;

use dmvpn_wire::Seq;
use dmvpn_wire::nhrp::{
    Address, AddressFamily, Cie, CieCode, Extension, ExtensionBody, ExtensionIndex, ExtensionType,
    Message, NbmaAddress, PROTOCOL_IPV4, PROTOCOL_IPV6, Registration, RegistrationFlags, Repr,
};

use crate::cache::{Entry, EntryType};
use crate::config::NhsConfig;
use crate::engine::{Engine, Event, HOP_COUNT_DEFAULT, send};
use crate::error::DropReason;
use crate::nhs::Selection;
use crate::prefix::{Prefix, host_len};
use crate::small::SmallList;
use crate::timer::Timer;

/// `ar$hopcnt` of a Registration Request: FRR nhrpd sends 1 (the NHS is one hop away).
pub const HOP_COUNT_REGISTRATION: u8 = 1;
/// The prefix length of the CIE of a unique registration: nhrpd and Cisco send 0xFF.
pub const PREFIX_LEN_UNIQUE: u8 = 0xff;
/// The first retransmission timeout; a random 0-1 s is added, as nhrpd waits 1-2 s.
pub const RETRY_INITIAL: Duration = Duration::from_secs(1);
/// The longest retransmission timeout (nhrpd restarts its NHS after 64 s).
pub const RETRY_MAX: Duration = Duration::from_secs(64);
/// Unanswered requests in a row after which an NHS is down (nhrpd
/// `NHRP_UNREACHABLE_COUNT`).
pub const UNREACHABLE_COUNT: u32 = 3;

/// Where the client stands in its request/reply exchange with one NHS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exchange {
    /// No request is waiting: the timer sends the next one (refresh, or retry after a
    /// refusal) with a fresh request ID.
    Idle {
        /// The ID of the last request, for the show output (0 before the first).
        last_request_id: u32,
    },
    /// A request waits for its reply; the timer retransmits it with the same ID.
    Pending {
        /// Its request ID.
        request_id: u32,
        /// Transmissions without a reply beyond the first.
        unanswered: u32,
    },
}

impl Exchange {
    /// The request ID in flight or last sent.
    pub(crate) fn request_id(self) -> u32 {
        match self {
            Exchange::Idle { last_request_id } => last_request_id,
            Exchange::Pending { request_id, .. } => request_id,
        }
    }

    /// Transmissions without a reply beyond the first.
    pub(crate) fn unanswered(self) -> u32 {
        match self {
            Exchange::Idle { .. } => 0,
            Exchange::Pending { unanswered, .. } => unanswered,
        }
    }
}

/// The client's registration state with one NHS.
#[derive(Debug, Clone)]
pub(crate) struct NhsState {
    pub(crate) config: NhsConfig,
    /// The last registration succeeded and the NHS has not stopped answering since.
    pub(crate) up: bool,
    /// When `up` last changed (or the engine started).
    pub(crate) since: Instant,
    /// The request in flight, if any.
    pub(crate) exchange: Exchange,
    /// The wait before the next retransmission.
    pub(crate) backoff: Duration,
    /// Our NBMA address as this NHS sees it, when it differs from ours.
    pub(crate) nat_nbma: Option<IpAddr>,
    /// The codes of our last registration, CIE by CIE (tunnel address first).
    pub(crate) codes: Vec<CieCode>,
    /// The request ID of the registration the NHS last accepted.
    pub(crate) registered_id: Option<u32>,
    /// A registration to purge before registering (its request ID and the NBMA address it
    /// was made from), after our NBMA address changed.
    pub(crate) purge: Option<(u32, IpAddr)>,
    /// [`UNREACHABLE_COUNT`] requests in a row went unanswered, or the last registration
    /// was refused ([`crate::nhs`]).
    pub(crate) unreachable: bool,
    /// How NHS priority treats this NHS.
    pub(crate) selection: Selection,
}

impl NhsState {
    pub(crate) fn new(config: NhsConfig, now: Instant) -> Self {
        NhsState {
            config,
            up: false,
            since: now,
            exchange: Exchange::Idle { last_request_id: 0 },
            backoff: RETRY_INITIAL,
            nat_nbma: None,
            codes: Vec::new(),
            registered_id: None,
            purge: None,
            unreachable: false,
            selection: Selection::Active,
        }
    }
}

impl Engine {
    pub(crate) fn initial_backoff(&mut self) -> Duration {
        RETRY_INITIAL + Duration::from_millis(u64::from(self.rng.next_u32() % 1000))
    }

    /// The path to the NHS at `nbma` changed under NHRP (new IPsec SAs after it stopped
    /// answering or failed a liveness check): the NHS may have lost our registration with
    /// its SAs, so we register at once (RFC 2332 section 5.2.3 leaves the schedule open): a
    /// request still waiting for its reply is retransmitted with its backoff started over,
    /// else a new one goes instead of waiting for the refresh.
    pub fn nhs_path_changed(&mut self, now: Instant, nbma: IpAddr) {
        for i in 0..self.nhs.len() {
            if self.nhs[i].config.nbma != nbma {
                continue;
            }
            let backoff = self.initial_backoff();
            self.nhs[i].backoff = backoff;
            self.timers.set(Timer::Registration(i), Some(now));
        }
    }

    /// The registration timer of NHS `i`: a new request (refresh, or retry after a refusal)
    /// or a retransmission of the pending one, then the next wait with doubled backoff.
    pub(crate) fn registration_timer(&mut self, now: Instant, i: usize) {
        let Some(st) = self.nhs.get(i) else {
            return;
        };
        match st.exchange {
            Exchange::Pending {
                request_id,
                unanswered,
            } => {
                let unanswered = unanswered + 1;
                let st = &mut self.nhs[i];
                st.exchange = Exchange::Pending {
                    request_id,
                    unanswered,
                };
                st.unreachable |= unanswered >= UNREACHABLE_COUNT;
                if st.up && unanswered >= UNREACHABLE_COUNT {
                    st.up = false;
                    st.since = now;
                    let (nhs, nbma) = (st.config.tunnel, st.config.nbma);
                    self.event(Event::NhsDown { nhs, nbma });
                }
            }
            Exchange::Idle { .. } => {
                let request_id = self.request_id();
                self.nhs[i].exchange = Exchange::Pending {
                    request_id,
                    unanswered: 0,
                };
            }
        }
        if let Some((id, old)) = self.nhs[i].purge {
            self.send_registration_purge(i, id, old);
        }
        self.send_registration(i);
        let wait = self.retry_wait(i);
        self.timers.set(Timer::Registration(i), Some(now + wait));
        self.reselect_nhs(now);
    }

    /// The wait before the next retry to NHS `i`: holdtime/4 for a probe of an
    /// unreachable better NHS ([`crate::nhs`]), else the backoff, which doubles.
    fn retry_wait(&mut self, i: usize) -> Duration {
        if self.nhs[i].selection == Selection::Probe {
            return self.probe_interval();
        }
        let st = &mut self.nhs[i];
        let wait = st.backoff;
        st.backoff = (st.backoff * 2).min(RETRY_MAX);
        wait
    }

    /// Emits the registration request to NHS `i`.
    fn send_registration(&mut self, i: usize) {
        let st = &self.nhs[i];
        let cfg = &self.config;
        let me = cfg.tunnel_address;
        let (mtu, hold) = (cfg.mtu, cfg.holdtime);
        let own_nbma = NbmaAddress::from(Address::from(cfg.nbma_address));
        let first_len = if cfg.unique {
            PREFIX_LEN_UNIQUE
        } else {
            host_len(me)
        };
        let mut cies = vec![Cie::request(first_len, mtu, hold)];
        cies.extend(cfg.advertised_prefixes.iter().map(|p| Cie {
            prefix_len: p.prefix_len(),
            nbma: own_nbma,
            proto: Address::from(p.addr()),
            ..Cie::request(p.prefix_len(), mtu, hold)
        }));
        let nat = [Cie::host(st.config.nbma, st.config.tunnel, mtu, 0)];
        let mut exts = vec![
            Extension::new(ExtensionBody::ForwardTransit(Seq::empty())),
            Extension::new(ExtensionBody::ReverseTransit(Seq::empty())),
            Extension::new(ExtensionBody::ResponderAddress(Seq::empty())),
            Extension::new(ExtensionBody::NatAddress(Seq::Items(&nat))),
        ];
        if let Some(pw) = &cfg.password {
            exts.push(Extension::cleartext_password(pw.expose()));
        }
        let flags = if cfg.unique {
            RegistrationFlags::UNIQUE | RegistrationFlags::NAT
        } else {
            RegistrationFlags::NAT
        };
        let repr = Repr {
            afn: family(cfg.nbma_address),
            protocol_type: protocol(me),
            protocol_snap: [0; 5],
            hop_count: HOP_COUNT_REGISTRATION,
            message: Message::RegistrationRequest(Registration {
                flags,
                request_id: st.exchange.request_id(),
                src_nbma: own_nbma,
                src_nbma_sub: NbmaAddress::NONE,
                src_proto: Address::from(me),
                dst_proto: Address::from(st.config.tunnel),
                cies: Seq::Items(&cies),
            }),
            extensions: Some(Seq::Items(&exts)),
        };
        send(&mut self.outbox, &mut self.counters, st.config.nbma, &repr);
    }

    /// A registration reply at the client: matches it with the pending request, records
    /// the codes and our NAT address, and schedules the refresh at
    /// [`crate::config::Config::registration_interval`] (RFC 2332
    /// section 5.2.3) or, after a refusal, a retry with backoff.
    pub(crate) fn registration_reply(
        &mut self,
        now: Instant,
        from: IpAddr,
        exts: &ExtensionIndex<'_>,
        reg: &Registration<'_>,
    ) -> Result<(), DropReason> {
        let i = self
            .nhs
            .iter()
            .position(|s| {
                matches!(s.exchange, Exchange::Pending { request_id, .. } if request_id == reg.request_id)
            })
            .ok_or(DropReason::UnknownRequestId)?;
        if self.nhs[i].config.nbma != from {
            return Err(DropReason::UnknownNhs);
        }
        let codes: Vec<CieCode> = reg.cies.iter().map(|c| c.code).collect();
        if codes.len() < 1 + self.config.advertised_prefixes.len() {
            return Err(DropReason::MissingCie);
        }
        let nat_nbma = exts
            .get(ExtensionType::NatAddress)
            .and_then(|ext| ext.cies())
            .and_then(|cies| cies.iter().nth(1))
            .and_then(|cie| self.nbma_ip(cie.nbma));
        let own = Prefix::host(self.config.tunnel_address);
        let prefixes: Vec<Prefix> = core::iter::once(own)
            .chain(self.config.advertised_prefixes.iter().copied())
            .collect();
        let st = &mut self.nhs[i];
        let (nhs, nbma) = (st.config.tunnel, st.config.nbma);
        st.exchange = Exchange::Idle {
            last_request_id: reg.request_id,
        };
        let mut events = Vec::new();
        for (k, (prefix, code)) in prefixes.iter().zip(&codes).enumerate() {
            if *code != CieCode::Success && st.codes.get(k) != Some(code) {
                events.push(Event::RegistrationRefused {
                    nhs,
                    prefix: *prefix,
                    code: *code,
                });
            }
        }
        st.codes = codes;
        if nat_nbma.is_some() && nat_nbma != st.nat_nbma {
            events.extend(nat_nbma.map(|nat_nbma| Event::NatDetected { nhs, nat_nbma }));
        }
        st.nat_nbma = nat_nbma;
        let accepted = st.codes[0] == CieCode::Success;
        st.unreachable = !accepted;
        if accepted {
            st.registered_id = Some(reg.request_id);
            st.purge = None;
        }
        if accepted != st.up {
            st.up = accepted;
            st.since = now;
            events.push(if accepted {
                Event::NhsUp { nhs, nbma }
            } else {
                Event::NhsDown { nhs, nbma }
            });
        }
        let next = if accepted {
            let refresh = self.config.registration_interval();
            let backoff = self.initial_backoff();
            self.nhs[i].backoff = backoff;
            refresh
        } else {
            self.retry_wait(i)
        };
        self.timers.set(Timer::Registration(i), Some(now + next));
        events.into_iter().for_each(|e| self.event(e));
        self.reselect_nhs(now);
        Ok(())
    }

    /// A registration request at the NHS: registers each CIE, then replies with per-CIE
    /// codes to the NBMA address the request came from.
    pub(crate) fn serve_registration(
        &mut self,
        now: Instant,
        from: IpAddr,
        repr: &Repr<'_>,
        exts: &ExtensionIndex<'_>,
        reg: &Registration<'_>,
    ) -> Result<(), DropReason> {
        let src = self
            .tunnel_ip(reg.src_proto)
            .ok_or(DropReason::WrongAddressFamily)?;
        let claimed = self
            .nbma_ip(reg.src_nbma)
            .ok_or(DropReason::WrongAddressFamily)?;
        // Addressed to us, or to the spoke itself (nhrpd's `nhs dynamic` before it knows us).
        let dst = self.tunnel_ip(reg.dst_proto);
        if dst != Some(self.config.tunnel_address) && dst != Some(src) {
            return Err(DropReason::NotForUs);
        }
        if !self.config.tunnel_subnet().contains(src) || src == self.config.tunnel_address {
            return Err(DropReason::SourceOutsideSubnet);
        }
        if reg.cies.is_empty() {
            return Err(DropReason::MissingCie);
        }
        let unique = reg.flags.contains(RegistrationFlags::UNIQUE);
        let peer = Peer {
            tunnel: src,
            nbma: from,
            claimed,
            unique,
            request_id: reg.request_id,
        };
        // The lists hold the usual request (a host CIE and a few site prefixes; nhrpd's four
        // extensions and authentication) on the stack.
        let mut reply_cies: SmallList<Cie<'_>, 4> = SmallList::new(Cie::request(0, 0, 0));
        let mut refused = 0;
        // The number of registrations the peer holds, looked up once the first CIE needs it.
        let mut owned_count = None;
        for cie in reg.cies.iter() {
            let code = self.register_cie(now, peer, &cie, &mut owned_count);
            refused += u64::from(code != CieCode::Success);
            reply_cies.push(Cie { code, ..cie });
        }
        self.counters.registrations_refused += refused;
        let cfg = &self.config;
        let responder = [Cie::host(
            cfg.nbma_address,
            cfg.tunnel_address,
            cfg.mtu,
            cfg.holdtime,
        )];
        // The request's extensions, from the index when it holds the list in order (the
        // usual list), else by one walk over the list.
        let mut reply_exts: SmallList<Extension<'_>, 8> = SmallList::new(Extension::new(
            ExtensionBody::ResponderAddress(Seq::empty()),
        ));
        if let Some(list) = repr.extensions {
            match exts.in_order() {
                Some(all) => reply_exts.extend(all),
                None => reply_exts.extend(list.iter()),
            }
        }
        // Behind NAT, the NAT extension gets a CIE naming the address the request came from
        // (Cisco's NAT extension); otherwise it goes back as it came, like the transit
        // extensions and as nhrpd copies it.
        let nat_cies = exts
            .get(ExtensionType::NatAddress)
            .and_then(|e| e.cies())
            .filter(|_| from != claimed)
            .map(|cies| {
                let mut list: SmallList<Cie<'_>, 4> = SmallList::new(Cie::request(0, 0, 0));
                list.extend(cies.iter());
                list.push(Cie::host(from, src, cfg.mtu, 0));
                list
            });
        for ext in reply_exts.as_mut_slice() {
            match (&ext.body, &nat_cies) {
                (ExtensionBody::ResponderAddress(_), _) => {
                    ext.body = ExtensionBody::ResponderAddress(Seq::Items(&responder));
                }
                (ExtensionBody::NatAddress(_), Some(nat)) => {
                    ext.body = ExtensionBody::NatAddress(Seq::Items(nat.as_slice()));
                }
                _ => {}
            }
        }
        let reply = Repr {
            hop_count: HOP_COUNT_DEFAULT,
            message: Message::RegistrationReply(Registration {
                cies: Seq::Items(reply_cies.as_slice()),
                ..*reg
            }),
            extensions: repr.extensions.map(|_| Seq::Items(reply_exts.as_slice())),
            ..*repr
        };
        send(&mut self.outbox, &mut self.counters, from, &reply);
        Ok(())
    }

    /// Registers one CIE of `peer`'s request and returns its code (RFC 2332 section 5.2.4).
    /// `owned_count` is the number of registrations `peer` holds, once a CIE looked it up;
    /// this keeps it current for the next CIE of the request.
    fn register_cie(
        &mut self,
        now: Instant,
        peer: Peer,
        cie: &Cie<'_>,
        owned_count: &mut Option<usize>,
    ) -> CieCode {
        let proto = match cie.proto {
            Address::Empty => Some(peer.tunnel),
            other => self.tunnel_ip(other),
        };
        let nbma = match cie.nbma.address {
            Address::Empty => Some(peer.claimed),
            _ => self.nbma_ip(cie.nbma),
        };
        let (Some(proto), Some(claimed)) = (proto, nbma) else {
            return CieCode::AdministrativelyProhibited;
        };
        let len = cie.prefix_len.min(host_len(proto));
        let Ok(prefix) = Prefix::new(proto, len) else {
            return CieCode::AdministrativelyProhibited;
        };
        let subnet = self.config.tunnel_subnet();
        // A peer registers its own tunnel address, or site prefixes outside the tunnel
        // subnet (never one covering it: no 0.0.0.0/0 taking the overlay).
        let allowed = if prefix.is_host() && subnet.contains(proto) {
            proto == peer.tunnel
        } else {
            !prefix.contains(subnet.addr()) && !subnet.contains(prefix.addr())
        };
        if !allowed || cie.holding_time == 0 {
            return CieCode::AdministrativelyProhibited;
        }
        let max = self.config.max_registrations_per_peer;
        // One lookup of the prefix decides and inserts.
        let decided = self.cache.insert_with(prefix, |old, owners| {
            let owned =
                old.is_some_and(|o| o.kind == EntryType::Registered && o.tunnel == peer.tunnel);
            if !owned && *owned_count.get_or_insert_with(|| owners.count(peer.tunnel)) >= max {
                return Err(Refusal::Quota);
            }
            let mut created = now;
            if let Some(old) = old {
                match old.kind {
                    EntryType::Local | EntryType::Static => {
                        return Err(Refusal::Code(CieCode::AdministrativelyProhibited));
                    }
                    EntryType::Registered if old.expires.is_some_and(|at| at > now) => {
                        let same = old.nbma == peer.nbma && old.tunnel == peer.tunnel;
                        if !same && (old.unique || peer.unique) {
                            return Err(Refusal::Code(CieCode::UniqueAddressAlreadyRegistered));
                        }
                        if same {
                            created = old.created;
                        }
                    }
                    _ => {}
                }
            }
            Ok(Entry {
                kind: EntryType::Registered,
                tunnel: peer.tunnel,
                nbma: peer.nbma,
                claimed_nbma: claimed,
                created,
                expires: Some(now + Duration::from_secs(u64::from(cie.holding_time))),
                holdtime: cie.holding_time,
                unique: peer.unique,
                request_id: peer.request_id,
                used: false,
            })
        });
        let inserted = match decided {
            Err(Refusal::Quota) => {
                self.counters.peer_quota_exceeded += 1;
                return CieCode::InsufficientResources;
            }
            Err(Refusal::Code(code)) => return code,
            Ok(inserted) => inserted,
        };
        if let Ok((old, _)) = inserted {
            let owned =
                old.is_some_and(|o| o.kind == EntryType::Registered && o.tunnel == peer.tunnel);
            if !owned {
                *owned_count = owned_count.map(|n| n + 1);
            }
        }
        match inserted {
            Err(_) => {
                self.counters.cache_full += 1;
                self.event(Event::CacheFull { prefix });
                CieCode::InsufficientResources
            }
            Ok((None, entry)) => {
                self.event(Event::CacheAdded { prefix, entry });
                CieCode::Success
            }
            Ok((Some(old), entry)) => {
                let changed = old.kind != entry.kind
                    || old.tunnel != entry.tunnel
                    || old.nbma != entry.nbma
                    || old.claimed_nbma != entry.claimed_nbma;
                if changed {
                    self.event(Event::CacheUpdated { prefix, entry });
                    self.purge_shortcuts(prefix, old.nbma);
                }
                CieCode::Success
            }
        }
    }
}

/// Why [`Engine::register_cie`] refused a CIE before touching the cache.
enum Refusal {
    /// The peer holds its quota of registrations.
    Quota,
    /// Another reason, with its code.
    Code(CieCode),
}

/// Who sent a registration request.
#[derive(Debug, Clone, Copy)]
struct Peer {
    /// Its tunnel address (source protocol address).
    tunnel: IpAddr,
    /// The NBMA address the request came from.
    nbma: IpAddr,
    /// The NBMA address it claims (source NBMA address).
    claimed: IpAddr,
    /// The U flag.
    unique: bool,
    /// The request ID of its registration.
    request_id: u32,
}

pub(crate) fn family(nbma: IpAddr) -> AddressFamily {
    if nbma.is_ipv4() {
        AddressFamily::Ipv4
    } else {
        AddressFamily::Ipv6
    }
}

pub(crate) fn protocol(tunnel: IpAddr) -> u16 {
    if tunnel.is_ipv4() {
        PROTOCOL_IPV4
    } else {
        PROTOCOL_IPV6
    }
}
