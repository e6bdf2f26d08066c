//! The `show` commands of `dmvpnctl`, rendered from a [`RouterSnapshot`]: Cisco IOS-like text
//! tables, and JSON documents whose field names are a contract (issue 5, Operations) that
//! tests outside this repository read. Fields may be added to the JSON, never renamed.
//!
//! Every function here is pure: the same snapshot gives the same bytes.

mod crypto;
mod dmvpn;
mod format;
mod nhrp;

use core::net::IpAddr;

use dmvpn_nhrp::show::{DmvpnPeer, PeerState};
use serde::Serialize;

use crate::snapshot::{IkeSaState, RouterSnapshot};

pub use crypto::{
    CryptoSessionJson, IkeSaJson, IkeSasJson, IpsecSaJson, IpsecSasJson, SessionJson,
};
pub(crate) use dmvpn::json as dmvpn_json;
pub use dmvpn::{DmvpnJson, DmvpnPeerJson};
pub use format::{spi_json, spi_text, uptime};
pub use nhrp::{NhrpEntriesJson, NhrpEntryJson, NhrpTrafficJson};

pub(crate) use crypto::{IKE_STATES, ike_state_label};
pub(crate) use format::entry_type as entry_type_label;
pub(crate) use nhrp::{operation_label as nhrp_operation_label, operations as nhrp_operations};

/// Appends one formatted line to a `String` (writing to a `String` cannot fail).
macro_rules! out {
    ($buf:expr) => {
        $buf.push('\n')
    };
    ($buf:expr, $($arg:tt)*) => {{
        use ::core::fmt::Write as _;
        let _ = $buf.write_fmt(format_args!($($arg)*));
        $buf.push('\n');
    }};
}
pub(crate) use out;

/// One `show` command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Show {
    /// `show dmvpn [detail]`.
    Dmvpn {
        /// `detail`: one row per NHRP entry with its target network, and the NHSs.
        detail: bool,
    },
    /// `show ip nhrp [detail]`.
    IpNhrp {
        /// `detail`: claimed NBMA address and holding time.
        detail: bool,
    },
    /// `show ip nhrp traffic`.
    IpNhrpTraffic,
    /// `show crypto session`.
    CryptoSession,
    /// `show crypto ikev2 sa`.
    CryptoIkev2Sa,
    /// `show crypto ipsec sa`.
    CryptoIpsecSa,
}

/// A rendered `show`: the text table and the JSON document.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    /// The Cisco-like text, each line ending in a newline.
    pub text: String,
    /// The JSON document (`-o json`).
    pub json: serde_json::Value,
}

/// Renders `show` from `snapshot`.
pub fn render(snapshot: &RouterSnapshot, show: Show) -> Rendered {
    match show {
        Show::Dmvpn { detail } => Rendered {
            text: dmvpn::text(snapshot, detail),
            json: to_json(&dmvpn::json(snapshot)),
        },
        Show::IpNhrp { detail } => Rendered {
            text: nhrp::text(snapshot, detail),
            json: to_json(&nhrp::json(snapshot)),
        },
        Show::IpNhrpTraffic => Rendered {
            text: nhrp::traffic_text(snapshot),
            json: to_json(&nhrp::traffic_json(snapshot)),
        },
        Show::CryptoSession => Rendered {
            text: crypto::session_text(snapshot),
            json: to_json(&crypto::session_json(snapshot)),
        },
        Show::CryptoIkev2Sa => Rendered {
            text: crypto::ikev2_text(snapshot),
            json: to_json(&crypto::ikev2_json(snapshot)),
        },
        Show::CryptoIpsecSa => Rendered {
            text: crypto::ipsec_text(snapshot),
            json: to_json(&crypto::ipsec_json(snapshot)),
        },
    }
}

fn to_json<T: Serialize>(doc: &T) -> serde_json::Value {
    // The documents are plain structs of strings and numbers: serializing cannot fail, and
    // `Null` would be the honest answer if it did.
    serde_json::to_value(doc).unwrap_or(serde_json::Value::Null)
}

/// The state of a peer, the `State` column of `show dmvpn` (Cisco's UP, IKE, NHRP, DOWN).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkState {
    /// Protected (or unprotected by configuration) and NHRP registered or resolved.
    Up,
    /// IKE negotiates, or the IKE SA stands without an ESP SA yet.
    Ike,
    /// The ESP SA stands but NHRP has not registered.
    Nhrp,
    /// IPsec is configured and neither an IKE SA nor an ESP SA exists for the peer.
    Down,
}

impl LinkState {
    /// The JSON value and metric label: `up`, `ike`, `nhrp`, `down`.
    pub const fn label(self) -> &'static str {
        match self {
            LinkState::Up => "up",
            LinkState::Ike => "ike",
            LinkState::Nhrp => "nhrp",
            LinkState::Down => "down",
        }
    }

    /// The text of the `State` column.
    pub const fn text(self) -> &'static str {
        match self {
            LinkState::Up => "UP",
            LinkState::Ike => "IKE",
            LinkState::Nhrp => "NHRP",
            LinkState::Down => "DOWN",
        }
    }
}

/// The state of `peer`: the crypto layer first (when IPsec is configured), then NHRP.
pub fn link_state(snapshot: &RouterSnapshot, peer: &DmvpnPeer) -> LinkState {
    if !snapshot.insecure && !has_esp_sa(snapshot, peer.nbma) {
        let negotiating = snapshot
            .ike_sas
            .iter()
            .any(|sa| sa.peer.ip() == peer.nbma && sa.state != IkeSaState::Deleting);
        return if negotiating {
            LinkState::Ike
        } else {
            LinkState::Down
        };
    }
    match peer.state {
        PeerState::Up => LinkState::Up,
        PeerState::Nhrp => LinkState::Nhrp,
    }
}

fn has_esp_sa(snapshot: &RouterSnapshot, nbma: IpAddr) -> bool {
    snapshot.ipsec_sas.iter().any(|sa| sa.peer == nbma)
}

#[cfg(test)]
pub(crate) mod testdata;
