//! How the driver gets SAs for the protection layer: the IKEv2 wiring (RFC 7296) lives here
//! alone, behind [`KeyExchange`]. Without an `ipsec` section, [`Unprotected`] stands in:
//! GRE-in-UDP (RFC 8086) needs no SA, and the agent warns that the tunnel is insecure.

use std::time::Instant;

use dmvpn_dataplane::{Event, Forwarder, GreInUdp, Output, Protection};

use crate::snapshot::{IkeSaInfo, IpsecSaInfo};

/// What negotiates the SAs of a forwarder's protection layer.
pub trait KeyExchange<P: Protection> {
    /// Acts on a forwarder event about SAs: [`Event::NeedSa`], [`Event::IkeDatagram`],
    /// [`Event::Sa`]; other events are not given.
    fn handle_event(
        &mut self,
        now: Instant,
        event: Event,
        fwd: &mut Forwarder<P>,
        out: &mut Output,
    );

    /// When [`KeyExchange::handle_timeout`] must next run.
    fn poll_timeout(&self) -> Option<Instant>;

    /// Runs the timers due at `now`.
    fn handle_timeout(&mut self, now: Instant, fwd: &mut Forwarder<P>, out: &mut Output);

    /// The ESP SA pairs, for `show crypto ipsec sa`.
    fn ipsec_sas(&self, fwd: &Forwarder<P>) -> Vec<IpsecSaInfo>;

    /// The IKE SAs at `now`, for `show crypto ikev2 sa`.
    fn ike_sas(&self, now: Instant) -> Vec<IkeSaInfo>;
}

/// No key exchange: GRE-in-UDP, for tests and labs only.
#[derive(Debug, Default)]
pub struct Unprotected;

impl KeyExchange<GreInUdp> for Unprotected {
    fn handle_event(
        &mut self,
        _now: Instant,
        event: Event,
        fwd: &mut Forwarder<GreInUdp>,
        _out: &mut Output,
    ) {
        // GRE-in-UDP is always ready and opens no IKE datagram; should a peer's packets be
        // held all the same, nothing will key them, so they go.
        if let Event::NeedSa { peer } = event {
            tracing::warn!(%peer, "packets wait for an SA, but IPsec is off: dropped");
            fwd.drop_pending(peer);
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        None
    }

    fn handle_timeout(&mut self, _now: Instant, _fwd: &mut Forwarder<GreInUdp>, _out: &mut Output) {
    }

    fn ipsec_sas(&self, _fwd: &Forwarder<GreInUdp>) -> Vec<IpsecSaInfo> {
        Vec::new()
    }

    fn ike_sas(&self, _now: Instant) -> Vec<IkeSaInfo> {
        Vec::new()
    }
}
