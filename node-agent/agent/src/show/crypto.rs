//! `show crypto session`, `show crypto ikev2 sa` (IKE SAs, RFC 7296) and `show crypto ipsec
//! sa` (ESP SAs, RFC 4303, with Cisco IOS's counters).

use core::net::{IpAddr, SocketAddr};

use serde::Serialize;

use super::format::{host_ident, ike_spi, spi_json, spi_text};
use super::out;
use crate::snapshot::{IkeSaInfo, IkeSaState, IpsecSaInfo, RouterSnapshot};

/// The IKE port (RFC 7296 section 2) and the NAT-T port IKE floats to (section 2.23).
const IKE_PORT: u16 = 500;
const NAT_T_PORT: u16 = 4500;

/// Our end of an IKE SA: the underlay address, on the port the peer's end uses (both ends
/// float to 4500 together, RFC 7296 section 2.23).
fn local_end(s: &RouterSnapshot, peer: SocketAddr) -> SocketAddr {
    let port = if peer.port() == IKE_PORT {
        IKE_PORT
    } else {
        NAT_T_PORT
    };
    SocketAddr::new(s.underlay_address, port)
}

/// IOS's status words for an IKEv2 SA.
const fn ike_status(state: IkeSaState) -> &'static str {
    match state {
        IkeSaState::Connecting => "IN-NEG",
        IkeSaState::Established => "READY",
        IkeSaState::Rekeying => "REKEY",
        IkeSaState::Deleting => "DELETE",
    }
}

/// The state names of the JSON documents and metric labels.
pub(crate) const fn ike_state_label(state: IkeSaState) -> &'static str {
    match state {
        IkeSaState::Connecting => "connecting",
        IkeSaState::Established => "established",
        IkeSaState::Rekeying => "rekeying",
        IkeSaState::Deleting => "deleting",
    }
}

/// Every IKE SA state, for metrics.
pub(crate) const IKE_STATES: [IkeSaState; 4] = [
    IkeSaState::Connecting,
    IkeSaState::Established,
    IkeSaState::Rekeying,
    IkeSaState::Deleting,
];

const fn ike_usable(state: IkeSaState) -> bool {
    matches!(state, IkeSaState::Established | IkeSaState::Rekeying)
}

/// One crypto session: a peer with its IKE SA and ESP SA pair, either of which may be
/// missing.
struct Session<'a> {
    peer: IpAddr,
    ike: Option<&'a IkeSaInfo>,
    esp: Option<&'a IpsecSaInfo>,
}

impl Session<'_> {
    /// IOS's `Session status`.
    fn status(&self) -> &'static str {
        let ike_up = self.ike.is_some_and(|i| ike_usable(i.state));
        match (ike_up, self.esp.is_some()) {
            (true, true) => "UP-ACTIVE",
            (true, false) => "UP-IDLE",
            (false, true) => "UP-NO-IKE",
            (false, false) if self.ike.is_some() => "DOWN-NEGOTIATING",
            (false, false) => "DOWN",
        }
    }

    fn port(&self) -> u16 {
        self.ike
            .map(|i| i.peer.port())
            .or(self.esp.map(|e| e.endpoint.port()))
            .unwrap_or(IKE_PORT)
    }
}

/// The sessions, by peer address: the newest usable IKE SA of a peer stands for it.
fn sessions(s: &RouterSnapshot) -> Vec<Session<'_>> {
    let mut peers: Vec<IpAddr> = s
        .ike_sas
        .iter()
        .map(|i| i.peer.ip())
        .chain(s.ipsec_sas.iter().map(|e| e.peer))
        .collect();
    peers.sort_unstable();
    peers.dedup();
    peers
        .into_iter()
        .map(|peer| {
            let ike = s
                .ike_sas
                .iter()
                .filter(|i| i.peer.ip() == peer)
                .min_by_key(|i| (!ike_usable(i.state), i.uptime));
            let esp = s.ipsec_sas.iter().find(|e| e.peer == peer);
            Session { peer, ike, esp }
        })
        .collect()
}

/// `show crypto session -o json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CryptoSessionJson {
    /// One element per peer.
    pub sessions: Vec<SessionJson>,
}

/// One session of `show crypto session -o json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionJson {
    /// The tunnel interface.
    pub interface: String,
    /// The peer's NBMA address.
    pub peer: IpAddr,
    /// The peer's IKE (or ESP-in-UDP) port.
    pub port: u16,
    /// IOS's session status: `UP-ACTIVE`, `UP-IDLE`, `UP-NO-IKE`, `DOWN-NEGOTIATING`, `DOWN`.
    pub status: &'static str,
    /// The IKE SA's state (`connecting`, `established`, `rekeying`, `deleting`), if any.
    pub ike_state: Option<&'static str>,
    /// ESP SAs in use (an inbound and an outbound one per pair).
    pub active_sas: u32,
}

pub(super) fn session_json(s: &RouterSnapshot) -> CryptoSessionJson {
    CryptoSessionJson {
        sessions: sessions(s)
            .iter()
            .map(|x| SessionJson {
                interface: s.tunnel_interface.clone(),
                peer: x.peer,
                port: x.port(),
                status: x.status(),
                ike_state: x.ike.map(|i| ike_state_label(i.state)),
                active_sas: if x.esp.is_some() { 2 } else { 0 },
            })
            .collect(),
    }
}

pub(super) fn session_text(s: &RouterSnapshot) -> String {
    let mut t = String::new();
    out!(t, "Crypto session current status");
    for x in sessions(s) {
        out!(t);
        out!(t, "Interface: {}", s.tunnel_interface);
        out!(t, "Session status: {}", x.status());
        out!(t, "Peer: {} port {}", x.peer, x.port());
        if let Some(i) = x.ike {
            let state = if ike_usable(i.state) {
                "Active"
            } else {
                "Inactive"
            };
            let local = local_end(s, i.peer);
            out!(t, "  IKEv2 SA: local {local} remote {} {state}", i.peer);
        }
        out!(
            t,
            "  IPSEC FLOW: permit 47 host {} host {}",
            s.underlay_address,
            x.peer
        );
        out!(
            t,
            "        Active SAs: {}, origin: crypto map",
            if x.esp.is_some() { 2 } else { 0 }
        );
    }
    t
}

/// `show crypto ikev2 sa -o json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IkeSasJson {
    /// One element per IKE SA.
    pub sas: Vec<IkeSaJson>,
}

/// One IKE SA of `show crypto ikev2 sa -o json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IkeSaJson {
    /// IOS's `Tunnel-id`: the row number.
    pub tunnel_id: usize,
    /// Our address and port.
    pub local: SocketAddr,
    /// The peer's address and port.
    pub remote: SocketAddr,
    /// `connecting`, `established`, `rekeying` or `deleting`.
    pub state: &'static str,
    /// The initiator's SPI, 16 hex digits.
    pub spi_initiator: String,
    /// The responder's SPI, 16 hex digits (all zero until the responder answered).
    pub spi_responder: String,
    /// Seconds since the SA was created.
    pub uptime_seconds: u64,
}

pub(super) fn ikev2_json(s: &RouterSnapshot) -> IkeSasJson {
    IkeSasJson {
        sas: s
            .ike_sas
            .iter()
            .enumerate()
            .map(|(n, i)| IkeSaJson {
                tunnel_id: n + 1,
                local: local_end(s, i.peer),
                remote: i.peer,
                state: ike_state_label(i.state),
                spi_initiator: ike_spi(i.spi_i),
                spi_responder: ike_spi(i.spi_r),
                uptime_seconds: i.uptime.as_secs(),
            })
            .collect(),
    }
}

pub(super) fn ikev2_text(s: &RouterSnapshot) -> String {
    let mut t = String::new();
    for (family, v6) in [("IPv4", false), ("IPv6", true)] {
        let sas: Vec<_> = s
            .ike_sas
            .iter()
            .enumerate()
            .filter(|(_, i)| i.peer.is_ipv6() == v6)
            .collect();
        if sas.is_empty() {
            continue;
        }
        out!(t, " {family} Crypto IKEv2  SA");
        out!(t);
        let w = sas
            .iter()
            .map(|(_, i)| i.peer.to_string().len())
            .fold(21, usize::max);
        out!(
            t,
            "Tunnel-id {:<w$} {:<w$} fvrf/ivrf            Status",
            "Local",
            "Remote"
        );
        for (n, i) in sas {
            let local = local_end(s, i.peer).to_string();
            out!(
                t,
                "{:<9} {local:<w$} {:<w$} {:<20} {}",
                n + 1,
                i.peer.to_string(),
                "none/none",
                ike_status(i.state)
            );
            out!(
                t,
                "      Initiator SPI: {}, Responder SPI: {}",
                ike_spi(i.spi_i),
                ike_spi(i.spi_r)
            );
            out!(t, "      Active Time: {} sec", i.uptime.as_secs());
        }
        out!(t);
    }
    t
}

/// `show crypto ipsec sa -o json`: `{"sas":[...]}` (a contract: the field names never
/// change). SPIs are strings: `0x` and 8 lowercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IpsecSasJson {
    /// One element per peer with an ESP SA pair.
    pub sas: Vec<IpsecSaJson>,
}

/// One ESP SA pair of `show crypto ipsec sa -o json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IpsecSaJson {
    /// The peer's NBMA address.
    pub peer: IpAddr,
    /// The newest inbound SPI, `0xfd59ac3e`.
    pub inbound_spi: String,
    /// The outbound SPI, `0xc32c6d83`.
    pub outbound_spi: String,
    /// `#pkts encaps`.
    pub packets_encaps: u64,
    /// `#pkts decaps`.
    pub packets_decaps: u64,
    /// `#pkts replay failed (rcv)`.
    pub replay_drops: u64,
    /// `#pkts verify failed`.
    pub auth_failures: u64,
    /// Where the ESP-in-UDP datagrams go (RFC 3948).
    pub endpoint: SocketAddr,
}

pub(super) fn ipsec_json(s: &RouterSnapshot) -> IpsecSasJson {
    IpsecSasJson {
        sas: s
            .ipsec_sas
            .iter()
            .map(|e| IpsecSaJson {
                peer: e.peer,
                inbound_spi: spi_json(e.inbound_spi),
                outbound_spi: spi_json(e.outbound_spi),
                packets_encaps: e.packets_encaps,
                packets_decaps: e.packets_decaps,
                replay_drops: e.replay_drops,
                auth_failures: e.auth_failures,
                endpoint: e.endpoint,
            })
            .collect(),
    }
}

pub(super) fn ipsec_text(s: &RouterSnapshot) -> String {
    let mut t = String::new();
    let local = s.underlay_address;
    out!(t);
    out!(t, "interface: {}", s.tunnel_interface);
    out!(
        t,
        "    Crypto map tag: {}-head-0, local addr {local}",
        s.tunnel_interface
    );
    for e in &s.ipsec_sas {
        out!(t);
        out!(t, "   protected vrf: (none)");
        out!(
            t,
            "   local  ident (addr/mask/prot/port): ({}/47/0)",
            host_ident(local)
        );
        out!(
            t,
            "   remote ident (addr/mask/prot/port): ({}/47/0)",
            host_ident(e.peer)
        );
        out!(t, "   current_peer {} port {}", e.peer, e.endpoint.port());
        out!(t, "     PERMIT, flags={{origin_is_acl,}}");
        // AEAD transforms encrypt and authenticate in one step: one count each.
        let (enc, dec) = (e.packets_encaps, e.packets_decaps);
        out!(
            t,
            "    #pkts encaps: {enc}, #pkts encrypt: {enc}, #pkts digest: {enc}"
        );
        out!(
            t,
            "    #pkts decaps: {dec}, #pkts decrypt: {dec}, #pkts verify: {dec}"
        );
        out!(
            t,
            "    #pkts replay failed (rcv): {}, #pkts verify failed: {}",
            e.replay_drops,
            e.auth_failures
        );
        out!(t);
        out!(
            t,
            "     local crypto endpt.: {local}, remote crypto endpt.: {}",
            e.peer
        );
        out!(t, "     current outbound spi: {}", spi_text(e.outbound_spi));
        out!(t);
        out!(t, "     inbound esp sas:");
        out!(t, "      spi: {}", spi_text(e.inbound_spi));
        out!(t, "        replay detection support: Y");
        out!(t, "        Status: ACTIVE");
        out!(t);
        out!(t, "     outbound esp sas:");
        out!(t, "      spi: {}", spi_text(e.outbound_spi));
        out!(t, "        Status: ACTIVE");
    }
    t
}

#[cfg(test)]
mod tests {
    use super::super::testdata::hub;
    use super::*;

    #[test]
    fn session_reads_like_the_seed() {
        let expected = "\
Crypto session current status

Interface: dmvpn0
Session status: UP-ACTIVE
Peer: 198.18.0.2 port 500
  IKEv2 SA: local 198.18.0.1:500 remote 198.18.0.2:500 Active
  IPSEC FLOW: permit 47 host 198.18.0.1 host 198.18.0.2
        Active SAs: 2, origin: crypto map

Interface: dmvpn0
Session status: UP-ACTIVE
Peer: 198.18.0.3 port 4500
  IKEv2 SA: local 198.18.0.1:4500 remote 198.18.0.3:4500 Active
  IPSEC FLOW: permit 47 host 198.18.0.1 host 198.18.0.3
        Active SAs: 2, origin: crypto map

Interface: dmvpn0
Session status: DOWN-NEGOTIATING
Peer: 198.18.0.4 port 500
  IKEv2 SA: local 198.18.0.1:500 remote 198.18.0.4:500 Inactive
  IPSEC FLOW: permit 47 host 198.18.0.1 host 198.18.0.4
        Active SAs: 0, origin: crypto map
";
        assert_eq!(session_text(&hub()), expected);
        let j = serde_json::to_value(session_json(&hub())).unwrap();
        assert_eq!(j["sessions"][2]["status"], "DOWN-NEGOTIATING");
        assert_eq!(j["sessions"][2]["ikeState"], "connecting");
        assert_eq!(j["sessions"][0]["activeSas"], 2);
    }

    #[test]
    fn ikev2_table_reads_like_ios() {
        let expected = "\
\x20IPv4 Crypto IKEv2  SA

Tunnel-id Local                 Remote                fvrf/ivrf            Status
1         198.18.0.1:500        198.18.0.2:500        none/none            READY
      Initiator SPI: 8d9f8b3f1d9c6c2a, Responder SPI: 7f01020304050607
      Active Time: 735 sec
2         198.18.0.1:4500       198.18.0.3:4500       none/none            READY
      Initiator SPI: 1111222233334444, Responder SPI: 5555666677778888
      Active Time: 93660 sec
3         198.18.0.1:500        198.18.0.4:500        none/none            IN-NEG
      Initiator SPI: 0102030405060708, Responder SPI: 0000000000000000
      Active Time: 0 sec

";
        assert_eq!(ikev2_text(&hub()), expected);
        let j = serde_json::to_value(ikev2_json(&hub())).unwrap();
        assert_eq!(j["sas"][1]["local"], "198.18.0.1:4500");
        assert_eq!(j["sas"][2]["state"], "connecting");
        assert_eq!(j["sas"][2]["spiResponder"], "0000000000000000");
    }

    #[test]
    fn ipsec_sa_reads_like_the_seed() {
        let t = ipsec_text(&hub());
        let first_peer = "
interface: dmvpn0
    Crypto map tag: dmvpn0-head-0, local addr 198.18.0.1

   protected vrf: (none)
   local  ident (addr/mask/prot/port): (198.18.0.1/255.255.255.255/47/0)
   remote ident (addr/mask/prot/port): (198.18.0.2/255.255.255.255/47/0)
   current_peer 198.18.0.2 port 4500
     PERMIT, flags={origin_is_acl,}
    #pkts encaps: 215, #pkts encrypt: 215, #pkts digest: 215
    #pkts decaps: 204, #pkts decrypt: 204, #pkts verify: 204
    #pkts replay failed (rcv): 0, #pkts verify failed: 0

     local crypto endpt.: 198.18.0.1, remote crypto endpt.: 198.18.0.2
     current outbound spi: 0xC32C6D83(3274468739)

     inbound esp sas:
      spi: 0xFD59AC3E(4250512446)
        replay detection support: Y
        Status: ACTIVE

     outbound esp sas:
      spi: 0xC32C6D83(3274468739)
        Status: ACTIVE
";
        assert!(t.starts_with(first_peer), "{t}");
        assert!(t.contains("    #pkts replay failed (rcv): 3, #pkts verify failed: 1\n"));
    }

    #[test]
    fn ipsec_json_has_the_contract_fields_and_spi_format() {
        let v = serde_json::to_value(ipsec_json(&hub())).unwrap();
        let sas = v["sas"].as_array().unwrap();
        assert_eq!(sas.len(), 2);
        for sa in sas {
            for key in [
                "peer",
                "inboundSpi",
                "outboundSpi",
                "packetsEncaps",
                "packetsDecaps",
                "replayDrops",
                "authFailures",
            ] {
                assert!(sa.get(key).is_some(), "{key} missing in {sa}");
            }
        }
        assert_eq!(sas[0]["peer"], "198.18.0.2");
        assert_eq!(sas[0]["inboundSpi"], "0xfd59ac3e");
        assert_eq!(sas[0]["outboundSpi"], "0xc32c6d83");
        assert_eq!(sas[0]["packetsEncaps"], 215);
        assert_eq!(sas[0]["packetsDecaps"], 204);
        assert_eq!(sas[1]["replayDrops"], 3);
        assert_eq!(sas[1]["authFailures"], 1);
    }
}
