//! IKE_SA_INIT (RFC 7296 section 1.2): SA, KE, Nonce, NAT_DETECTION_*_IP (2.23),
//! IKEV2_FRAGMENTATION_SUPPORTED (RFC 7383) and SIGNATURE_HASH_ALGORITHMS (RFC 7427);
//! INVALID_KE_PAYLOAD (1.2) and COOKIE (2.6) on both sides.

use core::net::{IpAddr, SocketAddr};
use std::time::Instant;

use dmvpn_wire::Seq;
use dmvpn_wire::ikev2::{
    CertEncoding, Certificate, ExchangeType, Flags, KeyExchange, Nonce, NotifyType, Payload,
    PayloadBody, ProtocolId, Repr, Transform, TransformId,
};
use dmvpn_wire::udp_encap::{IKE_PORT, NAT_T_PORT, NON_ESP_MARKER};

use super::{Collected, NONCE_LEN, OwnedProposal, SIGNATURE_HASHES, notify};
use crate::config::UdpEncap;
use crate::crypto::CryptoError;
use crate::crypto::dh::{Group, KeyPair};
use crate::crypto::keys::{ike_keys, skeyseed};
use crate::crypto::random::nonzero_u64;
use crate::crypto::sk::{Header, SkKey};
use crate::engine::{Ctx, Effects, Engine, Transmit};
use crate::error::DropReason;
use crate::event::{Event, FailReason};
use crate::nat::{NatState, detection_hash, fake_source_hash};
use crate::proposal::{IkeChoice, encr_transform, select_ike};
use crate::sa::{IkeSa, InitSent, Pending, State, Task};
use crate::timer::Timer;

/// The most COOKIE challenges or INVALID_KE_PAYLOAD answers an initiator follows for one SA,
/// so that a forged answer cannot keep it looping.
const MAX_INIT_RETRIES: u8 = 3;

/// The SA payload proposal of a choice: one proposal, the chosen transforms (section 3.3.6).
pub(crate) fn chosen_ike(choice: &IkeChoice, spi: Vec<u8>) -> OwnedProposal {
    OwnedProposal {
        number: choice.number,
        protocol: ProtocolId::Ike,
        spi,
        transforms: vec![
            encr_transform(choice.encryption),
            Transform::new(TransformId::Prf(choice.prf.id())),
            Transform::new(TransformId::Dh(choice.group.id())),
        ],
    }
}

/// Our IKE proposals, numbered from 1, with `spi` (empty in IKE_SA_INIT, 8 bytes in a rekey).
pub(crate) fn our_ike_proposals(ctx: &Ctx, spi: &[u8]) -> Vec<OwnedProposal> {
    ctx.config
        .ike_proposals
        .iter()
        .enumerate()
        .map(|(i, p)| OwnedProposal {
            number: (i + 1) as u8,
            protocol: ProtocolId::Ike,
            spi: spi.to_vec(),
            transforms: p.transforms(),
        })
        .collect()
}

/// Sends a cleartext IKE_SA_INIT response without state (COOKIE, INVALID_KE_PAYLOAD,
/// NO_PROPOSAL_CHOSEN): `HDR(SPIi, 0), N(type, data)`.
fn stateless_answer(
    ctx: &mut Ctx,
    local: SocketAddr,
    remote: SocketAddr,
    spi_i: u64,
    encap: bool,
    t: NotifyType,
    data: &[u8],
) {
    let header = Header {
        spi_i,
        spi_r: 0,
        exchange: ExchangeType::IkeSaInit,
        flags: Flags::RESPONSE,
        message_id: 0,
    };
    if let Some(msg) = header.encode(&[notify(t, data)]) {
        let payload = if encap {
            [&NON_ESP_MARKER[..], &msg].concat()
        } else {
            msg
        };
        ctx.transmits.push_back(Transmit {
            local,
            remote,
            payload,
        });
        ctx.counters.sent.bump(ExchangeType::IkeSaInit);
    }
}

impl Ctx {
    /// Creates an initiator SA towards `peer` and sends its IKE_SA_INIT request.
    pub(crate) fn start_initiator(
        &mut self,
        now: Instant,
        peer: IpAddr,
        spi_i: u64,
    ) -> Result<IkeSa, CryptoError> {
        let group = self
            .config
            .ike_proposals
            .first()
            .and_then(|p| p.groups.first())
            .copied()
            .unwrap_or(Group::X25519);
        let dh = KeyPair::generate(group, &mut *self.rng)?;
        let local = SocketAddr::new(self.config.local_addr, IKE_PORT);
        let remote = SocketAddr::new(peer, IKE_PORT);
        let state = State::InitSent(Box::new(InitSent {
            dh,
            cookie: None,
            cookie_tries: 0,
            ke_tries: 0,
        }));
        let mut sa = IkeSa::new(spi_i, 0, true, peer, local, remote, state, now);
        sa.ni = self.nonce();
        sa.next_request = 1;
        sa.timers.set(
            Timer::HalfOpen,
            Some(
                now + self
                    .config
                    .half_open_timeout
                    .max(self.config.retransmit_timeout * 64),
            ),
        );
        self.send_init_request(&mut sa, now);
        Ok(sa)
    }

    /// (Re)sends the IKE_SA_INIT request of the current attempt.
    fn send_init_request(&mut self, sa: &mut IkeSa, now: Instant) {
        let State::InitSent(init) = &sa.state else {
            return;
        };
        let proposals = our_ike_proposals(self, &[]);
        let wire: Vec<_> = proposals.iter().map(OwnedProposal::wire).collect();
        let source = if self.config.udp_encap == UdpEncap::Forced {
            fake_source_hash(sa.spi_i, 0, sa.local)
        } else {
            detection_hash(sa.spi_i, 0, sa.local)
        };
        let destination = detection_hash(sa.spi_i, 0, sa.remote);
        let mut payloads = Vec::with_capacity(8);
        if let Some(cookie) = &init.cookie {
            payloads.push(notify(NotifyType::Cookie, cookie));
        }
        payloads.extend([
            Payload::new(PayloadBody::Sa(Seq::Items(&wire))),
            Payload::new(PayloadBody::Ke(KeyExchange {
                group: init.dh.group().id(),
                data: init.dh.public(),
            })),
            Payload::new(PayloadBody::Nonce(Nonce(&sa.ni))),
            notify(NotifyType::NatDetectionSourceIp, &source),
            notify(NotifyType::NatDetectionDestinationIp, &destination),
            notify(NotifyType::Ikev2FragmentationSupported, &[]),
            notify(NotifyType::SignatureHashAlgorithms, &SIGNATURE_HASHES),
        ]);
        let header = Header {
            spi_i: sa.spi_i,
            spi_r: 0,
            exchange: ExchangeType::IkeSaInit,
            flags: Flags::INITIATOR,
            message_id: 0,
        };
        let Some(bytes) = header.encode(&payloads) else {
            return;
        };
        sa.init_request = bytes.clone();
        self.send_pending(
            sa,
            now,
            Pending {
                message_id: 0,
                messages: vec![bytes],
                sent: 0,
                task: Task::Init,
            },
            ExchangeType::IkeSaInit,
        );
    }

    /// The IKE_SA_INIT response, as initiator.
    pub(crate) fn init_response(
        &mut self,
        sa: &mut IkeSa,
        now: Instant,
        remote: SocketAddr,
        msg: &[u8],
        repr: &Repr<'_>,
    ) -> Result<Effects, DropReason> {
        let c = Collected::new(repr.payloads);
        let State::InitSent(init) = &mut sa.state else {
            return Err(DropReason::UnexpectedExchange);
        };
        self.counters.received.bump(ExchangeType::IkeSaInit);
        if let Some(n) = c.notify(NotifyType::Cookie) {
            if init.cookie_tries >= MAX_INIT_RETRIES || n.data.is_empty() || n.data.len() > 64 {
                return Err(DropReason::InvalidCookie);
            }
            init.cookie_tries += 1;
            init.cookie = Some(n.data.to_vec());
            sa.pending = None;
            self.send_init_request(sa, now);
            return Ok(Effects::default());
        }
        if let Some(n) = c.notify(NotifyType::InvalidKePayload) {
            let wanted = <[u8; 2]>::try_from(n.data)
                .ok()
                .map(u16::from_be_bytes)
                .map(Into::into)
                .and_then(Group::from_id);
            let configured = wanted.filter(|g| {
                self.config
                    .ike_proposals
                    .iter()
                    .any(|p| p.groups.contains(g))
                    && *g != init.dh.group()
            });
            return match configured {
                Some(g) if init.ke_tries < MAX_INIT_RETRIES => {
                    init.dh = KeyPair::generate(g, &mut *self.rng)
                        .map_err(|_| DropReason::InvalidKeyExchange)?;
                    init.ke_tries += 1;
                    sa.pending = None;
                    self.send_init_request(sa, now);
                    Ok(Effects::default())
                }
                _ => {
                    self.events.push_back(Event::IkeSaFailed {
                        peer: sa.peer,
                        reason: FailReason::UnsupportedGroup,
                    });
                    Ok(Effects {
                        remove: true,
                        ..Default::default()
                    })
                }
            };
        }
        if let Some(e) = c.error() {
            self.events.push_back(Event::IkeSaFailed {
                peer: sa.peer,
                reason: FailReason::PeerRefused(e),
            });
            return Ok(Effects {
                remove: true,
                ..Default::default()
            });
        }
        let (Some(proposals), Some(ke), Some(nr)) = (c.sa, c.ke, c.nonce) else {
            return Err(DropReason::MissingPayload);
        };
        if !Nonce(nr).has_valid_length() {
            return Err(DropReason::InvalidNonce);
        }
        let group = init.dh.group();
        let choice = select_ike(&self.config.ike_proposals, proposals.iter(), Some(group))
            .filter(|ch| proposals.len() == 1 && ch.group == group && ke.group == group.id())
            .ok_or(DropReason::ProposalNotOffered)?;
        if repr.responder_spi == 0 || ke.data.len() != group.public_len() {
            return Err(DropReason::InvalidKeyExchange);
        }
        let State::InitSent(init) = core::mem::replace(&mut sa.state, State::AuthWait) else {
            return Err(DropReason::UnexpectedExchange);
        };
        let shared = match init.dh.agree(ke.data) {
            Ok(s) => s,
            Err(_) => {
                self.events.push_back(Event::IkeSaFailed {
                    peer: sa.peer,
                    reason: FailReason::BadResponse,
                });
                return Ok(Effects {
                    remove: true,
                    ..Default::default()
                });
            }
        };
        sa.pending = None;
        sa.timers.set(Timer::Retransmit, None);
        sa.spi_r = repr.responder_spi;
        sa.nr = nr.to_vec();
        sa.init_response = msg.to_vec();
        sa.fragmentation = c.notify(NotifyType::Ikev2FragmentationSupported).is_some();
        self.derive(sa, choice, &shared);
        sa.nat = NatState::detect(
            sa.spi_i,
            sa.spi_r,
            sa.local,
            remote,
            &c.nat_hashes(NotifyType::NatDetectionSourceIp),
            &c.nat_hashes(NotifyType::NatDetectionDestinationIp),
        );
        if self.config.udp_encap == UdpEncap::Forced || sa.nat.any() {
            // Float (RFC 7296 section 2.23): IKE_AUTH and everything after on port 4500.
            sa.encap = true;
            sa.local.set_port(NAT_T_PORT);
            sa.remote = SocketAddr::new(remote.ip(), NAT_T_PORT);
        }
        self.send_auth_request(sa, now);
        Ok(Effects::default())
    }

    /// SKEYSEED and the SA's keys and ciphers after IKE_SA_INIT (RFC 7296 section 2.14).
    fn derive(&mut self, sa: &mut IkeSa, choice: IkeChoice, shared: &crate::crypto::Secret) {
        let seed = skeyseed(choice.prf, &sa.ni, &sa.nr, shared.expose());
        let keys = ike_keys(
            choice.prf,
            choice.encryption,
            &seed,
            &sa.ni,
            &sa.nr,
            sa.spi_i,
            sa.spi_r,
        );
        install_ike_keys(self, sa, choice, keys);
    }
}

/// Keys an SA's SK ciphers (we send with SK_ei as initiator, SK_er as responder) and logs
/// them if the key log is on.
pub(crate) fn install_ike_keys(
    ctx: &mut Ctx,
    sa: &mut IkeSa,
    choice: IkeChoice,
    keys: crate::crypto::keys::IkeKeys,
) {
    let (tx, rx) = if sa.initiator {
        (&keys.sk_ei, &keys.sk_er)
    } else {
        (&keys.sk_er, &keys.sk_ei)
    };
    sa.tx = SkKey::new(choice.encryption, tx.expose()).ok();
    sa.rx = SkKey::new(choice.encryption, rx.expose()).ok();
    if ctx.config.key_log {
        ctx.key_log.ike_sas.push(crate::keylog::IkeSaKeys {
            spi_i: sa.spi_i,
            spi_r: sa.spi_r,
            encr: choice.encryption,
            sk_ei: keys.sk_ei.expose().to_vec(),
            sk_er: keys.sk_er.expose().to_vec(),
        });
    }
    sa.choice = Some(choice);
    sa.keys = Some(keys);
}

impl Engine {
    /// An IKE_SA_INIT request (responder SPI zero): a retransmission of one we answered, a
    /// cookie challenge when too many SAs are half-open, a stateless refusal, or a new
    /// half-open SA.
    pub(crate) fn init_request(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        msg: &[u8],
        repr: &Repr<'_>,
        encap: bool,
    ) -> Result<(), DropReason> {
        let spi_i = repr.initiator_spi;
        if let Some(spi) = self.init_index.get(&(remote.ip(), spi_i)).copied()
            && let Some(sa) = self.sas.get(&spi)
        {
            if sa.init_request != msg {
                return Err(DropReason::DuplicateInit);
            }
            let response = sa.init_response.clone();
            let payload = if encap {
                [&NON_ESP_MARKER[..], &response].concat()
            } else {
                response
            };
            self.ctx.transmits.push_back(Transmit {
                local,
                remote,
                payload,
            });
            self.ctx.counters.responses_replayed += 1;
            return Ok(());
        }
        let c = Collected::new(repr.payloads);
        let (Some(proposals), Some(ke), Some(ni)) = (c.sa, c.ke, c.nonce) else {
            return Err(DropReason::MissingPayload);
        };
        if !Nonce(ni).has_valid_length() {
            return Err(DropReason::InvalidNonce);
        }
        if self.half_open >= self.ctx.config.cookie_threshold {
            match c.notify(NotifyType::Cookie) {
                Some(n) if self.cookies.check(n.data, ni, remote.ip(), spi_i) => {}
                other => {
                    if other.is_some() {
                        self.ctx.counters.drop(DropReason::InvalidCookie);
                    }
                    let cookie = self.cookies.cookie(ni, remote.ip(), spi_i);
                    stateless_answer(
                        &mut self.ctx,
                        local,
                        remote,
                        spi_i,
                        encap,
                        NotifyType::Cookie,
                        &cookie,
                    );
                    self.ctx.counters.cookies_sent += 1;
                    return Ok(());
                }
            }
        }
        if self.half_open >= self.ctx.config.half_open_limit {
            return Err(DropReason::HalfOpenLimit);
        }
        self.ctx.counters.received.bump(ExchangeType::IkeSaInit);
        let ke_group = Group::from_id(ke.group);
        let Some(choice) = select_ike(&self.ctx.config.ike_proposals, proposals.iter(), ke_group)
        else {
            stateless_answer(
                &mut self.ctx,
                local,
                remote,
                spi_i,
                encap,
                NotifyType::NoProposalChosen,
                &[],
            );
            return Ok(());
        };
        if Some(choice.group) != ke_group {
            let group: u16 = choice.group.id().into();
            stateless_answer(
                &mut self.ctx,
                local,
                remote,
                spi_i,
                encap,
                NotifyType::InvalidKePayload,
                &group.to_be_bytes(),
            );
            self.ctx.counters.invalid_ke_sent += 1;
            return Ok(());
        }
        if ke.data.len() != choice.group.public_len() {
            return Err(DropReason::InvalidKeyExchange);
        }
        let dh = KeyPair::generate(choice.group, &mut *self.ctx.rng)
            .map_err(|_| DropReason::InvalidKeyExchange)?;
        let public = dh.public().to_vec();
        let shared = dh
            .agree(ke.data)
            .map_err(|_| DropReason::InvalidKeyExchange)?;
        let spi_r = loop {
            let s = nonzero_u64(&mut *self.ctx.rng);
            if !self.sas.contains_key(&s) {
                break s;
            }
        };
        let mut sa = IkeSa::new(
            spi_i,
            spi_r,
            false,
            remote.ip(),
            local,
            remote,
            State::AuthWait,
            now,
        );
        sa.encap = encap;
        sa.ni = ni.to_vec();
        sa.nr = self.ctx.nonce();
        sa.expect_request = 1;
        sa.half_open = true;
        sa.init_request = msg.to_vec();
        sa.fragmentation = c.notify(NotifyType::Ikev2FragmentationSupported).is_some();
        // The request's hashes were made with SPIr = 0 (RFC 7296 section 2.23).
        sa.nat = NatState::detect(
            spi_i,
            0,
            local,
            remote,
            &c.nat_hashes(NotifyType::NatDetectionSourceIp),
            &c.nat_hashes(NotifyType::NatDetectionDestinationIp),
        );
        let seed = skeyseed(choice.prf, &sa.ni, &sa.nr, shared.expose());
        let keys = ike_keys(
            choice.prf,
            choice.encryption,
            &seed,
            &sa.ni,
            &sa.nr,
            spi_i,
            spi_r,
        );
        install_ike_keys(&mut self.ctx, &mut sa, choice, keys);

        let chosen = chosen_ike(&choice, Vec::new());
        let wire = [chosen.wire()];
        let source = if self.ctx.config.udp_encap == UdpEncap::Forced {
            fake_source_hash(spi_i, spi_r, local)
        } else {
            detection_hash(spi_i, spi_r, local)
        };
        let destination = detection_hash(spi_i, spi_r, remote);
        let authenticator = self.ctx.config.authenticator.clone();
        let mut payloads = vec![
            Payload::new(PayloadBody::Sa(Seq::Items(&wire))),
            Payload::new(PayloadBody::Ke(KeyExchange {
                group: choice.group.id(),
                data: &public,
            })),
            Payload::new(PayloadBody::Nonce(Nonce(&sa.nr))),
        ];
        // HDR, SAr1, KEr, Nr, [CERTREQ] (RFC 7296 section 1.2): the CAs we trust, so that the
        // initiator sends its certificate (strongSwan sends it only when asked).
        if let Some(cas) = authenticator.certificate_request() {
            payloads.push(Payload::new(PayloadBody::CertReq(Certificate {
                encoding: CertEncoding::X509Signature,
                data: cas,
            })));
        }
        payloads.extend([
            notify(NotifyType::NatDetectionSourceIp, &source),
            notify(NotifyType::NatDetectionDestinationIp, &destination),
            notify(NotifyType::Ikev2FragmentationSupported, &[]),
            notify(NotifyType::SignatureHashAlgorithms, &SIGNATURE_HASHES),
        ]);
        let header = Header {
            spi_i,
            spi_r,
            exchange: ExchangeType::IkeSaInit,
            flags: Flags::RESPONSE,
            message_id: 0,
        };
        let Some(response) = header.encode(&payloads) else {
            return Err(DropReason::Malformed);
        };
        self.ctx.transmit(&sa, &response);
        self.ctx.counters.sent.bump(ExchangeType::IkeSaInit);
        sa.init_response = response;
        sa.timers.set(
            Timer::HalfOpen,
            Some(now + self.ctx.config.half_open_timeout),
        );
        self.half_open += 1;
        self.init_index.insert((remote.ip(), spi_i), spi_r);
        debug_assert_eq!(NONCE_LEN, sa.nr.len());
        self.apply(sa, Effects::default(), now);
        Ok(())
    }
}
