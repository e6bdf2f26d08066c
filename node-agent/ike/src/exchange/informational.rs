//! INFORMATIONAL (RFC 7296 section 1.4): DELETE of CHILD_SAs and of the IKE SA (1.4.1), and
//! the empty message that checks liveness (section 2.4).

use std::time::Instant;

use dmvpn_wire::ikev2::{Delete, ExchangeType, NotifyType, Payload, PayloadBody, ProtocolId};

use super::Collected;
use crate::engine::{Ctx, Effects};
use crate::event::DownReason;
use crate::sa::{IkeSa, Task};

impl Ctx {
    /// Sends `SK {D(ESP, our inbound SPIs)}`.
    pub(crate) fn send_delete_child(&mut self, sa: &mut IkeSa, now: Instant, spis: Vec<u32>) {
        let spis: Vec<u32> = spis
            .into_iter()
            .filter(|s| sa.children.iter().any(|c| c.inbound_spi == *s))
            .collect();
        if spis.is_empty() {
            return;
        }
        for c in sa
            .children
            .iter_mut()
            .filter(|c| spis.contains(&c.inbound_spi))
        {
            c.deleting = true;
        }
        let bytes: Vec<u8> = spis.iter().flat_map(|s| s.to_be_bytes()).collect();
        let inner = [Payload::new(PayloadBody::Delete(Delete {
            protocol_id: ProtocolId::Esp,
            spi_size: 4,
            spis: &bytes,
        }))];
        self.request(
            sa,
            now,
            ExchangeType::Informational,
            &inner,
            Task::DeleteChild(spis),
        );
    }

    /// Sends `SK {D(IKE)}`.
    pub(crate) fn send_delete_ike(&mut self, sa: &mut IkeSa, now: Instant, reason: DownReason) {
        sa.deleting = true;
        let inner = [Payload::new(PayloadBody::Delete(Delete {
            protocol_id: ProtocolId::Ike,
            spi_size: 0,
            spis: &[],
        }))];
        self.request(
            sa,
            now,
            ExchangeType::Informational,
            &inner,
            Task::DeleteIke(reason),
        );
    }

    /// An INFORMATIONAL request, as responder: deletes answered with our own DELETE of the
    /// paired SPIs (section 1.4.1), an empty request with an empty response.
    pub(crate) fn informational_request(
        &mut self,
        sa: &mut IkeSa,
        message_id: u32,
        c: &Collected<'_>,
    ) -> Effects {
        // A DELETE of the IKE SA, or the initiator refusing our AUTH after we established
        // (RFC 7296 section 2.21.2): the IKE SA and its CHILD_SAs go.
        if c.deletes.iter().any(|d| d.protocol_id == ProtocolId::Ike)
            || c.notify(NotifyType::AuthenticationFailed).is_some()
        {
            self.respond(sa, ExchangeType::Informational, message_id, &[]);
            let reason = if sa.redundant {
                DownReason::Redundant
            } else if sa.rekeyed {
                DownReason::Rekeyed
            } else {
                DownReason::DeletedByPeer
            };
            self.sa_down(sa, reason);
            return Effects {
                remove: true,
                ..Default::default()
            };
        }
        let mut ours = Vec::new();
        let mut answer = Vec::new();
        for d in c
            .deletes
            .iter()
            .filter(|d| d.protocol_id == ProtocolId::Esp && d.spi_size == 4)
        {
            for spi in d.spis() {
                let Ok(spi) = <[u8; 4]>::try_from(spi).map(u32::from_be_bytes) else {
                    continue;
                };
                if let Some(child) = sa.children.iter().find(|ch| ch.outbound_spi == spi) {
                    ours.push(child.inbound_spi);
                    // A simultaneous delete of our own (section 1.4.1) needs no answer for it.
                    if !child.deleting {
                        answer.push(child.inbound_spi);
                    }
                }
            }
        }
        let bytes: Vec<u8> = answer.iter().flat_map(|s| s.to_be_bytes()).collect();
        if bytes.is_empty() {
            self.respond(sa, ExchangeType::Informational, message_id, &[]);
        } else {
            let inner = [Payload::new(PayloadBody::Delete(Delete {
                protocol_id: ProtocolId::Esp,
                spi_size: 4,
                spis: &bytes,
            }))];
            self.respond(sa, ExchangeType::Informational, message_id, &inner);
        }
        self.children_deleted(sa, &ours, DownReason::DeletedByPeer);
        Effects::default()
    }
}
