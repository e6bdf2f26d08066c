//! CREATE_CHILD_SA (RFC 7296 section 1.3): rekeying a CHILD_SA (1.3.3, REKEY_SA, optional
//! PFS) make-before-break, creating a new one (1.3.1), and rekeying the IKE SA (1.3.2, new
//! SKEYSEED per section 2.18, CHILD_SAs move to the new SA).

use std::time::Instant;

use dmvpn_wire::Seq;
use dmvpn_wire::ikev2::{
    ExchangeType, KeyExchange, Nonce, Notification, NotifyType, Payload, PayloadBody, ProtocolId,
};

use super::ike_auth::our_esp_proposals;
use super::ike_sa_init::{chosen_ike, install_ike_keys, our_ike_proposals};
use super::{ChildResponse, Collected, OwnedProposal, notify};
use crate::config::Mode;
use crate::crypto::dh::{Group, KeyPair};
use crate::crypto::keys::{child_keys, ike_keys, skeyseed_rekey};
use crate::crypto::random::{esp_spi, nonzero_u64};
use crate::engine::{Ctx, Effects};
use crate::event::{DownReason, Event};
use crate::proposal::{select_esp, select_ike};
use crate::sa::{IkeSa, Request, State, Task, lowest};
use crate::timer::Timer;
use crate::ts::Selector;

/// How long to wait before trying a refused rekey again.
const REKEY_RETRY: std::time::Duration = std::time::Duration::from_secs(30);

impl Ctx {
    /// Sends a CHILD_SA rekey: `SK {N(REKEY_SA), [N(USE_TRANSPORT_MODE)], SA, Ni, [KEi], TSi,
    /// TSr}` (RFC 7296 section 1.3.3).
    pub(crate) fn send_rekey_child(&mut self, sa: &mut IkeSa, now: Instant, inbound: u32) {
        let Some(child) = sa
            .children
            .iter_mut()
            .find(|c| c.inbound_spi == inbound && !c.superseded && !c.rekeying && !c.deleting)
        else {
            return;
        };
        child.rekeying = true;
        let transport = child.mode == Mode::Transport;
        let (ts_i, ts_r) = (child.ts_local.clone(), child.ts_remote.clone());
        let group = child.pfs_group.or_else(|| {
            self.config
                .esp_proposals
                .first()
                .and_then(|p| p.groups.first())
                .copied()
        });
        let dh = group.and_then(|g| KeyPair::generate(g, &mut *self.rng).ok());
        let new_spi = esp_spi(&mut *self.rng);
        let ni = self.nonce();
        let proposals = our_esp_proposals(self, new_spi, dh.is_some());
        let wire: Vec<_> = proposals.iter().map(OwnedProposal::wire).collect();
        let tsi: Vec<_> = ts_i.iter().map(Selector::wire).collect();
        let tsr: Vec<_> = ts_r.iter().map(Selector::wire).collect();
        let spi = inbound.to_be_bytes();
        let mut inner = vec![Payload::new(PayloadBody::Notify(Notification {
            protocol_id: ProtocolId::Esp,
            spi: &spi,
            notify_type: NotifyType::RekeySa,
            data: &[],
        }))];
        if transport {
            inner.push(notify(NotifyType::UseTransportMode, &[]));
        }
        inner.push(Payload::new(PayloadBody::Sa(Seq::Items(&wire))));
        inner.push(Payload::new(PayloadBody::Nonce(Nonce(&ni))));
        if let Some(dh) = &dh {
            inner.push(Payload::new(PayloadBody::Ke(KeyExchange {
                group: dh.group().id(),
                data: dh.public(),
            })));
        }
        inner.push(Payload::new(PayloadBody::TsI(Seq::Items(&tsi))));
        inner.push(Payload::new(PayloadBody::TsR(Seq::Items(&tsr))));
        let task = Task::RekeyChild {
            old_inbound: inbound,
            new_spi,
            ni: ni.clone(),
            dh: None,
            transport,
            ts_i,
            ts_r,
        };
        self.request(sa, now, ExchangeType::CreateChildSa, &inner, task);
        if let Some(crate::sa::Pending {
            task: Task::RekeyChild { dh: slot, .. },
            ..
        }) = &mut sa.pending
        {
            *slot = dh;
        }
    }

    /// The answer to our CHILD_SA rekey: install the new pair, then delete the old one after
    /// the overlap (make-before-break).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn rekey_child_response(
        &mut self,
        sa: &mut IkeSa,
        now: Instant,
        c: &Collected<'_>,
        old_inbound: u32,
        new_spi: u32,
        ni: Vec<u8>,
        dh: Option<KeyPair>,
        transport: bool,
        ts_i: Vec<Selector>,
        ts_r: Vec<Selector>,
    ) {
        let group = dh.as_ref().map(KeyPair::group);
        let outcome =
            self.check_child_response(c, &ts_i, &ts_r, group)
                .and_then(|(choice, ti, tr)| {
                    let nr = c
                        .nonce
                        .filter(|n| Nonce(n).has_valid_length())
                        .ok_or(NotifyType::InvalidSyntax)?;
                    let shared = match (dh, c.ke) {
                        (Some(dh), Some(ke)) if ke.group == dh.group().id() => Some(
                            dh.agree(ke.data)
                                .map_err(|_| NotifyType::InvalidKePayload)?,
                        ),
                        (Some(_), _) => return Err(NotifyType::InvalidKePayload),
                        (None, _) => None,
                    };
                    Ok((choice, ti, tr, nr.to_vec(), shared))
                });
        let old = sa
            .children
            .iter_mut()
            .find(|ch| ch.inbound_spi == old_inbound);
        let retry_with = match &outcome {
            Err(NotifyType::InvalidKePayload)
                if old.as_ref().is_some_and(|o| o.pfs_group.is_none()) =>
            {
                self.peer_group(c).filter(|g| Some(*g) != group)
            }
            _ => None,
        };
        match outcome {
            Ok((choice, ti, tr, nr, shared)) => {
                let nonce = lowest(&ni, &nr).to_vec();
                let inherited = old.as_ref().and_then(|o| o.pfs_group);
                if let Some(old) = old {
                    old.rekeying = false;
                    old.superseded = true;
                    old.rekey_at = None;
                    old.delete_at = Some(now + self.config.rekey_overlap);
                }
                let (Some(ike), Some(keys)) = (sa.choice, sa.keys.as_ref()) else {
                    return;
                };
                let keys = child_keys(
                    ike.prf,
                    &keys.sk_d,
                    shared.as_ref(),
                    &ni,
                    &nr,
                    choice.encryption,
                );
                let mode = if transport && c.notify(NotifyType::UseTransportMode).is_some() {
                    Mode::Transport
                } else {
                    Mode::Tunnel
                };
                self.install_child(
                    sa,
                    now,
                    true,
                    new_spi,
                    choice.spi,
                    &choice,
                    &keys,
                    mode,
                    ti,
                    tr,
                    Some(old_inbound),
                );
                if let Some(new) = sa.children.iter_mut().find(|ch| ch.inbound_spi == new_spi) {
                    new.nonce = nonce;
                    new.pfs_group = inherited;
                }
                self.settle_child_rekey(sa, now, old_inbound);
            }
            Err(_) if retry_with.is_some() => {
                // The peer wants another group we also accept: ask again with it at once
                // (RFC 7296 sections 1.3 and 2.7), once per rekey attempt.
                if let Some(old) = old {
                    old.rekeying = false;
                    old.pfs_group = retry_with;
                }
                sa.queue.push_front(Request::RekeyChild(old_inbound));
            }
            Err(notify) => {
                let found = old.is_some();
                if let Some(old) = old {
                    old.rekeying = false;
                    old.pfs_group = None;
                    old.rekey_at =
                        Some(now + REKEY_RETRY).filter(|at| old.expire_at.is_none_or(|e| *at < e));
                }
                if notify == NotifyType::ChildSaNotFound && found {
                    // The peer has no such CHILD_SA: forget ours silently (section 2.25).
                    self.children_deleted(sa, &[old_inbound], DownReason::DeletedByPeer);
                }
                self.events.push_back(Event::ChildSaFailed {
                    peer: sa.peer,
                    notify,
                });
            }
        }
    }

    /// The group an INVALID_KE_PAYLOAD answer asks for, if we accept it (RFC 7296 section
    /// 3.10.1: two octets of Diffie-Hellman group).
    fn peer_group(&self, c: &Collected<'_>) -> Option<Group> {
        let data = c.notify(NotifyType::InvalidKePayload)?.data;
        let id = u16::from_be_bytes(<[u8; 2]>::try_from(data).ok()?);
        let g = Group::from_id(id.into())?;
        self.config
            .esp_proposals
            .iter()
            .any(|p| p.groups.contains(&g))
            .then_some(g)
    }

    /// The group we would take from the peer's offered proposals, in our order of preference:
    /// what INVALID_KE_PAYLOAD asks for (RFC 7296 section 1.3).
    fn our_group_for(&self, c: &Collected<'_>) -> Option<Group> {
        let props = c.sa?;
        self.config
            .esp_proposals
            .iter()
            .flat_map(|p| p.groups.iter().copied())
            .find(|g| select_esp(&self.config.esp_proposals, props.iter(), Some(*g)).is_some())
    }

    /// Resolves a simultaneous rekey of the CHILD_SA `old` (RFC 7296 section 2.8.1): of two
    /// successors, the one whose exchange had the lowest of the four nonces is redundant and
    /// its initiator deletes it; the old pair is deleted once, by the initiator of the
    /// survivor, after the make-before-break overlap. Both sides compare the same nonces, so
    /// they keep the same pair. Nothing to do without a collision.
    fn settle_child_rekey(&mut self, sa: &mut IkeSa, now: Instant, old: u32) {
        let successor = |c: &crate::sa::ChildSa| c.replaces == Some(old) && !c.redundant;
        if sa.children.iter().filter(|c| successor(c)).count() < 2 {
            return;
        }
        let Some((keep, we_made_it)) = sa
            .children
            .iter()
            .filter(|c| successor(c))
            .max_by(|a, b| a.nonce.cmp(&b.nonce))
            .map(|c| (c.inbound_spi, c.initiated))
        else {
            return;
        };
        let mut delete = Vec::new();
        for c in sa
            .children
            .iter_mut()
            .filter(|c| successor(c) && c.inbound_spi != keep)
        {
            c.redundant = true;
            c.rekey_at = None;
            if c.initiated {
                c.deleting = true;
                delete.push(c.inbound_spi);
            }
        }
        let overlap = self.config.rekey_overlap;
        if let Some(o) = sa.children.iter_mut().find(|c| c.inbound_spi == old) {
            o.delete_at = we_made_it.then(|| o.delete_at.unwrap_or(now + overlap));
        }
        if !delete.is_empty() {
            sa.queue.push_back(Request::DeleteChild(delete));
        }
    }

    /// Sends an IKE SA rekey: `SK {SA (new SPIi), Ni, KEi}` (RFC 7296 section 1.3.2).
    pub(crate) fn send_rekey_ike(&mut self, sa: &mut IkeSa, now: Instant) {
        let group = sa.choice.map(|c| c.group).unwrap_or(Group::X25519);
        let Ok(dh) = KeyPair::generate(group, &mut *self.rng) else {
            return;
        };
        let new_spi = nonzero_u64(&mut *self.rng);
        let ni = self.nonce();
        let proposals = our_ike_proposals(self, &new_spi.to_be_bytes());
        let wire: Vec<_> = proposals.iter().map(OwnedProposal::wire).collect();
        let public = dh.public().to_vec();
        let inner = [
            Payload::new(PayloadBody::Sa(Seq::Items(&wire))),
            Payload::new(PayloadBody::Nonce(Nonce(&ni))),
            Payload::new(PayloadBody::Ke(KeyExchange {
                group: group.id(),
                data: &public,
            })),
        ];
        self.request(
            sa,
            now,
            ExchangeType::CreateChildSa,
            &inner,
            Task::RekeyIke {
                new_spi,
                ni: ni.clone(),
                dh,
            },
        );
    }

    /// The answer to our IKE SA rekey: the successor is made; the engine then moves the
    /// CHILD_SAs to it and deletes the old SA (or resolves a collision, section 2.8.2).
    pub(crate) fn rekey_ike_response(
        &mut self,
        sa: &mut IkeSa,
        now: Instant,
        c: &Collected<'_>,
        new_spi: u64,
        ni: Vec<u8>,
        dh: KeyPair,
    ) -> Effects {
        let group = dh.group();
        let ok = (|| {
            if c.error().is_some() {
                return None;
            }
            let props = c.sa?;
            let choice = select_ike(&self.config.ike_proposals, props.iter(), Some(group))
                .filter(|ch| props.len() == 1 && ch.group == group)?;
            let spi_r = choice.spi.filter(|s| *s != 0)?;
            let nr = c.nonce.filter(|n| Nonce(n).has_valid_length())?;
            let ke = c.ke.filter(|k| k.group == group.id())?;
            let shared = dh.agree(ke.data).ok()?;
            Some((choice, spi_r, nr.to_vec(), shared))
        })();
        let Some((choice, spi_r, nr, shared)) = ok else {
            sa.timers.set(Timer::IkeRekey, Some(now + REKEY_RETRY));
            return Effects::default();
        };
        let new = self.successor(sa, now, true, new_spi, spi_r, ni, nr, choice, &shared);
        Effects {
            new_sa: Some(new),
            ..Default::default()
        }
    }

    /// The IKE SA that replaces `old` after a rekey (RFC 7296 section 2.18): keys from the old
    /// SK_d, fresh message IDs. Reports it up; the engine moves the CHILD_SAs over once no
    /// rekey of ours is in flight (section 2.8.2).
    #[allow(clippy::too_many_arguments)]
    fn successor(
        &mut self,
        old: &mut IkeSa,
        now: Instant,
        initiator: bool,
        spi_i: u64,
        spi_r: u64,
        ni: Vec<u8>,
        nr: Vec<u8>,
        choice: crate::proposal::IkeChoice,
        shared: &crate::crypto::Secret,
    ) -> IkeSa {
        let mut new = IkeSa::new(
            spi_i,
            spi_r,
            initiator,
            old.peer,
            old.local,
            old.remote,
            State::Established,
            now,
        );
        new.encap = old.encap;
        new.nat = old.nat;
        new.peer_id = old.peer_id.clone();
        if let (Some(old_choice), Some(old_keys)) = (old.choice, old.keys.as_ref()) {
            let seed = skeyseed_rekey(old_choice.prf, &old_keys.sk_d, shared.expose(), &ni, &nr);
            let keys = ike_keys(choice.prf, choice.encryption, &seed, &ni, &nr, spi_i, spi_r);
            new.ni = ni;
            new.nr = nr;
            install_ike_keys(self, &mut new, choice, keys);
        }
        old.successors.push(new.local_spi());
        old.rekeyed = true;
        old.timers.set(Timer::IkeRekey, None);
        old.timers.set(Timer::Dpd, None);
        old.timers.set(Timer::Keepalive, None);
        old.timers
            .set(Timer::IkeExpire, Some(now + self.config.half_open_timeout));
        self.arm_established(&mut new, now);
        self.counters.ike_sas_established += 1;
        if let Some(identity) = new.peer_id.clone() {
            self.events.push_back(Event::IkeSaUp {
                peer: new.peer,
                spi_i,
                spi_r,
                initiator,
                identity,
                local: new.local,
                remote: new.remote,
                nat: new.nat.any(),
                replaces: Some((old.spi_i, old.spi_r)),
            });
        }
        new
    }

    /// A CREATE_CHILD_SA request, as responder: an IKE SA rekey, a CHILD_SA rekey, or a new
    /// CHILD_SA.
    pub(crate) fn create_child_request(
        &mut self,
        sa: &mut IkeSa,
        now: Instant,
        message_id: u32,
        c: &Collected<'_>,
    ) -> Effects {
        let answer_error = |ctx: &mut Ctx, sa: &mut IkeSa, t: NotifyType, data: &[u8]| {
            ctx.respond(
                sa,
                ExchangeType::CreateChildSa,
                message_id,
                &[notify(t, data)],
            );
            Effects::default()
        };
        if sa.rekeyed || sa.deleting {
            return answer_error(self, sa, NotifyType::TemporaryFailure, &[]);
        }
        let Some(ni) = c
            .nonce
            .filter(|n| Nonce(n).has_valid_length())
            .map(<[u8]>::to_vec)
        else {
            return answer_error(self, sa, NotifyType::InvalidSyntax, &[]);
        };
        let is_ike =
            c.sa.and_then(|s| s.first())
                .is_some_and(|p| p.protocol_id == ProtocolId::Ike);
        if is_ike {
            return self.rekey_ike_request(sa, now, message_id, c, ni);
        }
        // A rekey of a CHILD_SA we are deleting, or do not have (section 2.25.1). A superseded
        // one is still ours: its rekey crossed ours (section 2.8.1).
        let replaces = match c.notify(NotifyType::RekeySa) {
            Some(n) => {
                let spi = <[u8; 4]>::try_from(n.spi).ok().map(u32::from_be_bytes);
                match sa.children.iter().find(|ch| Some(ch.outbound_spi) == spi) {
                    Some(ch) if ch.deleting || ch.redundant => {
                        return answer_error(self, sa, NotifyType::TemporaryFailure, &[]);
                    }
                    Some(ch) => Some(ch.inbound_spi),
                    None => return answer_error(self, sa, NotifyType::ChildSaNotFound, &[]),
                }
            }
            None => None,
        };
        let ke_group = c.ke.map(|ke| Group::from_id(ke.group));
        let agreed = if ke_group == Some(None) {
            // A KE of a group we lack: no proposal can match it.
            Err(NotifyType::NoProposalChosen)
        } else {
            self.agree_child(c, ke_group.flatten())
        };
        let ke_group = ke_group.flatten();
        let other_group =
            c.ke.and_then(|_| self.our_group_for(c))
                .filter(|g| Some(*g) != ke_group);
        let agreed = match (agreed, other_group) {
            (Ok(a), _) => a,
            (Err(NotifyType::NoProposalChosen), Some(g)) => {
                // A proposal fits with another group: ask for its KE (section 1.3).
                let want: u16 = g.id().into();
                self.counters.invalid_ke_sent += 1;
                return answer_error(self, sa, NotifyType::InvalidKePayload, &want.to_be_bytes());
            }
            (Err(e), _) => {
                self.events.push_back(Event::ChildSaFailed {
                    peer: sa.peer,
                    notify: e,
                });
                return answer_error(self, sa, e, &[]);
            }
        };
        let (dh, shared) = match (ke_group, c.ke) {
            (Some(g), Some(ke)) => {
                let Ok(dh) = KeyPair::generate(g, &mut *self.rng) else {
                    return answer_error(self, sa, NotifyType::TemporaryFailure, &[]);
                };
                let public = dh.public().to_vec();
                match dh.agree(ke.data) {
                    Ok(s) => (Some((g, public)), Some(s)),
                    Err(_) => return answer_error(self, sa, NotifyType::InvalidSyntax, &[]),
                }
            }
            _ => (None, None),
        };
        let our_spi = esp_spi(&mut *self.rng);
        let nr = self.nonce();
        let r = ChildResponse::new(&agreed, our_spi);
        let wire = [r.proposal.wire()];
        let mut inner = Vec::with_capacity(6);
        if r.transport {
            inner.push(notify(NotifyType::UseTransportMode, &[]));
        }
        inner.push(Payload::new(PayloadBody::Sa(Seq::Items(&wire))));
        inner.push(Payload::new(PayloadBody::Nonce(Nonce(&nr))));
        if let Some((g, public)) = &dh {
            inner.push(Payload::new(PayloadBody::Ke(KeyExchange {
                group: g.id(),
                data: public,
            })));
        }
        inner.push(Payload::new(PayloadBody::TsI(Seq::Items(&r.ts_i))));
        inner.push(Payload::new(PayloadBody::TsR(Seq::Items(&r.ts_r))));
        self.respond(sa, ExchangeType::CreateChildSa, message_id, &inner);
        if let Some(old) =
            replaces.and_then(|spi| sa.children.iter_mut().find(|ch| ch.inbound_spi == spi))
        {
            // The rekey initiator deletes the old pair after its overlap; until then both
            // stand (make-before-break). Our own rekey of it, if queued, is moot.
            old.superseded = true;
            old.rekey_at = None;
        }
        if let Some(spi) = replaces {
            sa.queue.retain(|r| *r != Request::RekeyChild(spi));
        }
        if let (Some(ike), Some(keys)) = (sa.choice, sa.keys.as_ref()) {
            let keys = child_keys(
                ike.prf,
                &keys.sk_d,
                shared.as_ref(),
                &ni,
                &nr,
                agreed.choice.encryption,
            );
            let mode = if agreed.transport {
                Mode::Transport
            } else {
                Mode::Tunnel
            };
            self.install_child(
                sa,
                now,
                false,
                our_spi,
                agreed.choice.spi,
                &agreed.choice,
                &keys,
                mode,
                agreed.ts_r,
                agreed.ts_i,
                replaces,
            );
            if let Some(new) = sa.children.iter_mut().find(|ch| ch.inbound_spi == our_spi) {
                new.nonce = lowest(&ni, &nr).to_vec();
            }
            if let Some(old) = replaces {
                self.settle_child_rekey(sa, now, old);
            }
        }
        Effects::default()
    }

    fn rekey_ike_request(
        &mut self,
        sa: &mut IkeSa,
        now: Instant,
        message_id: u32,
        c: &Collected<'_>,
        ni: Vec<u8>,
    ) -> Effects {
        let respond_error = |ctx: &mut Ctx, sa: &mut IkeSa, t: NotifyType, data: &[u8]| {
            ctx.respond(
                sa,
                ExchangeType::CreateChildSa,
                message_id,
                &[notify(t, data)],
            );
            Effects::default()
        };
        let (Some(props), Some(ke)) = (c.sa, c.ke) else {
            return respond_error(self, sa, NotifyType::InvalidSyntax, &[]);
        };
        let ke_group = Group::from_id(ke.group);
        let Some(choice) = select_ike(&self.config.ike_proposals, props.iter(), ke_group) else {
            return respond_error(self, sa, NotifyType::NoProposalChosen, &[]);
        };
        if Some(choice.group) != ke_group {
            let g: u16 = choice.group.id().into();
            return respond_error(self, sa, NotifyType::InvalidKePayload, &g.to_be_bytes());
        }
        let Some(spi_i) = choice.spi.filter(|s| *s != 0) else {
            return respond_error(self, sa, NotifyType::InvalidSyntax, &[]);
        };
        let Ok(dh) = KeyPair::generate(choice.group, &mut *self.rng) else {
            return respond_error(self, sa, NotifyType::TemporaryFailure, &[]);
        };
        let public = dh.public().to_vec();
        let Ok(shared) = dh.agree(ke.data) else {
            return respond_error(self, sa, NotifyType::InvalidSyntax, &[]);
        };
        let spi_r = nonzero_u64(&mut *self.rng);
        let nr = self.nonce();
        let chosen = chosen_ike(&choice, spi_r.to_be_bytes().to_vec());
        let wire = [chosen.wire()];
        let inner = [
            Payload::new(PayloadBody::Sa(Seq::Items(&wire))),
            Payload::new(PayloadBody::Nonce(Nonce(&nr))),
            Payload::new(PayloadBody::Ke(KeyExchange {
                group: choice.group.id(),
                data: &public,
            })),
        ];
        self.respond(sa, ExchangeType::CreateChildSa, message_id, &inner);
        let new = self.successor(sa, now, false, spi_i, spi_r, ni, nr, choice, &shared);
        sa.queue.clear();
        Effects {
            new_sa: Some(new),
            ..Default::default()
        }
    }
}
