//! Resolution (RFC 2332 sections 5.2.1 and 5.2.2): a client asks its NHS for the NBMA
//! address of a protocol address; whoever is authoritative for it answers.
//!
//! Answers come from the cache: a router answers for its own tunnel address and site
//! prefixes (local entries), and an NHS answers for what its clients registered, with the
//! registered prefix (a subnet, not only a /32) and the client's NBMA address.
//!
//! # Forwarding between NHSs (RFC 2332 sections 5.3.2 and 5.3.3)
//! An NHS forwards a request it has no binding for along its routes: to the next hop of
//! the longest configured [`crate::Route`] covering the target (a core hub towards a
//! regional hub's site prefixes), else to the most preferred of its own NHSs that is up (a
//! regional hub under a core hub, Cisco's hierarchical phase 3), skipping a next hop that
//! is the sender or already in the request's Forward Transit NHS Record. It sends the
//! request on with hop count minus one, itself appended to that record, authentication
//! regenerated. The answer comes back the same way: the NHS accepts a reply for another
//! requester only from one of its next hops and passes it to the requester registered
//! with it, appending itself to the Reverse Transit NHS Record. A router that finds itself in
//! the Forward Transit record of a request, or in the Reverse Transit record of a reply,
//! drops it with Error Indication 3 "loop detected"; a request or reply that would leave
//! with hop count 0 gets 15 "hop count exceeded", and one with no next hop 6 "protocol
//! address unreachable", each to the previous hop. An NHS with neither a route covering
//! the target nor NHSs of its own (the top of the hierarchy, or a single hub) and a spoke
//! answer what they cannot resolve with CIE code 12 "no binding exists".
//!
//! Packets are FRR nhrpd's (`nhrp_shortcut.c`, `nhrp_peer.c`): requests with hop count 64,
//! flags Q|A|S|NAT (0xC802), one CIE with prefix length 0xFF (32 without unique) and no
//! addresses, extensions Forward Transit, Reverse Transit, Responder Address (empty), the
//! Cisco NAT extension (empty, or our post-NAT address), authentication, End; replies with
//! the request's Q and S plus D|A, one CIE naming the owner, our Responder Address, the
//! owner's post-NAT address in the NAT extension when it is NATed.
//!
//! The requester installs a shortcut for the reply's prefix, reaching the owner at the NAT
//! extension's address for it if any, else at the CIE's. At 2/3 of its holding time a
//! shortcut that the dataplane reported used ([`Engine::mark_used`]) is resolved again; an
//! idle one expires at its holding time and its route is withdrawn
//! ([`crate::Event::CacheRemoved`]), as nhrpd does.

use core::net::IpAddr;
use core::time::Duration;
use std::time::Instant;

use dmvpn_wire::Seq;
use dmvpn_wire::nhrp::{
    Address, Cie, CieCode, ErrorIndication, Extension, ExtensionBody, ExtensionIndex,
    ExtensionType, Message, NbmaAddress, Operation, Repr, Resolution, ResolutionFlags,
};

use crate::cache::{Entry, EntryType};
use crate::config::Role;
use crate::engine::{Engine, Event, HOP_COUNT_DEFAULT, send};
use crate::error::DropReason;
use crate::prefix::{Prefix, host_len};
use crate::registration::{PREFIX_LEN_UNIQUE, family, protocol};
use crate::small::SmallList;
use crate::timer::Timer;

/// The first retransmission timeout of a resolution request (nhrpd: 1 s, doubling).
pub const RESOLUTION_RETRY_INITIAL: Duration = Duration::from_secs(1);
/// Requests sent for one resolution before it is given up (1 + 2 + 4 s of waiting, then
/// 8 s for the last: nhrpd retries up to 7 s).
pub const RESOLUTION_TRIES: u32 = 4;

/// A resolution in flight (Cisco's "incomplete" entry).
#[derive(Debug, Clone, Copy)]
pub(crate) struct PendingResolution {
    /// The protocol address being resolved.
    pub(crate) target: IpAddr,
    /// The index of the NHS asked.
    pub(crate) nhs: usize,
    /// When the resolution started.
    pub(crate) started: Instant,
    /// When to retransmit or give up.
    pub(crate) deadline: Instant,
    /// Requests sent so far.
    pub(crate) tries: u32,
}

/// Who is authoritative for a target, as found in the cache.
#[derive(Debug, Clone, Copy)]
struct Binding {
    prefix: Prefix,
    owner: IpAddr,
    claimed_nbma: IpAddr,
    nbma: IpAddr,
    holding_time: u16,
    /// Learned from the owner's registration (not one of our own prefixes).
    registered: bool,
}

impl Engine {
    /// Starts resolving `addr` through the preferred NHS (`resolve` command, and what a
    /// Traffic Indication triggers). Does nothing when a live shortcut, registration or
    /// local entry already covers `addr`, a resolution for it is in flight, or there is no
    /// NHS: this is the rate limit of resolutions.
    pub fn resolve(&mut self, now: Instant, addr: IpAddr) {
        if addr.is_ipv4() != self.config.tunnel_address.is_ipv4() {
            return;
        }
        let covered = self.cache.lookup(addr).is_some_and(|(p, e)| {
            matches!(
                e.kind,
                EntryType::Shortcut | EntryType::Local | EntryType::Static
            ) || (e.kind == EntryType::Registered && p.prefix_len() > 0)
        });
        if !covered {
            self.start_resolution(now, addr);
        }
    }

    /// The dataplane sent traffic through the shortcut covering `addr`: it will be
    /// refreshed before it expires (nhrpd renews only used shortcuts).
    pub fn mark_used(&mut self, addr: IpAddr) {
        if let Some((prefix, e)) = self.cache.lookup(addr)
            && e.kind == EntryType::Shortcut
        {
            self.cache.mark_used(&prefix);
        }
    }

    /// Sends a resolution request for `addr` unless one is in flight.
    fn start_resolution(&mut self, now: Instant, addr: IpAddr) {
        if self.resolutions.values().any(|r| r.target == addr) {
            return;
        }
        let Some(nhs) = self.preferred_nhs() else {
            return;
        };
        if self.resolutions.len() >= self.config.cache_limit {
            self.counters.resolutions_refused += 1;
            return;
        }
        let id = self.request_id();
        self.resolutions.insert(
            id,
            PendingResolution {
                target: addr,
                nhs,
                started: now,
                deadline: now + RESOLUTION_RETRY_INITIAL,
                tries: 1,
            },
        );
        self.send_resolution_request(id);
        self.sync_resolution_timer();
    }

    /// The NHS to ask: the most preferred (lowest priority value) that is up, else the most
    /// preferred configured.
    fn preferred_nhs(&self) -> Option<usize> {
        let best = |up_only: bool| {
            self.nhs
                .iter()
                .enumerate()
                .filter(|(_, s)| s.up || !up_only)
                .min_by_key(|(i, s)| (s.config.priority, *i))
                .map(|(i, _)| i)
        };
        best(true).or_else(|| best(false))
    }

    /// The shortcut refresh timer: each shortcut due (at 2/3 of its holding time) is
    /// resolved again if it was used since it was installed or refreshed; an unused one is
    /// left to expire, which withdraws its route.
    pub(crate) fn shortcut_refresh_timer(&mut self, now: Instant) {
        while let Some(&(at, prefix)) = self.shortcut_refresh.first() {
            if at > now {
                break;
            }
            self.shortcut_refresh.remove(&(at, prefix));
            let used = self
                .cache
                .get(&prefix)
                .is_some_and(|e| e.kind == EntryType::Shortcut && e.used);
            if used {
                self.start_resolution(now, prefix.addr());
            }
        }
        self.sync_refresh_timer();
    }

    pub(crate) fn sync_refresh_timer(&mut self) {
        let next = self.shortcut_refresh.first().map(|(at, _)| *at);
        self.timers.set(Timer::ShortcutRefresh, next);
    }

    pub(crate) fn sync_resolution_timer(&mut self) {
        let next = self.resolutions.values().map(|r| r.deadline).min();
        self.timers.set(Timer::Resolution, next);
    }

    /// The resolution timer: retransmits the requests that are due with doubled timeout,
    /// and gives up those that used their [`RESOLUTION_TRIES`].
    pub(crate) fn resolution_timer(&mut self, now: Instant) {
        let due: Vec<u32> = self
            .resolutions
            .iter()
            .filter(|(_, r)| r.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            let Some(r) = self.resolutions.get_mut(&id) else {
                continue;
            };
            if r.tries >= RESOLUTION_TRIES {
                let target = r.target;
                self.resolutions.remove(&id);
                self.event(Event::ResolutionFailed { target, code: None });
                continue;
            }
            r.deadline = now + RESOLUTION_RETRY_INITIAL * (1 << r.tries);
            r.tries += 1;
            self.send_resolution_request(id);
        }
        self.sync_resolution_timer();
    }

    fn send_resolution_request(&mut self, id: u32) {
        let Some(r) = self.resolutions.get(&id) else {
            return;
        };
        let Some(st) = self.nhs.get(r.nhs) else {
            return;
        };
        let cfg = &self.config;
        let me = cfg.tunnel_address;
        let first_len = if cfg.unique {
            PREFIX_LEN_UNIQUE
        } else {
            host_len(me)
        };
        let cies = [Cie::request(first_len, cfg.mtu, cfg.holdtime)];
        let own_nat = st.nat_nbma.map(|nat| Cie::host(nat, me, cfg.mtu, 0));
        let nat: &[Cie<'_>] = own_nat.as_slice();
        let mut exts = vec![
            Extension::new(ExtensionBody::ForwardTransit(Seq::empty())),
            Extension::new(ExtensionBody::ReverseTransit(Seq::empty())),
            Extension::new(ExtensionBody::ResponderAddress(Seq::empty())),
            Extension::new(ExtensionBody::NatAddress(Seq::Items(nat))),
        ];
        if let Some(pw) = &cfg.password {
            exts.push(Extension::cleartext_password(pw.expose()));
        }
        let repr = Repr {
            afn: family(cfg.nbma_address),
            protocol_type: protocol(me),
            protocol_snap: [0; 5],
            hop_count: HOP_COUNT_DEFAULT,
            message: Message::ResolutionRequest(Resolution {
                flags: ResolutionFlags::ROUTER
                    | ResolutionFlags::AUTHORITATIVE
                    | ResolutionFlags::SOURCE_STABLE
                    | ResolutionFlags::NAT,
                request_id: id,
                src_nbma: NbmaAddress::from(Address::from(cfg.nbma_address)),
                src_nbma_sub: NbmaAddress::NONE,
                src_proto: Address::from(me),
                dst_proto: Address::from(r.target),
                cies: Seq::Items(&cies),
            }),
            extensions: Some(Seq::Items(&exts)),
        };
        send(&mut self.outbox, &mut self.counters, st.config.nbma, &repr);
    }

    /// Who is authoritative for `target` here: ourselves for local entries, a client for
    /// what it registered with us.
    fn binding(&self, now: Instant, target: IpAddr) -> Option<Binding> {
        let (prefix, e) = self.cache.lookup(target)?;
        match e.kind {
            EntryType::Local => Some(Binding {
                prefix,
                owner: self.config.tunnel_address,
                claimed_nbma: self.config.nbma_address,
                nbma: self
                    .nhs
                    .iter()
                    .find_map(|s| s.nat_nbma)
                    .unwrap_or(self.config.nbma_address),
                holding_time: self.config.holdtime,
                registered: false,
            }),
            EntryType::Registered => {
                let left = e.expires?.checked_duration_since(now)?.as_secs();
                Some(Binding {
                    prefix,
                    owner: e.tunnel,
                    claimed_nbma: e.claimed_nbma,
                    nbma: e.nbma,
                    holding_time: u16::try_from(left).unwrap_or(u16::MAX).min(e.holdtime),
                    registered: true,
                })
            }
            _ => None,
        }
    }

    /// A resolution request: answers it from the cache, to the NBMA address it came from.
    pub(crate) fn serve_resolution<'a>(
        &mut self,
        now: Instant,
        from: IpAddr,
        repr: &Repr<'a>,
        exts: &ExtensionIndex<'a>,
        req: &Resolution<'a>,
    ) -> Result<(), DropReason> {
        let target = self
            .tunnel_ip(req.dst_proto)
            .ok_or(DropReason::WrongAddressFamily)?;
        self.tunnel_ip(req.src_proto)
            .ok_or(DropReason::WrongAddressFamily)?;
        let request_cie = req.cies.first().ok_or(DropReason::MissingCie)?;
        if in_transit(
            exts,
            ExtensionType::ForwardTransit,
            self.config.tunnel_address,
        ) {
            return Err(DropReason::LoopDetected);
        }
        let binding = self.binding(now, target);
        let routed = !self.nhs.is_empty() || self.route(target).is_some();
        if binding.is_none() && self.config.role == Role::Hub && routed {
            return self.forward_request(from, target, repr, exts, req);
        }
        // A forwarded request's sender is the previous NHS, which cannot take a purge of
        // the requester's shortcut.
        let direct = transit_len(exts, ExtensionType::ForwardTransit) == 0;
        if let Some(b) = binding.filter(|b| b.registered && direct) {
            self.remember_shortcut(b.prefix, from);
        }
        let cfg = &self.config;
        let answer = match binding {
            Some(b) => Cie {
                code: CieCode::Success,
                prefix_len: b.prefix.prefix_len(),
                mtu: cfg.mtu,
                holding_time: b.holding_time,
                nbma: NbmaAddress::from(Address::from(b.claimed_nbma)),
                nbma_sub: NbmaAddress::NONE,
                proto: Address::from(b.owner),
                preference: 0,
            },
            None => Cie {
                code: CieCode::NoBindingExists,
                ..request_cie
            },
        };
        let cies = [answer];
        let responder = [Cie::host(
            cfg.nbma_address,
            cfg.tunnel_address,
            cfg.mtu,
            cfg.holdtime,
        )];
        let owner_nat = binding
            .filter(|b| b.nbma != b.claimed_nbma)
            .map(|b| Cie::host(b.nbma, b.owner, cfg.mtu, 0));
        let nat: &[Cie<'_>] = owner_nat.as_slice();
        let own_password = cfg.password.as_ref().map(|p| p.expose());
        let copy = |ext: Extension<'a>| match ext.body {
            ExtensionBody::ResponderAddress(_) => Extension {
                body: ExtensionBody::ResponderAddress(Seq::Items(&responder)),
                ..ext
            },
            ExtensionBody::NatAddress(_) => Extension {
                body: ExtensionBody::NatAddress(Seq::Items(nat)),
                ..ext
            },
            // Regenerated hop by hop; equal to the request's once it is checked.
            ExtensionBody::Authentication { .. } => {
                own_password.map_or(ext, Extension::cleartext_password)
            }
            _ => ext,
        };
        let mut reply_exts: SmallList<Extension<'_>, 8> = SmallList::new(Extension::new(
            ExtensionBody::ResponderAddress(Seq::empty()),
        ));
        // The index holds the usual list in order: no second parse of the request's.
        if let Some(list) = repr.extensions {
            match exts.in_order() {
                Some(all) => reply_exts.extend(all.map(copy)),
                None => reply_exts.extend(list.iter().map(copy)),
            }
        }
        let keep = req.flags.0 & (ResolutionFlags::ROUTER.0 | ResolutionFlags::SOURCE_STABLE.0);
        let flags = ResolutionFlags(keep)
            | ResolutionFlags::DESTINATION_STABLE
            | ResolutionFlags::AUTHORITATIVE;
        let reply = Repr {
            hop_count: HOP_COUNT_DEFAULT,
            message: Message::ResolutionReply(Resolution {
                flags,
                cies: Seq::Items(&cies),
                ..*req
            }),
            extensions: repr.extensions.map(|_| Seq::Items(reply_exts.as_slice())),
            ..*repr
        };
        send(&mut self.outbox, &mut self.counters, from, &reply);
        Ok(())
    }

    /// A resolution reply at the requester: installs the shortcut it names.
    pub(crate) fn resolution_reply(
        &mut self,
        now: Instant,
        from: IpAddr,
        repr: &Repr<'_>,
        exts: &ExtensionIndex<'_>,
        reply: &Resolution<'_>,
    ) -> Result<(), DropReason> {
        if in_transit(
            exts,
            ExtensionType::ReverseTransit,
            self.config.tunnel_address,
        ) {
            return Err(DropReason::LoopDetected);
        }
        let requester = self
            .tunnel_ip(reply.src_proto)
            .ok_or(DropReason::WrongAddressFamily)?;
        if requester != self.config.tunnel_address && self.config.role == Role::Hub {
            return self.forward_reply(from, requester, repr, exts, reply);
        }
        let pending = *self
            .resolutions
            .get(&reply.request_id)
            .ok_or(DropReason::UnknownRequestId)?;
        let cie = reply.cies.first().ok_or(DropReason::MissingCie)?;
        let target = pending.target;
        if cie.code != CieCode::Success || cie.holding_time == 0 {
            if self.nhs.get(pending.nhs).map(|s| s.config.nbma) != Some(from) {
                return Err(DropReason::UnexpectedResponder);
            }
            self.resolutions.remove(&reply.request_id);
            self.sync_resolution_timer();
            self.event(Event::ResolutionFailed {
                target,
                code: Some(cie.code),
            });
            return Ok(());
        }
        let owner = self
            .tunnel_ip(cie.proto)
            .ok_or(DropReason::WrongAddressFamily)?;
        let claimed = self
            .nbma_ip(cie.nbma)
            .ok_or(DropReason::WrongAddressFamily)?;
        let nbma = exts
            .get(ExtensionType::NatAddress)
            .and_then(|e| e.cies())
            .and_then(|cies| cies.iter().find(|c| self.tunnel_ip(c.proto) == Some(owner)))
            .and_then(|c| self.nbma_ip(c.nbma))
            .unwrap_or(claimed);
        // From the NHS we asked, or from the owner answering for itself.
        let asked = self.nhs.get(pending.nhs).map(|s| s.config.nbma);
        if asked != Some(from) && from != nbma {
            return Err(DropReason::UnexpectedResponder);
        }
        let len = match cie.prefix_len {
            0 => host_len(target),
            l => l.min(host_len(target)),
        };
        let prefix = Prefix::new(target, len).map_err(|_| DropReason::WrongAddressFamily)?;
        let subnet = self.config.tunnel_subnet();
        // A shortcut never covers the tunnel subnet nor part of it (other than the owner's
        // own tunnel address), nor replaces a local or static entry.
        let overrides = self
            .cache
            .get(&prefix)
            .is_some_and(|e| matches!(e.kind, EntryType::Local | EntryType::Static));
        let in_subnet = subnet.contains(prefix.addr()) && prefix != Prefix::host(owner);
        if prefix.contains(subnet.addr())
            || in_subnet
            || overrides
            || owner == self.config.tunnel_address
        {
            return Err(DropReason::InvalidShortcut);
        }
        self.resolutions.remove(&reply.request_id);
        self.sync_resolution_timer();
        let entry = Entry {
            kind: EntryType::Shortcut,
            tunnel: owner,
            nbma,
            claimed_nbma: claimed,
            created: now,
            expires: Some(now + Duration::from_secs(u64::from(cie.holding_time))),
            holdtime: cie.holding_time,
            unique: false,
            request_id: reply.request_id,
            used: false,
        };
        match self.cache.insert(prefix, entry) {
            Err(_) => {
                self.counters.cache_full += 1;
                self.event(Event::CacheFull { prefix });
                return Ok(());
            }
            Ok(None) => self.event(Event::CacheAdded { prefix, entry }),
            Ok(Some(old)) => {
                if (old.kind, old.tunnel, old.nbma) != (entry.kind, entry.tunnel, entry.nbma) {
                    self.event(Event::CacheUpdated { prefix, entry });
                }
            }
        }
        let check = Duration::from_secs(u64::from(cie.holding_time)) * 2 / 3;
        self.shortcut_refresh.insert((now + check, prefix));
        self.sync_refresh_timer();
        Ok(())
    }

    /// An Error Indication addressed to us about one of our resolution requests (RFC 2332
    /// section 5.2.7) ends that resolution without a shortcut, as FRR nhrpd hands it to the
    /// request's callback (`nhrp_handle_error_ind`): no use retrying a request an NHS on the
    /// way refused. The packet in error is read only for its type and request ID, at their
    /// fixed offsets, since nhrpd truncates it. Accepted only from the NHS the request went
    /// to (every error about it comes back through that NHS), as Error Indications carry no
    /// authentication.
    pub(crate) fn resolution_error(&mut self, from: IpAddr, ind: &ErrorIndication<'_>) {
        if self.tunnel_ip(ind.dst_proto) != Some(self.config.tunnel_address)
            || ind.packet.get(17) != Some(&u8::from(Operation::ResolutionRequest))
        {
            return;
        }
        let Some(&[a, b, c, d]) = ind.packet.get(24..28) else {
            return;
        };
        let id = u32::from_be_bytes([a, b, c, d]);
        let asked = |p: &PendingResolution| self.nhs.get(p.nhs).map(|s| s.config.nbma);
        if self.resolutions.get(&id).and_then(asked) != Some(from) {
            return;
        }
        if let Some(pending) = self.resolutions.remove(&id) {
            self.sync_resolution_timer();
            self.event(Event::ResolutionFailed {
                target: pending.target,
                code: None,
            });
        }
    }

    /// The next hop (tunnel address) of the longest static route covering `target`.
    pub(crate) fn route(&self, target: IpAddr) -> Option<IpAddr> {
        self.config
            .routes
            .iter()
            .filter(|r| r.prefix.contains(target))
            .max_by_key(|r| r.prefix.prefix_len())
            .map(|r| r.next_hop)
    }

    /// The NBMA address of the next hop `tunnel`: one of our NHSs or a registered client.
    pub(crate) fn next_hop_nbma(&self, tunnel: IpAddr) -> Option<IpAddr> {
        self.cache
            .get(&Prefix::host(tunnel))
            .filter(|e| {
                matches!(e.kind, EntryType::Static | EntryType::Registered) && e.tunnel == tunnel
            })
            .map(|e| e.nbma)
    }

    /// The NBMA address (as seen, after NAT) of the client that registered its tunnel
    /// address `tunnel` here.
    pub(crate) fn registered_nbma(&self, tunnel: IpAddr) -> Option<IpAddr> {
        self.cache
            .get(&Prefix::host(tunnel))
            .filter(|e| e.kind == EntryType::Registered && e.tunnel == tunnel)
            .map(|e| e.nbma)
    }

    /// A request this NHS has no binding for (RFC 2332 sections 5.2.1 and 5.3.3): forwarded
    /// to the next hop of its route for `target`, else to its most preferred NHS that is
    /// up, skipping the sender and whoever is in the Forward Transit NHS Record, with the
    /// hop count decremented and this router appended to that record.
    ///
    /// # Errors
    /// [`DropReason::HopCountExceeded`] when the hop count would reach 0,
    /// [`DropReason::ProtocolAddressUnreachable`] when no next hop qualifies.
    fn forward_request(
        &mut self,
        from: IpAddr,
        target: IpAddr,
        repr: &Repr<'_>,
        exts: &ExtensionIndex<'_>,
        req: &Resolution<'_>,
    ) -> Result<(), DropReason> {
        let transit: Vec<IpAddr> = exts
            .get(ExtensionType::ForwardTransit)
            .and_then(|e| e.cies())
            .map(|cies| {
                cies.iter()
                    .filter_map(|c| self.tunnel_ip(c.proto))
                    .collect()
            })
            .unwrap_or_default();
        let usable = |tunnel: &IpAddr, nbma: &IpAddr| *nbma != from && !transit.contains(tunnel);
        let routed = self
            .route(target)
            .and_then(|hop| Some(hop).zip(self.next_hop_nbma(hop)))
            .filter(|(tunnel, nbma)| usable(tunnel, nbma));
        let next = routed
            .map(|(_, nbma)| nbma)
            .or_else(|| {
                self.nhs
                    .iter()
                    .filter(|s| s.up && usable(&s.config.tunnel, &s.config.nbma))
                    .min_by_key(|s| s.config.priority)
                    .map(|s| s.config.nbma)
            })
            .ok_or(DropReason::ProtocolAddressUnreachable)?;
        if repr.hop_count <= 1 {
            return Err(DropReason::HopCountExceeded);
        }
        // The Cisco NAT extension, as FRR nhrpd `nhrp_peer_forward` fills an empty one: the
        // requester's address as seen here, when it sent the request to us itself (no NHS
        // in the record) from another NBMA address than it claims, i.e. from behind NAT.
        let nat = self
            .tunnel_ip(req.src_proto)
            .filter(|_| transit.is_empty() && self.nbma_ip(req.src_nbma) != Some(from))
            .map(|requester| Cie::host(from, requester, self.config.mtu, 0));
        let message = Message::ResolutionRequest(*req);
        self.forward(
            next,
            repr,
            exts,
            message,
            ExtensionType::ForwardTransit,
            nat,
        );
        Ok(())
    }

    /// A reply for another requester, coming back through this NHS (RFC 2332 section
    /// 5.3.3): accepted only from a next hop (one of our NHSs or of our routes), and
    /// passed to the requester registered with us, with the hop count decremented and this
    /// router appended to the Reverse Transit NHS Record.
    ///
    /// # Errors
    /// [`DropReason::UnknownNhs`] from another sender,
    /// [`DropReason::ProtocolAddressUnreachable`] when the requester is not registered
    /// here, [`DropReason::HopCountExceeded`] when the hop count would reach 0.
    fn forward_reply(
        &mut self,
        from: IpAddr,
        requester: IpAddr,
        repr: &Repr<'_>,
        exts: &ExtensionIndex<'_>,
        reply: &Resolution<'_>,
    ) -> Result<(), DropReason> {
        let next_hop = self.nhs.iter().any(|s| s.config.nbma == from)
            || self
                .config
                .routes
                .iter()
                .any(|r| self.next_hop_nbma(r.next_hop) == Some(from));
        if !next_hop {
            return Err(DropReason::UnknownNhs);
        }
        let next = self
            .registered_nbma(requester)
            .ok_or(DropReason::ProtocolAddressUnreachable)?;
        if repr.hop_count <= 1 {
            return Err(DropReason::HopCountExceeded);
        }
        let message = Message::ResolutionReply(*reply);
        self.forward(
            next,
            repr,
            exts,
            message,
            ExtensionType::ReverseTransit,
            None,
        );
        Ok(())
    }

    /// Sends `message` on to `next` with the extensions of `repr`, this router appended to
    /// the `record` transit extension (added when missing), the authentication extension
    /// regenerated hop by hop, an empty NAT address extension filled with `nat` when given,
    /// and the hop count decremented.
    fn forward(
        &mut self,
        next: IpAddr,
        repr: &Repr<'_>,
        exts: &ExtensionIndex<'_>,
        message: Message<'_>,
        record: ExtensionType,
        nat: Option<Cie<'_>>,
    ) {
        let nat = nat.as_slice();
        let cfg = &self.config;
        let own = Cie::host(cfg.nbma_address, cfg.tunnel_address, cfg.mtu, cfg.holdtime);
        let mut transit: Vec<Cie<'_>> = exts
            .get(record)
            .and_then(|e| e.cies())
            .map(|cies| cies.iter().collect())
            .unwrap_or_default();
        transit.push(own);
        let body = |cies| match record {
            ExtensionType::ForwardTransit => ExtensionBody::ForwardTransit(cies),
            _ => ExtensionBody::ReverseTransit(cies),
        };
        let own_password = cfg.password.as_ref().map(|p| p.expose());
        let mut exts: Vec<Extension<'_>> = repr
            .extensions
            .map(|exts| {
                exts.iter()
                    .map(|ext| match ext.body {
                        ExtensionBody::Authentication { .. } => {
                            own_password.map_or(ext, Extension::cleartext_password)
                        }
                        ExtensionBody::NatAddress(cies) if cies.is_empty() && !nat.is_empty() => {
                            Extension {
                                body: ExtensionBody::NatAddress(Seq::Items(nat)),
                                ..ext
                            }
                        }
                        _ if ext.ty() == record => Extension {
                            body: body(Seq::Items(&transit)),
                            ..ext
                        },
                        _ => ext,
                    })
                    .collect()
            })
            .unwrap_or_default();
        if !exts.iter().any(|e| e.ty() == record) {
            exts.insert(0, Extension::new(body(Seq::Items(&transit))));
        }
        let forwarded = Repr {
            hop_count: repr.hop_count - 1,
            message,
            extensions: Some(Seq::Items(&exts)),
            ..*repr
        };
        send(&mut self.outbox, &mut self.counters, next, &forwarded);
    }
}

/// The number of CIEs in the transit extension `record` of a message with extensions `exts`.
fn transit_len(exts: &ExtensionIndex<'_>, record: ExtensionType) -> usize {
    exts.get(record)
        .and_then(|e| e.cies())
        .map_or(0, |cies| cies.len())
}

/// Whether the transit extension `record` of a message with extensions `exts` names `me`
/// (RFC 2332 section 5.3.3: a loop).
fn in_transit(exts: &ExtensionIndex<'_>, record: ExtensionType, me: IpAddr) -> bool {
    exts.get(record)
        .and_then(|e| e.cies())
        .is_some_and(|cies| cies.iter().any(|c| c.proto.ip() == Some(me)))
}
