//! The exchanges (RFC 7296 section 1): message framing and dispatch shared by all of them,
//! the request window and retransmissions (sections 2.1, 2.3), timers, and the CHILD_SA
//! negotiation that IKE_AUTH and CREATE_CHILD_SA share.

pub(crate) mod create_child_sa;
pub(crate) mod ike_auth;
pub(crate) mod ike_sa_init;
pub(crate) mod informational;

use core::net::SocketAddr;
use std::time::{Duration, Instant};

use dmvpn_esp::KeyMaterial;
use dmvpn_wire::Seq;
use dmvpn_wire::ikev2::{
    Authentication, CertEncoding, Delete, ExchangeType, Flags, Identification, KeyExchange,
    Notification, NotifyType, Payload, PayloadBody, PayloadType, Payloads, Proposal, ProtocolId,
    Repr, TrafficSelector, Transform,
};
use dmvpn_wire::udp_encap::{NAT_KEEPALIVE, NON_ESP_MARKER};

use crate::config::{Mode, UdpEncap};
use crate::crypto::keys::ChildKeys;
use crate::crypto::random::below;
use crate::crypto::sk::Header;
use crate::engine::{Ctx, Effects, Transmit};
use crate::error::DropReason;
use crate::event::{ChildSaUp, DownReason, EspKeys, Event, FailReason};
use crate::fragment::{Fragment, FragmentLimits, Progress, Reassembly, SkfFraming, split};
use crate::keylog::EspSaKeys;
use crate::proposal::{EspChoice, encr_transform};
use crate::sa::{ChildSa, IkeSa, Incoming, Pending, Request, State, Task};
use crate::timer::Timer;
use crate::ts::{Selector, narrow};

/// Bytes of our nonces: 32, at least half the largest PRF key (RFC 7296 section 2.10).
pub(crate) const NONCE_LEN: usize = 32;

/// SIGNATURE_HASH_ALGORITHMS data (RFC 7427 section 4, RFC 8420): SHA2-256, SHA2-384,
/// SHA2-512 and Identity.
pub(crate) const SIGNATURE_HASHES: [u8; 8] = [0, 2, 0, 3, 0, 4, 0, 5];

/// The payloads of a message by kind (RFC 7296 sections 3.3 to 3.13); where one is
/// expected, the first counts.
#[derive(Debug, Default)]
pub(crate) struct Collected<'a> {
    pub sa: Option<Seq<'a, Proposal<'a>>>,
    pub ke: Option<KeyExchange<'a>>,
    pub nonce: Option<&'a [u8]>,
    pub id_i: Option<Identification<'a>>,
    pub id_r: Option<Identification<'a>>,
    pub auth: Option<Authentication<'a>>,
    pub ts_i: Option<Seq<'a, TrafficSelector<'a>>>,
    pub ts_r: Option<Seq<'a, TrafficSelector<'a>>>,
    pub notifies: Vec<Notification<'a>>,
    pub deletes: Vec<Delete<'a>>,
    /// CERT payloads of encoding 4 (X.509 Certificate - Signature, RFC 7296 section 3.6), in
    /// order: the end entity first.
    pub certs: Vec<&'a [u8]>,
}

impl<'a> Collected<'a> {
    pub(crate) fn new(payloads: Payloads<'a>) -> Self {
        let mut c = Collected::default();
        for p in payloads.iter() {
            match p.body {
                PayloadBody::Sa(s) => {
                    c.sa.get_or_insert(s);
                }
                PayloadBody::Ke(k) => {
                    c.ke.get_or_insert(k);
                }
                PayloadBody::Nonce(n) => {
                    c.nonce.get_or_insert(n.0);
                }
                PayloadBody::IdI(i) => {
                    c.id_i.get_or_insert(i);
                }
                PayloadBody::IdR(i) => {
                    c.id_r.get_or_insert(i);
                }
                PayloadBody::Auth(a) => {
                    c.auth.get_or_insert(a);
                }
                PayloadBody::TsI(t) => {
                    c.ts_i.get_or_insert(t);
                }
                PayloadBody::TsR(t) => {
                    c.ts_r.get_or_insert(t);
                }
                PayloadBody::Notify(n) => c.notifies.push(n),
                PayloadBody::Delete(d) => c.deletes.push(d),
                PayloadBody::Cert(cert) if cert.encoding == CertEncoding::X509Signature => {
                    c.certs.push(cert.data);
                }
                _ => {}
            }
        }
        c
    }

    pub(crate) fn notify(&self, t: NotifyType) -> Option<&Notification<'a>> {
        self.notifies.iter().find(|n| n.notify_type == t)
    }

    /// The first error notification (RFC 7296 section 3.10.1: types below 16384).
    pub(crate) fn error(&self) -> Option<NotifyType> {
        self.notifies
            .iter()
            .map(|n| n.notify_type)
            .find(|t| t.is_error())
    }

    pub(crate) fn nat_hashes(&self, t: NotifyType) -> Vec<&'a [u8]> {
        self.notifies
            .iter()
            .filter(|n| n.notify_type == t)
            .map(|n| n.data)
            .collect()
    }
}

/// An SA payload proposal we own, borrowed into the codec's [`Proposal`] when emitting.
pub(crate) struct OwnedProposal {
    pub number: u8,
    pub protocol: ProtocolId,
    pub spi: Vec<u8>,
    pub transforms: Vec<Transform<'static>>,
}

impl OwnedProposal {
    pub(crate) fn wire(&self) -> Proposal<'_> {
        Proposal {
            number: self.number,
            protocol_id: self.protocol,
            spi: &self.spi,
            transforms: Seq::Items(&self.transforms),
        }
    }
}

/// The selectors of a TS payload we understand; unknown TS types are skipped (section 3.13.1).
pub(crate) fn selectors(ts: Option<Seq<'_, TrafficSelector<'_>>>) -> Vec<Selector> {
    ts.map(|s| s.iter().filter_map(|t| Selector::from_wire(&t)).collect())
        .unwrap_or_default()
}

/// What a responder agreed to for a CHILD_SA.
pub(crate) struct ChildAgreement {
    pub choice: EspChoice,
    pub ts_i: Vec<Selector>,
    pub ts_r: Vec<Selector>,
    pub transport: bool,
}

/// The response payloads of an agreed CHILD_SA: SA, TSi, TSr and maybe USE_TRANSPORT_MODE.
pub(crate) struct ChildResponse {
    pub proposal: OwnedProposal,
    pub ts_i: Vec<TrafficSelector<'static>>,
    pub ts_r: Vec<TrafficSelector<'static>>,
    pub transport: bool,
}

impl ChildResponse {
    pub(crate) fn new(a: &ChildAgreement, our_spi: u32) -> Self {
        let mut transforms = vec![encr_transform(a.choice.encryption)];
        if let Some(g) = a.choice.group {
            transforms.push(Transform::new(dmvpn_wire::ikev2::TransformId::Dh(g.id())));
        }
        transforms.push(Transform::new(dmvpn_wire::ikev2::TransformId::Esn(match a
            .choice
            .sequence_numbers
        {
            dmvpn_esp::SequenceNumbers::Short => dmvpn_wire::ikev2::EsnId::No,
            dmvpn_esp::SequenceNumbers::Extended => dmvpn_wire::ikev2::EsnId::Yes,
        })));
        ChildResponse {
            proposal: OwnedProposal {
                number: a.choice.number,
                protocol: ProtocolId::Esp,
                spi: our_spi.to_be_bytes().to_vec(),
                transforms,
            },
            ts_i: a.ts_i.iter().map(Selector::wire).collect(),
            ts_r: a.ts_r.iter().map(Selector::wire).collect(),
            transport: a.transport,
        }
    }
}

/// A notification payload without SPI.
pub(crate) fn notify(t: NotifyType, data: &[u8]) -> Payload<'_> {
    Payload::new(PayloadBody::Notify(Notification::new(t, data)))
}

impl Ctx {
    /// Fresh nonce bytes (RFC 7296 section 2.10).
    pub(crate) fn nonce(&mut self) -> Vec<u8> {
        let mut n = vec![0; NONCE_LEN];
        self.rng.fill(&mut n);
        n
    }

    /// Counts a refusal of the SA's peer that is not a dropped datagram's (an AUTH refused, a
    /// reassembly expired) and reports it like one.
    pub(crate) fn refused(&mut self, sa: &IkeSa, reason: DropReason) {
        self.counters.drop(reason);
        self.events.push_back(Event::Dropped {
            from: sa.remote,
            reason,
        });
    }

    /// Queues every message of `messages` (one, or the fragments of one) for the SA's peer.
    pub(crate) fn transmit_all(&mut self, sa: &IkeSa, messages: &[Vec<u8>]) {
        for m in messages {
            self.transmit(sa, m);
        }
    }

    /// Protects a message: one SK message, or SKF fragments (RFC 7383 section 2.5) when both
    /// sides support fragmentation and the whole would not fit the maximum datagram. `None`
    /// without keys or when the codec cannot represent it.
    pub(crate) fn seal(
        &mut self,
        sa: &mut IkeSa,
        header: &Header,
        inner: &[Payload<'_>],
    ) -> Option<Vec<Vec<u8>>> {
        let tx = sa.tx.as_mut()?;
        let whole = tx.seal(header, inner)?;
        let framing = SkfFraming::for_aead(sa.remote.is_ipv6(), sa.encap);
        let max = self.config.max_datagram_len();
        if !sa.fragmentation || framing.datagram_len(whole.len()) <= max {
            return Some(vec![whole]);
        }
        let payloads = Payloads::Items(inner);
        let mut plain = vec![0; payloads.wire_len()];
        payloads.emit(&mut plain).ok()?;
        // Past the limits (or a datagram size too small), the whole message goes and IP
        // fragments it (RFC 7383 section 2.5.2 leaves no better choice).
        let Some(fragments) = framing.max_chunk_len(max).ok().and_then(|chunk| {
            split(
                payloads.first_type(),
                &plain,
                chunk,
                FragmentLimits::default(),
            )
            .ok()
        }) else {
            return Some(vec![whole]);
        };
        let sealed = fragments
            .map(|f| tx.seal_fragment(header, f.first_inner, f.number, f.total, f.data))
            .collect::<Option<Vec<_>>>()?;
        self.counters.fragments_sent += sealed.len() as u64;
        Some(sealed)
    }

    /// Authenticates and decrypts a protected message, SK or SKF. A fragment goes to the
    /// reassembly of its message (RFC 7383 section 2.6): `Ok(None)` until the last one
    /// completes it. Reassembly is bounded by [`FragmentLimits`] and
    /// [`crate::Config::fragment_timeout`], one message per direction.
    fn open(
        &mut self,
        sa: &mut IkeSa,
        now: Instant,
        message_id: u32,
        response: bool,
        msg: &[u8],
    ) -> Result<Option<(PayloadType, Vec<u8>)>, DropReason> {
        let rx = sa.rx.as_ref().ok_or(DropReason::UnexpectedExchange)?;
        let crate::crypto::sk::Opened {
            first_inner: first,
            fragment,
            plain,
        } = rx
            .open_any(msg)
            .map_err(|_| DropReason::IntegrityCheckFailed)?;
        let Some((number, total)) = fragment else {
            return Ok(Some((first, plain)));
        };
        if !sa.fragmentation {
            return Err(DropReason::FragmentRefused);
        }
        self.counters.fragments_received += 1;
        let slot = match sa.incoming.iter().position(|i| i.response == response) {
            Some(i) if sa.incoming[i].message_id == message_id => i,
            found => {
                // A newer message of this direction replaces an abandoned one.
                if let Some(i) = found {
                    sa.incoming.swap_remove(i);
                }
                sa.incoming.push(Incoming {
                    message_id,
                    response,
                    fragments: Reassembly::new(FragmentLimits::default()),
                    expires: now + self.config.fragment_timeout,
                });
                sa.incoming.len() - 1
            }
        };
        let fragment = Fragment {
            number,
            total,
            first_inner: first,
            data: &plain,
        };
        let progress = sa.incoming[slot]
            .fragments
            .accept(fragment)
            .map_err(|_| DropReason::FragmentRefused);
        let result = match progress? {
            Progress::Complete(m) => {
                sa.incoming.swap_remove(slot);
                self.counters.messages_reassembled += 1;
                Some((m.first_inner, m.payloads))
            }
            Progress::Stored | Progress::Restarted | Progress::Duplicate => None,
        };
        sa.timers.set(
            Timer::Reassembly,
            sa.incoming.iter().map(|i| i.expires).min(),
        );
        Ok(result)
    }

    /// Queues `msg` for the SA's peer, behind the non-ESP marker on port 4500.
    pub(crate) fn transmit(&mut self, sa: &IkeSa, msg: &[u8]) {
        let payload = if sa.encap {
            [&NON_ESP_MARKER[..], msg].concat()
        } else {
            msg.to_vec()
        };
        self.transmits.push_back(Transmit {
            local: sa.local,
            remote: sa.remote,
            payload,
        });
    }

    pub(crate) fn header(
        sa: &IkeSa,
        exchange: ExchangeType,
        response: bool,
        message_id: u32,
    ) -> Header {
        let mut flags = Flags::default();
        if sa.initiator {
            flags = flags | Flags::INITIATOR;
        }
        if response {
            flags = flags | Flags::RESPONSE;
        }
        Header {
            spi_i: sa.spi_i,
            spi_r: sa.spi_r,
            exchange,
            flags,
            message_id,
        }
    }

    fn retransmit_delay(&self, sent: u32) -> Duration {
        self.config
            .retransmit_timeout
            .saturating_mul(1 << sent.saturating_sub(1).min(16))
    }

    /// Sends a protected request and makes it the outstanding one (sections 2.1, 2.3).
    pub(crate) fn request(
        &mut self,
        sa: &mut IkeSa,
        now: Instant,
        exchange: ExchangeType,
        inner: &[Payload<'_>],
        task: Task,
    ) {
        let message_id = sa.next_request;
        let header = Self::header(sa, exchange, false, message_id);
        // INITIAL_CONTACT rides on our first IKE_AUTH to a peer (section 3.10.1).
        let with_contact;
        let inner = if matches!(task, Task::Auth) && sa.initial_contact {
            with_contact = [inner, &[notify(NotifyType::InitialContact, &[])]].concat();
            &with_contact[..]
        } else {
            inner
        };
        let Some(messages) = self.seal(sa, &header, inner) else {
            return;
        };
        sa.next_request = sa.next_request.wrapping_add(1);
        self.send_pending(
            sa,
            now,
            Pending {
                message_id,
                messages,
                sent: 0,
                task,
            },
            exchange,
        );
    }

    /// Sends `pending` for the first time and arms its retransmission.
    pub(crate) fn send_pending(
        &mut self,
        sa: &mut IkeSa,
        now: Instant,
        mut pending: Pending,
        exchange: ExchangeType,
    ) {
        pending.sent = 1;
        self.transmit_all(sa, &pending.messages);
        self.counters.sent.bump(exchange);
        sa.timers
            .set(Timer::Retransmit, Some(now + self.retransmit_delay(1)));
        sa.pending = Some(pending);
    }

    /// Sends a protected response and caches it for retransmitted requests (section 2.1).
    pub(crate) fn respond(
        &mut self,
        sa: &mut IkeSa,
        exchange: ExchangeType,
        message_id: u32,
        inner: &[Payload<'_>],
    ) {
        let header = Self::header(sa, exchange, true, message_id);
        let Some(messages) = self.seal(sa, &header, inner) else {
            return;
        };
        self.transmit_all(sa, &messages);
        self.counters.sent.bump(exchange);
        sa.last_response = Some((message_id, messages));
    }

    /// A message from the peer authenticated: note the time, float to 4500 or follow a NAT
    /// rebinding (RFC 7296 section 2.23), re-arm liveness.
    fn heard(
        &mut self,
        sa: &mut IkeSa,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        encap: bool,
    ) {
        sa.last_heard = now;
        if encap && !sa.encap {
            sa.encap = true;
            sa.local = local;
            sa.remote = remote;
            self.arm_keepalive(sa, now);
        } else if encap && sa.remote != remote {
            sa.remote = remote;
        }
        if sa.established()
            && let Some(i) = self.config.dpd_interval
        {
            sa.timers.set(Timer::Dpd, Some(now + i));
        }
    }

    pub(crate) fn arm_keepalive(&self, sa: &mut IkeSa, now: Instant) {
        let wanted = sa.encap && (sa.nat.local_behind || self.config.udp_encap == UdpEncap::Forced);
        sa.timers.set(
            Timer::Keepalive,
            self.config
                .nat_keepalive
                .filter(|_| wanted)
                .map(|i| now + i),
        );
    }

    /// Arms the timers of a freshly established IKE SA: lifetimes with jitter, liveness and
    /// keepalives.
    pub(crate) fn arm_established(&mut self, sa: &mut IkeSa, now: Instant) {
        let l = self.config.ike_lifetime;
        let jitter = Duration::from_millis(below(&mut *self.rng, l.jitter.as_millis() as u64));
        sa.timers
            .set(Timer::IkeRekey, Some(now + l.soft.saturating_sub(jitter)));
        sa.timers.set(Timer::IkeExpire, Some(now + l.hard));
        sa.timers.set(Timer::HalfOpen, None);
        sa.timers
            .set(Timer::Dpd, self.config.dpd_interval.map(|i| now + i));
        self.arm_keepalive(sa, now);
    }

    /// Handles a message for an existing SA.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn handle(
        &mut self,
        sa: &mut IkeSa,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        msg: &[u8],
        repr: &Repr<'_>,
        encap: bool,
    ) -> Result<Effects, DropReason> {
        let exchange = repr.exchange_type;
        if repr.flags.response() {
            let Some(pending) = &sa.pending else {
                return Err(DropReason::UnexpectedResponse);
            };
            if pending.message_id != repr.message_id {
                return Err(DropReason::UnexpectedResponse);
            }
            let expected = match pending.task {
                Task::Init => ExchangeType::IkeSaInit,
                Task::Auth => ExchangeType::IkeAuth,
                Task::RekeyChild { .. } | Task::RekeyIke { .. } => ExchangeType::CreateChildSa,
                Task::DeleteChild(_) | Task::DeleteIke(_) | Task::Dpd => {
                    ExchangeType::Informational
                }
            };
            if exchange != expected {
                return Err(DropReason::UnexpectedExchange);
            }
            if exchange == ExchangeType::IkeSaInit {
                return self.init_response(sa, now, remote, msg, repr);
            }
            let Some((first, plain)) = self.open(sa, now, repr.message_id, true, msg)? else {
                return Ok(Effects::default());
            };
            let payloads = Payloads::parse(first, &plain).map_err(|_| DropReason::Malformed)?;
            let c = Collected::new(payloads);
            self.counters.received.bump(exchange);
            self.heard(sa, now, local, remote, encap);
            sa.timers.set(Timer::Retransmit, None);
            let Some(pending) = sa.pending.take() else {
                return Err(DropReason::UnexpectedResponse);
            };
            return Ok(match pending.task {
                Task::Init => Effects::default(),
                Task::Auth => self.auth_response(sa, now, &c),
                Task::RekeyChild {
                    old_inbound,
                    new_spi,
                    ni,
                    dh,
                    transport,
                    ts_i,
                    ts_r,
                } => {
                    self.rekey_child_response(
                        sa,
                        now,
                        &c,
                        old_inbound,
                        new_spi,
                        ni,
                        dh,
                        transport,
                        ts_i,
                        ts_r,
                    );
                    Effects::default()
                }
                Task::RekeyIke { new_spi, ni, dh } => {
                    self.rekey_ike_response(sa, now, &c, new_spi, ni, dh)
                }
                Task::DeleteChild(spis) => {
                    self.children_deleted(sa, &spis, DownReason::Deleted);
                    Effects::default()
                }
                Task::DeleteIke(reason) => {
                    self.sa_down(sa, reason);
                    Effects {
                        remove: true,
                        ..Default::default()
                    }
                }
                Task::Dpd => Effects::default(),
            });
        }
        // A request.
        let rx = sa.rx.as_ref().ok_or(DropReason::UnexpectedExchange)?;
        if let Some((id, response)) = &sa.last_response
            && *id == repr.message_id
        {
            // A retransmitted request: authenticate it, then replay our response; for a
            // fragmented request, once, on its first fragment (RFC 7383 section 2.6.1).
            let opened = rx
                .open_any(msg)
                .map_err(|_| DropReason::IntegrityCheckFailed)?;
            if opened.fragment.is_some_and(|(number, _)| number != 1) {
                return Ok(Effects::default());
            }
            let response = response.clone();
            self.transmit_all(sa, &response);
            self.counters.responses_replayed += 1;
            return Ok(Effects::default());
        }
        if repr.message_id != sa.expect_request {
            return Err(DropReason::InvalidMessageId);
        }
        let allowed = match sa.state {
            State::AuthWait => exchange == ExchangeType::IkeAuth,
            State::Established => matches!(
                exchange,
                ExchangeType::CreateChildSa | ExchangeType::Informational
            ),
            State::InitSent(_) | State::AuthSent(_) => false,
        };
        if !allowed {
            return Err(DropReason::UnexpectedExchange);
        }
        let message_id = repr.message_id;
        let Some((first, plain)) = self.open(sa, now, message_id, false, msg)? else {
            return Ok(Effects::default());
        };
        let payloads = Payloads::parse(first, &plain).map_err(|_| DropReason::Malformed)?;
        let c = Collected::new(payloads);
        let effects = match exchange {
            ExchangeType::IkeAuth => {
                let mut effects =
                    self.auth_request(sa, now, local, remote, encap, message_id, &c)?;
                effects.initial_contact =
                    effects.established && c.notify(NotifyType::InitialContact).is_some();
                effects
            }
            ExchangeType::CreateChildSa => {
                self.heard(sa, now, local, remote, encap);
                self.create_child_request(sa, now, message_id, &c)
            }
            _ => {
                self.heard(sa, now, local, remote, encap);
                self.informational_request(sa, message_id, &c)
            }
        };
        self.counters.received.bump(exchange);
        sa.expect_request = sa.expect_request.wrapping_add(1);
        Ok(effects)
    }

    /// Starts queued requests while the window is free (RFC 7296 section 2.3).
    pub(crate) fn kick(&mut self, sa: &mut IkeSa, now: Instant) {
        while sa.pending.is_none() && sa.established() {
            let Some(req) = sa.queue.pop_front() else {
                break;
            };
            self.start_request(sa, now, req);
        }
    }

    fn start_request(&mut self, sa: &mut IkeSa, now: Instant, req: Request) {
        match req {
            Request::RekeyChild(spi) => self.send_rekey_child(sa, now, spi),
            Request::RekeyIke => {
                if !sa.rekeyed && !sa.deleting {
                    self.send_rekey_ike(sa, now);
                }
            }
            Request::DeleteChild(spis) => self.send_delete_child(sa, now, spis),
            Request::DeleteIke(reason) => self.send_delete_ike(sa, now, reason),
            Request::Dpd => self.request(sa, now, ExchangeType::Informational, &[], Task::Dpd),
        }
    }

    /// Queues the DELETE of the IKE SA ahead of anything else queued.
    pub(crate) fn queue_delete_ike(&mut self, sa: &mut IkeSa, reason: DownReason) {
        if !sa.deleting {
            sa.deleting = true;
            sa.queue.clear();
            sa.queue.push_back(Request::DeleteIke(reason));
        }
    }

    /// Reports every CHILD_SA and then the IKE SA down.
    pub(crate) fn sa_down(&mut self, sa: &mut IkeSa, reason: DownReason) {
        for c in sa.children.drain(..) {
            self.events.push_back(Event::ChildSaDown {
                peer: sa.peer,
                inbound_spi: c.inbound_spi,
                outbound_spi: c.outbound_spi,
                reason: c.down_reason(reason),
            });
        }
        self.events.push_back(Event::IkeSaDown {
            peer: sa.peer,
            spi_i: sa.spi_i,
            spi_r: sa.spi_r,
            reason,
        });
    }

    /// Runs the SA's due timers and its CHILD_SAs'.
    pub(crate) fn on_timeout(&mut self, sa: &mut IkeSa, now: Instant) -> Effects {
        for t in sa.timers.take_expired(now) {
            match t {
                Timer::Retransmit => {
                    let Some(p) = &mut sa.pending else { continue };
                    if p.sent >= self.config.retransmit_tries {
                        return self.give_up(sa);
                    }
                    p.sent += 1;
                    let (messages, sent) = (p.messages.clone(), p.sent);
                    self.transmit_all(sa, &messages);
                    self.counters.retransmissions += 1;
                    sa.timers
                        .set(Timer::Retransmit, Some(now + self.retransmit_delay(sent)));
                }
                Timer::Dpd => {
                    let Some(interval) = self.config.dpd_interval else {
                        continue;
                    };
                    if !sa.established() {
                        continue;
                    }
                    if now >= sa.last_heard + interval
                        && sa.pending.is_none()
                        && !sa.queue.contains(&Request::Dpd)
                    {
                        sa.queue.push_back(Request::Dpd);
                    }
                    sa.timers
                        .set(Timer::Dpd, Some(now.max(sa.last_heard) + interval));
                }
                Timer::Keepalive => {
                    self.transmits.push_back(Transmit {
                        local: sa.local,
                        remote: sa.remote,
                        payload: NAT_KEEPALIVE.to_vec(),
                    });
                    self.counters.keepalives_sent += 1;
                    self.arm_keepalive(sa, now);
                }
                Timer::IkeRekey => {
                    if sa.established()
                        && !sa.rekeyed
                        && !sa.deleting
                        && !sa.queue.contains(&Request::RekeyIke)
                    {
                        sa.queue.push_back(Request::RekeyIke);
                    }
                }
                Timer::IkeExpire => {
                    if sa.rekeyed || !sa.established() {
                        self.sa_down(sa, DownReason::Expired);
                        return Effects {
                            remove: true,
                            ..Default::default()
                        };
                    }
                    self.queue_delete_ike(sa, DownReason::Expired);
                }
                Timer::HalfOpen => {
                    if !sa.established() {
                        return Effects {
                            remove: true,
                            ..Default::default()
                        };
                    }
                }
                Timer::Reassembly => {
                    let before = sa.incoming.len();
                    sa.incoming.retain(|i| i.expires > now);
                    for _ in sa.incoming.len()..before {
                        self.refused(sa, DropReason::ReassemblyExpired);
                    }
                    sa.timers.set(
                        Timer::Reassembly,
                        sa.incoming.iter().map(|i| i.expires).min(),
                    );
                }
            }
        }
        let mut requests = Vec::new();
        for c in &mut sa.children {
            if c.rekey_at.is_some_and(|at| at <= now) {
                c.rekey_at = None;
                requests.push(Request::RekeyChild(c.inbound_spi));
            }
            let expired = c.expire_at.is_some_and(|at| at <= now);
            let overlap_over = c.delete_at.is_some_and(|at| at <= now);
            if expired || overlap_over {
                c.expire_at = None;
                c.delete_at = None;
                c.rekey_at = None;
                if !c.deleting {
                    c.deleting = true;
                    requests.push(Request::DeleteChild(vec![c.inbound_spi]));
                }
            }
        }
        if !sa.deleting && !sa.rekeyed {
            sa.queue.extend(requests);
        }
        Effects::default()
    }

    /// Retransmissions ran out (RFC 7296 section 2.4): the peer is dead.
    fn give_up(&mut self, sa: &mut IkeSa) -> Effects {
        let task = sa.pending.take().map(|p| p.task);
        if sa.established() || sa.rekeyed {
            let reason = match task {
                Some(Task::DeleteIke(reason)) => reason,
                _ => DownReason::PeerDead,
            };
            self.sa_down(sa, reason);
        } else {
            self.events.push_back(Event::IkeSaFailed {
                peer: sa.peer,
                reason: FailReason::Timeout,
            });
        }
        Effects {
            remove: true,
            ..Default::default()
        }
    }

    /// Answers the CHILD_SA part of a request as responder: proposal selection (section
    /// 3.3.6), selector narrowing (section 2.9) and mode (section 1.3.1).
    pub(crate) fn agree_child(
        &self,
        c: &Collected<'_>,
        ke_group: Option<crate::crypto::dh::Group>,
    ) -> Result<ChildAgreement, NotifyType> {
        let sa = c.sa.ok_or(NotifyType::NoProposalChosen)?;
        let choice = crate::proposal::select_esp(&self.config.esp_proposals, sa.iter(), ke_group)
            .ok_or(NotifyType::NoProposalChosen)?;
        let local = [Selector::host(
            self.config.local_addr,
            self.config.ts_protocol,
        )];
        let ts_i = narrow(&selectors(c.ts_i), &self.config.ts_remote_allowed);
        let ts_r = narrow(&selectors(c.ts_r), &local);
        if ts_i.is_empty() || ts_r.is_empty() {
            return Err(NotifyType::TsUnacceptable);
        }
        let transport =
            c.notify(NotifyType::UseTransportMode).is_some() && self.config.allow_transport;
        Ok(ChildAgreement {
            choice,
            ts_i,
            ts_r,
            transport,
        })
    }

    /// Installs a CHILD_SA: reports its keys (KEYMAT, section 2.17: the exchange
    /// initiator's outbound key comes first) and arms its lifetimes.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn install_child(
        &mut self,
        sa: &mut IkeSa,
        now: Instant,
        exchange_initiator: bool,
        our_spi: u32,
        their_spi: u32,
        choice: &EspChoice,
        keys: &ChildKeys,
        mode: Mode,
        ts_local: Vec<Selector>,
        ts_remote: Vec<Selector>,
        replaces: Option<u32>,
    ) {
        let (inbound, outbound) = if exchange_initiator {
            (&keys.responder_to_initiator, &keys.initiator_to_responder)
        } else {
            (&keys.initiator_to_responder, &keys.responder_to_initiator)
        };
        let (Ok(in_key), Ok(out_key)) = (
            KeyMaterial::new(choice.encryption, inbound.expose()),
            KeyMaterial::new(choice.encryption, outbound.expose()),
        ) else {
            return;
        };
        if self.config.key_log {
            self.key_log.esp_sas.push(EspSaKeys {
                spi: their_spi,
                src: sa.local.ip(),
                dst: sa.remote.ip(),
                encr: choice.encryption,
                key: outbound.expose().to_vec(),
            });
            self.key_log.esp_sas.push(EspSaKeys {
                spi: our_spi,
                src: sa.remote.ip(),
                dst: sa.local.ip(),
                encr: choice.encryption,
                key: inbound.expose().to_vec(),
            });
        }
        let l = self.config.child_lifetime;
        let jitter = Duration::from_millis(below(&mut *self.rng, l.jitter.as_millis() as u64));
        sa.children.push(ChildSa {
            inbound_spi: our_spi,
            outbound_spi: their_spi,
            mode,
            ts_local: ts_local.clone(),
            ts_remote: ts_remote.clone(),
            rekey_at: Some(now + l.soft.saturating_sub(jitter)),
            expire_at: Some(now + l.hard),
            delete_at: None,
            rekeying: false,
            superseded: false,
            deleting: false,
            replaces,
            initiated: exchange_initiator,
            nonce: Vec::new(),
            redundant: false,
            pfs_group: None,
        });
        self.counters.child_sas_established += 1;
        self.events.push_back(Event::ChildSaUp(Box::new(ChildSaUp {
            peer: sa.peer,
            ike_spi_i: sa.spi_i,
            ike_spi_r: sa.spi_r,
            mode,
            udp_encap: sa.encap,
            local: sa.local,
            remote: sa.remote,
            inbound: EspKeys {
                spi: our_spi,
                algorithm: choice.encryption,
                sequence_numbers: choice.sequence_numbers,
                key: in_key,
            },
            outbound: EspKeys {
                spi: their_spi,
                algorithm: choice.encryption,
                sequence_numbers: choice.sequence_numbers,
                key: out_key,
            },
            ts_local,
            ts_remote,
            replaces,
        })));
    }

    /// Removes the CHILD_SAs with these inbound SPIs and reports them down.
    pub(crate) fn children_deleted(&mut self, sa: &mut IkeSa, inbound: &[u32], reason: DownReason) {
        let peer = sa.peer;
        sa.children.retain(|c| {
            if !inbound.contains(&c.inbound_spi) {
                return true;
            }
            self.events.push_back(Event::ChildSaDown {
                peer,
                inbound_spi: c.inbound_spi,
                outbound_spi: c.outbound_spi,
                reason: c.down_reason(reason),
            });
            false
        });
    }
}
