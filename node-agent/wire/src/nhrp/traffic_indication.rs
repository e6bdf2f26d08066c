//! The Traffic Indication (`ar$op.type` 8) of Cisco DMVPN phase 3: a hub tells the spoke that
//! sent a data packet that a shorter path exists, and the spoke resolves the packet's
//! destination. Not in RFC 2332: draft-detienne-dmvpn, and FRR nhrpd
//! `nhrp_peer_send_indication`. It reuses the common header layout of RFC 2332
//! section 5.2.0.1:
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | Src Proto Len | Dst Proto Len |            unused             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |          Traffic Code         |            unused             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |   Source NBMA Address, Subaddress, Source and Destination     |
//! |   Protocol Addresses (variable length)                        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |    The data packet that triggered the indication, from its    |
//! |    IP header (variable length)                                |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! The unused words are written as zero and ignored on receipt.

use super::address::{Address, NbmaAddress};
use super::message::Fields;

enum_with_unknown! {
    /// The traffic code of a Traffic Indication (FRR nhrpd `NHRP_CODE_REDIRECT`).
    pub enum TrafficCode(u16) {
        /// Redirect: Cisco's "traffic code redirect(0)".
        Redirect = 0,
    }
}

/// The mandatory part of a Traffic Indication (Cisco DMVPN phase 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct TrafficIndication<'a> {
    /// The traffic code.
    pub code: TrafficCode,
    /// The NBMA address of the hub that saw the traffic.
    pub src_nbma: NbmaAddress<'a>,
    /// Its NBMA subaddress.
    pub src_nbma_sub: NbmaAddress<'a>,
    /// Its tunnel protocol address.
    pub src_proto: Address<'a>,
    /// The source address of the data packet (the spoke's side of the traffic).
    pub dst_proto: Address<'a>,
    /// The beginning of the data packet, from its IP header; the spoke resolves its
    /// destination address.
    #[serde(serialize_with = "crate::hex::serialize")]
    pub packet: &'a [u8],
}

impl<'a> TrafficIndication<'a> {
    pub(super) fn from_fields(fields: Fields<'a>, packet: &'a [u8]) -> Self {
        let [c0, c1, _, _] = fields.word;
        TrafficIndication {
            code: TrafficCode::from(u16::from_be_bytes([c0, c1])),
            src_nbma: fields.src_nbma,
            src_nbma_sub: fields.src_nbma_sub,
            src_proto: fields.src_proto,
            dst_proto: fields.dst_proto,
            packet,
        }
    }

    pub(super) fn fields(&self) -> Fields<'a> {
        let [c0, c1] = u16::from(self.code).to_be_bytes();
        Fields {
            flags: 0,
            word: [c0, c1, 0, 0],
            src_nbma: self.src_nbma,
            src_nbma_sub: self.src_nbma_sub,
            src_proto: self.src_proto,
            dst_proto: self.dst_proto,
        }
    }
}
