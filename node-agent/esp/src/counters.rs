//! Per-SA packet counters, named after Cisco IOS `show crypto ipsec sa` (and its `detail`
//! form) so that an operator reads the same numbers on both kinds of router.
//!
//! With an AEAD, encryption and the digest are one operation: a sealed packet counts once in
//! each of encaps, encrypt and digest, an opened one in decaps, decrypt and verify. These
//! always move together, and with the payload bytes they are what the SA's lifetime counts
//! (RFC 4301 section 4.4.2.1), so the SA keeps one count of each, in its
//! [`crate::lifetime::Lifetime`], and shows the packet count three times.

use crate::sa::{OpenError, SealError};

/// Counters of an outbound SA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OutboundCounters {
    /// `#pkts encaps`: packets sealed.
    pub pkts_encaps: u64,
    /// `#pkts encrypt`: packets encrypted.
    pub pkts_encrypt: u64,
    /// `#pkts digest`: packets given an ICV.
    pub pkts_digest: u64,
    /// Payload bytes sealed.
    pub bytes: u64,
    /// `#send errors`: every refused seal, whatever the reason below.
    pub send_errors: u64,
    /// Seals refused because a hard lifetime was reached.
    pub expired: u64,
    /// `#pkts replay rollover (send)`: seals refused because the sequence numbers ran out.
    pub replay_rollover: u64,
    /// Seals refused because the caller's buffer could not hold the packet.
    pub buffer_too_small: u64,
}

impl OutboundCounters {
    /// These error counters with the packets and payload bytes sealed.
    pub(crate) const fn with_sealed(self, packets: u64, bytes: u64) -> Self {
        OutboundCounters {
            pkts_encaps: packets,
            pkts_encrypt: packets,
            pkts_digest: packets,
            bytes,
            ..self
        }
    }

    pub(crate) fn failed(&mut self, e: &SealError) {
        self.send_errors += 1;
        match e {
            SealError::Expired => self.expired += 1,
            SealError::SequenceExhausted => self.replay_rollover += 1,
            SealError::BufferTooSmall { .. } | SealError::Crypto => self.buffer_too_small += 1,
            // Counted by the SA database, which has no SA to charge.
            SealError::UnknownSpi => {}
        }
    }
}

/// Counters of an inbound SA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct InboundCounters {
    /// `#pkts decaps`: packets opened.
    pub pkts_decaps: u64,
    /// `#pkts decrypt`: packets decrypted.
    pub pkts_decrypt: u64,
    /// `#pkts verify`: packets whose ICV verified.
    pub pkts_verify: u64,
    /// Payload bytes opened.
    pub bytes: u64,
    /// `#recv errors`: every refused packet, whatever the reason below.
    pub recv_errors: u64,
    /// `#pkts replay failed (rcv)`: duplicates and packets behind the window.
    pub replay_failed: u64,
    /// `#pkts verify failed`: ICV failures (authentication failures).
    pub verify_failed: u64,
    /// `#pkts invalid len`: packets too short or misaligned for the transform.
    pub invalid_len: u64,
    /// `#pkts invalid pad`: authentic packets whose padding or pad length is wrong.
    pub invalid_pad: u64,
    /// Packets refused because a hard lifetime was reached.
    pub expired: u64,
}

impl InboundCounters {
    /// These error counters with the packets and payload bytes opened.
    pub(crate) const fn with_opened(self, packets: u64, bytes: u64) -> Self {
        InboundCounters {
            pkts_decaps: packets,
            pkts_decrypt: packets,
            pkts_verify: packets,
            bytes,
            ..self
        }
    }

    pub(crate) fn failed(&mut self, e: &OpenError) {
        self.recv_errors += 1;
        match e {
            OpenError::Replay(_) => self.replay_failed += 1,
            OpenError::Icv => self.verify_failed += 1,
            OpenError::Truncated => self.invalid_len += 1,
            OpenError::BadTrailer => self.invalid_pad += 1,
            OpenError::Expired => self.expired += 1,
            // Counted by the SA database, which has no SA to charge.
            OpenError::UnknownSpi => {}
        }
    }
}

/// Counters of the SA database for packets no SA can take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SadCounters {
    /// `#pkts invalid sa (rcv)`: inbound packets whose SPI names no installed SA.
    pub invalid_sa_rcv: u64,
    /// `#pkts invalid len (rcv)` before any SA: shorter than the ESP header, or SPI 0.
    pub invalid_len_rcv: u64,
    /// `#pkts no sa (send)`: seals asked of an SPI that names no installed SA.
    pub no_sa_send: u64,
}
