//! Purge (RFC 2332 sections 5.2.5 and 5.2.6): withdrawing bindings before their holding
//! time runs out.
//!
//! - A spoke whose NBMA address changes ([`Engine::set_nbma_address`]) purges its
//!   registrations at each NHS before registering again, and again before each retry while
//!   the NHS still refuses the new address with code 14. As Cisco IOS requires, the purge
//!   carries the request ID of the registration it withdraws (OpenNHRP's `cisco` behaviour):
//!   an NHS removes a registered entry only for a purge from the entry's owner (source
//!   protocol address) naming the request ID of the registration that set it, which an
//!   off-path attacker cannot guess (the first ID is random, see [`Engine::new`]).
//! - A router that stops ([`Engine::shutdown`]) purges its registrations the same way.
//! - A router that receives a purge for a shortcut drops the shortcut when the purge comes
//!   from one of its NHSs or from the shortcut's own NBMA address.
//!
//! - An NHS remembers who resolved each registered prefix; when the registration moves to
//!   another NBMA address or is purged, it sends those requesters a purge of their shortcut
//!   (flag N, no reply wanted). The memory is bounded by the cache limit; past it, the
//!   shortcuts simply expire.
//!
//! Purge Requests go out with hop count 64, no flags (a reply is wanted), one CIE per
//! withdrawn prefix (client NBMA = the old address, holding time 0) and only the
//! authentication extension before End. Replies echo the request.

use core::net::IpAddr;
use std::collections::{BTreeSet, hash_map};
use std::time::Instant;

use dmvpn_wire::Seq;
use dmvpn_wire::nhrp::{
    Address, Cie, CieCode, Extension, Message, NbmaAddress, Purge, PurgeFlags, Repr,
};

use crate::cache::{Entry, EntryType};
use crate::engine::{Engine, Event, HOP_COUNT_DEFAULT, RemoveReason, send};
use crate::error::DropReason;
use crate::nhs::Selection;
use crate::prefix::{Prefix, host_len};
use crate::registration::{Exchange, family, protocol};
use crate::timer::Timer;

impl Engine {
    /// The NBMA address of this router changed (DHCP, a new public address): updates the
    /// local entries, purges the registrations made from the old address and registers
    /// again with every NHS at once.
    pub fn set_nbma_address(&mut self, now: Instant, nbma: IpAddr) {
        let old = self.config.nbma_address;
        if nbma == old || nbma.is_ipv4() != old.is_ipv4() {
            return;
        }
        self.config.nbma_address = nbma;
        let local: Vec<(Prefix, Entry)> = self
            .cache
            .iter()
            .filter(|(_, e)| e.kind == EntryType::Local)
            .map(|(p, e)| (*p, *e))
            .collect();
        for (prefix, entry) in local {
            let moved = Entry {
                nbma,
                claimed_nbma: nbma,
                created: now,
                ..entry
            };
            // Local entries are not dynamic: the limit does not apply.
            let _ = self.cache.insert(prefix, moved);
        }
        for i in 0..self.nhs.len() {
            let st = &mut self.nhs[i];
            if let Some(id) = st.registered_id.take() {
                st.purge = Some((id, old));
            }
            st.nat_nbma = None;
            st.exchange = Exchange::Idle {
                last_request_id: st.exchange.request_id(),
            };
            // A standby NHS holds no registration ([`crate::nhs`]).
            if st.selection != Selection::Standby {
                self.timers.set(Timer::Registration(i), Some(now));
            }
        }
    }

    /// Withdraws this router from the network before it stops: purges its registrations at
    /// every NHS that accepted one and stops registering (RFC 2332 section 5.2.5: a client
    /// purges the bindings it no longer wants served). Drain [`Engine::poll_transmit`]
    /// afterwards.
    pub fn shutdown(&mut self, now: Instant) {
        for i in 0..self.nhs.len() {
            self.timers.set(Timer::Registration(i), None);
            let st = &mut self.nhs[i];
            let registered = st.registered_id.take();
            st.purge = None;
            st.exchange = Exchange::Idle {
                last_request_id: st.exchange.request_id(),
            };
            if st.up {
                st.up = false;
                st.since = now;
                let (nhs, nbma) = (st.config.tunnel, st.config.nbma);
                self.event(Event::NhsDown { nhs, nbma });
            }
            if let Some(id) = registered {
                let own = self.config.nbma_address;
                self.send_registration_purge(i, id, own);
            }
        }
    }

    /// Sends NHS `i` the purge of our registrations made under request ID `id` from the
    /// NBMA address `old`.
    pub(crate) fn send_registration_purge(&mut self, i: usize, id: u32, old: IpAddr) {
        let me = self.config.tunnel_address;
        let prefixes: Vec<Prefix> = core::iter::once(Prefix::host(me))
            .chain(self.config.advertised_prefixes.iter().copied())
            .collect();
        self.send_prefix_purge(i, id, old, &prefixes);
    }

    /// Sends NHS `i` the purge of `prefixes`, registered under request ID `id` from the
    /// NBMA address `old`.
    pub(crate) fn send_prefix_purge(
        &mut self,
        i: usize,
        id: u32,
        old: IpAddr,
        prefixes: &[Prefix],
    ) {
        let Some(st) = self.nhs.get(i) else {
            return;
        };
        let cfg = &self.config;
        let me = cfg.tunnel_address;
        let old_nbma = NbmaAddress::from(Address::from(old));
        let cies: Vec<Cie<'_>> = prefixes
            .iter()
            .map(|p| Cie {
                code: CieCode::Success,
                prefix_len: p.prefix_len(),
                mtu: cfg.mtu,
                holding_time: 0,
                nbma: old_nbma,
                nbma_sub: NbmaAddress::NONE,
                proto: Address::from(p.addr()),
                preference: 0,
            })
            .collect();
        let auth = cfg
            .password
            .as_ref()
            .map(|pw| [Extension::cleartext_password(pw.expose())]);
        let repr = Repr {
            afn: family(cfg.nbma_address),
            protocol_type: protocol(me),
            protocol_snap: [0; 5],
            hop_count: HOP_COUNT_DEFAULT,
            message: Message::PurgeRequest(Purge {
                flags: PurgeFlags(0),
                request_id: id,
                src_nbma: NbmaAddress::from(Address::from(cfg.nbma_address)),
                src_nbma_sub: NbmaAddress::NONE,
                src_proto: Address::from(me),
                dst_proto: Address::from(st.config.tunnel),
                cies: Seq::Items(&cies),
            }),
            extensions: Some(auth.as_ref().map_or(Seq::empty(), |a| Seq::Items(&a[..]))),
        };
        send(&mut self.outbox, &mut self.counters, st.config.nbma, &repr);
    }

    /// A purge request: withdraws the registrations or shortcuts it names that its sender
    /// may withdraw, then replies unless asked not to (RFC 2332 section 5.2.5).
    pub(crate) fn serve_purge(
        &mut self,
        from: IpAddr,
        repr: &Repr<'_>,
        purge: &Purge<'_>,
    ) -> Result<(), DropReason> {
        let src = self
            .tunnel_ip(purge.src_proto)
            .ok_or(DropReason::WrongAddressFamily)?;
        if purge.cies.is_empty() {
            return Err(DropReason::MissingCie);
        }
        let from_nhs = self.nhs.iter().any(|s| s.config.nbma == from);
        for cie in purge.cies.iter() {
            let proto = match cie.proto {
                Address::Empty => Some(src),
                other => self.tunnel_ip(other),
            };
            let Some(proto) = proto else {
                continue;
            };
            let Ok(prefix) = Prefix::new(proto, cie.prefix_len.min(host_len(proto))) else {
                continue;
            };
            let Some(entry) = self.cache.get(&prefix).copied() else {
                continue;
            };
            let allowed = match entry.kind {
                EntryType::Registered => {
                    entry.tunnel == src && entry.request_id == purge.request_id
                }
                EntryType::Shortcut => from_nhs || from == entry.nbma,
                _ => false,
            };
            if allowed {
                self.cache.remove(&prefix);
                if entry.kind == EntryType::Registered {
                    self.purge_shortcuts(prefix, entry.nbma);
                }
                self.event(Event::CacheRemoved {
                    prefix,
                    entry,
                    reason: RemoveReason::Purged,
                });
            }
        }
        if purge.flags.contains(PurgeFlags::NO_REPLY) {
            return Ok(());
        }
        let reply = Repr {
            hop_count: HOP_COUNT_DEFAULT,
            message: Message::PurgeReply(*purge),
            ..*repr
        };
        send(&mut self.outbox, &mut self.counters, from, &reply);
        Ok(())
    }

    /// Records that the requester at `requester` holds a shortcut for `prefix`, within the
    /// cache limit.
    pub(crate) fn remember_shortcut(&mut self, prefix: Prefix, requester: IpAddr) {
        if self.shortcut_holders_len >= self.config.cache_limit {
            return;
        }
        let added = match self.shortcut_holders.entry(prefix) {
            hash_map::Entry::Vacant(v) => {
                v.insert(Holders::One(requester));
                true
            }
            hash_map::Entry::Occupied(mut o) => o.get_mut().insert(requester),
        };
        if added {
            self.shortcut_holders_len += 1;
        }
    }

    /// The registration of `prefix` at `old_nbma` changed or went: purges the shortcuts
    /// handed out for it.
    pub(crate) fn purge_shortcuts(&mut self, prefix: Prefix, old_nbma: IpAddr) {
        let Some(holders) = self.shortcut_holders.remove(&prefix) else {
            return;
        };
        self.shortcut_holders_len -= holders.len();
        let first_id = self.next_request_id;
        self.next_request_id = first_id.wrapping_add(holders.len() as u32);
        let cfg = &self.config;
        let cies = [Cie {
            code: CieCode::Success,
            prefix_len: prefix.prefix_len(),
            mtu: cfg.mtu,
            holding_time: 0,
            nbma: NbmaAddress::from(Address::from(old_nbma)),
            nbma_sub: NbmaAddress::NONE,
            proto: Address::from(prefix.addr()),
            preference: 0,
        }];
        let auth = cfg
            .password
            .as_ref()
            .map(|pw| [Extension::cleartext_password(pw.expose())]);
        let me = cfg.tunnel_address;
        for (k, holder) in holders.iter().enumerate() {
            let repr = Repr {
                afn: family(cfg.nbma_address),
                protocol_type: protocol(me),
                protocol_snap: [0; 5],
                hop_count: HOP_COUNT_DEFAULT,
                message: Message::PurgeRequest(Purge {
                    flags: PurgeFlags::NO_REPLY,
                    request_id: first_id.wrapping_add(k as u32),
                    src_nbma: NbmaAddress::from(Address::from(cfg.nbma_address)),
                    src_nbma_sub: NbmaAddress::NONE,
                    src_proto: Address::from(me),
                    dst_proto: Address::from(prefix.addr()),
                    cies: Seq::Items(&cies),
                }),
                extensions: Some(auth.as_ref().map_or(Seq::empty(), |a| Seq::Items(&a[..]))),
            };
            send(&mut self.outbox, &mut self.counters, holder, &repr);
        }
    }
}

/// The requesters an NHS handed a shortcut for one prefix to, in address order: usually one,
/// held inline.
#[derive(Debug, Clone)]
pub(crate) enum Holders {
    /// A single holder.
    One(IpAddr),
    /// Two or more.
    Many(BTreeSet<IpAddr>),
}

impl Holders {
    /// Adds `holder`; false when it was there already.
    fn insert(&mut self, holder: IpAddr) -> bool {
        match self {
            Holders::One(one) if *one == holder => false,
            Holders::One(one) => {
                *self = Holders::Many(BTreeSet::from([*one, holder]));
                true
            }
            Holders::Many(set) => set.insert(holder),
        }
    }

    /// The number of holders.
    pub(crate) fn len(&self) -> usize {
        match self {
            Holders::One(_) => 1,
            Holders::Many(set) => set.len(),
        }
    }

    /// The holders in address order.
    fn iter(&self) -> impl Iterator<Item = IpAddr> + '_ {
        let (one, many) = match self {
            Holders::One(one) => (Some(*one), None),
            Holders::Many(set) => (None, Some(set.iter().copied())),
        };
        one.into_iter().chain(many.into_iter().flatten())
    }
}
