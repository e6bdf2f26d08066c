//! IKE_AUTH (RFC 7296 section 1.2): identities, AUTH (section 2.15) and the first CHILD_SA,
//! in transport mode when both sides agree (USE_TRANSPORT_MODE, section 1.3.1) and in tunnel
//! mode otherwise; a CHILD_SA refusal leaves the IKE SA up (section 2.21.2).

use core::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use dmvpn_wire::Seq;
use dmvpn_wire::ikev2::{
    Authentication, CertEncoding, Certificate, ExchangeType, NotifyType, Payload, PayloadBody,
    ProtocolId,
};

use super::{ChildResponse, Collected, OwnedProposal, notify, selectors};
use crate::auth::{AuthContext, AuthError, AuthenticatedPeer, Authenticator, Identity};
use crate::config::Mode;
use crate::crypto::keys::child_keys;
use crate::crypto::random::esp_spi;
use crate::engine::{Ctx, Effects};
use crate::error::DropReason;
use crate::event::{Event, FailReason};
use crate::proposal::select_esp;
use crate::sa::{AuthSent, IkeSa, Request, State, Task};
use crate::ts::Selector;

/// The signed octets of one side (RFC 7296 section 2.15): its IKE_SA_INIT message, the
/// other side's nonce, and `prf(SK_p, RestOf<ID>Payload)`.
fn signed_octets(sa: &IkeSa, initiator_side: bool, id: &Identity) -> Option<Vec<u8>> {
    let choice = sa.choice?;
    let keys = sa.keys.as_ref()?;
    let (message, nonce, sk_p) = if initiator_side {
        (&sa.init_request, &sa.nr, &keys.sk_pi)
    } else {
        (&sa.init_response, &sa.ni, &keys.sk_pr)
    };
    let maced = choice.prf.compute(sk_p.expose(), &[&id.rest_of_payload()]);
    Some([message.as_slice(), nonce, maced.expose()].concat())
}

/// Our CERT payloads (encoding 4, end entity first, RFC 7296 section 3.6) and, when asked
/// for, our CERTREQ (section 3.7).
fn certificate_payloads(auth: &dyn Authenticator, certreq: bool) -> Vec<Payload<'_>> {
    let mut payloads: Vec<_> = auth
        .certificates()
        .iter()
        .map(|der| {
            Payload::new(PayloadBody::Cert(Certificate {
                encoding: CertEncoding::X509Signature,
                data: der,
            }))
        })
        .collect();
    if certreq && let Some(cas) = auth.certificate_request() {
        payloads.push(Payload::new(PayloadBody::CertReq(Certificate {
            encoding: CertEncoding::X509Signature,
            data: cas,
        })));
    }
    payloads
}

/// Our ESP proposals, numbered from 1, with our SPI; DH only for CREATE_CHILD_SA with PFS.
pub(crate) fn our_esp_proposals(ctx: &Ctx, spi: u32, with_dh: bool) -> Vec<OwnedProposal> {
    ctx.config
        .esp_proposals
        .iter()
        .enumerate()
        .map(|(i, p)| OwnedProposal {
            number: (i + 1) as u8,
            protocol: ProtocolId::Esp,
            spi: spi.to_be_bytes().to_vec(),
            transforms: p.transforms(with_dh),
        })
        .collect()
}

impl Ctx {
    /// Sends IKE_AUTH as initiator: `SK {IDi, [CERT+], [CERTREQ], AUTH,
    /// [N(USE_TRANSPORT_MODE)], SAi2, TSi, TSr}`.
    pub(crate) fn send_auth_request(&mut self, sa: &mut IkeSa, now: Instant) {
        let id = self.identity.clone();
        let authenticator = self.config.authenticator.clone();
        let auth = signed_octets(sa, true, &id).and_then(|octets| {
            let ctx = AuthContext {
                prf: sa.choice?.prf,
                octets: &octets,
                signer: &id,
                other: None,
                peer_addr: sa.peer,
                now,
                certificates: &[],
            };
            authenticator.sign(&ctx).ok()
        });
        let Some((method, data)) = auth else {
            self.events.push_back(Event::IkeSaFailed {
                peer: sa.peer,
                reason: FailReason::AuthenticationFailed,
            });
            sa.state = State::AuthWait;
            sa.timers.set(crate::timer::Timer::HalfOpen, Some(now));
            return;
        };
        let child_spi = esp_spi(&mut *self.rng);
        let transport = self.config.mode == Mode::Transport;
        let ts_i = vec![Selector::host(
            self.config.local_addr,
            self.config.ts_protocol,
        )];
        let ts_r = vec![Selector::host(sa.peer, self.config.ts_protocol)];
        let proposals = our_esp_proposals(self, child_spi, false);
        let wire: Vec<_> = proposals.iter().map(OwnedProposal::wire).collect();
        let tsi: Vec<_> = ts_i.iter().map(Selector::wire).collect();
        let tsr: Vec<_> = ts_r.iter().map(Selector::wire).collect();
        let mut inner = vec![Payload::new(PayloadBody::IdI(id.wire()))];
        inner.extend(certificate_payloads(&*authenticator, true));
        inner.push(Payload::new(PayloadBody::Auth(Authentication {
            method,
            data: &data,
        })));
        if transport {
            inner.push(notify(NotifyType::UseTransportMode, &[]));
        }
        inner.extend([
            Payload::new(PayloadBody::Sa(Seq::Items(&wire))),
            Payload::new(PayloadBody::TsI(Seq::Items(&tsi))),
            Payload::new(PayloadBody::TsR(Seq::Items(&tsr))),
        ]);
        self.request(sa, now, ExchangeType::IkeAuth, &inner, Task::Auth);
        sa.state = State::AuthSent(Box::new(AuthSent {
            child_spi,
            ts_i,
            ts_r,
            transport,
        }));
    }

    /// IKE_AUTH request, as responder.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn auth_request(
        &mut self,
        sa: &mut IkeSa,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        encap: bool,
        message_id: u32,
        c: &Collected<'_>,
    ) -> Result<Effects, DropReason> {
        let (Some(id_i), Some(auth)) = (c.id_i, c.auth) else {
            return Err(DropReason::MissingPayload);
        };
        let prf = sa
            .choice
            .map(|ch| ch.prf)
            .ok_or(DropReason::UnexpectedExchange)?;
        let peer_id = Identity::from_wire(&id_i);
        let own = self.identity.clone();
        let authenticator = self.config.authenticator.clone();
        let octets = signed_octets(sa, true, &peer_id).ok_or(DropReason::UnexpectedExchange)?;
        let check = AuthContext {
            prf,
            octets: &octets,
            signer: &peer_id,
            other: Some(&own),
            peer_addr: sa.peer,
            now,
            certificates: &c.certs,
        };
        // The message authenticated (ICV): float and note it before answering.
        self.heard(sa, now, local, remote, encap);
        let certificate = match authenticator.verify(&check, auth.method, auth.data) {
            Ok(certificate) => certificate.map(Arc::new),
            Err(e) => {
                self.refused(sa, e.drop_reason());
                return Ok(self.refuse_auth(sa, message_id));
            }
        };
        let peer = AuthenticatedPeer {
            id: peer_id.clone(),
            certificate,
        };
        let octets = signed_octets(sa, false, &own).ok_or(DropReason::UnexpectedExchange)?;
        let sign = AuthContext {
            prf,
            octets: &octets,
            signer: &own,
            other: Some(&peer_id),
            peer_addr: sa.peer,
            now,
            certificates: &[],
        };
        let Ok((method, data)) = authenticator.sign(&sign) else {
            return Ok(self.refuse_auth(sa, message_id));
        };
        sa.peer_id = Some(peer.clone());
        sa.state = State::Established;
        self.arm_established(sa, now);
        self.counters.ike_sas_established += 1;
        self.events.push_back(Event::IkeSaUp {
            peer: sa.peer,
            spi_i: sa.spi_i,
            spi_r: sa.spi_r,
            initiator: false,
            identity: peer,
            local: sa.local,
            remote: sa.remote,
            nat: sa.nat.any(),
            replaces: None,
        });
        // SK {IDr, [CERT+], AUTH, SAr2, TSi, TSr} (RFC 7296 section 1.2).
        let mut inner = vec![Payload::new(PayloadBody::IdR(own.wire()))];
        inner.extend(certificate_payloads(&*authenticator, false));
        inner.push(Payload::new(PayloadBody::Auth(Authentication {
            method,
            data: &data,
        })));
        let agreed = self.agree_child(c, None);
        let our_spi = esp_spi(&mut *self.rng);
        let response = agreed.as_ref().ok().map(|a| ChildResponse::new(a, our_spi));
        let wire;
        match (&agreed, &response) {
            (Ok(_), Some(r)) => {
                if r.transport {
                    inner.push(notify(NotifyType::UseTransportMode, &[]));
                }
                wire = [r.proposal.wire()];
                inner.extend([
                    Payload::new(PayloadBody::Sa(Seq::Items(&wire))),
                    Payload::new(PayloadBody::TsI(Seq::Items(&r.ts_i))),
                    Payload::new(PayloadBody::TsR(Seq::Items(&r.ts_r))),
                ]);
            }
            (Err(e), _) => {
                inner.push(notify(*e, &[]));
                self.events.push_back(Event::ChildSaFailed {
                    peer: sa.peer,
                    notify: *e,
                });
            }
            (Ok(_), None) => {}
        }
        self.respond(sa, ExchangeType::IkeAuth, message_id, &inner);
        if let Ok(a) = agreed
            && let (Some(choice), Some(keys)) = (sa.choice, sa.keys.as_ref())
        {
            let keys = child_keys(
                choice.prf,
                &keys.sk_d,
                None,
                &sa.ni,
                &sa.nr,
                a.choice.encryption,
            );
            let mode = if a.transport {
                Mode::Transport
            } else {
                Mode::Tunnel
            };
            self.install_child(
                sa,
                now,
                false,
                our_spi,
                a.choice.spi,
                &a.choice,
                &keys,
                mode,
                a.ts_r,
                a.ts_i,
                None,
            );
        }
        sa.init_request = Vec::new();
        sa.init_response = Vec::new();
        Ok(Effects {
            established: true,
            ..Default::default()
        })
    }

    /// Answers an IKE_AUTH request with AUTHENTICATION_FAILED and forgets the half-made SA
    /// (RFC 7296 section 2.21.2).
    fn refuse_auth(&mut self, sa: &mut IkeSa, message_id: u32) -> Effects {
        self.respond(
            sa,
            ExchangeType::IkeAuth,
            message_id,
            &[notify(NotifyType::AuthenticationFailed, &[])],
        );
        self.events.push_back(Event::IkeSaFailed {
            peer: sa.peer,
            reason: FailReason::AuthenticationFailed,
        });
        Effects {
            remove: true,
            ..Default::default()
        }
    }

    /// IKE_AUTH response, as initiator.
    pub(crate) fn auth_response(
        &mut self,
        sa: &mut IkeSa,
        now: Instant,
        c: &Collected<'_>,
    ) -> Effects {
        let fail = |ctx: &mut Ctx, sa: &IkeSa, reason| {
            ctx.events.push_back(Event::IkeSaFailed {
                peer: sa.peer,
                reason,
            });
            Effects {
                remove: true,
                ..Default::default()
            }
        };
        if c.notify(NotifyType::AuthenticationFailed).is_some() {
            return fail(
                self,
                sa,
                FailReason::PeerRefused(NotifyType::AuthenticationFailed),
            );
        }
        let (Some(id_r), Some(auth), Some(prf)) = (c.id_r, c.auth, sa.choice.map(|ch| ch.prf))
        else {
            return fail(self, sa, FailReason::BadResponse);
        };
        let peer_id = Identity::from_wire(&id_r);
        let own = self.identity.clone();
        let verified = match signed_octets(sa, false, &peer_id) {
            Some(octets) => {
                let check = AuthContext {
                    prf,
                    octets: &octets,
                    signer: &peer_id,
                    other: Some(&own),
                    peer_addr: sa.peer,
                    now,
                    certificates: &c.certs,
                };
                self.config
                    .authenticator
                    .verify(&check, auth.method, auth.data)
            }
            None => Err(AuthError::Mismatch),
        };
        let certificate = match verified {
            Ok(certificate) => certificate.map(Arc::new),
            Err(e) => {
                self.refused(sa, e.drop_reason());
                // The responder thinks the SA is up: tell it (RFC 7296 section 2.21.2), once,
                // as we forget the SA now.
                self.request(
                    sa,
                    now,
                    ExchangeType::Informational,
                    &[notify(NotifyType::AuthenticationFailed, &[])],
                    Task::Dpd,
                );
                return fail(self, sa, FailReason::AuthenticationFailed);
            }
        };
        let State::AuthSent(sent) = core::mem::replace(&mut sa.state, State::Established) else {
            return fail(self, sa, FailReason::BadResponse);
        };
        let peer_id = AuthenticatedPeer {
            id: peer_id,
            certificate,
        };
        sa.peer_id = Some(peer_id.clone());
        self.arm_established(sa, now);
        self.counters.ike_sas_established += 1;
        self.events.push_back(Event::IkeSaUp {
            peer: sa.peer,
            spi_i: sa.spi_i,
            spi_r: sa.spi_r,
            initiator: true,
            identity: peer_id,
            local: sa.local,
            remote: sa.remote,
            nat: sa.nat.any(),
            replaces: None,
        });
        sa.init_request = Vec::new();
        sa.init_response = Vec::new();
        match self.check_child_response(c, &sent.ts_i, &sent.ts_r, None) {
            Ok((choice, ts_i, ts_r)) => {
                let mode = if sent.transport && c.notify(NotifyType::UseTransportMode).is_some() {
                    Mode::Transport
                } else {
                    Mode::Tunnel
                };
                if let (Some(ike), Some(keys)) = (sa.choice, sa.keys.as_ref()) {
                    let keys =
                        child_keys(ike.prf, &keys.sk_d, None, &sa.ni, &sa.nr, choice.encryption);
                    self.install_child(
                        sa,
                        now,
                        true,
                        sent.child_spi,
                        choice.spi,
                        &choice,
                        &keys,
                        mode,
                        ts_i,
                        ts_r,
                        None,
                    );
                }
            }
            Err(notify) => {
                self.events.push_back(Event::ChildSaFailed {
                    peer: sa.peer,
                    notify,
                });
                // The responder may hold the CHILD_SA it answered with: delete it.
                if c.sa.is_some() {
                    sa.queue
                        .push_back(Request::DeleteChild(vec![sent.child_spi]));
                }
            }
        }
        Effects {
            established: true,
            ..Default::default()
        }
    }

    /// Checks a responder's CHILD_SA answer against what we proposed: one proposal we offered
    /// (section 3.3.6), selectors within ours (section 2.9). Returns the choice and the
    /// agreed TSi and TSr, or the notification to report.
    pub(crate) fn check_child_response(
        &self,
        c: &Collected<'_>,
        ts_i: &[Selector],
        ts_r: &[Selector],
        ke_group: Option<crate::crypto::dh::Group>,
    ) -> Result<(crate::proposal::EspChoice, Vec<Selector>, Vec<Selector>), NotifyType> {
        if let Some(e) = c.error() {
            return Err(e);
        }
        let sa = c.sa.ok_or(NotifyType::NoProposalChosen)?;
        let choice = select_esp(&self.config.esp_proposals, sa.iter(), ke_group)
            .filter(|_| sa.len() == 1)
            .ok_or(NotifyType::NoProposalChosen)?;
        let got_i = selectors(c.ts_i);
        let got_r = selectors(c.ts_r);
        let within = |got: &[Selector], ours: &[Selector]| {
            !got.is_empty() && got.iter().all(|g| ours.iter().any(|o| g.within(o)))
        };
        if !within(&got_i, ts_i) || !within(&got_r, ts_r) {
            return Err(NotifyType::TsUnacceptable);
        }
        Ok((choice, got_i, got_r))
    }
}
