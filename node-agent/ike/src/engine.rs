//! The engine: every IKE SA of this node, input dispatch, output queues, timers and
//! commands (quinn-proto style). Feed it datagrams with [`Engine::handle_datagram`], time with
//! [`Engine::handle_timeout`] and commands; then drain [`Engine::poll_transmit`],
//! [`Engine::poll_event`] and ask [`Engine::poll_timeout`], in that order.

use core::net::{IpAddr, SocketAddr};
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::time::Instant;

use dmvpn_wire::ikev2::{ExchangeType, Packet, Repr};
use dmvpn_wire::udp_encap::{Datagram, NAT_T_PORT};

use crate::auth::Identity;
use crate::config::{Config, ConfigError};
use crate::cookie::CookieJar;
use crate::counters::Counters;
use crate::crypto::random::{Random, nonzero_u64};
use crate::error::DropReason;
use crate::event::{DownReason, Event};
use crate::keylog::KeyLog;
use crate::sa::{IkeSa, Request, State};
use crate::timer::Timer;

/// A datagram to send: the UDP payload (with the non-ESP marker on port 4500) from `local`
/// to `remote`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Our address and port to send from.
    pub local: SocketAddr,
    /// The destination.
    pub remote: SocketAddr,
    /// The UDP payload.
    pub payload: Vec<u8>,
}

/// What a handler asks the engine to do with the SA it handled.
#[derive(Debug, Default)]
pub(crate) struct Effects {
    /// Forget the SA.
    pub remove: bool,
    /// The SA just became established: check for a duplicate (section 2.8.1).
    pub established: bool,
    /// A new SA to add (an IKE SA rekey's successor).
    pub new_sa: Option<IkeSa>,
    /// The peer's IKE_AUTH carried INITIAL_CONTACT (RFC 7296 section 3.10.1).
    pub initial_contact: bool,
}

/// The engine's state apart from the SA table, which handlers borrow beside one SA.
pub(crate) struct Ctx {
    pub config: Config,
    pub identity: Identity,
    pub rng: Box<dyn Random>,
    pub transmits: VecDeque<Transmit>,
    pub events: VecDeque<Event>,
    pub counters: Counters,
    pub key_log: KeyLog,
}

/// A summary of one IKE SA, for show commands and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IkeSaInfo {
    /// The peer.
    pub peer: IpAddr,
    /// SPIi.
    pub spi_i: u64,
    /// SPIr.
    pub spi_r: u64,
    /// Whether we are its original initiator.
    pub initiator: bool,
    /// Whether it is established.
    pub established: bool,
    /// Whether it is going away: our DELETE is out (RFC 7296 section 1.4.1), or a rekeyed
    /// successor took over and it only waits for its DELETE (section 2.18).
    pub deleting: bool,
    /// Whether IKE travels on UDP 4500.
    pub udp_encap: bool,
    /// Its CHILD_SAs: (inbound SPI, outbound SPI).
    pub children: Vec<(u32, u32)>,
}

/// The IKEv2 engine of a node: owns every IKE SA it has with its peers.
pub struct Engine {
    pub(crate) ctx: Ctx,
    pub(crate) sas: HashMap<u64, IkeSa>,
    pub(crate) by_peer: HashMap<IpAddr, Vec<u64>>,
    /// Half-open responder SAs by (initiator address, SPIi), to answer a retransmitted
    /// IKE_SA_INIT (section 2.1).
    pub(crate) init_index: HashMap<(IpAddr, u64), u64>,
    pub(crate) wakeups: BTreeSet<(Instant, u64)>,
    pub(crate) cookies: CookieJar,
    pub(crate) half_open: usize,
}

impl core::fmt::Debug for Engine {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Engine")
            .field("local_addr", &self.ctx.config.local_addr)
            .field("sas", &self.sas.len())
            .field("half_open", &self.half_open)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// An engine started at `now` with no SA.
    ///
    /// # Errors
    /// The [`ConfigError`] of [`Config::validate`].
    pub fn new(
        config: Config,
        mut rng: Box<dyn Random>,
        now: Instant,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        let cookies = CookieJar::new(&mut *rng, now, config.cookie_secret_lifetime);
        let key_log = KeyLog::with_limits(config.key_log_ike_sas, config.key_log_esp_sas);
        Ok(Engine {
            ctx: Ctx {
                identity: config.own_identity(),
                config,
                rng,
                transmits: VecDeque::new(),
                events: VecDeque::new(),
                counters: Counters::default(),
                key_log,
            },
            sas: HashMap::new(),
            by_peer: HashMap::new(),
            init_index: HashMap::new(),
            wakeups: BTreeSet::new(),
            cookies,
            half_open: 0,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.ctx.config
    }

    /// A snapshot of the counters.
    pub fn counters(&self) -> Counters {
        let mut c = self.ctx.counters.clone();
        c.half_open = self.half_open as u64;
        c.ike_sas = self.sas.len() as u64;
        c
    }

    /// The keys of every SA brought up so far (empty unless [`Config::key_log`]).
    pub fn key_log(&self) -> &KeyLog {
        &self.ctx.key_log
    }

    /// Every IKE SA, in no particular order.
    pub fn ike_sas(&self) -> Vec<IkeSaInfo> {
        self.sas
            .values()
            .map(|sa| IkeSaInfo {
                peer: sa.peer,
                spi_i: sa.spi_i,
                spi_r: sa.spi_r,
                initiator: sa.initiator,
                established: sa.established(),
                deleting: sa.deleting || sa.rekeyed,
                udp_encap: sa.encap,
                children: sa
                    .children
                    .iter()
                    .map(|c| (c.inbound_spi, c.outbound_spi))
                    .collect(),
            })
            .collect()
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.ctx.transmits.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.ctx.events.pop_front()
    }

    /// When [`Engine::handle_timeout`] must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let sa = self.wakeups.first().map(|(at, _)| *at);
        Some(sa.map_or(self.cookies.rotate_at(), |at| {
            at.min(self.cookies.rotate_at())
        }))
    }

    /// Brings up an IKE SA and a CHILD_SA with `peer` (on UDP 500, floating to 4500). Does
    /// nothing if an SA with the peer exists or is being set up, by either side.
    pub fn initiate(&mut self, now: Instant, peer: IpAddr) {
        if self.by_peer.get(&peer).is_some_and(|v| {
            v.iter().any(|s| {
                self.sas
                    .get(s)
                    .is_some_and(|sa| !sa.deleting && !sa.rekeyed)
            })
        }) {
            return;
        }
        let spi = self.fresh_spi();
        match self.ctx.start_initiator(now, peer, spi) {
            Ok(mut sa) => {
                sa.initial_contact = true;
                self.insert(sa, now)
            }
            Err(_) => self.ctx.events.push_back(Event::IkeSaFailed {
                peer,
                reason: crate::event::FailReason::BadResponse,
            }),
        }
    }

    /// Deletes every IKE SA with `peer` (and so their CHILD_SAs), with an INFORMATIONAL
    /// DELETE (RFC 7296 section 1.4.1); SAs not yet established are dropped silently.
    pub fn delete(&mut self, now: Instant, peer: IpAddr) {
        for spi in self.by_peer.get(&peer).cloned().unwrap_or_default() {
            let Some(mut sa) = self.sas.remove(&spi) else {
                continue;
            };
            let effects = if sa.established() {
                self.ctx.queue_delete_ike(&mut sa, DownReason::Deleted);
                Effects::default()
            } else {
                Effects {
                    remove: true,
                    ..Default::default()
                }
            };
            self.apply(sa, effects, now);
        }
    }

    /// Rekeys every CHILD_SA with `peer` (CREATE_CHILD_SA, RFC 7296 section 1.3.3).
    pub fn rekey_child(&mut self, now: Instant, peer: IpAddr) {
        self.with_established(now, peer, |sa| {
            let spis: Vec<u32> = sa
                .children
                .iter()
                .filter(|c| !c.superseded && !c.rekeying && !c.deleting)
                .map(|c| c.inbound_spi)
                .collect();
            sa.queue.extend(spis.into_iter().map(Request::RekeyChild));
        });
    }

    /// Deletes the CHILD_SA with this inbound SPI with `peer` (INFORMATIONAL, RFC 7296
    /// section 1.4.1), for instance when its hard byte or packet lifetime runs out in the
    /// dataplane. Unknown SPIs are ignored.
    pub fn delete_child(&mut self, now: Instant, peer: IpAddr, inbound_spi: u32) {
        self.with_established(now, peer, |sa| {
            if let Some(c) = sa
                .children
                .iter_mut()
                .find(|c| c.inbound_spi == inbound_spi && !c.deleting)
            {
                c.deleting = true;
                c.rekey_at = None;
                sa.queue.push_back(Request::DeleteChild(vec![inbound_spi]));
            }
        });
    }

    /// Tells the engine when ESP last went to `peer` (`sent`) and last came from it
    /// (`received`), for on-demand liveness checks (RFC 7296 section 2.4, IOS `crypto ikev2
    /// dpd ... on-demand`): inbound ESP counts as hearing from the peer, and when traffic
    /// went out after the peer was last heard and it has been silent for
    /// [`Config::dpd_on_demand`], an empty INFORMATIONAL goes; unanswered after the
    /// retransmissions, the SA goes down with [`crate::DownReason::PeerDead`].
    pub fn traffic(
        &mut self,
        now: Instant,
        peer: IpAddr,
        sent: Option<Instant>,
        received: Option<Instant>,
    ) {
        let Some(idle) = self.ctx.config.dpd_on_demand else {
            return;
        };
        self.with_established(now, peer, |sa| {
            if let Some(rx) = received {
                sa.last_heard = sa.last_heard.max(rx);
            }
            let waiting = sent.is_some_and(|tx| tx > sa.last_heard);
            if waiting
                && now >= sa.last_heard + idle
                && sa.pending.is_none()
                && !sa.queue.contains(&Request::Dpd)
            {
                sa.queue.push_back(Request::Dpd);
            }
        });
    }

    /// Rekeys the IKE SA with `peer` (CREATE_CHILD_SA, RFC 7296 section 1.3.2).
    pub fn rekey_ike(&mut self, now: Instant, peer: IpAddr) {
        self.with_established(now, peer, |sa| {
            if !sa.queue.contains(&Request::RekeyIke) {
                sa.queue.push_back(Request::RekeyIke);
            }
        });
    }

    fn with_established(&mut self, now: Instant, peer: IpAddr, f: impl Fn(&mut IkeSa)) {
        for spi in self.by_peer.get(&peer).cloned().unwrap_or_default() {
            let Some(mut sa) = self.sas.remove(&spi) else {
                continue;
            };
            if sa.established() && !sa.rekeyed && !sa.deleting {
                f(&mut sa);
            }
            self.apply(sa, Effects::default(), now);
        }
    }

    /// Runs the timers due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.cookies.rotate_at() <= now {
            self.cookies.rotate(&mut *self.ctx.rng, now);
        }
        let due: Vec<u64> = self
            .wakeups
            .iter()
            .take_while(|(at, _)| *at <= now)
            .map(|(_, spi)| *spi)
            .collect();
        for spi in due {
            let Some(mut sa) = self.sas.remove(&spi) else {
                continue;
            };
            let effects = self.ctx.on_timeout(&mut sa, now);
            self.apply(sa, effects, now);
        }
    }

    /// Processes a UDP datagram received on `local` from `remote`: an IKE message on port
    /// 500, or on port 4500 a NAT keepalive or an IKE message behind the non-ESP marker (ESP
    /// never reaches the engine). Bad input is dropped and counted, never a panic.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        bytes: &[u8],
    ) {
        let (msg, encap) = if local.port() == NAT_T_PORT {
            match Datagram::parse(bytes) {
                Ok(Datagram::Keepalive) => {
                    self.ctx.counters.keepalives_received += 1;
                    return;
                }
                Ok(Datagram::Ike(m)) => (m, true),
                _ => return self.dropped(remote, DropReason::NotIke),
            }
        } else {
            (bytes, false)
        };
        if let Err(reason) = self.dispatch(now, local, remote, msg, encap) {
            self.dropped(remote, reason);
        }
    }

    fn dropped(&mut self, from: SocketAddr, reason: DropReason) {
        self.ctx.counters.drop(reason);
        self.ctx.events.push_back(Event::Dropped { from, reason });
    }

    fn dispatch(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        msg: &[u8],
        encap: bool,
    ) -> Result<(), DropReason> {
        let packet = Packet::new_checked(msg).map_err(|e| match e {
            dmvpn_wire::Error::BadVersion => DropReason::UnsupportedVersion,
            _ => DropReason::Malformed,
        })?;
        let msg = msg
            .get(..packet.length() as usize)
            .ok_or(DropReason::Malformed)?;
        let repr = Repr::parse(&packet).map_err(|_| DropReason::Malformed)?;
        let flags = repr.flags;
        if repr.exchange_type == ExchangeType::IkeSaInit
            && !flags.response()
            && repr.responder_spi == 0
        {
            if !flags.initiator() {
                return Err(DropReason::WrongFlags);
            }
            return self.init_request(now, local, remote, msg, &repr, encap);
        }
        let our_spi = if flags.initiator() {
            repr.responder_spi
        } else {
            repr.initiator_spi
        };
        let mut sa = self.sas.remove(&our_spi).ok_or(DropReason::UnknownSpi)?;
        let spis_match = sa.spi_i == repr.initiator_spi
            && (sa.spi_r == repr.responder_spi || matches!(sa.state, State::InitSent(_)));
        let result = if !spis_match {
            Err(DropReason::UnknownSpi)
        } else if flags.initiator() == sa.initiator {
            Err(DropReason::WrongFlags)
        } else {
            if sa.initial_contact && matches!(sa.state, State::InitSent(_)) {
                // Our IKE_AUTH may follow: INITIAL_CONTACT only if no other IKE SA with the
                // peer is up (section 3.10.1), as after a restart.
                sa.initial_contact = !self.by_peer.get(&sa.peer).is_some_and(|v| {
                    v.iter()
                        .any(|s| self.sas.get(s).is_some_and(IkeSa::established))
                });
            }
            self.ctx
                .handle(&mut sa, now, local, remote, msg, &repr, encap)
        };
        match result {
            Ok(effects) => {
                self.apply(sa, effects, now);
                Ok(())
            }
            Err(reason) => {
                self.apply(sa, Effects::default(), now);
                Err(reason)
            }
        }
    }

    /// A fresh SPI of ours, unique among our SAs.
    pub(crate) fn fresh_spi(&mut self) -> u64 {
        loop {
            let spi = nonzero_u64(&mut *self.ctx.rng);
            if !self.sas.contains_key(&spi) {
                return spi;
            }
        }
    }

    /// Puts an SA (back) in the table after handling: applies the effects, starts queued
    /// requests, and schedules its next deadline.
    pub(crate) fn apply(&mut self, mut sa: IkeSa, effects: Effects, now: Instant) {
        if let Some(new) = effects.new_sa {
            if self.sas.contains_key(&new.local_spi()) {
                // Our new SPI collided with another of ours (64 random bits): refuse the
                // successor rather than overwrite.
                self.ctx.events.push_back(Event::IkeSaFailed {
                    peer: new.peer,
                    reason: crate::event::FailReason::BadResponse,
                });
            } else {
                self.insert(new, now);
            }
        }
        self.settle_rekey(&mut sa, now);
        if sa.established() && sa.established_at.is_none() {
            sa.established_at = Some(now);
        }
        if effects.initial_contact {
            self.forget_stale(&sa, now);
        }
        if sa.half_open && (effects.remove || sa.established()) {
            sa.half_open = false;
            self.half_open = self.half_open.saturating_sub(1);
            self.init_index.remove(&(sa.peer, sa.spi_i));
        }
        if let Some(at) = sa.scheduled.take() {
            self.wakeups.remove(&(at, sa.local_spi()));
        }
        let peer = sa.peer;
        if effects.remove {
            let spi = sa.local_spi();
            if let Some(v) = self.by_peer.get_mut(&peer) {
                v.retain(|s| *s != spi);
                if v.is_empty() {
                    self.by_peer.remove(&peer);
                }
            }
        } else {
            self.insert(sa, now);
        }
        if effects.established {
            self.resolve_collisions(peer, now);
        }
    }

    fn insert(&mut self, mut sa: IkeSa, now: Instant) {
        self.ctx.kick(&mut sa, now);
        if let Some(at) = sa.scheduled.take() {
            self.wakeups.remove(&(at, sa.local_spi()));
        }
        let spi = sa.local_spi();
        sa.scheduled = sa.next_deadline();
        if let Some(at) = sa.scheduled {
            self.wakeups.insert((at, spi));
        }
        let v = self.by_peer.entry(sa.peer).or_default();
        if !v.contains(&spi) {
            v.push(spi);
        }
        self.sas.insert(spi, sa);
    }

    /// Moves the CHILD_SAs of a rekeyed IKE SA to its successor once no rekey of ours is in
    /// flight (RFC 7296 section 2.8.2). After a simultaneous rekey there are two successors:
    /// the one whose exchange had the lowest of the four nonces is redundant, deleted by its
    /// initiator and awaited by the other side; the survivor takes every CHILD_SA, and its
    /// initiator deletes the old SA. Both sides compare the same nonces and agree.
    fn settle_rekey(&mut self, old: &mut IkeSa, now: Instant) {
        if !old.rekeyed || old.settled || old.rekeying_ike() {
            return;
        }
        old.settled = true;
        let live: Vec<u64> = old
            .successors
            .iter()
            .copied()
            .filter(|s| self.sas.contains_key(s))
            .collect();
        let Some(keep) = live
            .iter()
            .copied()
            .max_by(|a, b| self.sas[a].lowest_nonce().cmp(self.sas[b].lowest_nonce()))
        else {
            return;
        };
        let mut children = core::mem::take(&mut old.children);
        for spi in live.into_iter().filter(|s| *s != keep) {
            let Some(mut loser) = self.sas.remove(&spi) else {
                continue;
            };
            children.append(&mut loser.children);
            loser.redundant = true;
            loser.rekeyed = true;
            loser.settled = true;
            if loser.initiator {
                self.ctx.queue_delete_ike(&mut loser, DownReason::Redundant);
            } else {
                for t in [Timer::IkeRekey, Timer::Dpd, Timer::Keepalive] {
                    loser.timers.set(t, None);
                }
                loser.timers.set(
                    Timer::IkeExpire,
                    Some(now + self.ctx.config.half_open_timeout),
                );
            }
            self.apply(loser, Effects::default(), now);
        }
        if let Some(mut survivor) = self.sas.remove(&keep) {
            survivor.children.append(&mut children);
            if survivor.initiator {
                self.ctx.queue_delete_ike(old, DownReason::Rekeyed);
            }
            self.apply(survivor, Effects::default(), now);
        }
    }

    /// INITIAL_CONTACT (RFC 7296 section 3.10.1): the peer of `sa` lost its state, so every
    /// other IKE SA with the same identity that was up before `sa` began is stale. They go
    /// silently (a DELETE would reach nobody), reported down as deleted by the peer. SAs
    /// established since `sa` began (a simultaneous initiation) are left to the nonce rule.
    fn forget_stale(&mut self, sa: &IkeSa, now: Instant) {
        let Some(id) = &sa.peer_id else {
            return;
        };
        let stale: Vec<u64> = self
            .sas
            .iter()
            .filter(|(spi, other)| {
                **spi != sa.local_spi()
                    && other.peer_id.as_ref() == Some(id)
                    && other.established_at.is_some_and(|at| at < sa.created)
            })
            .map(|(spi, _)| *spi)
            .collect();
        for spi in stale {
            let Some(mut other) = self.sas.remove(&spi) else {
                continue;
            };
            self.ctx.sa_down(&mut other, DownReason::DeletedByPeer);
            self.apply(
                other,
                Effects {
                    remove: true,
                    ..Default::default()
                },
                now,
            );
        }
    }

    /// Simultaneous initiation (RFC 7296 section 2.8.1 applied to initial creation): when two
    /// established IKE SAs join the same peers, the one whose exchange had the lowest nonce is
    /// redundant, and its original initiator deletes it. Both peers see the same nonces, so
    /// both keep the same SA; the other side only waits for the DELETE.
    fn resolve_collisions(&mut self, peer: IpAddr, now: Instant) {
        let spis = self.by_peer.get(&peer).cloned().unwrap_or_default();
        let live: Vec<u64> = spis
            .into_iter()
            .filter(|s| {
                self.sas
                    .get(s)
                    .is_some_and(|sa| sa.established() && !sa.rekeyed && !sa.deleting)
            })
            .collect();
        if live.len() < 2 {
            return;
        }
        let Some(keep) = live
            .iter()
            .copied()
            .max_by(|a, b| self.sas[a].lowest_nonce().cmp(self.sas[b].lowest_nonce()))
        else {
            return;
        };
        for spi in live {
            if spi == keep {
                continue;
            }
            let Some(mut sa) = self.sas.remove(&spi) else {
                continue;
            };
            if sa.initiator {
                self.ctx.queue_delete_ike(&mut sa, DownReason::Redundant);
            }
            self.apply(sa, Effects::default(), now);
        }
    }
}
